"""``riskguard generate``: a deterministic synthetic snapshot stream as JSON Lines."""

from __future__ import annotations

import argparse
import sys

from riskguard.errors import RiskguardError
from riskguard.faces.commands._common import count, seconds

EPILOG = """what the data looks like:
  Every account trades a shared market of ccxt linear perpetuals (BTC/USDT:USDT, …):
  prices follow correlated random walks with calm and volatile regimes (ATR% rises in a
  volatile spell; markets[symbol].regime says which), positions open and close over time
  (long/short, isolated or cross, leverage 2-50x), stop-losses are mostly set before the
  liquidation price but sometimes missing or beyond it, and the wallet follows realised
  PnL and fees. Tiers: Binance's 2024-10-24 BTC/ETH brackets, a 3-tier table otherwise.
  The same arguments always give the same output. Accounts are interleaved step by step.

examples:
  riskguard generate --steps 500 --seed 7 -o month.jsonl
  riskguard generate --accounts 20 --steps 5000 --positions 10 -o big.jsonl.gz
  riskguard generate --steps 200 --interval 3600 --candles 30 | riskguard audit -p policies/default.yaml -
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="write a synthetic, reproducible stream of account snapshots (JSON Lines)",
        description="Generate realistic account snapshots for trying policies, tests and "
        "benchmarks: one JSON snapshot per line, ACCOUNTS × STEPS lines, to FILE or stdout.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument(
        "--accounts", type=count(1), default=1, metavar="N", help="accounts (default: 1)"
    )
    p.add_argument(
        "--steps",
        type=count(0),
        default=100,
        metavar="N",
        help="snapshots per account (default: 100)",
    )
    p.add_argument(
        "--positions",
        type=count(0),
        default=10,
        metavar="N",
        help="positions each account aims to hold (default: 10)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    p.add_argument(
        "--candles",
        type=count(0),
        default=0,
        metavar="N",
        help="OHLCV candles of the step interval per held symbol (default: 0, none)",
    )
    p.add_argument(
        "--exchange",
        default="binance",
        metavar="X",
        help="the snapshots' exchange, i.e. margin model (default: binance)",
    )
    p.add_argument(
        "--start",
        default="2026-11-01T00:00:00Z",
        metavar="TIME",
        help="ISO-8601 time of the first step (default: 2026-11-01T00:00:00Z)",
    )
    p.add_argument(
        "--interval",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="time between steps (default: 60)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE (.jsonl, or .jsonl.gz to compress); default: stdout",
    )
    return p


def run(args) -> int:
    from riskguard.model.snapshot import parse_timestamp
    from riskguard.policytools.generate import generate_stream, write_jsonl

    try:
        parse_timestamp(args.start)
    except (ValueError, OverflowError):
        raise RiskguardError(
            f"expected an ISO-8601 time such as 2026-11-01T00:00:00Z, got {args.start!r}",
            file="--start",
        ) from None
    try:
        stream = generate_stream(
            accounts=args.accounts,
            steps=args.steps,
            positions=args.positions,
            seed=args.seed,
            exchange=args.exchange,
            start=args.start,
            interval_s=args.interval,
            candles=args.candles,
        )
    except ValueError as exc:
        raise RiskguardError(f"generate: {exc}") from None
    out = args.output or "-"
    try:
        n = write_jsonl(out, stream)
    except BrokenPipeError:
        # `riskguard generate | head`: the reader has had enough; that is not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        raise RiskguardError(f"cannot write: {exc.strerror or exc}", file=out) from None
    if args.output:
        print(f"{n} snapshots written to {args.output}", file=sys.stderr)
    return 0
