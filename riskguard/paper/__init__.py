"""The paper exchange: a simulated futures exchange with ccxt's unified methods.

It holds one or more accounts (wallet, positions, open orders, leverage tiers, margin
mode and leverage per symbol) under one of riskguard's margin models, is priced by a
path you drive step by step, liquidates exactly where the margin model says, and
answers the ccxt methods bots and riskguard call with ccxt's unified structures —
including the raw ``info`` fields ``snapshot_from_ccxt`` reads. Use it to dry-run a ccxt
bot offline, to test a ``GuardedExchange`` / ``CcxtExecutor`` / watcher end to end, and
as the venue of ``riskguard simulate``::

    from riskguard.paper import PaperExchange

    ex = PaperExchange("examples/snapshots/binance-two-cross.json")   # or a dict / Snapshot,
                                                                    # or {"a": snap, "b": snap}
    ex.load_markets()
    ex.fetch_balance()["USDT"]                     # {"free": …, "used": …, "total": …}
    ex.create_order("BTC/USDT:USDT", "market", "sell", 0.1, None,
                    {"stopLossPrice": 55000, "reduceOnly": True})   # a stop-market
    events = ex.step({"BTC/USDT:USDT": 54000.0}, timestamp=1732449660000)
    # -> [{"type": "fill", …}] or [{"type": "liquidation", "scope": "cross", "loss": …}]
    ex.snapshot()                                  # the account as a riskguard Snapshot

    # ccxt.async_support shape, same book:
    from riskguard.paper import AsyncPaperExchange
    aex = AsyncPaperExchange(paper=ex)
    await aex.fetch_positions()

Methods: ``load_markets``, ``market``, ``fetch_balance``, ``fetch_positions``,
``fetch_position``, ``fetch_open_orders`` (symbol optional), ``fetch_closed_orders``,
``fetch_order``, ``fetch_leverage_tiers``, ``fetch_ticker(s)``, ``fetch_ohlcv``,
``create_order`` (market, limit, stop-market / take-profit via ``params.stopLossPrice`` /
``takeProfitPrice`` / ``triggerPrice``, ``reduceOnly``, ``clientOrderId``, an attached
``params.stopLoss``) and ccxt's ``create_*_order`` helpers, ``cancel_order``,
``cancel_all_orders``, ``set_margin_mode``, ``set_leverage``, ``add_margin``,
``reduce_margin``. ``params={"account": name}`` picks an account (default: the first);
``ex.view(name)`` is a handle bound to another one.

Driving the market: ``ex.step(marks, timestamp)`` (alias ``set_marks``) moves the marks
and processes, in this order, liquidations already crossed, resting and triggered
orders, funding, liquidations; it returns the step's events (also kept in
``ex.events``; ``ex.drain_events()`` takes them). ``ex.equity()``, ``ex.available()`` and
``ex.accounts[name]`` (wallet, ``fees``, ``funding``, ``liquidations``) are for tests and
the simulator. Fills, fees, slippage, liquidation and funding conventions are in
``riskguard.paper.exchange``'s docstring.

Refusals are ccxt's own exception classes with the exchange's code where riskguard's
capability facts know it: Binance ``-4048`` (margin-mode switch with a position open)
and ``-4047`` (with open orders) as ``ccxt.OperationRejected``, ``-2019`` insufficient
margin as ``ccxt.InsufficientFunds``, ``-2022`` reduce-only that would increase as
``ccxt.InvalidOrder``, ``-2021`` a stop already crossed as
``ccxt.OrderImmediatelyFillable``. So **the paper exchange needs ccxt**: install
``riskguard[paper]`` (the package imports without it; constructing an exchange says
what to install).

Modules: ``exchange`` (the ccxt surface), ``venue`` (prices, fills, funding, liquidation),
``state`` (the books), ``aio`` (the async shape), ``prices`` (price paths for the driver),
``errors`` (ccxt's refusals).

May import: ``riskguard.errors``, ``riskguard.model``, ``riskguard.margin``,
``riskguard.engine`` (the margin-model registry), and ccxt (lazily). Never a face, the
batch auditor or contrib: the simulator and the ccxt wrappers sit above it.
"""

from __future__ import annotations

from .aio import AsyncPaperExchange
from .exchange import PaperExchange
from .state import CCXT_IDS, PaperAccount, PaperOrder, PaperPosition

__all__ = [
    "CCXT_IDS",
    "AsyncPaperExchange",
    "PaperAccount",
    "PaperExchange",
    "PaperOrder",
    "PaperPosition",
]
