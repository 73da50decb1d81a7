"""Properties every margin model must have, for random positions (hypothesis, bounded).

1. More wallet behind a position never moves its liquidation price closer to the mark.
2. A cross position alone in the account, with a wallet equal to its margin, has the same
   liquidation price as the same position isolated with that margin.
3. At the liquidation price the margin balance equals the maintenance requirement there:
   maintenance margin (tier and basis as the model declares) plus the closing fee where
   the model counts one. Where a whole-position rate jumps at a tier boundary the
   liquidation can sit on the boundary; the balance then lies between the requirements
   on either side. Checked to 1e-9 of the position's scale (the larger of the requirement,
   the wallet and the entry value), since the balance is a difference of large numbers.

The requirement is computed here from the published definitions (docs/margin.md and each
model's docstring), not with the model's own methods.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskguard.engine.plugins import get_registry
from riskguard.margin.metrics import compute_metrics
from riskguard.model.snapshot import build_snapshot

TIERS = Path(__file__).parent / "fixtures" / "tiers"
MODELS = ["binance", "bingx", "bybit", "bybit-classic", "gate", "generic", "mexc", "okx", "weex"]
INVERSE_MODELS = [n for n in MODELS if get_registry().margin_models[n].inverseSupported]
EXAMPLES = settings(max_examples=40, deadline=None)


def _rows(name):
    return json.loads((TIERS / name).read_text())["tiers"]


ROWS = {
    "notional": _rows("binance_btcusdt_2024-10-24.json"),  # notional floors (USDT)
    "contracts": _rows("weex_trbusdt_2023-09-15.json"),  # contract-count floors
    "inverse": _rows("binance_btcusd_coinm_ccxt.json"),  # coin floors, derived amounts
}


def model(name):
    return get_registry().margin_models[name]


def _size(rows, lo_exp, hi_exp):
    """Tier metric (notional or contracts): log-uniform, or within 10 % of a tier floor so
    liquidation prices often cross a boundary (where rates jump or the tier re-iterates)."""
    floors = [r["minNotional"] for r in rows[1:]]
    near = st.tuples(st.sampled_from(floors), st.floats(-0.1, 0.1)).map(lambda t: t[0] * (1 + t[1]))
    return st.one_of(st.floats(lo_exp, hi_exp).map(lambda e: 10**e), near)


@st.composite
def cases(draw, name, inverse=False):
    """(snapshot document, wallet) for one isolated position fitting ``name``'s tiers."""
    m = model(name)
    side = draw(st.sampled_from(["long", "short"]))
    lev = draw(st.floats(1.0, 125.0))
    move = draw(st.floats(-0.2, 0.2))
    if inverse:
        ep = draw(st.floats(1_000.0, 100_000.0))
        cs = 100.0
        contracts = 10 ** draw(st.floats(0.0, 7.0))
        wallet = contracts * cs / ep / lev  # coin
        kind = "inverse"
    elif m.tierUnit == "contracts":
        ep = draw(st.floats(0.01, 100_000.0))
        cs = draw(st.sampled_from([1.0, 0.01, 0.001]))
        contracts = draw(_size(ROWS["contracts"], 0.0, 8.5))
        wallet = contracts * cs * ep / lev
        kind = "contracts"
    else:
        ep = draw(st.floats(0.01, 100_000.0))
        cs = 1.0
        contracts = draw(_size(ROWS["notional"], 1.0, 9.2)) / ep  # notional 10 .. 1.6e9
        wallet = contracts * cs * ep / lev
        kind = "notional"
    doc = {
        "exchange": name,
        "walletBalance": wallet,
        "positions": [
            {
                "symbol": "S",
                "side": side,
                "contracts": contracts,
                "contractSize": cs,
                "entryPrice": ep,
                "markPrice": ep * (1 + move),
                "leverage": lev,
                "inverse": inverse,
                "marginMode": "isolated",
                "isolatedMargin": wallet,
            }
        ],
        "leverageTiers": {"S": ROWS[kind]},
    }
    return doc, wallet


def _parts(doc):
    snap = build_snapshot(doc)
    pos = snap.positions[0]
    return snap, pos, snap.leverageTiers["S"], pos.markPrice


def _key(lp, side):
    """Order liquidation prices by distance from the mark on the adverse side (None = never)."""
    if lp is None:
        return -math.inf if side == "long" else math.inf
    return lp


# ----------------------------------------------------------------- 1. monotone in the wallet


def _check_monotone(name, case, extra):
    doc, wallet = case
    m = model(name)
    _snap, pos, tiers, mark = _parts(doc)
    lp1 = m.liquidation_price(pos, tiers, mark, wallet)
    lp2 = m.liquidation_price(pos, tiers, mark, wallet * (1 + extra))
    k1, k2 = _key(lp1, pos.side), _key(lp2, pos.side)
    tol = 1e-12 * abs(k1) if math.isfinite(k1) else 0.0
    if pos.side == "long":
        assert k2 <= k1 + tol, (lp1, lp2)
    else:
        assert k2 >= k1 - tol, (lp1, lp2)


@pytest.mark.parametrize("name", MODELS)
@EXAMPLES
@given(data=st.data(), extra=st.floats(0.001, 3.0))
def test_more_margin_never_brings_the_lp_closer(name, data, extra):
    _check_monotone(name, data.draw(cases(name)), extra)


@pytest.mark.parametrize("name", INVERSE_MODELS)
@EXAMPLES
@given(data=st.data(), extra=st.floats(0.001, 3.0))
def test_more_margin_never_brings_the_lp_closer_inverse(name, data, extra):
    _check_monotone(name, data.draw(cases(name, inverse=True)), extra)


# ----------------------------------------------------------------- 2. cross alone == isolated


def _check_cross_alone(name, case):
    doc, _wallet = case
    iso = build_snapshot(doc)
    cross_doc = {**doc, "positions": [{**doc["positions"][0], "marginMode": "cross"}]}
    del cross_doc["positions"][0]["isolatedMargin"]
    cross = build_snapshot(cross_doc)
    m = model(name)
    a = compute_metrics(iso, m).positions[0].liquidationPrice
    b = compute_metrics(cross, m).positions[0].liquidationPrice
    if a is None or b is None:
        assert a is b
    else:
        assert b == pytest.approx(a, rel=1e-12)


@pytest.mark.parametrize("name", MODELS)
@EXAMPLES
@given(data=st.data())
def test_a_lone_cross_position_liquidates_like_the_isolated_one(name, data):
    _check_cross_alone(name, data.draw(cases(name)))


@pytest.mark.parametrize("name", INVERSE_MODELS)
@EXAMPLES
@given(data=st.data())
def test_a_lone_cross_position_liquidates_like_the_isolated_one_inverse(name, data):
    _check_cross_alone(name, data.draw(cases(name, inverse=True)))


# ----------------------------------------------------------------- 3. balance = requirement at LP


def _tier_at(tiers, x):
    chosen = tiers[0]
    for t in tiers:
        if t.minNotional <= x:
            chosen = t
    return chosen


def _requirement(m, pos, tiers, price, nudge=0.0):
    """Maintenance margin + closing fee at ``price`` from the definitions; ``nudge`` shifts
    the tier metric by a relative amount to look at either side of a boundary."""
    basis = price if m.mmBasis == "mark" else pos.entryPrice
    q = pos.contracts * pos.contractSize
    if m.tierUnit == "contracts":
        metric = pos.contracts
    else:
        metric = q / basis if pos.inverse else q * basis
    tier = _tier_at(tiers, metric * (1 + nudge))
    amt = tier.maintenanceAmount if m.mmDeduction else 0.0
    rate = tier.maintenanceMarginRate
    mm = max((q * rate / basis if pos.inverse else q * basis * rate) - amt, 0.0)
    return mm + m.closeFeeRate * (q / price if pos.inverse else q * price)


def _balance(pos, wallet, price):
    q = pos.contracts * pos.contractSize
    s = 1 if pos.side == "long" else -1
    if pos.inverse:
        return wallet + s * q * (1 / pos.entryPrice - 1 / price)
    return wallet + s * q * (price - pos.entryPrice)


def _check_balance_at_lp(name, case):
    doc, wallet = case
    m = model(name)
    _snap, pos, tiers, mark = _parts(doc)
    lp = m.liquidation_price(pos, tiers, mark, wallet)
    q = pos.contracts * pos.contractSize
    value = q / pos.entryPrice if pos.inverse else q * pos.entryPrice
    if lp is None:
        # no positive LP: a long survives down to ~0 (linear), a short inverse up to ~∞
        if pos.inverse:
            assert pos.side == "short" and wallet - value >= -1e-9 * value
        else:
            assert pos.side == "long"
            tiny = pos.entryPrice * 1e-12
            assert _balance(pos, wallet, tiny) >= _requirement(m, pos, tiers, tiny) - 1e-9 * value
        return
    bal = _balance(pos, wallet, lp)
    lo = _requirement(m, pos, tiers, lp, -1e-9)
    hi = _requirement(m, pos, tiers, lp, +1e-9)
    tol = 1e-9 * max(lo, hi, wallet, value)
    assert min(lo, hi) - tol <= bal <= max(lo, hi) + tol, (lp, bal, lo, hi)


@pytest.mark.parametrize("name", MODELS)
@EXAMPLES
@given(data=st.data())
def test_margin_balance_equals_the_requirement_at_the_lp(name, data):
    _check_balance_at_lp(name, data.draw(cases(name)))


@pytest.mark.parametrize("name", INVERSE_MODELS)
@EXAMPLES
@given(data=st.data())
def test_margin_balance_equals_the_requirement_at_the_lp_inverse(name, data):
    _check_balance_at_lp(name, data.draw(cases(name, inverse=True)))


# ----------------------------------------------------------------- 4. a jump that crosses the balance

JUMP_MODELS = [n for n in MODELS if model(n).tierUnit == "notional" and not model(n).mmDeduction]


@pytest.mark.parametrize("name", JUMP_MODELS)
@EXAMPLES
@given(
    k=st.integers(1, len(ROWS["notional"]) - 1),
    d=st.floats(0.001, 0.3),
    alpha=st.floats(0.01, 0.99),
    ep=st.floats(0.01, 100_000.0),
)
def test_whole_position_rate_jump_liquidates_at_the_boundary(name, k, d, alpha, ep):
    # A short whose notional sits below tier floor F: with a whole-position rate the
    # requirement jumps by (r_k − r_(k−1))·F when the price reaches b = F/Q. Give the
    # position a wallet whose surplus at b over the lower tier's requirement is alpha times
    # that jump: safe below b, liquidated at b.
    m = model(name)
    rows = ROWS["notional"]
    floor, lower_floor = rows[k]["minNotional"], rows[k - 1]["minNotional"]
    d = min(d, 0.999 * (1 - lower_floor / floor))  # entry notional stays in tier k−1
    r1, r2 = rows[k - 1]["maintenanceMarginRate"], rows[k]["maintenanceMarginRate"]
    q = floor * (1 - d) / ep
    fee = m.closeFeeRate
    wallet = alpha * (r2 - r1) * floor + (floor - q * ep) + (r1 + fee) * floor
    doc = {
        "exchange": name,
        "walletBalance": wallet,
        "positions": [
            {
                "symbol": "S",
                "side": "short",
                "contracts": q,
                "entryPrice": ep,
                "markPrice": ep,
                "marginMode": "isolated",
                "isolatedMargin": wallet,
            }
        ],
        "leverageTiers": {"S": rows},
    }
    _snap, pos, tiers, mark = _parts(doc)
    assert m.liquidation_price(pos, tiers, mark, wallet) == pytest.approx(floor / q, rel=1e-9)
