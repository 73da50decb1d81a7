"""Margin: each exchange's published margin and liquidation arithmetic, and the account figures.

One module per exchange family (``binance``, ``bybit``, ``okx``, …), each registered as a
plugin through ``riskguard_margin_models``; ``base`` holds the shared solver and primitives
(tier lookup, maintenance margin, the liquidation root); ``metrics`` computes an account's
figures (equity, utilization, per-position liquidation price and distance) once per snapshot,
with a fast path pinned to the models by a property test; ``accounts`` the figures of
hedge-mode and multi-collateral accounts, which ``metrics`` branches to (one-way
single-currency accounts never reach it).

May import: ``riskguard.errors``, ``riskguard.hookspecs``, ``riskguard.model``.
"""

from riskguard.margin.base import Capabilities, Feasibility, MarginModel

__all__ = ["Capabilities", "Feasibility", "MarginModel"]
