"""``trading_state``: the kill switch — ``active`` | ``reducing`` | ``halted``.

Practice: NautilusTrader's trading states and the kill switch of SEC 15c3-5 / FIA
guidance: ``reducing`` lets through only orders that reduce exposure (close or shrink a
position), ``halted`` denies every order. A snapshot without an order is never judged:
the state governs what may be *sent*, not what is held.

The state comes from three places; the most restrictive wins:

1. the policy: ``params.state`` (a desk that is closed for the weekend);
2. a file: ``params.stateFile`` — one word (``active``/``reducing``/``halted``; blank
   lines and ``#`` comments ignored), so an operator or a cron job can flip it without
   touching the bot. **This is the one place a rule reads a file.** It is read at most
   once per ``fileRefreshSeconds`` of the evaluation clock and cached in the compiled
   rule; a file that is missing, unreadable or holds anything else counts as ``halted``
   (fail closed) and is reported (``TRADING_STATE_FILE_UNREADABLE``). A relative path is
   relative to the policy file;
3. the API: ``ctx.state["tradingState"]`` — ``Guard.set_trading_state(...)`` (or
   :func:`set_trading_state` on any state dict) writes it; the ``drawdown`` rule writes
   it on a breach. An unknown value there also counts as ``halted``.

Violations have scope ``order``: a halted state denies even an order that reduces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.margin.metrics import order_reduces
from riskguard.rules.base import BaseRule, RuleSpec, RuleType, rule_types_hook

STATES = ("active", "reducing", "halted")
_RANK = {s: i for i, s in enumerate(STATES)}
STATE_KEY = "tradingState"

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "state": {
            "enum": list(STATES),
            "default": "active",
            "description": "the state set by the policy itself",
        },
        "stateFile": {
            "type": "string",
            "minLength": 1,
            "description": "file holding one word: active | reducing | halted (relative to the "
            "policy file); unreadable or anything else = halted",
        },
        "fileRefreshSeconds": {
            "type": "number",
            "minimum": 1,
            "maximum": 3600,
            "default": 1,
            "description": "read the state file at most this often (evaluation clock)",
        },
    },
}

CODES = {
    "TRADING_STATE_HALTED": "trading is halted: every order is denied",
    "TRADING_STATE_REDUCING": "trading is reducing-only: an order that adds exposure is denied",
    "TRADING_STATE_FILE_UNREADABLE": "the state file is missing, unreadable or invalid: "
    "treated as halted (fail closed)",
}


def set_trading_state(guard_state: dict[Any, Any], state: str) -> str:
    """Write ``state`` into a state dict (``guard.state``); return the previous state.

    ``Guard.set_trading_state`` does the same and also logs and audits the change.
    """
    if state not in STATES:
        raise ValueError(f"trading state must be one of {', '.join(STATES)}, got {state!r}")
    previous: str = guard_state.get(STATE_KEY, "active")
    guard_state[STATE_KEY] = state
    return previous


def most_restrictive(*states: str) -> str:
    return max(states, key=lambda s: _RANK.get(s, len(STATES)))


def parse_state_text(text: str) -> str | None:
    """The state word of a state file, or None if it holds no valid state."""
    for line in text.splitlines():
        s = line.split("#", 1)[0].strip().lower()
        if s:
            return s if s in _RANK else None
    return None


class TradingState(BaseRule):
    __slots__ = ("_cache", "path", "refresh_ms", "state")
    default_actions = ("alert",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.state = p["state"]
        self.refresh_ms = p["fileRefreshSeconds"] * 1000.0
        self.path: Path | None = None
        if p.get("stateFile"):
            path = Path(p["stateFile"]).expanduser()
            if not path.is_absolute() and spec.file and not spec.file.startswith("<"):
                path = Path(spec.file).resolve().parent / path
            self.path = path
        # (read at ms, state or None, error or None): one tuple, swapped atomically.
        self._cache: tuple[float, str | None, str | None] | None = None

    def _file_state(self, now_ms: int) -> tuple[str | None, str | None]:
        """(state, error) of the state file, re-read at most once per refresh period."""
        c = self._cache
        if c is not None and 0 <= now_ms - c[0] < self.refresh_ms:
            return c[1], c[2]
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8", errors="strict")
        except (OSError, UnicodeDecodeError) as exc:
            res: tuple[str | None, str | None] = (None, f"{type(exc).__name__}: {exc}")
        else:
            word = parse_state_text(text)
            res = (
                (word, None)
                if word is not None
                else (None, "expected one word: active, reducing or halted")
            )
        self._cache = (now_ms, *res)
        return res

    def evaluate(self, ctx: EvalContext) -> None:
        sources = [("policy", self.state)]
        if self.path is not None:
            fstate, err = self._file_state(ctx.now_ms)
            if err is not None:
                self.violate(
                    ctx,
                    "TRADING_STATE_FILE_UNREADABLE",
                    f"trading state file {self.path} cannot be used ({err}); treated as halted",
                    severity="warning",
                    scope="account",
                    file=str(self.path),
                    error=err,
                )
                fstate = "halted"
            sources.append(("file", fstate))
        api = ctx.state.get(STATE_KEY) if isinstance(ctx.state, dict) else None
        if api is not None:
            sources.append(("api", api if api in _RANK else "halted"))
        effective = most_restrictive(*(s for _w, s in sources))
        setters = [w for w, s in sources if s == effective]
        order = ctx.order
        if ctx.trace is not None:
            self.note(
                ctx,
                f"trading state {effective} (" + ", ".join(f"{w}: {s}" for w, s in sources) + ")",
                passed=effective == "active"
                or (
                    effective == "reducing"
                    and order is not None
                    and order_reduces(ctx.before, order)
                ),
                state=effective,
                **{w: s for w, s in sources},
            )
        if order is None or effective == "active" or not self.match.symbol(order.symbol):
            return
        if effective == "halted":
            self.violate(
                ctx,
                "TRADING_STATE_HALTED",
                f"trading is halted (set by {', '.join(setters)}): no order may be sent",
                symbol=order.symbol,
                observed="halted",
                limit="active",
                scope="order",
                state="halted",
                setBy=",".join(setters),
            )
        elif not order_reduces(ctx.before, order):
            self.violate(
                ctx,
                "TRADING_STATE_REDUCING",
                f"trading is reducing-only (set by {', '.join(setters)}): "
                f"{order.side} {order.amount:g} {order.symbol} would add exposure",
                symbol=order.symbol,
                observed="reducing",
                limit="active",
                scope="order",
                state="reducing",
                setBy=",".join(setters),
            )


RULE_TYPE = RuleType(
    name="trading_state",
    params=PARAMS,
    compile=TradingState,
    description="kill switch: active | reducing (only exposure-reducing orders) | halted, from "
    "the policy, a state file (fail closed) or the API (Guard.set_trading_state).",
    codes=CODES,
    defaultActions=("alert",),
    example="""- id: kill-switch
  type: trading_state
  params: {state: active, stateFile: /var/run/riskguard/trading-state}""",
    stateful=True,
    limitKeys=("state",),
)


# a plain function (this module may be compiled): see rule_types_hook
riskguard_rule_types = rule_types_hook(RULE_TYPE)
