"""``riskguard metrics SNAPSHOT``: the account and position figures, exchange-accurate."""

from __future__ import annotations

import argparse

from riskguard.engine.decision import clean_metrics
from riskguard.engine.plugins import get_registry
from riskguard.faces.commands._common import add_plugin_arg, print_json
from riskguard.faces.render import print_metrics
from riskguard.margin.metrics import compute_metrics
from riskguard.model.snapshot import load_snapshot


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="show equity, margins, utilization and liquidation prices of a snapshot",
        description="Compute the account figures (equity, initial and maintenance margin, margin "
        "utilization, margin ratio, effective leverage) and, per position, notional, margins, uPnL, "
        "liquidation price and distance, with the exchange's own margin formula (snapshot 'exchange').",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: riskguard metrics examples/snapshots/binance-two-cross.json --json",
    )
    p.add_argument("snapshot", help="snapshot file (JSON or YAML)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_plugin_arg(p)
    return p


def run(args) -> int:
    snap = load_snapshot(args.snapshot)
    reg = get_registry(tuple(args.plugin))
    m = compute_metrics(snap, reg.margin_model(snap.exchange))
    if args.json:
        print_json(clean_metrics(m.to_dict()))
    else:
        print_metrics(m)
    return 0
