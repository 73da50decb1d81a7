"""What hedge mode and multi-collateral accounts cost: ``compute_metrics`` per account form.

    python bench/accounts_bench.py            # the bench/README.md table
    python bench/accounts_bench.py --quick    # fewer runs, for a smoke test

One account of N linear Binance positions (N/2 symbols, three leverage tiers each), in
four forms: one-way single-currency (the hot path; the account forms must cost it
nothing), the same legs in hedge mode (each symbol's long and short share one cross
liquidation price), a multi-collateral account whose coins are not the positions' bases
(margin balance linear in every price: the closed form), and one holding BTC against a
BTC position (the bisection). Each figure is the median of ``--runs`` timed calls after a
warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskguard.margin.binance import BINANCE  # noqa: E402
from riskguard.margin.metrics import compute_metrics  # noqa: E402
from riskguard.model.snapshot import build_snapshot  # noqa: E402

TIERS = [
    {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004},
    {"minNotional": 50000, "maxNotional": 600000, "maintenanceMarginRate": 0.005},
    {"minNotional": 600000, "maxNotional": 3000000, "maintenanceMarginRate": 0.0065},
]


def account(n: int, form: str) -> dict:
    symbols = ["BTC/USDT:USDT"] + [f"C{i}/USDT:USDT" for i in range(1, n // 2)]
    positions = []
    for i, sym in enumerate(symbols):
        for side, entry in (("long", 1000.0 + i), ("short", 1010.0 + i)):
            positions.append({"symbol": sym, "side": side, "contracts": 2.0 + i % 3,
                              "entryPrice": entry, "markPrice": 1005.0 + i, "leverage": 10})  # fmt: skip
    if form == "oneway":  # same book, one position per symbol side kept apart by symbol
        for j, p in enumerate(positions):
            p["symbol"] = f"S{j}/USDT:USDT"
    doc: dict = {
        "exchange": "binance",
        "walletBalance": 50000.0,
        "positions": positions,
        "leverageTiers": {p["symbol"]: TIERS for p in positions},
    }
    if form != "oneway":
        doc["positionMode"] = "hedge"
    if form == "multi-linear":
        doc["balances"] = [{"coin": "USDT", "amount": 40000, "price": 1},
                           {"coin": "ETH", "amount": 5, "price": 3000, "collateralRatio": 0.9}]  # fmt: skip
    if form == "multi-numeric":
        doc["balances"] = [{"coin": "USDT", "amount": 40000, "price": 1},
                           {"coin": "BTC", "amount": 0.2, "price": 60000, "collateralRatio": 0.95}]  # fmt: skip
    return doc


def median_us(fn, runs: int) -> float:
    for _ in range(min(runs, 50)):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few runs (a smoke test)")
    ap.add_argument("--runs", type=int, default=3000)
    args = ap.parse_args()
    runs = 20 if args.quick else args.runs
    forms = ("oneway", "hedge", "multi-linear", "multi-numeric")
    print(f"| positions | {' | '.join(forms)} |")
    print("|---:|" + "---:|" * len(forms))
    for n in (10,) if args.quick else (10, 50):
        cells = []
        for form in forms:
            snap = build_snapshot(account(n, form))
            us = median_us(lambda s=snap: compute_metrics(s, BINANCE), runs)
            cells.append(f"{us:,.1f} µs")
        print(f"| {n} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
