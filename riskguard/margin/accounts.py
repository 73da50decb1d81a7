"""Accounts as they really are: hedge mode and multi-collateral margin.

``riskguard.margin.metrics.compute_metrics`` branches here only for a snapshot in hedge mode or
with ``balances``; one-way single-currency accounts never reach this module.

Hedge mode (dual-side positions)
--------------------------------
Binance, "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
(https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93): in cross
margin "the long and short positions of the same symbol share one liquidation price"::

    LP = (WB − TMM1 + UPNL1 + cumB + cumL + cumS
          − Side1BOTH·Position1BOTH·EP1BOTH − Position1LONG·EP1LONG + Position1SHORT·EP1SHORT)
       / (Position1BOTH·MMR_B + Position1LONG·MMR_L + Position1SHORT·MMR_S
          − Side1BOTH·Position1BOTH − Position1LONG + Position1SHORT)

It is the one condition "margin balance = maintenance margin" with both legs' PnL and
maintenance margin moving with the symbol's mark; each leg takes the tier its own
notional falls in, re-looked-up at the solution until stable, as for one-way. The same
condition gives the joint price for the other mark-basis models (their closing fee adds
``f·Q`` per leg), for inverse contracts (Binance COIN-M's BOTH/LONG/SHORT form:
``LP = Σ Q_k·(MMR_k + f + s_k) / (WB − TMM1 + UPNL1 + Σ cum_k + Σ s_k·Q_k/EP_k)``) and for
entry-basis models (Bybit: maintenance margin at entry, so the legs' PnL alone moves; equal
legs then have no liquidation price). Isolated legs are independent positions: the
one-way isolated formula applies to each.

Multi-collateral accounts
-------------------------
Bybit, "Understanding Collateral Value Ratios in Unified Trading Account" and "Key Terms
and Formulas in Unified Trading Account" (https://www.bybit.com/en/help-center/article/Glossary-Unified-Trading-Account):
cross margin ``Margin Balance = Σ coin (wallet + perp uPnL) × USD index price ×
collateral value ratio`` (ratio only on positive balances), ``Account IM Rate = Total
Initial Margin / Margin Balance``, ``Account MM Rate = Total Maintenance Margin / Margin
Balance``; liquidation when the account MM rate reaches 100 % ("Trading Rules:
Liquidation Process (Unified Trading Account)"). Binance Multi-Assets mode values each
asset at its index price times its collateral rate the same way.

Per position, riskguard reports the mark at which the account MM rate would reach 100 %
with every other position and price unchanged — except coins priced by that symbol: a BTC
balance moves with BTC/USDT's mark (a BTC-collateralised short BTC is hedged; a long is
doubly exposed). Where the margin balance is linear in that price (no collateral coin is
the position's base, the settle coin counted at ratio 1) the shared closed-form solver
runs with the collateral value as the wallet, so a single-currency account gives
identical figures through this path; otherwise the condition is solved numerically (a
bracketed false-position search to 1e-12 relative) on the position's adverse side (both
sides for a flat hedged pair); no root there → no liquidation price. A liability
(negative coin equity, e.g. USDT after losses) counts at ratio 1.

Not modelled: haircut loss and order loss of open spot orders (Bybit), borrowing and
interest on negative balances, portfolio margin (Bybit, Binance), Binance's auto-exchange
of negative balances, auto-deleveraging and the insurance fund.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from riskguard.margin.base import MarginModel
from riskguard.model.balances import Balance
from riskguard.model.snapshot import Order, Snapshot

_REL = 1e-12


class OrderRefused(ValueError):
    """An order the exchange itself would reject (the engine reports ``code``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_INIT: dict[type, tuple[str, ...]] = {}


def replace_fields(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` without its per-call field introspection (as in metrics)."""
    cls = type(obj)
    names = _INIT.get(cls)
    if names is None:
        names = _INIT[cls] = tuple(f.name for f in fields(cls) if f.init)
    return cls(*[changes[n] if n in changes else getattr(obj, n) for n in names])


def _base_coin(symbol: str) -> str:
    return symbol.split("/", 1)[0]


# --------------------------------------------------------------------------- metrics


def account_metrics(snapshot: Snapshot, model: MarginModel, compute: Any, extended: type) -> Any:
    """The account figures of a hedge-mode or multi-collateral account.

    ``compute`` is ``riskguard.margin.metrics.compute_metrics`` (run on the one-way,
    single-wallet view of the account) and ``extended`` its ``ExtendedAccountMetrics``:
    passed in so this module does not import the metrics module that calls it.
    """
    compute_metrics = compute
    balances = snapshot.balances
    settle = snapshot.settle
    wallet = snapshot.walletBalance
    if balances:
        wallet = sum(b.collateral_value() for b in balances)
    orders = snapshot.openOrders
    if snapshot.positionMode == "hedge":  # closing orders lock no margin
        orders = tuple(o for o in orders if order_opens(o))
    view = replace_fields(
        snapshot,
        positionMode="oneway",
        balances=(),
        walletBalance=wallet,
        openOrders=orders,
        source=None,
    )
    base = compute_metrics(view, model)
    positions = list(base.positions)
    by_symbol: dict[str, list[int]] = {}
    for i, p in enumerate(view.positions):
        if p.marginMode == "cross":
            by_symbol.setdefault(p.symbol, []).append(i)
    upnl = base.unrealizedPnl
    margin_balance = wallet + upnl
    linear = True
    if balances:
        margin_balance = _margin_balance(balances, settle, upnl, {})
        linear = _settle_linear(balances, settle, upnl) and not any(
            b.amount and b.coin in {_base_coin(s) for s in by_symbol} for b in balances
        )
    totals = _pool_totals(model, base)
    for idx in by_symbol.values():
        hedged = snapshot.positionMode == "hedge" and len(idx) > 1
        if not hedged and linear:
            continue  # compute_metrics' one-way figure is already the exact one
        if linear:
            lp = _joint_lp(model, view, base, idx, totals)
        else:
            lp = _numeric_lp(model, view, base, idx, balances, settle)
        for i in idx:
            pm = positions[i]
            s = 1 if pm.side == "long" else -1
            dist = s * (pm.markPrice - lp) / pm.markPrice * 100.0 if lp is not None else None
            positions[i] = replace_fields(pm, liquidationPrice=lp, liquidationDistancePct=dist)
    equity = margin_balance
    total_im, total_mm = base.initialMargin, base.maintenanceMargin
    return extended(
        base.account,
        base.exchange,
        base.settle,
        wallet,
        base.crossWalletBalance,
        upnl,
        equity,
        total_im,
        base.openOrderInitialMargin,
        total_mm,
        total_im / equity if equity > 0 else None,
        (total_im + base.openOrderInitialMargin) / equity
        if equity > 0 and base.marginUtilizationWithOrders is not None
        else None,
        total_mm / equity if equity > 0 else None,
        _ratio(net_notional(base.positions), equity)
        if snapshot.positionMode == "hedge"
        else _ratio(sum_notional(base), equity),
        base.marginModel,
        base.approximate,
        tuple(positions),
        snapshot.positionMode,
        wallet if balances else None,
        margin_balance if balances else None,
        total_im / margin_balance if balances and margin_balance > 0 else None,
        total_mm / margin_balance if balances and margin_balance > 0 else None,
        tuple(_balance_row(b) for b in balances),
        _ratio(sum_notional(base), equity),
    )


def sum_notional(m: Any) -> float:
    return sum(p.notional for p in m.positions)


def net_notional(positions: Any) -> float:
    """Exposure of a hedge-mode book: per symbol, |long notional − short notional|.

    A long and a short leg of one symbol offset each other's price exposure, so leverage
    (exposure / equity) nets them; initial margin does not (exchanges charge both legs)."""
    net: dict[str, float] = {}
    for p in positions:
        net[p.symbol] = net.get(p.symbol, 0.0) + (p.notional if p.side == "long" else -p.notional)
    return sum(abs(v) for v in net.values())


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _balance_row(b: Balance) -> dict:
    return {
        "coin": b.coin,
        "amount": b.amount,
        "price": b.price,
        "value": b.amount * b.price,
        "collateralValue": b.collateral_value(),
    }


def _margin_balance(balances, settle: str, upnl: float, prices: dict) -> float:
    """Σ collateral value, the settle coin's amount including ``upnl`` (Bybit's coin equity)."""
    total = 0.0
    has_settle = False
    for b in balances:
        amt = b.amount
        if b.coin == settle:
            amt += upnl
            has_settle = True
        total += b.collateral_value(amt, prices.get(b.coin, b.price))
    if not has_settle:
        total += upnl  # PnL settles in the settle currency at price 1, ratio 1
    return total


def _settle_linear(balances, settle: str, upnl: float) -> bool:
    """True when the settle coin counts at ratio 1 whatever its amount (uPnL adds 1:1)."""
    for b in balances:
        if b.coin == settle:
            if b.collateralTiers:
                return all(t.ratio == 1.0 for t in b.collateralTiers) and (
                    b.collateralTiers[-1].maxAmount is None
                )
            return b.collateralRatio == 1.0 and b.price == 1.0
    return True


def _pool_totals(model: MarginModel, base: Any) -> tuple[float, float]:
    """Σ (maintenance margin + closing fee) and Σ uPnL of the account's cross positions."""
    t = u = 0.0
    fee = model.closeFeeRate
    for pm in base.positions:
        if pm.marginMode != "cross":
            continue
        u += pm.unrealizedPnl
        if pm.maintenanceMargin is not None:
            t += pm.maintenanceMargin + fee * pm.notional
    return t, u


def _others(
    model: MarginModel, base: Any, idx: list[int], totals: tuple[float, float]
) -> tuple[float, float, float]:
    """Cross wallet, Σ (MM + fee) and Σ uPnL of the cross positions not in ``idx``."""
    t1, u1 = totals
    fee = model.closeFeeRate
    for i in idx:
        pm = base.positions[i]
        u1 -= pm.unrealizedPnl
        if pm.maintenanceMargin is not None:
            t1 -= pm.maintenanceMargin + fee * pm.notional
    return base.crossWalletBalance, t1, u1


def _joint_lp(
    model: MarginModel,
    view: Snapshot,
    base: Any,
    idx: list[int],
    totals: tuple[float, float] | None = None,
) -> float | None:
    """The one price at which the legs in ``idx`` (one symbol, cross) liquidate the pool."""
    legs = [view.positions[i] for i in idx]
    tiers = view.leverageTiers.get(legs[0].symbol, ())
    if any(base.positions[i].maintenanceMargin is None for i in idx):
        return None
    wb, t1, u1 = _others(model, base, idx, totals or _pool_totals(model, base))
    f = model.closeFeeRate
    mark = base.positions[idx[0]].markPrice
    inverse = legs[0].inverse
    if model.mmBasis == "entry" and not inverse:
        num = t1 - wb - u1
        den = 0.0
        for p in legs:
            tier = model.tier_for(p, tiers, p.entryPrice)
            if tier is None:
                return None
            amt = tier.maintenanceAmount if model.mmDeduction else 0.0
            num += max(p.size * p.entryPrice * tier.maintenanceMarginRate - amt, 0.0)
            num += p.sign * p.size * p.entryPrice
            den += p.sign * p.size - f * p.size
        if den == 0:
            return None
        lp = num / den
        return lp if lp > 0 else None
    price = mark
    seen: set[tuple[int, ...]] = set()
    for _ in range(4 * len(tiers) + 4):
        found = [model.tier_for(p, tiers, price) for p in legs]
        chosen = [t for t in found if t is not None]
        if len(chosen) != len(legs):
            return None
        key = tuple(id(t) for t in chosen)
        num = wb - t1 + u1
        den = 0.0
        for p, t in zip(legs, chosen, strict=True):
            amt = t.maintenanceAmount if model.mmDeduction else 0.0
            if inverse:
                num += amt + p.sign * p.size / p.entryPrice
                den += p.size * (t.maintenanceMarginRate + f + p.sign)
            else:
                num += amt - p.sign * p.size * p.entryPrice
                den += p.size * (t.maintenanceMarginRate + f) - p.sign * p.size
        if inverse:
            if num == 0:
                return None
            lp = den / num
        else:
            if den == 0:
                return None
            lp = num / den
        if not lp > 0 or lp - lp != 0:
            return None
        if tuple(id(model.tier_for(p, tiers, lp)) for p in legs) == key:
            return lp
        if key in seen:
            break
        seen.add(key)
        price = lp
    # tiers without a stable assignment (MM jumps at a boundary): solve the condition directly
    return _numeric_lp(model, view, base, idx, (), view.settle)


def _surplus_fn(
    model: MarginModel,
    view: Snapshot,
    base: Any,
    idx: list[int],
    balances: tuple[Balance, ...],
    settle: str,
) -> Any:
    """``f(price)``: margin balance minus maintenance margin and closing fees with ``idx``'s
    symbol (and any coin of its base) at ``price``, everything else as it is. What does not
    move with the price is summed once here."""
    mark0 = base.positions[idx[0]].markPrice
    coin = _base_coin(view.positions[idx[0]].symbol)
    skip = set(idx)
    upnl0 = need0 = iso_upnl = 0.0
    fee = model.closeFeeRate
    for i, pm in enumerate(base.positions):
        if i in skip:
            continue
        upnl0 += pm.unrealizedPnl
        if pm.marginMode == "isolated":
            iso_upnl += pm.unrealizedPnl  # isolated positions' margin and PnL are theirs
        elif pm.maintenanceMargin is not None:
            need0 += pm.maintenanceMargin + fee * pm.notional
    iso = base.walletBalance - base.crossWalletBalance
    legs = [(view.positions[i], view.leverageTiers.get(view.positions[i].symbol, ())) for i in idx]
    moving = [b for b in balances if b.coin == coin]
    upnl_of, mm_of, notional_of = model.unrealized_pnl, model.maintenance_margin, model.notional
    wallet = base.walletBalance

    def f(price: float) -> float:
        upnl, need = upnl0, need0
        for p, tiers in legs:
            upnl += upnl_of(p, price)
            mm, _ = mm_of(p, tiers, price)
            need += mm + fee * notional_of(p, price)
        if balances:
            prices = {b.coin: b.price * price / mark0 for b in moving}
            mb = _margin_balance(balances, settle, upnl, prices)
        else:
            mb = wallet + upnl
        return mb - iso_upnl - iso - need

    return f


def _root(f: Any, a: float, fa: float, b: float, fb: float) -> float:
    """The root of ``f`` in the bracket [a, b] (signs of fa and fb differ): Illinois false
    position — the surplus is piecewise linear in the price, so a few steps suffice — with a
    bisection step whenever the interpolation leaves the bracket; to 1e-12 relative."""
    side = 0
    c = a
    for _ in range(200):
        c_prev = c
        c = (a * fb - b * fa) / (fb - fa) if fb != fa else 0.5 * (a + b)
        lo, hi = (a, b) if a < b else (b, a)
        if not lo < c < hi:
            c = 0.5 * (a + b)
        fc = f(c)
        if fc == 0 or abs(c - c_prev) <= _REL * abs(c) or hi - lo <= _REL * hi:
            return c
        if (fc > 0) == (fb > 0):
            b, fb = c, fc
            if side == -1:
                fa /= 2
            side = -1
        else:
            a, fa = c, fc
            if side == 1:
                fb /= 2
            side = 1
    return c


def _numeric_lp(
    model: MarginModel,
    view: Snapshot,
    base: Any,
    idx: list[int],
    balances: tuple[Balance, ...],
    settle: str,
) -> float | None:
    """The nearest price on the symbol's adverse side where the surplus reaches 0 (a bracket
    grown geometrically from the mark, then :func:`_root`). From a mark already at or past liquidation, the nearest price on the other
    side where the account becomes safe again — what the closed form gives then too."""
    mark = base.positions[idx[0]].markPrice
    f = _surplus_fn(model, view, base, idx, balances, settle)
    s0 = f(mark)
    if s0 != s0:
        return None
    net = sum(view.positions[i].sign * view.positions[i].size for i in idx)
    # adverse: down for a net long, up for a net short (and up for a flat pair: MM grows)
    directions = (-1, 1) if net > 0 else (1, -1)
    safe = s0 > 0
    if not safe:
        directions = (directions[1], directions[0])
    for d in directions:
        prev, fprev = mark, s0
        step = 0.01
        for _ in range(200):
            nxt = mark * (1 + step) if d > 0 else mark / (1 + step)
            fn = f(nxt)
            if (fn > 0) != safe:  # the surplus changed sign in (prev, nxt]
                return _root(f, prev, fprev, nxt, fn)
            prev, fprev = nxt, fn
            step *= 4.0  # a wide bracket costs _root a few steps, a narrow scan many
            if step > 1e12:  # a millionth of a millionth of the mark, or a trillion times it
                break
        # nothing on the first side: a net position's exposure points one way only (a
        # collateral coin larger than a short makes the account net long); a flat pair
        # looks both ways
        if net != 0:
            break
    return None


# --------------------------------------------------------------------------- orders


def order_leg(order: Order) -> str:
    """The hedge-mode leg an order acts on: its positionSide, else inferred the way ccxt
    does for Binance (a reduce-only order closes the leg opposite its side)."""
    if order.positionSide is not None:
        return order.positionSide
    if order.reduceOnly:
        return "short" if order.side == "buy" else "long"
    return "long" if order.side == "buy" else "short"


def order_opens(order: Order) -> bool:
    return (order.side == "buy") == (order_leg(order) == "long")


def check_hedge_order(order: Order) -> None:
    if order.reduceOnly and order_opens(order):
        leg = order_leg(order)
        raise OrderRefused(
            "ORDER_REDUCE_ONLY_WRONG_LEG",
            f"{order.symbol}: a reduce-only {order.side} on the {leg} leg would open or add to "
            f"it, not reduce it; the exchange rejects it (close the {leg} leg with a "
            f"{'sell' if leg == 'long' else 'buy'})",
        )


def apply_hedged_order(snapshot: Snapshot, order: Order, apply_oneway: Any) -> Snapshot:
    """The hedge-mode account right after ``order`` fills: it opens, adds to, reduces or
    closes its own leg only (a closing order never flips into the other leg)."""
    check_hedge_order(order)
    leg = order_leg(order)
    mine = tuple(p for p in snapshot.positions if p.symbol == order.symbol and p.side == leg)
    rest = tuple(p for p in snapshot.positions if not (p.symbol == order.symbol and p.side == leg))
    one = replace_fields(snapshot, positions=mine, positionMode="oneway", source=None)
    closing = not order_opens(order)
    o = replace_fields(order, reduceOnly=True) if closing and not order.reduceOnly else order
    if o.price is None and not mine:
        # a new leg fills at the symbol's mark, which the other leg may be the only one to carry
        m = snapshot.markets.get(order.symbol)
        if m is None or m.markPrice is None:
            other = next((p for p in snapshot.positions if p.symbol == order.symbol), None)
            if other is not None:
                o = replace_fields(o, price=snapshot.mark_price(other))
    out = apply_oneway(one, o)
    return replace_fields(out, positions=(*rest, *out.positions), positionMode="hedge")


def hedged_order_reduces(snapshot: Snapshot, order: Order) -> bool:
    if order_opens(order):
        return False
    leg = order_leg(order)
    return any(p.symbol == order.symbol and p.side == leg for p in snapshot.positions)


# --------------------------------------------------------------------------- stress


def stress_directions(snapshot: Snapshot, legs: list) -> dict[str, int]:
    """Per symbol, +1 when the adverse move is down, −1 when it is up.

    One price per symbol: hedged legs move together, in the direction that hurts the
    symbol's net exposure — its legs' net size plus, in a multi-collateral account, the
    collateral held in its base coin (a BTC-collateralised short BTC is partly hedged; a
    long is doubly exposed). A flat book is hurt where maintenance margin grows: up for
    linear contracts, down for inverse ones.
    """
    net: dict[str, float] = {}
    inverse: dict[str, bool] = {}
    for pos, _mark, _tiers in legs:
        net[pos.symbol] = net.get(pos.symbol, 0.0) + pos.sign * pos.size
        inverse[pos.symbol] = pos.inverse
    coins = {b.coin: b for b in snapshot.balances}
    out = {}
    for sym, n in net.items():
        b = coins.get(_base_coin(sym))
        if b is not None and b.amount > 0 and not inverse[sym]:
            n += b.collateral_value() / b.price  # collateral counted in base units
        out[sym] = (1 if n > 0 else -1) if n != 0 else (1 if inverse[sym] else -1)
    return out


def stress_pool(model: MarginModel, snapshot: Snapshot, legs: list, shocks: list) -> tuple:
    """(cross pool margin balance, maintenance margin + closing fees) after ``shocks`` (percent
    per leg), for hedge-mode and multi-collateral accounts (``cross_stress``).

    Each symbol moves once, adversely to its net exposure (:func:`stress_directions`);
    collateral coins move with the symbol of their coin, and the others fall by the largest
    shock applied (collateral is long exposure). Isolated positions stay as they are.
    """
    dirs = stress_directions(snapshot, legs)
    move: dict[str, float] = {}  # symbol -> shocked/mark ratio
    upnl = need = 0.0
    fee = model.closeFeeRate
    for (pos, _mark, _tiers), x in zip(legs, shocks, strict=True):
        r = max(1.0 - dirs[pos.symbol] * x / 100.0, 1e-9)
        move[pos.symbol] = (
            min(move.get(pos.symbol, r), r)
            if dirs[pos.symbol] > 0
            else max(move.get(pos.symbol, r), r)
        )
    for (pos, mark, tiers), _x in zip(legs, shocks, strict=True):
        m2 = mark * move[pos.symbol]
        upnl += model.unrealized_pnl(pos, m2)
        mm, tier = model.maintenance_margin(pos, tiers, m2)
        if tier is None:
            return float("nan"), float("nan")
        need += mm + (fee * model.notional(pos, m2) if fee else 0.0)
    iso_margin = iso_upnl = 0.0
    for p in snapshot.positions:
        if p.marginMode == "isolated":
            iso_margin += p.isolatedMargin or 0.0
            mk = snapshot.mark_price(p)
            if mk is not None:
                iso_upnl += model.unrealized_pnl(p, mk)
    if not snapshot.balances:
        return snapshot.walletBalance - iso_margin + upnl, need
    worst = max(shocks, default=0.0)
    by_coin = {_base_coin(s): r for s, r in move.items()}
    prices = {}
    for b in snapshot.balances:
        if b.coin == snapshot.settle:
            continue
        r = by_coin.get(b.coin, max(1.0 - worst / 100.0, 1e-9))
        prices[b.coin] = b.price * r
    mb = _margin_balance(snapshot.balances, snapshot.settle, upnl + iso_upnl, prices)
    return mb - iso_margin - iso_upnl, need
