"""``riskguard explain``: every rule's inputs, comparison and outcome, in plain words."""

from __future__ import annotations

import argparse

from riskguard.engine.policy import load_policy
from riskguard.errors import Problem, RiskguardError
from riskguard.faces.commands._common import add_plugin_arg, print_json
from riskguard.model.snapshot import load_order, load_snapshot, parse_timestamp
from riskguard.policytools.explain import explain, print_explanation

EPILOG = """what it shows:
  the account figures (before and after the order), then one section per rule: what it
  read (with the values), the comparison it made, its findings and proposed fixes, and
  at the bottom the decision and why, in plain words.

exit codes (as for `riskguard check`):
  0  allowed unchanged
  1  denied, or allowed only resized
  2  bad input or usage
  3  internal error (the decision is deny)

examples:
  riskguard explain -p policies/default.yaml -s examples/snapshots/high-utilization.json
  riskguard explain -p policies/default.yaml -s snap.json --order examples/orders/buy-btc.json
  riskguard explain -p policies/default.yaml -s snap.json --order order.json --json
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="trace every rule of a decision: inputs, comparisons, outcome and why",
        description="Evaluate a policy against a snapshot (and an optional order) with tracing on "
        "and explain the decision: for every rule the metric values it read, the comparison it "
        "made and its outcome, then the decision and what would pass instead.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("-p", "--policy", required=True, help="policy YAML file")
    p.add_argument("-s", "--snapshot", required=True, help="snapshot file (JSON or YAML)")
    p.add_argument("-o", "--order", help="proposed order file (JSON or YAML)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print {decision, why, rules: [{id, type, params, outcome, notes, violations, "
        "actions}], metrics} as JSON",
    )
    p.add_argument(
        "--now",
        metavar="TIME",
        help="evaluate at this time (ISO-8601 or epoch ms) instead of the clock, for rules "
        "that depend on time",
    )
    p.add_argument(
        "--fails",
        action="store_true",
        help="show only rules with findings (like `opa eval --explain=fails`)",
    )
    add_plugin_arg(p)
    return p


def run(args) -> int:
    now_ms = None
    if args.now is not None:
        try:
            now_ms = parse_timestamp(
                int(args.now) if args.now.strip().isdigit() else args.now.strip()
            )
        except (ValueError, OverflowError) as exc:
            raise RiskguardError(
                [Problem(f"--now: expected ISO-8601 or epoch milliseconds: {exc}", code="usage")]
            ) from None
    policy = load_policy(args.policy, plugins=tuple(args.plugin))
    snap = load_snapshot(args.snapshot)
    order = load_order(args.order) if args.order else None
    x = explain(policy, snap, order, now_ms=now_ms)
    if args.json:
        doc = x.to_dict()
        if args.fails:
            doc["rules"] = [r for r in doc["rules"] if r["outcome"] != "passed"]
        print_json(doc)
    else:
        print_explanation(x, only_findings=args.fails)
    d = x.decision
    if d.errors:
        return 3
    if d.decision == "allow" and d.wouldDecide in (None, "allow"):
        return 0
    return 0 if d.mode == "monitor" else 1
