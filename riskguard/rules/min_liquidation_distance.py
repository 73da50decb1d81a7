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
from riskguard.hookspecs import hookimpl
from riskguard.margin.metrics import PositionMetrics
from riskguard.model.snapshot import Position
from riskguard.rules._search import boundary
from riskguard.rules.base import (
    BaseRule,
    RuleSpec,
    RuleType,
    hedge_minor_leg,
    judged_liquidation_price,
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
        for pos, pm in zip(ctx.snapshot.positions, ctx.metrics.positions, strict=True):
            if not self.match.position(pm):
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
            self._propose(ctx, pos, pm, need)

    # ------------------------------------------------------------- actions

    def _propose(self, ctx: EvalContext, pos: Position, pm: PositionMetrics, need: float) -> None:
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
        cross = [
            p
            for p in ctx.metrics.positions
            if p.marginMode == "cross" and p.maintenanceMargin is not None
        ]
        others_mm = sum(p.maintenanceMargin or 0.0 for p in cross) - (pm.maintenanceMargin or 0.0)
        others_u = sum(p.unrealizedPnl for p in cross) - pm.unrealizedPnl
        wallet = ctx.metrics.crossWalletBalance

        def margin_c(c: float) -> float:  # distance beyond the requirement (≥ 0: ok)
            if c <= 0:
                return math.inf
            p2 = replace(pos, contracts=c)
            lp = model.liquidation_price(p2, tiers, mark, wallet, others_mm, others_u)
            return math.inf if lp is None else _distance(lp, mark, pos.side) - need

        n = pos.contracts
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


@hookimpl
def riskguard_rule_types(register: Any) -> None:
    register(RULE_TYPE)
