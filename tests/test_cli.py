"""The `riskguard` command as a user runs it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json

import pytest

from .conftest import POLICIES, ROOT, run_cli, snapshot_doc

DEFAULT = str(POLICIES / "default.yaml")


def test_help_lists_commands_and_exit_codes():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("check", "audit", "metrics", "validate", "schema", "plugins"):
        assert cmd in r.stdout
    assert "Exit codes" in r.stdout


@pytest.mark.parametrize("cmd", ["check", "audit", "metrics", "validate"])
def test_subcommand_help_explains(cmd):
    r = run_cli(cmd, "--help")
    assert r.returncode == 0 and len(r.stdout) > 300
    assert "example" in r.stdout.lower()


def test_no_command_is_usage_error():
    r = run_cli()
    assert r.returncode == 2


def test_unknown_option_is_usage_error():
    r = run_cli("check", "--polcy", "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_metrics_json_matches_the_formula(write_json):
    doc = snapshot_doc(walletBalance=1000)
    r = run_cli("metrics", str(write_json("s.json", doc)), "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["equity"] == pytest.approx(1000 + 0.05 * 1000 + 50)
    assert m["initialMargin"] == pytest.approx(305 + 300)
    assert m["marginUtilization"] == pytest.approx(605 / 1100)
    btc = next(p for p in m["positions"] if p["symbol"] == "BTC/USDT:USDT")
    # Binance one-way cross, one cross position, default MMR 0.5 %:
    # LP = (WB − s·Q·EP)/(Q·MMR − s·Q), WB = 1000 − 300 isolated
    lp = (700 - 0.05 * 60000) / (0.05 * 0.005 - 0.05)
    assert btc["liquidationPrice"] == pytest.approx(lp, rel=1e-12)
    assert btc["liquidationDistancePct"] == pytest.approx((61000 - lp) / 61000 * 100)
    assert btc["approximate"] is True and btc["tierSource"] == "default"


def test_metrics_table_is_readable(write_json):
    r = run_cli("metrics", str(write_json("s.json", snapshot_doc())))
    assert r.returncode == 0
    for words in ("equity", "margin utilization", "BTC/USDT:USDT", "liq. price"):
        assert words in r.stdout


def test_metrics_bad_input_is_exit_2_with_location(tmp_path):
    doc = snapshot_doc()
    doc["positions"][0]["contracts"] = -3
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc, indent=2))
    r = run_cli("metrics", str(p))
    assert r.returncode == 2
    assert f"{p}:" in r.stderr and "$.positions[0].contracts" in r.stderr and "> 0" in r.stderr
    assert "Traceback" not in r.stderr


def test_metrics_missing_file():
    r = run_cli("metrics", "no/such/file.json")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_check_exit_codes(write_json):
    s = str(write_json("s.json", snapshot_doc()))
    ok = run_cli("check", "-p", DEFAULT, "-s", s)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ALLOW" in ok.stdout
    big = write_json(
        "o.json",
        {
            "symbol": "SOL/USDT:USDT",
            "side": "buy",
            "amount": 500,
            "leverage": 5,
            "stopLossPrice": 140,
            "marginMode": "isolated",
        },
    )
    r = run_cli("check", "-p", DEFAULT, "-s", s, "--order", str(big), "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["decision"] == "resize" and 0 < d["maxAllowedAmount"] < 500
    bad = run_cli("check", "-p", DEFAULT, "-s", "missing.json")
    assert bad.returncode == 2


def test_check_denies_in_text_with_reasons(write_json):
    doc = snapshot_doc(walletBalance=1500)
    r = run_cli("check", "-p", DEFAULT, "-s", str(write_json("s.json", doc)))
    assert r.returncode == 1
    assert "DENY" in r.stdout and "MARGIN_UTILIZATION_EXCEEDS_MAX" in r.stdout


def test_check_monitor_mode_exits_0(tmp_path, write_json):
    pol = tmp_path / "m.yaml"
    pol.write_text(
        (POLICIES / "default.yaml").read_text().replace("mode: enforce", "mode: monitor")
    )
    r = run_cli(
        "check", "-p", str(pol), "-s", str(write_json("s.json", snapshot_doc(walletBalance=1500)))
    )
    assert r.returncode == 0 and "enforcement OFF" in r.stdout


def test_audit_over_a_directory(tmp_path):
    d = tmp_path / "snaps"
    d.mkdir()
    (d / "a.json").write_text(json.dumps(snapshot_doc()))
    (d / "b.json").write_text(json.dumps(snapshot_doc(walletBalance=1500)))
    (d / "c.json").write_text("{not json")
    out = tmp_path / "decisions.jsonl"
    r = run_cli("audit", "-p", DEFAULT, str(d), "--out", str(out))
    assert r.returncode == 1, r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["decision"] for x in lines) == ["allow", "deny"]
    assert "c.json" in r.stderr
    strict = run_cli("audit", "-p", DEFAULT, str(d), "--strict")
    assert strict.returncode == 2


def test_validate_accepts_policy_test_files_and_checks_them(tmp_path):
    r = run_cli("validate", "--strict", *sorted(str(p) for p in POLICIES.glob("*.yaml")))
    assert r.returncode == 0, r.stderr
    assert "default.tests.yaml: ok" in r.stdout
    bad = tmp_path / "x.tests.yaml"
    bad.write_text(
        f"apiVersion: riskguard/v1\nkind: PolicyTest\npolicy: {POLICIES / 'default.yaml'}\ncases:\n"
        "  - name: c\n    snapshot: {walletBalance: 1}\n    expect: {decison: allow}\n"
    )
    r = run_cli("validate", str(bad))
    assert r.returncode == 1 and f"{bad}:7:" in r.stderr


def test_check_time_budget_denies_a_hung_plugin_rule(tmp_path, write_json):
    plugin = ROOT / "tests" / "fixtures" / "hostile" / "plugin-hangs.py"
    pol = tmp_path / "p.yaml"
    pol.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: h}\n"
        "spec:\n  rules:\n    - {id: h, type: hangs}\n"
    )
    s = str(write_json("s.json", snapshot_doc()))
    r = run_cli(
        "check",
        "--plugin",
        str(plugin),
        "-p",
        str(pol),
        "-s",
        s,
        "--time-budget-ms",
        "200",
        "--json",
    )
    assert r.returncode == 3, r.stderr  # fail closed: the evaluation did not finish
    d = json.loads(r.stdout)
    assert d["decision"] == "deny"
    assert "ENGINE_TIME_BUDGET_EXCEEDED" in {v["code"] for v in d["violations"]}
