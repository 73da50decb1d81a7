"""Action sinks: where decisions (and the actions in them) are sent.

Built-in sinks are registered through ``riskguard_action_sinks`` like any plugin's:
``stdout`` prints each decision as one JSON line; ``jsonl`` appends them to a file.
An executor (e.g. the ccxt one in ``plugins/``) is just another sink that acts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from riskguard.hookspecs import hookimpl


@dataclass(frozen=True, slots=True)
class ActionSink:
    name: str
    description: str
    open: Callable[[dict[Any, Any]], Callable[[Any], None]]


def _stdout(options: dict[Any, Any]) -> Callable[[Any], None]:
    def emit(decision: Any) -> None:
        sys.stdout.write(json.dumps(decision.to_dict(), separators=(",", ":")) + "\n")
        sys.stdout.flush()

    return emit


def _jsonl(options: dict[Any, Any]) -> Callable[[Any], None]:
    path = options.get("path")
    if not path:
        raise ValueError("the jsonl sink needs a 'path' option")

    def emit(decision: Any) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(decision.to_dict(), separators=(",", ":")) + "\n")

    return emit


@hookimpl
def riskguard_action_sinks(register: Any) -> None:
    register(ActionSink("stdout", "print each decision as one JSON line", _stdout))
    register(
        ActionSink("jsonl", "append each decision to the JSON Lines file at option 'path'", _jsonl)
    )
