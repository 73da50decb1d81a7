"""``riskguard check``: one pre-trade (or snapshot) decision."""

from __future__ import annotations

import argparse
import sys

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policycache import load_policy_cached
from riskguard.errors import RiskguardError
from riskguard.faces.commands._common import add_plugin_arg, print_json
from riskguard.model.snapshot import load_order, load_snapshot

EPILOG = """exit codes:
  0  allowed unchanged
  1  denied, or allowed only resized (see maxAllowedAmount)
  2  bad input or usage
  3  internal error (the decision is deny)

  --stream: 0 at end of input (bad lines get error lines, not an exit), 2 bad policy

examples:
  riskguard check --policy policies/default.yaml --snapshot examples/snapshots/binance-two-cross.json
  riskguard check -p policies/default.yaml -s snap.json --order order.json --json
  bot | riskguard check --stream -p policies/default.yaml | bot   # JSON Lines in, decisions out

--stream protocol (one JSON object a line in, one out, flushed; see riskguard/stream.py):
  {"id": 1, "account": "main", "snapshot": {...}, "order": {...}}   store main's snapshot, check
  {"id": 2, "account": "main", "order": {...}}                      reuse the stored snapshot
  {"control": {"tradingState": "halted"}}                           kill switch
  errors: {"error": {"code": ..., "message": ..., "problems": [...]}, "line": N, "id": ...}
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
    p.add_argument(
        "-s",
        "--snapshot",
        help="snapshot file (JSON or YAML); required unless --stream (then preloaded)",
    )
    p.add_argument("-o", "--order", help="proposed order file (JSON or YAML)")
    p.add_argument("--json", action="store_true", help="print the decision document as JSON")
    p.add_argument(
        "--stream",
        action="store_true",
        help="serve JSON Lines on stdin ({snapshot?, account?, order?} a line), one decision "
        "a line on stdout, one guard for the whole stream",
    )
    p.add_argument(
        "--metrics", action="store_true", help="--stream: include the metrics in each decision"
    )
    p.add_argument(
        "--audit-log", metavar="FILE", help="append the decision to this hash-chained log"
    )
    p.add_argument(
        "--time-budget-ms",
        type=float,
        metavar="MS",
        help="deny (ENGINE_TIME_BUDGET_EXCEEDED) if evaluation takes longer, e.g. a hung plugin rule",
    )
    add_plugin_arg(p)
    return p


def run(args) -> int:
    if args.stream:
        return _stream(args)
    if not args.snapshot:
        raise RiskguardError("the following arguments are required: -s/--snapshot (or --stream)")
    # a one-shot check: the loaded policy is cached by its files' digests (policycache)
    policy = load_policy_cached(args.policy, plugins=tuple(args.plugin))
    snap = load_snapshot(args.snapshot)
    order = load_order(args.order) if args.order else None
    if args.time_budget_ms:
        from riskguard.faces.guard import Guard

        # the Guard evaluates on a daemon worker thread and stops waiting at the budget
        decision = Guard(policy, time_budget_ms=args.time_budget_ms).check(snap, order)
    else:
        decision = evaluate(policy, snap, order, ref=str(args.snapshot))
    if args.audit_log:
        from riskguard.decisionlog.log import AuditLog

        with AuditLog(args.audit_log) as log:
            log.append("decision", decision.to_dict(metrics=False))
    if args.json:
        print_json(decision.to_dict())
    else:
        from riskguard.faces.render import print_decision  # rich: only for the text form

        print_decision(decision)
    if decision.errors:
        return 3
    if decision.decision == "allow" and (decision.wouldDecide in (None, "allow")):
        return 0
    return 0 if decision.mode == "monitor" else 1


def _stream(args) -> int:
    from riskguard.faces.guard import Guard
    from riskguard.faces.stream import Stream, run_stream

    if args.order:
        raise RiskguardError("--order does not go with --stream: send orders on stdin")
    guard = Guard.from_file(
        args.policy,
        plugins=tuple(args.plugin),
        audit_log=args.audit_log,
        time_budget_ms=args.time_budget_ms,
    )
    with guard:
        stream = Stream(guard, metrics=args.metrics)
        if args.snapshot:
            stream.preload(load_snapshot(args.snapshot))
        return run_stream(stream, sys.stdin, sys.stdout)
