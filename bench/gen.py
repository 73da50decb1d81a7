"""Generator throughput: how fast ``riskguard.policytools.generate`` makes and writes snapshots.

    python bench/gen.py [--snapshots 100000] [--positions 10] [--accounts 1] [--candles 0]

Prints snapshots per second for generation alone (dicts in memory, then dropped) and
for writing JSON Lines, plain and gzip, to a temporary directory. Not a test: numbers
depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from riskguard.policytools.generate import generate_stream, write_jsonl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snapshots", type=int, default=100_000)
    ap.add_argument("--positions", type=int, default=10)
    ap.add_argument("--accounts", type=int, default=1)
    ap.add_argument("--candles", type=int, default=0)
    args = ap.parse_args()
    steps = max(1, args.snapshots // args.accounts)
    kw = {
        "accounts": args.accounts,
        "steps": steps,
        "positions": args.positions,
        "candles": args.candles,
        "seed": 1,
    }
    n = steps * args.accounts

    t0 = time.perf_counter()
    held = 0
    for d in generate_stream(**kw):
        held += len(d["positions"])
    gen = time.perf_counter() - t0
    print(
        f"generate: {n:,} snapshots ({held / n:.1f} positions on average) in {gen:.2f} s "
        f"= {n / gen:,.0f} snapshots/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("s.jsonl", "s.jsonl.gz"):
            path = os.path.join(tmp, name)
            t0 = time.perf_counter()
            write_jsonl(path, generate_stream(**kw))
            dt = time.perf_counter() - t0
            size = os.path.getsize(path)
            print(
                f"write {name:<11} {dt:6.2f} s = {n / dt:,.0f} snapshots/s, "
                f"{size / 1e6:,.1f} MB ({size / n:,.0f} bytes each)"
            )


if __name__ == "__main__":
    main()
