"""The plugin system: every hook tested and documented, registration checks, loading controls."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from riskguard import hookspecs
from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import build_registry, clear_cache, get_registry
from riskguard.engine.policy import load_policy
from riskguard.errors import PluginError
from riskguard.model.snapshot import build_snapshot

from .conftest import ROOT, run_cli, snapshot_doc

HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("riskguard_"))
DOCS = (ROOT / "docs" / "plugins.md").read_text()


def test_hooks_discovered():
    assert set(HOOKS) == {
        "riskguard_rule_types",
        "riskguard_margin_models",
        "riskguard_enrich_snapshot",
        "riskguard_action_sinks",
        "riskguard_snapshot_sources",
    }


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert f"test_hook_{hook}" in globals(), f"write test_hook_{hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example(hook):
    section = re.search(rf"^### {hook}\n(.*?)(?=^### |\Z)", DOCS, re.S | re.M)
    assert section, f"docs/plugins.md needs a '### {hook}' section"
    assert f"def {hook}(" in section.group(1), (
        "the section needs a code example implementing the hook"
    )
    spec = getattr(hookspecs, hook)
    assert spec.__doc__ and "Called" in spec.__doc__, (
        "hookspec docstring must say when it is called"
    )


def _plugin_file(tmp_path, body: str, name: str = "plug.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return str(p)


def _policy(rules):
    return {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "t", "version": "1"},
        "spec": {"rules": rules},
    }


def test_hook_riskguard_rule_types(tmp_path):
    """The tutorial plugin registers a rule type whose schema and codes flow through the engine."""
    reg = build_registry((str(ROOT / "plugins" / "example_rule.py"),), load_entry_points=False)
    assert "max_concentration" in reg.rule_types
    pol = load_policy(
        _policy([{"id": "c", "type": "max_concentration", "params": {"maxShare": 0.5}}]),
        registry=reg,
    )
    doc = snapshot_doc()
    d = evaluate(pol, build_snapshot(doc))
    # BTC 0.05×61000 = 3050 vs ETH 2950: BTC holds 50.8 % of notional
    assert [v.code for v in d.violations] == ["CONCENTRATION_EXCEEDS_MAX"]
    assert d.violations[0].symbol == "BTC/USDT:USDT"
    assert d.violations[0].observed == pytest.approx(3050 / 6000)


def test_hook_riskguard_margin_models(tmp_path):
    f = _plugin_file(
        tmp_path,
        """
        from riskguard import hookimpl
        from riskguard.margin.base import MarginModel
        @hookimpl
        def riskguard_margin_models(register):
            register(MarginModel(name="toyex", title="Toy", source="test", defaultMaintenanceMarginRate=0.02))
    """,
    )
    reg = build_registry((f,), load_entry_points=False)
    model = reg.margin_model("toyex")
    assert model.title == "Toy" and reg.origins[("margin_models", "toyex")] == f
    s = build_snapshot(snapshot_doc(exchange="toyex"))
    m, tier = model.maintenance_margin(s.positions[0], (), 61000)
    assert m == pytest.approx(0.05 * 61000 * 0.02) and tier.maintenanceMarginRate == 0.02


def test_hook_riskguard_enrich_snapshot(tmp_path):
    f = _plugin_file(
        tmp_path,
        """
        from riskguard import hookimpl
        @hookimpl
        def riskguard_enrich_snapshot(snapshot):
            return {"BTC/USDT:USDT": {"atrPct": 9.0}}
    """,
    )
    reg = build_registry((f,), load_entry_points=False)
    pol = load_policy(
        _policy([{"id": "v", "type": "isolate_on_volatility", "params": {"atrPctAbove": 5}}]),
        registry=reg,
    )
    d = evaluate(pol, build_snapshot(snapshot_doc()))
    codes = {(v.code, v.symbol) for v in d.violations}
    assert ("VOLATILITY_ATR_ABOVE_THRESHOLD", "BTC/USDT:USDT") in codes
    # a snapshot's own atrPct wins over the derived value
    doc = snapshot_doc(markets={"BTC/USDT:USDT": {"markPrice": 61000, "atrPct": 1.0}})
    d = evaluate(pol, build_snapshot(doc))
    assert not d.violations


def test_enricher_fault_fails_closed(tmp_path):
    f = _plugin_file(
        tmp_path,
        """
        from riskguard import hookimpl
        @hookimpl
        def riskguard_enrich_snapshot(snapshot):
            raise RuntimeError("feed down")
    """,
    )
    reg = build_registry((f,), load_entry_points=False)
    pol = load_policy(_policy([]), registry=reg)
    d = evaluate(pol, build_snapshot(snapshot_doc()))
    assert d.decision == "deny" and d.violations[0].code == "ENRICH_ERROR"
    assert "feed down" in d.errors[0]["error"]


def test_hook_riskguard_action_sinks(tmp_path):
    reg = get_registry()
    sink = reg.action_sinks["jsonl"]
    out = tmp_path / "d.jsonl"
    emit = sink.open({"path": str(out)})
    pol = load_policy(ROOT / "policies" / "default.yaml")
    d = evaluate(pol, build_snapshot(snapshot_doc()))
    emit(d)
    emit(d)
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["decisionId"] == d.decisionId


def test_hook_riskguard_snapshot_sources(tmp_path):
    reg = get_registry()
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps(snapshot_doc()) + "\n\n" + json.dumps(snapshot_doc(account="b")) + "\n")
    src = next(s for s in reg.snapshot_sources.values() if s.matches(str(p)))
    assert src.name == "jsonl"
    items = list(src.open(str(p)))
    assert [r for r, _ in items] == [f"{p}:1", f"{p}:3"]
    assert json.loads(items[1][1])["account"] == "b"


def test_duplicate_registration_names_both_plugins(tmp_path):
    f = _plugin_file(
        tmp_path,
        """
        from riskguard import hookimpl
        from riskguard.margin.base import MarginModel
        @hookimpl
        def riskguard_margin_models(register):
            register(MarginModel(name="binance", title="fake", source="x"))
    """,
    )
    with pytest.raises(PluginError) as ei:
        build_registry((f,), load_entry_points=False)
    assert "registered twice" in str(ei.value) and "riskguard.margin.binance" in str(ei.value)


def test_registering_garbage_is_refused(tmp_path):
    f = _plugin_file(
        tmp_path,
        """
        from riskguard import hookimpl
        @hookimpl
        def riskguard_rule_types(register):
            register(object())
    """,
    )
    with pytest.raises(PluginError, match="without name"):
        build_registry((f,), load_entry_points=False)


def test_plugin_rule_that_raises_fails_closed_and_others_still_report(tmp_path):
    f = _plugin_file(
        tmp_path,
        """
        from riskguard import hookimpl
        from riskguard.rules.base import BaseRule, RuleType
        class Boom(BaseRule):
            def evaluate(self, ctx):
                raise ZeroDivisionError("bad math")
        @hookimpl
        def riskguard_rule_types(register):
            register(RuleType(name="boom", params={"type": "object"}, compile=Boom, description="x", codes={}))
    """,
    )
    reg = build_registry((f,), load_entry_points=False)
    pol = load_policy(
        _policy(
            [
                {"id": "b", "type": "boom"},
                {"id": "mu", "type": "margin_utilization", "params": {"max": 0.01, "warnAt": 0.01}},
            ]
        ),
        registry=reg,
    )
    d = evaluate(pol, build_snapshot(snapshot_doc()))
    assert d.decision == "deny"
    codes = [v.code for v in d.violations]
    assert "RULE_ERROR" in codes and "MARGIN_UTILIZATION_EXCEEDS_MAX" in codes
    assert d.errors[0]["rule"] == "b"


def test_broken_plugin_file_is_a_clean_cli_error(tmp_path):
    f = _plugin_file(tmp_path, "import nonexistent_module_xyz\n")
    r = run_cli("plugins", "--plugin", f)
    assert r.returncode == 2
    assert "plugin failed to import" in r.stderr and "Traceback" not in r.stderr


def _fake_dist(tmp_path):
    """An installed distribution with a 'riskguard' entry point, made visible via PYTHONPATH."""
    site = tmp_path / "site"
    (site / "fakeplug-1.0.dist-info").mkdir(parents=True)
    (site / "fakeplug-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n"
    )
    (site / "fakeplug-1.0.dist-info" / "entry_points.txt").write_text(
        "[riskguard]\nfakeplug = fakeplug_mod\n"
    )
    (site / "fakeplug_mod.py").write_text(
        textwrap.dedent("""
        from riskguard import hookimpl
        from riskguard.margin.base import MarginModel
        @hookimpl
        def riskguard_margin_models(register):
            register(MarginModel(name="fakeex", title="Fake", source="test"))
    """)
    )
    return str(site)


def test_entry_point_plugins_load_and_env_restricts_and_traces(tmp_path):
    site = _fake_dist(tmp_path)
    r = run_cli("plugins", "--json", env={"PYTHONPATH": site})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"name": "fakeplug", "from": "entry point fakeplug_mod"} in data["plugins"]
    r = run_cli("plugins", "--json", env={"PYTHONPATH": site, "RISKGUARD_LOAD_PLUGINS": ""})
    assert "fakeplug" not in r.stdout
    r = run_cli("plugins", "--json", env={"PYTHONPATH": site, "RISKGUARD_TRACE_PLUGINS": "1"})
    assert "loaded entry point fakeplug" in r.stderr
    assert "registered margin model 'fakeex'" in r.stderr


def test_registry_is_cached():
    clear_cache()
    assert get_registry() is get_registry()


def test_example_plugin_via_cli(tmp_path):
    pol = tmp_path / "p.yaml"
    pol.write_text(
        textwrap.dedent(f"""
        apiVersion: riskguard/v1
        kind: Policy
        metadata: {{name: desk, version: "1"}}
        spec:
          extends: [{ROOT / "policies" / "default.yaml"}]
          rules:
            - id: concentration
              type: max_concentration
              params: {{maxShar: 0.5}}
    """)
    )
    r = run_cli("validate", "--plugin", str(ROOT / "plugins" / "example_rule.py"), str(pol))
    assert r.returncode == 1
    assert "did you mean 'maxShare'" in r.stderr and f"{pol}:10:" in r.stderr
