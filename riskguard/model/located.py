"""Where a value came from: a parsed document with the line and column of each value,
JSON paths, and the reading limits — shared by the JSON reader (:mod:`.yamlio`) and the
YAML parser (:mod:`.yamlparse`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from riskguard.errors import Problem

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_NODES = 200_000
MAX_INT_DIGITS = 4000  # below CPython's int/str conversion limit (4300 digits)

PathKey = tuple[str | int, ...]

_T = "tag:yaml.org,2002:"
_JSON_SCALARS = frozenset({_T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"})


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed document plus the (line, column) of each value, keyed by JSON path tuple."""

    data: Any
    marks: dict[PathKey, tuple[int | None, int | None]]
    file: str | None

    def mark(self, path: PathKey) -> tuple[int | None, int | None]:
        # Fall back to the nearest ancestor that has a mark: a missing key is best
        # reported at the mapping that should have held it.
        p = tuple(path)
        while True:
            m = self.marks.get(p)
            if m is not None:
                return m
            if not p:
                return (None, None)
            p = p[:-1]

    def problem(self, path: PathKey, message: str, code: str = "invalid") -> Problem:
        line, col = self.mark(path)
        return Problem(message, json_path(path), code, self.file, line, col)


def json_path(path: PathKey) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


_SURROGATE = "a lone UTF-16 surrogate escape (\\ud800-\\udfff) is not a character"


def _surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
