"""``order_rate``: at most ``maxOrders`` orders per ``windowSeconds`` (a throttle).

Practice: the runaway-bot control of exchange and broker risk (SEC 15c3-5 message
throttles; NautilusTrader's ``max_order_submit_rate = "100/00:00:01"``). A bot stuck in a
loop sends orders far faster than any strategy means to; the throttle denies the excess.

The window slides: an order is throttled when ``maxOrders`` orders were already counted
in the last ``windowSeconds`` (``t > now − window``), per account or, with
``per: symbol``, per symbol. Time is ``ctx.now_ms``, the Guard's injectable clock.

What is counted — a decision, documented because it changes behaviour:

- orders this rule throttles are **not** counted, so a bot that backs off regains
  capacity as the window slides (a retry loop is still throttled while it keeps going);
- every other checked order **is** counted, including orders another rule denied: a
  rule cannot see the final decision (the engine has no post-decision hook), and
  over-counting errs on the side of fewer orders;
- the engine's resize re-check of the same order is recognised and not counted twice
  (see ``_window``); ``Guard.check_quiet`` / ``max_order_amount`` never count.

Memory lives in ``ctx.state`` (``guard.state``) under ``order_rate:<rule id>``; a
one-shot CLI check starts empty, so this rule only means something in a long-lived
Guard, a stream or a ``riskguard test`` case with steps.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.hookspecs import hookimpl
from riskguard.rules._window import Memory, memory, order_marker
from riskguard.rules.base import BaseRule, RuleSpec, RuleType

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "maxOrders": {
            "type": "integer",
            "minimum": 1,
            "default": 10,
            "description": "orders allowed within one window",
        },
        "windowSeconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 1,
            "description": "length of the sliding window in seconds",
        },
        "per": {
            "enum": ["account", "symbol"],
            "default": "account",
            "description": "count all orders together, or each symbol separately",
        },
    },
}

CODES = {
    "ORDER_RATE_EXCEEDS_MAX": "more than `maxOrders` orders within `windowSeconds` (throttled)",
}


class _RateMemory(Memory):
    __slots__ = ("times",)

    def __init__(self, owner: int) -> None:
        super().__init__(owner)
        self.times: dict[str, deque[Any]] = {}

    def clone(self, owner: int) -> _RateMemory:
        m = _RateMemory(owner)
        m.times = {k: deque(v) for k, v in self.times.items()}
        m.last = self.last
        return m

    def undo_last(self) -> None:
        if self.last is not None:
            scope = self.last[1]
            q = self.times.get(scope)
            if q:
                q.pop()
        self.last = None


class OrderRate(BaseRule):
    __slots__ = ("key", "max", "per_symbol", "window_ms")
    default_actions = ("alert",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.max = p["maxOrders"]
        self.window_ms = p["windowSeconds"] * 1000.0
        self.per_symbol = p["per"] == "symbol"
        self.key = f"order_rate:{spec.id}"

    def evaluate(self, ctx: EvalContext) -> None:
        order = ctx.order
        if order is None or not self.match.symbol(order.symbol):
            return
        mem, reeval = memory(ctx, self.key, _RateMemory)
        assert isinstance(mem, _RateMemory)
        scope = order.symbol if self.per_symbol else "*"
        now = ctx.now_ms
        q = mem.times.get(scope)
        if q is None:
            q = mem.times[scope] = deque()
        cutoff = now - self.window_ms
        while q and q[0] <= cutoff:
            q.popleft()
        count = len(q)
        throttled = count >= self.max
        if ctx.trace is not None:
            self.note(
                ctx,
                f"{count} orders in the last {self.window_ms / 1000:g}s"
                + (f" for {scope}" if self.per_symbol else "")
                + f" (max {self.max})",
                symbol=order.symbol if self.per_symbol else None,
                passed=not throttled,
                count=count,
                maxOrders=self.max,
                windowSeconds=self.window_ms / 1000,
            )
        if throttled:
            oldest = q[0] if q else now
            self.violate(
                ctx,
                "ORDER_RATE_EXCEEDS_MAX",
                f"{count} orders in the last {self.window_ms / 1000:g}s"
                + (f" on {scope}" if self.per_symbol else "")
                + f" already reached the limit of {self.max}; "
                f"next slot in {max(0.0, oldest + self.window_ms - now) / 1000:.3g}s",
                symbol=order.symbol,
                observed=count + 1,
                limit=self.max,
                scope="order",
                windowSeconds=self.window_ms / 1000,
                per=scope,
                retryAfterMs=max(0.0, oldest + self.window_ms - now),
            )
            return
        if not reeval:
            q.append(now)
            mem.last = (order_marker(ctx), scope)


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    if params["maxOrders"] / params["windowSeconds"] > 10_000:
        return [
            (
                "maxOrders",
                f"{params['maxOrders']} orders per {params['windowSeconds']}s is over 10,000/s: "
                "no throttle at all; is windowSeconds in seconds?",
            )
        ]
    return []


RULE_TYPE = RuleType(
    name="order_rate",
    params=PARAMS,
    compile=OrderRate,
    description="throttle: at most `maxOrders` orders per sliding `windowSeconds`, per account or "
    "per symbol (runaway-bot control); stateful, clock-driven.",
    codes=CODES,
    defaultActions=("alert",),
    check=_check,
    example="""- id: order-rate
  type: order_rate
  params: {maxOrders: 5, windowSeconds: 1, per: account}""",
    stateful=True,
    limitKeys=("maxOrders", "windowSeconds"),
)


@hookimpl
def riskguard_rule_types(register: Any) -> None:
    register(RULE_TYPE)
