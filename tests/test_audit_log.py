"""The hash-chained audit log (``riskguard.decisionlog.log``) and ``riskguard verify-log``.

Tampering is done by hand on the file, the way someone with write access would; the
forger's re-hashing uses only the documented format (docs/audit-log.md), not the module.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest
import structlog

from riskguard.decisionlog.log import GENESIS, AuditLog, AuditLogError, verify_log
from riskguard.errors import RiskguardError
from riskguard.model.redact import REDACTED

from .conftest import ROOT, run_cli

KEY = b"k" * 32


def decision(i: int, **over) -> dict:
    d = {
        "decision": "allow" if i % 3 else "deny",
        "decisionId": f"01J{i:023d}",
        "policy": {"name": "default", "version": "1.0.0", "digest": "sha256:" + "ab" * 32},
        "snapshot": {"account": "main", "digest": "sha256:" + "cd" * 32},
        "violations": [],
        "durationUs": 18.5 + i / 10,
    }
    d.update(over)
    return d


def write_log(path, n: int, *, key: bytes | None = None) -> list[dict]:
    with AuditLog(path, key=key) as log:
        return [log.append("decision", decision(i)) for i in range(1, n + 1)]


def read_lines(path) -> list[bytes]:
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def write_lines(path, lines: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(b"".join(lines))


def canonical(rec: dict) -> bytes:
    """The documented canonical form."""
    return json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def forge_line(rec: dict, *, key: bytes | None = None) -> bytes:
    """A record re-hashed as the documented format says (what a forger can do)."""
    rec = {k: v for k, v in rec.items() if k != "hash"}
    body = canonical(rec)
    if key is None:
        h = "sha256:" + hashlib.sha256(body).hexdigest()
    else:
        h = "hmac-sha256:" + hmac.new(key, body, "sha256").hexdigest()
    return body[:-1] + b',"hash":"' + h.encode() + b'"}\n'


def rehash_tail(path, start: int, edit, *, key: bytes | None = None) -> None:
    """Apply ``edit`` to record index ``start`` and re-hash the chain from there on."""
    lines = read_lines(path)
    prev = json.loads(lines[start - 1])["hash"] if start else GENESIS
    for i in range(start, len(lines)):
        rec = json.loads(lines[i])
        if i == start:
            edit(rec)
        rec["prev"] = prev
        lines[i] = forge_line(rec, key=key)
        prev = json.loads(lines[i])["hash"]
    write_lines(path, lines)


# --------------------------------------------------------------------------- the chain


def test_records_form_a_chain(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 5)
    lines = read_lines(p)
    assert len(lines) == 5
    prev = GENESIS
    assert GENESIS == "sha256:" + "0" * 64
    for i, (line, rec) in enumerate(zip(lines, written, strict=True), 1):
        parsed = json.loads(line)
        assert parsed == rec  # append returns the record as written
        assert parsed["seq"] == i
        assert parsed["event"] == "decision"
        assert parsed["prev"] == prev
        assert parsed["decisionId"] == f"01J{i:023d}"
        body = {k: v for k, v in parsed.items() if k != "hash"}
        assert parsed["hash"] == "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
        assert line == forge_line(parsed)  # canonical JSON, "hash" spliced in last
        ts = datetime.fromisoformat(parsed["ts"].replace("Z", "+00:00"))
        assert parsed["ts"].endswith("Z") and ts.utcoffset().total_seconds() == 0
        prev = parsed["hash"]
    report = verify_log(p)
    assert report.ok and report.records == 5 and report.head == written[-1]["hash"]
    assert report.first_bad_line is None and report.problem is None


def test_hmac_chain(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 3, key=KEY)
    assert all(r["hash"].startswith("hmac-sha256:") for r in written)
    assert written[0]["prev"] == GENESIS
    body = canonical({k: v for k, v in written[1].items() if k != "hash"})
    assert written[1]["hash"] == "hmac-sha256:" + hmac.new(KEY, body, "sha256").hexdigest()
    assert verify_log(p, key=KEY).ok
    wrong = verify_log(p, key=b"another key")
    assert not wrong.ok and wrong.kind == "hmac-mismatch" and wrong.first_bad_line == 1
    with pytest.raises(RiskguardError, match="key"):
        verify_log(p)


def test_values_round_trip_canonically(tmp_path):
    p = tmp_path / "audit.jsonl"
    with AuditLog(p) as log:
        rec = log.append(
            "decision",
            {"f": [0.1, 1e16, -0.0, 1.5e-7, 2**70], "s": "ünïcødé ✓", "nested": {"b": 1, "a": 2}},
        )
        with pytest.raises(ValueError):
            log.append("decision", {"observed": float("nan")})
        with pytest.raises(TypeError):
            log.append("decision", {"obj": object()})
    assert json.loads(read_lines(p)[0])["f"] == [0.1, 1e16, -0.0, 1.5e-7, 2**70]
    assert "ünïcødé ✓".encode() in read_lines(p)[0]  # UTF-8, not \u escapes
    assert len(read_lines(p)) == 1  # failed renders write nothing
    assert verify_log(p).head == rec["hash"]


def test_reserved_fields_and_event_name(tmp_path):
    with AuditLog(tmp_path / "a.jsonl") as log:
        for field in ("seq", "ts", "event", "prev", "hash"):
            with pytest.raises(ValueError, match="reserved"):
                log.append("decision", {field: 1})
        with pytest.raises(ValueError):
            log.append("", {})
        # any other field name is fine, even ones that clash with Python parameters
        assert log.append("note", {"self": 1, "method_name": 2})["seq"] == 1
        assert log.append("note")["seq"] == 2


def test_closed_log_refuses(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditLogError, match="closed"):
        log.append("decision", {})


def test_global_structlog_config_is_neither_used_nor_changed(tmp_path):
    def boom(logger, method, event_dict):
        raise AssertionError("the global structlog chain was used")

    old = structlog.get_config()
    try:
        structlog.configure(processors=[boom])
        with AuditLog(tmp_path / "a.jsonl") as log:
            log.append("decision", decision(1))
        assert structlog.get_config()["processors"] == [boom]
    finally:
        structlog.configure(**old)
    assert verify_log(tmp_path / "a.jsonl").ok


def test_secrets_never_reach_the_file(tmp_path):
    p = tmp_path / "audit.jsonl"
    with AuditLog(p) as log:
        rec = log.append(
            "decision",
            {
                "exchange": {"apiKey": "k", "secret": "s"},
                "bots": [{"api_key": "AKIA-VERY-SECRET", "Password": "hunter2", "uid": "u7"}],
            },
        )
    assert rec["exchange"] == {"apiKey": REDACTED, "secret": REDACTED}
    text = p.read_bytes()
    assert b"AKIA-VERY-SECRET" not in text and b"hunter2" not in text

    def strings(o):
        if isinstance(o, dict):
            for v in o.values():
                yield from strings(v)
        elif isinstance(o, list):
            for v in o:
                yield from strings(v)
        elif isinstance(o, str):
            yield o

    values = set(strings(json.loads(text)))
    assert "k" not in values and "s" not in values
    assert "u7" in values  # identifiers stay
    assert verify_log(p).ok  # the hash covers the redacted form


# --------------------------------------------------------------------------- tampering


def _edit(lines, i, fn):
    rec = json.loads(lines[i])
    fn(rec)
    lines[i] = canonical(rec) + b"\n"  # edited and re-serialized, hash left as it was


def _forged_insert(lines, i):
    """A well-formed record with the right seq and prev, slipped in before index i."""
    prev = json.loads(lines[i - 1])
    rec = dict(prev, decisionId="FORGED", seq=prev["seq"] + 1, prev=prev["hash"])
    lines.insert(i, forge_line(rec))


TAMPERING = {
    # name: (how, first bad line, first bad seq, kind)
    "edit a field": (
        lambda L: _edit(L, 2, lambda r: r.update(decision="allow")),
        3,
        3,
        "hash-mismatch",
    ),
    "edit bytes in place": (
        lambda L: L.__setitem__(2, L[2].replace(b'"decision":"deny"', b'"decision":"allow"')),
        3,
        3,
        "hash-mismatch",
    ),
    "edit whitespace": (
        lambda L: L.__setitem__(2, L[2].replace(b",", b", ", 1)),
        3,
        3,
        "hash-mismatch",
    ),
    "edit seq": (lambda L: _edit(L, 2, lambda r: r.update(seq=30)), 3, 30, "hash-mismatch"),
    "delete a record": (lambda L: L.pop(2), 3, 4, "seq-gap"),
    "delete the first record": (lambda L: L.pop(0), 1, 2, "seq-gap"),
    "delete two records": (lambda L: L.__delitem__(slice(2, 4)), 3, 5, "seq-gap"),
    "insert a copy": (lambda L: L.insert(3, L[2]), 4, 3, "duplicate"),
    "insert a forged record": (lambda L: _forged_insert(L, 2), 3, 3, "inserted"),
    "insert junk": (lambda L: L.insert(2, b'{"seq": 3}\n'), 3, 3, "missing-fields"),
    "swap two records": (lambda L: L.__setitem__(slice(2, 4), [L[3], L[2]]), 3, 4, "reordered"),
    "move a record later": (lambda L: L.insert(5, L.pop(2)), 3, 4, "reordered"),
    "cut mid-line": (lambda L: L.__setitem__(-1, L[-1][:40]), 6, None, "torn"),
    "bad JSON": (lambda L: L.__setitem__(2, b"{not json\n"), 3, None, "bad-json"),
    "blank line": (lambda L: L.insert(2, b"\n"), 3, None, "bad-json"),
    "missing fields": (lambda L: _edit(L, 2, lambda r: r.pop("prev")), 3, 3, "missing-fields"),
    "prev mismatch": (
        lambda L: L.__setitem__(
            2, forge_line(dict(json.loads(L[2]), prev=json.loads(L[0])["hash"]))
        ),
        3,
        3,
        "prev-mismatch",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_is_found_at_the_right_line(tmp_path, name):
    how, line, seq, kind = TAMPERING[name]
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 6)
    lines = read_lines(p)
    how(lines)
    write_lines(p, lines)
    report = verify_log(p)
    assert not report.ok
    assert (report.first_bad_line, report.first_bad_seq, report.kind) == (line, seq, kind), report
    assert report.problem
    # everything before the bad line was good: counted, and its last hash is the head
    assert report.records == line - 1
    assert report.head == (written[line - 2]["hash"] if line > 1 else None)


def test_problem_texts_name_the_kind(tmp_path):
    expect = {
        "edit a field": "edited",
        "delete a record": "deleted",
        "insert a copy": "inserted",
        "insert a forged record": "inserted",
        "swap two records": "reordered",
        "cut mid-line": "torn",
        "bad JSON": "bad JSON",
        "missing fields": "missing fields",
        "prev mismatch": "prev mismatch",
    }
    for n, (name, word) in enumerate(expect.items()):
        p = tmp_path / f"{n}.jsonl"
        write_log(p, 6)
        lines = read_lines(p)
        TAMPERING[name][0](lines)
        write_lines(p, lines)
        assert word in verify_log(p).problem, name


def test_hmac_edit_is_an_hmac_mismatch(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_log(p, 5, key=KEY)
    lines = read_lines(p)
    _edit(lines, 3, lambda r: r.update(decision="allow"))
    write_lines(p, lines)
    r = verify_log(p, key=KEY)
    assert (r.ok, r.first_bad_line, r.first_bad_seq, r.kind) == (False, 4, 4, "hmac-mismatch")
    assert "HMAC mismatch" in r.problem


def test_truncation_needs_an_anchor(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 6)
    anchor = written[-1]["hash"]
    assert verify_log(p, expect_head=anchor).ok
    write_lines(p, read_lines(p)[:4])  # cut cleanly at a line boundary
    assert verify_log(p).ok  # a plain chain cannot know it was longer
    r = verify_log(p, expect_head=anchor)
    assert not r.ok and r.kind == "truncated" and "truncated" in r.problem
    assert r.records == 4 and r.head == written[3]["hash"]


def test_anchor_followed_by_more_records(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 6)
    r = verify_log(p, expect_head=written[3]["hash"])
    assert not r.ok and r.kind == "head-mismatch"
    assert (r.first_bad_line, r.first_bad_seq) == (5, 5)
    assert "2 record(s) follow" in r.problem


def test_rehashed_forged_tail(tmp_path):
    """The documented limitation: a plain chain re-hashed from the edit on verifies;
    an anchor or an HMAC key catches it."""
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 6)
    anchor = written[-1]["hash"]
    rehash_tail(p, 2, lambda r: r.update(decision="allow", decisionId="FORGED"))
    assert json.loads(read_lines(p)[2])["decisionId"] == "FORGED"
    assert verify_log(p).ok  # not caught without an anchor or a key
    r = verify_log(p, expect_head=anchor)
    assert not r.ok and r.kind == "truncated" and "re-hashed forgery" in r.problem

    k = tmp_path / "keyed.jsonl"
    write_log(k, 6, key=KEY)
    rehash_tail(k, 2, lambda r: r.update(decision="allow"))  # forger without the key
    r = verify_log(k, key=KEY)
    assert (r.ok, r.first_bad_line, r.kind) == (False, 3, "not-hmac")
    k2 = tmp_path / "keyed2.jsonl"
    write_log(k2, 6, key=KEY)
    rehash_tail(k2, 2, lambda r: r.update(decision="allow"), key=b"a guessed key")
    r = verify_log(k2, key=KEY)
    assert (r.ok, r.first_bad_line, r.kind) == (False, 3, "hmac-mismatch")


def test_empty_log(tmp_path):
    p = tmp_path / "audit.jsonl"
    p.write_bytes(b"")
    r = verify_log(p)
    assert r.ok and r.records == 0 and r.head is None
    assert not verify_log(p, expect_head="sha256:" + "1" * 64).ok


def test_unreadable_and_bad_anchor(tmp_path):
    with pytest.raises(RiskguardError, match="cannot read"):
        verify_log(tmp_path / "missing.jsonl")
    with pytest.raises(RiskguardError, match="cannot read"):
        verify_log(tmp_path)
    p = tmp_path / "a.jsonl"
    write_log(p, 1)
    with pytest.raises(RiskguardError, match="not a hash"):
        verify_log(p, expect_head="deadbeef")


# --------------------------------------------------------------------------- the writer


def test_writers_take_turns_and_share_one_chain(tmp_path):
    p = tmp_path / "audit.jsonl"
    with AuditLog(p) as a, AuditLog(p) as b:
        seqs = [a.append("x")["seq"], b.append("x")["seq"], a.append("x")["seq"]]
        seqs.append(b.append("x")["seq"])
    assert seqs == [1, 2, 3, 4]
    assert verify_log(p).ok


def test_writer_refuses_a_damaged_tail_or_another_mode(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_log(p, 3)
    lines = read_lines(p)
    _edit(lines, 2, lambda r: r.update(decision="allow"))
    write_lines(p, lines)
    with AuditLog(p) as log, pytest.raises(AuditLogError, match="verify-log"):
        log.append("decision", decision(4))
    assert read_lines(p) == lines

    k = tmp_path / "keyed.jsonl"
    write_log(k, 2, key=KEY)
    with AuditLog(k) as log, pytest.raises(AuditLogError, match="HMAC"):
        log.append("decision", {})
    with AuditLog(k, key=b"wrong") as log, pytest.raises(AuditLogError, match="key is wrong"):
        log.append("decision", {})
    with AuditLog(p.with_name("plain.jsonl")) as log:
        log.append("x")
    with AuditLog(p.with_name("plain.jsonl"), key=KEY) as log, pytest.raises(AuditLogError):
        log.append("x")


def test_live_writer_notices_truncation(tmp_path):
    p = tmp_path / "audit.jsonl"
    with AuditLog(p) as log:
        for i in range(5):
            log.append("decision", decision(i))
        write_lines(p, read_lines(p)[:3])
        rec = log.append("decision", decision(6))
    recs = [json.loads(x) for x in read_lines(p)]
    assert [r["event"] for r in recs] == ["decision"] * 3 + ["truncation", "decision"]
    assert recs[3]["lastWrittenSeq"] == 5 and recs[3]["foundSeq"] == 3
    assert rec["seq"] == 5
    assert verify_log(p).ok


def _append_many(path: str, worker: int, n: int, key: bytes | None) -> None:
    with AuditLog(path, key=key) as log:
        for i in range(n):
            log.append("decision", decision(i, worker=worker))


def _check_concurrent(path, workers: int, n: int, key: bytes | None = None) -> None:
    with open(path, "rb") as f:
        raw = f.read()
    assert raw.endswith(b"\n")
    recs = [json.loads(line) for line in raw.splitlines()]  # no interleaved partial lines
    assert [r["seq"] for r in recs] == list(range(1, workers * n + 1))
    for w in range(workers):
        assert sum(r["worker"] == w for r in recs) == n
    r = verify_log(path, key=key)
    assert r.ok and r.records == workers * n, r


def test_concurrent_threads(tmp_path):
    p = tmp_path / "audit.jsonl"
    shared = AuditLog(p, key=KEY)

    def shared_writer(w):
        for i in range(200):
            shared.append("decision", decision(i, worker=w))

    threads = [threading.Thread(target=shared_writer, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=_append_many, args=(str(p), w, 200, KEY)) for w in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.close()
    _check_concurrent(p, 4, 200, KEY)


def test_concurrent_processes(tmp_path):
    p = str(tmp_path / "audit.jsonl")
    # fork is fast; each child opens its own AuditLog, so it is a true multi-process test
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=_append_many, args=(p, w, 200, None)) for w in range(4)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(60)
        assert pr.exitcode == 0
    _check_concurrent(p, 4, 200)


def test_verify_a_live_log_while_it_is_written(tmp_path):
    p = tmp_path / "audit.jsonl"
    write_log(p, 1)
    done = threading.Event()

    def writer():
        with AuditLog(p) as log:
            for i in range(1500):
                log.append("decision", decision(i, pad="x" * 3000))
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    reports = []
    while not done.is_set():
        reports.append(verify_log(p))
    t.join()
    assert reports and all(r.ok for r in reports), [r for r in reports if not r.ok][:1]
    assert verify_log(p).records == 1501


def _inherited_writer(log: AuditLog, worker: int) -> None:
    for i in range(150):
        log.append("decision", decision(i, worker=worker))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_child_reuses_the_parents_log(tmp_path):
    p = tmp_path / "audit.jsonl"
    log = AuditLog(p)
    ctx = multiprocessing.get_context("fork")
    kids = [ctx.Process(target=_inherited_writer, args=(log, w)) for w in (1, 2)]
    for k in kids:
        k.start()
    _inherited_writer(log, 0)
    for k in kids:
        k.join(60)
        assert k.exitcode == 0
    log.close()
    _check_concurrent(p, 3, 150)


WRITER_LOOP = """
import sys
from riskguard.decisionlog.log import AuditLog
log = AuditLog(sys.argv[1])
i = 0
while True:
    i += 1
    log.append("decision", {"decisionId": str(i), "decision": "allow", "pad": "x" * 2000})
"""


def test_kill_9_mid_stream_then_append(tmp_path):
    p = tmp_path / "audit.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(p)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while (not p.exists() or p.stat().st_size < 200_000) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with AuditLog(p) as log:
        last = log.append("decision", decision(0))
    r = verify_log(p)
    assert r.ok and r.head == last["hash"] and r.records == last["seq"], r


def test_torn_line_is_repaired(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 3)
    torn = b'{"decision":"deny","decisionId":"01J9'  # a crash mid-write
    with open(p, "ab") as f:
        f.write(torn)
    r = verify_log(p)
    assert (r.ok, r.kind, r.first_bad_line, r.records) == (False, "torn", 4, 3)
    assert r.head == written[-1]["hash"]
    with AuditLog(p) as log:
        rec = log.append("decision", decision(4))
    recs = [json.loads(x) for x in read_lines(p)]
    assert [x["event"] for x in recs] == ["decision"] * 3 + ["repair", "decision"]
    repair = recs[3]
    assert repair["droppedBytes"] == len(torn)
    assert repair["droppedDigest"] == "sha256:" + hashlib.sha256(torn).hexdigest()
    assert repair["prev"] == written[-1]["hash"] and repair["seq"] == 4
    assert rec["seq"] == 5 and recs[:3] == written  # nothing complete was lost
    assert verify_log(p).ok


def test_torn_first_line_is_repaired(tmp_path):
    p = tmp_path / "audit.jsonl"
    p.write_bytes(b'{"seq":1,"ev')
    with AuditLog(p) as log:
        log.append("decision", decision(1))
    recs = [json.loads(x) for x in read_lines(p)]
    assert [(x["seq"], x["event"]) for x in recs] == [(1, "repair"), (2, "decision")]
    assert recs[0]["prev"] == GENESIS
    assert verify_log(p).ok


def test_disk_full(tmp_path, monkeypatch):
    p = tmp_path / "audit.jsonl"
    log = AuditLog(p)
    log.append("decision", decision(1))
    before = p.read_bytes()
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(AuditLogError, match="No space left on device") as exc:
        log.append("decision", decision(2))
    assert exc.value.errno == errno.ENOSPC
    assert p.read_bytes() == before and verify_log(p).ok

    calls = []

    def half_then_full(fd, data):  # a short write, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(AuditLogError):
        log.append("decision", decision(2))
    assert p.read_bytes() == before and verify_log(p).ok  # the partial line was undone

    monkeypatch.setattr(os, "write", real_write)
    assert log.append("decision", decision(2))["seq"] == 2
    log.close()
    r = verify_log(p)
    assert r.ok and r.records == 2


def test_fsync_failure_is_undone(tmp_path, monkeypatch):
    p = tmp_path / "audit.jsonl"
    with AuditLog(p, fsync=True) as log:
        log.append("decision", decision(1))
        before = p.read_bytes()

        def eio(fd):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "fdatasync", eio, raising=False)
        monkeypatch.setattr(os, "fsync", eio)
        with pytest.raises(AuditLogError, match="fsync"):
            log.append("decision", decision(2))
        assert p.read_bytes() == before
        monkeypatch.undo()
        assert log.append("decision", decision(2))["seq"] == 2
    assert verify_log(p).records == 2


# --------------------------------------------------------------------------- CLI


def test_cli_ok_and_tampered(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 4)
    r = run_cli("verify-log", str(p))
    assert r.returncode == 0, r.stderr
    assert "4 records" in r.stdout and written[-1]["hash"] in r.stdout

    lines = read_lines(p)
    _edit(lines, 2, lambda rec: rec.update(decision="allow"))
    write_lines(p, lines)
    r = run_cli("verify-log", str(p))
    assert r.returncode == 1
    assert f"{p}:3: seq 3: hash mismatch" in r.stdout
    assert "2 good records" in r.stdout and "Traceback" not in r.stderr

    r = run_cli("verify-log", str(p), "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["firstBadLine"] == 3 and doc["firstBadSeq"] == 3
    assert doc["kind"] == "hash-mismatch" and doc["head"] == written[1]["hash"]


def test_cli_key_and_anchor(tmp_path):
    p = tmp_path / "audit.jsonl"
    written = write_log(p, 3, key=KEY)
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    anchor = written[-1]["hash"]
    r = run_cli("verify-log", str(p), "--key-file", str(key_file), "--expect-head", anchor)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {"AUDIT_KEY": KEY.decode()}
    write_lines(p, read_lines(p)[:2])
    r = run_cli(
        "verify-log",
        str(p),
        "--key-env",
        "AUDIT_KEY",
        "--expect-head",
        written[-1]["hash"],
        env=env,
    )
    assert r.returncode == 1 and "truncated" in r.stdout

    r = run_cli("verify-log", str(p))  # keyed log, no key
    assert r.returncode == 2 and "key" in r.stderr and "Traceback" not in r.stderr


def test_cli_usage_errors(tmp_path):
    for args in (
        ("verify-log", str(tmp_path / "missing.jsonl")),
        ("verify-log", str(tmp_path), "--key-env", "RISKGUARD_TEST_UNSET_VAR"),
    ):
        r = run_cli(*args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr
    r = run_cli("verify-log", "--help")
    assert r.returncode == 0 and "--expect-head" in r.stdout and "HMAC" in r.stdout
