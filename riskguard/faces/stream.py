"""``riskguard check --stream``: a guardrail for bots written in any language.

The bot starts riskguard once and talks JSON Lines over a pipe, so it pays interpreter
start-up and policy compilation once, not per order::

    → {"id": 1, "account": "main", "snapshot": {...}, "order": {...}}
    ← {"id": 1, "line": 1, "decision": "allow", ...}
    → {"id": 2, "account": "main", "order": {...}}          # reuses main's snapshot
    ← {"id": 2, "line": 2, "decision": "deny", ...}

Rules of the protocol:

- every non-empty input line gets exactly one output line, in order, flushed at once;
- a line carries ``snapshot`` (stored under ``account`` — the line's, else the
  snapshot's own) and/or ``order``; a line without ``snapshot`` uses the stored one of
  its ``account`` (or the only one stored); a line without ``order`` checks the account;
- ``id`` (any JSON value) is echoed back so a client can match answers to requests;
- ``{"control": {"tradingState": "halted"}}`` flips the kill switch (answered with
  ``{"ok": true, ...}``);
- a malformed line gets ``{"error": {"code", "message", "problems"?}, "line": N}`` and the
  stream goes on: one bad message never takes the guardrail down; ``N`` (and the message)
  count the stream's lines from 1, blank lines included;
- a decision on an order carries ``approvedAmount``: the amount to send (the order's on
  ``allow``, the smaller one on ``resize``, 0 on ``deny``);
- one :class:`~riskguard.faces.guard.Guard` serves the whole stream, so stateful rules (order
  rates, the kill switch) see every order.
"""

from __future__ import annotations

import json
from typing import IO, Any

from riskguard.batch.tiermemo import build_snapshot_memo, snapshot_digest
from riskguard.errors import RiskguardError, problems_under
from riskguard.faces.guard import TRADING_STATES, Guard
from riskguard.model.snapshot import Snapshot, build_order


class _LineError(Exception):
    def __init__(self, code: str, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class Stream:
    """The stream state: a guard and the last snapshot of each account."""

    def __init__(self, guard: Guard, *, metrics: bool = False) -> None:
        self.guard = guard
        self.metrics = metrics
        self.accounts: dict[str, Snapshot] = {}
        self._digest: tuple[Snapshot | None, str] = (None, "")  # the last snapshot hashed

    def preload(self, snapshot: Snapshot, account: str | None = None) -> None:
        self.accounts[account or snapshot.account] = snapshot

    def handle(self, line: str, lineno: int) -> dict:
        """One input line -> one output object (a decision, an ack or an error)."""
        ident: Any = None
        try:
            try:
                msg = json.loads(line, parse_constant=_no_constants)
            except json.JSONDecodeError as exc:
                # The parser counts lines within this one message (always "line 1"): name
                # the stream's line instead, and the column within it.
                raise _LineError(
                    "invalid_json",
                    f"line {lineno}, column {exc.colno}: not JSON: {exc.msg}",
                ) from None
            except ValueError as exc:  # NaN/Infinity
                raise _LineError("invalid_json", f"line {lineno}: not JSON: {exc}") from None
            if not isinstance(msg, dict):
                raise _LineError(
                    "invalid_message", f"expected a JSON object, got {type(msg).__name__}"
                )
            ident = msg.get("id")
            if "control" in msg:
                out = self._control(msg["control"])
                out["line"] = lineno
                if ident is not None:
                    out["id"] = ident
                return out
            snap = self._snapshot(msg)
            order = None
            if msg.get("order") is not None:
                try:
                    order = build_order(msg["order"])
                except RiskguardError as exc:
                    raise _LineError(
                        "invalid_order", "the order is not valid", problems_under(exc, "$.order")
                    ) from None
            decision = self.guard.check(snap, order, ref=f"stdin:{lineno}")
            if decision._snapshot_digest is None:
                # orders against a stored snapshot hash it once; a new snapshot's tier
                # tables are re-encoded only when they changed (tiermemo)
                last, dg = self._digest
                if last is not snap:
                    dg = snapshot_digest(snap.to_dict())
                    self._digest = (snap, dg)
                decision._snapshot_digest = dg
            out = decision.to_dict(metrics=self.metrics)
        except _LineError as exc:
            err: dict = {"code": exc.code, "message": exc.message}
            if exc.problems:
                err["problems"] = exc.problems
            out = {"error": err}
        except Exception as exc:  # noqa: BLE001 - one message never takes the guardrail down
            out = {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}}
        out["line"] = lineno
        if ident is not None:
            out["id"] = ident
        return out

    def _snapshot(self, msg: dict) -> Snapshot:
        account = msg.get("account")
        if account is not None and not isinstance(account, str):
            raise _LineError("invalid_message", "account must be a string")
        raw = msg.get("snapshot")
        if raw is not None:
            try:
                snap = build_snapshot_memo(raw)
            except RiskguardError as exc:
                raise _LineError(
                    "invalid_snapshot",
                    "the snapshot is not valid",
                    problems_under(exc, "$.snapshot"),
                ) from None
            self.accounts[account or snap.account] = snap
            return snap
        if account is not None:
            stored = self.accounts.get(account)
            if stored is None:
                known = ", ".join(sorted(self.accounts)) or "none yet"
                raise _LineError(
                    "unknown_account",
                    f"no snapshot stored for account {account!r} (known: {known}); "
                    "send one with a 'snapshot' first",
                )
            return stored
        if len(self.accounts) == 1:
            return next(iter(self.accounts.values()))
        raise _LineError(
            "missing_snapshot",
            "expected 'snapshot', or 'account' naming a stored one"
            + (f" (stored: {', '.join(sorted(self.accounts))})" if self.accounts else ""),
        )

    def _control(self, ctl: Any) -> dict:
        if not isinstance(ctl, dict) or set(ctl) - {"tradingState", "reason"}:
            raise _LineError(
                "invalid_control", 'expected {"control": {"tradingState": ..., "reason"?: ...}}'
            )
        state = ctl.get("tradingState")
        if state not in TRADING_STATES:
            raise _LineError(
                "invalid_control", f"tradingState must be one of {', '.join(TRADING_STATES)}"
            )
        previous = self.guard.set_trading_state(state, reason=ctl.get("reason"))
        return {"ok": True, "tradingState": state, "previous": previous}


def run_stream(stream: Stream, stdin: IO[str], stdout: IO[str]) -> int:
    """Serve ``stdin`` until EOF; one flushed line out per line in."""
    lineno = 0
    for line in iter(stdin.readline, ""):
        lineno += 1
        if not line.strip():
            continue
        out = stream.handle(line, lineno)
        try:
            text = _dumps(out)
        except ValueError:  # a non-finite number slipped into an answer: say so, keep going
            text = _dumps(
                {
                    "error": {"code": "internal", "message": "answer not representable as JSON"},
                    "line": lineno,
                    **({"id": out["id"]} if "id" in out else {}),
                }
            )
        stdout.write(text + "\n")
        stdout.flush()
    return 0


__all__ = ["Stream", "run_stream"]
