"""Exchange margin models: one module per exchange family, each registered as a plugin."""

from riskguard.margin.base import Capabilities, Feasibility, MarginModel

__all__ = ["Capabilities", "Feasibility", "MarginModel"]
