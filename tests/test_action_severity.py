"""Actions carry the severity of the rule that proposed them (JSON, schema), so an executor
can apply only what the policy enforces."""

from __future__ import annotations

import json

from riskguard import Guard, load_order, load_snapshot
from riskguard.model.schemas import validator

from .conftest import EXAMPLES

SNAPS = EXAMPLES / "snapshots"


def test_each_action_has_its_proposers_severity_in_the_json():
    g = Guard.from_preset("default")
    d = g.check(load_snapshot(SNAPS / "isolated-no-stop.json"))
    by = {(a.type, a.rule): a for a in d.actions if a.type != "alert"}
    # stop-before-liquidation is an error rule, the 1 % risk budget a warning one
    assert by["set_stop_loss", "stop-before-liquidation"].severity == "error"
    assert by["set_stop_loss", "risk-per-trade"].severity == "warning"
    assert by["add_isolated_margin", "min-liquidation-distance"].severity == "error"
    for a in d.actions:  # alerts: the severity of the violation they report
        if a.type == "alert":
            assert a.severity == a.params["severity"]
    doc = d.to_dict()
    assert all(a["severity"] in ("info", "warning", "error", "critical") for a in doc["actions"])
    validator("decision").validate(json.loads(json.dumps(doc)))
    assert by["set_stop_loss", "risk-per-trade"].blocking is False
    assert by["set_stop_loss", "stop-before-liquidation"].blocking is True


def test_block_order_carries_the_blocking_rules_severity_and_a_fault_is_critical(tmp_path):
    g = Guard.from_preset("default")
    snap = load_snapshot(SNAPS / "high-utilization.json")
    d = g.check(snap, load_order(EXAMPLES / "orders" / "buy-btc.json"))
    [block] = [a for a in d.actions if a.type == "block_order"]
    assert (block.rule, block.severity) == ("margin-utilization", "error")
    # a rule that raises: the engine blocks the order itself (fail closed), critical
    plugin = tmp_path / "boom.py"
    plugin.write_text(
        "from riskguard import hookimpl\n"
        "from riskguard.rules.base import BaseRule, RuleType\n"
        "class Boom(BaseRule):\n"
        "    def evaluate(self, ctx):\n"
        "        raise ZeroDivisionError('bad math')\n"
        "@hookimpl\n"
        "def riskguard_rule_types(register):\n"
        "    register(RuleType(name='boom', params={'type': 'object'}, compile=Boom,"
        " description='x', codes={}))\n"
    )
    policy = {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "boom", "version": "1"},
        "spec": {"rules": [{"id": "b", "type": "boom"}]},
    }
    d = Guard.from_dict(policy, plugins=(str(plugin),)).check(
        snap, load_order(EXAMPLES / "orders" / "buy-btc.json")
    )
    assert d.decision == "deny" and "RULE_ERROR" in {v.code for v in d.violations}
    [block] = [a for a in d.actions if a.type == "block_order"]
    assert block.severity == "critical", block
