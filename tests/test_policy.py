"""Policy loading: composed schema, locations, suggestions, extends, cross-field checks."""

from __future__ import annotations

import json
import textwrap

import pytest

from riskguard.engine.policy import load_policy, policy_schema
from riskguard.errors import PolicyError, RiskguardError

from .conftest import POLICIES, ROOT, run_cli

HEAD = 'apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: p, version: "1"}\nspec:\n'


def write(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(HEAD + textwrap.indent(textwrap.dedent(body), "  "))
    return p


def problems(exc):
    return [(p.line, p.column, p.path, p.message) for p in exc.problems]


def test_default_policy_loads_with_the_numbers_of_practice():
    p = load_policy(POLICIES / "default.yaml")
    by_id = {s.id: s for s in p.specs}
    assert by_id["margin-utilization"].params["max"] == 0.35
    assert by_id["margin-utilization"].params["warnAt"] == 0.30
    assert by_id["stop-before-liquidation"].params["required"] is True
    assert by_id["isolate-on-volatility"].params["events"]
    assert p.mode == "enforce" and p.digest.startswith("sha256:")


def test_typo_in_rule_type_gives_line_column_and_suggestion(tmp_path):
    f = write(
        tmp_path,
        "p.yaml",
        """
      rules:
        - id: a
          type: margin_utilisation
    """,
    )
    with pytest.raises(PolicyError) as ei:
        load_policy(f)
    ((line, col, path, msg),) = problems(ei.value)
    assert (line, col, path) == (8, 13, "$.spec.rules[0].type")
    assert "did you mean 'margin_utilization'" in msg


def test_all_errors_collected(tmp_path):
    f = write(
        tmp_path,
        "p.yaml",
        """
      rules:
        - id: a
          type: margin_utilization
          params: {maxx: 0.3}
        - id: b
          type: stop_before_liquidation
          params: {bufferFraction: 2}
        - id: c
          type: margin_utilization
          severity: fatal
    """,
    )
    with pytest.raises(PolicyError) as ei:
        load_policy(f)
    paths = {p[2] for p in problems(ei.value)}
    assert {
        "$.spec.rules[0].params.maxx",
        "$.spec.rules[1].params.bufferFraction",
        "$.spec.rules[2].severity",
    } <= paths
    assert any("did you mean 'max'" in p[3] for p in problems(ei.value))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("{max: 0.3, warnAt: 0.4}", "warnAt (0.4) is above max (0.3)"),
        ("{max: 1.5}", "out of range"),
        ("{max: 0}", "out of range"),
    ],
)
def test_cross_field_and_ratio_checks(tmp_path, params, words):
    f = write(
        tmp_path,
        "p.yaml",
        f"""
      rules:
        - id: a
          type: margin_utilization
          params: {params}
    """,
    )
    with pytest.raises(PolicyError) as ei:
        load_policy(f)
    assert any(words in m for *_x, m in problems(ei.value))
    assert all(p.line for p in ei.value.problems)


def test_duplicate_ids(tmp_path):
    f = write(
        tmp_path,
        "p.yaml",
        """
      rules:
        - {id: a, type: margin_utilization}
        - {id: a, type: stop_before_liquidation}
    """,
    )
    with pytest.raises(PolicyError, match="duplicate rule id 'a'"):
        load_policy(f)


def test_duplicate_yaml_keys_are_refused(tmp_path):
    f = write(
        tmp_path,
        "p.yaml",
        """
      mode: enforce
      mode: monitor
    """,
    )
    with pytest.raises(RiskguardError, match="duplicate key 'mode'"):
        load_policy(f)


def test_extends_overrides_by_id_and_detects_cycles(tmp_path):
    base = write(
        tmp_path,
        "base.yaml",
        """
      rules:
        - {id: mu, type: margin_utilization, params: {max: 0.35, warnAt: 0.3}}
        - {id: sl, type: stop_before_liquidation}
    """,
    )
    child = write(
        tmp_path,
        "child.yaml",
        f"""
      extends: [{base.name}]
      rules:
        - {{id: mu, type: margin_utilization, params: {{max: 0.25, warnAt: 0.2}}}}
        - {{id: sl, type: stop_before_liquidation, enabled: false}}
    """,
    )
    p = load_policy(child)
    assert [s.id for s in p.specs] == ["mu"] and p.specs[0].params["max"] == 0.25
    a = write(tmp_path, "a.yaml", "  extends: [b.yaml]\n  rules: []\n")
    write(tmp_path, "b.yaml", "  extends: [a.yaml]\n  rules: []\n")
    with pytest.raises(PolicyError, match=r"extends cycle: a\.yaml -> b\.yaml -> a\.yaml"):
        load_policy(a)


def test_overlapping_rules_with_different_limits_warn_which_wins(tmp_path):
    f = write(
        tmp_path,
        "p.yaml",
        """
      rules:
        - {id: all, type: margin_utilization, params: {max: 0.35, warnAt: 0.3}}
        - {id: btc, type: margin_utilization, params: {max: 0.2, warnAt: 0.1}, match: {symbols: ["BTC/*"]}}
        - {id: eth, type: margin_utilization, params: {max: 0.2, warnAt: 0.1},
           match: {symbols: ["ETH/*"], marginMode: isolated}}
    """,
    )
    p = load_policy(f)
    msgs = [w.message for w in p.warnings]
    assert any("'all' and 'btc'" in m and "stricter limit wins" in m for m in msgs)
    assert not any("'btc' and 'eth'" in m for m in msgs)


def test_alias_bomb_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines))
    with pytest.raises(RiskguardError, match="alias"):
        load_policy(p)


def test_python_tags_refused(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RiskguardError) as ei:
        load_policy(p)
    assert ei.value.problems[0].line == 1


def test_static_schema_file_matches_composed_builtins():
    """schemas/policy.schema.json is what `riskguard schema policy` prints for the built-ins."""
    from riskguard.engine.plugins import build_registry

    reg = build_registry((), load_entry_points=False)
    on_disk = json.loads((ROOT / "schemas" / "policy.schema.json").read_text())
    assert on_disk == policy_schema(reg), (
        "regenerate: riskguard schema policy > schemas/policy.schema.json"
    )


def test_validate_cli_text_and_json(tmp_path):
    f = write(
        tmp_path,
        "p.yaml",
        """
      rules:
        - id: a
          type: stop_before_liquidaton
    """,
    )
    r = run_cli("validate", str(f))
    assert r.returncode == 1 and f"{f}:8:13: error: unknown rule type" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("validate", str(f), "--format", "json")
    err = json.loads(r.stdout)["errors"][0]
    assert err["location"] == {"file": str(f), "line": 8, "column": 13}
    assert err["path"] == "$.spec.rules[0].type" and err["code"] == "unknown_rule_type"
    r = run_cli("validate", str(POLICIES / "default.yaml"))
    assert r.returncode == 0, r.stderr


def test_schema_command_prints_each_schema():
    for name in ("policy", "snapshot", "order", "decision"):
        r = run_cli("schema", name)
        assert r.returncode == 0 and json.loads(r.stdout)["$schema"].endswith("2020-12/schema")


def test_merged_document_reloads_to_the_same_policy(tmp_path):
    """Workers (process pool, Dask) rebuild the policy from its merged document: it must load."""
    f = write(
        tmp_path,
        "p.yaml",
        """
      rules:
        - {id: a, type: margin_utilization}
        - {id: b, type: stop_before_liquidation, onViolation: [alert]}
    """,
    )
    p = load_policy(f)
    again = load_policy(p.document)
    assert again.digest == p.digest
    assert [s.onViolation for s in again.specs] == [None, ("alert",)]


@pytest.mark.parametrize(
    ("rtype", "mode"),
    [
        ("isolate_on_volatility", "isolated"),
        ("cross_stress", "isolated"),
        ("promote_to_cross", "cross"),
    ],
)
def test_match_on_a_margin_mode_the_rule_never_judges_warns(tmp_path, rtype, mode):
    f = write(
        tmp_path,
        "p.yaml",
        f"""
      rules:
        - {{id: r, type: {rtype}, match: {{marginMode: {mode}}}}}
    """,
    )
    p = load_policy(f)
    assert any("r" in w.message and mode in w.message for w in p.warnings), [
        w.message for w in p.warnings
    ]
