"""ccxt's real exchange classes with only the HTTP layer answered from recorded payloads.

Use it for every test of code that talks to ccxt (the snapshot builder, the guarded
exchange, the executor, ``riskguard watch``)::

    from tests.ccxt_recorded import recorded_exchange
    ex, http = recorded_exchange("binanceusdm")          # tests/fixtures/ccxt/binanceusdm.json
    snap = SnapshotBuilder(ex).fetch()
    assert http.requested("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")

The exchange is ccxt's own class (``ccxt.binanceusdm``, ``ccxt.bybit``, ``ccxt.okx``): its
request building, signing, parsing and error mapping all run. Only ``exchange.fetch`` — ccxt's
transport method, the one call that would go to the network — is replaced on the instance by
a :class:`Recorded` that answers from the fixture's routes and records every request. An error
route (``status`` ≥ 400) goes through the exchange's own ``handle_errors``, so ccxt raises
the exception it would raise live (Binance ``-4048`` → ``ccxt.MarginModeAlreadySet`` /
``ExchangeError`` as its ``exceptions`` table says). A request no route answers raises
:class:`UnrecordedRequest` naming it: nothing reaches the network.

Fixture file (``tests/fixtures/ccxt/<name>.json``)::

    {"exchange": "binanceusdm",          # the ccxt class
     "source": "...",                     # where each payload comes from
     "config": {...},                     # merged into the constructor config (optional;
                                          # e.g. Hyperliquid's walletAddress)
     "options": {...},                    # set in exchange.options (optional)
     "markets": [ {unified market}, ...], # set with exchange.set_markets(), as ccxt's static
                                          # tests load ts/src/test/static/markets/<id>.json
     "routes": [{"method": "GET", "path": "/fapi/v3/positionRisk",
                 "params": {"symbol": "BTCUSDT"},   # optional: must match these params
                 "status": 200, "response": <the exchange's raw JSON>}, ...]}

The payloads are copied from ccxt's recorded responses (``httpResponse`` in
``ts/src/test/static/response/<exchange>.json`` in github.com/ccxt/ccxt) and the markets from
ccxt's ``ts/src/test/static/markets/<exchange>.json`` where ccxt has them; the fixture's
``source`` names the recording of each body and says which are hand-written instead.
Fixtures: ``binanceusdm``, ``bybit_v5``, ``okx`` (a hand-written scenario), ``okx_recorded``,
``hyperliquid``, ``bitget_uta``.
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ccxt"


class UnrecordedRequest(AssertionError):
    """The code under test made a request the fixture has no answer for."""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict


@dataclass
class Route:
    method: str
    path: str
    response: Any
    status: int = 200
    params: dict = field(default_factory=dict)

    def matches(self, method: str, path: str, params: dict) -> bool:
        return (
            self.method == method
            and self.path == path
            and all(str(params.get(k)) == str(v) for k, v in self.params.items())
        )


def _params(url: str, body: Any) -> dict:
    out = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    if isinstance(body, (bytes, bytearray)):
        body = body.decode()
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = dict(parse_qsl(body, keep_blank_values=True))
        if isinstance(parsed, dict):
            out.update(parsed)
        elif isinstance(parsed, list):  # a batch (OKX batch-orders): the orders as sent
            out["batch"] = parsed
    out.pop("signature", None)
    out.pop("timestamp", None)
    return out


class Recorded:
    """Stands in for ``exchange.fetch``: answers from routes, records each call."""

    def __init__(self, exchange: Any, routes: list[Route]) -> None:
        self.exchange = exchange
        self.routes = list(routes)
        self.calls: list[Call] = []
        if inspect.iscoroutinefunction(type(exchange).fetch):  # ccxt.async_support

            async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None):
                return self(url, method, headers, body)

            exchange.fetch = fetch
        else:
            exchange.fetch = self  # the instance attribute shadows ccxt's transport method

    def add(self, method: str, path: str, response: Any, status: int = 200, **params: Any) -> None:
        """Answer ``method path`` (with these params) — first match wins, newest first."""
        self.routes.insert(0, Route(method, path, response, status, params))

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        path = urlsplit(url).path
        params = _params(url, body)
        self.calls.append(Call(method, path, params))
        for r in self.routes:
            if r.matches(method, path, params):
                if r.status >= 400:
                    text = json.dumps(r.response)
                    self.exchange.handle_errors(
                        r.status, "error", url, method, {}, text, r.response, headers, body
                    )
                    import ccxt

                    raise ccxt.ExchangeError(f"{self.exchange.id} {r.status} {text}")
                return copy.deepcopy(r.response)
        raise UnrecordedRequest(
            f"{self.exchange.id}: no recorded answer for {method} {path} {params}"
        )

    def requested(self, method: str, path: str, **params: Any) -> list[Call]:
        """The calls to ``method path`` whose params include ``params``."""
        return [
            c
            for c in self.calls
            if c.method == method
            and c.path == path
            and all(str(c.params.get(k)) == str(v) for k, v in params.items())
        ]


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def recorded_exchange(
    name: str, *, asynchronous: bool = False, **config: Any
) -> tuple[Any, Recorded]:
    """ccxt's class for fixture ``name`` (from ``ccxt.async_support`` with
    ``asynchronous=True``), markets set, HTTP answered by the fixture."""
    import ccxt

    if asynchronous:
        import ccxt.async_support as ccxt  # the same names, async classes

    fx = load_fixture(name)
    cls = getattr(ccxt, fx["exchange"])
    ex = cls(
        {
            "apiKey": "recorded-key",
            "secret": "recorded-secret",
            "password": "recorded-password",
            "enableRateLimit": False,  # no sleeping between recorded answers
            **fx.get("config", {}),
            **config,
        }
    )
    for k, v in (fx.get("options") or {}).items():
        ex.options[k] = v
    ex.set_markets(fx["markets"])
    routes = [
        Route(r["method"], r["path"], r["response"], r.get("status", 200), r.get("params", {}))
        for r in fx["routes"]
    ]
    return ex, Recorded(ex, routes)
