"""The state file: what a restart needs to carry on where the last run stopped.

JSON, written atomically (temporary file, ``fsync``, ``rename``) whenever it changes:
open episodes (a restart mid-episode neither re-alerts "open" nor forgets to resolve),
each account's recent protective actions (the hourly budget and the daily add-margin
budget survive a restart) and the client order ids already sent (a retry after a crash
is recognised, never sent twice).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from riskguard.errors import RiskguardError

VERSION = 1


def load_state(path: str | os.PathLike | None) -> dict:
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        return {}
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RiskguardError(
            f"state file {p} is unreadable ({exc}); move it aside to start fresh", file=str(p)
        ) from exc
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise RiskguardError(
            f"state file {p} is not a riskguard watch state (version {VERSION})", file=str(p)
        )
    return doc


def save_state(path: str | os.PathLike, doc: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    data = json.dumps({"version": VERSION, **doc}, sort_keys=True, separators=(",", ":"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)
