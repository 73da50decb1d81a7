"""Hedge mode through ccxt's real binanceusdm class (only its HTTP session answered).

Hand-written: ccxt has no recording of a Binance account in hedge mode, so the two
``GET /fapi/v3/positionRisk`` rows (one per positionSide) and the leverage brackets are
written after Binance's documented responses (developers.binance.com, USDⓈ-M Futures,
"Position Information V3", "Notional and Leverage Brackets"); ccxt parses them into unified
positions with ``hedged: True`` and riskguard reads the mode from there. Hedge (long/short)
mode from a *recorded* body is tested on OKX in ``tests/test_ccxt_recorded.py``
(``okx_recorded``: posSide ``long``); Hyperliquid and Bitget through ccxt's real classes on
recorded bodies are tested there too.
"""

from __future__ import annotations

import json

import pytest

ccxt = pytest.importorskip("ccxt")

from riskguard import Guard  # noqa: E402
from riskguard.contrib.ccxt_guard import snapshot_from_ccxt  # noqa: E402

BTC = "BTC/USDT:USDT"


class _Response:
    def __init__(self, body) -> None:
        self.status_code = 200
        self.text = json.dumps(body)
        self.content = self.text.encode()
        self.headers: dict = {}
        self.reason = "OK"

    def raise_for_status(self) -> None:
        return None


def _row(side: str, amt: str, entry: str, upnl: str, notional: str) -> dict:
    return {"symbol": "BTCUSDT", "positionSide": side, "positionAmt": amt, "entryPrice": entry,
            "breakEvenPrice": "0", "markPrice": "61000.00000000", "unRealizedProfit": upnl,
            "liquidationPrice": "0", "isolatedMargin": "0", "notional": notional,
            "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
            "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": "1",
            "bidNotional": "0", "askNotional": "0", "updateTime": 1732449600000}  # fmt: skip


POSITION_RISK = [
    _row("LONG", "1.000", "60000.0", "1000.00000000", "61000"),
    _row("SHORT", "-0.500", "62000.0", "500.00000000", "-30500"),
]
BRACKETS = [{"symbol": "BTCUSDT", "brackets": [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
     "maintMarginRatio": 0.004, "cum": 0.0},
    {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000,
     "maintMarginRatio": 0.005, "cum": 50.0}]}]  # fmt: skip


def hedged_binance():
    ex = ccxt.binanceusdm({"apiKey": "k", "secret": "s"})
    market = {
        "id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "settle": "USDT",
        "baseId": "BTC", "quoteId": "USDT", "settleId": "USDT", "type": "swap", "spot": False,
        "margin": False, "swap": True, "future": False, "option": False, "active": True,
        "contract": True, "linear": True, "inverse": False, "contractSize": 1.0, "subType": "linear",
        "precision": {"amount": 0.001, "price": 0.1}, "limits": {"amount": {"min": 0.001}, "price": {}, "cost": {}, "leverage": {}},
        "info": {},
    }  # fmt: skip
    ex.set_markets([market])
    made: list[str] = []

    def request(method, url, **kw):
        made.append(url.split("?")[0])
        if "/positionRisk" in url:
            return _Response(POSITION_RISK)
        if "/leverageBracket" in url:
            return _Response(BRACKETS)
        raise AssertionError(f"unexpected request {method} {url}")

    ex.session.request = request
    return ex, made


def test_ccxt_hedged_positions_build_a_hedge_mode_snapshot():
    ex, made = hedged_binance()
    positions = ex.fetch_positions()
    assert made[-1].endswith("/fapi/v3/positionRisk")
    assert {(p["side"], p["hedged"]) for p in positions} == {("long", True), ("short", True)}
    tiers = [{"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004,
              "info": {"cum": "0"}},
             {"minNotional": 50000, "maxNotional": 600000, "maintenanceMarginRate": 0.005,
              "info": {"cum": "50"}}]  # fmt: skip
    balance = {"USDT": {"total": 5000.0}, "info": {}}
    doc = snapshot_from_ccxt(
        "binanceusdm", balance, positions, tiers={"BTC/USDT:USDT": tiers}, settle="USDT"
    )
    assert doc["positionMode"] == "hedge"
    assert sorted(p["side"] for p in doc["positions"]) == ["long", "short"]
    m = Guard.from_file("policies/default.yaml").metrics(doc)
    # Binance's cross formula with the LONG and SHORT terms (tier 1 for both legs at LP)
    lp = (5000 - 1.0 * 60000 + 0.5 * 62000) / (1.0 * 0.004 + 0.5 * 0.004 - 1.0 + 0.5)
    assert [p.liquidationPrice for p in m.positions] == [pytest.approx(lp, rel=1e-12)] * 2


def test_create_order_params_name_the_leg():
    from riskguard.contrib.ccxt_guard import order_from_ccxt

    def leg(**params):
        return order_from_ccxt(BTC, "market", "sell", 0.1, None, params).positionSide

    assert leg(positionSide="LONG") == "long"  # Binance: closes the long leg
    assert leg(posSide="short") == "short"  # OKX long/short mode
    assert leg(positionIdx=1) == "long" and leg(positionIdx=2) == "short"  # Bybit
    assert leg(positionSide="BOTH") is None and leg() is None and leg(positionIdx=0) is None


def test_a_guarded_order_on_the_wrong_leg_never_reaches_the_exchange():
    from riskguard.contrib.ccxt_guard import GuardedExchange, OrderRejected
    from riskguard.model.snapshot import build_snapshot

    ex, made = hedged_binance()
    balance = {"USDT": {"total": 5000.0}, "info": {}}
    doc = snapshot_from_ccxt("binanceusdm", balance, ex.fetch_positions(), settle="USDT")
    assert doc["positionMode"] == "hedge"
    n = len(made)
    guarded = GuardedExchange(
        ex, Guard.from_file("policies/default.yaml"), snapshot=lambda symbols: build_snapshot(doc)
    )
    # a reduce-only buy naming the long leg would add to it: refused before any request
    with pytest.raises(OrderRejected) as e:
        guarded.create_order(
            BTC, "market", "buy", 0.5, None, {"positionSide": "LONG", "reduceOnly": True}
        )
    assert "ORDER_REDUCE_ONLY_WRONG_LEG" in {v.code for v in e.value.decision.violations}
    assert len(made) == n
