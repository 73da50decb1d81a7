"""The benchmark scripts still run and still agree (quick modes; no timing is asserted).

``bench/check_bench.py --quick`` refuses to time anything unless the hand-written, CEL and
Rego baselines reach the guard's decision (outcome, codes, largest amount) on an allow, a
resize and a deny scenario, for the whole default policy and for the three core rules.
CEL and Rego come with the ``[bench]`` extra; without it they are skipped and the script
says so, while the hand-written agreement still runs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_check_bench_quick_agrees(tmp_path: Path) -> None:
    r = _run([str(ROOT / "bench" / "check_bench.py"), "--quick"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "disagrees" not in out + r.stderr
    assert "**policies/default.yaml, all 9 rules**" in out
    assert "**three core rules" in out
    for mod, name in (("cel", "CEL"), ("regopy", "Rego")):
        if importlib.util.find_spec(mod) is None:
            assert f"{name} skipped" in out
        else:
            assert f"{name} skipped" not in out
    # one 10-position row per row set, with the guard and the hand-written figures
    rows = [line for line in out.splitlines() if line.startswith("| 10 |")]
    assert len(rows) >= 2, out


def test_audit_bench_quick_runs(tmp_path: Path) -> None:
    r = _run(
        [str(ROOT / "bench" / "audit_bench.py"), "--quick", "--data-dir", str(tmp_path / "d")],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    runs = [line for line in r.stdout.splitlines() if line.startswith("| 300 |")]
    # the parse baseline, 1 worker, 2 workers with --out, 2 workers summary only
    assert len(runs) == 4, r.stdout


def test_cli_bench_quick_runs(tmp_path: Path) -> None:
    r = _run([str(ROOT / "bench" / "cli_bench.py"), "--quick"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| policy cache cold |" in r.stdout and "| policy cache warm |" in r.stdout
    assert "`--stream` request" in r.stdout


def test_auditlog_bench_quick_runs(tmp_path: Path) -> None:
    r = _run([str(ROOT / "bench" / "auditlog_bench.py"), "--quick"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| plain SHA-256, no fsync |" in r.stdout and "| HMAC-SHA256, no fsync |" in r.stdout
