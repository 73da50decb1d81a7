"""Audit throughput: `riskguard audit` against the time Python takes just to parse the input.

    python bench/audit_bench.py                    # 10k and 100k ten-position snapshots
    python bench/audit_bench.py --sizes 2000 --workers 1,2 --profile

For each input size the benchmark generates JSON Lines with ``riskguard.policytools.generate`` (kept
in ``--data-dir`` and reused), then measures:

- **parse**: read the file and ``json.loads`` every line, nothing else (this process);
- **audit wN**: ``riskguard audit --out decisions.jsonl --workers N`` in a child process,
  exactly as a user runs it; the time is the audit's own elapsed time (policy loaded,
  pool started, every decision written), and the wall time includes interpreter start;
- **peak RSS** of the audit process (``getrusage`` in the child) and of its whole process
  tree (pool workers included, sampled from ``/proc``), to show memory does not grow with
  the input.

``--profile`` prints where an in-process audit spends its time (cProfile over the first
2,000 snapshots). Results go to stdout as a Markdown table for ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "default.yaml"

# ``--policy core``: the three core rules of the first default policy, fixed here so the
# benchmark stays comparable while policies/default.yaml grows.
CORE_POLICY = """\
apiVersion: riskguard/v1
kind: Policy
metadata: {name: bench-core, version: "1.0.0"}
spec:
  mode: enforce
  rules:
    - id: margin-utilization
      type: margin_utilization
      params: {max: 0.35, warnAt: 0.30, includeOpenOrders: true}
      severity: error
      onViolation: [resize_order, alert]
    - id: stop-before-liquidation
      type: stop_before_liquidation
      params: {required: true, bufferFraction: 0.10, bufferPct: 0.5,
               liquidationSource: conservative}
      severity: error
      onViolation: [set_stop_loss, alert]
    - id: isolate-on-volatility
      type: isolate_on_volatility
      params: {atrPctAbove: 5.0, atrPeriod: 14}
      severity: error
      onViolation: [switch_margin_mode, alert]
"""

# Runs the CLI in-process so getrusage(RUSAGE_SELF) is the audit process itself.
CHILD = r"""
import json, resource, sys, time
from riskguard.faces.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime
print("BENCH " + json.dumps({"code": code, "main_s": wall, "rss_kib": ru.ru_maxrss,
                             "cpu_s": cpu}), file=sys.stderr)
"""


def generate(path: Path, n: int, positions: int, seed: int) -> None:
    from riskguard.policytools.generate import generate_stream, write_jsonl

    accounts = 10
    steps = -(-n // accounts)
    it = generate_stream(
        accounts=accounts,
        steps=steps,
        positions=positions,
        seed=seed,
        exchange="binance",
        start="2026-11-01T00:00:00Z",
        interval_s=60,
        candles=0,
    )

    def first_n():
        for i, doc in enumerate(it):
            if i >= n:
                return
            yield doc

    tmp = path.with_suffix(".tmp")
    write_jsonl(tmp, first_n())
    tmp.replace(path)


def dataset(data_dir: Path, n: int, positions: int, seed: int) -> Path:
    path = data_dir / f"snapshots-{n}-p{positions}-s{seed}.jsonl"
    if not path.exists():
        t = time.perf_counter()
        generate(path, n, positions, seed)
        print(
            f"# generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
    return path


def parse_time(path: Path, repeat: int = 3) -> tuple[float, float]:
    """Best of ``repeat`` (wall s, CPU s): read the file line by line and json.loads each line."""
    best = (float("inf"), float("inf"))
    loads = json.loads
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                loads(line)
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_KIB = (os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096) // 1024


def _tree(pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (RSS KiB, CPU s)} for ``pid`` and its descendants (Linux /proc; {} elsewhere)."""
    out: dict[int, tuple[int, float]] = {}
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in out:
            continue
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            # after "pid (comm)": state=0 … utime=11 stime=12 … rss=21 (pages)
            out[p] = (int(fields[21]) * _PAGE_KIB, (int(fields[11]) + int(fields[12])) / _TICK)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError, IndexError):
            continue
    return out


def run_audit(path: Path, workers: int, out: Path | None, extra: list[str]) -> dict:
    cmd = [sys.executable, "-c", CHILD, "audit", "-p", str(POLICY), str(path)]
    if out is not None:
        out.unlink(missing_ok=True)
        cmd += ["--out", str(out)]
    cmd += ["--workers", str(workers), "--json", *extra]
    peak_tree = 0
    cpu_last: dict[int, float] = {}  # last CPU time seen of every process of the tree
    rss_max: dict[int, int] = {}  # peak RSS seen of every process of the tree
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t = time.perf_counter()
    # As installed: byte-compiled modules (a sandbox's PYTHONDONTWRITEBYTECODE would make
    # the audit and each pool worker compile riskguard from source on every start).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.wait(0.05):
            tree = _tree(proc.pid)
            peak_tree = max(peak_tree, sum(r for r, _c in tree.values()))
            for p, (r, c) in tree.items():
                cpu_last[p] = c
                rss_max[p] = max(r, rss_max.get(p, 0))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t
    done.set()
    th.join()
    bench = next((json.loads(x[6:]) for x in stderr.splitlines() if x.startswith("BENCH ")), None)
    if bench is None or bench["code"] not in (0, 1):
        raise SystemExit(f"audit failed ({proc.returncode}):\n{stderr[-3000:]}")
    summary = json.loads(stdout)
    main_cpu = bench["cpu_s"]
    others = sum(c for p, c in cpu_last.items() if p != proc.pid)
    return {
        "wall_s": wall,
        "audit_s": summary["run"]["elapsedS"],
        "snapshots": summary["snapshots"],
        "engine": summary["run"]["engine"],
        "cpu_all_s": main_cpu + others,
        "cpu_main_s": main_cpu,
        "rss_main_mib": bench["rss_kib"] / 1024,
        "rss_tree_mib": peak_tree / 1024 if peak_tree else None,
        "rss_worker_mib": max((r for p, r in rss_max.items() if p != proc.pid), default=0) / 1024,
        "load": load,
    }


def profile(path: Path, n: int = 2000) -> str:
    from riskguard.batch.run import AuditConfig, iter_chunks, run_chunk
    from riskguard.engine.policy import load_policy

    policy = load_policy(POLICY)
    config = AuditConfig.for_policy(policy)
    with open(path, encoding="utf-8") as fh:
        records = [(f"{path}:{i}", line) for i, line in zip(range(1, n + 1), fh, strict=False)]
    chunks = list(iter_chunks(records))
    prof = cProfile.Profile()
    prof.enable()
    for c in chunks:
        run_chunk(policy, config, c)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    return buf.getvalue()


def main() -> None:
    global POLICY
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="snapshot counts (comma-separated)")
    ap.add_argument("--positions", type=int, default=10)
    ap.add_argument("--workers", default="1,2", help="worker counts to run (comma-separated)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "riskguard-bench"
    )
    ap.add_argument("--metrics", default="compact", choices=("compact", "full"))
    ap.add_argument("--profile", action="store_true", help="also profile the in-process path")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (best kept)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (300 snapshots, 1 and 2 workers): proves the script runs, measures nothing",
    )
    ap.add_argument(
        "--policy",
        default=str(POLICY),
        help="policy file, or 'core' for the three core rules (default: policies/default.yaml)",
    )
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.workers, args.repeat = "300", "1,2", 1
    if args.policy == "core":
        POLICY = args.data_dir / "bench-core.yaml"
        args.data_dir.mkdir(parents=True, exist_ok=True)
        POLICY.write_text(CORE_POLICY)
    else:
        POLICY = Path(args.policy).resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(x) for x in args.sizes.split(",")]
    workers = [int(x) for x in args.workers.split(",")]

    sys.path.insert(0, str(ROOT))
    from riskguard._pure import build

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()} ({build()}), policy {POLICY.name}, "
        f"{args.positions} positions/snapshot, --metrics {args.metrics}"
    )
    print()
    print(
        "| snapshots | run | wall (s) | snapshots/s | × parse (wall) | CPU, all processes (s) "
        "| of which the audit process (s) "
        "| CPU ÷ workers ÷ parse CPU | peak RSS audit (MiB) | peak RSS one worker (MiB) "
        "| peak RSS all processes (MiB) | load avg |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    last = None
    for n in sizes:
        path = dataset(args.data_dir, n, args.positions, args.seed)
        tp, cp = parse_time(path, repeat=max(3, args.repeat))
        mb = path.stat().st_size / 1e6
        print(
            f"| {n:,} | read + `json.loads` ({mb:.0f} MB) | {tp:.2f} | {n / tp:,.0f} | 1.0 "
            f"| {cp:.2f} | | 1.0 | | | | |"
        )
        runs = [(w, True) for w in workers] + [(max(workers), False)]
        for w, write in runs:
            out = args.data_dir / f"decisions-{n}-w{w}.jsonl" if write else None
            # best of --repeat: the machine may be shared; the minimum is the least disturbed
            r = min(
                (run_audit(path, w, out, ["--metrics", args.metrics]) for _ in range(args.repeat)),
                key=lambda x: x["audit_s"],
            )
            assert r["snapshots"] == n, r
            tree = f"{r['rss_tree_mib']:.0f}" if r["rss_tree_mib"] else "n/a"
            worker = f"{r['rss_worker_mib']:.0f}" if r["engine"].startswith("process(") else "—"
            cpu = r["cpu_all_s"]
            par = w if r["engine"].startswith("process") else 1
            what = "--out decisions.jsonl" if write else "summary only, no --out"
            print(
                f"| {n:,} | audit, {w} worker{'s' if w > 1 else ''}, {what} ({r['engine']}) "
                f"| {r['audit_s']:.2f} | {n / r['audit_s']:,.0f} | {r['audit_s'] / tp:.1f} "
                f"| {cpu:.1f} | {r['cpu_main_s']:.1f} | {cpu / par / cp:.1f} | {r['rss_main_mib']:.0f} | {worker} | {tree} "
                f"| {r['load']:.1f} |",
                flush=True,
            )
            if out is not None:
                out.unlink()
        last = path
    if args.profile and last is not None:
        print()
        print("```")
        print(profile(last))
        print("```")


if __name__ == "__main__":
    main()
