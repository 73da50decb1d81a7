"""The audit and test commands where CI meets them (issue 13, items 6, 7, 8, 10): a broken
pipe, gzip and re-runs of --out, a compact archive form, a wrong Dask address, JUnit/SARIF."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import EXAMPLES, POLICIES, ROOT, run_cli

DEFAULT = str(POLICIES / "default.yaml")
SNAPSHOTS = str(EXAMPLES / "snapshots")


def _closed_stdout(*args: str) -> tuple[int, str]:
    """Run riskguard with a stdout whose reader has already gone (``| head -0``)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "riskguard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    return p.wait(timeout=120), err


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_broken_pipe_is_not_success(fmt):
    # --fail-on critical: this audit exits 0 when its output is read; unread, it must not.
    rc, err = _closed_stdout("audit", "-p", DEFAULT, SNAPSHOTS, "--fail-on", "critical", *fmt)
    assert rc == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_broken_pipe_in_policy_tests_is_not_success():
    rc, err = _closed_stdout("test", str(POLICIES / "default.yaml"))
    assert rc == 141, err
    assert "Traceback" not in err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "no-port-here"])
def test_a_wrong_dask_scheduler_is_a_usage_error_said_at_once(address):
    pytest.importorskip("distributed")
    addr = address.format(port=_free_port())
    r = run_cli(
        "audit", "-p", DEFAULT, SNAPSHOTS, "--engine", "dask", "--scheduler", addr,
        "--connect-timeout", "1",
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"--scheduler {addr}: cannot reach a Dask scheduler" in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def _audit_out(out, *extra):
    return run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--out", str(out), "-w", "1", *extra)


def _lines(path) -> list[dict]:
    import gzip
    import json

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(x) for x in fh]


def test_out_gz_is_gzip_and_a_rerun_does_not_append_silently(tmp_path):
    out = tmp_path / "d.jsonl.gz"
    r = _audit_out(out)
    assert r.returncode in (0, 1), r.stderr
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic, not text under a .gz name
    first = _lines(out)
    assert first and all("decisionId" in d for d in first)

    again = _audit_out(out)
    assert again.returncode == 2
    assert "exists" in again.stderr and "--append" in again.stderr and "--force" in again.stderr
    assert len(_lines(out)) == len(first)

    assert _audit_out(out, "--append").returncode in (0, 1)
    both = _lines(out)  # two gzip members, read as one stream
    assert len(both) == 2 * len(first)
    assert [d["snapshot"]["ref"] for d in both[len(first) :]] == [
        d["snapshot"]["ref"] for d in first
    ]

    assert _audit_out(out, "--force").returncode in (0, 1)
    assert len(_lines(out)) == len(first)
    r = run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--append", "--force")
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_compact_decisions_keep_the_facts_in_half_the_bytes(tmp_path):
    from riskguard.schemas_util import validator

    full, compact = tmp_path / "full.jsonl", tmp_path / "compact.jsonl"
    assert _audit_out(full).returncode in (0, 1)
    assert _audit_out(compact, "--decision-form", "compact").returncode in (0, 1)
    f, c = _lines(full), _lines(compact)
    assert len(f) == len(c) > 0
    v = validator("decision")
    for d in c:
        errors = list(v.iter_errors(d))
        assert not errors, errors[0].message
        assert d["form"] == "compact" and "metrics" not in d
        assert all(a["type"] != "alert" for a in d["actions"])
    for a, b in zip(f, c, strict=True):
        assert (a["decision"], a["snapshot"]) == (b["decision"], b["snapshot"])
        assert [(x["rule"], x["code"], x["observed"], x["limit"]) for x in a["violations"]] == [
            (x["rule"], x["code"], x["observed"], x["limit"]) for x in b["violations"]
        ]
    assert compact.stat().st_size < 0.6 * full.stat().st_size
    # the schema tells the forms apart: a full decision needs its messages
    bad = dict(c[0], form="full") if c[0]["violations"] else None
    if bad is not None:
        assert list(v.iter_errors(bad))
    assert list(v.iter_errors({**c[0], "metrics": {}}))  # compact: no metrics block


def test_decision_form_and_append_need_out():
    r = run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--decision-form", "compact")
    assert r.returncode == 2 and "go with --out" in r.stderr
