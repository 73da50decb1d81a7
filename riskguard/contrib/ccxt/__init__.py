"""The ccxt integration's pieces, one module each: ``mapping`` (ccxt structures → snapshot),
``builder`` (fetching), ``guarded`` (an exchange that asks the guard), ``executor`` (actions
through ccxt). :mod:`riskguard.contrib.ccxt_guard` is their public import path and the plugin.

May import: every package below the faces, and ``riskguard.faces.guard``. ccxt itself is
imported lazily.
"""
