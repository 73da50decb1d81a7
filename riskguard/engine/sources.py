"""Snapshot sources: where raw snapshot documents come from.

A source yields ``(ref, item)`` pairs: ``ref`` names the record for messages
(``file``, ``file:line``) and ``item`` is a parsed ``dict``, a JSON text ``str`` (parsed
later, in the worker that evaluates it), or an exception describing a bad record (which
is counted and reported, and never stops the run).

Built-ins: ``file`` (one JSON/YAML snapshot), ``jsonl`` (JSON Lines, ``.gz`` too, ``-``
for stdin), ``directory`` (every snapshot file below it, sorted), registered through
``riskguard_snapshot_sources`` like a plugin's. Globs are expanded by the caller.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskguard.errors import Problem, RiskguardError
from riskguard.hookspecs import hookimpl
from riskguard.model.yamlio import MAX_BYTES, load_file, read_text

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
DOC_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class SnapshotSource:
    name: str
    description: str
    matches: Callable[[str], bool]
    open: Callable[[str], Iterator[tuple[str, Any]]]


def _open_text(location: str) -> io.TextIOBase:
    if location == "-":
        return sys.stdin  # type: ignore[return-value]
    if location.endswith(".gz"):
        return gzip.open(location, "rt", encoding="utf-8")
    return open(location, encoding="utf-8")


def iter_jsonl(location: str) -> Iterator[tuple[str, Any]]:
    fh = _open_text(location)
    try:
        lineno = 0
        # Bounded reads: a line without end (a pipe from /dev/zero) must not eat memory.
        while line := fh.readline(MAX_BYTES + 1):
            lineno += 1
            if len(line) > MAX_BYTES:
                yield (
                    f"{location}:{lineno}",
                    RiskguardError(
                        [
                            Problem(
                                f"line longer than {MAX_BYTES} characters; "
                                "stopped reading this input",
                                "$",
                                "too_large",
                                location,
                                lineno,
                            )
                        ]
                    ),
                )
                return
            if line.strip():
                yield f"{location}:{lineno}", line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        yield f"{location}", RiskguardError(f"cannot read further: {exc}", file=location)
    finally:
        if fh is not sys.stdin:
            fh.close()


def iter_file(location: str) -> Iterator[tuple[str, Any]]:
    if location.endswith(".json"):
        try:
            yield location, read_text(location)  # size-limited like every other input
        except RiskguardError as exc:
            yield location, exc
        return
    try:
        yield location, load_file(location).data
    except RiskguardError as exc:
        yield location, exc


def iter_directory(location: str) -> Iterator[tuple[str, Any]]:
    root = Path(location)
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        name = p.name
        if name.endswith(JSONL_SUFFIXES):
            yield from iter_jsonl(str(p))
        elif name.endswith(DOC_SUFFIXES):
            yield from iter_file(str(p))


def _is_jsonl(loc: str) -> bool:
    return loc == "-" or loc.endswith(JSONL_SUFFIXES)


def _is_doc(loc: str) -> bool:
    return loc.endswith(DOC_SUFFIXES) and not Path(loc).is_dir()


@hookimpl
def riskguard_snapshot_sources(register: Any) -> None:
    register(
        SnapshotSource(
            "jsonl",
            "JSON Lines, one snapshot a line (.jsonl, .ndjson, .gz, - for stdin)",
            _is_jsonl,
            iter_jsonl,
        )
    )
    register(
        SnapshotSource(
            "directory",
            "every snapshot file below a directory, sorted by path",
            lambda loc: Path(loc).is_dir(),
            iter_directory,
        )
    )
    register(SnapshotSource("file", "one JSON or YAML snapshot document", _is_doc, iter_file))
