"""``riskguard test``: YAML policy unit tests through the CLI and the API."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.model.snapshot import load_order, load_snapshot
from riskguard.policytools.testing import (
    check_expectations,
    coverage,
    load_test_file,
    matches,
    run_tests,
    substitute,
)

from .conftest import FIXTURES, POLICIES, run_cli

PT = FIXTURES / "policytests"
MINI = PT / "mini.yaml"
COUNTER_PLUGIN = str(PT / "order_counter.py")


def cli(*args: str, **kw):
    """``riskguard test ARGS`` at a fixed width, so long lines never wrap in assertions."""
    return run_cli("test", *args, env={"COLUMNS": "200"}, **kw)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def suite(tmp_path: Path, cases: str, *, policy: str | None = None, name="t.tests.yaml") -> Path:
    """A test file in tmp_path for the mini policy, with the given `cases:` block."""
    head = textwrap.dedent(
        f"""\
        apiVersion: riskguard/v1
        kind: PolicyTest
        policy: {policy or MINI}
        cases:
        """
    )
    p = tmp_path / name
    p.write_text(head + textwrap.indent(textwrap.dedent(cases), "  "))
    return p


CALM = str(PT / "calm.json")


# --------------------------------------------------------------------------- passing suites


def test_default_policy_suite_passes_and_covers_every_rule():
    r = cli("policies/default.yaml", "--coverage")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL 0" in r.stdout and "PASS " in r.stdout
    assert "every rule is both violated and passed by some case" in r.stdout
    policy = load_policy(POLICIES / "default.yaml")
    for spec in policy.specs:
        assert spec.id in r.stdout


def test_fixture_suite_reports_each_case_and_table_row_by_name():
    r = cli(str(MINI), "-z")  # its one skipped case would exit 1 without -z
    assert r.returncode == 0, r.stdout + r.stderr
    for name in (
        "calm account from a file",
        "big order from files is resized",
        "order size[small]",
        "order size[large]",
        "order size[#3]",  # a row without a name is numbered
        "order size from a file[tiny]",
        "order size from a file[too big]",
    ):
        assert f"PASS  {name}" in r.stdout, name
    assert "SKIP  not written yet (needs a snapshot with leverage tiers)" in r.stdout
    assert "PASS 8  FAIL 0  SKIP 1  — 9 cases in 1 file" in r.stdout


def test_directory_is_searched_recursively(tmp_path):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    suite(sub, "- {name: deep case, snapshot: " + CALM + ", expect: {decision: allow}}\n")
    r = cli(str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "PASS  deep case" in r.stdout


def test_policy_next_to_its_tests_is_inferred(tmp_path):
    (tmp_path / "p.yaml").write_text(MINI.read_text())
    write(
        tmp_path,
        "p.tests.yaml",
        f"""\
        apiVersion: riskguard/v1
        kind: PolicyTest
        cases:
          - {{name: inferred policy, snapshot: {CALM}, expect: {{decision: allow}}}}
        """,
    )
    r = cli(str(tmp_path / "p.yaml"))
    assert r.returncode == 0, r.stderr
    assert "policy mini" in r.stdout and "PASS  inferred policy" in r.stdout


# --------------------------------------------------------------------------- failing suites


def test_wrong_expectation_fails_with_a_diff_and_exit_1():
    wrong = PT / "broken" / "wrong.tests.yaml"
    r = cli(str(wrong))
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "PASS  calm account is allowed" in out
    assert f"FAIL  big order wrongly expected to be denied  {wrong}:10:5" in out
    assert "- expected: deny" in out and "+ actual:   resize" in out
    assert (
        "- expected: STOP_LOSS_MISSING" in out
        and "+ actual:   MARGIN_UTILIZATION_EXCEEDS_MAX" in out
    )
    assert "present but must not be: margin-utilization" in out
    assert "- expected: {type: set_stop_loss}" in out and "resize_order[margin-utilization]" in out
    assert "- expected: 0.5" in out and "+ actual:   0.48032786" in out
    assert "PASS 1  FAIL 1" in out


def test_failing_step_names_the_step(tmp_path):
    p = write(
        tmp_path,
        "counter.tests.yaml",
        f"""\
        apiVersion: riskguard/v1
        kind: PolicyTest
        policy: {PT / "counter.yaml"}
        cases:
          - name: rate
            snapshot: {CALM}
            order: {{symbol: SOL/USDT:USDT, side: buy, amount: 1, stopLossPrice: 149}}
            steps:
              - {{expect: {{decision: allow}}}}
              - {{now: "+1s", expect: {{decision: allow}}}}
              - {{now: "+1s", expect: {{decision: allow}}}}
        """,
    )
    r = cli(str(p), "--plugin", COUNTER_PLUGIN)
    assert r.returncode == 1
    assert "step 3: decision" in r.stdout and "+ actual:   deny" in r.stdout
    assert "step 1" not in r.stdout and "step 2" not in r.stdout


def test_steps_share_state_and_the_clock_is_injected():
    r = cli(str(PT / "counter.tests.yaml"), "--plugin", COUNTER_PLUGIN, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    first = doc["results"][0]
    assert first["status"] == "pass"
    assert [d["decision"] for d in first["decisions"]] == [
        "allow",
        "allow",
        "deny",
        "allow",
        "allow",
        "allow",
        "deny",
    ]
    assert doc["results"][1]["status"] == "pass"  # a fresh guard per case
    halted = doc["results"][2]  # tradingState flips the guard's kill switch
    assert halted["status"] == "pass"
    assert [d["decision"] for d in halted["decisions"]] == ["deny", "deny", "allow"]


def test_empty_list_means_none_at_all(tmp_path):
    p = suite(
        tmp_path,
        f"""\
        - name: expects no violations on a breach
          snapshot: {{extends: {CALM}, set: {{"positions[1].stopLossPrice": null}}}}
          expect: {{violations: []}}
        """,
    )
    r = cli(str(p))
    assert r.returncode == 1
    assert "expected no violations at all" in r.stdout
    assert "stop-before-liquidation STOP_LOSS_MISSING (error, ETH/USDT:USDT)" in r.stdout


# --------------------------------------------------------------------------- options


def test_coverage_lists_rules_no_case_violated():
    r = cli(str(MINI), "--coverage", "--exit-zero-on-skipped")
    assert r.returncode == 0
    assert "coverage of policy mini: 2/3 rules violated by some case" in r.stdout
    assert "not exercised (no case violates): isolate-on-volatility" in r.stdout


def test_coverage_json_reports_violated_and_passed_cases():
    r = cli(str(MINI), "--coverage", "--format", "json")
    cov = json.loads(r.stdout)["coverage"]
    assert len(cov) == 1 and cov[0]["name"] == "mini"
    rules = {x["id"]: x for x in cov[0]["rules"]}
    assert cov[0]["neverViolated"] == ["isolate-on-volatility"]
    assert "removing a stop from a file snapshot" in rules["stop-before-liquidation"]["violatedBy"]
    assert "calm account from a file" in rules["stop-before-liquidation"]["passedBy"]
    assert "order size[large]" in rules["margin-utilization"]["violatedBy"]
    # isolate-on-volatility looked at the BTC cross position and held
    assert rules["isolate-on-volatility"]["passedBy"]
    assert cov[0]["covered"] == 2 and cov[0]["total"] == 3


def test_json_format_has_summary_locations_and_failures():
    r = cli(str(PT / "broken" / "wrong.tests.yaml"), "--format", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["summary"] == {
        "total": 2,
        "passed": 1,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "untested": 0,
        "files": 1,
    }
    bad = doc["results"][1]
    assert bad["status"] == "fail" and bad["location"]["line"] == 10
    checks = {f["check"]: f for f in bad["failures"]}
    assert set(checks) == {"decision", "codes", "absent", "actions", "maxAllowedAmount"}
    assert checks["decision"] == {
        "check": "decision",
        "expected": "deny",
        "actual": "resize",
        "message": "the decision differs",
        "step": None,
    }
    assert bad["decisions"][0]["violations"][0]["code"] == "MARGIN_UTILIZATION_EXCEEDS_MAX"


def test_run_filter_selects_cases_by_regex():
    r = cli(str(MINI), "-r", r"order size\[")
    assert r.returncode == 0
    assert "order size[small]" in r.stdout and "calm account" not in r.stdout
    assert "3 cases" in r.stdout


def test_bad_run_regex_is_usage_error():
    r = cli(str(MINI), "-r", "(")
    assert r.returncode == 2 and "not a valid regular expression" in r.stderr


def test_fail_on_empty(tmp_path):
    r = cli(str(tmp_path))
    assert r.returncode == 0 and "no *.tests.yaml" in r.stderr
    r = cli(str(tmp_path), "--fail-on-empty")
    assert r.returncode == 1
    r = cli(str(MINI), "-r", "no such case", "--fail-on-empty")
    assert r.returncode == 1


def test_quiet_shows_only_failures():
    r = cli(str(PT / "broken" / "wrong.tests.yaml"), "-q")
    assert "calm account is allowed" not in r.stdout
    assert "FAIL  big order wrongly expected to be denied" in r.stdout


def test_help_explains_discovery_and_exit_codes():
    r = cli("--help")
    assert r.returncode == 0
    for words in ("--coverage", "--run", "--fail-on-empty", "--format", "exit codes", "example"):
        assert words in r.stdout


# --------------------------------------------------------------------------- bad input: exit 2


@pytest.mark.parametrize(
    ("cases", "line", "col", "message"),
    [
        (
            f"- name: typo\n  snapshot: {CALM}\n  expct: {{decision: allow}}\n",
            7,
            12,
            "unknown field 'expct'; did you mean 'expect'?",
        ),
        (
            f"- name: bad decision\n  snapshot: {CALM}\n  expect: {{decision: denied}}\n",
            7,
            24,
            "'denied' is not one of allow, resize, deny",
        ),
        (
            f"- name: rule typo\n  snapshot: {CALM}\n  expect:\n    absent: [margin-utilisation]\n",
            8,
            16,
            "did you mean 'margin-utilization'?",
        ),
        (
            f"- name: code typo\n  snapshot: {CALM}\n  expect:\n    codes: [STOP_LOSS_MISING]\n",
            8,
            15,
            "unknown reason code 'STOP_LOSS_MISING'; did you mean 'STOP_LOSS_MISSING'?",
        ),
        (
            "- name: missing file\n  snapshot: nope.json\n  expect: {decision: allow}\n",
            6,
            15,
            "snapshot file not found",
        ),
        (
            "- name: inline snapshot\n  snapshot: {walletBalance: 100, positions: [{symbol: X, side: long, "
            "contracts: -1, entryPrice: 1, markPrice: 1}]}\n  expect: {decision: allow}\n",
            6,
            83,
            "expected a number > 0, got -1",
        ),
        (
            f"- name: no expect\n  snapshot: {CALM}\n",
            5,
            5,
            "missing required field 'expect'",
        ),
        (
            f"- name: rows\n  template:\n    snapshot: {CALM}\n    expect: {{decision: '{{{{outcome}}}}'}}\n"
            "  table:\n    - {name: r1, decision: allow}\n",
            7,
            7,
            "unknown variable(s) {{outcome}}",
        ),
        (
            f"- name: bad set\n  snapshot: {{extends: {CALM}, set: {{'positions[7].stopLossPrice': 1}}}}\n"
            "  expect: {decision: allow}\n",
            6,
            # the value's column depends on where the checkout lives (CALM is an absolute path)
            len(f"    snapshot: {{extends: {CALM}, set: {{'positions[7].stopLossPrice': ") + 1,
            "index [7] does not exist",
        ),
        (
            f"- name: twice\n  snapshot: {CALM}\n  expect: {{decision: allow}}\n"
            f"- name: twice\n  snapshot: {CALM}\n  expect: {{decision: allow}}\n",
            8,
            11,
            "duplicate case name 'twice'",
        ),
        (
            f"- name: bad now\n  snapshot: {CALM}\n  now: yesterday\n  expect: {{decision: allow}}\n",
            7,
            10,
            "expected ISO-8601 time, epoch milliseconds or an offset",
        ),
        (
            f"- name: steps and expect\n  snapshot: {CALM}\n  expect: {{decision: allow}}\n"
            "  steps: [{expect: {decision: allow}}]\n",
            7,
            13,
            "with `steps`, each step has its own `expect`",
        ),
    ],
    ids=[
        "unknown-field",
        "bad-enum",
        "unknown-rule",
        "unknown-code",
        "missing-file",
        "inline-snapshot",
        "no-expect",
        "table-var",
        "bad-set-path",
        "duplicate-name",
        "bad-now",
        "steps-and-expect",
    ],
)
def test_bad_test_file_problems_are_located(tmp_path, cases, line, col, message):
    p = suite(tmp_path, cases)
    s = run_tests([str(p)])
    assert s.exit_code == 2 and not s.results
    found = [q for q in s.problems if message in q.message]
    assert found, [str(q) for q in s.problems]
    assert (found[0].file, found[0].line, found[0].column) == (str(p), line, col)
    assert found[0].path.startswith("$.cases[")


def test_bad_test_file_is_exit_2_with_file_line_col(tmp_path):
    p = suite(tmp_path, f"- name: typo\n  snapshot: {CALM}\n  expct: {{decision: allow}}\n")
    r = cli(str(p))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        f"{p}:7:12: error: unknown field 'expct'; did you mean 'expect'? Allowed: name," in r.stderr
    )
    assert "(at $.cases[0].expct)" in r.stderr


def test_bad_yaml_is_located(tmp_path):
    p = write(tmp_path, "x.tests.yaml", "apiVersion: riskguard/v1\ncases: [\n")
    r = cli(str(p))
    assert r.returncode == 2 and f"{p}:3:1" in r.stderr and "not valid YAML" in r.stderr


def test_wrong_kind_and_missing_policy(tmp_path):
    p = write(
        tmp_path,
        "x.tests.yaml",
        "apiVersion: riskguard/v1\nkind: Policy\npolicy: none.yaml\ncases: []\n",
    )
    r = cli(str(p))
    assert r.returncode == 2
    assert "expected kind 'PolicyTest', got 'Policy'" in r.stderr
    assert "policy not found" in r.stderr and f"{p}:3:9" in r.stderr


def test_policy_that_does_not_load_is_exit_2_with_its_errors(tmp_path):
    bad = write(
        tmp_path,
        "bad.yaml",
        """\
        apiVersion: riskguard/v1
        kind: Policy
        metadata: {name: bad}
        spec:
          rules:
            - {id: x, type: margin_utilisation}
        """,
    )
    p = suite(
        tmp_path, f"- {{name: a, snapshot: {CALM}, expect: {{decision: allow}}}}\n", policy=bad
    )
    r = cli(str(p))
    assert r.returncode == 2
    assert "the policy under test does not load" in r.stderr
    assert f"{bad}:6:" in r.stderr and "unknown rule type" in r.stderr


def test_missing_path_is_exit_2():
    r = cli("no/such/dir")
    assert r.returncode == 2 and "no such file or directory" in r.stderr


def test_one_bad_file_does_not_hide_the_others(tmp_path):
    suite(tmp_path, f"- {{name: good, snapshot: {CALM}, expect: {{decision: allow}}}}\n")
    suite(
        tmp_path,
        f"- {{name: bad, snapshot: {CALM}, expect: {{decision: nope}}}}\n",
        name="u.tests.yaml",
    )
    r = cli(str(tmp_path))
    assert r.returncode == 2
    assert "PASS  good" in r.stdout and "'nope' is not one of" in r.stderr


# --------------------------------------------------------------------------- API


@pytest.fixture(scope="module")
def resized():
    """A real resize decision of the mini policy: 0.6 BTC on the calm fixture."""
    policy = load_policy(MINI)
    return evaluate(
        policy,
        load_snapshot(PT / "calm.json"),
        load_order(PT / "buy-btc.json"),
        now_ms=0,
    )


@pytest.mark.parametrize(
    ("expect", "failing"),
    [
        ({"decision": "resize"}, []),
        ({"decision": "allow"}, ["decision"]),
        ({"violations": ["margin-utilization"]}, []),
        ({"violations": ["stop-before-liquidation"]}, ["violations"]),
        ({"violations": [{"rule": "margin-utilization", "severity": "warning"}]}, ["violations"]),
        ({"violations": [{"code": "MARGIN_UTILIZATION_EXCEEDS_MAX", "limit": 0.35}]}, []),
        ({"violations": [{"message": "above the 35.0% limit"}]}, []),
        ({"violations": [{"observed": {"min": 0.5}}]}, ["violations"]),
        ({"codes": ["MARGIN_UTILIZATION_EXCEEDS_MAX"]}, []),
        ({"codes": []}, ["codes"]),
        ({"absent": ["STOP_LOSS_MISSING", "stop-before-liquidation"]}, []),
        ({"absent": ["MARGIN_UTILIZATION_EXCEEDS_MAX"]}, ["absent"]),
        ({"actions": ["resize_order", {"type": "alert", "severity": "error"}]}, []),
        ({"actions": [{"type": "resize_order", "requested": 0.6}]}, []),
        ({"actions": [{"type": "resize_order", "amount": 0.5}]}, ["actions"]),
        ({"actions": []}, ["actions"]),
        ({"absentActions": ["block_order"]}, []),
        ({"absentActions": [{"type": "resize_order"}]}, ["absentActions"]),
        ({"maxAllowedAmount": {"approx": 0.48, "rel": 0.01}}, []),
        ({"maxAllowedAmount": {"approx": 0.48}}, ["maxAllowedAmount"]),
        ({"maxAllowedAmount": {"min": 0.4, "max": 0.5}}, []),
        ({"maxAllowedAmount": None}, ["maxAllowedAmount"]),
        ({"wouldDecide": "deny"}, ["wouldDecide"]),
    ],
)
def test_check_expectations(resized, expect, failing):
    got = [m.check for m in check_expectations(expect, resized)]
    assert got == failing


def test_matches_is_a_subset_match_with_numeric_tolerance():
    assert matches(
        {"a": 1, "b": {"c": [2]}}, {"a": 1.0000000001, "b": {"c": [3, 2], "d": 0}, "e": 1}
    )
    assert not matches({"a": True}, {"a": 1})  # a flag is not a number
    assert not matches({"a": 1}, {"b": 1})
    assert matches({"a": None}, {})  # absent and null read the same
    assert matches({"x": {"min": 1, "max": 2}}, {"x": 1.5})
    assert not matches({"x": {"min": 1, "max": 2}}, {"x": 2.5})


def test_substitute_whole_values_and_text():
    row = {"n": 3, "s": None, "m": {"k": [1]}}
    missing: set[str] = set()
    out = substitute(
        {"a": "{{n}}", "b": "x{{n}}y", "c": ["{{ m }}"], "{{n}}": "{{s}}"}, row, missing
    )
    assert out == {"a": 3, "b": "x3y", "c": [{"k": [1]}], "3": None}
    assert not missing
    substitute("{{nope}} and {{n}}", row, missing)
    assert missing == {"nope"}


def test_api_run_tests_and_coverage():
    s = run_tests([str(MINI)])
    assert s.exit_code == 0 and s.summary()["passed"] == 8 and s.summary()["skipped"] == 1
    cov = coverage(s)
    assert cov[0]["neverViolated"] == ["isolate-on-volatility"]
    tf = load_test_file(PT / "mini.tests.yaml")
    assert [c.name for c in tf.cases][:2] == [
        "calm account from a file",
        "big order from files is resized",
    ]
    assert tf.cases[3].row == {"name": "small", "amount": 0.1, "decision": "allow"}
    assert tf.cases[0].line == 6  # reported at the case's own line


# --------------------------------------------------------------------------- what was skipped


def test_a_skipped_case_is_reported_and_fails_the_run_unless_z():
    r = cli(str(MINI))
    assert r.returncode == 1, r.stdout + r.stderr  # every other case passes
    assert "SKIP " in r.stdout and "FAIL 0" in r.stdout and "SKIP 1" in r.stdout
    assert cli(str(MINI), "-z").returncode == 0


def test_a_policy_without_tests_is_named_as_skipped(tmp_path):
    (tmp_path / "tested.yaml").write_text(MINI.read_text())
    (tmp_path / "tested.tests.yaml").write_text(
        (PT / "mini.tests.yaml").read_text().replace("policy: mini.yaml", "policy: tested.yaml")
    )
    (tmp_path / "lonely.yaml").write_text(MINI.read_text())
    (tmp_path / "not-a-policy.yaml").write_text("- {name: row, amount: 1}\n")
    for rel in ("buy-btc.json", "calm.json", "amounts.yaml"):
        (tmp_path / rel).write_text((PT / rel).read_text())
    r = cli(str(tmp_path), "-z")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "lonely.yaml: no tests (expected lonely.tests.yaml beside it)" in r.stdout
    assert "UNTESTED 1" in r.stdout
    assert "tested.yaml: no tests" not in r.stdout and "not-a-policy" not in r.stdout
    assert cli(str(tmp_path)).returncode == 1
    doc = json.loads(cli(str(tmp_path), "--format", "json").stdout)
    assert doc["summary"]["untested"] == 1 and doc["untested"] == [str(tmp_path / "lonely.yaml")]
    r = cli(str(tmp_path / "lonely.yaml"))
    assert r.returncode == 1 and "lonely.yaml: no tests" in r.stdout


def test_every_preset_has_a_passing_tests_file():
    """policies/README.md promises `<name>.tests.yaml` beside every preset."""
    presets = sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".tests.yaml"))
    assert len(presets) >= 5
    for p in presets:
        assert p.with_name(p.stem + ".tests.yaml").is_file(), p.name
    r = cli(str(POLICIES), "--coverage")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "UNTESTED" not in r.stdout and "SKIP" not in r.stdout
    assert "not exercised" not in r.stdout  # every rule of every preset is violated somewhere
