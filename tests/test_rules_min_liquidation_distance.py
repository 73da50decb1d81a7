"""min_liquidation_distance: percent of mark and ATR multiples, at the boundaries; actions that fix it."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot

SYM = "XYZ/USDT:USDT"


def policy(**params):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {
                "rules": [{"id": "mld", "type": "min_liquidation_distance", "params": params}]
            },
        }
    )


def check(pol, doc, order=None):
    d = evaluate(pol, build_snapshot(doc), build_order(order) if order else None)
    validator("decision").validate(d.to_dict())
    return d


def snap(*positions, atr=None, wallet=1000.0):
    market: dict = {"markPrice": 100.0}
    if atr is not None:
        market["atrPct"] = atr
    return {
        "account": "t",
        "exchange": "binance",
        "walletBalance": wallet,
        "positions": list(positions),
        "markets": {SYM: market},
    }


def pos(**over):
    p = {
        "symbol": SYM,
        "side": "long",
        "contracts": 1,
        "entryPrice": 100,
        "markPrice": 100,
        "leverage": 5,
        "marginMode": "isolated",
        "isolatedMargin": 20,
    }
    p.update(over)
    return p


def codes(d):
    return [v.code for v in d.violations]


EX = {"liquidationSource": "exchange"}  # judge the exchange's figure: exact boundaries


@pytest.mark.parametrize(("lp", "violated"), [(89.99, False), (90, False), (90.01, True)])
def test_percent_boundary_long(lp, violated):
    d = check(policy(minPct=10, **EX), snap(pos(liquidationPrice=lp)))
    assert (codes(d) == ["LIQUIDATION_DISTANCE_BELOW_MIN_PCT"]) is violated
    if violated:
        assert d.violations[0].observed == pytest.approx(9.99) and d.violations[0].limit == 10


@pytest.mark.parametrize(("lp", "violated"), [(110.01, False), (110, False), (109.99, True)])
def test_percent_boundary_short(lp, violated):
    d = check(policy(minPct=10, **EX), snap(pos(side="short", liquidationPrice=lp)))
    assert bool(d.violations) is violated


@pytest.mark.parametrize(
    ("atr", "codes_"),
    [(3.3, []), (10 / 3, []), (3.34, ["LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE"])],
)
def test_atr_multiple_boundary(atr, codes_):
    # LP 90: 10 % away; 3 × ATR needs 9.9 / 10 / 10.02 %
    d = check(policy(minPct=5, atrMultiple=3, **EX), snap(pos(liquidationPrice=90), atr=atr))
    assert codes(d) == codes_


def test_both_criteria_are_reported_when_both_fail():
    d = check(policy(minPct=12, atrMultiple=3, **EX), snap(pos(liquidationPrice=90), atr=4))
    assert sorted(codes(d)) == [
        "LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE",
        "LIQUIDATION_DISTANCE_BELOW_MIN_PCT",
    ]


def test_missing_atr_is_a_warning_not_a_silent_pass():
    d = check(policy(minPct=5, atrMultiple=3, **EX), snap(pos(liquidationPrice=90)))
    assert codes(d) == ["LIQUIDATION_DISTANCE_ATR_MISSING"]
    assert d.violations[0].severity == "warning" and d.decision == "allow"


def test_atr_from_candles_via_enrichment():
    candles = [[i * 3600_000, 100, 106, 94, 100, 1] for i in range(30)]  # true range 12 → ATR 12 %
    doc = snap(pos(liquidationPrice=90))
    doc["markets"][SYM]["candles"] = candles
    d = check(policy(minPct=5, atrMultiple=1, **EX), doc)
    assert codes(d) == ["LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE"]
    assert d.violations[0].context["atrPct"] == pytest.approx(12)


def test_conservative_source_takes_the_nearer_price():
    # model LP for 5× isolated ≈ 80.4; the exchange says 91 → 9 % → violation
    d = check(policy(minPct=10), snap(pos(liquidationPrice=91)))
    assert codes(d) == ["LIQUIDATION_DISTANCE_BELOW_MIN_PCT"]
    assert not check(
        policy(minPct=10, liquidationSource="model"), snap(pos(liquidationPrice=91))
    ).violations


def test_isolated_position_gets_the_margin_that_fixes_it():
    doc = snap(pos(leverage=20, isolatedMargin=5))  # model LP ≈ 95.5: 4.5 % away
    pol = policy(minPct=10, liquidationSource="model")
    d = check(pol, doc)
    assert codes(d) == ["LIQUIDATION_DISTANCE_BELOW_MIN_PCT"]
    add = [a for a in d.actions if a.type == "add_isolated_margin"]
    assert add and add[0].params["amount"] > 0
    fixed = snap(pos(leverage=20, isolatedMargin=5 + add[0].params["amount"]))
    assert not check(pol, fixed).violations
    short = snap(pos(leverage=20, isolatedMargin=5 + add[0].params["amount"] * 0.99))
    assert check(pol, short).violations


def test_cross_position_gets_the_reduction_that_fixes_it():
    doc = snap(pos(marginMode="cross", isolatedMargin=None, contracts=50, leverage=10), wallet=400)
    pol = policy(minPct=10, liquidationSource="model")
    d = check(pol, doc)
    assert codes(d) == ["LIQUIDATION_DISTANCE_BELOW_MIN_PCT"]
    red = [a for a in d.actions if a.type == "reduce_position"]
    # LP = (400 − 100c) / (0.005c − c) reaches 90 (10 % away) at c = 400 / 10.45
    assert red and red[0].params["amount"] == pytest.approx(50 - 400 / 10.45, rel=1e-6)
    left = 50 - red[0].params["amount"]
    fixed = snap(
        pos(marginMode="cross", isolatedMargin=None, contracts=left * 0.9999, leverage=10),
        wallet=400,
    )
    assert not check(pol, fixed).violations


def test_order_that_opens_a_position_too_close_is_denied():
    order = {"symbol": SYM, "side": "buy", "amount": 1, "leverage": 50, "marginMode": "isolated"}
    d = check(policy(minPct=10), snap(), order)
    assert d.decision == "deny" and codes(d) == ["LIQUIDATION_DISTANCE_BELOW_MIN_PCT"]
    assert not [a for a in d.actions if a.type == "add_isolated_margin"]  # the order is the fix
    assert check(policy(minPct=10), snap(), {**order, "leverage": 5}).decision == "allow"


def test_a_rule_that_can_never_fire_is_refused():
    from riskguard.errors import PolicyError

    with pytest.raises(PolicyError, match="never fire"):
        policy(minPct=0)


def test_no_atr_warning_for_a_position_that_cannot_be_liquidated():
    # 1 contract at 100 in cross behind a 1,000 wallet: no positive liquidation price
    d = check(policy(minPct=5, atrMultiple=3), snap(pos(marginMode="cross", isolatedMargin=None)))
    assert d.metrics.positions[0].liquidationPrice is None
    assert not d.violations
    # the same without ATR but liquidatable (isolated 5×) still warns that ATR is missing
    d = check(policy(minPct=5, atrMultiple=3), snap(pos()))
    assert "LIQUIDATION_DISTANCE_ATR_MISSING" in {v.code for v in d.violations}


# The isolated margin to add is solved in closed form on the shared linear solver (Binance,
# Bybit-style tiers); other models search. Either way the amount must fix the position and
# be (nearly) the least that does.

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TIERED = [
    {"minNotional": 0, "maxNotional": 5000, "maintenanceMarginRate": 0.01, "maxLeverage": 50},
    {"minNotional": 5000, "maxNotional": 50000, "maintenanceMarginRate": 0.025, "maxLeverage": 20},
    {"minNotional": 50000, "maxNotional": None, "maintenanceMarginRate": 0.05, "maxLeverage": 10},
]


@given(
    side=st.sampled_from(["long", "short"]),
    contracts=st.floats(0.5, 2000),
    entry=st.floats(90, 110),
    margin_share=st.floats(0.01, 0.2),
    min_pct=st.floats(2, 40),
    exchange=st.sampled_from(["binance", "bybit", "okx", "generic"]),
    tiered=st.booleans(),
)
def test_the_margin_proposed_fixes_the_position_and_is_about_the_least(
    side, contracts, entry, margin_share, min_pct, exchange, tiered
):
    iso = contracts * entry * margin_share

    def with_margin(m):
        p = pos(side=side, contracts=contracts, entryPrice=entry, markPrice=100, isolatedMargin=m)
        return snap(p, wallet=1e9)

    doc = with_margin(iso)
    doc["exchange"] = exchange
    if tiered:
        doc["leverageTiers"] = {SYM: _TIERED}
    pol = policy(minPct=min_pct, liquidationSource="model")
    d = check(pol, doc)
    if not d.violations:
        return
    add = [a for a in d.actions if a.type == "add_isolated_margin"]
    assert add, d.violations
    amount = add[0].params["amount"]
    assert amount > 0

    fixed = with_margin(iso + amount)
    fixed["exchange"] = exchange
    if tiered:
        fixed["leverageTiers"] = {SYM: _TIERED}
    assert not check(pol, fixed).violations
    less = with_margin(iso + amount * (1 - 1e-6) - 1e-6)
    less["exchange"] = exchange
    if tiered:
        less["leverageTiers"] = {SYM: _TIERED}
    assert check(pol, less).violations


@given(
    side=st.sampled_from(["long", "short"]),
    contracts=st.floats(1, 2000),
    wallet_share=st.floats(0.02, 0.5),
    others=st.integers(0, 3),
    min_pct=st.floats(2, 40),
    exchange=st.sampled_from(["binance", "bybit", "okx", "generic"]),
    tiered=st.booleans(),
)
def test_the_reduction_proposed_fixes_the_cross_position_and_is_about_the_least(
    side, contracts, wallet_share, others, min_pct, exchange, tiered
):
    def book(c):
        ps = [pos(side=side, contracts=c, marginMode="cross", isolatedMargin=None, leverage=10)]
        ps += [
            {**pos(marginMode="cross", isolatedMargin=None, leverage=10), "symbol": f"O{i}/USDT:USDT",
             "markPrice": 100.0}
            for i in range(others)
        ]  # fmt: skip
        d = snap(*ps, wallet=contracts * 100 * wallet_share + 30 * others)
        d["exchange"] = exchange
        if tiered:
            d["leverageTiers"] = {p["symbol"]: _TIERED for p in ps}
        return d

    pol = policy(minPct=min_pct, liquidationSource="model")
    d = check(pol, book(contracts))
    mine = [v for v in d.violations if v.symbol == SYM]
    if not mine or any(v.code == "ACCOUNT_EQUITY_NOT_POSITIVE" for v in d.violations):
        return
    red = [a for a in d.actions if a.type == "reduce_position" and a.symbol == SYM]
    assert red, d.violations
    keep = contracts - red[0].params["amount"]
    assert 0 < keep < contracts
    assert not [v for v in check(pol, book(keep)).violations if v.symbol == SYM]
    assert [v for v in check(pol, book(keep * (1 + 1e-6) + 1e-9)).violations if v.symbol == SYM]
