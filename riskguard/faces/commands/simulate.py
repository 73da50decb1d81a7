"""``riskguard simulate``: replay price paths against an account, with and without a policy."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from riskguard.errors import RiskguardError
from riskguard.faces.commands._common import add_plugin_arg, count

EPILOG = """exit codes:
  0  no run with a policy ended in a liquidation
  1  some run with a policy was liquidated (the baseline's liquidations do not count)
  2  bad input or usage

price paths:
  --prices FILE.csv              header timestamp,symbol,open,high,low,close,volume (ms);
                                 several symbols in one file; each CSV is one path
  --prices SYMBOL=FILE.jsonl ... ccxt OHLCV rows [ts, o, h, l, c, v], one symbol per file;
                                 the files of one --prices form one path
  --scenario NAME                covid-2020, may-2021, ftx-2022, aug-2024, squeeze,
                                 gap-down, gap-up, gbm, gbm-jumps (repeatable)
  --scenarios all                every named scenario and generated path
  Files are rebased so each symbol's first open is the account's mark (the same
  percentage moves from where the account stands); --no-rebase replays raw prices.

examples:
  riskguard simulate --account examples/snapshots/isolated-no-stop.json \\
      --policy policies/default.yaml --scenario covid-2020
  riskguard simulate --account start.json -p policies/default.yaml -p policies/conservative.yaml \\
      --scenarios all --report sim.html --json > sim.json
  riskguard simulate --account start.json -p mine.yaml --prices btc-2024.csv --every 5
"""


def _rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= v < 1.0):
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return v


def add_parser(sub, name):
    from riskguard.faces.simulate.runner import DEFAULT_EXECUTE, EXECUTABLE

    p = sub.add_parser(
        name,
        help="replay price paths against an account: would this policy have saved it?",
        description="Play price paths (OHLCV files, generated paths, named stress scenarios)\n"
        "against an account on the paper exchange: once with no policy (the baseline) and\n"
        "once per --policy, checking the account at every step and applying the policy's\n"
        "actions through the ccxt executor, as a live account would. Liquidations follow\n"
        "the account's margin model exactly. Reports liquidations, drawdown, final equity,\n"
        "time in breach per rule, actions proposed/applied/refused and fees, side by side.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument(
        "--account", required=True, metavar="FILE", help="the starting account snapshot (JSON/YAML)"
    )
    p.add_argument(
        "-p", "--policy", action="append", default=[], metavar="FILE",
        help="a policy to test (repeatable); 'no policy' always runs as the baseline",
    )  # fmt: skip
    p.add_argument(
        "--prices", action="append", nargs="+", default=[], metavar="FILE",
        help="OHLCV price file(s): FILE.csv, or SYMBOL=FILE.jsonl (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--scenario", action="append", default=[], metavar="NAME",
        help="a named scenario or generated path (repeatable; see below)",
    )  # fmt: skip
    p.add_argument("--scenarios", choices=("all",), help="every named scenario and generated path")
    p.add_argument(
        "--execute", default=",".join(DEFAULT_EXECUTE), metavar="TYPES",
        help="comma-separated action types the simulated guard may apply, or 'none' "
        f"(default: the risk-reducing ones: {', '.join(DEFAULT_EXECUTE)}; known: "
        f"{', '.join(EXECUTABLE)})",
    )  # fmt: skip
    p.add_argument(
        "--every", type=count(1), default=1, metavar="N",
        help="check the account every N steps (default 1: every step; the exchange's fills "
        "and liquidations run on every step regardless)",
    )  # fmt: skip
    p.add_argument(
        "-w", "--workers", type=count(1), default=1, metavar="N",
        help="play the runs (policy × path, the baseline included) on N processes (default 1; "
        "each run stays on one process, and the result is the same byte for byte)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of generated paths (default 0)")
    p.add_argument(
        "--taker-fee", type=_rate, default=None, metavar="RATE",
        help="taker fee rate (default: the account's takerFeeRate, else 0.0005); also the fee "
        "OKX, Gate and BingX count in their liquidation trigger",
    )  # fmt: skip
    p.add_argument(
        "--min-severity", choices=("info", "warning", "error", "critical"), default="error",
        help="apply only actions proposed by violations of this severity or above (default "
        "error, the executor's default: what the policy enforces; warning applies advice too)",
    )  # fmt: skip
    p.add_argument("--maker-fee", type=_rate, default=0.0002, metavar="RATE", help="default 0.0002")
    p.add_argument(
        "--slippage-bps", type=float, default=0.0, metavar="BPS",
        help="taker fills move this many basis points against the taker (default 0)",
    )  # fmt: skip
    p.add_argument(
        "--funding-rate", type=float, default=None, metavar="RATE",
        help="funding rate per 8 h, longs pay when positive (default: no funding)",
    )  # fmt: skip
    p.add_argument(
        "--no-rebase", action="store_true", help="replay price files at their own prices"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON (schemas/simulation.schema.json)",
    )
    p.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    p.add_argument(
        "--no-progress", action="store_true",
        help="no progress bar (there is none anyway when stderr is not a terminal)",
    )  # fmt: skip
    add_plugin_arg(p)
    return p


def _paths(args, marks: dict, t0: int) -> list:
    from riskguard.paper import prices

    out = []
    for group in args.prices:
        jsonl = []
        for item in group:
            sym, sep, file = item.partition("=")
            if sep and not Path(item).exists():
                if not file:
                    raise RiskguardError(f"--prices {item}: expected SYMBOL=FILE")
                jsonl.append(prices.read_jsonl(file, sym))
            elif item.endswith((".jsonl", ".ndjson")):
                raise RiskguardError(
                    f"--prices {item}: a JSON Lines file holds one symbol; say which: "
                    "--prices BTC/USDT:USDT=" + item
                )
            else:
                out.append(prices.read_csv(item))
        if jsonl:
            out.append(prices.merge(jsonl))
    names = list(prices.ALL) if args.scenarios == "all" else []
    for n in args.scenario:
        if n not in prices.ALL:
            raise RiskguardError(f"--scenario {n}: unknown; known: {', '.join(prices.ALL)}")
        if n not in names:
            names.append(n)
    for n in names:
        out.append(prices.named(n, marks, seed=args.seed, t0=t0))
    if not out:
        raise RiskguardError(
            "nothing to replay: give --prices FILE, --scenario NAME or --scenarios all"
        )
    return out


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("simulate"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("simulate", total=total)
    with progress:
        yield lambda n: progress.advance(task, n)


def run(args) -> int:
    from riskguard.engine.policy import load_policy
    from riskguard.faces.simulate.result import dumps, render_table
    from riskguard.faces.simulate.runner import (
        EXECUTABLE,
        PolicyUnderTest,
        SimOptions,
        simulate,
    )
    from riskguard.model.snapshot import load_snapshot
    from riskguard.paper.errors import ccxt_module

    try:
        ccxt_module()
    except ImportError as exc:
        raise RiskguardError(str(exc)) from None
    execute: tuple[str, ...] = ()
    if args.execute.strip().lower() != "none":
        execute = tuple(t.strip() for t in args.execute.split(",") if t.strip())
        bad = [t for t in execute if t not in EXECUTABLE]
        if bad:
            raise RiskguardError(
                f"--execute: {', '.join(bad)} cannot be applied on an exchange; "
                f"choose from {', '.join(EXECUTABLE)} or 'none'"
            )
    if args.report and not args.report.lower().endswith((".html", ".htm")):
        raise RiskguardError(f"--report {args.report}: the report is HTML; name it *.html")
    snap = load_snapshot(args.account)
    if not snap.positions:
        raise RiskguardError(
            f"{args.account}: the account has no positions: nothing can be liquidated"
        )
    plugins = tuple(args.plugin)
    policies = []
    for f in args.policy:
        compiled = load_policy(f, plugins=plugins)
        policies.append(PolicyUnderTest(compiled.name, compiled, f))
    names = [p.name for p in policies]
    for i, p in enumerate(policies):  # two files with one policy name: tell them apart
        if names.count(p.name) > 1 or p.name == "no policy":
            policies[i] = PolicyUnderTest(f"{p.name} ({p.file})", p.policy, p.file)
    marks = {p.symbol: snap.mark_price(p) for p in snap.positions}
    paths = _paths(args, marks, snap.timestamp or 0)
    opts = SimOptions(
        execute=execute,
        min_severity=args.min_severity,
        every=args.every,
        taker_fee=args.taker_fee,
        maker_fee=args.maker_fee,
        slippage_bps=args.slippage_bps,
        funding_rate=args.funding_rate,
        seed=args.seed,
        rebase=not args.no_rebase,
    )
    total = sum(len(p) for p in paths) * (len(policies) + 1)
    show = sys.stderr.isatty() and not args.no_progress
    with _progress(show, total) as tick:
        result = simulate(snap, policies, paths, opts, tick, workers=args.workers, plugins=plugins)
    text = dumps(result)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if args.report:
        from riskguard.faces.simulate.report import write_html

        write_html(result, args.report)
    if args.json:
        sys.stdout.write(text)
    else:
        render_table(result)
        if args.report:
            print(f"report: {args.report}")
    return 1 if any(r["liquidations"] for r in result["runs"] if r["policy"] != "no policy") else 0
