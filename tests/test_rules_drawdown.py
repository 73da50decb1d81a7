"""drawdown: daily loss and peak-to-trough limits, lockout until the reset, memory in a Guard."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.errors import PolicyError
from riskguard.faces.guard import Guard
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot, parse_timestamp
from riskguard.rules.drawdown import reset_time

BTC = "BTC/USDT:USDT"
SOL = "SOL/USDT:USDT"
BUY_SOL = {"symbol": SOL, "side": "buy", "amount": 1}
SELL_BTC = {"symbol": BTC, "side": "sell", "amount": 0.01}


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
        "spec": {"rules": [{"id": "dd", "type": "drawdown", "params": params}]},
    }


def snap(equity: float, at: str = "2026-11-24T12:00:00Z", **extra):
    """An account with equity = wallet (the BTC long is at its entry) at time ``at``."""
    return {
        "account": "t",
        "exchange": "binance",
        "timestamp": at,
        "walletBalance": equity,
        "positions": [
            {
                "symbol": BTC,
                "side": "long",
                "contracts": 0.05,
                "entryPrice": 60000,
                "markPrice": 60000,
                "leverage": 10,
                "marginMode": "cross",
            }
        ],
        "markets": {SOL: {"markPrice": 150.0}},
        **extra,
    }


def once(params, snapshot, order=None):
    from riskguard.model.snapshot import build_order

    d = evaluate(
        load_policy(doc(**params)),
        build_snapshot(snapshot),
        build_order(order) if order else None,
    )
    validator("decision").validate(d.to_dict())
    return d


def check(g, snapshot, order=None):
    d = g.check(snapshot, order)
    validator("decision").validate(d.to_dict())
    return d


def codes(d):
    return [v.code for v in d.violations]


# ----------------------------------------------------------------- one-shot, snapshot figures


@pytest.mark.parametrize(("equity", "violated"), [(9701, False), (9700, False), (9699, True)])
def test_daily_loss_boundary(equity, violated):
    d = once({"maxDailyLoss": 0.03}, snap(equity, dayStartEquity=10000))
    assert (codes(d) == ["DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX"]) is violated
    if violated:
        v = d.violations[0]
        assert v.observed == pytest.approx(0.0301) and v.limit == 0.03 and d.decision == "deny"
        halt = [a for a in d.actions if a.type == "halt_trading"]
        assert halt and halt[0].params["state"] == "reducing"


@pytest.mark.parametrize(("equity", "violated"), [(10801, False), (10800, False), (10799, True)])
def test_peak_drawdown_boundary(equity, violated):
    d = once({"maxDrawdown": 0.1}, snap(equity, equityPeak=12000))
    assert (codes(d) == ["DRAWDOWN_PEAK_EXCEEDS_MAX"]) is violated


def test_breach_blocks_new_exposure_but_not_reducing():
    params = {"maxDailyLoss": 0.03}
    s = snap(9000, dayStartEquity=10000)
    assert once(params, s, BUY_SOL).decision == "deny"
    assert once(params, s, SELL_BTC).decision == "allow"
    halted = {**params, "haltState": "halted"}
    assert once(halted, s, SELL_BTC).decision == "deny"  # halted: nothing may be sent


def test_implausible_snapshot_figures_are_ignored():
    d = once({"maxDailyLoss": 0.03}, snap(9000, dayStartEquity="lots"))
    assert not d.violations  # a fresh one-shot check remembers nothing: day start = now


# ----------------------------------------------------------------- a long-lived Guard


def test_lockout_lasts_until_the_reset_time_then_restores_trading():
    g = Guard.from_dict(doc(maxDailyLoss=0.03, reset="00:00"), clock=Clock())
    d = check(g, snap(9600, dayStartEquity=10000))
    assert codes(d) == ["DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX"] and g.trading_state == "reducing"
    assert d.violations[0].context["until"] == "2026-11-25T00:00:00.000Z"
    # equity recovered within the limit, same day: still locked out
    later = snap(9800, at="2026-11-24T23:59:59Z", dayStartEquity=10000)
    d = check(g, later, BUY_SOL)
    assert d.decision == "deny" and codes(d) == ["DRAWDOWN_LOCKOUT_ACTIVE"]
    assert d.violations[0].scope == "order"
    assert check(g, later, SELL_BTC).decision == "allow"
    # the reset passes: the lockout ends and the state it set is restored
    next_day = snap(9800, at="2026-11-25T00:00:00Z")
    assert check(g, next_day, BUY_SOL).decision == "allow"
    assert g.trading_state == "active"


def test_a_duration_reset():
    g = Guard.from_dict(doc(maxDrawdown=0.1, reset="30m", haltState="halted"), clock=Clock())
    check(g, snap(8000, equityPeak=10000))
    assert g.trading_state == "halted"
    assert (
        check(g, snap(9500, at="2026-11-24T12:29:59Z", equityPeak=10000), SELL_BTC).decision
        == "deny"
    )
    assert (
        check(g, snap(9500, at="2026-11-24T12:30:00Z", equityPeak=10000), BUY_SOL).decision
        == "allow"
    )


def test_manual_reset_waits_for_the_api():
    g = Guard.from_dict(doc(maxDailyLoss=0.03, reset="manual"), clock=Clock())
    check(g, snap(9000, dayStartEquity=10000))
    assert (
        check(g, snap(10000, at="2026-11-30T12:00:00Z"), BUY_SOL).decision == "deny"
    )  # days later
    g.set_trading_state("active", reason="risk manager sign-off")
    assert check(g, snap(10000, at="2026-11-30T12:01:00Z"), BUY_SOL).decision == "allow"


def test_a_human_state_change_is_not_undone_at_the_reset():
    g = Guard.from_dict(doc(maxDailyLoss=0.03, reset="1h"), clock=Clock())
    check(g, snap(9000, dayStartEquity=10000))
    g.set_trading_state("halted", reason="ops")
    check(g, snap(10000, at="2026-11-24T14:00:00Z", dayStartEquity=10000))
    assert g.trading_state == "halted"


def test_the_guard_remembers_the_peak():
    g = Guard.from_dict(doc(maxDrawdown=0.1), clock=Clock())
    assert not check(g, snap(10000)).violations
    assert not check(g, snap(12000, at="2026-11-24T13:00:00Z")).violations
    d = check(g, snap(10790, at="2026-11-24T14:00:00Z"))  # 10.08 % below the remembered 12,000
    assert codes(d) == ["DRAWDOWN_PEAK_EXCEEDS_MAX"]
    assert d.violations[0].context["equityPeak"] == 12000


def test_the_guard_remembers_the_day_start_and_rolls_it_at_day_start():
    params = {"maxDailyLoss": 0.03, "dayStartsAt": "08:00", "reset": "1m"}
    g = Guard.from_dict(doc(**params), clock=Clock())
    check(g, snap(10000, at="2026-11-24T08:00:00Z"))
    assert not check(g, snap(9700, at="2026-11-24T20:00:00Z")).violations
    assert codes(check(g, snap(9699, at="2026-11-25T07:59:00Z"))) == [
        "DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX"
    ]
    # 08:00 the next day: the day starts again from the equity seen then
    assert not check(g, snap(9600, at="2026-11-25T08:00:00Z")).violations
    assert codes(check(g, snap(9311, at="2026-11-25T09:00:00Z"))) == [
        "DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX"
    ]


def test_what_if_checks_do_not_touch_the_memory():
    g = Guard.from_dict(doc(maxDailyLoss=0.03), clock=Clock())
    g.check_quiet(snap(9000, dayStartEquity=10000), BUY_SOL)
    assert g.trading_state == "active" and not g.state


def test_reset_time_forms():
    t = parse_timestamp("2026-11-24T12:00:00Z")
    assert reset_time("00:00", t) == parse_timestamp("2026-11-25T00:00:00Z")
    assert reset_time("13:30", t) == parse_timestamp("2026-11-24T13:30:00Z")
    assert reset_time("12:00", t) == parse_timestamp("2026-11-25T12:00:00Z")  # strictly later
    assert reset_time("4h", t) == parse_timestamp("2026-11-24T16:00:00Z")
    assert reset_time("1.5d", t) == parse_timestamp("2026-11-26T00:00:00Z")
    assert reset_time("manual", t) is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "maxDailyLoss and/or maxDrawdown"),
        ({"maxDailyLoss": 0.03, "reset": "tomorrow"}, "reset"),
        ({"maxDailyLoss": 0.03, "dayStartsAt": "24:00"}, "dayStartsAt"),
    ],
)
def test_bad_params_are_refused(params, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(doc(**params))


def test_one_halt_proposal_per_decision():
    d = once(
        {"maxDailyLoss": 0.03, "maxDrawdown": 0.05},
        snap(8000, dayStartEquity=10000, equityPeak=10000),
        BUY_SOL,
    )
    assert len({v.code for v in d.violations}) == 3  # daily, peak (8000 vs 10000), lockout
    assert [a.type for a in d.actions].count("halt_trading") == 1
