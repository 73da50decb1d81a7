"""duplicate_order: identical orders and reused client order ids within a window, on a fake clock."""

from __future__ import annotations

from riskguard.faces.guard import Guard
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot

from .conftest import snapshot_doc

SNAP = build_snapshot(snapshot_doc())
ORDER = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 1, "price": 150, "type": "limit"}
T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def at(self, seconds: float) -> None:
        self.t = T0 + seconds


def guard(clock, *extra, **params):
    rules = [{"id": "dup", "type": "duplicate_order", "params": params}, *extra]
    return Guard.from_dict(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": rules},
        },
        clock=clock,
    )


def check(g, order=ORDER, snap=SNAP):
    d = g.check(snap, order)
    validator("decision").validate(d.to_dict())
    return d


def codes(d):
    return [v.code for v in d.violations]


def test_identical_order_within_the_window_boundary():
    clock = Clock()
    g = guard(clock, windowSeconds=5)
    assert check(g).decision == "allow"
    clock.at(5.0)  # exactly one window later: not a duplicate
    assert check(g).decision == "allow"
    clock.at(9.999)  # 4.999 s after the previous one: a duplicate
    d = check(g)
    assert d.decision == "deny" and codes(d) == ["ORDER_DUPLICATE_WITHIN_WINDOW"]
    assert d.violations[0].scope == "order"
    assert abs(d.violations[0].context["secondsSincePrevious"] - 4.999) < 0.002


def test_a_repeating_loop_stays_blocked_until_it_pauses():
    clock = Clock()
    g = guard(clock, windowSeconds=5)
    check(g)
    decisions = []
    for s in (4, 8, 12):  # every 4 s: each attempt is within 5 s of the last one
        clock.at(s)
        decisions.append(check(g).decision)
    clock.at(17)
    decisions.append(check(g).decision)
    assert decisions == ["deny", "deny", "deny", "allow"]


def test_any_difference_makes_another_order():
    g = guard(Clock(), windowSeconds=5)
    check(g)
    assert check(g, {**ORDER, "amount": 2}).decision == "allow"
    assert check(g, {**ORDER, "price": 150.5}).decision == "allow"
    assert check(g, {**ORDER, "side": "sell"}).decision == "allow"
    market = {k: v for k, v in ORDER.items() if k not in ("price", "type")}
    assert check(g, market).decision == "allow"
    assert check(g, market).decision == "deny"  # market orders: price None matches None


def test_reused_client_order_id():
    clock = Clock()
    g = guard(clock, windowSeconds=5, clientOrderIdWindowSeconds=60)
    assert check(g, {**ORDER, "clientOrderId": "a1"}).decision == "allow"
    clock.at(30)
    d = check(g, {**ORDER, "amount": 3, "clientOrderId": "a1"})
    assert (
        codes(d) == ["ORDER_CLIENT_ID_REUSED"] and d.violations[0].context["clientOrderId"] == "a1"
    )
    clock.at(90)
    assert check(g, {**ORDER, "amount": 4, "clientOrderId": "a1"}).decision == "allow"


def test_a_window_of_zero_switches_that_check_off():
    g = guard(Clock(), windowSeconds=0, clientOrderIdWindowSeconds=60)
    assert check(g).decision == "allow" and check(g).decision == "allow"


def test_the_resize_recheck_is_not_its_own_duplicate():
    # the engine re-evaluates a resized order with a copy of the state; the order (and its
    # client id) recorded by the first evaluation must not deny the re-check
    mu = {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35}}
    g = guard(Clock(), mu, windowSeconds=5)
    big = {**ORDER, "amount": 200, "leverage": 5, "clientOrderId": "x1"}
    d = check(g, big)
    assert d.decision == "resize"
    # the bot sends what it was told: another amount, a fresh id → fine
    assert (
        check(g, {**big, "amount": d.maxAllowedAmount, "clientOrderId": "x2"}).decision == "allow"
    )
    # but the very same request again is a duplicate
    assert codes(check(g, big))[:1] == ["ORDER_DUPLICATE_WITHIN_WINDOW"]


def test_memory_is_pruned_to_the_longer_window():
    clock = Clock()
    g = guard(clock, windowSeconds=1, clientOrderIdWindowSeconds=2)
    for i in range(50):
        clock.at(i * 0.1)
        check(g, {**ORDER, "amount": i + 1, "clientOrderId": f"c{i}"})
    mem = g.state["duplicate_order:dup"]
    assert len(mem.log) <= 21 and len(mem.coids) <= 21 and len(mem.fps) <= 21


def test_what_if_checks_remember_nothing():
    g = guard(Clock(), windowSeconds=5)
    g.check_quiet(SNAP, ORDER)
    g.max_order_amount(SNAP, ORDER)
    assert check(g).decision == "allow"
