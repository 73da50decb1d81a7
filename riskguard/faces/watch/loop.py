"""The watch loop: per account, concurrently, snapshot -> Guard.check -> sinks.

One asyncio task per account. A round fetches a snapshot through the existing
:class:`~riskguard.contrib.ccxt_guard.SnapshotBuilder` (``afetch``), archives it,
decides with the account's :class:`~riskguard.Guard` (the decision goes to the shared
hash-chained audit log), turns violations into episodes and alerts, updates the
Prometheus figures and, when allowed, applies protective actions through the rails.
With ``stream: auto`` an exchange that has ccxt's ``watchPositions`` wakes the account
on every position update (ccxt.pro); otherwise it is polled every ``interval``.

Sinks cannot delay each other: alerts are queued for a sender task, metrics are
in-memory counters read by the exporter's own thread, archive and audit appends are a
single unbuffered ``write`` each.

Faults: ccxt ``NetworkError`` (``RateLimitExceeded``, ``DDoSProtection``,
``RequestTimeout``...) backs off exponentially with jitter, never faster than the
exchange's ``rateLimit``; repeated failures or data older than
``blindAfterIntervals`` intervals raise a critical ``watch.blind`` episode; an
``AuthenticationError`` stops that account (critical alert), the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from riskguard.engine.decision import BLOCKING
from riskguard.engine.policy import load_policy
from riskguard.faces.guard import Guard
from riskguard.faces.watch.archive import SnapshotArchive
from riskguard.faces.watch.config import (
    AccountConfig,
    WatchConfig,
    credentials_from_env,
    parse_listen,
)
from riskguard.faces.watch.episodes import (
    AUTH_RULE,
    BLIND_RULE,
    EXEC_RULE,
    HALT_RULE,
    Alert,
    Breach,
    Episode,
    EpisodeBook,
    breaches_of,
)
from riskguard.faces.watch.execution import LoopBridge, Rails, client_order_id, verified
from riskguard.faces.watch.state import load_state, save_state

log = logging.getLogger("riskguard.watch")

#: seconds a round in flight may take to finish after SIGTERM before it is abandoned
SHUTDOWN_GRACE = 10.0


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError as exc:  # pragma: no cover
        raise ImportError("riskguard watch needs ccxt: pip install 'riskguard[watch]'") from exc
    return ccxt


def make_exchange(a: AccountConfig) -> Any:
    """An asyncio ccxt exchange for the account (ccxt.pro when it may stream).

    ``exchange: paper`` is riskguard's paper exchange holding the snapshot named by
    ``options.snapshot`` (a dry run of a watch config, nothing real involved).
    """
    if a.exchange == "paper":
        from riskguard.paper import AsyncPaperExchange

        opts = dict(a.options)
        snap = opts.pop("snapshot")
        return AsyncPaperExchange({a.name: snap}, **opts)
    _ccxt()  # a clear error when the extra is missing
    cls = None
    if a.stream in ("auto", "websocket"):
        with contextlib.suppress(ImportError):
            import ccxt.pro as pro

            cls = getattr(pro, a.exchange, None)
    if cls is None:
        import ccxt.async_support as aio

        cls = getattr(aio, a.exchange, None)
    if cls is None:
        from riskguard.errors import RiskguardError

        raise RiskguardError(f"account {a.name}: ccxt has no exchange {a.exchange!r}")
    config = {"enableRateLimit": True, **a.options, **credentials_from_env(a)}
    ex = cls(config)
    # the watcher asks for every open order of the account at once, knowingly
    ex.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    if a.sandbox:
        ex.set_sandbox_mode(True)
    return ex


def _executor_severity(min_severity: str) -> dict:
    """The rails already screened the severity; an executor that screens too (``min_severity``,
    issue 13) is told the same threshold, so the two never disagree."""
    import inspect

    from riskguard.contrib.ccxt_guard import CcxtExecutor

    if "min_severity" in inspect.signature(CcxtExecutor.__init__).parameters:
        return {"min_severity": min_severity}
    return {}


class SharedAudit:
    """One hash-chained log for every account's guard (``close`` is the watcher's)."""

    def __init__(self, path: str) -> None:
        from riskguard.decisionlog.log import AuditLog

        self.log = AuditLog(path)

    def append(self, event: str, record: dict) -> Any:
        return self.log.append(event, record)

    def close(self) -> None:  # each guard closes its writer; the log outlives them
        pass

    def shutdown(self) -> None:
        self.log.close()


class AccountWatch:
    """One account's loop."""

    def __init__(self, watcher: Watcher, cfg: AccountConfig, exchange: Any, guard: Guard) -> None:
        from riskguard.contrib.ccxt_guard import SnapshotBuilder

        self.w = watcher
        self.cfg = cfg
        self.name = cfg.name
        self.exchange = exchange
        self.guard = guard
        self.builder = SnapshotBuilder(
            exchange, settle=cfg.settle, account=cfg.name, ohlcv=cfg.candles, clock=watcher.clock
        )
        self.interval = watcher.config.account_interval(cfg)
        self.state = "watching"
        self.failures = 0
        self.last_ok: float | None = None
        self.started = watcher.clock()
        self.last_snapshot: Any = None
        self.last_decision: Any = None
        self.rounds = 0
        self.rails = Rails.from_dict(
            watcher.config.execution, (watcher.saved.get("rails") or {}).get(cfg.name)
        )
        self._stream_ok = cfg.stream != "poll"
        self._dry_seen: set[str] = set()

    # ------------------------------------------------------------------ loop

    async def run(self, *, once: bool = False) -> None:
        w = self.w
        if w.metrics:
            w.metrics.set_state(self.name, self.state)
        if not once and len(w.accounts) > 1:
            # spread the accounts over the interval: no burst of requests every interval
            await self._wait(random.uniform(0.0, self.interval))
        while not w.stopping.is_set():
            delay = await self.round()
            if once or self.state == "stopped":
                return
            await self._wait(delay)

    async def _wait(self, delay: float) -> None:
        """Sleep until the next round, the stop event, or (streaming) a position update."""
        stop = asyncio.ensure_future(self.w.stopping.wait())
        waiters = [stop]
        watch = None
        if self._stream_ok and self.failures == 0 and self._can_stream():
            watch = asyncio.ensure_future(self.exchange.watch_positions())
            waiters.append(watch)
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED
            )
            if watch is not None and watch in done and watch.exception() is not None:
                log.warning(
                    "%s: websocket updates failed (%s); polling instead",
                    self.name,
                    watch.exception(),
                )
                self._stream_ok = False
        finally:
            for f in waiters:
                if not f.done():
                    f.cancel()
            for f in waiters:
                with contextlib.suppress(BaseException):
                    await f

    def _can_stream(self) -> bool:
        has = getattr(self.exchange, "has", {}) or {}
        return bool(has.get("watchPositions")) and hasattr(self.exchange, "watch_positions")

    async def round(self) -> float:
        """One round; returns the delay before the next one."""
        w = self.w
        now = w.clock()
        halted = w.check_kill_switch()
        if halted and self.guard.trading_state != "halted":
            self.guard.set_trading_state("halted", reason="kill switch")
        elif not halted and self.guard.trading_state == "halted":
            self.guard.set_trading_state("active", reason="kill switch released")
        ccxt = _ccxt()
        t0 = time.perf_counter()
        try:
            snap = await self.builder.afetch(self.cfg.symbols or ())
        except ccxt.AuthenticationError as exc:
            self._stop(exc, now)
            return 0.0
        except ccxt.NetworkError as exc:
            return self._failed(exc, now, backoff=True)
        except Exception as exc:  # noqa: BLE001 - an exchange or mapping fault: blind, retried
            return self._failed(exc, now, backoff=False)
        took = time.perf_counter() - t0
        self.rounds += 1
        now = w.clock()
        if w.metrics:
            w.metrics.fetch_seconds.labels(self.name).observe(took)
            w.metrics.last_update.labels(self.name).set(now)
        self.failures = 0
        self.last_ok = now
        # seen again: a blind or authentication episode (maybe from before a restart) is over
        self._emit(w.book.resolve(self.name, BLIND_RULE, None, now))
        self._emit(w.book.resolve(self.name, AUTH_RULE, None, now))
        self.state = "halted" if halted else "watching"
        if w.metrics:
            w.metrics.set_state(self.name, self.state)
        if w.archive is not None:
            w.archive.append(snap.to_dict())
        decision = await self.guard.acheck(snap)
        self.last_snapshot, self.last_decision = snap, decision
        if w.metrics:
            w.metrics.observe_decision(self.name, decision)
        self._emit(w.book.update(self.name, breaches_of(decision.violations), now))
        if w.metrics:
            w.metrics.open_episodes.labels(self.name).set(len(w.book.of(self.name)))
        if not halted and w.config.execution.allow and decision.actions:
            await self._execute(snap, decision, now)
        w.dirty = True
        return self.interval

    # ------------------------------------------------------------------ faults

    def _failed(self, exc: Exception, now: float, *, backoff: bool) -> float:
        w = self.w
        self.failures += 1
        kind = type(exc).__name__
        log.warning("%s: fetch failed (%d in a row): %s: %s", self.name, self.failures, kind, exc)
        if w.metrics:
            w.metrics.fetch_errors.labels(self.name, kind).inc()
        age = now - (self.last_ok if self.last_ok is not None else self.started)
        stale = age > w.config.blind_after_intervals * self.interval
        if self.failures >= w.config.blind_after_failures or stale:
            if self.state != "blind":
                self.state = "blind"
                if w.metrics:
                    w.metrics.set_state(self.name, "blind")
            msg = (
                f"no fresh data for {age:.0f}s ({self.failures} failed fetches in a row; "
                f"last error {kind}: {str(exc)[:200]})"
            )
            self._emit(
                w.book.raise_(
                    self.name, Breach(BLIND_RULE, None, "critical", "WATCH_BLIND", msg), now
                )
            )
            w.dirty = True
        rate = float(getattr(self.exchange, "rateLimit", 0) or 0) / 1000.0
        if backoff:
            base = max(self.interval, rate)
            delay = min(w.config.max_backoff, base * (2 ** min(self.failures - 1, 16)))
            delay = max(rate, delay * (0.5 + random.random()))  # full jitter, never under the limit
        else:
            delay = self.interval
        return delay

    def check_stale(self, now: float) -> None:
        """Blind when the last good snapshot is older than ``blindAfterIntervals`` intervals."""
        if self.state in ("stopped", "blind"):
            return
        age = now - (self.last_ok if self.last_ok is not None else self.started)
        if age > self.w.config.blind_after_intervals * self.interval + self.interval:
            self.state = "blind"
            if self.w.metrics:
                self.w.metrics.set_state(self.name, "blind")
            msg = f"no fresh data for {age:.0f}s (the exchange has not answered)"
            self._emit(
                self.w.book.raise_(
                    self.name, Breach(BLIND_RULE, None, "critical", "WATCH_BLIND", msg), now
                )
            )
            self.w.dirty = True

    def _stop(self, exc: Exception, now: float) -> None:
        w = self.w
        self.state = "stopped"
        if w.metrics:
            w.metrics.set_state(self.name, "stopped")
        msg = f"authentication failed; this account is no longer watched: {type(exc).__name__}: {str(exc)[:200]}"
        log.error("%s: %s", self.name, msg)
        self._emit(
            w.book.raise_(self.name, Breach(AUTH_RULE, None, "critical", "WATCH_AUTH", msg), now)
        )
        w.dirty = True

    def _emit(self, alerts: list[Alert]) -> None:
        for a in alerts:
            self.w.alert(a)

    # ------------------------------------------------------------------ execution

    async def _execute(self, snap: Any, decision: Any, now: float) -> None:
        from riskguard.contrib.ccxt_guard import CcxtExecutor

        w = self.w
        cfg = w.config.execution
        for action in decision.actions:
            if action.type in ("alert", "block_order", "resize_order", "halt_trading"):
                continue
            why = self.rails.screen(action, decision, now)
            if why is not None:
                log.debug("%s: not executing %s %s: %s", self.name, action.type, action.symbol, why)
                continue
            ep = w.book.open.get((self.name, action.rule, action.symbol))
            cid = client_order_id(self.name, ep.opened if ep else None, action)
            if cid in self.rails.sent or cid in self._dry_seen:
                continue  # sent before (maybe before a restart): never twice
            amount = action.params.get("amount")
            entry = {
                "at": now,
                "type": action.type,
                "symbol": action.symbol,
                "rule": action.rule,
                "id": cid,
                "amount": float(amount) if isinstance(amount, (int, float)) else None,
                "status": "dry-run" if cfg.dry_run else "pending",
            }
            if cfg.dry_run:
                self._dry_seen.add(cid)  # print each would-be action once, not every round
            else:
                # the intent is on disk before anything is sent: a crash cannot resend it
                self.rails.sent.add(cid)
                self.rails.history.append(entry)
                w.save_state()
            one = replace(decision, actions=(action,))
            loop = asyncio.get_running_loop()
            executor = CcxtExecutor(
                LoopBridge(self.exchange, loop, cid),
                apply=(action.type,),
                dry_run=cfg.dry_run,
                **_executor_severity(cfg.min_severity),
            )
            result = (await asyncio.to_thread(executor.execute, one)).results[0]
            entry["status"] = result.status
            entry["detail"] = result.detail[:300]
            if result.exchangeCode:
                entry["exchangeCode"] = result.exchangeCode
            if cfg.dry_run:
                self.rails.history.append(entry)
                print(
                    f"dry-run: {self.name}: would {action.type} {action.symbol or ''} "
                    f"{ {k: v for k, v in action.params.items() if k in ('price', 'amount', 'to')} } "
                    f"(client id {cid})",
                    file=sys.stderr,
                )
            elif result.status == "applied":
                try:
                    after = await self.builder.afetch(self.cfg.symbols or ())
                except Exception as exc:  # noqa: BLE001 - verification is best effort
                    log.warning("%s: re-fetch to verify %s failed: %s", self.name, action.type, exc)
                    after = None
                ok = verified(action, snap, after)
                entry["verified"] = ok
                sev = "warning" if ok else "error"
                msg = (
                    f"{action.type} {action.symbol or ''} "
                    f"{ {k: v for k, v in action.params.items() if k in ('price', 'amount', 'to')} } "
                    f"applied (client id {cid}); verified: {ok}"
                )
                self._emit(
                    [Alert("event", self.name, EXEC_RULE, action.symbol, sev, msg, w.clock())]
                )
            else:
                msg = (
                    f"{action.type} {action.symbol or ''} {result.status} by the exchange"
                    f"{' (code ' + result.exchangeCode + ')' if result.exchangeCode else ''}: "
                    f"{result.detail[:200]}; not retried"
                )
                log.error("%s: %s", self.name, msg)
                self._emit(
                    [Alert("event", self.name, EXEC_RULE, action.symbol, "error", msg, w.clock())]
                )
            w.executions.append({"account": self.name, **entry})
            if w.metrics:
                w.metrics.actions.labels(self.name, action.type, result.status).inc()
            w.guard_audit(
                "watch_execution",
                {"account": self.name, "decisionId": decision.decisionId, **entry},
            )
            w.save_state()


class Watcher:
    """Every account's loop, the sinks they share, the kill switch and the state file."""

    def __init__(
        self,
        config: WatchConfig,
        *,
        exchange_factory: Callable[[AccountConfig], Any] = make_exchange,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[Alert], None] | None = None,
        status: bool | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.exchange_factory = exchange_factory
        self.on_alert = on_alert
        self.stopping = asyncio.Event()
        self._halt_signal = False
        self._was_halted = False
        self.dirty = False
        self.executions: list[dict] = []
        self.saved = load_state(config.state_file)
        self.book = EpisodeBook(
            config.reminder_interval,
            (Episode.from_dict(e) for e in self.saved.get("episodes") or ()),
        )
        self.audit = SharedAudit(config.audit_log) if config.audit_log else None
        self.archive = (
            SnapshotArchive(config.archive_dir, gzip=config.archive_gzip, clock=clock)
            if config.archive_dir
            else None
        )
        self.metrics = None
        self.server = None
        if config.metrics_listen:
            from riskguard.faces.watch.exporter import MetricsServer, WatchMetrics

            self.metrics = WatchMetrics()
            host, port = parse_listen(config.metrics_listen)
            self.server = MetricsServer(self.metrics, host, port, self.health)
        from riskguard.faces.watch.alerts import Notifier

        def on_result(alert: Alert, url: str, result: str) -> None:
            if self.metrics:
                self.metrics.alerts.labels(result).inc()

        self.notifier = Notifier(
            config.routes,
            retries=config.alert_retries,
            backoff=config.alert_retry_backoff,
            on_result=on_result,
            source=config.source,
        )
        self.status = sys.stderr.isatty() if status is None else status
        policies: dict[str, Any] = {}
        self.accounts: list[AccountWatch] = []
        for a in config.accounts:
            if a.policy not in policies:
                policies[a.policy] = load_policy(a.policy)
            guard = Guard(
                policies[a.policy],
                source=a.policy,
                audit_log=self.audit,
                audit_async=False,
                clock=clock,
            )
            self.accounts.append(AccountWatch(self, a, exchange_factory(a), guard))

    # ------------------------------------------------------------------ shared

    def alert(self, a: Alert) -> None:
        log.info("%s %s", a.title, a.body)
        self.notifier.submit(a)
        if self.on_alert is not None:
            self.on_alert(a)
        self.guard_audit("watch_alert", a.to_dict())

    def guard_audit(self, event: str, record: dict) -> None:
        if self.audit is not None:
            try:
                self.audit.append(event, record)
            except Exception as exc:  # noqa: BLE001 - the guard's own decisions fail closed
                log.error("audit log write failed: %s", exc)

    def halted(self) -> bool:
        if self._halt_signal:
            return True
        f = self.config.kill_switch_file
        return bool(f) and os.path.exists(f)  # type: ignore[arg-type]

    def halt(self, on: bool = True) -> None:
        """The kill switch from code or a signal (SIGUSR1 halts, SIGUSR2 releases)."""
        self._halt_signal = on
        self.check_kill_switch()

    def check_kill_switch(self) -> bool:
        """Whether every account is halted now; alerts once when that changes."""
        now_halted = self.halted()
        if now_halted != self._was_halted:
            self._was_halted = now_halted
            how = "signal" if self._halt_signal else f"file {self.config.kill_switch_file}"
            if now_halted:
                msg = f"kill switch ({how}): every account halted; nothing is executed"
                self.alert(Alert("open", "*", HALT_RULE, None, "critical", msg, self.clock()))
            else:
                msg = "kill switch released: accounts are active again"
                self.alert(Alert("resolve", "*", HALT_RULE, None, "critical", msg, self.clock()))
        return now_halted

    def health(self) -> tuple[bool, dict]:
        states = {a.name: a.state for a in self.accounts}
        ok = all(s in ("watching", "halted") for s in states.values())
        return ok, {"accounts": states, "openEpisodes": len(self.book.open)}

    def save_state(self) -> None:
        if self.config.state_file is None:
            return
        save_state(
            self.config.state_file,
            {
                "episodes": [e.to_dict() for e in self.book.open.values()],
                "rails": {a.name: a.rails.to_dict() for a in self.accounts},
                "savedAt": self.clock(),
            },
        )
        self.dirty = False

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return self.server.address if self.server else None

    # ------------------------------------------------------------------ running

    async def run(self, *, once: bool = False) -> int:
        """Watch until stopped (SIGTERM/SIGINT, or ``stop()``); ``once``: one round each."""
        loop = asyncio.get_running_loop()
        installed = []
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
            loop.add_signal_handler(signal.SIGUSR1, self.halt, True)
            installed.append(signal.SIGUSR1)
            loop.add_signal_handler(signal.SIGUSR2, self.halt, False)
            installed.append(signal.SIGUSR2)
        if self.server:
            self.server.start()
        sender = asyncio.ensure_future(self.notifier.run())
        saver = asyncio.ensure_future(self._saver())
        status = asyncio.ensure_future(self._status()) if self.status and not once else None
        tasks = [asyncio.ensure_future(a.run(once=once)) for a in self.accounts]
        stop = asyncio.ensure_future(self.stopping.wait())
        every = asyncio.gather(*tasks, return_exceptions=True)
        try:
            # until every account is done (--once, or all stopped) or the watcher is stopped
            first: set[asyncio.Future[Any]] = {every, stop}
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            self.stopping.set()
            # a round in flight may finish (its decision logged, its action verified);
            # a fetch that hangs is abandoned after the grace period
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for t in pending:
                t.cancel()
            for r in await every:
                if isinstance(r, Exception):
                    raise r  # a bug, not an exchange fault: the CLI reports it (exit 3)
        finally:
            stop.cancel()
            self.stopping.set()
            helpers: list[asyncio.Future[Any] | None] = [saver, status]
            for h in helpers:
                if h is not None:
                    h.cancel()
                    with contextlib.suppress(BaseException):
                        await h
            await self.notifier.drain()
            self.notifier.queue.put_nowait(None)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(sender, 5)
            self.save_state()
            await self._close()
            for sig in installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            if status is not None:
                sys.stderr.write("\n")
        return self.exit_code()

    def exit_code(self) -> int:
        """0: nothing at error or above open; 1: a blocking episode, a blind or stopped account."""
        if any(a.state in ("blind", "stopped") or a.failures for a in self.accounts):
            return 1
        return 1 if any(e.peak in BLOCKING for e in self.book.open.values()) else 0

    def stop(self) -> None:
        self.stopping.set()

    async def _close(self) -> None:
        for a in self.accounts:
            a.guard.close()
            close: Callable[[], Awaitable[Any]] | None = getattr(a.exchange, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    got = close()
                    if asyncio.iscoroutine(got):
                        await got
        if self.audit is not None:
            self.audit.shutdown()
        if self.archive is not None:
            self.archive.close()
        if self.server is not None:
            self.server.stop()

    async def _saver(self) -> None:
        """Saves the state when it changed, and is the watchdog: an account whose fetch
        hangs (no error, no data) goes blind after ``blindAfterIntervals`` intervals."""
        tick = min(1.0, min((a.interval for a in self.accounts), default=1.0))
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            self.check_kill_switch()
            for a in self.accounts:
                a.check_stale(now)
            if self.dirty:
                self.save_state()

    async def _status(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            counts: dict[str, int] = {}
            for a in self.accounts:
                counts[a.state] = counts.get(a.state, 0) + 1
            parts = " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            line = (
                f"\rriskguard watch: {len(self.accounts)} accounts ({parts}) · "
                f"{len(self.book.open)} open episodes · {self.notifier.queue.qsize()} alerts queued "
            )
            sys.stderr.write(line[:200])
            sys.stderr.flush()
