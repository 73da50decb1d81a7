"""The service's JSON encoder: ``orjson`` where its bytes are the standard library's, else
``json``.

Every response body is the bytes of ``json.dumps(obj, separators=(",", ":"),
ensure_ascii=False, allow_nan=False).encode()``: compact, UTF-8, no NaN. ``orjson`` (the
``[serve]`` extra) writes the same bytes several times faster for the documents the service
sends, but not for every document; where it could differ, :func:`dumps` uses ``json``
itself, so the bytes (or the exception) are always the standard library's. orjson's bytes
are used only when all of these hold:

- orjson accepts the document — it refuses integers beyond 64 bits, keys that are not
  strings, lone surrogates and nesting deeper than 254, which ``json`` encodes (or refuses
  differently);
- every object in it is exactly a ``dict``, ``list``, ``tuple``, ``str``, ``int``,
  ``float``, ``bool`` or ``None`` (with bytes-like objects, sets, complex numbers and code
  objects, which orjson refuses anyway) — checked by ``marshal.dumps``, which accepts only
  those built-in types and no subclass of them. orjson also writes dataclasses,
  datetimes, enums, UUIDs, ``orjson.Fragment`` and subclasses of ``str``, ``int``,
  ``dict`` and ``list``, each in its own way; ``json`` refuses most of them and writes the
  others by its own rules. For the exact built-in types both write the same text (a
  tuple is an array in both);
- the output has no ``null`` — NaN and ±Infinity are written ``null`` by orjson and
  refused by ``json`` (``allow_nan=False``). Where ``null`` does occur, the output is read
  back and must equal the input (a NaN read back as ``None`` does not);
- no float is written as orjson writes it and ``repr`` does not: magnitudes below 1e-4,
  where ``repr`` writes ``1e-05`` and ``1e-07`` and orjson ``0.00001`` and ``1e-7`` — the
  output is searched for a number starting ``0.0000`` and for a one-digit exponent (the
  same text inside a string is a false alarm: ``json`` is used).

The same holds with sorted keys (``sort_keys=True``; orjson's ``OPT_SORT_KEYS`` orders
keys by their UTF-8 bytes, which is code point order, Python's string order): that is
the canonical JSON decisions name a snapshot by, and :func:`digest` is
``riskguard.engine.decision.digest`` by these bytes.

``tests/test_serve_encode.py`` checks the equality (bytes, or the exception's type) on
generated documents — decision-like ones and ones holding the types above — with and
without sorted keys, on real decisions, and :func:`digest` against the engine's.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import re
from typing import Any

try:
    import orjson as _orjson
except ModuleNotFoundError:  # the [serve] extra brings it; without it, json alone
    _orjson = None  # type: ignore[assignment]

_DIGITS = frozenset(b"0123456789")
#: an exponent of exactly one digit (orjson: ``1e-7``; repr: ``1e-07``)
_SHORT_EXPONENT = re.compile(rb"e[-+][0-9](?![0-9])")


def _orjson_only_form(out: bytes) -> bool:
    """Whether ``out`` may hold a float written as orjson writes it and ``repr`` does not:
    a number starting ``0.0000`` (repr: ``4.1e-05``) or a one-digit exponent (``1e-7``;
    repr: ``1e-07``). The same text inside a string is a false alarm (json is used)."""
    i = out.find(b"0.0000")
    while i >= 0:
        if i == 0 or out[i - 1] not in _DIGITS:
            return True
        i = out.find(b"0.0000", i + 6)
    return _SHORT_EXPONENT.search(out) is not None


def fast_dumps(obj: Any, sort_keys: bool = False) -> bytes | None:
    """orjson's bytes for ``obj`` when they are exactly :func:`std_dumps`'s, else None."""
    if _orjson is None:
        return None
    try:
        out = _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS) if sort_keys else _orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys, surrogates, depth
        return None
    try:
        marshal.dumps(obj)  # exact built-in types only: no enum, UUID, dataclass, subclass
    except ValueError:  # "unmarshallable object", or nested too deep
        return None
    if _orjson_only_form(out):
        return None
    if b"null" in out:  # None, or NaN/Infinity written as null: read back and compare
        try:
            if _orjson.loads(out) != obj:
                return None
        except _orjson.JSONDecodeError:  # pragma: no cover - orjson reads what it writes
            return None
    return out


def std_dumps(obj: Any, sort_keys: bool = False) -> bytes:
    """The reference: the standard library's compact UTF-8 JSON, NaN refused."""
    return json.dumps(
        obj, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def dumps(obj: Any, sort_keys: bool = False) -> bytes:
    """``std_dumps(obj)``'s bytes (or its exception), by orjson when that is the same."""
    out = fast_dumps(obj, sort_keys)
    return out if out is not None else std_dumps(obj, sort_keys)


def digest(obj: Any) -> str:
    """``riskguard.engine.decision.digest(obj)``: SHA-256 of the canonical JSON (sorted keys,
    compact, UTF-8, NaN refused), the canonical bytes by orjson where they are the same."""
    return "sha256:" + hashlib.sha256(dumps(obj, sort_keys=True)).hexdigest()
