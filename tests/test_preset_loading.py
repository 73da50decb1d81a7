"""The policies in ``policies/`` ship inside the package (``riskguard.presets``): a user of an
installed riskguard reaches them by name, from any working directory."""

from __future__ import annotations

import pytest

from riskguard import Guard, PolicyError

from .conftest import EXAMPLES, run_cli

NAMES = ["conservative", "default", "prop-desk", "scalper", "trend"]


def test_every_shipped_policy_loads_by_name():
    assert Guard.preset_names() == NAMES
    for name in NAMES:
        assert Guard.from_preset(name).policy.name == name


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="known: conservative, default"):
        Guard.from_preset("defualt")
    with pytest.raises(PolicyError, match="no preset policy 'x'"):
        Guard.from_file("preset:x")
    with pytest.raises(ValueError):
        Guard.from_preset("../pyproject")  # a name, not a path


def test_the_cli_takes_preset_names_from_any_directory(tmp_path):
    snap = str(EXAMPLES / "snapshots" / "isolated-no-stop.json")
    r = run_cli("check", "-p", "preset:default", "-s", snap, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # this account breaks the default policy
    assert '"name": "default"' in r.stdout
    r = run_cli("check", "-p", "preset:nope", "-s", snap, cwd=tmp_path)
    assert r.returncode == 2 and "known: conservative" in r.stderr
    assert "Traceback" not in r.stderr
