"""The reason-code table: generated from the code, never drifting from what rules emit."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys

import pytest

from riskguard.engine.evaluate import ENGINE_CODES, evaluate
from riskguard.engine.plugins import build_registry
from riskguard.engine.policy import load_policy
from riskguard.faces.guard import GUARD_CODES
from riskguard.model.snapshot import build_order, build_snapshot
from riskguard.policytools.codes import ENGINE_TYPE, GUARD_TYPE, all_codes, render_markdown

from .conftest import POLICIES, ROOT, snapshot_doc

DOC = ROOT / "docs" / "reason-codes.md"
RULES_DIR = ROOT / "riskguard" / "rules"
CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
BUILTINS = build_registry((), load_entry_points=False)


def test_docs_table_equals_the_rendering():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/reason-codes.md is stale; regenerate: python -m riskguard.policytools.codes --write docs/reason-codes.md"
    )


def test_module_entry_point_prints_the_table():
    r = subprocess.run(
        [sys.executable, "-m", "riskguard.policytools.codes"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout == render_markdown()


def test_every_source_of_codes_is_in_the_table():
    rows = all_codes()
    got = {(c, t) for c, t, _d in rows}
    assert {(c, ENGINE_TYPE) for c in ENGINE_CODES} <= got
    assert {(c, GUARD_TYPE) for c in GUARD_CODES} <= got
    for name, rt in BUILTINS.rule_types.items():
        assert {(c, name) for c in rt.codes} <= got, name
    assert rows == sorted(rows)
    assert all(d.strip() for _c, _t, d in rows)


def test_codes_are_well_formed_and_have_one_meaning():
    rows = all_codes()
    for code, _t, _d in rows:
        assert CODE_RE.match(code), code
    codes = [c for c, _t, _d in rows]
    assert len(codes) == len(set(codes)), "a code declared by two sources"


def test_a_plugins_codes_join_the_table_when_its_registry_is_given():
    reg = build_registry((str(ROOT / "plugins" / "example_rule.py"),), load_entry_points=False)
    assert ("CONCENTRATION_EXCEEDS_MAX", "max_concentration") in {
        (c, t) for c, t, _ in all_codes(reg)
    }
    assert "CONCENTRATION_EXCEEDS_MAX" in render_markdown(reg)
    assert "CONCENTRATION_EXCEEDS_MAX" not in render_markdown()  # built-ins only by default


# ----------------------------------------------------------------- codes in the rule modules


def _rule_modules():
    for path in sorted(RULES_DIR.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "base":
            continue
        yield path, importlib.import_module(f"riskguard.rules.{path.stem}")


def _violate_literals(tree: ast.AST) -> set[str]:
    """Codes passed literally to ``self.violate(ctx, "CODE", ...)``."""
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "violate"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            out.add(node.args[1].value)
    return out


def _code_shaped(tree: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and CODE_RE.match(n.value)
    }


@pytest.mark.parametrize("path", [p for p, _m in _rule_modules()], ids=lambda p: p.stem)
def test_rule_module_emits_only_the_codes_it_declares(path):
    module = importlib.import_module(f"riskguard.rules.{path.stem}")
    declared = set(module.RULE_TYPE.codes)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    emitted = _violate_literals(tree)
    assert emitted <= declared, f"{path.name} emits undeclared codes {emitted - declared}"
    # every code-shaped string in the module is a known code (codes passed via a variable)
    table = {c for c, _t, _d in all_codes()}
    assert _code_shaped(tree) <= table, _code_shaped(tree) - table
    # and every declared code is used somewhere in the module (no dead rows in the docs)
    assert declared <= _code_shaped(tree), (
        f"{path.name} never emits {declared - _code_shaped(tree)}"
    )


def test_every_code_the_presets_emit_is_in_the_table():
    table = {c for c, _t, _d in all_codes()}
    seen: set[str] = set()
    orders = [
        None,
        {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 500, "leverage": 50, "price": 200},
        {"symbol": "SOL/USDT:USDT", "side": "sell", "amount": 1, "reduceOnly": True},
        {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 1},
    ]
    docs = [
        snapshot_doc(),
        snapshot_doc(walletBalance=700, dayStartEquity=5000, equityPeak=9000),
        snapshot_doc(markets={"SOL/USDT:USDT": {"markPrice": 150.0, "atrPct": 9.0}}),
    ]
    for name in ("default", "conservative", "scalper", "trend", "prop-desk"):
        pol = load_policy(POLICIES / f"{name}.yaml")
        for doc in docs:
            for order in orders:
                d = evaluate(pol, build_snapshot(doc), build_order(order) if order else None)
                seen |= {v.code for v in d.violations}
    assert seen <= table, seen - table
    assert len(seen) >= 10  # the sweep really exercised the rules
