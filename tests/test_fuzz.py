"""The parser fuzz target (bench/fuzz.py) on a small fixed budget, and its regressions.

``python bench/fuzz.py --seconds 600`` runs it for real (atheris when installed); here the
deterministic mutation engine runs a few hundred inputs so CI stays fast.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from .conftest import ROOT


def _load_fuzz():
    spec = importlib.util.spec_from_file_location(
        "riskguard_bench_fuzz", ROOT / "bench" / "fuzz.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


fuzz = _load_fuzz()


def test_every_seed_is_handled(tmp_path):
    corpus = fuzz.seed_corpus()
    assert len(corpus) > 20
    outcomes = {fuzz.run_one(seed, str(tmp_path)) for seed in corpus}
    assert outcomes == {"accepted", "rejected"}


def test_bounded_mutation_fuzz_finds_nothing():
    stats = fuzz.fuzz_mutate(iterations=400, seed=20261125, timeout=30)
    findings = [f"{exc}" for _data, exc in stats["findings"]]
    assert not findings, findings
    assert stats["accepted"] > 0 and stats["rejected"] > 0


def test_a_parser_that_raises_is_a_finding(monkeypatch, tmp_path):
    """The harness can fail: an exception other than RiskguardError is reported."""

    def broken(text, file=None):
        raise KeyError("parser bug")

    monkeypatch.setitem(fuzz._engine(), "parse_json_fast", broken)
    with pytest.raises(fuzz.Finding, match="parser raised KeyError"):
        fuzz.run_one(b"\x00{}", str(tmp_path))
    stats = fuzz.fuzz_mutate(iterations=30, seed=1, timeout=30)
    assert stats["findings"]


# Inputs the fuzzer found (each fixed in its own commit): target byte + text.
REGRESSIONS = [
    pytest.param(b"\x03apiVersion: riskguard/v1\nkind: Po\x7flicy\n", id="control-char-yaml"),
    pytest.param(b"\x01walletBalance: 1\nx: \x00\n", id="nul-in-yaml-snapshot"),
    pytest.param(
        b'\x03{"apiVersion": "riskguard/v1", "kind": "Policy", "metadata": {"name": "x"}, '
        b'"spec": {"extends": ["' + b"9" * 400 + b'.yaml"]}}',
        id="extends-name-too-long",
    ),
    pytest.param(b'\x00{"walletBalance": 1' + b"0" * 5000 + b"}", id="json-int-5000-digits"),
    pytest.param(b'\x00{"walletBalance": 1' + b"0" * 400 + b"}", id="json-int-beyond-float"),
    pytest.param(b'\x00{"walletBalance": 1, "timestamp": 1e300}', id="timestamp-year-huge"),
    pytest.param(b'\x00{"walletBalance": 1, "account": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b"\x01walletBalance: 1\nfoo: .nan\n1: x\n", id="yaml-nan-and-int-key"),
    pytest.param(
        b'\x03{"apiVersion": "riskguard/v1", "kind": "Policy", "metadata": {"name": "x"}, '
        b'"spec": {"rules": [{"id": "a", "type": ["margin_utilization"]}]}}',
        id="rule-type-list",
    ),
    pytest.param(
        b'\x03{"apiVersion": "riskguard/v1", "kind": "Policy", "metadata": {"name": "x"}, '
        b'"spec": {"rules": [{"id": "a", "type": "margin_utilization", "match": {"symbols": null}}]}}',
        id="match-symbols-null",
    ),
]


@pytest.mark.parametrize("data", REGRESSIONS)
def test_found_inputs_are_rejected_cleanly(data, tmp_path):
    assert fuzz.run_one(data, str(tmp_path)) == "rejected"
