"""JUnit XML and SARIF 2.1.0 for ``riskguard test`` and ``riskguard audit`` (``--format``).

CI dashboards read JUnit XML (GitLab, Jenkins, GitHub test reporters, Azure DevOps) and
code review reads SARIF (GitHub code scanning, VS Code's SARIF viewer), as they do for
``conftest`` / ``opa test``. Both are written from the results the text and JSON forms
show; nothing is evaluated twice.

- **JUnit** (the Ant/Surefire shape every reader accepts): ``<testsuites>`` of
  ``<testsuite>`` of ``<testcase>``, each with at most one ``<failure>``, ``<error>`` or
  ``<skipped>``. For ``test``: one suite per tests file, one case per test case. For
  ``audit``: one suite for the policy, one case per rule of the policy: it fails when the
  rule was breached at or above ``--fail-on`` (the breach episodes are the failure's
  text); bad records are one more case, in error.
- **SARIF 2.1.0** (OASIS standard, https://docs.oasis-open.org/sarif/sarif/v2.1.0/):
  one run whose driver lists the rules. For ``test``: a result per failing, erroring or
  skipped case, located at the case in its tests file. For ``audit``: a result per breach
  episode (an account in breach of one rule, on one symbol, over consecutive snapshots),
  located at the snapshot where it started (``file:line`` for JSON Lines), with the rule's
  place in the policy file as a related location; ``level`` follows the severity
  (critical/error → error, warning → warning, info → note).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SEVERITIES = ("info", "warning", "error", "critical")
_SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_LEVEL = {"critical": "error", "error": "error", "warning": "warning", "info": "note"}
# XML 1.0 forbids most control characters even escaped: drop them from any text.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_REF = re.compile(r"^(?P<path>.+):(?P<line>[1-9][0-9]*)$")


def _version() -> str:
    from riskguard import __version__

    return __version__


def _x(text: Any) -> str:
    return _NOT_XML.sub("", "" if text is None else str(text))


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _uri(path: str) -> str:
    """Relative to the working directory when inside it (code review maps those to the
    repository), else an absolute ``file:`` URI."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return p.as_uri()
    return quote(p.as_posix(), safe="/@-._~")


def _location(ref: str | None, message: str | None = None) -> dict | None:
    """A SARIF location for ``file`` or ``file:line`` (None for stdin / unknown)."""
    if not ref:
        return None
    m = _REF.match(ref)
    path, line = (m["path"], int(m["line"])) if m else (ref, None)
    if path in ("-", "<stdin>", "stdin"):
        return None
    phys: dict = {"artifactLocation": {"uri": _uri(path)}}
    if line is not None:
        phys["region"] = {"startLine": line}
    loc: dict = {"physicalLocation": phys}
    if message:
        loc["message"] = {"text": message}
    return loc


def _sarif_log(driver: dict, results: list[dict], invocation: dict) -> dict:
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [invocation],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


# --------------------------------------------------------------------------- riskguard test


def policytest_junit(suite: Any) -> str:
    """JUnit XML of a :class:`~riskguard.policytest.SuiteResult`."""
    s = suite.summary()
    root = ET.Element(
        "testsuites",
        name="riskguard test",
        tests=str(s["total"] + len(suite.problems) + len(suite.untested)),
        failures=str(s["failed"]),
        errors=str(s["errors"] + len(suite.problems)),
        skipped=str(s["skipped"] + len(suite.untested)),
        time=f"{sum(r.duration_ms for r in suite.results) / 1000:.3f}",
    )
    by_file: dict[str, list] = {}
    for r in suite.results:
        by_file.setdefault(r.case.file, []).append(r)
    for file, results in by_file.items():
        policy = suite.policies.get(results[0].case.policy)
        pname = policy.name if policy is not None else Path(results[0].case.policy).stem
        ts = ET.SubElement(
            root,
            "testsuite",
            name=_x(file),
            tests=str(len(results)),
            failures=str(sum(r.status == "fail" for r in results)),
            errors=str(sum(r.status == "error" for r in results)),
            skipped=str(sum(r.status == "skip" for r in results)),
            time=f"{sum(r.duration_ms for r in results) / 1000:.3f}",
        )
        for r in results:
            c = r.case
            attrs = {
                "name": _x(c.name),
                "classname": _x(f"riskguard.{pname}"),
                "file": _x(c.file),
                "time": f"{r.duration_ms / 1000:.3f}",
            }
            if c.line is not None:
                attrs["line"] = str(c.line)
            tc = ET.SubElement(ts, "testcase", attrs)
            if r.status == "fail":
                first = r.mismatches[0] if r.mismatches else None
                el = ET.SubElement(
                    tc,
                    "failure",
                    message=_x(f"{first.check}: {first.message}" if first else "failed"),
                    type="PolicyTestFailure",
                )
                el.text = _x(_mismatch_text(r))
            elif r.status == "error":
                el = ET.SubElement(tc, "error", message=_x(r.error), type="PolicyTestError")
                el.text = _x(f"{c.where}: {r.error}")
            elif r.status == "skip":
                ET.SubElement(tc, "skipped", message=_x(c.skip or "skipped"))
    if suite.untested:
        ts = ET.SubElement(
            root,
            "testsuite",
            name="riskguard test: policies without tests",
            tests=str(len(suite.untested)),
            failures="0",
            errors="0",
            skipped=str(len(suite.untested)),
            time="0.000",
        )
        for path in suite.untested:
            tc = ET.SubElement(
                ts, "testcase", name=_x(path), classname="riskguard.untested", file=_x(path)
            )
            ET.SubElement(tc, "skipped", message=_x(f"no tests: expected {_tests_name(path)}"))
    if suite.problems or suite.notices:
        ts = ET.SubElement(
            root,
            "testsuite",
            name="riskguard test: inputs",
            tests=str(len(suite.problems)),
            failures="0",
            errors=str(len(suite.problems)),
            skipped="0",
            time="0.000",
        )
        for p in suite.problems:
            where = p.where() if p.file else "input"
            tc = ET.SubElement(ts, "testcase", name=_x(where), classname="riskguard.input")
            el = ET.SubElement(tc, "error", message=_x(p.message), type="InputError")
            el.text = _x(f"{where}: {p.message} (at {p.path})")
        if suite.notices:
            out = ET.SubElement(ts, "system-out")
            out.text = _x("\n".join(suite.notices))
    return _xml(root)


def _tests_name(policy_path: str) -> str:
    p = Path(policy_path)
    return str(p.with_name(p.name.rsplit(".", 1)[0] + ".tests.yaml"))


def _mismatch_text(r: Any) -> str:
    lines = [r.case.where]
    for m in r.mismatches:
        step = f"step {m.step}: " if m.step is not None else ""
        lines.append(f"{step}{m.check}: {m.message}")
        lines.append(f"  - expected: {m.expected!r}")
        lines.append(f"  + actual:   {m.actual!r}")
    return "\n".join(lines)


_TEST_RULES = {
    "fail": ("policy-test-failed", "A policy test case's expectation did not hold", "error"),
    "error": ("policy-test-error", "A policy test case could not run", "error"),
    "skip": (
        "policy-test-skipped",
        "A policy test case, or a policy's tests, were skipped",
        "note",
    ),
}


def policytest_sarif(suite: Any, *, exit_code: int) -> dict:
    """SARIF 2.1.0 of a :class:`~riskguard.policytest.SuiteResult`."""
    rules = [
        {
            "id": rid,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": level},
            "help": {"text": "format of the test files: docs/policy-testing.md"},
        }
        for rid, text, level in _TEST_RULES.values()
    ]
    index = {status: i for i, status in enumerate(_TEST_RULES)}
    results: list[dict] = []
    for r in suite.results:
        if r.status == "pass":
            continue
        c = r.case
        rid = _TEST_RULES[r.status][0]
        if r.status == "fail":
            text = f"{c.name}: " + "; ".join(f"{m.check}: {m.message}" for m in r.mismatches)
        elif r.status == "error":
            text = f"{c.name}: {r.error}"
        else:
            text = f"{c.name}: skipped ({c.skip or 'skipped'})"
        res: dict = {
            "ruleId": rid,
            "ruleIndex": index[r.status],
            "level": _TEST_RULES[r.status][2],
            "kind": "notApplicable" if r.status == "skip" else "fail",
            "message": {"text": text},
        }
        where = f"{c.file}:{c.line}" if c.line is not None else c.file
        loc = _location(where)
        if loc is not None:
            if c.column is not None and "region" in loc["physicalLocation"]:
                loc["physicalLocation"]["region"]["startColumn"] = c.column
            res["locations"] = [loc]
        results.append(res)
    for path in suite.untested:
        res = {
            "ruleId": _TEST_RULES["skip"][0],
            "ruleIndex": index["skip"],
            "level": "note",
            "kind": "notApplicable",
            "message": {"text": f"policy without tests: expected {_tests_name(path)}"},
        }
        loc = _location(path)
        if loc is not None:
            res["locations"] = [loc]
        results.append(res)
    notifications = []
    for p in suite.problems:
        n: dict = {"level": "error", "message": {"text": f"{p.message} (at {p.path})"}}
        loc = _location(f"{p.file}:{p.line}" if p.file and p.line else p.file)
        if loc is not None:
            n["locations"] = [loc]
        notifications.append(n)
    for text in suite.notices:
        notifications.append({"level": "note", "message": {"text": text}})
    invocation: dict = {"executionSuccessful": not suite.problems, "exitCode": exit_code}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    driver = {
        "name": "riskguard",
        "fullName": "riskguard test (policy unit tests)",
        "version": _version(),
        "rules": rules,
    }
    return _sarif_log(driver, results, invocation)


# --------------------------------------------------------------------------- riskguard audit


def _episodes(summary: Any) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for account in sorted(summary.accounts):
        eps, _dropped = summary.episodes(account)
        out.extend((account, e.to_dict()) for e in eps)
    return out


def _episode_text(account: str, e: dict) -> str:
    sym = f" {e['symbol']}" if e.get("symbol") else ""
    span = e["start"] or "?"
    if e.get("ongoing"):
        span += " → ongoing"
    elif e.get("end"):
        span += f" → {e['end']}"
    n = e["snapshots"]
    facts = [f"{n} snapshot{'s' if n != 1 else ''}"]
    lo, hi = e.get("observedMin"), e.get("observedMax")
    if lo is not None:
        facts.append(f"observed {_g(lo)}" + (f"…{_g(hi)}" if hi is not None and hi != lo else ""))
    if e.get("limit") is not None:
        facts.append(f"limit {_g(e['limit'])}")
    if e.get("startRef"):
        facts.append(f"first at {e['startRef']}")
    return (
        f"{account}{sym}: {e['rule']} {e['severity']} {', '.join(e['codes'])} from {span} "
        f"({'; '.join(facts)})"
    )


def _g(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def audit_junit(summary: Any, policy: Any, *, fail_on: str) -> str:
    """JUnit XML of an audit: one test case per policy rule, failed by breaches at or
    above ``fail_on``; bad records are one case in error."""
    floor = _SEV_RANK[fail_on]
    eps = _episodes(summary)
    rules = summary.rules()
    cases = []
    failures = 0
    for spec in policy.specs:
        mine = [(a, e) for a, e in eps if e["rule"] == spec.id]
        failing = [
            (a, e) for a, e in mine if e["severity"] and _SEV_RANK.get(e["severity"], -1) >= floor
        ]
        failures += bool(failing)
        cases.append((spec, mine, failing, rules.get(spec.id, {})))
    bad = summary.bad_records
    root = ET.Element(
        "testsuites",
        name="riskguard audit",
        tests=str(len(cases) + 1),
        failures=str(failures),
        errors=str(int(bad > 0)),
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=_x(f"policy {policy.name} {policy.version}"),
        tests=str(len(cases) + 1),
        failures=str(failures),
        errors=str(int(bad > 0)),
        skipped="0",
    )
    props = ET.SubElement(ts, "properties")
    for k, v in (
        ("policy.digest", policy.digest),
        ("snapshots", summary.snapshots),
        ("failOn", fail_on),
    ):
        ET.SubElement(props, "property", name=k, value=_x(v))
    for spec, mine, failing, stats in cases:
        attrs = {"name": _x(spec.id), "classname": _x(f"riskguard.audit.{policy.name}")}
        if spec.file:
            attrs["file"] = _x(spec.file)
        if spec.line:
            attrs["line"] = str(spec.line)
        tc = ET.SubElement(ts, "testcase", attrs)
        if failing:
            n = stats.get("violations", 0)
            accounts = len({a for a, _e in failing})
            el = ET.SubElement(
                tc,
                "failure",
                message=_x(
                    f"{spec.id} ({spec.type}): {n} violation{'s' if n != 1 else ''}, "
                    f"{len(failing)} breach episode{'s' if len(failing) != 1 else ''} at or "
                    f"above {fail_on} in {accounts} account{'s' if accounts != 1 else ''}"
                ),
                type=_x(max((e["severity"] for _a, e in failing), key=_SEV_RANK.__getitem__)),
            )
            el.text = _x("\n".join(_episode_text(a, e) for a, e in failing))
        elif mine:  # breached below --fail-on: passes, and says so
            out = ET.SubElement(tc, "system-out")
            out.text = _x("\n".join(_episode_text(a, e) for a, e in mine))
    tc = ET.SubElement(ts, "testcase", name="bad records", classname="riskguard.audit.input")
    if bad:
        el = ET.SubElement(
            tc,
            "error",
            message=f"{bad} record{'s' if bad != 1 else ''} could not be evaluated",
            type="BadRecord",
        )
        el.text = _x("\n".join(f"{b.get('ref')}: {b.get('message')}" for b in summary.bad_examples))
    return _xml(root)


def audit_sarif(summary: Any, policy: Any, *, fail_on: str, exit_code: int) -> dict:
    """SARIF 2.1.0 of an audit: one result per breach episode."""
    rules: list[dict] = []
    index: dict[str, int] = {}
    for spec in policy.specs:
        index[spec.id] = len(rules)
        rd: dict = {
            "id": spec.id,
            "name": spec.type,
            "shortDescription": {"text": spec.description or f"{spec.type} rule {spec.id}"},
            "defaultConfiguration": {"level": _LEVEL.get(spec.severity, "warning")},
            "help": {"text": f"rule type {spec.type}: docs/rules.md"},
            "properties": {"severity": spec.severity, "type": spec.type},
        }
        rules.append(rd)
    floor = _SEV_RANK[fail_on]
    results = []
    for account, e in _episodes(summary):
        sev = e["severity"] or "info"
        res: dict = {
            "ruleId": e["rule"],
            "level": _LEVEL.get(sev, "warning"),
            "kind": "fail",
            "message": {"text": _episode_text(account, e)},
            "properties": {
                "account": account,
                "symbol": e.get("symbol"),
                "severity": sev,
                "codes": e["codes"],
                "start": e["start"],
                "end": e["end"],
                "ongoing": e["ongoing"],
                "snapshots": e["snapshots"],
                "observedMin": e.get("observedMin"),
                "observedMax": e.get("observedMax"),
                "limit": e.get("limit"),
                "failsAudit": _SEV_RANK.get(sev, -1) >= floor,
            },
            "partialFingerprints": {
                "riskguardEpisode/v1": f"{account}|{e['rule']}|{e.get('symbol') or ''}|{e['start']}"
            },
        }
        if e["rule"] in index:
            res["ruleIndex"] = index[e["rule"]]
            spec = policy.specs[index[e["rule"]]]
            if spec.file:
                rel = _location(
                    f"{spec.file}:{spec.line}" if spec.line else spec.file,
                    f"rule {spec.id} in policy {policy.name}",
                )
                if rel is not None:
                    res["relatedLocations"] = [{"id": 0, **rel}]
        loc = _location(e.get("startRef"))
        if loc is not None:
            res["locations"] = [loc]
        results.append(res)
    notifications = []
    for b in summary.bad_examples:
        ref, message = (b.get("ref"), b.get("message")) if isinstance(b, dict) else (b, None)
        n: dict = {"level": "error", "message": {"text": f"bad record: {message or ref}"}}
        loc = _location(ref)
        if loc is not None:
            n["locations"] = [loc]
        notifications.append(n)
    invocation: dict = {
        "executionSuccessful": exit_code in (0, 1),
        "exitCode": exit_code,
        "properties": {
            "snapshots": summary.snapshots,
            "badRecords": summary.bad_records,
            "failOn": fail_on,
            "policy": policy.ref,
        },
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    driver = {
        "name": "riskguard",
        "fullName": "riskguard audit (risk policy over account snapshots)",
        "version": _version(),
        "rules": rules,
    }
    return _sarif_log(driver, results, invocation)


__all__ = ["audit_junit", "audit_sarif", "policytest_junit", "policytest_sarif"]
