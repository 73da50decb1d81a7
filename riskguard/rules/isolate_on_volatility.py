"""``isolate_on_volatility``: in extreme volatility, cross positions move to isolated.

Practice (docs/trading-risk.md, rule 5, phase 3): around major news, macro
announcements, flash crashes or ATR spikes, move active positions back to isolated so a
wick against one position consumes only its own margin instead of cascading through the
cross pool.

Triggers, any of: ATR% (Wilder, from the snapshot's candles or its ``atrPct``) above
``atrPctAbove``; realized volatility above ``realizedVolPctAbove``; the snapshot time
inside a scheduled event window. Each cross position gets a ``switch_margin_mode``
action with the isolated margin to allocate (its current initial margin, or more with
``marginMultiplier``) and ``feasible``/``reason`` from the exchange model — Binance, for
one, refuses the switch while the position is open (-4048), and the action then says
what can be done instead.
"""

from __future__ import annotations

from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.model.snapshot import parse_timestamp
from riskguard.model.volatility import atr_pct, realized_vol_pct
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook

EVENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "reason": {"type": "string"},
        "start": {"type": "string", "description": "ISO-8601 start of the window"},
        "end": {"type": "string", "description": "ISO-8601 end of the window"},
        "at": {
            "type": "string",
            "description": "ISO-8601 time of the event (with before/after minutes)",
        },
        "beforeMinutes": {"type": "number", "minimum": 0, "default": 30},
        "afterMinutes": {"type": "number", "minimum": 0, "default": 60},
        "symbols": {"type": "array", "items": {"type": "string"}},
    },
    "oneOf": [{"required": ["start", "end"]}, {"required": ["at"]}],
}

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "atrPctAbove": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 5.0,
            "description": "ATR as % of price above which a symbol counts as extremely volatile",
        },
        "atrPeriod": {"type": "integer", "minimum": 1, "maximum": 500, "default": 14},
        "realizedVolPctAbove": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "std-dev of log returns per candle, in %, above which to isolate",
        },
        "realizedVolWindow": {"type": "integer", "minimum": 2, "maximum": 5000, "default": 20},
        "events": {
            "type": "array",
            "items": EVENT,
            "default": [],
            "description": "scheduled windows (FOMC, CPI, listings…) during which to run isolated",
        },
        "marginMultiplier": {
            "type": "number",
            "minimum": 1,
            "default": 1.0,
            "description": "isolated margin to allocate = initial margin × this",
        },
    },
}

CODES = {
    "VOLATILITY_ATR_ABOVE_THRESHOLD": "ATR% of the symbol is above `atrPctAbove` while it is held in cross",
    "VOLATILITY_REALIZED_ABOVE_THRESHOLD": "realized volatility is above `realizedVolPctAbove` while held in cross",
    "VOLATILITY_EVENT_WINDOW": "a scheduled event window is open while the position is held in cross",
}


def _ms(value: Any) -> int:
    t = parse_timestamp(value)
    if t is None:
        raise ValueError(f"not a time: {value!r}")
    return t


def _window(ev: dict[Any, Any]) -> tuple[int, int]:
    if "at" in ev:
        at = _ms(ev["at"])
        return at - int(ev.get("beforeMinutes", 30) * 60_000), at + int(
            ev.get("afterMinutes", 60) * 60_000
        )
    return _ms(ev["start"]), _ms(ev["end"])


def check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    out = []
    for i, ev in enumerate(params.get("events", [])):
        try:
            lo, hi = _window(ev)
        except (ValueError, TypeError, KeyError) as exc:
            out.append((f"events.{i}", f"bad event time: {exc}"))
            continue
        if hi < lo:
            out.append((f"events.{i}", f"event {ev.get('name')!r} ends before it starts"))
    return out


class IsolateOnVolatility(BaseRule):
    __slots__ = ("all", "atr_above", "events", "mult", "period", "rv_above", "rv_window")
    default_actions = ("switch_margin_mode", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.atr_above = p["atrPctAbove"]
        self.period = p["atrPeriod"]
        self.rv_above = p.get("realizedVolPctAbove")
        self.rv_window = p["realizedVolWindow"]
        self.mult = p["marginMultiplier"]
        self.all = spec.match.everything  # hot path: skip per-position glob matching
        self.events = tuple(
            (ev["name"], ev.get("reason", ev["name"]), *_window(ev), tuple(ev.get("symbols", ())))
            for ev in p["events"]
        )

    def _atr(self, ctx: EvalContext, symbol: str) -> float | None:
        m = ctx.snapshot.markets.get(symbol)
        if m is not None and m.atrPct is not None:
            return m.atrPct
        if m is not None and m.candles and self.period != 14:
            return atr_pct(m.candles, self.period)
        atr: float | None = ctx.market(symbol, "atrPct")
        return atr

    def _rv(self, ctx: EvalContext, symbol: str) -> float | None:
        m = ctx.snapshot.markets.get(symbol)
        if m is not None and m.candles and self.rv_window != 20:
            return realized_vol_pct(m.candles, self.rv_window)
        rv: float | None = ctx.market(symbol, "realizedVolPct")
        return rv

    def evaluate(self, ctx: EvalContext) -> None:
        now = ctx.snapshot.timestamp if ctx.snapshot.timestamp is not None else ctx.now_ms
        open_events = [ev for ev in self.events if ev[2] <= now <= ev[3]]
        trace = ctx.trace is not None
        if trace:
            for ev in self.events:
                self.note(
                    ctx,
                    f"event {ev[0]!r} window {'OPEN' if ev in open_events else 'closed'}",
                    passed=ev not in open_events,
                    event=ev[0],
                )
        model = ctx.model
        for pm in ctx.metrics.positions:
            if pm.marginMode != "cross" or (not self.all and not self.match.position(pm)):
                continue
            sym = pm.symbol
            triggers: list[tuple[str, str, float | None, float | None, dict[Any, Any]]] = []
            atr: float | None = self._atr(ctx, sym)
            if atr is not None and atr > self.atr_above:
                triggers.append(
                    (
                        "VOLATILITY_ATR_ABOVE_THRESHOLD",
                        f"ATR {atr:.2f}% above {self.atr_above:g}%",
                        atr,
                        self.atr_above,
                        {},
                    )
                )
            if self.rv_above is not None:
                rv = self._rv(ctx, sym)
                if rv is not None and rv > self.rv_above:
                    triggers.append(
                        (
                            "VOLATILITY_REALIZED_ABOVE_THRESHOLD",
                            f"realized volatility {rv:.2f}% above {self.rv_above:g}%",
                            rv,
                            self.rv_above,
                            {},
                        )
                    )
            for name, reason, _lo, _hi, syms in open_events:
                if not syms or any(s == sym for s in syms):
                    triggers.append(
                        (
                            "VOLATILITY_EVENT_WINDOW",
                            f"event window {name!r} open ({reason})",
                            None,
                            None,
                            {"event": name, "reason": reason},
                        )
                    )
            if trace:
                self.note(
                    ctx,
                    f"{sym} (cross): ATR% {atr if atr is None else round(atr, 3)} vs "
                    f"{self.atr_above:g}",
                    symbol=sym,
                    passed=not triggers,
                    atrPct=atr,
                )
            if not triggers:
                continue
            has_orders = any(o.symbol == sym for o in ctx.snapshot.openOrders)
            feas = model.switch_feasibility(
                "isolated", True, has_orders, multi_collateral=bool(ctx.snapshot.balances)
            )
            iso = pm.initialMargin * self.mult
            for code, why, obs, lim, extra in triggers:
                self.violate(
                    ctx,
                    code,
                    f"{sym}: {why}; cross position should be isolated",
                    symbol=sym,
                    observed=obs,
                    limit=lim,
                    **extra,
                )
            self.act(
                ctx,
                "switch_margin_mode",
                symbol=sym,
                leg=pm.side,
                to="isolated",
                isolatedMargin=iso,
                feasible=feas.feasible,
                reason=feas.reason,
                **({"exchangeCode": feas.code} if feas.code else {}),
                **(
                    {}
                    if feas.feasible
                    else {
                        "alternative": "keep a stop-loss before the liquidation price and reduce the "
                        "position; reopen it isolated after the volatility passes"
                    }
                ),
            )


def _compile(spec: RuleSpec) -> IsolateOnVolatility:
    return IsolateOnVolatility(spec)


RULE_TYPE = RuleType(
    name="isolate_on_volatility",
    params=PARAMS,
    compile=_compile,
    description="during ATR spikes, high realized volatility or scheduled event windows, cross "
    "positions should move to isolated; says where the exchange refuses the switch.",
    codes=CODES,
    defaultActions=("switch_margin_mode", "alert"),
    check=check,
    example="""- id: isolate-on-volatility
  type: isolate_on_volatility
  params:
    atrPctAbove: 5
    events:
      - {name: FOMC, at: "2026-12-16T19:00:00Z", beforeMinutes: 60, afterMinutes: 120}
  severity: warning""",
    limitKeys=("atrPctAbove",),
    marginModes=("cross",),  # only cross positions are moved to isolated
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
