"""Remove secrets from anything that is about to be logged.

``redact(obj)`` replaces the values of secret-looking keys with ``"**REDACTED**"``;
``redact_processor`` is the same as a structlog processor. The audit log
(:mod:`riskguard.decisionlog.log`) runs it before hashing, so a secret never reaches the file
and the hash covers the redacted form.

A key is secret when, lower-cased with ``_``, ``-`` and spaces removed, it is one of
``apikey``, ``secret``, ``password``, ``passphrase``, ``token``, ``privatekey``,
``twofa`` (ccxt's credential names, ``apiKey``/``api_key``/``API-KEY`` alike), or ends
with one of ``apikey``, ``secret``, ``secretkey``, ``password``, ``passphrase``,
``token``, ``privatekey`` (``apiSecret``, ``accessToken``, ``walletPrivateKey``…).
``uid``, ``login`` and ``walletAddress`` are identifiers, not secrets, and stay.
Keys are matched at any depth, inside dicts nested in lists and tuples too. A ``None``
value is kept (it says there is no secret, and reveals nothing).

Speed: the common record has no secret at all, so the first pass only looks (each
distinct key's verdict is cached) and returns ``obj`` itself, with no copy. Only when
a secret is found is a copy made; then every dict, list and tuple in the copy is new,
so changing the result never changes the input.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_processor"]

REDACTED = "**REDACTED**"

_EXACT = frozenset({"apikey", "secret", "password", "passphrase", "token", "privatekey", "twofa"})
_SUFFIXES = ("apikey", "secret", "secretkey", "password", "passphrase", "token", "privatekey")

# Keys already judged. Logged records use a small fixed vocabulary, so these stay small;
# bounded anyway, in case a caller logs dicts keyed by arbitrary data.
_SAFE: set[Any] = set()  # keys known not to be secret (checked in C with set.issuperset)
_SECRET: set[Any] = set()
_CACHE_MAX = 4096
_SCALARS = frozenset({str, int, float, bool, type(None)})


def is_secret_key(key: Any) -> bool:
    """Whether a dict key names a secret (see the module docstring for the rule)."""
    if key in _SAFE:
        return False
    if key in _SECRET:
        return True
    if isinstance(key, str):
        k = key.lower().replace("_", "").replace("-", "").replace(" ", "")
        v = k in _EXACT or k.endswith(_SUFFIXES)
    else:
        v = False
    if len(_SAFE) + len(_SECRET) < _CACHE_MAX:
        (_SECRET if v else _SAFE).add(key)
    return v


def _has_secret(obj: Any) -> bool:
    """Look for a secret without allocating (the fast path)."""
    if isinstance(obj, dict):
        if not _SAFE.issuperset(obj):
            for k in obj:
                if k not in _SAFE and is_secret_key(k) and obj[k] is not None:
                    return True
        for v in obj.values():
            if type(v) in _SCALARS:
                continue
            if isinstance(v, (dict, list, tuple)) and v and _has_secret(v):
                return True
        return False
    if isinstance(obj, (list, tuple)):
        for v in obj:
            if type(v) in _SCALARS:
                continue
            if isinstance(v, (dict, list, tuple)) and v and _has_secret(v):
                return True
    return False


def _copy_redacted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: (REDACTED if v is not None and is_secret_key(k) else _copy_redacted(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_copy_redacted(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_copy_redacted(v) for v in obj)
    return obj


def redact(obj: Any) -> Any:
    """``obj`` with every secret value replaced by ``"**REDACTED**"``.

    Returns ``obj`` itself when it holds no secret (nothing is copied); otherwise a deep
    copy (new dicts, lists and tuples throughout; scalars are shared, being immutable).
    """
    if isinstance(obj, (dict, list, tuple)) and _has_secret(obj):
        return _copy_redacted(obj)
    return obj


def redact_processor(logger: Any, method: str, event_dict: dict[Any, Any]) -> dict[Any, Any]:
    """structlog processor: ``event_dict`` with secrets redacted at any depth.

    Put it before the renderer (and, in the audit log, before hashing)."""
    if _has_secret(event_dict):
        copied: dict[Any, Any] = _copy_redacted(event_dict)
        return copied
    return event_dict
