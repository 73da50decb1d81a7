"""cross_stress: the pool under an adverse shock, the cross cushion, and pre-trade resizing."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import get_registry
from riskguard.engine.policy import load_policy
from riskguard.margin.metrics import compute_metrics
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot
from riskguard.rules.cross_stress import _legs, cushion

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def policy(**params):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": [{"id": "stress", "type": "cross_stress", "params": params}]},
        }
    )


def check(pol, doc, order=None, trace=None):
    d = evaluate(pol, build_snapshot(doc), build_order(order) if order else None, trace=trace)
    validator("decision").validate(d.to_dict())
    return d


def btc(**over):
    # 1 BTC cross long at the mark; Binance default MMR 0.5 % (no tiers)
    p = {
        "symbol": BTC,
        "side": "long",
        "contracts": 1,
        "entryPrice": 60000,
        "markPrice": 60000,
        "leverage": 10,
        "marginMode": "cross",
    }
    p.update(over)
    return p


def snap(*positions, wallet=10000.0, markets=None):
    return {
        "account": "t",
        "exchange": "binance",
        "walletBalance": wallet,
        "positions": list(positions),
        "markets": markets or {},
    }


# surplus(u) = 10000 − 600·u − 0.005·60000·(1 − u/100) = 9700 − 597·u  →  cushion 9700/597 %
CUSHION = 9700 / 597


def test_cushion_is_the_shock_that_liquidates_the_pool():
    s = build_snapshot(snap(btc()))
    model = get_registry().margin_model("binance")
    assert cushion(model, _legs(s, model), 10000.0) == pytest.approx(CUSHION, abs=1e-6)


@pytest.mark.parametrize(
    ("shock", "violated"),
    [(CUSHION - 0.01, False), (CUSHION - 1e-9, False), (CUSHION + 0.01, True)],
)
def test_shock_boundary(shock, violated):
    d = check(policy(shockPct=shock), snap(btc()))
    assert bool(d.violations) is violated
    if violated:
        v = d.violations[0]
        assert v.code == "CROSS_STRESS_POOL_LIQUIDATED" and v.symbol is None
        assert v.observed < v.limit  # equity after the shock below maintenance
        assert v.context["crossCushionPct"] == pytest.approx(CUSHION, abs=1e-6)
        assert d.decision == "deny"


def test_cushion_is_in_the_explain_notes_when_the_pool_survives():
    trace: list = []
    check(policy(shockPct=10), snap(btc()), trace=trace)
    notes = [n for n in trace if n["rule"] == "stress"]
    assert notes and notes[0]["values"]["crossCushionPct"] == pytest.approx(CUSHION, abs=1e-6)
    assert notes[0]["passed"] is True


def test_isolated_margin_is_not_in_the_cross_pool():
    eth = {
        "symbol": ETH,
        "side": "short",
        "contracts": 1,
        "entryPrice": 3000,
        "markPrice": 3000,
        "leverage": 10,
        "marginMode": "isolated",
        "isolatedMargin": 2000,
    }
    # cross wallet 8000 → cushion (8000 − 300) / 597 ≈ 12.9 %: a 13 % shock now liquidates
    assert not check(policy(shockPct=13), snap(btc())).violations
    d = check(policy(shockPct=13), snap(btc(), eth))
    assert d.violations and d.violations[0].context["crossCushionPct"] == pytest.approx(
        7700 / 597, abs=1e-6
    )


def test_all_cross_positions_move_against_at_once():
    # a short hedge is shocked upward at the same time: it does not offset the long
    eth = {
        "symbol": ETH,
        "side": "short",
        "contracts": 10,
        "entryPrice": 3000,
        "markPrice": 3000,
        "leverage": 10,
        "marginMode": "cross",
    }
    # 10 % up on 30,000 short + 10 % down on 60,000 long = 9000 lost together; the cushion is
    # 10000 − 900·u − 0.005·(60000·(1 − u/100) + 30000·(1 + u/100)) = 0 → u = 9550 / 898.5
    assert not check(policy(shockPct=10), snap(btc(), eth)).violations
    d = check(policy(shockPct=11), snap(btc(), eth))
    assert d.violations and d.violations[0].context["crossCushionPct"] == pytest.approx(
        9550 / 898.5, abs=1e-6
    )
    # alone, the long would survive 11 %: the hedge does not hedge a crash of everything
    assert not check(policy(shockPct=11), snap(btc())).violations


def test_atr_multiple_shocks_each_symbol_by_its_own_volatility():
    markets = {BTC: {"markPrice": 60000.0, "atrPct": 6.0}}
    assert not check(policy(shockPct=10), snap(btc(), markets=markets)).violations
    d = check(policy(shockPct=10, atrMultiple=3), snap(btc(), markets=markets))  # 18 % > cushion
    assert d.violations and d.violations[0].context["shockPct"] == pytest.approx(18)


def test_missing_atr_without_a_floor_is_reported():
    d = check(policy(shockPct=0, atrMultiple=3), snap(btc()))
    assert [v.code for v in d.violations] == ["CROSS_STRESS_ATR_MISSING"]
    assert d.violations[0].severity == "warning"


def test_no_cross_positions_nothing_to_stress():
    assert check(policy(shockPct=50), snap()).decision == "allow"


def test_order_resized_to_what_the_pool_survives():
    # with 1 + a BTC: 10000 − (1 + a)·(9000 + 0.005·51000) ≥ 0 at a 15 % shock
    order = {"symbol": BTC, "side": "buy", "amount": 0.5, "leverage": 10}
    pol = policy(shockPct=15)
    d = check(pol, snap(btc()), order)
    assert d.decision == "resize"
    limit = 10000 / 9255 - 1
    assert d.maxAllowedAmount == pytest.approx(limit, rel=1e-5) and d.maxAllowedAmount <= limit
    assert check(pol, snap(btc()), {**order, "amount": d.maxAllowedAmount}).decision == "allow"
    assert check(pol, snap(btc()), {**order, "amount": limit * 1.001}).decision == "resize"


def test_an_isolated_order_drains_the_cross_wallet_too():
    order = {
        "symbol": ETH,
        "side": "buy",
        "amount": 2,
        "price": 3000,
        "leverage": 1,
        "marginMode": "isolated",
    }
    pol = policy(shockPct=15)
    assert check(pol, snap(btc()), {**order, "amount": 0.1}).decision == "allow"
    assert check(pol, snap(btc()), order).decision == "resize"  # 6000 of margin leaves the pool


def test_a_reducing_order_is_never_blocked_by_a_failing_pool():
    d = check(policy(shockPct=30), snap(btc()), {"symbol": BTC, "side": "sell", "amount": 0.1})
    assert d.decision == "allow"
    assert [v.severity for v in d.violations] == ["warning"]


def test_metrics_agree_on_the_cross_wallet():
    s = build_snapshot(snap(btc(), wallet=12345))
    m = compute_metrics(s, get_registry().margin_model("binance"))
    assert m.crossWalletBalance == 12345
