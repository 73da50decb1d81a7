"""order_rate: a sliding-window throttle on the Guard's injected clock; no double counting."""

from __future__ import annotations

import pytest

from riskguard.faces.guard import Guard
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot

from .conftest import snapshot_doc

SNAP = build_snapshot(snapshot_doc())
SOL = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 1, "leverage": 5}
ETH = {"symbol": "ETH/USDT:USDT", "side": "sell", "amount": 0.1}


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def at(self, seconds: float) -> Clock:
        self.t = 1_790_000_000.0 + seconds
        return self


def guard(clock, *extra, **params):
    rules = [{"id": "rate", "type": "order_rate", "params": params}, *extra]
    return Guard.from_dict(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": rules},
        },
        clock=clock,
    )


def check(g, order=SOL):
    d = g.check(SNAP, order)
    validator("decision").validate(d.to_dict())
    return d


def test_throttle_boundary_in_a_sliding_window():
    clock = Clock()
    g = guard(clock, maxOrders=3, windowSeconds=1)
    assert [check(g).decision for _ in range(3)] == ["allow"] * 3  # at the limit
    d = check(g)  # just above
    assert d.decision == "deny"
    (v,) = d.violations
    assert v.code == "ORDER_RATE_EXCEEDS_MAX" and v.scope == "order"
    assert v.observed == 4 and v.limit == 3 and v.context["retryAfterMs"] == 1000
    clock.at(0.999)
    assert check(g).decision == "deny"  # all three still inside the window
    clock.at(1.0)
    assert check(g).decision == "allow"  # the window slid past all three


def test_throttled_orders_are_not_counted():
    clock = Clock()
    g = guard(clock, maxOrders=2, windowSeconds=1)
    check(g)  # t=0
    clock.at(0.5)
    check(g)  # t=0.5
    assert check(g).decision == "deny"  # t=0.5, throttled (not counted)
    clock.at(1.0)
    assert check(g).decision == "allow"  # t=0 expired; 0.5 + this one = 2
    assert check(g).decision == "deny"
    clock.at(1.5)
    assert check(g).decision == "allow"


def test_per_symbol_windows_are_separate():
    g = guard(Clock(), maxOrders=1, windowSeconds=10, per="symbol")
    assert check(g, SOL).decision == "allow"
    assert check(g, ETH).decision == "allow"
    assert check(g, SOL).decision == "deny" and check(g, ETH).decision == "deny"


def test_account_window_counts_every_symbol():
    g = guard(Clock(), maxOrders=1, windowSeconds=10)
    assert check(g, SOL).decision == "allow"
    assert check(g, ETH).decision == "deny"


def test_orders_denied_by_another_rule_are_counted():
    limits = {"id": "limits", "type": "order_limits", "params": {"maxAmount": 0.5}}
    g = guard(Clock(), limits, maxOrders=1, windowSeconds=10)
    assert check(g, SOL).decision == "deny"  # too big for order_limits, still counted
    d = check(g, {**SOL, "amount": 0.5})
    assert d.decision == "deny" and [v.code for v in d.violations] == ["ORDER_RATE_EXCEEDS_MAX"]


def test_a_resized_order_is_counted_once():
    # margin_utilization resizes the order; the engine's re-check must not see it twice
    mu = {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35}}
    g = guard(Clock(), mu, maxOrders=1, windowSeconds=10)
    d = check(g, {**SOL, "amount": 200})
    assert d.decision == "resize" and d.maxAllowedAmount > 0
    assert check(g, {**SOL, "amount": 1}).decision == "deny"  # that one used the slot


def test_what_if_questions_do_not_count():
    g = guard(Clock(), maxOrders=1, windowSeconds=10)
    for _ in range(5):
        g.max_order_amount(SNAP, SOL)
        g.check_quiet(SNAP, SOL)
    assert check(g).decision == "allow"
    assert check(g).decision == "deny"


def test_snapshot_checks_are_not_orders():
    g = guard(Clock(), maxOrders=1, windowSeconds=10)
    for _ in range(3):
        assert g.check(SNAP).decision == "allow"
    assert check(g).decision == "allow"


@pytest.mark.parametrize(
    "params", [{"maxOrders": 0}, {"windowSeconds": 0}, {"maxOrders": 100000, "windowSeconds": 1}]
)
def test_bad_params_are_refused(params):
    from riskguard.errors import PolicyError

    with pytest.raises(PolicyError):
        guard(Clock(), **params)
