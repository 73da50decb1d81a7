"""Decision service speed: ``riskguard serve`` beside ``check --stream`` and the in-process
``Guard``, for the same 10-position check, in one run.

    python bench/serve_bench.py                # the README table (about 1 minute)
    python bench/serve_bench.py --quick        # a smoke run (a test runs it)

For each way of asking and each number of concurrent clients (1, 8, 64) the script keeps
that many requests in flight for ``--seconds`` and reports requests/s and the latency
percentiles (p50, p99) seen by the client:

- **serve**: ``riskguard serve`` on loopback (default settings: 250 ms time budget, no
  token), N keep-alive HTTP/1.1 connections, one request in flight on each. The client is
  a minimal asyncio HTTP/1.1 client (prebuilt request bytes), so its own cost stays small
  — but it runs on the same cores as the server.
- **check --stream**: one ``riskguard check --stream`` process; N requests in flight on
  its pipe (JSON Lines, answered in order).
- **in-process Guard**: ``Guard.check`` called from N threads sharing one guard (its
  evaluation lock serializes them: the figure shows the engine's ceiling).

Two request forms: **full** sends the snapshot with every request (parsed and validated
each time: the dict path); **stored** sends the snapshot once (``POST /v1/snapshots``, a
stream line with ``account``, a prebuilt ``Snapshot`` in process) and then only the
account and the order. The account is ``bench/check_bench.py``'s 10-position Binance
book and the order adds to a cross position (a resize). Before timing, every mode's
decision is checked to agree with the in-process one. The load average is printed with
the figures: the machine may be shared.

**CPU / check** is the CPU time (user + system) the answering side spent per check: the
serve process and its workers, the ``--stream`` process, or (in process) the whole
benchmark process. Latency minus that is waiting: for a core, for the client, on the
loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import threading
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
MAX_REQUESTS = 200_000  # per measurement, whatever --seconds says


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) of a process and its children so far (Linux), else None."""
    if pid is None or not os.path.exists(f"/proc/{pid}/stat"):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def result(
    mode: str,
    form: str,
    clients: int,
    lat: list[float],
    wall: float,
    errors: int,
    cpu: float | None = None,
    client_cpu: float | None = None,
) -> dict:
    return {
        "cpu_us": None if cpu is None or not lat else cpu / len(lat) * 1e6,
        "client_cpu_us": None if client_cpu is None or not lat else client_cpu / len(lat) * 1e6,
        "mode": mode,
        "form": form,
        "clients": clients,
        "n": len(lat),
        "rps": len(lat) / wall if wall > 0 else 0.0,
        "p50_ms": pct(lat, 0.50) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
        "errors": errors,
    }


# --------------------------------------------------------------------------- in process


def bench_guard(form: str, clients: int, seconds: float) -> dict:
    doc, order = account_doc(10)
    guard = Guard.from_file(POLICY)
    if form == "stored":
        snap, o = build_snapshot(doc), build_order(order)
    else:
        snap, o = doc, order
    lats: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def work(i: int) -> None:
        out = lats[i]
        pc = time.perf_counter
        start.wait()
        end = stop_at[0]
        while True:
            t0 = pc()
            if t0 >= end or len(out) * clients >= MAX_REQUESTS:
                return
            guard.check(snap, o)
            out.append(pc() - t0)

    for _ in range(200):  # warm-up
        guard.check(snap, o)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    c0 = time.process_time()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return result("in-process Guard", form, clients, [x for xs in lats for x in xs], wall, 0, cpu)


# --------------------------------------------------------------------------- --stream


async def _bench_stream(form: str, clients: int, seconds: float, want: str) -> dict:
    doc, order = account_doc(10)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "riskguard",
        "check",
        "--stream",
        "-p",
        str(POLICY),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        limit=1 << 22,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = {"id": 0, "account": ACCOUNT, "snapshot": doc, "order": order}
        proc.stdin.write((json.dumps(first) + "\n").encode())
        got = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        if got.get("decision") != want:
            raise SystemExit(f"--stream decided {got.get('decision')!r}, in-process {want!r}")
        if form == "full":
            line = json.dumps({"account": ACCOUNT, "snapshot": doc, "order": order})
        else:
            line = json.dumps({"account": ACCOUNT, "order": order})
        payload = (line + "\n").encode()
        sent: list[float] = []
        lat: list[float] = []
        errors = 0
        window = asyncio.Semaphore(clients)
        stop_at = time.perf_counter() + seconds
        done_sending = asyncio.Event()

        async def sender() -> None:
            while time.perf_counter() < stop_at and len(sent) < MAX_REQUESTS:
                await window.acquire()
                sent.append(time.perf_counter())
                proc.stdin.write(payload)
                if len(sent) % 16 == 0:
                    await proc.stdin.drain()
            done_sending.set()

        async def reader() -> None:
            nonlocal errors
            i = 0
            while not (done_sending.is_set() and i >= len(sent)):
                raw = await proc.stdout.readline()
                if not raw:
                    break
                lat.append(time.perf_counter() - sent[i])
                if b'"error"' in raw[:20]:
                    errors += 1
                i += 1
                window.release()

        t0 = time.perf_counter()
        c0 = cpu_seconds(proc.pid)
        k0 = time.process_time()
        await asyncio.gather(sender(), reader())
        wall = time.perf_counter() - t0
        k1 = time.process_time()
        c1 = cpu_seconds(proc.pid)
        cpu = None if c0 is None or c1 is None else c1 - c0
        return result("check --stream", form, clients, lat, wall, errors, cpu, k1 - k0)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


# --------------------------------------------------------------------------- serve


class ServeProcess:
    def __init__(self, workers: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "riskguard",
                "serve",
                "-p",
                str(POLICY),
                "--port",
                "0",
                "--workers",
                str(workers),
                "--no-watch",
                "--log-level",
                "warning",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        line = self.proc.stderr.readline()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            self.stop()
            raise SystemExit(f"serve did not start: {line}")
        self.host, self.port = m.group(1), int(m.group(2))
        self._idle_sockets: dict[int, int] = {}
        threading.Thread(target=self._drain, daemon=True).start()
        while time.monotonic() < deadline:
            try:
                status, _ = asyncio.run(self.request("GET", "/readyz"))
                if status == 200:
                    time.sleep(0.5)  # every worker up
                    self._idle_sockets = self._sockets()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("serve not ready within 60 s")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for _ in self.proc.stderr:
            pass

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        r, w = await asyncio.open_connection(self.host, self.port)
        try:
            w.write(_request(method, path, body, close=True))
            return await _response(r)
        finally:
            w.close()

    def _sockets(self) -> dict[int, int]:
        """Open sockets of each process of the service (Linux /proc; else empty)."""
        out = {}
        for pid in _tree(self.proc.pid):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            n = 0
            for fd in fds:
                with contextlib.suppress(OSError):
                    n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            out[pid] = n
        return out

    def connections_per_worker(self) -> str:
        """Client connections each worker holds, most first ("5/3"); "?" if unknown."""
        now = self._sockets()
        held = sorted((n - self._idle_sockets.get(p, 0) for p, n in now.items()), reverse=True)
        return "/".join(str(h) for h in held if h > 0) or "?"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _request(method: str, path: str, body: bytes, close: bool = False) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


async def _response(r: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await r.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    low = head.lower()
    i = low.find(b"content-length:")
    n = int(low[i + 15 : low.index(b"\r\n", i)]) if i >= 0 else 0
    return status, await r.readexactly(n)


async def _bench_serve(
    srv: ServeProcess, label: str, form: str, clients: int, seconds: float, want: str
) -> dict:
    doc, order = account_doc(10)
    if form == "full":
        body = json.dumps({"snapshot": doc, "order": order}).encode()
    else:
        status, _ = await srv.request("POST", f"/v1/snapshots/{ACCOUNT}", json.dumps(doc).encode())
        assert status == 200
        body = json.dumps({"account": ACCOUNT, "order": order}).encode()
    status, raw = await srv.request("POST", "/v1/check", body)
    got = json.loads(raw).get("decision") if status == 200 else f"HTTP {status}"
    if got != want:
        raise SystemExit(f"serve decided {got!r}, in-process {want!r}")
    req = _request("POST", "/v1/check", body)
    lats: list[list[float]] = []
    errors = [0]
    stop_at = time.perf_counter() + seconds

    async def one(out: list[float], r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            pc = time.perf_counter
            while True:
                t0 = pc()
                if t0 >= stop_at or len(out) * clients >= MAX_REQUESTS:
                    return
                w.write(req)
                status, _ = await _response(r)
                out.append(pc() - t0)
                if status != 200:
                    errors[0] += 1
        finally:
            w.close()

    for _ in range(clients):
        lats.append([])
    conns = await asyncio.gather(
        *(asyncio.open_connection(srv.host, srv.port) for _ in range(clients))
    )
    for r, w in conns:  # one request each: every connection is accepted by a worker
        w.write(req)
        await _response(r)
    split = srv.connections_per_worker()
    t0 = time.perf_counter()
    c0 = cpu_seconds(srv.proc.pid)
    k0 = time.process_time()
    await asyncio.gather(*(one(out, r, w) for out, (r, w) in zip(lats, conns, strict=True)))
    wall = time.perf_counter() - t0
    k1 = time.process_time()
    c1 = cpu_seconds(srv.proc.pid)
    cpu = None if c0 is None or c1 is None else c1 - c0
    lat = [x for xs in lats for x in xs]
    row = result(label, form, clients, lat, wall, errors[0], cpu, k1 - k0)
    row["split"] = split
    return row


# --------------------------------------------------------------------------- report


def run(args) -> tuple[list[dict], dict]:
    doc, order = account_doc(10)
    want = Guard.from_file(POLICY).check(doc, order).decision
    clients = [int(c) for c in args.clients.split(",")]
    forms = tuple(args.forms.split(","))
    modes = set(args.modes.split(","))
    rows: list[dict] = []
    env = {"load_before": os.getloadavg()}
    for form in forms if "guard" in modes else ():
        for c in clients:
            rows.append(bench_guard(form, c, args.seconds))
    for form in forms if "stream" in modes else ():
        for c in clients:
            rows.append(asyncio.run(_bench_stream(form, c, args.seconds, want)))
    workers_list = [int(w) for w in args.workers.split(",")] if "serve" in modes else []
    for workers in workers_list:
        srv = ServeProcess(workers)
        try:
            label = f"serve ({workers} worker{'s' if workers > 1 else ''})"
            for form in forms:
                for c in clients:
                    rows.append(asyncio.run(_bench_serve(srv, label, form, c, args.seconds, want)))
        finally:
            srv.stop()
    env["load_after"] = os.getloadavg()
    return rows, env


def report(rows: list[dict], env: dict) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        commit = "?"
    lb, la = env["load_before"], env["load_after"]
    out = [
        f"commit {commit or '?'} · Python {platform.python_version()} ({build()}) · {os.cpu_count()} CPUs · "
        f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
        "",
        "| mode | request | clients | checks/s | p50 | p99 | CPU / check | client CPU / check "
        "| connections per worker | n | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        cpu = "n/a" if r["cpu_us"] is None else f"{r['cpu_us']:,.0f} µs"
        ccpu = "—" if r["client_cpu_us"] is None else f"{r['client_cpu_us']:,.0f} µs"
        out.append(
            f"| {r['mode']} | {r['form']} | {r['clients']} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.3f} ms | {r['p99_ms']:.3f} ms | {cpu} | {ccpu} | "
            f"{r.get('split', '')} | {r['n']:,} | {r['errors']} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs at 1 and 8 clients")
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    ap.add_argument("--clients", default="1,8,64", help="concurrency levels (default 1,8,64)")
    ap.add_argument("--workers", default="1,2", help="serve worker counts (default 1,2)")
    ap.add_argument(
        "--modes",
        default="guard,stream,serve",
        help="which ways of asking to run (default guard,stream,serve)",
    )
    ap.add_argument("--forms", default="stored,full", help="request forms (default stored,full)")
    args = ap.parse_args()
    unknown = set(args.modes.split(",")) - {"guard", "stream", "serve"}
    unknown |= set(args.forms.split(",")) - {"stored", "full"}
    if unknown:
        ap.error(f"unknown mode or form: {', '.join(sorted(unknown))}")
    if args.quick:
        args.seconds, args.clients, args.workers = 0.3, "1,8", "1"
    rows, env = run(args)
    print(report(rows, env))
    if any(r["errors"] or not r["n"] for r in rows):
        raise SystemExit("some requests failed")


if __name__ == "__main__":
    main()
