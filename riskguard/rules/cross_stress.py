"""``cross_stress``: does the cross pool survive an adverse shock to every position at once?

Practice (docs/trading-risk.md, rule 6): cross hides risk per trade — any trade can
take the whole pool, and in a crash everything moves against you together. So shock
every cross position adversely at the same time (longs down, shorts up) by ``shockPct``
percent, or by ``atrMultiple`` × each symbol's ATR% (when both are set, the larger per
symbol), and require the pool to survive:

    cross wallet + Σ uPnL(shocked) ≥ Σ maintenance margin(shocked) + closing fees

(the cross wallet is walletBalance − Σ isolated margins; maintenance margin is re-tiered
at the shocked notional by the exchange model, as the exchange would). Otherwise the
pool would be liquidated: ``CROSS_STRESS_POOL_LIQUIDATED``.

The **cross cushion** — the smallest uniform adverse shock (same percent for every cross
position) that liquidates the pool — is searched for (:mod:`._search`; the pool's surplus falls
monotonically as the shock grows) and reported in the violation's context and in the
``explain`` notes (solved only then, so a passing check stays cheap); ``None`` when no
shock up to 100 % (longs only) or 1000 % liquidates it.

Pre-trade the projected account is tested; an order that lowers the surplus past zero is
resized to the largest amount that survives (bisection; the engine re-checks it). A
failing pool the order does not make worse is reported as a warning.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.margin.base import MarginModel, tier_at
from riskguard.margin.metrics import _fast_pnl, _fast_solver, apply_order, order_reduces
from riskguard.model.snapshot import Snapshot
from riskguard.rules._search import boundary
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "shockPct": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "default": 10,
            "description": "adverse move applied to every cross position at once, in percent (0: "
            "ATR shocks only)",
        },
        "atrMultiple": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "shock each symbol by this many × its ATR% (the larger of this and "
            "shockPct); off when absent",
        },
    },
}

CODES = {
    "CROSS_STRESS_POOL_LIQUIDATED": "after the adverse shock, cross equity is below the cross "
    "positions' total maintenance margin: the pool would be liquidated",
    "CROSS_STRESS_ATR_MISSING": "`atrMultiple` is set but a cross symbol has no ATR data and "
    "`shockPct` is 0: it was not shocked",
}

_MAX_SHOCK_LONG = 100.0
_MAX_SHOCK = 1000.0


def _legs(snapshot: Snapshot, model: MarginModel) -> list[tuple[Any, ...]]:
    """(position, mark, tiers) of every cross position."""
    out = []
    for p in snapshot.positions:
        if p.marginMode != "cross":
            continue
        mark = snapshot.mark_price(p)
        if mark is None:
            continue
        out.append((p, mark, snapshot.leverageTiers.get(p.symbol, ())))
    return out


def _cross_wallet(snapshot: Snapshot) -> float:
    return snapshot.walletBalance - sum(
        [p.isolatedMargin or 0.0 for p in snapshot.positions if p.marginMode == "isolated"]
    )


def pool_after(
    model: MarginModel, legs: list[tuple[Any, ...]], wallet: float, shocks: list[float]
) -> tuple[float, float]:
    """(cross equity, maintenance margin + closing fees) with each leg shocked by ``shocks[i]`` %."""
    equity = wallet
    need = 0.0
    fee = model.closeFeeRate
    # the base model's arithmetic, inline (the same operations) where it is unchanged
    fast = _fast_pnl(model) and _fast_solver(model)
    amount = model.mmDeduction
    for (pos, mark, tiers), x in zip(legs, shocks, strict=True):
        s = 1 if pos.side == "long" else -1
        m2 = mark * (1.0 - s * x / 100.0)
        if m2 <= mark * 1e-9:
            m2 = mark * 1e-9  # a long shocked by ≥ 100 %: price ~0, not negative
        if fast and tiers and not pos.inverse:
            q = pos.contracts * pos.contractSize
            equity += s * q * (m2 - pos.entryPrice)
            t = tier_at(tiers, q * m2)
            mm = q * m2 * t.maintenanceMarginRate - (t.maintenanceAmount if amount else 0.0)
            if mm < 0.0:
                mm = 0.0
            need += mm + (fee * (q * m2) if fee else 0.0)
            continue
        equity += model.unrealized_pnl(pos, m2)
        mm, tier = model.maintenance_margin(pos, tiers, m2)
        if tier is None:
            return math.nan, math.nan
        need += mm + (fee * model.notional(pos, m2) if fee else 0.0)
    return equity, need


def _pool(
    model: MarginModel,
    snapshot: Any,
    legs: list[tuple[Any, ...]],
    wallet: float,
    shocks: list[float],
) -> tuple[float, float]:
    """:func:`pool_after`, or for hedge-mode and multi-collateral accounts its counterpart
    that moves each symbol once and shocks collateral prices too."""
    if snapshot is not None and (snapshot.balances or snapshot.positionMode == "hedge"):
        from riskguard.margin.accounts import stress_pool

        return stress_pool(model, snapshot, legs, shocks)
    return pool_after(model, legs, wallet, shocks)


def cushion(
    model: MarginModel, legs: list[tuple[Any, ...]], wallet: float, snapshot: Any = None
) -> float | None:
    """Smallest uniform adverse shock (percent) at which the pool's equity meets its maintenance."""
    if not legs:
        return None

    def surplus(u: float) -> float:
        e, n = _pool(model, snapshot, legs, wallet, [u] * len(legs))
        return e - n

    def deficit(u: float) -> float:  # ≥ 0 where the pool is liquidated (a NaN counts)
        s = surplus(u)
        return -s if s == s else math.inf

    d0 = deficit(0.0)
    if d0 >= 0:
        return 0.0
    hi = _MAX_SHOCK if any(p.side == "short" for p, _m, _t in legs) else _MAX_SHOCK_LONG
    d_hi = deficit(hi)
    if d_hi < 0:
        return None
    return boundary(deficit, hi, 0.0, d_hi, d0, abs_tol=1e-9)


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    if not params["shockPct"] and params.get("atrMultiple") is None:
        return [("shockPct", "shockPct is 0 and atrMultiple is not set: nothing is shocked")]
    return []


def _amount(x: float) -> float:
    """A bound the engine can floor: amounts below 1e-12 contracts are 0 (subnormal floats
    would overflow its rounding)."""
    return x if x >= 1e-12 else 0.0


class CrossStress(BaseRule):
    __slots__ = ("_last", "atr_mult", "shock")
    default_actions = ("resize_order", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.shock = float(spec.params["shockPct"])  # a float however the YAML wrote it
        self.atr_mult = spec.params.get("atrMultiple")
        # (ctx, surplus of ctx.snapshot) from the last evaluate: max_amount of the same
        # check reuses it (one tuple, replaced whole: safe when checks run concurrently)
        self._last: tuple[EvalContext, float] | None = None

    def _matched(self, ctx: EvalContext, snapshot: Snapshot) -> list[tuple[Any, ...]]:
        if self.match.everything:
            return _legs(snapshot, ctx.model)
        return [leg for leg in _legs(snapshot, ctx.model) if self.match.position(leg[0])]

    def _shocks(
        self, ctx: EvalContext, legs: list[tuple[Any, ...]]
    ) -> tuple[list[float], list[str]]:
        shocks, missing = [], []
        for pos, _m, _t in legs:
            x = self.shock
            if self.atr_mult is not None:
                atr = ctx.market(pos.symbol, "atrPct")
                if atr is None:
                    missing.append(pos.symbol)
                else:
                    x = max(x, self.atr_mult * atr)
            shocks.append(x)
        return shocks, missing

    def _surplus(self, ctx: EvalContext, snapshot: Snapshot) -> float:
        legs = self._matched(ctx, snapshot)
        shocks, _ = self._shocks(ctx, legs)
        e, n = _pool(ctx.model, snapshot, legs, _cross_wallet(snapshot), shocks)
        return e - n

    def evaluate(self, ctx: EvalContext) -> None:
        model = ctx.model
        legs = self._matched(ctx, ctx.snapshot)
        if not legs:
            self.note(ctx, "no cross positions: nothing to stress", passed=True)
            return
        shocks, missing = self._shocks(ctx, legs)
        for sym in missing:
            if not self.shock:
                self.violate(
                    ctx,
                    "CROSS_STRESS_ATR_MISSING",
                    f"{sym}: no ATR data and shockPct is 0: this position was not shocked",
                    symbol=sym,
                    severity="warning",
                )
        wallet = _cross_wallet(ctx.snapshot)
        equity, need = _pool(model, ctx.snapshot, legs, wallet, shocks)
        self._last = (ctx, equity - need)
        if math.isnan(equity):
            self.note(ctx, "a cross position has no maintenance tier: not stressed", passed=False)
            return  # the engine reports INPUT_TIERS_MISSING
        survives = equity >= need
        # the cushion is a search: solved only when it is reported (a violation or explain)
        cush = (
            cushion(model, legs, wallet, ctx.snapshot)
            if not survives or ctx.trace is not None
            else None
        )
        if ctx.trace is not None:
            shocked = ", ".join(
                f"{p.symbol} {x:.3g}%" for (p, _m, _t), x in zip(legs, shocks, strict=True)
            )
            self.note(
                ctx,
                f"shock {shocked}: cross equity {equity:,.2f} vs maintenance {need:,.2f}; "
                + (
                    "the pool survives any uniform shock"
                    if cush is None
                    else f"cross cushion {cush:.3g}% (the uniform shock that liquidates the pool)"
                ),
                passed=survives,
                crossEquityAfter=equity,
                maintenanceMarginAfter=need,
                crossCushionPct=cush,
                crossWallet=wallet,
            )
        if survives:
            return
        severity = None
        order = ctx.order
        if order is not None:
            before = self._surplus(ctx, ctx.before)
            if order_reduces(ctx.before, order) or equity - need >= before - 1e-9 * max(
                1.0, abs(before)
            ):
                severity = "warning"
        self.violate(
            ctx,
            "CROSS_STRESS_POOL_LIQUIDATED",
            f"an adverse shock of {_describe(shocks)} to every cross position at once leaves cross "
            f"equity {equity:,.2f} below the maintenance margin {need:,.2f}: the pool would be "
            "liquidated; "
            + (
                "it is already at the edge"
                if cush == 0.0
                else f"the cross cushion is {cush:.3g}%"
                if cush is not None
                else "no uniform shock liquidates it"
            ),
            observed=equity,
            limit=need,
            severity=severity,
            shockPct=max(shocks),
            crossEquityAfter=equity,
            maintenanceMarginAfter=need,
            crossCushionPct=cush,
            crossPositions=len(legs),
        )

    def max_amount(self, ctx: EvalContext) -> float | None:
        """Largest amount whose projected pool survives the shock (None: the request does)."""
        order = ctx.order
        if order is None or order_reduces(ctx.before, order):
            return None
        last = self._last
        surplus = last[1] if last is not None and last[0] is ctx else None
        if surplus is None:
            surplus = self._surplus(ctx, ctx.snapshot)
        if surplus >= 0:
            return None
        before = ctx.before

        def ok(a: float) -> bool:
            if a <= 0:
                return self._surplus(ctx, before) >= 0
            return self._surplus(ctx, apply_order(before, replace(order, amount=a))) >= 0

        if not ok(0.0):
            return 0.0
        lo, hi = 0.0, order.amount
        for _ in range(40):
            mid = (lo + hi) / 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-7 * order.amount:
                break
        return _amount(lo)


def _describe(shocks: list[float]) -> str:
    lo, hi = min(shocks), max(shocks)
    return f"{hi:.3g}%" if abs(hi - lo) < 1e-12 else f"{lo:.3g}–{hi:.3g}%"


RULE_TYPE = RuleType(
    name="cross_stress",
    params=PARAMS,
    compile=CrossStress,
    description="shock every cross position adversely at once (percent or × ATR): the pool must "
    "stay above its maintenance margin; reports the cross cushion (the shock that liquidates it).",
    codes=CODES,
    defaultActions=("resize_order", "alert"),
    check=_check,
    example="""- id: cross-stress
  type: cross_stress
  params: {shockPct: 15, atrMultiple: 4}""",
    limitKeys=("shockPct", "atrMultiple"),
    marginModes=("cross",),  # shocks the cross pool
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
