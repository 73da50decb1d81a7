"""Policy unit tests in YAML, run by ``riskguard test`` (the ``opa test`` of riskguard).

A test file ``<policy-stem>.tests.yaml`` sits beside its policy and lists cases: a
snapshot (and optionally an order and a clock) and what the decision must be. Every
case runs through the real engine (``riskguard.engine.evaluate`` with an injected
clock), so a passing suite says the policy *as compiled* does what its author meant.
The format is documented in ``docs/policy-testing.md``; keep it stable — preset
authors write against it.

Why the checks are shaped as they are:

- expectations are *subsets* (``violations: [a]`` means "a is among them") so a case
  states only what it is about and survives unrelated rules being added; an empty list
  (``violations: []``) means "none at all", never "nothing to check";
- every rule id and reason code a case names is checked against the policy and the
  registered rule types at load time: a typo in ``absent:`` would otherwise pass forever
  (the silent-never-fires hazard Cedar's validator exists for);
- ``steps`` share one engine state, like one long-lived ``Guard``, so stateful rules
  (order rate, duplicates, drawdown memory) are testable with a deterministic clock;
- ``table`` + ``template`` give data-driven cases, each row reported by its own name,
  like OPA's parameterised tests.
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jsonschema import Draft202012Validator

from riskguard.engine.decision import SEVERITIES, Decision
from riskguard.engine.evaluate import ENGINE, ENGINE_CODES, evaluate
from riskguard.engine.policy import API_VERSION, CompiledPolicy, load_policy
from riskguard.errors import Problem, RiskguardError
from riskguard.faces.guard import Guard
from riskguard.model.snapshot import (
    Order,
    Snapshot,
    build_order,
    build_snapshot,
    load_order,
    load_snapshot,
)
from riskguard.model.snapshot import parse_timestamp as _parse_ts
from riskguard.model.yamlio import Located, json_path, load_file
from riskguard.policytools.explain import rule_outcomes

KIND = "PolicyTest"
SUFFIXES = (".tests.yaml", ".tests.yml")
DECISIONS = ("allow", "resize", "deny")
#: The clock when neither the case, the file nor the snapshot says what time it is.
DEFAULT_NOW = "2026-01-01T00:00:00Z"
#: Default tolerance when a number is compared: YAML ``0.35`` vs a computed float.
REL_TOL = 1e-9

# --------------------------------------------------------------------------- schema

_SOURCE: dict = {
    "type": ["string", "object"],
    "minLength": 1,
    "description": "a file path (relative to the test file), an inline mapping, or "
    "{extends: PATH_OR_MAPPING, set: {PATH: VALUE}} to derive one from another",
}
_NOW: dict = {
    "type": ["string", "integer"],
    "description": 'ISO-8601, epoch milliseconds, or an offset from the previous step: "+30s"',
}
_NUMBER_MATCH: dict = {
    "type": ["number", "null", "object"],
    "additionalProperties": False,
    "properties": {
        "approx": {"type": "number"},
        "rel": {"type": "number", "minimum": 0},
        "abs": {"type": "number", "minimum": 0},
        "min": {"type": "number"},
        "max": {"type": "number"},
    },
    "description": "a number (±1e-9 relative), null, {approx, rel, abs} or {min, max}",
}
_VIOLATION_MATCH: dict = {
    "type": ["string", "object"],
    "minLength": 1,
    "additionalProperties": False,
    "properties": {
        "rule": {"type": "string"},
        "type": {"type": "string"},
        "code": {"type": "string"},
        "severity": {"enum": list(SEVERITIES)},
        "symbol": {"type": ["string", "null"]},
        "scope": {"enum": ["order", "position", "account"]},
        "message": {"type": "string", "description": "a substring of the message"},
        "observed": {},
        "limit": {},
        "context": {"type": "object"},
    },
    "description": "a rule id, or a mapping that must match (subset of keys) some violation",
}
_ACTION_MATCH: dict = {
    "type": ["string", "object"],
    "minLength": 1,
    "description": "an action type, or a mapping that must match (subset of keys) some action",
}
_STRINGS: dict = {"type": "array", "items": {"type": "string", "minLength": 1}}

EXPECT_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "decision": {"enum": list(DECISIONS)},
        "wouldDecide": {"enum": list(DECISIONS), "description": "monitor-mode policies"},
        "violations": {"type": "array", "items": _VIOLATION_MATCH},
        "codes": _STRINGS,
        "absent": _STRINGS,
        "actions": {"type": "array", "items": _ACTION_MATCH},
        "absentActions": {"type": "array", "items": _ACTION_MATCH},
        "maxAllowedAmount": _NUMBER_MATCH,
    },
}
_TRADING_STATE: dict = {
    "enum": ["active", "reducing", "halted"],
    "description": "flip the guard's kill switch first (Guard.set_trading_state)",
}
STEP_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "snapshot": _SOURCE,
        "order": {"type": ["string", "object", "null"], "minLength": 1},
        "now": _NOW,
        "tradingState": _TRADING_STATE,
        "expect": EXPECT_SCHEMA,
    },
}
_CASE_BODY: dict = {
    "description": {"type": "string"},
    "skip": {"type": ["boolean", "string"], "description": "true or a reason: reported SKIP"},
    "snapshot": _SOURCE,
    "order": {"type": ["string", "object", "null"], "minLength": 1},
    "now": _NOW,
    "tradingState": _TRADING_STATE,
    "expect": EXPECT_SCHEMA,
    "steps": {"type": "array", "items": STEP_SCHEMA, "minItems": 1},
}
CASE_SCHEMA: dict = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        **_CASE_BODY,
        "table": {
            "type": ["array", "string"],
            "items": {"type": "object"},
            "minItems": 1,
            "description": "rows of variables (or a YAML/JSON file of them), one case per row",
        },
        "template": {"type": "object", "description": "the case body rows are substituted into"},
    },
}
TEMPLATE_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, **_CASE_BODY},
}
POLICYTEST_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://riskguard.dev/schemas/policytest.schema.json",
    "title": "riskguard policy test file (<policy-stem>.tests.yaml)",
    "type": "object",
    "required": ["apiVersion", "kind", "cases"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "policy": {
            "type": "string",
            "minLength": 1,
            "description": "the policy under test, relative to this file; default: the file "
            "named like this one without `.tests`",
        },
        "description": {"type": "string"},
        "now": _NOW,
        "fixtures": {"description": "free-form: a place for YAML anchors (&name) cases reuse"},
        "cases": {"type": "array", "items": CASE_SCHEMA, "minItems": 1},
    },
}

_FILE_V = Draft202012Validator(POLICYTEST_SCHEMA)
_TEMPLATE_V = Draft202012Validator(TEMPLATE_SCHEMA)

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


# --------------------------------------------------------------------------- discovery


def is_test_file(p: Path) -> bool:
    return p.name.endswith(SUFFIXES)


def discover(paths: list[str]) -> tuple[list[Path], list[Problem], list[str]]:
    """Test files for POLICY_OR_DIR arguments: (files, problems, notices).

    A directory is searched recursively for ``*.tests.yaml``; a test file is taken as
    is; a policy file brings the ``<stem>.tests.yaml`` beside it (none: a notice).
    """
    files: list[Path] = []
    problems: list[Problem] = []
    notices: list[str] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            problems.append(Problem("no such file or directory", "$", "not_found", raw))
        elif p.is_dir():
            found = sorted(
                q for s in SUFFIXES for q in p.rglob(f"*{s}") if q.is_file() and is_test_file(q)
            )
            if not found:
                notices.append(f"{raw}: no *.tests.yaml files in this directory")
            files.extend(found)
        elif is_test_file(p):
            files.append(p)
        else:
            stem = p.name.rsplit(".", 1)[0] if "." in p.name else p.name
            cands = [p.with_name(stem + s) for s in SUFFIXES]
            found = [q for q in cands if q.is_file()]
            files.extend(found)
    out: list[Path] = []
    seen: set[Path] = set()
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out, problems, notices


_POLICY_KIND = re.compile(r"^kind:\s*['\"]?Policy['\"]?\s*(#.*)?$", re.M)
POLICY_SUFFIXES = (".yaml", ".yml")


def is_policy_file(p: Path) -> bool:
    """A policy document (``kind: Policy`` at the top level), read as text: cheap, and a
    file that only looks like one is compiled, and judged, by its tests anyway."""
    if not p.is_file() or not p.name.endswith(POLICY_SUFFIXES) or is_test_file(p):
        return False
    try:
        with open(p, encoding="utf-8") as fh:
            head = fh.read(65536)
    except (OSError, UnicodeDecodeError):
        return False
    return _POLICY_KIND.search(head) is not None


def untested_policies(paths: list[str], tested: set[Path]) -> list[str]:
    """Policy files named by ``paths`` (or found in a directory of them, recursively) that
    no tests file covers: ``tested`` holds the resolved policies the tests files named."""
    out: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            cands = sorted(q for s in POLICY_SUFFIXES for q in p.rglob(f"*{s}"))
        elif p.is_file() and not is_test_file(p):
            cands = [p]
        else:
            continue
        for q in cands:
            key = q.resolve()
            if key in seen or key in tested or not is_policy_file(q):
                continue
            seen.add(key)
            out.append(str(q))
    return out


# --------------------------------------------------------------------------- loading


class _Where:
    """Locates problems inside a test file under a JSON-path prefix (duck-types Located)."""

    __slots__ = ("loc", "note", "prefix")

    def __init__(self, loc: Located, prefix: tuple = (), note: str = "") -> None:
        self.loc, self.prefix, self.note = loc, prefix, note

    def at(self, *sub: Any) -> _Where:
        return _Where(self.loc, (*self.prefix, *sub), self.note)

    def problem(self, path: tuple = (), message: str = "", code: str = "invalid") -> Problem:
        return self.loc.problem((*self.prefix, *path), message + self.note, code)

    def mark(self) -> tuple[int | None, int | None]:
        return self.loc.mark(self.prefix)


def _suggest(word: str, options: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _schema_problems(validator: Draft202012Validator, data: Any, where: _Where) -> list[Problem]:
    out: list[Problem] = []
    seen: set = set()
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(x) for x in e.path]):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = list(err.schema.get("properties", {}))
            for k in err.instance:
                if k in err.schema.get("properties", {}) or (*path, k) in seen:
                    continue
                seen.add((*path, k))
                out.append(
                    where.problem(
                        (*path, k),
                        f"unknown field {k!r}{_suggest(k, allowed)} Allowed: {', '.join(allowed)}",
                        "unknown_field",
                    )
                )
            continue
        msg = err.message
        if err.validator == "required":
            m = re.findall(r"'([^']+)' is a required property", msg)
            if m:
                msg = f"missing required field {m[0]!r}"
        elif err.validator == "const" and path == ("apiVersion",):
            msg = f"expected apiVersion {API_VERSION!r}, got {err.instance!r}"
        elif err.validator == "const" and path == ("kind",):
            msg = f"expected kind {KIND!r}, got {err.instance!r}"
        elif err.validator == "enum":
            msg = f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        out.append(where.problem(path, msg, f"schema.{err.validator}"))
    return out


_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _text(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def substitute(node: Any, row: dict, missing: set[str]) -> Any:
    """``"{{x}}"`` alone → the row's value of x (any type); inside text → its text form."""
    if isinstance(node, str):
        m = _VAR.fullmatch(node.strip())
        if m:
            name = m.group(1)
            if name in row:
                return copy.deepcopy(row[name])
            missing.add(name)
            return node

        def repl(mm: re.Match) -> str:
            if mm.group(1) in row:
                return _text(row[mm.group(1)])
            missing.add(mm.group(1))
            return mm.group(0)

        return _VAR.sub(repl, node)
    if isinstance(node, dict):
        return {
            (_subst_key(k, row, missing) if isinstance(k, str) else k): substitute(v, row, missing)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [substitute(v, row, missing) for v in node]
    return node


def _subst_key(key: str, row: dict, missing: set[str]) -> str:
    """Keys are always text: ``"{{x}}"`` as a key becomes the text form of x."""
    v = substitute(key, row, missing)
    return v if isinstance(v, str) else _text(v)


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(\"(?:[^\"\\]|\\.)*\"|'[^']*')\]")


def parse_set_path(path: str) -> tuple:
    """``positions[0].stopLossPrice`` / ``$.markets["BTC/USDT:USDT"].atrPct`` → key tuple."""
    s = path.strip()
    if s.startswith("$"):
        s = s[1:]
    if s and not s.startswith((".", "[")):
        s = "." + s
    out: list = []
    pos = 0
    for m in _PATH_PART.finditer(s):
        if m.start() != pos:
            raise ValueError(f"cannot parse {path!r} at {s[pos:]!r}")
        pos = m.end()
        if m.group(1):
            out.append(m.group(1))
        elif m.group(2):
            out.append(int(m.group(2)))
        else:
            q = m.group(3)
            out.append(q[1:-1].replace('\\"', '"') if q[0] in "\"'" else q)
    if pos != len(s) or not out:
        raise ValueError(f"cannot parse {path!r}" + (f" at {s[pos:]!r}" if pos < len(s) else ""))
    return tuple(out)


def apply_set(doc: Any, path: tuple, value: Any) -> None:
    """Set ``value`` at ``path`` in ``doc`` (mappings gain keys; list indexes must exist)."""
    node = doc
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else "not a list"
                raise ValueError(f"index [{part}] does not exist ({size})")
            if last:
                node[part] = copy.deepcopy(value)
            else:
                node = node[part]
        else:
            if not isinstance(node, dict):
                raise ValueError(f"{part!r}: the parent is not a mapping")
            if last:
                node[part] = copy.deepcopy(value)
            else:
                node = node.setdefault(part, {})


def _relative_now(text: str) -> int | None:
    m = re.fullmatch(r"\+\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", text.strip())
    if not m:
        return None
    scale = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]
    return int(float(m.group(1)) * scale)


class _Loader:
    """Loads test files; caches compiled policies and source files across them."""

    def __init__(self, plugins: tuple[str, ...] = ()) -> None:
        self.plugins = plugins
        self.policies: dict[str, CompiledPolicy] = {}
        self.policy_errors: dict[str, list[Problem]] = {}
        self._raw: dict[str, Any] = {}
        self._snaps: dict[str, Snapshot] = {}
        self._orders: dict[str, Order] = {}

    # ---- policy

    def policy(self, path: Path) -> CompiledPolicy | None:
        key = str(path.resolve())
        if key in self.policies:
            return self.policies[key]
        if key in self.policy_errors:
            return None
        try:
            self.policies[key] = load_policy(path, plugins=self.plugins)
        except RiskguardError as exc:
            self.policy_errors[key] = list(exc.problems)
            return None
        return self.policies[key]

    # ---- snapshot / order sources

    def _raw_file(self, path: Path) -> Any:
        key = str(path.resolve())
        if key not in self._raw:
            self._raw[key] = load_file(path).data
        return copy.deepcopy(self._raw[key])

    def source(
        self, value: Any, base: Path, where: _Where, kind: str, problems: list[Problem]
    ) -> Snapshot | Order | None:
        """A snapshot/order from a path, an inline mapping or {extends, set}."""
        build = build_snapshot if kind == "snapshot" else build_order
        load = load_snapshot if kind == "snapshot" else load_order
        cache: dict[str, Any] = self._snaps if kind == "snapshot" else self._orders
        if isinstance(value, str):
            path = (base / value) if not Path(value).is_absolute() else Path(value)
            if not path.is_file():
                problems.append(where.problem((), f"{kind} file not found: {path}", "not_found"))
                return None
            key = str(path.resolve())
            if key not in cache:
                try:
                    cache[key] = load(path)
                except RiskguardError as exc:
                    problems.append(
                        where.problem((), f"{kind} file {path} is invalid (see below)", "invalid")
                    )
                    problems.extend(exc.problems)
                    return None
            return cache[key]
        if not isinstance(value, dict):
            problems.append(where.problem((), f"expected a {kind} path or mapping", "type"))
            return None
        if "extends" in value or "set" in value:
            extra = sorted(set(value) - {"extends", "set"})
            if extra or "extends" not in value:
                problems.append(
                    where.problem(
                        (extra[0],) if extra else (),
                        f"a derived {kind} has only `extends` (the base: a path or mapping) and "
                        "`set` (PATH: VALUE changes)"
                        + (f"; unexpected {', '.join(map(repr, extra))}" if extra else ""),
                        "shape",
                    )
                )
                return None
            return self._derived(value, base, where, kind, problems)
        try:
            return build(value, where)  # type: ignore[arg-type]
        except RiskguardError as exc:
            problems.extend(exc.problems)
            return None

    def _derived(
        self, value: dict, base: Path, where: _Where, kind: str, problems: list[Problem]
    ) -> Snapshot | Order | None:
        build = build_snapshot if kind == "snapshot" else build_order
        ext = value["extends"]
        if isinstance(ext, str):
            path = (base / ext) if not Path(ext).is_absolute() else Path(ext)
            if not path.is_file():
                problems.append(
                    where.problem(("extends",), f"{kind} file not found: {path}", "not_found")
                )
                return None
            try:
                doc = self._raw_file(path)
            except RiskguardError as exc:
                problems.extend(exc.problems)
                return None
        elif isinstance(ext, dict):
            doc = copy.deepcopy(ext)
        else:
            problems.append(
                where.problem(("extends",), f"expected a {kind} path or mapping", "type")
            )
            return None
        sets = value.get("set") or {}
        if not isinstance(sets, dict):
            problems.append(where.problem(("set",), "expected a mapping of PATH: VALUE", "type"))
            return None
        ok = True
        for k, v in sets.items():
            try:
                apply_set(doc, parse_set_path(str(k)), v)
            except ValueError as exc:
                problems.append(where.problem(("set", k), f"cannot set {k!r}: {exc}", "set_path"))
                ok = False
        if not ok:
            return None
        try:
            return build(doc, _Where(where.loc, where.prefix, f" (in the {kind} derived here)"))  # type: ignore[arg-type]
        except RiskguardError as exc:
            problems.extend(exc.problems)
            return None

    # ---- test files

    def load(self, path: Path) -> TestFile:
        """Parse, validate and materialise one test file; RiskguardError lists every problem."""
        loc = load_file(path)
        root = _Where(loc)
        data = loc.data
        problems = _schema_problems(_FILE_V, data, root)
        if not isinstance(data, dict):
            raise RiskguardError(problems or [root.problem((), "expected a mapping", "type")])
        base = path.parent
        pol_ref = data.get("policy")
        if isinstance(pol_ref, str):
            pol_path = (base / pol_ref) if not Path(pol_ref).is_absolute() else Path(pol_ref)
        else:
            name = path.name
            stem = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
            cands = [base / f"{stem}.yaml", base / f"{stem}.yml"]
            pol_path = next((c for c in cands if c.is_file()), cands[0])
        policy = None
        if not pol_path.is_file():
            problems.append(
                root.problem(
                    ("policy",) if isinstance(pol_ref, str) else (),
                    f"policy not found: {pol_path}",
                    "not_found",
                )
            )
        else:
            policy = self.policy(pol_path)
            if policy is None:
                problems.append(
                    root.problem(
                        ("policy",) if isinstance(pol_ref, str) else (),
                        f"the policy under test does not load: {pol_path} (its errors follow)",
                        "policy",
                    )
                )
                problems.extend(self.policy_errors[str(pol_path.resolve())])
        if problems:
            raise RiskguardError(problems)
        assert policy is not None  # each way of leaving it None added a problem

        file_now = data.get("now")
        cases: list[Case] = []
        names: dict[str, int | None] = {}
        raw_cases = data.get("cases") or []
        for i, raw in enumerate(raw_cases):
            where = root.at("cases", i)
            for case in self._expand(raw, where, base, path, pol_path, policy, file_now, problems):
                if case.name in names:
                    problems.append(
                        where.problem(
                            ("name",),
                            f"duplicate case name {case.name!r} (first at line {names[case.name]}); "
                            "each case is reported by its name",
                            "duplicate_name",
                        )
                    )
                    continue
                names[case.name] = case.line
                cases.append(case)
        if problems:
            raise RiskguardError(problems)
        return TestFile(str(path), str(pol_path), tuple(cases))

    def _expand(
        self,
        raw: dict,
        where: _Where,
        base: Path,
        path: Path,
        pol_path: Path,
        policy: CompiledPolicy,
        file_now: Any,
        problems: list[Problem],
    ) -> list[Case]:
        name = raw["name"]
        line, col = where.mark()
        if "table" not in raw:
            if "template" in raw:
                problems.append(
                    where.problem(("template",), "`template` needs a `table` of rows", "shape")
                )
                return []
            case = self._case(raw, name, where, base, path, pol_path, policy, file_now, problems)
            return [case] if case is not None else []
        stray = [k for k in ("snapshot", "order", "now", "expect", "steps") if k in raw]
        if stray:
            problems.append(
                where.problem(
                    (stray[0],),
                    f"a table case puts {', '.join(stray)} under `template:` (rows are "
                    "substituted into the template)",
                    "shape",
                )
            )
            return []
        if "template" not in raw:
            problems.append(
                where.problem(
                    (), "a table case needs a `template` to substitute rows into", "shape"
                )
            )
            return []
        rows = raw["table"]
        rows_where = where.at("table")
        if isinstance(rows, str):
            tpath = (base / rows) if not Path(rows).is_absolute() else Path(rows)
            if not tpath.is_file():
                problems.append(
                    rows_where.problem((), f"table file not found: {tpath}", "not_found")
                )
                return []
            tloc = load_file(tpath)
            rows = tloc.data
            rows_where = _Where(tloc)
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not rows:
                problems.append(
                    rows_where.problem((), "expected a non-empty list of row mappings", "type")
                )
                return []
        out: list[Case] = []
        for j, row in enumerate(rows):
            label = row.get("name")
            label = _text(label) if label is not None else f"#{j + 1}"
            note = f" (table row {j + 1}: {label})"
            twhere = _Where(where.loc, (*where.prefix, "template"), note)
            missing: set[str] = set()
            body = substitute(raw["template"], row, missing)
            case_name = substitute(name, row, missing)
            if missing:
                problems.append(
                    twhere.problem(
                        (),
                        f"unknown variable(s) {', '.join('{{' + m + '}}' for m in sorted(missing))}; "
                        f"the row has: {', '.join(map(str, row)) or 'nothing'}",
                        "table_var",
                    )
                )
                continue
            errs = _schema_problems(_TEMPLATE_V, body, twhere)
            if errs:
                problems.extend(errs)
                continue
            case = self._case(
                body,
                f"{case_name}[{label}]",
                twhere,
                base,
                path,
                pol_path,
                policy,
                file_now,
                problems,
                mark=(line, col),
            )
            if case is not None:
                out.append(Case(**{**_fields(case), "row": row}))
        return out

    def _case(
        self,
        raw: dict,
        name: str,
        where: _Where,
        base: Path,
        path: Path,
        pol_path: Path,
        policy: CompiledPolicy,
        file_now: Any,
        problems: list[Problem],
        mark: tuple | None = None,
    ) -> Case | None:
        line, col = mark if mark is not None else where.mark()
        n0 = len(problems)
        skip = raw.get("skip")
        skip_reason = None
        if skip is True:
            skip_reason = "skipped"
        elif isinstance(skip, str):
            skip_reason = skip
        stateful = "steps" in raw
        if stateful:
            if "expect" in raw:
                problems.append(
                    where.problem(
                        ("expect",),
                        "with `steps`, each step has its own `expect`; the case-level snapshot, "
                        "order and now are defaults for the steps",
                        "shape",
                    )
                )
                return None
            raw_steps = [(where.at("steps", k), s) for k, s in enumerate(raw["steps"])]
            if not any("expect" in s for _w, s in raw_steps):
                problems.append(where.problem(("steps",), "no step has an `expect`", "shape"))
                return None
        else:
            for key in ("snapshot", "expect"):
                if key not in raw:
                    problems.append(
                        where.problem((), f"missing required field {key!r}", "schema.required")
                    )
            if len(problems) > n0:
                return None
            raw_steps = [(where, raw)]

        steps: list[Step] = []
        prev_now: int | None = None
        default_snap = raw.get("snapshot")
        default_order = raw.get("order")
        default_now = raw.get("now", file_now)
        for k, (sw, s) in enumerate(raw_steps):
            is_self = s is raw
            snap_src = s.get("snapshot", default_snap)
            snap_where = sw.at("snapshot") if "snapshot" in s else where.at("snapshot")
            if snap_src is None:
                problems.append(
                    sw.problem((), "no snapshot: give the step or the case one", "shape")
                )
                continue
            snap: Any = self.source(snap_src, base, snap_where, "snapshot", problems)
            order: Any = None
            order_src = s.get("order", default_order)
            if order_src is not None:
                ow = sw.at("order") if "order" in s else where.at("order")
                order = self.source(order_src, base, ow, "order", problems)
                if order is None:
                    continue
            if snap is None:
                continue
            # The clock: the step's own; else the case's (first step); else the previous
            # step's; else the snapshot's timestamp; else DEFAULT_NOW.
            if "now" in s and not is_self:
                now_src, nw = s["now"], sw.at("now")
            elif k == 0:
                now_src = default_now
                nw = where.at("now") if "now" in raw else where
            else:
                now_src, nw = None, sw
            now_ms = self._now(now_src, prev_now, snap, nw, problems)
            if now_ms is None:
                continue
            prev_now = now_ms
            expect = s.get("expect")
            if expect is not None:
                ew = sw.at("expect")
                self._check_expect(expect, ew, policy, problems)
            if "tradingState" in s and not is_self:
                trading = s["tradingState"]
            else:
                trading = raw.get("tradingState") if k == 0 else None
            steps.append(
                Step(
                    snap,
                    order,
                    now_ms,
                    expect,
                    s.get("name") if not is_self else None,
                    trading,
                )
            )
        if len(problems) > n0:
            return None
        return Case(
            name=name,
            file=str(path),
            line=line,
            column=col,
            policy=str(pol_path.resolve()),
            steps=tuple(steps),
            stateful=stateful,
            skip=skip_reason,
        )

    def _now(
        self, src: Any, prev: int | None, snap: Snapshot, where: _Where, problems: list[Problem]
    ) -> int | None:
        if src is None:
            if prev is not None:
                return prev
            if snap.timestamp is not None:
                return snap.timestamp
            return _parse_ts(DEFAULT_NOW)
        if isinstance(src, str):
            delta = _relative_now(src)
            if delta is not None:
                start = prev if prev is not None else snap.timestamp
                if start is None:
                    start = cast(int, _parse_ts(DEFAULT_NOW))
                return start + delta
        try:
            return _parse_ts(src)
        except (ValueError, OverflowError, TypeError) as exc:
            problems.append(
                where.problem(
                    (),
                    f"expected ISO-8601 time, epoch milliseconds or an offset like '+30s': {exc}",
                    "format",
                )
            )
            return None

    def _check_expect(
        self, expect: dict, where: _Where, policy: CompiledPolicy, problems: list[Problem]
    ) -> None:
        """Every rule id and code an expectation names must exist, or the check is vacuous."""
        rule_ids = {s.id for s in policy.specs}
        codes = set(ENGINE_CODES)
        for rt in policy.registry.rule_types.values():
            codes |= set(rt.codes)
        codes.add("RULE_ERROR")

        def rule_ok(rid: str, w: tuple) -> None:
            if rid not in rule_ids and rid != ENGINE:
                problems.append(
                    where.problem(
                        w,
                        f"no rule {rid!r} in the policy{_suggest(rid, rule_ids)} "
                        f"Rules: {', '.join(sorted(rule_ids))}",
                        "unknown_rule",
                    )
                )

        def code_ok(code: str, w: tuple) -> None:
            if code not in codes:
                problems.append(
                    where.problem(
                        w, f"unknown reason code {code!r}{_suggest(code, codes)}", "unknown_code"
                    )
                )

        for i, v in enumerate(expect.get("violations") or []):
            if isinstance(v, str):
                rule_ok(v, ("violations", i))
            else:
                if isinstance(v.get("rule"), str):
                    rule_ok(v["rule"], ("violations", i, "rule"))
                if isinstance(v.get("code"), str):
                    code_ok(v["code"], ("violations", i, "code"))
        for i, c in enumerate(expect.get("codes") or []):
            code_ok(c, ("codes", i))
        for i, a in enumerate(expect.get("absent") or []):
            if a not in rule_ids and a not in codes and a != ENGINE:
                problems.append(
                    where.problem(
                        ("absent", i),
                        f"{a!r} is neither a rule id of the policy nor a known reason code"
                        f"{_suggest(a, rule_ids | codes)}; `absent` would always hold",
                        "unknown_rule",
                    )
                )
        mx = expect.get("maxAllowedAmount")
        if isinstance(mx, dict) and not ("approx" in mx or "min" in mx or "max" in mx):
            problems.append(
                where.problem(
                    ("maxAllowedAmount",), "expected {approx: X} or {min: A, max: B}", "shape"
                )
            )


def _fields(case: Case) -> dict:
    return {f: getattr(case, f) for f in Case.__dataclass_fields__}


def load_test_file(path: str | Path, *, plugins: tuple[str, ...] = ()) -> TestFile:
    """Load and validate one test file (raises RiskguardError listing every problem)."""
    return _Loader(tuple(plugins)).load(Path(path))


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


# --------------------------------------------------------------------------- running


def run_case(case: Case, policy: CompiledPolicy) -> CaseResult:
    """Run one case through the engine. Steps share one Guard's state (its memory)."""
    if case.skip is not None:
        return CaseResult(case, "skip")
    t0 = time.perf_counter()
    guard = Guard(policy)  # one long-lived guard per case: its state spans the steps
    decisions: list[Decision] = []
    outcomes: list[dict] = []
    mismatches: list[Mismatch] = []
    try:
        for k, step in enumerate(case.steps):
            if step.trading_state is not None:
                _set_trading_state(guard, step.trading_state)
            trace: list[dict] = []
            d = evaluate(
                guard.policy,
                step.snapshot,
                step.order,
                now_ms=step.now_ms,
                state=guard.state,
                trace=trace,
            )
            decisions.append(d)
            outcomes.append(rule_outcomes(policy, d, trace))
            if step.expect is not None:
                mismatches += check_expectations(
                    step.expect, d, step=k + 1 if case.stateful else None
                )
    except Exception as exc:  # noqa: BLE001 - a crash is reported as this case's ERROR, the suite goes on
        return CaseResult(
            case,
            "error",
            tuple(mismatches),
            tuple(decisions),
            tuple(outcomes),
            f"{type(exc).__name__}: {exc}",
            (time.perf_counter() - t0) * 1000,
        )
    status = "fail" if mismatches else "pass"
    return CaseResult(
        case,
        status,
        tuple(mismatches),
        tuple(decisions),
        tuple(outcomes),
        None,
        (time.perf_counter() - t0) * 1000,
    )


def _set_trading_state(guard: Guard, state: str) -> None:
    """The kill switch through the real API, without its operator-facing log line."""
    logger = logging.getLogger("riskguard.guard")
    was = logger.disabled
    logger.disabled = True
    try:
        guard.set_trading_state(state, reason="policy test")
    finally:
        logger.disabled = was


def run_tests(
    paths: list[str],
    *,
    plugins: tuple[str, ...] = (),
    run: str | None = None,
) -> SuiteResult:
    """Discover, load and run test files; input problems are collected, not raised."""
    suite = SuiteResult()
    pattern = None
    if run is not None:
        try:
            pattern = re.compile(run)
        except re.error as exc:
            suite.problems.append(
                Problem(f"--run: not a valid regular expression: {exc}", code="usage")
            )
            return suite
    files, problems, notices = discover(paths)
    suite.problems += problems
    suite.notices += notices
    loader = _Loader(tuple(plugins))
    tested: set[Path] = set()
    for f in files:
        suite.files.append(str(f))
        # A tests file that fails to load still names its policy: that policy is not
        # "untested", its tests are broken (reported as the input error they are).
        tested.add(_default_policy_of(f).resolve())
        try:
            tf = loader.load(f)
        except RiskguardError as exc:
            suite.problems += exc.problems
            continue
        tested.add(Path(tf.policy).resolve())
        policy = loader.policies[str(Path(tf.policy).resolve())]
        suite.policies[str(Path(tf.policy).resolve())] = policy
        for case in tf.cases:
            if pattern is not None and not pattern.search(case.name):
                continue
            suite.results.append(run_case(case, policy))
    suite.untested = untested_policies(paths, tested)
    return suite


def _default_policy_of(test_file: Path) -> Path:
    """``x.tests.yaml`` -> ``x.yaml`` beside it (what a tests file without ``policy:``
    tests; the loader reads the real ``policy:`` field)."""
    name = test_file.name
    for s in SUFFIXES:
        if name.endswith(s):
            return test_file.with_name(name[: -len(s)] + ".yaml")
    return test_file


# --------------------------------------------------------------------------- coverage


def coverage(suite: SuiteResult) -> list[dict]:
    """Per policy: for each rule, the cases that violated it and the cases it passed in.

    A rule *passed* in a case when it recorded its reasoning (``note``) and raised no
    violation; a rule that found nothing to judge (no notes, no violations) is neither.
    """
    out = []
    for key, policy in suite.policies.items():
        rows = []
        for spec in policy.specs:
            violated: list[str] = []
            passed: list[str] = []
            for r in suite.results:
                if r.case.policy != key:
                    continue
                for oc in r.outcomes:
                    o = oc.get(spec.id)
                    if o == "violated" and r.case.name not in violated:
                        violated.append(r.case.name)
                    elif o == "passed" and r.case.name not in passed:
                        passed.append(r.case.name)
            rows.append(
                {"id": spec.id, "type": spec.type, "violatedBy": violated, "passedBy": passed}
            )
        out.append(
            {
                "policy": key,
                "name": policy.name,
                "rules": rows,
                "neverViolated": [r["id"] for r in rows if not r["violatedBy"]],
                "neverPassed": [r["id"] for r in rows if not r["passedBy"]],
                "covered": sum(1 for r in rows if r["violatedBy"]),
                "total": len(rows),
            }
        )
    return out


# --------------------------------------------------------------------------- output helpers


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


def json_report(suite: SuiteResult, *, with_coverage: bool = False) -> dict:
    doc: dict = {
        "summary": suite.summary(),
        "results": [r.to_dict() for r in suite.results],
        "errors": [p.to_dict() for p in suite.problems],
    }
    if suite.notices:
        doc["notices"] = list(suite.notices)
    if suite.untested:
        doc["untested"] = list(suite.untested)
    if with_coverage:
        doc["coverage"] = coverage(suite)
    return doc


__all__ = [
    "POLICYTEST_SCHEMA",
    "Case",
    "CaseResult",
    "Mismatch",
    "Step",
    "SuiteResult",
    "TestFile",
    "check_expectations",
    "coverage",
    "discover",
    "json_path",
    "json_report",
    "load_test_file",
    "matches",
    "run_case",
    "run_tests",
    "substitute",
]
