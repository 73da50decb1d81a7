"""Deterministic synthetic snapshot streams: tests, benchmarks, demos and example data.

``generate_stream(seed=…)`` yields snapshot dicts (the ``build_snapshot`` contract) for
one or more accounts trading a shared market; the same arguments give the same stream,
byte for byte, on every run. The model is simple but every choice is stated here so a
reader can judge what the data does and does not exercise:

Market (shared by all accounts)
  A universe of ccxt linear perpetuals (``BTC/USDT:USDT`` …, ``2 × positions`` symbols,
  at least 8; beyond the named list, ``ALT<n>/USDT:USDT``). Each mark price is a
  geometric random walk, correlated through a common market factor (ρ = 0.6). Each symbol
  has a volatility regime, *calm* or *volatile*, switching as a two-state Markov chain in
  wall-clock time (mean stay 5 days calm, 8 hours volatile). A volatile regime multiplies
  the symbol's volatility by 2.2–3.2 and adds occasional jumps (fat tails).
  ``markets[symbol].atrPct`` is a *daily* ATR in percent of price (calm: 2.4–3.9 % by
  symbol), smoothed towards the regime's level with a 6-hour time constant — so ATR%
  rises during a volatile spell, lagging it as a real ATR does. ``markets[symbol].regime``
  carries the generator's ground truth (an extra field; riskguard keeps and ignores it).
  With ``candles=N`` each held symbol also gets the last N OHLCV candles *of the step
  interval* (ccxt rows ``[open time ms, open, high, low, close, volume]``) ending at the
  snapshot (before the start, the walk is run backwards so the first snapshot has all N);
  candles use their own random numbers, so asking for them never changes the prices.

Accounts
  Each account has a style drawn once: conservative, normal or aggressive (target margin
  utilization 10–22 %, 22–33 %, 33–65 %; preferred leverage; stop discipline), a wallet of
  2,000–250,000 USDT and a preference for isolated or cross margin. It holds about
  ``positions`` positions (one-way mode: one per symbol), opening new ones into free
  slots (mean refill 1 h) and closing them at random (mean hold 2 days), at the stop, at
  the take-profit, or by liquidation. Leverage is 2–50×, capped by the tier's maximum.
  Isolated positions get ``isolatedMargin = notional / leverage`` at entry. Stops are
  mostly set 0.8–2.5 daily ATRs away and before the liquidation price; some positions have
  none, some a stop inside the liquidation buffer, some a stop *beyond* the liquidation
  price (the account's style sets how often). ``walletBalance`` follows realised PnL and
  a 0.04 % taker fee per side; an isolated liquidation costs the position's margin, a
  cross liquidation (cross equity ≤ cross maintenance margin) the whole cross wallet;
  an account that falls below 20 % of its first wallet is topped up by that amount.

Tiers
  Binance shape. BTC and ETH use the 2024-10-24 BTCUSDT/ETHUSDT brackets
  (Binance's published brackets); every other symbol a simple 3-tier table
  (MMR 1 % / 2.5 % / 5 %, max leverage 50 / 20 / 10, maintenance amounts 0 / 750 / 7,000
  by Binance's recurrence).

The ``leverageTiers`` lists and ``candles`` rows are shared between the snapshots yielded
(generation speed): treat yielded snapshots as read-only, or copy before editing.
"""

from __future__ import annotations

import gzip as _gzip
import json
import math
import random
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from riskguard.model.snapshot import parse_timestamp

__all__ = ["generate_stream", "leverage_tiers_for", "write_jsonl"]

# ---------------------------------------------------------------- leverage tiers

#: Binance USDⓈ-M BTCUSDT brackets, snapshot 2024-10-24 (margin-math.md §1.3-A):
#: (notionalFloor, notionalCap, MMR, maxLeverage, cum)
_BTC_BRACKETS = (
    (0, 50_000, 0.004, 125, 0),
    (50_000, 600_000, 0.005, 100, 50),
    (600_000, 3_000_000, 0.0065, 75, 950),
    (3_000_000, 12_000_000, 0.01, 50, 11_450),
    (12_000_000, 70_000_000, 0.02, 25, 131_450),
    (70_000_000, 100_000_000, 0.025, 20, 481_450),
    (100_000_000, 230_000_000, 0.05, 10, 2_981_450),
    (230_000_000, 480_000_000, 0.1, 5, 14_481_450),
    (480_000_000, 600_000_000, 0.125, 4, 26_481_450),
    (600_000_000, 800_000_000, 0.15, 3, 41_481_450),
    (800_000_000, 1_200_000_000, 0.25, 2, 121_481_450),
    (1_200_000_000, 1_800_000_000, 0.5, 1, 421_481_450),
)
#: ETHUSDT brackets, same snapshot.
_ETH_BRACKETS = (
    (0, 50_000, 0.004, 125, 0),
    (50_000, 600_000, 0.005, 100, 50),
    (600_000, 3_000_000, 0.0065, 75, 950),
    (3_000_000, 12_000_000, 0.01, 50, 11_450),
    (12_000_000, 50_000_000, 0.02, 25, 131_450),
    (50_000_000, 65_000_000, 0.025, 20, 381_450),
    (65_000_000, 150_000_000, 0.05, 10, 2_006_450),
    (150_000_000, 320_000_000, 0.1, 5, 9_506_450),
    (320_000_000, 400_000_000, 0.125, 4, 17_506_450),
    (400_000_000, 530_000_000, 0.15, 3, 27_506_450),
    (530_000_000, 800_000_000, 0.25, 2, 80_506_450),
    (800_000_000, 1_200_000_000, 0.5, 1, 280_506_450),
)
#: Everything else: a simple 3-tier table; cum by cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}.
_ALT_BRACKETS = (
    (0, 50_000, 0.01, 50, 0),
    (50_000, 250_000, 0.025, 20, 750),
    (250_000, 1_000_000, 0.05, 10, 7_000),
)


def _tier_dicts(rows: tuple) -> list[dict]:
    return [
        {
            "tier": i + 1,
            "minNotional": lo,
            "maxNotional": hi,
            "maintenanceMarginRate": mmr,
            "maxLeverage": lev,
            "maintenanceAmount": cum,
        }
        for i, (lo, hi, mmr, lev, cum) in enumerate(rows)
    ]


_TIER_TABLES = {
    "BTC": (_BTC_BRACKETS, _tier_dicts(_BTC_BRACKETS)),
    "ETH": (_ETH_BRACKETS, _tier_dicts(_ETH_BRACKETS)),
    "*": (_ALT_BRACKETS, _tier_dicts(_ALT_BRACKETS)),
}


def leverage_tiers_for(symbol: str) -> list[dict]:
    """The tier list the generator uses for ``symbol`` (a fresh copy, ccxt/snapshot shape)."""
    base = symbol.split("/", 1)[0]
    rows = _TIER_TABLES.get(base, _TIER_TABLES["*"])[0]
    return _tier_dicts(rows)


def _bracket(rows: tuple, notional: float) -> tuple:
    """The last bracket whose floor ≤ notional (boundaries belong to the upper tier)."""
    found = rows[0]
    for r in rows:
        if r[0] <= notional:
            found = r
        else:
            break
    return found


# ---------------------------------------------------------------- market universe

#: (base, starting price in USDT, calm daily ATR %)
_NAMED = (
    ("BTC", 68_250.0, 2.4),
    ("ETH", 3_420.0, 3.0),
    ("SOL", 162.4, 3.6),
    ("BNB", 598.0, 2.8),
    ("XRP", 0.6142, 3.6),
    ("DOGE", 0.1523, 3.9),
    ("ADA", 0.4512, 3.9),
    ("AVAX", 35.21, 3.7),
    ("LINK", 15.42, 4.1),
    ("DOT", 7.012, 3.9),
    ("LTC", 81.3, 3.4),
    ("TRX", 0.1234, 2.6),
    ("BCH", 382.5, 3.7),
    ("NEAR", 6.123, 3.8),
    ("APT", 9.214, 3.8),
    ("ARB", 1.0123, 3.8),
    ("OP", 2.214, 3.8),
    ("SUI", 1.532, 3.8),
    ("ATOM", 8.123, 4.0),
    ("FIL", 5.123, 4.2),
    ("INJ", 25.12, 3.8),
    ("TIA", 8.012, 3.8),
    ("1000PEPE", 0.01234, 3.8),
    ("WIF", 2.512, 3.8),
)

_MEAN_CALM_S = 5 * 86_400.0
_MEAN_VOLATILE_S = 8 * 3_600.0
_ATR_TAU_S = 6 * 3_600.0
_RHO = 0.6  # correlation of each symbol with the market factor
_TAKER_FEE = 0.0004
_SLIPPAGE = 0.0002


def _decimals(x: float) -> int:
    """Decimals of a power-of-ten step (0.001 → 3, 10 → 0)."""
    return max(0, -math.floor(math.log10(x) + 1e-9))


class _Symbol:
    __slots__ = (
        "atr",
        "atr_calm",
        "base",
        "brackets",
        "candles",
        "price",
        "px_dec",
        "qty_dec",
        "qty_step",
        "symbol",
        "tiers",
        "vol_mult",
        "vol_units",
        "volatile",
    )

    def __init__(self, base: str, price: float, atr_calm: float, vol_mult: float, ncandles: int):
        self.base = base
        self.symbol = f"{base}/USDT:USDT"
        self.price = price
        self.atr_calm = atr_calm
        self.vol_mult = vol_mult
        self.volatile = False
        self.atr = atr_calm
        self.brackets, self.tiers = _TIER_TABLES.get(base, _TIER_TABLES["*"])
        # Tick: about six significant digits; quantity step ≈ 20 USDT, at most 1 contract.
        self.px_dec = max(1, 6 - math.ceil(math.log10(price)))
        self.qty_step = min(1.0, 10.0 ** math.floor(math.log10(20.0 / price)))
        self.qty_dec = _decimals(self.qty_step)
        self.vol_units = 2_000_000.0 / price  # typical base volume per minute
        self.candles: deque | None = deque(maxlen=ncandles) if ncandles else None


class _Market:
    """The shared price process: one step moves every symbol."""

    def __init__(
        self,
        rng: random.Random,
        crng: random.Random,
        n_symbols: int,
        dt_s: float,
        ncandles: int,
    ):
        self.rng = rng
        self.crng = crng  # candles only: asking for candles never changes the prices
        self.dt_s = dt_s
        self.p_calm_to_vol = 1.0 - math.exp(-dt_s / _MEAN_CALM_S)
        self.p_vol_to_calm = 1.0 - math.exp(-dt_s / _MEAN_VOLATILE_S)
        self.atr_k = 1.0 - math.exp(-dt_s / _ATR_TAU_S)
        self.sqrt_dt = math.sqrt(dt_s / 86_400.0)
        self.syms: list[_Symbol] = []
        p_vol = _MEAN_VOLATILE_S / (_MEAN_VOLATILE_S + _MEAN_CALM_S)  # stationary share
        for i in range(n_symbols):
            if i < len(_NAMED):
                base, price, atr = _NAMED[i]
            else:
                base = f"ALT{i - len(_NAMED) + 1}"
                price = round(10 ** rng.uniform(-2, 2), 6)
                atr = round(rng.uniform(3.0, 3.9), 2)
            s = _Symbol(base, price, atr, rng.uniform(2.2, 3.2), ncandles)
            s.volatile = rng.random() < p_vol
            s.atr = atr * (s.vol_mult if s.volatile else 1.0)
            self.syms.append(s)
        self.by_name = {s.symbol: s for s in self.syms}

    def step(self, open_ms: int) -> None:
        """Advance every symbol by one interval; the candle opens at ``open_ms``."""
        rng = self.rng
        gauss = rng.gauss
        rand = rng.random
        zm = gauss(0.0, 1.0)
        idio = math.sqrt(1.0 - _RHO * _RHO)
        sqrt_dt = self.sqrt_dt
        atr_k = self.atr_k
        p_cv, p_vc = self.p_calm_to_vol, self.p_vol_to_calm
        for s in self.syms:
            if s.volatile:
                if rand() < p_vc:
                    s.volatile = False
            elif rand() < p_cv:
                s.volatile = True
            target = s.atr_calm * (s.vol_mult if s.volatile else 1.0)
            # Daily ATR ≈ 1.5 σ_daily for a random walk's true range.
            sigma = target / 150.0 * sqrt_dt
            z = _RHO * zm + idio * gauss(0.0, 1.0)
            if s.volatile and rand() < 0.03:
                z *= 3.0  # a jump: fat tails in volatile spells
            old = s.price
            new = old * math.exp(sigma * z - 0.5 * sigma * sigma)
            s.price = new
            s.atr += (target - s.atr) * atr_k
            if s.candles is not None:
                s.candles.append(self._candle(s, open_ms, old, new, sigma))

    def _candle(self, s: _Symbol, open_ms: int, old: float, new: float, sigma: float) -> list:
        gauss = self.crng.gauss
        d = s.px_dec
        wick = sigma * 0.6
        hi = max(old, new) * (1.0 + abs(gauss(0.0, wick)))
        lo = min(old, new) * (1.0 - abs(gauss(0.0, wick)))
        o, c = round(old, d), round(new, d)
        h = max(round(hi, d), o, c)
        low = min(round(lo, d), o, c)
        if low <= 0:
            low = min(o, c)
        vol = s.vol_units * (self.dt_s / 60.0) * math.exp(0.5 * gauss(0.0, 1.0))
        if s.volatile:
            vol *= 2.5
        return [open_ms, o, h, low, c, round(vol, 3)]

    def backfill(self, start_ms: int, n: int) -> None:
        """The N candles before ``start_ms``: the walk run backwards from the start price,
        in each symbol's starting regime, with the candle generator's own random numbers."""
        gauss = self.crng.gauss
        dt_ms = self.dt_s * 1000.0
        for s in self.syms:
            sigma = s.atr_calm * (s.vol_mult if s.volatile else 1.0) / 150.0 * self.sqrt_dt
            rows = []
            new = s.price
            for k in range(1, n + 1):
                old = new * math.exp(-sigma * gauss(0.0, 1.0))
                rows.append(self._candle(s, round(start_ms - k * dt_ms), old, new, sigma))
                new = old
            s.candles.extend(reversed(rows))  # type: ignore[union-attr]


# ---------------------------------------------------------------- accounts

#: name: (share, utilization range, leverage choices, p_missing, p_beyond, p_tight)
_STYLES = (
    ("conservative", 0.35, (0.10, 0.22), (2, 3, 3, 5, 5, 5, 8, 10, 10), 0.02, 0.01, 0.01),
    ("normal", 0.40, (0.22, 0.33), (3, 5, 5, 10, 10, 10, 15, 20, 20, 25), 0.06, 0.03, 0.03),
    ("aggressive", 0.25, (0.33, 0.65), (10, 15, 20, 20, 25, 25, 30, 40, 50), 0.15, 0.06, 0.05),
)
_MEAN_HOLD_S = 2 * 86_400.0
_MEAN_REFILL_S = 3_600.0


class _Pos:
    __slots__ = (
        "contracts",
        "entry",
        "iso_lp",
        "iso_margin",
        "lev",
        "mode",
        "sign",
        "sl",
        "sym",
        "tp",
    )
    contracts: float
    entry: float
    iso_lp: float | None
    iso_margin: float
    lev: float
    mode: str
    sign: int
    sl: float | None
    sym: _Symbol
    tp: float | None


class _Account:
    def __init__(self, name: str, rng: random.Random, target: int, dt_s: float):
        self.name = name
        self.rng = rng
        self.target = target
        style = rng.random()
        acc = 0.0
        for st in _STYLES:
            acc += st[1]
            if style < acc:
                break
        self.style = st[0]
        self.util = rng.uniform(*st[2])
        self.levs = st[3]
        self.p_missing, self.p_beyond, self.p_tight = st[4], st[5], st[6]
        self.p_iso = rng.uniform(0.2, 0.8)
        self.initial = round(10 ** rng.uniform(math.log10(2_000), math.log10(250_000)), -2)
        self.wallet = self.initial
        self.positions: list[_Pos] = []
        self.p_close = 1.0 - math.exp(-dt_s / _MEAN_HOLD_S)
        self.p_open = 1.0 - math.exp(-dt_s / _MEAN_REFILL_S)
        self.started = False

    # -- helpers

    def _cross_state(self, exclude: _Pos | None = None) -> tuple[float, float, float]:
        """(cross wallet, Σ MM of cross positions, Σ uPnL of cross positions)."""
        iso = 0.0
        mm = 0.0
        upnl = 0.0
        for p in self.positions:
            if p.mode == "isolated":
                iso += p.iso_margin
            elif p is not exclude:
                mark = p.sym.price
                q = p.contracts
                n = q * mark
                _lo, _hi, mmr, _lev, cum = _bracket(p.sym.brackets, n)
                mm += n * mmr - cum
                upnl += p.sign * q * (mark - p.entry)
        return self.wallet - iso, mm, upnl

    def _close(self, p: _Pos, price: float) -> None:
        self.wallet += p.sign * p.contracts * (price - p.entry) - _TAKER_FEE * p.contracts * price

    # -- one step

    def step(self, market: _Market, first: bool) -> None:
        rng = self.rng
        rand = rng.random
        keep: list[_Pos] = []
        for p in self.positions:
            m = p.sym.price
            s = p.sign
            sl, lp, tp = p.sl, p.iso_lp, p.tp
            if sl is not None and s * (m - sl) <= 0 and (lp is None or s * (sl - lp) >= 0):
                self._close(p, m)  # stop-market: filled at the (possibly gapped) mark
            elif lp is not None and s * (m - lp) <= 0:
                self.wallet -= p.iso_margin  # isolated liquidation: the margin is gone
            elif tp is not None and s * (m - tp) >= 0:
                self._close(p, tp)
            elif rand() < self.p_close:
                self._close(p, m)
            else:
                keep.append(p)
        self.positions = keep
        if any(p.mode == "cross" for p in keep):
            cw, mm, upnl = self._cross_state()
            if cw + upnl <= mm:  # the cross pool is liquidated: every cross position goes
                self.positions = [p for p in keep if p.mode == "isolated"]
                self.wallet -= cw
        if self.wallet < 0.2 * self.initial:
            self.wallet += self.initial  # a deposit keeps the stream going
        free = self.target - len(self.positions)
        if free > 0:
            held = {p.sym.symbol for p in self.positions}
            for _ in range(free):
                if first or rand() < self.p_open:
                    self._open(market, held)

    def _open(self, market: _Market, held: set) -> None:
        rng = self.rng
        candidates = [s for s in market.syms if s.symbol not in held]
        if not candidates:
            return
        sym = candidates[int(rng.random() * len(candidates))]
        sign = 1 if rng.random() < 0.55 else -1
        mark = sym.price
        equity = self.wallet + sum(
            p.sign * p.contracts * (p.sym.price - p.entry) for p in self.positions
        )
        if equity <= 0:
            return
        im = equity * self.util / max(self.target, 1) * math.exp(rng.gauss(0.0, 0.35))
        lev = self.levs[int(rng.random() * len(self.levs))]
        notional = im * lev
        for _ in range(3):  # the tier caps the leverage for this notional
            maxlev = _bracket(sym.brackets, notional)[3]
            if lev <= maxlev:
                break
            lev = maxlev
            notional = im * lev
        step = sym.qty_step
        contracts = round(round(notional / mark / step) * step, sym.qty_dec)
        if contracts <= 0:
            return
        entry = round(mark * (1.0 + sign * _SLIPPAGE), sym.px_dec)
        notional = contracts * entry
        p = _Pos()
        p.sym, p.sign, p.contracts, p.entry, p.lev = sym, sign, contracts, entry, lev
        p.mode = "isolated" if rng.random() < self.p_iso else "cross"
        _lo, _hi, mmr, _maxlev, cum = _bracket(sym.brackets, notional)
        q = contracts
        if p.mode == "isolated":
            p.iso_margin = round(notional / lev, 4)
            wb, tmm, upnl = p.iso_margin, 0.0, 0.0
        else:
            p.iso_margin = 0.0
            wb, tmm, upnl = self._cross_state()
        # Binance one-way LP at entry (margin-math.md §1.1), tier by the entry notional.
        lp = (wb - tmm + upnl + cum - sign * q * entry) / (q * mmr - sign * q)
        if lp <= 0 or sign * (entry - lp) <= 0:
            lp = None
        p.iso_lp = lp if p.mode == "isolated" else None
        # Stop-loss: none, beyond the liquidation price, inside its buffer, or sensible.
        atr_px = sym.atr / 100.0 * entry
        r = rng.random()
        d = rng.uniform(0.8, 2.5) * atr_px
        if lp is not None:
            room = abs(entry - lp)
            if r < self.p_missing:
                sl = None
            elif r < self.p_missing + self.p_beyond:
                sl = lp - sign * room * rng.uniform(0.02, 0.3)
            elif r < self.p_missing + self.p_beyond + self.p_tight:
                sl = entry - sign * room * rng.uniform(0.93, 0.99)
            else:
                sl = entry - sign * min(d, 0.75 * room)
        else:
            sl = None if r < self.p_missing else entry - sign * d
        if sl is not None:
            sl = round(sl, sym.px_dec)
            if sl <= 0:
                sl = None
        p.sl = sl
        dist = abs(entry - sl) if sl is not None else d
        p.tp = round(entry + sign * dist * rng.uniform(1.5, 3.0), sym.px_dec)
        if p.tp <= 0 or rng.random() < 0.5:
            p.tp = None
        self.wallet -= _TAKER_FEE * notional
        self.positions.append(p)
        held.add(sym.symbol)

    # -- output

    def snapshot(self, exchange: str, ts: str, market_cache: dict, with_candles: bool) -> dict:
        positions = []
        tiers = {}
        markets = {}
        for p in self.positions:
            sym = p.sym
            name = sym.symbol
            mk = market_cache.get(name)
            if mk is None:
                mk = market_cache[name] = (
                    round(sym.price, sym.px_dec),
                    round(sym.atr, 3),
                    "volatile" if sym.volatile else "calm",
                    list(sym.candles) if with_candles and sym.candles is not None else None,
                )
            mark, atr, regime, candles = mk
            d = {
                "symbol": name,
                "side": "long" if p.sign > 0 else "short",
                "contracts": p.contracts,
                "contractSize": 1,
                "entryPrice": p.entry,
                "markPrice": mark,
                "leverage": p.lev,
                "marginMode": p.mode,
            }
            if p.mode == "isolated":
                d["isolatedMargin"] = p.iso_margin
            if p.sl is not None:
                d["stopLossPrice"] = p.sl
            if p.tp is not None:
                d["takeProfitPrice"] = p.tp
            positions.append(d)
            tiers[name] = sym.tiers
            m = {"markPrice": mark, "atrPct": atr, "regime": regime}
            if candles is not None:
                m["candles"] = candles
            markets[name] = m
        return {
            "schemaVersion": 1,
            "account": self.name,
            "exchange": exchange,
            "timestamp": ts,
            "settle": "USDT",
            "walletBalance": round(self.wallet, 2),
            "positions": positions,
            "leverageTiers": tiers,
            "markets": markets,
        }


# ---------------------------------------------------------------- public API


def generate_stream(
    *,
    accounts: int = 1,
    steps: int = 100,
    positions: int = 10,
    seed: int = 0,
    exchange: str = "binance",
    start: str = "2026-11-01T00:00:00Z",
    interval_s: float = 60,
    candles: int = 0,
) -> Iterator[dict]:
    """Yield ``accounts × steps`` snapshot dicts, step by step (accounts interleaved).

    ``positions`` is the number each account aims to hold (it holds about that many);
    ``start`` is ISO-8601 (or epoch ms), ``interval_s`` the time between steps; with
    ``candles=N`` every held symbol carries its last N candles of the step interval.
    The same arguments always give the same stream. Each account's behaviour depends
    only on ``seed`` and its index, so adding accounts does not change the others.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if steps < 0 or positions < 0 or candles < 0:
        raise ValueError("steps, positions and candles must not be negative")
    if not interval_s > 0:
        raise ValueError("interval_s must be positive")
    start_ms = parse_timestamp(start)
    if start_ms is None:
        raise ValueError("start is required")
    return _stream(accounts, steps, positions, seed, exchange, start_ms, float(interval_s), candles)


def _stream(
    accounts: int,
    steps: int,
    positions: int,
    seed: int,
    exchange: str,
    start_ms: int,
    dt_s: float,
    ncandles: int,
) -> Iterator[dict]:
    market = _Market(
        random.Random(f"riskguard-generate:{seed}:market"),
        random.Random(f"riskguard-generate:{seed}:candles"),
        max(8, 2 * positions),
        dt_s,
        ncandles,
    )
    width = max(2, len(str(accounts)))
    accts = [
        _Account(
            f"acct-{i + 1:0{width}d}",
            random.Random(f"riskguard-generate:{seed}:account:{i}"),
            positions,
            dt_s,
        )
        for i in range(accounts)
    ]
    dt_ms = dt_s * 1000.0
    if ncandles:
        market.backfill(start_ms, ncandles)  # the first snapshot already has its N candles
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    with_candles = ncandles > 0
    for i in range(steps):
        t_ms = round(start_ms + i * dt_ms)
        if i > 0:
            market.step(round(start_ms + (i - 1) * dt_ms))
        dt = epoch + timedelta(milliseconds=t_ms)
        if t_ms % 1000:
            ts = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}Z"
        else:
            ts = dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        cache: dict = {}
        for a in accts:
            a.step(market, i == 0)
            yield a.snapshot(exchange, ts, cache, with_candles)


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def write_jsonl(path: str | Path, iterator: Iterable[dict], gzip: bool = False) -> int:
    """Write one compact JSON document per line; returns the number of lines.

    ``gzip`` (or a path ending in ``.gz``) compresses; ``"-"`` writes to stdout.
    """
    p = str(path)
    out: TextIO
    if p == "-":
        out = sys.stdout
        close = False
    elif gzip or p.endswith(".gz"):
        out = _gzip.open(p, "wt", encoding="utf-8", newline="\n", compresslevel=6)  # noqa: SIM115
        close = True
    else:
        out = open(p, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
        close = True
    n = 0
    buf: list[str] = []
    try:
        for doc in iterator:
            buf.append(_encode(doc))
            n += 1
            if len(buf) >= 256:
                out.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            out.write("\n".join(buf) + "\n")
        out.flush()
    finally:
        if close:
            out.close()
    return n
