"""ccxt integration: live snapshots, a guarded exchange, and an action executor.

A ccxt bot wraps its exchange in three lines and every order is checked first::

    from riskguard import Guard
    from riskguard.contrib.ccxt_guard import GuardedExchange
    exchange = GuardedExchange(ccxt.binanceusdm(config), Guard.from_file("policies/default.yaml"))

    exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 60000)  # OrderRejected if denied

Pieces, each usable alone:

- :func:`snapshot_from_ccxt` — a pure function from ccxt's *unified* structures
  (``fetch_balance``, ``fetch_positions``, ``fetch_leverage_tiers``, ``fetch_ohlcv``,
  ``fetch_open_orders``, tickers) to a riskguard snapshot document. Where the unified
  structure loses what the margin math needs, it reads the exchange's raw ``info``:
  Binance's maintenance amount ``info.cum`` and wallet ``info.assets[].walletBalance`` /
  ``isolatedWallet`` (ccxt's ``total`` includes uPnL), Bybit's ``mmDeduction``,
  ``walletBalance`` and ``positionBalance``. Binance positions carry no stop: stop orders
  are matched to positions from the open orders.
- :class:`SnapshotBuilder` — fetches those through a ccxt exchange (tiers and candles
  cached for a TTL; balance, positions and open orders fresh on every call).
- :class:`GuardedExchange` — a ccxt exchange whose order-placing methods ask the guard
  first. A denied order raises :class:`OrderRejected` carrying the decision and never
  reaches the exchange; a ``resize`` is sent at the allowed amount only with
  ``resize=True``. A ``params.stopLoss`` counts as the entry's stop only where ccxt
  attaches it to the order (``has["createOrderWithTakeProfitAndStopLoss"]``: Bybit, OKX —
  not Binance, where the entry is judged without it); a bare number is sent as ccxt's
  ``{"triggerPrice": x}``, the only form ccxt's OKX reads. Every other method passes
  through; order-placing methods the wrapper
  does not know (``create_*``/``edit_*``) raise :class:`UnguardedMethod` instead of
  slipping past the guard. (ccxt's raw endpoint methods, ``fapiPrivatePostOrder`` and
  friends, are not guarded: don't call them.)
- :class:`CcxtExecutor` — applies a decision's actions through ccxt (``set_margin_mode``,
  ``add_margin``, stop-loss orders — on the price grid, rounded toward the mark —,
  reductions) **only when asked**, and reports each
  exchange refusal (Binance ``-4048``: no margin-mode switch with an open position) as a
  result next to the untouched decision instead of raising.
- Plugin hooks: a ``ccxt`` snapshot source (``ccxt:binanceusdm`` — keys from
  ``RISKGUARD_CCXT_APIKEY``/``_SECRET``/``_PASSWORD``) and a ``ccxt`` action sink.

ccxt is imported lazily: this module loads (and registers its hooks) without ccxt; using
it needs ``pip install 'riskguard[ccxt]'``. Async ccxt (``ccxt.async_support``) is
supported by :class:`AsyncGuardedExchange` and ``SnapshotBuilder.afetch``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from riskguard.contrib.ccxt.builder import (
    SnapshotBuilder,
)
from riskguard.contrib.ccxt.executor import (
    DEFAULT_APPLY,
    CcxtExecutor,
    Execution,
    ExecutionResult,
    leg_margin_params,
    leg_order_params,
)
from riskguard.contrib.ccxt.guarded import (
    AsyncGuardedExchange,
    GuardedExchange,
    OrderRejected,
    UnguardedMethod,
)
from riskguard.contrib.ccxt.mapping import (
    CONDITIONAL_ORDER_PARAMS,
    EXCHANGE_MODELS,
    OPEN_ORDERS_PER_SYMBOL,
    STOP_TYPES,
    _ccxt,
    isolated_margin,
    order_from_ccxt,
    snapshot_from_ccxt,
    tiers_from_ccxt,
    wallet_balance,
)
from riskguard.hookspecs import hookimpl

__all__ = [
    "CONDITIONAL_ORDER_PARAMS",
    "DEFAULT_APPLY",
    "EXCHANGE_MODELS",
    "OPEN_ORDERS_PER_SYMBOL",
    "STOP_TYPES",
    "AsyncGuardedExchange",
    "CcxtExecutor",
    "Execution",
    "ExecutionResult",
    "GuardedExchange",
    "OrderRejected",
    "SnapshotBuilder",
    "UnguardedMethod",
    "isolated_margin",
    "leg_margin_params",
    "leg_order_params",
    "order_from_ccxt",
    "snapshot_from_ccxt",
    "tiers_from_ccxt",
    "wallet_balance",
]

# --------------------------------------------------------------------------- plugin hooks


def make_exchange(exchange_id: str, options: dict | None = None) -> Any:
    """A ccxt exchange by id, with API keys from RISKGUARD_CCXT_APIKEY/_SECRET/_PASSWORD."""
    ccxt = _ccxt()
    cls = getattr(ccxt, exchange_id, None)
    if cls is None:
        raise ValueError(f"ccxt has no exchange {exchange_id!r}")
    config: dict = {"enableRateLimit": True, **(options or {})}
    for key, env in (("apiKey", "APIKEY"), ("secret", "SECRET"), ("password", "PASSWORD")):
        v = os.environ.get(f"RISKGUARD_CCXT_{env}")
        if v and key not in config:
            config[key] = v
    return cls(config)


def _matches(location: str) -> bool:
    return location.startswith("ccxt:")


def _open(location: str) -> Iterator[tuple[str, Any]]:
    """``ccxt:<exchange-id>[?settle=USDT&account=main]`` -> one live snapshot document."""
    from urllib.parse import parse_qs

    rest = location[len("ccxt:") :]
    ex_id, _, query = rest.partition("?")
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    try:
        ex = make_exchange(ex_id)
        if hasattr(ex, "load_markets"):
            ex.load_markets()
        snap = SnapshotBuilder(ex, settle=q.get("settle", "USDT"), account=q.get("account")).fetch()
        yield location, snap.to_dict()
    except Exception as exc:  # noqa: BLE001 - a source yields its failure as a bad record
        from riskguard.errors import RiskguardError

        yield (
            location,
            RiskguardError(f"ccxt source {ex_id}: {type(exc).__name__}: {exc}", file=location),
        )


@hookimpl
def riskguard_snapshot_sources(register):
    from riskguard.engine.sources import SnapshotSource

    register(
        SnapshotSource(
            "ccxt",
            "a live snapshot from an exchange through ccxt: ccxt:<exchange-id>[?settle=&account=]",
            _matches,
            _open,
        )
    )


@hookimpl
def riskguard_action_sinks(register):
    from riskguard.engine.sinks import ActionSink

    def _open_sink(options: dict) -> Callable[[Any], Any]:
        ex = options.get("exchange")
        if ex is None:
            raise ValueError("the ccxt sink needs an 'exchange' option (a ccxt exchange object)")
        return CcxtExecutor(
            ex,
            apply=options.get("apply", DEFAULT_APPLY),
            attempt_infeasible=bool(options.get("attemptInfeasible", False)),
            dry_run=bool(options.get("dryRun", False)),
            min_severity=str(options.get("minSeverity", "error")),
        )

    register(
        ActionSink(
            "ccxt",
            "apply actions through a ccxt exchange (options: exchange, apply, dryRun, minSeverity)",
            _open_sink,
        )
    )
