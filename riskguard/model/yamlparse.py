"""The YAML half of :mod:`riskguard.model.yamlio`: PyYAML's ``SafeLoader`` with limits,
duplicate-key detection and a line/column for every value.

Imported on first use (``yamlio.parse_text``), so reading JSON — snapshots, a cached
policy — never pays for importing PyYAML.
"""

from __future__ import annotations

import math
from typing import Any, cast

import yaml

from riskguard.errors import Problem, RiskguardError
from riskguard.model.located import (
    _JSON_SCALARS,
    _SURROGATE,
    _T,
    MAX_ALIASES,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_NODES,
    Located,
    PathKey,
    _surrogate,
    json_path,
)


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


def parse_yaml(text: str, file: str | None = None) -> Located:
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
