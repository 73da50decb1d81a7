"""``stop_before_liquidation``: every position has a stop-loss that triggers before liquidation.

Practice (docs/trading-risk.md, rule 2): never rely on the exchange's liquidation;
a hard stop must trigger before the liquidation price. The buffer between them follows
freqtrade's ``liquidation_buffer`` (margin-math.md §2.4): the stop must be at least
``bufferFraction`` of the entry→liquidation distance away from the liquidation price,
and (if ``bufferPct`` is set) at least ``bufferPct`` % of the liquidation price; the
larger buffer applies. Long: ``safe = LP + max(bf·|EP − LP|, bp/100·LP)``; short:
``safe = LP − max(…)``. Example (freqtrade docs): entry 10, LP 8, buffer 0.05 → 8.1.

The liquidation price is riskguard's own (exchange model) by default; with
``liquidationSource: conservative`` the exchange's reported figure is used too and
the one nearer the mark wins.
"""

from __future__ import annotations

from riskguard.engine.context import EvalContext
from riskguard.margin.metrics import PositionMetrics
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
        "required": {
            "type": "boolean",
            "default": True,
            "description": "a position without a stop-loss is a violation",
        },
        "bufferFraction": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.05,
            "description": "minimum stop distance from LP as a fraction of |entry − LP|",
        },
        "bufferPct": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "default": 0,
            "description": "minimum stop distance from LP in percent of LP",
        },
        "liquidationSource": {
            "enum": ["model", "exchange", "conservative"],
            "default": "conservative",
            "description": "which liquidation price to judge against",
        },
    },
}

CODES = {
    "STOP_LOSS_MISSING": "the position has no stop-loss",
    "STOP_LOSS_BEYOND_LIQUIDATION": "the stop-loss is at or beyond the liquidation price: liquidation comes first",
    "STOP_LOSS_INSIDE_BUFFER": "the stop-loss is before liquidation but inside the required buffer",
    "LIQUIDATION_BUFFER_BREACHED": "the mark price is already inside the buffer: no stop can still be placed safely",
}


class StopBeforeLiquidation(BaseRule):
    __slots__ = ("all", "bf", "bp", "required", "source")
    default_actions = ("set_stop_loss", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.required = p["required"]
        self.bf: float = p["bufferFraction"]
        self.bp: float = p["bufferPct"]
        self.source = p["liquidationSource"]
        self.all = spec.match.everything  # hot path: skip per-position glob matching

    def _lp(self, pm: PositionMetrics) -> float | None:
        return judged_liquidation_price(pm, self.source)

    def safe_stop(self, side: str, entry: float, lp: float) -> float:
        buf = max(self.bf * abs(entry - lp), self.bp / 100.0 * lp)
        return lp + buf if side == "long" else lp - buf

    def evaluate(self, ctx: EvalContext) -> None:
        trace = ctx.trace is not None
        for pm in ctx.metrics.positions:
            if not self.all and not self.match.position(pm):
                continue
            sym = pm.symbol
            stop = pm.stopLossPrice
            # hedge mode: the smaller cross leg's shared liquidation lies where it gains
            lp = None if hedge_minor_leg(ctx, pm) else self._lp(pm)
            if lp is None:
                if stop is None and self.required:
                    self.violate(
                        ctx,
                        "STOP_LOSS_MISSING",
                        f"{sym}: {pm.side} position has no stop-loss",
                        symbol=sym,
                        side=pm.side,
                        liquidationPrice=None,
                    )
                elif trace:
                    self.note(
                        ctx,
                        f"{sym}: no liquidation price (cannot be liquidated at any positive "
                        "price, or unknown); only the stop requirement applies",
                        symbol=sym,
                        passed=True,
                        stopLossPrice=stop,
                    )
                continue
            safe = self.safe_stop(pm.side, pm.entryPrice, lp)
            long = pm.side == "long"
            mark = pm.markPrice
            if trace:
                self.note(
                    ctx,
                    f"{sym}: stop {stop} vs liquidation {lp:.6g} (safe boundary {safe:.6g}, "
                    f"mark {mark:.6g})",
                    symbol=sym,
                    passed=stop is not None and (stop >= safe if long else stop <= safe),
                    stopLossPrice=stop,
                    liquidationPrice=lp,
                    safeStop=safe,
                    markPrice=mark,
                    entryPrice=pm.entryPrice,
                    bufferFraction=self.bf,
                    bufferPct=self.bp,
                )
            mark_inside = (mark <= safe) if long else (mark >= safe)
            if mark_inside:
                self.violate(
                    ctx,
                    "LIQUIDATION_BUFFER_BREACHED",
                    f"{sym}: mark {mark:.6g} is already inside the buffer before liquidation "
                    f"{lp:.6g} (safe boundary {safe:.6g}); reduce or close the position",
                    symbol=sym,
                    observed=mark,
                    limit=safe,
                    liquidationPrice=lp,
                    severity="critical",
                )
                self.act(
                    ctx,
                    "reduce_position",
                    symbol=sym,
                    leg=pm.side,
                    amount=pm.contracts / 2,
                    reason="mark inside the liquidation buffer",
                )
                continue
            if stop is None:
                if self.required:
                    self.violate(
                        ctx,
                        "STOP_LOSS_MISSING",
                        f"{sym}: {pm.side} position has no stop-loss; liquidation at {lp:.6g}",
                        symbol=sym,
                        limit=safe,
                        liquidationPrice=lp,
                    )
                    self.act(
                        ctx,
                        "set_stop_loss",
                        symbol=sym,
                        leg=pm.side,
                        price=safe,
                        note="furthest safe stop; tighter is better",
                    )
                continue
            beyond = (stop <= lp) if long else (stop >= lp)
            if beyond:
                self.violate(
                    ctx,
                    "STOP_LOSS_BEYOND_LIQUIDATION",
                    f"{sym}: stop {stop:.6g} is at or beyond liquidation {lp:.6g}: "
                    f"the position is liquidated first; move the stop to {safe:.6g} or closer",
                    symbol=sym,
                    observed=stop,
                    limit=safe,
                    liquidationPrice=lp,
                )
                self.act(ctx, "set_stop_loss", symbol=sym, leg=pm.side, price=safe, previous=stop)
            elif (stop < safe) if long else (stop > safe):
                self.violate(
                    ctx,
                    "STOP_LOSS_INSIDE_BUFFER",
                    f"{sym}: stop {stop:.6g} is within the buffer before liquidation {lp:.6g}; "
                    f"the safe boundary is {safe:.6g}",
                    symbol=sym,
                    observed=stop,
                    limit=safe,
                    liquidationPrice=lp,
                )
                self.act(ctx, "set_stop_loss", symbol=sym, leg=pm.side, price=safe, previous=stop)


def _compile(spec: RuleSpec) -> StopBeforeLiquidation:
    return StopBeforeLiquidation(spec)


RULE_TYPE = RuleType(
    name="stop_before_liquidation",
    params=PARAMS,
    compile=_compile,
    description="every position has a stop-loss that triggers before its liquidation price, "
    "with a buffer; proposes the safe stop price.",
    codes=CODES,
    defaultActions=("set_stop_loss", "alert"),
    example="""- id: stop-before-liquidation
  type: stop_before_liquidation
  params: {required: true, bufferFraction: 0.1, bufferPct: 0.5}
  onViolation: [set_stop_loss, alert]""",
    limitKeys=("bufferFraction", "bufferPct", "required"),
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
