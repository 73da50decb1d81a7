"""How many accounts one ``riskguard watch`` process can protect.

N accounts (default 200) on the paper exchange, each polled every INTERVAL seconds
(default 5) with the default policy, the snapshot archive, the hash-chained audit log
and the Prometheus exporter on — the whole watcher, in one process. A driver moves
BTC's mark down (every account's liquidation distance falls under the policy's 5 %) and
back up, several times; for every account it records the time from the price step to the
watcher's alert (the min-liquidation-distance episode escalating to error) and to its
resolution.

Printed: CPU of the process as a share of one core over the measured window (and the
part spent inside the in-process paper exchange, which a real exchange would not cost),
and detection latency p50 / p99. Target (issue 16): under 25 % of one core, p99 under
one interval plus 100 ms.

    python bench/watch_bench.py            # 200 accounts, 5 s interval, ~1 minute
    python bench/watch_bench.py --quick    # 20 accounts, 0.2 s interval, a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYM = "BTC/USDT:USDT"
T0 = 1_790_000_000_000


def account(name: str) -> dict:
    return {
        "schemaVersion": 1,
        "account": name,
        "exchange": "binance",
        "settle": "USDT",
        "walletBalance": 10_000,
        "positions": [
            {
                "symbol": SYM,
                "side": "long",
                "contracts": 0.1,
                "entryPrice": 60_000,
                "markPrice": 60_000,
                "leverage": 10,
                "marginMode": "isolated",
                "isolatedMargin": 600,
                "stopLossPrice": 56_000,
            }
        ],
        "leverageTiers": {
            SYM: [
                {"minNotional": 0, "maxNotional": 50_000, "maintenanceMarginRate": 0.004},
                {"minNotional": 50_000, "maxNotional": 600_000, "maintenanceMarginRate": 0.005},
            ]
        },
    }


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))
    return xs[k]


class Timed:
    """The async paper exchange, with the time spent inside it counted."""

    def __init__(self, inner, box):
        self._inner = inner
        self._box = box

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*a, **kw):
            t = time.process_time()
            try:
                return await attr(*a, **kw)
            finally:
                self._box[0] += time.process_time() - t

        return call


async def bench(n: int, interval: float, cycles: int, warmup: float, hold: float) -> dict:
    from riskguard.faces.watch import load_config
    from riskguard.faces.watch.loop import Watcher
    from riskguard.paper import AsyncPaperExchange, PaperExchange

    tmp = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    names = [f"a{i:04d}" for i in range(n)]
    paper = PaperExchange({nm: account(nm) for nm in names}, timestamp=T0)
    spec = {
        "apiVersion": "riskguard/v1",
        "kind": "Watch",
        "spec": {
            "interval": interval,
            "accounts": [
                {
                    "name": nm,
                    "exchange": "binanceusdm",
                    "policy": str(ROOT / "policies/default.yaml"),
                }
                for nm in names
            ],
            "archive": {"dir": str(tmp / "archive")},
            "auditLog": str(tmp / "audit.jsonl"),
            "stateFile": str(tmp / "state.json"),
            "metrics": {"listen": "127.0.0.1:0"},
        },
    }
    # the default policy, with the liquidation distance judged on its 5 % floor only (the
    # paper's flat candles give no ATR): the rule the price step trips and resets
    text = (ROOT / "policies/default.yaml").read_text()
    assert "params: {minPct: 5, atrMultiple: 3}" in text
    (tmp / "policy.yaml").write_text(
        text.replace("params: {minPct: 5, atrMultiple: 3}", "params: {minPct: 5}")
    )
    for a in spec["spec"]["accounts"]:
        a["policy"] = str(tmp / "policy.yaml")
    (tmp / "watch.yaml").write_text(json.dumps(spec))
    cfg = load_config(tmp / "watch.yaml")
    in_paper = [0.0]
    step_at: list[float] = [0.0]
    phase = ["warmup"]
    detect: dict[str, list[float]] = {"down": [], "up": []}
    seen: set[str] = set()

    def on_alert(a) -> None:
        if a.rule != "min-liquidation-distance" or phase[0] == "warmup":
            return
        down = phase[0] == "down" and a.kind in ("open", "escalate") and a.severity == "error"
        up = phase[0] == "up" and a.kind == "resolve"
        if not (down or up):
            return
        key = a.account
        if key not in seen:
            seen.add(key)
            detect[phase[0]].append(time.perf_counter() - step_at[0])

    views = {nm: AsyncPaperExchange(paper=paper.view(nm)) for nm in names}
    w = Watcher(
        cfg,
        exchange_factory=lambda a: Timed(views[a.name], in_paper),
        on_alert=on_alert,
        status=False,
    )
    task = asyncio.ensure_future(w.run())
    await asyncio.sleep(warmup)
    t_wall, ru = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    paper0, rounds0 = in_paper[0], sum(a.rounds for a in w.accounts)
    ts = T0
    missed = 0
    for _ in range(cycles):
        for direction, px in (("down", 56_900.0), ("up", 60_000.0)):
            seen.clear()
            ts += 60_000
            phase[0] = direction
            step_at[0] = time.perf_counter()
            t = time.process_time()
            paper.step({SYM: px}, timestamp=ts)
            in_paper[0] += time.process_time() - t
            deadline = time.perf_counter() + hold
            while len(seen) < n and time.perf_counter() < deadline:
                await asyncio.sleep(min(0.05, interval / 4))
            missed += n - len(seen)
            # let the rest of the hold pass so every cycle has the same length
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t_wall
    cpu = (ru2.ru_utime - ru.ru_utime) + (ru2.ru_stime - ru.ru_stime)
    rounds = sum(a.rounds for a in w.accounts) - rounds0
    w.stop()
    await asyncio.wait_for(task, 60)
    return {
        "accounts": n,
        "interval": interval,
        "wall": wall,
        "rounds_per_s": rounds / wall,
        "cpu_share": cpu / wall,
        "paper_share": (in_paper[0] - paper0) / wall,
        "detect": detect["down"],
        "resolve": detect["up"],
        "missed": missed,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="20 accounts at 0.2 s: a smoke run")
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--cycles", type=int, default=4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.quick:
        n, interval, cycles = 20, 0.2, 2
    else:
        n, interval, cycles = args.accounts, args.interval, args.cycles
    hold = interval * 1.2 + 0.5
    r = asyncio.run(bench(n, interval, cycles, warmup=interval * 2 + 1.0, hold=hold))
    ms = 1000.0
    print(
        f"riskguard watch: {r['accounts']} accounts, {r['interval']:g} s interval, "
        f"{r['wall']:.1f} s measured, {r['rounds_per_s']:.1f} rounds/s"
    )
    print()
    print(
        "| accounts | interval | CPU (% of one core) | of which paper exchange | watcher only "
        "| detect p50 | detect p99 | resolve p50 | resolve p99 | samples | missed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['accounts']} | {r['interval']:g} s | {100 * r['cpu_share']:.1f} % "
        f"| {100 * r['paper_share']:.1f} % | {100 * (r['cpu_share'] - r['paper_share']):.1f} % "
        f"| {pct(r['detect'], 0.5) * ms:.0f} ms | {pct(r['detect'], 0.99) * ms:.0f} ms "
        f"| {pct(r['resolve'], 0.5) * ms:.0f} ms | {pct(r['resolve'], 0.99) * ms:.0f} ms "
        f"| {len(r['detect'])} | {r['missed']} |"
    )
    target = r["interval"] * ms + 100
    print()
    print(
        f"target: CPU < 25 % of one core; detection p99 < {target:.0f} ms "
        f"(one interval + 100 ms); mean detection {statistics.fmean(r['detect'] or [0]) * ms:.0f} ms"
    )
    return 0 if r["missed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
