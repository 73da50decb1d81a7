"""max_leverage: per position, account effective leverage and tier maxLeverage, at the boundaries."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot

BTC = "BTC/USDT:USDT"
TIERS = {
    BTC: [
        {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maxLeverage": 50},
        {
            "minNotional": 50000,
            "maxNotional": 250000,
            "maintenanceMarginRate": 0.005,
            "maxLeverage": 20,
        },
        {
            "minNotional": 250000,
            "maxNotional": None,
            "maintenanceMarginRate": 0.01,
            "maxLeverage": 10,
        },
    ]
}


def policy(**params):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": [{"id": "lev", "type": "max_leverage", "params": params}]},
        }
    )


def check(pol, doc, order=None):
    d = evaluate(pol, build_snapshot(doc), build_order(order) if order else None)
    validator("decision").validate(d.to_dict())
    return d


def snap(*positions, wallet=10000.0):
    return {
        "account": "t",
        "exchange": "binance",
        "walletBalance": wallet,
        "positions": list(positions),
        "leverageTiers": TIERS,
        "markets": {BTC: {"markPrice": 60000.0}},
    }


def btc(**over):
    p = {
        "symbol": BTC,
        "side": "long",
        "contracts": 0.1,
        "entryPrice": 60000,
        "markPrice": 60000,
        "leverage": 10,
        "marginMode": "cross",
    }
    p.update(over)
    return p


def codes(d):
    return [v.code for v in d.violations]


@pytest.mark.parametrize(("lev", "violated"), [(19, False), (20, False), (21, True)])
def test_configured_leverage_boundary(lev, violated):
    d = check(policy(max=20), snap(btc(leverage=lev)))
    assert (codes(d) == ["LEVERAGE_POSITION_EXCEEDS_MAX"]) is violated
    if violated:
        v = d.violations[0]
        assert v.observed == 21 and v.limit == 20 and v.context["basis"] == "configured"


@pytest.mark.parametrize(("margin", "violated"), [(301, False), (300, False), (299, True)])
def test_isolated_entry_notional_over_margin_boundary(margin, violated):
    # configured 10×, but 6000 of entry notional on `margin` of isolated margin
    pos = btc(marginMode="isolated", isolatedMargin=margin)
    d = check(policy(max=20), snap(pos))
    assert bool(d.violations) is violated
    if violated:
        assert d.violations[0].context["basis"] == "notional/margin"
        assert d.violations[0].observed == pytest.approx(6000 / 299)


def test_a_winner_does_not_read_as_more_leveraged():
    # entry notional / margin stays 20× while the mark rises 10 %
    pos = btc(marginMode="isolated", isolatedMargin=300, markPrice=66000)
    assert not check(policy(max=20), snap(pos)).violations


@pytest.mark.parametrize(("contracts", "violated"), [(0.49, False), (0.5, False), (0.51, True)])
def test_account_effective_leverage_boundary(contracts, violated):
    # notional contracts × 60,000 over equity 10,000; 0.5 → exactly 3×
    d = check(policy(accountMax=3), snap(btc(contracts=contracts)))
    assert (codes(d) == ["LEVERAGE_ACCOUNT_EXCEEDS_MAX"]) is violated
    if violated:
        assert d.violations[0].observed == pytest.approx(3.06) and d.violations[0].symbol is None


@pytest.mark.parametrize(
    ("contracts", "violated"),
    [(0.8333, False), (50000 / 60000 * 0.999999, False), (0.84, True)],
)
def test_tier_max_leverage_boundary(contracts, violated):
    # 25× is allowed below 50,000 notional (tier max 50×), not in the 50,000+ tier (20×)
    d = check(policy(max=50), snap(btc(contracts=contracts, leverage=25)))
    assert (codes(d) == ["LEVERAGE_EXCEEDS_TIER_MAX"]) is violated
    if violated:
        assert d.violations[0].limit == 20


def test_tier_check_can_be_switched_off():
    assert not check(
        policy(max=50, tierMax=False), snap(btc(contracts=0.84, leverage=25))
    ).violations


# ----------------------------------------------------------------- pre-trade

ORDER = {"symbol": BTC, "side": "buy", "amount": 1, "leverage": 25}


def test_order_resized_below_the_tier_that_caps_its_leverage():
    d = check(policy(max=50), snap(), ORDER)
    assert d.decision == "resize"
    assert d.maxAllowedAmount == pytest.approx(50000 / 60000, rel=1e-6)
    assert d.maxAllowedAmount * 60000 < 50000
    assert (
        check(policy(max=50), snap(), {**ORDER, "amount": d.maxAllowedAmount}).decision == "allow"
    )


def test_order_resized_to_the_account_limit():
    d = check(policy(accountMax=2), snap(), {**ORDER, "leverage": 5})
    assert d.decision == "resize"
    assert d.maxAllowedAmount == pytest.approx(20000 / 60000, rel=1e-6)
    again = check(
        policy(accountMax=2), snap(), {**ORDER, "leverage": 5, "amount": d.maxAllowedAmount}
    )
    assert again.decision == "allow"


def test_account_limit_counts_what_is_held():
    # held 0.2 BTC (12,000 notional); 20,000 allowed at 2× → 0.1333 more
    d = check(policy(accountMax=2), snap(btc(contracts=0.2)), {**ORDER, "leverage": 5})
    assert d.maxAllowedAmount == pytest.approx(8000 / 60000, rel=1e-6)


def test_order_at_too_high_leverage_is_denied_not_resized():
    d = check(policy(max=20), snap(), {**ORDER, "leverage": 25})
    assert d.decision == "deny" and "LEVERAGE_POSITION_EXCEEDS_MAX" in codes(d)
    assert d.maxAllowedAmount == 0


def test_adding_to_an_over_leveraged_position_is_denied():
    d = check(policy(max=20), snap(btc(leverage=25)), {**ORDER, "amount": 0.01, "leverage": None})
    assert d.decision == "deny"


def test_reducing_order_is_not_blocked_by_account_leverage():
    held = snap(btc(contracts=0.6))  # 3.6× > 3×
    d = check(policy(accountMax=3), held, {"symbol": BTC, "side": "sell", "amount": 0.05})
    assert d.decision == "allow"
    assert [v.severity for v in d.violations] == ["warning"]  # still 3.3×: reported, not blocking


def test_overlapping_rules_with_different_limits_warn():
    pol = load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t"},
            "spec": {
                "rules": [
                    {"id": "a", "type": "max_leverage", "params": {"max": 20}},
                    {
                        "id": "b",
                        "type": "max_leverage",
                        "params": {"max": 10},
                        "match": {"symbols": ["BTC/*"]},
                    },
                ]
            },
        }
    )
    assert any(w.code == "overlapping_rules" for w in pol.warnings)
