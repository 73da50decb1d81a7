"""``riskguard validate POLICY...``: check policies like ``opa check``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from riskguard.engine.policy import validate_policy
from riskguard.errors import RiskguardError
from riskguard.faces.commands._common import add_plugin_arg, print_json


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="validate policy files (all errors, with line and column)",
        description="Parse and validate policies against the composed policy schema and the rule "
        "types' own cross-field checks (policy test files, *.tests.yaml, against their format; watch configs, kind: Watch, against schemas/watch.schema.json). Reports every error with file:line:column and JSON path, "
        "and suggests the nearest rule type or parameter on a typo. Exit 0 valid, 1 invalid, 2 usage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: riskguard validate policies/*.yaml --format json",
    )
    p.add_argument("policies", nargs="+", metavar="POLICY")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    add_plugin_arg(p)
    return p


def run(args) -> int:
    all_errors: list[Any] = []
    all_warnings: list[Any] = []
    from pathlib import Path

    from riskguard.faces.watch.config import check_config, is_watch_config
    from riskguard.policytools.testing import is_test_file, load_test_file

    for path in args.policies:
        errors: list[Any]
        warnings: list[Any]
        try:
            if is_watch_config(path):
                # `riskguard watch` configs (kind: Watch) are checked against their own schema
                errors = list(check_config(path)[1])
                warnings = []
            elif is_test_file(Path(path)):
                # policy test files (`riskguard test`) sit beside policies: check their format too
                load_test_file(path, plugins=tuple(args.plugin))
                errors, warnings = [], []
            else:
                errors, warnings = validate_policy(path, plugins=tuple(args.plugin))
        except RiskguardError as exc:
            errors, warnings = exc.problems, []
        all_errors += errors
        all_warnings += warnings
        if args.format == "text":
            for e in errors:
                print(f"{e.where()}: error: {e.message} (at {e.path})", file=sys.stderr)
            for w in warnings:
                print(f"{w.where()}: warning: {w.message}", file=sys.stderr)
            if not errors:
                print(f"{path}: ok" + (f" ({len(warnings)} warnings)" if warnings else ""))
    if args.format == "json":
        print_json(
            {
                "errors": [e.to_dict() for e in all_errors],
                "warnings": [w.to_dict() for w in all_warnings],
            }
        )
    failed = bool(all_errors) or (args.strict and bool(all_warnings))
    return 1 if failed else 0
