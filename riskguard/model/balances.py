"""The account forms beyond one-way, single-currency: position mode and collateral balances.

Part of the input model (it sits beside ``snapshot.py`` and imports nothing below it).

``positionMode`` — ``oneway`` (default) or ``hedge``. In hedge mode a symbol may hold a
long and a short leg at once (Binance ``dualSidePosition``, Bybit hedge mode / positionIdx
1 and 2, OKX long/short mode, Bitget hedge mode); each position's ``side`` is its leg. At
most one leg per side and margin mode per symbol.

``balances`` — the coins of a multi-collateral account (Binance Multi-Assets mode, Bybit
Unified Trading Account, Bitget UTA advanced mode). Each counts toward the margin balance
at ``amount × price × collateral ratio``; ``amount`` may be negative (a liability, counted
at ratio 1, as Bybit's "Understanding Collateral Value Ratios in Unified Trading Account"
states: "The Collateral Value Ratio only applies to assets with a positive balance").
A coin has one flat ``collateralRatio`` or ``collateralTiers`` by quantity, applied
progressively: each tier's ratio to the part of the amount inside the tier (Bybit's BTC
example 0–10 BTC at 0.98, >10–20 at 0.95, ...; Bitget's "Cross margin collateral ratios"
example: 60,000 APT = 50,000 × 0.8 + 10,000 × 0 → 40,000 USD at price 1).
``price`` is the coin's price in the snapshot's settle currency (the exchange's index
price). ``walletBalance`` stays what it was: the settle-currency figure; when balances are
given the metrics take the margin balance from them (``riskguard.margin.collateral``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POSITION_MODES = ("oneway", "hedge")


@dataclass(frozen=True, slots=True)
class CollateralTier:
    """Collateral value ratio for the part of a coin's amount in [minAmount, maxAmount)."""

    minAmount: float
    maxAmount: float | None
    ratio: float


@dataclass(frozen=True, slots=True)
class Balance:
    coin: str
    amount: float
    price: float
    collateralRatio: float = 1.0
    collateralTiers: tuple[CollateralTier, ...] = ()

    def collateral_value(self, amount: float | None = None, price: float | None = None) -> float:
        """Value counted as margin: liabilities at ratio 1, assets through the tiers."""
        a = self.amount if amount is None else amount
        px = self.price if price is None else price
        if a <= 0:
            return a * px
        if not self.collateralTiers:
            return a * px * self.collateralRatio
        counted = 0.0
        for t in self.collateralTiers:
            if a <= t.minAmount:
                break
            hi = a if t.maxAmount is None else min(a, t.maxAmount)
            counted += (hi - t.minAmount) * t.ratio
        # beyond the last tier's cap: the exchange counts nothing (Bybit: ">50 BTC: 0")
        return counted * px


def read_account_forms(
    ctx: Any, d: dict[str, Any], positions: list[Any]
) -> tuple[str, tuple[Balance, ...]]:
    """Validate ``positionMode`` and ``balances`` of a snapshot document (problems to ``ctx``)."""
    mode = d.get("positionMode")
    if mode is None:
        mode = "oneway"
    elif mode not in POSITION_MODES:
        ctx.add(
            ("positionMode",), f"expected one of {', '.join(POSITION_MODES)}, got {mode!r}", "enum"
        )
        mode = "oneway"
    if mode == "hedge":
        seen: dict[tuple[str, str, str], int] = {}
        for i, p in enumerate(positions):
            key = (p.symbol, p.side, p.marginMode)
            if key in seen:
                ctx.add(
                    ("positions", i, "side"),
                    f"a second {p.side} {p.marginMode} leg of {p.symbol} (positions[{seen[key]}] "
                    "is one): hedge mode holds one leg per side",
                    "duplicate",
                )
            seen[key] = i
    raw = d.get("balances")
    out: list[Balance] = []
    if raw is not None:
        if not isinstance(raw, list):
            ctx.add(("balances",), "expected a list of balances", "type")
        else:
            coins: set[str] = set()
            for i, b in enumerate(raw):
                bal = _balance(ctx, b, ("balances", i))
                if bal is None:
                    continue
                if bal.coin in coins:
                    ctx.add(("balances", i, "coin"), f"{bal.coin} is listed twice", "duplicate")
                    continue
                coins.add(bal.coin)
                out.append(bal)
    return mode, tuple(out)


def _number(
    ctx: Any,
    d: dict[str, Any],
    key: str,
    path: tuple[Any, ...],
    *,
    required: bool,
    minimum: float | None = None,
) -> float | None:
    v = d.get(key)
    if v is None:
        if required:
            ctx.add((*path, key), "required: expected a number", "required")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        ctx.add((*path, key), f"expected a number, got {type(v).__name__}", "type")
        return None
    try:
        f = float(v)
    except OverflowError:
        f = float("inf")
    if f - f != 0:
        ctx.add((*path, key), "expected a finite number", "not_finite")
        return None
    if minimum is not None and f < minimum:
        ctx.add((*path, key), f"expected a number >= {minimum:g}, got {f:g}", "range")
        return None
    return f


def _balance(ctx: Any, b: Any, path: tuple[Any, ...]) -> Balance | None:
    if not isinstance(b, dict):
        ctx.add(path, f"expected a balance object, got {type(b).__name__}", "type")
        return None
    n0 = len(ctx.problems)
    coin = b.get("coin")
    if not isinstance(coin, str) or not coin:
        ctx.add((*path, "coin"), "required: expected the coin's code", "required")
    amount = _number(ctx, b, "amount", path, required=True)
    price = _number(ctx, b, "price", path, required=True)
    if price is not None and price <= 0:
        ctx.add((*path, "price"), f"expected a price > 0, got {price:g}", "range")
    ratio = _number(ctx, b, "collateralRatio", path, required=False, minimum=0)
    if ratio is not None and ratio > 1:
        ctx.add((*path, "collateralRatio"), f"expected a ratio <= 1, got {ratio:g}", "range")
    tiers: list[CollateralTier] = []
    raw = b.get("collateralTiers")
    if raw is not None:
        if ratio is not None:
            ctx.add(
                (*path, "collateralTiers"),
                "give collateralRatio or collateralTiers, not both",
                "type",
            )
        if not isinstance(raw, list) or not raw:
            ctx.add((*path, "collateralTiers"), "expected a non-empty list of tiers", "type")
        else:
            for j, t in enumerate(raw):
                tp = (*path, "collateralTiers", j)
                if not isinstance(t, dict):
                    ctx.add(tp, "expected a tier object", "type")
                    continue
                lo = _number(ctx, t, "minAmount", tp, required=True, minimum=0)
                hi = _number(ctx, t, "maxAmount", tp, required=False, minimum=0)
                r = _number(ctx, t, "ratio", tp, required=True, minimum=0)
                if r is not None and r > 1:
                    ctx.add((*tp, "ratio"), f"expected a ratio <= 1, got {r:g}", "range")
                if lo is None or r is None:
                    continue
                if hi is not None and hi <= lo:
                    ctx.add((*tp, "maxAmount"), f"expected maxAmount > minAmount ({lo:g})", "range")
                prev = tiers[-1] if tiers else None
                if prev is None and lo != 0:
                    ctx.add((*tp, "minAmount"), "the first tier starts at 0", "tiers")
                if prev is not None and (prev.maxAmount is None or lo != prev.maxAmount):
                    ctx.add(
                        (*tp, "minAmount"),
                        "tiers must follow each other: minAmount = the previous maxAmount",
                        "tiers",
                    )
                tiers.append(CollateralTier(lo, hi, r))
    if len(ctx.problems) > n0:
        return None
    return Balance(coin, amount, price, 1.0 if ratio is None else ratio, tuple(tiers))  # type: ignore[arg-type]


def balance_to_dict(b: Balance) -> dict[str, Any]:
    d: dict[str, Any] = {"coin": b.coin, "amount": b.amount, "price": b.price}
    if b.collateralTiers:
        d["collateralTiers"] = [
            {"minAmount": t.minAmount, "ratio": t.ratio}
            | ({} if t.maxAmount is None else {"maxAmount": t.maxAmount})
            for t in b.collateralTiers
        ]
    else:
        d["collateralRatio"] = b.collateralRatio
    return d
