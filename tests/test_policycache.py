"""The compiled-policy cache of one-shot ``riskguard check``: same decisions as a fresh load,
rebuilt when a policy file, an extended file or a plugin changes, safe under concurrent
runs, never trusted when broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from riskguard.engine.plugins import get_registry
from riskguard.engine.policy import load_policy
from riskguard.engine.policycache import load_policy_cached

from .conftest import POLICIES, ROOT, run_cli, snapshot_doc

PRESETS = sorted(POLICIES.glob("*.yaml"))
PRESETS = [p for p in PRESETS if not p.name.endswith(".tests.yaml")]


def _same(a, b) -> None:
    assert (a.name, a.version, a.description, a.mode, a.digest) == (
        b.name,
        b.version,
        b.description,
        b.mode,
        b.digest,
    )
    assert a.document == b.document
    assert a.specs == b.specs
    assert a.warnings == b.warnings
    assert a.files == b.files
    assert [type(r) for r in a.rules] == [type(r) for r in b.rules]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_a_cached_policy_is_the_policy(preset, tmp_path, monkeypatch):
    monkeypatch.setenv("RISKGUARD_CACHE_DIR", str(tmp_path))
    fresh = load_policy(preset)
    miss = load_policy_cached(preset)  # loads and writes the entry
    assert len(list(tmp_path.glob("*.json"))) == 1
    hit = load_policy_cached(preset)  # from the entry
    _same(miss, fresh)
    _same(hit, fresh)
    assert hit.registry is get_registry(())


def _check(policy: Path, snap: Path, cache: Path, *extra: str):
    r = run_cli(
        "check", "-p", str(policy), "-s", str(snap), "--json", *extra,
        env={"RISKGUARD_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    d = json.loads(r.stdout)
    return d["decision"], sorted(v["code"] for v in d["violations"]), d["policy"]["digest"]


def _snapshot(tmp_path: Path) -> Path:
    p = tmp_path / "snap.json"
    p.write_text(json.dumps(snapshot_doc()))
    return p


def test_a_changed_policy_file_is_read_again(tmp_path):
    cache = tmp_path / "cache"
    snap = _snapshot(tmp_path)
    policy = tmp_path / "p.yaml"
    text = (POLICIES / "default.yaml").read_text()
    policy.write_text(text)
    first = _check(policy, snap, cache)
    assert _check(policy, snap, cache) == first  # a hit decides the same
    assert len(list(cache.glob("*.json"))) == 1
    # a stricter limit: the cached rules must not be used
    policy.write_text(
        text.replace("params: {max: 0.35, warnAt: 0.30", "params: {max: 0.01, warnAt: 0.005")
    )
    changed = _check(policy, snap, cache)
    assert "MARGIN_UTILIZATION_EXCEEDS_MAX" in changed[1]
    assert "MARGIN_UTILIZATION_EXCEEDS_MAX" not in first[1]
    assert changed[2] != first[2]
    assert _check(policy, snap, cache) == changed


def test_a_changed_extended_file_is_read_again(tmp_path):
    cache = tmp_path / "cache"
    snap = _snapshot(tmp_path)
    base = tmp_path / "base.yaml"
    base.write_text((POLICIES / "default.yaml").read_text())
    top = tmp_path / "top.yaml"
    top.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: top, version: '1'}\n"
        "spec:\n  extends: [base.yaml]\n  rules: []\n"
    )
    first = _check(top, snap, cache)
    assert _check(top, snap, cache) == first
    base.write_text(
        base.read_text().replace("{max: 0.35, warnAt: 0.30", "{max: 0.01, warnAt: 0.005")
    )
    changed = _check(top, snap, cache)
    assert "MARGIN_UTILIZATION_EXCEEDS_MAX" in changed[1] and changed[2] != first[2]


PLUGIN = """
from riskguard import hookimpl
from riskguard.rules.base import BaseRule, RuleType

class Always(BaseRule):
    def evaluate(self, ctx):
        if self.spec.params["fire"]:
            self.violate(ctx, "ALWAYS_FIRES", "fired")

@hookimpl
def riskguard_rule_types(register):
    register(RuleType(name="always", compile=Always, codes={"ALWAYS_FIRES": "fires"},
                      description="fires when told to",
                      params={"type": "object", "additionalProperties": False,
                              "properties": {"fire": {"type": "boolean", "default": __FIRE__}}}))
"""


def test_a_changed_plugin_invalidates_the_entry(tmp_path):
    cache = tmp_path / "cache"
    snap = _snapshot(tmp_path)
    plugin = tmp_path / "always.py"
    plugin.write_text(PLUGIN.replace("__FIRE__", "False"))
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: p, version: '1'}\n"
        "spec:\n  rules:\n    - {id: a, type: always}\n"
    )
    quiet = _check(policy, snap, cache, "--plugin", str(plugin))
    assert quiet[1] == []
    assert _check(policy, snap, cache, "--plugin", str(plugin)) == quiet
    # the same policy file; the plugin's default changed: the defaults applied must follow
    plugin.write_text(PLUGIN.replace("__FIRE__", "True"))
    fired = _check(policy, snap, cache, "--plugin", str(plugin))
    assert fired[1] == ["ALWAYS_FIRES"]


def test_concurrent_one_shot_checks_share_the_cache_safely(tmp_path):
    cache = tmp_path / "cache"
    snap = _snapshot(tmp_path)
    env = {**os.environ, "RISKGUARD_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "riskguard", "check", "-p", str(POLICIES / "default.yaml")]
    cmd += ["-s", str(snap), "--json"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode in (0, 1), err
        d = json.loads(out)
        outs.append((d["decision"], [v["code"] for v in d["violations"]], d["policy"]["digest"]))
    assert len(set(map(repr, outs))) == 1
    entries = list(cache.glob("*.json"))
    assert len(entries) == 1 and not list(cache.glob(".tmp-*"))  # no half-written leftovers
    assert json.loads(entries[0].read_text())["digest"] == outs[0][2]


def test_a_broken_entry_is_a_miss_and_is_rewritten(tmp_path):
    cache = tmp_path / "cache"
    snap = _snapshot(tmp_path)
    policy = POLICIES / "default.yaml"
    first = _check(policy, snap, cache)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"format": 1, "files": [')  # a torn write from elsewhere
    assert _check(policy, snap, cache) == first
    assert json.loads(entry.read_text())["digest"] == first[2]
    # a well-formed entry whose recorded digests no longer match is not used either
    e = json.loads(entry.read_text())
    e["files"][0][1] = "0" * 64
    e["specs"] = []
    entry.write_text(json.dumps(e))
    assert _check(policy, snap, cache) == first


def test_the_cache_can_be_turned_off(tmp_path):
    snap = _snapshot(tmp_path)
    r = run_cli(
        "check", "-p", str(POLICIES / "default.yaml"), "-s", str(snap), "--json",
        env={"RISKGUARD_CACHE_DIR": "off", "XDG_CACHE_HOME": str(tmp_path / "xdg")},
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    assert not (tmp_path / "xdg").exists()
