"""``max_leverage``: leverage per position and for the whole account, within limits.

Practice (docs/trading-risk.md, rules 3 and 7): know your leverage — 20× means a
~5 % adverse move consumes isolated margin — and resist the over-leverage that cross
invites because its buffer looks large.

- per position: the larger of the configured leverage and, for isolated positions, the
  *entry* notional / assigned isolated margin (they differ when margin was added or
  removed by hand; entry notional so that a winner's rising notional does not read as
  rising leverage) must be ≤ ``max``;
- account: effective leverage ``Σ notional / equity`` (matched positions) ≤ ``accountMax``;
- tiers: the leverage never exceeds the ``maxLeverage`` of the leverage tier the
  position's size falls in (``tierMax``); a bigger position lands in a tier with a lower
  cap, so this bounds the size too.

Pre-trade, an order that would breach the account or tier limit is resized to the
largest amount that fits (closed forms for linear contracts; the engine re-checks);
an order at a leverage above ``max`` cannot be fixed by size and is denied. A finding
an order improves (it lowers the figure) is reported as a warning and does not block it.
"""

from __future__ import annotations

import math
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.margin.base import MarginModel, tier_at
from riskguard.margin.metrics import (
    AccountMetrics,
    PositionMetrics,
    contract_size_for,
    order_position,
    order_reduces,
    position_of,
)
from riskguard.model.snapshot import Position
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max": {
            "type": "number",
            "minimum": 1,
            "default": 20,
            "description": "largest leverage of any position (configured, or entry notional / "
            "isolated margin)",
        },
        "accountMax": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "largest effective account leverage, Σ notional / equity (off when absent)",
        },
        "tierMax": {
            "type": "boolean",
            "default": True,
            "description": "never exceed the leverage tier's maxLeverage for the position's size",
        },
    },
}

CODES = {
    "LEVERAGE_POSITION_EXCEEDS_MAX": "a position's leverage (configured, or entry notional / "
    "isolated margin) is above `max`",
    "LEVERAGE_ACCOUNT_EXCEEDS_MAX": "effective account leverage Σ notional / equity is above `accountMax`",
    "LEVERAGE_EXCEEDS_TIER_MAX": "a position's leverage is above the maxLeverage of the leverage "
    "tier its size falls in",
}

_TOL = 1e-9


def _position_leverage(
    model: MarginModel, pos: Position, pm: PositionMetrics | None, order_lev: float | None
) -> tuple[float | None, str]:
    """(leverage, basis): the larger of configured (and the order's) and entry notional / margin."""
    best: float | None = None
    basis = "configured"
    if pos.leverage is not None:
        best = pos.leverage
    if order_lev is not None and (best is None or order_lev > best):
        best, basis = order_lev, "order"
    im = pos.isolatedMargin or 0.0
    if pos.marginMode == "isolated" and im > 0:
        lev = model.notional(pos, pos.entryPrice) / im
        if best is None or lev > best * (1 + _TOL):
            best, basis = lev, "notional/margin"
    return best, basis


def _amount(x: float) -> float:
    """A bound the engine can floor: amounts below 1e-12 contracts are 0 (subnormal floats
    would overflow its rounding)."""
    return x if x >= 1e-12 else 0.0


class MaxLeverage(BaseRule):
    __slots__ = ("account_max", "max", "tier_max")
    default_actions = ("resize_order", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.max = p["max"]
        self.account_max = p.get("accountMax")
        self.tier_max = p["tierMax"]

    def _account(self, metrics: AccountMetrics) -> float | None:
        if metrics.equity <= 0:
            return None
        if self.match.everything:
            return metrics.effectiveLeverage
        matched = [p for p in metrics.positions if self.match.position(p)]
        if getattr(metrics, "positionMode", "oneway") == "hedge":
            from riskguard.margin.accounts import net_notional  # a symbol's legs offset

            return net_notional(matched) / metrics.equity
        n = sum([p.notional for p in matched])
        return n / metrics.equity

    def _before_leverage(self, ctx: EvalContext, symbol: str, side: str) -> float | None:
        before = ctx.before
        if before.positionMode == "hedge":  # the same leg, not the symbol's other one
            pos = next((p for p in before.positions if p.symbol == symbol and p.side == side), None)
        else:
            pos = position_of(before, symbol)
        if pos is None:
            return None
        return _position_leverage(ctx.model, pos, None, None)[0]  # needs no before-metrics

    def evaluate(self, ctx: EvalContext) -> None:
        model = ctx.model
        order = ctx.order
        adds = order is not None and not order_reduces(ctx.before, order)
        trace = ctx.trace is not None
        every = self.match.everything
        all_tiers = ctx.snapshot.leverageTiers
        at_mark = model.mmBasis == "mark"
        # the base model's tier lookup (notional at the price), inline where it is unchanged
        plain_tiers = (
            model.tierUnit == "notional"
            and type(model).tier_for is MarginModel.tier_for
            and type(model).tier_metric is MarginModel.tier_metric
        )
        for pos, pm in zip(ctx.snapshot.positions, ctx.metrics.positions, strict=True):
            if not every and not self.match.position(pm):
                continue
            sym = pm.symbol
            is_order_sym = adds and order is not None and order.symbol == sym
            order_lev = order.leverage if is_order_sym else None  # type: ignore[union-attr]
            lev, basis = _position_leverage(model, pos, pm, order_lev)
            tier = None
            if self.tier_max:
                tiers = all_tiers.get(sym, ())
                if tiers:
                    price = pm.markPrice if at_mark else pos.entryPrice
                    if plain_tiers and not pos.inverse:
                        tier = tier_at(tiers, pos.contracts * pos.contractSize * price)
                    else:
                        tier = model.tier_for(pos, tiers, price)
            tier_lev = tier.maxLeverage if tier is not None else None
            if trace:
                self.note(
                    ctx,
                    f"{sym}: leverage {'unknown' if lev is None else f'{lev:g}×'} ({basis}) vs max "
                    f"{self.max:g}×" + (f", tier max {tier_lev:g}×" if tier_lev else ""),
                    symbol=sym,
                    passed=lev is None
                    or (
                        lev <= self.max * (1 + _TOL)
                        and (tier_lev is None or lev <= tier_lev * (1 + _TOL))
                    ),
                    leverage=lev,
                    basis=basis,
                    max=self.max,
                    tierMaxLeverage=tier_lev,
                    notional=pm.notional,
                )
            if lev is None:
                continue
            worsens = True
            if is_order_sym:
                prev = self._before_leverage(ctx, sym, pos.side)
                worsens = prev is None or lev >= prev * (
                    1 - _TOL
                )  # only a lowering order is let by
            if lev > self.max * (1 + _TOL):
                self.violate(
                    ctx,
                    "LEVERAGE_POSITION_EXCEEDS_MAX",
                    f"{sym}: leverage {lev:g}× ({basis}) is above the {self.max:g}× limit",
                    symbol=sym,
                    observed=lev,
                    limit=self.max,
                    severity=None if worsens else "warning",
                    basis=basis,
                )
            if tier_lev is not None and lev > tier_lev * (1 + _TOL):
                self.violate(
                    ctx,
                    "LEVERAGE_EXCEEDS_TIER_MAX",
                    f"{sym}: leverage {lev:g}× is above {tier_lev:g}×, the tier maximum for a "
                    f"notional of {pm.notional:,.0f}",
                    symbol=sym,
                    observed=lev,
                    limit=tier_lev,
                    notional=pm.notional,
                    tierMinNotional=tier.minNotional,  # type: ignore[union-attr]
                )
        if self.account_max is None:
            return
        acc = self._account(ctx.metrics)
        if acc is None:
            return  # the engine reports ACCOUNT_EQUITY_NOT_POSITIVE
        if trace:
            self.note(
                ctx,
                f"account effective leverage {acc:.3g}× vs max {self.account_max:g}×",
                passed=acc <= self.account_max * (1 + _TOL),
                effectiveLeverage=acc,
                accountMax=self.account_max,
                equity=ctx.metrics.equity,
            )
        if acc > self.account_max * (1 + _TOL):
            severity = None
            if order is not None:
                before = self._account(ctx.metrics_before)
                if not adds or (before is not None and acc <= before * (1 + _TOL)):
                    severity = "warning"
            self.violate(
                ctx,
                "LEVERAGE_ACCOUNT_EXCEEDS_MAX",
                f"effective account leverage {acc:.3g}× (Σ notional / equity) is above "
                f"{self.account_max:g}×",
                observed=acc,
                limit=self.account_max,
                severity=severity,
                equity=ctx.metrics.equity,
            )

    # ------------------------------------------------------------- pre-trade sizing

    def max_amount(self, ctx: EvalContext) -> float | None:
        """Largest amount within the account and tier limits (0 when the leverage itself is too high)."""
        order = ctx.order
        if order is None or order_reduces(ctx.before, order) or not self.match.symbol(order.symbol):
            return None
        before = ctx.before
        side = "long" if order.side == "buy" else "short"
        existing = order_position(before, order)
        start, c0 = 0.0, 0.0
        if existing is not None and existing.side != side:
            start = existing.contracts  # closes first; the rest opens a new leg
            lev = order.leverage or existing.leverage or 1.0
            lev_for_tier = lev
            mode = existing.marginMode
        elif existing is not None:
            c0 = existing.contracts
            lev = max(existing.leverage or 0.0, order.leverage or 0.0) or 1.0
            lev_for_tier = lev
            mode = existing.marginMode
            if mode == "isolated" and (existing.isolatedMargin or 0) > 0:
                ratio = ctx.model.notional(existing, existing.entryPrice) / existing.isolatedMargin
                lev_for_tier = max(lev, ratio)
        else:
            lev = order.leverage or 1.0
            lev_for_tier = lev
            mode = order.marginMode or "cross"
        if self.match.marginMode not in ("any", mode) or self.match.side not in ("any", side):
            return None
        if existing is not None and existing.inverse:
            return None  # no closed form; the engine denies on violation
        cs = contract_size_for(before, order.symbol)
        mkt = before.markets.get(order.symbol)
        price = order.price
        mark = before.mark_price(existing) if existing is not None else None
        if mark is None and mkt is not None:
            mark = mkt.markPrice
        if mark is None and (other := position_of(before, order.symbol)) is not None:
            mark = before.mark_price(other)  # hedge mode: a new leg beside the other one
        if price is None:
            price = mark
        if mark is None:
            mark = price
        if price is None or mark is None:
            return 0.0
        if lev > self.max * (1 + _TOL):
            return _amount(start)  # no amount makes this leverage acceptable
        bound = math.inf
        if self.tier_max:
            tiers = before.leverageTiers.get(order.symbol, ())
            cap = None
            for t in tiers:
                if t.maxLeverage is not None and lev_for_tier > t.maxLeverage * (1 + _TOL):
                    cap = t.minNotional
                    break
            if cap is not None:
                model = ctx.model
                basis = mark if model.mmBasis == "mark" else price
                if model.tierUnit == "contracts":
                    room = cap - c0
                else:
                    room = cap / (cs * basis) - c0
                bound = min(bound, max(0.0, room * (1 - 1e-9)))
        if self.account_max is not None:
            mb = ctx.margin_before  # equity and notionals: no tiers or liquidation prices
            if mb.equity <= 0:
                return 0.0
            rows = getattr(mb, "_rows", None)
            if rows is not None and self.match.everything:  # without building the records
                n0 = sum(rows[3])
            else:
                n0 = sum([p.notional for p in mb.positions if self.match.position(p)])
            e0 = mb.equity
            if start:
                pm = mb.position(order.symbol, existing.side if existing else None)
                if pm is not None and self.match.position(pm):
                    n0 -= pm.notional
                if pm is not None:
                    e0 -= pm.unrealizedPnl
            s = 1.0 if side == "long" else -1.0
            flat = 0.0
            if getattr(mb, "positionMode", "oneway") == "hedge":
                # Account leverage nets a symbol's legs (_account): an order against the
                # symbol's net exposure first flattens it, then opens exposure of its own.
                from riskguard.margin.accounts import net_notional

                matched = [p for p in mb.positions if self.match.position(p)]
                net_x = sum(
                    [
                        p.notional if p.side == "long" else -p.notional
                        for p in matched
                        if p.symbol == order.symbol
                    ]
                )
                n0 = net_notional([p for p in matched if p.symbol != order.symbol])
                if net_x * s < 0 and cs * mark > 0:
                    flat = abs(net_x) / (cs * mark)
                    e0 += s * cs * (mark - price) * flat
                else:
                    n0 += abs(net_x)
            den = cs * mark - self.account_max * s * cs * (mark - price)
            if den > 0:
                bound = min(bound, flat + max(0.0, (self.account_max * e0 - n0) / den))
        return None if math.isinf(bound) else _amount(start + bound)


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    am = params.get("accountMax")
    if am is not None and am > 200:
        return [
            ("accountMax", f"accountMax {am:g}× is above any exchange's leverage: no limit at all")
        ]
    return []


RULE_TYPE = RuleType(
    name="max_leverage",
    params=PARAMS,
    compile=MaxLeverage,
    description="leverage per position (configured and entry notional / margin) ≤ `max`, account "
    "Σ notional / equity ≤ `accountMax`, never above the tier's maxLeverage; orders resized to fit.",
    codes=CODES,
    defaultActions=("resize_order", "alert"),
    check=_check,
    example="""- id: max-leverage
  type: max_leverage
  params: {max: 10, accountMax: 3, tierMax: true}""",
    limitKeys=("max", "accountMax", "tierMax"),
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
