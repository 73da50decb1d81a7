"""Volatility measures from OHLCV candles (ccxt rows ``[ts, open, high, low, close, volume]``).

- ATR with Wilder's smoothing (J. Welles Wilder, *New Concepts in Technical Trading
  Systems*, 1978): TR_t = max(H−L, |H−C_{t−1}|, |L−C_{t−1}|); the first ATR is the mean
  of the first ``period`` TRs, then ATR_t = (ATR_{t−1}·(period−1) + TR_t)/period.
  ``atr_pct`` is the last ATR as a percent of the last close.
- Realized volatility: the standard deviation of log close-to-close returns over the
  window, in percent per candle (not annualised: candles' interval is the user's).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def true_ranges(candles: Sequence[Sequence[float]]) -> list[float]:
    out: list[float] = []
    prev_close = None
    for c in candles:
        high, low, close = c[2], c[3], c[4]
        if prev_close is None:
            tr = high - low
        else:
            tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
        out.append(tr)
        prev_close = close
    return out


def wilder_atr(candles: Sequence[Sequence[float]], period: int = 14) -> float | None:
    """Wilder ATR over the candles; None when there are fewer than ``period + 1`` candles."""
    if period < 1 or len(candles) < period + 1:
        return None
    trs = true_ranges(candles)[1:]  # the first candle has no previous close
    atr = sum(trs[:period]) / period
    for tr in trs[period:]:
        atr = (atr * (period - 1) + tr) / period
    return atr


def atr_pct(candles: Sequence[Sequence[float]], period: int = 14) -> float | None:
    atr = wilder_atr(candles, period)
    if atr is None:
        return None
    last_close = candles[-1][4]
    return atr / last_close * 100.0 if last_close > 0 else None


def realized_vol_pct(candles: Sequence[Sequence[float]], window: int = 20) -> float | None:
    closes = [c[4] for c in candles[-(window + 1) :]]
    if len(closes) < 3:
        return None
    rets = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]
    if len(rets) < 2:
        return None
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    return math.sqrt(var) * 100.0
