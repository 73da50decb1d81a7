"""``riskguard watch CONFIG``: watch accounts, alert, protect, archive, export metrics."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from riskguard.errors import RiskguardError

EPILOG = """\
examples:
  riskguard watch watch.yaml                      # alert only (execution is off by default)
  riskguard watch watch.yaml --once               # one round per account, then exit (cron)
  riskguard watch watch.yaml --execute set_stop_loss,add_isolated_margin
  riskguard watch watch.yaml --execute set_stop_loss --dry-run

signals: SIGTERM/SIGINT finish the rounds in flight, drain alerts and logs, save the state
         and exit (with the status below);
         SIGUSR1 halts every account (kill switch), SIGUSR2 releases it.
exit codes: 0 nothing at error or above open, 1 a blocking breach, a blind or a stopped
            account remains, 2 bad config or usage, 3 internal error.
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="watch accounts live: alerts, protective actions, archive, Prometheus metrics",
        description="Poll (or stream) every account of CONFIG through ccxt, evaluate its policy "
        "on every update, alert through apprise as episodes (open, escalate, remind, resolve), "
        "apply protective actions only when allowed, archive every snapshot as JSON Lines and "
        "serve /metrics and /healthz. See docs/watch.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("config", metavar="CONFIG", help="watch configuration (YAML, kind: Watch)")
    p.add_argument(
        "--execute",
        metavar="TYPES",
        default=None,
        help="comma-separated action types the watcher may apply (risk-reducing only: "
        "set_stop_loss, add_isolated_margin, reduce_position, close_position, "
        "switch_margin_mode); overrides execution.allow",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run every execution rail and print what would be sent; send nothing",
    )
    p.add_argument("--once", action="store_true", help="one round per account, then exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log every alert and fault")
    return p


def run(args) -> int:
    from dataclasses import replace

    from riskguard.faces.watch.config import RISK_REDUCING, load_config

    types = None
    if args.execute is not None:
        types = [t.strip() for t in args.execute.split(",") if t.strip()]
        bad = [t for t in types if t not in RISK_REDUCING]
        if bad:
            raise RiskguardError(
                f"--execute: {', '.join(bad)} cannot be executed by the watcher "
                f"(allowed: {', '.join(RISK_REDUCING)})"
            )
    cfg = load_config(args.config)
    ex = cfg.execution
    if types is not None:
        ex = replace(ex, allow=frozenset(types))
    if args.dry_run:
        ex = replace(ex, dry_run=True)
    cfg = replace(cfg, execution=ex)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import apprise  # noqa: F401
        import ccxt  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise RiskguardError(
            f"riskguard watch needs {exc.name}: pip install 'riskguard[watch]'"
        ) from exc
    from riskguard.faces.watch.loop import Watcher

    async def main() -> int:
        w = Watcher(cfg)
        return await w.run(once=args.once)

    return asyncio.run(main())
