"""``drawdown``: daily-loss and peak-to-trough limits that stop trading until a reset.

Practice: prop-desk and freqtrade ``MaxDrawdown`` protection — once the day's loss or the
fall from the equity peak passes a limit, new risk stops until a set time, so a losing
streak cannot compound.

- daily loss ``= (dayStartEquity − equity) / dayStartEquity`` vs ``maxDailyLoss``;
- drawdown ``= (equityPeak − equity) / equityPeak`` vs ``maxDrawdown``.

Where the reference figures come from: the snapshot's top-level ``dayStartEquity`` and
``equityPeak`` (kept in ``snapshot.extra``) when given — the only source in a one-shot
check or an audit; otherwise, and in addition, what a long-lived Guard remembers in
``ctx.state`` (the highest equity it saw; the first equity it saw after the day began at
``dayStartsAt`` UTC). A remembered day start is only as early as the first evaluation of
the day: give ``dayStartEquity`` when you have it. Equity is the account's before the
order; time is the snapshot's timestamp (account time, so streams replay correctly), or
the evaluation clock when the snapshot has none.

A breach moves trading to ``haltState`` (``reducing`` by default, or ``halted``): it writes
``ctx.state["tradingState"]`` (read by ``trading_state`` and ``Guard.trading_state``),
proposes ``halt_trading``, and — even without a ``trading_state`` rule — denies orders
while the lockout lasts (``DRAWDOWN_LOCKOUT_ACTIVE``: halted denies every order, reducing
the ones adding exposure). The lockout ends at ``reset``: the next ``"HH:MM"`` UTC, after a
duration (``"30m"``, ``"4h"``, ``"1d"``), or ``manual`` (until someone sets another trading
state through the API). At the end the previous state is restored unless someone changed
it meanwhile. A breach that still holds at that moment locks again. A timed lockout is
not lifted early by setting the trading state through the API (this rule keeps denying
until the reset); ``manual`` is the mode for a human sign-off.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.hookspecs import hookimpl
from riskguard.margin.metrics import order_reduces
from riskguard.rules.base import BaseRule, RuleSpec, RuleType
from riskguard.rules.trading_state import STATE_KEY, STATES, most_restrictive

DAY_MS = 86_400_000
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_DURATION = r"^[0-9]+(\.[0-9]+)?(s|m|h|d)$"
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "maxDailyLoss": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "largest loss since the day started, as a fraction of day-start equity",
        },
        "maxDrawdown": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "largest fall from the equity peak, as a fraction of the peak",
        },
        "haltState": {
            "enum": ["reducing", "halted"],
            "default": "reducing",
            "description": "trading state after a breach: reducing (only orders that reduce "
            "exposure) or halted (no orders)",
        },
        "reset": {
            "type": "string",
            "default": "00:00",
            "pattern": f"{_HHMM}|{_DURATION}|^manual$",
            "description": 'when the lockout ends: next "HH:MM" UTC, a duration ("4h", "30m", '
            '"1d"), or "manual" (until the trading state is set through the API)',
        },
        "dayStartsAt": {
            "type": "string",
            "default": "00:00",
            "pattern": _HHMM,
            "description": 'UTC time the trading day starts, "HH:MM" (for the daily loss)',
        },
    },
}

CODES = {
    "DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX": "the loss since the start of the day exceeds `maxDailyLoss`",
    "DRAWDOWN_PEAK_EXCEEDS_MAX": "equity is more than `maxDrawdown` below its peak",
    "DRAWDOWN_LOCKOUT_ACTIVE": "a drawdown breach put trading in `haltState` until the reset; "
    "the order is not allowed in that state",
}


def _hhmm_ms(s: str) -> int:
    h, m = s.split(":")
    return (int(h) * 60 + int(m)) * 60_000


def reset_time(reset: str, t: int) -> int | None:
    """When a lockout that starts at ``t`` ends (epoch ms), or None for ``manual``."""
    if reset == "manual":
        return None
    if re.match(_HHMM, reset):
        off = _hhmm_ms(reset)
        day0 = (t // DAY_MS) * DAY_MS
        cand = day0 + off
        return cand if cand > t else cand + DAY_MS
    m = re.match(_DURATION, reset)
    if m is None:  # the schema pattern makes this unreachable
        raise ValueError(f"bad reset {reset!r}")
    return t + int(float(reset[:-1]) * _UNIT_MS[reset[-1]])


@dataclass(frozen=True, slots=True)
class _Memory:
    """What a long-lived Guard remembers; replaced (never mutated) so state copies are safe."""

    day: int | None = None
    dayStart: float | None = None
    peak: float | None = None
    lockState: str | None = None
    lockUntil: int | None = None
    lockSince: int | None = None
    lockPrevious: str | None = None


def _positive(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) and v > 0 else None


class Drawdown(BaseRule):
    __slots__ = ("day_off", "halt", "key", "max_daily", "max_dd", "reset")
    default_actions = ("halt_trading", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.max_daily = p.get("maxDailyLoss")
        self.max_dd = p.get("maxDrawdown")
        self.halt = p["haltState"]
        self.reset = p["reset"]
        self.day_off = _hhmm_ms(p["dayStartsAt"])
        self.key = f"drawdown:{spec.id}"

    def evaluate(self, ctx: EvalContext) -> None:
        state = ctx.state if isinstance(ctx.state, dict) else {}
        n_actions = len(ctx.actions)
        mem = state.get(self.key)
        if not isinstance(mem, _Memory):
            mem = _Memory()
        t = ctx.before.timestamp if ctx.before.timestamp is not None else ctx.now_ms
        equity = ctx.margin_before.equity
        trace = ctx.trace is not None

        # 1. an expired lockout ends; the state it set is restored if nobody changed it.
        if mem.lockState is not None:
            current = state.get(STATE_KEY, "active")
            expired = (mem.lockUntil is not None and t >= mem.lockUntil) or (
                mem.lockUntil is None and current != mem.lockState
            )
            if expired:
                if mem.lockUntil is not None and current == mem.lockState:
                    state[STATE_KEY] = mem.lockPrevious or "active"
                if trace:
                    self.note(ctx, f"lockout ({mem.lockState}) ended", passed=True, state=current)
                mem = replace(
                    mem, lockState=None, lockUntil=None, lockSince=None, lockPrevious=None
                )

        # 2. reference figures: the snapshot's, else (and also) remembered ones.
        extra = ctx.before.extra
        day = (t - self.day_off) // DAY_MS
        given_start = _positive(extra.get("dayStartEquity"))
        given_peak = _positive(extra.get("equityPeak"))
        day_start: float | None
        if given_start is not None:
            day_start = given_start
        elif mem.day == day and mem.dayStart is not None:
            day_start = mem.dayStart
        else:
            day_start = equity if equity > 0 else None
        peaks = [x for x in (given_peak, mem.peak, equity) if x is not None and x > 0]
        peak = max(peaks) if peaks else None
        daily = (day_start - equity) / day_start if day_start else None
        dd = (peak - equity) / peak if peak else None
        if trace:
            self.note(
                ctx,
                f"equity {equity:.2f}; day start {day_start if day_start is None else round(day_start, 2)}"
                f" ({'snapshot' if given_start is not None else 'remembered'}), daily loss "
                f"{'n/a' if daily is None else f'{daily:.2%}'} vs max {_pct(self.max_daily)}; peak "
                f"{peak if peak is None else round(peak, 2)}, drawdown "
                f"{'n/a' if dd is None else f'{dd:.2%}'} vs max {_pct(self.max_dd)}",
                passed=not (
                    (self.max_daily is not None and daily is not None and daily > self.max_daily)
                    or (self.max_dd is not None and dd is not None and dd > self.max_dd)
                ),
                equity=equity,
                dayStartEquity=day_start,
                dailyLoss=daily,
                equityPeak=peak,
                drawdown=dd,
            )

        # 3. breaches.
        breached = False
        until = None
        if self.max_daily is not None and daily is not None and daily > self.max_daily:
            breached = True
            until = reset_time(self.reset, t)
            self.violate(
                ctx,
                "DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX",
                f"lost {daily:.2%} since the day started (equity {equity:.2f} vs "
                f"{day_start:.2f}), above the {self.max_daily:.2%} daily limit; trading is "
                f"{self.halt} until {_when(until)}",
                observed=daily,
                limit=self.max_daily,
                dayStartEquity=day_start,
                equity=equity,
                until=_when(until),
            )
        if self.max_dd is not None and dd is not None and dd > self.max_dd:
            breached = True
            until = reset_time(self.reset, t)
            self.violate(
                ctx,
                "DRAWDOWN_PEAK_EXCEEDS_MAX",
                f"equity {equity:.2f} is {dd:.2%} below its peak {peak:.2f}, above the "
                f"{self.max_dd:.2%} limit; trading is {self.halt} until {_when(until)}",
                observed=dd,
                limit=self.max_dd,
                equityPeak=peak,
                equity=equity,
                until=_when(until),
            )
        if breached:
            current = state.get(STATE_KEY, "active")
            if mem.lockState is None:
                mem = replace(mem, lockState=self.halt, lockSince=t, lockPrevious=current)
            mem = replace(mem, lockUntil=until)
            if most_restrictive(current if current in STATES else "halted", self.halt) != current:
                state[STATE_KEY] = self.halt

        # 4. while locked out, orders the lockout state forbids are denied.
        order = ctx.order
        if mem.lockState is not None and order is not None and self.match.symbol(order.symbol):
            reduces = order_reduces(ctx.before, order)
            if mem.lockState == "halted" or not reduces:
                self.violate(
                    ctx,
                    "DRAWDOWN_LOCKOUT_ACTIVE",
                    f"trading is {mem.lockState} after a drawdown breach until "
                    f"{_when(mem.lockUntil)}: "
                    + (
                        "no order may be sent"
                        if mem.lockState == "halted"
                        else "only orders that reduce exposure"
                    ),
                    symbol=order.symbol,
                    observed=mem.lockState,
                    limit="active",
                    scope="order",
                    state=mem.lockState,
                    until=_when(mem.lockUntil),
                )

        _one_halt(ctx, self.id, n_actions)
        new = replace(
            mem,
            day=day,
            dayStart=day_start,
            peak=peak,
        )
        if isinstance(ctx.state, dict):
            ctx.state[self.key] = new


def _pct(x: float | None) -> str:
    return "off" if x is None else f"{x:.2%}"


def _one_halt(ctx: EvalContext, rule_id: str, start: int) -> None:
    """Keep one ``halt_trading`` proposal: each blocking finding adds one (BaseRule.violate)."""
    seen = False
    kept = []
    for a in ctx.actions[start:]:
        if a.type == "halt_trading" and a.rule == rule_id:
            if seen:
                continue
            seen = True
        kept.append(a)
    ctx.actions[start:] = kept


def _when(ms: int | None) -> str:
    if ms is None:
        return "a manual reset"
    from riskguard.model.snapshot import format_timestamp

    return format_timestamp(ms) or "?"


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    if params.get("maxDailyLoss") is None and params.get("maxDrawdown") is None:
        return [("", "set maxDailyLoss and/or maxDrawdown: without a limit the rule never fires")]
    return []


RULE_TYPE = RuleType(
    name="drawdown",
    params=PARAMS,
    compile=Drawdown,
    description="daily-loss and peak-to-trough limits; a breach moves trading to reducing or "
    "halted until a reset time (snapshot figures or a long-lived Guard's memory).",
    codes=CODES,
    defaultActions=("halt_trading", "alert"),
    check=_check,
    example="""- id: drawdown
  type: drawdown
  params: {maxDailyLoss: 0.03, maxDrawdown: 0.10, haltState: halted, reset: "00:00"}
  onViolation: [halt_trading, alert]""",
    stateful=True,
    limitKeys=("maxDailyLoss", "maxDrawdown", "haltState"),
)


@hookimpl
def riskguard_rule_types(register: Any) -> None:
    register(RULE_TYPE)
