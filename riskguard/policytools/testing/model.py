"""What a policy test file holds once loaded (cases and their steps) and what running it
gives (mismatches, case and suite results)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from riskguard.engine.decision import Decision
from riskguard.engine.policy import CompiledPolicy
from riskguard.errors import Problem
from riskguard.model.snapshot import (
    Order,
    Snapshot,
)

# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class Step:
    """One evaluation: a snapshot, an optional order, the clock and what to expect."""

    snapshot: Snapshot
    order: Order | None
    now_ms: int
    expect: dict | None
    name: str | None = None
    trading_state: str | None = None  # set on the guard (kill switch) before evaluating


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    file: str
    line: int | None
    column: int | None
    policy: str  # resolved policy path (key of the compiled-policy cache)
    steps: tuple[Step, ...]
    stateful: bool  # written with `steps:` (one shared engine state)
    skip: str | None = None
    row: dict | None = None  # the table row it came from

    @property
    def where(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc


@dataclass(frozen=True, slots=True)
class TestFile:
    path: str
    policy: str
    cases: tuple[Case, ...]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation that did not hold: what was expected, what the engine decided."""

    check: str  # decision | wouldDecide | violations | codes | absent | actions | absentActions | maxAllowedAmount
    expected: Any
    actual: Any
    message: str
    step: int | None = None

    def to_dict(self) -> dict:
        return {
            "check": self.check,
            "expected": _jsonable(self.expected),
            "actual": _jsonable(self.actual),
            "message": self.message,
            "step": self.step,
        }


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    status: str  # pass | fail | skip | error
    mismatches: tuple[Mismatch, ...] = ()
    decisions: tuple[Decision, ...] = ()
    outcomes: tuple[dict, ...] = ()  # per step: rule id -> violated | passed | silent
    error: str | None = None
    duration_ms: float = 0.0

    def to_dict(self) -> dict:
        c = self.case
        d: dict = {
            "name": c.name,
            "status": self.status,
            "location": {"file": c.file, "line": c.line, "column": c.column},
            "policy": c.policy,
            "durationMs": round(self.duration_ms, 3),
        }
        if c.skip is not None:
            d["skip"] = c.skip
        if self.mismatches:
            d["failures"] = [m.to_dict() for m in self.mismatches]
        if self.error is not None:
            d["error"] = self.error
        if self.decisions:
            d["decisions"] = [_decision_summary(x) for x in self.decisions]
        return d


@dataclass
class SuiteResult:
    """Everything a run produced: results, input problems, the policies used."""

    results: list[CaseResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    policies: dict[str, CompiledPolicy] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    #: policy files among the inputs that no tests file covers (reported as skipped)
    untested: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 2
        if any(r.status in ("fail", "error") for r in self.results):
            return 1
        return 0

    def summary(self) -> dict:
        return {
            "total": len(self.results),
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "errors": self.count("error"),
            "skipped": self.count("skip"),
            "untested": len(self.untested),
            "files": len(self.files),
        }

    @property
    def skipped_anything(self) -> bool:
        """A skipped case or a policy without tests: ``riskguard test`` exits 1 for it
        unless ``--exit-zero-on-skipped`` (as ``opa test`` does)."""
        return bool(self.untested) or any(r.status == "skip" for r in self.results)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def _decision_summary(d: Decision) -> dict:
    out = {
        "decision": d.decision,
        "violations": [
            {"rule": v.rule, "code": v.code, "severity": v.severity, "symbol": v.symbol}
            for v in d.violations
        ],
        "actions": [_jsonable(a.to_dict()) for a in d.actions],
    }
    if d.order is not None:
        out["maxAllowedAmount"] = _jsonable(d.maxAllowedAmount)
    if d.wouldDecide is not None:
        out["wouldDecide"] = d.wouldDecide
    if d.errors:
        out["errors"] = list(d.errors)
    return out
