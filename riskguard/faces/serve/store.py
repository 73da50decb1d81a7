"""What the workers of one service share: the stored account snapshots and the kill switch.

This is the stream mode's account-snapshot model (``check --stream``: a snapshot is stored
under its account and later requests name only the account) made safe for several worker
processes: each stored snapshot is a file in the service's state directory, written
atomically (temporary file + ``rename``), and each worker keeps the parsed
:class:`~riskguard.Snapshot` cached beside the file's identity (inode, size, mtime). A
snapshot stored through any worker is seen by every worker on its next request.

The trading state (the kill switch) is a file too: ``PUT /v1/trading-state`` writes it and
every worker applies it to its own guard before its next decision, so halting trading
through one worker halts all of them. With ``--state-dir`` the files outlive a restart: a
halted service comes back halted.

What a worker has cached is checked against the files without a system call on the hot
path: the state directory holds an 8-byte **generation counter** (``generation``), mapped
into every worker's memory (``mmap``, shared). Every write — a snapshot stored, the
trading state put — replaces its file first and then increments the counter (under an
exclusive ``flock``, so no increment is lost and no value repeats). A cache entry
remembers the counter's value read *before* its file was last looked at; while the
counter still holds that value, no file has been replaced since, and the entry is used
as it is. Otherwise the file is looked at again (one ``stat``; re-read if its identity
changed) and the entry takes the new value. A write that returned before a request began
has therefore always been seen by it, by any worker, of any service sharing the
directory on that machine. Files changed by hand, not through the service, are seen at
the next write through it. Where ``fcntl`` or ``mmap`` is missing (Windows) or the
counter cannot be mapped, every lookup ``stat``s its file.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

from riskguard.faces.guard import TRADING_STATES, Guard
from riskguard.faces.serve.encode import digest  # the engine's digest, by orjson's bytes
from riskguard.model.snapshot import Snapshot, build_snapshot


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _write_atomic(path: str | Path, data: bytes) -> tuple[int, int, int]:
    """Replace ``path`` by a file holding ``data``; returns that file's identity (the file
    may be replaced again by another worker at once: a later ``stat`` could see that one)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            ident = _identity(os.fstat(f.fileno()))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ident


_COUNTER = struct.Struct("Q")  # native: one aligned 8-byte load or store


class _Generation:
    """The shared write counter (see the module docstring); :meth:`open` returns None
    where it cannot be had, and every lookup then ``stat``s its file."""

    def __init__(self, path: Path, view: mmap.mmap, fcntl: Any) -> None:
        self._path = path
        self._view = view
        self._fcntl = fcntl

    @classmethod
    def open(cls, path: Path) -> _Generation | None:
        try:
            import fcntl
        except ModuleNotFoundError:  # pragma: no cover - Windows
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < _COUNTER.size:
                os.ftruncate(fd, _COUNTER.size)  # never shrinks: a concurrent one is a no-op
            view = mmap.mmap(fd, _COUNTER.size)
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)  # the mapping stays
        return cls(path, view, fcntl)

    def read(self) -> int:
        return _COUNTER.unpack_from(self._view)[0]

    def bump(self) -> None:
        """Called after a file was replaced: a value the counter never held before. The lock
        is taken on a descriptor of its own, so it excludes every other writer — another
        process, a forked one, or another thread of this one."""
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX)
            _COUNTER.pack_into(self._view, 0, (self.read() + 1) & 0xFFFF_FFFF_FFFF_FFFF)
        finally:
            os.close(fd)  # releases the lock


class StoreFull(Exception):
    """Storing one more account would pass ``max_accounts``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} accounts are stored already")
        self.limit = limit


class SharedState:
    def __init__(self, state_dir: str | Path, max_accounts: int = 10_000) -> None:
        self.max_accounts = max_accounts
        self.dir = Path(state_dir)
        self.snapshots_dir = self.dir / "snapshots"
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        self.trading_file = self.dir / "trading-state.json"
        self._generation = _Generation.open(self.dir / "generation")
        # account -> (file identity, parsed snapshot, its digest, file path, the generation
        # read before the file was last looked at, or -1): a decision on a stored snapshot
        # reuses the digest instead of hashing the snapshot again
        self._cache: dict[str, tuple[tuple[int, int, int], Snapshot, str, str, int]] = {}
        self._trading_seen: tuple[int, int, int] | None = None
        self._trading_generation = -1  # the generation the trading file was last looked at
        self._lock = threading.Lock()

    def _now(self) -> int:
        """The generation now (-1 without the counter: never equal to a remembered one)."""
        return -1 if self._generation is None else self._generation.read()

    def _written(self) -> None:
        if self._generation is not None:
            self._generation.bump()

    # ------------------------------------------------------------------ snapshots

    def _path(self, account: str) -> str:
        # hashed: an account name is caller-chosen text, never a path component
        hit = self._cache.get(account)
        if hit is not None:
            return hit[3]
        name = hashlib.sha256(account.encode()).hexdigest() + ".json"
        return os.path.join(self.snapshots_dir, name)

    def put_snapshot(self, account: str, snapshot: Snapshot, raw: dict) -> str:
        """Store ``raw`` (already parsed as ``snapshot``); returns the snapshot's digest."""
        path = self._path(account)
        if not os.path.exists(path) and self.accounts() >= self.max_accounts:
            raise StoreFull(self.max_accounts)
        sdigest = digest(snapshot.to_dict())
        data = json.dumps({"account": account, "snapshot": raw}, allow_nan=False).encode()
        ident = _write_atomic(path, data)
        self._written()
        # generation -1: the next lookup stats the path (another worker may have replaced
        # the file since) and uses this entry only if the file is still this one
        self._cache[account] = (ident, snapshot, sdigest, path, -1)
        return sdigest

    def get_snapshot(self, account: str) -> tuple[Snapshot, str] | None:
        """The account's stored snapshot and its digest (None: nothing stored)."""
        generation = self._now()  # read before the file is looked at
        hit = self._cache.get(account)
        if hit is not None and hit[4] == generation != -1:
            return hit[1], hit[2]  # no file replaced since it was looked at
        path = self._path(account)
        try:
            ident = _identity(os.stat(path))
        except FileNotFoundError:
            self._cache.pop(account, None)
            return None
        if hit is not None and hit[0] == ident:
            self._cache[account] = (*hit[:4], generation)
            return hit[1], hit[2]
        try:
            with open(path, "rb") as f:  # identity and content of the same file
                ident = _identity(os.fstat(f.fileno()))
                doc = json.loads(f.read())
        except FileNotFoundError:
            return None
        snap = build_snapshot(doc["snapshot"])
        sdigest = digest(snap.to_dict())
        self._cache[account] = (ident, snap, sdigest, path, generation)
        return snap, sdigest

    def accounts(self) -> int:
        return sum(1 for name in os.listdir(self.snapshots_dir) if name.endswith(".json"))

    # ------------------------------------------------------------------ kill switch

    def put_trading_state(self, guard: Guard, state: str, reason: str | None) -> str:
        with self._lock:
            previous = guard.set_trading_state(state, reason=reason)
            self._trading_seen = _write_atomic(
                self.trading_file,
                json.dumps({"tradingState": state, "reason": reason}).encode(),
            )
            self._written()
            self._trading_generation = -1  # another worker's may have replaced it since
            return previous

    def sync_trading_state(self, guard: Guard) -> None:
        """Apply a trading state another worker wrote (no system call while no file was
        written since the last look; one ``stat`` when one was, or without the counter)."""
        generation = self._now()  # read before the file is looked at
        if generation == self._trading_generation != -1:
            return
        try:
            ident = _identity(os.stat(self.trading_file))
        except FileNotFoundError:
            self._trading_generation = generation
            return
        if ident == self._trading_seen:
            self._trading_generation = generation
            return
        with self._lock:
            try:
                with open(self.trading_file, "rb") as f:  # identity and content of one file
                    ident = _identity(os.fstat(f.fileno()))
                    doc: Any = json.loads(f.read())
            except (OSError, ValueError):
                return
            state = doc.get("tradingState") if isinstance(doc, dict) else None
            if state in TRADING_STATES and state != guard.trading_state:
                guard.set_trading_state(state, reason=doc.get("reason"))
            self._trading_seen = ident
            self._trading_generation = generation
