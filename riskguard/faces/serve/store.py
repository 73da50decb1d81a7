"""What the workers of one service share: the stored account snapshots and the kill switch.

This is the stream mode's account-snapshot model (``check --stream``: a snapshot is stored
under its account and later requests name only the account) made safe for several worker
processes: each stored snapshot is a file in the service's state directory, written
atomically (temporary file + ``rename``), and each worker keeps the parsed
:class:`~riskguard.Snapshot` cached beside the file's identity (inode, size, mtime). A
lookup costs one ``stat``; a snapshot stored through any worker is seen by every worker on
its next request.

The trading state (the kill switch) is a file too: ``PUT /v1/trading-state`` writes it and
every worker applies it to its own guard before its next decision, so halting trading
through one worker halts all of them. With ``--state-dir`` the files outlive a restart: a
halted service comes back halted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from riskguard.engine.decision import digest
from riskguard.faces.guard import TRADING_STATES, Guard
from riskguard.model.snapshot import Snapshot, build_snapshot


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _write_atomic(path: str | Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        # account -> (file identity, parsed snapshot, its digest, file path): a decision on a stored
        # snapshot reuses the digest instead of hashing the snapshot again
        self._cache: dict[str, tuple[tuple[int, int, int], Snapshot, str, str]] = {}
        self._trading_seen: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

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
        _write_atomic(path, data)
        try:
            ident = _identity(os.stat(path))
        except FileNotFoundError:  # replaced again at once by another worker
            return sdigest
        self._cache[account] = (ident, snapshot, sdigest, path)
        return sdigest

    def get_snapshot(self, account: str) -> tuple[Snapshot, str] | None:
        """The account's stored snapshot and its digest (None: nothing stored)."""
        path = self._path(account)
        try:
            ident = _identity(os.stat(path))
        except FileNotFoundError:
            self._cache.pop(account, None)
            return None
        hit = self._cache.get(account)
        if hit is not None and hit[0] == ident:
            return hit[1], hit[2]
        try:
            with open(path, "rb") as f:  # identity and content of the same file
                ident = _identity(os.fstat(f.fileno()))
                doc = json.loads(f.read())
        except FileNotFoundError:
            return None
        snap = build_snapshot(doc["snapshot"])
        sdigest = digest(snap.to_dict())
        self._cache[account] = (ident, snap, sdigest, path)
        return snap, sdigest

    def accounts(self) -> int:
        return sum(1 for name in os.listdir(self.snapshots_dir) if name.endswith(".json"))

    # ------------------------------------------------------------------ kill switch

    def put_trading_state(self, guard: Guard, state: str, reason: str | None) -> str:
        with self._lock:
            previous = guard.set_trading_state(state, reason=reason)
            _write_atomic(
                self.trading_file,
                json.dumps({"tradingState": state, "reason": reason}).encode(),
            )
            try:
                self._trading_seen = _identity(self.trading_file.stat())
            except FileNotFoundError:  # pragma: no cover - replaced at once by another worker
                self._trading_seen = None
            return previous

    def sync_trading_state(self, guard: Guard) -> None:
        """Apply a trading state another worker wrote (one ``stat`` when nothing changed)."""
        try:
            ident = _identity(self.trading_file.stat())
        except FileNotFoundError:
            return
        if ident == self._trading_seen:
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
