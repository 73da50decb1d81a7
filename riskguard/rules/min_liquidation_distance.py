"""``min_liquidation_distance``: the liquidation price stays far enough from the mark.

Practice (docs/trading-risk.md, rule 3): know your leverage — at 20× a ~5 % adverse
move liquidates isolated margin. Require a minimum distance ``s·(mark − LP)/mark`` in
percent of the mark (``minPct``) and/or in multiples of the symbol's ATR% (``atrMultiple``,
so that ordinary noise cannot liquidate: 3 × ATR is a common floor). When both are set,
both must hold (the larger distance applies).

ATR% comes from ``ctx.market(symbol, "atrPct")``: the snapshot's ``markets[symbol].atrPct``
or the built-in enrichment from candles (14-period Wilder ATR). A symbol without ATR data
gets a warning (``LIQUIDATION_DISTANCE_ATR_MISSING``), never a silent pass.

The liquidation price is riskguard's own (exchange model) or, with ``liquidationSource:
conservative`` (default), the one nearer the mark of that and the exchange's figure.
A position that cannot be liquidated at any positive price passes.

Actions: an isolated position gets ``add_isolated_margin`` with the amount that moves its
liquidation price to the required distance; a cross position gets ``reduce_position``
with the contracts to shed (both searched on the margin model: :mod:`._search`). Pre-trade, an
order that would leave its position too close is denied (its size hardly moves an isolated
position's liquidation price, so there is no resize).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.margin.base import MarginModel, tier_at
from riskguard.margin.metrics import PositionMetrics, _fast_solver
from riskguard.model.snapshot import LeverageTier, Position
from riskguard.rules._search import boundary
from riskguard.rules.base import (
    BaseRule,
    RuleSpec,
    RuleType,
    hedge_minor_leg,
    judged_liquidation_price,
    rule_types_hook,
)

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "minPct": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "default": 10,
            "description": "smallest distance from mark to liquidation, in percent of the mark (0: off)",
        },
        "atrMultiple": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "smallest distance in multiples of the symbol's ATR% (off when absent)",
        },
        "liquidationSource": {
            "enum": ["model", "exchange", "conservative"],
            "default": "conservative",
            "description": "which liquidation price to judge: riskguard's model, the exchange's "
            "figure (model when absent), or whichever is nearer the mark",
        },
    },
}

CODES = {
    "LIQUIDATION_DISTANCE_BELOW_MIN_PCT": "the liquidation price is nearer the mark than `minPct` %",
    "LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE": "the liquidation price is nearer the mark than "
    "`atrMultiple` × ATR%",
    "LIQUIDATION_DISTANCE_ATR_MISSING": "`atrMultiple` is set but the symbol has no ATR data "
    "(no atrPct, no candles): the ATR test could not run",
}


_SLACK = 1e-10  # relative: far below any exchange's precision, above float rounding


def _closed_form_applies(model: MarginModel, pos: Position) -> bool:
    """Both closed forms below hold only on the shared linear solver: a linear contract, mark
    basis, notional tiers with a maintenance deduction."""
    return (
        not pos.inverse
        and model.mmBasis == "mark"
        and model.tierUnit == "notional"
        and model.mmDeduction
        and _fast_solver(model)
    )


def _isolated_margin_closed_form(
    model: MarginModel,
    pos: Position,
    tiers: tuple[LeverageTier, ...],
    mark: float,
    wallet: float,
    need: float,
) -> float | None:
    """The isolated margin to add so the liquidation price sits ``need`` % from the mark,
    solved in closed form where the model is the shared linear solver (mark basis, notional
    tiers with a deduction, linear contract): the required price P* = mark·(1 − s·need/100)
    lies in one tier t, and ``LP(W) = (W + cum_t − s·Q·EP) / (Q·(MMR_t + f) − s·Q)`` gives
    ``W* = P*·(Q·(MMR_t + f) − s·Q) − cum_t + s·Q·EP``. None where that does not apply (the
    caller searches, and checks the closed form's answer against the model either way)."""
    if not tiers or not _closed_form_applies(model, pos):
        return None
    s = pos.sign
    target = mark * (1.0 - s * need / 100.0)
    if not target > 0:
        return None
    q = pos.size
    tier = tier_at(tiers, q * target)
    den = q * (tier.maintenanceMarginRate + model.closeFeeRate) - s * q
    w = target * den - tier.maintenanceAmount + s * q * pos.entryPrice
    amount = w - wallet
    if not amount > 0 or not math.isfinite(amount):
        return None  # nothing to add by the model: the caller's search says why
    return amount * (1.0 + _SLACK) + _SLACK * abs(wallet)  # a hair inside, as the search


def _cross_keep_closed_form(
    model: MarginModel,
    pos: Position,
    tiers: tuple[LeverageTier, ...],
    mark: float,
    wallet: float,
    t1: float,
    u1: float,
    need: float,
) -> float | None:
    """The contracts a cross position may keep so its liquidation price (others held at
    mark) sits ``need`` % from the mark, in closed form on the shared linear solver: with
    P* = mark·(1 − s·need/100) and c contracts of size cs in tier t,
    ``P* = (WB − T1 + U1 + cum_t − s·c·cs·EP) / (c·cs·(MMR_t + f) − s·c·cs)`` gives
    ``c = (WB − T1 + U1 + cum_t) / (cs·(P*·(MMR_t + f − s) + s·EP))``, taken in the tier
    its notional c·cs·P* falls in. None where that does not apply (the caller searches)."""
    if not _closed_form_applies(model, pos):
        return None
    s = pos.sign
    target = mark * (1.0 - s * need / 100.0)
    if not target > 0:
        return None
    default = model.default_tier()
    table: tuple[LeverageTier, ...] = tiers or ((default,) if default is not None else ())
    if not table:
        return None
    cs = pos.contractSize
    fee = model.closeFeeRate
    for t in table:
        den = cs * (target * (t.maintenanceMarginRate + fee - s) + s * pos.entryPrice)
        if den == 0:
            continue
        c = (wallet - t1 + u1 + t.maintenanceAmount) / den
        if c > 0 and math.isfinite(c) and (not tiers or tier_at(tiers, c * cs * target) is t):
            # a hair inside the boundary, as the search's answer is: the exact root can
            # read a rounding error short when the pool is summed in another order
            return c * (1.0 - _SLACK)
    return None


def _distance(lp: float, mark: float, side: str) -> float:
    """``s·(mark − LP)/mark`` in percent: positive on the safe side."""
    return (mark - lp) / mark * 100.0 if side == "long" else (lp - mark) / mark * 100.0


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    if not params["minPct"] and params.get("atrMultiple") is None:
        return [("minPct", "minPct is 0 and atrMultiple is not set: the rule can never fire")]
    return []


class MinLiquidationDistance(BaseRule):
    __slots__ = ("atr_mult", "min_pct", "source")
    default_actions = ("add_isolated_margin", "reduce_position", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.min_pct = p["minPct"]
        self.atr_mult = p.get("atrMultiple")
        self.source = p["liquidationSource"]

    def _lp(self, pm: PositionMetrics) -> float | None:
        return judged_liquidation_price(pm, self.source)

    def evaluate(self, ctx: EvalContext) -> None:
        trace = ctx.trace is not None
        pool: list[
            tuple[float, float]
        ] = []  # the cross pool's sums, once for every position that needs them
        every = self.match.everything
        for pos, pm in zip(ctx.snapshot.positions, ctx.metrics.positions, strict=True):
            if not every and not self.match.position(pm):
                continue
            sym = pm.symbol
            need = self.min_pct
            atr = None
            if self.atr_mult is not None:
                atr = ctx.market(sym, "atrPct")
                # Without a liquidation price there is no distance to judge: no ATR needed.
                if atr is None and self._lp(pm) is not None:
                    self.violate(
                        ctx,
                        "LIQUIDATION_DISTANCE_ATR_MISSING",
                        f"{sym}: no ATR data (markets.atrPct or candles); only the "
                        f"{self.min_pct:g}% floor was checked",
                        symbol=sym,
                        severity="warning",
                    )
                elif atr is not None:
                    need = max(need, self.atr_mult * atr)
            # hedge mode: the smaller cross leg's shared liquidation lies where it gains;
            # the symbol is judged through its larger leg
            lp = None if hedge_minor_leg(ctx, pm) else self._lp(pm)
            mark = pm.markPrice
            dist = None if lp is None else _distance(lp, mark, pm.side)
            if trace:
                self.note(
                    ctx,
                    f"{sym}: "
                    + (
                        "no liquidation price (cannot be liquidated at a positive price)"
                        if lp is None
                        else f"liquidation {lp:.6g} is {dist:.3g}% from mark {mark:.6g}; "
                        f"required {need:.3g}%"
                        + (
                            f" (max of {self.min_pct:g}% and {self.atr_mult:g} × ATR {atr:.3g}%)"
                            if atr is not None
                            else ""
                        )
                    ),
                    symbol=sym,
                    passed=lp is None or dist >= need,
                    liquidationPrice=lp,
                    distancePct=dist,
                    requiredPct=need,
                    atrPct=atr,
                    markPrice=mark,
                )
            if lp is None or dist >= need:
                continue
            if self.min_pct and dist < self.min_pct:
                self.violate(
                    ctx,
                    "LIQUIDATION_DISTANCE_BELOW_MIN_PCT",
                    f"{sym}: liquidation {lp:.6g} is {dist:.3g}% from the mark {mark:.6g}, "
                    f"nearer than {self.min_pct:g}%",
                    symbol=sym,
                    observed=dist,
                    limit=self.min_pct,
                    liquidationPrice=lp,
                    markPrice=mark,
                )
            if atr is not None and dist < self.atr_mult * atr:
                self.violate(
                    ctx,
                    "LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE",
                    f"{sym}: liquidation {lp:.6g} is {dist:.3g}% from the mark, less than "
                    f"{self.atr_mult:g} × ATR ({atr:.3g}%) = {self.atr_mult * atr:.3g}%",
                    symbol=sym,
                    observed=dist,
                    limit=self.atr_mult * atr,
                    atrPct=atr,
                    atrMultiple=self.atr_mult,
                    liquidationPrice=lp,
                )
            order = ctx.order
            if order is not None and order.symbol == sym:
                continue  # the order's own position: the order is denied, no position action
            self._propose(ctx, pos, pm, need, pool)

    # ------------------------------------------------------------- actions

    @staticmethod
    def _pool(ctx: EvalContext, memo: list[tuple[float, float]]) -> tuple[float, float]:
        """Σ maintenance margin and Σ uPnL of the cross positions, summed once per evaluation
        (``memo`` lives for one ``evaluate``) — not once per violating position."""
        if not memo:
            cross = [
                p
                for p in ctx.metrics.positions
                if p.marginMode == "cross" and p.maintenanceMargin is not None
            ]
            # where the exchange counts the fee to close in the trigger, the other cross
            # positions' fees weigh on the pool like their maintenance margin (as in metrics)
            fee = ctx.model.closeFeeRate
            memo.append(
                (
                    sum([(p.maintenanceMargin or 0.0) + fee * p.notional for p in cross]),
                    sum([p.unrealizedPnl for p in cross]),
                )
            )
        return memo[0]

    def _propose(
        self,
        ctx: EvalContext,
        pos: Position,
        pm: PositionMetrics,
        need: float,
        pool: list[tuple[float, float]],
    ) -> None:
        model = ctx.model
        tiers = ctx.snapshot.leverageTiers.get(pos.symbol, ())
        mark = pm.markPrice
        if pos.marginMode == "isolated":
            if "add_isolated_margin" not in self.actions:
                return
            wallet = pos.isolatedMargin or 0.0
            side = pos.side

            def margin_w(w: float) -> float:  # distance beyond the requirement (≥ 0: ok)
                lp = model.liquidation_price(pos, tiers, mark, wallet + w)
                return math.inf if lp is None else _distance(lp, mark, side) - need

            exact = _isolated_margin_closed_form(model, pos, tiers, mark, wallet, need)
            if exact is not None and margin_w(exact) >= 0:
                self.act(
                    ctx,
                    "add_isolated_margin",
                    symbol=pos.symbol,
                    leg=pos.side,
                    amount=exact,
                    note=f"moves the liquidation price {need:.3g}% from the mark",
                )
                return
            hi = max(wallet, pm.notional, 1e-9)
            for _ in range(64):
                f_hi = margin_w(hi)
                if f_hi >= 0:
                    break
                hi *= 2
            else:
                return
            f0 = margin_w(0.0)  # ≥ 0 when only the exchange's figure was too near
            hi = boundary(
                margin_w, hi, 0.0, f_hi, f0 if f0 < 0 else None, abs_tol=1e-9, rel_tol=1e-9
            )
            self.act(
                ctx,
                "add_isolated_margin",
                symbol=pos.symbol,
                leg=pos.side,
                amount=hi,
                note=f"moves the liquidation price {need:.3g}% from the mark",
            )
            return
        if "reduce_position" not in self.actions:
            return
        # cross: shed contracts until the position's own liquidation price is far enough
        pool_mm, pool_u = self._pool(ctx, pool)
        others_mm = pool_mm - (pm.maintenanceMargin or 0.0) - ctx.model.closeFeeRate * pm.notional
        others_u = pool_u - pm.unrealizedPnl
        wallet = ctx.metrics.crossWalletBalance

        def margin_c(c: float) -> float:  # distance beyond the requirement (≥ 0: ok)
            if c <= 0:
                return math.inf
            p2 = replace(pos, contracts=c)
            lp = model.liquidation_price(p2, tiers, mark, wallet, others_mm, others_u)
            return math.inf if lp is None else _distance(lp, mark, pos.side) - need

        n = pos.contracts
        lo = _cross_keep_closed_form(model, pos, tiers, mark, wallet, others_mm, others_u, need)
        if lo is None or not 0 < lo < n or margin_c(lo) < 0:
            lo = boundary(margin_c, 0.0, n, math.inf, margin_c(n), abs_tol=1e-9 * n)
        self.act(
            ctx,
            "reduce_position",
            symbol=pos.symbol,
            leg=pos.side,
            amount=n - lo,
            note=f"leaves the liquidation price {need:.3g}% from the mark (others held at mark)",
        )


RULE_TYPE = RuleType(
    name="min_liquidation_distance",
    params=PARAMS,
    compile=MinLiquidationDistance,
    description="the liquidation price is at least `minPct` % and/or `atrMultiple` × ATR% away "
    "from the mark; proposes the isolated margin to add or the contracts to shed.",
    codes=CODES,
    defaultActions=("add_isolated_margin", "reduce_position", "alert"),
    check=_check,
    example="""- id: min-liquidation-distance
  type: min_liquidation_distance
  params: {minPct: 10, atrMultiple: 3}""",
    limitKeys=("minPct", "atrMultiple"),
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
