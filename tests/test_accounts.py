"""Hedge mode and multi-collateral accounts (riskguard.margin.accounts).

Sources: Binance's USDⓈ-M liquidation FAQ (the BOTH/LONG/SHORT cross formula, cited in
riskguard/margin/accounts.py); Bybit's UTA glossary (margin balance, account MM rate);
Bitget's "Cross margin collateral ratios" page for progressive collateral tiers
(1 BTC at 50,000 + 60,000 APT at 1 → 90,000 USD; 11,000,000 USDT → 10,875,000 USD).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskguard import Guard
from riskguard.errors import SnapshotError
from riskguard.model.snapshot import build_snapshot
from tests.conftest import run_cli

BTC = "BTC/USDT:USDT"
# Binance BTCUSDT brackets, freqtrade snapshot 2024-10-24 (first three tiers)
TIERS = {
    BTC: [
        {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maintenanceAmount": 0},
        {"minNotional": 50000, "maxNotional": 600000, "maintenanceMarginRate": 0.005, "maintenanceAmount": 50},
        {"minNotional": 600000, "maxNotional": 3000000, "maintenanceMarginRate": 0.0065, "maintenanceAmount": 950},
    ]
}  # fmt: skip
EMPTY = {
    "apiVersion": "riskguard/v1",
    "kind": "Policy",
    "metadata": {"name": "t", "version": "1"},
    "spec": {"rules": []},
}


@pytest.fixture(scope="module")
def guard():
    return Guard.from_dict(EMPTY)


def leg(side, contracts, entry, mark=61000.0, **kw):
    return {"symbol": BTC, "side": side, "contracts": contracts, "entryPrice": entry,
            "markPrice": mark, "leverage": 10, **kw}  # fmt: skip


def hedge_doc(legs, wallet=5000.0, exchange="binance", **kw):
    return {"exchange": exchange, "walletBalance": wallet, "positionMode": "hedge",
            "positions": legs, "leverageTiers": TIERS, **kw}  # fmt: skip


def binance_hedge_lp(wb, tmm1, upnl1, legs_with_tier):
    """Binance's cross formula with the LONG/SHORT terms, written out from the FAQ."""
    num = wb - tmm1 + upnl1
    den = 0.0
    for side, q, ep, mmr, cum in legs_with_tier:
        num += cum + (-q * ep if side == "long" else q * ep)
        den += q * mmr + (-q if side == "long" else q)
    return num / den


# --------------------------------------------------------------------------- hedge mode


def test_hedge_legs_share_binances_cross_liquidation_price(guard):
    m = guard.metrics(hedge_doc([leg("long", 1.0, 60000), leg("short", 0.5, 62000)]))
    lp = binance_hedge_lp(
        5000, 0, 0, [("long", 1.0, 60000, 0.004, 0), ("short", 0.5, 62000, 0.004, 0)]
    )
    assert [p.liquidationPrice for p in m.positions] == [pytest.approx(lp, rel=1e-12)] * 2
    assert lp * 1.0 < 50000  # both legs' notional at LP is in tier 1, as assumed
    assert m.to_dict()["positionMode"] == "hedge"


def test_hedge_legs_with_another_symbol_and_a_tier_change(guard):
    eth = {"symbol": "ETH/USDT:USDT", "side": "long", "contracts": 10, "entryPrice": 3000,
           "markPrice": 2900, "leverage": 10}  # fmt: skip
    doc = hedge_doc([leg("long", 2.0, 60000), leg("short", 1.5, 61000), eth], wallet=10000)
    m = guard.metrics(doc)
    e = m.positions[2]
    lp = binance_hedge_lp(
        10000, e.maintenanceMargin, e.unrealizedPnl,
        [("long", 2.0, 60000, 0.005, 50), ("short", 1.5, 61000, 0.005, 50)],
    )  # fmt: skip
    assert 1.5 * lp >= 50000 and 2.0 * lp < 600000  # both legs in tier 2 at LP (tier 1 at mark: no)
    assert m.positions[0].liquidationPrice == pytest.approx(lp, rel=1e-12)
    assert m.positions[1].liquidationPrice == m.positions[0].liquidationPrice


def test_isolated_legs_keep_their_own_formula(guard):
    legs = [leg("long", 1.0, 60000, marginMode="isolated", isolatedMargin=6000),
            leg("short", 1.0, 60000, marginMode="isolated", isolatedMargin=6000)]  # fmt: skip
    m = guard.metrics(hedge_doc(legs))
    long_lp = (6000 + 50 - 60000) / (0.005 - 1)  # one-way isolated, tier 2 at LP
    short_lp = (6000 + 60000) / (0.005 + 1) + 50 / (0.005 + 1)  # tier 2 at LP
    assert m.positions[0].liquidationPrice == pytest.approx(long_lp, rel=1e-12)
    assert m.positions[1].liquidationPrice == pytest.approx(short_lp, rel=1e-12)


def test_one_way_snapshot_rejects_nothing_new_and_hedge_rejects_a_duplicate_leg():
    with pytest.raises(SnapshotError) as e:
        build_snapshot(hedge_doc([leg("long", 1, 60000), leg("long", 1, 60000)]))
    assert "positions[1].side" in str(e.value)
    with pytest.raises(SnapshotError) as e:
        build_snapshot(hedge_doc([leg("long", 1, 60000)], positionMode="both"))
    assert "positionMode" in str(e.value)


@given(
    q=st.floats(0.001, 50),
    ep=st.floats(1000, 100000),
    mark_f=st.floats(0.5, 1.5),
    wallet_f=st.floats(0.01, 2.0),
    exchange=st.sampled_from(["binance", "bybit", "bitget", "okx", "hyperliquid"]),
)
def test_equal_legs_liquidate_only_by_maintenance_and_fees(q, ep, mark_f, wallet_f, exchange):
    """A long and a short of equal size and entry: their PnL cancels at every price, so the
    only liquidating price is where maintenance margin and closing fees eat the wallet."""
    mark = ep * mark_f
    wallet = q * ep * wallet_f
    tiers = {BTC: [{"minNotional": 0, "maintenanceMarginRate": 0.01}]}
    doc = hedge_doc([leg("long", q, ep, mark), leg("short", q, ep, mark)], wallet, exchange,
                    leverageTiers=tiers)  # fmt: skip
    m = Guard.from_dict(EMPTY).metrics(doc)
    lp = m.positions[0].liquidationPrice
    assert m.positions[1].liquidationPrice == lp
    from riskguard.margin import bitget, okx

    fee = {"bitget": bitget.BITGET, "okx": okx.OKX}.get(exchange)
    f = fee.closeFeeRate if fee else 0.0
    if exchange == "bybit":  # MM valued at entry: nothing moves with price
        assert lp is None
        return
    assert lp is not None
    # at LP: wallet + 0 (the legs' PnL sum) = both legs' MM + both legs' fee, nothing else
    need = 2 * q * lp * (0.01 + f)
    assert wallet == pytest.approx(need, rel=1e-9)


def test_reduce_only_on_the_wrong_leg_is_refused(guard):
    doc = hedge_doc([leg("long", 1.0, 60000), leg("short", 0.5, 62000)])
    d = guard.check(doc, {"symbol": BTC, "side": "buy", "amount": 0.1, "reduceOnly": True,
                          "positionSide": "LONG"})  # fmt: skip
    assert not d.allowed
    assert "ORDER_REDUCE_ONLY_WRONG_LEG" in {v.code for v in d.violations}
    ok = guard.check(doc, {"symbol": BTC, "side": "buy", "amount": 0.1, "reduceOnly": True,
                           "positionSide": "short"})  # fmt: skip
    assert ok.allowed, ok.violations


def test_an_order_acts_on_its_own_leg_only():
    from riskguard.margin.metrics import apply_order, order_reduces
    from riskguard.model.snapshot import build_order

    s = build_snapshot(hedge_doc([leg("long", 1.0, 60000), leg("short", 0.5, 62000)]))
    close_long = build_order({"symbol": BTC, "side": "sell", "amount": 3, "positionSide": "long"})
    after = apply_order(s, close_long)
    assert [(p.side, p.contracts) for p in after.positions] == [("short", 0.5)]  # no flip
    assert order_reduces(s, close_long)
    add_short = build_order({"symbol": BTC, "side": "sell", "amount": 0.5})
    after = apply_order(s, add_short)
    assert sorted((p.side, p.contracts) for p in after.positions) == [("long", 1.0), ("short", 1.0)]
    assert not order_reduces(s, add_short) and after.positionMode == "hedge"


def test_cli_check_and_metrics_accept_hedge_mode(tmp_path):
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(hedge_doc([leg("long", 1.0, 60000), leg("short", 0.5, 62000)])))
    order = tmp_path / "o.json"
    order.write_text(json.dumps({"symbol": BTC, "side": "buy", "amount": 0.1,
                                 "reduceOnly": True, "positionSide": "LONG"}))  # fmt: skip
    r = run_cli("metrics", str(snap), "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["positionMode"] == "hedge"
    assert m["positions"][0]["liquidationPrice"] == m["positions"][1]["liquidationPrice"]
    r = run_cli(
        "check",
        "--policy",
        "policies/default.yaml",
        "--snapshot",
        str(snap),
        "--order",
        str(order),
        "--json",
    )
    assert r.returncode == 1, r.stderr
    assert "ORDER_REDUCE_ONLY_WRONG_LEG" in r.stdout


# --------------------------------------------------------------------------- collateral


def test_progressive_collateral_tiers_published_examples():
    s = build_snapshot({"walletBalance": 0, "balances": [
        {"coin": "BTC", "amount": 1, "price": 50000,
         "collateralTiers": [{"minAmount": 0, "maxAmount": 100, "ratio": 1}]},
        {"coin": "APT", "amount": 60000, "price": 1,
         "collateralTiers": [{"minAmount": 0, "maxAmount": 50000, "ratio": 0.8},
                             {"minAmount": 50000, "ratio": 0}]},
        {"coin": "USDT", "amount": 11_000_000, "price": 1,
         "collateralTiers": [{"minAmount": 0, "maxAmount": 5e6, "ratio": 1},
                             {"minAmount": 5e6, "maxAmount": 1e7, "ratio": 0.98},
                             {"minAmount": 1e7, "maxAmount": 2e7, "ratio": 0.975}]},
    ]})  # fmt: skip
    btc, apt, usdt = s.balances
    assert btc.collateral_value() + apt.collateral_value() == pytest.approx(90000, abs=1e-9)
    assert usdt.collateral_value() == pytest.approx(10_875_000, abs=1e-6)


def multi_doc(exchange="binance", btc=0.2, side="long", usdt=2000.0, ratio=0.95):
    return {
        "exchange": exchange, "walletBalance": usdt, "settle": "USDT",
        "balances": [{"coin": "USDT", "amount": usdt, "price": 1},
                     {"coin": "BTC", "amount": btc, "price": 61000, "collateralRatio": ratio},
                     {"coin": "ETH", "amount": 1.5, "price": 3000, "collateralRatio": 0.9}],
        "positions": [leg(side, 0.5, 60000)],
        "leverageTiers": TIERS,
    }  # fmt: skip


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
@pytest.mark.parametrize("side", ["long", "short"])
def test_multi_asset_account_figures_and_liquidation(guard, exchange, side):
    m = guard.metrics(multi_doc(exchange, side=side))
    d = m.to_dict()
    cv = 2000 + 0.2 * 61000 * 0.95 + 1.5 * 3000 * 0.9
    s = 1 if side == "long" else -1
    upnl = s * 0.5 * 1000
    assert d["collateralValue"] == pytest.approx(cv)
    assert d["marginBalance"] == pytest.approx(cv + upnl) and d["equity"] == d["marginBalance"]
    pm = m.positions[0]
    assert d["accountMaintenanceMarginRate"] == pytest.approx(pm.maintenanceMargin / (cv + upnl))
    assert d["accountInitialMarginRate"] == pytest.approx(pm.initialMargin / (cv + upnl))
    lp = pm.liquidationPrice
    # at LP the BTC collateral is repriced with the mark; the account MM rate is 100 %
    mb = 2000 + 0.2 * lp * 0.95 + 1.5 * 3000 * 0.9 + s * 0.5 * (lp - 60000)
    basis = lp if exchange == "binance" else 60000  # Bybit values MM at entry
    n = 0.5 * basis
    mm = n * 0.004 if n < 50000 else n * 0.005 - 50  # the tier the notional falls in
    assert mb == pytest.approx(mm, rel=1e-9)
    assert (lp < 61000) if side == "long" else (lp > 61000)


@given(
    wallet=st.floats(100, 1e6),
    q=st.floats(0.001, 20),
    ep=st.floats(1000, 100000),
    mark_f=st.floats(0.7, 1.3),
    side=st.sampled_from(["long", "short"]),
    mode=st.sampled_from(["cross", "isolated"]),
    exchange=st.sampled_from(["binance", "bybit", "okx", "bitget", "hyperliquid"]),
)
def test_single_currency_through_balances_gives_identical_figures(
    wallet, q, ep, mark_f, side, mode, exchange
):
    pos = leg(side, q, ep, ep * mark_f, marginMode=mode,
              **({"isolatedMargin": q * ep / 10} if mode == "isolated" else {}))  # fmt: skip
    eth = {"symbol": "ETH/USDT:USDT", "side": "short", "contracts": 2, "entryPrice": 3000,
           "markPrice": 3100, "leverage": 5}  # fmt: skip
    base = {"exchange": exchange, "walletBalance": wallet + q * ep / 10, "positions": [pos, eth],
            "leverageTiers": {**TIERS, "ETH/USDT:USDT": TIERS[BTC]}}  # fmt: skip
    multi = {**base, "balances": [{"coin": "USDT", "amount": base["walletBalance"], "price": 1}]}
    g = Guard.from_dict(EMPTY)
    a, b = g.metrics(base).to_dict(), g.metrics(multi).to_dict()
    for k, v in a.items():
        assert b[k] == v, k


@given(
    extra=st.floats(0.001, 5),
    coin=st.sampled_from(["USDT", "BTC", "ETH"]),
    side=st.sampled_from(["long", "short"]),
    btc=st.floats(0, 1),
    exchange=st.sampled_from(["binance", "bybit"]),
)
def test_more_collateral_never_moves_liquidation_closer(extra, coin, side, btc, exchange):
    g = Guard.from_dict(EMPTY)
    doc = multi_doc(exchange, btc=btc, side=side)
    lp0 = g.metrics(doc).positions[0].liquidationPrice
    for b in doc["balances"]:
        if b["coin"] == coin:
            b["amount"] += extra * (1000 if coin == "USDT" else 0.1)
    lp1 = g.metrics(doc).positions[0].liquidationPrice
    if lp0 is None:
        assert lp1 is None
    elif lp1 is not None:
        assert (lp1 <= lp0 * (1 + 1e-9)) if side == "long" else (lp1 >= lp0 * (1 - 1e-9))


def test_cli_metrics_and_audit_accept_balances_and_hedge_mode(tmp_path):
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(multi_doc()))
    r = run_cli("metrics", str(snap), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["balances"][1]["coin"] == "BTC"
    (tmp_path / "h.json").write_text(
        json.dumps(hedge_doc([leg("long", 1.0, 60000), leg("short", 0.5, 62000)]))
    )
    lines = tmp_path / "all.jsonl"
    lines.write_text(json.dumps(multi_doc()) + "\n" + (tmp_path / "h.json").read_text() + "\n")
    out = tmp_path / "out.jsonl"
    r = run_cli("audit", "--policy", "policies/default.yaml", str(lines), "--out", str(out))
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    records = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    assert len(records) == 2


def test_sizing_an_order_that_opens_the_other_leg(guard):
    """A sell opening the short leg does not close the long one: it adds its own margin."""
    policy = {**EMPTY, "spec": {"rules": [{"id": "mu", "type": "margin_utilization",
              "params": {"max": 0.35}, "onViolation": ["resize_order"]}]}}  # fmt: skip
    g = Guard.from_dict(policy)
    doc = hedge_doc([leg("long", 1.0, 60000)], wallet=20000)
    order = {"symbol": BTC, "side": "sell", "amount": 1.0, "leverage": 10, "positionSide": "SHORT"}
    d = g.check(doc, order)
    assert d.decision == "resize"
    im_long, equity = 61000 / 10, 20000 + 1000
    expected = (0.35 * equity - im_long) / (61000 / 10)
    assert d.maxAllowedAmount == pytest.approx(expected, rel=1e-6)
    assert d.maxAllowedAmount <= expected
    ok = g.check(doc, {**order, "amount": d.maxAllowedAmount})
    assert ok.allowed
    # the same order in one-way mode closes the long first: a different answer
    one_way = g.check({**doc, "positionMode": "oneway"}, order)
    assert one_way.allowed


# --------------------------------------------------------------------------- cross_stress

STRESS = {**EMPTY, "spec": {"rules": [{"id": "cs", "type": "cross_stress",
          "params": {"shockPct": 20}}]}}  # fmt: skip


def stress_codes(doc) -> set:
    return {v.code for v in Guard.from_dict(STRESS).check(doc).violations}


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_cross_stress_shocks_collateral_with_its_symbol(exchange):
    """Same book, same USDT: a BTC-collateralised short BTC is hedged by its collateral, a
    long BTC is doubly exposed; a 20 % shock liquidates only the long."""

    def doc(side):
        return {"exchange": exchange, "walletBalance": 0, "settle": "USDT", "leverageTiers": TIERS,
                "balances": [{"coin": "USDT", "amount": 6600, "price": 1},
                             {"coin": "BTC", "amount": 0.1, "price": 60000, "collateralRatio": 0.95}],
                "positions": [leg(side, 1.0, 60000, 60000)]}  # fmt: skip

    assert "CROSS_STRESS_POOL_LIQUIDATED" in stress_codes(doc("long"))
    assert "CROSS_STRESS_POOL_LIQUIDATED" not in stress_codes(doc("short"))
    # long: 6,600 + 0.1·48,000·0.95 − 12,000 < MM; short: 6,600 + 0.1·72,000·0.95 − 12,000 > MM
    # the same long with its BTC's value (5,700) in USDT survives: 6,600 + 5,700 − 12,000 > MM
    usdt = doc("long")
    usdt["balances"] = [{"coin": "USDT", "amount": 6600 + 5700, "price": 1}]
    assert "CROSS_STRESS_POOL_LIQUIDATED" not in stress_codes(usdt)


def test_cross_stress_moves_hedged_legs_together():
    """One-way reading would shock the long down and the short up at once; the legs of one
    symbol move together, so an equal pair loses nothing but maintenance growth."""
    doc = hedge_doc([leg("long", 1.0, 60000, 60000), leg("short", 1.0, 60000, 60000)], wallet=1000)
    assert "CROSS_STRESS_POOL_LIQUIDATED" not in stress_codes(doc)
    # the pair liquidates only where maintenance margin (0.5 % of 2 × notional, tier 2) eats it
    # up 20 % (where a flat pair's maintenance grows): 2·(72,000·0.005 − 50) = 620 > 600
    thin = hedge_doc([leg("long", 1.0, 60000, 60000), leg("short", 1.0, 60000, 60000)], wallet=600)
    assert "CROSS_STRESS_POOL_LIQUIDATED" in stress_codes(thin)


def test_binance_multi_assets_published_haircuts_and_liquidation(guard):
    """Binance "What Is Multi-Assets Mode": BNB worth $1,000 counts $950 (5 % haircut), ADA
    worth $1,000 counts $900 (10 %); USDT at 99.99 %. The account liquidates where its
    margin balance — the coins at their haircut, USDT plus PnL at 99.99 % while positive and
    at 100 % once it is a liability — meets maintenance margin."""
    doc = {
        "exchange": "binance", "walletBalance": 0, "settle": "USDT", "leverageTiers": TIERS,
        "balances": [{"coin": "BNB", "amount": 2.5, "price": 400, "collateralRatio": 0.95},
                     {"coin": "ADA", "amount": 2000, "price": 0.5, "collateralRatio": 0.9},
                     {"coin": "USDT", "amount": 3000, "price": 1, "collateralRatio": 0.9999}],
        "positions": [leg("long", 0.5, 60000)],
    }  # fmt: skip
    m = guard.metrics(doc)
    d = m.to_dict()
    assert [b["collateralValue"] for b in d["balances"][:2]] == [
        pytest.approx(950),
        pytest.approx(900),
    ]
    assert d["collateralValue"] == pytest.approx(950 + 900 + 3000 * 0.9999)
    lp = m.positions[0].liquidationPrice
    usdt = 3000 + 0.5 * (lp - 60000)
    assert usdt < 0  # the loss has turned the USDT balance into a liability by then
    mb = 950 + 900 + usdt
    assert mb == pytest.approx(0.5 * lp * 0.004, rel=1e-9)
    # a larger book whose USDT stays positive at LP: it counts at 99.99 % (tier 2 at LP)
    doc["balances"][2]["amount"] = 60000
    doc["positions"] = [leg("long", 8.0, 60000)]
    lp = guard.metrics(doc).positions[0].liquidationPrice
    usdt = 60000 + 8 * (lp - 60000)
    assert usdt > 0 and 50000 <= 8 * lp < 600000
    assert 950 + 900 + usdt * 0.9999 == pytest.approx(8 * lp * 0.005 - 50, rel=1e-9)


def test_hedge_mode_closing_orders_lock_no_margin(guard):
    legs = [leg("long", 1.0, 60000), leg("short", 0.5, 62000)]
    close = {"symbol": BTC, "side": "sell", "amount": 0.5, "price": 61000, "positionSide": "LONG"}
    opening = {**close, "positionSide": "SHORT"}
    m = guard.metrics(hedge_doc(legs, openOrders=[close]))
    assert m.openOrderInitialMargin == 0.0
    m = guard.metrics(hedge_doc(legs, openOrders=[opening]))
    assert m.openOrderInitialMargin == pytest.approx(0.5 * 61000 / 10)  # the legs run 10×


# --------------------------------------------------------------------------- input forms

_anything = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(0, 3), max_size=2),
)  # fmt: skip


@given(
    where=st.sampled_from(
        ["positionMode", "balances", "coin", "amount", "price", "collateralRatio",
         "collateralTiers", "tier.minAmount", "tier.maxAmount", "tier.ratio", "order.positionSide"]
    ),
    value=_anything,
)  # fmt: skip
def test_builder_rejects_whatever_the_schema_rejects_in_the_new_forms(where, value):
    from riskguard.model.schemas import validator

    doc = multi_doc()
    doc["balances"][1] = {"coin": "BTC", "amount": 0.2, "price": 61000,
                          "collateralTiers": [{"minAmount": 0, "maxAmount": 10, "ratio": 0.98},
                                              {"minAmount": 10, "ratio": 0.95}]}  # fmt: skip
    doc["openOrders"] = [{"symbol": BTC, "side": "buy", "amount": 0.1}]
    if where in ("positionMode", "balances"):
        doc[where] = value
    elif where.startswith("tier."):
        doc["balances"][1]["collateralTiers"][1][where[5:]] = value
    elif where == "order.positionSide":
        doc["openOrders"][0]["positionSide"] = value
    elif where in ("collateralRatio", "collateralTiers"):
        doc["balances"][0][where] = value
    else:
        doc["balances"][1][where] = value
    schema_ok = validator("snapshot").is_valid(doc)
    try:
        build_snapshot(doc)
        built = True
    except SnapshotError as e:
        built = False
        assert all(p.path.startswith("$.") for p in e.problems)
    if built:
        assert schema_ok, (where, value)
    if isinstance(value, float) and not math.isfinite(value):
        assert not built


def test_bad_balances_name_their_json_path():
    doc = multi_doc()
    doc["balances"][1]["price"] = 0
    doc["balances"][2]["collateralTiers"] = [{"minAmount": 5, "ratio": 0.9}]
    doc["balances"].append({"coin": "USDT", "amount": 1, "price": 1})
    with pytest.raises(SnapshotError) as e:
        build_snapshot(doc)
    paths = {p.path for p in e.value.problems}
    assert {"$.balances[1].price", "$.balances[2].collateralTiers[0].minAmount",
            "$.balances[3].coin"} <= paths  # fmt: skip


def test_account_leverage_nets_the_legs_of_a_symbol_margin_counts_both():
    policy = {**EMPTY, "spec": {"rules": [{"id": "lev", "type": "max_leverage",
              "params": {"max": 20, "accountMax": 5}}]}}  # fmt: skip
    g = Guard.from_dict(policy)
    doc = hedge_doc([leg("long", 1.0, 60000)], wallet=20000)  # 61,000 / 21,000 = 2.9×
    hedge = {"symbol": BTC, "side": "sell", "amount": 1.0, "leverage": 10, "positionSide": "SHORT"}
    assert g.check(doc, hedge).allowed  # net exposure 0 after it; gross would be 5.8×
    more = {"symbol": BTC, "side": "buy", "amount": 1.0, "leverage": 10, "positionSide": "LONG"}
    assert not g.check(doc, more).allowed or g.check(doc, more).decision == "resize"
    m = g.metrics(hedge_doc([leg("long", 1.0, 60000), leg("short", 1.0, 60000)], wallet=20000))
    d = m.to_dict()
    assert d["effectiveLeverage"] == 0.0
    assert d["grossEffectiveLeverage"] == pytest.approx(2 * 61000 / 20000)
    assert d["initialMargin"] == pytest.approx(2 * 6100)  # both legs hold margin


@given(
    ql=st.floats(0.01, 5),
    qs=st.floats(0.01, 5),
    el=st.floats(20000, 100000),
    es=st.floats(20000, 100000),
    wallet=st.floats(100, 50000),
    extra=st.floats(1, 50000),
    exchange=st.sampled_from(["binance", "bitget", "okx", "hyperliquid", "bybit"]),
)
def test_more_wallet_never_moves_a_hedged_pairs_liquidation_closer(
    ql, qs, el, es, wallet, extra, exchange
):
    tiers = (
        {BTC: TIERS[BTC]}
        if exchange != "okx"
        else {BTC: [{"minNotional": 0, "maintenanceMarginRate": 0.005}]}
    )
    legs = [leg("long", ql, el, 61000), leg("short", qs, es, 61000)]
    g = Guard.from_dict(EMPTY)
    m0 = g.metrics(hedge_doc(legs, wallet, exchange, leverageTiers=tiers))
    if m0.marginRatio is None or m0.marginRatio >= 0.9:
        return  # at or past liquidation already: a root then lies on the safe side
    lp0 = m0.positions[0].liquidationPrice
    m1 = g.metrics(hedge_doc(legs, wallet + extra, exchange, leverageTiers=tiers))
    lp1 = m1.positions[0].liquidationPrice
    if lp0 is None:
        assert lp1 is None
        return
    if lp1 is None:
        return  # more wallet removed the liquidation price altogether
    assert (lp0 - 61000) * (lp1 - 61000) > 0  # the same side of the mark
    assert abs(lp1 - 61000) >= abs(lp0 - 61000) * (1 - 1e-9)


@given(
    side=st.sampled_from(["long", "short"]),
    q=st.floats(0.05, 5),
    btc=st.floats(0, 3),
    usdt=st.floats(-2000, 50000),
    ratio=st.floats(0.5, 1.0),
    usdt_ratio=st.sampled_from([1.0, 0.9999, 0.98]),
    exchange=st.sampled_from(["binance", "bybit", "bitget"]),
)
def test_at_the_per_position_liquidation_price_the_account_mm_rate_is_100_percent(
    side, q, btc, usdt, ratio, usdt_ratio, exchange
):
    doc = {"exchange": exchange, "walletBalance": 0, "settle": "USDT", "leverageTiers": TIERS,
           "balances": [{"coin": "USDT", "amount": usdt, "price": 1, "collateralRatio": usdt_ratio},
                        {"coin": "BTC", "amount": btc, "price": 61000, "collateralRatio": ratio}],
           "positions": [leg(side, q, 60000)]}  # fmt: skip
    g = Guard.from_dict(EMPTY)
    m = g.metrics(doc)
    lp = m.positions[0].liquidationPrice
    fee0 = 0.0006 * q * 61000 if exchange == "bitget" else 0.0
    if lp is None or m.marginBalance <= m.maintenanceMargin + fee0:
        return  # no liquidation price, or liquidated at the mark already (the root is then safe-side)
    s = 1 if side == "long" else -1
    # the account as it would be at LP: the BTC balance and the position repriced
    at = {**doc, "balances": [dict(doc["balances"][0]), {**doc["balances"][1], "price": lp}],
          "positions": [leg(side, q, 60000, lp)]}  # fmt: skip
    d = g.metrics(at).to_dict()
    fee = 0.0006 * q * lp if exchange == "bitget" else 0.0
    assert d["marginBalance"] == pytest.approx(d["maintenanceMargin"] + fee, rel=1e-7, abs=1e-6)
    assert s * (61000 - lp) > 0  # on the position's adverse side


@given(
    side=st.sampled_from(["long", "short"]),
    q=st.floats(0.05, 20),
    mark_f=st.floats(0.8, 1.2),
    wallet=st.floats(200, 200000),
    exchange=st.sampled_from(["binance", "bybit", "bitget", "okx", "hyperliquid"]),
)
def test_the_numeric_solver_agrees_with_the_closed_form(side, q, mark_f, wallet, exchange):
    """A negligible BTC balance sends a BTC position through the bisection; the settle-coin
    account alone takes the closed form. Both are the same condition."""
    pos = [leg(side, q, 60000, 60000 * mark_f)]
    tiers = (
        {BTC: [{"minNotional": 0, "maintenanceMarginRate": 0.005}]} if exchange == "okx" else TIERS
    )
    closed = {"exchange": exchange, "walletBalance": 0, "positions": pos, "leverageTiers": tiers,
              "balances": [{"coin": "USDT", "amount": wallet, "price": 1}]}  # fmt: skip
    numeric = {**closed, "balances": [*closed["balances"],
               {"coin": "BTC", "amount": 1e-12, "price": 60000 * mark_f}]}  # fmt: skip
    g = Guard.from_dict(EMPTY)
    a = g.metrics(closed).positions[0].liquidationPrice
    b = g.metrics(numeric).positions[0].liquidationPrice
    if a is None:
        assert b is None or b < 1e-6 * 60000 or b > 1e6 * 60000
    else:
        assert b == pytest.approx(a, rel=1e-8)


def test_the_accounts_benchmark_runs_quick():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(
        [sys.executable, str(root / "bench" / "accounts_bench.py"), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=root,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    head, _rule, row = r.stdout.splitlines()[:3]
    assert head.split("|")[2:6] == [" oneway ", " hedge ", " multi-linear ", " multi-numeric "]
    assert row.startswith("| 10 |") and row.count("µs") == 4


def test_two_sides_of_a_symbol_without_a_position_mode_are_flagged(guard):
    doc = hedge_doc([leg("long", 1.0, 60000), leg("short", 0.5, 62000)])
    del doc["positionMode"]
    d = guard.check(doc)
    [v] = [v for v in d.violations if v.code == "INPUT_POSITION_MODE_UNSTATED"]
    assert v.severity == "warning" and v.symbol == BTC and d.allowed
    doc["positionMode"] = "hedge"
    assert "INPUT_POSITION_MODE_UNSTATED" not in {v.code for v in guard.check(doc).violations}
