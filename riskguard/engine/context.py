"""What a rule sees: one precomputed, read-only context per evaluation.

Metrics are computed once per snapshot (and once more for the projected account when an
order is checked) and shared by every rule; rules never do I/O and never recompute them.
"""

from __future__ import annotations

from typing import Any

from riskguard.engine.actions import Action
from riskguard.engine.decision import Violation
from riskguard.margin.metrics import (
    AccountMetrics,
    MarginFigures,
    compute_margin,
    compute_metrics,
    order_reduces,
)
from riskguard.model.snapshot import Order, Snapshot


class EvalContext:
    """Inputs of one evaluation plus the findings rules add to it.

    ``snapshot``/``metrics`` describe the account as rules should judge it: the projected
    account after the order fills when an order is checked, else the snapshot itself.
    ``before``/``metrics_before`` are the account before the order (computed lazily);
    ``margin_before`` is its equity and initial margins only (cheap: no tiers, no
    liquidation prices), which is all a utilization comparison needs.

    ``previews`` is False when the caller reads decisions, not explanations (the
    simulator): a rule may then leave out advisory what-if figures that cost more than
    the finding itself (``promote_to_cross``'s new liquidation price of every cross
    position). Findings, codes, severities and every figure an executor needs are the
    same either way.
    """

    __slots__ = (
        "_margin_before",
        "_metrics_before",
        "_reduces",
        "actions",
        "before",
        "market_data",
        "metrics",
        "model",
        "now_ms",
        "order",
        "previews",
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
        market_data: dict[Any, Any] | None = None,
        now_ms: int = 0,
        state: Any = None,
        trace: list[Any] | None = None,
        previews: bool = True,
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
        self.previews = previews
        self.violations: list[Violation] = []
        self.actions: list[Action] = []
        self._margin_before: MarginFigures | None = None
        self._reduces: bool | None = None

    @property
    def metrics_before(self) -> AccountMetrics:
        if self._metrics_before is None:
            self._metrics_before = compute_metrics(self.before, self.model)
        return self._metrics_before

    @property
    def margin_before(self) -> AccountMetrics | MarginFigures:
        """Equity, initial margins and utilization before the order (full metrics if known)."""
        if self._metrics_before is not None:
            return self._metrics_before
        before = self.before
        if before.balances or before.positionMode != "oneway":
            return self.metrics_before  # hedge / multi-collateral: the account model's equity
        if self._margin_before is None:
            self._margin_before = compute_margin(before, self.model)
        return self._margin_before

    @property
    def reduces(self) -> bool:
        """True when the order only reduces (or closes) an existing position (computed once)."""
        if self._reduces is None:
            self._reduces = self.order is not None and order_reduces(self.before, self.order)
        return self._reduces

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
