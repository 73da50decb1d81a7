"""riskguard: declarative risk policies for leveraged crypto-futures accounts.

The embedding API in one import::

    from riskguard import Guard, Snapshot, Position, Order
    guard = Guard.from_file("policies/default.yaml", audit_log="audit.jsonl")
    decision = guard.check(snapshot, order)

The engine-side names (``Guard``, ``Decision``, ``Violation``, ``Action``, ``load_policy``,
``evaluate`` …) are imported on first use, so ``import riskguard`` stays cheap for tools
that only need the data model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import PluginError, PolicyError, Problem, RiskguardError, SnapshotError
from .hookspecs import hookimpl
from .snapshot import LeverageTier, Market, Order, Position, Snapshot, load_order, load_snapshot

__version__ = "0.1.0"

# name -> module (relative) that defines it; resolved lazily by __getattr__.
_LAZY: dict[str, str] = {
    "Guard": ".guard",
    "AuditWriteError": ".guard",
    "TRADING_STATES": ".guard",
    "GUARD_CODES": ".guard",
    "Decision": ".decision",
    "Violation": ".decision",
    "SEVERITIES": ".decision",
    "Action": ".actions",
    "ACTION_TYPES": ".actions",
    "AccountMetrics": ".metrics",
    "PositionMetrics": ".metrics",
    "compute_metrics": ".metrics",
    "CompiledPolicy": ".policy",
    "load_policy": ".policy",
    "evaluate": ".engine",
    "ENGINE_CODES": ".engine",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .actions import ACTION_TYPES, Action
    from .decision import SEVERITIES, Decision, Violation
    from .engine import ENGINE_CODES, evaluate
    from .guard import GUARD_CODES, TRADING_STATES, AuditWriteError, Guard
    from .metrics import AccountMetrics, PositionMetrics, compute_metrics
    from .policy import CompiledPolicy, load_policy


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'riskguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ACTION_TYPES",
    "ENGINE_CODES",
    "GUARD_CODES",
    "SEVERITIES",
    "TRADING_STATES",
    "AccountMetrics",
    "Action",
    "AuditWriteError",
    "CompiledPolicy",
    "Decision",
    "Guard",
    "LeverageTier",
    "Market",
    "Order",
    "PluginError",
    "PolicyError",
    "Position",
    "PositionMetrics",
    "Problem",
    "RiskguardError",
    "Snapshot",
    "SnapshotError",
    "Violation",
    "__version__",
    "compute_metrics",
    "evaluate",
    "hookimpl",
    "load_order",
    "load_policy",
    "load_snapshot",
]
