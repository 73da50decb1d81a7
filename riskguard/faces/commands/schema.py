"""``riskguard schema NAME``: print a JSON Schema (policy schema composed from plugins)."""

from __future__ import annotations

from riskguard.engine.plugins import get_registry
from riskguard.engine.policy import policy_schema
from riskguard.faces.commands._common import add_plugin_arg, print_json
from riskguard.model.schemas import load_schema


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="print the JSON Schema of a policy, snapshot, order, decision or simulation result",
        description="Print a JSON Schema. The policy schema is composed from the "
        "params schemas of every loaded rule type (plugins included): point your "
        "editor's YAML language server at it.",
    )
    p.add_argument("name", choices=("policy", "snapshot", "order", "decision", "simulation"))
    add_plugin_arg(p)
    return p


def run(args) -> int:
    if args.name == "policy":
        print_json(policy_schema(get_registry(tuple(args.plugin))))
    else:
        print_json(load_schema(args.name))
    return 0
