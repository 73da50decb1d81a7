"""Helpers for the watch tests: ccxt's real exchange classes answered from recordings,
and a real HTTP receiver on loopback for apprise's ``json://`` alerts.

Only ccxt's HTTP layer is replaced (the exchange instance's async ``fetch``); request
signing, response parsing and ccxt's own error mapping (``handle_errors``,
``handle_http_status_code``) run as they do against the exchange.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

RECORDED = Path(__file__).parent / "fixtures" / "ccxt" / "recorded"


class Recorded:
    """A real ``ccxt.async_support.<id>`` whose HTTP answers come from a recording.

    ``fault(path, n)`` may return ``(status, body_text)`` to answer instead (a 429, an
    authentication error, a 5xx), or raise (a connection error); ``overrides[path]``
    replaces a recorded body (a moved price).
    """

    def __init__(
        self, exchange_id: str, fixture: str | None = None, *, log: Path | None = None, **config
    ) -> None:
        import ccxt
        import ccxt.async_support as aio

        self.doc = json.loads((RECORDED / f"{fixture or exchange_id}.json").read_text())
        cls = getattr(aio, exchange_id)
        ex = cls(
            {"apiKey": "test-key", "secret": "test-secret", "enableRateLimit": False, **config}
        )
        ex.set_markets(self.doc["markets"])
        ex.options.update(self.doc.get("options") or {})
        ex.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        ex.has.update(self.doc.get("has") or {})
        if self.doc.get("precisionMode"):
            ex.precisionMode = getattr(ccxt, self.doc["precisionMode"])
        self.log = log
        ex.fetch = self.fetch  # the HTTP layer, nothing else
        self.exchange = ex
        self.requests: list[tuple[str, str]] = []
        self.fault: Callable[[str, int], tuple[int, str] | None] | None = None
        self.overrides: dict[str, object] = {}

    async def fetch(self, url, method="GET", headers=None, body=None):
        ex = self.exchange
        path = urlparse(url).path
        self.requests.append((method, path))
        if self.log is not None:  # shared across processes: one line per request
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{method} {path} {body or ''}\n")
        status, text = 200, None
        if self.fault is not None:
            got = self.fault(path, len(self.requests))
            if got is not None:
                status, text = got
        if text is None:
            if path in self.overrides:
                payload = self.overrides[path]
            elif path in self.doc["http"]:
                payload = self.doc["http"][path]
            else:
                status, payload = 404, {"code": -1, "msg": f"no recording for {path}"}
            text = json.dumps(payload)
        parsed = ex.parse_json(text)
        ex.handle_errors(status, "", url, method, {}, text, parsed, headers, body)
        ex.handle_http_status_code(status, "", url, method, text)
        return parsed


class AlertReceiver:
    """A real HTTP server on 127.0.0.1 collecting the JSON bodies POSTed to it."""

    def __init__(self, status: Callable[[int], int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.attempts = 0
        self._status = status
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with outer.lock:
                    outer.attempts += 1
                    code = outer._status(outer.attempts) if outer._status else 200
                    if code == 200:
                        outer.bodies.append(json.loads(raw))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"json://{host}:{port}/alerts"

    def __enter__(self) -> AlertReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def titles(self) -> list[str]:
        with self.lock:
            return [b.get("title", "") for b in self.bodies]


def write_config(tmp: Path, accounts: list[dict], **spec) -> Path:
    """A watch config in ``tmp`` (YAML is JSON)."""
    doc = {
        "apiVersion": "riskguard/v1",
        "kind": "Watch",
        "spec": {
            "interval": 0.05,
            "accounts": accounts,
            "archive": {"dir": str(tmp / "archive")},
            "auditLog": str(tmp / "audit.jsonl"),
            "stateFile": str(tmp / "state.json"),
            **spec,
        },
    }
    p = tmp / "watch.yaml"
    p.write_text(json.dumps(doc, indent=1))
    return p
