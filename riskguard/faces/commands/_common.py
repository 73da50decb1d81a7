"""Argument helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE",
        help="load a plugin module from FILE (repeatable)",
    )


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
