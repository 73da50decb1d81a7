"""Notifications through apprise: one URL per route (Telegram, Slack, Discord, e-mail,
a generic JSON webhook, ...), routed by severity.

Sending never delays protection: the watcher only *enqueues* an alert; one background
task sends it (apprise's blocking call runs in a worker thread) and retries a failed
route with exponential backoff and jitter. An alert that still fails after the retries is
logged and counted (``riskguard_watch_alerts_total{result="failed"}``), never raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from riskguard.faces.watch.config import Route
from riskguard.faces.watch.episodes import Alert

log = logging.getLogger("riskguard.watch.alerts")

_TYPES = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}


def _apprise() -> Any:
    try:
        import apprise
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise ImportError("alerts need apprise: pip install 'riskguard[watch]'") from exc
    return apprise


class Notifier:
    """Queue alerts; ``run()`` (a task) sends them route by route."""

    def __init__(
        self,
        routes: tuple[Route, ...],
        *,
        retries: int = 5,
        backoff: float = 1.0,
        on_result: Callable[[Alert, str, str], None] | None = None,
        source: str | None = None,
    ) -> None:
        self.routes = routes
        self.retries = retries
        self.backoff = backoff
        self.on_result = on_result
        self.queue: asyncio.Queue[Alert | None] = asyncio.Queue()
        self._clients: list[Any] = []
        if routes:
            ap = _apprise()
            quiet = logging.getLogger("apprise")
            for i, r in enumerate(routes):
                a = ap.Apprise()
                was, quiet.disabled = quiet.disabled, True  # apprise logs the URL, token and all
                try:
                    ok = a.add(r.url)
                finally:
                    quiet.disabled = was
                if not ok:
                    from riskguard.errors import RiskguardError

                    raise RiskguardError(
                        f"spec.alerts.routes[{i}]: apprise does not understand the URL "
                        f"{_safe(r.url)} (see https://github.com/caronc/apprise/wiki)",
                        file=source,
                    )
                self._clients.append(a)
        self.sent = 0
        self.failed = 0

    def submit(self, alert: Alert) -> None:
        """Never blocks, never raises."""
        if self.routes:
            self.queue.put_nowait(alert)

    async def run(self) -> None:
        while True:
            alert = await self.queue.get()
            try:
                if alert is None:
                    return
                await asyncio.gather(
                    *(
                        self._send(i, r, alert)
                        for i, r in enumerate(self.routes)
                        if r.wants(alert.severity)
                    )
                )
            finally:
                self.queue.task_done()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until every queued alert was tried."""
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except asyncio.TimeoutError:
            log.warning("alerts still queued at shutdown: %d", self.queue.qsize())

    async def _send(self, i: int, route: Route, alert: Alert) -> None:
        client = self._clients[i]
        ntype = _TYPES.get(alert.severity, "info")
        for attempt in range(self.retries + 1):
            try:
                ok = await asyncio.to_thread(
                    client.notify, body=alert.body, title=alert.title, notify_type=ntype
                )
            except Exception as exc:  # noqa: BLE001 - a notifier fault never stops the watcher
                log.warning("alert to %s raised: %s", _safe(route.url), exc)
                ok = False
            if ok:
                self.sent += 1
                if self.on_result:
                    self.on_result(alert, route.url, "sent")
                return
            if attempt < self.retries:
                delay = self.backoff * (2**attempt)
                await asyncio.sleep(delay * (0.5 + random.random()))
        self.failed += 1
        log.error(
            "alert %r to %s failed after %d tries", alert.title, _safe(route.url), self.retries + 1
        )
        if self.on_result:
            self.on_result(alert, route.url, "failed")


def _safe(url: str) -> str:
    """The scheme and host only: apprise URLs carry tokens."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…"
