"""The decision service's own CPU per check: the ASGI app driven in process, beside
``Guard.check``, for the same 10-position check as ``bench/serve_bench.py``.

    python bench/serve_app_bench.py            # the README figures (about 20 s)
    python bench/serve_app_bench.py --quick    # a smoke run (a test runs it)

No HTTP server and no client: each ``POST /v1/check`` is one call of the app with an ASGI
scope and a ``receive`` that hands over the whole body at once (what uvicorn does for a
request that arrived in one piece), so the figure is what the service adds around the
evaluation — the body, the request's account and order, the decision's wire form and its
encoding, metrics, the response — without uvicorn's own cost. Start-up is as the service's
(``gc.freeze()`` after it, as its lifespan does).

Each round times ``--checks`` calls of ``Guard.check`` and then as many of the app, by the
process's CPU time (user + system: what another job on the machine steals shows less than
in wall time); the table gives the best round of each (and the median), and **service −
Guard** is the difference of the best rounds. Two request forms, as in serve_bench:
**stored** (the snapshot stored once, then ``{account, order}``; ``Guard.check`` on a
prebuilt ``Snapshot``) and **full** (``{snapshot, order}`` every time; ``Guard.check`` on
the dicts).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from check_bench import account_doc  # noqa: E402

from riskguard import Guard  # noqa: E402
from riskguard._pure import build  # noqa: E402
from riskguard.model.snapshot import build_order, build_snapshot  # noqa: E402

POLICY = ROOT / "policies" / "default.yaml"
ACCOUNT = "bench-10"


def _scope(path: str, body: bytes) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8181"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8181),
    }


async def _call(app, path: str, body: bytes) -> tuple[int, bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(_scope(path, body), receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def measure(form: str, checks: int, rounds: int) -> dict:
    from riskguard.faces.serve.app import create_app
    from riskguard.faces.serve.config import ServeConfig

    doc, order = account_doc(10)
    state = tempfile.mkdtemp(prefix="riskguard-app-bench-")
    app = create_app(ServeConfig(policy=str(POLICY), state_dir=state, watch=False))
    guard = Guard.from_file(POLICY)
    if form == "stored":
        status, _ = await _call(app, f"/v1/snapshots/{ACCOUNT}", json.dumps(doc).encode())
        assert status == 200
        body = json.dumps({"account": ACCOUNT, "order": order}).encode()
        snap, o = build_snapshot(doc), build_order(order)
    else:
        body = json.dumps({"snapshot": doc, "order": order}).encode()
        snap, o = doc, order
    status, out = await _call(app, "/v1/check", body)
    served = json.loads(out)
    direct = guard.check(snap, o).to_dict(metrics=False)
    assert status == 200 and served["decision"] == direct["decision"], (status, out[:300])
    assert served["violations"] == direct["violations"]
    for _ in range(min(checks, 300)):  # warm-up
        guard.check(snap, o)
        await _call(app, "/v1/check", body)
    gc.collect()
    gc.freeze()  # as the service's lifespan does after start-up
    guard_us: list[float] = []
    app_us: list[float] = []
    cpu = time.process_time
    for _ in range(rounds):
        c0 = cpu()
        for _ in range(checks):
            guard.check(snap, o)
        c1 = cpu()
        for _ in range(checks):
            await _call(app, "/v1/check", body)
        c2 = cpu()
        guard_us.append((c1 - c0) / checks * 1e6)
        app_us.append((c2 - c1) / checks * 1e6)
    gc.unfreeze()
    app.state.service.close()
    return {
        "form": form,
        "guard": min(guard_us),
        "guard_median": statistics.median(guard_us),
        "app": min(app_us),
        "app_median": statistics.median(app_us),
        "n": checks * rounds,
        "bytes": len(out),
    }


def report(rows: list[dict], load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        commit = "?"
    lb, la = load
    out = [
        f"commit {commit or '?'} · Python {platform.python_version()} ({build()}) · "
        f"{os.cpu_count()} CPUs · "
        f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, "
        f"after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
        "",
        "| request | Guard.check | service (app in process) | service − Guard "
        "| medians (Guard, service) | answer | n |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['form']} | {r['guard']:,.1f} µs | {r['app']:,.1f} µs | "
            f"{r['app'] - r['guard']:,.1f} µs | {r['guard_median']:,.0f}, "
            f"{r['app_median']:,.0f} µs | {r['bytes']:,} B | {r['n']:,} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (few checks, 2 rounds)")
    ap.add_argument("--checks", type=int, default=2000, help="checks per round (default 2000)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--forms", default="stored,full", help="request forms (default stored,full)")
    args = ap.parse_args()
    forms = args.forms.split(",")
    if set(forms) - {"stored", "full"}:
        ap.error(f"unknown form: {', '.join(sorted(set(forms) - {'stored', 'full'}))}")
    if args.quick:
        args.checks, args.rounds = 50, 2
    before = os.getloadavg()
    rows = [asyncio.run(measure(form, args.checks, args.rounds)) for form in forms]
    print(report(rows, (before, os.getloadavg())))


if __name__ == "__main__":
    main()
