"""The embedding API: a long-lived guard a trading bot asks before every order.

    from riskguard import Guard
    guard = Guard.from_file("policies/default.yaml", audit_log="audit.jsonl")
    decision = guard.check(snapshot, order)      # dict | Snapshot, dict | Order | None
    amount = decision.amount_to_send(order)      # 0 if denied, the smaller amount if resized
    if amount > 0: ...                           # decision.allowed: true only if unchanged
    decision = await guard.acheck(snapshot, order)   # from asyncio: never waits on disk

Why it is shaped this way:

- **Atomic policy swap.** ``check`` reads the compiled policy once into a local; ``reload()``
  compiles the new version *before* swapping one reference, so a check sees the old or
  the new policy, never a mix, and a policy that fails to load leaves the old one in force.
- **Thread-safe.** Evaluations run one at a time under a lock because stateful rules
  (rates, drawdown peaks, the kill switch) read-modify-write ``guard.state``; an
  evaluation is microseconds, so the lock costs nothing measurable.
- **The audit log has an explicit durability contract.** Records go to a bounded queue
  (``audit_queue_max``) drained by one writer thread with group commit. ``durability=
  "async"``: ``check`` never waits on disk (a kill -9 can lose the queue);
  ``"flush"``: ``check`` returns once its record is written to the file (survives kill
  -9); ``"fsync"``: once it is on disk (one ``fdatasync`` per batch). Past the bound,
  ``backpressure="block"`` waits and ``"deny"`` denies (``AUDIT_LOG_BACKLOG``). A write
  error denies the decision whose record failed (durable modes) or the next one
  (``async``), and every later one: a guard that promises an audit trail fails closed.
  A record that cannot be rendered is logged as a ``record_fault``, not an outage.
  ``flush()`` waits for the queue; ``close()`` drains it and closes the file. See
  docs/audit-log.md for each mode's loss window.
- **Time budget (opt-in).** With ``time_budget_ms`` the evaluation runs on a worker thread
  and the caller waits at most that long; past it the decision is **deny** with code
  ``ENGINE_TIME_BUDGET_EXCEEDED`` (a hung plugin rule must not hang the bot). Python
  cannot kill a thread: the stuck worker is abandoned and replaced, and it lives on
  until its rule returns (at most ``max_stuck_workers`` are kept; past that every check
  is denied at once). Handing work to a thread costs tens of microseconds, which is why
  the budget is off by default; ``acheck(..., inline_builtin=True)`` (the HTTP service)
  skips it when no plugin code would run, denying an inline evaluation that overran.
- **Previews (on by default).** ``previews=False`` makes decisions without the advisory
  what-if figures some findings carry (``promote_to_cross``'s new liquidation price of
  every cross position: a margin solve per cross position per eligible winner). Every
  finding, code, severity, outcome and executable action is the same; the simulator
  uses it, since it reads outcomes, not explanations.
- **Kill switch.** ``set_trading_state("active" | "reducing" | "halted")`` writes
  ``guard.state["tradingState"]``, which the ``trading_state`` rule reads, and logs it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol

from riskguard.batch.tiermemo import build_snapshot_memo, snapshot_digest
from riskguard.engine.actions import Action
from riskguard.engine.decision import Decision, Violation, new_decision_id
from riskguard.engine.evaluate import ENGINE, evaluate
from riskguard.engine.policy import CompiledPolicy, load_policy, preset_names, preset_path
from riskguard.errors import RiskguardError
from riskguard.margin.metrics import AccountMetrics, compute_metrics
from riskguard.model.snapshot import Order, Snapshot, build_order, build_snapshot

log = logging.getLogger("riskguard.guard")

TRADING_STATES = ("active", "reducing", "halted")

#: Reason codes the guard itself emits (the engine's are in ``engine.ENGINE_CODES``).
GUARD_CODES: dict[str, str] = {
    "ENGINE_TIME_BUDGET_EXCEEDED": "the evaluation did not finish within `time_budget_ms`; "
    "the decision fails closed without waiting for it",
    "AUDIT_LOG_UNAVAILABLE": "an audit-log write failed (this decision's record, in a durable "
    "mode, or an earlier one); decisions are denied until the guard is rebuilt with a working log",
    "AUDIT_LOG_BACKLOG": 'the audit queue is full and `backpressure="deny"`: the decision is '
    "denied rather than returned unlogged (the count is logged once the queue drains)",
}


class AuditLogLike(Protocol):
    def append(self, event: str, record: dict) -> Any: ...

    def close(self) -> None: ...


class AuditWriteError(RiskguardError):
    """The background audit writer could not append a record."""


# --------------------------------------------------------------------------- audit writer


DURABILITY = ("async", "flush", "fsync")
BACKPRESSURE = ("block", "deny")


def _is_render_error(exc: BaseException) -> bool:
    """A record that cannot be rendered (a value JSON cannot hold), not a log outage."""
    return isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, RiskguardError)


def _fault_record(event: str, payload: Any, exc: BaseException) -> dict:
    """What is logged in place of a record that cannot be rendered."""
    out: dict = {
        "failedEvent": event,
        "error": f"{type(exc).__name__}: {exc}"[:500],
        "reason": "the record could not be rendered as canonical JSON; this fault record "
        "stands in its place",
    }
    d = getattr(payload, "decision", None)
    if d is not None:
        out["decisionId"] = d.decisionId
        out["decision"] = d.decision
        out["account"] = d.account
    return out


class _AuditWriter:
    """One daemon thread appending queued records (group commit).

    Items are ``(event, payload)`` where payload is a dict or a zero-argument callable
    producing one (a decision's ``to_dict`` runs here, not on the hot path). The queue
    holds at most ``queue_max`` records; past that ``put`` blocks (``backpressure=
    "block"``) or refuses (``"deny"``: the caller denies). The thread takes everything
    queued at once, appends it, then (``fsync``) makes it durable with one ``fdatasync``
    for the whole batch, then wakes the callers waiting for those records: a durable
    mode costs one disk round trip per batch, not per record.
    """

    def __init__(
        self,
        sink: AuditLogLike,
        *,
        durability: str = "async",
        queue_max: int = 1024,
        backpressure: str = "block",
    ) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self.durability = durability
        self.queue_max = queue_max
        self.backpressure = backpressure
        self._cv = threading.Condition(threading.Lock())
        self._items: collections.deque = collections.deque()
        self._submitted = 0  # tickets handed out
        self._done = 0  # every ticket <= this has been handled
        self._failed_from: int | None = None  # first ticket whose record did not reach the log
        self._shed = 0  # decisions denied for a full queue, not yet logged as such
        self._stop = False
        self._closed = False
        self._sync = getattr(sink, "sync_to_disk", None) if durability == "fsync" else None
        self._thread = threading.Thread(target=self._run, name="riskguard-audit", daemon=True)
        self._thread.start()

    def put(self, event: str, payload: Any, *, wait: bool = False) -> int:
        """Queue a record. Returns its ticket (> 0), or 0 when the queue is full and
        backpressure is ``deny`` (nothing queued). ``wait``: return once it is handled."""
        cv = self._cv
        with cv:
            while len(self._items) >= self.queue_max and not self._stop:
                if self.backpressure == "deny":
                    self._shed += 1
                    return 0
                cv.wait()
            self._submitted += 1
            ticket = self._submitted
            self._items.append((ticket, event, payload))
            cv.notify_all()
        if wait:
            self.wait(ticket)
        return ticket

    def wait(self, ticket: int) -> bool:
        """Block until ``ticket``'s record is handled; True when it reached the log."""
        cv = self._cv
        with cv:
            while self._done < ticket and self._thread.is_alive():
                cv.wait(1.0)
            ok = self._done >= ticket
            return ok and (self._failed_from is None or ticket < self._failed_from)

    def _run(self) -> None:
        cv = self._cv
        while True:
            with cv:
                while not self._items and not self._stop:
                    cv.wait()
                if not self._items and self._stop:
                    return
                batch = list(self._items)
                self._items.clear()
                shed, self._shed = self._shed, 0
                cv.notify_all()  # room in the queue
            failed: int | None = None
            if shed and self.error is None:
                self._append(
                    "backpressure",
                    {
                        "deniedUnlogged": shed,
                        "reason": "the audit queue was full (backpressure 'deny'): these "
                        "decisions were denied and are not logged one by one",
                    },
                )
            for ticket, event, payload in batch:
                if self.error is None:
                    self._append(event, payload)
                if self.error is not None and failed is None:
                    failed = ticket
            if self._sync is not None and self.error is None and failed is None:
                try:
                    self._sync()
                except BaseException as exc:  # noqa: BLE001 - the batch is not durable
                    self._fail(exc)
                    failed = batch[0][0]
            with cv:
                if failed is not None and self._failed_from is None:
                    self._failed_from = failed
                self._done = batch[-1][0]
                cv.notify_all()

    def _append(self, event: str, payload: Any) -> None:
        try:
            record = payload() if callable(payload) else payload
            self.sink.append(event, record)
        except BaseException as exc:  # noqa: BLE001 - recorded; later checks fail closed
            if not _is_render_error(exc):
                self._fail(exc)
                return
            # One odd record must not take the log down: log the fault in its place.
            log.error("audit record %s could not be rendered; logging a fault: %s", event, exc)
            try:
                self.sink.append("record_fault", _fault_record(event, payload, exc))
            except BaseException as exc2:  # noqa: BLE001
                self._fail(exc2)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.error("audit log write failed; denying further decisions: %s", exc)

    def flush(self) -> None:
        with self._cv:
            ticket = self._submitted
        self.wait(ticket)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join()
        self.sink.close()


def _flush_at_exit(ref: weakref.ref) -> None:
    w = ref()
    if w is not None and not w._closed:
        with contextlib.suppress(Exception):  # interpreter shutdown: best effort
            w.close()


class _SyncWriter:
    """Same interface, appending inline (``audit_async=False``: one-shot CLI use, tests)."""

    durability = "flush"

    def __init__(self, sink: AuditLogLike) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self._closed = False
        self._lock = threading.Lock()

    def put(self, event: str, payload: Any, *, wait: bool = False) -> int:
        with self._lock:
            if self.error is not None:
                return -1
            try:
                self.sink.append(event, payload() if callable(payload) else payload)
            except Exception as exc:  # noqa: BLE001 - recorded; later checks fail closed
                if _is_render_error(exc):
                    try:
                        self.sink.append("record_fault", _fault_record(event, payload, exc))
                        return 1
                    except Exception as exc2:  # noqa: BLE001
                        exc = exc2
                self.error = exc
                log.error("audit log write failed; denying further decisions: %s", exc)
                return -1
            return 1

    def wait(self, ticket: int) -> bool:
        return ticket > 0

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.sink.close()


# --------------------------------------------------------------------------- time budget


class _BudgetRunner:
    """Runs evaluations on a worker thread so a caller can stop waiting for a hung one.

    A worker whose job overran is abandoned (Python cannot kill a thread) and a fresh
    worker takes the following jobs; the abandoned one exits when its job returns.
    """

    def __init__(self, max_stuck: int) -> None:
        self.max_stuck = max_stuck
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._stuck: set[_Worker] = set()

    def stuck(self) -> int:
        with self._lock:
            self._stuck = {w for w in self._stuck if w.thread.is_alive()}
            return len(self._stuck)

    def submit(self, fn: Callable[[], Any]) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._worker is None:
                self._worker = _Worker()
            self._worker.q.put((fut, fn))
        return fut

    def abandon(self, fut: Future) -> None:
        """The caller gave up on ``fut``: if it is running, its worker is stuck; replace it."""
        if fut.cancel():
            return  # never started: nothing is stuck
        with self._lock:
            w = self._worker
            if w is not None and w.current is fut:
                w.abandoned = True
                w.q.put(None)  # exits after the stuck job
                self._stuck.add(w)
                self._worker = None


class _Worker:
    __slots__ = ("abandoned", "current", "q", "thread")

    def __init__(self) -> None:
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.current: Future | None = None
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name="riskguard-eval", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            fut, fn = item
            if not fut.set_running_or_notify_cancel():
                continue
            self.current = fut
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                fut.set_exception(exc)
            finally:
                self.current = None
            if self.abandoned:
                return


class _Busy(Exception):
    """The evaluation lock could not be taken within the budget (a stuck evaluation holds it)."""


# --------------------------------------------------------------------------- the guard


class Guard:
    """A compiled policy plus state, an audit trail and a kill switch; safe to share.

    ``audit_log`` is a path (a hash-chained :class:`riskguard.decisionlog.log.AuditLog` is opened)
    or any object with ``append(event, record)`` and ``close()``.
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        *,
        source: str | Path | dict | None = None,
        audit_log: str | Path | AuditLogLike | None = None,
        audit_key: bytes | None = None,
        audit_fsync: bool = False,
        audit_async: bool = True,
        durability: str = "async",
        audit_queue_max: int = 1024,
        backpressure: str = "block",
        clock: Callable[[], float] = time.time,
        plugins: tuple[str, ...] | list[str] = (),
        time_budget_ms: float | None = None,
        max_stuck_workers: int = 4,
        previews: bool = True,
    ) -> None:
        if time_budget_ms is not None and not time_budget_ms > 0:
            raise ValueError(
                f"time_budget_ms must be > 0 (or None for no budget), got {time_budget_ms!r}"
            )
        self._policy = policy
        self._source = source
        self._plugins = tuple(plugins)
        self._clock = clock
        #: False: decisions without advisory what-if figures (``evaluate(previews=False)``)
        self.previews = previews
        self._lock = threading.RLock()  # state changes (reload, kill switch)
        self._eval_lock = threading.Lock()  # one evaluation at a time: stateful rules
        self.state: dict = {}  # per-rule state for stateful rules (rates, drawdown peaks, kill switch)
        self.time_budget_ms = time_budget_ms
        self._budget_s = None if time_budget_ms is None else time_budget_ms / 1000.0
        self._runner = _BudgetRunner(max_stuck_workers) if time_budget_ms is not None else None
        # (policy, its plugin margin models' names, or None if it runs other plugin code)
        self._plugin_exchanges: tuple[CompiledPolicy, frozenset[str] | None] | None = None
        if durability not in DURABILITY:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}"
            )
        if backpressure not in BACKPRESSURE:
            raise ValueError(
                f"backpressure must be one of {', '.join(BACKPRESSURE)}, got {backpressure!r}"
            )
        if (
            isinstance(audit_queue_max, bool)
            or not isinstance(audit_queue_max, int)
            or audit_queue_max < 1
        ):
            raise ValueError(f"audit_queue_max must be an integer >= 1, got {audit_queue_max!r}")
        if audit_fsync and durability == "async":
            durability = "fsync"  # the older flag: every record on disk before check returns
        self.durability = durability
        self._durable = durability != "async"
        self._writer: _AuditWriter | _SyncWriter | None = None
        if audit_log is not None:
            if isinstance(audit_log, (str, Path)):
                from riskguard.decisionlog.log import AuditLog

                # fsync mode syncs once per batch (group commit), not once per record
                opened = AuditLog(
                    audit_log, key=audit_key, fsync=durability == "fsync" and not audit_async
                )
                try:
                    opened.sync()  # a file that is not a log is refused now, not at the first check
                except BaseException:
                    opened.close()
                    raise
                sink: AuditLogLike = opened
            else:
                sink = audit_log
            if audit_async:
                w = _AuditWriter(
                    sink,
                    durability=durability,
                    queue_max=audit_queue_max,
                    backpressure=backpressure,
                )
                atexit.register(_flush_at_exit, weakref.ref(w))
                self._writer = w
            else:
                self._writer = _SyncWriter(sink)

    # -------------------------------------------------------------- construction

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> Guard:
        plugins = tuple(kw.get("plugins", ()))
        return cls(load_policy(path, plugins=plugins), source=path, **kw)

    preset_names = staticmethod(preset_names)  # the shipped policies' names

    @classmethod
    def from_preset(cls, name: str = "default", **kw: Any) -> Guard:
        """A guard on one of the policies shipped with riskguard (``preset_names()``).

        The presets are package data, so this works from an installed wheel in any working
        directory; ``preset_path(name)`` gives the file to copy and adapt.
        """
        return cls.from_file(preset_path(name), **kw)

    @classmethod
    def from_dict(cls, doc: dict, **kw: Any) -> Guard:
        plugins = tuple(kw.get("plugins", ()))
        return cls(load_policy(doc, plugins=plugins), source=doc, **kw)

    @property
    def policy(self) -> CompiledPolicy:
        return self._policy

    def reload(self, source: str | Path | dict | None = None) -> CompiledPolicy:
        """Load the policy again (or a new one) and swap it in atomically.

        Compiling happens before the swap: a policy that fails to load raises
        :class:`riskguard.PolicyError` and the old policy stays in force.
        """
        src = source if source is not None else self._source
        if src is None:
            raise ValueError(
                "this guard was built from a compiled policy; pass a source to reload()"
            )
        old = self._policy
        try:
            new = load_policy(src, plugins=self._plugins)
        except Exception as exc:
            log.warning("policy reload failed; keeping %s %s: %s", old.name, old.version, exc)
            self._audit(
                "policy_reload_failed",
                {"kept": old.ref, "source": _source_name(src), "error": str(exc)[:1000]},
            )
            raise
        with self._lock:
            self._policy = new
            self._source = src
        log.info("policy reloaded: %s %s -> %s %s", old.name, old.version, new.name, new.version)
        self._audit("policy_reload", {"previous": old.ref, "policy": new.ref})
        return new

    # -------------------------------------------------------------- kill switch

    @property
    def trading_state(self) -> str:
        return self.state.get("tradingState", "active")

    def set_trading_state(self, state: str, *, reason: str | None = None) -> str:
        """Move trading to ``active``, ``reducing`` (only reducing orders) or ``halted``.

        Returns the previous state. The ``trading_state`` rule reads it from
        ``guard.state["tradingState"]``; the change is logged and audited.
        """
        if state not in TRADING_STATES:
            raise ValueError(
                f"trading state must be one of {', '.join(TRADING_STATES)}, got {state!r}"
            )
        # Not under the evaluation lock: the kill switch must work even while an
        # evaluation hangs. A dict store is atomic; the next evaluation sees it.
        with self._lock:
            previous = self.state.get("tradingState", "active")
            self.state["tradingState"] = state
        log.warning("trading state %s -> %s%s", previous, state, f" ({reason})" if reason else "")
        self._audit(
            "trading_state",
            {"state": state, "previous": previous, "reason": reason, "at": self.now_ms()},
        )
        return previous

    # -------------------------------------------------------------- checks

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def check(
        self,
        snapshot: dict | Snapshot,
        order: dict | Order | None = None,
        *,
        ref: str | None = None,
    ) -> Decision:
        """Decide on ``snapshot`` (and ``order``); the decision goes to the audit log.

        With ``durability="flush"`` or ``"fsync"`` it returns only once the decision's
        record is written (flushed to the OS, or on disk); a decision whose record could
        not be written is returned as a deny (``AUDIT_LOG_UNAVAILABLE``). Bad input (a
        dict that is not a valid snapshot or order) raises
        :class:`riskguard.SnapshotError`; faults while evaluating deny.
        """
        w = self._writer
        if w is not None and w.error is not None:
            snap, o = _inputs(snapshot, order)
            return self._audit_down(self._policy, snap, o, self.now_ms(), None, ref)
        return self._record(self._decide(snapshot, order, ref), snapshot)

    def _decide(self, snapshot: Any, order: Any, ref: str | None) -> Decision:
        snap, o = _inputs(snapshot, order)
        policy = self._policy
        now = self.now_ms()
        w = self._writer
        if w is not None and w.error is not None:
            return self._audit_down(policy, snap, o, now, None, ref)
        if self._budget_s is None:
            with self._eval_lock:
                decision = evaluate(
                    policy, snap, o, now_ms=now, state=self.state, ref=ref, previews=self.previews
                )
        else:
            decision = self._bounded(policy, snap, o, now, ref)
        return decision

    async def acheck(
        self,
        snapshot: dict | Snapshot,
        order: dict | Order | None = None,
        *,
        ref: str | None = None,
        inline_builtin: bool = False,
    ) -> Decision:
        """``check`` for asyncio: runs inline (microseconds). In ``async`` durability it
        never waits on the audit log; in a durable mode the wait for its record runs on a
        thread (``asyncio.to_thread``), so the event loop is never blocked on the disk.

        With a time budget the evaluation is awaited on its worker thread, so even a hung
        plugin rule does not block the event loop. ``inline_builtin=True`` skips that
        hand-off when the evaluation runs only riskguard's own code — every rule type, every
        enrichment hook and the snapshot's margin model built in, none from a plugin — which
        has no unbounded waits to guard against: it runs on the calling thread, and a
        decision that took longer than the budget anyway is denied
        (``ENGINE_TIME_BUDGET_EXCEEDED``) as on the thread. Plugin code, or an evaluation
        lock held by another caller, still goes to the worker thread under the budget.
        """
        if self._budget_s is None:
            if not self._durable:
                return self.check(snapshot, order, ref=ref)
            return await self._arecord(self._decide(snapshot, order, ref), snapshot)
        snap, o = _inputs(snapshot, order)
        policy = self._policy
        now = self.now_ms()
        t0 = time.perf_counter_ns()
        if self._writer is not None and self._writer.error is not None:
            return self._audit_down(policy, snap, o, now, t0, ref)
        if (
            inline_builtin
            and self._builtin_only(policy, snap)
            and self._eval_lock.acquire(blocking=False)  # never wait on the loop
        ):
            try:
                decision = evaluate(
                    policy, snap, o, now_ms=now, state=self.state, ref=ref, previews=self.previews
                )
            finally:
                self._eval_lock.release()
            if time.perf_counter_ns() - t0 > self._budget_s * 1e9:
                decision = self._over_budget(policy, snap, o, now, t0, ref)
            return await self._arecord(decision, snapshot)
        if self._runner.stuck() >= self._runner.max_stuck:  # type: ignore[union-attr]
            d = self._over_budget(policy, snap, o, now, t0, ref, saturated=True)
            return self._record(d, snapshot)
        import asyncio  # loaded already when a coroutine runs; not at import (one-shot CLI)

        fut = self._runner.submit(self._job(policy, snap, o, now, ref))  # type: ignore[union-attr]
        try:
            decision = await asyncio.wait_for(asyncio.wrap_future(fut), self._budget_s)
        except (asyncio.TimeoutError, _Busy):
            self._runner.abandon(fut)  # type: ignore[union-attr]
            decision = self._over_budget(policy, snap, o, now, t0, ref)
        return await self._arecord(decision, snapshot)

    def _builtin_only(self, policy: CompiledPolicy, snap: Snapshot) -> bool:
        """Whether evaluating ``snap`` under ``policy`` runs riskguard's own code only."""
        known = self._plugin_exchanges
        if known is None or known[0] is not policy:
            known = self._plugin_exchanges = (policy, _plugin_margin_models(policy))
        plugin_models = known[1]
        if plugin_models is None:
            return False  # a plugin rule type or enrichment hook
        if not plugin_models:
            return True
        return snap.exchange not in plugin_models and (
            snap.exchange in policy.registry.margin_models or "generic" not in plugin_models
        )

    def max_order_amount(self, snapshot: dict | Snapshot, order: dict | Order) -> float | None:
        """The largest amount of ``order`` every rule allows (None: no rule bounds it)."""
        d = self.check_quiet(snapshot, order)
        if d.decision == "deny" and d.maxAllowedAmount is None:
            return 0.0
        if d.mode == "monitor" and d.wouldDecide == "deny" and d.maxAllowedAmount is None:
            return 0.0
        return d.maxAllowedAmount

    async def amax_order_amount(
        self, snapshot: dict | Snapshot, order: dict | Order
    ) -> float | None:
        return self.max_order_amount(snapshot, order)

    def check_quiet(self, snapshot: dict | Snapshot, order: dict | Order | None = None) -> Decision:
        """``check`` without writing the audit log or touching rule state (what-if questions)."""
        snap, o = _inputs(snapshot, order)
        # dict() of a str-keyed dict is one C call under the GIL: a consistent copy, and
        # no lock, so a what-if never waits behind a hung evaluation.
        state = dict(self.state)
        return evaluate(
            self._policy, snap, o, now_ms=self.now_ms(), state=state, previews=self.previews
        )

    def metrics(self, snapshot: dict | Snapshot) -> AccountMetrics:
        snap = snapshot if isinstance(snapshot, Snapshot) else build_snapshot(snapshot)
        return compute_metrics(snap, self._policy.registry.margin_model(snap.exchange))

    # -------------------------------------------------------------- internals

    def _record(self, decision: Decision, raw: Any) -> Decision:
        w = self._writer
        if w is None:
            return decision
        if isinstance(raw, dict):
            # The caller owns the dict and may reuse it once check returns: hash it now.
            decision._snapshot_digest = snapshot_digest(raw)  # tier tables' text remembered
        ticket = w.put("decision", _DecisionRecord(decision))
        if ticket > 0 and (not self._durable or w.wait(ticket)):
            return decision
        return self._not_logged(decision, ticket)

    async def _arecord(self, decision: Decision, raw: Any) -> Decision:
        """``_record`` for asyncio: a durable mode's wait for the disk runs off the loop."""
        import asyncio  # loaded already when a coroutine runs; not at import (one-shot CLI)

        w = self._writer
        if w is None or not self._durable or isinstance(w, _SyncWriter):
            return self._record(decision, raw)
        if isinstance(raw, dict):
            decision._snapshot_digest = snapshot_digest(raw)
        ticket = w.put("decision", _DecisionRecord(decision))
        if ticket > 0 and await asyncio.to_thread(w.wait, ticket):
            return decision
        return self._not_logged(decision, ticket)

    def _not_logged(self, decision: Decision, ticket: int) -> Decision:
        """The decision's record is not in the log: what the caller gets instead."""
        policy = self._policy
        snap = _SnapView(decision)
        if ticket == 0:  # the queue is full and backpressure is "deny"
            return _fault(
                policy,
                snap,
                decision.order,
                decision.timestamp,
                time.perf_counter_ns(),
                decision.snapshotRef,
                "AUDIT_LOG_BACKLOG",
                f"the audit queue is full ({self._writer.queue_max} records, backpressure "  # type: ignore[union-attr]
                "'deny'); failing closed",
                {"queueMax": self._writer.queue_max},  # type: ignore[union-attr]
            )
        return self._audit_down(
            policy, snap, decision.order, decision.timestamp, None, decision.snapshotRef
        )

    def _audit(self, event: str, record: dict) -> None:
        w = self._writer
        if w is not None:
            ticket = w.put(event, record)
            if self._durable and ticket > 0:
                w.wait(ticket)

    def _job(self, policy, snap, o, now, ref) -> Callable[[], Decision]:
        budget = self._budget_s
        deadline = time.monotonic() + budget  # type: ignore[operator]
        lock = self._eval_lock
        state = self.state

        def run() -> Decision:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not lock.acquire(timeout=remaining):
                raise _Busy()
            try:
                return evaluate(
                    policy, snap, o, now_ms=now, state=state, ref=ref, previews=self.previews
                )
            finally:
                lock.release()

        return run

    def _bounded(self, policy, snap, o, now, ref) -> Decision:
        runner = self._runner
        t0 = time.perf_counter_ns()
        if runner.stuck() >= runner.max_stuck:  # type: ignore[union-attr]
            return self._over_budget(policy, snap, o, now, t0, ref, saturated=True)
        fut = runner.submit(self._job(policy, snap, o, now, ref))  # type: ignore[union-attr]
        try:
            return fut.result(timeout=self._budget_s)
        except (FutureTimeout, _Busy):
            runner.abandon(fut)  # type: ignore[union-attr]
            return self._over_budget(policy, snap, o, now, t0, ref)

    def _over_budget(self, policy, snap, o, now, t0, ref, *, saturated: bool = False) -> Decision:
        stuck = self._runner.stuck() if self._runner is not None else 0
        if saturated:
            msg = (
                f"{stuck} evaluations are still stuck past the {self.time_budget_ms:g} ms budget; "
                "denying without evaluating"
            )
        else:
            msg = f"evaluation did not finish within the {self.time_budget_ms:g} ms budget; failing closed"
        log.error("%s (policy %s %s)", msg, policy.name, policy.version)
        return _fault(
            policy,
            snap,
            o,
            now,
            t0,
            ref,
            "ENGINE_TIME_BUDGET_EXCEEDED",
            msg,
            {"budgetMs": self.time_budget_ms, "stuckWorkers": stuck},
        )

    def _audit_down(self, policy, snap, o, now, t0, ref) -> Decision:
        err = self._writer.error if self._writer is not None else None
        why = f"{type(err).__name__}: {err}" if err is not None else "the guard was closed"
        return _fault(
            policy,
            snap,
            o,
            now,
            t0 or time.perf_counter_ns(),
            ref,
            "AUDIT_LOG_UNAVAILABLE",
            f"the audit log cannot be written ({why}); failing closed",
            {"error": type(err).__name__ if err is not None else "closed"},
        )

    # -------------------------------------------------------------- lifecycle

    def flush(self) -> None:
        """Wait until every queued audit record is written; raise if a write failed."""
        w = self._writer
        if w is None:
            return
        w.flush()
        if w.error is not None:
            raise AuditWriteError(f"audit log write failed: {type(w.error).__name__}: {w.error}")

    def close(self) -> None:
        """Drain the audit queue and close the log (idempotent)."""
        w = self._writer
        if w is not None:
            w.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SnapView:
    """What ``_fault`` reads of a snapshot, taken from a decision already made."""

    __slots__ = ("account", "timestamp", "to_dict")

    def __init__(self, d: Decision) -> None:
        self.account = d.account
        self.timestamp = d.snapshotTimestamp
        self.to_dict = d._snapshot_dict


class _DecisionRecord:
    """Deferred ``decision.to_dict(metrics=False)``: built by the writer thread.

    The snapshot digest (SHA-256 of its canonical JSON) is most of the cost of a record;
    a bot checks several orders against one account update, so the digest of the last
    ``Snapshot`` object is reused while the same (immutable) object comes back.
    """

    __slots__ = ("decision",)
    _last: tuple[Any, str] | None = None  # (snapshot object, digest); writer thread only

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def __call__(self) -> dict:
        d = self.decision
        if d._snapshot_digest is None:
            owner = getattr(d._snapshot_dict, "__self__", None)
            last = _DecisionRecord._last
            if owner is not None and last is not None and last[0] is owner:
                d._snapshot_digest = last[1]
            elif owner is not None:
                _DecisionRecord._last = (owner, d.snapshot_digest)
        return d.to_dict(metrics=False)


def _plugin_margin_models(policy: CompiledPolicy) -> frozenset[str] | None:
    """The margin models (exchange names) a plugin registered, or None when the policy's
    evaluation calls other plugin code: a rule type or an enrichment hook not built in."""
    reg = policy.registry
    builtin = {name for name, where in reg.plugins if where == "built-in"}
    if any(reg.origins.get(("rule_types", s.type)) not in builtin for s in policy.specs):
        return None
    if any(plugin not in builtin for plugin, _fn in reg.enrichers):
        return None
    return frozenset(
        name
        for name in reg.margin_models
        if reg.origins.get(("margin_models", name)) not in builtin
    )


def _inputs(snapshot: Any, order: Any) -> tuple[Snapshot, Order | None]:
    # A dict's leverage-tier tables (a bot sends the same ones every tick) are validated
    # and built once per distinct table (tiermemo); the rest is validated every time.
    snap = snapshot if isinstance(snapshot, Snapshot) else build_snapshot_memo(snapshot)
    if order is None or isinstance(order, Order):
        return snap, order
    return snap, build_order(order)


def _source_name(src: Any) -> str:
    return "<dict>" if isinstance(src, dict) else str(src)


def _fault(policy, snap, order, now, t0, ref, code, message, context) -> Decision:
    """A fail-closed decision the guard makes itself (monitor mode records it and allows)."""
    v = Violation(ENGINE, "engine", code, "critical", message, None, None, None, context, "order")
    actions: tuple[Action, ...] = ()
    if order is not None:
        actions = (
            Action("block_order", ENGINE, order.symbol, {"reasons": [v.reason()]}, "critical"),
        )
    monitor = policy.mode == "monitor"
    return Decision(
        decision="allow" if monitor else "deny",
        decisionId=new_decision_id(now),
        timestamp=now,
        policy=policy.ref,
        account=snap.account,
        violations=(v,),
        actions=actions,
        metrics=None,
        durationUs=(time.perf_counter_ns() - t0) / 1000.0,
        mode=policy.mode,
        order=order,
        maxAllowedAmount=0.0 if order is not None else None,
        wouldDecide="deny" if monitor else None,
        errors=({"engine": code, "error": message},),
        snapshotTimestamp=snap.timestamp,
        snapshotRef=ref,
        _snapshot_dict=snap.to_dict,
    )
