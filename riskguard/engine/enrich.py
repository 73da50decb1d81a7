"""Built-in snapshot enrichment: ATR% and realized volatility from candles.

A plugin like any other (``riskguard_enrich_snapshot``). Only fills what the snapshot
does not already state: an ``atrPct`` given by the caller wins over the derived one.
"""

from __future__ import annotations

from typing import Any

from riskguard.hookspecs import hookimpl
from riskguard.model.snapshot import Snapshot
from riskguard.model.volatility import atr_pct, realized_vol_pct

ATR_PERIOD = 14
RV_WINDOW = 20


@hookimpl
def riskguard_enrich_snapshot(snapshot: Snapshot) -> dict[str, dict[str, Any]] | None:
    out = None
    for symbol, market in snapshot.markets.items():
        if not market.candles:
            continue
        derived = {}
        if market.atrPct is None:
            a = atr_pct(market.candles, ATR_PERIOD)
            if a is not None:
                derived["atrPct"] = a
        rv = realized_vol_pct(market.candles, RV_WINDOW)
        if rv is not None:
            derived["realizedVolPct"] = rv
        if derived:
            if out is None:
                out = {}
            out[symbol] = derived
    return out
