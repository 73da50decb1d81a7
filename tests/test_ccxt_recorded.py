"""The ccxt integration on ccxt's real exchange classes (binanceusdm, bybit, okx, hyperliquid,
bitget), with only the HTTP layer answered (``tests/ccxt_recorded.py``): ccxt builds, signs
and parses every request as it would live.

The answers are ccxt's own recordings of the exchanges' APIs (``httpResponse`` entries of
``ts/src/test/static/response/<exchange>.json`` in github.com/ccxt/ccxt) wherever ccxt has
one; each fixture's ``source`` names the recording of every body, and the few that are
hand-written:

- Binance USDⓈ-M: the open algo (conditional) order, the algoOrder/positionMargin answers
  and the ``-4048`` error (ccxt has no recording of them).
- Bybit v5: the Untriggered StopLoss conditional order and the risk-limit tiers.
- OKX (``okx``): the one-position scenario (balance, position, pending and algo orders) —
  the recorded bodies cannot show cash vs equity or a sell-side stop; they are used as they
  are in ``okx_recorded``. Both OKX fixtures answer the position-tier query with an empty
  list (no recording).
- Hyperliquid: the two markets (minimum unified entries).
- Bitget (unified account): nothing.

Expected numbers are computed in the tests from the bodies, never read back from riskguard.
"""

from __future__ import annotations

import json

import pytest

from riskguard import Guard

from .ccxt_recorded import recorded_exchange

ccxt = pytest.importorskip("ccxt")

from riskguard.contrib.ccxt_guard import (  # noqa: E402
    CcxtExecutor,
    GuardedExchange,
    OrderRejected,
    SnapshotBuilder,
)

T = 1722161166.529  # the recorded position's updateTime, as the builder's clock
BTC = "BTC/USDT:USDT"


def codes(decision, symbol=None):
    return {v.code for v in decision.violations if symbol is None or v.symbol == symbol}


# ----------------------------------------------------------------- Binance USDⓈ-M


def test_binanceusdm_open_orders_are_asked_per_symbol_not_refused():
    ex, http = recorded_exchange("binanceusdm")
    # ccxt's own guard: binanceusdm refuses a symbol-less open-orders query by default
    with pytest.raises(ccxt.ExchangeError, match="warnWithoutSymbol"):
        ex.fetch_open_orders()
    snap = SnapshotBuilder(ex, clock=lambda: T).fetch()
    assert http.requested("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
    assert not [
        c for c in http.calls if c.path == "/fapi/v1/openOrders" and "symbol" not in c.params
    ]
    [o] = snap.openOrders  # the resting limit sell, counted for utilization with orders
    assert (o.symbol, o.side, o.amount, o.price) == (BTC, "sell", 0.2, 110001.0)
    [p] = snap.positions
    assert (p.symbol, p.side, p.contracts, p.entryPrice) == (BTC, "long", 0.009, 67445.9)
    assert snap.walletBalance == pytest.approx(31.022612)  # info.assets[USDT].walletBalance
    assert snap.leverageTiers[BTC][1].maintenanceAmount == 50.0  # Binance's cum


def test_binanceusdm_conditional_stop_is_fetched_and_counts_as_the_stop():
    ex, http = recorded_exchange("binanceusdm")
    snap = SnapshotBuilder(ex, clock=lambda: T).fetch()
    assert http.requested("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
    assert snap.positions[0].stopLossPrice == 65500.0  # the algo STOP_MARKET's trigger
    guard = Guard.from_preset("default")
    assert "STOP_LOSS_MISSING" not in codes(guard.check(snap), BTC)
    # the same account with no conditional order open: now the stop is missing
    http.add("GET", "/fapi/v1/openAlgoOrders", [], symbol="BTCUSDT")
    bare = SnapshotBuilder(ex, clock=lambda: T).fetch()
    assert bare.positions[0].stopLossPrice is None
    assert "STOP_LOSS_MISSING" in codes(guard.check(bare), BTC)


def test_binanceusdm_guarded_exchange_sends_only_what_the_guard_allows():
    ex, http = recorded_exchange("binanceusdm")
    policy = {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "notional-cap", "version": "1"},
        "spec": {
            "rules": [
                {
                    "id": "order-cap",
                    "type": "order_limits",
                    "params": {"maxNotional": 1000},
                    "severity": "error",
                }
            ]
        },
    }
    guarded = GuardedExchange(ex, Guard.from_dict(policy))
    # A resting buy is judged as the account will be when it fills (issue 19): priced above
    # the recorded long's liquidation price (64,847), so the account is still there then.
    placed = guarded.create_order(BTC, "limit", "buy", 0.01, 67000)  # 670 USDT: allowed
    assert placed["id"] == "4087922045"
    [sent] = http.requested("POST", "/fapi/v1/order", symbol="BTCUSDT", type="LIMIT")
    assert sent.params["quantity"] == "0.01" and sent.params["price"] == "67000"
    with pytest.raises(OrderRejected):
        guarded.create_order(BTC, "limit", "buy", 0.1, 67000)  # 6,700 USDT: denied
    assert len(http.requested("POST", "/fapi/v1/order")) == 1  # nothing more was sent


def test_binanceusdm_executor_places_the_stop_as_an_algo_order_and_reports_refusals():
    ex, http = recorded_exchange("binanceusdm")
    http.add("GET", "/fapi/v1/openAlgoOrders", [], symbol="BTCUSDT")  # no stop yet
    d = Guard.from_preset("default").check(SnapshotBuilder(ex, clock=lambda: T).fetch())
    [stop] = [a for a in d.actions if a.type == "set_stop_loss"]
    run = CcxtExecutor(ex).execute(d)
    [res] = [r for r in run.results if r.action.type == "set_stop_loss"]
    assert res.status == "applied", res
    [sent] = http.requested("POST", "/fapi/v1/algoOrder", symbol="BTCUSDT", side="SELL")
    assert sent.params["type"] == "STOP_MARKET" and sent.params["reduceOnly"] == "true"
    assert float(sent.params["triggerPrice"]) == pytest.approx(stop.params["price"], rel=1e-4)
    # Binance refuses a margin-mode switch with a position open: reported, not raised
    switch = CcxtExecutor(ex, apply=("switch_margin_mode",), attempt_infeasible=True)
    from riskguard.engine.actions import Action

    refused = switch._one(
        d, Action("switch_margin_mode", "test", BTC, {"to": "isolated"}, severity="error")
    )
    assert refused.status == "refused" and refused.exchangeCode == "-4048"
    assert http.requested("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")


# ----------------------------------------------------------------- Bybit v5, OKX


def test_bybit_snapshot_reads_the_untriggered_stop_and_the_wallet_without_upnl():
    """Position, wallet balance: ccxt's recorded Bybit v5 bodies (two separate recordings —
    the wallet's USDT uPnL −17.9613 belongs to positions the position recording does not
    hold). The Untriggered StopLoss order and the risk-limit tiers are hand-written (ccxt
    has no recording of either; see the fixture's ``source``)."""
    ex, http = recorded_exchange("bybit_v5")
    snap = SnapshotBuilder(ex, ohlcv=False).fetch()
    # Bybit answers a symbol-less query for the settle coin: one call, conditional orders in it
    [q] = http.requested("GET", "/v5/order/realtime", settleCoin="USDT", category="linear")
    assert "symbol" not in q.params
    [p] = snap.positions
    assert (p.symbol, p.side, p.contracts, p.entryPrice, p.markPrice, p.leverage) == (
        "LTC/USDT:USDT",
        "long",
        1.2,
        64.59947917,
        71.1,
        6.0,
    )
    assert p.marginMode == "cross"  # tradeMode 0; ccxt leaves marginMode None
    assert p.stopLossPrice == 60.0  # the Untriggered StopLoss order's trigger
    # the USDT coin's walletBalance, not its equity 3,304.29766609 (wallet + uPnL)
    assert snap.walletBalance == 3322.25896609
    assert snap.leverageTiers["LTC/USDT:USDT"][1].maintenanceAmount == 1000.0  # mmDeduction
    m = Guard.from_preset("default").metrics(snap)
    # equity = wallet + the recorded position's uPnL at its mark: 1.2 × (71.1 − 64.59947917)
    assert m.equity == pytest.approx(3322.25896609 + 1.2 * (71.1 - 64.59947917))
    # Bybit values maintenance at entry: tier 1's 1 % of 1.2 × 64.59947917 — the body's own
    # positionValue 77.519375
    assert m.maintenanceMargin == pytest.approx(0.01 * 77.519375)
    assert "STOP_LOSS_MISSING" not in codes(Guard.from_preset("default").check(snap))


def test_okx_snapshot_fetches_conditional_stops_and_reads_cash_not_equity():
    """Hand-written OKX scenario (see the fixture's ``source`` for why): cash 1,000, uPnL 20,
    a conditional sell stop at 58,000."""
    ex, http = recorded_exchange("okx")
    snap = SnapshotBuilder(ex, ohlcv=False).fetch()
    assert http.requested("GET", "/api/v5/trade/orders-algo-pending", ordType="conditional")
    [p] = snap.positions
    assert (p.contracts, p.contractSize, p.entryPrice, p.markPrice) == (2.0, 0.01, 60000.0, 61000.0)
    assert p.stopLossPrice == 58000.0  # the conditional algo order's slTriggerPx
    # ccxt's total is OKX's eq = cash 1,000 + uPnL 20: the wallet must not count uPnL twice
    assert ex.fetch_balance()["USDT"]["total"] == 1020.0
    assert snap.walletBalance == 1000.0
    m = Guard.from_preset("default").metrics(snap)
    assert m.equity == pytest.approx(1020.0)  # 1,000 + 0.02 BTC × (61,000 − 60,000)
    http.add("GET", "/api/v5/trade/orders-algo-pending", {"code": "0", "msg": "", "data": []})
    bare = SnapshotBuilder(ex, ohlcv=False).fetch()
    assert "STOP_LOSS_MISSING" in codes(Guard.from_preset("default").check(bare))


def test_okx_recorded_account_long_short_mode_contract_sizes_and_a_buy_trigger():
    """ccxt's recorded OKX bodies as they are (fixture ``okx_recorded``): a LTC long in
    long/short mode, a conditional BUY on LTC, an ADA post-only buy of 50 contracts, a
    multi-currency balance. Expected values are computed here from those bodies."""
    ex, http = recorded_exchange("okx_recorded")
    snap = SnapshotBuilder(ex, ohlcv=False).fetch()
    assert http.requested("GET", "/api/v5/trade/orders-algo-pending", ordType="conditional")
    assert snap.positionMode == "hedge"  # posSide "long": OKX long/short mode
    [p] = snap.positions
    assert (p.symbol, p.side, p.contracts, p.contractSize, p.entryPrice, p.markPrice) == (
        "LTC/USDT:USDT",
        "long",
        1.0,
        0.001,
        68.24,
        68.24,
    )
    # a conditional buy does not close a long: it is not the long's stop
    assert p.stopLossPrice is None
    # the settle coin's cashBal, as recorded
    assert snap.walletBalance == 0.000258796
    m = Guard.from_preset("default").metrics(snap)
    # riskguard's initial margin is OKX's own imr for the position: 1 × 0.001 × 68.24 / 3
    assert m.positions[0].initialMargin == pytest.approx(0.0227466666666667, rel=1e-12)
    # the ADA order is 50 contracts of 100 ADA (the market's ctVal) at 0.2, no leverage known
    [o] = snap.openOrders
    assert (o.symbol, o.side, o.amount, o.price) == ("ADA/USDT:USDT", "buy", 50.0, 0.2)
    assert snap.markets["ADA/USDT:USDT"].contractSize == 100.0
    assert m.openOrderInitialMargin == pytest.approx(50 * 100 * 0.2)
    assert "RISK_PER_TRADE_UNBOUNDED" in codes(Guard.from_preset("default").check(snap), p.symbol)


@pytest.mark.parametrize(
    ("name", "symbol", "amount", "price", "stop", "endpoint"),
    [
        ("bybit_v5", "LTC/USDT:USDT", 1, 70, 65, "/v5/order/create"),
        ("okx", BTC, 1, 61000, 60900, None),
    ],
)
def test_guarded_entries_reach_the_exchange_only_when_allowed(
    name, symbol, amount, price, stop, endpoint
):
    ex, http = recorded_exchange(name)
    guarded = GuardedExchange(
        ex, Guard.from_preset("default"), builder=SnapshotBuilder(ex, ohlcv=False)
    )
    before = [c for c in http.calls if c.method == "POST"]
    with pytest.raises(OrderRejected, match="MARGIN_UTILIZATION"):  # 1,000× the size: refused
        guarded.create_order(symbol, "limit", "buy", amount * 1000, price, {"stopLoss": stop})
    assert [c for c in http.calls if c.method == "POST"] == before  # nothing sent
    placed = guarded.create_order(symbol, "limit", "buy", amount, price, {"stopLoss": stop})
    assert placed["id"]
    [sent] = [c for c in http.calls if c.method == "POST"]
    if endpoint is not None:
        assert sent.path == endpoint
    assert str(stop) in json.dumps(sent.params)  # the stop went with the entry


@pytest.mark.parametrize(
    ("name", "no_stops", "endpoint", "trigger_key"),
    [
        ("bybit_v5", ("GET", "/v5/order/realtime", {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": []}}), "/v5/order/create", "triggerPrice"),
        ("okx", ("GET", "/api/v5/trade/orders-algo-pending", {"code": "0", "msg": "", "data": []}), "/api/v5/trade/order-algo", "slTriggerPx"),
    ],
)  # fmt: skip
def test_executor_places_the_missing_stop_reduce_only(name, no_stops, endpoint, trigger_key):
    ex, http = recorded_exchange(name)
    http.add(*no_stops)
    d = Guard.from_preset("default").check(SnapshotBuilder(ex, ohlcv=False).fetch())
    [stop] = [a for a in d.actions if a.type == "set_stop_loss"]
    pm = d.metrics.position(stop.symbol)
    # on the recorded Bybit account the stop comes from risk-per-trade at severity warning
    # (the wallet dwarfs the position: no liquidation price), so the executor is told to apply it
    executor = CcxtExecutor(ex, min_severity=stop.severity)
    [res] = [r for r in executor.execute(d).results if r.action is stop]
    assert res.status == "applied"
    [sent] = http.requested("POST", endpoint)
    assert sent.params["reduceOnly"] in (True, "true")
    # on the exchange's tick grid, rounded toward the mark (never a tick nearer liquidation)
    tick = ex.market(stop.symbol)["precision"]["price"]
    sent_px = float(sent.params[trigger_key])
    assert stop.params["price"] <= sent_px < stop.params["price"] + tick
    qty = sent.params.get("qty", sent.params.get("sz"))
    assert float(qty) == pm.contracts  # the whole position, in the exchange's contracts


@pytest.mark.parametrize(
    ("name", "symbol", "attached"),
    [("binanceusdm", BTC, False), ("bybit_v5", "LTC/USDT:USDT", True), ("okx", BTC, True)],
)
def test_an_attached_stop_counts_only_where_ccxt_places_it(name, symbol, attached):
    """ccxt attaches params.stopLoss to an entry on Bybit and OKX
    (has.createOrderWithTakeProfitAndStopLoss) but not on Binance: there the guard judges
    the entry without it, as the exchange will hold it."""
    ex, _ = recorded_exchange(name)
    guarded = GuardedExchange(ex, Guard.from_preset("default"))
    order = guarded._order(symbol, "limit", "buy", 1, 100, {"stopLoss": 90})
    assert order.stopLossPrice == (90.0 if attached else None)
    # a bare number is sent in ccxt's unified form: ccxt's OKX drops a number silently
    sent = guarded._outgoing({"stopLoss": 90})
    assert sent["stopLoss"] == ({"triggerPrice": 90} if attached else 90)


def test_okx_entry_carries_its_stop_as_an_attached_algo_order():
    ex, http = recorded_exchange("okx")
    guarded = GuardedExchange(
        ex, Guard.from_preset("default"), builder=SnapshotBuilder(ex, ohlcv=False)
    )
    guarded.create_order(BTC, "limit", "buy", 1, 61000, {"stopLoss": 60900})
    [sent] = http.requested("POST", "/api/v5/trade/batch-orders")
    [o] = sent.params["batch"]
    assert [a["slTriggerPx"] for a in o["attachAlgoOrds"]] == ["60900"]


def test_async_builder_and_guard_on_ccxt_async_support():
    import asyncio

    from riskguard.contrib.ccxt_guard import AsyncGuardedExchange

    async def main():
        ex, http = recorded_exchange("binanceusdm", asynchronous=True)
        try:
            snap = await SnapshotBuilder(ex, clock=lambda: T).afetch()
            assert snap.positions[0].stopLossPrice == 65500.0
            assert http.requested("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
            guarded = AsyncGuardedExchange(ex, Guard.from_preset("default"))
            with pytest.raises(OrderRejected):
                await guarded.create_order(BTC, "limit", "buy", 1.0, 60000)
            assert not http.requested("POST", "/fapi/v1/order")
        finally:
            await ex.close()

    asyncio.run(main())


# ----------------------------------------------------------------- Hyperliquid


def test_hyperliquid_snapshot_from_ccxts_recorded_clearinghouse_state():
    """ccxt's ``hyperliquid`` class answered with the ``clearinghouseState`` and
    ``frontendOpenOrders`` bodies ccxt recorded (fixture ``source``; the two markets are
    hand-written minimum entries). Expected values are computed here from the raw body."""
    ex, http = recorded_exchange("hyperliquid")
    snap = SnapshotBuilder(ex, settle="USDC", ohlcv=False).fetch()
    assert http.requested("POST", "/info", type="clearinghouseState")
    assert http.requested("POST", "/info", type="frontendOpenOrders")
    sol, eth = snap.positions
    # mark = positionValue / szi (Hyperliquid sends no mark in the position)
    assert (sol.symbol, sol.side, sol.contracts, sol.entryPrice) == (
        "SOL/USDC:USDC",
        "long",
        3.34,
        112.0945,
    )
    assert sol.markPrice == pytest.approx(463.9594 / 3.34)
    assert (eth.contracts, eth.entryPrice, eth.markPrice) == (
        3.6,
        1100.0,
        pytest.approx(13694.04 / 3.6),
    )
    # ccxt's total is accountValue (wallet + uPnL): the wallet is accountValue − Σ unrealizedPnl
    assert snap.walletBalance == pytest.approx(19762.483455 - 89.563507 - 9734.04)
    # the untyped resting SOL buy (no orderType in the recorded row) counts as a limit order
    [o] = snap.openOrders
    assert (o.symbol, o.side, o.type, o.amount, o.price) == (
        "SOL/USDC:USDC",
        "buy",
        "limit",
        0.1,
        60.0,
    )
    guard = Guard.from_preset("default")
    m = guard.metrics(snap)
    # maintenance = Σ notional / (2 · max leverage 50): Hyperliquid's own figure in the body,
    # crossMaintenanceMarginUsed = 141.579994
    assert {p.tierSource for p in m.positions} == {"tiers"}
    assert m.maintenanceMargin == pytest.approx(141.579994, abs=1e-6)
    assert m.openOrderInitialMargin == pytest.approx(0.1 * 60.0 / 20)  # at the account's 20×
    d = guard.check(snap)
    assert d.decision == "deny"
    assert "INPUT_TIERS_MISSING" not in codes(d)
    # neither recorded position has a stop (no trigger order is open)
    assert {s for s in (sol.symbol, eth.symbol) if "STOP_LOSS_MISSING" in codes(d, s)} == {
        sol.symbol,
        eth.symbol,
    }


def test_hyperliquid_decision_with_a_stop_on_each_position():
    """The same recorded account with a reduce-only trigger sell under each mark (added
    routes, shaped like ccxt's recorded 'trigger open order' row): the stops are read."""
    ex, http = recorded_exchange("hyperliquid")
    http.add("POST", "/info", [
        {"children": [], "cloid": None, "coin": c, "isPositionTpsl": True, "isTrigger": True,
         "limitPx": px, "oid": oid, "orderType": "Stop Market", "origSz": sz, "reduceOnly": True,
         "side": "A", "sz": sz, "tif": None, "timestamp": "1709652410317",
         "triggerCondition": f"Price below {px}", "triggerPx": px}
        for c, px, sz, oid in (("SOL", "120.0", "3.34", "1"), ("ETH", "3500.0", "3.6", "2"))
    ], type="frontendOpenOrders")  # fmt: skip
    snap = SnapshotBuilder(ex, settle="USDC", ohlcv=False).fetch()
    assert [p.stopLossPrice for p in snap.positions] == [120.0, 3500.0]
    assert not snap.openOrders
    assert "STOP_LOSS_MISSING" not in codes(Guard.from_preset("default").check(snap))


# ----------------------------------------------------------------- Bitget (unified trading account)

BITGET_STOP = ("GET", "/api/v3/trade/unfilled-strategy-orders")


def test_bitget_uta_snapshot_from_ccxts_recordings():
    """ccxt's ``bitget`` class on a unified trading account, every body one ccxt recorded
    (fixture ``bitget_uta``; the recordings were taken at different times). Expected
    values are computed here from the raw bodies."""
    ex, http = recorded_exchange("bitget_uta")
    snap = SnapshotBuilder(ex, ohlcv=False).fetch()
    # a symbol-less query would ask for SPOT orders (ccxt's default type): asked per symbol
    assert http.requested(
        "GET", "/api/v3/trade/unfilled-orders", category="USDT-FUTURES", symbol="BTCUSDT"
    )
    assert not http.requested("GET", "/api/v3/trade/unfilled-orders", category="SPOT")
    # the position stop-loss lives among the strategy (trigger) orders
    assert http.requested(*BITGET_STOP, category="USDT-FUTURES", symbol="BTCUSDT")
    # Bitget offers tiers per market only (fetchMarketLeverageTiers)
    assert http.requested("GET", "/api/v3/market/position-tier", symbol="BTCUSDT")
    [p] = snap.positions
    assert (p.symbol, p.side, p.contracts, p.entryPrice, p.markPrice, p.leverage, p.marginMode) == (
        "BTC/USDT:USDT", "long", 0.001, 115085.6, 115085.6, 20.0, "cross",
    )  # fmt: skip
    assert p.stopLossPrice == 114000.0  # the strategy order's stopLoss (ccxt leaves its side None)
    assert snap.walletBalance == 10000.0  # the USDT asset; uPnL 0
    [o] = snap.openOrders
    assert (o.side, o.amount, o.price) == ("buy", 0.001, 50000.0)
    guard = Guard.from_preset("default")
    m = guard.metrics(snap)
    notional = 0.001 * 115085.6
    # tier 1 of the recorded table (0–150,000 at 0.4 %), the position row's own mmr 0.004
    assert m.maintenanceMargin == pytest.approx(0.004 * notional)
    assert m.positions[0].tierSource == "tiers"
    # initial margin notional / 20: Bitget's positionBalance 5.82333136 less the open fee
    # 0.06905136 it holds
    assert m.initialMargin == pytest.approx(5.82333136 - 0.06905136)
    assert m.openOrderInitialMargin == pytest.approx(0.001 * 50000 / 20)  # the position's 20×
    assert guard.check(snap).decision == "allow"
    # the same account without the stop-loss strategy order
    http.add(*BITGET_STOP, {"code": "00000", "msg": "success", "data": []})
    bare = SnapshotBuilder(ex, ohlcv=False).fetch()
    assert bare.positions[0].stopLossPrice is None
    assert "STOP_LOSS_MISSING" in codes(guard.check(bare), p.symbol)


def test_bitget_guarded_entry_reaches_the_exchange_only_when_allowed():
    ex, http = recorded_exchange("bitget_uta")
    guarded = GuardedExchange(
        ex, Guard.from_preset("default"), builder=SnapshotBuilder(ex, ohlcv=False)
    )
    with pytest.raises(OrderRejected, match="MARGIN_UTILIZATION"):  # 4 BTC at 20x: 20,000 of IM
        guarded.create_order(BTC, "limit", "buy", 4, 100000, {"stopLoss": 95000})
    assert not http.requested("POST", "/api/v3/trade/place-order")
    placed = guarded.create_order(BTC, "limit", "buy", 0.001, 100000, {"stopLoss": 95000})
    assert placed["id"] == "1330958844544008192"  # the recorded answer's orderId
    [sent] = http.requested("POST", "/api/v3/trade/place-order", symbol="BTCUSDT", qty="0.001")
    assert sent.params["stopLoss"] == "95000"  # ccxt attaches the stop to the entry


def test_bitget_uta_async_builder_asks_tiers_per_market():
    import asyncio

    async def main():
        ex, http = recorded_exchange("bitget_uta", asynchronous=True)
        try:
            snap = await SnapshotBuilder(ex, ohlcv=False).afetch()
        finally:
            await ex.close()
        assert http.requested("GET", "/api/v3/market/position-tier", symbol="BTCUSDT")
        assert [t.maintenanceMarginRate for t in snap.leverageTiers[BTC][:3]] == [
            0.004,
            0.005,
            0.01,
        ]
        assert snap.positions[0].stopLossPrice == 114000.0

    asyncio.run(main())
