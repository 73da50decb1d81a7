"""``riskguard test POLICY_OR_DIR...``: run policy unit tests (``*.tests.yaml``), like ``opa test``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from riskguard.faces.commands._common import add_plugin_arg, print_json
from riskguard.policytools.testing import SuiteResult, coverage, json_report, run_tests

EPILOG = """where tests are found:
  a policy file      its <stem>.tests.yaml beside it (default.yaml -> default.tests.yaml)
  a test file        that file (*.tests.yaml)
  a directory        every *.tests.yaml below it, recursively

exit codes:
  0  every case passed, none was skipped, every policy given has tests
  1  some case failed (or errored); or some case was skipped, or a policy among the
     inputs has no tests file (unless -z / --exit-zero-on-skipped, as in opa test);
     with --fail-on-empty also: no case ran
  2  bad input: a test file, snapshot, order or policy is invalid (file:line:col given)

examples:
  riskguard test policies/default.yaml
  riskguard test policies/ --coverage
  riskguard test policies/ -r 'utilization' -v
  riskguard test policies/ --format json
  riskguard test policies/ --format junit > policy-tests.xml
  riskguard test policies/ --format sarif > policy-tests.sarif

format of the test files: docs/policy-testing.md
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="run policy unit tests (*.tests.yaml): expected decisions, violations, actions",
        description="Run the YAML unit tests of policies: each case gives a snapshot (and an "
        "optional order and clock) and the decision, violated rules, reason codes and actions it "
        "must produce. Every case runs through the real engine. Prints PASS/FAIL per case with a "
        "diff of expected vs actual for failures, and pass/fail counts.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument(
        "paths", nargs="+", metavar="POLICY_OR_DIR", help="policy, test file or directory"
    )
    p.add_argument(
        "--coverage",
        action="store_true",
        help="report, per policy, the rules no case violated and the rules no case saw pass",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "junit", "sarif"),
        default="text",
        help="output format on stdout: text (default), json, junit (JUnit XML for CI test "
        "reports) or sarif (SARIF 2.1.0 for code scanning: failing, erroring and skipped cases "
        "at their place in the tests file)",
    )
    p.add_argument(
        "-r",
        "--run",
        metavar="REGEX",
        help="run only cases whose name matches REGEX (table rows: 'name[row]')",
    )
    p.add_argument(
        "--fail-on-empty", action="store_true", help="exit 1 when no case ran (nothing found)"
    )
    p.add_argument(
        "-z",
        "--exit-zero-on-skipped",
        action="store_true",
        help="skipped cases and policies without tests do not make the exit code 1 "
        "(they are still reported), as in opa test",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show each passing case's decision and reason codes",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="show only failures and the summary")
    add_plugin_arg(p)
    return p


def run(args) -> int:
    suite = run_tests(list(args.paths), plugins=tuple(args.plugin), run=args.run)
    empty = not suite.results
    code = suite.exit_code
    if code == 0 and empty and args.fail_on_empty:
        code = 1
    if code == 0 and suite.skipped_anything and not args.exit_zero_on_skipped:
        code = 1  # like opa test: a skip is not a pass unless -z says so
    if args.format == "json":
        print_json(json_report(suite, with_coverage=args.coverage))
    elif args.format == "junit":
        from riskguard.faces.ciformats import policytest_junit

        sys.stdout.write(policytest_junit(suite))
    elif args.format == "sarif":
        from riskguard.faces.ciformats import policytest_sarif

        print_json(policytest_sarif(suite, exit_code=code))
    else:
        _print_text(suite, args)
    if args.format in ("junit", "sarif"):
        for p in suite.problems:  # also said where a person sees it (text prints its own)
            where = f"{p.where()}: " if p.file else ""
            print(f"{where}error: {p.message}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- text output

_STATUS = {
    "pass": ("PASS", "bold green"),
    "fail": ("FAIL", "bold red"),
    "error": ("ERROR", "bold red"),
    "skip": ("SKIP", "yellow"),
}


def _show(v: Any) -> str:
    if isinstance(v, list):
        if not v:
            return "none"
        return ", ".join(_show(x) for x in v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:.10g}"
    if v is None:
        return "null"
    return str(v)


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _print_text(suite: SuiteResult, args) -> None:
    from rich.markup import escape

    from riskguard.faces.render import console

    out = console()
    # Plain lines, never wrapped: editors and CI parse "file:line:col: error: ...".
    for p in suite.problems:
        where = f"{p.where()}: " if p.file else ""
        at = f" (at {p.path})" if p.path not in ("", "$") else ""
        print(f"{where}error: {p.message}{at}", file=sys.stderr)
    for n in suite.notices:
        print(f"note: {n}", file=sys.stderr)
    current = None
    for r in suite.results:
        c = r.case
        if c.file != current:
            current = c.file
            policy = suite.policies.get(c.policy)
            label = f"policy {policy.name} {policy.version}" if policy is not None else ""
            out.print(
                f"[bold]{escape(c.file)}[/] [dim]→ {escape(label)} ({escape(_rel(c.policy))})[/]"
            )
        if args.quiet and r.status in ("pass", "skip"):
            continue
        word, style = _STATUS[r.status]
        line = f"  [{style}]{word:5}[/] {escape(c.name)}"
        if r.status == "skip":
            line += f" [dim]({escape(c.skip or '')})[/]"
        if r.status in ("fail", "error"):
            line += f"  [dim]{escape(c.where)}[/]"
        out.print(line)
        if r.status == "error":
            out.print(f"        [red]{escape(r.error or '')}[/]")
        for m in r.mismatches:
            step = f"step {m.step}: " if m.step is not None else ""
            out.print(f"        [bold]{step}{m.check}[/] — {escape(m.message)}")
            out.print(f"          [red]- expected: {escape(_show(m.expected))}[/]")
            out.print(f"          [green]+ actual:   {escape(_show(m.actual))}[/]")
        if args.verbose and r.decisions:
            for k, d in enumerate(r.decisions, 1):
                pre = f"step {k}: " if c.stateful else ""
                codes = ", ".join(f"{v.rule}:{v.code}" for v in d.violations) or "no violations"
                extra = (
                    f", largest allowed amount {d.maxAllowedAmount:.8g}"
                    if d.maxAllowedAmount is not None
                    else ""
                )
                out.print(f"        [dim]{pre}{d.decision}{extra} — {escape(codes)}[/]")
    for path in suite.untested:
        stem = Path(path).name.rsplit(".", 1)[0]
        out.print(
            f"[yellow]SKIP [/] policy {escape(_rel(path))}: no tests "
            f"[dim](expected {escape(stem)}.tests.yaml beside it)[/]"
        )
    s = suite.summary()
    if args.coverage:
        _print_coverage(suite, out, escape)
    parts = [
        f"[bold green]PASS {s['passed']}[/]",
        f"[bold red]FAIL {s['failed']}[/]" if s["failed"] else f"FAIL {s['failed']}",
    ]
    if s["errors"]:
        parts.append(f"[bold red]ERROR {s['errors']}[/]")
    if s["skipped"]:
        parts.append(f"[yellow]SKIP {s['skipped']}[/]")
    if s["untested"]:
        parts.append(f"[yellow]UNTESTED {s['untested']}[/]")
    tail = f"{s['total']} case{'s' if s['total'] != 1 else ''} in {s['files']} file{'s' if s['files'] != 1 else ''}"
    if suite.problems:
        tail += f"; {len(suite.problems)} input error{'s' if len(suite.problems) != 1 else ''}"
    out.print("─" * 60)
    out.print("  ".join(parts) + f"  — {tail}")
    if not suite.results and not suite.problems:
        print("no test cases found", file=sys.stderr)


def _print_coverage(suite: SuiteResult, out, escape) -> None:
    from rich.table import Table

    for cov in coverage(suite):
        t = Table(
            title=f"coverage of policy {cov['name']}: {cov['covered']}/{cov['total']} rules "
            "violated by some case",
            title_justify="left",
        )
        t.add_column("rule")
        t.add_column("type")
        t.add_column("violated in", justify="right")
        t.add_column("passed in", justify="right")
        for r in cov["rules"]:
            v, p = len(r["violatedBy"]), len(r["passedBy"])
            t.add_row(
                escape(r["id"]),
                escape(r["type"]),
                f"{v} case{'s' if v != 1 else ''}" if v else "[bold red]never[/]",
                f"{p} case{'s' if p != 1 else ''}" if p else "[yellow]never[/]",
            )
        out.print(t)
        if cov["neverViolated"]:
            out.print(
                "[bold red]not exercised[/] (no case violates): "
                + escape(", ".join(cov["neverViolated"]))
            )
        if cov["neverPassed"]:
            out.print(
                "[yellow]never seen passing[/] (no case where it judged something and held): "
                + escape(", ".join(cov["neverPassed"]))
            )
        if not cov["neverViolated"] and not cov["neverPassed"]:
            out.print("[green]every rule is both violated and passed by some case[/]")
