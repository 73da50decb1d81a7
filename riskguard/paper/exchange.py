"""The paper exchange: ccxt's unified methods over accounts priced by a price path.

See the package docstring (``riskguard.paper``) for how to use it. This module holds the
state (:class:`PaperAccount`), the market driver (:meth:`PaperExchange.step`) and the
ccxt surface (sync :class:`PaperExchange`, async :class:`AsyncPaperExchange`).

Conventions, each a fact of the exchanges riskguard models (``riskguard/margin/``):

- **One-way mode**: one position per symbol and account; an order against it reduces it,
  then opens the other side with what remains (unless ``reduceOnly``).
- **Fills**: market orders and triggered stop / take-profit orders fill at the step's mark
  moved against the taker by ``slippage_bps``, paying ``taker_fee``; resting limit orders
  fill at their limit price when the mark reaches it, paying ``maker_fee``; a limit order
  that is marketable when placed fills at once as a taker. Fees are charged on the
  notional and come out of the wallet.
- **Fees in the trigger**: where the margin model counts the fee to close in the
  liquidation trigger (OKX, Gate, BingX), the rate is this exchange's taker fee, and
  :meth:`PaperExchange.snapshot` states it as the account's ``takerFeeRate`` so riskguard's
  metrics count the same. ``taker_fee`` defaults to the first snapshot's ``takerFeeRate``,
  else 0.05 %.
- **Margin**: opening needs ``notional / leverage`` plus the fee out of the available
  balance, ``cross wallet + cross uPnL − cross initial margin − open orders' margin``
  (Binance's ``availableBalance``); else ``InsufficientFunds`` (Binance ``-2019``). An
  isolated position's margin moves from the cross wallet into its isolated wallet.
- **Liquidation** is checked on every step with the margin model's own figures: an
  isolated position when its margin balance (isolated wallet + uPnL) falls to its
  maintenance margin plus the model's closing fee — the liquidation price the model
  reports; the cross pool when the cross wallet plus the cross positions' uPnL falls to
  their maintenance margin plus closing fees. The liquidated positions close at the
  step's mark and the remaining margin is forfeit (Binance: "the remaining margin … is
  contributed to the insurance fund"); an isolated liquidation therefore loses the whole
  isolated wallet, a cross liquidation the whole cross wallet, and the wallet never goes
  below zero (a gap past the bankruptcy price is the insurance fund's loss). Binance's
  partial liquidation of large positions in tier steps is not modelled.
- **Order of events in a step**: marks move, then triggered and marketable orders fill,
  then funding (when a funding time is crossed), then liquidation. A step whose mark is
  already past a position's liquidation price liquidates it *before* its stop can fill:
  a gap through stop and liquidation price together is a liquidation, never a lucky
  stop (the simulator must not favour policies).
- **Funding** (optional, ``funding_rate`` per 8 h, longs pay when positive) at 00:00,
  08:00 and 16:00 UTC, ``sign · notional · rate``, out of the wallet (for isolated
  positions out of the isolated wallet).
"""

from __future__ import annotations

import copy
import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from riskguard.errors import RiskguardError
from riskguard.margin.base import MarginModel, with_close_fee
from riskguard.model.slots import positional_constructor
from riskguard.model.snapshot import (
    LeverageTier,
    Market,
    Order,
    Position,
    Snapshot,
    derive_tiers,
    load_snapshot,
)

from .errors import ccxt_module, refusal

#: riskguard margin model -> the ccxt exchange id the paper exchange presents itself as
CCXT_IDS = {"binance": "binanceusdm", "bybit": "bybit"}

DEFAULT_TAKER_FEE = 0.0005  # 0.05 %: a base-tier perpetual taker rate

#: models whose ccxt balance ``total`` is equity, not the wallet (as ccxt parses them)
TOTAL_IS_EQUITY = frozenset({"binance", "bybit", "hyperliquid", "bitget"})
STOP_KINDS = ("stop_market", "take_profit_market")
FUNDING_INTERVAL_MS = 8 * 3600 * 1000


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

ATR_PERIOD = 14  # riskguard's enrichment defaults (riskguard/enrich.py)
RV_WINDOW = 20


class MarketStats:
    """ATR% (Wilder, 14) and realized volatility (20 log returns, % per candle) of one
    symbol's recorded candles, kept incrementally — the definitions of
    ``riskguard.model.volatility``, over the whole recorded history instead of a window."""

    __slots__ = ("_n", "_rets", "_s", "_ss", "_trs", "atr", "close")

    def __init__(self) -> None:
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
        tr = max(high - low, abs(high - prev), abs(low - prev))
        if self.atr is None:
            self._trs.append(tr)
            if len(self._trs) == ATR_PERIOD:
                self.atr = sum(self._trs) / ATR_PERIOD
                self._trs = []
        else:
            self.atr = (self.atr * (ATR_PERIOD - 1) + tr) / ATR_PERIOD
        if prev > 0 and close > 0:
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

    def __init__(self, symbol, side, contracts, entry, leverage, mode, iso, cs, inverse):
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

    @property
    def remaining(self) -> float:
        return max(self.amount - self.filled, 0.0)


class PaperAccount:
    """An account: wallet (incl. isolated margin, excl. uPnL), positions, orders, settings."""

    def __init__(self, name: str, wallet: float, settle: str = "USDT") -> None:
        self.name = name
        self.wallet = float(wallet)
        self.settle = settle
        self.positions: dict[str, PaperPosition] = {}
        self.orders: dict[str, PaperOrder] = {}  # open orders by id, in placement order
        self.closed: deque[PaperOrder] = deque(maxlen=1000)
        self.leverage: dict[str, float] = {}
        self.modes: dict[str, str] = {}
        self.fees = 0.0
        self.funding = 0.0
        self.upnl = 0.0  # Σ uPnL at the marks of the last liquidation check
        self.realized = 0.0
        self.liquidations: list[dict] = []


# --------------------------------------------------------------------------- the exchange


class PaperExchange:
    """A simulated futures exchange with ccxt's unified methods (see ``riskguard.paper``).

    ``accounts``: one snapshot (a :class:`~riskguard.Snapshot`, a snapshot document or a
    path) or a mapping ``name -> snapshot`` / a list of snapshots for several accounts.
    All accounts share the margin model (``model``, default: the first snapshot's
    ``exchange``), the markets and the marks. Methods act on the default account (the
    first) unless ``params={"account": name}`` says otherwise; :meth:`view` gives a
    ccxt-shaped handle bound to another account.
    """

    def __init__(
        self,
        accounts: Any = None,
        *,
        model: Any = None,
        taker_fee: float | None = None,
        maker_fee: float = 0.0002,
        slippage_bps: float = 0.0,
        funding_rate: float | None = None,
        default_leverage: float = 20.0,
        candle_history: int = 1000,
        snapshot_candles: int = 50,
        market_stats: bool = False,
        timestamp: int | None = None,
    ) -> None:
        ccxt_module()  # refusals are ccxt exceptions: fail at construction, not mid-run
        snaps = _snapshots(accounts)
        if model is None:
            model = snaps[0].exchange if snaps else "generic"
        base = _model(model)
        if taker_fee is None:  # the account's own taker rate when its snapshot states one
            stated = (snaps[0].extra or {}).get("takerFeeRate") if snaps else None
            taker_fee = float(stated) if isinstance(stated, (int, float)) else DEFAULT_TAKER_FEE
        self.taker_fee = float(taker_fee)
        # Where the exchange counts the fee to close in the liquidation trigger (OKX, Gate,
        # BingX), it is the account's taker rate: this exchange's own.
        self.model = with_close_fee(base, self.taker_fee) if base.takerFeeInTrigger else base
        self.id = CCXT_IDS.get(self.model.name, self.model.name)
        self.name = f"paper {self.model.title}"
        self.maker_fee = float(maker_fee)
        self.slippage = float(slippage_bps) / 10_000.0
        self.funding_rate = funding_rate
        self.default_leverage = float(default_leverage)
        self.snapshot_candles = int(snapshot_candles)
        self.market_stats = bool(market_stats)
        m = self.model
        self._fast = (
            m.mmBasis == "mark"
            and m.tierUnit == "notional"
            and type(m).maintenance_margin is MarginModel.maintenance_margin
            and type(m).unrealized_pnl is MarginModel.unrealized_pnl
        )
        self.stats: dict[str, MarketStats] = {}
        self._tier_views: dict[tuple, dict] = {}
        self.has = {
            "fetchBalance": True,
            "fetchPositions": True,
            "fetchPosition": True,
            "fetchOpenOrders": True,
            "fetchOrder": True,
            "fetchClosedOrders": True,
            "fetchLeverageTiers": True,
            "fetchTicker": True,
            "fetchTickers": True,
            "fetchOHLCV": True,
            "createOrder": True,
            "cancelOrder": True,
            "cancelAllOrders": True,
            "setMarginMode": True,
            "setLeverage": True,
            "addMargin": True,
            "reduceMargin": True,
        }
        self.options: dict = {}
        self.markets: dict[str, dict] = {}
        self.marks: dict[str, float] = {}
        self.tiers: dict[str, tuple[LeverageTier, ...]] = {}
        self.candles: dict[str, deque] = {}
        self._candle_history = int(candle_history)
        self.accounts: dict[str, PaperAccount] = {}
        self._ids = [0]  # shared with views
        self.events: list[dict] = []  # fills, liquidations, funding since the last drain
        self.now: int = 0
        stamps = [s.timestamp for s in snaps if s.timestamp is not None]
        self.now = int(timestamp if timestamp is not None else (min(stamps) if stamps else 0))
        for s in snaps:
            self._add_account(s)
        self._default = next(iter(self.accounts), None)

    # ------------------------------------------------------------------ set-up

    def _add_account(self, s: Snapshot) -> None:
        if s.account in self.accounts:
            raise ValueError(f"two accounts named {s.account!r}")
        syms = [p.symbol for p in s.positions]
        if getattr(s, "positionMode", "oneway") == "hedge" or len(set(syms)) != len(syms):
            raise RiskguardError(
                f"account {s.account}: the paper exchange runs one-way mode (one position "
                "per symbol); a hedge-mode snapshot cannot be simulated yet"
            )
        if getattr(s, "balances", ()):
            raise RiskguardError(
                f"account {s.account}: the paper exchange holds one settle currency; a "
                "multi-collateral snapshot (balances) cannot be simulated yet"
            )
        acct = PaperAccount(s.account, s.walletBalance, s.settle)
        for sym, ts in s.leverageTiers.items():
            self.tiers.setdefault(sym, ts)
        for sym, m in s.markets.items():
            self.add_market(sym, contract_size=m.contractSize)
            if m.markPrice is not None:
                self.marks.setdefault(sym, m.markPrice)
            if m.candles and sym not in self.candles:
                d = self.candles[sym] = deque(maxlen=self._candle_history)
                st = self.stats[sym] = MarketStats()
                for c in m.candles:
                    row = tuple(float(x) for x in c)
                    d.append(row)
                    st.add(row[2], row[3], row[4])
        for p in s.positions:
            self.add_market(p.symbol, contract_size=p.contractSize, inverse=p.inverse)
            mark = s.mark_price(p)
            if mark is not None:
                self.marks[p.symbol] = mark
            lev = p.leverage or self.default_leverage
            iso = p.isolatedMargin if p.marginMode == "isolated" else None
            if p.marginMode == "isolated" and iso is None:
                iso = p.size * p.entryPrice / lev
            acct.positions[p.symbol] = PaperPosition(
                p.symbol,
                p.side,
                p.contracts,
                p.entryPrice,
                lev,
                p.marginMode,
                iso,
                p.contractSize,
                p.inverse,
            )
            acct.leverage[p.symbol] = lev
            acct.modes[p.symbol] = p.marginMode
            if p.stopLossPrice is not None:
                self._place_trigger(acct, p, p.stopLossPrice, "stop_loss")
            if p.takeProfitPrice is not None:
                self._place_trigger(acct, p, p.takeProfitPrice, "take_profit")
        for o in s.openOrders:
            self.add_market(o.symbol)
            self._new_order(
                acct,
                o.symbol,
                o.type if o.type in ("limit", "market") else "limit",
                o.side,
                o.amount,
                o.price,
                reduce_only=o.reduceOnly,
                client_id=o.clientOrderId,
            )
        self.accounts[s.account] = acct

    def _place_trigger(self, acct: PaperAccount, p: Position, price: float, kind: str) -> None:
        side = "sell" if p.side == "long" else "buy"
        self._new_order(
            acct,
            p.symbol,
            "stop_market" if kind == "stop_loss" else "take_profit_market",
            side,
            p.contracts,
            None,
            reduce_only=True,
            trigger=price,
            kind=kind,
        )

    def add_market(
        self,
        symbol: str,
        *,
        contract_size: float | None = None,
        inverse: bool = False,
        tiers: Iterable[dict] | None = None,
    ) -> dict:
        """Make ``symbol`` tradable (markets are also created from snapshots and marks)."""
        m = self.markets.get(symbol)
        if m is None:
            base, _, rest = symbol.partition("/")
            quote, _, settle = rest.partition(":")
            settle = settle or quote
            m = {
                "id": _raw_symbol(symbol),
                "symbol": symbol,
                "base": base,
                "quote": quote,
                "settle": settle,
                "baseId": base,
                "quoteId": quote,
                "settleId": settle,
                "type": "swap",
                "spot": False,
                "margin": False,
                "swap": True,
                "future": False,
                "option": False,
                "active": True,
                "contract": True,
                "linear": not inverse,
                "inverse": bool(inverse),
                "contractSize": float(contract_size or 1.0),
                "expiry": None,
                "expiryDatetime": None,
                "strike": None,
                "optionType": None,
                "taker": self.taker_fee,
                "maker": self.maker_fee,
                "precision": {"amount": 1e-8, "price": 1e-8},
                "limits": {
                    "leverage": {"min": 1.0, "max": 125.0},
                    "amount": {"min": None, "max": None},
                    "price": {"min": None, "max": None},
                    "cost": {"min": None, "max": None},
                },
                "info": {"symbol": _raw_symbol(symbol), "paper": True},
            }
            self.markets[symbol] = m
        elif contract_size is not None:
            m["contractSize"] = float(contract_size)
        if tiers is not None:
            self.tiers[symbol] = derive_tiers(list(tiers))
            self._tier_views.clear()
        return m

    def view(self, account: str) -> PaperExchange:
        """This exchange (same markets, marks and accounts) acting on ``account`` by default."""
        if account not in self.accounts:
            raise KeyError(f"no account {account!r}; accounts: {', '.join(self.accounts)}")
        other = copy.copy(self)
        other._default = account
        return other

    @property
    def account(self) -> PaperAccount:
        """The default account."""
        return self.accounts[self._default]  # type: ignore[index]

    def _acct(self, params: dict | None) -> PaperAccount:
        name = (params or {}).get("account") or self._default
        try:
            return self.accounts[str(name)]
        except KeyError:
            raise self._refuse("bad_request", f"no account {name!r}") from None

    def _refuse(self, kind: str, detail: str = "", code: str | None = None) -> Exception:
        return refusal(self.id, self.model.name, kind, detail, code)

    def milliseconds(self) -> int:
        """The exchange's clock: the timestamp of the last step (ccxt's ``milliseconds``)."""
        return self.now

    def iso8601(self, ms: int | None) -> str | None:
        return _iso(ms)

    # ------------------------------------------------------------------ market driver

    def set_marks(self, marks: Mapping[str, float], timestamp: int | None = None) -> list[dict]:
        """Move the marks (one step of the path) and process fills and liquidations."""
        return self.step(marks, timestamp)

    def step(
        self,
        marks: Mapping[str, float],
        timestamp: int | None = None,
        *,
        candles: Mapping[str, Iterable[float]] | None = None,
        record: bool = True,
    ) -> list[dict]:
        """One step of the price path: set ``marks``, then fill triggered and marketable
        orders, pay funding when a funding time is crossed, and liquidate what the margin
        model says. Returns the events of the step (fills, funding, liquidations); they are
        also appended to :attr:`events`.

        ``candles`` (symbol -> ``[ts, o, h, l, c, v]``) records that candle for
        ``fetch_ohlcv``; without it each step records ``[ts, m, m, m, m, 0]`` per mark.
        ``record=False`` records no candle (for intra-candle sub-steps).
        """
        prev = self.now
        if timestamp is not None:
            self.now = int(timestamp)
        out: list[dict] = []
        markets = self.markets
        for sym, px in marks.items():
            px = float(px)
            if not px > 0 or px == math.inf:
                raise ValueError(f"mark price of {sym} must be a positive finite number, got {px}")
            if sym not in markets:
                self.add_market(sym)
            self.marks[sym] = px
            if record:
                d = self.candles.get(sym)
                if d is None:
                    d = self.candles[sym] = deque(maxlen=self._candle_history)
                    self.stats[sym] = MarketStats()
                c = candles.get(sym) if candles is not None else None
                row = (
                    tuple(float(x) for x in c)
                    if c is not None
                    else (float(self.now), px, px, px, px, 0.0)
                )
                d.append(row)
                self.stats[sym].add(row[2], row[3], row[4])
        funding = (
            self.funding_rate
            and timestamp is not None
            and self.now > prev
            and prev // FUNDING_INTERVAL_MS != self.now // FUNDING_INTERVAL_MS
        )
        for acct in self.accounts.values():
            if not acct.positions and not acct.orders:
                acct.upnl = 0.0
                continue
            self._liquidate(acct, out)  # a gap past liquidation: the liquidation comes first
            n = len(out)
            if acct.orders:
                self._fill_resting(acct, out)
            if funding:
                self._fund(acct, out)
            if len(out) > n:  # fills or funding moved the margin
                self._liquidate(acct, out)  # (and refreshes acct.upnl, 0 with no position)
        if out:
            self.events.extend(out)
        return out

    def drain_events(self) -> list[dict]:
        """The events since the last drain (and forget them)."""
        ev, self.events = self.events, []
        return ev

    def _fill_resting(self, acct: PaperAccount, out: list[dict]) -> None:
        marks = self.marks
        for o in list(acct.orders.values()):
            if o.status != "open":
                continue
            mark = marks.get(o.symbol)
            if mark is None:
                continue
            if o.trigger is not None:
                if (o.direction < 0 and mark <= o.trigger) or (
                    o.direction > 0 and mark >= o.trigger
                ):
                    self._execute(acct, o, self._taker_price(o.side, mark), self.taker_fee, out)
            elif (
                o.type == "limit"
                and o.price is not None
                and (
                    (o.side == "buy" and mark <= o.price) or (o.side == "sell" and mark >= o.price)
                )
            ):
                self._execute(acct, o, o.price, self.maker_fee, out)

    def _taker_price(self, side: str, mark: float) -> float:
        if not self.slippage:
            return mark
        return mark * (1.0 + self.slippage) if side == "buy" else mark * (1.0 - self.slippage)

    def _fund(self, acct: PaperAccount, out: list[dict]) -> None:
        rate = float(self.funding_rate or 0.0)
        for p in acct.positions.values():
            mark = self.marks[p.symbol]
            pay = p.sign * self.model.notional(p.position, mark) * rate
            acct.wallet -= pay
            acct.funding += pay
            if p.marginMode == "isolated":
                p.isolatedMargin = max((p.isolatedMargin or 0.0) - pay, 0.0)
                p.changed()
            out.append(
                {
                    "type": "funding",
                    "account": acct.name,
                    "timestamp": self.now,
                    "symbol": p.symbol,
                    "amount": -pay,
                }
            )

    # ------------------------------------------------------------------ margin figures

    def _figures(self, acct: PaperAccount) -> tuple[float, float, float, float, float]:
        """(cross wallet, cross uPnL, cross initial margin, cross MM + fees, Σ isolated)."""
        model = self.model
        fee = model.closeFeeRate
        iso_total = c_upnl = c_im = c_need = 0.0
        for p in acct.positions.values():
            if p.marginMode == "isolated":
                iso_total += p.isolatedMargin or 0.0
                continue
            mark = self.marks[p.symbol]
            pos = p.position
            c_upnl += model.unrealized_pnl(pos, mark)
            notional = model.notional(pos, mark)
            c_im += notional / p.leverage
            mm, _ = model.maintenance_margin(pos, self.tiers.get(p.symbol, ()), mark)
            c_need += mm + fee * notional
        return acct.wallet - iso_total, c_upnl, c_im, c_need, iso_total

    def _order_margin(self, acct: PaperAccount) -> float:
        total = 0.0
        for o in acct.orders.values():
            if o.reduceOnly or o.trigger is not None:
                continue
            px = o.price or self.marks.get(o.symbol)
            if px is None:
                continue
            cs = self.markets[o.symbol]["contractSize"]
            lev = acct.leverage.get(o.symbol, self.default_leverage)
            total += o.remaining * cs * px / lev
        return total

    def available(self, acct: PaperAccount | None = None) -> float:
        """Binance's ``availableBalance``: cross wallet + cross uPnL − cross IM − order IM."""
        acct = acct or self.account
        cw, cu, cim, _, _ = self._figures(acct)
        return cw + cu - cim - self._order_margin(acct)

    def _liquidate(self, acct: PaperAccount, out: list[dict]) -> None:
        model = self.model
        fee = model.closeFeeRate
        marks = self.marks
        tiers = self.tiers
        fast = self._fast
        deduct = model.mmDeduction
        default_rate = model.defaultMaintenanceMarginRate
        iso_total = c_upnl = c_need = upnl = 0.0
        cross: list[PaperPosition] = []
        for p in list(acct.positions.values()):
            mark = marks.get(p.symbol)
            if mark is None:
                continue
            if fast and not p.inverse:
                # the base model's arithmetic, inlined (mark basis, tiers on notional)
                size = p.contracts * p.contractSize
                u = (size if p.side == "long" else -size) * (mark - p.entryPrice)
                notional = size * mark
                ts = tiers.get(p.symbol)
                if ts:
                    t = ts[0]
                    for t2 in ts:
                        if t2.minNotional <= notional:
                            t = t2
                        else:
                            break
                    mm = notional * t.maintenanceMarginRate - (
                        t.maintenanceAmount if deduct else 0.0
                    )
                    if mm < 0.0:
                        mm = 0.0
                else:
                    mm = notional * default_rate if default_rate is not None else 0.0
                need = mm + fee * notional
            else:
                pos = p.position
                u = model.unrealized_pnl(pos, mark)
                mm, tier = model.maintenance_margin(pos, tiers.get(p.symbol, ()), mark)
                if tier is None:
                    mm = 0.0  # no tier and no default rate: the model cannot say
                need = mm + fee * model.notional(pos, mark)
            if p.marginMode == "isolated":
                iso = p.isolatedMargin or 0.0
                if iso + u <= need:
                    del acct.positions[p.symbol]
                    acct.wallet = max(acct.wallet - iso, 0.0)
                    acct.realized -= iso
                    self._cancel_reduce_only(acct, p.symbol)
                    ev = self._liq_event(acct, "isolated", [(p, mark)], iso, iso + u - need)
                    out.append(ev)
                else:
                    iso_total += iso
                    upnl += u
            else:
                c_upnl += u
                c_need += need
                cross.append(p)
        acct.upnl = upnl + c_upnl
        if not cross:
            return
        cross_wallet = acct.wallet - iso_total
        if cross_wallet + c_upnl <= c_need:
            lost = max(cross_wallet, 0.0)
            for p in cross:
                del acct.positions[p.symbol]
                self._cancel_reduce_only(acct, p.symbol)
            acct.wallet = max(acct.wallet - lost, 0.0)
            acct.realized -= lost
            acct.upnl = upnl
            out.append(
                self._liq_event(
                    acct,
                    "cross",
                    [(p, marks[p.symbol]) for p in cross],
                    lost,
                    cross_wallet + c_upnl - c_need,
                )
            )

    def _liq_event(self, acct, scope, rows, loss, surplus) -> dict:
        ev = {
            "type": "liquidation",
            "account": acct.name,
            "timestamp": self.now,
            "scope": scope,
            "positions": [
                {
                    "symbol": p.symbol,
                    "side": p.side,
                    "contracts": p.contracts,
                    "entryPrice": p.entryPrice,
                    "markPrice": mark,
                }
                for p, mark in rows
            ],
            "loss": loss,
            "marginBalanceMinusMaintenance": surplus,
        }
        acct.liquidations.append(ev)
        return ev

    def _cancel_reduce_only(self, acct: PaperAccount, symbol: str) -> None:
        """A closed position's reduce-only orders expire (Binance cancels them)."""
        for oid, o in list(acct.orders.items()):
            if o.symbol == symbol and o.reduceOnly:
                o.status = "canceled"
                del acct.orders[oid]
                acct.closed.append(o)

    # ------------------------------------------------------------------ fills

    def _execute(
        self, acct: PaperAccount, o: PaperOrder, price: float, fee_rate: float, out: list[dict]
    ) -> None:
        """Fill what remains of ``o`` at ``price`` (reduce-only orders shrink to the position)."""
        amount = o.remaining
        pos = acct.positions.get(o.symbol)
        if o.reduceOnly:
            if pos is None or (pos.side == "long") == (o.side == "buy"):
                self._close_order(acct, o, "canceled")
                return
            amount = min(amount, pos.contracts)
        else:
            opening = self._opening_amount(pos, o.side, amount)
            if opening > 0:
                need = self._open_margin(acct, o.symbol, opening, price, fee_rate, amount)
                # the order's own margin is counted in the available balance: free it first
                if need > self.available(acct) + self._own_margin(acct, o) + 1e-12:
                    self._close_order(acct, o, "rejected")
                    out.append(
                        {
                            "type": "rejected",
                            "account": acct.name,
                            "timestamp": self.now,
                            "orderId": o.id,
                            "symbol": o.symbol,
                            "reason": "insufficient margin when triggered",
                        }
                    )
                    return
        fee = self._apply_fill(acct, o.symbol, o.side, amount, price, fee_rate, o.reduceOnly)
        o.filled += amount
        o.cost += amount * self.markets[o.symbol]["contractSize"] * price
        o.average = price
        o.fee += fee
        if o.remaining <= 1e-12 or o.reduceOnly:
            self._close_order(acct, o, "closed")
        out.append(
            {
                "type": "fill",
                "account": acct.name,
                "timestamp": self.now,
                "orderId": o.id,
                "symbol": o.symbol,
                "side": o.side,
                "amount": amount,
                "price": price,
                "fee": fee,
                "orderType": o.type,
                "kind": o.kind,
                "reduceOnly": o.reduceOnly,
            }
        )

    def _own_margin(self, acct: PaperAccount, o: PaperOrder) -> float:
        if o.reduceOnly or o.trigger is not None or o.id not in acct.orders:
            return 0.0
        px = o.price or self.marks.get(o.symbol) or 0.0
        lev = acct.leverage.get(o.symbol, self.default_leverage)
        return o.remaining * self.markets[o.symbol]["contractSize"] * px / lev

    def _close_order(self, acct: PaperAccount, o: PaperOrder, status: str) -> None:
        o.status = status
        acct.orders.pop(o.id, None)
        acct.closed.append(o)

    @staticmethod
    def _opening_amount(pos: PaperPosition | None, side: str, amount: float) -> float:
        if pos is None:
            return amount
        if (pos.side == "long") == (side == "buy"):
            return amount
        return max(amount - pos.contracts, 0.0)

    def _open_margin(self, acct, symbol, opening, price, fee_rate, amount) -> float:
        m = self.markets[symbol]
        cs = m["contractSize"]
        lev = acct.leverage.get(symbol, self.default_leverage)
        notional = opening * cs / price if m["inverse"] else opening * cs * price
        full = amount * cs / price if m["inverse"] else amount * cs * price
        return notional / lev + fee_rate * full

    def _apply_fill(
        self,
        acct: PaperAccount,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        fee_rate: float,
        reduce_only: bool,
    ) -> float:
        m = self.markets[symbol]
        cs, inverse = m["contractSize"], m["inverse"]
        notional = amount * cs / price if inverse else amount * cs * price
        fee = fee_rate * notional
        acct.wallet -= fee
        acct.fees += fee
        pos = acct.positions.get(symbol)
        buy = side == "buy"
        rest = amount
        if pos is not None and (pos.side == "long") != buy:
            q = min(amount, pos.contracts)
            realized = self.model.unrealized_pnl(_with(pos.position, contracts=q), price)
            if pos.marginMode == "isolated":
                share = (pos.isolatedMargin or 0.0) * q / pos.contracts
                realized = max(realized, -share)  # an isolated loss stops at its margin
                pos.isolatedMargin = (pos.isolatedMargin or 0.0) - share
            acct.wallet = max(acct.wallet + realized, 0.0)
            acct.realized += realized
            pos.contracts -= q
            rest = amount - q
            if pos.contracts <= 1e-12:
                del acct.positions[symbol]
                self._cancel_reduce_only(acct, symbol)
                pos = None
            else:
                pos.changed()
        if rest > 1e-12 and not reduce_only:
            lev = acct.leverage.get(symbol, self.default_leverage)
            mode = acct.modes.get(symbol, "cross")
            add_im = (rest * cs / price if inverse else rest * cs * price) / lev
            if pos is None:
                acct.positions[symbol] = PaperPosition(
                    symbol,
                    "long" if buy else "short",
                    rest,
                    price,
                    lev,
                    mode,
                    add_im if mode == "isolated" else None,
                    cs,
                    inverse,
                )
            else:
                total = pos.contracts + rest
                if inverse:  # the average entry of inverse contracts is harmonic
                    pos.entryPrice = total / (pos.contracts / pos.entryPrice + rest / price)
                else:
                    pos.entryPrice = (pos.entryPrice * pos.contracts + price * rest) / total
                pos.contracts = total
                if pos.marginMode == "isolated":
                    pos.isolatedMargin = (pos.isolatedMargin or 0.0) + add_im
                pos.changed()
        return fee

    # ------------------------------------------------------------------ orders

    def _new_order(
        self,
        acct: PaperAccount,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        *,
        reduce_only: bool = False,
        trigger: float | None = None,
        kind: str | None = None,
        client_id: str | None = None,
    ) -> PaperOrder:
        self._ids[0] += 1
        o = PaperOrder(
            id=str(self._ids[0]),
            clientOrderId=client_id,
            symbol=symbol,
            type=type,
            side=side,
            amount=float(amount),
            price=None if price is None else float(price),
            reduceOnly=bool(reduce_only),
            timestamp=self.now,
        )
        if trigger is not None:
            o.trigger = float(trigger)
            o.kind = kind or "trigger"
            mark = self.marks.get(symbol)
            if kind == "stop_loss":
                o.direction = -1 if side == "sell" else 1
            elif kind == "take_profit":
                o.direction = 1 if side == "sell" else -1
            else:
                o.direction = -1 if mark is not None and o.trigger < mark else 1
        acct.orders[o.id] = o
        return o

    # ------------------------------------------------------------------ snapshot

    def snapshot(self, account: str | None = None, symbols: Iterable[str] = ()) -> Snapshot:
        """The account as a riskguard :class:`~riskguard.Snapshot` (what the exchange holds).

        Stops are read from the open reduce-only stop orders the way
        ``snapshot_from_ccxt`` reads them (the first to trigger on the adverse side of the
        mark); markets carry the mark, contract size and the last ``snapshot_candles``
        candles of every held symbol and of ``symbols`` — or, with ``market_stats=True``,
        no candles but their ATR% and realized volatility kept incrementally
        (:class:`MarketStats`, what the simulator uses: O(1) per step, not O(candles)).
        """
        acct = self.accounts[account or self._default]  # type: ignore[index]
        marks = self.marks
        stops = _stops(acct)
        positions = []
        for p in acct.positions.values():
            mark = marks.get(p.symbol)
            positions.append(
                _new_position(
                    p.symbol,
                    p.side,
                    p.contracts,
                    p.entryPrice,
                    mark,
                    p.leverage,
                    p.marginMode,
                    p.contractSize,
                    p.isolatedMargin if p.marginMode == "isolated" else None,
                    p.inverse,
                    _first_stop(stops, p, mark) if stops else None,
                    None,
                    None,
                    {},
                )
            )
        orders = tuple(
            Order(
                symbol=o.symbol,
                side=o.side,
                amount=o.remaining,
                type=o.type,
                price=o.price or None,
            )
            for o in acct.orders.values()
            if o.trigger is None and not o.reduceOnly and o.remaining > 0
        )
        wanted = tuple(dict.fromkeys([*acct.positions, *symbols]))
        n = self.snapshot_candles
        markets = {}
        for sym in wanted:
            cs = self.markets[sym]["contractSize"] if sym in self.markets else None
            if self.market_stats:
                st = self.stats.get(sym)
                atr = rv = None
                if st is not None:
                    atr, rv = st.atr_pct, st.realized_vol_pct
                markets[sym] = _new_market(
                    marks.get(sym), atr, (), cs, {} if rv is None else {"realizedVolPct": rv}
                )
                continue
            c = self.candles.get(sym)
            rows: tuple = ()
            if c and n > 0:
                rows = tuple(list(c)[-n:]) if len(c) > n else tuple(c)
            markets[sym] = _new_market(marks.get(sym), None, rows, cs, {})
        tiers = self._tier_views.get(wanted)
        if tiers is None:  # one dict per set of symbols, shared by every snapshot (read-only)
            tiers = self._tier_views[wanted] = {s: self.tiers[s] for s in wanted if s in self.tiers}
        return Snapshot(
            walletBalance=acct.wallet,
            positions=tuple(positions),
            exchange=self.model.name,
            account=acct.name,
            settle=acct.settle,
            timestamp=self.now,
            openOrders=orders,
            leverageTiers=tiers,
            markets=markets,
            extra={"takerFeeRate": self.taker_fee} if self.model.takerFeeInTrigger else {},
        )

    def equity(self, account: str | None = None) -> float:
        """Wallet + Σ uPnL at the current marks."""
        acct = self.accounts[account or self._default]  # type: ignore[index]
        u = 0.0
        for p in acct.positions.values():
            u += self.model.unrealized_pnl(p.position, self.marks[p.symbol])
        return acct.wallet + u

    # ================================================================== ccxt surface

    def load_markets(self, reload: bool = False, params: dict | None = None) -> dict:
        return self.markets

    def market(self, symbol: str) -> dict:
        try:
            return self.markets[symbol]
        except KeyError:
            raise self._refuse(
                "bad_symbol", f"{self.id} does not have market symbol {symbol}"
            ) from None

    def amount_to_precision(self, symbol: str, amount: float) -> str:
        self.market(symbol)
        return repr(math.floor(float(amount) * 1e8 + 1e-6) / 1e8)

    def price_to_precision(self, symbol: str, price: float) -> str:
        self.market(symbol)
        return repr(round(float(price), 8))

    def fetch_balance(self, params: dict | None = None) -> dict:
        acct = self._acct(params)
        cw, cu, cim, _, iso = self._figures(acct)
        iso_u = sum(
            self.model.unrealized_pnl(p.position, self.marks[p.symbol])
            for p in acct.positions.values()
            if p.marginMode == "isolated"
        )
        upnl = cu + iso_u
        order_im = self._order_margin(acct)
        free = cw + cu - cim - order_im
        used = cim + iso + order_im
        settle = acct.settle
        margin_balance = acct.wallet + upnl
        if self.model.name == "bybit":
            total = margin_balance
            info: dict = {
                "retCode": 0,
                "retMsg": "OK",
                "result": {
                    "list": [
                        {
                            "accountType": "UNIFIED",
                            "totalEquity": _s(margin_balance),
                            "totalWalletBalance": _s(acct.wallet),
                            "coin": [
                                {
                                    "coin": settle,
                                    "walletBalance": _s(acct.wallet),
                                    "equity": _s(margin_balance),
                                    "unrealisedPnl": _s(upnl),
                                    "totalPositionIM": _s(cim + iso),
                                    "totalOrderIM": _s(order_im),
                                }
                            ],
                        }
                    ]
                },
            }
        else:
            # ccxt's total is the margin balance (wallet + uPnL) for Binance, Hyperliquid
            # (accountValue) and Bitget (accountEquity); the other paper models report the
            # wallet itself as total, which is what snapshot_from_ccxt reads for them.
            total = margin_balance if self.model.name in TOTAL_IS_EQUITY else acct.wallet
            info = {
                "totalWalletBalance": _s(acct.wallet),
                "totalUnrealizedProfit": _s(upnl),
                "totalMarginBalance": _s(margin_balance),
                "availableBalance": _s(free),
                "assets": [
                    {
                        "asset": settle,
                        "walletBalance": _s(acct.wallet),
                        "unrealizedProfit": _s(upnl),
                        "marginBalance": _s(margin_balance),
                        "crossWalletBalance": _s(cw),
                        "crossUnPnl": _s(cu),
                        "availableBalance": _s(free),
                        "initialMargin": _s(used),
                    }
                ],
            }
        row = {"free": free, "used": used, "total": total}
        return {
            "info": info,
            settle: row,
            "free": {settle: free},
            "used": {settle: used},
            "total": {settle: total},
            "timestamp": self.now,
            "datetime": _iso(self.now),
        }

    def _metrics(self, acct: PaperAccount) -> Any:
        from riskguard.margin.metrics import compute_metrics

        return compute_metrics(self.snapshot(acct.name), self.model)

    def fetch_positions(self, symbols: list[str] | None = None, params: dict | None = None) -> list:
        acct = self._acct(params)
        if not acct.positions:
            return []
        met = self._metrics(acct)
        stops = _stops(acct)
        out = []
        for pm in met.positions:
            if symbols and pm.symbol not in symbols:
                continue
            out.append(self._ccxt_position(acct, acct.positions[pm.symbol], pm, stops))
        return out

    def fetch_position(self, symbol: str, params: dict | None = None) -> dict | None:
        got = self.fetch_positions([symbol], params)
        return got[0] if got else None

    def _ccxt_position(self, acct, p: PaperPosition, pm: Any, stops) -> dict:
        iso = p.marginMode == "isolated"
        mark = pm.markPrice
        u = pm.unrealizedPnl
        im = pm.initialMargin
        sl = _first_stop(stops, p, mark)
        tp = _first_tp(acct, p)
        signed = p.contracts if p.side == "long" else -p.contracts
        if self.model.name == "bybit":
            info: dict = {
                "symbol": _raw_symbol(p.symbol),
                "side": "Buy" if p.side == "long" else "Sell",
                "size": _s(p.contracts),
                "avgPrice": _s(p.entryPrice),
                "markPrice": _s(mark),
                "positionValue": _s(pm.notional),
                "leverage": _s(p.leverage),
                "tradeMode": 1 if iso else 0,
                "positionBalance": _s(p.isolatedMargin if iso else im),
                "positionIM": _s(im),
                "positionMM": _s(pm.maintenanceMargin),
                "unrealisedPnl": _s(u),
                "liqPrice": _s(pm.liquidationPrice) or "",
                "stopLoss": _s(sl) or "0",
                "takeProfit": _s(tp) or "0",
                "positionIdx": 0,
            }
        else:
            info = {
                "symbol": _raw_symbol(p.symbol),
                "positionAmt": _s(signed),
                "entryPrice": _s(p.entryPrice),
                "markPrice": _s(mark),
                "unRealizedProfit": _s(u),
                "liquidationPrice": _s(pm.liquidationPrice or 0.0),
                "leverage": _s(p.leverage),
                "marginType": "isolated" if iso else "cross",
                "isolatedMargin": _s((p.isolatedMargin or 0.0) + u if iso else 0.0),
                "isolatedWallet": _s(p.isolatedMargin if iso else 0.0),
                "positionSide": "BOTH",
                "notional": _s(pm.notional * (1 if p.side == "long" else -1)),
                "maintMargin": _s(pm.maintenanceMargin),
                "updateTime": self.now,
            }
        mm = pm.maintenanceMargin
        return {
            "info": info,
            "id": None,
            "symbol": p.symbol,
            "timestamp": self.now,
            "datetime": _iso(self.now),
            "lastUpdateTimestamp": self.now,
            "initialMargin": im,
            "initialMarginPercentage": im / pm.notional if pm.notional else None,
            "maintenanceMargin": mm,
            "maintenanceMarginPercentage": pm.maintenanceMarginRate,
            "entryPrice": p.entryPrice,
            "notional": pm.notional,
            "leverage": p.leverage,
            "unrealizedPnl": u,
            "realizedPnl": None,
            "contracts": p.contracts,
            "contractSize": p.contractSize,
            "marginRatio": None,
            "liquidationPrice": pm.liquidationPrice,
            "markPrice": mark,
            "lastPrice": mark,
            "collateral": (p.isolatedMargin or 0.0) + u if iso else None,
            "marginMode": p.marginMode,
            "side": p.side,
            "percentage": (u / im * 100.0) if im else None,
            # Binance positions carry no stop (ccxt: undefined); Bybit's carry theirs
            "stopLossPrice": sl if self.model.name != "binance" else None,
            "takeProfitPrice": None,  # take-profits are orders here (fetch_open_orders)
            "hedged": False,
        }

    def _ccxt_order(self, o: PaperOrder) -> dict:
        binance_type = {
            "market": "MARKET",
            "limit": "LIMIT",
            "stop_market": "STOP_MARKET",
            "take_profit_market": "TAKE_PROFIT_MARKET",
        }.get(o.type, o.type.upper())
        status = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED"}.get(
            o.status, "EXPIRED"
        )
        return {
            "info": {
                "orderId": o.id,
                "clientOrderId": o.clientOrderId,
                "symbol": _raw_symbol(o.symbol),
                "status": status,
                "type": binance_type,
                "origType": binance_type,
                "side": o.side.upper(),
                "origQty": _s(o.amount),
                "executedQty": _s(o.filled),
                "price": _s(o.price or 0.0),
                "avgPrice": _s(o.average or 0.0),
                "stopPrice": _s(o.trigger or 0.0),
                "reduceOnly": o.reduceOnly,
                "closePosition": False,
                "positionSide": "BOTH",
                "updateTime": self.now,
            },
            "id": o.id,
            "clientOrderId": o.clientOrderId,
            "timestamp": o.timestamp,
            "datetime": _iso(o.timestamp),
            "lastTradeTimestamp": None,
            "lastUpdateTimestamp": self.now,
            "status": o.status,
            "symbol": o.symbol,
            "type": o.type,
            "timeInForce": "GTC" if o.type == "limit" else None,
            "postOnly": False,
            "reduceOnly": o.reduceOnly,
            "side": o.side,
            "price": o.price,
            "average": o.average,
            "amount": o.amount,
            "filled": o.filled,
            "remaining": o.remaining,
            "cost": o.cost,
            "trades": [],
            "fee": {"cost": o.fee, "currency": self.markets[o.symbol]["settle"]},
            "fees": [{"cost": o.fee, "currency": self.markets[o.symbol]["settle"]}],
            "triggerPrice": o.trigger,
            "stopPrice": o.trigger,
            "stopLossPrice": o.trigger if o.kind == "stop_loss" else None,
            "takeProfitPrice": o.trigger if o.kind == "take_profit" else None,
        }

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list:
        acct = self._acct(params)
        out = [
            self._ccxt_order(o)
            for o in acct.orders.values()
            if symbol is None or o.symbol == symbol
        ]
        return out[-limit:] if limit else out

    def fetch_closed_orders(self, symbol=None, since=None, limit=None, params=None) -> list:
        acct = self._acct(params)
        out = [self._ccxt_order(o) for o in acct.closed if symbol is None or o.symbol == symbol]
        return out[-limit:] if limit else out

    def fetch_order(self, id: str, symbol: str | None = None, params: dict | None = None) -> dict:
        acct = self._acct(params)
        o = acct.orders.get(str(id)) or next((c for c in acct.closed if c.id == str(id)), None)
        if o is None:
            raise self._refuse("order_not_found", f"order {id}")
        return self._ccxt_order(o)

    def fetch_leverage_tiers(
        self, symbols: list[str] | None = None, params: dict | None = None
    ) -> dict:
        out = {}
        for sym in symbols or list(self.tiers):
            ts = self.tiers.get(sym)
            if ts is None:
                continue
            rows = []
            for i, t in enumerate(ts):
                if self.model.name == "bybit":
                    info: dict = {
                        "id": i + 1,
                        "symbol": _raw_symbol(sym),
                        "riskLimitValue": _s(t.maxNotional),
                        "maintenanceMargin": _s(t.maintenanceMarginRate),
                        "maxLeverage": _s(t.maxLeverage),
                        "mmDeduction": _s(t.maintenanceAmount),
                    }
                elif self.model.name == "bingx":
                    info = {
                        "tier": i + 1,
                        "maintMarginRatio": _s(t.maintenanceMarginRate),
                        "maintAmount": _s(t.maintenanceAmount),
                    }
                else:
                    info = {
                        "bracket": str(i + 1),
                        "initialLeverage": _s(t.maxLeverage),
                        "notionalCap": _s(t.maxNotional),
                        "notionalFloor": _s(t.minNotional),
                        "maintMarginRatio": _s(t.maintenanceMarginRate),
                        "cum": _s(t.maintenanceAmount),
                    }
                rows.append(
                    {
                        "tier": t.tier if t.tier is not None else i + 1,
                        "symbol": sym,
                        "currency": self.markets.get(sym, {}).get("settle"),
                        "minNotional": t.minNotional,
                        "maxNotional": t.maxNotional,
                        "maintenanceMarginRate": t.maintenanceMarginRate,
                        "maxLeverage": t.maxLeverage,
                        "info": info,
                    }
                )
            out[sym] = rows
        return out

    def fetch_ticker(self, symbol: str, params: dict | None = None) -> dict:
        self.market(symbol)
        mark = self.marks.get(symbol)
        c = self.candles.get(symbol)
        last = c[-1] if c else None
        return {
            "symbol": symbol,
            "timestamp": self.now,
            "datetime": _iso(self.now),
            "high": last[2] if last else mark,
            "low": last[3] if last else mark,
            "bid": mark,
            "ask": mark,
            "open": last[1] if last else mark,
            "close": mark,
            "last": mark,
            "markPrice": mark,
            "indexPrice": mark,
            "baseVolume": last[5] if last else None,
            "info": {"symbol": _raw_symbol(symbol), "markPrice": _s(mark)},
        }

    def fetch_tickers(self, symbols: list[str] | None = None, params: dict | None = None) -> dict:
        return {
            s: self.fetch_ticker(s) for s in (symbols or list(self.markets)) if s in self.markets
        }

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list:
        """The candles the path recorded (one per step; ``timeframe`` is the path's own)."""
        self.market(symbol)
        rows = [list(c) for c in self.candles.get(symbol, ())]
        for r in rows:
            r[0] = int(r[0])
        if since is not None:
            rows = [r for r in rows if r[0] >= since]
        return rows[-limit:] if limit else rows

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict | None = None,
    ) -> dict:
        """ccxt's ``create_order``: market, limit, stop-market and take-profit (via
        ``params.stopLossPrice`` / ``takeProfitPrice`` / ``triggerPrice`` or the types
        ``stop_market`` / ``take_profit_market`` with ``params.stopPrice``), ``reduceOnly``,
        ``clientOrderId``; ``params.stopLoss`` attaches a stop to an entry."""
        params = dict(params or {})
        acct = self._acct(params)
        self.market(symbol)
        side = str(side).lower()
        type = str(type).lower()
        if side not in ("buy", "sell"):
            raise self._refuse("bad_request", f"side must be buy or sell, got {side!r}")
        try:
            amount = float(amount)
        except (TypeError, ValueError):
            raise self._refuse("bad_request", f"amount {amount!r}") from None
        if not amount > 0 or not math.isfinite(amount):
            raise self._refuse("bad_request", f"amount must be > 0, got {amount}")
        reduce_only = bool(params.get("reduceOnly") or params.get("closePosition"))
        trigger, kind = None, None
        for key, k in (("stopLossPrice", "stop_loss"), ("takeProfitPrice", "take_profit")):
            if params.get(key) is not None:
                trigger, kind, reduce_only = float(params[key]), k, True
        if trigger is None:
            for key in ("triggerPrice", "stopPrice"):
                if params.get(key) is not None:
                    trigger = float(params[key])
                    kind = {"stop_market": "stop_loss", "take_profit_market": "take_profit"}.get(
                        type, "trigger"
                    )
                    break
        if type in STOP_KINDS and trigger is None:
            raise self._refuse("bad_request", f"a {type} order needs params.stopPrice")
        if type not in ("market", "limit", *STOP_KINDS):
            raise self._refuse("bad_request", f"the paper exchange has no order type {type!r}")
        if type == "limit" and trigger is None and price is None:
            raise self._refuse("bad_request", "a limit order needs a price")
        pos = acct.positions.get(symbol)
        mark = self.marks.get(symbol)
        if mark is None and type != "limit":
            raise self._refuse(
                "bad_request", f"no mark price for {symbol} yet: step the market first"
            )
        if reduce_only and (pos is None or (pos.side == "long") == (side == "buy")):
            raise self._refuse(
                "reduce_only", f"{side} {amount:g} {symbol} would not reduce a position"
            )
        if trigger is not None:
            if kind == "stop_loss" or kind == "take_profit":
                fires_below = (kind == "stop_loss") == (side == "sell")
                if mark is not None and (mark <= trigger if fires_below else mark >= trigger):
                    raise self._refuse(
                        "immediate_trigger",
                        f"trigger {trigger:g} is already crossed at mark {mark:g}",
                    )
            otype = (
                type
                if type in STOP_KINDS
                else ("take_profit_market" if kind == "take_profit" else "stop_market")
            )
            if not reduce_only:
                need = self._open_margin(acct, symbol, amount, trigger, self.taker_fee, amount)
                if need > self.available(acct) + 1e-12:
                    raise self._refuse("insufficient_margin", f"needs {need:.8g}")
            o = self._new_order(
                acct,
                symbol,
                otype,
                side,
                amount,
                None,
                reduce_only=reduce_only,
                trigger=trigger,
                kind=kind,
                client_id=params.get("clientOrderId"),
            )
            return self._ccxt_order(o)
        opening = 0.0 if reduce_only else self._opening_amount(pos, side, amount)
        if opening > 0:
            px = price if (type == "limit" and price) else self._taker_price(side, mark)  # type: ignore[arg-type]
            rate = self.taker_fee if type == "market" else self.maker_fee
            need = self._open_margin(acct, symbol, opening, px, rate, amount)
            if need > self.available(acct) + 1e-12:
                raise self._refuse(
                    "insufficient_margin",
                    f"needs {need:.8g} {acct.settle}, available {self.available(acct):.8g}",
                )
        o = self._new_order(
            acct,
            symbol,
            type,
            side,
            amount,
            price,
            reduce_only=reduce_only,
            client_id=params.get("clientOrderId"),
        )
        out: list[dict] = []
        if type == "market":
            self._execute(acct, o, self._taker_price(side, mark), self.taker_fee, out)  # type: ignore[arg-type]
        elif (
            mark is not None
            and price is not None
            and ((side == "buy" and mark <= price) or (side == "sell" and mark >= price))
        ):
            self._execute(acct, o, self._taker_price(side, mark), self.taker_fee, out)
        if out:
            self.events.extend(out)
        sl = params.get("stopLoss")
        if sl is not None and symbol in acct.positions:
            p = acct.positions[symbol]
            sl_price = float(sl["triggerPrice"] if isinstance(sl, dict) else sl)
            self._place_trigger(
                acct, _with(p.position, contracts=p.contracts), sl_price, "stop_loss"
            )
        return self._ccxt_order(o)

    def create_market_order(self, symbol, side, amount, price=None, params=None) -> dict:
        return self.create_order(symbol, "market", side, amount, price, params)

    def create_limit_order(self, symbol, side, amount, price, params=None) -> dict:
        return self.create_order(symbol, "limit", side, amount, price, params)

    def create_market_buy_order(self, symbol, amount, params=None) -> dict:
        return self.create_order(symbol, "market", "buy", amount, None, params)

    def create_market_sell_order(self, symbol, amount, params=None) -> dict:
        return self.create_order(symbol, "market", "sell", amount, None, params)

    def create_limit_buy_order(self, symbol, amount, price, params=None) -> dict:
        return self.create_order(symbol, "limit", "buy", amount, price, params)

    def create_limit_sell_order(self, symbol, amount, price, params=None) -> dict:
        return self.create_order(symbol, "limit", "sell", amount, price, params)

    def cancel_order(self, id: str, symbol: str | None = None, params: dict | None = None) -> dict:
        acct = self._acct(params)
        o = acct.orders.get(str(id))
        if o is None or (symbol is not None and o.symbol != symbol):
            raise self._refuse("order_not_found", f"order {id}")
        self._close_order(acct, o, "canceled")
        return self._ccxt_order(o)

    def cancel_all_orders(self, symbol: str | None = None, params: dict | None = None) -> list:
        acct = self._acct(params)
        out = []
        for o in list(acct.orders.values()):
            if symbol is None or o.symbol == symbol:
                self._close_order(acct, o, "canceled")
                out.append(self._ccxt_order(o))
        return out

    def set_margin_mode(
        self, marginMode: str, symbol: str | None = None, params: dict | None = None
    ) -> dict:
        """Switch a symbol's margin mode; refused as the model's capability facts say
        (Binance ``-4048`` with a position open, ``-4047`` with open orders)."""
        acct = self._acct(params)
        mode = str(marginMode).lower()
        if mode == "crossed":
            mode = "cross"
        if mode not in ("cross", "isolated"):
            raise self._refuse(
                "bad_request", f"marginMode must be cross or isolated, got {marginMode!r}"
            )
        if symbol is None:
            raise self._refuse("bad_request", "set_margin_mode needs a symbol")
        self.market(symbol)
        pos = acct.positions.get(symbol)
        current = pos.marginMode if pos is not None else acct.modes.get(symbol, "cross")
        if mode == current:
            return {
                "info": {"code": 200, "msg": "No need to change margin type."},
                "symbol": symbol,
                "marginMode": mode,
            }
        has_orders = any(o.symbol == symbol for o in acct.orders.values())
        feas = self.model.switch_feasibility(mode, pos is not None, has_orders)
        if feas.feasible is False:
            kind = "margin_mode_position" if pos is not None else "margin_mode_orders"
            raise self._refuse(kind, feas.reason, feas.code)
        if pos is not None:
            mark = self.marks[symbol]
            if mode == "isolated":
                # the position's initial margin moves from the cross wallet to its own
                pos.isolatedMargin = self.model.notional(pos.position, mark) / pos.leverage
            else:
                pos.isolatedMargin = None
            pos.marginMode = mode
            pos.changed()
        acct.modes[symbol] = mode
        return {"info": {"code": 200, "msg": "success"}, "symbol": symbol, "marginMode": mode}

    def set_leverage(
        self, leverage: float, symbol: str | None = None, params: dict | None = None
    ) -> dict:
        acct = self._acct(params)
        if symbol is None:
            raise self._refuse("bad_request", "set_leverage needs a symbol")
        self.market(symbol)
        lev = float(leverage)
        if not 1 <= lev <= 125:
            raise self._refuse("bad_request", f"leverage must be 1..125, got {leverage}")
        acct.leverage[symbol] = lev
        pos = acct.positions.get(symbol)
        if pos is not None:
            pos.leverage = lev
            pos.changed()
        return {
            "info": {
                "leverage": int(lev) if lev.is_integer() else lev,
                "symbol": _raw_symbol(symbol),
            },
            "symbol": symbol,
            "leverage": lev,
        }

    def _modify_margin(self, symbol: str, amount: float, kind: str, params: dict | None) -> dict:
        acct = self._acct(params)
        self.market(symbol)
        amount = float(amount)
        if not amount > 0:
            raise self._refuse("bad_request", f"amount must be > 0, got {amount}")
        pos = acct.positions.get(symbol)
        if pos is None:
            raise self._refuse("no_position", symbol)
        if pos.marginMode != "isolated":
            raise self._refuse(
                "bad_request", f"{symbol} is not isolated: margin cannot be {kind}ed"
            )
        if kind == "add":
            if amount > self.available(acct) + 1e-12:
                raise self._refuse("insufficient_margin", f"available {self.available(acct):.8g}")
            pos.isolatedMargin = (pos.isolatedMargin or 0.0) + amount
        else:
            mark = self.marks[symbol]
            im = self.model.notional(pos.position, mark) / pos.leverage
            u = self.model.unrealized_pnl(pos.position, mark)
            free = (pos.isolatedMargin or 0.0) + min(u, 0.0) - im
            if amount > free + 1e-12:
                raise self._refuse(
                    "isolated_insufficient", f"at most {max(free, 0.0):.8g} can be removed"
                )
            pos.isolatedMargin = (pos.isolatedMargin or 0.0) - amount
        pos.changed()
        return {
            "info": {
                "code": 200,
                "msg": "Successfully modify position margin.",
                "amount": amount,
                "type": 1 if kind == "add" else 2,
            },
            "symbol": symbol,
            "type": kind,
            "marginMode": "isolated",
            "amount": amount,
            "total": pos.isolatedMargin,
            "code": acct.settle,
            "status": "ok",
            "timestamp": self.now,
            "datetime": _iso(self.now),
        }

    def add_margin(self, symbol: str, amount: float, params: dict | None = None) -> dict:
        return self._modify_margin(symbol, amount, "add", params)

    def reduce_margin(self, symbol: str, amount: float, params: dict | None = None) -> dict:
        return self._modify_margin(symbol, amount, "reduce", params)

    def close(self) -> None:
        """Nothing to release (ccxt exchanges have ``close``)."""


# --------------------------------------------------------------------------- async


_ASYNC_METHODS = (
    "load_markets",
    "fetch_balance",
    "fetch_positions",
    "fetch_position",
    "fetch_open_orders",
    "fetch_closed_orders",
    "fetch_order",
    "fetch_leverage_tiers",
    "fetch_ticker",
    "fetch_tickers",
    "fetch_ohlcv",
    "create_order",
    "create_market_order",
    "create_limit_order",
    "create_market_buy_order",
    "create_market_sell_order",
    "create_limit_buy_order",
    "create_limit_sell_order",
    "cancel_order",
    "cancel_all_orders",
    "set_margin_mode",
    "set_leverage",
    "add_margin",
    "reduce_margin",
    "close",
)


class AsyncPaperExchange:
    """The paper exchange in ``ccxt.async_support``'s shape: every ccxt method is a
    coroutine; the market driver (``step``, ``set_marks``, ``snapshot``, ``accounts`` …)
    stays synchronous. ``AsyncPaperExchange(paper=ex)`` shares an existing
    :class:`PaperExchange`'s state, so a sync test driver and an async bot see one book.
    """

    def __init__(
        self, accounts: Any = None, *, paper: PaperExchange | None = None, **kw: Any
    ) -> None:
        object.__setattr__(
            self, "paper", paper if paper is not None else PaperExchange(accounts, **kw)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.paper, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.paper, name, value)

    async def __aenter__(self) -> AsyncPaperExchange:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _async(name: str) -> Any:
    async def method(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.paper, name)(*args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"AsyncPaperExchange.{name}"
    method.__doc__ = getattr(PaperExchange, name).__doc__
    return method


for _name in _ASYNC_METHODS:
    setattr(AsyncPaperExchange, _name, _async(_name))


# --------------------------------------------------------------------------- helpers


def _with(pos: Position, **changes: Any) -> Position:
    from dataclasses import replace

    return replace(pos, **changes)


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
    tps = [
        o.trigger
        for o in acct.orders.values()
        if o.kind == "take_profit" and o.symbol == p.symbol and o.trigger is not None
    ]
    if not tps:
        return None
    return min(tps) if p.side == "long" else max(tps)


def dumps_events(events: list[dict]) -> str:
    """Events as JSON Lines (for logs)."""
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
