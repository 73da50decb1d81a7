"""Integrations that ship with riskguard but are not core: each needs an extra.

``riskguard.contrib.ccxt_guard`` (``pip install 'riskguard[ccxt]'``): live snapshots from
ccxt, ``GuardedExchange``, ``CcxtExecutor`` and the ``ccxt:`` snapshot source. It is a
plugin like any third party's, registered through the ``riskguard`` entry-point group;
ccxt itself is imported lazily, so the entry point costs nothing without the extra.
"""
