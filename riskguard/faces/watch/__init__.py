"""``riskguard watch``: live protection for accounts nobody is watching.

Source (ccxt, websocket or polling) -> :class:`~riskguard.Guard` -> sinks (episodes and
alerts through apprise, the opt-in executor with rails, the snapshot archive, the
Prometheus exporter). See ``docs/watch.md``.

Importing this package is cheap: ccxt, apprise and prometheus-client are imported when a
watcher is built (``pip install 'riskguard[watch]'``).
"""

from __future__ import annotations

from .config import WatchConfig, check_config, load_config

__all__ = ["WatchConfig", "Watcher", "check_config", "load_config"]


def __getattr__(name: str):
    if name == "Watcher":
        from .loop import Watcher

        return Watcher
    raise AttributeError(name)
