"""Access to the JSON Schemas shipped in the package (``schemas/`` in the source tree)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def _schema_dir() -> Path:
    try:
        d = resources.files("riskguard.schemas")
        p = Path(str(d))
        if (p / "snapshot.schema.json").is_file():
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "schemas"


@cache
def load_schema(name: str) -> dict:
    return json.loads((_schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))


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
