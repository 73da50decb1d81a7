"""``order_limits``: sanity limits on each order — the fat-finger controls.

Practice: the order-size and price "sanity" filters of SEC 15c3-5 and FIA guidance, and
NautilusTrader's ``max_notional_per_order`` and reduce-only checks: a typo (an extra zero,
a price ten times the mark) must not reach the exchange.

- ``maxNotional``: amount × contract size × price (the order's price, else the mark;
  inverse contracts: amount × contract size, already in quote);
- ``maxAmount``: contracts per order;
- ``priceBandPct``: a priced order more than this many percent away from the mark;
- ``maxOpenPositions``: an order may not open a position beyond this many; without an
  order, an account holding more is reported;
- ``enforceReduceOnly``: a ``reduceOnly`` order that would not reduce (no position, or
  the same side) is denied — the bot's picture of its positions is wrong.

Violations of the order have scope ``order``. Size limits skip orders that only reduce
exposure unless ``applyToReducing`` (never trap a trader in a position); the price band
applies to every priced order (selling at a tenth of the mark is a fat finger too). With
``resize_order`` in ``onViolation`` an oversized order is cut to the limit; by default it
is denied (a fat finger is better refused than executed smaller).
"""

from __future__ import annotations

from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.hookspecs import hookimpl
from riskguard.margin.metrics import (
    contract_size_for,
    order_position,
    order_reduces,
    position_of,
)
from riskguard.model.snapshot import Snapshot
from riskguard.rules.base import BaseRule, RuleSpec, RuleType

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "maxNotional": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "largest order notional in settle currency (quote for inverse)",
        },
        "maxAmount": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "largest order amount in contracts",
        },
        "priceBandPct": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": "largest distance of a priced order from the mark, in percent",
        },
        "maxOpenPositions": {
            "type": "integer",
            "minimum": 0,
            "description": "largest number of open positions (matched symbols)",
        },
        "enforceReduceOnly": {
            "type": "boolean",
            "default": True,
            "description": "deny a reduceOnly order that would not reduce a position",
        },
        "applyToReducing": {
            "type": "boolean",
            "default": False,
            "description": "apply maxNotional/maxAmount to orders that only reduce exposure too",
        },
    },
}

CODES = {
    "ORDER_NOTIONAL_EXCEEDS_MAX": "the order's notional is above `maxNotional`",
    "ORDER_AMOUNT_EXCEEDS_MAX": "the order's amount is above `maxAmount`",
    "ORDER_PRICE_OUTSIDE_BAND": "the order's price is more than `priceBandPct` % from the mark (fat finger)",
    "ORDER_REDUCE_ONLY_WOULD_INCREASE": "a reduceOnly order has no opposite position to reduce",
    "POSITIONS_OPEN_EXCEEDS_MAX": "more open positions than `maxOpenPositions`",
}

_TOL = 1e-9


def _mark(snapshot: Snapshot, symbol: str) -> float | None:
    m = snapshot.markets.get(symbol)
    if m is not None and m.markPrice is not None:
        return m.markPrice
    p = position_of(snapshot, symbol)
    return snapshot.mark_price(p) if p is not None else None


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    keys = ("maxNotional", "maxAmount", "priceBandPct", "maxOpenPositions")
    if not any(params.get(k) is not None for k in keys) and not params["enforceReduceOnly"]:
        return [("", f"set at least one of {', '.join(keys)} or enforceReduceOnly")]
    return []


def _amount(x: float) -> float:
    """A bound the engine can floor: amounts below 1e-12 contracts are 0 (subnormal floats
    would overflow its rounding)."""
    return x if x >= 1e-12 else 0.0


class OrderLimits(BaseRule):
    __slots__ = (
        "band",
        "max_amount_",
        "max_notional",
        "max_positions",
        "reduce_only",
        "to_reducing",
    )
    default_actions = ("alert",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.max_notional = p.get("maxNotional")
        self.max_amount_ = p.get("maxAmount")
        self.band = p.get("priceBandPct")
        self.max_positions = p.get("maxOpenPositions")
        self.reduce_only = p["enforceReduceOnly"]
        self.to_reducing = p["applyToReducing"]

    def _unit_notional(self, ctx: EvalContext) -> float | None:
        """Notional of one contract of the order (None: no price)."""
        order = ctx.order
        assert order is not None
        before = ctx.before
        cs = contract_size_for(before, order.symbol)
        pos = order_position(before, order)
        if pos is not None and pos.inverse:
            return cs
        price = order.price if order.price is not None else _mark(before, order.symbol)
        return None if price is None else cs * price

    def evaluate(self, ctx: EvalContext) -> None:
        order = ctx.order
        if order is None:
            self._count_positions(ctx)
            return
        if not self.match.symbol(order.symbol):
            return
        before = ctx.before
        reduces = order_reduces(before, order)
        trace = ctx.trace is not None
        existing = order_position(before, order)
        sym = order.symbol

        if self.reduce_only and order.reduceOnly:
            side = "long" if order.side == "buy" else "short"
            if existing is None or existing.side == side:
                self.violate(
                    ctx,
                    "ORDER_REDUCE_ONLY_WOULD_INCREASE",
                    f"reduceOnly {order.side} {order.amount:g} {sym}: "
                    + (
                        "there is no position to reduce"
                        if existing is None
                        else f"the position is {existing.side}: the order would add to it"
                    ),
                    symbol=sym,
                    scope="order",
                    position=existing.side if existing is not None else None,
                )

        sized = self.to_reducing or not reduces
        if sized and self.max_amount_ is not None:
            ok = order.amount <= self.max_amount_ * (1 + _TOL)
            if trace:
                self.note(
                    ctx,
                    f"amount {order.amount:g} vs max {self.max_amount_:g}",
                    symbol=sym,
                    passed=ok,
                    amount=order.amount,
                    maxAmount=self.max_amount_,
                )
            if not ok:
                self.violate(
                    ctx,
                    "ORDER_AMOUNT_EXCEEDS_MAX",
                    f"order amount {order.amount:g} {sym} is above the {self.max_amount_:g} limit",
                    symbol=sym,
                    observed=order.amount,
                    limit=self.max_amount_,
                    scope="order",
                )
        if sized and self.max_notional is not None:
            unit = self._unit_notional(ctx)
            if unit is not None:
                notional = unit * order.amount
                ok = notional <= self.max_notional * (1 + _TOL)
                if trace:
                    self.note(
                        ctx,
                        f"notional {notional:,.2f} vs max {self.max_notional:,.2f}",
                        symbol=sym,
                        passed=ok,
                        notional=notional,
                        maxNotional=self.max_notional,
                    )
                if not ok:
                    self.violate(
                        ctx,
                        "ORDER_NOTIONAL_EXCEEDS_MAX",
                        f"order notional {notional:,.2f} is above the {self.max_notional:,.2f} limit",
                        symbol=sym,
                        observed=notional,
                        limit=self.max_notional,
                        scope="order",
                        amount=order.amount,
                    )
        if self.band is not None and order.price is not None:
            mark = _mark(before, sym)
            if mark is not None and mark > 0:
                dev = abs(order.price - mark) / mark * 100.0
                ok = dev <= self.band * (1 + _TOL)
                if trace:
                    self.note(
                        ctx,
                        f"price {order.price:g} is {dev:.3g}% from mark {mark:g} (band {self.band:g}%)",
                        symbol=sym,
                        passed=ok,
                        price=order.price,
                        markPrice=mark,
                        deviationPct=dev,
                    )
                if not ok:
                    self.violate(
                        ctx,
                        "ORDER_PRICE_OUTSIDE_BAND",
                        f"order price {order.price:g} is {dev:.3g}% from the mark {mark:g}, "
                        f"outside the {self.band:g}% band",
                        symbol=sym,
                        observed=dev,
                        limit=self.band,
                        scope="order",
                        price=order.price,
                        markPrice=mark,
                    )
        if self.max_positions is not None and existing is None and not order.reduceOnly:
            count = sum(1 for p in ctx.metrics.positions if self.match.position(p))
            ok = count <= self.max_positions
            if trace:
                self.note(
                    ctx,
                    f"{count} open positions after the order (max {self.max_positions})",
                    passed=ok,
                    count=count,
                )
            if not ok:
                self.violate(
                    ctx,
                    "POSITIONS_OPEN_EXCEEDS_MAX",
                    f"opening {sym} would make {count} open positions, above the limit of "
                    f"{self.max_positions}",
                    symbol=sym,
                    observed=count,
                    limit=self.max_positions,
                    scope="order",
                )

    def _count_positions(self, ctx: EvalContext) -> None:
        if self.max_positions is None:
            return
        count = sum(1 for p in ctx.metrics.positions if self.match.position(p))
        self.note(
            ctx,
            f"{count} open positions (max {self.max_positions})",
            passed=count <= self.max_positions,
        )
        if count > self.max_positions:
            self.violate(
                ctx,
                "POSITIONS_OPEN_EXCEEDS_MAX",
                f"{count} open positions, above the limit of {self.max_positions}",
                observed=count,
                limit=self.max_positions,
            )

    def max_amount(self, ctx: EvalContext) -> float | None:
        """The largest amount within ``maxAmount`` and ``maxNotional`` (None: unbounded)."""
        order = ctx.order
        if order is None or not self.match.symbol(order.symbol):
            return None
        if not self.to_reducing and order_reduces(ctx.before, order):
            return None
        bound = self.max_amount_
        if self.max_notional is not None:
            unit = self._unit_notional(ctx)
            if unit is not None and unit > 0:
                b = self.max_notional / unit
                bound = b if bound is None else min(bound, b)
        return None if bound is None else _amount(bound)


RULE_TYPE = RuleType(
    name="order_limits",
    params=PARAMS,
    compile=OrderLimits,
    description="fat-finger limits on each order: max notional and amount, price band vs the "
    "mark, max open positions, reduce-only enforcement.",
    codes=CODES,
    defaultActions=("alert",),
    check=_check,
    example="""- id: order-limits
  type: order_limits
  params: {maxNotional: 50000, maxAmount: 2, priceBandPct: 5, maxOpenPositions: 5}""",
    limitKeys=("maxNotional", "maxAmount", "priceBandPct", "maxOpenPositions"),
)


@hookimpl
def riskguard_rule_types(register: Any) -> None:
    register(RULE_TYPE)
