"""The model and its reading: what an account looks like, and how outside data becomes one.

Holds the frozen, slotted data model (``snapshot``: ``Snapshot``, ``Position``, ``Order``,
``LeverageTier``, ``Market``) with its validating builders, the account forms beyond
one-way single-currency (``balances``: position mode, collateral balances), the YAML/JSON reader that keeps
line and column for every node (``yamlio``), the JSON Schemas' loader (``schemas``), secret
redaction (``redact``), volatility figures derived from candles (``volatility``) and the fast
slot-filling constructor (``slots``).

May import: ``riskguard.errors`` only. Everything else builds on this package.
"""
