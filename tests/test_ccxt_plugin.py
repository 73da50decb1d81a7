"""The ccxt plugin offline: recorded ccxt-shaped responses (Binance, Bybit), a guarded
exchange that never lets a denied order through, and an executor that reports refusals."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from riskguard import Guard, Snapshot
from riskguard.engine.plugins import get_registry
from riskguard.model.snapshot import build_snapshot

from .conftest import FIXTURES, POLICIES, ROOT

ccxt = pytest.importorskip("ccxt")

from riskguard.contrib.ccxt_guard import (  # noqa: E402
    AsyncGuardedExchange,
    CcxtExecutor,
    GuardedExchange,
    OrderRejected,
    SnapshotBuilder,
    UnguardedMethod,
    snapshot_from_ccxt,
)

DEFAULT = POLICIES / "default.yaml"
PLUGIN = str(ROOT / "riskguard" / "contrib" / "ccxt_guard.py")
NOW = 1795521600000  # 2026-11-24T12:00:00Z


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "ccxt" / f"{name}.json").read_text())


class FakeExchange:
    """A ccxt exchange that answers from a recorded fixture and records what is sent."""

    def __init__(self, name: str, **over) -> None:
        self.data = fixture(name)
        self.data.update(over)
        self.id = self.data["id"]
        self.has = {
            "fetchLeverageTiers": True,
            "fetchOHLCV": True,
            "fetchOpenOrders": True,
            "addMargin": self.id != "bybit",
        }
        self.sent: list[tuple] = []
        self.calls: list[str] = []
        self.refuse: dict[str, Exception] = {}

    def _call(self, name, *args):
        self.calls.append(name)
        if name in self.refuse:
            raise self.refuse[name]

    def fetch_balance(self, params=None):
        self._call("fetch_balance")
        return copy.deepcopy(self.data["fetch_balance"])

    def fetch_positions(self, symbols=None, params=None):
        self._call("fetch_positions")
        return copy.deepcopy(self.data["fetch_positions"])

    def fetch_open_orders(self, symbol=None, since=None, limit=None, params=None):
        self._call("fetch_open_orders")
        return copy.deepcopy(self.data["fetch_open_orders"])

    def fetch_leverage_tiers(self, symbols=None, params=None):
        self._call("fetch_leverage_tiers")
        return {s: t for s, t in self.data["fetch_leverage_tiers"].items() if s in symbols}

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        self._call("fetch_ohlcv")
        return copy.deepcopy(self.data["fetch_ohlcv"].get(symbol, []))

    def fetch_ticker(self, symbol, params=None):
        self._call("fetch_ticker")
        return copy.deepcopy(self.data["fetch_ticker"][symbol])

    def market(self, symbol):
        return self.data["markets"][symbol]

    def amount_to_precision(self, symbol, amount):
        step = self.data["markets"][symbol].get("precision", {}).get("amount", 0.001)
        return str(int(amount / step) * step)  # ccxt truncates amounts

    def create_order(self, symbol, type, side, amount, price=None, params=None):
        self._call("create_order")
        self.sent.append(("create_order", symbol, type, side, amount, price, params))
        return {"id": str(len(self.sent)), "symbol": symbol, "amount": amount}

    def create_orders(self, orders, params=None):
        self._call("create_orders")
        self.sent.append(("create_orders", orders))
        return orders

    def create_stop_order(
        self, symbol, type, side, amount, price=None, stopPrice=None, params=None
    ):
        self.sent.append(("create_stop_order", symbol))

    def set_leverage(self, leverage, symbol=None, params=None):
        self._call("set_leverage")
        return {"leverage": leverage}

    def set_margin_mode(self, mode, symbol=None, params=None):
        self._call("set_margin_mode")
        self.sent.append(("set_margin_mode", mode, symbol))
        return {"marginMode": mode}

    def add_margin(self, symbol, amount, params=None):
        self._call("add_margin")
        self.sent.append(("add_margin", symbol, amount))


def snapshot_of(name: str, **over) -> dict:
    f = fixture(name)
    f.update(over)
    return snapshot_from_ccxt(
        f["id"],
        f["fetch_balance"],
        f["fetch_positions"],
        tiers=f["fetch_leverage_tiers"],
        ohlcv=f["fetch_ohlcv"],
        open_orders=f["fetch_open_orders"],
        tickers=f["fetch_ticker"],
        markets=f["markets"],
        timestamp=NOW,
    )


def fixed_clock(ms=NOW):
    return lambda: ms / 1000


# ----------------------------------------------------------------- snapshots


def test_binance_snapshot_reads_what_the_unified_structures_lose():
    snap = build_snapshot(snapshot_of("binance"))
    assert snap.exchange == "binance" and snap.account == "binanceusdm"
    assert (
        snap.walletBalance == 10000.0
    )  # info.assets[].walletBalance, not ccxt total (10100 incl. uPnL)
    btc, eth = snap.positions
    assert (btc.marginMode, btc.isolatedMargin) == ("cross", None)
    assert eth.isolatedMargin == 300.0  # info.isolatedWallet, not isolatedMargin (350 incl. uPnL)
    assert btc.stopLossPrice == 57000.0  # the STOP_MARKET order, not the take-profit at 70000
    assert eth.stopLossPrice == 3100.0
    assert eth.liquidationPrice == pytest.approx(3285.07462686)
    assert [t.maintenanceAmount for t in snap.leverageTiers["BTC/USDT:USDT"]] == [0.0, 50.0, 3050.0]
    assert not any(t.maintenanceAmountDerived for t in snap.leverageTiers["BTC/USDT:USDT"])
    assert snap.markets["SOL/USDT:USDT"].markPrice == 150.0  # ticker info.markPrice
    assert len(snap.markets["BTC/USDT:USDT"].candles) == 30
    assert snap.extra["ccxt"]["walletBalanceFrom"] == "info.assets[].walletBalance"


def test_bybit_snapshot_fixes_percent_rates_and_reads_mm_deduction():
    snap = build_snapshot(snapshot_of("bybit"))
    assert snap.walletBalance == 20000.0  # coin walletBalance, not equity
    btc, eth = snap.positions
    assert btc.stopLossPrice == 56000.0  # Bybit keeps the stop on the position
    assert eth.isolatedMargin == 600.0  # info.positionBalance
    assert eth.stopLossPrice is None
    assert [t.maintenanceMarginRate for t in snap.leverageTiers["ETH/USDT:USDT"]] == [0.005]
    assert [t.maintenanceAmount for t in snap.leverageTiers["BTC/USDT:USDT"]] == [0.0, 10000.0]


def test_builder_fetches_fresh_account_and_caches_tiers():
    ex = FakeExchange("binance")
    b = SnapshotBuilder(ex, clock=fixed_clock())
    s1 = b.fetch(["SOL/USDT:USDT"])
    s2 = b.fetch(["SOL/USDT:USDT"])
    assert isinstance(s1, Snapshot) and s1.walletBalance == s2.walletBalance == 10000.0
    assert ex.calls.count("fetch_balance") == 2 and ex.calls.count("fetch_positions") == 2
    assert ex.calls.count("fetch_leverage_tiers") == 1  # cached for tiers_ttl
    assert ex.calls.count("fetch_ohlcv") == 3  # BTC, ETH, SOL once each (ohlcv_ttl)
    assert "SOL/USDT:USDT" in s1.leverageTiers


# ----------------------------------------------------------------- guarded exchange


def guarded(name="binance", **kw):
    ex = FakeExchange(name)
    guard = Guard.from_file(DEFAULT, clock=fixed_clock())
    return ex, GuardedExchange(ex, guard, builder=SnapshotBuilder(ex, clock=fixed_clock()), **kw)


def test_three_lines_and_an_allowed_order_goes_through():
    ex, exchange = guarded()
    exchange.set_leverage(10, "BTC/USDT:USDT")
    out = exchange.create_order(
        "BTC/USDT:USDT", "limit", "buy", 0.01, 61000, {"stopLoss": {"triggerPrice": 57000}}
    )
    assert out["amount"] == 0.01
    assert ex.sent == [
        (
            "create_order",
            "BTC/USDT:USDT",
            "limit",
            "buy",
            0.01,
            61000,
            {"stopLoss": {"triggerPrice": 57000}},
        )
    ]
    assert exchange.last_decision.decision == "allow"
    assert exchange.fetch_balance()["USDT"]["total"] == 10100.0  # everything else passes through


def test_a_denied_order_never_reaches_the_exchange():
    ex, exchange = guarded()
    with pytest.raises(OrderRejected) as ei:
        exchange.create_order("SOL/USDT:USDT", "market", "buy", 10, None, {"leverage": 5})
    d = ei.value.decision
    assert d.decision == "deny" and "STOP_LOSS_MISSING" in {v.code for v in d.violations}
    assert "STOP_LOSS_MISSING" in str(ei.value)
    assert ex.sent == [] and "create_order" not in ex.calls


def test_resize_only_when_the_caller_opted_in():
    big = ("BTC/USDT:USDT", "limit", "buy", 2.0, 61000, {"leverage": 10})
    ex, exchange = guarded()
    with pytest.raises(OrderRejected) as ei:
        exchange.create_order(*big)
    assert ei.value.decision.decision == "resize" and ex.sent == []

    ex, exchange = guarded(resize=True)
    exchange.create_order(*big)
    (_, _, _, _, amount, _, _) = ex.sent[0]
    allowed = exchange.last_decision.maxAllowedAmount
    assert 0 < amount <= allowed < 2.0
    assert amount == pytest.approx(int(allowed * 1000) / 1000)  # exchange precision, truncated


def test_order_helpers_and_camel_case_are_guarded_unknown_ones_refused():
    ex, exchange = guarded()
    with pytest.raises(OrderRejected):
        exchange.create_market_buy_order("SOL/USDT:USDT", 10)
    with pytest.raises(OrderRejected):
        exchange.createOrder("SOL/USDT:USDT", "market", "buy", 10)
    with pytest.raises(OrderRejected):
        exchange.createLimitBuyOrder("SOL/USDT:USDT", 10, 150)
    for name in (
        "create_stop_order",
        "createStopOrder",
        "create_order_ws",
        "createTrailingPercentOrder",
    ):
        with pytest.raises(UnguardedMethod, match="use create_order"):
            getattr(exchange, name)
    assert ex.sent == []


def test_create_orders_is_all_or_nothing():
    ex, exchange = guarded()
    ok = {
        "symbol": "BTC/USDT:USDT",
        "type": "limit",
        "side": "buy",
        "amount": 0.01,
        "price": 61000,
        "params": {"leverage": 10, "stopLoss": 57000},
    }
    bad = {"symbol": "SOL/USDT:USDT", "type": "market", "side": "buy", "amount": 10}
    with pytest.raises(OrderRejected):
        exchange.create_orders([ok, bad])
    assert ex.sent == []
    exchange.create_orders([ok])
    assert ex.sent[0][0] == "create_orders"


def test_async_guarded_exchange():
    ex = FakeExchange("binance")

    class AsyncFake:
        id = ex.id
        has = ex.has

        def __getattr__(self, name):
            fn = getattr(ex, name)
            if name == "market":
                return fn

            async def call(*a, **k):
                return fn(*a, **k)

            return call

    guard = Guard.from_file(DEFAULT, clock=fixed_clock())
    exchange = AsyncGuardedExchange(
        AsyncFake(), guard, builder=SnapshotBuilder(AsyncFake(), clock=fixed_clock())
    )

    async def bot():
        await exchange.set_leverage(10, "BTC/USDT:USDT")
        await exchange.create_limit_buy_order("BTC/USDT:USDT", 0.01, 61000, {"stopLoss": 57000})
        with pytest.raises(OrderRejected):
            await exchange.create_market_buy_order("SOL/USDT:USDT", 10)

    asyncio.run(bot())
    assert [s[1] for s in ex.sent] == ["BTC/USDT:USDT"]


# ----------------------------------------------------------------- executor


def test_executor_places_the_missing_stop_on_bybit():
    doc = snapshot_of("bybit")
    d = Guard.from_file(DEFAULT).check(doc)
    assert d.decision == "deny"
    ex = FakeExchange("bybit")
    run = CcxtExecutor(ex).execute(d)
    assert run.decision is d  # the decision is kept as made
    # one stop per position: ETH's missing stop (stop-before-liquidation) merged with the
    # risk budget's tighter one; BTC's stop tightened to the 1 % risk budget (a warning rule)
    stops = {r.action.symbol: r for r in run.results if r.action.type == "set_stop_loss"}
    assert set(stops) == {"ETH/USDT:USDT", "BTC/USDT:USDT"}
    stop = stops["ETH/USDT:USDT"]
    assert stop.status == "applied"
    assert stop.action.params["rules"] == ["risk-per-trade", "stop-before-liquidation"]
    lp = Guard.from_file(DEFAULT).metrics(doc).positions[1].liquidationPrice
    assert lp < stop.action.params["price"] < 3000.0  # more protective than the liquidation stop
    (_, sym, kind, side, amount, _, params) = ex.sent[0]
    assert (sym, kind, side, amount) == ("ETH/USDT:USDT", "market", "sell", 2.0)
    assert params["reduceOnly"] and params["stopLossPrice"] == stop.action.params["price"]
    assert stop.action.severity == "error"  # merged: the highest of its rules'
    # BTC's tighter stop comes from the warning-level risk budget only: advice, not placed
    btc = stops["BTC/USDT:USDT"]
    assert btc.action.severity == "warning" and btc.status == "skipped"
    assert "severity warning" in btc.detail
    assert len(ex.sent) == 1
    # ... unless the executor is told to follow warnings too
    CcxtExecutor(ex, min_severity="warning").execute(d)
    (_, sym, kind, side, amount, _, params) = ex.sent[-1]
    assert (sym, kind, side, amount) == ("BTC/USDT:USDT", "market", "sell", 0.1)
    assert params["stopLossPrice"] == btc.action.params["price"]
    with pytest.raises(ValueError, match="min_severity"):
        CcxtExecutor(ex, min_severity="fatal")
    assert {r.status for r in run.results if r.action.type == "alert"} == {"skipped"}
    assert CcxtExecutor(ex, apply=()).execute(d).results[0].status == "skipped"
    assert CcxtExecutor(ex, dry_run=True).execute(d).results[1].status == "dry-run"


def volatile_binance_doc() -> dict:
    doc = snapshot_of("binance")
    doc["markets"]["BTC/USDT:USDT"]["atrPct"] = 9.0  # ATR spike on the cross BTC position
    return doc


def test_infeasible_switch_is_skipped_with_the_exchange_reason():
    d = Guard.from_file(DEFAULT).check(volatile_binance_doc())
    # BTC (cross, ATR spike) should go isolated; the ETH isolated winner (calm market) may
    # join cross (promote-to-cross, advisory). Binance refuses both while positions are open.
    switches = {a.symbol: a for a in d.actions if a.type == "switch_margin_mode"}
    assert {s: a.params["to"] for s, a in switches.items()} == {
        "BTC/USDT:USDT": "isolated",
        "ETH/USDT:USDT": "cross",
    }
    assert switches["BTC/USDT:USDT"].rule == "isolate-on-volatility"
    assert switches["ETH/USDT:USDT"].rule == "promote-to-cross"
    ex = FakeExchange("binance")
    # promote-to-cross is advisory (info): by default the executor does not even try it
    default = CcxtExecutor(ex).execute(d).results
    promo = next(r for r in default if r.action is switches["ETH/USDT:USDT"])
    assert promo.status == "skipped" and "severity info" in promo.detail
    results = CcxtExecutor(ex, min_severity="info").execute(d).results
    for sw in switches.values():
        assert sw.params["feasible"] is False and sw.params["exchangeCode"] == "-4048"
        r = next(r for r in results if r.action is sw)
        assert r.status == "skipped" and "-4048" in r.detail
    # nothing switched; the only order sent is BTC's stop tightened to the risk budget
    [stop] = [a for a in d.actions if a.type == "set_stop_loss"]
    assert stop.symbol == "BTC/USDT:USDT" and stop.rule == "risk-per-trade"
    assert ex.sent == [
        ("create_order", "BTC/USDT:USDT", "market", "sell", 0.05, None,
         {"stopLossPrice": stop.params["price"], "reduceOnly": True}),
    ]  # fmt: skip


class _Response:
    def __init__(self, status: int, body: dict) -> None:
        self.status_code = status
        self.text = json.dumps(body)
        self.content = self.text.encode()
        self.headers: dict = {}
        self.reason = "Bad Request"

    def raise_for_status(self):
        import requests

        raise requests.exceptions.HTTPError(response=self)


def real_binance(body: dict):
    """A real ccxt binanceusdm whose HTTP layer answers ``body`` (no network)."""
    ex = ccxt.binanceusdm({"apiKey": "k", "secret": "s"})
    market = {
        "id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "settle": "USDT",
        "baseId": "BTC", "quoteId": "USDT", "settleId": "USDT", "type": "swap", "spot": False,
        "margin": False, "swap": True, "future": False, "option": False, "active": True,
        "contract": True, "linear": True, "inverse": False, "contractSize": 1.0, "subType": "linear",
        "precision": {"amount": 0.001, "price": 0.1}, "limits": {"amount": {"min": 0.001}, "price": {}, "cost": {}, "leverage": {}},
        "info": {},
    }  # fmt: skip
    eth = {**market, "id": "ETHUSDT", "symbol": "ETH/USDT:USDT", "base": "ETH", "baseId": "ETH"}
    ex.set_markets([market, eth])
    requests_made = []

    def request(method, url, **kw):
        requests_made.append((method, url))
        return _Response(400, body)

    ex.session.request = request
    return ex, requests_made


def test_binance_refusal_is_reported_not_raised_and_the_decision_kept():
    d = Guard.from_file(DEFAULT).check(volatile_binance_doc())
    ex, made = real_binance(fixture("binance")["errors"]["set_margin_mode_with_position"])
    run = CcxtExecutor(
        ex, apply=("switch_margin_mode",), attempt_infeasible=True, min_severity="info"
    ).execute(d)
    # two switches (BTC to isolated, ETH promoted to cross), each attempted and refused
    rs = [r for r in run.results if r.action.type == "switch_margin_mode"]
    assert [r.action.symbol for r in rs] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert made == [("POST", "https://fapi.binance.com/fapi/v1/marginType")] * 2
    for r in rs:
        assert r.status == "refused" and r.exchangeCode == "-4048"
        assert r.error in (
            "OperationRejected", "ExchangeError", "MarginModeAlreadySet", "BadRequest",
        )  # fmt: skip
        assert "Margin type cannot be changed" in r.detail
    assert run.decision is d and run.to_dict()["decision"]["decisionId"] == d.decisionId
    assert run.refused == tuple(rs)


def test_a_guarded_real_exchange_sends_nothing_when_denied():
    ex, made = real_binance({"code": 0})
    guard = Guard.from_file(DEFAULT)
    exchange = GuardedExchange(
        ex, guard, snapshot=lambda symbols: build_snapshot(snapshot_of("binance"))
    )
    with pytest.raises(OrderRejected):
        exchange.create_order("BTC/USDT:USDT", "market", "buy", 5.0)  # utilization far past 35 %
    assert made == []


# ----------------------------------------------------------------- plugin hooks


def test_plugin_registers_a_ccxt_source_and_sink(monkeypatch):
    reg = get_registry((PLUGIN,))
    src = reg.snapshot_sources["ccxt"]
    assert src.matches("ccxt:binanceusdm") and not src.matches("snap.json")
    monkeypatch.setattr(ccxt, "binanceusdm", lambda config: FakeExchange("binance"))
    [(ref, doc)] = list(src.open("ccxt:binanceusdm?account=main"))
    assert ref == "ccxt:binanceusdm?account=main"
    snap = build_snapshot(doc)
    assert snap.account == "main" and snap.walletBalance == 10000.0
    ex = FakeExchange("bybit")
    sink = reg.action_sinks["ccxt"].open({"exchange": ex})
    run = sink(Guard.from_file(DEFAULT).check(snapshot_of("bybit")))
    assert any(r.status == "applied" for r in run.results)


def test_the_bot_example_runs_offline():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "bot.py"), "--demo"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "action set_stop_loss ETH/USDT:USDT: applied" in r.stdout
    assert "resized to" in r.stdout and "rejected: " in r.stdout
    assert "exchange <- market buy 20 SOL" not in r.stdout  # the refused order was never sent
