"""How the audit's summary text and its reports write numbers, times and durations.

One set of formatters so the terminal summary, the Markdown report and the HTML report
say the same figure the same way; ``—`` stands for "no value".
"""

from __future__ import annotations

__all__ = ["count", "duration", "pct", "when"]


def count(v: int | None) -> str:
    return "—" if v is None else f"{v:,}"


def pct(v: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.4215`` → ``42.2 %``."""
    return "—" if v is None else f"{v * 100:.{digits}f} %"


def when(iso: str | None, *, missing: str = "—", zone: str = "") -> str:
    """An ISO-8601 UTC time for people: ``2026-11-24 12:00:00`` + ``zone``."""
    if not iso:
        return missing
    return iso.replace("T", " ").replace(".000Z", "Z").replace("Z", zone)


def duration(seconds: float | None, *, keep_seconds: bool = False) -> str:
    """``42 s``, ``5 min`` (``5 min 12 s`` with ``keep_seconds``), ``3 h 07 min``, ``2 d 4 h``."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if keep_seconds and s else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m:02d} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"
