"""The wheel holds what an installed riskguard needs, and works away from the source tree.

Two bugs of this kind were found only from a fresh clone: the schemas and the ccxt plugin
live outside ``riskguard/`` in the repository, so a test must look at the built wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # plain Python (RISKGUARD_PURE=1): what a wheel holds is the question here, and
    # compiling would add a minute; the compiled build is what the suite itself runs
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RISKGUARD_PURE": "1"},
    )
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-500:]}")
    (whl,) = out.glob("riskguard-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for schema in ("snapshot", "order", "decision", "policy"):
        assert f"riskguard/schemas/{schema}.schema.json" in names
    assert "riskguard/contrib/ccxt_guard.py" in names
    for preset in ("default", "conservative", "scalper", "trend", "prop-desk"):
        assert f"riskguard/presets/{preset}.yaml" in names  # Guard.from_preset
    assert "riskguard/faces/serve/app.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    assert "riskguard/py.typed" in names  # PEP 561: embedders get riskguard's types


def test_wheel_holds_every_package_of_the_source_tree(wheel):
    """The package list in pyproject.toml is explicit: a new folder left off it would be
    missing from an installed riskguard while every test from the checkout still passes."""
    names = set(zipfile.ZipFile(wheel).namelist())
    src = ROOT / "riskguard"
    for init in src.rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        assert rel in names, f"{rel} is not in the wheel: add its package to pyproject.toml"


def test_installed_package_finds_its_schemas_away_from_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    code = (
        "import riskguard, riskguard.model.schemas as s; "
        f"assert riskguard.__file__.startswith({str(target)!r}), riskguard.__file__; "
        "print(s.load_schema('snapshot')['title']); "
        "from riskguard import Guard; g = Guard.from_preset('default'); "
        "import riskguard.faces.guard as m; "
        f"assert str(m.preset_path('default')).startswith({str(target)!r}); "
        "print('preset', g.policy.name)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "snapshot" in r.stdout
    assert "preset default" in r.stdout
