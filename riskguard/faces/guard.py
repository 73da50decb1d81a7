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
- **The audit log is off the hot path.** Decisions go to a queue drained by one writer
  thread, so neither ``check`` nor an asyncio loop ever waits on disk. ``flush()`` waits
  for the queue; ``close()`` drains it and closes the file. If the writer fails (disk
  full), every later check is denied: a guard that promises an audit trail fails closed.
- **Time budget (opt-in).** With ``time_budget_ms`` the evaluation runs on a worker thread
  and the caller waits at most that long; past it the decision is **deny** with code
  ``ENGINE_TIME_BUDGET_EXCEEDED`` (a hung plugin rule must not hang the bot). Python
  cannot kill a thread: the stuck worker is abandoned and replaced, and it lives on
  until its rule returns (at most ``max_stuck_workers`` are kept; past that every check
  is denied at once). Handing work to a thread costs tens of microseconds, which is why
  the budget is off by default.
- **Kill switch.** ``set_trading_state("active" | "reducing" | "halted")`` writes
  ``guard.state["tradingState"]``, which the ``trading_state`` rule reads, and logs it.
"""

from __future__ import annotations

import atexit
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
    "AUDIT_LOG_UNAVAILABLE": "an earlier audit-log write failed; decisions are denied until "
    "the guard is rebuilt with a working log",
}


class AuditLogLike(Protocol):
    def append(self, event: str, record: dict) -> Any: ...

    def close(self) -> None: ...


class AuditWriteError(RiskguardError):
    """The background audit writer could not append a record."""


# --------------------------------------------------------------------------- audit writer


class _AuditWriter:
    """One daemon thread appending queued records, so callers never wait on disk.

    Items are ``(event, payload)`` where payload is a dict or a zero-argument callable
    producing one (a decision's ``to_dict`` runs here, not on the hot path).
    """

    _STOP = object()

    def __init__(self, sink: AuditLogLike) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="riskguard-audit", daemon=True)
        self._thread.start()
        self._closed = False

    def put(self, event: str, payload: Any) -> None:
        self._q.put((event, payload))

    def _run(self) -> None:
        q = self._q
        while True:
            item = q.get()
            try:
                if item is self._STOP:
                    return
                event, payload = item
                if self.error is None:
                    record = payload() if callable(payload) else payload
                    self.sink.append(event, record)
            except BaseException as exc:  # noqa: BLE001 - recorded; later checks fail closed
                if self.error is None:
                    self.error = exc
                    log.error("audit log write failed; denying further decisions: %s", exc)
            finally:
                q.task_done()

    def flush(self) -> None:
        self._q.join()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._q.put(self._STOP)
        self._thread.join()
        self.sink.close()


def _flush_at_exit(ref: weakref.ref) -> None:
    w = ref()
    if w is not None and not w._closed:
        with contextlib.suppress(Exception):  # interpreter shutdown: best effort
            w.close()


class _SyncWriter:
    """Same interface, appending inline (``audit_async=False``: one-shot CLI use, tests)."""

    def __init__(self, sink: AuditLogLike) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self._closed = False

    def put(self, event: str, payload: Any) -> None:
        if self.error is not None:
            return
        try:
            self.sink.append(event, payload() if callable(payload) else payload)
        except Exception as exc:  # noqa: BLE001 - recorded; later checks fail closed
            self.error = exc
            log.error("audit log write failed; denying further decisions: %s", exc)

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
        clock: Callable[[], float] = time.time,
        plugins: tuple[str, ...] | list[str] = (),
        time_budget_ms: float | None = None,
        max_stuck_workers: int = 4,
    ) -> None:
        if time_budget_ms is not None and not time_budget_ms > 0:
            raise ValueError(
                f"time_budget_ms must be > 0 (or None for no budget), got {time_budget_ms!r}"
            )
        self._policy = policy
        self._source = source
        self._plugins = tuple(plugins)
        self._clock = clock
        self._lock = threading.RLock()  # state changes (reload, kill switch)
        self._eval_lock = threading.Lock()  # one evaluation at a time: stateful rules
        self.state: dict = {}  # per-rule state for stateful rules (rates, drawdown peaks, kill switch)
        self.time_budget_ms = time_budget_ms
        self._budget_s = None if time_budget_ms is None else time_budget_ms / 1000.0
        self._runner = _BudgetRunner(max_stuck_workers) if time_budget_ms is not None else None
        self._writer: _AuditWriter | _SyncWriter | None = None
        if audit_log is not None:
            if isinstance(audit_log, (str, Path)):
                from riskguard.decisionlog.log import AuditLog

                sink: AuditLogLike = AuditLog(audit_log, key=audit_key, fsync=audit_fsync)
            else:
                sink = audit_log
            if audit_async:
                w = _AuditWriter(sink)
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
                {"kept": old.ref, "source": _source_name(src), "error": str(exc)},
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
        """Decide on ``snapshot`` (and ``order``); the decision is queued for the audit log.

        Bad input (a dict that is not a valid snapshot or order) raises
        :class:`riskguard.SnapshotError`; faults while evaluating deny.
        """
        snap, o = _inputs(snapshot, order)
        policy = self._policy
        now = self.now_ms()
        w = self._writer
        if w is not None and w.error is not None:
            return self._audit_down(policy, snap, o, now, None, ref)
        if self._budget_s is None:
            with self._eval_lock:
                decision = evaluate(policy, snap, o, now_ms=now, state=self.state, ref=ref)
        else:
            decision = self._bounded(policy, snap, o, now, ref)
        return self._record(decision, snapshot)

    async def acheck(
        self,
        snapshot: dict | Snapshot,
        order: dict | Order | None = None,
        *,
        ref: str | None = None,
    ) -> Decision:
        """``check`` for asyncio: runs inline (microseconds), never waits on the audit log.

        With a time budget the evaluation is awaited on its worker thread, so even a hung
        plugin rule does not block the event loop.
        """
        if self._budget_s is None:
            return self.check(snapshot, order, ref=ref)
        snap, o = _inputs(snapshot, order)
        policy = self._policy
        now = self.now_ms()
        t0 = time.perf_counter_ns()
        if self._writer is not None and self._writer.error is not None:
            return self._audit_down(policy, snap, o, now, t0, ref)
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
        return self._record(decision, snapshot)

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
        return evaluate(self._policy, snap, o, now_ms=self.now_ms(), state=state)

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
        w.put("decision", _DecisionRecord(decision))
        return decision

    def _audit(self, event: str, record: dict) -> None:
        if self._writer is not None:
            self._writer.put(event, record)

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
                return evaluate(policy, snap, o, now_ms=now, state=state, ref=ref)
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
        return _fault(
            policy,
            snap,
            o,
            now,
            t0 or time.perf_counter_ns(),
            ref,
            "AUDIT_LOG_UNAVAILABLE",
            f"the audit log cannot be written ({type(err).__name__}: {err}); failing closed",
            {"error": type(err).__name__},
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
