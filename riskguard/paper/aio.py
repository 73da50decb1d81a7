"""The paper exchange in ``ccxt.async_support``'s shape (:class:`AsyncPaperExchange`)."""

from __future__ import annotations

from typing import Any

from riskguard.paper.exchange import PaperExchange

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
