"""Account and position figures, computed once per snapshot and shared by every rule.

Definitions (all in the settle currency; DESIGN.md "Metrics"):

- ``equity = walletBalance + Σ uPnL``
- position ``initialMargin`` = ``isolatedMargin`` when isolated, ``notional / leverage``
  when cross (notional at mark)
- ``marginUtilization = Σ initialMargin / equity`` (``None`` when equity ≤ 0)
- ``maintenanceMargin`` per position from the exchange model's tier
- ``marginRatio = Σ maintenanceMargin / equity`` — Binance/ccxt direction: liquidation at
  ≥ 100 % (OKX states the inverse, equity / MM)
- ``effectiveLeverage = Σ notional / equity``
- per position ``liquidationPrice`` from the exchange model (cross: others held at mark)
  and ``liquidationDistancePct = s·(MP − LP)/MP·100`` (positive = safe side)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from riskguard._compiled import compiled
from riskguard.margin.base import (
    MarginModel,
    close_fee_rate,
    linear_mark_root,
    linear_surplus,
    walk_tiers,
    with_close_fee,
)
from riskguard.margin.base import tier_at as _tier_at
from riskguard.model.slots import fast_frozen_init, positional_constructor, reduce_by_init
from riskguard.model.snapshot import LeverageTier, Order, Position, Snapshot


@dataclass(frozen=True, slots=True)
class PositionMetrics:
    symbol: str
    side: str
    marginMode: str
    contracts: float
    entryPrice: float
    markPrice: float
    notional: float
    leverage: float | None
    initialMargin: float
    maintenanceMargin: float | None
    maintenanceMarginRate: float | None
    unrealizedPnl: float
    liquidationPrice: float | None
    liquidationDistancePct: float | None
    exchangeLiquidationPrice: float | None
    stopLossPrice: float | None
    marginModel: str
    approximate: bool
    tierSource: str  # "tiers" | "default" | "missing"
    leverageAssumed: bool
    # the closing-fee rate counted in the liquidation trigger, and where it came from:
    # "market" | "account" (the snapshot's takerFeeRate) | "default" (the model's) | "none"
    closeFeeRate: float
    closeFeeRateSource: str

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class AccountMetrics:
    account: str
    exchange: str
    settle: str
    walletBalance: float
    crossWalletBalance: float
    unrealizedPnl: float
    equity: float
    initialMargin: float
    openOrderInitialMargin: float
    maintenanceMargin: float
    marginUtilization: float | None
    marginUtilizationWithOrders: float | None
    marginRatio: float | None
    effectiveLeverage: float | None
    marginModel: str
    approximate: bool
    positions: tuple[PositionMetrics, ...]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "positions"}
        d["positions"] = [p.to_dict() for p in self.positions]
        return d

    def position(self, symbol: str, side: str | None = None) -> PositionMetrics | None:
        """The position of ``symbol`` (in hedge mode: its ``side`` leg, when given)."""
        for p in self.positions:
            if p.symbol == symbol and (side is None or p.side == side):
                return p
        return None


fast_frozen_init(PositionMetrics)
fast_frozen_init(AccountMetrics)


def _new_position_metrics(
    symbol: str,
    side: str,
    marginMode: str,
    contracts: float,
    entryPrice: float,
    markPrice: float,
    notional: float,
    leverage: float | None,
    initialMargin: float,
    maintenanceMargin: float | None,
    maintenanceMarginRate: float | None,
    unrealizedPnl: float,
    liquidationPrice: float | None,
    liquidationDistancePct: float | None,
    exchangeLiquidationPrice: float | None,
    stopLossPrice: float | None,
    marginModel: str,
    approximate: bool,
    tierSource: str,
    leverageAssumed: bool,
    closeFeeRate: float,
    closeFeeRateSource: str,
) -> PositionMetrics:
    """``PositionMetrics(...)``, built by compiled code without the dataclass's interpreted
    ``__init__`` (see :data:`_COMPILED`)."""
    if not _COMPILED:
        return PositionMetrics(
            symbol,
            side,
            marginMode,
            contracts,
            entryPrice,
            markPrice,
            notional,
            leverage,
            initialMargin,
            maintenanceMargin,
            maintenanceMarginRate,
            unrealizedPnl,
            liquidationPrice,
            liquidationDistancePct,
            exchangeLiquidationPrice,
            stopLossPrice,
            marginModel,
            approximate,
            tierSource,
            leverageAssumed,
            closeFeeRate,
            closeFeeRateSource,
        )
    m = PositionMetrics.__new__(PositionMetrics)
    m.symbol = symbol  # type: ignore[misc]
    m.side = side  # type: ignore[misc]
    m.marginMode = marginMode  # type: ignore[misc]
    m.contracts = contracts  # type: ignore[misc]
    m.entryPrice = entryPrice  # type: ignore[misc]
    m.markPrice = markPrice  # type: ignore[misc]
    m.notional = notional  # type: ignore[misc]
    m.leverage = leverage  # type: ignore[misc]
    m.initialMargin = initialMargin  # type: ignore[misc]
    m.maintenanceMargin = maintenanceMargin  # type: ignore[misc]
    m.maintenanceMarginRate = maintenanceMarginRate  # type: ignore[misc]
    m.unrealizedPnl = unrealizedPnl  # type: ignore[misc]
    m.liquidationPrice = liquidationPrice  # type: ignore[misc]
    m.liquidationDistancePct = liquidationDistancePct  # type: ignore[misc]
    m.exchangeLiquidationPrice = exchangeLiquidationPrice  # type: ignore[misc]
    m.stopLossPrice = stopLossPrice  # type: ignore[misc]
    m.marginModel = marginModel  # type: ignore[misc]
    m.approximate = approximate  # type: ignore[misc]
    m.tierSource = tierSource  # type: ignore[misc]
    m.leverageAssumed = leverageAssumed  # type: ignore[misc]
    m.closeFeeRate = closeFeeRate  # type: ignore[misc]
    m.closeFeeRateSource = closeFeeRateSource  # type: ignore[misc]
    return m


def _new_account_metrics(
    account: str,
    exchange: str,
    settle: str,
    walletBalance: float,
    crossWalletBalance: float,
    unrealizedPnl: float,
    equity: float,
    initialMargin: float,
    openOrderInitialMargin: float,
    maintenanceMargin: float,
    marginUtilization: float | None,
    marginUtilizationWithOrders: float | None,
    marginRatio: float | None,
    effectiveLeverage: float | None,
    marginModel: str,
    approximate: bool,
    positions: tuple[PositionMetrics, ...],
) -> AccountMetrics:
    """``AccountMetrics(...)``, built by compiled code without the dataclass's interpreted
    ``__init__`` (see :data:`_COMPILED`)."""
    if not _COMPILED:
        return AccountMetrics(
            account,
            exchange,
            settle,
            walletBalance,
            crossWalletBalance,
            unrealizedPnl,
            equity,
            initialMargin,
            openOrderInitialMargin,
            maintenanceMargin,
            marginUtilization,
            marginUtilizationWithOrders,
            marginRatio,
            effectiveLeverage,
            marginModel,
            approximate,
            positions,
        )
    m = AccountMetrics.__new__(AccountMetrics)
    m.account = account  # type: ignore[misc]
    m.exchange = exchange  # type: ignore[misc]
    m.settle = settle  # type: ignore[misc]
    m.walletBalance = walletBalance  # type: ignore[misc]
    m.crossWalletBalance = crossWalletBalance  # type: ignore[misc]
    m.unrealizedPnl = unrealizedPnl  # type: ignore[misc]
    m.equity = equity  # type: ignore[misc]
    m.initialMargin = initialMargin  # type: ignore[misc]
    m.openOrderInitialMargin = openOrderInitialMargin  # type: ignore[misc]
    m.maintenanceMargin = maintenanceMargin  # type: ignore[misc]
    m.marginUtilization = marginUtilization  # type: ignore[misc]
    m.marginUtilizationWithOrders = marginUtilizationWithOrders  # type: ignore[misc]
    m.marginRatio = marginRatio  # type: ignore[misc]
    m.effectiveLeverage = effectiveLeverage  # type: ignore[misc]
    m.marginModel = marginModel  # type: ignore[misc]
    m.approximate = approximate  # type: ignore[misc]
    m.positions = positions  # type: ignore[misc]
    return m


#: Compiled by mypyc, the metrics classes are native (C structs). Their ``__init__`` is
#: still the one ``dataclasses`` generates, interpreted Python that sets each field through
#: its descriptor — about 1 µs of a 22-field ``PositionMetrics``, ten per check. Compiled
#: code fills the struct directly (the two functions above); the instances are the same
#: (frozen to everyone else, equal, hashable, picklable). Plain Python keeps ``__init__``.
_COMPILED = compiled(_new_position_metrics)


@dataclass(frozen=True, slots=True)
class ExtendedAccountMetrics(AccountMetrics):
    """AccountMetrics plus the figures of a hedge-mode or multi-collateral account
    (``riskguard.margin.accounts``); one-way single-currency accounts never carry them."""

    positionMode: str = "oneway"
    collateralValue: float | None = None  # Σ amount × price × collateral ratio
    marginBalance: float | None = None  # collateral value with uPnL in the settle coin
    accountInitialMarginRate: float | None = None  # Bybit "Account IM Rate"
    accountMaintenanceMarginRate: float | None = None  # liquidation at >= 1 (100 %)
    balances: tuple[Any, ...] = ()
    # Σ notional / equity of both legs; ``effectiveLeverage`` nets a symbol's legs in hedge mode
    grossEffectiveLeverage: float | None = None

    def to_dict(self) -> dict:
        d = AccountMetrics.to_dict(self)
        d["balances"] = [dict(b) for b in self.balances]
        return d


def order_initial_margin(
    order: Order, snapshot: Snapshot, leverage_hint: float | None = None
) -> float:
    """Margin an opening order would lock: amount·contractSize·price / leverage."""
    price = order.price
    market = snapshot.markets.get(order.symbol)
    if price is None:
        price = market.markPrice if market is not None else None
        if price is None:
            for p in snapshot.positions:
                if p.symbol == order.symbol:
                    price = snapshot.mark_price(p)
                    break
    if price is None:
        return float("nan")
    cs = contract_size_for(snapshot, order.symbol)
    lev = order.leverage or leverage_hint or 1.0
    return order.amount * cs * price / lev


def contract_size_for(snapshot: Snapshot, symbol: str) -> float:
    for p in snapshot.positions:
        if p.symbol == symbol:
            return p.contractSize
    m = snapshot.markets.get(symbol)
    if m is not None and m.contractSize is not None:
        return m.contractSize
    return 1.0


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _fast_pnl(model: MarginModel) -> bool:
    """True when ``model`` keeps the base class's uPnL and notional (inlined on the hot path)."""
    t = type(model)
    hit = _FAST_PNL.get(t)  # once per class: reading a method off a class is a slow lookup
    if hit is None:
        if len(_FAST_PNL) > 256:
            _FAST_PNL.clear()
        hit = _FAST_PNL[t] = (
            t.unrealized_pnl is MarginModel.unrealized_pnl and t.notional is MarginModel.notional
        )
    return hit


_FAST_PNL: dict[type, bool] = {}


def _fast_solver(model: MarginModel) -> bool:
    """True when ``model`` uses the base class's mark-basis, notional-tier solver unchanged.

    Then ``compute_metrics`` finds each position's tier once and shares it between the
    maintenance margin and the liquidation-price iteration (the model's methods look it
    up three times); the arithmetic is the model's, operation for operation, and
    ``tests/test_guard.py`` checks the results are identical to the model's methods.
    """
    t = type(model)
    base = MarginModel
    return (
        model.mmBasis == "mark"
        and model.tierUnit == "notional"
        and model.mmDeduction
        and t.maintenance_margin is base.maintenance_margin
        and t.liquidation_price is base.liquidation_price
        and t._solve_tiers is base._solve_tiers
        and t._linear_mark is base._linear_mark
        and t.tier_for is base.tier_for
        and t.tier_metric is base.tier_metric
    )


def _lp_linear_mark(
    model: MarginModel,
    p: Position,
    tiers: tuple,
    tier: Any,
    mark: float,
    wb: float,
    t1: float,
    u1: float,
) -> float | None:
    """``MarginModel._solve_tiers`` with ``_linear_mark``, starting from the known tier.

    The same primitives as the model (``tier_at``, ``linear_mark_root``) in the same order;
    where the iteration finds no self-consistent positive root, the model's tier walk
    (``_first_hit``) answers from here, as ``_solve_tiers`` would after the same iteration.
    """
    q = p.contracts * p.contractSize
    s = 1 if p.side == "long" else -1
    fee = model.closeFeeRate
    ep = p.entryPrice
    start = tier
    lp = linear_mark_root(
        q, s, ep, tier.maintenanceMarginRate + fee, tier.maintenanceAmount, wb, t1, u1
    )
    # another tier may still have a positive root when this one has none: the walk below
    if lp is not None and lp > 0:
        nxt = _tier_at(tiers, q * lp)
        if nxt is tier:
            return lp  # the common case: the root lies in the mark's tier
        seen = {id(tier)}
        tier = nxt
        for _ in range(len(tiers)):
            lp = linear_mark_root(
                q, s, ep, tier.maintenanceMarginRate + fee, tier.maintenanceAmount, wb, t1, u1
            )
            if lp is None or lp <= 0:
                break
            nxt = _tier_at(tiers, q * lp)
            if nxt is tier:
                return lp
            if id(nxt) in seen:
                break
            seen.add(id(tier))
            tier = nxt
    # Inconsistent tiers or no positive root here: the model's walk (``_first_hit``), from
    # the mark's tier, with the same primitives — without redoing the iteration above.
    safe = (
        linear_surplus(
            q, s, ep, start.maintenanceMarginRate, start.maintenanceAmount, fee, mark, wb, t1, u1
        )
        > 0
    )
    if safe and s == 1 and start is tiers[0]:
        return None  # a safe long in the lowest tier: no lower tier to walk to (common)
    i = 0
    while tiers[i] is not start:
        i += 1
    return walk_tiers(
        tiers,
        i,
        (-1 if s == 1 else 1) if safe else (1 if s == 1 else -1),
        safe,
        lambda t: linear_mark_root(
            q, s, ep, t.maintenanceMarginRate + fee, t.maintenanceAmount, wb, t1, u1
        ),
        lambda t, price: linear_surplus(
            q, s, ep, t.maintenanceMarginRate, t.maintenanceAmount, fee, price, wb, t1, u1
        ),
        lambda price: _tier_at(tiers, q * price),
        lambda x: x / q,
    )


def _mark(snapshot: Snapshot, p: Position) -> float | None:
    mark = p.markPrice
    if mark is None:
        m = snapshot.markets.get(p.symbol)
        mark = m.markPrice if m is not None else None
    return mark


def compute_metrics(snapshot: Snapshot, model: MarginModel) -> AccountMetrics:
    if snapshot.balances or snapshot.positionMode != "oneway":
        from riskguard.margin.accounts import account_metrics  # hedge mode, multi-collateral

        return account_metrics(snapshot, model, compute_metrics, ExtendedAccountMetrics)
    # Hot path: attribute lookups are hoisted and the base model's uPnL/notional inlined
    # (same arithmetic, same order of operations as the model's methods).
    positions = snapshot.positions
    n = len(positions)
    marks = [0.0] * n
    upnl = [0.0] * n
    mm: list[float | None] = [None] * n
    mmr: list[float | None] = [None] * n
    tier_src = ["tiers"] * n
    iso_total = 0.0
    cross_mm = 0.0
    cross_upnl = 0.0
    # Where the exchange counts the fee to close in the trigger (OKX, Gate, BingX), the
    # other cross positions' fees weigh on the pool like their maintenance margin does.
    fee_rate = model.closeFeeRate
    fees = [0.0] * n
    # The account's taker rate (snapshot takerFeeRate, per symbol markets[s].takerFeeRate)
    # replaces the model's default where its trigger counts one; one model per rate.
    fee_src: list[str] | None = None
    models: list[MarginModel] | None = None
    if model.takerFeeInTrigger:
        fee_src, models = [], []
        for p in positions:
            r, src = close_fee_rate(model, snapshot, p.symbol)
            fee_src.append(src)
            models.append(with_close_fee(model, r))
    fast = _fast_pnl(model)
    solver = _fast_solver(model)
    start_tier: list[Any] = [None] * n
    all_tiers = snapshot.leverageTiers
    tiers_of: list[tuple] = [()] * n
    markets = snapshot.markets
    maintenance_margin = model.maintenance_margin
    for i, p in enumerate(positions):
        mark = p.markPrice
        if mark is None:
            m_ = markets.get(p.symbol)
            mark = m_.markPrice if m_ is not None else None
        marks[i] = mark  # type: ignore[assignment]  # builder guarantees a mark
        size = p.contracts * p.contractSize
        if fast:
            sign = 1 if p.side == "long" else -1
            if p.inverse:
                u = sign * size * (1.0 / p.entryPrice - 1.0 / mark)  # type: ignore[operator]
            else:
                u = sign * size * (mark - p.entryPrice)  # type: ignore[operator]
        else:
            u = model.unrealized_pnl(p, mark)  # type: ignore[arg-type]
        upnl[i] = u
        tiers = tiers_of[i] = all_tiers.get(p.symbol, ())
        if solver and tiers and not p.inverse:
            tier: LeverageTier | None = _tier_at(tiers, size * mark)  # type: ignore[operator]
            start_tier[i] = tier
            m = size * mark * tier.maintenanceMarginRate - tier.maintenanceAmount  # type: ignore[operator,union-attr]
            if m < 0.0:  # max(m, 0.0), without the call (NaN kept, as max keeps it)
                m = 0.0
        else:
            m, tier = maintenance_margin(p, tiers, mark)  # type: ignore[arg-type]
        if tier is None:
            tier_src[i] = "missing"
        else:
            mm[i] = m
            mmr[i] = tier.maintenanceMarginRate
            if not tiers:
                tier_src[i] = "default"
        if p.marginMode == "isolated":
            iso_total += p.isolatedMargin or 0.0
        else:
            cross_upnl += u
            if mm[i] is not None:
                rate = models[i].closeFeeRate if models is not None else fee_rate
                if rate:
                    fees[i] = rate * (size / mark if p.inverse else size * mark)  # type: ignore[operator]
                cross_mm += m + fees[i]

    wallet = snapshot.walletBalance
    cross_wallet = wallet - iso_total
    total_upnl = sum(upnl, 0.0)  # a float with no position too (not the int 0)
    equity = wallet + total_upnl
    out: list[PositionMetrics] = []
    total_im = total_mm = total_notional = 0.0
    lev_by_symbol: dict[str, float] = {}
    liquidation_price = model.liquidation_price
    name = model.name
    approx = model.approximate
    for i, p in enumerate(positions):
        mark = marks[i]
        if fast:
            size = p.contracts * p.contractSize
            notional = size / mark if p.inverse else size * mark
        else:
            notional = model.notional(p, mark)
        leverage = p.leverage
        lev = leverage or 1.0
        lev_by_symbol[p.symbol] = lev
        isolated = p.marginMode == "isolated"
        if isolated:
            im = p.isolatedMargin or 0.0
        else:
            im = notional / lev
        lp = None
        mmi = mm[i]
        pmodel = models[i] if models is not None else model
        lp_of = liquidation_price if pmodel is model else pmodel.liquidation_price
        if mmi is not None:
            tiers = tiers_of[i]
            st = start_tier[i]
            if st is not None:
                if isolated:
                    lp = _lp_linear_mark(
                        pmodel, p, tiers, st, mark, p.isolatedMargin or 0.0, 0.0, 0.0
                    )
                else:
                    lp = _lp_linear_mark(
                        pmodel,
                        p,
                        tiers,
                        st,
                        mark,
                        cross_wallet,
                        cross_mm - mmi - fees[i],
                        cross_upnl - upnl[i],
                    )
            elif isolated:
                lp = lp_of(p, tiers, mark, p.isolatedMargin or 0.0)
            else:
                lp = lp_of(
                    p, tiers, mark, cross_wallet, cross_mm - mmi - fees[i], cross_upnl - upnl[i]
                )
        if lp is not None and lp - lp != 0:
            lp = None  # inf/NaN from overflow (sizes near 1e308): no price a rule can use
        sign = 1 if p.side == "long" else -1
        dist = sign * (mark - lp) / mark * 100.0 if lp is not None else None
        total_im += im
        total_notional += notional
        if mmi is not None:
            total_mm += mmi
        src = tier_src[i]
        out.append(
            _new_position_metrics(
                p.symbol,
                p.side,
                p.marginMode,
                p.contracts,
                p.entryPrice,
                mark,
                notional,
                leverage,
                im,
                mmi,
                mmr[i],
                upnl[i],
                lp,
                dist,
                p.liquidationPrice,
                p.stopLossPrice,
                name,
                approx or src != "tiers" or (p.inverse and not model.inverseSupported),
                src,
                leverage is None,
                pmodel.closeFeeRate,
                fee_src[i] if fee_src is not None else "none",
            )
        )
    order_im = 0.0
    for o in snapshot.openOrders:
        if not o.reduceOnly:
            order_im += order_initial_margin(o, snapshot, lev_by_symbol.get(o.symbol))
    util = _ratio(total_im, equity)
    util_o = _ratio(total_im + order_im, equity) if order_im == order_im else None  # NaN → None
    return _new_account_metrics(
        snapshot.account,
        snapshot.exchange,
        snapshot.settle,
        wallet,
        cross_wallet,
        total_upnl,
        equity,
        total_im,
        order_im,
        total_mm,
        util,
        util_o,
        _ratio(total_mm, equity),
        _ratio(total_notional, equity),
        name,
        approx or any(t != "tiers" for t in tier_src),
        tuple(out),
    )


@dataclass(frozen=True, slots=True)
class PositionMargin:
    """The margin figures of one position that need no tiers (see :func:`compute_margin`)."""

    symbol: str
    side: str
    marginMode: str
    initialMargin: float
    unrealizedPnl: float
    notional: float = 0.0


class MarginFigures:
    """The part of :class:`AccountMetrics` that needs no tiers or liquidation prices.

    Pre-trade rules compare the projected account with the account *before* the order,
    and for that they need only equity, initial margins and notionals; computing the full metrics
    (tiers, a liquidation price per position) a second time doubled the cost of a check.
    The values are identical to the same fields of ``compute_metrics`` (same arithmetic).
    Per-position records are built only when asked for.
    """

    __slots__ = (
        "_pos",
        "_rows",
        "equity",
        "initialMargin",
        "marginUtilization",
        "marginUtilizationWithOrders",
        "openOrderInitialMargin",
    )

    def __init__(self, equity, initial_margin, order_im, util, util_o, rows) -> None:
        self.equity = equity
        self.initialMargin = initial_margin
        self.openOrderInitialMargin = order_im
        self.marginUtilization = util
        self.marginUtilizationWithOrders = util_o
        self._rows = rows  # (positions, ims, upnls, notionals)
        self._pos: tuple[PositionMargin, ...] | None = None

    @property
    def positions(self) -> tuple[PositionMargin, ...]:
        if self._pos is None:
            ps, ims, ups, ns = self._rows
            self._pos = tuple(
                PositionMargin(p.symbol, p.side, p.marginMode, im, u, n)
                for p, im, u, n in zip(ps, ims, ups, ns, strict=True)
            )
        return self._pos

    def position(self, symbol: str, side: str | None = None) -> PositionMargin | None:
        for p in self.positions:
            if p.symbol == symbol and (side is None or p.side == side):
                return p
        return None


def compute_margin(snapshot: Snapshot, model: MarginModel) -> MarginFigures:
    """Equity, initial margins and utilization of ``snapshot`` (no tiers, no liquidation)."""
    fast = _fast_pnl(model)
    upnl = []
    ims = []
    notionals = []
    total_im = 0.0
    lev_by_symbol: dict[str, float] = {}
    for p in snapshot.positions:
        mark = _mark(snapshot, p)
        if fast:
            size = p.contracts * p.contractSize
            sign = 1 if p.side == "long" else -1
            if p.inverse:
                u = sign * size * (1.0 / p.entryPrice - 1.0 / mark)  # type: ignore[operator]
                notional = size / mark  # type: ignore[operator]
            else:
                u = sign * size * (mark - p.entryPrice)  # type: ignore[operator]
                notional = size * mark  # type: ignore[operator]
        else:
            u = model.unrealized_pnl(p, mark)  # type: ignore[arg-type]
            notional = model.notional(p, mark)  # type: ignore[arg-type]
        upnl.append(u)
        notionals.append(notional)
        lev = p.leverage or 1.0
        lev_by_symbol[p.symbol] = lev
        im = (p.isolatedMargin or 0.0) if p.marginMode == "isolated" else notional / lev
        total_im += im
        ims.append(im)
    equity = snapshot.walletBalance + sum(upnl)
    order_im = 0.0
    for o in snapshot.openOrders:
        if not o.reduceOnly:
            order_im += order_initial_margin(o, snapshot, lev_by_symbol.get(o.symbol))
    util = _ratio(total_im, equity)
    util_o = _ratio(total_im + order_im, equity) if order_im == order_im else None
    return MarginFigures(
        equity, total_im, order_im, util, util_o, (snapshot.positions, ims, upnl, notionals)
    )


_INIT_FIELDS: dict[type, tuple[tuple[str, ...], Any]] = {}


def _replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` without its per-call field introspection (hot path)."""
    cls = type(obj)
    found = _INIT_FIELDS.get(cls)
    if found is None:
        found = _INIT_FIELDS[cls] = _constructor(cls)
    names, make = found
    return make(*[changes[n] if n in changes else getattr(obj, n) for n in names])


def _constructor(cls: type) -> tuple[tuple[str, ...], Any]:
    """The fields ``_replace`` passes, and what it builds with: the class itself, or for
    the snapshot's own types (frozen dataclasses whose every field is an ``__init__``
    argument, checked by nothing after) their fields filled directly — by their slots, or
    compiled, by the builder ``riskguard.model.types`` registers (a native class has no
    ``__slots__`` in its ``__dict__``)."""
    fs = fields(cls)
    names = tuple(f.name for f in fs if f.init)
    params = getattr(cls, "__dataclass_params__", None)
    if (
        len(names) == len(fs)
        and cls.__module__ == "riskguard.model.types"
        and params is not None
        and params.frozen
        and not hasattr(cls, "__post_init__")
    ):
        return names, positional_constructor(cls)
    return names, cls


def apply_order(snapshot: Snapshot, order: Order) -> Snapshot:
    """The snapshot as it would be right after ``order`` fills at its price (or mark).

    Used for pre-trade checks: rules evaluate the projected account. Adds to, reduces,
    closes or flips the one-way position of the order's symbol; isolated margin grows by
    the order's initial margin. The wallet is unchanged (fees are not modelled). In hedge
    mode the order acts on its own leg (``riskguard.margin.accounts.apply_hedged_order``).
    """
    if snapshot.positionMode == "hedge":
        from riskguard.margin.accounts import apply_hedged_order

        return apply_hedged_order(snapshot, order, apply_order)
    price = order.price
    existing = None
    for p in snapshot.positions:
        if p.symbol == order.symbol:
            existing = p
            break
    if price is None:
        # The position's own mark first, as Snapshot.mark_price and the rules read it: a
        # fill at markets[symbol] while the position stays marked elsewhere is phantom PnL.
        if existing is not None:
            price = snapshot.mark_price(existing)
        else:
            m = snapshot.markets.get(order.symbol)
            price = m.markPrice if m is not None else None
    if price is None:
        raise ValueError(
            f"no price for {order.symbol}: the order has none and the snapshot has no mark"
        )
    side = "long" if order.side == "buy" else "short"
    others = tuple(p for p in snapshot.positions if p is not existing)
    if existing is None:
        if order.reduceOnly:
            return snapshot
        lev = order.leverage or 1.0
        mode = order.marginMode or "cross"
        cs = contract_size_for(snapshot, order.symbol)
        new = Position(
            symbol=order.symbol,
            side=side,
            contracts=order.amount,
            entryPrice=price,
            markPrice=_mark_for(snapshot, order.symbol, price),
            leverage=lev,
            marginMode=mode,
            contractSize=cs,
            isolatedMargin=order.amount * cs * price / lev if mode == "isolated" else None,
            stopLossPrice=order.stopLossPrice,
        )
        return _replace(snapshot, positions=(*others, new), source=None)
    if existing.side == side:
        if order.reduceOnly:
            return snapshot  # exchanges reject a reduce-only order that would add (Binance -2022)
        total = existing.contracts + order.amount
        entry = (existing.entryPrice * existing.contracts + price * order.amount) / total
        iso = existing.isolatedMargin
        if existing.marginMode == "isolated":
            lev = order.leverage or existing.leverage or 1.0
            iso = (iso or 0.0) + order.amount * existing.contractSize * price / lev
        new = _replace(
            existing,
            contracts=total,
            entryPrice=entry,
            isolatedMargin=iso,
            stopLossPrice=order.stopLossPrice or existing.stopLossPrice,
        )
        return _replace(snapshot, positions=(*others, new), source=None)
    # Opposite side: reduce, close or flip.
    remaining = existing.contracts - order.amount
    if abs(remaining) <= 1e-12 * max(existing.contracts, 1.0):
        return _replace(snapshot, positions=others, source=None)
    if remaining > 0:
        frac = remaining / existing.contracts
        iso = existing.isolatedMargin * frac if existing.isolatedMargin is not None else None
        return _replace(
            snapshot,
            positions=(*others, _replace(existing, contracts=remaining, isolatedMargin=iso)),
            source=None,
        )
    if order.reduceOnly:
        return _replace(snapshot, positions=others, source=None)
    flipped = -remaining
    lev = order.leverage or existing.leverage or 1.0
    iso = (
        flipped * existing.contractSize * price / lev if existing.marginMode == "isolated" else None
    )
    new = _replace(
        existing,
        side=side,
        contracts=flipped,
        entryPrice=price,
        isolatedMargin=iso,
        stopLossPrice=order.stopLossPrice,
        liquidationPrice=None,
    )
    return _replace(snapshot, positions=(*others, new), source=None)


def _mark_for(snapshot: Snapshot, symbol: str, fallback: float) -> float:
    m = snapshot.markets.get(symbol)
    if m is not None and m.markPrice is not None:
        return m.markPrice
    return fallback


def order_reduces(snapshot: Snapshot, order: Order) -> bool:
    """True when the order only reduces (or closes) an existing position."""
    if snapshot.positionMode == "hedge":
        from riskguard.margin.accounts import hedged_order_reduces

        return hedged_order_reduces(snapshot, order)
    for p in snapshot.positions:
        if p.symbol == order.symbol:
            opposite = (p.side == "long") == (order.side == "sell")
            return opposite and (order.reduceOnly or order.amount <= p.contracts)
    return False


def position_of(snapshot: Snapshot, symbol: str) -> Position | None:
    for p in snapshot.positions:
        if p.symbol == symbol:
            return p
    return None


def at_fill(snapshot: Snapshot, order: Order) -> Snapshot:
    """The snapshot as the market will be when a *resting* limit order fills.

    A limit buy below the mark (a sell above it) rests on the book: it fills only once
    the market has come to its price, so it is judged at that moment — the order's symbol
    marked at the order's price (its own position, and ``markets``, re-marked there).
    Projecting the fill at the order's price with the mark unchanged instead books the
    gap as unrealized profit (a buy at 30,000 under a 61,000 mark "earns" 31,000 a
    contract) and lets the order grow without bound. While it rests the exchange reserves
    the same initial margin (notional at the order's price / leverage; Binance adds the
    "open loss" only for orders on the other side of the mark, which fill now). A market
    order, or a limit that crosses the mark (it fills now, at the mark or better, its
    open loss booked as unrealized loss), is returned unchanged: ``snapshot`` itself.
    Sources: Binance, "How to Calculate Cost Required to Open a Position in Perpetual
    Futures Contracts" (open loss); Bybit, "Order Cost" (the same).
    """
    price = order.price
    if price is None or order.type == "market":
        return snapshot
    sym = order.symbol
    mark = None
    for p in snapshot.positions:
        if p.symbol == sym:
            mark = snapshot.mark_price(p)
            break
    if mark is None:
        m = snapshot.markets.get(sym)
        mark = m.markPrice if m is not None else None
    if mark is None or (price >= mark if order.side == "buy" else price <= mark):
        return snapshot  # no mark to rest against, or it crosses: fills now
    positions = tuple(
        _replace(p, markPrice=price) if p.symbol == sym else p for p in snapshot.positions
    )
    markets = dict(snapshot.markets)
    m = markets.get(sym)
    if m is not None:
        markets[sym] = _replace(m, markPrice=price)
    return _replace(snapshot, positions=positions, markets=markets, source=None)


def order_position(snapshot: Snapshot, order: Order) -> Position | None:
    """The position ``order`` acts on: its symbol's, or in hedge mode the leg it opens or
    closes (``riskguard.margin.accounts.order_leg``), so pre-trade sizing never mistakes an
    order opening one leg for one closing the other."""
    if snapshot.positionMode == "hedge":
        from riskguard.margin.accounts import order_leg

        leg = order_leg(order)
        for p in snapshot.positions:
            if p.symbol == order.symbol and p.side == leg:
                return p
        return None
    return position_of(snapshot, order.symbol)
