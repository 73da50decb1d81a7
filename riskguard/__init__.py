"""riskguard: declarative risk policies for leveraged crypto-futures accounts."""

from .errors import PolicyError, Problem, RiskguardError, SnapshotError
from .hookspecs import hookimpl
from .snapshot import LeverageTier, Market, Order, Position, Snapshot, load_order, load_snapshot

__version__ = "0.1.0"

__all__ = [
    "LeverageTier",
    "Market",
    "Order",
    "PolicyError",
    "Position",
    "Problem",
    "RiskguardError",
    "Snapshot",
    "SnapshotError",
    "__version__",
    "hookimpl",
    "load_order",
    "load_snapshot",
]
