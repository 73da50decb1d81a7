"""Policy unit tests in YAML, run by ``riskguard test`` (the ``opa test`` of riskguard).

A test file ``<policy-stem>.tests.yaml`` sits beside its policy and lists cases: a
snapshot (and optionally an order and a clock) and what the decision must be. Every
case runs through the real engine (``riskguard.engine.evaluate`` with an injected
clock), so a passing suite says the policy *as compiled* does what its author meant.
The format is documented in ``docs/policy-testing.md``.

``schema`` holds the file format, ``load`` finds and loads files (with file:line:column for
every problem), ``model`` what they hold, ``check`` how a decision is compared with a
case's expectations, ``run`` runs cases, measures rule coverage and writes the report.
Data-driven ``table`` + ``template`` cases are reported row by row, like OPA's
parameterised tests.

May import: what ``riskguard.policytools`` may (a case with steps runs a ``Guard``).
"""

from riskguard.model.yamlio import json_path
from riskguard.policytools.testing.check import check_expectations, matches
from riskguard.policytools.testing.load import discover, is_test_file, load_test_file, substitute
from riskguard.policytools.testing.model import (
    Case,
    CaseResult,
    Mismatch,
    Step,
    SuiteResult,
    TestFile,
)
from riskguard.policytools.testing.run import coverage, json_report, run_case, run_tests
from riskguard.policytools.testing.schema import POLICYTEST_SCHEMA

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
    "is_test_file",
    "json_path",
    "json_report",
    "load_test_file",
    "matches",
    "run_case",
    "run_tests",
    "substitute",
]
