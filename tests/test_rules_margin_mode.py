"""margin_mode: per-symbol / per-group required modes, drift actions with feasibility, orders."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot

from .conftest import snapshot_doc

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"  # held: BTC cross, ETH isolated


def policy(**params):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": [{"id": "mode", "type": "margin_mode", "params": params}]},
        }
    )


def check(pol, order=None, doc=None):
    d = evaluate(pol, build_snapshot(doc or snapshot_doc()), build_order(order) if order else None)
    validator("decision").validate(d.to_dict())
    return d


def codes(d):
    return [v.code for v in d.violations]


def test_drift_gives_a_switch_action_with_the_exchange_feasibility():
    d = check(policy(mode="isolated"))
    assert codes(d) == ["MARGIN_MODE_MISMATCH"] and d.decision == "deny"
    v = d.violations[0]
    assert v.symbol == BTC and v.observed == "cross" and v.limit == "isolated"
    (act,) = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert act.params["to"] == "isolated"
    assert act.params["isolatedMargin"] == pytest.approx(0.05 * 61000 / 10)  # its initial margin
    assert act.params["feasible"] is False and act.params["exchangeCode"] == "-4048"
    assert "alternative" in act.params


def test_feasibility_follows_the_exchange_model():
    # OKX picks the margin mode per order: the switch is feasible by placing new orders
    d = check(policy(mode="isolated"), doc=snapshot_doc(exchange="okx"))
    (act,) = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert act.params["feasible"] is True and "per order" in act.params["reason"]
    assert "alternative" not in act.params
    # the generic model knows nothing: "unknown", never a guess
    d = check(policy(mode="isolated"), doc=snapshot_doc(exchange="generic"))
    (act,) = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert act.params["feasible"] is None


def test_groups_override_the_default_first_match_wins():
    groups = [
        {"name": "majors", "symbols": ["BTC/*"], "mode": "cross"},
        {"name": "all", "symbols": ["*"], "mode": "isolated"},
    ]
    assert not check(policy(mode="isolated", groups=groups)).violations
    d = check(policy(mode="cross", groups=groups[1:]))
    assert (
        codes(d) == ["MARGIN_MODE_MISMATCH"]
        and d.violations[0].context["requiredBy"] == "group all"
    )


def test_cross_required_flags_the_isolated_position():
    d = check(policy(mode="cross"))
    assert [v.symbol for v in d.violations] == [ETH]
    (act,) = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert act.params["to"] == "cross" and "isolatedMargin" not in act.params


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("isolated", None),
        ("cross", "MARGIN_MODE_ORDER_MISMATCH"),
        (None, "MARGIN_MODE_ORDER_UNSTATED"),
    ],
)
def test_an_order_opening_a_position_must_state_the_required_mode(mode, code):
    pol = policy(mode="isolated", groups=[{"symbols": ["BTC/*"], "mode": "cross"}])
    order = {"symbol": SOL, "side": "buy", "amount": 1, "leverage": 5}
    if mode:
        order["marginMode"] = mode
    d = check(pol, order)
    if code is None:
        assert d.decision == "allow" and not d.violations
    else:
        assert d.decision == "deny" and codes(d) == [code] and d.violations[0].scope == "order"


def test_unstated_mode_can_be_allowed():
    pol = policy(
        mode="cross", unstatedOrderMode="allow", groups=[{"symbols": ["ETH/*"], "mode": "isolated"}]
    )
    assert check(pol, {"symbol": SOL, "side": "buy", "amount": 1}).decision == "allow"


def test_adding_to_a_wrong_mode_position_is_denied_reducing_is_not():
    pol = policy(mode="isolated")
    assert check(pol, {"symbol": BTC, "side": "buy", "amount": 0.01}).decision == "deny"
    assert check(pol, {"symbol": BTC, "side": "sell", "amount": 0.01}).decision == "allow"
    # an order on a compliant symbol is not blocked by another symbol's drift
    assert check(pol, {"symbol": ETH, "side": "sell", "amount": 0.1}).decision == "allow"


def test_match_restricts_the_symbols_checked():
    pol = load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t"},
            "spec": {
                "rules": [
                    {
                        "id": "m",
                        "type": "margin_mode",
                        "params": {"mode": "isolated"},
                        "match": {"exclude": ["BTC/*"]},
                    }
                ]
            },
        }
    )
    assert not check(pol).violations
