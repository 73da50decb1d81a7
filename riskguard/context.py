"""What a rule sees: one precomputed, read-only context per evaluation.

Metrics are computed once per snapshot (and once more for the projected account when an
order is checked) and shared by every rule; rules never do I/O and never recompute them.
"""

from __future__ import annotations

from typing import Any

from .actions import Action
from .decision import Violation
from .metrics import AccountMetrics, compute_metrics
from .snapshot import Order, Snapshot


class EvalContext:
    """Inputs of one evaluation plus the findings rules add to it.

    ``snapshot``/``metrics`` describe the account as rules should judge it: the projected
    account after the order fills when an order is checked, else the snapshot itself.
    ``before``/``metrics_before`` are the account before the order (computed lazily).
    """

    __slots__ = (
        "_metrics_before",
        "actions",
        "before",
        "market_data",
        "metrics",
        "model",
        "now_ms",
        "order",
        "snapshot",
        "state",
        "trace",
        "violations",
    )

    def __init__(
        self,
        snapshot: Snapshot,
        metrics: AccountMetrics,
        model: Any,
        *,
        order: Order | None = None,
        before: Snapshot | None = None,
        metrics_before: AccountMetrics | None = None,
        market_data: dict | None = None,
        now_ms: int = 0,
        state: Any = None,
        trace: list | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.metrics = metrics
        self.model = model
        self.order = order
        self.before = before if before is not None else snapshot
        self._metrics_before = metrics_before if before is not None else metrics
        self.market_data = market_data or {}
        self.now_ms = now_ms
        self.state = state
        self.trace = trace
        self.violations: list[Violation] = []
        self.actions: list[Action] = []

    @property
    def metrics_before(self) -> AccountMetrics:
        if self._metrics_before is None:
            self._metrics_before = compute_metrics(self.before, self.model)
        return self._metrics_before

    def market(self, symbol: str, field: str) -> Any:
        """A market figure: the snapshot's own value first, then enrichment's."""
        m = self.snapshot.markets.get(symbol)
        if m is not None:
            v = getattr(m, field, None)
            if v is None:
                v = m.extra.get(field)
            if v is not None:
                return v
        d = self.market_data.get(symbol)
        return d.get(field) if d else None
