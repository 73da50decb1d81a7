"""Binance USDⓈ-M and COIN-M margin math against the public vectors listed in
docs/margin.md (freqtrade B5–B12, FAQ tier lookups and maintenance amounts,
COIN-M FAQ example) and hand-computed expectations of the FAQ formula.

Every expected number below comes from the reference or from evaluating the published
formula by hand (the arithmetic is written next to it); none is copied from riskguard's
own output. Tolerances: margin-math.md §6.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from riskguard.engine.plugins import get_registry
from riskguard.margin.metrics import compute_metrics
from riskguard.model.snapshot import build_snapshot

from .margin_helpers import account, pos_doc

TIERS = Path(__file__).parent / "fixtures" / "tiers"


def binance():
    return get_registry().margin_models["binance"]


def fixture_rows(name: str, *, strip_amounts: bool = False) -> tuple[str, list[dict]]:
    d = json.loads((TIERS / name).read_text())
    rows = d["tiers"]
    if strip_amounts:
        rows = [{k: v for k, v in r.items() if k != "maintenanceAmount"} for r in rows]
    return d["symbol"], rows


def load_tiers(name: str, *, strip_amounts: bool = False):
    symbol, rows = fixture_rows(name, strip_amounts=strip_amounts)
    snap = build_snapshot({"walletBalance": 0, "leverageTiers": {symbol: rows}})
    return snap.leverageTiers[symbol]


def lp_of(snap, i=0):
    return compute_metrics(snap, binance()).positions[i].liquidationPrice


# ----------------------------------------------------------------- B5–B12 (freqtrade)

# test_get_liquidation_price: MMR 0.01 and cum 0.01 mocked, isolated, WB = Q·EP/leverage.
MOCK_TIER = [{"minNotional": 0, "maintenanceMarginRate": 0.01, "maintenanceAmount": 0.01}]


@pytest.mark.parametrize(
    ("vid", "side", "lev", "ep", "q", "expected"),
    [
        ("B5", "short", 5, 10, 1.0, 11.89108910891089),
        ("B6", "short", 3, 10, 1.0, 13.211221122079207),
        ("B7", "short", 5, 8, 1.0, 9.514851485148514),
        ("B8", "short", 5, 10, 0.6, 11.897689768976898),
        ("B9", "long", 5, 10, 1.0, 8.070707070707071),
        ("B10", "long", 5, 8, 1.0, 6.454545454545454),
        ("B11", "long", 3, 10, 1.0, 6.723905723905723),
        ("B12", "long", 5, 10, 0.6, 8.063973063973064),
    ],
)
def test_freqtrade_isolated_vectors(vid, side, lev, ep, q, expected):
    wb = q * ep / lev
    snap = account(
        wb,
        [pos_doc("X/USDT:USDT", side, q, ep, margin=wb, leverage=lev)],
        {"X/USDT:USDT": MOCK_TIER},
    )
    assert lp_of(snap) == pytest.approx(expected, rel=1e-9), vid


# ----------------------------------------------------------------- tier lookup (§1.1, §1.5)


@pytest.mark.parametrize("strip", [False, True], ids=["published-cum", "derived-cum"])
@pytest.mark.parametrize(
    ("notional", "mmr", "cum"),
    [
        (170.30, 0.004, 0.0),  # freqtrade test_get_maintenance_ratio_and_amt_binance
        (600_000_000, 0.5, 199_703_800.0),  # same (boundary belongs to the upper tier)
        (264_000, 0.01, 1_300.0),  # Binance FAQ: 264,000 USDT -> MMR 1 %
        (500_000, 0.01, 1_300.0),  # Binance FAQ: 500,000 USDT -> maintenance amount 1,300
    ],
)
def test_btc_2021_tier_lookup(notional, mmr, cum, strip):
    # The XRP/BNB/ADA/ZEC lookups of §1.5 need freqtrade fixture tables that the reference
    # does not reproduce; only the BTC table (§1.3-B) is pinned and tested.
    tiers = load_tiers("binance_btcusdt_2021.json", strip_amounts=strip)
    # notional = contracts × mark with mark 1: the tier is looked up on notional at mark
    snap = account(0, [pos_doc("BTC/USDT:USDT", "long", notional, 1.0, mode="cross")])
    mm, tier = binance().maintenance_margin(snap.positions[0], tiers, 1.0)
    assert tier.maintenanceMarginRate == mmr
    assert tier.maintenanceAmount == pytest.approx(cum, rel=1e-12, abs=1e-9)
    assert mm == pytest.approx(notional * mmr - cum, rel=1e-12)


# ----------------------------------------------------------------- maintenance amount recurrence


def test_published_level_3_maintenance_amount_is_derived():
    # FAQ: level 3 = 250,000 × (1% − 0.5%) + 50 = 1,300 USDT
    tiers = load_tiers("binance_btcusdt_2021.json", strip_amounts=True)
    assert tiers[2].maintenanceAmountDerived
    assert tiers[2].maintenanceAmount == pytest.approx(1_300, rel=1e-12)


@pytest.mark.parametrize(
    "name",
    [
        "binance_btcusdt_2021.json",
        "binance_btcusdt_2024-10-24.json",
        "binance_ethusdt_2024-10-24.json",
    ],
)
def test_derived_maintenance_amounts_equal_the_published_cum_column(name):
    _symbol, rows = fixture_rows(name)
    published = [r["maintenanceAmount"] for r in rows]
    derived = [t.maintenanceAmount for t in load_tiers(name, strip_amounts=True)]
    assert derived == pytest.approx(published, rel=1e-12, abs=1e-6)
    given = load_tiers(name)
    assert not any(t.maintenanceAmountDerived for t in given)


def test_maintenance_margin_is_continuous_at_every_2024_btc_boundary():
    tiers = load_tiers("binance_btcusdt_2024-10-24.json")
    m = binance()
    for lower, upper in itertools.pairwise(tiers):
        x = upper.minNotional
        below = x * lower.maintenanceMarginRate - lower.maintenanceAmount
        snap = account(0, [pos_doc("BTC/USDT:USDT", "long", x, 1.0, mode="cross")])
        at, tier = m.maintenance_margin(snap.positions[0], tiers, 1.0)
        assert tier is upper
        assert at == pytest.approx(below, rel=1e-12)


# ----------------------------------------------------------------- tier re-iteration at the LP


def _balance_and_mm_at(lp, side, q, ep, wb, tiers):
    """Margin balance and the FAQ maintenance margin at price ``lp`` (tier by notional at lp)."""
    s = 1 if side == "long" else -1
    notional = q * lp
    tier = [t for t in tiers if t.minNotional <= notional][-1]
    return (
        wb + s * q * (lp - ep),
        notional * tier.maintenanceMarginRate - tier.maintenanceAmount,
        tier,
    )


@pytest.mark.parametrize(
    ("side", "q", "ep", "lev", "tier_at_mark", "tier_at_lp"),
    [
        # long 12 BTC @ 60,000: notional 720,000 (tier 3); the tier-3 formula gives
        # (144,000 + 950 − 720,000)/(12·0.0065 − 12) = 48,234.3 → 578,812 notional: tier 2
        ("long", 12, 60_000, 5, 3, 2),
        # short 12 BTC @ 45,000: 540,000 (tier 2); tier-2 formula gives
        # (108,000 + 50 + 540,000)/(12·0.005 + 12) = 53,735.5 → 644,826 notional: tier 3
        ("short", 12, 45_000, 5, 2, 3),
    ],
)
def test_tier_is_recomputed_at_the_liquidation_price(side, q, ep, lev, tier_at_mark, tier_at_lp):
    tiers = load_tiers("binance_btcusdt_2024-10-24.json")
    wb = q * ep / lev
    snap = account(
        wb,
        [pos_doc("BTC/USDT:USDT", side, q, ep, margin=wb, leverage=lev)],
        {"BTC/USDT:USDT": fixture_rows("binance_btcusdt_2024-10-24.json")[1]},
    )
    assert [t for t in tiers if t.minNotional <= q * ep][-1].tier == tier_at_mark
    lp = lp_of(snap)
    balance, mm, tier = _balance_and_mm_at(lp, side, q, ep, wb, tiers)
    assert tier.tier == tier_at_lp
    assert balance == pytest.approx(mm, rel=1e-9)
    # and the answer differs from the formula evaluated with the mark's tier only
    t0 = tiers[tier_at_mark - 1]
    s = 1 if side == "long" else -1
    naive = (wb + t0.maintenanceAmount - s * q * ep) / (q * t0.maintenanceMarginRate - s * q)
    assert abs(naive - lp) > 1.0


# ----------------------------------------------------------------- COIN-M (inverse)


def test_coinm_faq_maintenance_margin_example():
    # FAQ: 100 BTCUSD contracts × 100 USD at mark 25,000 → 0.4 BTC, level 1:
    # MM = 0.4 × 0.4 % − 0 = 0.0016 BTC
    tiers = load_tiers("binance_btcusd_coinm_ccxt.json")
    snap = account(
        1.0,
        [pos_doc("BTC/USD:BTC", "long", 100, 25_000, mode="cross", contractSize=100, inverse=True)],
        exchange="binance",
    )
    mm, tier = binance().maintenance_margin(snap.positions[0], tiers, 25_000)
    assert tier.tier == 1
    assert mm == pytest.approx(0.0016, rel=1e-12)


def test_coinm_derived_maintenance_amounts():
    # §1.3-C derived: 0, 0.005, 0.055, 0.355, 1.605, 6.605, 11.605, 21.605, 121.605, 496.605 BTC
    tiers = load_tiers("binance_btcusd_coinm_ccxt.json")
    assert [t.maintenanceAmount for t in tiers] == pytest.approx(
        [0, 0.005, 0.055, 0.355, 1.605, 6.605, 11.605, 21.605, 121.605, 496.605], abs=1e-12
    )


def test_coinm_300_btc_uses_12_5_percent_and_11_605_btc():
    # Binance COIN-M FAQ: "300 BTC → MMR 12.5 %, maintenance amount 11.605 BTC".
    # 150,000 contracts × 100 USD at mark 50,000 = 300 BTC; MM = 300·0.125 − 11.605 = 25.895
    tiers = load_tiers("binance_btcusd_coinm_ccxt.json")
    snap = account(
        100.0,
        [
            pos_doc(
                "BTC/USD:BTC", "long", 150_000, 50_000, mode="cross", contractSize=100, inverse=True
            )
        ],
    )
    mm, tier = binance().maintenance_margin(snap.positions[0], tiers, 50_000)
    assert (tier.maintenanceMarginRate, tier.maintenanceAmount) == (0.125, pytest.approx(11.605))
    assert mm == pytest.approx(25.895, rel=1e-12)


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # ccxt binance.parse_account_position (cum = 0, tier 1), Q = 10,000 USD, WB 0.04 BTC:
        # long  Q·(1 + MMR)/(Q/EP + WB) = 10,040/(0.4 + 0.04) = 22,818.1818…
        ("long", 10_040 / 0.44),
        # short Q·(1 − MMR)/(Q/EP − WB) = 9,960/(0.4 − 0.04) = 27,666.6666…
        ("short", 9_960 / 0.36),
    ],
)
def test_coinm_isolated_lp_matches_ccxt_form_and_the_faq_condition(side, expected):
    tiers = fixture_rows("binance_btcusd_coinm_ccxt.json")
    snap = account(
        0.04,
        [
            pos_doc(
                "BTC/USD:BTC",
                side,
                100,
                25_000,
                margin=0.04,
                contractSize=100,
                inverse=True,
                leverage=10,
            )
        ],
        {tiers[0]: tiers[1]},
    )
    lp = lp_of(snap)
    assert lp == pytest.approx(expected, rel=1e-9)
    # at the LP: WB + s·Q·(1/EP − 1/LP) = Q·MMR/LP − cum (tier 1: MMR 0.4 %, cum 0)
    s = 1 if side == "long" else -1
    q = 10_000
    assert 0.04 + s * q * (1 / 25_000 - 1 / lp) == pytest.approx(q * 0.004 / lp, rel=1e-9)


# ----------------------------------------------------------------- two-position cross account


def test_two_cross_positions_and_an_isolated_one_to_the_cent():
    t = {
        "BTC/USDT:USDT": fixture_rows("binance_btcusdt_2024-10-24.json")[1],
        "ETH/USDT:USDT": fixture_rows("binance_ethusdt_2024-10-24.json")[1],
    }
    snap = account(
        10_000,
        [
            pos_doc("BTC/USDT:USDT", "long", 1, 60_000, 61_000, mode="cross", leverage=20),
            pos_doc("ETH/USDT:USDT", "short", 10, 3_000, 2_900, mode="cross", leverage=20),
            pos_doc("SOL/USDT:USDT", "long", 10, 150, margin=1_000, leverage=5),
        ],
        t,
    )
    m = compute_metrics(snap, binance())
    # cross wallet = 10,000 − 1,000 isolated
    assert m.crossWalletBalance == 9_000
    btc, eth, _sol = m.positions
    # BTC: notional 61,000 → tier 2 (MMR 0.5 %, cum 50): MM = 305 − 50 = 255; uPnL +1,000
    # ETH: notional 29,000 → tier 1 (MMR 0.4 %): MM = 116; uPnL −10·(2,900 − 3,000) = +1,000
    assert btc.maintenanceMargin == pytest.approx(255)
    assert eth.maintenanceMargin == pytest.approx(116)
    # BTC LP = (WB − TMM1 + UPNL1 + cum − s·Q·EP)/(Q·MMR − s·Q)
    #        = (9,000 − 116 + 1,000 + 50 − 60,000)/(0.005 − 1) = −50,066/−0.995 = 50,317.59
    #   notional at LP 50,317.59 stays in tier 2 (≥ 50,000)
    assert btc.liquidationPrice == pytest.approx(50_317.59, abs=0.005)
    # ETH LP = (9,000 − 255 + 1,000 + 0 + 30,000)/(10·0.004 + 10) = 39,745/10.04 = 3,958.67
    #   notional at LP 39,586.65 stays in tier 1
    assert eth.liquidationPrice == pytest.approx(3_958.67, abs=0.005)
    # distance = s·(MP − LP)/MP·100 (the LPs above are rounded to the cent: ±2e-4 points)
    assert btc.liquidationDistancePct == pytest.approx(17.5122, abs=2e-4)  # 10,682.41/61,000
    assert eth.liquidationDistancePct == pytest.approx(
        36.5059, abs=2e-4
    )  # −(2,900 − 3,958.67)/2,900


def test_liquidation_price_at_or_below_zero_is_none():
    # isolated long 1 @ 100 with 200 margin: LP = (200 − 100)/(0.005 − 1) < 0 → "--"
    snap = account(200, [pos_doc("X/USDT:USDT", "long", 1, 100, margin=200, leverage=1)])
    p = compute_metrics(snap, binance()).positions[0]
    assert p.liquidationPrice is None
    assert p.liquidationDistancePct is None
    assert p.tierSource == "default"  # no tiers: the model's default MMR, flagged


def test_default_mmr_without_tiers_is_flagged_approximate():
    # isolated long 1 @ 100, 10×: LP = (10 − 100)/(0.005 − 1) = 90.4522…
    snap = account(10, [pos_doc("X/USDT:USDT", "long", 1, 100, margin=10, leverage=10)])
    m = compute_metrics(snap, binance())
    assert m.positions[0].liquidationPrice == pytest.approx(90 / 0.995, rel=1e-9)
    assert m.positions[0].approximate and m.approximate


def test_a_tier_without_a_positive_root_does_not_hide_the_liquidation():
    # Long 10 BTC @ 60,000 = 600,000 (tier 3, cum 950) with 599,500 margin. The tier-3 formula
    # gives (599,500 + 950 − 600,000)/(10·0.0065 − 10) < 0, yet the wallet is 500 short of the
    # entry value, so the position liquidates above 0. Tier 1 (cum 0):
    # (599,500 − 600,000)/(10·0.004 − 10) = 500/9.96 = 50.2008…, notional 502: tier 1 indeed.
    t = {"BTC/USDT:USDT": fixture_rows("binance_btcusdt_2024-10-24.json")[1]}
    snap = account(599_500, [pos_doc("BTC/USDT:USDT", "long", 10, 60_000, margin=599_500)], t)
    assert lp_of(snap) == pytest.approx(500 / 9.96, rel=1e-9)


def test_coinm_short_whose_wallet_is_below_its_entry_value_liquidates():
    # 100,000 contracts × 100 USD = 10,000,000 USD short @ 1,000 (10,000 BTC, tier 10), wallet
    # 9,800 BTC: at any high price the loss approaches 10,000 BTC > wallet. Tier 10's formula has
    # no positive root; at the LP the notional is ~215 BTC, tier 7 (MMR 12.5 %, amount 11.605):
    # LP = Q·(MMR − 1)/(WB + cum − Q/EP) = 10,000,000·(−0.875)/(9,800 + 11.605 − 10,000) = 46,445.0…
    tiers = fixture_rows("binance_btcusd_coinm_ccxt.json")
    snap = account(
        9_800,
        [
            pos_doc(
                "BTC/USD:BTC", "short", 100_000, 1_000, margin=9_800, contractSize=100, inverse=True
            )
        ],
        {tiers[0]: tiers[1]},
    )
    lp = lp_of(snap)
    assert lp == pytest.approx(10_000_000 * 0.875 / (10_000 - 9_800 - 11.605), rel=1e-9)
    assert 200 <= 10_000_000 / lp < 400  # tier 7
