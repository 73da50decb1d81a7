"""Leverage-tier tables that archived snapshots repeat, read once per process.

An archive holds one snapshot per account per interval, and every one carries the
account's leverage-tier tables: more than half of each JSON line, the same text each time.
Parsing, validating and hashing those tables once per distinct set is the largest saving
an audit can make; the rest of each record is read as usual. Three memos, all exact (the
Snapshot, the errors and the digest are those of the plain path; tests pin them):

- **by text** (:func:`read_snapshot`): a line whose top-level ``"leverageTiers"`` value
  is, byte for byte, one seen before is parsed with ``0`` in its place and given the
  remembered tables. The splice is sound only when that token is the one top-level key:
  it must occur once, and no escape sequence may occur outside the value (an escaped
  spelling of the key, or of a quote, could otherwise hide another);
- **by content** (:func:`build_snapshot_memo`): a table equal in values *and* JSON types
  (``1``, ``1.0`` and ``true`` are equal in Python, not in validation) to one seen before
  is not validated again: for records that did not come in as text (dicts, YAML);
- **canonical text** (:func:`snapshot_digest`): the canonical JSON of a remembered set, so
  the snapshot digest re-serialises only the rest of the document.

The memos are per process and bounded; remembered dicts are shared between the records
that use them and are never mutated.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from itertools import chain
from typing import Any

from riskguard.engine.decision import canonical_json, digest
from riskguard.errors import RiskguardError
from riskguard.model.snapshot import Snapshot, build_snapshot
from riskguard.model.yamlio import parse_json_fast

_TOKEN = '"leverageTiers"'
_COLON = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")  # JSON whitespace around the colon
_PREFIX = 64  # characters of a table set's text that index it
_MAX_SETS = 256  # distinct table sets remembered by text (one per account is typical)
_MAX_RESETS = 8  # an input whose tables never repeat stops being learned from
_MAX_TABLES = 4096  # distinct single tables remembered by content

_raw_decode = json.JSONDecoder().raw_decode
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


@dataclass(frozen=True, slots=True)
class _TierSet:
    text: str  # the value's exact text in the line
    raw: dict  # the parsed value, shared by every record that repeats it
    tiers: dict  # symbol -> tuple[LeverageTier, ...], as build_snapshot makes them
    canon: str  # canonical_json(raw)


class _Memo:
    __slots__ = ("by_id", "by_prefix", "canon", "resets", "tables")

    def __init__(self) -> None:
        self.by_prefix: dict[str, list[_TierSet]] = {}
        self.by_id: dict[int, _TierSet] = {}  # id(raw) -> set; the set keeps raw alive
        self.tables: dict[tuple, tuple] = {}
        self.canon: dict[tuple, str] = {}  # table key -> canonical JSON of the table
        self.resets = 0


_MEMO = _Memo()


def clear() -> None:
    """Forget every remembered table (tests; a long-lived process that wants memory back)."""
    global _MEMO
    _MEMO = _Memo()


# --------------------------------------------------------------------------- by text


def read_snapshot(text: str, file: str | None = None) -> tuple[dict, Snapshot]:
    """``parse_json_fast(text, file)`` and build its Snapshot, with repeated tier tables
    read once. Returns the document (the snapshot's ``source``) and the Snapshot; raises
    what the plain path raises."""
    memo = _MEMO
    j = _value_start(text)
    if j and memo.by_prefix:
        for ts in memo.by_prefix.get(text[j : j + _PREFIX], ()):
            if text.startswith(ts.text, j):
                hit = _spliced(text, j, j + len(ts.text), ts, file)
                if hit is not None:
                    return hit
                break
    data = parse_json_fast(text, file)
    snap = build_snapshot_memo(data)
    if j and memo.resets < _MAX_RESETS:
        _learn(memo, text, j, data, snap)
    return data, snap


def _value_start(text: str) -> int:
    """Where the value of the first ``"leverageTiers"`` key token starts (0: none)."""
    i = text.find(_TOKEN)
    if i <= 0:
        return 0
    m = _COLON.match(text, i + len(_TOKEN))
    return m.end() if m is not None else 0


def _sole_key(text: str, j: int, k: int) -> bool:
    """Whether the value at ``text[j:k]`` can only be the top-level ``"leverageTiers"``:
    the token occurs once and no escape sequence occurs outside the value (an escaped
    spelling of the key, or of a quote, could otherwise hide another)."""
    return text.count(_TOKEN) == 1 and text.find("\\", 0, j) == -1 and text.find("\\", k) == -1


def _spliced(text: str, j: int, k: int, ts: _TierSet, file: str | None):
    if not _sole_key(text, j, k):
        return None
    try:
        data = parse_json_fast(text[:j] + "0" + text[k:], file)
    except RiskguardError:
        return None  # the plain path reports it, located in the original text
    if type(data) is not dict or data.get("leverageTiers") != 0:
        return None
    snap = build_snapshot(data, leverage_tiers=ts.tiers)
    data["leverageTiers"] = ts.raw  # same place in the key order as in the text
    return data, snap


def _learn(memo: _Memo, text: str, j: int, data: dict, snap: Snapshot) -> None:
    raw = data.get("leverageTiers") if type(data) is dict else None
    if type(raw) is not dict or not raw or text[j : j + 1] != "{":
        return
    try:
        _, k = _raw_decode(text, j)
    except ValueError:
        return
    if not _sole_key(text, j, k):
        return
    if len(snap.leverageTiers) != len(raw):
        return
    if len(memo.by_id) >= _MAX_SETS:
        memo.by_prefix.clear()
        memo.by_id.clear()
        memo.resets += 1
    seg = text[j:k]
    ts = _TierSet(seg, raw, snap.leverageTiers, canonical_json(raw))
    memo.by_prefix.setdefault(seg[:_PREFIX], []).append(ts)
    memo.by_id[id(raw)] = ts


# --------------------------------------------------------------------------- digest


def snapshot_digest(data: Any) -> str:
    """``decision.digest(data)``, re-serialising only what is not a remembered tier set.

    ``json.dumps(sort_keys=True)`` writes an object as its sorted ``key:value`` pairs, so
    the top level is composed here from the canonical text of each value.
    """
    raw = data.get("leverageTiers") if type(data) is dict else None
    if raw is None:
        return digest(data)
    ts = _MEMO.by_id.get(id(raw))
    canon: str | None
    if ts is not None and ts.raw is raw:
        canon = ts.canon
    else:
        canon = _tiers_canon(raw)  # a dict read whole (a bot's, a stream's): table by table
        if canon is None:
            return digest(data)
    # The keys sorting before and after "leverageTiers", each half encoded in one call.
    lo: dict[str, Any] = {}
    hi: dict[str, Any] = {}
    for k, v in data.items():
        if v is not raw:
            (lo if k < "leverageTiers" else hi)[k] = v
    text = '"leverageTiers":' + canon
    if lo:
        text = _encode(lo)[:-1] + "," + text
    else:
        text = "{" + text
    text = text + "," + _encode(hi)[1:] if hi else text + "}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _tiers_canon(raw: Any) -> str | None:
    """``canonical_json(raw)`` for a ``leverageTiers`` object, each table's text remembered
    by its content key (None: not a plain object of tables; the caller encodes it whole).

    Two tables with equal keys have equal canonical text, with one exception: ``0.0`` and
    ``-0.0`` are equal floats with different text, so a table holding ``-0.0`` is never
    looked up or remembered.
    """
    if type(raw) is not dict or not raw or not all(type(k) is str for k in raw):
        return None
    memo = _MEMO.canon
    parts = []
    for sym in sorted(raw):
        table = raw[sym]
        key = _tier_key(table)
        if key is None or _negative_zero(table):
            return None
        text = memo.get(key)
        if text is None:
            text = canonical_json(table)
            if len(memo) >= _MAX_TABLES:
                memo.clear()
            memo[key] = text
        parts.append(_encode(sym) + ":" + text)
    return "{" + ",".join(parts) + "}"


def _negative_zero(table: list) -> bool:
    for d in table:
        for v in d.values():
            if v == 0 and type(v) is float and math.copysign(1.0, v) < 0:
                return True
    return False


# --------------------------------------------------------------------------- by content


def _tier_key(raw: Any) -> tuple | None:
    """A hashable, exact key for a raw tier list; value *types* are part of it. None when
    the table holds nested values (``info``): such tables are not remembered."""
    if type(raw) is not list:
        return None
    try:  # C-level iteration only: this runs for every table of every snapshot
        key = (
            tuple(map(tuple, map(_items, raw))),
            tuple(map(type, _flat(map(_values, raw)))),
        )
        hash(key)
    except TypeError:  # not a list of flat objects
        return None
    return key


_items, _values, _flat = dict.items, dict.values, chain.from_iterable


def build_snapshot_memo(data: Any) -> Snapshot:
    """``build_snapshot(data)``, with each distinct tier table validated once per process.

    When every table of the snapshot was seen before, the rest of the document is built
    (and validated) as usual and the remembered tables are put in; otherwise the whole
    document is built and its tables remembered. Same Snapshot, same errors.
    """
    raw = data.get("leverageTiers") if type(data) is dict else None
    if type(raw) is not dict or not raw:
        return build_snapshot(data)
    ts = _MEMO.by_id.get(id(raw))
    if ts is not None and ts.raw is raw:  # a set read by text: no key to compute
        parsed = ts.tiers
    else:
        cache = _MEMO.tables
        parsed = {}
        for sym, table in raw.items():
            key = _tier_key(table)
            hit = cache.get(key) if key is not None else None
            if hit is None:
                return _build_and_remember(data, raw, cache)
            parsed[sym] = hit
    return build_snapshot(data, leverage_tiers=parsed)


def _build_and_remember(data: dict, raw: dict, cache: dict[tuple, tuple]) -> Snapshot:
    snap = build_snapshot(data)
    if len(cache) >= _MAX_TABLES:
        cache.clear()
    for sym, table in raw.items():
        tiers = snap.leverageTiers.get(sym)
        key = _tier_key(table) if tiers is not None else None
        if key is not None and tiers is not None:
            cache[key] = tiers
    return snap
