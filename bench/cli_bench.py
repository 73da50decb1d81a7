"""One-shot CLI and ``--stream`` cost: ``riskguard check`` from a shell against ``python -c pass``,
and a stream request against the same check in-process.

    python bench/cli_bench.py            # 20 pairs, 500 stream requests
    python bench/cli_bench.py --quick    # a smoke run (CI): proves it runs, measures nothing

**One-shot**: ``riskguard check -p policies/default.yaml -s snap.json -o order.json --json``
(the benchmark's 10-position account, see ``check_bench.py``) and ``python -c pass`` run in
turn, A B A B …, each a fresh process; wall time by this process's clock around each run,
CPU (user + system) from ``getrusage(RUSAGE_CHILDREN)``. The ratio is taken pair by pair
and the median reported, so a drift in the machine's speed hits both alike. Run with a
cold compiled-policy cache (a new ``RISKGUARD_CACHE_DIR`` each run) and a warm one.

**Stream**: one ``riskguard check --stream`` process; each request is one JSON line with the
snapshot and the order, the next sent when the decision line is back (round trip, as a bot
waits for it). Compared with ``Guard.check`` of the same dicts in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from check_bench import account_doc, commit  # noqa: E402

from riskguard import Guard  # noqa: E402
from riskguard._pure import build  # noqa: E402

POLICY = ROOT / "policies" / "default.yaml"


def _riskguard() -> list[str]:
    exe = Path(sys.executable).with_name("riskguard")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "riskguard"]


def _timed(cmd: list[str], env: dict) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return wall, cpu, r.returncode


def one_shot(pairs: int, tmp: Path, warm: bool) -> dict:
    doc, order = account_doc(10)
    snap, od = tmp / "snap.json", tmp / "order.json"
    snap.write_text(json.dumps(doc))
    od.write_text(json.dumps(order))
    a = [*_riskguard(), "check", "-p", str(POLICY), "-s", str(snap), "-o", str(od), "--json"]
    b = [sys.executable, "-c", "pass"]
    cache = tmp / "cache"
    env = {**os.environ, "RISKGUARD_CACHE_DIR": str(cache)}
    _timed(a, env)  # warm-up (fills the cache, the page cache)
    _timed(b, env)
    rows = []
    for _ in range(pairs):
        if not warm:
            shutil.rmtree(cache, ignore_errors=True)
        wa, ca, _ = _timed(a, env)
        wb, cb, _ = _timed(b, env)
        rows.append((wa, ca, wb, cb))
    med = statistics.median
    return {
        "wall_a": med(r[0] for r in rows) * 1000,
        "cpu_a": med(r[1] for r in rows) * 1000,
        "wall_b": med(r[2] for r in rows) * 1000,
        "cpu_b": med(r[3] for r in rows) * 1000,
        "wall_ratio": med(r[0] / r[2] for r in rows),
        "cpu_ratio": med(r[1] / max(r[3], 1e-6) for r in rows),
    }


def stream(requests: int) -> dict:
    doc, order = account_doc(10)
    line = json.dumps({"snapshot": doc, "order": order}) + "\n"
    p = subprocess.Popen(
        [*_riskguard(), "check", "--stream", "-p", str(POLICY)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert p.stdin is not None and p.stdout is not None
    try:
        for _ in range(20):  # warm-up
            p.stdin.write(line)
            p.stdin.flush()
            json.loads(p.stdout.readline())
        times = []
        for _ in range(requests):
            t = time.perf_counter_ns()
            p.stdin.write(line)
            p.stdin.flush()
            out = json.loads(p.stdout.readline())
            times.append(time.perf_counter_ns() - t)
        assert "decision" in out, out
    finally:
        p.stdin.close()
        p.wait(timeout=60)
    guard = Guard.from_file(POLICY)
    local = []
    for _ in range(20):
        guard.check(doc, order)
    for _ in range(requests):
        t = time.perf_counter_ns()
        guard.check(doc, order)
        local.append(time.perf_counter_ns() - t)
    s, g = statistics.median(times) / 1000, statistics.median(local) / 1000
    return {"stream_us": s, "inproc_us": g, "ratio": s / g}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 pairs, 20 requests")
    args = ap.parse_args()
    if args.quick:
        args.pairs, args.requests = 2, 20
    print(
        f"Python {platform.python_version()} ({build()}) on {platform.machine()}, {os.cpu_count()} cores; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; commit {commit()}."
    )
    print()
    print(
        "| run | `riskguard check` wall (ms) | CPU (ms) | `python -c pass` wall (ms) | CPU (ms) "
        "| wall ratio | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for warm in (False, True):
            r = one_shot(args.pairs, Path(tmp), warm)
            label = "policy cache warm" if warm else "policy cache cold"
            print(
                f"| {label} | {r['wall_a']:.0f} | {r['cpu_a']:.0f} | {r['wall_b']:.0f} "
                f"| {r['cpu_b']:.0f} | {r['wall_ratio']:.1f}× | {r['cpu_ratio']:.1f}× |"
            )
    s = stream(args.requests)
    print()
    print("| `--stream` request, round trip (µs) | `Guard.check` in-process, dicts (µs) | ratio |")
    print("|---:|---:|---:|")
    print(f"| {s['stream_us']:.0f} | {s['inproc_us']:.0f} | {s['ratio']:.2f}× |")


if __name__ == "__main__":
    main()
