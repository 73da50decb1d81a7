"""``riskguard audit``: run a policy over many snapshots and report every breach."""

from __future__ import annotations

import argparse
import sys

from ..auditrun import AuditCounts, dumps, evaluate_record, iter_records
from ..decision import SEVERITY_RANK
from ..policy import load_policy
from ._common import add_plugin_arg, print_json

EPILOG = """exit codes:
  0  no violation at or above --fail-on
  1  some violation at or above --fail-on
  2  bad input or usage (with --strict: also any bad record)

examples:
  riskguard audit --policy policies/default.yaml examples/snapshots
  riskguard audit -p policies/default.yaml 'archive/2026-11-*.jsonl.gz' --out decisions.jsonl
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="evaluate a policy over snapshot files, directories or JSON Lines",
        description="Audit account snapshots: evaluate the policy on every snapshot (files, directories, "
        "globs, JSON Lines, gzip) and report breaches by rule and severity.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("-p", "--policy", required=True, help="policy YAML file")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="snapshot file, directory, glob or .jsonl[.gz] ('-' = stdin)",
    )
    p.add_argument(
        "--out", metavar="FILE", help="append one decision per snapshot to this JSON Lines file"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--fail-on",
        default="error",
        choices=("info", "warning", "error", "critical"),
        help="exit 1 when any violation has at least this severity (default: error)",
    )
    p.add_argument("--strict", action="store_true", help="exit 2 when any record is malformed")
    add_plugin_arg(p)
    return p


def run(args) -> int:
    policy = load_policy(args.policy, plugins=tuple(args.plugin))
    counts = AuditCounts()
    out = open(args.out, "a", encoding="utf-8") if args.out else None  # noqa: SIM115
    worst = -1
    try:
        for ref, item in iter_records(policy.registry, args.inputs):
            d, bad = evaluate_record(policy, ref, item)
            if bad is not None:
                counts.bad.append(bad)
                print(f"error: {bad.ref}: {bad.message}", file=sys.stderr)
                continue
            counts.snapshots += 1
            counts.outcomes[d["decision"]] = counts.outcomes.get(d["decision"], 0) + 1
            for v in d["violations"]:
                counts.by_severity[v["severity"]] = counts.by_severity.get(v["severity"], 0) + 1
                counts.by_rule[v["rule"]] = counts.by_rule.get(v["rule"], 0) + 1
                worst = max(worst, SEVERITY_RANK[v["severity"]])
            if out is not None:
                out.write(dumps(d) + "\n")
                out.flush()
    finally:
        if out is not None:
            out.close()
    summary = {
        "snapshots": counts.snapshots,
        "badRecords": len(counts.bad),
        "decisions": counts.outcomes,
        "violationsBySeverity": counts.by_severity,
        "violationsByRule": counts.by_rule,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{counts.snapshots} snapshots, {len(counts.bad)} bad records; decisions: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.outcomes.items()))
        )
        for rule, n in sorted(counts.by_rule.items(), key=lambda x: -x[1]):
            print(f"  {rule}: {n} violations")
    if args.strict and counts.bad:
        return 2
    return 1 if worst >= SEVERITY_RANK[args.fail_on] else 0
