"""The one-pass reading of a position or market whose fields are plain JSON types in range.

The common case of an audit's millions of positions: each field is type-checked and
range-checked inline and the frozen object filled by the slot constructor. Anything else
(a missing field, a string number, a value out of range) returns ``None`` and takes the full
path in :mod:`riskguard.model.snapshot`, which names every problem. A property test pins the
two paths together (``tests/test_snapshot.py``).
"""

from __future__ import annotations

import math
from typing import Any

from riskguard.model.slots import positional_constructor
from riskguard.model.types import _MARKET_KEYS, _POSITION_KEYS, Market, Position

_PLAIN = frozenset({str, bool, type(None)})


def _json_ok(v: Any, depth: int = 0) -> bool:
    """Fast pre-check for :func:`_check_json` (no paths built); False means "look closer"."""
    t = type(v)
    if t in _PLAIN:
        return True
    if t is float:
        return math.isfinite(v)
    if t is int:
        return bool(v.bit_length() <= 13_000)
    if depth >= 64:
        return False
    if t is dict:
        for k, x in v.items():
            if type(k) is not str or (type(x) not in _PLAIN and not _json_ok(x, depth + 1)):
                return False
        return True
    if t is list or t is tuple:
        return all(type(x) in _PLAIN or _json_ok(x, depth + 1) for x in v)
    return False


_INF = math.inf
_BIG = 1e300  # ints beyond this take the full path (its float conversion may overflow)


def _gt0(v: Any) -> float | None:
    """A finite number > 0 of a JSON number type, as a float; None for anything else."""
    t = type(v)
    if t is float:
        return v if 0.0 < v < _INF else None
    if t is int and 0 < v < _BIG:
        return float(v)
    return None


def _ge0(v: Any) -> float | None:
    t = type(v)
    if t is float:
        return v if 0.0 <= v < _INF else None
    if t is int and 0 <= v < _BIG:
        return float(v)
    return None


def _any(v: Any) -> float | None:
    t = type(v)
    if t is float:
        return v if -_INF < v < _INF else None
    if t is int and -_BIG < v < _BIG:
        return float(v)
    return None


def _plain_extra(d: dict[Any, Any], known: frozenset[Any]) -> dict[Any, Any] | None:
    """The fields of ``d`` not in ``known`` ({} when none), or None when they are not
    plain JSON data (the full path then says why)."""
    if d.keys() <= known:
        return {}
    extra = {k: v for k, v in d.items() if k not in known}
    return extra if _json_ok(extra) else None


def _position_fast(d: Any) -> Position | None:
    """:func:`_position` for the common case, in one pass: every field present has its
    plain JSON type and is in range. None for anything else; the full path then builds
    the position or says what is wrong (a property test pins the two together)."""
    if type(d) is not dict:
        return None
    g = d.get
    symbol, side, mode = g("symbol"), g("side"), g("marginMode", "cross")
    if type(symbol) is not str or (side != "long" and side != "short"):
        return None
    if mode != "cross" and mode != "isolated":
        return None
    contracts, entry = _gt0(g("contracts")), _gt0(g("entryPrice"))
    if contracts is None or entry is None:
        return None
    cs, mark, lev, iso = g("contractSize"), g("markPrice"), g("leverage"), g("isolatedMargin")
    sl, tp, lp = g("stopLossPrice"), g("takeProfitPrice"), g("liquidationPrice")
    inverse = g("inverse")
    if cs is not None and (cs := _gt0(cs)) is None:
        return None
    if mark is not None and (mark := _gt0(mark)) is None:
        return None
    if lev is not None and (lev := _gt0(lev)) is None:
        return None
    if iso is not None:
        if (iso := _ge0(iso)) is None:
            return None
    elif mode == "isolated":
        return None
    if sl is not None and (sl := _gt0(sl)) is None:
        return None
    if tp is not None and (tp := _gt0(tp)) is None:
        return None
    if lp is not None and (lp := _any(lp)) is None:
        return None
    if inverse is None:
        inverse = False
    elif type(inverse) is not bool:
        return None
    extra = _plain_extra(d, _POSITION_KEYS)
    if extra is None:
        return None
    return _new_position(
        symbol,
        side,
        contracts,
        entry,
        mark,
        lev,
        mode,
        1.0 if cs is None else cs,
        iso,
        inverse,
        sl,
        tp,
        lp,
        extra,
    )


def _market_fast(d: Any) -> Market | None:
    """:func:`_market` for a market without candles whose numbers are plain and in range."""
    if type(d) is not dict:
        return None
    g = d.get
    if g("candles") is not None:
        return None
    mark, atr, cs = g("markPrice"), g("atrPct"), g("contractSize")
    if mark is not None and (mark := _gt0(mark)) is None:
        return None
    if atr is not None and (atr := _ge0(atr)) is None:
        return None
    if cs is not None and (cs := _gt0(cs)) is None:
        return None
    extra = _plain_extra(d, _MARKET_KEYS)
    if extra is None:
        return None
    return _new_market(mark, atr, (), cs, extra)


_new_position = positional_constructor(Position)
_new_market = positional_constructor(Market)
