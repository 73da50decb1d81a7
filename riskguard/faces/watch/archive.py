"""The snapshot archive: every snapshot the watcher saw, one JSON line each.

Files are ``<dir>/snapshots-YYYY-MM-DD.jsonl`` by UTC day. When the day changes the
finished file is gzipped to ``.jsonl.gz`` (and any finished ``.jsonl`` left by a crash is
gzipped at start). ``riskguard audit <dir>`` reads the directory as it is: plain and
gzipped JSON Lines alike.

Each line is one ``os.write`` on an ``O_APPEND`` descriptor (no buffering to lose). A
process killed mid-write leaves at most one torn last line; the next start cuts it off,
so every line in the archive is a whole JSON document.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

PREFIX = "snapshots-"


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline); return the bytes dropped."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        # walk back to the previous newline
        pos = size
        chunk = 4096
        keep = 0
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            i = buf.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        f.truncate(keep)
        return size - keep


def gzip_file(path: Path) -> Path:
    """``x.jsonl`` -> ``x.jsonl.gz`` (written aside, then renamed; the original removed)."""
    out = path.with_name(path.name + ".gz")
    tmp = out.with_name(out.name + ".tmp")
    with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, out)
    path.unlink()
    return out


class SnapshotArchive:
    """Append snapshot documents to daily JSON Lines files (thread-safe)."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        gzip: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gzip = gzip
        self.clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day: str | None = None
        self.repaired = 0
        today = _day(clock())
        for p in sorted(self.dir.glob(f"{PREFIX}*.jsonl")):
            self.repaired += _repair_tail(p)
            if p.name != f"{PREFIX}{today}.jsonl" and self.gzip and p.stat().st_size > 0:
                gzip_file(p)

    def path_for(self, day: str) -> Path:
        return self.dir / f"{PREFIX}{day}.jsonl"

    def append(self, doc: dict) -> None:
        line = (
            json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
        ).encode()
        with self._lock:
            day = _day(self.clock())
            if day != self._day:
                self._rotate(day)
            os.write(self._fd, line)  # type: ignore[arg-type]

    def _rotate(self, day: str) -> None:
        old_day = self._day
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if old_day is not None and self.gzip:
            old = self.path_for(old_day)
            if old.exists() and old.stat().st_size > 0:
                gzip_file(old)
        self._fd = os.open(self.path_for(day), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._day = day

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
