"""order_limits: notional, amount, price band, open positions and reduce-only, at the boundaries."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.errors import PolicyError
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot

from .conftest import snapshot_doc

SOL = "SOL/USDT:USDT"  # mark 150 in snapshot_doc; BTC long and ETH short are held


def policy(params, **rule):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": [{"id": "limits", "type": "order_limits", "params": params, **rule}]},
        }
    )


def check(pol, order=None, doc=None):
    d = evaluate(pol, build_snapshot(doc or snapshot_doc()), build_order(order) if order else None)
    validator("decision").validate(d.to_dict())
    return d


def codes(d):
    return [v.code for v in d.violations]


@pytest.mark.parametrize(("amount", "ok"), [(99.99, True), (100, True), (100.01, False)])
def test_max_notional_boundary(amount, ok):
    d = check(
        policy({"maxNotional": 10000}),
        {"symbol": SOL, "side": "buy", "amount": amount, "price": 100},
    )
    assert (d.decision == "allow") is ok
    if not ok:
        v = d.violations[0]
        assert v.code == "ORDER_NOTIONAL_EXCEEDS_MAX" and v.scope == "order"
        assert v.observed == pytest.approx(10001) and v.limit == 10000


def test_market_order_notional_uses_the_mark():
    d = check(policy({"maxNotional": 1500}), {"symbol": SOL, "side": "buy", "amount": 10.01})
    assert codes(d) == ["ORDER_NOTIONAL_EXCEEDS_MAX"] and d.violations[0].observed == pytest.approx(
        1501.5
    )


@pytest.mark.parametrize(("amount", "ok"), [(9.999, True), (10, True), (10.001, False)])
def test_max_amount_boundary(amount, ok):
    d = check(policy({"maxAmount": 10}), {"symbol": SOL, "side": "buy", "amount": amount})
    assert (codes(d) == []) is ok


@pytest.mark.parametrize(
    ("price", "ok"),
    [(157.4, True), (157.5, True), (157.6, False), (142.5, True), (142.4, False)],
)
def test_price_band_boundary_both_ways(price, ok):
    d = check(
        policy({"priceBandPct": 5}), {"symbol": SOL, "side": "buy", "amount": 1, "price": price}
    )
    assert (codes(d) == []) is ok
    if not ok:
        assert d.violations[0].code == "ORDER_PRICE_OUTSIDE_BAND" and d.decision == "deny"


def test_price_band_applies_to_a_reducing_order_too():
    order = {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.01, "price": 6100}  # mark 61000
    d = check(policy({"priceBandPct": 5}), order)
    assert d.decision == "deny" and codes(d) == ["ORDER_PRICE_OUTSIDE_BAND"]


def test_size_limits_skip_reducing_orders_unless_asked():
    order = {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.05}
    assert check(policy({"maxAmount": 0.01}), order).decision == "allow"
    d = check(policy({"maxAmount": 0.01, "applyToReducing": True}), order)
    assert d.decision == "deny" and codes(d) == ["ORDER_AMOUNT_EXCEEDS_MAX"]


def test_oversized_order_is_denied_by_default_and_resized_when_asked():
    order = {"symbol": SOL, "side": "buy", "amount": 50, "price": 150}
    d = check(policy({"maxAmount": 20, "maxNotional": 4500}), order)
    assert d.decision == "deny" and d.maxAllowedAmount == pytest.approx(20)
    d = check(
        policy({"maxAmount": 40, "maxNotional": 4500}, onViolation=["resize_order", "alert"]), order
    )
    assert d.decision == "resize" and d.maxAllowedAmount == pytest.approx(30)  # 4500 / 150
    assert (
        check(policy({"maxAmount": 40, "maxNotional": 4500}), {**order, "amount": 30}).decision
        == "allow"
    )


@pytest.mark.parametrize(
    ("order", "ok"),
    [
        ({"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.01, "reduceOnly": True}, True),
        ({"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01, "reduceOnly": True}, False),
        ({"symbol": SOL, "side": "sell", "amount": 1, "reduceOnly": True}, False),
        ({"symbol": SOL, "side": "sell", "amount": 1}, True),
    ],
)
def test_reduce_only_enforcement(order, ok):
    d = check(policy({}), order)
    assert (codes(d) == []) is ok
    if not ok:
        assert codes(d) == ["ORDER_REDUCE_ONLY_WOULD_INCREASE"] and d.decision == "deny"


def test_reduce_only_enforcement_can_be_switched_off():
    order = {"symbol": SOL, "side": "sell", "amount": 1, "reduceOnly": True}
    assert check(policy({"maxAmount": 5, "enforceReduceOnly": False}), order).decision == "allow"


@pytest.mark.parametrize(("limit", "ok"), [(4, True), (3, True), (2, False)])
def test_max_open_positions_boundary(limit, ok):
    # two positions held; opening SOL makes three
    d = check(policy({"maxOpenPositions": limit}), {"symbol": SOL, "side": "buy", "amount": 1})
    assert (codes(d) == []) is ok
    if not ok:
        assert codes(d) == ["POSITIONS_OPEN_EXCEEDS_MAX"] and d.violations[0].observed == 3


def test_adding_to_a_held_position_does_not_count_as_opening():
    order = {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01}
    assert check(policy({"maxOpenPositions": 1}), order).decision == "allow"


def test_account_over_the_position_count_is_reported_without_an_order():
    d = check(policy({"maxOpenPositions": 1}))
    assert codes(d) == ["POSITIONS_OPEN_EXCEEDS_MAX"] and d.violations[0].scope == "account"
    assert not check(policy({"maxOpenPositions": 2})).violations


def test_a_rule_with_no_limit_is_refused():
    with pytest.raises(PolicyError, match="at least one"):
        policy({"enforceReduceOnly": False})
