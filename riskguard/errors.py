"""Error types that cross module boundaries.

Every user-facing error carries *where* (file, line, column, JSON path) and *what was
expected*, so the CLI can print it and exit 2 without a traceback, and editors can
consume it as JSON (`validate --format json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows."""

    message: str
    path: str = "$"
    code: str = "invalid"
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def where(self) -> str:
        loc = self.file or "<input>"
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def __str__(self) -> str:
        if self.path in ("", "$"):
            return f"{self.where()}: {self.message}"
        return f"{self.where()}: {self.path}: {self.message}"

    def to_dict(self) -> dict[Any, Any]:
        return {
            "message": self.message,
            "code": self.code,
            "location": {"file": self.file, "line": self.line, "column": self.column},
            "path": self.path,
        }


class RiskguardError(Exception):
    """Base class: an error the user can fix (exit code 2 in the CLI)."""

    def __init__(self, problems: list[Problem] | str, *, file: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, file=file)]
        self.problems: list[Problem] = problems
        super().__init__("\n".join(str(p) for p in problems))

    def __reduce__(self) -> tuple[Any, ...]:
        # Through a process pool (audit and simulate workers) an error keeps its problems
        # and attributes as they were: rebuilding it from its text would locate it again
        # ("<input>: <input>: …") and a subclass with other arguments could not be rebuilt.
        return (_restore, (type(self), self.args, self.__dict__.copy()))


def _restore(cls: type[RiskguardError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class SnapshotError(RiskguardError):
    """A snapshot or order does not match `schemas/snapshot.schema.json` / `order.schema.json`."""


class PolicyError(RiskguardError):
    """A policy file is malformed, fails its schema, or contradicts itself."""


class PluginError(RiskguardError):
    """A plugin could not be loaded or registered something invalid."""


class PluginFault(PluginError):
    """Plugin code raised while it was imported, registered or compiled (``sys.exit`` and
    ``KeyboardInterrupt`` included): a fault, not bad input. The CLI exits 3 with
    ``PLUGIN_ERROR``; nothing is decided, so nothing is allowed."""


@dataclass(slots=True)
class ProblemList:
    """Collects problems so validation reports everything at once, not the first only."""

    items: list[Problem] = field(default_factory=list)
    file: str | None = None

    def add(self, path: str, message: str, code: str = "invalid") -> None:
        self.items.append(Problem(message, path, code, self.file))

    def __bool__(self) -> bool:
        return bool(self.items)


def problems_under(exc: RiskguardError, prefix: str) -> list[dict[str, Any]]:
    """``exc``'s problems as JSON, their paths re-rooted under ``prefix`` (``$.snapshot``):
    a document nested in a request is named where the caller put it."""
    out = []
    for p in exc.problems:
        path = p.path
        if path.startswith("$"):
            path = prefix + path[1:]
        out.append({"path": path, "message": p.message, "code": p.code})
    return out
