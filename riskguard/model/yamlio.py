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
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from riskguard.errors import Problem, RiskguardError

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


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader with depth and alias limits and duplicate-key detection."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} aliases (line {event.start_mark.line + 1}): "
                    "refusing a possible alias bomb"
                )
        self._depth += 1
        if self._depth > MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.YAMLError(
                f"nesting deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})"
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# Unquoted dates stay strings (JSON has no date type; the snapshot and policy readers
# parse ISO-8601 text themselves).
_BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _T + "timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _scalar_problem(node: yaml.ScalarNode) -> str | None:
    """Why a scalar has no JSON equivalent (None when it has one)."""
    tag = node.tag
    if tag not in _JSON_SCALARS:
        return _tag_problem(tag)
    if not node.value.isascii() and _surrogate(node.value):
        return _SURROGATE
    if tag == _T + "int" and len(node.value) > MAX_INT_DIGITS:
        return f"integer with more than {MAX_INT_DIGITS} digits"
    if tag == _T + "float":
        text = node.value.replace("_", "").lower()
        if text.lstrip("+-") in (".nan", ".inf"):
            return f"{node.value} is not a finite number"
        try:
            if not math.isfinite(float(text)):
                return f"{node.value} is not a finite number (out of range)"
        except ValueError:
            pass  # sexagesimal (1:30.5): finite by construction
    return None


_SURROGATE = "a lone UTF-16 surrogate escape (\\ud800-\\udfff) is not a character"


def _surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _tag_problem(tag: str) -> str:
    short = "!!" + tag[len(_T) :] if tag.startswith(_T) else tag
    return (
        f"YAML tag {short} is not allowed: only JSON data (mappings, lists, text, "
        "numbers, true/false, null) is read"
    )


def _walk_marks(
    node: yaml.Node,
    path: PathKey,
    marks: dict[PathKey, tuple[int | None, int | None]],
    budget: list[int],
) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _BadValue(
            f"document expands to more than {MAX_NODES} values once aliases are followed: "
            "refusing a possible alias or merge-key bomb",
            path,
            node,
            "limits",
        )
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        if node.tag != _T + "map":
            raise _BadValue(_tag_problem(node.tag), path, node)
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk_marks(value_node, path, marks, budget)
                continue
            if key_node.tag != _T + "str" or not isinstance(key_node, yaml.ScalarNode):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                raise _BadValue(
                    f"mapping key {shown!r} is not text (JSON keys are strings): quote it",
                    path,
                    key_node,
                )
            key = key_node.value
            if not key.isascii() and _surrogate(key):
                raise _BadValue(_SURROGATE, path, key_node)
            if key in seen:
                raise _DuplicateKey(key, seen[key], key_node.start_mark.line + 1, path)
            seen[key] = key_node.start_mark.line + 1
            _walk_marks(value_node, (*path, key), marks, budget)
    elif isinstance(node, yaml.SequenceNode):
        if node.tag != _T + "seq":
            raise _BadValue(_tag_problem(node.tag), path, node)
        for i, item in enumerate(node.value):
            _walk_marks(item, (*path, i), marks, budget)
    else:
        why = _scalar_problem(cast(yaml.ScalarNode, node))
        if why is not None:
            raise _BadValue(why, path, node)


class _DuplicateKey(Exception):
    def __init__(self, key: str, first: int, again: int, path: PathKey) -> None:
        self.key, self.first, self.again, self.path = key, first, again, path


class _BadValue(Exception):
    """A value outside JSON's data model, with where it is."""

    def __init__(
        self, message: str, path: PathKey, node: yaml.Node, code: str = "not_json"
    ) -> None:
        self.message, self.path, self.code = message, path, code
        self.line, self.column = node.start_mark.line + 1, node.start_mark.column + 1


def parse_text(text: str, file: str | None = None) -> Located:
    """Parse YAML (JSON is YAML) with limits; raise RiskguardError with a location."""
    if len(text) > MAX_BYTES:
        raise RiskguardError(
            [Problem(f"input is larger than {MAX_BYTES} bytes", code="too_large", file=file)]
        )
    try:
        loader = _BoundedLoader(text)  # checks every character is printable
    except yaml.reader.ReaderError as exc:
        pos = exc.position
        line: int | None = text.count("\n", 0, pos) + 1
        col: int | None = pos - text.rfind("\n", 0, pos)
        raise RiskguardError(
            [
                Problem(
                    f"not valid YAML/JSON: control character #x{exc.character:04x} "
                    "(only printable text is read)",
                    "$",
                    "syntax",
                    file,
                    line,
                    col,
                )
            ]
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, {(): (1, 1)}, file)
        marks: dict[Any, Any] = {}
        _walk_marks(node, (), marks, [MAX_NODES])
        data = loader.construct_document(node)
    except _DuplicateKey as dup:
        raise RiskguardError(
            [
                Problem(
                    f"duplicate key {dup.key!r} (first on line {dup.first}); "
                    "a reader would silently keep only the last one",
                    json_path((*dup.path, dup.key)),
                    "duplicate_key",
                    file,
                    dup.again,
                    None,
                )
            ]
        ) from None
    except _BadValue as bad:
        raise RiskguardError(
            [Problem(bad.message, json_path(bad.path), bad.code, file, bad.line, bad.column)]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise RiskguardError(
            [Problem(f"not valid YAML/JSON: {msg}", "$", "syntax", file, line, col)]
        ) from None
    except yaml.YAMLError as exc:
        raise RiskguardError([Problem(str(exc), "$", "limits", file)]) from None
    except RecursionError:
        raise RiskguardError([Problem("document nested too deeply", "$", "limits", file)]) from None
    finally:
        loader.dispose()
    return Located(data, marks, file)


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
