"""docs/rules.md and the rule types' own metadata agree: every type, param and code documented."""

from __future__ import annotations

import re

import pytest
import yaml

from riskguard.engine.plugins import build_registry
from riskguard.engine.policy import load_policy

from .conftest import ROOT

REGISTRY = build_registry((), load_entry_points=False)
TYPES = sorted(REGISTRY.rule_types)
DOC = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
CORE = {"margin_utilization", "stop_before_liquidation", "isolate_on_volatility"}


def section(name: str) -> str:
    m = re.search(rf"^## `{name}`\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert m, f"docs/rules.md has no section for {name}"
    return m.group(1)


@pytest.mark.parametrize("name", TYPES)
def test_each_type_is_documented_with_its_params_and_codes(name):
    text = section(name)
    rt = REGISTRY.rule_types[name]
    for param in rt.params["properties"]:
        assert f"`{param}`" in text, f"{name}: param {param} not documented"
    for code in rt.codes:
        assert f"`{code}`" in text, f"{name}: code {code} not documented"
    assert "```yaml" in text


@pytest.mark.parametrize("name", TYPES)
def test_each_types_example_and_doc_example_load(name):
    rt = REGISTRY.rule_types[name]
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", section(name), re.S)
    for rules in (yaml.safe_load(rt.example), *(yaml.safe_load(b) for b in yaml_blocks)):
        for r in rules:
            r.get("params", {}).pop("stateFile", None)  # the example's path need not exist
        pol = load_policy(
            {
                "apiVersion": "riskguard/v1",
                "kind": "Policy",
                "metadata": {"name": "x"},
                "spec": {"rules": rules},
            },
            registry=REGISTRY,
        )
        assert pol.specs[0].type == name


@pytest.mark.parametrize("name", sorted(set(TYPES) - CORE))
def test_each_new_types_schema_is_closed_and_described(name):
    rt = REGISTRY.rule_types[name]
    assert rt.params["additionalProperties"] is False
    for param, schema in rt.params["properties"].items():
        assert schema.get("description"), f"{name}.{param} has no description"
    assert rt.codes and rt.description and rt.example


def test_stateful_types_are_marked():
    stateful = {n for n in TYPES if REGISTRY.rule_types[n].stateful}
    assert stateful == {"trading_state", "drawdown", "order_rate", "duplicate_order"}
