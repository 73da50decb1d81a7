"""``riskguard check``: one pre-trade (or snapshot) decision."""

from __future__ import annotations

import argparse

from ..engine import evaluate
from ..policy import load_policy
from ..render import print_decision
from ..snapshot import load_order, load_snapshot
from ._common import add_plugin_arg, print_json

EPILOG = """exit codes:
  0  allowed unchanged
  1  denied, or allowed only resized (see maxAllowedAmount)
  2  bad input or usage
  3  internal error (the decision is deny)

examples:
  riskguard check --policy policies/default.yaml --snapshot examples/snapshots/binance-two-cross.json
  riskguard check -p policies/default.yaml -s snap.json --order order.json --json
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="decide on one snapshot and optional order (allow / resize / deny)",
        description="Evaluate a policy against an account snapshot and, for a pre-trade check, a "
        "proposed order. Prints the decision with its violations and proposed actions.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("-p", "--policy", required=True, help="policy YAML file")
    p.add_argument("-s", "--snapshot", required=True, help="snapshot file (JSON or YAML)")
    p.add_argument("-o", "--order", help="proposed order file (JSON or YAML)")
    p.add_argument("--json", action="store_true", help="print the decision document as JSON")
    p.add_argument(
        "--audit-log", metavar="FILE", help="append the decision to this hash-chained log"
    )
    add_plugin_arg(p)
    return p


def run(args) -> int:
    policy = load_policy(args.policy, plugins=tuple(args.plugin))
    snap = load_snapshot(args.snapshot)
    order = load_order(args.order) if args.order else None
    decision = evaluate(policy, snap, order, ref=str(args.snapshot))
    if args.audit_log:
        from ..audit import AuditLog

        with AuditLog(args.audit_log) as log:
            log.append("decision", decision.to_dict(metrics=False))
    if args.json:
        print_json(decision.to_dict())
    else:
        print_decision(decision)
    if decision.errors:
        return 3
    if decision.decision == "allow" and (decision.wouldDecide in (None, "allow")):
        return 0
    return 0 if decision.mode == "monitor" else 1
