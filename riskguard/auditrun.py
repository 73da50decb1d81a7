"""Batch evaluation of many snapshots (``riskguard audit``): stream in, decide, stream out.

Sources are resolved through the registered snapshot sources (file, directory, JSON
Lines, …). Each record is parsed and evaluated independently: a bad record is reported
with its file and line and counted, and the run goes on. Decisions are appended to the
output as they are made, so an interrupted run loses nothing already evaluated.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import evaluate
from .errors import Problem, RiskguardError
from .plugins import Registry
from .policy import CompiledPolicy
from .snapshot import build_snapshot
from .yamlio import parse_json_fast


@dataclass
class BadRecord:
    ref: str
    message: str


@dataclass
class AuditCounts:
    snapshots: int = 0
    bad: list[BadRecord] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)


def expand_inputs(inputs: list[str]) -> list[str]:
    out: list[str] = []
    for item in inputs:
        if item != "-" and any(ch in item for ch in "*?[") and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise RiskguardError(
                    [Problem("no file matches this pattern", "$", "not_found", item)]
                )
            out.extend(matches)
        else:
            if item != "-" and not Path(item).exists():
                raise RiskguardError([Problem("no such file or directory", "$", "not_found", item)])
            out.append(item)
    return out


def iter_records(registry: Registry, inputs: list[str]) -> Iterator[tuple[str, Any]]:
    for loc in expand_inputs(inputs):
        for src in registry.snapshot_sources.values():
            if src.matches(loc):
                yield from src.open(loc)
                break
        else:
            yield (
                loc,
                RiskguardError(
                    [
                        Problem(
                            "not a snapshot file, directory or JSON Lines file "
                            "(.json .yaml .yml .jsonl .ndjson .gz)",
                            "$",
                            "unknown_input",
                            loc,
                        )
                    ]
                ),
            )


def evaluate_record(policy: CompiledPolicy, ref: str, item: Any, now_ms: int | None = None):
    """(decision dict, None) or (None, BadRecord) for one raw record."""
    try:
        if isinstance(item, Exception):
            raise item
        data = parse_json_fast(item, ref) if isinstance(item, str) else item
        snap = build_snapshot(data)
    except RiskguardError as exc:
        p = exc.problems[0] if exc.problems else None
        msg = "; ".join(f"{q.path}: {q.message}" for q in exc.problems[:5])
        return None, BadRecord(ref if p is None or p.line is None else f"{ref}:{p.line}", msg)
    d = evaluate(policy, snap, now_ms=now_ms, ref=ref)
    return d.to_dict(), None


def dumps(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
