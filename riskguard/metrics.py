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

from dataclasses import dataclass

from .margin.base import MarginModel
from .snapshot import Order, Position, Snapshot


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

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "positions"}
        d["positions"] = [p.to_dict() for p in self.positions]
        return d

    def position(self, symbol: str) -> PositionMetrics | None:
        for p in self.positions:
            if p.symbol == symbol:
                return p
        return None


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


def compute_metrics(snapshot: Snapshot, model: MarginModel) -> AccountMetrics:
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
    for i, p in enumerate(positions):
        mark = snapshot.mark_price(p)
        marks[i] = mark  # type: ignore[assignment]  # builder guarantees a mark
        u = model.unrealized_pnl(p, mark)  # type: ignore[arg-type]
        upnl[i] = u
        tiers = snapshot.leverageTiers.get(p.symbol, ())
        m, tier = model.maintenance_margin(p, tiers, mark)  # type: ignore[arg-type]
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
                cross_mm += m

    cross_wallet = snapshot.walletBalance - iso_total
    total_upnl = sum(upnl)
    equity = snapshot.walletBalance + total_upnl
    out: list[PositionMetrics] = []
    total_im = total_mm = total_notional = 0.0
    lev_by_symbol: dict[str, float] = {}
    for i, p in enumerate(positions):
        mark = marks[i]
        notional = model.notional(p, mark)
        lev_assumed = p.leverage is None
        lev = p.leverage or 1.0
        lev_by_symbol[p.symbol] = lev
        if p.marginMode == "isolated":
            im = p.isolatedMargin or 0.0
        else:
            im = notional / lev
        lp = None
        if mm[i] is not None:
            tiers = snapshot.leverageTiers.get(p.symbol, ())
            if p.marginMode == "isolated":
                lp = model.liquidation_price(p, tiers, mark, p.isolatedMargin or 0.0)
            else:
                lp = model.liquidation_price(
                    p, tiers, mark, cross_wallet, cross_mm - mm[i], cross_upnl - upnl[i]
                )  # type: ignore[operator]
        dist = p.sign * (mark - lp) / mark * 100.0 if lp is not None else None
        total_im += im
        total_notional += notional
        if mm[i] is not None:
            total_mm += mm[i]  # type: ignore[operator]
        out.append(
            PositionMetrics(
                symbol=p.symbol,
                side=p.side,
                marginMode=p.marginMode,
                contracts=p.contracts,
                entryPrice=p.entryPrice,
                markPrice=mark,
                notional=notional,
                leverage=p.leverage,
                initialMargin=im,
                maintenanceMargin=mm[i],
                maintenanceMarginRate=mmr[i],
                unrealizedPnl=upnl[i],
                liquidationPrice=lp,
                liquidationDistancePct=dist,
                exchangeLiquidationPrice=p.liquidationPrice,
                stopLossPrice=p.stopLossPrice,
                marginModel=model.name,
                approximate=model.approximate or tier_src[i] != "tiers",
                tierSource=tier_src[i],
                leverageAssumed=lev_assumed,
            )
        )
    order_im = 0.0
    for o in snapshot.openOrders:
        if not o.reduceOnly:
            order_im += order_initial_margin(o, snapshot, lev_by_symbol.get(o.symbol))
    util = _ratio(total_im, equity)
    util_o = _ratio(total_im + order_im, equity) if order_im == order_im else None  # NaN → None
    return AccountMetrics(
        account=snapshot.account,
        exchange=snapshot.exchange,
        settle=snapshot.settle,
        walletBalance=snapshot.walletBalance,
        crossWalletBalance=cross_wallet,
        unrealizedPnl=total_upnl,
        equity=equity,
        initialMargin=total_im,
        openOrderInitialMargin=order_im,
        maintenanceMargin=total_mm,
        marginUtilization=util,
        marginUtilizationWithOrders=util_o,
        marginRatio=_ratio(total_mm, equity),
        effectiveLeverage=_ratio(total_notional, equity),
        marginModel=model.name,
        approximate=model.approximate or any(t != "tiers" for t in tier_src),
        positions=tuple(out),
    )


def apply_order(snapshot: Snapshot, order: Order) -> Snapshot:
    """The snapshot as it would be right after ``order`` fills at its price (or mark).

    Used for pre-trade checks: rules evaluate the projected account. Adds to, reduces,
    closes or flips the one-way position of the order's symbol; isolated margin grows by
    the order's initial margin. The wallet is unchanged (fees are not modelled).
    """
    from dataclasses import replace

    price = order.price
    existing = None
    for p in snapshot.positions:
        if p.symbol == order.symbol:
            existing = p
            break
    if price is None:
        m = snapshot.markets.get(order.symbol)
        if m is not None and m.markPrice is not None:
            price = m.markPrice
        elif existing is not None:
            price = snapshot.mark_price(existing)
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
        return replace(snapshot, positions=(*others, new), source=None)
    if existing.side == side:
        total = existing.contracts + order.amount
        entry = (existing.entryPrice * existing.contracts + price * order.amount) / total
        iso = existing.isolatedMargin
        if existing.marginMode == "isolated":
            lev = order.leverage or existing.leverage or 1.0
            iso = (iso or 0.0) + order.amount * existing.contractSize * price / lev
        new = replace(
            existing,
            contracts=total,
            entryPrice=entry,
            isolatedMargin=iso,
            stopLossPrice=order.stopLossPrice or existing.stopLossPrice,
        )
        return replace(snapshot, positions=(*others, new), source=None)
    # Opposite side: reduce, close or flip.
    remaining = existing.contracts - order.amount
    if abs(remaining) <= 1e-12 * max(existing.contracts, 1.0):
        return replace(snapshot, positions=others, source=None)
    if remaining > 0:
        frac = remaining / existing.contracts
        iso = existing.isolatedMargin * frac if existing.isolatedMargin is not None else None
        return replace(
            snapshot,
            positions=(*others, replace(existing, contracts=remaining, isolatedMargin=iso)),
            source=None,
        )
    if order.reduceOnly:
        return replace(snapshot, positions=others, source=None)
    flipped = -remaining
    lev = order.leverage or existing.leverage or 1.0
    iso = (
        flipped * existing.contractSize * price / lev if existing.marginMode == "isolated" else None
    )
    new = replace(
        existing,
        side=side,
        contracts=flipped,
        entryPrice=price,
        isolatedMargin=iso,
        stopLossPrice=order.stopLossPrice,
        liquidationPrice=None,
    )
    return replace(snapshot, positions=(*others, new), source=None)


def _mark_for(snapshot: Snapshot, symbol: str, fallback: float) -> float:
    m = snapshot.markets.get(symbol)
    if m is not None and m.markPrice is not None:
        return m.markPrice
    return fallback


def order_reduces(snapshot: Snapshot, order: Order) -> bool:
    """True when the order only reduces (or closes) an existing position."""
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
