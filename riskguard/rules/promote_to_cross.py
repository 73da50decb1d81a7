"""``promote_to_cross``: an over-margined isolated winner may join the cross pool (advisory).

Practice (docs/trading-risk.md, rule 5, phase 2): once an isolated position's profit
far exceeds its maintenance margin, moving it to cross lends that profit to the other
positions, pushing their liquidation prices away. Only when markets are calm: with a
volatility trigger active (ATR% above ``atrPctAbove``, realized volatility above
``realizedVolPctAbove``, or a scheduled event window open — the same triggers as
``isolate_on_volatility``; use the same numbers) the position stays isolated.

Eligible: isolated, ``uPnL > profitMultiple × maintenance margin``, no trigger. The
finding is advisory — severity ``advisorySeverity`` (``info`` by default; the policy's
``severity`` field is ignored because riskguard fills it with ``error`` when absent and a
rule type cannot declare its own default) — and comes with a ``switch_margin_mode`` action
to cross carrying:

- ``feasible``/``reason`` from the exchange model (Binance refuses while the position is
  open: the action then proposes what is possible);
- ``effect``: every cross position's liquidation price before → after, recomputed with the
  margin model (``ctx.model.liquidation_price``): the position's isolated margin returns
  to the cross wallet and its uPnL and maintenance margin join the pool;
- ``liquidationPriceAfter`` of the promoted position itself, now backed by the pool.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.margin.base import MarginModel, tier_at
from riskguard.margin.metrics import PositionMetrics, _fast_solver, _lp_linear_mark
from riskguard.model.snapshot import Position
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook
from riskguard.rules.isolate_on_volatility import EVENT, _window
from riskguard.rules.isolate_on_volatility import check as _events_check

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "profitMultiple": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 3,
            "description": "eligible when unrealized profit exceeds this many × the position's "
            "maintenance margin",
        },
        "atrPctAbove": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 5.0,
            "description": "volatility trigger: ATR% above this keeps the position isolated",
        },
        "realizedVolPctAbove": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "volatility trigger: realized volatility (% per candle) above this",
        },
        "events": {
            "type": "array",
            "items": EVENT,
            "default": [],
            "description": "scheduled event windows during which nothing is promoted",
        },
        "advisorySeverity": {
            "enum": ["info", "warning"],
            "default": "info",
            "description": "severity of the advice (it never blocks)",
        },
    },
}

CODES = {
    "PROMOTE_TO_CROSS_ELIGIBLE": "an isolated position's profit exceeds `profitMultiple` × its "
    "maintenance margin and no volatility trigger is active: it may join the cross pool (advice)",
}


#: a cross position and what every winner's solve shares: tiers and the mark's tier
#: (None: the model's own solver)
_Cross = tuple[Position, PositionMetrics, tuple[Any, ...], Any]
# (cross positions, Σ their MM, Σ their uPnL, symbols with open orders, fast solver, solve?)
_Pool = tuple[list[_Cross], float, float, set[str], bool, bool]


def _finite_or_none(x: float | None) -> float | None:
    """A liquidation price made from extreme inputs (denormal prices: 1/mark overflows)
    can be NaN or infinite; it is reported as none where it is made."""
    return x if x is None or math.isfinite(x) else None


def _liquidation_price(
    model: MarginModel,
    fast: bool,
    pos: Position,
    tiers: tuple[Any, ...],
    mark: float,
    wallet: float,
    others_mm: float,
    others_upnl: float,
) -> float | None:
    """``model.liquidation_price``; through the metrics' hot path (the same primitives in
    the same order, starting from the mark's tier) where the model is the shared linear
    solver, as ``compute_metrics`` does."""
    if fast and tiers and not pos.inverse:
        start = tier_at(tiers, pos.contracts * pos.contractSize * mark)
        return _lp_linear_mark(model, pos, tiers, start, mark, wallet, others_mm, others_upnl)
    return model.liquidation_price(pos, tiers, mark, wallet, others_mm, others_upnl)


class PromoteToCross(BaseRule):
    __slots__ = ("_feasible", "atr_above", "events", "k", "rv_above", "sev")
    default_actions = ("switch_margin_mode",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.k = p["profitMultiple"]
        self.atr_above = p["atrPctAbove"]
        self.rv_above = p.get("realizedVolPctAbove")
        self.events = tuple(
            (ev["name"], *_window(ev), tuple(ev.get("symbols", ()))) for ev in p["events"]
        )
        self.sev = p["advisorySeverity"]
        self._feasible: dict[tuple[int, bool], tuple[MarginModel, Any]] = {}

    def _trigger(self, ctx: EvalContext, symbol: str, now: int) -> str | None:
        atr = ctx.market(symbol, "atrPct")
        if atr is not None and atr > self.atr_above:
            return f"ATR {atr:.3g}% above {self.atr_above:g}%"
        if self.rv_above is not None:
            rv = ctx.market(symbol, "realizedVolPct")
            if rv is not None and rv > self.rv_above:
                return f"realized volatility {rv:.3g}% above {self.rv_above:g}%"
        for name, lo, hi, syms in self.events:
            if lo <= now <= hi and (not syms or symbol in syms):
                return f"event window {name!r} open"
        return None

    def evaluate(self, ctx: EvalContext) -> None:
        snap = ctx.snapshot
        metrics = ctx.metrics
        now = snap.timestamp if snap.timestamp is not None else ctx.now_ms
        trace = ctx.trace is not None
        pool: _Pool | None = None
        every = self.match.everything
        for pos, pm in zip(snap.positions, metrics.positions, strict=True):
            if pm.marginMode != "isolated" or (not every and not self.match.position(pm)):
                continue
            mm = pm.maintenanceMargin
            if mm is None:
                continue
            profit = pm.unrealizedPnl
            over = profit > self.k * mm
            trigger = self._trigger(ctx, pm.symbol, now) if over else None
            if trace:
                self.note(
                    ctx,
                    f"{pm.symbol}: profit {profit:,.2f} vs {self.k:g} × maintenance {mm:,.2f}"
                    + (f"; kept isolated: {trigger}" if trigger else ""),
                    symbol=pm.symbol,
                    passed=True,
                    unrealizedPnl=profit,
                    maintenanceMargin=mm,
                    profitMultiple=self.k,
                    trigger=trigger,
                )
            if not over or trigger is not None:
                continue
            if pool is None:  # the cross pool, summed once per evaluation
                pool = self._pool(ctx)
            self._advise(ctx, pos, pm, profit, mm, pool)

    def _pool(self, ctx: EvalContext) -> _Pool:
        """What every eligible winner's advice shares: the cross positions (with their
        tiers and the mark's tier, when the previews are solved), their summed maintenance
        margin and uPnL, the symbols with open orders, whether the figures are solved."""
        snap = ctx.snapshot
        model = ctx.model
        fast = _fast_solver(model)
        # Without previews the figures are not reported — but a model other than the shared
        # linear solver (a plugin's) still computes them, so a model that raises there fails
        # the decision closed exactly as with previews.
        solve = ctx.previews or not fast
        cross: list[_Cross] = []
        for p, m in zip(snap.positions, ctx.metrics.positions, strict=True):
            if p.marginMode != "cross" or m.maintenanceMargin is None:
                continue
            tiers = snap.leverageTiers.get(p.symbol, ())
            start = None
            if solve and fast and tiers and not p.inverse:
                start = tier_at(tiers, p.contracts * p.contractSize * m.markPrice)
            cross.append((p, m, tiers, start))
        # sum(), not a running +=: Python 3.12+ sums floats with compensation; of a list,
        # not a generator, which mypyc would compile to a running += (docs/performance.md)
        cross_mm = sum([c[1].maintenanceMargin or 0.0 for c in cross])
        cross_u = sum([c[1].unrealizedPnl for c in cross])
        ordered = {o.symbol for o in ctx.before.openOrders}
        return cross, cross_mm, cross_u, ordered, fast, solve

    def _feasibility(self, model: MarginModel, has_orders: bool) -> Any:
        """The model's answer to "switch an open position to cross" — a pure function of
        the model's capability facts, asked once per model rather than per finding (keyed
        by identity: the entry holds its model, so the id cannot be reused meanwhile)."""
        key = (id(model), has_orders)
        hit = self._feasible.get(key)
        if hit is not None and hit[0] is model:
            return hit[1]
        if len(self._feasible) > 32:  # models rebuilt per account (fee rates): stay small
            self._feasible.clear()
        feas = model.switch_feasibility("cross", True, has_orders)
        self._feasible[key] = (model, feas)
        return feas

    def _advise(
        self,
        ctx: EvalContext,
        pos: Position,
        pm: PositionMetrics,
        profit: float,
        mm: float,
        pool: _Pool,
    ) -> None:
        cross, cross_mm, cross_u, ordered, fast, solve = pool
        model = ctx.model
        iso = pos.isolatedMargin or 0.0
        wallet_after = ctx.metrics.crossWalletBalance + iso
        pool_mm = cross_mm + mm
        pool_u = cross_u + profit
        effect = []
        lp_after = None
        if solve:
            for p, m, tiers, start in cross:
                t1 = pool_mm - (m.maintenanceMargin or 0.0)
                u1 = pool_u - m.unrealizedPnl
                if start is not None:  # the metrics' solver, from the mark's tier found once
                    after = _lp_linear_mark(
                        model, p, tiers, start, m.markPrice, wallet_after, t1, u1
                    )
                else:
                    after = model.liquidation_price(p, tiers, m.markPrice, wallet_after, t1, u1)
                effect.append(
                    {
                        "symbol": p.symbol,
                        "liquidationPriceBefore": m.liquidationPrice,
                        "liquidationPriceAfter": _finite_or_none(after),
                    }
                )
            promoted = pos if fast else replace(pos, marginMode="cross", isolatedMargin=None)
            lp_after = _liquidation_price(
                model,
                fast,
                promoted,
                ctx.snapshot.leverageTiers.get(pos.symbol, ()),
                pm.markPrice,
                wallet_after,
                pool_mm - mm,
                pool_u - profit,
            )
        feas = self._feasibility(model, pos.symbol in ordered)
        self.violate(
            ctx,
            "PROMOTE_TO_CROSS_ELIGIBLE",
            f"{pm.symbol}: profit {profit:,.2f} is {profit / mm:.3g}× its maintenance margin "
            f"{mm:,.2f}; moving it to cross would lend it to {len(cross)} cross position(s)"
            + ("" if feas.feasible else f" — {feas.reason}"),
            symbol=pm.symbol,
            observed=profit / mm if mm > 0 else None,
            limit=self.k,
            severity=self.sev,
            unrealizedPnl=profit,
            maintenanceMargin=mm,
        )
        params: dict[Any, Any] = {
            "to": "cross",
            "feasible": feas.feasible,
            "reason": feas.reason,
            "liquidationPriceBefore": pm.liquidationPrice,
        }
        if ctx.previews:  # the what-if figures (left out when only the decision is read)
            params["liquidationPriceAfter"] = _finite_or_none(lp_after)
            params["crossWalletAfter"] = wallet_after
            params["effect"] = effect
        else:
            params["crossWalletAfter"] = wallet_after
        if feas.code:
            params["exchangeCode"] = feas.code
        if not feas.feasible:
            params["alternative"] = (
                "take the profit (close or reduce) and reopen in cross, or keep it isolated and "
                "trail the stop"
            )
        self.act(ctx, "switch_margin_mode", symbol=pm.symbol, leg=pm.side, **params)


RULE_TYPE = RuleType(
    name="promote_to_cross",
    params=PARAMS,
    compile=PromoteToCross,
    description="advice: an isolated winner whose profit exceeds k × its maintenance margin, "
    "with no volatility trigger, may join the cross pool; shows every cross position's new "
    "liquidation price.",
    codes=CODES,
    defaultActions=("switch_margin_mode",),
    check=_events_check,
    example="""- id: promote-to-cross
  type: promote_to_cross
  params: {profitMultiple: 3, atrPctAbove: 5}""",
    limitKeys=("profitMultiple",),
    marginModes=("isolated",),  # only isolated winners can be promoted
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
