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
