"""Fault injection: the audit trail and fail-closed under kill -9, full disks, hostile
plugins, odd files and hostile streams (issue 19).

Every test here failed before its fix. Time is bounded: a handful of kills per
durability mode (bench/durability_bench.py does 50), small files made sparse, every
child process under a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from riskguard import Guard
from riskguard.decisionlog.log import AuditLog, AuditLogError, verify_log
from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import build_registry
from riskguard.engine.policy import load_policy
from riskguard.errors import RiskguardError
from riskguard.faces.stream import Stream, run_stream
from riskguard.model.snapshot import build_order, build_snapshot

from .conftest import FIXTURES, POLICIES, ROOT, run_cli, snapshot_doc

FAULTS = FIXTURES / "faults"
DEFAULT = str(POLICIES / "default.yaml")
KEY = b"k" * 32
NOW = 1_795_000_000_000
SOL_BUY = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01}

CORE = {
    "apiVersion": "riskguard/v1",
    "kind": "Policy",
    "metadata": {"name": "core", "version": "1"},
    "spec": {
        "rules": [
            {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35, "warnAt": 0.3}},
        ]
    },
}


@pytest.fixture(scope="module")
def faulty_registry():
    return build_registry((str(FAULTS / "plugin-faults.py"),), load_entry_points=False)


def _faulty_policy(kind: str) -> dict:
    rules = [*CORE["spec"]["rules"], {"id": "f", "type": "faulty", "params": {"kind": kind}}]
    return {**CORE, "spec": {"rules": rules}}


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_bytes().splitlines() if x.endswith(b"}")]


# =========================================================== 1. one odd number, one odd record


def test_a_non_finite_figure_deep_in_a_finding_never_reaches_the_decision(faulty_registry):
    policy = load_policy(_faulty_policy("nested-nan"), registry=faulty_registry)
    d = evaluate(policy, build_snapshot(snapshot_doc()), build_order(SOL_BUY), now_ms=NOW)
    doc = json.loads(json.dumps(d.to_dict(), allow_nan=False))  # valid JSON throughout
    effect = next(a for a in doc["actions"] if "effect" in a)["effect"]
    assert effect == [{"liquidationPriceAfter": None}]
    faulty = next(v for v in doc["violations"] if v["code"] == "FAULTY")
    assert faulty["context"]["series"] == [None, 1.0]


def test_a_record_that_cannot_be_written_is_a_fault_not_a_log_outage(tmp_path, faulty_registry):
    log = tmp_path / "audit.jsonl"
    odd = load_policy(_faulty_policy("unrenderable"), registry=faulty_registry)
    with Guard(odd, audit_log=log, durability="flush") as g:
        first = g.check(snapshot_doc(), SOL_BUY)
        g.set_trading_state("active", reason=math.nan)  # a caller's odd value, too
        again = g.check(snapshot_doc(), SOL_BUY)
    assert "AUDIT_LOG_UNAVAILABLE" not in {v.code for v in again.violations}
    recs = _records(log)
    assert [r["event"] for r in recs] == ["record_fault", "record_fault", "record_fault"]
    assert recs[0]["decisionId"] == first.decisionId and recs[0]["failedEvent"] == "decision"
    assert recs[1]["failedEvent"] == "trading_state"
    assert recs[2]["decisionId"] == again.decisionId
    assert verify_log(log).ok


# =========================================================== 2. the guard's durability contract

_CHILD = textwrap.dedent(
    """
    import json, sys
    from riskguard import Guard
    mode, log, policy, snap = sys.argv[1:5]
    snap = json.loads(open(snap).read())
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01}
    g = Guard.from_file(policy, audit_log=log, durability=mode)
    out = sys.stdout
    while True:
        d = g.check(snap, order)
        out.write(d.decisionId + "\\n")  # returned to the caller: the bot may act on it now
        out.flush()
    """
)


def _kill_loop(tmp_path: Path, mode: str, kills: int, after: int) -> tuple[int, int, Path]:
    """Start a Guard in a child, kill -9 it after ``after`` returned decisions, ``kills``
    times on one log; returns (decisions returned, of them not in the log, log)."""
    log = tmp_path / f"{mode}.jsonl"
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(snapshot_doc()))
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    returned: list[str] = []
    for _ in range(kills):
        p = subprocess.Popen(
            [sys.executable, str(script), mode, str(log), DEFAULT, str(snap)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        try:
            for n, line in enumerate(iter(p.stdout.readline, ""), 1):
                returned.append(line.strip())
                if n >= after:
                    break
            p.send_signal(signal.SIGKILL)
            rest, _ = p.communicate(timeout=60)
            returned += [x for x in rest.split("\n") if x]  # returned before the kill landed
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    with AuditLog(log) as w:  # the next writer repairs a torn last line, dropping nothing
        w.sync()
    logged = {r.get("decisionId") for r in _records(log)}
    lost = sum(1 for x in returned if x not in logged)
    return len(returned), lost, log


@pytest.mark.parametrize("mode", ["flush", "fsync"])
def test_kill_9_loses_no_returned_decision_in_a_durable_mode(tmp_path, mode):
    returned, lost, log = _kill_loop(tmp_path, mode, kills=2, after=150)
    assert returned >= 300 and lost == 0
    assert verify_log(log).ok


def test_kill_9_in_async_mode_loses_at_most_the_bounded_queue(tmp_path):
    returned, lost, log = _kill_loop(tmp_path, "async", kills=2, after=300)
    assert returned >= 600 and lost <= 2 * (2 * 1024)  # per kill: the queue + the batch
    assert verify_log(log).ok


_FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from riskguard import Guard
    log, policy, snap, room = sys.argv[1:5]
    snap = json.loads(open(snap).read())
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 0.01}
    g = Guard.from_file(policy, audit_log=log, durability="flush")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(room), int(room)))  # the disk is full
    for _ in range(200):
        d = g.check(snap, order)
        print(d.decisionId, d.decision, ",".join(v.code for v in d.violations), flush=True)
    """
)


def test_full_disk_every_returned_decision_is_logged_and_the_error_is_seen_at_once(tmp_path):
    log = tmp_path / "audit.jsonl"
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(snapshot_doc()))
    script = tmp_path / "child.py"
    script.write_text(_FULL_DISK_CHILD)
    r = subprocess.run(
        [sys.executable, str(script), str(log), DEFAULT, str(snap), str(40_000)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line.split(" ") for line in r.stdout.splitlines()]
    down = [i for i, (_id, _d, codes) in enumerate(rows) if "AUDIT_LOG_UNAVAILABLE" in codes]
    assert down, "the disk never filled"
    first = down[0]
    assert down == list(range(first, len(rows)))  # from the failed write on, every one denied
    assert all(d == "deny" for _i, d, _c in rows[first:])
    logged = [x["decisionId"] for x in _records(log) if x["event"] == "decision"]
    assert logged == [i for i, _d, _c in rows[:first]]  # every decision returned before is in
    assert verify_log(log).ok  # the failed write was undone: no torn line


def test_acheck_in_a_durable_mode_returns_once_its_record_is_written(tmp_path):
    log = tmp_path / "audit.jsonl"
    g = Guard.from_file(DEFAULT, audit_log=log, durability="flush")

    async def bot():
        d = await g.acheck(snapshot_doc(), SOL_BUY)
        return d, [r["decisionId"] for r in _records(log)]

    d, logged = asyncio.run(bot())
    g.close()
    assert logged == [d.decisionId]


class _GatedLog:
    """An audit sink whose appends wait for ``gate`` (a disk that stalls)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.records: list[tuple[str, dict]] = []

    def append(self, event, record):
        self.gate.wait(30)
        self.records.append((event, record))

    def close(self):
        pass


def test_a_full_queue_denies_with_backpressure_deny_and_logs_the_count():
    sink = _GatedLog()
    g = Guard.from_file(DEFAULT, audit_log=sink, audit_queue_max=4, backpressure="deny")
    ds = [g.check(snapshot_doc(), SOL_BUY) for _ in range(12)]
    codes = [d.violations[0].code if d.decision == "deny" else d.decision for d in ds]
    # the writer holds one batch (at most four), the queue four more; the rest are refused
    assert codes.count("AUDIT_LOG_BACKLOG") >= 12 - 2 * 4
    assert all(d.decision == "deny" for d in ds if d.violations[0].code == "AUDIT_LOG_BACKLOG")
    sink.gate.set()
    g.close()
    events = [e for e, _r in sink.records]
    shed = sum(r["deniedUnlogged"] for e, r in sink.records if e == "backpressure")
    assert shed == codes.count("AUDIT_LOG_BACKLOG")
    assert events.count("decision") == 12 - shed


def test_a_full_queue_blocks_the_caller_with_backpressure_block():
    sink = _GatedLog()
    g = Guard.from_file(DEFAULT, audit_log=sink, audit_queue_max=3, backpressure="block")
    done: list = []
    t = threading.Thread(target=lambda: done.extend(g.check(snapshot_doc()) for _ in range(10)))
    t.start()
    t.join(1.0)  # not a timing assertion: the caller must still be waiting for room
    w = g._writer
    assert t.is_alive() and len(done) < 10 and len(w._items) <= 3
    sink.gate.set()
    t.join(30)
    g.close()
    assert len(done) == 10 and len(sink.records) == 10


def test_bad_durability_settings_are_refused():
    for kw in ({"durability": "sometimes"}, {"backpressure": "drop"}, {"audit_queue_max": 0}):
        with pytest.raises(ValueError):
            Guard.from_file(DEFAULT, **kw)


def test_sigterm_drains_the_streams_audit_log(tmp_path):
    log = tmp_path / "audit.jsonl"
    p = subprocess.Popen(
        [sys.executable, "-m", "riskguard", "check", "--stream", "-p", DEFAULT,
         "--audit-log", str(log), "--durability", "async"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        line = json.dumps({"snapshot": snapshot_doc(), "order": SOL_BUY}) + "\n"
        answers = []
        for _ in range(300):  # one at a time: both pipes stay below their buffers
            p.stdin.write(line)
            p.stdin.flush()
            answers.append(json.loads(p.stdout.readline()))
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + signal.SIGTERM, err
    logged = {r["decisionId"] for r in _records(log)}
    assert all(a["decisionId"] in logged for a in answers)
    assert verify_log(log).ok


# =========================================================== 3. repair never destroys or re-signs


def test_a_file_that_is_not_a_log_is_refused_not_truncated(tmp_path, write_json):
    snap = write_json("snap.json", snapshot_doc())
    order = write_json("order.json", SOL_BUY)
    minified = tmp_path / "config.json"
    minified.write_bytes(b'{"exchange":"binance","keys":[1,2,3],"note":"not a log"}')
    before = minified.read_bytes()
    for args in (
        ("check", "-p", DEFAULT, "-s", str(snap), "-o", str(order), "--audit-log", str(minified)),
        ("check", "--stream", "-p", DEFAULT, "--audit-log", str(minified)),
    ):
        r = run_cli(*args, input="")
        assert r.returncode == 2, (args, r.stdout[-500:], r.stderr[-500:])
        assert "Traceback" not in r.stderr and "not a torn write" in r.stderr
        assert minified.read_bytes() == before


def test_a_big_file_without_a_final_newline_is_refused_not_truncated(tmp_path):
    big = tmp_path / "big.log"
    with open(big, "wb") as f:  # sparse: 20 MiB that start like JSON and never end a line
        f.write(b'{"a":"')
        f.truncate(20 * 1024 * 1024)
    size = big.stat().st_size
    with pytest.raises(AuditLogError, match="longer than any record"):
        Guard.from_file(DEFAULT, audit_log=big)
    assert big.stat().st_size == size


def _keyed_log(path: Path, n: int) -> list[dict]:
    with AuditLog(path, key=KEY) as log:
        return [
            log.append("decision", {"decisionId": f"d{i}", "decision": "allow"}) for i in range(n)
        ]


@pytest.mark.parametrize("k", [2, 3])
def test_stripping_the_newlines_of_the_last_records_is_refused_under_hmac(tmp_path, k):
    log = tmp_path / "audit.jsonl"
    _keyed_log(log, 5)
    lines = log.read_bytes().split(b"\n")[:-1]
    tampered = b"\n".join(lines[: 5 - k]) + b"\n" + b"".join(lines[5 - k :])
    log.write_bytes(tampered)
    with AuditLog(log, key=KEY) as w, pytest.raises(AuditLogError, match="newlines were removed"):
        w.append("decision", {"decisionId": "next"})
    assert log.read_bytes() == tampered  # nothing dropped, nothing re-signed
    r = verify_log(log, key=KEY)
    assert not r.ok and r.records == 5 - k


def test_a_last_record_missing_only_its_newline_gets_it_back(tmp_path):
    log = tmp_path / "audit.jsonl"
    written = _keyed_log(log, 3)
    full = log.read_bytes()
    log.write_bytes(full[:-1])
    with AuditLog(log, key=KEY) as w:
        nxt = w.append("decision", {"decisionId": "next"})
    assert log.read_bytes().startswith(full)  # every byte of every record kept
    assert nxt["seq"] == 4 and nxt["prev"] == written[-1]["hash"]
    assert [r["event"] for r in _records(log)] == ["decision"] * 4
    assert verify_log(log, key=KEY).ok


# =========================================================== 4. every plugin path fails closed


@pytest.mark.parametrize("kind", ["raise", "nan", "text", "exit", "interrupt"])
def test_a_sizing_hook_that_fails_denies_with_rule_error(kind, faulty_registry, tmp_path):
    policy = load_policy(_faulty_policy(kind), registry=faulty_registry)
    d = evaluate(policy, build_snapshot(snapshot_doc()), build_order(SOL_BUY), now_ms=NOW)
    assert d.decision == "deny"
    errs = [v for v in d.violations if v.code == "RULE_ERROR"]
    assert errs and errs[0].rule == "f" and d.maxAllowedAmount == 0.0
    assert d.errors and json.dumps(d.to_dict(), allow_nan=False)


def test_a_sizing_hook_that_fails_is_exit_3_in_the_cli(tmp_path, write_json):
    snap = write_json("snap.json", snapshot_doc())
    order = write_json("order.json", SOL_BUY)
    for kind in ("exit", "nan"):
        pol = write_json(f"{kind}.json", _faulty_policy(kind))
        r = run_cli("check", "-p", str(pol), "-s", str(snap), "-o", str(order), "--json",
                    "--plugin", str(FAULTS / "plugin-faults.py"))  # fmt: skip
        assert r.returncode == 3, (kind, r.stdout[-1000:], r.stderr[-1000:])
        assert json.loads(r.stdout)["decision"] == "deny" and "RULE_ERROR" in r.stdout


def test_a_plugin_that_exits_at_import_is_exit_3_not_0(write_json):
    snap = write_json("snap.json", snapshot_doc())
    r = run_cli("check", "-p", DEFAULT, "-s", str(snap),
                "--plugin", str(FAULTS / "plugin-exit-at-import.py"))  # fmt: skip
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "PLUGIN_ERROR" in r.stderr and "SystemExit" in r.stderr
    assert "Traceback" not in r.stderr


def test_allow_with_a_bound_below_the_order_is_impossible(faulty_registry):
    policy = load_policy(_faulty_policy("below"), registry=faulty_registry)
    d = evaluate(policy, build_snapshot(snapshot_doc()), build_order(SOL_BUY), now_ms=NOW)
    assert not (d.decision == "allow" and d.maxAllowedAmount < SOL_BUY["amount"])
    assert d.decision == "deny"
    assert "ENGINE_BOUND_BELOW_ORDER" in {v.code for v in d.violations}


# =========================================================== 9. the stream's input


def test_the_stream_refuses_duplicate_keys_as_files_do():
    stream = Stream(Guard.from_file(DEFAULT))
    line = '{{"id": 1, "snapshot": {}, "order": {}, "order": {}}}'.format(
        json.dumps(snapshot_doc()),
        json.dumps(SOL_BUY),
        json.dumps({**SOL_BUY, "amount": 1000}),
    )
    out = stream.handle(line, 1)
    assert (
        out["error"]["code"] == "invalid_json"
        and "duplicate key 'order'" in out["error"]["message"]
    )


def test_the_stream_bounds_a_line_and_goes_on():
    stream = Stream(Guard.from_file(DEFAULT))
    good = json.dumps({"id": 2, "snapshot": snapshot_doc()}) + "\n"
    stdin = io.StringIO('{"id": 1, "pad": "' + "x" * 50_000 + '"}\n' + good)
    stdout = io.StringIO()
    run_stream(stream, stdin, stdout, max_line=10_000)
    outs = [json.loads(x) for x in stdout.getvalue().splitlines()]
    assert outs[0]["error"]["code"] == "line_too_long" and outs[0]["line"] == 1
    assert outs[1]["id"] == 2 and outs[1]["decision"] in ("allow", "deny")


def test_the_stream_cli_refuses_a_line_over_16_mib():
    huge = '{"pad": "' + "x" * (16 * 1024 * 1024 + 10) + '"}\n'
    good = json.dumps({"id": 7, "snapshot": snapshot_doc()}) + "\n"
    r = run_cli("check", "--stream", "-p", DEFAULT, input=huge + good)
    assert r.returncode == 0, r.stderr[-500:]
    outs = [json.loads(x) for x in r.stdout.splitlines()]
    assert outs[0]["error"]["code"] == "line_too_long" and outs[1]["id"] == 7


# =========================================================== 7. redaction by pattern

PATTERN_SECRETS = {
    "secrets": "LEAK-01",
    "apiKeys": "LEAK-02",
    "Authorization": "LEAK-03",
    "credentials": "LEAK-04",
    "pwd": "LEAK-05",
    "passwd": "LEAK-06",
    "mnemonic": "LEAK-07",
    "seedPhrase": "LEAK-08",
    "privKey": "LEAK-09",
    "jwt": "LEAK-10",
    "cookie": "LEAK-11",
}


def test_secrets_are_redacted_by_pattern_everywhere(tmp_path, write_json):
    doc = snapshot_doc(**PATTERN_SECRETS)
    doc["positions"][0]["info"] = {"privKey": "LEAK-12", "positionAmt": "0.05"}
    snap = write_json("snap.json", doc)
    order = write_json("order.json", {**SOL_BUY, "params": {"Authorization": "LEAK-13"},
                                      "cookie": "LEAK-14"})  # fmt: skip
    log = tmp_path / "audit.jsonl"
    outs = []
    for args in (
        (
            "check",
            "-p",
            DEFAULT,
            "-s",
            str(snap),
            "-o",
            str(order),
            "--json",
            "--audit-log",
            str(log),
        ),
        ("explain", "-p", DEFAULT, "-s", str(snap), "-o", str(order), "--json"),
    ):
        r = run_cli(*args)
        assert r.returncode in (0, 1), r.stderr[-500:]
        outs.append(r.stdout + r.stderr)
    line = json.dumps({"id": 1, "snapshot": doc, "order": json.loads(order.read_text())})
    r = run_cli("check", "--stream", "-p", DEFAULT, "--audit-log", str(log), input=line + "\n")
    outs += [r.stdout + r.stderr, log.read_text()]
    for text in outs:
        leaked = [s for s in text.split('"') if s.startswith("LEAK-")]
        assert not leaked, leaked
    assert verify_log(log).ok


# =========================================================== 6. a policy error never prints the file

KEY_FILE = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB\n"
    "-----END PRIVATE KEY-----\n"
)
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB"


def _policy_extending(tmp_path: Path, target: str) -> Path:
    p = tmp_path / "extends.yaml"
    p.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: x, version: '1'}\n"
        f"spec: {{extends: [{target}], rules: []}}\n"
    )
    return p


def test_a_key_file_read_as_a_policy_is_never_echoed(tmp_path, write_json):
    key = tmp_path / "id.pem"
    key.write_text(KEY_FILE)
    creds = tmp_path / "creds.txt"
    creds.write_text("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n")
    snap = write_json("snap.json", snapshot_doc())
    for pol in (key, creds, _policy_extending(tmp_path, key.name)):
        r = run_cli("check", "-p", str(pol), "-s", str(snap))
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "expected a policy mapping" in r.stderr
        for secret in (KEY_BODY[:20], "AKIAIOSFODNN7", "wJalrXUtnFEMI"):
            assert secret not in r.stderr + r.stdout
    log = tmp_path / "audit.jsonl"
    g = Guard.from_file(DEFAULT, audit_log=log, durability="flush")
    with g, pytest.raises(RiskguardError):
        g.reload(key)
    text = log.read_text()
    assert "policy_reload_failed" in text and KEY_BODY[:20] not in text
    assert verify_log(log).ok


# =========================================================== 8. extends: diamonds, depth, odd files


def test_an_extends_diamond_loads_each_file_once(tmp_path):
    depth = 12  # 2**12 loads before the fix; 2 * 12 + 1 files after
    base = tmp_path / "base.yaml"
    base.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: base, version: '1'}\n"
        "spec: {rules: [{id: mu, type: margin_utilization, params: {max: 0.5}}]}\n"
    )
    below = ["base.yaml", "base.yaml"]
    for level in range(depth, 0, -1):
        names = [f"a{level}.yaml", f"b{level}.yaml"]
        for n in names:
            (tmp_path / n).write_text(
                f"apiVersion: riskguard/v1\nkind: Policy\nmetadata: {{name: {n[:-5]}, version: '1'}}\n"
                f"spec: {{extends: [{below[0]}, {below[1]}], rules: []}}\n"
            )
        below = names
    top = tmp_path / "top.yaml"
    top.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: top, version: '1'}\n"
        f"spec: {{extends: [{below[0]}, {below[1]}], rules: []}}\n"
    )
    policy = load_policy(top)
    assert len(policy.files) == 2 * depth + 2 == len(set(policy.files))
    assert [r.id for r in policy.rules] == ["mu"]


def test_an_extends_chain_past_the_bound_is_named_as_such(tmp_path):
    n = 40
    for i in range(n):
        ext = f"extends: [p{i + 1}.yaml], " if i + 1 < n else ""
        (tmp_path / f"p{i}.yaml").write_text(
            f"apiVersion: riskguard/v1\nkind: Policy\nmetadata: {{name: p{i}, version: '1'}}\n"
            f"spec: {{{ext}rules: []}}\n"
        )
    with pytest.raises(RiskguardError, match="extends chain deeper than 32 files"):
        load_policy(tmp_path / "p0.yaml")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_not_waited_on(tmp_path, write_json):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    snap = write_json("snap.json", snapshot_doc())
    for args in (
        ("check", "-p", str(fifo), "-s", str(snap)),
        ("check", "-p", DEFAULT, "-s", str(fifo)),
        ("check", "-p", str(_policy_extending(tmp_path, fifo.name)), "-s", str(snap)),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "riskguard", *args],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert r.returncode == 2 and "not a regular file" in r.stderr, (args, r.stderr)


# =========================================================== 10. audit workers killed or stopped


def _grandchildren(pid: int) -> list[int]:
    """Processes two levels below ``pid``: the pool workers (children of the forkserver)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(d))
    return [g for c in parents.get(pid, []) for g in parents.get(c, [])]


def _audit_with_a_fault(tmp_path: Path, sig: int, *extra: str) -> tuple[int, str, list[int]]:
    big = tmp_path / "big.jsonl"
    line = json.dumps(snapshot_doc()) + "\n"
    big.write_text(line * 60_000)
    out = tmp_path / "out.jsonl"
    p = subprocess.Popen(
        [sys.executable, "-m", "riskguard", "audit", "-p", DEFAULT, str(big), "-w", "2",
         "--chunk-size", "500", "--out", str(out), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    workers: list[int] = []
    try:
        for _ in range(600):  # up to 60 s for the pool to start working
            workers = _grandchildren(p.pid)
            if len(workers) >= 2 and out.exists() and out.stat().st_size > 0:
                break
            if p.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert p.poll() is None and workers, "the audit finished before the fault"
        os.kill(workers[-1], sig)
        _o, err = p.communicate(timeout=90)
        return p.returncode, err, workers
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        for w in workers:  # a stopped worker must not outlive the test
            with contextlib.suppress(OSError):
                os.kill(w, signal.SIGKILL)


def test_a_killed_audit_worker_is_exit_4_with_a_message(tmp_path):
    code, err, _w = _audit_with_a_fault(tmp_path, signal.SIGKILL)
    assert code == 4, err[-1000:]
    assert "worker process died" in err and "bug in riskguard" not in err


def test_a_stopped_audit_worker_is_reported_past_the_stall_bound(tmp_path):
    code, err, _w = _audit_with_a_fault(tmp_path, signal.SIGSTOP, "--stall-timeout", "3")
    assert code == 4, err[-1000:]
    assert "no audit worker finished a chunk in 3 s" in err


# =========================================================== the bench's smoke run


def test_durability_bench_quick_runs_and_durable_modes_lose_nothing():
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "durability_bench.py"), "--quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| durability | kill -9s |" in r.stdout
    result = json.loads(r.stdout.split("RESULT ", 1)[1])
    assert result["flush"]["lost"] == 0 and result["fsync"]["lost"] == 0
    assert all(m["verifies"] and m["returned"] > 0 for m in result.values())


# =========================================================== 5. limit orders away from the mark


@pytest.mark.parametrize(
    ("symbol", "side", "amount", "price", "mark"),
    [  # both rest on the book: a buy below the mark, a sell above it
        ("BTC/USDT:USDT", "buy", 3.0, 30_000.0, 61_000.0),  # adds to the account's long
        ("SOL/USDT:USDT", "sell", 1_500.0, 300.0, 150.0),  # a new short
    ],
)
def test_a_resting_limit_order_is_judged_as_it_will_fill(symbol, side, amount, price, mark):
    policy = load_policy(DEFAULT)
    snap = build_snapshot(snapshot_doc())
    market = {"symbol": symbol, "side": side, "amount": amount}
    if side == "sell":
        market["stopLossPrice"] = price * 1.1  # the default policy wants a stop on a new short
    limit = {**market, "type": "limit", "price": price}
    d = evaluate(policy, snap, build_order(limit), now_ms=NOW)
    # ~180,000 USDT of notional on a 10,000 USDT account is never allowed as it is
    assert d.decision != "allow"
    bound = d.maxAllowedAmount
    market_bound = evaluate(policy, snap, build_order(market), now_ms=NOW).maxAllowedAmount
    # margined at its own price: about mark/price times the market order's bound, not 10,000x
    assert 0 < bound < 3 * market_bound * mark / price
    # maxAllowedAmount and check agree: the bound passes (up to its last float digits, as
    # for market orders: a resize to the bound floored), a little more does not
    at = evaluate(policy, snap, build_order({**limit, "amount": bound}), now_ms=NOW)
    over = evaluate(policy, snap, build_order({**limit, "amount": bound * 1.02}), now_ms=NOW)
    assert at.decision in ("allow", "resize") and at.maxAllowedAmount >= bound * (1 - 1e-6)
    assert over.decision != "allow" and over.maxAllowedAmount <= bound * (1 + 1e-6)


def test_a_limit_order_that_crosses_the_mark_books_its_open_loss():
    policy = load_policy(DEFAULT)
    snap = build_snapshot(snapshot_doc())
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 1.0, "type": "limit",
             "price": 300.0}  # fmt: skip  # above the 150 mark: fills now; 150 of open loss
    d = evaluate(policy, snap, build_order(order), now_ms=NOW)
    filled = evaluate(policy, snap, build_order({**order, "price": 150.0}), now_ms=NOW)
    assert d.metrics.equity == pytest.approx(filled.metrics.equity - 150.0)


def test_check_audit_log_records_a_fault_for_a_record_it_cannot_render(tmp_path, write_json):
    snap = write_json("snap.json", snapshot_doc())
    order = write_json("order.json", SOL_BUY)
    pol = write_json("odd.json", _faulty_policy("unrenderable"))
    log = tmp_path / "audit.jsonl"
    r = run_cli("check", "-p", str(pol), "-s", str(snap), "-o", str(order),
                "--audit-log", str(log), "--plugin", str(FAULTS / "plugin-faults.py"))  # fmt: skip
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-1000:]
    recs = _records(log)
    assert [x["event"] for x in recs] == ["record_fault"] and recs[0]["decisionId"]
    assert verify_log(log).ok


def test_an_error_crosses_a_process_pool_unchanged():
    """Audit and simulate workers hand errors back pickled: the problems (file, line,
    path) and a subclass's own attributes survive, and the text is not located twice."""
    import pickle

    from riskguard.batch.parallel import WorkerFailure
    from riskguard.errors import Problem, RiskguardError, SnapshotError

    e = SnapshotError([Problem("expected a number", file="s.json", line=3, column=7, path="$.x")])
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is SnapshotError and back.problems == e.problems and str(back) == str(e)
    plain = pickle.loads(pickle.dumps(RiskguardError("the policy compiled to another digest")))
    assert str(plain).count("<input>") <= 1
    failure = WorkerFailure("a worker died", "died")
    w = pickle.loads(pickle.dumps(failure))
    assert (w.kind, str(w)) == ("died", str(failure))
