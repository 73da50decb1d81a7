"""Finding and loading policy test files: discovery beside the policies, schema and
reference checks with file:line:column, templates and tables expanded into cases.

Every rule id and reason code a case names is checked against the policy and the registered
rule types at load time: a typo in ``absent:`` would otherwise pass forever (the
silent-never-fires hazard Cedar's validator exists for).
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any, cast

from jsonschema import Draft202012Validator

from riskguard.engine.evaluate import ENGINE, ENGINE_CODES
from riskguard.engine.policy import API_VERSION, CompiledPolicy, load_policy
from riskguard.errors import Problem, RiskguardError
from riskguard.model.snapshot import (
    Order,
    Snapshot,
    build_order,
    build_snapshot,
    load_order,
    load_snapshot,
)
from riskguard.model.snapshot import parse_timestamp as _parse_ts
from riskguard.model.yamlio import Located, load_file
from riskguard.policytools.testing.model import Case, Step, TestFile
from riskguard.policytools.testing.schema import (
    DEFAULT_NOW,
    FILE_VALIDATOR,
    KIND,
    SUFFIXES,
    TEMPLATE_VALIDATOR,
)

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


class Loader:
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
        problems = _schema_problems(FILE_VALIDATOR, data, root)
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
            errs = _schema_problems(TEMPLATE_VALIDATOR, body, twhere)
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
    return Loader(tuple(plugins)).load(Path(path))
