"""Safe, bounded YAML/JSON reading that remembers where every value came from.

PyYAML's ``SafeLoader`` already refuses python tags; on top of it we bound the input size,
the nesting depth, the number of aliases and the size the document expands to (a
"billion laughs" document is small on disk but huge once aliases are followed), reject
duplicate keys (YAML silently keeps the last one, which hides typos), and keep a map from
each JSON path to its line and column so every later error can point into the file.

Documents must stay inside JSON's data model, because everything read is later hashed
as canonical JSON: keys are text, numbers finite, and YAML-only types (``!!set``,
``!!binary``, ``!!omap``, explicit ``!!timestamp``) are refused with their location.
Unquoted dates and times stay text (ISO-8601 strings, as in a JSON file) instead of
becoming ``datetime`` objects that no schema or hash accepts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from riskguard.errors import Problem, RiskguardError
from riskguard.model.located import (  # re-exported: yamlio's public names
    _SURROGATE,
    _surrogate,
)
from riskguard.model.located import MAX_ALIASES as MAX_ALIASES
from riskguard.model.located import MAX_BYTES as MAX_BYTES
from riskguard.model.located import MAX_DEPTH as MAX_DEPTH
from riskguard.model.located import MAX_INT_DIGITS as MAX_INT_DIGITS
from riskguard.model.located import MAX_NODES as MAX_NODES
from riskguard.model.located import Located as Located
from riskguard.model.located import PathKey as PathKey
from riskguard.model.located import json_path as json_path


def parse_text(text: str, file: str | None = None) -> Located:
    """Parse YAML (JSON is YAML) with limits; raise RiskguardError with a location."""
    from riskguard.model.yamlparse import parse_yaml  # PyYAML only when YAML is read

    return parse_yaml(text, file)


def read_text(path: str | Path) -> str:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise RiskguardError(
                [
                    Problem(
                        f"file is {size} bytes; the limit is {MAX_BYTES}", "$", "too_large", str(p)
                    )
                ]
            )
        with p.open("r", encoding="utf-8") as fh:
            text = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise RiskguardError([Problem("no such file", "$", "not_found", str(p))]) from None
    except IsADirectoryError:
        raise RiskguardError(
            [Problem("is a directory, expected a file", "$", "io", str(p))]
        ) from None
    except UnicodeDecodeError as exc:
        raise RiskguardError([Problem(f"not UTF-8 text: {exc}", "$", "syntax", str(p))]) from None
    except OSError as exc:
        raise RiskguardError([Problem(f"cannot read: {exc.strerror}", "$", "io", str(p))]) from None
    if len(text) > MAX_BYTES:
        raise RiskguardError([Problem(f"file exceeds {MAX_BYTES} bytes", "$", "too_large", str(p))])
    return text


def parse_json_fast(text: str, file: str | None = None) -> Any:
    """json.loads with NaN/Infinity and duplicate keys refused, errors located; the hot path
    for JSON input."""
    try:
        data = _strict_decode(text)
        if ("\\ud" in text or "\\uD" in text) and _surrogate(json.dumps(data, ensure_ascii=False)):
            m = _LONE.search(text)
            pos = m.start() if m else 0
            line = text.count("\n", 0, pos) + 1
            col = pos - text.rfind("\n", 0, pos)
            raise RiskguardError(
                [Problem(f"not valid JSON text: {_SURROGATE}", "$", "syntax", file, line, col)]
            )
        return data
    except _Dup:
        # json.loads keeps the last of two equal keys silently; the YAML reader says where.
        try:
            parse_text(text, file)
        except RiskguardError as located:
            if located.problems[0].code == "duplicate_key":
                raise located from None
            # else YAML cannot read this JSON (e.g. a raw \x7f): no location then
        raise RiskguardError(
            [Problem("duplicate key in a JSON object", "$", "duplicate_key", file)]
        ) from None
    except json.JSONDecodeError as exc:
        raise RiskguardError(
            [Problem(f"not valid JSON: {exc.msg}", "$", "syntax", file, exc.lineno, exc.colno)]
        ) from None
    except _NonFinite as exc:
        raise RiskguardError(
            [Problem(f"{exc.args[0]} is not a finite number", "$", "not_finite", file)]
        ) from None
    except ValueError:  # CPython's int/str limit: a number of more than 4300 digits
        raise RiskguardError(
            [Problem("a number has more than 4300 digits", "$", "limits", file)]
        ) from None
    except RecursionError:
        raise RiskguardError([Problem("document nested too deeply", "$", "limits", file)]) from None


_LONE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


class _NonFinite(ValueError):
    pass


class _Dup(ValueError):
    pass


def _no_dup(pairs: list[Any]) -> dict[Any, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Dup
    return d


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


# Built once: json.loads(text, **options) would build a decoder on every call.
_strict_decode = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_no_dup).decode


def load_file(path: str | Path) -> Located:
    """Read a YAML or JSON file with limits, keeping line/column marks."""
    text = read_text(path)
    return parse_text(text, str(path))
