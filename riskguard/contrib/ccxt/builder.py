"""Fetching a snapshot through a ccxt exchange: tiers and candles cached for a TTL; balance,
positions and open orders (with the conditional orders an exchange lists apart) fresh on
every call; sync (``fetch``) and ``ccxt.async_support`` (``afetch``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from riskguard.contrib.ccxt.mapping import (
    CONDITIONAL_ORDER_PARAMS,
    OPEN_ORDERS_PER_SYMBOL,
    _f,
    snapshot_from_ccxt,
)
from riskguard.model.snapshot import Snapshot, build_snapshot

# --------------------------------------------------------------------------- fetching


class SnapshotBuilder:
    """Fetch a snapshot through a ccxt exchange.

    Balance, positions and open orders are fetched on every call (they change with every
    fill); leverage tiers and candles are cached for ``tiers_ttl``/``ohlcv_ttl`` seconds.

    Open orders: where the exchange refuses or penalises a query without a symbol (ccxt's
    ``options["fetchOpenOrders"]["warnWithoutSymbol"]``, on by default for Binance), they
    are fetched per symbol — the positions' and ``fetch(symbols)``'s — so orders on other
    symbols are not seen; ``order_symbols`` adds symbols to ask for, and
    ``open_orders_by_symbol`` forces either way (Bitget is always asked per symbol:
    :data:`OPEN_ORDERS_PER_SYMBOL`). Conditional orders (stops) that the
    exchange lists apart (:data:`CONDITIONAL_ORDER_PARAMS`) are fetched too, unless
    ``conditional_orders=False``. Leverage tiers come from ``fetch_leverage_tiers``, or
    symbol by symbol from ``fetch_market_leverage_tiers`` where ccxt offers only that
    (OKX, Bitget).
    """

    def __init__(
        self,
        exchange: Any,
        *,
        settle: str = "USDT",
        account: str | None = None,
        timeframe: str = "1h",
        candles: int = 50,
        ohlcv: bool = True,
        open_orders: bool = True,
        tiers_ttl: float = 3600.0,
        ohlcv_ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
        open_orders_by_symbol: bool | None = None,
        order_symbols: Iterable[str] = (),
        conditional_orders: bool = True,
    ) -> None:
        self.exchange = exchange
        self.open_orders_by_symbol = open_orders_by_symbol
        self.order_symbols = tuple(order_symbols)
        self.conditional_orders = conditional_orders
        self.settle = settle
        self.account = account
        self.timeframe = timeframe
        self.candles = candles
        self.ohlcv = ohlcv
        self.open_orders = open_orders
        self.tiers_ttl = tiers_ttl
        self.ohlcv_ttl = ohlcv_ttl
        self.clock = clock
        self._tiers: dict[str, tuple[float, list]] = {}
        self._ohlcv: dict[str, tuple[float, list]] = {}

    def _has(self, name: str) -> bool:
        has = getattr(self.exchange, "has", {}) or {}
        return bool(has.get(name, hasattr(self.exchange, _snake(name))))

    def _markets(self, symbols: Iterable[str]) -> dict:
        out = {}
        market = getattr(self.exchange, "market", None)
        for s in symbols:
            try:
                m = market(s) if market is not None else None
            except Exception:  # noqa: BLE001 - unknown symbol or markets not loaded
                m = None
            if m:
                # limits: Hyperliquid's maintenance rate comes from limits.leverage.max
                out[s] = {
                    "contractSize": m.get("contractSize"),
                    "inverse": m.get("inverse"),
                    "limits": m.get("limits") or {},
                }
        return out

    def _stale(self, cache: dict, symbols: Iterable[str], ttl: float) -> list[str]:
        now = self.clock()
        return [s for s in symbols if s not in cache or now - cache[s][0] > ttl]

    def _by_symbol(self) -> bool:
        """Whether open orders must be asked for symbol by symbol (ccxt's own test)."""
        if self.open_orders_by_symbol is not None:
            return self.open_orders_by_symbol
        if getattr(self.exchange, "id", "") in OPEN_ORDERS_PER_SYMBOL:
            return True
        opts = getattr(self.exchange, "options", None) or {}
        legacy = opts.get("warnOnFetchOpenOrdersWithoutSymbol")
        per = opts.get("fetchOpenOrders")
        warn = per.get("warnWithoutSymbol") if isinstance(per, dict) else None
        return legacy is True or (legacy is None and warn is True)

    def order_queries(self, symbols: Iterable[str]) -> list[tuple[str | None, dict]]:
        """The ``fetch_open_orders(symbol, params=...)`` calls one snapshot makes."""
        if not (self.open_orders and self._has("fetchOpenOrders")):
            return []
        targets: list[str | None] = (
            list(dict.fromkeys([*symbols, *self.order_symbols])) if self._by_symbol() else [None]
        )
        ex_id = getattr(self.exchange, "id", "")
        extra = CONDITIONAL_ORDER_PARAMS.get(ex_id, ()) if self.conditional_orders else ()
        return [(s, dict(p)) for s in targets for p in ({}, *extra)]

    @staticmethod
    def _merge_orders(batches: Iterable[list]) -> list:
        seen: set = set()
        out = []
        for batch in batches:
            for o in batch or ():
                key = (o.get("id"), o.get("symbol"))
                if o.get("id") is not None and key in seen:
                    continue
                seen.add(key)
                out.append(o)
        return out

    def fetch(self, symbols: Iterable[str] = ()) -> Snapshot:
        """A snapshot of the account, with market data for its positions and ``symbols``."""
        ex = self.exchange
        balance = ex.fetch_balance()
        positions = [p for p in ex.fetch_positions() if _f(p.get("contracts"))]
        wanted = list(dict.fromkeys([*(p["symbol"] for p in positions), *symbols]))
        orders = self._merge_orders(
            ex.fetch_open_orders(s, None, None, params) for s, params in self.order_queries(wanted)
        )
        missing = self._stale(self._tiers, wanted, self.tiers_ttl)
        if missing and self._has("fetchLeverageTiers"):
            got = ex.fetch_leverage_tiers(missing)
            now = self.clock()
            for s in missing:
                self._tiers[s] = (now, got.get(s) or [])
        elif missing and self._has("fetchMarketLeverageTiers"):  # OKX, Bitget: per market
            for s in missing:
                self._tiers[s] = (self.clock(), ex.fetch_market_leverage_tiers(s) or [])
        if self.ohlcv and self._has("fetchOHLCV"):
            for s in self._stale(self._ohlcv, wanted, self.ohlcv_ttl):
                self._ohlcv[s] = (
                    self.clock(),
                    ex.fetch_ohlcv(s, self.timeframe, None, self.candles),
                )
        held = {p["symbol"] for p in positions}
        tickers = {s: ex.fetch_ticker(s) for s in wanted if s not in held}
        return self._build(balance, positions, orders, tickers, wanted)

    async def afetch(self, symbols: Iterable[str] = ()) -> Snapshot:
        """``fetch`` for ``ccxt.async_support`` exchanges (the calls run concurrently)."""
        import asyncio  # not at import: the plugin is loaded by every riskguard command

        ex = self.exchange
        balance, positions = await asyncio.gather(ex.fetch_balance(), ex.fetch_positions())
        positions = [p for p in positions if _f(p.get("contracts"))]
        wanted = list(dict.fromkeys([*(p["symbol"] for p in positions), *symbols]))
        orders = self._merge_orders(
            await asyncio.gather(
                *(ex.fetch_open_orders(s, None, None, q) for s, q in self.order_queries(wanted))
            )
        )
        missing = self._stale(self._tiers, wanted, self.tiers_ttl)
        if missing and self._has("fetchLeverageTiers"):
            got = await ex.fetch_leverage_tiers(missing)
            for s in missing:
                self._tiers[s] = (self.clock(), got.get(s) or [])
        elif missing and self._has("fetchMarketLeverageTiers"):
            rows = await asyncio.gather(*(ex.fetch_market_leverage_tiers(s) for s in missing))
            for s, r in zip(missing, rows, strict=True):
                self._tiers[s] = (self.clock(), r or [])
        if self.ohlcv and self._has("fetchOHLCV"):
            stale = self._stale(self._ohlcv, wanted, self.ohlcv_ttl)
            rows = await asyncio.gather(
                *(ex.fetch_ohlcv(s, self.timeframe, None, self.candles) for s in stale)
            )
            for s, r in zip(stale, rows, strict=True):
                self._ohlcv[s] = (self.clock(), r)
        held = {p["symbol"] for p in positions}
        need = [s for s in wanted if s not in held]
        tick = await asyncio.gather(*(ex.fetch_ticker(s) for s in need))
        return self._build(
            balance, positions, orders or [], dict(zip(need, tick, strict=True)), wanted
        )

    def _build(self, balance, positions, orders, tickers, wanted) -> Snapshot:
        doc = snapshot_from_ccxt(
            getattr(self.exchange, "id", "generic"),
            balance,
            positions,
            tiers={s: self._tiers[s][1] for s in wanted if s in self._tiers},
            ohlcv={s: self._ohlcv[s][1] for s in wanted if s in self._ohlcv},
            open_orders=orders,
            tickers=tickers,
            markets=self._markets([*wanted, *(o["symbol"] for o in orders if o.get("symbol"))]),
            settle=self.settle,
            account=self.account,
            timestamp=int(self.clock() * 1000),
        )
        return build_snapshot(doc)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
