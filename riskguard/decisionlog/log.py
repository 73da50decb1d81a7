"""Tamper-evident audit log: hash-chained JSON Lines written through structlog.

    with AuditLog("audit.jsonl", key=None, fsync=False) as log:
        written = log.append("decision", decision.to_dict(metrics=False))
    report = verify_log("audit.jsonl", expect_head=written["hash"])

One record per line, keys sorted::

    {<caller's fields>, "event": "decision", "prev": "sha256:…", "seq": 7,
     "ts": "2026-11-24T12:00:00.123456Z", "hash": "sha256:…"}

``seq`` counts from 1; ``prev`` is the previous record's ``hash`` (``GENESIS``, that is
``"sha256:"`` + 64 zeros, for the first); ``hash`` is SHA-256 (or, with a key,
HMAC-SHA256, prefix ``hmac-sha256:``) over the canonical JSON of the record without
``hash``: ``json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` in UTF-8 (floats as Python's ``repr``). The line
is exactly that canonical text with ``,"hash":"…"`` spliced in before the closing brace,
so the hashed bytes are the line's own bytes up to ``,"hash":`` plus ``}``; the verifier
hashes those bytes, so any change to the line (even whitespace or a duplicated key) is
seen. See ``docs/audit-log.md``.

Rendering is a structlog processor chain of the logger's own (``redact_processor`` →
add ``seq``/``ts``/``prev`` → render canonical JSON and hash), built with
``structlog.wrap_logger`` on a private sink; the global structlog configuration is
neither used nor touched.

Concurrency: a thread lock, then ``fcntl.flock`` on the file for the whole
read-tail/append step, so writers in several processes extend one chain and never fork
it. The writer caches the file size, last ``seq`` and last ``hash``; when the size under
the lock is the one it left, nobody else wrote and the tail is not read again. Each line
is one ``os.write`` on an ``O_APPEND`` descriptor (unbuffered: nothing to flush);
``fsync=True`` adds ``fdatasync``. A process forked from a writer reopens the file on its
first append (``flock`` does not separate a shared open file).

Crash safety: a torn last line (no newline: a crash or a full disk mid-write) is cut off
by the next append, which then writes a ``repair`` record saying how many bytes were
dropped; complete records are never removed. A failed write (``ENOSPC``, ``EIO``…) is
undone (the file is truncated back to where it was) and ``append`` raises
``AuditLogError``: a record is in the log if and only if ``append`` returned.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import structlog

from riskguard.errors import RiskguardError
from riskguard.model.redact import redact_processor

try:  # POSIX; elsewhere only threads of one process are serialized
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditLogError",
    "VerifyReport",
    "canonical_json",
    "verify_log",
]

GENESIS = "sha256:" + "0" * 64
SHA_PREFIX = "sha256:"
HMAC_PREFIX = "hmac-sha256:"
RESERVED = frozenset({"seq", "ts", "event", "prev", "hash"})
_HASH_RE = re.compile(r"(?:sha256|hmac-sha256):[0-9a-f]{64}\Z")
_HASH_KEY = b',"hash":"'


class AuditLogError(RiskguardError):
    """The audit log cannot be written (full disk, I/O error, a tail that cannot be trusted).

    When ``append`` raises it, the record is not in the log and the file is as it was."""

    def __init__(self, message: str, *, file: str | None = None, errno: int | None = None):
        super().__init__(message, file=file)
        self.errno = errno


# ---------------------------------------------------------------------- canonical JSON


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    to_dict = getattr(o, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    raise TypeError(f"audit record value of type {type(o).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_json_default,
)


def canonical_json(obj: Any) -> str:
    """The canonical form hashed by the audit log (sorted keys, no spaces, UTF-8 text,
    floats as ``repr``, NaN/Infinity rejected)."""
    return _ENCODER.encode(obj)


def _hasher(key: bytes | None) -> Callable[[bytes], str]:
    if key is None:
        sha256 = hashlib.sha256

        def h(data: bytes) -> str:
            return SHA_PREFIX + sha256(data).hexdigest()

    else:
        digest = hmac.digest

        def h(data: bytes) -> str:
            return HMAC_PREFIX + digest(key, data, "sha256").hex()

    return h


def _check_key(key: Any) -> bytes | None:
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError("audit log key must be bytes")
    key = bytes(key)
    if not key:
        raise ValueError("audit log key must not be empty")
    return key


class _Bad(Exception):
    """A line that is not a well-formed record (kind, human text, seq if known)."""

    def __init__(self, kind: str, text: str, seq: int | None = None) -> None:
        super().__init__(text)
        self.kind, self.text, self.seq = kind, text, seq


def _parse_record(raw: bytes) -> tuple[dict, bytes, str]:
    """``raw`` (one complete line, with its newline) -> (record, hashed bytes, hash)."""
    try:
        rec = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        what = "blank line" if not raw.strip() else f"not valid JSON ({exc})"
        raise _Bad("bad-json", f"bad JSON: {what}") from None
    if not isinstance(rec, dict):
        raise _Bad("missing-fields", "missing fields: the line is not a JSON object")
    seq = rec.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        seq = None
    missing = [f for f in ("seq", "ts", "event", "prev", "hash") if f not in rec]
    if missing:
        raise _Bad("missing-fields", "missing fields: " + ", ".join(missing), seq)
    if seq is None:
        raise _Bad("missing-fields", "missing fields: seq is not a positive integer")
    for f in ("ts", "event"):
        if not isinstance(rec[f], str):
            raise _Bad("missing-fields", f"missing fields: {f} is not a string", seq)
    for f in ("prev", "hash"):
        v = rec[f]
        if not isinstance(v, str) or not _HASH_RE.match(v):
            raise _Bad(
                "missing-fields",
                f"missing fields: {f} is not a hash ('sha256:' or 'hmac-sha256:' + 64 hex digits)",
                seq,
            )
    h = rec["hash"]
    suffix = _HASH_KEY + h.encode() + b'"}\n'
    if not raw.endswith(suffix):
        raise _Bad(
            "hash-mismatch",
            "hash mismatch: the line is not as the writer wrote it ('hash' must be the last "
            "member, before the newline): it was edited",
            seq,
        )
    return rec, raw[: -len(suffix)] + b"}", h


# ---------------------------------------------------------------------- writer


_LIVE: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for log in list(_LIVE):
        log._lock = threading.Lock()
        log._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _BoundLogger(structlog.BoundLoggerBase):
    """A structlog bound logger with one method: the record goes in as a dict (not as
    keyword arguments, so any field name is allowed) through the processor chain."""

    def write(self, event: str, record: Mapping[str, Any]) -> None:
        args, kw = self._process_event("msg", event, record)  # type: ignore[arg-type]
        self._logger.msg(*args, **kw)


class _Sink:
    """The structlog "logger": writes one rendered line to the (locked) file."""

    __slots__ = ("_log",)

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def msg(self, line: bytes) -> None:
        self._log._write_line(line)


class AuditLog:
    """Append-only, hash-chained JSON Lines audit log (see the module docstring).

    Thread- and process-safe. ``append`` returns the record as written (with ``seq``,
    ``ts``, ``event``, ``prev`` and ``hash``; secrets redacted) or raises
    ``AuditLogError`` and writes nothing.
    """

    def __init__(self, path: str | os.PathLike, *, key: bytes | None = None, fsync: bool = False):
        self.path = os.fspath(path)
        self._key = _check_key(key)
        self._hash = _hasher(self._key)
        self._prefix = HMAC_PREFIX if self._key else SHA_PREFIX
        self._fsync = bool(fsync)
        self._lock = threading.Lock()
        self._forked = False
        self._fd = -1
        # What this writer knows of the file (valid while the size is unchanged).
        self._size = -1  # -1: unknown, read the tail on the next append
        self._seq = 0
        self._head = GENESIS
        self._ts_sec = -1
        self._ts_prefix = ""
        self._last: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None
        self._fd = self._open()
        self._logger = structlog.wrap_logger(
            _Sink(self),
            processors=[redact_processor, self._add_chain_fields, self._render],  # type: ignore[list-item]
            wrapper_class=_BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=True,
        ).bind()
        _LIVE.add(self)

    # ------------------------------------------------------------------ public

    def append(self, event: str, record: Mapping[str, Any] | None = None) -> dict:
        """Write one record; return it as written. Raises ``AuditLogError`` (nothing
        written) when the file cannot be written or its tail cannot be trusted."""
        if not isinstance(event, str) or not event:
            raise ValueError("audit event name must be a non-empty string")
        if record is None:
            record = {}
        elif not RESERVED.isdisjoint(record):
            bad = ", ".join(sorted(RESERVED.intersection(record)))
            raise ValueError(f"audit record must not set the reserved field(s): {bad}")
        if self._forked:
            self._reopen_after_fork()
        with self._lock:
            fd = self._fd
            if fd < 0:
                raise AuditLogError("audit log is closed", file=self.path)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise self._err("cannot lock the file", exc) from exc
            try:
                if os.fstat(fd).st_size != self._size:
                    self._sync_tail(fd)
                return self._emit(event, record)
            except OSError as exc:  # reading the tail; writes raise AuditLogError themselves
                raise self._err("cannot read the end of the file", exc) from exc
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        _LIVE.discard(self)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __repr__(self) -> str:
        mode = "hmac-sha256" if self._key else "sha256"
        return f"AuditLog({self.path!r}, {mode}, seq={self._seq})"

    # ------------------------------------------------------------------ file

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        existed = os.path.exists(self.path)
        try:
            fd = os.open(self.path, flags, 0o640)
        except OSError as exc:
            raise AuditLogError(
                f"cannot open audit log: {exc.strerror}", file=self.path, errno=exc.errno
            ) from exc
        if self._fsync and not existed:  # make the new directory entry durable too
            try:
                dfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:
                pass
        return fd

    def _reopen_after_fork(self) -> None:
        # The inherited descriptor shares its open file (and flock) with the parent.
        with self._lock:
            if self._forked:
                if self._fd >= 0:
                    os.close(self._fd)
                    self._fd = self._open()
                self._size = -1
                self._forked = False

    def _err(self, what: str, exc: OSError) -> AuditLogError:
        return AuditLogError(
            f"cannot write audit log: {what}: {exc.strerror or exc} "
            f"(errno {exc.errno}); the record was not written and the log is unchanged",
            file=self.path,
            errno=exc.errno,
        )

    def _sync_tail(self, fd: int) -> None:
        """Learn seq/head from the file's last complete record (under the flock);
        cut off a torn last line and log the repair."""
        size = os.fstat(fd).st_size
        known_seq = self._seq if self._size >= 0 else 0
        nl = _rfind_newline(fd, size)
        complete = nl + 1  # bytes of complete lines
        torn = size - complete
        seq, head = 0, GENESIS
        if complete:
            start = _rfind_newline(fd, nl) + 1
            raw = os.pread(fd, complete - start, start)
            try:
                rec, body, h = _parse_record(raw)
            except _Bad as bad:
                raise AuditLogError(
                    f"cannot continue the audit chain: the last complete record (byte {start}) "
                    f"is damaged ({bad.text}); run 'riskguard verify-log {self.path}'",
                    file=self.path,
                ) from None
            if not h.startswith(self._prefix):
                have = "HMAC-SHA256" if h.startswith(HMAC_PREFIX) else "plain SHA-256"
                want = "an HMAC key" if self._key else "no key"
                raise AuditLogError(
                    f"cannot continue the audit chain: the log is {have}-chained but this "
                    f"writer has {want}; one log uses one mode throughout",
                    file=self.path,
                )
            if self._hash(body) != h:
                why = "the key is wrong, or it was edited" if self._key else "it was edited"
                raise AuditLogError(
                    f"cannot continue the audit chain: the last record (seq {rec['seq']}) does "
                    f"not match its hash ({why}); run 'riskguard verify-log {self.path}'",
                    file=self.path,
                )
            seq, head = rec["seq"], h
        if torn:
            dropped = os.pread(fd, torn, complete)
            try:
                os.ftruncate(fd, complete)
            except OSError as exc:
                raise self._err("cannot cut off a torn last line", exc) from exc
        self._size, self._seq, self._head = complete, seq, head
        if torn:
            self._emit(
                "repair",
                {
                    "reason": "torn last line (a writer crashed or the disk filled mid-write); "
                    "the partial bytes were removed, no complete record was lost",
                    "droppedBytes": torn,
                    "droppedAt": complete,
                    "droppedDigest": SHA_PREFIX + hashlib.sha256(dropped).hexdigest(),
                },
            )
        if seq < known_seq:
            self._emit(
                "truncation",
                {
                    "reason": "the log ended at an earlier seq than this writer had written: "
                    "records were removed from its end",
                    "lastWrittenSeq": known_seq,
                    "foundSeq": seq,
                },
            )

    def _emit(self, event: str, record: Mapping[str, Any]) -> dict:
        self._logger.write(event, record)  # processors render; _Sink writes
        out = self._last
        self._last = None
        return out  # type: ignore[return-value]

    def _write_line(self, line: bytes) -> None:
        fd, start, n = self._fd, self._size, len(line)
        try:
            written = os.write(fd, line)
            while written < n:  # short write: write the rest (EINTR, or about to fail)
                more = os.write(fd, line[written:])
                if more <= 0:
                    raise OSError(5, "short write")
                written += more
        except OSError as exc:
            self._undo(fd, start)
            raise self._err("write failed", exc) from exc
        if self._fsync:
            try:
                (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(fd)
            except OSError as exc:
                self._undo(fd, start)
                raise self._err("fsync failed", exc) from exc
        # committed
        rec = self._pending
        assert rec is not None, "commit without a pending record"
        self._size = start + n
        self._seq = rec["seq"]
        self._head = rec["hash"]
        self._last = rec

    def _undo(self, fd: int, size: int) -> None:
        self._pending = None
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
        except OSError:
            self._size = -1  # leave it: the next append finds the torn line and repairs it

    # ------------------------------------------------------------------ processors

    def _add_chain_fields(self, logger: Any, method: str, ed: dict) -> dict:
        ed["seq"] = self._seq + 1
        ed["prev"] = self._head
        t = time.time()
        sec = int(t)
        if sec != self._ts_sec:
            self._ts_sec = sec
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        ed["ts"] = f"{self._ts_prefix}.{int((t - sec) * 1e6):06d}Z"
        return ed

    def _render(self, logger: Any, method: str, ed: dict) -> bytes:
        body = _ENCODER.encode(ed).encode()
        h = self._hash(body)
        ed["hash"] = h
        self._pending = ed
        return body[:-1] + _HASH_KEY + h.encode() + b'"}\n'


def _rfind_newline(fd: int, end: int) -> int:
    """Offset of the last newline before ``end``, or -1; reads backwards in chunks."""
    pos, step = end, 8192
    while pos > 0:
        start = max(0, pos - step)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            return start + i
        pos = start
        step = min(step * 2, 1 << 20)
    return -1


# ---------------------------------------------------------------------- verifier


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify_log`` found. ``records`` counts the good records before the first
    problem (all of them when ``ok``); ``head`` is the hash of the last good record
    (None for an empty log); ``kind`` is the problem's short machine name."""

    ok: bool
    records: int
    first_bad_line: int | None = None
    first_bad_seq: int | None = None
    problem: str | None = None
    head: str | None = None
    kind: str | None = None

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "records": self.records,
            "firstBadLine": self.first_bad_line,
            "firstBadSeq": self.first_bad_seq,
            "kind": self.kind,
            "problem": self.problem,
            "head": self.head,
        }


_LOOKAHEAD_LINES = 100_000


def _find_seq_ahead(lines: Any, want: int, lineno: int) -> int | None:
    """Line number of the first later record with ``seq == want`` (for reorder vs gap)."""
    for n, raw in enumerate(lines, lineno + 1):
        if n - lineno > _LOOKAHEAD_LINES:
            return None
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("seq") == want:
            return n
    return None


def verify_log(
    path: str | os.PathLike,
    *,
    key: bytes | None = None,
    expect_head: str | None = None,
) -> VerifyReport:
    """Check a whole audit log: every line well-formed, every hash (or HMAC) right,
    ``seq`` contiguous from 1, every ``prev`` the hash before it, no torn last line, and
    (with ``expect_head``, an anchor kept elsewhere) the log ending exactly at that hash.

    Stops at the first problem. Raises ``RiskguardError`` when the file cannot be read,
    ``expect_head`` is not a hash, or the log is HMAC-chained and no key was given."""
    key = _check_key(key)
    hasher = _hasher(key)
    if expect_head is not None and not _HASH_RE.match(expect_head):
        raise RiskguardError(
            f"--expect-head {expect_head!r} is not a hash ('sha256:' or 'hmac-sha256:' + 64 hex digits)"
        )
    path = os.fspath(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 — closed by the with below
        # A consistent snapshot of a live log: its size while no writer is mid-append
        # (writers hold LOCK_EX for the append only). Bytes after it are not read, so a
        # line being written meanwhile is not mistaken for a torn one.
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        try:
            size = os.fstat(f.fileno()).st_size
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        raise RiskguardError(f"cannot read audit log: {exc.strerror}", file=path) from exc

    records = 0
    last_seq = 0
    head: str | None = None
    prev_hash, prevprev_hash = GENESIS, GENESIS
    anchor: tuple[int, int] | None = None  # (line, seq) of the record whose hash is expect_head

    def bad(kind: str, line: int | None, seq: int | None, text: str, n: int = -1) -> VerifyReport:
        n = records if n < 0 else n
        good_head = head if n == records else (prevprev_hash if n else None)
        return VerifyReport(False, n, line, seq, text, good_head, kind)

    with f:
        lineno = 0
        try:
            remaining = size
            for raw in f:
                if remaining <= 0:
                    break
                if len(raw) > remaining:
                    raw = raw[:remaining]
                remaining -= len(raw)
                lineno += 1
                if not raw.endswith(b"\n"):
                    return bad(
                        "torn",
                        lineno,
                        None,
                        f"truncated/torn last line: {len(raw)} bytes without a newline (a writer "
                        "crashed mid-write, or the file was cut); the next append repairs it",
                    )
                try:
                    rec, body, h = _parse_record(raw)
                except _Bad as b:
                    if key is not None and b.kind == "hash-mismatch":
                        return bad("hmac-mismatch", lineno, b.seq, "HMAC " + b.text[5:])
                    return bad(b.kind, lineno, b.seq, b.text)
                seq = rec["seq"]
                # 1. the hash algorithm and the record's own hash
                if key is not None and not h.startswith(HMAC_PREFIX):
                    return bad(
                        "not-hmac",
                        lineno,
                        seq,
                        "HMAC mismatch: the record has a plain SHA-256 hash where an HMAC "
                        "was expected (forged without the key, or the log was never keyed)",
                    )
                if key is None and h.startswith(HMAC_PREFIX):
                    if records == 0:
                        raise RiskguardError(
                            "the log is HMAC-SHA256 chained: verifying it needs the key "
                            "(--key-file or --key-env)",
                            file=path,
                        )
                    return bad(
                        "algorithm-changed",
                        lineno,
                        seq,
                        "hash mismatch: the record is HMAC-signed but the records before it "
                        "are plain SHA-256 (one log uses one mode throughout)",
                    )
                if hasher(body) != h:
                    if key is not None:
                        why = (
                            "wrong key, or the record was edited"
                            if records == 0
                            else "the record was edited or forged without the key"
                        )
                        return bad("hmac-mismatch", lineno, seq, f"HMAC mismatch: {why}")
                    return bad(
                        "hash-mismatch",
                        lineno,
                        seq,
                        "hash mismatch: the record's content does not match its hash "
                        "(edited, or a forged record inserted)",
                    )
                # 2. its place in the sequence
                want = last_seq + 1
                if seq > want:
                    at = _find_seq_ahead(f, want, lineno)
                    if at is not None:
                        return bad(
                            "reordered",
                            lineno,
                            seq,
                            f"reordered: seq {seq} where {want} was expected; seq {want} is "
                            f"at line {at}",
                        )
                    missing = f"{want}" if seq == want + 1 else f"{want}..{seq - 1}"
                    return bad(
                        "seq-gap",
                        lineno,
                        seq,
                        f"deleted: seq gap, {seq - want} record(s) missing (seq {missing})",
                    )
                if seq < want:
                    if h == prev_hash:
                        return bad(
                            "duplicate",
                            lineno,
                            seq,
                            f"inserted: line {lineno} is a copy of line {lineno - 1}",
                        )
                    if seq == last_seq and rec["prev"] == prevprev_hash:
                        return bad(
                            "inserted",
                            lineno - 1,
                            last_seq,
                            f"inserted: line {lineno - 1} is not part of the chain: line "
                            f"{lineno} has the same seq {seq} and links to the record "
                            f"before it",
                            n=records - 1,
                        )
                    return bad(
                        "seq-repeat",
                        lineno,
                        seq,
                        f"inserted or reordered: seq goes back from {last_seq} to {seq}",
                    )
                # 3. its link to the record before
                if rec["prev"] != prev_hash:
                    if records == 0:
                        text = (
                            "prev mismatch: the first record does not link to the genesis "
                            "value (the log does not start at its beginning)"
                        )
                    else:
                        text = (
                            f"prev mismatch: prev is not the hash of line {lineno - 1} (the "
                            "chain is broken here: the record before was replaced, or this "
                            "one forged)"
                        )
                    return bad("prev-mismatch", lineno, seq, text)
                records += 1
                last_seq = seq
                prevprev_hash, prev_hash = prev_hash, h
                head = h
                if expect_head is not None and h == expect_head:
                    anchor = (lineno, seq)
        except OSError as exc:
            raise RiskguardError(f"cannot read audit log: {exc.strerror}", file=path) from exc

    if expect_head is not None and head != expect_head:
        if anchor is not None:
            a_line, a_seq = anchor
            return VerifyReport(
                False,
                records,
                a_line + 1,
                a_seq + 1,
                f"head mismatch: the anchored head is record seq {a_seq} (line {a_line}) but "
                f"{last_seq - a_seq} record(s) follow it (appended after the anchor was "
                "taken, or forged; re-anchor if they are legitimate)",
                head,
                "head-mismatch",
            )
        return VerifyReport(
            False,
            records,
            None,
            None,
            f"truncated: the anchored head {expect_head} is not in the log (it ends at seq "
            f"{last_seq}): records were removed from the end, or the tail was replaced by a "
            "re-hashed forgery",
            head,
            "truncated",
        )
    return VerifyReport(True, records, None, None, None, head, None)
