"""A ccxt exchange whose order-placing methods ask the guard first.

A denied order raises :class:`OrderRejected` carrying the decision and never reaches the
exchange; a ``resize`` is sent at the allowed amount only with ``resize=True``. Order-placing
methods the wrapper does not know (``create_*``/``edit_*``) raise :class:`UnguardedMethod`
instead of slipping past the guard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from riskguard.contrib.ccxt.builder import SnapshotBuilder, _snake
from riskguard.contrib.ccxt.mapping import order_from_ccxt
from riskguard.faces.guard import Guard
from riskguard.model.snapshot import Order

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
