"""Bybit, OKX, Gate, BingX, MEXC and WEEX margin models against the published vectors
listed in docs/margin.md (each cited with its source in the test and the model), plus each model's
capability facts (``switch_feasibility``).

Expected numbers are the published ones, or the published formula evaluated by hand
(arithmetic in the comments). Tolerances: margin-math.md §6 (Bybit Y1–Y4 exact, formula
vectors rel 1e-9, printed prices to their last printed digit).
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
from pathlib import Path

import pytest

from riskguard.engine.plugins import get_registry
from riskguard.margin.metrics import compute_metrics

from .margin_helpers import account as _account
from .margin_helpers import pos_doc

TIERS = Path(__file__).parent / "fixtures" / "tiers"


def model(name):
    return get_registry().margin_models[name]


def fixture_rows(name: str) -> tuple[str, list[dict]]:
    d = json.loads((TIERS / name).read_text())
    return d["symbol"], d["tiers"]


def account(exchange, wallet, positions, tiers=None):
    return _account(wallet, positions, tiers, exchange)


def one_tier(mmr):
    return [{"minNotional": 0, "maintenanceMarginRate": mmr}]


def metrics(snap, m=None):
    return compute_metrics(snap, m or model(snap.exchange))


# =================================================================== Bybit


@pytest.mark.parametrize(
    ("vid", "side", "q", "ep", "lev", "expected"),
    [
        # Y1, current help-center example: 1 BTC @ 20,000, 50×, MMR 0.5 % → IM 400, MM 100
        ("Y1", "long", 1, 20_000, 50, 19_700),
        # Y2, legacy: EP·(1 − IMR + MMR) = 10,000·(1 − 0.02 + 0.005)
        ("Y2", "long", 1, 10_000, 50, 9_850),
        # Y3, legacy: EP·(1 + IMR − MMR) = 8,000·(1 + 0.025 − 0.005)
        ("Y3", "short", 1, 8_000, 40, 8_160),
    ],
)
@pytest.mark.parametrize("name", ["bybit", "bybit-classic"])
def test_bybit_isolated_published_examples_exactly(name, vid, side, q, ep, lev, expected):
    im = q * ep / lev
    snap = account(
        name,
        im,
        [pos_doc("BTC/USDT:USDT", side, q, ep, margin=im, leverage=lev)],
        {"BTC/USDT:USDT": one_tier(0.005)},
    )
    assert metrics(snap).positions[0].liquidationPrice == expected, vid


def test_bybit_y4_cross_one_position_exactly():
    # legacy cross: available 2,000, IM 200 (100×), MM 100 → sustainable loss 2,100 → 17,900.
    # The cross wallet is available + IM = 2,200 while the position is flat.
    snap = account(
        "bybit",
        2_200,
        [pos_doc("BTC/USDT:USDT", "long", 1, 20_000, mode="cross", leverage=100)],
        {"BTC/USDT:USDT": one_tier(0.005)},
    )
    assert metrics(snap).positions[0].liquidationPrice == 17_900


def test_bybit_y5_cross_two_btc_derived():
    # §3.2 Y5 [derived]: 2 BTC long @ 10,000, available 2,000, IM 200, MM 100 →
    # LP = 10,000 − 2,100/2 = 8,950
    snap = account(
        "bybit",
        2_200,
        [pos_doc("BTC/USDT:USDT", "long", 2, 10_000, mode="cross", leverage=100)],
        {"BTC/USDT:USDT": one_tier(0.005)},
    )
    assert metrics(snap).positions[0].liquidationPrice == 8_950


def test_bybit_lp_depends_on_entry_not_mark():
    # Position Value = Q × EP in the published formula: the LP is the same at any mark
    lps = set()
    for mark in (18_000, 20_000, 23_000):
        snap = account(
            "bybit",
            400,
            [pos_doc("BTC/USDT:USDT", "long", 1, 20_000, mark, margin=400, leverage=50)],
            {"BTC/USDT:USDT": one_tier(0.005)},
        )
        lps.add(metrics(snap).positions[0].liquidationPrice)
    assert lps == {19_700}


def test_bybit_mm_deduction_of_the_risk_limit_tier():
    # 50 BTC @ 60,000 = 3,000,000 position value → tier 2 (MMR 1 %, deduction 10,000):
    # MM = 30,000 − 10,000 = 20,000; 10× → IM 300,000; LP = 60,000 − (300,000 − 20,000)/50 = 54,400
    tiers = [
        {"minNotional": 0, "maxNotional": 2_000_000, "maintenanceMarginRate": 0.005},
        {
            "minNotional": 2_000_000,
            "maxNotional": 10_000_000,
            "maintenanceMarginRate": 0.01,
            "info": {"mmDeduction": "10000"},
        },
    ]
    snap = account(
        "bybit",
        300_000,
        [pos_doc("BTC/USDT:USDT", "long", 50, 60_000, margin=300_000, leverage=10)],
        {"BTC/USDT:USDT": tiers},
    )
    p = metrics(snap).positions[0]
    assert p.maintenanceMargin == 20_000
    assert p.liquidationPrice == 54_400


@pytest.mark.parametrize(
    ("side", "lev", "expected", "rel"),
    [
        # freqtrade §2.2 (EP 10, MMR 0.01, WB = Q·EP/lev); 6.7666666 and 13.233333 are printed
        # truncated, so they get the printed precision
        ("long", 1, 0.1, 1e-9),
        ("long", 3, 6.7666666, 2e-8),
        ("long", 5, 8.1, 1e-9),
        ("long", 10, 9.1, 1e-9),
        ("short", 1, 19.9, 1e-9),
        ("short", 3, 13.233333, 1e-7),
        ("short", 5, 11.9, 1e-9),
        ("short", 10, 10.9, 1e-9),
    ],
)
def test_bybit_freqtrade_isolated_vectors(side, lev, expected, rel):
    wb = 10 / lev
    snap = account(
        "bybit",
        wb,
        [pos_doc("X/USDT:USDT", side, 1, 10, margin=wb, leverage=lev)],
        {"X/USDT:USDT": one_tier(0.01)},
    )
    assert metrics(snap).positions[0].liquidationPrice == pytest.approx(expected, rel=rel)


def test_bybit_parameters():
    for name in ("bybit", "bybit-classic"):
        m = model(name)
        assert (m.mmBasis, m.tierUnit, m.closeFeeRate, m.mmDeduction) == (
            "entry",
            "notional",
            0.0,
            True,
        )
    assert model("bybit").capabilities.switchScope == "account"
    assert model("bybit-classic").capabilities.switchScope == "symbol"
    codes = model("bybit").capabilities.errorCodes
    assert {"110026", "110028", "3400045", "110033", "110014", "110046"} <= set(codes)


# =================================================================== OKX and Gate

FT_VECTORS = [
    # freqtrade §2.1: MMR 0.01 (mocked), taker 0.0006, WB = Q·EP/lev
    ("gate", "short", 5, 10, 1.0, 11.87413417771621),
    ("gate", "short", 5, 10, 2.0, 11.87413417771621),
    ("gate", "short", 3, 10, 1.0, 13.193482419684678),
    ("gate", "short", 5, 8, 1.0, 9.499307342172967),
    ("okx", "short", 3, 10, 1.0, 13.193482419684678),
    ("gate", "long", 5, 10, 1.0, 8.085708510208207),
    ("gate", "long", 3, 10, 1.0, 6.738090425173506),
    ("okx", "long", 3, 10, 1.0, 6.738090425173506),
]


@pytest.mark.parametrize(("name", "side", "lev", "ep", "q", "expected"), FT_VECTORS)
def test_okx_gate_freqtrade_vectors(name, side, lev, ep, q, expected):
    m = dataclasses.replace(model(name), closeFeeRate=0.0006)
    wb = q * ep / lev
    snap = account(
        name,
        wb,
        [pos_doc("X/USDT:USDT", side, q, ep, margin=wb, leverage=lev)],
        {"X/USDT:USDT": one_tier(0.01)},
    )
    assert metrics(snap, m).positions[0].liquidationPrice == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("side", ["long", "short"])
def test_okx_margin_ratio_is_100_percent_at_the_lp(side):
    # OKX: margin ratio = (margin + uPnL)/(face value × contracts × MP × (MMR + fee)); 100 % at LP.
    # 250 contracts × 0.01 BTC @ 60,000, margin 1,500 (10×), tier MMR 0.4 %, default fee
    m = model("okx")
    snap = account(
        "okx",
        1_500,
        [pos_doc("BTC/USDT:USDT", side, 250, 60_000, margin=1_500, contractSize=0.01)],
        {"BTC/USDT:USDT": one_tier(0.004)},
    )
    lp = metrics(snap).positions[0].liquidationPrice
    s = 1 if side == "long" else -1
    ratio = (1_500 + s * 2.5 * (lp - 60_000)) / (0.01 * 250 * lp * (0.004 + m.closeFeeRate))
    assert ratio == pytest.approx(1.0, rel=1e-9)


def test_okx_tiers_are_contracts_and_rate_applies_to_the_whole_position():
    # position-tiers for swaps are sized in contracts (minSz/maxSz, copied by ccxt into
    # min/maxNotional). 150 contracts → tier 2 at any price; no maintenance amount:
    # MM = 150 × 0.01 × 60,000 × 0.6 % = 5.4 (the loader's derived 100 × 0.2 % = 0.2 is ignored)
    tiers = [
        {"minNotional": 0, "maxNotional": 100, "maintenanceMarginRate": 0.004},
        {"minNotional": 100, "maxNotional": 1_000, "maintenanceMarginRate": 0.006},
    ]
    snap = account(
        "okx",
        100,
        [pos_doc("BTC/USDT:USDT", "long", 150, 60_000, mode="cross", contractSize=0.01)],
        {"BTC/USDT:USDT": tiers},
    )
    m = model("okx")
    for mark in (1_000, 60_000, 600_000):
        mm, tier = m.maintenance_margin(
            snap.positions[0], snap.leverageTiers["BTC/USDT:USDT"], mark
        )
        assert tier.maintenanceMarginRate == 0.006
        assert mm == pytest.approx(150 * 0.01 * mark * 0.006, rel=1e-12)


def test_gate_short_liquidates_at_the_boundary_where_the_rate_jumps():
    # Whole-position tiers: 0–100,000 notional MMR 1 %, above 5 %; fee 0.05 % (default).
    # Short 1 @ 90,000, margin 13,000. Below 100,000 the requirement is ≤ 1,000 + 50 while
    # the balance is ≥ 13,000 − 10,000 = 3,000: safe. At 100,000 the tier-2 requirement is
    # 5,000 + 50 > 3,000: liquidated exactly at the boundary price 100,000.
    tiers = [
        {"minNotional": 0, "maxNotional": 100_000, "maintenanceMarginRate": 0.01},
        {"minNotional": 100_000, "maxNotional": 1_000_000, "maintenanceMarginRate": 0.05},
    ]
    snap = account(
        "gate",
        13_000,
        [pos_doc("BTC/USDT:USDT", "short", 1, 90_000, margin=13_000)],
        {"BTC/USDT:USDT": tiers},
    )
    assert metrics(snap).positions[0].liquidationPrice == pytest.approx(100_000, rel=1e-12)


def test_gate_short_sitting_on_the_boundary_is_liquidated_there():
    # Short 1 @ 100,000 (notional = the tier-2 floor), margin 3,000: at the mark tier 2 asks
    # 5,000 + 50 > 3,000 (liquidatable), a cent lower tier 1 asks 1,000 + 50 < 3,000 (safe):
    # the liquidation price is the boundary, i.e. the mark itself (distance 0).
    tiers = [
        {"minNotional": 0, "maxNotional": 100_000, "maintenanceMarginRate": 0.01},
        {"minNotional": 100_000, "maxNotional": 1_000_000, "maintenanceMarginRate": 0.05},
    ]
    snap = account(
        "gate",
        3_000,
        [pos_doc("BTC/USDT:USDT", "short", 1, 100_000, margin=3_000)],
        {"BTC/USDT:USDT": tiers},
    )
    p = metrics(snap).positions[0]
    assert p.liquidationPrice == pytest.approx(100_000, rel=1e-12)
    assert p.liquidationDistancePct == pytest.approx(0, abs=1e-9)


def test_okx_gate_parameters_and_default_fee_override():
    okx, gate = model("okx"), model("gate")
    assert (okx.mmBasis, okx.tierUnit, okx.mmDeduction) == ("mark", "contracts", False)
    assert (gate.mmBasis, gate.tierUnit, gate.mmDeduction) == ("mark", "notional", False)
    assert okx.closeFeeRate == gate.closeFeeRate == 0.0005
    assert gate.approximate and not okx.approximate
    # a higher fee brings a long's LP closer to the mark
    snap = account(
        "okx", 2, [pos_doc("X/USDT:USDT", "long", 1, 10, margin=2)], {"X/USDT:USDT": one_tier(0.01)}
    )
    lo = metrics(snap, okx).positions[0].liquidationPrice
    hi = metrics(snap, dataclasses.replace(okx, closeFeeRate=0.001)).positions[0].liquidationPrice
    assert lo < hi < 10


# =================================================================== BingX


def test_bingx_b1_to_the_cent():
    # B1 [formula derived from BingX's trigger]: ETH long Q 1 @ 3,000, M 300 (10×), MMR 0.33 %
    # (tier 1 of the 2026-01-07 table), taker 0.05 % → (3,000 − 300)/(1 − 0.0033 − 0.0005) = 2,710.30
    symbol, rows = fixture_rows("bingx_ethusdt_2026-01-07.json")
    snap = account(
        "bingx", 300, [pos_doc(symbol, "long", 1, 3_000, margin=300, leverage=10)], {symbol: rows}
    )
    p = metrics(snap).positions[0]
    assert p.liquidationPrice == pytest.approx(2_710.30, abs=0.005)
    assert p.approximate  # BingX's own LP formula was not retrieved


def test_bingx_maint_amount_is_read_from_info_and_continuous_over_25_tiers():
    symbol, rows = fixture_rows("bingx_ethusdt_2026-01-07.json")
    tiers = account("bingx", 0, [], {symbol: rows}).leverageTiers[symbol]
    assert len(tiers) == 25
    assert not any(t.maintenanceAmountDerived for t in tiers)  # info.maintAmount was read
    assert [t.maintenanceAmount for t in tiers][:3] == [0, 2_070, 2_910]
    # amt_n = amt_(n−1) + minPositionVal_n·(MMR_n − MMR_(n−1)) for every tier
    for prev, cur in itertools.pairwise(tiers):
        expected = prev.maintenanceAmount + cur.minNotional * (
            cur.maintenanceMarginRate - prev.maintenanceMarginRate
        )
        assert cur.maintenanceAmount == pytest.approx(expected, rel=1e-9, abs=1e-6), cur.tier


def test_bingx_risk_is_100_percent_at_the_lp_in_a_higher_tier():
    # Risk = (MM + closing fee)/(margin + uPnL) = 1 at the LP. 400 ETH @ 3,000 = 1.2 M (tier 3),
    # 10× margin 120,000; the LP's notional falls into tier 2 (900 k–1.2 M).
    symbol, rows = fixture_rows("bingx_ethusdt_2026-01-07.json")
    snap = account(
        "bingx",
        120_000,
        [pos_doc(symbol, "long", 400, 3_000, margin=120_000, leverage=10)],
        {symbol: rows},
    )
    lp = metrics(snap).positions[0].liquidationPrice
    notional = 400 * lp
    assert 900_000 <= notional < 1_200_000
    mm = notional * 0.0056 - 2_070  # tier 2 of the table
    risk = (mm + 0.0005 * notional) / (120_000 + 400 * (lp - 3_000))
    assert risk == pytest.approx(1.0, rel=1e-9)


def test_bingx_parameters():
    m = model("bingx")
    assert (m.mmBasis, m.tierUnit, m.mmDeduction, m.closeFeeRate) == (
        "mark",
        "notional",
        True,
        0.0005,
    )
    assert m.approximate


# =================================================================== MEXC


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # published: long LP = (MM − PM + EP·Q)/Q, short LP = (EP·Q − MM + PM)/Q, MM = EP·Q·MMR.
        # 100 contracts × 0.01 ETH = 1 ETH @ 2,000, PM 100 (20×), MMR 0.5 % → MM 10
        ("long", 1_910),  # (10 − 100 + 2,000)/1
        ("short", 2_090),  # (2,000 − 10 + 100)/1
    ],
)
def test_mexc_published_formula(side, expected):
    for mark in (1_950, 2_000, 2_050):  # MM at entry value: the mark does not move the LP
        snap = account(
            "mexc",
            100,
            [pos_doc("ETH/USDT:USDT", side, 100, 2_000, mark, margin=100, contractSize=0.01)],
            {"ETH/USDT:USDT": one_tier(0.005)},
        )
        assert metrics(snap).positions[0].liquidationPrice == pytest.approx(expected, rel=1e-12)


def test_mexc_tiers_in_contracts_whole_position_rate():
    # contract/detail: riskBaseVol/riskIncrVol in contracts; MMR 0.4 % then 0.8 % (+riskIncrMmr).
    # 15,000 contracts × 0.0001 BTC = 1.5 BTC @ 60,000 → tier 2: MM = 90,000 × 0.8 % = 720
    tiers = [
        {"minNotional": 0, "maxNotional": 10_000, "maintenanceMarginRate": 0.004},
        {"minNotional": 10_000, "maxNotional": 210_000, "maintenanceMarginRate": 0.008},
    ]
    snap = account(
        "mexc",
        1_000,
        [
            pos_doc(
                "BTC/USDT:USDT", "long", 15_000, 60_000, 61_000, mode="cross", contractSize=0.0001
            )
        ],
        {"BTC/USDT:USDT": tiers},
    )
    assert metrics(snap).positions[0].maintenanceMargin == pytest.approx(720, rel=1e-12)


def test_mexc_m3_documented_not_fitted():
    # M3 [unsure inputs]: ETH_USDT long, 1 contract (0.01 ETH [unsure]), entry 1,217.3, margin
    # 0.1290338, MEXC's liquidatePrice 1,211.2. The reference lists: MMR 0.5 % without a fee →
    # 1,210.5; with a 0.06 % fee → 1,211.18–1,211.21. The model keeps the published fee-less
    # formula, whose LP is slightly further from the mark than MEXC's.
    doc = [
        pos_doc(
            "ETH/USDT:USDT", "long", 1, 1_217.3, margin=0.1290338, contractSize=0.01, leverage=100
        )
    ]
    snap = account("mexc", 0.1290338, doc, {"ETH/USDT:USDT": one_tier(0.005)})
    lp = metrics(snap).positions[0].liquidationPrice
    assert lp == pytest.approx(1_210.5, abs=0.05)
    assert lp < 1_211.2
    with_fee = metrics(snap, dataclasses.replace(model("mexc"), closeFeeRate=0.0006)).positions[0]
    assert 1_211.18 <= with_fee.liquidationPrice <= 1_211.21


def test_mexc_parameters():
    m = model("mexc")
    assert (m.mmBasis, m.tierUnit, m.mmDeduction, m.closeFeeRate) == (
        "entry",
        "contracts",
        False,
        0.0,
    )
    assert m.approximate


# =================================================================== WEEX


def test_weex_w1_margin_rate():
    # W1: margin 1,000, uPnL +50, 100 Cont × 0.001 face × mark 60,000 → 1,050/6,000 = 17.5 %
    snap = account(
        "weex",
        1_000,
        [pos_doc("BTC/USDT:USDT", "long", 100, 59_500, 60_000, margin=1_000, contractSize=0.001)],
    )
    p = metrics(snap).positions[0]
    assert p.unrealizedPnl == pytest.approx(50, rel=1e-12)
    assert (1_000 + p.unrealizedPnl) / p.notional == pytest.approx(0.175, rel=1e-12)


@pytest.mark.parametrize(("side", "expected"), [("long", 29_899.4975), ("short", 30_099.5025)])
def test_weex_pro_identity(side, expected):
    # Futures Pro: E = 500, Q = 2, MP = 30,000, MMR 0.5 % → LP = MP ∓ (E − TMM)/(Q·(1 ∓ MMR)),
    # TMM = 2·30,000·0.005 = 300: 30,000 ∓ 200/(2·(1 ∓ 0.005))
    snap = account(
        "weex",
        500,
        [pos_doc("BTC/USDT:USDT", side, 2, 30_000, mode="cross")],
        {"BTC/USDT:USDT": one_tier(0.005)},
    )
    assert metrics(snap).positions[0].liquidationPrice == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("side", ["long", "short"])
def test_weex_margin_rate_equals_the_tier_mmr_at_the_lp(side):
    # TRB/USDT table (in Cont): 6,000 Cont → tier 2, MMR 5 %, at any price
    symbol, rows = fixture_rows("weex_trbusdt_2023-09-15.json")
    snap = account(
        "weex", 10_000, [pos_doc(symbol, side, 6_000, 50, margin=60_000 / 5)], {symbol: rows}
    )
    lp = metrics(snap).positions[0].liquidationPrice
    s = 1 if side == "long" else -1
    rate = (12_000 + s * 6_000 * (lp - 50)) / (6_000 * lp)
    assert rate == pytest.approx(0.05, rel=1e-9)


def pro_lp(book, wallet, i):
    """WEEX Futures Pro cross LP of position ``i`` (support article 24780414317593)."""
    total_value = wallet + sum(s * q * (mp - ep) for s, q, ep, mp, _ in book)
    total_mm = sum(q * mp * mmr for _s, q, _ep, mp, mmr in book)
    s, q, _ep, mp, mmr = book[i]
    return mp - (total_value - total_mm) / (s * q * (1 - s * mmr))


def test_weex_pro_formula_on_a_multi_position_cross_book():
    book = [  # (s, Q, EP, MP, MMR)
        (1, 0.5, 60_000, 61_000, 0.005),
        (-1, 5, 3_000, 2_950, 0.01),
        (1, 100, 50, 48, 0.025),
    ]
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "TRB/USDT:USDT"]
    docs, tiers = [], {}
    for sym, (s, q, ep, mp, mmr) in zip(symbols, book, strict=True):
        docs.append(pos_doc(sym, "long" if s > 0 else "short", q, ep, mp, mode="cross"))
        tiers[sym] = one_tier(mmr)
    snap = account("weex", 2_000, docs, tiers)
    got = [p.liquidationPrice for p in metrics(snap).positions]
    assert got == pytest.approx([pro_lp(book, 2_000, i) for i in range(3)], rel=1e-9)


def test_weex_parameters():
    m = model("weex")
    assert (m.mmBasis, m.tierUnit, m.mmDeduction, m.closeFeeRate) == (
        "mark",
        "contracts",
        False,
        0.0,
    )


# =================================================================== capability facts


def test_binance_refuses_a_switch_with_a_position_or_open_orders():
    m = model("binance")
    f = m.switch_feasibility("isolated", has_position=True, has_open_orders=False)
    assert f.feasible is False and f.code == "-4048"
    f = m.switch_feasibility("cross", has_position=False, has_open_orders=True)
    assert f.feasible is False and f.code == "-4047"
    assert m.switch_feasibility("isolated", False, False).feasible is True


def test_okx_chooses_the_mode_per_order():
    m = model("okx")
    assert m.capabilities.switchScope == "order"
    for pos, orders in itertools.product((True, False), repeat=2):
        f = m.switch_feasibility("isolated", pos, orders)
        assert f.feasible is True and "per order" in f.reason


def test_bybit_uta_switches_the_whole_account_classic_per_symbol():
    uta, classic = model("bybit"), model("bybit-classic")
    f = uta.switch_feasibility("isolated", has_position=False, has_open_orders=False)
    assert f.feasible is True and "whole account" in f.reason
    assert uta.switch_feasibility("isolated", True, False).feasible is None  # undocumented
    assert classic.switch_feasibility("isolated", True, False).feasible is None
    assert classic.switch_feasibility("cross", False, False).feasible is True


def test_mexc_switches_only_isolated_to_cross_with_a_position():
    m = model("mexc")
    assert m.capabilities.switchDirections == ("isolated->cross",)
    assert m.switch_feasibility("isolated", True, False).feasible is False
    assert m.switch_feasibility("cross", True, False).feasible is True
    assert m.switch_feasibility("isolated", False, False).feasible is True


@pytest.mark.parametrize("name", ["bingx", "weex", "gate"])
def test_undocumented_switch_rules_are_unknown(name):
    assert model(name).switch_feasibility("isolated", True, False).feasible is None
    assert model(name).switch_feasibility("isolated", False, False).feasible is True


def test_isolated_margin_adjustment_facts():
    for name in ("binance", "bybit", "okx", "bingx", "mexc", "weex"):
        assert model(name).capabilities.addIsolatedMargin is True, name
    assert model("gate").capabilities.addIsolatedMargin is None


@pytest.mark.parametrize("name", ["bybit", "bybit-classic", "okx", "gate", "bingx", "mexc", "weex"])
def test_every_model_cites_its_source(name):
    reg = get_registry()
    m = reg.margin_models[name]
    assert m.source.startswith("https://")
    module = importlib.import_module(reg.origins[("margin_models", name)])
    assert module.__doc__.count("https://") >= 2
    assert m.defaultMaintenanceMarginRate == 0.005  # documented in each module
