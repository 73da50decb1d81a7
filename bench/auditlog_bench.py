"""The hash-chained decision log: the cost of one append (docs/audit-log.md "Cost").

    python bench/auditlog_bench.py           # 2,000 appends a configuration, best of 5
    python bench/auditlog_bench.py --quick   # a smoke run (CI)

A typical pre-trade decision (``policies/default.yaml`` on the benchmark's 10-position
account, ``to_dict(metrics=False)``) is appended to a fresh log in a temporary directory:
plain SHA-256 chain, HMAC-SHA256 chain, and with ``fsync=True``. Each figure is the
median append time of the best of several runs (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from check_bench import account_objects, commit  # noqa: E402

from riskguard import Guard  # noqa: E402
from riskguard.decisionlog.log import AuditLog  # noqa: E402


def run(n: int, repeat: int, **kw) -> float:
    snap, order = account_objects(10)
    record = Guard.from_file(ROOT / "policies" / "default.yaml").check(snap, order)
    record = record.to_dict(metrics=False)
    best = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp, AuditLog(Path(tmp) / "log.jsonl", **kw) as log:
            times = []
            for _ in range(n):
                t = time.perf_counter_ns()
                log.append("decision", record)
                times.append(time.perf_counter_ns() - t)
            m = statistics.median(times) / 1000
            best = m if best is None else min(best, m)
    return best  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeat = 50, 1
    size = len(
        json.dumps(
            Guard.from_file(ROOT / "policies" / "default.yaml")
            .check(*account_objects(10))
            .to_dict(metrics=False)
        )
    )
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; commit {commit()}; "
        f"record ≈ {size} bytes."
    )
    print()
    print("| | per append (µs, median, best of runs) |")
    print("|---|---:|")
    for label, kw in (
        ("plain SHA-256, no fsync", {}),
        ("HMAC-SHA256, no fsync", {"key": b"k" * 32}),
        ("with `fsync=True`", {"fsync": True}),
    ):
        n = args.n if "fsync" not in kw else max(20, args.n // 10)
        print(f"| {label} | {run(n, args.repeat, **kw):.1f} |")


if __name__ == "__main__":
    main()
