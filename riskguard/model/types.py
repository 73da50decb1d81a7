"""The input data model: Snapshot, Position, Order, LeverageTier, Market — and their JSON form.

Field names follow ccxt's unified structures (camelCase) so a ccxt user maps with
little code. Objects are frozen dataclasses with slots: a rule can never mutate its
input and the hot path pays no ``__dict__``. Objects built in code are trusted; data
from outside is built through :mod:`riskguard.model.snapshot`, which validates it.

Compiled (``setup.py``), the classes are native and the compiled engine reads their fields
directly (about 11 µs of a 61 µs check, in ``bench/serve_app_bench.py``). Built in code, a
compiled class checks each field against its annotation (a ``str`` field refuses
``None``, a ``tuple`` field a list) and keeps a ``float`` field as a float:
``Position(..., contracts=1)`` reads back ``1.0`` where plain Python keeps ``1``; a
subclass cannot be a slots dataclass (``_refuse_slot_fields``). A snapshot read from JSON keeps its document
(``source``), so its digest is the same in either build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from riskguard._compiled import compiled, mypyc_attr
from riskguard.model.slots import reduce_by_init, register_builder

SIDES = ("long", "short")
ORDER_SIDES = ("buy", "sell")
MARGIN_MODES = ("cross", "isolated")


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class LeverageTier:
    """One maintenance-margin bracket (ccxt ``LeverageTier``).

    ``maintenanceAmount`` is Binance's ``cum`` (Bybit: "MM deduction"); when the
    source does not give it, it is derived so maintenance margin is continuous at
    tier boundaries: ``cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}``.
    """

    minNotional: float
    maxNotional: float | None
    maintenanceMarginRate: float
    maxLeverage: float | None = None
    maintenanceAmount: float = 0.0
    tier: int | None = None
    maintenanceAmountDerived: bool = False

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(LeverageTier, cls).__init_subclass__(**kwargs)  # zero-arg super breaks under slots
        _refuse_slot_fields(cls)


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    side: str
    contracts: float
    entryPrice: float
    markPrice: float | None = None
    leverage: float | None = None
    marginMode: str = "cross"
    contractSize: float = 1.0
    isolatedMargin: float | None = None
    inverse: bool = False
    stopLossPrice: float | None = None
    takeProfitPrice: float | None = None
    liquidationPrice: float | None = None
    extra: dict[Any, Any] = field(default_factory=dict)

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1

    @property
    def size(self) -> float:
        """Q: base units for linear contracts, USD (quote) notional for inverse ones."""
        return self.contracts * self.contractSize

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(Position, cls).__init_subclass__(**kwargs)  # zero-arg super breaks under slots
        _refuse_slot_fields(cls)


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class Order:
    symbol: str
    side: str
    amount: float
    type: str = "market"
    price: float | None = None
    reduceOnly: bool = False
    stopLossPrice: float | None = None
    leverage: float | None = None
    marginMode: str | None = None
    clientOrderId: str | None = None
    extra: dict[Any, Any] = field(default_factory=dict)
    # Hedge mode: the leg the order opens or closes (Binance positionSide LONG|SHORT, Bybit
    # positionIdx 1|2, OKX posSide). None: one-way, or inferred (riskguard.margin.accounts).
    positionSide: str | None = None

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(Order, cls).__init_subclass__(**kwargs)  # zero-arg super breaks under slots
        _refuse_slot_fields(cls)


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class Market:
    markPrice: float | None = None
    atrPct: float | None = None
    candles: tuple[Any, ...] = ()
    contractSize: float | None = None
    extra: dict[Any, Any] = field(default_factory=dict)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(Market, cls).__init_subclass__(**kwargs)  # zero-arg super breaks under slots
        _refuse_slot_fields(cls)


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class Snapshot:
    walletBalance: float
    positions: tuple[Position, ...] = ()
    exchange: str = "generic"
    account: str = "default"
    settle: str = "USDT"
    timestamp: int | None = None  # epoch milliseconds
    openOrders: tuple[Order, ...] = ()
    leverageTiers: dict[str, tuple[LeverageTier, ...]] = field(default_factory=dict)
    markets: dict[str, Market] = field(default_factory=dict)
    schemaVersion: int = 1
    extra: dict[Any, Any] = field(default_factory=dict)
    source: dict[Any, Any] | None = field(default=None, compare=False, repr=False)  # the input dict
    # "hedge": a long and a short leg per symbol may coexist (riskguard.margin.accounts).
    positionMode: str = "oneway"
    # Multi-collateral accounts (Binance Multi-Assets, Bybit UTA): riskguard.model.balances.
    balances: tuple[Any, ...] = ()  # tuple[Balance, ...]

    def mark_price(self, pos: Position) -> float | None:
        if pos.markPrice is not None:
            return pos.markPrice
        m = self.markets.get(pos.symbol)
        return m.markPrice if m is not None else None

    def tiers(self, symbol: str) -> tuple[LeverageTier, ...]:
        return self.leverageTiers.get(symbol, ())

    def to_dict(self) -> dict[Any, Any]:
        if self.source is not None:
            return self.source
        return snapshot_to_dict(self)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(Snapshot, cls).__init_subclass__(**kwargs)  # zero-arg super breaks under slots
        _refuse_slot_fields(cls)


def _refuse_slot_fields(cls: type) -> None:
    """Compiled, the model's classes are native and keep their fields in the C struct the
    compiled engine reads. A subclass declared ``@dataclass(slots=True)`` would add slots
    of the same names that Python code reads instead (the native base has no
    ``__slots__`` for the dataclass to see), and the engine would find its fields unset:
    refused here with a clear error. A subclass without ``slots=True`` works as before."""
    slots = cls.__dict__.get("__slots__")
    if slots is None or not compiled(_native_position):
        return
    own = {slots} if isinstance(slots, str) else set(slots)
    clash = sorted(own & _BASE_FIELDS)
    if clash:
        raise TypeError(
            f"{cls.__name__}: a subclass of riskguard's compiled data model cannot be a "
            f"slots dataclass (it would shadow {', '.join(clash)}); drop slots=True, or run "
            "plain Python (RISKGUARD_PURE=1)"
        )


def _native_leveragetier(
    minNotional: float,
    maxNotional: float | None,
    maintenanceMarginRate: float,
    maxLeverage: float | None,
    maintenanceAmount: float,
    tier: int | None,
    maintenanceAmountDerived: bool,
) -> LeverageTier:
    o = LeverageTier.__new__(LeverageTier)
    o.minNotional = minNotional  # type: ignore[misc]
    o.maxNotional = maxNotional  # type: ignore[misc]
    o.maintenanceMarginRate = maintenanceMarginRate  # type: ignore[misc]
    o.maxLeverage = maxLeverage  # type: ignore[misc]
    o.maintenanceAmount = maintenanceAmount  # type: ignore[misc]
    o.tier = tier  # type: ignore[misc]
    o.maintenanceAmountDerived = maintenanceAmountDerived  # type: ignore[misc]
    return o


def _native_position(
    symbol: str,
    side: str,
    contracts: float,
    entryPrice: float,
    markPrice: float | None,
    leverage: float | None,
    marginMode: str,
    contractSize: float,
    isolatedMargin: float | None,
    inverse: bool,
    stopLossPrice: float | None,
    takeProfitPrice: float | None,
    liquidationPrice: float | None,
    extra: dict[Any, Any],
) -> Position:
    o = Position.__new__(Position)
    o.symbol = symbol  # type: ignore[misc]
    o.side = side  # type: ignore[misc]
    o.contracts = contracts  # type: ignore[misc]
    o.entryPrice = entryPrice  # type: ignore[misc]
    o.markPrice = markPrice  # type: ignore[misc]
    o.leverage = leverage  # type: ignore[misc]
    o.marginMode = marginMode  # type: ignore[misc]
    o.contractSize = contractSize  # type: ignore[misc]
    o.isolatedMargin = isolatedMargin  # type: ignore[misc]
    o.inverse = inverse  # type: ignore[misc]
    o.stopLossPrice = stopLossPrice  # type: ignore[misc]
    o.takeProfitPrice = takeProfitPrice  # type: ignore[misc]
    o.liquidationPrice = liquidationPrice  # type: ignore[misc]
    o.extra = extra  # type: ignore[misc]
    return o


def _native_order(
    symbol: str,
    side: str,
    amount: float,
    type: str,
    price: float | None,
    reduceOnly: bool,
    stopLossPrice: float | None,
    leverage: float | None,
    marginMode: str | None,
    clientOrderId: str | None,
    extra: dict[Any, Any],
    positionSide: str | None,
) -> Order:
    o = Order.__new__(Order)
    o.symbol = symbol  # type: ignore[misc]
    o.side = side  # type: ignore[misc]
    o.amount = amount  # type: ignore[misc]
    o.type = type  # type: ignore[misc]
    o.price = price  # type: ignore[misc]
    o.reduceOnly = reduceOnly  # type: ignore[misc]
    o.stopLossPrice = stopLossPrice  # type: ignore[misc]
    o.leverage = leverage  # type: ignore[misc]
    o.marginMode = marginMode  # type: ignore[misc]
    o.clientOrderId = clientOrderId  # type: ignore[misc]
    o.extra = extra  # type: ignore[misc]
    o.positionSide = positionSide  # type: ignore[misc]
    return o


def _native_market(
    markPrice: float | None,
    atrPct: float | None,
    candles: tuple[Any, ...],
    contractSize: float | None,
    extra: dict[Any, Any],
) -> Market:
    o = Market.__new__(Market)
    o.markPrice = markPrice  # type: ignore[misc]
    o.atrPct = atrPct  # type: ignore[misc]
    o.candles = candles  # type: ignore[misc]
    o.contractSize = contractSize  # type: ignore[misc]
    o.extra = extra  # type: ignore[misc]
    return o


def _native_snapshot(
    walletBalance: float,
    positions: tuple[Position, ...],
    exchange: str,
    account: str,
    settle: str,
    timestamp: int | None,
    openOrders: tuple[Order, ...],
    leverageTiers: dict[str, tuple[LeverageTier, ...]],
    markets: dict[str, Market],
    schemaVersion: int,
    extra: dict[Any, Any],
    source: dict[Any, Any] | None,
    positionMode: str,
    balances: tuple[Any, ...],
) -> Snapshot:
    o = Snapshot.__new__(Snapshot)
    o.walletBalance = walletBalance  # type: ignore[misc]
    o.positions = positions  # type: ignore[misc]
    o.exchange = exchange  # type: ignore[misc]
    o.account = account  # type: ignore[misc]
    o.settle = settle  # type: ignore[misc]
    o.timestamp = timestamp  # type: ignore[misc]
    o.openOrders = openOrders  # type: ignore[misc]
    o.leverageTiers = leverageTiers  # type: ignore[misc]
    o.markets = markets  # type: ignore[misc]
    o.schemaVersion = schemaVersion  # type: ignore[misc]
    o.extra = extra  # type: ignore[misc]
    o.source = source  # type: ignore[misc]
    o.positionMode = positionMode  # type: ignore[misc]
    o.balances = balances  # type: ignore[misc]
    return o


#: Compiled (mypyc, ``setup.py``), the model's classes are native (C structs, read directly
#: by the compiled engine), and the ``_native_*`` functions above build them from all their
#: fields in order without the dataclass's interpreted ``__init__``
#: (``riskguard.model.slots.positional_constructor`` hands them out).
if compiled(_native_position):
    register_builder(LeverageTier, _native_leveragetier)
    register_builder(Position, _native_position)
    register_builder(Order, _native_order)
    register_builder(Market, _native_market)
    register_builder(Snapshot, _native_snapshot)


#: Every field the compiled classes keep in their structs (see ``_refuse_slot_fields``).
_BASE_FIELDS = frozenset(
    f.name for c in (LeverageTier, Position, Order, Market, Snapshot) for f in fields(c)
)


_MIN_MS = -62135596800000
_MAX_MS = 253402300799999


def parse_timestamp(v: Any) -> int | None:
    """ISO-8601 (``Z`` or offset) or epoch milliseconds → epoch milliseconds."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError("expected ISO-8601 text or epoch milliseconds")
    if isinstance(v, (int, float)):
        if not math.isfinite(v) or v < 0:
            raise ValueError("expected non-negative epoch milliseconds")
        if v > _MAX_MS:
            raise ValueError("epoch milliseconds after the year 9999")
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ms = int(dt.timestamp() * 1000)
        if not _MIN_MS <= ms <= _MAX_MS:
            raise ValueError("the time in UTC falls outside the years 1 to 9999")
        return ms
    raise ValueError("expected ISO-8601 text or epoch milliseconds")


def format_timestamp(ms: Any) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC text with milliseconds (``...T12:00:00.000Z``).

    Exact integer arithmetic for the milliseconds; the text up to the second is kept for
    the last seconds seen (a decision formats its own time and its snapshot's every time)."""
    if ms is None:
        return None
    sec, milli = divmod(int(ms), 1000)
    head = _SECONDS.get(sec)
    if head is None:
        if len(_SECONDS) >= 64:
            _SECONDS.clear()
        dt = datetime.fromtimestamp(sec, tz=timezone.utc)
        head = _SECONDS[sec] = dt.isoformat(timespec="seconds")[:19]
    return f"{head}.{milli:03d}Z"


_SECONDS: dict[int, str] = {}


# --------------------------------------------------------------------------- to dict


def _clean(d: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in d.items() if v is not None}


def position_to_dict(p: Position) -> dict[Any, Any]:
    d = _clean(
        {
            "symbol": p.symbol,
            "side": p.side,
            "contracts": p.contracts,
            "contractSize": p.contractSize,
            "entryPrice": p.entryPrice,
            "markPrice": p.markPrice,
            "leverage": p.leverage,
            "marginMode": p.marginMode,
            "isolatedMargin": p.isolatedMargin,
            "inverse": p.inverse,
            "stopLossPrice": p.stopLossPrice,
            "takeProfitPrice": p.takeProfitPrice,
            "liquidationPrice": p.liquidationPrice,
        }
    )
    d.update(p.extra)
    return d


def order_to_dict(o: Order) -> dict[Any, Any]:
    d = _clean(
        {
            "symbol": o.symbol,
            "side": o.side,
            "type": o.type,
            "amount": o.amount,
            "price": o.price,
            "reduceOnly": o.reduceOnly,
            "stopLossPrice": o.stopLossPrice,
            "leverage": o.leverage,
            "marginMode": o.marginMode,
            "clientOrderId": o.clientOrderId,
            "positionSide": o.positionSide,
        }
    )
    d.update(o.extra)
    return d


def snapshot_to_dict(s: Snapshot) -> dict[Any, Any]:
    d: dict[Any, Any] = {
        "schemaVersion": s.schemaVersion,
        "account": s.account,
        "exchange": s.exchange,
        "settle": s.settle,
        "walletBalance": s.walletBalance,
        "positions": [position_to_dict(p) for p in s.positions],
    }
    if s.timestamp is not None:
        d["timestamp"] = format_timestamp(s.timestamp)
    if s.positionMode != "oneway":
        d["positionMode"] = s.positionMode
    if s.balances:
        from riskguard.model.balances import balance_to_dict

        d["balances"] = [balance_to_dict(b) for b in s.balances]
    if s.openOrders:
        d["openOrders"] = [order_to_dict(o) for o in s.openOrders]
    if s.leverageTiers:
        d["leverageTiers"] = {
            sym: [
                _clean(
                    {
                        "tier": t.tier,
                        "minNotional": t.minNotional,
                        "maxNotional": t.maxNotional,
                        "maintenanceMarginRate": t.maintenanceMarginRate,
                        "maxLeverage": t.maxLeverage,
                        "maintenanceAmount": t.maintenanceAmount,
                    }
                )
                for t in tiers
            ]
            for sym, tiers in s.leverageTiers.items()
        }
    if s.markets:
        d["markets"] = {
            sym: {
                **_clean(
                    {
                        "markPrice": m.markPrice,
                        "atrPct": m.atrPct,
                        "contractSize": m.contractSize,
                        "candles": [list(c) for c in m.candles] or None,
                    }
                ),
                **m.extra,
            }
            for sym, m in s.markets.items()
        }
    d.update(s.extra)
    return d


#: The fields each object is read from (the rest of a document goes to ``extra``).
_POSITION_KEYS = frozenset(Position.__dataclass_fields__) - {"extra"}
_ORDER_KEYS = frozenset(Order.__dataclass_fields__) - {"extra"}
_MARKET_KEYS = frozenset({"markPrice", "atrPct", "candles", "contractSize"})
_SNAPSHOT_KEYS = frozenset(
    {
        "schemaVersion",
        "account",
        "exchange",
        "timestamp",
        "settle",
        "walletBalance",
        "positions",
        "openOrders",
        "leverageTiers",
        "markets",
        "positionMode",
        "balances",
    }
)
