"""The model and its reading: what an account looks like, and how outside data becomes one.

``types`` holds the frozen, slotted data model (``Snapshot``, ``Position``, ``Order``,
``LeverageTier``, ``Market``) and its JSON form; ``balances`` the multi-collateral balances;
``snapshot`` reads snapshots and orders from files and dicts, validating every field with its
JSON path (``fastpath`` reads the common all-plain case in one pass); ``yamlio`` /
``yamlparse`` / ``located`` read YAML and JSON keeping each node's line and column;
``schemas`` loads the published JSON Schemas; ``redact`` removes secrets; ``volatility``
derives ATR and realized volatility from candles; ``slots`` builds frozen objects fast.

May import: ``riskguard.errors`` only. Everything else builds on this package.
"""
