"""Hyperliquid and Bitget margin models: exchange-reported and published vectors.

Hyperliquid: liquidation prices Hyperliquid reported for real positions (opened at the
mark, so mark = entry), recorded with the asset's max leverage at the time (BTC, ETH 50×;
SOL, DOGE 20×) in freqtrade's tests/exchange/test_hyperliquid.py; the record's own
tolerance is rel 1e-4. Bitget: the maintenance-margin example of Bitget's 2025-11-10
tiered-MM announcement (330,000 USDT of BTCUSDT → 1,648 USDT including the 0.06 % fee).
"""

from __future__ import annotations

import pytest

from riskguard import Guard
from riskguard.contrib.ccxt_guard import snapshot_from_ccxt

MAX_LEV = {"BTC": 50, "ETH": 50, "SOL": 20, "DOGE": 20}

# symbol, entry, side, contracts, collateral, leverage, Hyperliquid's liquidationPrice
HL = [
    ("ETH", 2458.5, "long", 0.015, 36.864593, 1.0, 0.86915825),
    ("BTC", 63287.0, "long", 0.00039, 24.673292, 1.0, 22.37166537),
    ("SOL", 146.82, "long", 0.16, 23.482979, 1.0, 0.05269872),
    ("SOL", 145.83, "long", 0.33, 24.045107, 2.0, 74.83696193),
    ("ETH", 2459.5, "long", 0.0199, 24.454895, 2.0, 1243.0411908),
    ("BTC", 62739.0, "long", 0.00077, 24.137992, 2.0, 31708.03843631),
    ("DOGE", 0.11586, "long", 437.0, 25.29769, 2.0, 0.05945697),
    ("ETH", 2642.8, "short", 0.019, 25.091876, 2.0, 3924.18322043),
    ("SOL", 155.89, "short", 0.32, 24.924941, 2.0, 228.07847866),
    ("DOGE", 0.14333, "short", 351.0, 25.136807, 2.0, 0.20970228),
    ("BTC", 68595.0, "short", 0.00069, 23.64871, 2.0, 101849.99354283),
    ("BTC", 65536.0, "short", 0.00099, 21.604172, 3.0, 86493.46174617),
    ("SOL", 173.06, "long", 0.6, 20.735658, 5.0, 142.05186667),
    ("ETH", 2545.5, "long", 0.0329, 20.909894, 4.0, 1929.23322895),
    ("BTC", 67400.0, "short", 0.00031, 20.887308, 1.0, 133443.97317151),
    ("ETH", 2552.0, "short", 0.0327, 20.833393, 4.0, 3157.53150453),
    ("BTC", 66930.0, "long", 0.0015, 20.043862, 5.0, 54108.51043771),
    ("BTC", 67033.0, "long", 0.00121, 20.251817, 4.0, 50804.00091827),
    ("ETH", 2521.9, "long", 0.0237, 19.902091, 3.0, 1699.14071943),
    ("BTC", 68139.0, "short", 0.00145, 19.72573, 5.0, 80933.61590987),
    ("SOL", 178.29, "short", 0.11, 19.605036, 1.0, 347.82205322),
    ("SOL", 176.23, "long", 0.33, 19.364946, 3.0, 120.56240404),
    ("SOL", 173.08, "short", 0.33, 19.01881, 3.0, 225.08561715),
    ("BTC", 68240.0, "short", 0.00105, 17.887922, 4.0, 84431.79820839),
    ("ETH", 2518.4, "short", 0.007, 17.62263, 1.0, 4986.05799151),
    ("ETH", 2533.2, "long", 0.0347, 17.555195, 5.0, 2047.7642302),
    ("DOGE", 0.13284, "long", 360.0, 15.943218, 3.0, 0.09082388),
    ("SOL", 163.11, "short", 0.48, 15.650731, 5.0, 190.94213618),
    ("BTC", 67141.0, "long", 0.00067, 14.979079, 3.0, 45236.52992613),
]


@pytest.fixture(scope="module")
def guard():
    return Guard.from_dict(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": []},
        }
    )


def hl_doc(coin, entry, side, contracts, collateral, lev, mode):
    sym = f"{coin}/USDC:USDC"
    pos = {
        "symbol": sym,
        "side": side,
        "contracts": contracts,
        "entryPrice": entry,
        "markPrice": entry,
        "leverage": lev,
        "marginMode": mode,
    }
    if mode == "isolated":
        pos["isolatedMargin"] = collateral
    return {
        "exchange": "hyperliquid",
        "settle": "USDC",
        "walletBalance": collateral,
        "positions": [pos],
        "leverageTiers": {
            sym: [{"minNotional": 0, "maintenanceMarginRate": 1 / (2 * MAX_LEV[coin])}]
        },
    }


@pytest.mark.parametrize("mode", ["isolated", "cross"])
@pytest.mark.parametrize("row", HL, ids=[f"{r[0]}-{r[2]}-{r[5]:g}x-{r[3]}" for r in HL])
def test_hyperliquid_reported_liquidation_prices(guard, row, mode):
    *args, reported = row
    pm = guard.metrics(hl_doc(*args, mode)).positions[0]
    assert pm.marginModel == "hyperliquid" and pm.tierSource == "tiers"
    assert pm.liquidationPrice == pytest.approx(reported, rel=1e-4)


def test_hyperliquid_without_tiers_reports_them_missing(guard):
    doc = hl_doc(*HL[4][:-1], "isolated")
    del doc["leverageTiers"]
    assert guard.metrics(doc).positions[0].liquidationPrice is None
    d = guard.check(doc)
    assert "INPUT_TIERS_MISSING" in {v.code for v in d.violations}


def test_hyperliquid_ccxt_mapping_builds_tiers_and_nets_account_value():
    # ccxt's hyperliquid: balance total = marginSummary.accountValue (wallet + uPnL)
    balance = {"USDC": {"total": 1010.0}, "info": {}}
    positions = [
        {"symbol": "ETH/USDC:USDC", "side": "long", "contracts": 0.5, "entryPrice": 2000.0,
         "markPrice": 2020.0, "leverage": 10.0, "marginMode": "cross", "unrealizedPnl": 10.0,
         "hedged": None, "collateral": 101.0},
    ]  # fmt: skip
    markets = {"ETH/USDC:USDC": {"contractSize": 1.0, "limits": {"leverage": {"max": 25}}}}
    doc = snapshot_from_ccxt("hyperliquid", balance, positions, markets=markets, settle="USDC")
    assert doc["exchange"] == "hyperliquid"
    assert doc["walletBalance"] == pytest.approx(1000.0)
    assert doc["leverageTiers"]["ETH/USDC:USDC"][0]["maintenanceMarginRate"] == 1 / 50
    assert "positionMode" not in doc


def test_bitget_tiered_maintenance_margin_published_example(guard):
    # 3 BTC at mark 110,000: tier 1 to 200,000 at 0.40 %, tier 2 at 0.50 %, fee 0.06 %
    doc = {
        "exchange": "bitget",
        "walletBalance": 100000,
        "positions": [
            {"symbol": "BTC/USDT:USDT", "side": "long", "contracts": 3, "entryPrice": 110000,
             "markPrice": 110000, "leverage": 10}
        ],
        "leverageTiers": {"BTC/USDT:USDT": [
            {"minNotional": 0, "maxNotional": 200000, "maintenanceMarginRate": 0.004},
            {"minNotional": 200000, "maxNotional": 2000000, "maintenanceMarginRate": 0.005},
        ]},
    }  # fmt: skip
    pm = guard.metrics(doc).positions[0]
    fee = 0.0006 * pm.notional
    assert pm.maintenanceMargin + fee == pytest.approx(1648.0, abs=1e-9)
    # the whole-position method of the same page (positions opened before 2025-11-10)
    assert pm.notional * (0.005 + 0.0006) == pytest.approx(1848.0, abs=1e-9)


@pytest.mark.parametrize("side", ["long", "short"])
def test_bitget_isolated_follows_its_published_formula(guard, side):
    # LP = (margin + offset − Q·EP·dir) / (Q·(MMR + taker − dir)), each term from the page
    q, ep, margin, mmr, fee = 2.0, 30000.0, 6000.0, 0.004, 0.0006
    d = 1 if side == "long" else -1
    doc = {
        "exchange": "bitget",
        "walletBalance": 10000,
        "positions": [
            {"symbol": "BTC/USDT:USDT", "side": side, "contracts": q, "entryPrice": ep,
             "markPrice": ep, "leverage": 10, "marginMode": "isolated", "isolatedMargin": margin}
        ],
        "leverageTiers": {"BTC/USDT:USDT": [
            {"minNotional": 0, "maxNotional": 200000, "maintenanceMarginRate": mmr}]},
    }  # fmt: skip
    lp = guard.metrics(doc).positions[0].liquidationPrice
    assert lp == pytest.approx((margin + 0 - q * ep * d) / (q * (mmr + fee - d)), rel=1e-12)
    # at that price the margin balance equals maintenance margin plus the fee to close
    assert margin + d * q * (lp - ep) == pytest.approx(q * lp * (mmr + fee), rel=1e-9)
