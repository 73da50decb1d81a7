"""trading_state: the kill switch from the policy, a state file (fail closed) and the API."""

from __future__ import annotations

import pytest

from riskguard.faces.guard import Guard
from riskguard.model.schemas import validator
from riskguard.rules.trading_state import parse_state_text, set_trading_state

from .conftest import snapshot_doc

BUY_SOL = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 1}
SELL_BTC = {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.01}  # reduces the long
SNAP = snapshot_doc()


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def doc(**params):
    return {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "t", "version": "1"},
        "spec": {"rules": [{"id": "ks", "type": "trading_state", "params": params}]},
    }


def check(g, order=None):
    d = g.check(SNAP, order)
    validator("decision").validate(d.to_dict())
    return d


def codes(d):
    return [v.code for v in d.violations]


@pytest.mark.parametrize(
    ("state", "buy", "sell"),
    [("active", "allow", "allow"), ("reducing", "deny", "allow"), ("halted", "deny", "deny")],
)
def test_state_from_the_policy(state, buy, sell):
    g = Guard.from_dict(doc(state=state))
    assert check(g, BUY_SOL).decision == buy
    assert check(g, SELL_BTC).decision == sell
    assert check(g).decision == "allow"  # holding positions is never judged


def test_reducing_denies_with_its_code_and_scope():
    d = check(Guard.from_dict(doc(state="reducing")), BUY_SOL)
    (v,) = d.violations
    assert (
        v.code == "TRADING_STATE_REDUCING" and v.scope == "order" and v.context["setBy"] == "policy"
    )


def test_state_from_the_api_and_the_most_restrictive_wins():
    g = Guard.from_dict(doc(state="reducing"))
    g.set_trading_state("halted", reason="test")
    d = check(g, SELL_BTC)
    assert codes(d) == ["TRADING_STATE_HALTED"] and d.violations[0].context["setBy"] == "api"
    g.set_trading_state("active")
    assert check(g, SELL_BTC).decision == "allow"
    assert check(g, BUY_SOL).decision == "deny"  # the policy still says reducing


def test_helper_writes_the_state_dict():
    g = Guard.from_dict(doc())
    assert set_trading_state(g.state, "reducing") == "active"
    assert g.trading_state == "reducing"
    assert check(g, BUY_SOL).decision == "deny"
    with pytest.raises(ValueError, match="active, reducing, halted"):
        set_trading_state(g.state, "paused")


def test_an_unknown_api_value_counts_as_halted():
    g = Guard.from_dict(doc())
    g.state["tradingState"] = "bogus"
    assert codes(check(g, SELL_BTC)) == ["TRADING_STATE_HALTED"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("active\n", "active"),
        ("  # kill switch\n\nHALTED  # ops\n", "halted"),
        ("reducing", "reducing"),
        ("stop", None),
        ("", None),
    ],
)
def test_state_file_parsing(text, expected):
    assert parse_state_text(text) == expected


def test_state_file_is_read_at_most_once_per_second(tmp_path):
    f = tmp_path / "state"
    f.write_text("active\n")
    clock = Clock()
    g = Guard.from_dict(doc(stateFile=str(f)), clock=clock)
    assert check(g, BUY_SOL).decision == "allow"
    f.write_text("halted\n")
    clock.t += 0.999
    assert check(g, BUY_SOL).decision == "allow"  # cached
    clock.t += 0.001
    d = check(g, BUY_SOL)
    assert d.decision == "deny" and d.violations[0].context["setBy"] == "file"


@pytest.mark.parametrize("content", [None, "paused\n", b"\xff\xfe\x00"])
def test_unreadable_or_invalid_file_fails_closed(tmp_path, content):
    f = tmp_path / "state"
    if isinstance(content, str):
        f.write_text(content)
    elif isinstance(content, bytes):
        f.write_bytes(content)
    g = Guard.from_dict(doc(stateFile=str(f)), clock=Clock())
    d = check(g, SELL_BTC)
    assert d.decision == "deny"
    assert sorted(codes(d)) == ["TRADING_STATE_FILE_UNREADABLE", "TRADING_STATE_HALTED"]
    unreadable = next(v for v in d.violations if v.code == "TRADING_STATE_FILE_UNREADABLE")
    assert unreadable.severity == "warning" and str(f) in unreadable.message
    # a snapshot-only check reports the broken switch but does not deny the account
    snap_only = check(g)
    assert snap_only.decision == "allow" and codes(snap_only) == ["TRADING_STATE_FILE_UNREADABLE"]


def test_relative_state_file_is_next_to_the_policy(tmp_path):
    import yaml

    (tmp_path / "trading-state").write_text("reducing\n")
    p = tmp_path / "policy.yaml"
    p.write_text(yaml.safe_dump(doc(stateFile="trading-state")))
    g = Guard.from_file(p, clock=Clock())
    assert check(g, BUY_SOL).decision == "deny" and check(g, SELL_BTC).decision == "allow"


def test_match_limits_the_symbols_switched_off():
    d = {**doc(state="halted")}
    d["spec"]["rules"][0]["match"] = {"symbols": ["BTC/*"]}
    g = Guard.from_dict(d)
    assert check(g, BUY_SOL).decision == "allow"
    assert check(g, SELL_BTC).decision == "deny"
