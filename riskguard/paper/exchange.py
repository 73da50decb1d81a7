"""The paper exchange: ccxt's unified methods over accounts priced by a price path.

See the package docstring (``riskguard.paper``) for how to use it. This module holds the
ccxt surface of :class:`PaperExchange`; its market (``step``, fills, funding, liquidation,
``snapshot``) is :class:`riskguard.paper.venue.Venue`, its books
:mod:`riskguard.paper.state`, its async shape :mod:`riskguard.paper.aio`.

Conventions, each a fact of the exchanges riskguard models (``riskguard/margin/``):

- **One-way mode**: one position per symbol and account; an order against it reduces it,
  then opens the other side with what remains (unless ``reduceOnly``).
- **Hedge mode** (a snapshot with ``positionMode: "hedge"``; Binance "dual side position"):
  a long and a short leg per symbol, the book keyed by (symbol, leg). An order acts on the
  leg it names — Binance ``positionSide`` LONG|SHORT, OKX ``posSide``, Bybit
  ``positionIdx`` 1|2 — else the leg ccxt's ``hedged`` flag infers (a reduce-only order
  closes the leg opposite its side, any other opens its side's). A buy on the long leg
  or a sell on the short opens or adds; the opposite side closes that leg only and
  never flips into the other (what is left over is not filled). A reduce-only order that
  would open its leg, or a closing order on an empty leg, is refused with Binance's
  ``-2022`` "ReduceOnly Order is rejected" (``ccxt.InvalidOrder``); a leg named on a
  one-way account, or the one-way side (``BOTH``) on a hedge-mode one, with ``-4061``
  "Order's position side does not match user's setting" (``ccxt.OperationRejected``).
  Leverage and margin mode are the symbol's (both legs); ``add_margin`` needs
  ``positionSide`` when both legs are open. Liquidation is the same condition as below,
  each leg with its own maintenance margin (its own tier) — the joint liquidation price
  riskguard reports for a hedged pair
  (``riskguard.margin.accounts``; Binance, "How to Calculate Liquidation Price of USDⓈ-M
  Futures Contracts").
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
- **Multi-collateral** (a snapshot with ``balances``): the coins are held with their
  collateral ratios; the settle coin's amount is the wallet (PnL, fees and funding), a
  coin that is the base of a symbol is priced by its mark (snapshot price × the mark's
  move), any other keeps its price. The cross condition above then reads riskguard's
  margin balance (``riskguard.margin.accounts``: Σ amount × price × collateral ratio,
  uPnL in the settle coin; Bybit "Key Terms and Formulas in Unified Trading Account"),
  i.e. liquidation when the account maintenance-margin rate reaches 100 %; the collateral
  coins are forfeit with the cross wallet.
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
import math
from collections import deque
from typing import Any

from riskguard.errors import RiskguardError
from riskguard.margin.base import MarginModel, with_close_fee
from riskguard.model.snapshot import (
    LeverageTier,
    Position,
    Snapshot,
)
from riskguard.paper.state import (
    CCXT_IDS,
    DEFAULT_TAKER_FEE,
    STOP_KINDS,
    TOTAL_IS_EQUITY,
    MarketStats,
    PaperAccount,
    PaperOrder,
    PaperPosition,
    _first_stop,
    _first_tp,
    _iso,
    _model,
    _raw_symbol,
    _s,
    _snapshots,
    _stops,
    _with,
)
from riskguard.paper.venue import Venue

from .errors import ccxt_module, refusal


class PaperExchange(Venue):
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
        realized_vol: bool = True,
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
        # False: market_stats keep ATR% only, for a caller whose rules never read realized
        # volatility (the simulator asks the policy); snapshots then carry no realizedVolPct
        self.realized_vol = bool(realized_vol)
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
        hedge = s.positionMode == "hedge"
        keys = [(p.symbol, p.side) if hedge else p.symbol for p in s.positions]
        if len(set(keys)) != len(keys):
            raise RiskguardError(
                f"account {s.account}: "
                + (
                    "a hedge-mode account holds one long and one short leg per symbol"
                    if hedge
                    else "a one-way account holds one position per symbol "
                    '(a long and a short of one symbol need "positionMode": "hedge")'
                )
            )
        acct = PaperAccount(s.account, s.walletBalance, s.settle, hedge=hedge)
        if s.balances:  # multi-collateral: the settle coin's amount is the wallet
            from riskguard.model.balances import Balance

            acct.balances = list(s.balances)
            own = [b for b in s.balances if b.coin == s.settle]
            acct.wallet = own[0].amount if own else 0.0
            if not own:  # PnL and fees settle in it (at price 1, ratio 1: as riskguard counts)
                acct.balances.append(Balance(s.settle, 0.0, 1.0))
        for sym, ts in s.leverageTiers.items():
            self.tiers.setdefault(sym, ts)
        for sym, m in s.markets.items():
            self.add_market(sym, contract_size=m.contractSize)
            if m.markPrice is not None:
                self.marks.setdefault(sym, m.markPrice)
            if m.candles and sym not in self.candles:
                d = self.candles[sym] = deque(maxlen=self._candle_history)
                st = self.stats[sym] = MarketStats(self.realized_vol)
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
            acct.positions[acct.key(p.symbol, p.side)] = PaperPosition(
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
            leg = None
            if hedge:  # riskguard's own reading of the leg (positionSide, else inferred)
                from riskguard.margin.accounts import order_leg

                leg = order_leg(o)
            self._new_order(
                acct,
                o.symbol,
                o.type if o.type in ("limit", "market") else "limit",
                o.side,
                o.amount,
                o.price,
                reduce_only=o.reduceOnly
                or (leg is not None and (o.side == "buy") != (leg == "long")),
                client_id=o.clientOrderId,
                leg=leg,
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
            leg=p.side,
        )

    def view(self, account: str) -> PaperExchange:
        """This exchange (same markets, marks and accounts) acting on ``account`` by default."""
        if account not in self.accounts:
            raise KeyError(f"no account {account!r}; accounts: {', '.join(self.accounts)}")
        other = copy.copy(self)
        other._default = account
        return other

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

    # ------------------------------------------------------------------ margin figures

    # ------------------------------------------------------------------ fills

    # ------------------------------------------------------------------ orders

    # ------------------------------------------------------------------ snapshot

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
            p = acct.position(pm.symbol, pm.side)
            if p is not None:
                out.append(self._ccxt_position(acct, p, pm, stops))
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
                # Bybit: 0 one-way, 1 the hedge-mode Buy (long) leg, 2 the Sell (short) leg
                "positionIdx": (1 if p.side == "long" else 2) if acct.hedge else 0,
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
                "positionSide": p.side.upper() if acct.hedge else "BOTH",
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
            "hedged": acct.hedge,
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
                "positionSide": o.leg.upper() if o.leg else "BOTH",
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
        leg = self._order_leg(acct, params, side, reduce_only)
        if leg is not None:
            opens = (side == "buy") == (leg == "long")
            if reduce_only and opens:
                raise self._refuse(
                    "reduce_only",
                    f"a reduce-only {side} on the {leg.upper()} side would open it, not reduce it",
                )
            reduce_only = not opens  # a closing order closes its own leg, never flips
        pos = acct.position(symbol, leg)
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
                leg=leg,
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
            leg=leg,
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
        p = acct.position(symbol, leg)
        if sl is not None and p is not None:
            sl_price = float(sl["triggerPrice"] if isinstance(sl, dict) else sl)
            self._place_trigger(
                acct, _with(p.position, contracts=p.contracts), sl_price, "stop_loss"
            )
        return self._ccxt_order(o)

    def _order_leg(
        self, acct: PaperAccount, params: dict, side: str, reduce_only: bool
    ) -> str | None:
        """The hedge-mode leg an order names (None in one-way mode).

        Binance ``positionSide`` LONG|SHORT, OKX ``posSide`` long|short, Bybit
        ``positionIdx`` 1|2; with none of them (or ccxt's ``hedged: true`` alone) the leg is
        inferred the way ccxt does for ``hedged``: a reduce-only order closes the leg opposite
        its side, any other opens the leg of its side. A leg named in one-way mode, or the
        one-way leg (``BOTH``, ``net``, ``positionIdx: 0``) in hedge mode, is refused as
        Binance refuses it (``-4061`` "Order's position side does not match user's setting")."""
        named: str | None = None
        raw: Any = None
        for key in ("positionSide", "posSide"):
            if params.get(key) is not None:
                raw = params[key]
                named = str(raw).lower()
                break
        else:
            if params.get("positionIdx") is not None:
                raw = params["positionIdx"]
                named = {"0": "both", "1": "long", "2": "short"}.get(str(raw), str(raw))
        if named == "net":
            named = "both"
        if named is not None and named not in ("long", "short", "both"):
            raise self._refuse("bad_request", f"position side {raw!r}")
        if not acct.hedge:
            if named in ("long", "short"):
                raise self._refuse(
                    "position_side", f"{raw!r} names a hedge-mode leg; the account is one-way"
                )
            return None
        if named == "both":
            raise self._refuse(
                "position_side", f"{raw!r} is the one-way side; the account is in hedge mode"
            )
        if named is not None:
            return named
        if reduce_only:
            return "short" if side == "buy" else "long"
        return "long" if side == "buy" else "short"

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
        legs = acct.legs(symbol)  # both legs in hedge mode: the mode is the symbol's
        current = legs[0].marginMode if legs else acct.modes.get(symbol, "cross")
        if mode == current:
            return {
                "info": {"code": 200, "msg": "No need to change margin type."},
                "symbol": symbol,
                "marginMode": mode,
            }
        has_orders = any(o.symbol == symbol for o in acct.orders.values())
        feas = self.model.switch_feasibility(mode, bool(legs), has_orders)
        if feas.feasible is False:
            kind = "margin_mode_position" if legs else "margin_mode_orders"
            raise self._refuse(kind, feas.reason, feas.code)
        for pos in legs:
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
        for pos in acct.legs(symbol):
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
        legs = acct.legs(symbol)
        named = (params or {}).get("positionSide") or (params or {}).get("posSide")
        if named is not None:
            legs = [p for p in legs if p.side == str(named).lower()]
        elif len(legs) > 1:  # Binance: positionSide "must be sent with Hedge Mode"
            raise self._refuse(
                "bad_request", f"{symbol} holds both legs: name one (params.positionSide)"
            )
        pos = legs[0] if legs else None
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
