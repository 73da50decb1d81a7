"""Hostile input: every row of the table in docs/SECURITY.md is one test here.

Each bad input gets a clear message (file, line/column, JSON path, what was expected)
and exit 2, or a decision that denies: never a traceback, never an allow by accident.
CLI tests run the real command and assert the exit code, the absence of "Traceback"
and the location in the message. Large or endless inputs are made at test time.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from riskguard import Guard
from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import build_registry
from riskguard.engine.policy import load_policy
from riskguard.errors import PolicyError, RiskguardError, SnapshotError
from riskguard.model.snapshot import Position, Snapshot, build_order, build_snapshot, load_snapshot
from riskguard.model.yamlio import MAX_BYTES, parse_json_fast, parse_text

from .conftest import FIXTURES, POLICIES, ROOT, run_cli, snapshot_doc

HOSTILE = FIXTURES / "hostile"
DEFAULT = str(POLICIES / "default.yaml")
NOW = 1_795_000_000_000

#: A small, stable policy (the default one grows with the project).
CORE = {
    "apiVersion": "riskguard/v1",
    "kind": "Policy",
    "metadata": {"name": "core", "version": "1"},
    "spec": {
        "rules": [
            {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35, "warnAt": 0.3}},
            {"id": "sl", "type": "stop_before_liquidation"},
        ]
    },
}


def cli_error(r, code: int = 2) -> str:
    """Assert a clean failure: the exit code, no traceback; return stderr."""
    assert r.returncode == code, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    return r.stderr


@pytest.fixture
def snap_file(tmp_path):
    p = tmp_path / "snap.json"
    p.write_text(json.dumps(snapshot_doc()))
    return str(p)


@pytest.fixture
def core_policy(tmp_path):
    p = tmp_path / "core.json"
    p.write_text(json.dumps(CORE))
    return str(p)


# --------------------------------------------------------------------------- parsing


def test_malformed_yaml_policy(snap_file):
    err = cli_error(run_cli("check", "-p", str(HOSTILE / "malformed.yaml"), "-s", snap_file))
    assert "malformed.yaml:4:5: not valid YAML/JSON" in err


def test_malformed_json_snapshot():
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(HOSTILE / "malformed.json")))
    assert "malformed.json:4:3: not valid JSON: Expecting ',' delimiter" in err


def test_python_tag_is_refused_and_never_runs(tmp_path, snap_file):
    shutil.copy(HOSTILE / "python-tag.yaml", tmp_path / "python-tag.yaml")
    r = run_cli("check", "-p", "python-tag.yaml", "-s", snap_file, cwd=tmp_path)
    err = cli_error(r)
    assert "python-tag.yaml:5:9: $.metadata.name: YAML tag !!python/object/apply:os.system" in err
    assert not (tmp_path / "riskguard-pwned").exists()
    with pytest.raises(RiskguardError, match=r"!!python/name:os\.system") as ei:
        load_snapshot(_write(tmp_path, "s.yaml", "walletBalance: !!python/name:os.system\n"))
    assert ei.value.problems[0].line == 1


@pytest.mark.parametrize("name", ["alias-bomb.yaml", "merge-bomb.yaml"])
def test_alias_and_merge_key_bombs(name, snap_file):
    err = cli_error(run_cli("check", "-p", str(HOSTILE / name), "-s", snap_file))
    assert f"{name}:2:" in err and "bomb" in err
    with pytest.raises(RiskguardError, match="bomb"):
        load_snapshot(HOSTILE / name)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_very_deep_nesting(tmp_path, suffix):
    p = tmp_path / f"deep{suffix}"
    p.write_text('{"walletBalance": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(p)))
    assert f"deep{suffix}" in err and ("nest" in err or "deeper" in err)


def test_nesting_under_the_recursion_limit_in_an_unknown_field():
    text = '{"walletBalance": 1, "x": ' + "[" * 500 + "]" * 500 + "}"
    with pytest.raises(SnapshotError, match="nested deeper than 64 levels") as ei:
        build_snapshot(parse_json_fast(text))
    assert ei.value.problems[0].path.startswith("$.x[0][0]")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file_over_the_size_limit(tmp_path, suffix):
    p = tmp_path / f"big{suffix}"
    with p.open("wb") as fh:  # sparse: the limit is checked before reading
        fh.truncate(MAX_BYTES + 1)
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(p)))
    assert f"big{suffix}: file is {MAX_BYTES + 1} bytes; the limit is {MAX_BYTES}" in err
    out = tmp_path / "p.yaml"
    shutil.copy(p, out)
    cli_error(run_cli("check", "-p", str(out), "-s", str(p)))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_input_check():
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", "/dev/zero"))
    assert "/dev/zero: file exceeds" in err


def _limited() -> None:  # child process: at most 2 GiB of address space
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_input_audit(tmp_path):
    """A JSON Lines input with no end of line stops at the limit (memory stays bounded)."""
    endless = tmp_path / "endless.jsonl"
    endless.symlink_to("/dev/zero")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "riskguard",
            "audit",
            "-p",
            DEFAULT,
            str(endless),
            "-w",
            "1",
            "--strict",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        preexec_fn=_limited,
    )
    err = cli_error(r)
    assert f"endless.jsonl:1: line longer than {MAX_BYTES} characters" in err


def test_duplicate_keys(snap_file):
    err = cli_error(run_cli("check", "-p", str(HOSTILE / "duplicate-keys.yaml"), "-s", snap_file))
    assert "duplicate-keys.yaml:8: $.spec.mode: duplicate key 'mode' (first on line 5)" in err
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(HOSTILE / "duplicate-keys.json")))
    assert "duplicate-keys.json:6: $.walletBalance: duplicate key 'walletBalance'" in err


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("walletBalance: .nan\n", "$.walletBalance", "not a finite number"),
        ("walletBalance: 1.0e+999\n", "$.walletBalance", "not a finite number"),
        ("walletBalance: 1\nx: !!set {a, b}\n", "$.x", "!!set is not allowed"),
        ("walletBalance: 1\nx: !!binary aGk=\n", "$.x", "!!binary is not allowed"),
        ("walletBalance: 1\n1: x\n", "$", "mapping key '1' is not text"),
        ("walletBalance: 1\non: true\n", "$", "mapping key 'on' is not text"),
        ("walletBalance: 1" + "0" * 5000 + "\n", "$.walletBalance", "more than 4000 digits"),
    ],
)
def test_yaml_values_outside_json_are_located(text, path, words):
    with pytest.raises(RiskguardError) as ei:
        parse_text(text, "s.yaml")
    p = ei.value.problems[0]
    assert p.path == path and words in p.message and p.file == "s.yaml" and p.line


def test_unquoted_yaml_dates_stay_text(tmp_path):
    s = load_snapshot(
        _write(tmp_path, "s.yaml", "walletBalance: 1\ntimestamp: 2026-11-24T12:00:00Z\n")
    )
    assert s.timestamp == 1795521600000


def test_lone_surrogate_escapes(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"walletBalance": 1,\n "account": "x\\ud800"}')
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(p)))
    assert "s.json:2:15: not valid JSON text: a lone UTF-16 surrogate" in err  # at the escape
    with pytest.raises(RiskguardError, match="lone UTF-16 surrogate") as ei:
        parse_text('walletBalance: 1\naccount: "\\udc00"\n', "s.yaml")
    assert ei.value.problems[0].path == "$.account"


def test_huge_json_integers():
    with pytest.raises(SnapshotError, match="beyond the float range"):
        build_snapshot(parse_json_fast('{"walletBalance": 1' + "0" * 400 + "}"))
    with pytest.raises(RiskguardError, match="more than 4300 digits"):
        parse_json_fast('{"walletBalance": 1' + "0" * 5000 + "}")


# --------------------------------------------------------------------------- numbers, types


def _bad(mutate) -> SnapshotError:
    doc = snapshot_doc()
    mutate(doc)
    with pytest.raises(SnapshotError) as ei:
        build_snapshot(doc)
    return ei.value


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d.update(walletBalance=float("nan")), "$.walletBalance", "finite"),
        (lambda d: d.update(walletBalance=float("inf")), "$.walletBalance", "finite"),
        (lambda d: d["positions"][0].update(contracts=-1), "$.positions[0].contracts", "> 0"),
        (lambda d: d["positions"][0].update(contracts=0), "$.positions[0].contracts", "> 0"),
        (lambda d: d["positions"][0].update(entryPrice=0), "$.positions[0].entryPrice", "> 0"),
        (
            lambda d: d["positions"][1].update(isolatedMargin=-5),
            "$.positions[1].isolatedMargin",
            ">= 0",
        ),
        (lambda d: d["positions"][0].update(leverage="ten"), "$.positions[0].leverage", "number"),
        (lambda d: d["positions"][0].update(markPrice=[1]), "$.positions[0].markPrice", "number"),
        (lambda d: d["positions"][0].update(side="up"), "$.positions[0].side", "long, short"),
        (
            lambda d: d["positions"][0].update(inverse="yes"),
            "$.positions[0].inverse",
            "true or false",
        ),
        (lambda d: d.update(positions={"a": 1}), "$.positions", "list"),
        (lambda d: d.update(timestamp=1e300), "$.timestamp", "9999"),
        (
            lambda d: d.update(timestamp="0001-01-01T00:00:00+14:00"),
            "$.timestamp",
            "years 1 to 9999",
        ),
    ],
)
def test_bad_numbers_and_types_name_the_path(mutate, path, words):
    problems = _bad(mutate).problems
    assert any(p.path == path and words in p.message for p in problems), problems


def test_nan_in_a_json_file_is_exit_2(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(snapshot_doc()).replace("10000.0", "NaN"))
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(p)))
    assert "s.json: NaN is not a finite number" in err


def test_bad_field_in_a_file_is_located(tmp_path):
    doc = snapshot_doc()
    doc["positions"][0]["contracts"] = -1
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc, indent=2))
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(p)))
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if '"contracts": -1' in t)
    assert f"s.json:{line}:" in err and "$.positions[0].contracts: expected a number > 0" in err


@pytest.mark.parametrize(
    "extra",
    [{"note": float("nan")}, {"when": datetime.datetime(2026, 1, 1)}, {1: "x"}, {"s": {1, 2}}],
)
def test_python_callers_get_snapshot_errors_for_non_json_fields(tmp_path, extra):
    with Guard.from_dict(CORE, audit_log=tmp_path / "a.jsonl", audit_async=False) as g:
        with pytest.raises(SnapshotError):
            g.check({**snapshot_doc(), **extra})
        with pytest.raises(SnapshotError):
            g.check(
                snapshot_doc(), {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 1, **extra}
            )


def test_order_with_bad_numbers_is_exit_2(tmp_path, snap_file):
    o = tmp_path / "o.json"
    o.write_text(json.dumps({"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0}))
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", snap_file, "-o", str(o)))
    assert "o.json:1:" in err and "$.amount: expected a number > 0, got 0" in err


# --------------------------------------------------------------------------- semantics


def test_unknown_exchange_uses_the_generic_model_and_says_so(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(snapshot_doc(exchange="notanexchange")))
    r = run_cli("check", "-p", DEFAULT, "-s", str(p), "--json")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    d = json.loads(r.stdout)
    assert any("'notanexchange'" in n and "generic" in n and "approximate" in n for n in d["notes"])
    assert d["metrics"]["marginModel"] == "generic" and d["metrics"]["approximate"] is True


def test_missing_tiers_use_the_default_rate_or_deny(tmp_path):
    d = evaluate(load_policy(CORE), build_snapshot(snapshot_doc()), now_ms=NOW)
    assert {p["tierSource"] for p in d.to_dict()["metrics"]["positions"]} == {"default"}
    plugin = _write(
        tmp_path,
        "nodefault.py",
        "from riskguard import hookimpl\n"
        "from riskguard.margin.base import MarginModel\n"
        "@hookimpl\n"
        "def riskguard_margin_models(register):\n"
        "    register(MarginModel(name='nodefault', title='No default', source='test'))\n",
    )
    reg = build_registry((str(plugin),), load_entry_points=False)
    d = evaluate(
        load_policy(CORE, registry=reg), build_snapshot(snapshot_doc(exchange="nodefault"))
    )
    assert d.decision == "deny" and "INPUT_TIERS_MISSING" in {v.code for v in d.violations}


def test_missing_mark_price(tmp_path):
    doc = snapshot_doc()
    del doc["positions"][0]["markPrice"]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc, indent=2))
    err = cli_error(run_cli("check", "-p", DEFAULT, "-s", str(p)))
    assert "$.positions[0].markPrice: required: no markPrice on the position" in err
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if '"symbol": "BTC' in t)
    assert f"s.json:{line - 1}:" in err  # the position's mapping: where the key belongs
    # A Snapshot built in code skips validation: the engine fails closed.
    snap = Snapshot(100.0, (Position("X/USDT:USDT", "long", 1.0, 10.0),))
    d = evaluate(load_policy(CORE), snap, now_ms=NOW)
    assert d.decision == "deny" and d.violations[0].code == "INPUT_MARK_PRICE_MISSING"


def test_absurd_leverage_is_judged_not_trusted():
    doc = snapshot_doc(walletBalance=100.0)
    doc["positions"] = [
        {"symbol": "BTC/USDT:USDT", "side": "long", "contracts": 1, "entryPrice": 60000,
         "markPrice": 60000, "leverage": 10_000, "marginMode": "cross", "stopLossPrice": 59000}
    ]  # fmt: skip
    d = evaluate(load_policy(CORE), build_snapshot(doc), now_ms=NOW)
    pm = d.metrics.positions[0]
    assert d.decision == "deny"
    assert pm.liquidationPrice is not None and abs(pm.liquidationDistancePct) < 1.0
    order = build_order(
        {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 10, "leverage": 10_000}
    )
    d = evaluate(load_policy(CORE), build_snapshot(snapshot_doc()), order, now_ms=NOW)
    assert d.decision != "allow"


# --------------------------------------------------------------------------- policies


def test_conflicting_rules_warn_and_the_stricter_limit_wins(tmp_path):
    r = run_cli("validate", str(HOSTILE / "conflicting-rules.yaml"))
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "conflicting-rules.yaml:8: warning: rules 'all' and 'btc'" in r.stderr
    assert "stricter limit wins" in r.stderr
    policy = load_policy(HOSTILE / "conflicting-rules.yaml")
    order = build_order({"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.5})  # ~30 %
    d = evaluate(policy, build_snapshot(snapshot_doc()), order, now_ms=NOW)
    assert d.decision != "allow" and {v.rule for v in d.violations if v.blocking} == {"btc"}


def test_contradictory_params(snap_file):
    err = cli_error(
        run_cli("check", "-p", str(HOSTILE / "contradictory-params.yaml"), "-s", snap_file)
    )
    assert "contradictory-params.yaml:8:35: $.spec.rules[0].params.warnAt: warnAt (0.5)" in err


def test_unknown_rule_type(snap_file):
    err = cli_error(
        run_cli("check", "-p", str(HOSTILE / "unknown-rule-type.yaml"), "-s", snap_file)
    )
    assert "unknown-rule-type.yaml:7:13: $.spec.rules[0].type: unknown rule type" in err
    assert "did you mean 'margin_utilization'?" in err


def test_unreachable_match_warns(tmp_path):
    f = str(HOSTILE / "unreachable-match.yaml")
    r = run_cli("validate", f)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "unreachable-match.yaml:6: warning: rule 'btc-only'" in r.stderr
    assert "did you mean 'BTC/USDT:USDT'?" in r.stderr
    assert "unreachable-match.yaml:9: warning: rule 'nothing-left'" in r.stderr
    assert run_cli("validate", "--strict", f).returncode == 1
    # A rule type that declares the margin modes it judges: the other mode is unreachable.
    plugin = _write(
        tmp_path,
        "crossonly.py",
        "from riskguard import hookimpl\n"
        "from riskguard.rules.base import BaseRule, RuleType\n"
        "class R(BaseRule):\n"
        "    def evaluate(self, ctx): pass\n"
        "@hookimpl\n"
        "def riskguard_rule_types(register):\n"
        "    register(RuleType(name='crossonly', params={'type': 'object'}, compile=R,\n"
        "             description='x', codes={}, marginModes=('cross',)))\n",
    )
    reg = build_registry((str(plugin),), load_entry_points=False)
    doc = {**CORE, "spec": {"rules": [
        {"id": "c", "type": "crossonly", "match": {"marginMode": "isolated"}}]}}  # fmt: skip
    (w,) = load_policy(doc, registry=reg).warnings
    assert w.code == "unreachable_match" and "only judges cross positions" in w.message


def test_circular_extends(snap_file):
    err = cli_error(run_cli("check", "-p", str(HOSTILE / "extends-cycle-a.yaml"), "-s", snap_file))
    assert (
        "extends-cycle-a.yaml: $.spec.extends: extends cycle: extends-cycle-a.yaml -> "
        "extends-cycle-b.yaml -> extends-cycle-a.yaml" in err
    )


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"id": "a", "type": ["margin_utilization"]}, "$.spec.rules[0].type"),
        ({"id": "a", "type": "margin_utilization", "match": {"symbols": None}}, "$.spec.rules[0].match.symbols"),
        ({"id": "a", "type": "margin_utilization", "onViolation": None}, "$.spec.rules[0].onViolation"),
        ({"id": "a", "type": "margin_utilization", "params": {"max": float("nan")}}, "$.spec.rules[0].params.max"),
    ],
)  # fmt: skip
def test_malformed_rules_are_policy_errors(rule, path):
    with pytest.raises(PolicyError) as ei:
        load_policy({**CORE, "spec": {"rules": [rule]}})
    assert path in {p.path for p in ei.value.problems}


def test_malformed_rule_in_a_file_is_exit_2(tmp_path, snap_file):
    p = _write(
        tmp_path,
        "p.yaml",
        _yaml_policy("    - {id: a, type: margin_utilization, match: {symbols: }}\n"),
    )
    err = cli_error(run_cli("check", "-p", str(p), "-s", snap_file))
    assert "p.yaml:6:" in err and "$.spec.rules[0].match.symbols" in err


# --------------------------------------------------------------------------- plugins


def _garbage_policy(kind: str) -> dict:
    return {**CORE, "spec": {"rules": [
        *CORE["spec"]["rules"], {"id": "g", "type": "garbage", "params": {"kind": kind}}]}}  # fmt: skip


@pytest.fixture(scope="module")
def garbage_registry():
    return build_registry((str(HOSTILE / "plugin-garbage.py"),), load_entry_points=False)


def test_plugin_that_raises_denies_with_exit_3(tmp_path, snap_file):
    p = _write(tmp_path, "p.yaml", _yaml_policy("    - {id: boom, type: raises}\n"))
    r = run_cli(
        "check",
        "-p",
        str(p),
        "-s",
        snap_file,
        "--json",
        "--plugin",
        str(HOSTILE / "plugin-raises.py"),
    )
    cli_error(r, 3)
    d = json.loads(r.stdout)
    assert d["decision"] == "deny" and d["violations"][0]["code"] == "RULE_ERROR"
    assert "ZeroDivisionError: plugin bug" in d["errors"][0]["error"]


@pytest.mark.parametrize("kind", ["not-a-violation", "unknown-severity", "not-an-action", "exit"])
def test_plugin_returning_garbage_denies(kind, garbage_registry):
    policy = load_policy(_garbage_policy(kind), registry=garbage_registry)
    snap = build_snapshot(snapshot_doc())
    for order in (None, build_order({"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01})):
        d = evaluate(policy, snap, order, now_ms=NOW)
        assert d.decision == "deny" and "RULE_ERROR" in {v.code for v in d.violations}
        json.dumps(d.to_dict(), allow_nan=False)


def test_plugin_calling_sys_exit_does_not_end_check_with_0(tmp_path, snap_file):
    p = tmp_path / "p.json"
    p.write_text(json.dumps(_garbage_policy("exit")))
    r = run_cli(
        "check", "-p", str(p), "-s", snap_file, "--plugin", str(HOSTILE / "plugin-garbage.py")
    )
    cli_error(r, 3)
    assert "RULE_ERROR" in r.stdout


def test_plugin_garbage_amount_and_enricher(garbage_registry):
    policy = load_policy(_garbage_policy("bad-amount"), registry=garbage_registry)
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01}
    assert Guard(policy).max_order_amount(snapshot_doc(), order) == 0.0
    d = evaluate(policy, build_snapshot(snapshot_doc(account="garbage-enricher")), now_ms=NOW)
    assert d.decision == "deny" and d.violations[0].code == "ENRICH_ERROR"
    assert "returned list" in d.violations[0].message


def test_plugin_that_hangs_is_cut_by_the_guard_time_budget():
    reg = build_registry((str(HOSTILE / "plugin-hangs.py"),), load_entry_points=False)
    policy = load_policy({**CORE, "spec": {"rules": [{"id": "h", "type": "hangs"}]}}, registry=reg)
    release = reg.pm.get_plugin(str(HOSTILE / "plugin-hangs.py")).RELEASE
    try:
        with Guard(policy, time_budget_ms=200) as g:
            d = g.check(snapshot_doc(), {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01})
            assert d.decision == "deny"
            assert d.violations[0].code == "ENGINE_TIME_BUDGET_EXCEEDED"
            assert d.actions[0].type == "block_order"
    finally:
        release.set()


def test_margin_model_plugin_that_raises_denies(tmp_path):
    plugin = _write(
        tmp_path,
        "badmodel.py",
        "from riskguard import hookimpl\n"
        "from riskguard.margin.base import MarginModel\n"
        "class Bad(MarginModel):\n"
        "    def liquidation_price(self, *a, **k):\n"
        "        raise ZeroDivisionError('model bug')\n"
        "@hookimpl\n"
        "def riskguard_margin_models(register):\n"
        "    register(Bad(name='boom', title='Boom', source='t', defaultMaintenanceMarginRate=0.01))\n",
    )
    reg = build_registry((str(plugin),), load_entry_points=False)
    d = evaluate(load_policy(CORE, registry=reg), build_snapshot(snapshot_doc(exchange="boom")))
    assert d.decision == "deny" and d.violations[0].code == "METRICS_ERROR"
    assert "ZeroDivisionError: model bug" in d.violations[0].message


def test_overflowing_figures_never_reach_the_decision():
    doc = snapshot_doc()
    order = build_order({"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 1e308})
    d = evaluate(load_policy(DEFAULT), build_snapshot(doc), order, now_ms=NOW)
    assert d.decision == "deny"
    json.dumps(d.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- secrets

SECRETS = (
    "AKIA-TOP-1111",
    "S3CRET-TOP-2222",
    "PW-TOP-3333",
    "PP-NESTED-4444",
    "TOK-NESTED-5555",
    "S3CRET-POS-6666",
    "AKIA-POSINFO-7777",
    "AKIA-ORDER-8888",
    "S3CRET-ORDER-9999",
)


def _secret_inputs(tmp_path) -> tuple[Path, Path]:
    doc = snapshot_doc(
        apiKey=SECRETS[0],
        secret=SECRETS[1],
        password=SECRETS[2],
        exchangeConfig={"passphrase": SECRETS[3], "token": SECRETS[4]},
    )
    doc["positions"][0]["secret"] = SECRETS[5]
    doc["positions"][0]["info"] = {"apiKey": SECRETS[6], "positionAmt": "0.05"}
    s = tmp_path / "snap.json"
    s.write_text(json.dumps(doc))
    o = tmp_path / "order.json"
    o.write_text(
        json.dumps(
            {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01,
             "apiKey": SECRETS[7], "params": {"secret": SECRETS[8]}}
        )
    )  # fmt: skip
    return s, o


def _no_secret(*texts: str) -> None:
    for t in texts:
        leaked = [s for s in SECRETS if s in t]
        assert not leaked, leaked


def test_secrets_never_reach_decisions_logs_or_reports(tmp_path):
    s, o = _secret_inputs(tmp_path)
    log = tmp_path / "audit.jsonl"
    outs = []
    for args in (
        ("check", "-p", DEFAULT, "-s", str(s), "-o", str(o), "--json", "--audit-log", str(log)),
        ("check", "-p", DEFAULT, "-s", str(s), "-o", str(o)),
        ("explain", "-p", DEFAULT, "-s", str(s), "-o", str(o), "--json"),
        ("audit", "-p", DEFAULT, str(s), "--out", str(tmp_path / "out.jsonl"), "--json", "-w", "1"),
    ):
        r = run_cli(*args)
        assert r.returncode in (0, 1), r.stderr
        outs += [r.stdout, r.stderr]
    assert '"order"' in outs[0] and "AKIA" not in outs[0]  # the order is echoed, redacted
    _no_secret(*outs, log.read_text(), (tmp_path / "out.jsonl").read_text())
    assert run_cli("verify-log", str(log)).returncode == 0


def test_secrets_never_reach_the_guard_audit_log(tmp_path):
    s, o = _secret_inputs(tmp_path)
    log = tmp_path / "guard.jsonl"
    with Guard.from_file(DEFAULT, audit_log=log) as g:
        d = g.check(json.loads(s.read_text()), json.loads(o.read_text()))
        g.flush()
    _no_secret(json.dumps(d.to_dict()), log.read_text())


def test_secrets_never_reach_error_messages(tmp_path):
    cfg = str(HOSTILE / "ccxt-config.json")
    s, _order = _secret_inputs(tmp_path)
    err1 = cli_error(run_cli("check", "-p", cfg, "-s", str(s)))
    assert "ccxt-config.json:2:13: $.apiKey: unknown field 'apiKey'" in err1
    err2 = cli_error(run_cli("check", "-p", DEFAULT, "-s", cfg))
    assert "ccxt-config.json:1:1: $.walletBalance: required" in err2
    bad = json.loads(s.read_text())
    bad["walletBalance"] = "lots"
    jl = tmp_path / "bad.jsonl"
    jl.write_text(json.dumps(bad) + "\n")
    r = run_cli("audit", "-p", DEFAULT, str(jl), "-w", "1", "--strict")
    err3 = cli_error(r)
    assert "bad.jsonl:1" in err3 and "$.walletBalance" in err3
    _no_secret(err1, err2, err3, r.stdout, "AKIA-HOSTILE-FIXTURE-KEY")
    assert "AKIA-HOSTILE" not in err1 + err2 and "S3CRET-HOSTILE" not in err1 + err2


# --------------------------------------------------------------------------- helpers


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _yaml_policy(rules: str) -> str:
    return "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: t}\nspec:\n  rules:\n" + rules


def test_the_table_names_only_tests_that_exist():
    """docs/SECURITY.md: every test a row names is in this module, and every test here
    (but this one) is named by a row."""
    import re

    doc = (ROOT / "docs" / "SECURITY.md").read_text()
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", doc))
    here = {n for n in globals() if n.startswith("test_")} - {
        "test_the_table_names_only_tests_that_exist"
    }
    assert named <= here, named - here
    assert here <= named, here - named
    assert f"tests/{os.path.basename(__file__)}" in doc
