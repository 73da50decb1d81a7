"""Engines that run :func:`riskguard.batch.run.run_chunk` somewhere else: a local process
pool, or a Dask cluster.

Both take an iterator of units of work (lists of raw records, or line ranges of a JSON
Lines file that the worker reads itself) and call ``consume`` with each
chunk's :class:`~riskguard.batch.run.ChunkResult` **in input order**. At most a small
window of chunks is in flight, so memory stays flat however long the input; results
arriving out of order wait in that window. Workers load the policy once (a pool
initializer; a per-process cache on Dask workers) from the compiled policy document the
parent sends, and check its digest.

Asked to stop (``stop()`` turns true: the command's Ctrl-C/SIGTERM handler sets it), an
engine stops reading input, keeps every result already computed, hands them to
``consume`` in order and returns: nothing already evaluated is lost, and no exception
ever lands in the middle of a write. A hard KeyboardInterrupt (a second Ctrl-C) still
cancels what is pending and propagates.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from riskguard.errors import RiskguardError

#: Seconds without any chunk finishing before a run is declared stalled (a worker stopped
#: with SIGSTOP, swapped out, hung in a plugin). A chunk takes well under a second.
DEFAULT_STALL_S = 300.0


class WorkerFailure(RiskguardError):
    """An audit worker process died (killed, out of memory) or stalled past the bound.

    ``kind`` is ``"died"`` or ``"stalled"``; the decisions consumed before it are kept.
    The ``audit`` command exits 4 with this message."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


Consume = Callable[[Any], None]
Stop = Callable[[], bool]


def _never() -> bool:
    return False


# --------------------------------------------------------------------------- worker side


class ChunkTask(Protocol):
    """What the engines run: the runner hands one in, so they never import the runner.

    It must pickle (it travels to every worker once) and be safe to call many times in
    one process; :meth:`prepare` does a worker's one-off work (load the policy)."""

    def prepare(self) -> None: ...

    def __call__(self, chunk: Any) -> Any: ...


_TASK: ChunkTask | None = None


def _init_pool_worker(task: ChunkTask) -> None:
    # Ctrl-C reaches the whole process group; only the parent decides what to do with it
    # (finish running chunks, write them, stop), so workers must not die mid-chunk.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _TASK
    _TASK = task
    task.prepare()


def _pool_chunk(chunk: Any) -> Any:
    assert _TASK is not None, "worker not initialised"
    return _TASK(chunk)


def _dask_chunk(task: ChunkTask, chunk: Any) -> Any:
    task.prepare()
    return task(chunk)


# --------------------------------------------------------------------------- ordering


def _drain(
    pending: deque,
    consume: Consume,
    *,
    block_until: int,
    stall_s: float | None = None,
    died: Callable[[], bool] | None = None,
) -> None:
    """Consume finished heads in order; block on the head while more than ``block_until`` wait.

    With ``stall_s``: raise ``WorkerFailure("stalled")`` when no chunk in the window
    finished during that many seconds of waiting on the head. With ``died`` as well (a
    pool): look every ``_POLL_S`` while waiting, and raise ``BrokenProcessPool`` as soon as
    it says a worker process is gone, whatever the executor itself has noticed."""
    while pending and (len(pending) > block_until or pending[0].done()):
        head = pending[0]
        if stall_s is None and died is None:
            res = head.result()
        else:
            bound = stall_s if stall_s is not None else math.inf
            finished = sum(f.done() for f in pending)
            start = time.monotonic()
            while True:
                left = bound - (time.monotonic() - start)
                try:
                    res = head.result(timeout=max(min(left, _POLL_S) if died else left, 0.0))
                    break
                except FutureTimeout:
                    if died is not None and died():
                        raise BrokenProcessPool("a pool worker process has exited") from None
                    if time.monotonic() - start < bound:
                        continue
                    if sum(f.done() for f in pending) > finished:
                        # other chunks finished meanwhile: a slow head, not a stall
                        finished = sum(f.done() for f in pending)
                        start = time.monotonic()
                        continue
                    raise WorkerFailure(
                        f"no audit worker finished a chunk in {stall_s:g} s (a worker stopped, "
                        "hung or swapped out); stopping. The decisions already made are kept",
                        "stalled",
                    ) from None
        pending.popleft()
        consume(res)


#: How often a wait on a pool looks whether one of its worker processes has exited. The
#: executor's own check can wedge: a worker killed while writing its result leaves part of
#: a message in the result pipe, and the executor's thread blocks reading the rest (seen
#: as a 90 s hang of tests/test_faults.py's killed-worker test).
_POLL_S = 0.5


def _pool_workers(ex: ProcessPoolExecutor) -> list[Any]:
    """The pool's worker processes (the executor keeps them in a private dict)."""
    return list((getattr(ex, "_processes", None) or {}).values())


def _a_worker_exited(ex: ProcessPoolExecutor) -> bool:
    return any(p.exitcode is not None for p in _pool_workers(ex))


def _finish_early(pending: deque, consume: Consume, *, wait_running: bool) -> None:
    """Stop early: keep every finished result (in order, up to the first gap), drop the rest.

    A pool cancels only chunks not yet started, so the running ones are waited for (a
    chunk is well under a second). Dask can cancel running tasks, so there only the
    results already finished are kept.
    """
    if not wait_running:
        while pending and pending[0].done():
            f = pending.popleft()
            try:
                res = f.result()
            except BaseException:  # noqa: BLE001 - stopping anyway; keep what came before
                break
            consume(res)
    for f in pending:
        f.cancel()
    while pending:
        f = pending.popleft()
        if f.cancelled():
            break
        try:
            res = f.result()
        except BaseException:  # noqa: BLE001 - stopping anyway; keep what came before
            break
        consume(res)
    pending.clear()


def _in_order(
    submit: Callable[[Any], Any],
    chunks: Iterable[Any],
    consume: Consume,
    window: int,
    stop: Stop,
    wait_running: bool,
    stall_s: float | None = None,
    died: Callable[[], bool] | None = None,
) -> bool:
    """Submit chunks keeping at most ``window`` in flight; consume results in input order.

    Returns False when ``stop()`` ended the run early (what already ran is still consumed)."""
    pending: deque = deque()
    try:
        for chunk in chunks:
            pending.append(submit(chunk))
            _drain(pending, consume, block_until=window - 1, stall_s=stall_s, died=died)
            if stop():
                _finish_early(pending, consume, wait_running=wait_running)
                return False
        _drain(pending, consume, block_until=0, stall_s=stall_s, died=died)
    except BaseException:
        for f in pending:
            f.cancel()
        raise
    return True


def _mp_context(task: ChunkTask) -> multiprocessing.context.BaseContext:
    """forkserver where available (no fork of a threaded parent, shared imports), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([type(task).__module__])
        return ctx
    return multiprocessing.get_context("spawn")


def close_pool(ex: ProcessPoolExecutor, failed: bool) -> None:
    """Shut a pool down: after a failure or an interrupt, end its workers at once (a
    stopped or dying worker would make ``shutdown`` wait forever, and the work still
    running is of no use); else wait for them."""
    if failed:
        procs = _pool_workers(ex)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(5)
        # A worker killed while writing its result leaves the executor's thread waiting for
        # the rest of that message for ever — this process holds the pipe's write end too,
        # so no end-of-file comes — and the interpreter's exit joins that thread (CPython's
        # ProcessPoolExecutor). With the workers gone, closing this end ends the read.
        writer = getattr(getattr(ex, "_result_queue", None), "_writer", None)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        ex.shutdown(wait=False, cancel_futures=True)
    else:
        ex.shutdown(wait=True)


@contextlib.contextmanager
def _sigint_ignored():
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def default_workers() -> int:
    """All cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- engines


def pool_map(
    task: ChunkTask,
    chunks: Iterable[list],
    consume: Consume,
    *,
    workers: int,
    window: int | None = None,
    stop: Stop = _never,
    stall_s: float | None = DEFAULT_STALL_S,
) -> bool:
    """Evaluate ``chunks`` on a pool of ``workers`` processes; ``consume`` results in order.

    Returns False when ``stop()`` ended the run early. Raises ``WorkerFailure`` when a
    worker process dies (``"died"``: killed, out of memory) or no chunk finishes within
    ``stall_s`` seconds (``"stalled"``); what was consumed before is kept."""
    window = window or 2 * workers
    ex = ProcessPoolExecutor(
        workers,
        mp_context=_mp_context(task),
        initializer=_init_pool_worker,
        initargs=(task,),
    )
    failed = False
    try:
        return _in_order(
            lambda chunk: ex.submit(_pool_chunk, chunk), chunks, consume, window, stop, True,
            stall_s, lambda: _a_worker_exited(ex),
        )  # fmt: skip
    except BrokenProcessPool:
        failed = True
        raise WorkerFailure(
            "an audit worker process died (killed, or out of memory); stopping. The "
            "decisions already made are kept",
            "died",
        ) from None
    except BaseException:
        failed = True
        raise
    finally:
        close_pool(ex, failed)


#: How long to try a ``--scheduler`` address before calling it a usage error (distributed's
#: own default is 30 s, spent in silence).
DEFAULT_CONNECT_TIMEOUT_S = 5.0


def _connect(client_cls: Any, address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address``, or a usage error at once (exit 2): a wrong
    address is the user's to fix, not a fault of riskguard."""
    from riskguard.errors import RiskguardError

    try:
        return client_cls(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        detail = str(exc).strip() or type(exc).__name__
        raise RiskguardError(
            f"--scheduler {address}: cannot reach a Dask scheduler there within {timeout:g} s "
            f"({detail}). Check the address (tcp://host:8786) and that the scheduler is "
            "running; omit --scheduler to start a local cluster"
        ) from None


def dask_map(
    task: ChunkTask,
    chunks: Iterable[list],
    consume: Consume,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    window: int | None = None,
    stop: Stop = _never,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> bool:
    """Evaluate ``chunks`` on a Dask cluster; ``consume`` results in order.

    ``scheduler``: the address of a running scheduler; without one (and without a
    ``client``) a ``LocalCluster`` of ``workers`` single-threaded processes is started and
    closed again. Records are read here, in the client, and shipped with the tasks.
    Returns False when ``stop()`` ended the run early.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # the [dask] extra
        from riskguard.errors import RiskguardError

        raise RiskguardError(
            '--engine dask needs Dask: pip install "riskguard[dask]" '
            '(or pip install "dask[distributed]")'
        ) from exc

    cluster = None
    own_client = client is None
    if client is None:
        if scheduler:
            client = _connect(Client, scheduler, connect_timeout)
        else:
            with _sigint_ignored():
                # Worker processes inherit "ignore Ctrl-C": the terminal sends it to the
                # whole process group, and only this process decides how to stop.
                cluster = LocalCluster(
                    n_workers=workers or default_workers(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            client = Client(cluster)
    try:
        n = len(client.scheduler_info(n_workers=-1).get("workers", {})) or (workers or 1)
    except TypeError:  # older distributed: no n_workers argument
        n = len(client.scheduler_info().get("workers", {})) or (workers or 1)
    window = window or 2 * n
    try:
        shared = client.scatter(task, broadcast=True)
        return _in_order(
            lambda chunk: client.submit(_dask_chunk, shared, chunk, pure=False),
            chunks,
            consume,
            window,
            stop,
            False,
        )
    finally:
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
