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

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from riskguard.faces.guard import Guard
from riskguard.hookspecs import hookimpl
from riskguard.model.snapshot import Order, Snapshot, build_snapshot

#: ccxt exchange id -> riskguard margin model name.
EXCHANGE_MODELS = {
    "binance": "binance",
    "binanceusdm": "binance",
    "binancecoinm": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "bingx": "bingx",
    "mexc": "mexc",
    "weex": "weex",
    "hyperliquid": "hyperliquid",
    "bitget": "bitget",
}

# Exchanges whose ccxt balance ``total`` is account equity (wallet + uPnL): Hyperliquid's
# marginSummary.accountValue, Bitget's accountEquity. The wallet is that minus Σ uPnL.
_TOTAL_IS_EQUITY = frozenset({"hyperliquid", "bitget"})

STOP_TYPES = frozenset({"stop", "stop_market", "stop_loss", "stop_loss_limit"})

#: Open-order queries that list the conditional (trigger/stop) orders an exchange keeps apart
#: from its plain open orders, as ``fetch_open_orders`` params, per ccxt exchange id. Binance
#: USDⓈ-M serves STOP/STOP_MARKET orders from its algo-order endpoint
#: (``GET /fapi/v1/openAlgoOrders``, ccxt ``{"trigger": True}``); OKX from
#: ``GET /api/v5/trade/orders-algo-pending`` by ``ordType`` (a stop-loss is ``conditional`` or
#: part of an ``oco``). Bybit's ``/v5/order/realtime`` lists conditional orders with the rest.
#: Bitget keeps stop-loss (strategy/plan) orders apart: ccxt ``{"trigger": True}``
#: (``GET /api/v3/trade/unfilled-strategy-orders`` on a unified account).
CONDITIONAL_ORDER_PARAMS: dict[str, tuple[dict, ...]] = {
    "binance": ({"trigger": True},),
    "binanceusdm": ({"trigger": True},),
    "okx": ({"ordType": "conditional"}, {"ordType": "oco"}),
    "bitget": ({"trigger": True},),
}

#: Exchanges whose symbol-less open-order query cannot list futures orders, so open orders are
#: asked per symbol: ccxt's Bitget defaults to spot and sends ``category=SPOT``.
OPEN_ORDERS_PER_SYMBOL = frozenset({"bitget"})


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the ccxt integration needs ccxt: pip install 'riskguard[ccxt]'") from exc
    return ccxt


# --------------------------------------------------------------------------- errors


class OrderRejected(Exception):
    """The guard did not allow the order; ``decision`` says why (``decision.reasons()``)."""

    def __init__(self, decision: Any, message: str | None = None) -> None:
        self.decision = decision
        if message is None:
            reasons = "; ".join(decision.reasons()) or decision.decision
            o = decision.order
            what = f"{o.side} {o.amount:g} {o.symbol}" if o is not None else "order"
            message = f"riskguard {decision.decision}: {what}: {reasons}"
        super().__init__(message)


class UnguardedMethod(AttributeError):
    """An order-placing ccxt method the guard cannot check; use ``create_order``."""


# --------------------------------------------------------------------------- mapping


def _f(x: Any) -> float | None:
    if x is None or x == "" or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def wallet_balance(exchange_id: str, balance: dict, settle: str) -> tuple[float, str]:
    """Wallet balance *excluding* unrealized PnL, and where it was read from.

    ccxt's unified ``total`` is Binance's ``marginBalance`` (wallet + uPnL) for futures and
    OKX's ``eq`` (cash + uPnL), so the raw fields are preferred where we know them:
    Binance ``walletBalance``, Bybit ``walletBalance``, OKX ``cashBal``.
    """
    info = balance.get("info") or {}
    model = EXCHANGE_MODELS.get(exchange_id, exchange_id)
    if model == "binance" and isinstance(info, dict):
        for a in info.get("assets") or ():
            if a.get("asset") == settle and _f(a.get("walletBalance")) is not None:
                return _f(a["walletBalance"]), "info.assets[].walletBalance"  # type: ignore[return-value]
        if _f(info.get("totalWalletBalance")) is not None:
            return _f(info["totalWalletBalance"]), "info.totalWalletBalance"  # type: ignore[return-value]
    if model == "bybit" and isinstance(info, dict):
        for acct in (info.get("result") or {}).get("list") or ():
            for c in acct.get("coin") or ():
                if c.get("coin") == settle and _f(c.get("walletBalance")) is not None:
                    return _f(c["walletBalance"]), "info.result.list[].coin[].walletBalance"  # type: ignore[return-value]
    if model == "okx" and isinstance(info, dict):
        # ccxt's total is OKX's eq (cash + uPnL); cashBal is the cash balance without it
        for acct in info.get("data") or ():
            for d in acct.get("details") or ():
                if d.get("ccy") == settle and _f(d.get("cashBal")) is not None:
                    return _f(d["cashBal"]), "info.data[].details[].cashBal"  # type: ignore[return-value]
    total = _f((balance.get(settle) or {}).get("total"))
    if total is None:
        total = _f((balance.get("total") or {}).get(settle))
    if total is None:
        raise ValueError(f"fetch_balance has no {settle} balance")
    return total, f"{settle}.total"


def isolated_margin(p: dict) -> float | None:
    """Margin assigned to an isolated position, excluding uPnL."""
    info = p.get("info") or {}
    for key in ("isolatedWallet", "positionBalance"):  # Binance, Bybit
        v = _f(info.get(key))
        if v is not None and v > 0:
            return v
    col, upnl = _f(p.get("collateral")), _f(p.get("unrealizedPnl"))
    if col is not None and upnl is not None and col - upnl > 0:
        return col - upnl
    for key in ("initialMargin", "positionMargin"):
        v = _f(p.get(key))
        if v is not None and v > 0:
            return v
    return None


def tiers_from_ccxt(tiers: Iterable[dict]) -> list[dict]:
    """ccxt ``LeverageTier`` list -> snapshot tiers, with the maintenance amount from ``info``.

    Binance keeps it in ``info.cum``, Bybit in ``info.mmDeduction``, BingX in
    ``info.maintAmount``; without one the snapshot derives it (Binance's recurrence).
    Some Bybit API versions gave rates in percent: ``initialMargin × maxLeverage ≈ 100``
    tells, and the rate is then divided by 100.
    """
    out = []
    for t in tiers:
        info = t.get("info") or {}
        mmr = _f(t.get("maintenanceMarginRate"))
        maxlev = _f(t.get("maxLeverage"))
        im = _f(info.get("initialMargin"))
        if mmr is not None and im is not None and maxlev and im * maxlev > 50:
            mmr = mmr / 100.0
        row: dict = {
            "minNotional": _f(t.get("minNotional")) or 0.0,
            "maxNotional": _f(t.get("maxNotional")),
            "maintenanceMarginRate": mmr,
        }
        if maxlev is not None and maxlev >= 1:
            row["maxLeverage"] = maxlev
        for key in ("cum", "mmDeduction", "maintAmount"):
            amt = _f(info.get(key))
            if amt is not None:
                row["maintenanceAmount"] = amt
                break
        if t.get("tier") is not None:
            row["tier"] = int(t["tier"])
        out.append(row)
    return out


def _is_stop(o: dict) -> bool:
    """A resting order that closes or reduces the position when a price is touched.

    ccxt parses some exchanges' conditional orders as ``type: market`` with a
    ``triggerPrice`` (Binance's algo ``STOP_MARKET``): the trigger and the reduce-only /
    close-position flag make it a stop; a take-profit (``takeProfitPrice`` or a
    ``TAKE_PROFIT*`` raw type) is not one. Which side of the mark it rests on is checked
    where stops are matched to positions.
    """
    if _f(o.get("stopLossPrice")) is not None:
        return True
    info = o.get("info") or {}
    raw = " ".join(
        str(x).lower()
        for x in (o.get("type"), info.get("orderType"), info.get("type"), info.get("origType"))
        if x
    )
    if _f(o.get("takeProfitPrice")) is not None or "take_profit" in raw:
        return False
    closes = bool(o.get("reduceOnly") or str(info.get("closePosition")).lower() == "true")
    kind = str(o.get("type") or "").lower()
    return closes and (kind in STOP_TYPES or "stop" in raw or _stop_price(o) is not None)


def _stop_price(o: dict) -> float | None:
    for key in ("stopLossPrice", "triggerPrice", "stopPrice"):
        v = _f(o.get(key))
        if v is not None:
            return v
    return None


def _closing_side(o: dict) -> str:
    """The side a stop order trades. ccxt leaves it None for Bitget's position stop-loss
    (a strategy order naming only ``posSide``): a long's stop sells, a short's buys."""
    if o.get("side"):
        return str(o["side"])
    info = o.get("info") or {}
    leg = str(info.get("posSide") or info.get("holdSide") or "").lower()
    return {"long": "sell", "short": "buy"}.get(leg, "")


def _order_type(o: dict) -> str:
    """ccxt's order type; a resting order ccxt leaves untyped (its Hyperliquid parser does
    for ``frontendOpenOrders`` rows without ``orderType``) is a limit order if it has a price."""
    t = o.get("type")
    if t:
        return str(t).lower()
    return "limit" if _f(o.get("price")) else ""


def snapshot_from_ccxt(
    exchange_id: str,
    balance: dict,
    positions: Iterable[dict],
    *,
    tiers: dict | None = None,
    ohlcv: dict | None = None,
    open_orders: Iterable[dict] = (),
    tickers: dict | None = None,
    markets: dict | None = None,
    settle: str = "USDT",
    account: str | None = None,
    timestamp: int | None = None,
) -> dict:
    """Build a snapshot document from ccxt's unified structures (pure; no I/O)."""
    wallet, wallet_src = wallet_balance(exchange_id, balance, settle)
    markets = markets or {}
    tickers = tickers or {}
    orders = list(open_orders)
    # Binance and others keep stops as separate reduce-only orders: match them to positions.
    stops: dict[tuple[str, str], list[float]] = {}
    plain_orders = []
    for o in orders:
        if _is_stop(o):
            px = _stop_price(o)
            if px is not None:
                stops.setdefault((o["symbol"], _closing_side(o)), []).append(px)
        elif not o.get("reduceOnly") and _order_type(o) in ("limit", "market"):
            amount = _f(o.get("remaining"))
            if amount is None:
                amount = _f(o.get("amount"))
            if amount and amount > 0:
                plain_orders.append(
                    {
                        "symbol": o["symbol"],
                        "side": o["side"],
                        "type": _order_type(o),
                        "amount": amount,
                        **({"price": _f(o["price"])} if _f(o.get("price")) else {}),
                    }
                )
    pos_out = []
    upnl_total, hedged = 0.0, False
    for p in positions:
        contracts = _f(p.get("contracts"))
        if not contracts:
            continue
        upnl_total += _f(p.get("unrealizedPnl")) or 0.0
        hedged = hedged or p.get("hedged") is True
        sym = p["symbol"]
        side = p.get("side") or ("long" if contracts > 0 else "short")
        mkt = markets.get(sym) or {}
        mode = p.get("marginMode") or ("isolated" if p.get("isolated") else "cross")
        mark = _f(p.get("markPrice"))
        d: dict = {
            "symbol": sym,
            "side": side,
            "contracts": abs(contracts),
            "contractSize": _f(p.get("contractSize")) or _f(mkt.get("contractSize")) or 1.0,
            "entryPrice": _f(p.get("entryPrice")),
            "leverage": _f(p.get("leverage")),
            "marginMode": mode,
            "inverse": bool(mkt.get("inverse", False)),
        }
        if mark is not None:
            d["markPrice"] = mark
        if mode == "isolated":
            d["isolatedMargin"] = isolated_margin(p)
        lp = _f(p.get("liquidationPrice"))
        if lp is not None:
            d["liquidationPrice"] = lp
        sl = _f(p.get("stopLossPrice"))
        if sl is None:
            cands = stops.get((sym, "sell" if side == "long" else "buy"), [])
            ref = mark or d["entryPrice"] or 0.0
            below = [x for x in cands if (x < ref if side == "long" else x > ref)]
            if below:
                sl = max(below) if side == "long" else min(below)  # the first to trigger
        if sl is not None:
            d["stopLossPrice"] = sl
        tp = _f(p.get("takeProfitPrice"))
        if tp is not None:
            d["takeProfitPrice"] = tp
        pos_out.append({k: v for k, v in d.items() if v is not None})
    mk_out: dict = {}
    for sym, t in tickers.items():
        info = t.get("info") or {}
        mark = _f(t.get("markPrice")) or _f(info.get("markPrice")) or _f(t.get("last"))
        if mark is not None:
            mk_out.setdefault(sym, {})["markPrice"] = mark
    for sym, rows in (ohlcv or {}).items():
        candles = [
            [float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5] or 0.0)]
            for r in rows
            if r and len(r) >= 5 and all(x is not None for x in r[:5])
        ]
        if candles:
            mk_out.setdefault(sym, {})["candles"] = candles
    # an open order on a symbol without a position is in contracts too: its market's size
    ordered = {o["symbol"] for o in plain_orders}
    for sym, m in markets.items():
        cs = _f(m.get("contractSize"))
        if cs is not None and (sym in mk_out or sym in ordered):
            mk_out.setdefault(sym, {})["contractSize"] = cs
    doc: dict = {
        "schemaVersion": 1,
        "account": account or exchange_id,
        "exchange": EXCHANGE_MODELS.get(exchange_id, exchange_id),
        "settle": settle,
        "walletBalance": wallet,
        "positions": pos_out,
        "openOrders": plain_orders,
        "leverageTiers": {s: tiers_from_ccxt(ts) for s, ts in (tiers or {}).items() if ts},
        "markets": mk_out,
        "ccxt": {"exchange": exchange_id, "walletBalanceFrom": wallet_src},
    }
    if timestamp is not None:
        doc["timestamp"] = int(timestamp)
    _account_forms(doc, exchange_id, wallet_src, upnl_total, hedged, markets)
    return doc


def _account_forms(doc, exchange_id, wallet_src, upnl_total, hedged, markets) -> None:
    """Hedge mode from ccxt's ``hedged``; wallet net of uPnL where ccxt's total is equity;
    Hyperliquid's maintenance rate 1/(2·max leverage) from the market when no tiers."""
    model = doc["exchange"]
    if hedged:
        doc["positionMode"] = "hedge"
    if model in _TOTAL_IS_EQUITY and wallet_src.endswith(".total"):
        doc["walletBalance"] = doc["walletBalance"] - upnl_total
        doc["ccxt"]["walletBalanceFrom"] = wallet_src + " - sum(positions.unrealizedPnl)"
    if model == "hyperliquid":
        for pos in doc["positions"]:
            sym = pos["symbol"]
            mx = _f(
                (((markets.get(sym) or {}).get("limits") or {}).get("leverage") or {}).get("max")
            )
            if sym not in doc["leverageTiers"] and mx and mx >= 1:
                doc["leverageTiers"][sym] = [
                    {"minNotional": 0, "maintenanceMarginRate": 1 / (2 * mx), "maxLeverage": mx}
                ]


def order_from_ccxt(
    symbol: str,
    type: str,
    side: str,
    amount: float,
    price: float | None = None,
    params: dict | None = None,
    *,
    leverage: float | None = None,
    margin_mode: str | None = None,
) -> Order:
    """A ``create_order`` call as a riskguard ``Order``.

    ``params.stopLoss`` (the stop attached to an entry) becomes ``stopLossPrice``; an
    order that *is* a stop or take-profit (``params.stopLossPrice``/``takeProfitPrice``,
    ccxt's conditional close) or ``reduceOnly``/``closePosition`` only reduces. In hedge
    mode the leg comes from ``positionSide``/``posSide``/``positionIdx`` (:func:`_leg`).
    """
    params = params or {}
    sl = params.get("stopLoss")
    sl_price = _f(sl.get("triggerPrice") if isinstance(sl, dict) else sl)
    reduce = bool(
        params.get("reduceOnly")
        or params.get("closePosition")
        or params.get("stopLossPrice") is not None
        or params.get("takeProfitPrice") is not None
    )
    return Order(
        symbol=symbol,
        side=side,
        amount=float(amount),
        type=type or "market",
        price=_f(price),
        reduceOnly=reduce,
        stopLossPrice=sl_price,
        leverage=_f(params.get("leverage")) or leverage,
        marginMode=params.get("marginMode") or margin_mode,
        clientOrderId=params.get("clientOrderId"),
        positionSide=_leg(params),
    )


def _leg(params: dict) -> str | None:
    """The hedge-mode leg an order names: Binance ``positionSide`` LONG|SHORT, OKX ``posSide``
    long|short, Bybit ``positionIdx`` 1|2. None: one-way, or ccxt's ``hedged`` flag alone
    (riskguard then infers the leg as ccxt does: a reduce-only order closes the opposite one)."""
    ps = params.get("positionSide") or params.get("posSide")
    if isinstance(ps, str) and ps.lower() in ("long", "short"):
        return ps.lower()
    return {1: "long", 2: "short", "1": "long", "2": "short"}.get(params.get("positionIdx"))


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


# --------------------------------------------------------------------------- guarded exchange

#: ccxt helpers that are create_order with fixed arguments: name -> (type, side) (None: an argument)
_HELPERS: dict[str, tuple[str | None, str | None]] = {
    "create_limit_order": ("limit", None),
    "create_market_order": ("market", None),
    "create_limit_buy_order": ("limit", "buy"),
    "create_limit_sell_order": ("limit", "sell"),
    "create_market_buy_order": ("market", "buy"),
    "create_market_sell_order": ("market", "sell"),
}
_ORDER_METHOD = re.compile(r"^(create|edit)_.*order|^create_orders?$")


class _GuardedBase:
    """Shared decision logic of the sync and async wrappers."""

    def __init__(
        self,
        exchange: Any,
        guard: Guard,
        *,
        resize: bool = False,
        snapshot: Callable[[list[str]], Any] | None = None,
        builder: SnapshotBuilder | None = None,
        leverage: float | None = None,
        margin_mode: str | None = None,
    ) -> None:
        object.__setattr__(self, "_exchange", exchange)
        self.guard = guard
        self.resize = resize
        self.builder = builder or SnapshotBuilder(exchange)
        self._snapshot = snapshot
        self.default_leverage = leverage
        self.default_margin_mode = margin_mode
        self._leverage: dict[str, float] = {}
        self._mode: dict[str, str] = {}
        self.last_decision: Any = None

    @property
    def exchange(self) -> Any:
        """The wrapped, unguarded exchange (for reads; its order methods bypass the guard)."""
        return self._exchange

    def _attached_stops(self) -> bool | None:
        """Whether ccxt places a ``params.stopLoss`` with the order on this exchange
        (``has["createOrderWithTakeProfitAndStopLoss"]``); None for a non-ccxt object."""
        has = getattr(self._exchange, "has", None)
        if not isinstance(has, dict) or "createOrderWithTakeProfitAndStopLoss" not in has:
            return None
        return has["createOrderWithTakeProfitAndStopLoss"] is True

    def _outgoing(self, params: dict | None) -> dict:
        """The params as sent: a bare-number ``stopLoss`` in ccxt's unified form
        ``{"triggerPrice": x}`` — ccxt's OKX reads only the dict and drops a number silently."""
        out = dict(params or {})
        sl = out.get("stopLoss")
        if sl is not None and not isinstance(sl, dict) and self._attached_stops():
            out["stopLoss"] = {"triggerPrice": sl}
        return out

    def _order(self, symbol, type, side, amount, price, params) -> Order:
        if params and params.get("stopLoss") is not None and self._attached_stops() is False:
            # ccxt cannot attach a stop to an order here (Binance): judge the order as the
            # exchange will hold it — without one — rather than on a stop that never exists
            params = {k: v for k, v in params.items() if k != "stopLoss"}
        return order_from_ccxt(
            symbol,
            type,
            side,
            amount,
            price,
            params,
            leverage=self._leverage.get(symbol, self.default_leverage),
            margin_mode=self._mode.get(symbol, self.default_margin_mode),
        )

    def _allowed_amount(self, decision: Any, order: Order) -> float:
        """The amount to send, or raise OrderRejected."""
        self.last_decision = decision
        if decision.allowed:
            return order.amount
        if decision.decision == "resize" and self.resize:
            allowed = decision.amount_to_send(order)  # 0 unless a positive resized amount
            amount = allowed
            to_precision = getattr(self._exchange, "amount_to_precision", None)
            if to_precision is not None:
                try:
                    amount = float(to_precision(order.symbol, allowed))
                except Exception:  # noqa: BLE001 - markets not loaded: send the guard's figure
                    amount = allowed
            if 0 < amount <= allowed:
                return amount
            raise OrderRejected(
                decision,
                f"riskguard resize: {order.symbol} allowed {allowed:g}, which rounds to "
                f"{amount:g} at the exchange's precision; nothing sent",
            )
        raise OrderRejected(decision)

    def _remember(self, name: str, args: tuple, kwargs: dict) -> None:
        if name == "set_leverage" and args:
            sym = args[1] if len(args) > 1 else kwargs.get("symbol")
            if sym:
                self._leverage[sym] = float(args[0])
        elif name == "set_margin_mode" and args:
            sym = args[1] if len(args) > 1 else kwargs.get("symbol")
            if sym:
                self._mode[sym] = str(args[0]).lower()

    def __getattr__(self, name: str) -> Any:
        snake = _snake(name)
        if (snake != name and snake in type(self).__dict__) or snake in _HELPERS:
            return getattr(self, snake)
        if _ORDER_METHOD.match(snake) or (snake.endswith("_ws") and "order" in snake):
            raise UnguardedMethod(
                f"{name} places orders the guard cannot check; use create_order(...) "
                "(stops and reduce-only orders go through it with params)"
            )
        attr = getattr(self._exchange, name)
        if snake in ("set_leverage", "set_margin_mode") and callable(attr):
            return self._remembering(snake, attr)
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name in _OWN_ATTRS:
            object.__setattr__(self, name, value)
        else:
            setattr(self._exchange, name, value)


_OWN_ATTRS = frozenset(
    {"guard", "resize", "builder", "default_leverage", "default_margin_mode", "last_decision"}
)


class GuardedExchange(_GuardedBase):
    """A ccxt exchange whose orders are checked by a :class:`riskguard.Guard` first."""

    def _remembering(self, name: str, fn: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            self._remember(name, args, kwargs)
            return out

        return call

    def _snap(self, symbols: list[str]) -> Any:
        if self._snapshot is not None:
            return self._snapshot(symbols)
        return self.builder.fetch(symbols)

    def check(self, symbol, type, side, amount, price=None, params=None) -> Any:
        """The guard's decision on an order, without sending it (nothing logged twice)."""
        order = self._order(symbol, type, side, amount, price, params)
        return self.guard.check(self._snap([symbol]), order)

    def create_order(self, symbol, type, side, amount, price=None, params=None) -> Any:
        order = self._order(symbol, type, side, amount, price, params)
        decision = self.guard.check(self._snap([symbol]), order)
        send = self._allowed_amount(decision, order)
        return self._exchange.create_order(symbol, type, side, send, price, self._outgoing(params))

    def create_orders(self, orders: list[dict], params: dict | None = None) -> Any:
        """All or nothing: every order is checked (against one snapshot) before any is sent."""
        symbols = list(dict.fromkeys(o["symbol"] for o in orders))
        snap = self._snap(symbols)
        out = []
        for o in orders:
            order = self._order(
                o["symbol"], o["type"], o["side"], o["amount"], o.get("price"), o.get("params")
            )
            send = self._allowed_amount(self.guard.check(snap, order), order)
            out.append({**o, "amount": send, "params": self._outgoing(o.get("params"))})
        return self._exchange.create_orders(out, params or {})

    def edit_order(self, id, symbol, type, side, amount=None, price=None, params=None) -> Any:
        """An edit is checked as the new order it becomes (conservative: the old one still counts)."""
        if amount is not None:
            order = self._order(symbol, type, side, amount, price, params)
            decision = self.guard.check(self._snap([symbol]), order)
            amount = self._allowed_amount(decision, order)
        return self._exchange.edit_order(
            id, symbol, type, side, amount, price, self._outgoing(params)
        )

    def create_limit_order(self, symbol, side, amount, price, params=None) -> Any:
        return self.create_order(symbol, "limit", side, amount, price, params)

    def create_market_order(self, symbol, side, amount, price=None, params=None) -> Any:
        return self.create_order(symbol, "market", side, amount, price, params)

    def create_limit_buy_order(self, symbol, amount, price, params=None) -> Any:
        return self.create_order(symbol, "limit", "buy", amount, price, params)

    def create_limit_sell_order(self, symbol, amount, price, params=None) -> Any:
        return self.create_order(symbol, "limit", "sell", amount, price, params)

    def create_market_buy_order(self, symbol, amount, params=None) -> Any:
        return self.create_order(symbol, "market", "buy", amount, None, params)

    def create_market_sell_order(self, symbol, amount, params=None) -> Any:
        return self.create_order(symbol, "market", "sell", amount, None, params)


class AsyncGuardedExchange(_GuardedBase):
    """The same for ``ccxt.async_support``: checks run inline, audit writes off the loop."""

    def _remembering(self, name: str, fn: Callable) -> Callable:
        async def call(*args: Any, **kwargs: Any) -> Any:
            out = await fn(*args, **kwargs)
            self._remember(name, args, kwargs)
            return out

        return call

    async def _snap(self, symbols: list[str]) -> Any:
        if self._snapshot is not None:
            import asyncio

            got = self._snapshot(symbols)
            return await got if asyncio.iscoroutine(got) else got
        return await self.builder.afetch(symbols)

    async def create_order(self, symbol, type, side, amount, price=None, params=None) -> Any:
        order = self._order(symbol, type, side, amount, price, params)
        decision = await self.guard.acheck(await self._snap([symbol]), order)
        send = self._allowed_amount(decision, order)
        return await self._exchange.create_order(
            symbol, type, side, send, price, self._outgoing(params)
        )

    async def create_limit_order(self, symbol, side, amount, price, params=None) -> Any:
        return await self.create_order(symbol, "limit", side, amount, price, params)

    async def create_market_order(self, symbol, side, amount, price=None, params=None) -> Any:
        return await self.create_order(symbol, "market", side, amount, price, params)

    async def create_limit_buy_order(self, symbol, amount, price, params=None) -> Any:
        return await self.create_order(symbol, "limit", "buy", amount, price, params)

    async def create_limit_sell_order(self, symbol, amount, price, params=None) -> Any:
        return await self.create_order(symbol, "limit", "sell", amount, price, params)

    async def create_market_buy_order(self, symbol, amount, params=None) -> Any:
        return await self.create_order(symbol, "market", "buy", amount, None, params)

    async def create_market_sell_order(self, symbol, amount, params=None) -> Any:
        return await self.create_order(symbol, "market", "sell", amount, None, params)


# --------------------------------------------------------------------------- executor


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What happened to one action: applied, refused by the exchange, skipped or failed."""

    action: Any
    status: str  # applied | refused | skipped | failed | dry-run
    detail: str = ""
    exchangeCode: str | None = None
    error: str | None = None
    response: Any = None

    def to_dict(self) -> dict:
        d = {"action": self.action.to_dict(), "status": self.status, "detail": self.detail}
        if self.exchangeCode is not None:
            d["exchangeCode"] = self.exchangeCode
        if self.error is not None:
            d["error"] = self.error
        return d


@dataclass(frozen=True, slots=True)
class Execution:
    """The decision as made, plus what the exchange did with each action."""

    decision: Any
    results: tuple[ExecutionResult, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> tuple[ExecutionResult, ...]:
        return tuple(r for r in self.results if r.status in ("refused", "failed"))

    def to_dict(self) -> dict:
        return {
            "decision": self.decision.to_dict(metrics=False),
            "execution": [r.to_dict() for r in self.results],
        }


DEFAULT_APPLY = ("set_stop_loss", "switch_margin_mode", "add_isolated_margin")

_BINANCE_IDS = frozenset({"binance", "binanceusdm", "binancecoinm"})


def leg_order_params(exchange_id: str, leg: str, margin_mode: str | None = None) -> dict:
    """The parameters that make a closing (reduce-only) order act on one hedge-mode leg.

    - Binance USDⓈ-M / COIN-M: ``positionSide: LONG|SHORT``, and no ``reduceOnly`` — Binance's
      "New Order (TRADE)" reference: reduceOnly "Cannot be sent in Hedge Mode"; a SELL on
      the LONG side can only close the long
      (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api).
    - OKX: ``posSide: long|short`` and the position's ``tdMode``; no ``reduceOnly`` — OKX
      "Place order": reduceOnly is "only applicable to ... FUTURES/SWAP orders in net mode";
      in long/short mode a sell with posSide long closes the long
      (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order).
    - Bybit: ``positionIdx: 1`` (the long leg, "hedge-mode Buy side") or ``2`` (the short,
      "Sell side") with ``reduceOnly: true`` (https://bybit-exchange.github.io/docs/v5/order/create-order;
      ccxt 4.5 sends both for a hedge-mode stop-loss).
    - Any other exchange: ccxt's unified ``hedged: true`` with ``reduceOnly: true``, which
      ccxt maps to the leg opposite the order's side — the leg being closed.

    These are what ccxt's own ``hedged`` option produces for the three (``binance.py``
    ``create_order_request``, ``okx.py`` ``create_order_request``, ``bybit.py``
    ``create_order_request``), stated explicitly so the leg never depends on inference.
    """
    if leg not in ("long", "short"):
        raise ValueError(f"a hedge-mode leg is long or short, not {leg!r}")
    if exchange_id in _BINANCE_IDS:
        return {"positionSide": leg.upper()}
    if exchange_id == "okx":
        return {"posSide": leg, **({"marginMode": margin_mode} if margin_mode else {})}
    if exchange_id == "bybit":
        return {"positionIdx": 1 if leg == "long" else 2, "reduceOnly": True}
    return {"hedged": True, "reduceOnly": True}


def leg_margin_params(exchange_id: str, leg: str) -> dict | None:
    """The parameter naming the leg for ``add_margin`` (None: no known way to name it).

    Binance "Modify Isolated Position Margin": ``positionSide`` LONG|SHORT "must be sent with
    Hedge Mode"; OKX "Increase/decrease margin": ``posSide`` long|short (ccxt's default is
    ``net``, the one-way leg)."""
    if exchange_id in _BINANCE_IDS:
        return {"positionSide": leg.upper()}
    if exchange_id == "okx":
        return {"posSide": leg}
    return None


_CODE = re.compile(r'"(?:code|retCode)"\s*:\s*"?(-?\d+)')


class CcxtExecutor:
    """Apply a decision's actions through ccxt — only the types in ``apply``, and only those
    proposed at ``min_severity`` or above (default ``error``: what the policy enforces; a
    stop only a warning-level rule proposes is advice and is skipped — pass
    ``min_severity="warning"`` to apply those too).

    ``reduce_position`` and ``close_position`` send market orders, so they are applied
    only when listed explicitly. An action the exchange model already marks infeasible
    (``feasible: false``, e.g. Binance's margin-mode switch with a position open) is
    skipped unless ``attempt_infeasible``; a refusal by the exchange is reported with its
    code and the decision is returned untouched.

    Hedge mode: an action names its leg (``positionSide``); the executor acts on that leg
    only — the position's size and side come from that leg, and the exchange receives its
    leg parameter (:func:`leg_order_params`: Binance ``positionSide``, OKX ``posSide``, Bybit
    ``positionIdx``). A stop for the long leg is a reduce-only sell on the LONG side. An
    action without a leg on a symbol held both ways is skipped, never guessed; an
    ``add_isolated_margin`` on an exchange with no known leg parameter is skipped too. A
    margin-mode switch is per symbol (both legs), so it is sent once per symbol.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        apply: Iterable[str] = DEFAULT_APPLY,
        attempt_infeasible: bool = False,
        dry_run: bool = False,
        min_severity: str = "error",
    ) -> None:
        from riskguard.engine.decision import SEVERITY_RANK

        if min_severity not in SEVERITY_RANK:
            raise ValueError(
                f"min_severity must be one of {', '.join(SEVERITY_RANK)}, not {min_severity!r}"
            )
        self.exchange = exchange.exchange if isinstance(exchange, _GuardedBase) else exchange
        self.apply = frozenset(apply)
        self.min_severity = min_severity
        self._rank = SEVERITY_RANK
        self.attempt_infeasible = attempt_infeasible
        self.dry_run = dry_run

    def execute(self, decision: Any) -> Execution:
        results = []
        switched: set[tuple[Any, Any]] = set()
        for a in decision.actions:
            if a.type == "switch_margin_mode" and a.type in self.apply:
                key = (a.symbol, a.params.get("to"))
                if key in switched:
                    results.append(
                        ExecutionResult(
                            a,
                            "skipped",
                            "the margin mode is per symbol: already sent for the other leg",
                        )
                    )
                    continue
                switched.add(key)
            results.append(self._one(decision, a))
        return Execution(decision, tuple(results))

    __call__ = execute  # an action sink is called with each decision

    def _position(self, decision: Any, symbol: str | None, leg: str | None = None) -> Any:
        m = decision.metrics
        if m is None or symbol is None:
            return None
        return m.position(symbol, leg) if leg is not None else m.position(symbol)

    def _leg(self, decision: Any, a: Any) -> tuple[str | None, str | None]:
        """(the action's hedge-mode leg or None in one-way mode, why it cannot be acted on)."""
        leg = getattr(a, "positionSide", None)
        if leg is not None:
            return leg, None
        m = decision.metrics
        if m is None or getattr(m, "positionMode", "oneway") != "hedge" or a.symbol is None:
            return None, None
        legs = {p.side for p in m.positions if p.symbol == a.symbol}
        if len(legs) > 1:
            return None, (
                "hedge mode: the action does not name its leg (positionSide) and the symbol "
                "holds both a long and a short; not guessing which"
            )
        return (next(iter(legs)) if legs else None), None

    def _one(self, decision: Any, a: Any) -> ExecutionResult:
        if a.type not in self.apply:
            return ExecutionResult(a, "skipped", "not in the executor's apply list")
        sev = getattr(a, "severity", None)
        if self._rank.get(str(sev), -1) < self._rank[self.min_severity]:
            return ExecutionResult(
                a,
                "skipped",
                f"proposed at severity {sev or 'unknown'} (by {a.rule}); the executor applies "
                f"{self.min_severity} and above (min_severity)",
            )
        p = a.params
        ex = self.exchange
        leg, why = self._leg(decision, a)
        if why is not None:
            return ExecutionResult(a, "skipped", why)
        ex_id = str(getattr(ex, "id", ""))
        if a.type == "switch_margin_mode":
            if p.get("feasible") is False and not self.attempt_infeasible:
                return ExecutionResult(
                    a,
                    "skipped",
                    f"the exchange refuses it now: {p.get('reason', '')}",
                    p.get("exchangeCode"),
                )
            call: Callable[[], Any] = lambda: ex.set_margin_mode(p["to"], a.symbol)  # noqa: E731
        elif a.type == "add_isolated_margin":
            if not (getattr(ex, "has", {}) or {}).get("addMargin", True):
                return ExecutionResult(
                    a, "skipped", f"ccxt has no addMargin for {getattr(ex, 'id', 'this exchange')}"
                )
            margin_params: dict = {}
            if leg is not None:
                found = leg_margin_params(ex_id, leg)
                if found is None:
                    return ExecutionResult(
                        a,
                        "skipped",
                        f"hedge mode: no known way to name the {leg} leg in add_margin on "
                        f"{ex_id or 'this exchange'}; not risking the other leg",
                    )
                margin_params = found
            if margin_params:
                call = lambda: ex.add_margin(a.symbol, p["amount"], margin_params)  # noqa: E731
            else:
                call = lambda: ex.add_margin(a.symbol, p["amount"])  # noqa: E731
        elif a.type in ("set_stop_loss", "reduce_position", "close_position"):
            pm = self._position(decision, a.symbol, leg)
            if pm is None:
                where = f"the {leg} leg of the symbol" if leg is not None else "the symbol"
                return ExecutionResult(a, "skipped", f"no position for {where} in the decision")
            close_side = "sell" if pm.side == "long" else "buy"
            closing: dict = (
                {"reduceOnly": True}
                if leg is None
                else leg_order_params(ex_id, pm.side, getattr(pm, "marginMode", None))
            )
            if a.type == "set_stop_loss":
                price = self._protective_price(a.symbol, p["price"], pm.side == "long")
                amount, params = pm.contracts, {"stopLossPrice": price, **closing}
            elif a.type == "reduce_position":
                amount, params = min(p["amount"], pm.contracts), closing
            else:
                amount, params = pm.contracts, closing
            call = lambda: ex.create_order(a.symbol, "market", close_side, amount, None, params)  # noqa: E731
        else:
            return ExecutionResult(a, "skipped", "not an exchange action")
        if self.dry_run:
            return ExecutionResult(a, "dry-run", "would be sent")
        try:
            resp = call()
        except Exception as exc:  # noqa: BLE001 - reported next to the decision, never lost
            return self._refusal(a, exc)
        return ExecutionResult(a, "applied", "sent", response=resp)

    def _protective_price(self, symbol: str, price: float, long: bool) -> float:
        """The stop on the exchange's price grid, rounded toward the mark, never past the
        proposed price (ccxt rounds to the nearest tick, which can put a long's stop a tick
        nearer liquidation than the policy allows)."""
        ex = self.exchange
        try:
            tick = float(ex.market(symbol)["precision"]["price"])
            on_grid = float(ex.price_to_precision(symbol, price))
        except Exception:  # noqa: BLE001 - no market data: let ccxt do as it does
            return price
        if not (tick > 0 and math.isfinite(on_grid)):
            return price
        if long and on_grid < price:
            on_grid = float(ex.price_to_precision(symbol, on_grid + tick))
        elif not long and on_grid > price:
            on_grid = float(ex.price_to_precision(symbol, on_grid - tick))
        return on_grid

    def _refusal(self, a: Any, exc: Exception) -> ExecutionResult:
        text = str(exc)
        m = _CODE.search(text)
        code = m.group(1) if m else None
        try:
            ccxt = _ccxt()
            refused = isinstance(exc, ccxt.ExchangeError) and not isinstance(exc, ccxt.NetworkError)
        except ImportError:  # pragma: no cover
            refused = False
        status = "refused" if refused else "failed"
        return ExecutionResult(a, status, text[:500], code, type(exc).__name__)


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
