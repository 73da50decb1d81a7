"""The service's JSON encoder: ``orjson`` where its bytes are the standard library's, else
``json``.

Every response body is the bytes of ``json.dumps(obj, separators=(",", ":"),
ensure_ascii=False, allow_nan=False).encode()``: compact, UTF-8, no NaN. ``orjson`` (the
``[serve]`` extra) writes the same bytes several times faster for the documents the service
sends, but not for every document; where it could differ, :func:`dumps` uses ``json``
itself, so the bytes (or the exception) are always the standard library's. orjson's bytes
are used only when both hold:

- :func:`riskguard.faces.serve.plainjson.same_text` vouches for the document: every object
  in it is exactly a ``dict`` with string keys, ``list``, ``tuple``, ``str``, ``int``,
  ``bool``, ``None`` or a finite ``float`` outside the magnitudes where orjson's float
  text is not ``repr``'s. orjson also writes dataclasses, datetimes, enums, UUIDs,
  ``orjson.Fragment`` and subclasses of ``str``, ``int``, ``dict`` and ``list``, each in
  its own way, and NaN as ``null``; ``json`` refuses most of them and writes the others by
  its own rules. For the exact built-in types both write the same text (a tuple is an
  array in both);
- orjson accepts the document — it refuses integers beyond 64 bits, lone surrogates and
  nesting deeper than 254, which ``json`` encodes (or refuses differently).

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
from typing import Any

from riskguard.faces.serve.plainjson import same_text

try:
    import orjson as _orjson
except ModuleNotFoundError:  # the [serve] extra brings it; without it, json alone
    _orjson = None  # type: ignore[assignment, unused-ignore]  # orjson absent: the build env


def fast_dumps(obj: Any, sort_keys: bool = False) -> bytes | None:
    """orjson's bytes for ``obj`` when they are exactly :func:`std_dumps`'s, else None."""
    if _orjson is None or not same_text(obj):
        return None
    try:
        return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS) if sort_keys else _orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: big ints, lone surrogates, depth
        return None


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
