"""Simulation speed: steps per second of ``riskguard simulate``'s loop.

    python bench/simulate_bench.py            # the README table (a few minutes)
    python bench/simulate_bench.py --quick    # small runs, for a smoke test
    python bench/simulate_bench.py --year     # also one full year of 1-minute steps (525,600)
    python bench/simulate_bench.py --year-only   # only that year

Every cell is the best of ``--repeat`` runs (default 3): the machine's other jobs only
ever add time. The account is a Binance one-way book of N linear positions (half cross, half isolated,
leverage 3, three leverage tiers each, a stop 40 % away on each) so no position closes
during the run and every step pays for all of them. The path is GBM at 1-minute steps
(σ 30 % a year, correlated 0.8), generated before the timer starts. The loop timed is
:func:`riskguard.faces.simulate.run_one` — the paper exchange's step (marks, resting
orders, liquidation check), the snapshot read back from it, ``Guard.check`` of
``policies/default.yaml`` with execution on, equity and drawdown — exactly what
``riskguard simulate`` runs per step.

Columns: the baseline (no policy: the paper exchange alone), the default policy checked
every step, and every 5 steps (``--every 5``); then the projected time of a year of
1-minute steps (525,600) at that rate. The issue's target is that year in under 60 s on
one core, cost linear in steps and positions.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskguard._pure import build  # noqa: E402
from riskguard.engine.policy import load_policy  # noqa: E402
from riskguard.faces.simulate import BASELINE, PolicyUnderTest, SimOptions, run_one  # noqa: E402
from riskguard.model.snapshot import build_snapshot  # noqa: E402
from riskguard.paper.prices import gbm  # noqa: E402

YEAR = 525_600
TS_MS = 1795521600000
BASES = ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "TRX")
PRICES = (60000, 3000, 150, 600, 0.6, 0.15, 0.5, 35, 15, 7, 80, 0.12)


def account(n: int) -> dict:
    positions, tiers = [], {}
    for i in range(n):
        sym = f"{BASES[i % len(BASES)]}{'' if i < len(BASES) else i}/USDT:USDT"
        px = PRICES[i % len(PRICES)]
        contracts = 2000.0 / px  # 2,000 USDT of notional each
        side = "long" if i % 2 == 0 else "short"
        p = {
            "symbol": sym, "side": side, "contracts": contracts, "entryPrice": px,
            "markPrice": px, "leverage": 3, "marginMode": "isolated" if i % 2 else "cross",
            "stopLossPrice": px * (0.6 if side == "long" else 1.4),
        }  # fmt: skip
        if p["marginMode"] == "isolated":
            p["isolatedMargin"] = contracts * px / 3
        positions.append(p)
        tiers[sym] = [
            {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maxLeverage": 125},
            {"minNotional": 50000, "maxNotional": 600000, "maintenanceMarginRate": 0.005, "maxLeverage": 100},
            {"minNotional": 600000, "maintenanceMarginRate": 0.01, "maxLeverage": 50},
        ]  # fmt: skip
    return {
        "schemaVersion": 1, "account": "bench", "exchange": "binance", "timestamp": TS_MS,
        "settle": "USDT", "walletBalance": 100_000.0, "positions": positions, "leverageTiers": tiers,
    }  # fmt: skip


def timed(snap, put, path, opts, repeat: int = 1) -> tuple[float, dict]:
    """The best of ``repeat`` runs (the machine's other jobs only ever add time)."""
    best, r = float("inf"), {}
    for _ in range(repeat):
        t = time.perf_counter()
        r = run_one(snap, put, path, opts)
        best = min(best, time.perf_counter() - t)
    return best, r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small runs (a smoke test)")
    ap.add_argument("--year", action="store_true", help="also time a full year of 1-minute steps")
    ap.add_argument(
        "--year-only", action="store_true", help="only the full year (every step, every 5)"
    )
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default 10,000)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per cell, best kept (default 3)")
    args = ap.parse_args()
    steps = args.steps or (300 if args.quick else 10_000)
    repeat = args.repeat or (1 if args.quick else 3)
    policy = load_policy(ROOT / "policies" / "default.yaml")
    put = PolicyUnderTest("default", policy, "policies/default.yaml")
    print(
        f"python {platform.python_version()} on {platform.machine()} ({build()}), {steps:,} steps per run, "
        f"best of {repeat}, load average {os.getloadavg()[0]:.1f} at the start\n"
    )
    if args.year_only:
        sizes: tuple[int, ...] = ()
        args.year = True
    else:
        sizes = (1, 10) if args.quick else (1, 5, 10, 20)
    print(
        "| positions | no policy | default, every step | default, every 5 steps | year (525,600 steps) every step | year every 5 |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    # warm-up: imports, the plugin registry, the policy's first evaluation
    snap = build_snapshot(account(2))
    warm = gbm({p.symbol: p.markPrice for p in snap.positions}, steps=200, seed=2, t0=TS_MS)
    for p in (BASELINE, put):
        run_one(snap, p, warm, SimOptions())
    rates = {}
    for n in sizes:
        snap = build_snapshot(account(n))
        marks = {p.symbol: p.markPrice for p in snap.positions}
        path = gbm(marks, steps=steps, sigma=0.3, seed=1, t0=TS_MS)
        row = []
        for p, every in ((BASELINE, 1), (put, 1), (put, 5)):
            sec, r = timed(snap, p, path, SimOptions(every=every), repeat)
            assert r["openPositionsAtEnd"] == n, "a position closed: the bench would flatter"
            row.append(steps / sec)
        rates[n] = row
        print(
            f"| {n} | {row[0]:,.0f} steps/s | {row[1]:,.0f} steps/s | {row[2]:,.0f} steps/s "
            f"| {YEAR / row[1]:,.0f} s | {YEAR / row[2]:,.0f} s |"
        )
    if not args.quick and 1 in rates and 10 in rates:
        # linear in steps: the same account over twice the steps
        snap = build_snapshot(account(10))
        marks = {p.symbol: p.markPrice for p in snap.positions}
        half = gbm(marks, steps=steps // 2, sigma=0.3, seed=1, t0=TS_MS)
        full = gbm(marks, steps=steps, sigma=0.3, seed=1, t0=TS_MS)
        sec1, _ = timed(snap, put, half, SimOptions(), repeat)
        sec2, _ = timed(snap, put, full, SimOptions(), repeat)
        print(f"\nlinearity in steps (10 positions, default, every step): "
              f"{steps // 2:,} steps {sec1:.2f} s, {steps:,} steps {sec2:.2f} s, ratio {sec2 / sec1:.2f}")  # fmt: skip
    if args.year:
        snap = build_snapshot(account(10))
        marks = {p.symbol: p.markPrice for p in snap.positions}
        path = gbm(marks, steps=YEAR, sigma=0.3, seed=1, t0=TS_MS)
        for every in (1, 5):
            sec, r = timed(snap, put, path, SimOptions(every=every))
            print(f"\nfull year, 10 positions, default, every {every}: {sec:.1f} s "
                  f"({YEAR / sec:,.0f} steps/s; {r['openPositionsAtEnd']} positions open at the end)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
