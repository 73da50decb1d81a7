"""The service's JSON encoder: ``orjson`` where its bytes are the standard library's, else
``json``.

Every response body is the bytes of ``json.dumps(obj, separators=(",", ":"),
ensure_ascii=False, allow_nan=False).encode()``: compact, UTF-8, no NaN. ``orjson`` (the
``[serve]`` extra) writes the same bytes about fifteen times faster for the documents the
service sends, but not for every document; where it would differ, :func:`dumps` uses
``json`` itself, so the bytes (or the exception) are always the standard library's:

- floats of magnitude below 1e-4: ``repr`` writes ``1e-05`` and ``1e-07``, orjson
  ``0.00001`` and ``1e-7`` — the output is searched for those forms;
- NaN and ±Infinity: ``json`` refuses them (``allow_nan=False``), orjson writes ``null`` —
  and any value orjson turns into something else (a tuple into a list, a dataclass or a
  datetime, which ``json`` refuses, into an object or a string): the output is read back and
  must equal the input;
- what orjson refuses — integers beyond 64 bits, keys that are not strings, lone
  surrogates, nesting deeper than 254 — is encoded by ``json``.

``tests/test_serve_encode.py`` checks the equality on generated decision-like documents.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson as _orjson
except ModuleNotFoundError:  # the [serve] extra brings it; without it, json alone
    _orjson = None  # type: ignore[assignment]

_DIGITS = frozenset(b"0123456789")


def _orjson_only_form(out: bytes) -> bool:
    """Whether ``out`` may hold a float written as orjson writes it and ``repr`` does not:
    a number starting ``0.0000`` (repr: ``4.1e-05``) or a one-digit exponent (``1e-7``;
    repr: ``1e-07``). The same text inside a string is a false alarm (json is used)."""
    digits = _DIGITS
    i = out.find(b"0.0000")
    while i >= 0:
        if i == 0 or out[i - 1] not in digits:
            return True
        i = out.find(b"0.0000", i + 6)
    for mark in (b"e-", b"e+"):
        i = out.find(mark)
        while i >= 0:
            j = i + 2
            if (
                j < len(out)
                and out[j] in digits
                and (j + 1 == len(out) or out[j + 1] not in digits)
            ):
                return True
            i = out.find(mark, j)
    return False


def fast_dumps(obj: Any) -> bytes | None:
    """orjson's bytes for ``obj`` when they are exactly :func:`std_dumps`'s, else None."""
    if _orjson is None:
        return None
    try:
        out = _orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys, surrogates, depth
        return None
    if _orjson_only_form(out):
        return None
    try:
        if _orjson.loads(out) != obj:  # NaN written as null, a tuple as a list, ...
            return None
    except _orjson.JSONDecodeError:  # pragma: no cover - orjson reads what it writes
        return None
    return out


def std_dumps(obj: Any) -> bytes:
    """The reference: the standard library's compact UTF-8 JSON, NaN refused."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def dumps(obj: Any) -> bytes:
    """``std_dumps(obj)``'s bytes (or its exception), by orjson when that is the same."""
    out = fast_dumps(obj)
    return out if out is not None else std_dumps(obj)
