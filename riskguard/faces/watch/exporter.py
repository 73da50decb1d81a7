"""Prometheus exporter: ``/metrics`` (prometheus-client's text format) and ``/healthz``.

Served by a small threaded HTTP server on its own thread, so a slow scrape never touches
the watch loop. Metric names (all prefixed ``riskguard_watch_``) are listed in
``docs/watch.md``; labels are ``account`` and, per position, ``symbol`` and ``side``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _prom() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise ImportError("metrics need prometheus-client: pip install 'riskguard[watch]'") from exc
    return prometheus_client


class WatchMetrics:
    """The watcher's figures in a private registry (no global state)."""

    def __init__(self) -> None:
        p = _prom()
        self.registry = reg = p.CollectorRegistry()
        A = ["account"]
        n = "riskguard_watch_"
        self.equity = p.Gauge(n + "equity", "account equity in settle currency", A, registry=reg)
        self.utilization = p.Gauge(
            n + "margin_utilization", "total initial margin / equity", A, registry=reg
        )
        self.margin_ratio = p.Gauge(
            n + "margin_ratio", "total maintenance margin / equity", A, registry=reg
        )
        self.open_episodes = p.Gauge(n + "open_episodes", "open alert episodes", A, registry=reg)
        self.liq_distance = p.Gauge(
            n + "liquidation_distance_percent",
            "distance from mark to liquidation price, percent of mark",
            ["account", "symbol", "side"],
            registry=reg,
        )
        self.decisions = p.Counter(
            n + "decisions", "decisions by outcome", ["account", "decision"], registry=reg
        )
        self.violations = p.Counter(
            n + "violations", "violations by reason code", ["account", "code"], registry=reg
        )
        self.fetch_seconds = p.Histogram(
            n + "fetch_seconds",
            "time to fetch one snapshot",
            A,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=reg,
        )
        self.fetch_errors = p.Counter(
            n + "fetch_errors", "failed fetches by error type", ["account", "error"], registry=reg
        )
        self.last_update = p.Gauge(
            n + "last_update_timestamp_seconds",
            "time of the last successful snapshot (unix seconds)",
            A,
            registry=reg,
        )
        self.state = p.Gauge(
            n + "account_state",
            "1 for the account's current state (watching, blind, halted, stopped)",
            ["account", "state"],
            registry=reg,
        )
        self.actions = p.Counter(
            n + "actions",
            "protective actions by type and result",
            ["account", "type", "status"],
            registry=reg,
        )
        self.alerts = p.Counter(
            n + "alerts", "alert deliveries by result", ["result"], registry=reg
        )
        self._positions: dict[str, set] = {}

    def set_state(self, account: str, state: str) -> None:
        for s in ("watching", "blind", "halted", "stopped"):
            self.state.labels(account, s).set(1.0 if s == state else 0.0)

    def observe_decision(self, account: str, decision: Any) -> None:
        self.decisions.labels(account, decision.decision).inc()
        for v in decision.violations:
            self.violations.labels(account, v.code).inc()
        m = decision.metrics
        if m is None:
            return
        self.equity.labels(account).set(m.equity)
        if m.marginUtilization is not None:
            self.utilization.labels(account).set(m.marginUtilization)
        if m.marginRatio is not None:
            self.margin_ratio.labels(account).set(m.marginRatio)
        now = set()
        for p in m.positions:
            if p.liquidationDistancePct is not None:
                self.liq_distance.labels(account, p.symbol, p.side).set(p.liquidationDistancePct)
                now.add((p.symbol, p.side))
        for sym, side in self._positions.get(account, set()) - now:
            with contextlib.suppress(KeyError):
                self.liq_distance.remove(account, sym, side)
        self._positions[account] = now

    def render(self) -> bytes:
        return _prom().generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` (port 0: any free port)."""

    def __init__(self, metrics: WatchMetrics, host: str, port: int, health: Any) -> None:
        self.metrics = metrics
        self.health = health  # () -> (ok: bool, detail: dict)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = outer.metrics.render()
                    self._reply(200, body, _prom().CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok, detail = outer.health()
                    body = json.dumps({"ok": ok, **detail}).encode()
                    self._reply(200 if ok else 503, body, "application/json")
                else:
                    self._reply(404, b"not found: try /metrics or /healthz\n", "text/plain")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="riskguard-watch-metrics", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]  # type: ignore[return-value]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
