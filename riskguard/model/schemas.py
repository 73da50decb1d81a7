"""Access to the JSON Schemas shipped in the package (``schemas/`` in the source tree)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def _schema_dir() -> Path:
    """``riskguard/schemas/`` in an installed wheel, else ``schemas/`` of the source tree."""
    package = Path(__file__).resolve().parent.parent  # riskguard/
    here = package
    for d in (package / "schemas", package.parent / "schemas"):
        if (d / "snapshot.schema.json").is_file():
            return d
    raise FileNotFoundError(f"riskguard's JSON Schemas are missing (looked in {here / 'schemas'})")


@cache
def load_schema(name: str) -> dict[Any, Any]:
    doc: dict[str, Any] = json.loads(
        (_schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8")
    )
    return doc


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator compiled once per process, with sibling schemas resolvable by file name."""
    resources_ = []
    for other in ("snapshot", "order", "decision"):
        try:
            s = load_schema(other)
        except FileNotFoundError:
            continue
        res = Resource.from_contents(s)
        resources_.append((f"{other}.schema.json", res))
        resources_.append((s.get("$id", other), res))
    registry = Registry().with_resources(resources_)
    return Draft202012Validator(load_schema(name), registry=registry)
