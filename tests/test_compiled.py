"""The compiled build (mypyc, see ``setup.py``) decides exactly as the Python source.

``pip install`` compiles the hot modules where it can; ``RISKGUARD_PURE=1`` makes the
same install run the source instead (``riskguard/_pure.py``). Each test here runs one
corpus of decisions in two fresh interpreters, one per build, and compares every byte of
every decision's JSON (ids and clocks aside): pre-trade checks that allow, resize and deny
on accounts of 1 to 12 positions with the marks moved, under every bundled policy, and
simulated runs of the paper exchange with actions executed. On a plain-Python install
both sides run the source and the comparison is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The corpus, run by a child interpreter; prints one JSON line: the build and a digest.
CORPUS = r"""
import copy, hashlib, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]) / "bench"))
from check_bench import account_doc
from riskguard import _pure
from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.model.snapshot import build_order, build_snapshot

VOLATILE = ("decisionId", "timestamp", "durationUs", "evaluatedAt")
h = hashlib.sha256()
n = 0

def record(doc):
    global n
    for k in VOLATILE:
        doc.pop(k, None)
    h.update(json.dumps(doc, sort_keys=True).encode())
    n += 1

policies = sorted(p for p in Path(sys.argv[1], "policies").glob("*.yaml")
                  if not p.name.endswith(".tests.yaml"))
for path in policies:
    policy = load_policy(path)
    for size in (1, 5, 12):
        doc, order = account_doc(size)
        for shift in (0.7, 1.0, 1.3):
            d2 = copy.deepcopy(doc)
            for p in d2["positions"]:
                p["markPrice"] *= shift
            for m in d2.get("markets", {}).values():
                m["markPrice"] *= shift
            snap = build_snapshot(d2)
            record(evaluate(policy, snap, now_ms=1795521600000).to_dict(metrics=True))
            for f in (0.01, 1, 30, 1000):
                for side in ("buy", "sell"):
                    o = dict(order, amount=order["amount"] * f, side=side)
                    d = evaluate(policy, snap, build_order(o), now_ms=1795521600000)
                    record(d.to_dict(metrics=True))
                    record(evaluate(policy, snap, build_order(dict(o, reduceOnly=True)),
                                    now_ms=1795521600000).to_dict())

from riskguard.faces.simulate import PolicyUnderTest, SimOptions, run_one
from riskguard.paper.prices import gbm, scenario
doc, _ = account_doc(8)
snap = build_snapshot(doc)
marks = {p.symbol: p.markPrice for p in snap.positions}
paths = [gbm(marks, steps=400, sigma=2.0, seed=7, t0=1795521600000),
         scenario("covid-2020", marks, t0=1795521600000)]
for path in policies[:3]:
    put = PolicyUnderTest(path.stem, load_policy(path), str(path))
    for prices in paths:
        r = run_one(snap, put, prices, SimOptions())
        record(r)
print(json.dumps({"build": _pure.build(), "compiled": _pure.compiled_modules(),
                  "decisions": n, "digest": h.hexdigest()}))
"""


def _run(pure: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RISKGUARD_PURE"}
    if pure:
        env["RISKGUARD_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", CORPUS, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pure_switch_runs_the_source_and_says_so() -> None:
    pure = _run(pure=True)
    assert pure["compiled"] == []
    assert pure["build"] == "plain Python: RISKGUARD_PURE is set"
    assert pure["decisions"] > 500


def test_compiled_build_decides_exactly_as_the_source() -> None:
    built = _run(pure=False)
    if not built["compiled"]:
        pytest.skip(f"this install is not compiled ({built['build']}): nothing to compare")
    assert built["build"] == "compiled with mypyc"
    assert "riskguard.engine.evaluate" in built["compiled"]
    pure = _run(pure=True)
    assert pure["decisions"] == built["decisions"]
    assert pure["digest"] == built["digest"]


def test_version_names_the_build() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "riskguard", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("riskguard ")
    assert ("compiled with mypyc" in out.stdout) or ("plain Python" in out.stdout)


def test_an_install_with_a_c_compiler_is_compiled() -> None:
    """``pip install`` falls back to plain Python quietly when mypyc refuses the source
    (``pip -q`` hides why, and every test passes in plain Python too): where a C compiler
    and Python's headers are present, the install under test must be the compiled one."""
    import shutil
    import sysconfig

    from riskguard._pure import build, requested

    if requested():
        pytest.skip("RISKGUARD_PURE is set: plain Python on purpose")
    cc = (sysconfig.get_config_var("CC") or "").split()
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not cc or shutil.which(cc[0]) is None or not headers.exists():
        pytest.skip("no C compiler or no Python headers here: a plain install is expected")
    assert build() == "compiled with mypyc", (
        f"riskguard is installed as {build()!r} though a C compiler is present: mypyc refused "
        "the source at install time (`pip install -v -e .` prints why), or the install was "
        "made with RISKGUARD_PURE=1 (then set it for the tests too)"
    )
