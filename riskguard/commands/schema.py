"""``riskguard schema NAME``: print a JSON Schema (policy schema composed from plugins)."""

from __future__ import annotations

from ..plugins import get_registry
from ..policy import policy_schema
from ..schemas_util import load_schema
from ._common import add_plugin_arg, print_json


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="print the JSON Schema of a policy, snapshot, order or decision",
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
