"""How a decision is compared with a case's expectations.

Expectations are *subsets* (``violations: [a]`` means "a is among them") so a case states
only what it is about and survives unrelated rules being added; an empty list means "none
at all"; numbers match with a relative tolerance or a ``{min, max, approx}`` matcher.
"""

from __future__ import annotations

import math
from typing import Any

from riskguard.engine.decision import Decision
from riskguard.policytools.testing.model import Mismatch
from riskguard.policytools.testing.schema import REL_TOL

# --------------------------------------------------------------------------- checking


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def num_match(exp: Any, actual: Any) -> bool:
    """A number (±1e-9 relative), null, {approx, rel, abs} or {min, max}."""
    if exp is None:
        return actual is None
    if not _is_num(actual) or (isinstance(actual, float) and math.isnan(actual)):
        return False
    if _is_num(exp):
        return math.isclose(actual, exp, rel_tol=REL_TOL, abs_tol=1e-12)
    if isinstance(exp, dict):
        if "approx" in exp:
            return math.isclose(
                actual, exp["approx"], rel_tol=exp.get("rel", REL_TOL), abs_tol=exp.get("abs", 0.0)
            )
        lo, hi = exp.get("min"), exp.get("max")
        return (lo is None or actual >= lo) and (hi is None or actual <= hi)
    return False


def _is_num_matcher(exp: Any) -> bool:
    return isinstance(exp, dict) and (
        ("approx" in exp and set(exp) <= {"approx", "rel", "abs"})
        or (bool(exp) and set(exp) <= {"min", "max"})
    )


def matches(exp: Any, actual: Any, *, substring_keys: frozenset[str] = frozenset()) -> bool:
    """Subset match: mappings by their keys, lists by "each expected item matches some item"."""
    if isinstance(exp, dict):
        if _is_num(actual) and _is_num_matcher(exp):
            return num_match(exp, actual)
        if not isinstance(actual, dict):
            return False
        for k, v in exp.items():
            if k not in actual:
                if v is None:
                    continue  # absent and null are the same to a reader
                return False
            if k in substring_keys and isinstance(v, str) and isinstance(actual[k], str):
                if v not in actual[k]:
                    return False
            elif not matches(v, actual[k]):
                return False
        return True
    if isinstance(exp, list):
        if not isinstance(actual, (list, tuple)):
            return False
        return all(any(matches(e, a) for a in actual) for e in exp)
    if isinstance(exp, bool) or isinstance(actual, bool):
        return type(exp) is type(actual) and exp == actual
    if _is_num(exp):
        return _is_num(actual) and math.isclose(actual, exp, rel_tol=REL_TOL, abs_tol=1e-12)
    return exp == actual


def _v_label(v: Any) -> str:
    s = f"{v.rule} {v.code} ({v.severity}"
    if v.symbol:
        s += f", {v.symbol}"
    return s + ")"


def _a_label(a: Any) -> str:
    d = a.to_dict()
    rest = {k: v for k, v in d.items() if k not in ("type", "rule")}
    extra = ", ".join(f"{k}={_short(v)}" for k, v in rest.items() if k != "message")
    return f"{a.type}[{a.rule}]" + (f"({extra})" if extra else "")


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.8g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


def check_expectations(expect: dict, d: Decision, step: int | None = None) -> list[Mismatch]:
    """Compare one decision with one ``expect`` mapping; [] when everything holds."""
    out: list[Mismatch] = []
    vdicts = [v.to_dict() for v in d.violations]
    vlabels = [_v_label(v) for v in d.violations]
    adicts = [a.to_dict() for a in d.actions]
    alabels = [_a_label(a) for a in d.actions]

    def add(check: str, exp: Any, act: Any, msg: str) -> None:
        out.append(Mismatch(check, exp, act, msg, step))

    if "decision" in expect and d.decision != expect["decision"]:
        add("decision", expect["decision"], d.decision, "the decision differs")
    if "wouldDecide" in expect and d.wouldDecide != expect["wouldDecide"]:
        add(
            "wouldDecide",
            expect["wouldDecide"],
            d.wouldDecide,
            "monitor mode's would-decide differs",
        )
    if "violations" in expect:
        exp = expect["violations"]
        if not exp:
            if vdicts:
                add("violations", [], vlabels, "expected no violations at all")
        else:
            missing = [
                e
                for e in exp
                if not any(
                    (v["rule"] == e)
                    if isinstance(e, str)
                    else matches(e, v, substring_keys=frozenset({"message"}))
                    for v in vdicts
                )
            ]
            if missing:
                add("violations", missing, vlabels, "expected violations not found")
    if "codes" in expect:
        exp = expect["codes"]
        got = [v.code for v in d.violations]
        if not exp:
            if got:
                add("codes", [], got, "expected no reason codes at all")
        else:
            missing = [c for c in exp if c not in got]
            if missing:
                add("codes", missing, got, "expected reason codes not found")
    if "absent" in expect:
        present = [
            a for a in expect["absent"] if any(v.rule == a or v.code == a for v in d.violations)
        ]
        if present:
            add(
                "absent",
                expect["absent"],
                vlabels,
                f"present but must not be: {', '.join(present)}",
            )
    if "actions" in expect:
        exp = expect["actions"]
        if not exp:
            if adicts:
                add("actions", [], alabels, "expected no actions at all")
        else:
            missing = [e for e in exp if not any(_action_match(e, a) for a in adicts)]
            if missing:
                add("actions", missing, alabels, "expected actions not found")
    if "absentActions" in expect:
        present = [e for e in expect["absentActions"] if any(_action_match(e, a) for a in adicts)]
        if present:
            add("absentActions", present, alabels, "actions present but must not be")
    if "maxAllowedAmount" in expect:
        exp = expect["maxAllowedAmount"]
        if not num_match(exp, d.maxAllowedAmount):
            add("maxAllowedAmount", exp, d.maxAllowedAmount, "the largest allowed amount differs")
    return out


def _action_match(exp: Any, actual: dict) -> bool:
    if isinstance(exp, str):
        return actual.get("type") == exp
    return matches(exp, actual)
