"""The paper exchange's market: prices move, orders fill, funding is paid, accounts liquidate.

:class:`Venue` is the part of :class:`~riskguard.paper.exchange.PaperExchange` that is not
ccxt's surface: the step driver (``step`` / ``set_marks``), fills at the mark with slippage
and fees, resting and triggered orders, funding, liquidation by the margin model's own
condition, and the account read back as a riskguard snapshot. The conventions are stated in
:mod:`riskguard.paper.exchange`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from riskguard._compiled import mypyc_attr
from riskguard.margin.base import MarginModel
from riskguard.model.snapshot import (
    LeverageTier,
    Order,
    Snapshot,
    derive_tiers,
)
from riskguard.paper.state import (
    FUNDING_INTERVAL_MS,
    MarketStats,
    PaperAccount,
    PaperOrder,
    PaperPosition,
    _first_stop,
    _new_market,
    _new_position,
    _new_snapshot,
    _raw_symbol,
    _stops,
    _with,
)


@mypyc_attr(allow_interpreted_subclasses=True)
class Venue:
    """The market mechanics of a paper exchange (see the module docstring)."""

    # state the exchange sets up in its constructor (riskguard.paper.exchange.PaperExchange)
    accounts: dict[str, PaperAccount]
    model: MarginModel
    taker_fee: float
    maker_fee: float
    slippage: float
    funding_rate: float | None
    default_leverage: float
    snapshot_candles: int
    market_stats: bool
    realized_vol: bool
    stats: dict[str, MarketStats]
    markets: dict[str, dict[str, Any]]
    marks: dict[str, float]
    tiers: dict[str, tuple[LeverageTier, ...]]
    candles: dict[str, deque[Any]]
    events: list[dict[str, Any]]
    now: int
    _candle_history: int
    _default: str | None
    _fast: bool
    _ids: list[int]
    _tier_views: dict[tuple[Any, ...], dict[str, Any]]

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

    @property
    def account(self) -> PaperAccount:
        """The default account."""
        return self.accounts[self._default]  # type: ignore[index]

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
        own_marks = self.marks
        history = self.candles
        stats = self.stats
        now = float(self.now)
        keep = self._candle_history > 0  # 0: statistics only (the simulator), no history
        for sym, px in marks.items():
            px = float(px)
            if not px > 0 or px == math.inf:
                raise ValueError(f"mark price of {sym} must be a positive finite number, got {px}")
            if sym not in markets:
                self.add_market(sym)
            own_marks[sym] = px
            if record:
                d = history.get(sym)
                if d is None:
                    d = history[sym] = deque(maxlen=self._candle_history)
                    stats[sym] = MarketStats(self.realized_vol)
                c = candles.get(sym) if candles is not None else None
                if c is not None:
                    row = tuple(float(x) for x in c)
                    d.append(row)
                    stats[sym].add(row[2], row[3], row[4])
                else:
                    if keep:
                        d.append((now, px, px, px, px, 0.0))
                    stats[sym].add(px, px, px)
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
        wallet = self._collateral(acct, 0.0) if acct.balances else acct.wallet
        return wallet - iso_total, c_upnl, c_im, c_need, iso_total

    def balances_now(self, acct: PaperAccount) -> tuple[Any, ...]:
        """A multi-collateral account's coins at this step: the settle coin's amount is the
        wallet; a coin that is the base of a symbol with a mark is priced by that mark (its
        snapshot price times the mark's move since), any other keeps its price."""
        if not acct.balances:
            return ()
        from dataclasses import replace

        out = []
        for b in acct.balances:
            price = b.price
            if b.coin == acct.settle:
                out.append(replace(b, amount=acct.wallet))
                continue
            ref = acct.coin_ref.get(b.coin)
            if ref is None:
                for sym, m in self.markets.items():
                    if m["base"] == b.coin and m["settle"] == acct.settle and sym in self.marks:
                        ref = acct.coin_ref[b.coin] = (sym, self.marks[sym])
                        break
            if ref is not None:
                price = b.price * self.marks[ref[0]] / ref[1]
            out.append(replace(b, price=price))
        return tuple(out)

    def _collateral(self, acct: PaperAccount, upnl: float) -> float:
        """riskguard's margin balance of a multi-collateral account
        (``riskguard.margin.accounts``): Σ coin amount × price × collateral ratio, the
        settle coin's amount including ``upnl``."""
        from riskguard.margin.accounts import _margin_balance

        return _margin_balance(self.balances_now(acct), acct.settle, upnl, {})

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
                    del acct.positions[acct.key(p.symbol, p.side)]
                    acct.wallet = max(acct.wallet - iso, 0.0)
                    acct.realized -= iso
                    self._cancel_reduce_only(acct, p.symbol, p.side)
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
        if acct.balances:
            # riskguard's condition for a multi-collateral account: the margin balance (the
            # coins at their collateral value, uPnL in the settle coin) less the isolated
            # positions' margin and uPnL, against the cross MM + closing fees
            cross_wallet = self._collateral(acct, upnl + c_upnl) - upnl - iso_total - c_upnl
        if cross_wallet + c_upnl <= c_need:
            lost = max(cross_wallet, 0.0)
            coins = 0.0
            if acct.balances:  # the collateral coins are forfeit with the cross wallet
                lost = max(acct.wallet - iso_total, 0.0)  # the settle coin's part
                now = self.balances_now(acct)
                for i, b in enumerate(acct.balances):
                    if b.coin != acct.settle and b.amount > 0:
                        coins += b.amount * now[i].price
                        acct.balances[i] = _with(b, amount=0.0)
            for p in cross:
                del acct.positions[acct.key(p.symbol, p.side)]
                self._cancel_reduce_only(acct, p.symbol, p.side)
            acct.wallet = max(acct.wallet - lost, 0.0)
            lost += coins
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

    def _cancel_reduce_only(self, acct: PaperAccount, symbol: str, leg: str = "") -> None:
        """A closed position's reduce-only orders expire (Binance cancels them); in hedge
        mode those of the closed leg only (the orders that close it: sells for the long)."""
        closing = "sell" if leg == "long" else "buy"
        for oid, o in list(acct.orders.items()):
            if o.symbol == symbol and o.reduceOnly and (not acct.hedge or o.side == closing):
                o.status = "canceled"
                del acct.orders[oid]
                acct.closed.append(o)

    def _execute(
        self, acct: PaperAccount, o: PaperOrder, price: float, fee_rate: float, out: list[dict]
    ) -> None:
        """Fill what remains of ``o`` at ``price`` (reduce-only orders shrink to the position)."""
        amount = o.remaining
        pos = acct.position(o.symbol, o.leg)
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
        fee = self._apply_fill(acct, o.symbol, o.side, amount, price, fee_rate, o.reduceOnly, o.leg)
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
        leg: str | None = None,
    ) -> float:
        """Fill ``amount``: reduce the position the order acts on (one-way: the symbol's;
        hedge mode: its ``leg``), then open or add with the rest unless ``reduce_only``
        (in hedge mode every closing order is reduce-only: no flip across legs)."""
        m = self.markets[symbol]
        cs, inverse = m["contractSize"], m["inverse"]
        notional = amount * cs / price if inverse else amount * cs * price
        fee = fee_rate * notional
        acct.wallet -= fee
        acct.fees += fee
        pos = acct.position(symbol, leg)
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
                del acct.positions[acct.key(symbol, pos.side)]
                self._cancel_reduce_only(acct, symbol, pos.side)
                pos = None
            else:
                pos.changed()
        if rest > 1e-12 and not reduce_only:
            lev = acct.leverage.get(symbol, self.default_leverage)
            mode = acct.modes.get(symbol, "cross")
            add_im = (rest * cs / price if inverse else rest * cs * price) / lev
            if pos is None:
                acct.positions[acct.key(symbol, "long" if buy else "short")] = PaperPosition(
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
        leg: str | None = None,
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
        o.leg = leg if acct.hedge else None
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
                positionSide=o.leg,
            )
            for o in acct.orders.values()
            if o.trigger is None and not o.reduceOnly and o.remaining > 0
        )
        wanted = tuple(dict.fromkeys([*(p.symbol for p in acct.positions.values()), *symbols]))
        n = self.snapshot_candles
        markets = {}
        for sym in wanted:
            cs = self.markets[sym]["contractSize"] if sym in self.markets else None
            if self.market_stats:
                st = self.stats.get(sym)
                atr = rv = None
                if st is not None:
                    atr = st.atr_pct
                    rv = st.realized_vol_pct if self.realized_vol else None
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
        return _new_snapshot(
            acct.wallet,
            tuple(positions),
            self.model.name,
            acct.name,
            acct.settle,
            self.now,
            orders,
            tiers,
            markets,
            1,
            {"takerFeeRate": self.taker_fee} if self.model.takerFeeInTrigger else {},
            None,
            "hedge" if acct.hedge else "oneway",
            self.balances_now(acct),
        )

    def equity(self, account: str | None = None) -> float:
        """Wallet + Σ uPnL at the current marks."""
        acct = self.accounts[account or self._default]  # type: ignore[index]
        u = 0.0
        for p in acct.positions.values():
            u += self.model.unrealized_pnl(p.position, self.marks[p.symbol])
        if acct.balances:  # the margin balance: coins at their collateral value
            return self._collateral(acct, u)
        return acct.wallet + u
