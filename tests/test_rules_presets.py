"""The policy presets: valid, documented, shaped as advertised, and behaving as their README says."""

from __future__ import annotations

import pytest

from riskguard.engine.policy import load_policy
from riskguard.faces.guard import Guard

from .conftest import POLICIES, run_cli, snapshot_doc

PRESETS = ("conservative", "scalper", "trend", "prop-desk")
SOL_BUY = {
    "symbol": "SOL/USDT:USDT",
    "side": "buy",
    "amount": 1,
    "leverage": 3,
    "marginMode": "isolated",
    "stopLossPrice": 148,
}


def rules(name: str) -> dict:
    return {s.id: s for s in load_policy(POLICIES / f"{name}.yaml").specs}


def by_type(name: str, rtype: str):
    return [s for s in rules(name).values() if s.type == rtype]


def test_every_preset_passes_riskguard_validate_strictly():
    paths = [str(POLICIES / f"{n}.yaml") for n in ("default", *PRESETS)]
    r = run_cli("validate", "--strict", *paths)
    assert r.returncode == 0, r.stderr
    for p in paths:
        assert f"{p}: ok" in r.stdout


def test_every_preset_is_documented_in_the_readme():
    readme = (POLICIES / "README.md").read_text(encoding="utf-8")
    for name in ("default", *PRESETS):
        assert f"## `{name}.yaml`" in readme, name
        assert load_policy(POLICIES / f"{name}.yaml").name == name


def test_the_presets_together_switch_on_every_rule_type():
    from riskguard.engine.plugins import build_registry

    used = {s.type for n in PRESETS for s in rules(n).values()}
    assert used == set(build_registry((), load_entry_points=False).rule_types)


def test_scalper_is_isolated_with_tight_stops_and_one_percent_risk():
    (mode,) = by_type("scalper", "margin_mode")
    assert mode.params["mode"] == "isolated" and not mode.params["groups"]
    (rpt,) = by_type("scalper", "risk_per_trade")
    assert rpt.params["max"] == 0.01
    (stop,) = by_type("scalper", "stop_before_liquidation")
    assert stop.params["required"] and stop.params["bufferFraction"] >= 0.5
    assert by_type("scalper", "order_rate") and by_type("scalper", "duplicate_order")


def test_trend_allows_cross_and_stress_tests_the_pool():
    assert not by_type("trend", "margin_mode")
    (stress,) = by_type("trend", "cross_stress")
    assert stress.severity == "error" and stress.params["shockPct"] > 0
    (lev,) = by_type("trend", "max_leverage")
    assert lev.params["accountMax"] is not None
    assert by_type("trend", "promote_to_cross") and by_type("trend", "isolate_on_volatility")


def test_prop_desk_halts_on_drawdown():
    (dd,) = by_type("prop-desk", "drawdown")
    assert dd.params["haltState"] == "halted"
    assert dd.params["maxDailyLoss"] and dd.params["maxDrawdown"]
    g = Guard.from_file(POLICIES / "prop-desk.yaml")
    breach = snapshot_doc(dayStartEquity=11000)  # equity 10,100: 8 % down on the day
    d = g.check(breach)
    assert "DRAWDOWN_DAILY_LOSS_EXCEEDS_MAX" in {v.code for v in d.violations}
    assert g.trading_state == "halted"
    close = {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.05, "reduceOnly": True}
    d = g.check(snapshot_doc(), close)
    assert d.decision == "deny" and "DRAWDOWN_LOCKOUT_ACTIVE" in {v.code for v in d.violations}


def test_conservative_reduces_instead_of_halting():
    g = Guard.from_file(POLICIES / "conservative.yaml")
    g.check(snapshot_doc(dayStartEquity=11000))
    assert g.trading_state == "reducing"


@pytest.mark.parametrize("name", PRESETS)
def test_a_small_isolated_order_with_a_stop_passes_every_preset(name):
    # a clean account (no positions) with ATR data, a 3× isolated order risking 2 × 1 = 2
    doc = snapshot_doc(positions=[], markets={"SOL/USDT:USDT": {"markPrice": 150.0, "atrPct": 2.0}})
    d = Guard.from_file(POLICIES / f"{name}.yaml").check(doc, SOL_BUY)
    assert d.decision == "allow", [v.reason() for v in d.violations]
    assert all(not v.blocking for v in d.violations)


@pytest.mark.parametrize("name", PRESETS)
def test_an_oversized_order_is_resized_or_denied_by_every_preset(name):
    doc = snapshot_doc(positions=[], markets={"SOL/USDT:USDT": {"markPrice": 150.0, "atrPct": 2.0}})
    d = Guard.from_file(POLICIES / f"{name}.yaml").check(doc, {**SOL_BUY, "amount": 5000})
    assert d.decision in ("resize", "deny")
    if d.decision == "resize":
        assert 0 < d.maxAllowedAmount < 5000
