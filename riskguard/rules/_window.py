"""Order memory for the stateful order rules (``order_rate``, ``duplicate_order``).

A long-lived :class:`riskguard.faces.guard.Guard` (or a ``riskguard test`` case with steps)
passes the same ``state`` dict to every evaluation; a rule keeps its memory there under
``"<type>:<rule id>"``. Time is ``ctx.now_ms`` — the Guard's injectable clock — so tests
are deterministic.

Two engine paths evaluate a policy on a *shallow copy* of that dict: the resize path
(``engine._try_resize`` re-checks the order at a smaller amount) and
``Guard.check_quiet`` (what-if questions, e.g. ``max_order_amount``). Memory is mutable
for speed (deques, dicts), so the copy shares it. The rules therefore never write memory
they do not own: a :class:`Memory` remembers the ``id`` of the dict it belongs to, and
an evaluation on another dict works on a private clone (copy-on-write).

The resize path also re-evaluates the *same* order after the first evaluation recorded
it; counting it again would make every resize of a stateful policy fail (the order would
be its own duplicate). So each memory records a marker of the order it recorded last
(clock, snapshot identity, symbol, side, price, client order id); a clone made for an
evaluation with the same marker is a re-evaluation of that order and first undoes it,
then judges the order exactly as the first evaluation did and records nothing.
"""

from __future__ import annotations

from typing import Any

from riskguard.engine.context import EvalContext


def order_marker(ctx: EvalContext) -> tuple[Any, ...]:
    """What identifies one check of one order, independent of its (resizable) amount."""
    o = ctx.order
    assert o is not None
    return (
        ctx.now_ms,
        id(ctx.before),
        o.symbol,
        o.side,
        o.price,
        o.clientOrderId,
        o.type,
        o.reduceOnly,
    )


class Memory:
    """Base class: ownership, cloning and undo of the last recorded order."""

    __slots__ = ("last", "owner")

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.last: tuple[Any, ...] | None = None  # (marker, undo info) of the last recorded order

    def clone(self, owner: int) -> Memory:  # pragma: no cover - abstract
        raise NotImplementedError

    def undo_last(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def memory(ctx: EvalContext, key: str, factory: Any) -> tuple[Memory, bool]:
    """This evaluation's memory for ``key`` and whether it re-evaluates the last order.

    ``factory(owner_id)`` builds an empty memory. Returns ``(memory, reevaluation)``;
    on a re-evaluation the returned (private) memory no longer holds that order.
    """
    state = ctx.state
    if not isinstance(state, dict):  # no state at all: nothing can persist
        return factory(0), False
    sid = id(state)
    mem = state.get(key)
    if mem is None or not isinstance(mem, Memory):
        mem = factory(sid)
        state[key] = mem
        return mem, False
    if mem.owner == sid:
        return mem, False
    # A shallow copy of the state: never write the shared memory; work on a clone.
    reeval = ctx.order is not None and mem.last is not None and mem.last[0] == order_marker(ctx)
    clone = mem.clone(sid)
    if reeval:
        clone.undo_last()
    state[key] = clone
    return clone, reeval


__all__ = ["Memory", "memory", "order_marker"]
