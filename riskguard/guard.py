"""The embedding API: a long-lived guard a trading bot asks before every order.

    from riskguard import Guard
    guard = Guard.from_file("policies/default.yaml", audit_log="audit.jsonl")
    decision = guard.check(snapshot, order)      # dict | Snapshot, dict | Order | None
    if not decision.allowed: ...

Dicts from outside are validated at the boundary; ``Snapshot``/``Order`` objects built
in code skip that step. The compiled policy is swapped atomically by ``reload()``; a
policy that fails to load leaves the old one in force and raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .decision import Decision
from .engine import evaluate
from .metrics import AccountMetrics, compute_metrics
from .policy import CompiledPolicy, load_policy
from .snapshot import Order, Snapshot, load_order, load_snapshot


class Guard:
    """Thread-safe: ``check`` reads one immutable compiled policy; state changes take a lock."""

    def __init__(
        self,
        policy: CompiledPolicy,
        *,
        source: str | Path | dict | None = None,
        audit_log: str | Path | None = None,
        audit_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
        plugins: tuple[str, ...] = (),
    ) -> None:
        self._policy = policy
        self._source = source
        self._plugins = tuple(plugins)
        self._clock = clock
        self._lock = threading.RLock()
        self.state: dict = {}  # per-rule state for stateful rules (rates, drawdown peaks, kill switch)
        self._log = None
        if audit_log is not None:
            from .audit import AuditLog

            self._log = AuditLog(audit_log, key=audit_key)

    # -------------------------------------------------------------- construction

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> Guard:
        plugins = tuple(kw.get("plugins", ()))
        return cls(load_policy(path, plugins=plugins), source=path, **kw)

    @classmethod
    def from_dict(cls, doc: dict, **kw: Any) -> Guard:
        plugins = tuple(kw.get("plugins", ()))
        return cls(load_policy(doc, plugins=plugins), source=doc, **kw)

    @property
    def policy(self) -> CompiledPolicy:
        return self._policy

    def reload(self, source: str | Path | dict | None = None) -> CompiledPolicy:
        """Load the policy again (or a new one) and swap it in atomically."""
        src = source if source is not None else self._source
        if src is None:
            raise ValueError(
                "this guard was built from a compiled policy; pass a source to reload()"
            )
        new = load_policy(src, plugins=self._plugins)  # raises: the old policy stays
        with self._lock:
            self._policy = new
            self._source = src
        return new

    # -------------------------------------------------------------- checks

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def check(self, snapshot: dict | Snapshot, order: dict | Order | None = None) -> Decision:
        snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
        o = None if order is None else (order if isinstance(order, Order) else load_order(order))
        decision = evaluate(self._policy, snap, o, now_ms=self.now_ms(), state=self.state)
        if self._log is not None:
            self._log.append("decision", decision.to_dict(metrics=False))
        return decision

    def max_order_amount(self, snapshot: dict | Snapshot, order: dict | Order) -> float | None:
        """The largest amount of ``order`` every rule allows (None: no rule bounds it)."""
        d = self.check_quiet(snapshot, order)
        if d.decision == "deny" and d.maxAllowedAmount is None:
            return 0.0
        return d.maxAllowedAmount

    def check_quiet(self, snapshot: dict | Snapshot, order: dict | Order | None = None) -> Decision:
        """``check`` without writing the audit log (for what-if questions)."""
        snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
        o = None if order is None else (order if isinstance(order, Order) else load_order(order))
        return evaluate(self._policy, snap, o, now_ms=self.now_ms(), state=dict(self.state))

    def metrics(self, snapshot: dict | Snapshot) -> AccountMetrics:
        snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
        return compute_metrics(snap, self._policy.registry.margin_model(snap.exchange))

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
