"""``riskguard explain``: every rule's inputs, comparison and outcome, in plain words."""

from __future__ import annotations

import json
import textwrap

import pytest

from riskguard.engine.policy import load_policy
from riskguard.model.snapshot import load_order, load_snapshot
from riskguard.policytools.explain import explain, format_value, rule_outcomes, unit_of

from .conftest import FIXTURES, run_cli

PT = FIXTURES / "policytests"
MINI = str(PT / "mini.yaml")
CALM = str(PT / "calm.json")
BUY = str(PT / "buy-btc.json")


def cli(*args: str, **kw):
    """``riskguard explain ARGS`` at a fixed width, so long lines never wrap in assertions."""
    return run_cli("explain", *args, env={"COLUMNS": "200"}, **kw)


def calm_doc(*changes: tuple[int, str, object]) -> dict:
    """The calm fixture with (position index, field, value) changes."""
    doc = json.loads((PT / "calm.json").read_text())
    for i, key, value in changes:
        doc["positions"][i][key] = value
    return doc


def mini_with(tmp_path, **edits):
    """The mini policy with text replacements (e.g. a different onViolation or mode)."""
    text = (PT / "mini.yaml").read_text()
    for old, new in edits.values():
        assert old in text
        text = text.replace(old, new)
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return str(p)


# --------------------------------------------------------------------------- text


def test_resize_is_explained_rule_by_rule_with_the_numbers():
    r = cli("-p", MINI, "-s", CALM, "-o", BUY)
    assert r.returncode == 1, r.stderr  # like `check`: resized
    out = r.stdout
    for rule in ("margin-utilization", "stop-before-liquidation", "isolate-on-volatility"):
        assert rule in out
    # the account before and after, and the comparison the rule made
    assert "after the order" in out and "42.23 %" in out and "5.99 %" in out
    assert "utilization 42.23% vs max 35.00%" in out
    assert "observed 42.23 % · limit 35.00 % · blocks this order" in out
    assert "VIOLATED — decides this order" in out and "PASSED" in out
    # the bottom line, in plain words
    assert "decision: RESIZE" in out
    assert "send 0.48032786 BTC instead (the largest amount every rule allows)" in out
    assert "order would lift margin utilization to 42.2%, above the 35.0% limit (now 6.0%)" in out
    assert "at 0.48032786 BTC: utilization 35.00% vs max 35.00%" in out


def test_denial_without_resizing_says_what_fits(tmp_path):
    policy = mini_with(tmp_path, a=("[resize_order, alert]", "[alert]"))
    r = cli("-p", policy, "-s", CALM, "-o", BUY)
    assert r.returncode == 1
    assert "decision: DENY" in r.stdout
    assert (
        "DENIED: the order to buy 0.6 BTC of BTC/USDT:USDT at market must not be sent." in r.stdout
    )
    assert "the largest order that fits is 0.48032786 BTC" in r.stdout
    assert "the policy does not resize orders for this rule" in r.stdout


def test_a_rule_no_size_satisfies_is_named(write_json):
    snap = write_json("s.json", calm_doc((0, "stopLossPrice", None)))
    r = cli("-p", MINI, "-s", str(snap), "-o", BUY)
    assert r.returncode == 1
    out = r.stdout
    assert (
        "a smaller order does not help: stop-before-liquidation blocks this order at any size."
        in out
    )
    assert "once that is fixed, the largest order that fits is" in out
    assert "STOP_LOSS_MISSING" in out and "set the stop-loss of BTC/USDT:USDT to" in out


def test_account_breach_without_order(write_json):
    snap = write_json("s.json", calm_doc((1, "stopLossPrice", None)))
    r = cli("-p", MINI, "-s", str(snap))
    assert r.returncode == 1
    out = r.stdout
    assert "DENIED: the account is in breach of the policy" in out
    assert "ETH/USDT:USDT: short position has no stop-loss" in out
    # the comparison the rule made, with its inputs
    assert "stop None vs liquidation 3283.58" in out and "safe stop 3,255.2239" in out
    assert "proposed: set the stop-loss of ETH/USDT:USDT to 3,255.2239 (there is none)" in out
    assert "after the order" not in out


def test_other_positions_findings_do_not_block_the_order(write_json):
    snap = write_json("s.json", calm_doc((1, "stopLossPrice", None)))
    order = write_json("o.json", {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01})
    r = cli("-p", MINI, "-s", str(snap), "-o", str(order))
    assert r.returncode == 0, r.stdout
    assert "ALLOWED: the order to buy 0.01 BTC" in r.stdout
    assert "another position: does not block this order" in r.stdout
    assert "findings on other positions" in r.stdout


def test_warnings_are_reported_not_blocking(write_json):
    snap = write_json("s.json", calm_doc((0, "contracts", 0.5)))
    r = cli("-p", MINI, "-s", str(snap))
    assert r.returncode == 0
    assert "WARNING" in r.stdout and "1 warning (reported, not blocking)" in r.stdout
    assert "margin utilization 31.8% is above the 30.0% warning level" in r.stdout


def test_volatility_switch_says_the_exchange_refuses(write_json):
    doc = json.loads((PT / "calm.json").read_text())
    doc["markets"]["BTC/USDT:USDT"] = {"markPrice": 61000, "atrPct": 7.5}
    r = cli("-p", MINI, "-s", str(write_json("s.json", doc)))
    assert r.returncode == 1
    assert "ATR 7.50% above 5%" in r.stdout
    assert (
        "switch BTC/USDT:USDT to isolated with 305.00 margin — the exchange refuses this now"
        in r.stdout
    )


def test_rule_without_notes_shows_passed_no_findings():
    plugin = str(PT / "order_counter.py")
    r = cli("-p", str(PT / "counter.yaml"), "-s", CALM, "-o", BUY, "--plugin", plugin)
    assert r.returncode == 0, r.stderr
    assert "order-count" in r.stdout and "passed, no findings" in r.stdout


def test_engine_input_findings_are_shown(write_json):
    snap = write_json("s.json", calm_doc((1, "liquidationPrice", 0)))
    r = cli("-p", MINI, "-s", str(snap))
    assert r.returncode == 1
    assert "input check (engine)" in r.stdout and "INPUT_LIQUIDATION_PRICE_IMPLAUSIBLE" in r.stdout
    assert "input problem (INPUT_LIQUIDATION_PRICE_IMPLAUSIBLE)" in r.stdout


def test_fails_shows_only_rules_with_findings():
    r = cli("-p", MINI, "-s", CALM, "-o", BUY, "--fails")
    assert "margin-utilization" in r.stdout
    assert "isolate-on-volatility" not in r.stdout and "stop-before-liquidation" not in r.stdout


def test_monitor_mode_says_enforcement_is_off(tmp_path):
    policy = mini_with(tmp_path, a=("spec:\n", "spec:\n  mode: monitor\n"))
    r = cli("-p", policy, "-s", CALM, "-o", BUY, "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["decision"] == "allow" and doc["wouldDecide"] == "resize"
    assert any("monitor mode: enforcement is off" in line for line in doc["why"])


# --------------------------------------------------------------------------- JSON


def test_json_structure():
    r = cli("-p", MINI, "-s", CALM, "-o", BUY, "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert {"decision", "rules", "metrics", "why", "metricsBefore", "order"} <= set(doc)
    assert doc["decision"] == "resize"
    assert doc["maxAllowedAmount"] == pytest.approx(0.48032786, rel=1e-6)
    assert [r["id"] for r in doc["rules"]] == [
        "margin-utilization",
        "stop-before-liquidation",
        "isolate-on-volatility",
    ]
    for rule in doc["rules"]:
        assert {"id", "type", "params", "outcome", "notes", "violations", "actions"} <= set(rule)
    mu, stop, vol = doc["rules"]
    assert (mu["outcome"], stop["outcome"], vol["outcome"]) == ("violated", "passed", "passed")
    assert mu["blocksDecision"] is True and stop["blocksDecision"] is False
    assert mu["params"] == {"max": 0.35, "warnAt": 0.3, "includeOpenOrders": True}
    note = mu["notes"][0]
    assert note["passed"] is False
    assert note["values"]["utilization"] == pytest.approx(4265 / 10100)
    assert note["values"]["equity"] == pytest.approx(10100)
    v = mu["violations"][0]
    assert v["code"] == "MARGIN_UTILIZATION_EXCEEDS_MAX" and v["blocksDecision"] is True
    assert {a["type"] for a in mu["actions"]} >= {"resize_order", "alert"}
    assert {n["symbol"] for n in stop["notes"]} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert doc["metrics"]["marginUtilization"] == pytest.approx(4265 / 10100)
    assert doc["metricsBefore"]["marginUtilization"] == pytest.approx(605 / 10100)
    assert doc["resized"]["notes"][0]["values"]["utilization"] == pytest.approx(0.35, rel=1e-6)


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_exit_2_without_traceback(tmp_path):
    r = cli("-p", MINI, "-s", str(tmp_path / "none.json"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = cli("-p", MINI, "-s", CALM, "--now", "soon")
    assert r.returncode == 2 and "--now" in r.stderr
    bad = tmp_path / "o.yaml"
    bad.write_text(textwrap.dedent("symbol: BTC/USDT:USDT\nside: up\namount: 1\n"))
    r = cli("-p", MINI, "-s", CALM, "-o", str(bad))
    assert r.returncode == 2 and f"{bad}:2:7" in r.stderr


def test_help_has_examples():
    r = cli("--help")
    assert r.returncode == 0 and "examples" in r.stdout and "--json" in r.stdout


# --------------------------------------------------------------------------- API


def test_api_explain_outcomes_and_why():
    policy = load_policy(MINI)
    x = explain(policy, load_snapshot(CALM), load_order(BUY), now_ms=0)
    assert [r.outcome for r in x.rules] == ["violated", "passed", "passed"]
    assert x.rules[0].sizing and not x.rules[1].sizing
    assert x.why[0].startswith("RESIZED")
    assert rule_outcomes(policy, x.decision, []) == {
        "margin-utilization": "violated",
        "stop-before-liquidation": "silent",
        "isolate-on-volatility": "silent",
    }
    assert unit_of(x.snapshot, "BTC/USDT:USDT") == "BTC"


@pytest.mark.parametrize(
    ("key", "value", "rule_type", "text"),
    [
        ("utilization", 0.4223, "", "42.23 %"),
        ("max", 0.35, "margin_utilization", "35.00 %"),
        ("max", 20, "max_leverage", "20"),
        ("atrPct", 7.5, "", "7.50 %"),
        ("equity", 10100.0, "", "10,100.00 USDT"),
        ("safeStop", 3255.2238805, "", "3,255.2239"),
        ("flag", True, "", "yes"),
        ("x", None, "", "—"),
    ],
)
def test_values_get_their_units(key, value, rule_type, text):
    assert format_value(key, value, rule_type, "USDT") == text
