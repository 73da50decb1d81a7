"""``riskguard plugins``: what is loaded and where it came from."""

from __future__ import annotations

from rich.table import Table

from riskguard.engine.plugins import get_registry
from riskguard.faces.commands._common import add_plugin_arg, print_json
from riskguard.faces.render import console


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="list loaded plugins, rule types, margin models, sinks and sources",
        description="List every plugin riskguard loaded (built-ins, entry points in the "
        "'riskguard' group, --plugin files) and what each registered. "
        "RISKGUARD_LOAD_PLUGINS=a,b restricts entry-point plugins; "
        "RISKGUARD_TRACE_PLUGINS=1 traces loading on stderr.",
    )
    p.add_argument("--json", action="store_true")
    add_plugin_arg(p)
    return p


def run(args) -> int:
    reg = get_registry(tuple(args.plugin))
    kinds = [
        ("rule type", reg.rule_types, "rule_types"),
        ("margin model", reg.margin_models, "margin_models"),
        ("action sink", reg.action_sinks, "action_sinks"),
        ("snapshot source", reg.snapshot_sources, "snapshot_sources"),
    ]
    rows = []
    for label, table, attr in kinds:
        for name, obj in sorted(table.items()):
            desc = getattr(obj, "description", None) or getattr(obj, "title", "")
            rows.append(
                {
                    "kind": label,
                    "name": name,
                    "plugin": reg.origins[(attr, name)],
                    "description": desc,
                }
            )
    for plugin, _fn in reg.enrichers:
        rows.append({"kind": "enricher", "name": plugin, "plugin": plugin, "description": ""})
    if args.json:
        print_json(
            {"plugins": [{"name": n, "from": w} for n, w in reg.plugins], "registered": rows}
        )
        return 0
    c = console()
    t = Table(title="plugins")
    t.add_column("plugin")
    t.add_column("from")
    for n, w in reg.plugins:
        t.add_row(n, w)
    c.print(t)
    t = Table(title="registered")
    for col in ("kind", "name", "plugin", "description"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["kind"], r["name"], r["plugin"], r["description"])
    c.print(t)
    return 0
