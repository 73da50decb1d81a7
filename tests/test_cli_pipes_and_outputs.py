"""The audit and test commands where CI meets them (issue 13, items 6, 7, 8, 10): a broken
pipe, gzip and re-runs of --out, a compact archive form, a wrong Dask address, JUnit/SARIF."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import EXAMPLES, POLICIES, ROOT

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
