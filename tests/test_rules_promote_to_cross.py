"""promote_to_cross: advice for an over-margined isolated winner, with the effect on the pool."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import get_registry
from riskguard.engine.policy import load_policy
from riskguard.margin.metrics import compute_metrics
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TIERS = {
    ETH: [{"minNotional": 0, "maxNotional": None, "maintenanceMarginRate": 0.04, "maxLeverage": 20}]
}


def policy(**params):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": [{"id": "promote", "type": "promote_to_cross", "params": params}]},
        }
    )


def check(pol, doc):
    d = evaluate(pol, build_snapshot(doc))
    validator("decision").validate(d.to_dict())
    return d


def winner(**over):
    # profit (2500 − 2000)·1 = 500; maintenance 2500 × 4 % = 100 → 5× its maintenance margin
    p = {
        "symbol": ETH,
        "side": "long",
        "contracts": 1,
        "entryPrice": 2000,
        "markPrice": 2500,
        "leverage": 10,
        "marginMode": "isolated",
        "isolatedMargin": 200,
    }
    p.update(over)
    return p


def btc():
    return {
        "symbol": BTC,
        "side": "long",
        "contracts": 0.1,
        "entryPrice": 60000,
        "markPrice": 58000,
        "leverage": 20,
        "marginMode": "cross",
    }


def snap(*positions, markets=None, wallet=1000.0, **over):
    doc = {
        "account": "t",
        "exchange": "binance",
        "timestamp": "2026-11-24T12:00:00Z",
        "walletBalance": wallet,
        "positions": list(positions),
        "leverageTiers": TIERS,
        "markets": markets or {},
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize(("k", "eligible"), [(4.99, True), (5, False), (5.01, False)])
def test_profit_multiple_boundary(k, eligible):
    d = check(policy(profitMultiple=k), snap(winner(), btc()))
    assert ([v.code for v in d.violations] == ["PROMOTE_TO_CROSS_ELIGIBLE"]) is eligible
    assert d.decision == "allow"  # advice never blocks
    if eligible:
        v = d.violations[0]
        assert v.severity == "info" and v.observed == pytest.approx(5) and v.limit == k


def test_advice_shows_every_cross_liquidation_price_after_the_move():
    doc = snap(winner(), btc())
    d = check(policy(profitMultiple=3), doc)
    (act,) = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert act.symbol == ETH and act.params["to"] == "cross"
    assert (
        act.params["feasible"] is False and "-4048" in act.params["reason"]
    )  # Binance: open position
    assert "alternative" in act.params
    (eff,) = act.params["effect"]
    assert eff["symbol"] == BTC
    # the same figures the metrics give for the account with ETH in cross (its isolated
    # margin back in the cross wallet, its profit and maintenance margin in the pool)
    moved = snap({**winner(marginMode="cross"), "isolatedMargin": None}, btc())
    m = compute_metrics(build_snapshot(moved), get_registry().margin_model("binance"))
    assert eff["liquidationPriceAfter"] == pytest.approx(m.position(BTC).liquidationPrice)
    assert act.params["liquidationPriceAfter"] == pytest.approx(m.position(ETH).liquidationPrice)
    assert eff["liquidationPriceAfter"] < eff["liquidationPriceBefore"]  # the long's LP moves away


def test_volatility_keeps_the_winner_isolated():
    markets = {ETH: {"markPrice": 2500.0, "atrPct": 6.0}}
    assert not check(policy(profitMultiple=3), snap(winner(), markets=markets)).violations
    assert check(
        policy(profitMultiple=3, atrPctAbove=7), snap(winner(), markets=markets)
    ).violations


def test_an_open_event_window_keeps_the_winner_isolated():
    ev = {"name": "CPI", "at": "2026-11-24T12:30:00Z", "beforeMinutes": 60, "afterMinutes": 60}
    assert not check(policy(profitMultiple=3, events=[ev]), snap(winner())).violations
    later = {**ev, "at": "2026-11-25T12:30:00Z"}
    assert check(policy(profitMultiple=3, events=[later]), snap(winner())).violations


def test_only_isolated_positions_are_considered():
    cross_winner = {**winner(marginMode="cross"), "isolatedMargin": None}
    assert not check(policy(profitMultiple=1), snap(cross_winner)).violations


def test_severity_can_be_raised_to_warning_but_never_blocks():
    d = check(policy(profitMultiple=3, advisorySeverity="warning"), snap(winner()))
    assert d.violations[0].severity == "warning" and d.decision == "allow"
