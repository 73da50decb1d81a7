"""Engines that run :func:`riskguard.auditrun.run_chunk` somewhere else: a local process
pool, or a Dask cluster.

Both take an iterator of chunks (lists of raw records) and call ``consume`` with each
chunk's :class:`~riskguard.auditrun.ChunkResult` **in input order**. At most a small
window of chunks is in flight, so memory stays flat however long the input; results
arriving out of order wait in that window. Workers load the policy once (a pool
initializer; a per-process cache on Dask workers) from the compiled policy document the
parent sends, and check its digest.

Interrupted (KeyboardInterrupt in the parent), an engine stops submitting, lets the
chunks already running finish, hands every finished result to ``consume`` in order and
re-raises: nothing already evaluated is lost.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .auditrun import AuditConfig, ChunkResult, run_chunk

Consume = Callable[[ChunkResult], None]

# --------------------------------------------------------------------------- worker side

_STATE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _policy_for(config: AuditConfig):
    """The compiled policy for ``config`` in this process, loaded once."""
    key = (config.policy_digest, config.plugins)
    policy = _STATE.get(key)
    if policy is None:
        with _LOCK:
            policy = _STATE.get(key)
            if policy is None:
                policy = config.load()
                _STATE[key] = policy
    return policy


def _init_pool_worker(config: AuditConfig) -> None:
    # Ctrl-C reaches the whole process group; only the parent decides what to do with it
    # (finish running chunks, write them, stop), so workers must not die mid-chunk.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _CONFIG
    _CONFIG = config
    _policy_for(config)


_CONFIG: AuditConfig | None = None


def _pool_chunk(chunk: list) -> ChunkResult:
    assert _CONFIG is not None, "worker not initialised"
    return run_chunk(_policy_for(_CONFIG), _CONFIG, chunk)


def _dask_chunk(config: AuditConfig, chunk: list) -> ChunkResult:
    return run_chunk(_policy_for(config), config, chunk)


# --------------------------------------------------------------------------- ordering


def _drain(pending: deque, consume: Consume, *, block_until: int) -> None:
    """Consume finished heads in order; block on the head while more than ``block_until`` wait."""
    while pending and (len(pending) > block_until or pending[0].done()):
        consume(pending.popleft().result())


def _finish_after_interrupt(pending: deque, consume: Consume, *, wait_running: bool) -> None:
    """Stop: keep every finished result (in order, up to the first gap), drop the rest.

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


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where available (no fork of a threaded parent, shared imports), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["riskguard.auditrun"])
        return ctx
    return multiprocessing.get_context("spawn")


def default_workers() -> int:
    """All cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- engines


def pool_map(
    config: AuditConfig,
    chunks: Iterable[list],
    consume: Consume,
    *,
    workers: int,
    window: int | None = None,
) -> None:
    """Evaluate ``chunks`` on a pool of ``workers`` processes; ``consume`` results in order."""
    window = window or 2 * workers
    pending: deque[Future] = deque()
    with ProcessPoolExecutor(
        workers,
        mp_context=_mp_context(),
        initializer=_init_pool_worker,
        initargs=(config,),
    ) as ex:
        try:
            for chunk in chunks:
                pending.append(ex.submit(_pool_chunk, chunk))
                _drain(pending, consume, block_until=window - 1)
            _drain(pending, consume, block_until=0)
        except KeyboardInterrupt:
            _finish_after_interrupt(pending, consume, wait_running=True)
            raise


def dask_map(
    config: AuditConfig,
    chunks: Iterable[list],
    consume: Consume,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    window: int | None = None,
) -> None:
    """Evaluate ``chunks`` on a Dask cluster; ``consume`` results in order.

    ``scheduler``: the address of a running scheduler; without one (and without a
    ``client``) a ``LocalCluster`` of ``workers`` single-threaded processes is started and
    closed again. Records are read here, in the client, and shipped with the tasks.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # the [dask] extra
        from .errors import RiskguardError

        raise RiskguardError(
            '--engine dask needs Dask: pip install "riskguard[dask]" '
            '(or pip install "dask[distributed]")'
        ) from exc

    cluster = None
    own_client = client is None
    if client is None:
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
    try:
        n = len(client.scheduler_info(n_workers=-1).get("workers", {})) or (workers or 1)
    except TypeError:  # older distributed: no n_workers argument
        n = len(client.scheduler_info().get("workers", {})) or (workers or 1)
    window = window or 2 * n
    pending: deque = deque()
    try:
        cfg = client.scatter(config, broadcast=True)
        try:
            for chunk in chunks:
                pending.append(client.submit(_dask_chunk, cfg, chunk, pure=False))
                _drain(pending, consume, block_until=window - 1)
            _drain(pending, consume, block_until=0)
        except KeyboardInterrupt:
            _finish_after_interrupt(pending, consume, wait_running=False)
            raise
    finally:
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
