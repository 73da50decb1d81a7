"""The pieces of a breach timeline: down-sampled plot series and breach episodes.

Both are built to merge exactly (see :mod:`riskguard.batch.summary`): a :class:`Series`
keeps time-aligned buckets whose width doubles together, and an :class:`Episode` open at
the end of one chunk joins the one open at the start of the next. Times are epoch
milliseconds; ``NO_TS`` marks a decision that carried no time at all.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from riskguard.engine.decision import SEVERITIES
from riskguard.model.snapshot import format_timestamp

__all__ = ["NO_TS", "Episode", "Series", "iso_ms", "parse_ts"]

NO_TS = -1  # a decision without any timestamp
_BASE_WIDTH_MS = 1000  # series buckets: 1 s · 2^k


def iso_ms(ms: int | None) -> str | None:
    if ms is None or ms == NO_TS:
        return None
    return format_timestamp(ms)


def parse_ts(text: Any) -> int:
    if isinstance(text, bool) or text is None:
        return NO_TS
    if isinstance(text, (int, float)):
        return int(text)
    try:
        s = str(text)
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    except (ValueError, OverflowError):
        return NO_TS


# --------------------------------------------------------------------------- series


class Series:
    """A time series down-sampled into time-aligned buckets of width 1 s · 2^k.

    Each bucket keeps its maximum and minimum with their times (ties: the earlier time),
    so a plot shows the worst value of each bucket. When there are more than ``cap``
    buckets, the width doubles (pairs of buckets merge). Two series merge exactly: the
    result is what one series fed both inputs would hold.
    """

    __slots__ = ("buckets", "cap", "width")

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.width = _BASE_WIDTH_MS
        self.buckets: dict[int, list] = {}  # index -> [max, t_max, min, t_min]

    def add(self, t: int, v: float) -> None:
        i = t // self.width
        b = self.buckets.get(i)
        if b is None:
            self.buckets[i] = [v, t, v, t]
            if len(self.buckets) > self.cap:
                self._coarsen()
            return
        if v > b[0] or (v == b[0] and t < b[1]):
            b[0], b[1] = v, t
        if v < b[2] or (v == b[2] and t < b[3]):
            b[2], b[3] = v, t

    @staticmethod
    def _combine(b: list, c: list) -> None:
        if c[0] > b[0] or (c[0] == b[0] and c[1] < b[1]):
            b[0], b[1] = c[0], c[1]
        if c[2] < b[2] or (c[2] == b[2] and c[3] < b[3]):
            b[2], b[3] = c[2], c[3]

    def _rebucket(self, k: int) -> None:
        """Widen the buckets 2^k times in one pass: the same as halving k times, since
        bucket i lands in i >> k and combining is associative."""
        out: dict[int, list] = {}
        combine = self._combine
        for i, b in self.buckets.items():
            j = i >> k
            have = out.get(j)
            if have is None:
                out[j] = b
            else:
                combine(have, b)
        self.buckets = out
        self.width <<= k

    def _coarsen(self) -> None:
        n = len(self.buckets)
        if n <= self.cap:
            return
        keys = self.buckets.keys()
        k = 1
        while len({i >> k for i in keys}) > self.cap:
            k += 1
        self._rebucket(k)

    def merge(self, other: Series) -> None:
        if self.width < other.width:
            self._rebucket((other.width // self.width).bit_length() - 1)
        # ``other`` (a chunk's series, fine-grained) widened to this width in one pass
        k = (self.width // other.width).bit_length() - 1
        buckets = self.buckets
        combine = self._combine
        for i, c in other.buckets.items():
            j = i >> k
            b = buckets.get(j)
            if b is None:
                buckets[j] = list(c)
            else:
                combine(b, c)
        self._coarsen()

    def copy(self) -> Series:
        s = Series(self.cap)
        s.width = self.width
        s.buckets = {i: list(b) for i, b in self.buckets.items()}
        return s

    def points(self, which: str = "max") -> list[tuple[int, float]]:
        """``(time ms, value)`` per bucket, in time order: the bucket's max or min."""
        k = 0 if which == "max" else 2
        return [(b[k + 1], b[k]) for _i, b in sorted(self.buckets.items())]

    def to_dict(self) -> dict:
        return {
            "bucketSeconds": self.width / 1000,
            "points": [
                {"tMax": iso_ms(b[1]), "max": b[0], "tMin": iso_ms(b[3]), "min": b[2]}
                for _i, b in sorted(self.buckets.items())
            ],
        }

    def __len__(self) -> int:
        return len(self.buckets)


# --------------------------------------------------------------------------- episodes


class Episode:
    """One breach of one (rule, symbol) on one account: consecutive snapshots in breach."""

    __slots__ = (
        "at_first",
        "codes",
        "end",
        "last",
        "limit",
        "n",
        "obs_max",
        "obs_min",
        "rule",
        "severity",
        "start",
        "start_ref",
        "symbol",
        "type",
    )

    def __init__(self, rule: str, symbol: str | None, start: int, ref: str | None) -> None:
        self.rule = rule
        self.symbol = symbol
        self.type: str | None = None
        self.start = start
        self.last = start
        self.end: int | None = None
        self.n = 0
        self.severity = -1
        self.codes: set = set()
        self.obs_min: float | None = None
        self.obs_max: float | None = None
        self.limit: Any = None
        self.start_ref = ref
        self.at_first = False  # began at the first snapshot of its summary (merge joins it)

    def absorb(self, info: list) -> None:
        """Fold one snapshot's violations of this key: [sev, codes, min, max, limit, type]."""
        self.n += 1
        if info[0] > self.severity:
            self.severity = info[0]
        self.codes |= info[1]
        if info[2] is not None:
            if self.obs_min is None or info[2] < self.obs_min:
                self.obs_min = info[2]
            if self.obs_max is None or info[3] > self.obs_max:
                self.obs_max = info[3]
        if info[4] is not None:
            self.limit = info[4]
        if self.type is None:
            self.type = info[5]

    def join(self, later: Episode) -> None:
        """Continue this (open) episode with ``later``, which began right after it."""
        self.n += later.n
        self.last = later.last
        self.end = later.end
        if later.severity > self.severity:
            self.severity = later.severity
        self.codes |= later.codes
        if later.obs_min is not None:
            if self.obs_min is None or later.obs_min < self.obs_min:
                self.obs_min = later.obs_min
            if self.obs_max is None or later.obs_max > self.obs_max:  # type: ignore[operator]
                self.obs_max = later.obs_max
        if later.limit is not None:
            self.limit = later.limit
        if self.type is None:
            self.type = later.type

    def sort_key(self) -> tuple:
        return (
            self.start,
            self.rule,
            self.symbol or "",
            self.end if self.end is not None else 2**62,
            self.last,
            self.n,
        )

    def to_dict(self) -> dict:
        stop = self.end if self.end is not None else self.last
        return {
            "rule": self.rule,
            "type": self.type,
            "symbol": self.symbol,
            "severity": SEVERITIES[self.severity] if self.severity >= 0 else None,
            "codes": sorted(self.codes),
            "start": iso_ms(self.start),
            "end": iso_ms(self.end),
            "lastSeen": iso_ms(self.last),
            "ongoing": self.end is None,
            "snapshots": self.n,
            "durationS": (stop - self.start) / 1000
            if self.start != NO_TS and stop != NO_TS
            else None,
            "observedMin": self.obs_min,
            "observedMax": self.obs_max,
            "limit": self.limit,
            "startRef": self.start_ref,
        }
