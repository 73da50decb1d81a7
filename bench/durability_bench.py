"""The Guard's audit-log durability modes: records lost to kill -9, and cost per check.

    python bench/durability_bench.py            # 50 kill -9s per mode, 3,000 checks per mode
    python bench/durability_bench.py --quick    # 3 kills per mode, 200 checks (a smoke run)

**Loss.** For each mode a child process runs ``Guard.check`` in a tight loop and prints
each decision's id to its stdout once ``check`` has returned it (from then on a bot may
act on it). The parent reads a random number of ids (50-400), sends SIGKILL, and reads
whatever else the child printed before it died. After ``--kills`` rounds on one log, a
fresh writer opens the log (repairing a torn last line) and every returned id is looked
up in it: *lost* counts decisions returned but not in the log. ``async`` may lose up to
its queue (1,024 by default) per kill; ``flush`` and ``fsync`` must lose none.

**Cost.** Median and mean wall time of ``Guard.check`` on one account and one order,
with no log and with a log in each mode (one thread: the worst case for group commit,
every ``fsync`` check pays a whole disk round trip).

Prints a Markdown table; record results in bench/README.md with the commit measured.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskguard import Guard  # noqa: E402
from riskguard.decisionlog.log import AuditLog, verify_log  # noqa: E402

POLICY = str(ROOT / "policies" / "default.yaml")
ORDER = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01}
MODES = ("async", "flush", "fsync")

SNAPSHOT = {
    "schemaVersion": 1,
    "account": "bench",
    "exchange": "binance",
    "timestamp": "2026-11-24T12:00:00Z",
    "settle": "USDT",
    "walletBalance": 10000.0,
    "positions": [
        {
            "symbol": "BTC/USDT:USDT",
            "side": "long",
            "contracts": 0.05,
            "entryPrice": 60000,
            "markPrice": 61000,
            "leverage": 10,
            "marginMode": "cross",
            "stopLossPrice": 57000,
        }
    ],
    "markets": {"SOL/USDT:USDT": {"markPrice": 150.0}},
}

CHILD = textwrap.dedent(
    """
    import json, sys
    from riskguard import Guard
    mode, log, policy, snap, order = sys.argv[1:6]
    snap, order = json.loads(snap), json.loads(order)
    g = Guard.from_file(policy, audit_log=log, durability=mode)
    out = sys.stdout
    while True:
        d = g.check(snap, order)
        out.write(d.decisionId + "\\n")
        out.flush()
    """
)


def kill_loop(mode: str, kills: int, tmp: Path, rng: random.Random) -> dict:
    log = tmp / f"{mode}.jsonl"
    returned: list[str] = []
    for _ in range(kills):
        after = rng.randint(50, 400)
        p = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(log), POLICY,
             json.dumps(SNAPSHOT), json.dumps(ORDER)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            for n, line in enumerate(iter(p.stdout.readline, ""), 1):
                returned.append(line.strip())
                if n >= after:
                    break
            p.send_signal(signal.SIGKILL)
            rest, _ = p.communicate(timeout=120)
            returned += [x for x in rest.split("\n") if x]
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    with AuditLog(log) as w:
        w.sync()
    logged = set()
    with open(log, "rb") as f:
        for raw in f:
            logged.add(json.loads(raw).get("decisionId"))
    lost = sum(1 for x in returned if x not in logged)
    return {"mode": mode, "kills": kills, "returned": len(returned), "lost": lost,
            "verifies": verify_log(log).ok}  # fmt: skip


def cost(mode: str | None, n: int, tmp: Path) -> tuple[float, float]:
    kw = {} if mode is None else {"audit_log": tmp / f"cost-{mode}.jsonl", "durability": mode}
    times = []
    with Guard.from_file(POLICY, **kw) as g:
        for _ in range(20):
            g.check(SNAPSHOT, ORDER)
        for _ in range(n):
            t0 = time.perf_counter_ns()
            g.check(SNAPSHOT, ORDER)
            times.append((time.perf_counter_ns() - t0) / 1000.0)
        g.flush()
    return statistics.median(times), statistics.fmean(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 kills, 200 checks per mode")
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--checks", type=int, default=None)
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args(argv)
    kills = args.kills or (3 if args.quick else 50)
    checks = args.checks or (200 if args.quick else 3000)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = cost(None, checks, tmp)
        rows = []
        for mode in MODES:
            r = kill_loop(mode, kills, tmp, rng)
            r["median"], r["mean"] = cost(mode, checks, tmp)
            rows.append(r)
    print(
        f"checks per mode: {checks}; no audit log: median {base[0]:.1f} µs, mean {base[1]:.1f} µs\n"
    )
    print("| durability | kill -9s | decisions returned | lost (returned, not in the log) "
          "| log verifies | check median | check mean | median ÷ no log |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['kills']} | {r['returned']:,} | {r['lost']:,} | "
            f"{'yes' if r['verifies'] else 'NO'} | {r['median']:.1f} µs | {r['mean']:.1f} µs | "
            f"{r['median'] / base[0]:.2f}× |"
        )
    print("\nRESULT " + json.dumps({r["mode"]: {"lost": r["lost"], "returned": r["returned"],
                                               "verifies": r["verifies"]} for r in rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
