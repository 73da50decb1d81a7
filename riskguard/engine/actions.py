"""Action types and their JSON form.

Actions are *proposals*: the engine never acts. A bot applies them itself, or an
executor plugin (``riskguard/contrib/ccxt_guard.py``) applies them when asked to.

Each action carries the ``severity`` of what proposed it: the highest severity among the
proposing rule's violations (for the action's symbol, else account-wide), else the rule's
configured severity; a stop merged from several rules takes the highest of theirs; the
engine's own ``block_order`` (a fault) is ``critical``. An executor applies by default only
actions of blocking severity (``error``/``critical``): a stop proposed by a warning-level
rule is advice, as the engine treats it when deciding.

In hedge mode (``"positionMode": "hedge"``: a long and a short leg per symbol may coexist)
an action on a position names its leg, ``positionSide: long | short``, so an executor acts
on that leg and not the symbol's other one; in one-way mode the field is absent. The
position actions are those in :data:`POSITION_ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from riskguard._compiled import compiled, mypyc_attr
from riskguard.model.slots import positional_constructor, reduce_by_init

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

#: The figure an action cannot be applied without (``schemas/decision.schema.json`` requires
#: it): an action whose figure overflowed to inf/NaN is not proposed at all.
REQUIRED_FIGURES: dict[str, tuple[str, ...]] = {
    "resize_order": ("amount",),
    "set_stop_loss": ("price",),
    "reduce_position": ("amount",),
    "add_isolated_margin": ("amount",),
}


#: Actions on a position: in hedge mode they carry the leg (``positionSide``).
POSITION_ACTIONS = frozenset(
    {
        "set_stop_loss",
        "reduce_position",
        "close_position",
        "add_isolated_margin",
        "switch_margin_mode",
    }
)

#: The legs a hedge-mode action may name.
POSITION_SIDES = ("long", "short")


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class Action:
    type: str
    rule: str
    symbol: str | None = None
    params: dict[Any, Any] = field(default_factory=dict)
    #: info | warning | error | critical — set by the engine (see the module docstring)
    severity: str | None = None
    #: hedge mode: the leg the action is for (long | short); None in one-way mode
    positionSide: str | None = None

    def __post_init__(self) -> None:
        if self.positionSide is not None and self.positionSide not in POSITION_SIDES:
            raise ValueError(
                f"Action.positionSide must be long or short (or None), not {self.positionSide!r}"
            )

    @property
    def blocking(self) -> bool:
        """Proposed with blocking severity (error/critical): what an executor applies."""
        return self.severity in ("error", "critical")

    def to_dict(self) -> dict[Any, Any]:
        d: dict[Any, Any] = {"type": self.type, "rule": self.rule}
        if self.symbol is not None:
            d["symbol"] = self.symbol
        if self.positionSide is not None:
            d["positionSide"] = self.positionSide
        if self.severity is not None:
            d["severity"] = self.severity
        d.update(self.params)
        return d

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)


def _native_action(
    type: str,
    rule: str,
    symbol: str | None,
    params: dict[Any, Any],
    severity: str | None,
    positionSide: str | None,
) -> Action:
    a = Action.__new__(Action)
    a.type = type  # type: ignore[misc]
    a.rule = rule  # type: ignore[misc]
    a.symbol = symbol  # type: ignore[misc]
    a.params = params  # type: ignore[misc]
    a.severity = severity  # type: ignore[misc]
    a.positionSide = positionSide  # type: ignore[misc]
    return a


#: Compiled (mypyc, ``setup.py``), ``Action`` is a native class.
_COMPILED = compiled(_native_action)

#: ``Action(type, rule, symbol, params, severity, positionSide)`` with every field given,
#: the fields filled directly: the hot paths' constructor (a frozen dataclass's __init__
#: sets each field through ``object.__setattr__``, and compiled, that ``__init__`` is
#: still interpreted). It skips ``__post_init__``: give it ``positionSide=None`` or a leg
#: already checked.
new_action: Callable[..., Action] = _native_action if _COMPILED else positional_constructor(Action)
