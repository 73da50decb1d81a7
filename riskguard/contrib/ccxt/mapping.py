"""ccxt's unified structures → a riskguard snapshot document (pure functions, no I/O).

Where the unified structure loses what the margin math needs, the exchange's raw ``info`` is
read: Binance's maintenance amount ``info.cum`` and wallet ``info.assets[].walletBalance`` /
``isolatedWallet`` (ccxt's ``total`` includes uPnL), Bybit's ``mmDeduction``,
``walletBalance`` and ``positionBalance``, OKX's ``cashBal``. Binance positions carry no stop:
stop orders are matched to positions from the open orders. A unified / multi-asset
account's coins become ``balances`` (:func:`collateral_balances`), counted at ratio 0 where
the payload carries no collateral ratio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from riskguard.model.snapshot import Order

#: ccxt exchange id -> riskguard margin model name.
EXCHANGE_MODELS = {
    "binance": "binance",
    "binanceusdm": "binance",
    "binancecoinm": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "bingx": "bingx",
    "mexc": "mexc",
    "weex": "weex",
    "hyperliquid": "hyperliquid",
    "bitget": "bitget",
}

# Exchanges whose ccxt balance ``total`` is account equity (wallet + uPnL): Hyperliquid's
# marginSummary.accountValue, Bitget's accountEquity. The wallet is that minus Σ uPnL.
_TOTAL_IS_EQUITY = frozenset({"hyperliquid", "bitget"})

STOP_TYPES = frozenset({"stop", "stop_market", "stop_loss", "stop_loss_limit"})

#: Open-order queries that list the conditional (trigger/stop) orders an exchange keeps apart
#: from its plain open orders, as ``fetch_open_orders`` params, per ccxt exchange id. Binance
#: USDⓈ-M serves STOP/STOP_MARKET orders from its algo-order endpoint
#: (``GET /fapi/v1/openAlgoOrders``, ccxt ``{"trigger": True}``); OKX from
#: ``GET /api/v5/trade/orders-algo-pending`` by ``ordType`` (a stop-loss is ``conditional`` or
#: part of an ``oco``). Bybit's ``/v5/order/realtime`` lists conditional orders with the rest.
#: Bitget keeps stop-loss (strategy/plan) orders apart: ccxt ``{"trigger": True}``
#: (``GET /api/v3/trade/unfilled-strategy-orders`` on a unified account).
CONDITIONAL_ORDER_PARAMS: dict[str, tuple[dict, ...]] = {
    "binance": ({"trigger": True},),
    "binanceusdm": ({"trigger": True},),
    "okx": ({"ordType": "conditional"}, {"ordType": "oco"}),
    "bitget": ({"trigger": True},),
}

#: Exchanges whose symbol-less open-order query cannot list futures orders, so open orders are
#: asked per symbol: ccxt's Bitget defaults to spot and sends ``category=SPOT``.
OPEN_ORDERS_PER_SYMBOL = frozenset({"bitget"})


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the ccxt integration needs ccxt: pip install 'riskguard[ccxt]'") from exc
    return ccxt


# --------------------------------------------------------------------------- mapping


def _f(x: Any) -> float | None:
    if x is None or x == "" or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def wallet_balance(exchange_id: str, balance: dict, settle: str) -> tuple[float, str]:
    """Wallet balance *excluding* unrealized PnL, and where it was read from.

    ccxt's unified ``total`` is Binance's ``marginBalance`` (wallet + uPnL) for futures and
    OKX's ``eq`` (cash + uPnL), so the raw fields are preferred where we know them:
    Binance ``walletBalance``, Bybit ``walletBalance``, OKX ``cashBal``.
    """
    info = balance.get("info") or {}
    model = EXCHANGE_MODELS.get(exchange_id, exchange_id)
    if model == "binance" and isinstance(info, dict):
        for a in info.get("assets") or ():
            if a.get("asset") == settle and _f(a.get("walletBalance")) is not None:
                return _f(a["walletBalance"]), "info.assets[].walletBalance"  # type: ignore[return-value]
        if _f(info.get("totalWalletBalance")) is not None:
            return _f(info["totalWalletBalance"]), "info.totalWalletBalance"  # type: ignore[return-value]
    if model == "bybit" and isinstance(info, dict):
        for acct in (info.get("result") or {}).get("list") or ():
            for c in acct.get("coin") or ():
                if c.get("coin") == settle and _f(c.get("walletBalance")) is not None:
                    return _f(c["walletBalance"]), "info.result.list[].coin[].walletBalance"  # type: ignore[return-value]
    if model == "okx" and isinstance(info, dict):
        # ccxt's total is OKX's eq (cash + uPnL); cashBal is the cash balance without it
        for acct in info.get("data") or ():
            for d in acct.get("details") or ():
                if d.get("ccy") == settle and _f(d.get("cashBal")) is not None:
                    return _f(d["cashBal"]), "info.data[].details[].cashBal"  # type: ignore[return-value]
    total = _f((balance.get(settle) or {}).get("total"))
    if total is None:
        total = _f((balance.get("total") or {}).get(settle))
    if total is None:
        raise ValueError(f"fetch_balance has no {settle} balance")
    return total, f"{settle}.total"


def isolated_margin(p: dict) -> float | None:
    """Margin assigned to an isolated position, excluding uPnL."""
    info = p.get("info") or {}
    for key in ("isolatedWallet", "positionBalance"):  # Binance, Bybit
        v = _f(info.get(key))
        if v is not None and v > 0:
            return v
    col, upnl = _f(p.get("collateral")), _f(p.get("unrealizedPnl"))
    if col is not None and upnl is not None and col - upnl > 0:
        return col - upnl
    for key in ("initialMargin", "positionMargin"):
        v = _f(p.get(key))
        if v is not None and v > 0:
            return v
    return None


def tiers_from_ccxt(tiers: Iterable[dict]) -> list[dict]:
    """ccxt ``LeverageTier`` list -> snapshot tiers, with the maintenance amount from ``info``.

    Binance keeps it in ``info.cum``, Bybit in ``info.mmDeduction``, BingX in
    ``info.maintAmount``; without one the snapshot derives it (Binance's recurrence).
    Some Bybit API versions gave rates in percent: ``initialMargin × maxLeverage ≈ 100``
    tells, and the rate is then divided by 100.
    """
    out = []
    for t in tiers:
        info = t.get("info") or {}
        mmr = _f(t.get("maintenanceMarginRate"))
        maxlev = _f(t.get("maxLeverage"))
        im = _f(info.get("initialMargin"))
        if mmr is not None and im is not None and maxlev and im * maxlev > 50:
            mmr = mmr / 100.0
        row: dict = {
            "minNotional": _f(t.get("minNotional")) or 0.0,
            "maxNotional": _f(t.get("maxNotional")),
            "maintenanceMarginRate": mmr,
        }
        if maxlev is not None and maxlev >= 1:
            row["maxLeverage"] = maxlev
        for key in ("cum", "mmDeduction", "maintAmount"):
            amt = _f(info.get(key))
            if amt is not None:
                row["maintenanceAmount"] = amt
                break
        if t.get("tier") is not None:
            row["tier"] = int(t["tier"])
        out.append(row)
    return out


def _is_stop(o: dict) -> bool:
    """A resting order that closes or reduces the position when a price is touched.

    ccxt parses some exchanges' conditional orders as ``type: market`` with a
    ``triggerPrice`` (Binance's algo ``STOP_MARKET``): the trigger and the reduce-only /
    close-position flag make it a stop; a take-profit (``takeProfitPrice`` or a
    ``TAKE_PROFIT*`` raw type) is not one. Which side of the mark it rests on is checked
    where stops are matched to positions.
    """
    if _f(o.get("stopLossPrice")) is not None:
        return True
    info = o.get("info") or {}
    raw = " ".join(
        str(x).lower()
        for x in (o.get("type"), info.get("orderType"), info.get("type"), info.get("origType"))
        if x
    )
    if _f(o.get("takeProfitPrice")) is not None or "take_profit" in raw:
        return False
    closes = bool(o.get("reduceOnly") or str(info.get("closePosition")).lower() == "true")
    kind = str(o.get("type") or "").lower()
    return closes and (kind in STOP_TYPES or "stop" in raw or _stop_price(o) is not None)


def _stop_price(o: dict) -> float | None:
    for key in ("stopLossPrice", "triggerPrice", "stopPrice"):
        v = _f(o.get(key))
        if v is not None:
            return v
    return None


def _closing_side(o: dict) -> str:
    """The side a stop order trades. ccxt leaves it None for Bitget's position stop-loss
    (a strategy order naming only ``posSide``): a long's stop sells, a short's buys."""
    if o.get("side"):
        return str(o["side"])
    info = o.get("info") or {}
    leg = str(info.get("posSide") or info.get("holdSide") or "").lower()
    return {"long": "sell", "short": "buy"}.get(leg, "")


def _order_type(o: dict) -> str:
    """ccxt's order type; a resting order ccxt leaves untyped (its Hyperliquid parser does
    for ``frontendOpenOrders`` rows without ``orderType``) is a limit order if it has a price."""
    t = o.get("type")
    if t:
        return str(t).lower()
    return "limit" if _f(o.get("price")) else ""


def snapshot_from_ccxt(
    exchange_id: str,
    balance: dict,
    positions: Iterable[dict],
    *,
    tiers: dict | None = None,
    ohlcv: dict | None = None,
    open_orders: Iterable[dict] = (),
    tickers: dict | None = None,
    markets: dict | None = None,
    settle: str = "USDT",
    account: str | None = None,
    timestamp: int | None = None,
) -> dict:
    """Build a snapshot document from ccxt's unified structures (pure; no I/O)."""
    wallet, wallet_src = wallet_balance(exchange_id, balance, settle)
    markets = markets or {}
    tickers = tickers or {}
    orders = list(open_orders)
    # Binance and others keep stops as separate reduce-only orders: match them to positions.
    stops: dict[tuple[str, str], list[float]] = {}
    plain_orders = []
    for o in orders:
        if _is_stop(o):
            px = _stop_price(o)
            if px is not None:
                stops.setdefault((o["symbol"], _closing_side(o)), []).append(px)
        elif not o.get("reduceOnly") and _order_type(o) in ("limit", "market"):
            amount = _f(o.get("remaining"))
            if amount is None:
                amount = _f(o.get("amount"))
            if amount and amount > 0:
                plain_orders.append(
                    {
                        "symbol": o["symbol"],
                        "side": o["side"],
                        "type": _order_type(o),
                        "amount": amount,
                        **({"price": _f(o["price"])} if _f(o.get("price")) else {}),
                        # hedge mode: the leg the order opens (Binance/OKX/Bybit raw fields)
                        **({"positionSide": leg} if (leg := _leg(o.get("info") or {})) else {}),
                    }
                )
    pos_out = []
    upnl_total, hedged = 0.0, False
    for p in positions:
        contracts = _f(p.get("contracts"))
        if not contracts:
            continue
        upnl_total += _f(p.get("unrealizedPnl")) or 0.0
        hedged = hedged or p.get("hedged") is True
        sym = p["symbol"]
        side = p.get("side") or ("long" if contracts > 0 else "short")
        mkt = markets.get(sym) or {}
        mode = p.get("marginMode") or ("isolated" if p.get("isolated") else "cross")
        mark = _f(p.get("markPrice"))
        d: dict = {
            "symbol": sym,
            "side": side,
            "contracts": abs(contracts),
            "contractSize": _f(p.get("contractSize")) or _f(mkt.get("contractSize")) or 1.0,
            "entryPrice": _f(p.get("entryPrice")),
            "leverage": _f(p.get("leverage")),
            "marginMode": mode,
            "inverse": bool(mkt.get("inverse", False)),
        }
        if mark is not None:
            d["markPrice"] = mark
        if mode == "isolated":
            d["isolatedMargin"] = isolated_margin(p)
        lp = _f(p.get("liquidationPrice"))
        if lp is not None:
            d["liquidationPrice"] = lp
        sl = _f(p.get("stopLossPrice"))
        if sl is None:
            cands = stops.get((sym, "sell" if side == "long" else "buy"), [])
            ref = mark or d["entryPrice"] or 0.0
            below = [x for x in cands if (x < ref if side == "long" else x > ref)]
            if below:
                sl = max(below) if side == "long" else min(below)  # the first to trigger
        if sl is not None:
            d["stopLossPrice"] = sl
        tp = _f(p.get("takeProfitPrice"))
        if tp is not None:
            d["takeProfitPrice"] = tp
        pos_out.append({k: v for k, v in d.items() if v is not None})
    mk_out: dict = {}
    for sym, t in tickers.items():
        info = t.get("info") or {}
        mark = _f(t.get("markPrice")) or _f(info.get("markPrice")) or _f(t.get("last"))
        if mark is not None:
            mk_out.setdefault(sym, {})["markPrice"] = mark
    for sym, rows in (ohlcv or {}).items():
        candles = [
            [float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5] or 0.0)]
            for r in rows
            if r and len(r) >= 5 and all(x is not None for x in r[:5])
        ]
        if candles:
            mk_out.setdefault(sym, {})["candles"] = candles
    # an open order on a symbol without a position is in contracts too: its market's size
    ordered = {o["symbol"] for o in plain_orders}
    for sym, m in markets.items():
        cs = _f(m.get("contractSize"))
        if cs is not None and (sym in mk_out or sym in ordered):
            mk_out.setdefault(sym, {})["contractSize"] = cs
    doc: dict = {
        "schemaVersion": 1,
        "account": account or exchange_id,
        "exchange": EXCHANGE_MODELS.get(exchange_id, exchange_id),
        "settle": settle,
        "walletBalance": wallet,
        "positions": pos_out,
        "openOrders": plain_orders,
        "leverageTiers": {s: tiers_from_ccxt(ts) for s, ts in (tiers or {}).items() if ts},
        "markets": mk_out,
        "ccxt": {"exchange": exchange_id, "walletBalanceFrom": wallet_src},
    }
    if timestamp is not None:
        doc["timestamp"] = int(timestamp)
    _account_forms(doc, exchange_id, wallet_src, upnl_total, hedged, markets)
    coll = collateral_balances(exchange_id, balance, settle, tickers, wallet=doc["walletBalance"])
    if coll is not None:
        doc["balances"], unknown, src = coll
        doc["ccxt"]["balancesFrom"] = src
        if unknown:
            doc["collateralUnknown"] = unknown
    return doc


def _usd_per_unit(usd: Any, qty: Any) -> float | None:
    """USD value / quantity; a liability has both negative, so the sign must agree."""
    u, q = _f(usd), _f(qty)
    if u is None or not q or u / q <= 0:
        return None
    return u / q


def _ticker_price(tickers: dict, coin: str, settle: str) -> float | None:
    for sym in (f"{coin}/{settle}:{settle}", f"{coin}/{settle}"):
        t = tickers.get(sym) or {}
        px = (
            _f(t.get("markPrice"))
            or _f((t.get("info") or {}).get("markPrice"))
            or _f(t.get("last"))
        )
        if px and px > 0:
            return px
    return None


def collateral_balances(
    exchange_id: str,
    balance: dict,
    settle: str,
    tickers: dict | None = None,
    *,
    wallet: float | None = None,
) -> tuple[list[dict], list[dict], str] | None:
    """The coins of a unified / multi-asset account as snapshot ``balances``, or None.

    None unless the raw ``info`` says the account margins across coins *and* it holds a coin
    other than ``settle`` with a non-zero amount: Bybit ``result.list[].accountType ==
    "UNIFIED"``; OKX ``data[].acctLv`` absent or 3/4 (multi-currency / portfolio margin; 1 and
    2 are spot and single-currency modes); Bitget's unified-account ``GET /api/v3/account/assets``
    (``data.assets``); Binance ``multiAssetsMargin: true`` (``GET /fapi/v3/account``).

    Amounts exclude uPnL as ``walletBalance`` does: Bybit ``coin[].walletBalance``, OKX
    ``details[].cashBal``, Bitget ``assets[].balance``, Binance ``assets[].walletBalance``.
    Prices, in the settle coin: the coin's USD value over its equity divided by the settle
    coin's (Bybit ``usdValue``/``equity``, OKX ``eqUsd``/``eq``, Bitget ``usdValue``/``equity``;
    1 USD per settle coin when the settle coin has no row); Binance from ``tickers``
    (``COIN/SETTLE:SETTLE`` or ``COIN/SETTLE``). The settle coin counts at price 1, ratio 1
    (as ``walletBalance`` did). Collateral ratios only from the payload: OKX ``disEq``/``eqUsd``
    (discounted equity) when ``acctLv`` says multi-currency or portfolio margin, Bybit
    ``marginCollateral: false`` / ``collateralSwitch: false`` (not collateral: 0). Any other
    coin counts at ratio 0 (never safer than the truth) and is listed in the second value
    (``collateralUnknown``: coin, amount, what is missing) for the engine to warn about; a
    coin without a price is left out of the balances and listed there too — unless the
    amount is negative (a debt): that raises ValueError rather than look safer.
    """
    info = balance.get("info")
    if not isinstance(info, dict):
        return None
    tickers = tickers or {}
    model = EXCHANGE_MODELS.get(exchange_id, exchange_id)
    # rows: coin, amount, USD (or settle) price or None, known ratio or None
    rows: list[tuple[str, float, float | None, float | None]] = []
    usd_settle = 1.0
    src = ""
    if model == "bybit":
        accts = [a for a in (info.get("result") or {}).get("list") or () if isinstance(a, dict)]
        if not any(a.get("accountType") == "UNIFIED" for a in accts):
            return None
        for a in accts:
            if a.get("accountType") != "UNIFIED":
                continue
            for c in a.get("coin") or ():
                amt = _f(c.get("walletBalance"))
                if amt is None:
                    continue
                px = _usd_per_unit(c.get("usdValue"), c.get("equity"))
                off = c.get("marginCollateral") is False or c.get("collateralSwitch") is False
                if c.get("coin") == settle and px:
                    usd_settle = px
                rows.append((str(c.get("coin")), amt, px, 0.0 if off else None))
        src = "info.result.list[].coin[]: walletBalance, usdValue/equity"
    elif model == "okx":
        accts = [a for a in info.get("data") or () if isinstance(a, dict)]
        levels = {str(a.get("acctLv")) for a in accts if a.get("acctLv") not in (None, "")}
        if levels & {"1", "2"}:
            return None  # spot / single-currency margin: other coins do not margin the swap
        known_mode = bool(levels & {"3", "4"})
        for a in accts:
            for d in a.get("details") or ():
                amt = _f(d.get("cashBal"))
                if amt is None:
                    continue
                px = _usd_per_unit(d.get("eqUsd"), d.get("eq"))
                ratio = None
                if known_mode:
                    dis, usd = _f(d.get("disEq")), _f(d.get("eqUsd"))
                    if dis is not None and usd and usd > 0:
                        ratio = min(max(dis / usd, 0.0), 1.0)
                if d.get("ccy") == settle and px:
                    usd_settle = px
                rows.append((str(d.get("ccy")), amt, px, ratio))
        src = "info.data[].details[]: cashBal, eqUsd/eq" + (", disEq/eqUsd" if known_mode else "")
    elif model == "bitget":
        data = info.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("assets"), list):
            return None
        for c in data["assets"]:
            amt = _f(c.get("balance"))
            if amt is None:
                continue
            debt = _f(c.get("debt")) or 0.0
            px = _usd_per_unit(c.get("usdValue"), c.get("equity"))
            if c.get("coin") == settle and px:
                usd_settle = px
            rows.append((str(c.get("coin")), amt - debt, px, None))
        src = "info.data.assets[]: balance - debt, usdValue/equity"
    elif model == "binance":
        if info.get("multiAssetsMargin") is not True:
            return None
        for a in info.get("assets") or ():
            amt = _f(a.get("walletBalance"))
            if amt is None:
                continue
            coin = str(a.get("asset"))
            rows.append((coin, amt, _ticker_price(tickers, coin, settle), None))
        usd_settle = 1.0  # ticker prices are already in the settle coin
        src = "info.assets[].walletBalance, tickers COIN/SETTLE"
    else:
        return None
    if not any(coin != settle and amt != 0 for coin, amt, _, _ in rows):
        return None
    out: list[dict] = []
    unknown: list[dict] = []
    seen: set[str] = set()
    for coin, amt, px, ratio in rows:
        if coin in seen or (amt == 0 and coin != settle):
            continue
        seen.add(coin)
        if coin == settle:
            amt = amt if wallet is None else wallet
            out.append({"coin": coin, "amount": amt, "price": 1.0, "collateralRatio": 1.0})
            continue
        if not px:
            if amt < 0:  # leaving a debt out would make the account look safer
                raise ValueError(
                    f"{exchange_id}: the account owes {-amt:g} {coin} and the balance gives "
                    "no price for it; the collateral cannot be valued"
                )
            unknown.append({"coin": coin, "amount": amt, "missing": "price"})
            continue
        price = px / usd_settle
        if ratio is None and amt > 0:
            unknown.append({"coin": coin, "amount": amt, "missing": "collateralRatio"})
        out.append({"coin": coin, "amount": amt, "price": price, "collateralRatio": ratio or 0.0})
    if settle not in seen and wallet:  # the settle cash walletBalance held stays counted
        out.insert(0, {"coin": settle, "amount": wallet, "price": 1.0, "collateralRatio": 1.0})
    return out, unknown, src


def _account_forms(doc, exchange_id, wallet_src, upnl_total, hedged, markets) -> None:
    """Hedge mode from ccxt's ``hedged``; wallet net of uPnL where ccxt's total is equity;
    Hyperliquid's maintenance rate 1/(2·max leverage) from the market when no tiers."""
    model = doc["exchange"]
    if hedged:
        doc["positionMode"] = "hedge"
    if model in _TOTAL_IS_EQUITY and wallet_src.endswith(".total"):
        doc["walletBalance"] = doc["walletBalance"] - upnl_total
        doc["ccxt"]["walletBalanceFrom"] = wallet_src + " - sum(positions.unrealizedPnl)"
    if model == "hyperliquid":
        for pos in doc["positions"]:
            sym = pos["symbol"]
            mx = _f(
                (((markets.get(sym) or {}).get("limits") or {}).get("leverage") or {}).get("max")
            )
            if sym not in doc["leverageTiers"] and mx and mx >= 1:
                doc["leverageTiers"][sym] = [
                    {"minNotional": 0, "maintenanceMarginRate": 1 / (2 * mx), "maxLeverage": mx}
                ]


def order_from_ccxt(
    symbol: str,
    type: str,
    side: str,
    amount: float,
    price: float | None = None,
    params: dict | None = None,
    *,
    leverage: float | None = None,
    margin_mode: str | None = None,
) -> Order:
    """A ``create_order`` call as a riskguard ``Order``.

    ``params.stopLoss`` (the stop attached to an entry) becomes ``stopLossPrice``; an
    order that *is* a stop or take-profit (``params.stopLossPrice``/``takeProfitPrice``,
    ccxt's conditional close) or ``reduceOnly``/``closePosition`` only reduces. In hedge
    mode the leg comes from ``positionSide``/``posSide``/``positionIdx`` (:func:`_leg`).
    """
    params = params or {}
    sl = params.get("stopLoss")
    sl_price = _f(sl.get("triggerPrice") if isinstance(sl, dict) else sl)
    reduce = bool(
        params.get("reduceOnly")
        or params.get("closePosition")
        or params.get("stopLossPrice") is not None
        or params.get("takeProfitPrice") is not None
    )
    return Order(
        symbol=symbol,
        side=side,
        amount=float(amount),
        type=type or "market",
        price=_f(price),
        reduceOnly=reduce,
        stopLossPrice=sl_price,
        leverage=_f(params.get("leverage")) or leverage,
        marginMode=params.get("marginMode") or margin_mode,
        clientOrderId=params.get("clientOrderId"),
        positionSide=_leg(params),
    )


def _leg(params: dict) -> str | None:
    """The hedge-mode leg an order names: Binance ``positionSide`` LONG|SHORT, OKX ``posSide``
    long|short, Bybit ``positionIdx`` 1|2. None: one-way, or ccxt's ``hedged`` flag alone
    (riskguard then infers the leg as ccxt does: a reduce-only order closes the opposite one)."""
    ps = params.get("positionSide") or params.get("posSide")
    if isinstance(ps, str) and ps.lower() in ("long", "short"):
        return ps.lower()
    return {1: "long", 2: "short", "1": "long", "2": "short"}.get(params.get("positionIdx"))
