"""The amount a decision lets a bot send (issue 13, item 5).

``decision.allowed`` is true only for an order that may go unchanged; a resize must be sent
at ``approved_amount`` / ``amount_to_send(order)``. The README's bot snippet is executed as
a newcomer would copy it, against an exchange that records what it is asked to send.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskguard import Guard

from .conftest import EXAMPLES, POLICIES, ROOT, run_cli

SNAPSHOT = json.loads((EXAMPLES / "snapshots" / "binance-two-cross.json").read_text())
BUY = {"symbol": "BTC/USDT:USDT", "side": "buy", "type": "limit", "price": 61000, "leverage": 10}


class RecordingExchange:
    """Stands where a ccxt exchange would: records every order it is asked to place."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def create_order(self, symbol, type, side, amount, price=None, params=None):
        self.sent.append((symbol, type, side, amount, price))
        return {"id": str(len(self.sent)), "amount": amount}


@pytest.fixture(scope="module")
def guard():
    g = Guard.from_file(str(POLICIES / "default.yaml"))
    yield g
    g.close()


def _readme_bot_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Bot guardrail", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("amount", [0.1, 0.3, 50.0])
def test_the_readme_bot_snippet_never_sends_more_than_the_policy_allows(
    tmp_path, monkeypatch, amount
):
    order = {**BUY, "amount": amount}
    with Guard.from_file(str(POLICIES / "default.yaml")) as g:
        expected = g.check(SNAPSHOT, order)
    (tmp_path / "policies").symlink_to(POLICIES)
    exchange = RecordingExchange()
    monkeypatch.chdir(tmp_path)  # the snippet names policies/default.yaml and audit.jsonl
    exec(_readme_bot_snippet(), {"snapshot": SNAPSHOT, "order": order, "exchange": exchange})
    sent = [a for (_s, _t, _side, a, _p) in exchange.sent]
    assert expected.decision in ("allow", "resize", "deny")
    if expected.decision == "deny":
        assert sent == []
    else:
        assert len(sent) == 1
        assert 0 < sent[0] <= amount
        assert sent[0] <= expected.maxAllowedAmount
        if expected.decision == "resize":
            assert sent[0] < amount


def test_the_three_outcomes_of_one_order_size_sweep(guard):
    seen = {}
    for amount in (0.1, 0.3, 50.0):
        order = {**BUY, "amount": amount}
        d = guard.check(SNAPSHOT, order)
        seen[d.decision] = (d, order)
    assert set(seen) == {"allow", "resize", "deny"}
    allow, a_order = seen["allow"]
    resize, r_order = seen["resize"]
    deny, d_order = seen["deny"]
    assert allow.allowed and allow.amount_to_send(a_order) == a_order["amount"]
    assert not resize.allowed  # the trap of issue 13: a resize is not "go ahead"
    assert resize.amount_to_send(r_order) == resize.maxAllowedAmount < r_order["amount"]
    assert not deny.allowed and deny.amount_to_send(d_order) == 0.0 == deny.approved_amount


def test_the_naive_reading_of_allowed_cannot_send_an_oversized_order(guard):
    """`if decision.allowed: send(order amount)` was the trap: true for a resize."""
    exchange = RecordingExchange()
    largest = guard.max_order_amount(SNAPSHOT, {**BUY, "amount": 1.0})
    for amount in (0.05, 0.1, 0.2, 0.3, 1.0, 50.0):
        order = {**BUY, "amount": amount}
        if guard.check(SNAPSHOT, order).allowed:
            exchange.create_order(order["symbol"], "limit", "buy", order["amount"], 61000)
    sent = [a for (*_x, a, _p) in exchange.sent]
    assert sent == [0.05, 0.1, 0.2]  # the orders that fit unchanged went, unchanged
    assert all(a <= largest for a in sent)


def test_amount_to_send_refuses_another_order(guard):
    order = {**BUY, "amount": 0.3}
    d = guard.check(SNAPSHOT, order)
    with pytest.raises(ValueError, match="check that order first"):
        d.amount_to_send({**order, "side": "sell"})
    with pytest.raises(ValueError, match="check that order first"):
        d.amount_to_send({**order, "symbol": "ETH/USDT:USDT"})
    with pytest.raises(ValueError, match="check that order first"):
        d.amount_to_send({**order, "amount": 3})
    assert guard.check(SNAPSHOT).approved_amount == 0.0  # an account check sends nothing


@given(st.floats(min_value=1e-4, max_value=100.0, allow_nan=False))
def test_approved_amount_is_never_above_the_order_or_the_bound(amount):
    with Guard.from_file(str(POLICIES / "default.yaml")) as g:
        d = g.check(SNAPSHOT, {**BUY, "amount": amount})
    a = d.approved_amount
    assert 0.0 <= a <= amount
    assert (a > 0) == (d.decision != "deny")
    assert d.allowed == (d.decision == "allow")
    if d.maxAllowedAmount is not None and d.decision != "deny":
        assert a <= d.maxAllowedAmount
    assert d.to_dict()["approvedAmount"] == a


def test_cli_check_json_and_stream_carry_the_amount_to_send(tmp_path):
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(SNAPSHOT))
    order = tmp_path / "o.json"
    order.write_text(json.dumps({**BUY, "amount": 0.3}))
    r = run_cli(
        "check", "-p", str(POLICIES / "default.yaml"), "-s", str(snap), "-o", str(order), "--json"
    )
    assert r.returncode == 1, r.stderr
    d = json.loads(r.stdout)
    assert d["decision"] == "resize" and d["approvedAmount"] == d["maxAllowedAmount"] < 0.3
