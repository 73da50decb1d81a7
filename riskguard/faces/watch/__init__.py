"""``riskguard watch``: live protection for accounts nobody is watching.

Source (ccxt, websocket or polling) -> :class:`~riskguard.Guard` -> sinks (episodes and
alerts through apprise, the opt-in executor with rails, the snapshot archive, the
Prometheus exporter). See ``docs/watch.md``.

Importing this package is cheap: ccxt, apprise and prometheus-client are imported when a
watcher is built (``pip install 'riskguard[watch]'``).

May import: every other package (it is a face): the engine and the Guard, the decision log,
the paper exchange for ``exchange: paper`` accounts, and ``contrib.ccxt_guard``'s
SnapshotBuilder and CcxtExecutor.
"""

from __future__ import annotations

from riskguard.faces.watch.config import WatchConfig, check_config, load_config

__all__ = ["WatchConfig", "Watcher", "check_config", "load_config"]


def __getattr__(name: str):
    if name == "Watcher":
        from riskguard.faces.watch.loop import Watcher

        return Watcher
    raise AttributeError(name)
