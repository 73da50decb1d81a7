"""The store the service's workers share (``riskguard.faces.serve.store``): a snapshot stored
or a trading state put through one worker is seen by the next request on any other, with
the shared generation counter (no ``stat`` while nothing was written) and without it.

Each ``SharedState`` below stands for one worker: its own cache and its own mapping of the
counter, over one state directory; one test writes from another process.
(The real-uvicorn tests in test_serve.py drive two workers end to end.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("starlette")

from riskguard import Guard
from riskguard.engine.decision import digest
from riskguard.faces.serve.store import SharedState
from riskguard.model.snapshot import build_snapshot

from .conftest import POLICIES, ROOT, snapshot_doc


def _snap(balance: float) -> tuple:
    """A snapshot whose stored file has the same size for every 4-digit balance."""
    raw = snapshot_doc(account="main", walletBalance=balance)
    snap = build_snapshot(raw)
    return snap, raw, digest(snap.to_dict())


def _workers(state_dir, *, counter: bool = True) -> tuple[SharedState, SharedState]:
    a, b = SharedState(state_dir), SharedState(state_dir)
    if not counter:  # as where fcntl/mmap are missing: every lookup stats its file
        a._generation = b._generation = None
    return a, b


@pytest.mark.parametrize("counter", [True, False])
def test_a_snapshot_stored_by_one_worker_is_the_next_one_the_other_reads(tmp_path, counter):
    a, b = _workers(tmp_path, counter=counter)
    assert a.get_snapshot("main") is None
    # same-size files written in quick succession (their mtimes may fall in one clock tick)
    for i in range(60):
        writer, reader = (a, b) if i % 3 else (b, a)
        snap, raw, want = _snap(1000.0 + i)
        assert writer.put_snapshot("main", snap, raw) == want
        for worker in (reader, writer, reader):  # read twice: the second from the cache
            got = worker.get_snapshot("main")
            assert got is not None
            assert got[1] == want
            assert got[0].walletBalance == 1000.0 + i


@pytest.mark.parametrize("counter", [True, False])
def test_the_trading_state_put_through_one_worker_applies_in_the_other(tmp_path, counter):
    a, b = _workers(tmp_path, counter=counter)
    ga, gb = Guard.from_file(POLICIES / "default.yaml"), Guard.from_file(POLICIES / "default.yaml")
    a.sync_trading_state(ga)
    b.sync_trading_state(gb)
    for i, state in enumerate(["halted", "reducing", "active", "halted", "active"] * 4):
        writer, wguard, reader, rguard = (a, ga, b, gb) if i % 2 else (b, gb, a, ga)
        writer.put_trading_state(wguard, state, f"step {i}")
        for _ in range(2):
            reader.sync_trading_state(rguard)
            writer.sync_trading_state(wguard)
            assert rguard.trading_state == wguard.trading_state == state
    # a snapshot stored in between does not undo it
    snap, raw, _ = _snap(2000.0)
    b.put_snapshot("main", snap, raw)
    a.sync_trading_state(ga)
    assert ga.trading_state == "active"


def test_writes_from_another_process_are_seen_by_the_next_lookup(tmp_path):
    here, _ = _workers(tmp_path)
    guard = Guard.from_file(POLICIES / "default.yaml")
    snap, raw, first = _snap(1000.0)
    here.put_snapshot("main", snap, raw)
    assert here.get_snapshot("main")[1] == first  # cached, with the counter's value
    here.sync_trading_state(guard)
    assert guard.trading_state == "active"
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from riskguard import Guard
from riskguard.faces.serve.store import SharedState
from riskguard.model.snapshot import build_snapshot
raw = json.loads(sys.argv[1])
other = SharedState(sys.argv[2])
other.put_snapshot("main", build_snapshot(raw), raw)
other.put_trading_state(Guard.from_file(sys.argv[3]), "halted", "from elsewhere")
"""
    _, raw2, second = _snap(1001.0)
    r = subprocess.run(
        [sys.executable, "-c", script, json.dumps(raw2), str(tmp_path), str(POLICIES / "default.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert here.get_snapshot("main")[1] == second
    here.sync_trading_state(guard)
    assert guard.trading_state == "halted"


def test_a_file_removed_by_hand_is_seen_at_the_next_write_through_the_service(tmp_path):
    """As documented: the counter, not the files, says when to look again."""
    a, b = _workers(tmp_path)
    snap, raw, want = _snap(1000.0)
    a.put_snapshot("main", snap, raw)
    assert b.get_snapshot("main")[1] == want
    for f in (tmp_path / "snapshots").iterdir():
        f.unlink()
    assert b.get_snapshot("main")[1] == want  # nothing written through the service since
    other_raw = snapshot_doc(account="other")
    a.put_snapshot("other", build_snapshot(other_raw), other_raw)
    assert b.get_snapshot("main") is None
