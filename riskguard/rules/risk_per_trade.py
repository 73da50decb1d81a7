"""``risk_per_trade``: the loss at the stop is at most a fixed fraction of equity.

Practice (docs/trading-risk.md, rule 4): enter with a fixed risk per trade, e.g.
1 % of the portfolio: the loss if the stop is hit — or, with no stop, what can be lost —
stays at or below ``max`` × equity. Risk per position:

- with a stop: ``max(0, pnl(ref) − pnl(stop))``, ref = the entry price (the trade's risk,
  ``lossFrom: entry``) or the mark (what is still at risk now, ``lossFrom: mark``); an
  isolated position cannot lose more than its isolated margin, so the risk is capped
  there (liquidation comes first);
- isolated without a stop: the isolated margin (what liquidation takes);
- cross without a stop: the whole account — always a violation
  (``RISK_PER_TRADE_UNBOUNDED``).

Equity is the account's before the order. Pre-trade, ``max_amount`` gives the largest
amount within the budget: in closed form for linear contracts (the loss is linear in the
amount: ``L(a) = L₀ + a·s·cs·(P − S)``; isolated margin ``I(a) = I₀ + a·cs·P/lev``; the risk
is ``min(L, I)`` when isolated), by bisection for inverse ones; the engine then re-checks
the resized order. Violations on a held position propose the stop that caps the loss at
the budget (``set_stop_loss``), or, when that stop would already be through the mark, the
reduction that does (``reduce_position``).
"""

from __future__ import annotations

import math
from dataclasses import replace

from riskguard.engine.context import EvalContext
from riskguard.margin.base import MarginModel
from riskguard.margin.metrics import (
    PositionMetrics,
    _fast_pnl,
    apply_order,
    contract_size_for,
    order_position,
    order_reduces,
    position_of,
)
from riskguard.model.snapshot import Order, Position, Snapshot
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.01,
            "description": "largest loss per position as a fraction of equity (0.01 = 1 %)",
        },
        "lossFrom": {
            "enum": ["entry", "mark"],
            "default": "entry",
            "description": "measure the loss at the stop from the entry price (the trade's "
            "risk) or from the mark (what is still at risk now)",
        },
    },
}

CODES = {
    "RISK_PER_TRADE_EXCEEDS_MAX": "the loss at the stop (or the isolated margin without a stop) "
    "is above `max` × equity",
    "RISK_PER_TRADE_UNBOUNDED": "a cross position without a stop-loss: the whole account is at risk",
}

_TOL = 1e-9


def _order_price(snapshot: Snapshot, order: Order) -> float | None:
    """The fill price ``apply_order`` assumes: the order's price, else the mark."""
    if order.price is not None:
        return order.price
    m = snapshot.markets.get(order.symbol)
    if m is not None and m.markPrice is not None:
        return m.markPrice
    p = order_position(snapshot, order) or position_of(snapshot, order.symbol)
    return snapshot.mark_price(p) if p is not None else None


def _stop_for_budget(pos: Position, ref: float, budget: float) -> float | None:
    """The stop price at which the loss from ``ref`` equals ``budget`` (None: no such price)."""
    q, s = pos.size, pos.sign
    if q <= 0:
        return None
    if pos.inverse:
        inv = 1.0 / ref + s * budget / q
        return 1.0 / inv if inv > 0 else None
    p = ref - s * budget / q
    return p if p > 0 else None


def _amount(x: float) -> float:
    """A bound the engine can floor: amounts below 1e-12 contracts are 0 (subnormal floats
    would overflow its rounding)."""
    return x if x >= 1e-12 else 0.0


class RiskPerTrade(BaseRule):
    __slots__ = ("from_mark", "max")
    default_actions = ("resize_order", "set_stop_loss", "reduce_position", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.max = spec.params["max"]
        self.from_mark = spec.params["lossFrom"] == "mark"

    def risk(self, model: MarginModel, pos: Position, mark: float) -> tuple[float | None, str]:
        """(risk in settle currency or None = unbounded, what bounds it)."""
        stop = pos.stopLossPrice
        iso = pos.marginMode == "isolated"
        if stop is None:
            if iso:
                return (pos.isolatedMargin or 0.0), "isolatedMargin"
            return None, "none"
        if not pos.inverse and _fast_pnl(model):
            # the base model's linear uPnL, inline (the same arithmetic)
            k = (1 if pos.side == "long" else -1) * (pos.contracts * pos.contractSize)
            ref = k * (mark - pos.entryPrice) if self.from_mark else 0.0
            loss = ref - k * (stop - pos.entryPrice)
        else:
            ref = model.unrealized_pnl(pos, mark) if self.from_mark else 0.0
            loss = ref - model.unrealized_pnl(pos, stop)
        loss = loss if loss > 0.0 else 0.0  # max(0.0, loss)
        if iso and loss > (pos.isolatedMargin or 0.0):
            return (pos.isolatedMargin or 0.0), "isolatedMargin"
        return loss, "stop"

    def evaluate(self, ctx: EvalContext) -> None:
        equity = ctx.margin_before.equity  # no tiers or liquidation prices needed
        if equity <= 0:
            self.note(ctx, "equity is not positive: no budget", passed=False, equity=equity)
            return  # the engine reports ACCOUNT_EQUITY_NOT_POSITIVE
        budget = self.max * equity
        # the same two figures end every message: formatted once (compiled, a format spec
        # in an f-string is a str.format call; fields that are already text are joined)
        budget_txt = format(budget, ",.2f")
        max_txt = format(self.max, ".2%")
        model = ctx.model
        order = ctx.order
        order_sym = order.symbol if order is not None else None
        trace = ctx.trace is not None
        every = self.match.everything
        for pos, pm in zip(ctx.snapshot.positions, ctx.metrics.positions, strict=True):
            if not every and not self.match.position(pm):
                continue
            sym = pm.symbol
            risk, basis = self.risk(model, pos, pm.markPrice)
            if trace:
                self.note(
                    ctx,
                    f"{sym}: "
                    + (
                        "cross without a stop: the whole account is at risk"
                        if risk is None
                        else f"risk {risk:,.2f} ({basis}) = {risk / equity:.3%} of equity "
                        f"{equity:,.2f} vs max {self.max:.3%} ({budget:,.2f})"
                    ),
                    symbol=sym,
                    passed=risk is not None and risk <= budget * (1 + _TOL),
                    risk=risk,
                    basis=basis,
                    equity=equity,
                    budget=budget,
                    stopLossPrice=pos.stopLossPrice,
                )
            # the order's own position is sized by resize_order, not by position actions
            sized_by_order = sym == order_sym and not order_reduces(ctx.before, order)  # type: ignore[arg-type]
            if risk is None:
                self.violate(
                    ctx,
                    "RISK_PER_TRADE_UNBOUNDED",
                    f"{sym}: cross {pm.side} without a stop-loss puts the whole account at "
                    f"risk; the budget is {budget_txt} ({max_txt} of equity)",
                    symbol=sym,
                    observed=1.0,
                    limit=self.max,
                    budget=budget,
                    equity=equity,
                )
                if not sized_by_order:
                    self._propose(ctx, pos, pm, budget, None, budget_txt)
                continue
            if risk > budget * (1 + _TOL):
                self.violate(
                    ctx,
                    "RISK_PER_TRADE_EXCEEDS_MAX",
                    f"{sym}: risk {format(risk, ',.2f')} "
                    f"{'(loss at the stop)' if basis == 'stop' else '(isolated margin)'}"
                    f" is {format(risk / equity, '.2%')} of equity, above {max_txt} ({budget_txt})",
                    symbol=sym,
                    observed=risk / equity,
                    limit=self.max,
                    risk=risk,
                    budget=budget,
                    equity=equity,
                    basis=basis,
                )
                if not sized_by_order:
                    self._propose(ctx, pos, pm, budget, risk, budget_txt)

    def _propose(
        self,
        ctx: EvalContext,
        pos: Position,
        pm: PositionMetrics,
        budget: float,
        risk: float | None,
        budget_txt: str,
    ) -> None:
        """A stop that caps the loss at the budget, else the reduction that does."""
        mark = pm.markPrice
        ref = mark if self.from_mark else pos.entryPrice
        stop = _stop_for_budget(pos, ref, budget)
        safe_side = stop is not None and ((stop < mark) if pos.side == "long" else (stop > mark))
        if safe_side:
            self.act(
                ctx,
                "set_stop_loss",
                symbol=pos.symbol,
                leg=pos.side,
                price=stop,
                previous=pos.stopLossPrice,
                note="caps the loss at " + budget_txt,
            )
            return
        if risk is not None and risk > 0 and pos.stopLossPrice is not None:
            keep = pos.contracts * budget / risk
            self.act(
                ctx,
                "reduce_position",
                symbol=pos.symbol,
                leg=pos.side,
                amount=max(0.0, pos.contracts - keep),
                note="brings the loss at the stop within the budget",
            )
        else:
            self.act(
                ctx,
                "reduce_position",
                symbol=pos.symbol,
                leg=pos.side,
                amount=pos.contracts,
                note="no stop can cap the loss at the budget from here",
            )

    # ------------------------------------------------------------- pre-trade sizing

    def max_amount(self, ctx: EvalContext) -> float | None:
        """Largest order amount whose resulting position risks at most the budget."""
        order = ctx.order
        if order is None or order_reduces(ctx.before, order):
            return None
        if not self.match.symbol(order.symbol):
            return None
        before = ctx.before
        equity = ctx.margin_before.equity  # no tiers or liquidation prices needed
        if equity <= 0:
            return 0.0
        budget = self.max * equity
        price = _order_price(before, order)
        if price is None:
            return 0.0
        side = "long" if order.side == "buy" else "short"
        s = 1.0 if side == "long" else -1.0
        existing = order_position(before, order)
        start = 0.0
        if existing is not None and existing.side != side:
            # the first `existing.contracts` close the position; the rest opens a new leg
            start = existing.contracts
            mode = existing.marginMode
            lev = order.leverage or existing.leverage or 1.0
            c0, ep, stop, iso0 = 0.0, price, order.stopLossPrice, 0.0
            cs, inverse, mark = existing.contractSize, existing.inverse, before.mark_price(existing)
        elif existing is not None:
            mode = existing.marginMode
            lev = order.leverage or existing.leverage or 1.0
            c0, ep = existing.contracts, existing.entryPrice
            stop = order.stopLossPrice or existing.stopLossPrice
            iso0 = existing.isolatedMargin or 0.0
            cs, inverse, mark = existing.contractSize, existing.inverse, before.mark_price(existing)
        else:
            mode = order.marginMode or "cross"
            lev = order.leverage or 1.0
            c0, ep, stop, iso0 = 0.0, price, order.stopLossPrice, 0.0
            cs, inverse = contract_size_for(before, order.symbol), False
            m = before.markets.get(order.symbol)
            mark = m.markPrice if m is not None and m.markPrice is not None else price
        if self.match.marginMode not in ("any", mode) or self.match.side not in ("any", side):
            return None
        if mark is None:
            return 0.0
        if inverse:
            b = self._bisect(ctx, budget, start)
            return None if b is None else _amount(b)
        iso = mode == "isolated"
        if stop is None:
            if not iso:
                return _amount(start)  # cross without a stop: no amount has a bounded risk
            return _amount(start + max(0.0, (budget - iso0) / (cs * price / lev)))
        if self.from_mark:
            l0, k = s * cs * c0 * (mark - stop), s * cs * (mark - stop)
        else:
            l0, k = s * cs * c0 * (ep - stop), s * cs * (price - stop)
        bound_l = (budget - l0) / k if k > 0 else math.inf
        bound = max(bound_l, (budget - iso0) / (cs * price / lev)) if iso else bound_l
        if math.isinf(bound):
            return None
        return _amount(start + max(0.0, bound))

    def _bisect(self, ctx: EvalContext, budget: float, start: float) -> float | None:
        """Numeric bound where the loss is not linear in the amount (inverse contracts)."""
        order = ctx.order
        assert order is not None
        model = ctx.model

        def ok(a: float) -> bool:
            proj = apply_order(ctx.before, replace(order, amount=a))
            pos = order_position(proj, order)
            if pos is None:
                return True
            mark = proj.mark_price(pos) or pos.entryPrice
            r, _ = self.risk(model, pos, mark)
            return r is not None and r <= budget * (1 + _TOL)

        lo = start
        hi = max(order.amount, start * 2, 1e-9)
        for _ in range(60):
            if not ok(hi):
                break
            lo, hi = hi, hi * 2
        else:
            return None
        for _ in range(60):
            mid = (lo + hi) / 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-9 * hi:
                break
        return lo


RULE_TYPE = RuleType(
    name="risk_per_trade",
    params=PARAMS,
    compile=RiskPerTrade,
    description="loss at the stop ≤ `max` × equity (isolated margin when there is no stop; cross "
    "without a stop is unbounded); pre-trade, orders are sized to the budget.",
    codes=CODES,
    defaultActions=("resize_order", "set_stop_loss", "reduce_position", "alert"),
    example="""- id: risk-per-trade
  type: risk_per_trade
  params: {max: 0.01, lossFrom: entry}
  onViolation: [resize_order, set_stop_loss, alert]""",
    limitKeys=("max",),
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
