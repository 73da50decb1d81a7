"""Running cases through the real engine, rule coverage, and the JSON report.

A case's ``steps`` share one long-lived ``Guard``, so stateful rules (order rate,
duplicates, drawdown memory) are testable with a deterministic clock.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from riskguard.engine.decision import Decision
from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import CompiledPolicy
from riskguard.errors import Problem, RiskguardError
from riskguard.faces.guard import Guard
from riskguard.policytools.explain import rule_outcomes
from riskguard.policytools.testing.check import check_expectations
from riskguard.policytools.testing.load import Loader, discover, untested_policies
from riskguard.policytools.testing.model import (
    Case,
    CaseResult,
    Mismatch,
    SuiteResult,
)
from riskguard.policytools.testing.schema import SUFFIXES

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
    loader = Loader(tuple(plugins))
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
