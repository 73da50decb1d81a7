"""The ccxt integration on ccxt's real exchange classes (binanceusdm, bybit, okx), with only
the HTTP layer answered from recorded payloads (``tests/ccxt_recorded.py``): ccxt builds,
signs and parses every request as it would live."""

from __future__ import annotations

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
    placed = guarded.create_order(BTC, "limit", "buy", 0.01, 60000)  # 600 USDT: allowed
    assert placed["id"] == "4087922045"
    [sent] = http.requested("POST", "/fapi/v1/order", symbol="BTCUSDT", type="LIMIT")
    assert sent.params["quantity"] == "0.01" and sent.params["price"] == "60000"
    with pytest.raises(OrderRejected):
        guarded.create_order(BTC, "limit", "buy", 0.1, 60000)  # 6,000 USDT: denied
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
    from riskguard.actions import Action

    refused = switch._one(d, Action("switch_margin_mode", "test", BTC, {"to": "isolated"}))
    assert refused.status == "refused" and refused.exchangeCode == "-4048"
    assert http.requested("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
