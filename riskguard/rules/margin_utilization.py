"""``margin_utilization``: keep total initial margin at or below a share of equity.

Practice (docs/trading-risk.md, rule 1): the sum of initial margins of open
positions should stay at or below 30–40 % of the account, even in cross, so that a
drawdown never forces a margin call. ``utilization = Σ initialMargin / equity``, with
margin reserved by open orders included when ``includeOpenOrders`` is true.

Pre-trade, an order that would lift utilization past ``max`` is resized to the largest
amount that still fits (closed form below, then re-checked by the engine).
"""

from __future__ import annotations

from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.margin.metrics import (
    AccountMetrics,
    MarginFigures,
    contract_size_for,
    order_position,
    position_of,
)
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.35,
            "description": "largest allowed Σ initial margin / equity (0.35 = 35 %)",
        },
        "warnAt": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.30,
            "description": "report a warning from this utilization on",
        },
        "includeOpenOrders": {
            "type": "boolean",
            "default": True,
            "description": "count margin reserved by open (non reduce-only) orders",
        },
    },
}

CODES = {
    "MARGIN_UTILIZATION_EXCEEDS_MAX": "Σ initial margin / equity is above `max`",
    "MARGIN_UTILIZATION_ABOVE_WARN": "Σ initial margin / equity is above `warnAt` (warning)",
}


def check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    if params["warnAt"] > params["max"]:
        return [
            (
                "warnAt",
                f"warnAt ({params['warnAt']}) is above max ({params['max']}): "
                "the warning could never fire before the limit",
            )
        ]
    return []


class MarginUtilization(BaseRule):
    __slots__ = ("all", "include_orders", "max", "warn")
    default_actions = ("resize_order", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.max = spec.params["max"]
        self.warn = spec.params["warnAt"]
        self.include_orders = spec.params["includeOpenOrders"]
        self.all = spec.match.everything

    def _utilization(self, metrics: AccountMetrics | MarginFigures) -> float | None:
        if self.all:
            return (
                metrics.marginUtilizationWithOrders
                if self.include_orders
                else metrics.marginUtilization
            )
        if metrics.equity <= 0:
            return None
        im = 0.0
        for pm in metrics.positions:
            if (
                self.match.symbol(pm.symbol)
                and (self.match.marginMode in ("any", pm.marginMode))
                and (self.match.side in ("any", pm.side))
            ):
                im += pm.initialMargin
        return im / metrics.equity

    def evaluate(self, ctx: EvalContext) -> None:
        m = ctx.metrics
        util = self._utilization(m)
        if util is None:
            self.note(
                ctx, "equity is not positive: utilization undefined", passed=False, equity=m.equity
            )
            return  # the engine reports ACCOUNT_EQUITY_NOT_POSITIVE
        if ctx.trace is not None:
            self.note(
                ctx,
                f"utilization {util:.2%} vs max {self.max:.2%} (warn at {self.warn:.2%})",
                passed=util <= self.max,
                utilization=util,
                initialMargin=m.initialMargin,
                openOrderInitialMargin=m.openOrderInitialMargin if self.include_orders else 0.0,
                equity=m.equity,
                max=self.max,
                warnAt=self.warn,
            )
        if util > self.max:
            order = ctx.order
            if order is not None:
                before = self._utilization(ctx.margin_before)
                worsens = before is None or util > before + 1e-12
                if worsens and not ctx.reduces:
                    self.violate(
                        ctx,
                        "MARGIN_UTILIZATION_EXCEEDS_MAX",
                        f"order would lift margin utilization to {util:.1%}, above the {self.max:.1%} limit"
                        + (f" (now {before:.1%})" if before is not None else ""),
                        observed=util,
                        limit=self.max,
                        before=before,
                        symbol=None,
                    )
                    return
                self.violate(
                    ctx,
                    "MARGIN_UTILIZATION_EXCEEDS_MAX",
                    f"margin utilization {util:.1%} exceeds {self.max:.1%}; this order does not add to it",
                    observed=util,
                    limit=self.max,
                    severity="warning",
                )
                return
            self.violate(
                ctx,
                "MARGIN_UTILIZATION_EXCEEDS_MAX",
                f"margin utilization {util:.1%} exceeds {self.max:.1%}",
                observed=util,
                limit=self.max,
                equity=m.equity,
                initialMargin=m.initialMargin,
            )
        elif util > self.warn:
            self.violate(
                ctx,
                "MARGIN_UTILIZATION_ABOVE_WARN",
                f"margin utilization {util:.1%} is above the {self.warn:.1%} warning level",
                observed=util,
                limit=self.warn,
                severity="warning",
            )

    def max_amount(self, ctx: EvalContext) -> float | None:
        """Largest order amount keeping utilization ≤ max: solve (IM0 + k·a)/(E0 + e·a) ≤ max."""
        order = ctx.order
        if order is None or ctx.reduces:
            return None
        if not self.match.symbol(order.symbol):
            return None
        before = ctx.margin_before
        util0 = self._utilization(before)
        if util0 is None:
            return 0.0
        im0 = util0 * before.equity
        e0 = before.equity
        pos = order_position(ctx.before, order)
        cs = contract_size_for(ctx.before, order.symbol)
        mark = None
        mkt = ctx.before.markets.get(order.symbol)
        if pos is not None:
            mark = ctx.before.mark_price(pos)
        elif mkt is not None:
            mark = mkt.markPrice
        if mark is None and (other := position_of(ctx.before, order.symbol)) is not None:
            mark = ctx.before.mark_price(other)  # hedge mode: a new leg beside the other one
        price = order.price or mark
        if price is None or mark is None:
            return 0.0
        start: float = 0.0
        if pos is not None and (pos.side == "long") != (order.side == "buy"):
            # Opposite side: the first `pos.contracts` close; only the flip adds margin.
            start = pos.contracts
            pm = before.position(order.symbol, pos.side)
            im0 -= pm.initialMargin if pm is not None else 0.0
            e0 -= pm.unrealizedPnl if pm is not None else 0.0
            pos = None
        if pos is not None:
            lev = (
                (order.leverage or pos.leverage or 1.0)
                if pos.marginMode == "isolated"
                else (pos.leverage or 1.0)
            )
            k = cs * (price if pos.marginMode == "isolated" else mark) / lev
        else:
            lev = order.leverage or 1.0
            mode = order.marginMode or "cross"
            k = cs * (price if mode == "isolated" else mark) / lev
        e = order.sign * cs * (mark - price)
        den = k - self.max * e
        if den <= 0:
            return None
        bound: float = start + max(0.0, (self.max * e0 - im0) / den)
        return bound


def _compile(spec: RuleSpec) -> MarginUtilization:
    return MarginUtilization(spec)


RULE_TYPE = RuleType(
    name="margin_utilization",
    params=PARAMS,
    compile=_compile,
    description="Σ initial margin / equity stays at or below `max` (practice: 30–40 %); pre-trade, "
    "orders are resized to the largest amount that fits.",
    codes=CODES,
    defaultActions=("resize_order", "alert"),
    check=check,
    example="""- id: margin-utilization
  type: margin_utilization
  params: {max: 0.35, warnAt: 0.30, includeOpenOrders: true}
  severity: error
  onViolation: [resize_order, alert]""",
    limitKeys=("max",),
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
