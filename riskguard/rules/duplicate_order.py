"""``duplicate_order``: the same order, or the same client order id, again within N seconds.

Practice: duplicate-order prevention is a required control of market-access risk
management (SEC 15c3-5 (c)(1)(ii)); NautilusTrader refuses duplicate ids even in bypass
mode. A bot that retries on a timeout, or loops, sends the same order twice and doubles
its exposure; a reused client order id means the bot lost track of what it sent.

- **same order**: equal ``(symbol, side, amount, price)`` (market orders: price ``None``)
  within ``windowSeconds`` of the previous identical attempt;
- **same client order id**: an id seen within ``clientOrderIdWindowSeconds``.

What is remembered — a decision, documented because it changes behaviour: every
checked order is remembered, *including* the ones this rule flags. So a loop that keeps
repeating an order stays blocked until it pauses for ``windowSeconds``; a bot that
meant to repeat waits that long. Orders other rules denied are remembered too (a rule
cannot see the final decision). The engine's resize re-check of the same order is
recognised and not remembered twice (see ``_window``); the resized order a bot then sends
has another amount, so it is not a duplicate of the request.

Memory lives in ``ctx.state`` (``guard.state``) under ``duplicate_order:<rule id>``, pruned
to the longer window; time is ``ctx.now_ms``, the Guard's injectable clock.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.hookspecs import hookimpl
from riskguard.model.snapshot import Order
from riskguard.rules._window import Memory, memory, order_marker
from riskguard.rules.base import BaseRule, RuleSpec, RuleType

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "windowSeconds": {
            "type": "number",
            "minimum": 0,
            "maximum": 86400,
            "default": 5,
            "description": "an identical order (symbol, side, amount, price) within this many "
            "seconds of the previous one is a duplicate; 0 turns the check off",
        },
        "clientOrderIdWindowSeconds": {
            "type": "number",
            "minimum": 0,
            "maximum": 604800,
            "default": 3600,
            "description": "a client order id seen within this many seconds is a duplicate; "
            "0 turns the check off",
        },
    },
}

CODES = {
    "ORDER_DUPLICATE_WITHIN_WINDOW": "an identical order (symbol, side, amount, price) was checked "
    "less than `windowSeconds` ago",
    "ORDER_CLIENT_ID_REUSED": "the client order id was used less than "
    "`clientOrderIdWindowSeconds` ago",
}


def _fingerprint(order: Order) -> tuple[Any, ...]:
    price = None if order.price is None else float(order.price) + 0.0  # -0.0 → 0.0
    return (order.symbol, order.side, float(order.amount) + 0.0, price)


class _DupMemory(Memory):
    __slots__ = ("coids", "fps", "log")

    def __init__(self, owner: int) -> None:
        super().__init__(owner)
        self.fps: dict[tuple[Any, ...], int] = {}  # fingerprint -> last time seen
        self.coids: dict[str, int] = {}  # client order id -> last time seen
        self.log: deque[Any] = deque()  # (t, fingerprint, coid) in arrival order, for pruning

    def clone(self, owner: int) -> _DupMemory:
        m = _DupMemory(owner)
        m.fps = dict(self.fps)
        m.coids = dict(self.coids)
        m.log = deque(self.log)
        m.last = self.last
        return m

    def undo_last(self) -> None:
        if self.last is not None:
            _marker, fp, prev_fp, coid, prev_coid = self.last
            if prev_fp is None:
                self.fps.pop(fp, None)
            else:
                self.fps[fp] = prev_fp
            if coid is not None:
                if prev_coid is None:
                    self.coids.pop(coid, None)
                else:
                    self.coids[coid] = prev_coid
            if self.log:
                self.log.pop()
        self.last = None

    def prune(self, cutoff: float) -> None:
        log, fps, coids = self.log, self.fps, self.coids
        while log and log[0][0] <= cutoff:
            t, fp, coid = log.popleft()
            if fps.get(fp) == t:
                del fps[fp]
            if coid is not None and coids.get(coid) == t:
                del coids[coid]


class DuplicateOrder(BaseRule):
    __slots__ = ("coid_ms", "keep_ms", "key", "window_ms")
    default_actions = ("alert",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.window_ms = p["windowSeconds"] * 1000.0
        self.coid_ms = p["clientOrderIdWindowSeconds"] * 1000.0
        self.keep_ms = max(self.window_ms, self.coid_ms)
        self.key = f"duplicate_order:{spec.id}"

    def evaluate(self, ctx: EvalContext) -> None:
        order = ctx.order
        if order is None or not self.match.symbol(order.symbol):
            return
        mem, reeval = memory(ctx, self.key, _DupMemory)
        assert isinstance(mem, _DupMemory)
        now = ctx.now_ms
        mem.prune(now - self.keep_ms)
        fp = _fingerprint(order)
        coid = order.clientOrderId
        prev_fp = mem.fps.get(fp)
        prev_coid = mem.coids.get(coid) if coid is not None else None
        dup = (
            self.window_ms > 0
            and prev_fp is not None
            and now - prev_fp < self.window_ms
            and now >= prev_fp
        )
        reused = (
            self.coid_ms > 0
            and prev_coid is not None
            and now - prev_coid < self.coid_ms
            and now >= prev_coid
        )
        if ctx.trace is not None:
            self.note(
                ctx,
                "identical order "
                + (
                    f"seen {(now - prev_fp) / 1000:g}s ago"
                    if prev_fp is not None
                    else "not seen recently"
                )
                + f" (window {self.window_ms / 1000:g}s)"
                + (
                    f"; client order id {coid!r} "
                    + (
                        f"seen {(now - prev_coid) / 1000:g}s ago"
                        if prev_coid is not None
                        else "new"
                    )
                    if coid is not None
                    else ""
                ),
                symbol=order.symbol,
                passed=not (dup or reused),
                windowSeconds=self.window_ms / 1000,
            )
        if dup:
            ago = now - prev_fp  # type: ignore[operator]
            self.violate(
                ctx,
                "ORDER_DUPLICATE_WITHIN_WINDOW",
                f"{order.side} {order.amount:g} {order.symbol}"
                + (f" @ {order.price:g}" if order.price is not None else " (market)")
                + f" is identical to an order {ago / 1000:g}s ago "
                f"(window {self.window_ms / 1000:g}s)",
                symbol=order.symbol,
                observed=ago / 1000,
                limit=self.window_ms / 1000,
                scope="order",
                secondsSincePrevious=ago / 1000,
            )
        if reused:
            ago = now - prev_coid  # type: ignore[operator]
            self.violate(
                ctx,
                "ORDER_CLIENT_ID_REUSED",
                f"client order id {coid!r} was used {ago / 1000:g}s ago "
                f"(window {self.coid_ms / 1000:g}s)",
                symbol=order.symbol,
                observed=ago / 1000,
                limit=self.coid_ms / 1000,
                scope="order",
                clientOrderId=coid,
            )
        if not reeval:
            mem.fps[fp] = now
            if coid is not None:
                mem.coids[coid] = now
            mem.log.append((now, fp, coid))
            mem.last = (order_marker(ctx), fp, prev_fp, coid, prev_coid)


def _check(params: dict[Any, Any]) -> list[tuple[str, str]]:
    if params["windowSeconds"] == 0 and params["clientOrderIdWindowSeconds"] == 0:
        return [("windowSeconds", "both windows are 0: the rule can never fire")]
    return []


RULE_TYPE = RuleType(
    name="duplicate_order",
    params=PARAMS,
    compile=DuplicateOrder,
    description="the same order (symbol, side, amount, price) within `windowSeconds`, or a "
    "client order id reused, is denied (retry loops, runaway bots); stateful, clock-driven.",
    codes=CODES,
    defaultActions=("alert",),
    check=_check,
    example="""- id: duplicate-order
  type: duplicate_order
  params: {windowSeconds: 5, clientOrderIdWindowSeconds: 3600}""",
    stateful=True,
    limitKeys=("windowSeconds", "clientOrderIdWindowSeconds"),
)


@hookimpl
def riskguard_rule_types(register: Any) -> None:
    register(RULE_TYPE)
