"""Builders shared by the margin-math tests: one position document, one account snapshot."""

from __future__ import annotations

from riskguard.model.snapshot import build_snapshot


def pos_doc(symbol, side, contracts, entry, mark=None, *, mode="isolated", margin=None, **kw):
    d = {
        "symbol": symbol,
        "side": side,
        "contracts": contracts,
        "entryPrice": entry,
        "markPrice": entry if mark is None else mark,
        "marginMode": mode,
        **kw,
    }
    if margin is not None:
        d["isolatedMargin"] = margin
    return d


def account(wallet, positions, tiers=None, exchange="binance"):
    return build_snapshot(
        {
            "exchange": exchange,
            "walletBalance": wallet,
            "positions": positions,
            "leverageTiers": tiers or {},
        }
    )
