"""Applying a decision's actions through ccxt — only when asked, only blocking-severity
proposals by default — and reporting each exchange refusal next to the untouched decision
instead of raising. In hedge mode each action goes to its own leg (Binance ``positionSide``,
OKX ``posSide``, Bybit ``positionIdx``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from riskguard.contrib.ccxt.guarded import _GuardedBase
from riskguard.contrib.ccxt.mapping import _ccxt

# --------------------------------------------------------------------------- executor


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What happened to one action: applied, refused by the exchange, skipped or failed."""

    action: Any
    status: str  # applied | refused | skipped | failed | dry-run
    detail: str = ""
    exchangeCode: str | None = None
    error: str | None = None
    response: Any = None

    def to_dict(self) -> dict:
        d = {"action": self.action.to_dict(), "status": self.status, "detail": self.detail}
        if self.exchangeCode is not None:
            d["exchangeCode"] = self.exchangeCode
        if self.error is not None:
            d["error"] = self.error
        return d


@dataclass(frozen=True, slots=True)
class Execution:
    """The decision as made, plus what the exchange did with each action."""

    decision: Any
    results: tuple[ExecutionResult, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> tuple[ExecutionResult, ...]:
        return tuple(r for r in self.results if r.status in ("refused", "failed"))

    def to_dict(self) -> dict:
        return {
            "decision": self.decision.to_dict(metrics=False),
            "execution": [r.to_dict() for r in self.results],
        }


DEFAULT_APPLY = ("set_stop_loss", "switch_margin_mode", "add_isolated_margin")

_BINANCE_IDS = frozenset({"binance", "binanceusdm", "binancecoinm"})


def leg_order_params(exchange_id: str, leg: str, margin_mode: str | None = None) -> dict:
    """The parameters that make a closing (reduce-only) order act on one hedge-mode leg.

    - Binance USDⓈ-M / COIN-M: ``positionSide: LONG|SHORT``, and no ``reduceOnly`` — Binance's
      "New Order (TRADE)" reference: reduceOnly "Cannot be sent in Hedge Mode"; a SELL on
      the LONG side can only close the long
      (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api).
    - OKX: ``posSide: long|short`` and the position's ``tdMode``; no ``reduceOnly`` — OKX
      "Place order": reduceOnly is "only applicable to ... FUTURES/SWAP orders in net mode";
      in long/short mode a sell with posSide long closes the long
      (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order).
    - Bybit: ``positionIdx: 1`` (the long leg, "hedge-mode Buy side") or ``2`` (the short,
      "Sell side") with ``reduceOnly: true`` (https://bybit-exchange.github.io/docs/v5/order/create-order;
      ccxt 4.5 sends both for a hedge-mode stop-loss).
    - Any other exchange: ccxt's unified ``hedged: true`` with ``reduceOnly: true``, which
      ccxt maps to the leg opposite the order's side — the leg being closed.

    These are what ccxt's own ``hedged`` option produces for the three (``binance.py``
    ``create_order_request``, ``okx.py`` ``create_order_request``, ``bybit.py``
    ``create_order_request``), stated explicitly so the leg never depends on inference.
    """
    if leg not in ("long", "short"):
        raise ValueError(f"a hedge-mode leg is long or short, not {leg!r}")
    if exchange_id in _BINANCE_IDS:
        return {"positionSide": leg.upper()}
    if exchange_id == "okx":
        return {"posSide": leg, **({"marginMode": margin_mode} if margin_mode else {})}
    if exchange_id == "bybit":
        return {"positionIdx": 1 if leg == "long" else 2, "reduceOnly": True}
    return {"hedged": True, "reduceOnly": True}


def leg_margin_params(exchange_id: str, leg: str) -> dict | None:
    """The parameter naming the leg for ``add_margin`` (None: no known way to name it).

    Binance "Modify Isolated Position Margin": ``positionSide`` LONG|SHORT "must be sent with
    Hedge Mode"; OKX "Increase/decrease margin": ``posSide`` long|short (ccxt's default is
    ``net``, the one-way leg)."""
    if exchange_id in _BINANCE_IDS:
        return {"positionSide": leg.upper()}
    if exchange_id == "okx":
        return {"posSide": leg}
    return None


_CODE = re.compile(r'"(?:code|retCode)"\s*:\s*"?(-?\d+)')


class CcxtExecutor:
    """Apply a decision's actions through ccxt — only the types in ``apply``, and only those
    proposed at ``min_severity`` or above (default ``error``: what the policy enforces; a
    stop only a warning-level rule proposes is advice and is skipped — pass
    ``min_severity="warning"`` to apply those too).

    ``reduce_position`` and ``close_position`` send market orders, so they are applied
    only when listed explicitly. An action the exchange model already marks infeasible
    (``feasible: false``, e.g. Binance's margin-mode switch with a position open) is
    skipped unless ``attempt_infeasible``; a refusal by the exchange is reported with its
    code and the decision is returned untouched.

    Hedge mode: an action names its leg (``positionSide``); the executor acts on that leg
    only — the position's size and side come from that leg, and the exchange receives its
    leg parameter (:func:`leg_order_params`: Binance ``positionSide``, OKX ``posSide``, Bybit
    ``positionIdx``). A stop for the long leg is a reduce-only sell on the LONG side. An
    action without a leg on a symbol held both ways is skipped, never guessed; an
    ``add_isolated_margin`` on an exchange with no known leg parameter is skipped too. A
    margin-mode switch is per symbol (both legs), so it is sent once per symbol.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        apply: Iterable[str] = DEFAULT_APPLY,
        attempt_infeasible: bool = False,
        dry_run: bool = False,
        min_severity: str = "error",
    ) -> None:
        from riskguard.engine.decision import SEVERITY_RANK

        if min_severity not in SEVERITY_RANK:
            raise ValueError(
                f"min_severity must be one of {', '.join(SEVERITY_RANK)}, not {min_severity!r}"
            )
        self.exchange = exchange.exchange if isinstance(exchange, _GuardedBase) else exchange
        self.apply = frozenset(apply)
        self.min_severity = min_severity
        self._rank = SEVERITY_RANK
        self.attempt_infeasible = attempt_infeasible
        self.dry_run = dry_run

    def accepts(self, action: Any) -> bool:
        """Whether ``action`` passes the executor's own filters — its type is in ``apply``
        and it was proposed at ``min_severity`` or above — before any exchange check."""
        return action.type in self.apply and self._severe_enough(action)

    def _severe_enough(self, action: Any) -> bool:
        sev = getattr(action, "severity", None)
        return self._rank.get(str(sev), -1) >= self._rank[self.min_severity]

    def execute(self, decision: Any) -> Execution:
        results = []
        switched: set[tuple[Any, Any]] = set()
        for a in decision.actions:
            key = None
            if a.type == "switch_margin_mode" and a.type in self.apply:
                key = (a.symbol, a.params.get("to"))
                if key in switched:
                    results.append(
                        ExecutionResult(
                            a,
                            "skipped",
                            "the margin mode is per symbol: already sent for the other leg",
                        )
                    )
                    continue
            r = self._one(decision, a)
            if key is not None and r.status != "skipped":
                switched.add(key)  # sent: a switch skipped (advice) must not block another
            results.append(r)
        return Execution(decision, tuple(results))

    __call__ = execute  # an action sink is called with each decision

    def _position(self, decision: Any, symbol: str | None, leg: str | None = None) -> Any:
        m = decision.metrics
        if m is None or symbol is None:
            return None
        return m.position(symbol, leg) if leg is not None else m.position(symbol)

    def _leg(self, decision: Any, a: Any) -> tuple[str | None, str | None]:
        """(the action's hedge-mode leg or None in one-way mode, why it cannot be acted on)."""
        leg = getattr(a, "positionSide", None)
        if leg is not None:
            return leg, None
        m = decision.metrics
        if m is None or getattr(m, "positionMode", "oneway") != "hedge" or a.symbol is None:
            return None, None
        legs = {p.side for p in m.positions if p.symbol == a.symbol}
        if len(legs) > 1:
            return None, (
                "hedge mode: the action does not name its leg (positionSide) and the symbol "
                "holds both a long and a short; not guessing which"
            )
        return (next(iter(legs)) if legs else None), None

    def _one(self, decision: Any, a: Any) -> ExecutionResult:
        if a.type not in self.apply:
            return ExecutionResult(a, "skipped", "not in the executor's apply list")
        if not self._severe_enough(a):
            sev = getattr(a, "severity", None)
            return ExecutionResult(
                a,
                "skipped",
                f"proposed at severity {sev or 'unknown'} (by {a.rule}); the executor applies "
                f"{self.min_severity} and above (min_severity)",
            )
        p = a.params
        ex = self.exchange
        leg, why = self._leg(decision, a)
        if why is not None:
            return ExecutionResult(a, "skipped", why)
        ex_id = str(getattr(ex, "id", ""))
        if a.type == "switch_margin_mode":
            if p.get("feasible") is False and not self.attempt_infeasible:
                return ExecutionResult(
                    a,
                    "skipped",
                    f"the exchange refuses it now: {p.get('reason', '')}",
                    p.get("exchangeCode"),
                )
            call: Callable[[], Any] = lambda: ex.set_margin_mode(p["to"], a.symbol)  # noqa: E731
        elif a.type == "add_isolated_margin":
            if not (getattr(ex, "has", {}) or {}).get("addMargin", True):
                return ExecutionResult(
                    a, "skipped", f"ccxt has no addMargin for {getattr(ex, 'id', 'this exchange')}"
                )
            margin_params: dict = {}
            if leg is not None:
                found = leg_margin_params(ex_id, leg)
                if found is None:
                    return ExecutionResult(
                        a,
                        "skipped",
                        f"hedge mode: no known way to name the {leg} leg in add_margin on "
                        f"{ex_id or 'this exchange'}; not risking the other leg",
                    )
                margin_params = found
            if margin_params:
                call = lambda: ex.add_margin(a.symbol, p["amount"], margin_params)  # noqa: E731
            else:
                call = lambda: ex.add_margin(a.symbol, p["amount"])  # noqa: E731
        elif a.type in ("set_stop_loss", "reduce_position", "close_position"):
            pm = self._position(decision, a.symbol, leg)
            if pm is None:
                where = f"the {leg} leg of the symbol" if leg is not None else "the symbol"
                return ExecutionResult(a, "skipped", f"no position for {where} in the decision")
            close_side = "sell" if pm.side == "long" else "buy"
            closing: dict = (
                {"reduceOnly": True}
                if leg is None
                else leg_order_params(ex_id, pm.side, getattr(pm, "marginMode", None))
            )
            if a.type == "set_stop_loss":
                price = self._protective_price(a.symbol, p["price"], pm.side == "long")
                amount, params = pm.contracts, {"stopLossPrice": price, **closing}
            elif a.type == "reduce_position":
                amount, params = min(p["amount"], pm.contracts), closing
            else:
                amount, params = pm.contracts, closing
            call = lambda: ex.create_order(a.symbol, "market", close_side, amount, None, params)  # noqa: E731
        else:
            return ExecutionResult(a, "skipped", "not an exchange action")
        if self.dry_run:
            return ExecutionResult(a, "dry-run", "would be sent")
        try:
            resp = call()
        except Exception as exc:  # noqa: BLE001 - reported next to the decision, never lost
            return self._refusal(a, exc)
        return ExecutionResult(a, "applied", "sent", response=resp)

    def _protective_price(self, symbol: str, price: float, long: bool) -> float:
        """The stop on the exchange's price grid, rounded toward the mark, never past the
        proposed price (ccxt rounds to the nearest tick, which can put a long's stop a tick
        nearer liquidation than the policy allows)."""
        ex = self.exchange
        try:
            tick = float(ex.market(symbol)["precision"]["price"])
            on_grid = float(ex.price_to_precision(symbol, price))
        except Exception:  # noqa: BLE001 - no market data: let ccxt do as it does
            return price
        if not (tick > 0 and math.isfinite(on_grid)):
            return price
        if long and on_grid < price:
            on_grid = float(ex.price_to_precision(symbol, on_grid + tick))
        elif not long and on_grid > price:
            on_grid = float(ex.price_to_precision(symbol, on_grid - tick))
        return on_grid

    def _refusal(self, a: Any, exc: Exception) -> ExecutionResult:
        text = str(exc)
        m = _CODE.search(text)
        code = m.group(1) if m else None
        try:
            ccxt = _ccxt()
            refused = isinstance(exc, ccxt.ExchangeError) and not isinstance(exc, ccxt.NetworkError)
        except ImportError:  # pragma: no cover
            refused = False
        status = "refused" if refused else "failed"
        return ExecutionResult(a, status, text[:500], code, type(exc).__name__)
