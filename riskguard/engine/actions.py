"""Action types and their JSON form.

Actions are *proposals*: the engine never acts. A bot applies them itself, or an
executor plugin (``riskguard/contrib/ccxt_guard.py``) applies them when asked to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTION_TYPES: dict[str, str] = {
    "block_order": "do not send the order",
    "resize_order": "send the order with `amount` instead (the largest amount every rule allows)",
    "set_stop_loss": "place or move the position's stop-loss to `price`",
    "reduce_position": "reduce the position by `amount` contracts",
    "switch_margin_mode": "switch the symbol to margin mode `to`, allocating `isolatedMargin`; "
    "`feasible` and `reason` say whether the exchange allows it now",
    "add_isolated_margin": "add `amount` to the position's isolated margin",
    "close_position": "close the position",
    "alert": "notify a human",
    "halt_trading": "move trading to `state` (reducing | halted)",
}


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    rule: str
    symbol: str | None = None
    params: dict[Any, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[Any, Any]:
        d: dict[Any, Any] = {"type": self.type, "rule": self.rule}
        if self.symbol is not None:
            d["symbol"] = self.symbol
        d.update(self.params)
        return d
