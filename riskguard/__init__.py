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

from riskguard import _pure

if _pure.requested():  # before any compiled module loads: run the Python source
    _pure.install()

from riskguard._moved import install as _install_moved
from riskguard.errors import PluginError, PolicyError, Problem, RiskguardError, SnapshotError
from riskguard.hookspecs import hookimpl
from riskguard.model.snapshot import (
    LeverageTier,
    Market,
    Order,
    Position,
    Snapshot,
    load_order,
    load_snapshot,
)

__version__ = "0.2.0"

_install_moved()  # old module paths (0.1) resolve to their new homes, with a warning

# name -> module (relative) that defines it; resolved lazily by __getattr__.
_LAZY: dict[str, str] = {
    "Guard": ".faces.guard",
    "AuditWriteError": ".faces.guard",
    "TRADING_STATES": ".faces.guard",
    "GUARD_CODES": ".faces.guard",
    "Decision": ".engine.decision",
    "Violation": ".engine.decision",
    "SEVERITIES": ".engine.decision",
    "Action": ".engine.actions",
    "ACTION_TYPES": ".engine.actions",
    "AccountMetrics": ".margin.metrics",
    "PositionMetrics": ".margin.metrics",
    "compute_metrics": ".margin.metrics",
    "CompiledPolicy": ".engine.policy",
    "load_policy": ".engine.policy",
    "evaluate": ".engine.evaluate",
    "ENGINE_CODES": ".engine.evaluate",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from riskguard.engine.actions import ACTION_TYPES, Action
    from riskguard.engine.decision import SEVERITIES, Decision, Violation
    from riskguard.engine.evaluate import ENGINE_CODES, evaluate
    from riskguard.engine.policy import CompiledPolicy, load_policy
    from riskguard.faces.guard import GUARD_CODES, TRADING_STATES, AuditWriteError, Guard
    from riskguard.margin.metrics import AccountMetrics, PositionMetrics, compute_metrics


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
