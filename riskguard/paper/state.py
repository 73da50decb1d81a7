"""The paper exchange's books: accounts, positions, orders, and running market statistics.

Plain mutable records (the exchange changes them every step); a position rebuilds its frozen
:class:`~riskguard.model.types.Position` only when it changed. Also the small helpers the
exchange and its market share.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from riskguard.model.slots import positional_constructor
from riskguard.model.snapshot import (
    Market,
    Position,
    Snapshot,
    load_snapshot,
)

#: riskguard margin model -> the ccxt exchange id the paper exchange presents itself as
CCXT_IDS = {"binance": "binanceusdm", "bybit": "bybit"}

DEFAULT_TAKER_FEE = 0.0005  # 0.05 %: a base-tier perpetual taker rate

#: models whose ccxt balance ``total`` is equity, not the wallet (as ccxt parses them)
TOTAL_IS_EQUITY = frozenset({"binance", "bybit", "hyperliquid", "bitget"})
STOP_KINDS = ("stop_market", "take_profit_market")
FUNDING_INTERVAL_MS = 8 * 3600 * 1000


_T = TypeVar("_T")


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _raw_symbol(symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``BTCUSDT`` (the exchanges' raw id)."""
    return symbol.split(":")[0].replace("/", "")


def _s(x: float | None) -> str | None:
    return None if x is None else repr(float(x))


def _model(name_or_model: Any) -> Any:
    if not isinstance(name_or_model, str):
        return name_or_model
    from riskguard.engine.plugins import get_registry

    reg = get_registry()
    if name_or_model not in reg.margin_models:
        known = ", ".join(sorted(reg.margin_models))
        raise ValueError(f"unknown margin model {name_or_model!r}; known: {known}")
    return reg.margin_models[name_or_model]


def _positional(cls: Any, names: tuple[str, ...]) -> Any:
    """The slot-filling constructor when ``cls`` has exactly these fields (in order), else
    the dataclass itself called with them by keyword — a field added upstream then costs
    speed, never correctness."""
    if tuple(f.name for f in fields(cls)) == names:
        return positional_constructor(cls)
    return lambda *args: cls(**dict(zip(names, args, strict=True)))


_new_position = _positional(
    Position,
    ("symbol", "side", "contracts", "entryPrice", "markPrice", "leverage", "marginMode",
     "contractSize", "isolatedMargin", "inverse", "stopLossPrice", "takeProfitPrice",
     "liquidationPrice", "extra"),
)  # fmt: skip
_new_market = _positional(Market, ("markPrice", "atrPct", "candles", "contractSize", "extra"))
_new_snapshot = _positional(
    Snapshot,
    ("walletBalance", "positions", "exchange", "account", "settle", "timestamp", "openOrders",
     "leverageTiers", "markets", "schemaVersion", "extra", "source", "positionMode", "balances"),
)  # fmt: skip

ATR_PERIOD = 14  # riskguard's enrichment defaults (riskguard/enrich.py)
RV_WINDOW = 20


class MarketStats:
    """ATR% (Wilder, 14) and realized volatility (20 log returns, % per candle) of one
    symbol's recorded candles, kept incrementally — the definitions of
    ``riskguard.model.volatility``, over the whole recorded history instead of a window."""

    __slots__ = ("_n", "_rets", "_rv", "_s", "_ss", "_trs", "atr", "close")

    def __init__(self, realized_vol: bool = True) -> None:
        self._rv = realized_vol  # False: only ATR% is kept (no rule reads realized volatility)
        self.close: float | None = None
        self.atr: float | None = None
        self._trs: list[float] = []
        self._rets: deque[float] = deque()
        self._s = 0.0
        self._ss = 0.0
        self._n = 0

    def add(self, high: float, low: float, close: float) -> None:
        prev = self.close
        self.close = close
        if prev is None:
            return
        tr = high - low  # max(high − low, |high − prev|, |low − prev|), without the call
        x = abs(high - prev)
        if x > tr:
            tr = x
        x = abs(low - prev)
        if x > tr:
            tr = x
        if self.atr is None:
            self._trs.append(tr)
            if len(self._trs) == ATR_PERIOD:
                self.atr = sum(self._trs) / ATR_PERIOD
                self._trs = []
        else:
            self.atr = (self.atr * (ATR_PERIOD - 1) + tr) / ATR_PERIOD
        if self._rv and prev > 0 and close > 0:
            r = math.log(close / prev)
            self._rets.append(r)
            self._s += r
            self._ss += r * r
            if len(self._rets) > RV_WINDOW:
                old = self._rets.popleft()
                self._s -= old
                self._ss -= old * old
                self._n += 1
                if self._n % 1024 == 0:  # re-sum now and then: no drift over a long path
                    self._s = math.fsum(self._rets)
                    self._ss = math.fsum(r * r for r in self._rets)

    @property
    def atr_pct(self) -> float | None:
        if self.atr is None or not self.close:
            return None
        return self.atr / self.close * 100.0

    @property
    def realized_vol_pct(self) -> float | None:
        n = len(self._rets)
        if n < 2:
            return None
        var = (self._ss - self._s * self._s / n) / (n - 1)
        return math.sqrt(max(var, 0.0)) * 100.0


# --------------------------------------------------------------------------- state


class PaperPosition:
    """One open position (mutable; the exchange's own book)."""

    __slots__ = (
        "contractSize",
        "contracts",
        "entryPrice",
        "inverse",
        "isolatedMargin",
        "leverage",
        "marginMode",
        "position",
        "side",
        "symbol",
    )

    def __init__(
        self,
        symbol: Any,
        side: Any,
        contracts: Any,
        entry: Any,
        leverage: Any,
        mode: Any,
        iso: Any,
        cs: Any,
        inverse: Any,
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.contracts = contracts
        self.entryPrice = entry
        self.leverage = leverage
        self.marginMode = mode
        self.isolatedMargin = iso
        self.contractSize = cs
        self.inverse = inverse
        self.position: Position = self._build()

    def _build(self) -> Position:
        return Position(
            symbol=self.symbol,
            side=self.side,
            contracts=self.contracts,
            entryPrice=self.entryPrice,
            leverage=self.leverage,
            marginMode=self.marginMode,
            contractSize=self.contractSize,
            isolatedMargin=self.isolatedMargin if self.marginMode == "isolated" else None,
            inverse=self.inverse,
        )

    def changed(self) -> None:
        self.position = self._build()

    @property
    def leg(self) -> str:
        return self.side

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1


class PaperOrder:
    """One order as the exchange keeps it."""

    __slots__ = (
        "amount",
        "average",
        "clientOrderId",
        "cost",
        "direction",
        "fee",
        "filled",
        "id",
        "kind",
        "leg",
        "price",
        "reduceOnly",
        "side",
        "status",
        "symbol",
        "timestamp",
        "trigger",
        "type",
    )

    def __init__(
        self,
        *,
        id: str,
        clientOrderId: str | None,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        reduceOnly: bool,
        timestamp: int,
    ) -> None:
        self.id = id
        self.clientOrderId = clientOrderId
        self.symbol = symbol
        self.type = type
        self.side = side
        self.amount = amount
        self.price = price
        self.reduceOnly = reduceOnly
        self.timestamp = timestamp
        self.average: float | None = None
        self.cost = 0.0
        self.fee = 0.0
        self.filled = 0.0
        self.status = "open"
        self.direction = 0  # trigger orders: -1 fires when mark <= trigger, +1 when >=
        self.kind: str | None = None  # "stop_loss" | "take_profit" | "trigger" | None
        self.trigger: float | None = None
        self.leg: str | None = None  # hedge mode: the leg (long | short) the order acts on

    @property
    def remaining(self) -> float:
        return max(self.amount - self.filled, 0.0)


class PaperAccount:
    """An account: wallet (incl. isolated margin, excl. uPnL), positions, orders, settings."""

    def __init__(self, name: str, wallet: float, settle: str = "USDT", hedge: bool = False) -> None:
        self.name = name
        self.wallet = float(wallet)
        self.settle = settle
        # hedge mode (Binance dualSidePosition): a long and a short leg per symbol, the book
        # keyed by (symbol, leg); one-way mode: one position per symbol, keyed by the symbol
        self.hedge = hedge
        self.positions: dict[Any, PaperPosition] = {}
        self.orders: dict[str, PaperOrder] = {}  # open orders by id, in placement order
        self.closed: deque[PaperOrder] = deque(maxlen=1000)
        self.leverage: dict[str, float] = {}
        self.modes: dict[str, str] = {}
        self.fees = 0.0
        self.funding = 0.0
        self.upnl = 0.0  # Σ uPnL at the marks of the last liquidation check
        self.realized = 0.0
        self.liquidations: list[dict] = []
        # multi-collateral (riskguard.model.balances): the coins, the settle coin's amount
        # being ``wallet``; a coin's price follows the mark of the symbol it is the base of
        # (``coin_ref``: coin -> (symbol, its mark when the coin's price was taken))
        self.balances: list[Any] = []
        self.coin_ref: dict[str, tuple[str, float]] = {}

    def key(self, symbol: str, leg: str | None) -> Any:
        """The book's key of ``symbol``'s position (its ``leg`` in hedge mode)."""
        return (symbol, leg) if self.hedge else symbol

    def position(self, symbol: str, leg: str | None = None) -> PaperPosition | None:
        return self.positions.get((symbol, leg) if self.hedge else symbol)

    def legs(self, symbol: str) -> list[PaperPosition]:
        """``symbol``'s positions: both legs in hedge mode."""
        return [p for p in self.positions.values() if p.symbol == symbol]


# --------------------------------------------------------------------------- helpers


def _with(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` of a position or a balance (typed loosely: compiled, a
    parameter typed Position refuses a Balance)."""
    from dataclasses import replace

    return replace(obj, **changes)  # type: ignore[type-var]


def _snapshots(accounts: Any) -> list[Snapshot]:
    if accounts is None:
        return []
    if isinstance(accounts, (Snapshot, str, Path)) or (
        isinstance(accounts, dict) and "walletBalance" in accounts
    ):
        return [load_snapshot(accounts)]
    if isinstance(accounts, Mapping):
        out = []
        for name, s in accounts.items():
            snap = load_snapshot(s)
            if snap.account != name:
                from dataclasses import replace

                snap = replace(snap, account=name)
            out.append(snap)
        return out
    return [load_snapshot(s) for s in accounts]


def _stops(acct: PaperAccount) -> dict[tuple[str, str], list[float]]:
    stops: dict[tuple[str, str], list[float]] = {}
    for o in acct.orders.values():
        if o.kind == "stop_loss" and o.reduceOnly and o.trigger is not None:
            stops.setdefault((o.symbol, o.side), []).append(o.trigger)
    return stops


def _first_stop(stops, p: Any, mark: float | None) -> float | None:
    """The stop that triggers first: the highest below the mark (long), lowest above (short)."""
    long = p.side == "long"
    cands = stops.get((p.symbol, "sell" if long else "buy"))
    if not cands:
        return None
    ref = mark or p.entryPrice
    best = None
    for x in cands:
        if long:
            if x < ref and (best is None or x > best):
                best = x
        elif x > ref and (best is None or x < best):
            best = x
    return best


def _first_tp(acct: PaperAccount, p: PaperPosition) -> float | None:
    closing = "sell" if p.side == "long" else "buy"
    tps = [
        o.trigger
        for o in acct.orders.values()
        if o.kind == "take_profit"
        and o.symbol == p.symbol
        and o.trigger is not None
        and (not acct.hedge or o.side == closing)  # hedge mode: this leg's own
    ]
    if not tps:
        return None
    return min(tps) if p.side == "long" else max(tps)


def dumps_events(events: list[dict]) -> str:
    """Events as JSON Lines (for logs)."""
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
