"""BingX USDT-M perpetual futures, one-way mode.

Sources (read 2026-11-25; summarised for users in docs/margin.md):
- "What is forced liquidation", https://bingx.pro/en/support/articles/11263299509391 —
  liquidation at **Risk ≥ 100 %**, isolated
  ``Risk = (MM_pos + closing fee) / (position margin + uPnL)``, cross
  ``Risk = (Σ MM cross + Σ closing fees cross) / (balance − Σ isolated margins − frozen +
  Σ cross uPnL)``; MM tiered on position value.
- "Perpetual Futures Forced-Liquidation Rules",
  https://support.bingx.com/hc/en-001/articles/10689309996185 — "forced liquidation occurs
  when position margin ≤ maintenance margin + taker fee" (isolated); cross: position margin
  + available margin ≤ MM + taker fee. Its worked examples were cut off in the copy read.
- Tiers: ``GET /openApi/swap/v1/maintMarginRatio`` → ``minPositionVal, maxPositionVal,
  maintMarginRatio, maintAmount`` (ccxt ``bingx.fetch_market_leverage_tiers``; ccxt keeps
  ``maintAmount`` only in ``info``, which the snapshot loader reads). ``maintAmount`` is
  Binance's ``cum``: ``MM = positionValue × maintMarginRatio − maintAmount``; all 25 tiers of
  the recorded ETH-USDT table satisfy the continuity recurrence exactly.

Formula used (derived from the trigger, [unsure]: BingX's own LP formula was not
retrieved)::

    margin + s·Q·(P − EP) = Q·P·MMR − maintAmount + f·Q·P
    long : LP = (EP·Q − M − maintAmount) / (Q·(1 − MMR − f))
    short: LP = (EP·Q + M + maintAmount) / (Q·(1 + MMR + f))

i.e. the base solver's mark-basis form with ``closeFeeRate = f``, tiers on notional at
mark with Binance-style re-iteration. Because the formula is ours and not BingX's,
``approximate=True``.

Parameters and assumptions:
- ``closeFeeRate = 0.0005``: BingX's standard perpetual taker rate as we understand it
  [unsure: VIP tiers and promotions differ]. The account's own rate comes from the
  snapshot: ``takerFeeRate``, or ``markets[symbol].takerFeeRate`` for one symbol.
- The closing fee is valued at the liquidation (mark) price.
- Without tiers the model assumes MMR 0.5 % (conservative next to ETH-USDT's 0.33 % first
  tier) and the metrics say a default was used.
- Not modelled: BingX's dual-price check (a position flagged by mark price is kept while
  the last price has not also breached; https://bingx.io/en-us/support/articles/21830610306585),
  so real liquidation can lag the mark-based LP; pending orders' margin and fees and the
  frozen balance in cross Risk; other cross positions' closing fees (``compute_metrics``
  passes their maintenance margin only).

Capabilities: ``POST /openApi/swap/v2/trade/marginType {symbol, marginType: ISOLATED|
CROSSED|SEPARATE_ISOLATED}`` per symbol. Whether a switch is refused with an open position
is not documented in what we read (a third-party bot comment says BingX rejects it) →
``None``. Isolated margin: ``POST /openApi/swap/v2/trade/positionMargin {type: 1 add|2
reduce}``; errors from ccxt PR #23239.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

BINGX = MarginModel(
    name="bingx",
    title="BingX",
    source="https://bingx.pro/en/support/articles/11263299509391 ; "
    "https://support.bingx.com/hc/en-001/articles/10689309996185",
    mmBasis="mark",
    tierUnit="notional",
    closeFeeRate=0.0005,
    takerFeeInTrigger=True,
    mmDeduction=True,
    defaultMaintenanceMarginRate=0.005,
    approximate=True,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes={
            "104411": "Cannot exceed the maximum decrease amount.",
            "101400": "field MarginSide in rule failed (coin-M margin adjustment).",
        },
        notes="POST /openApi/swap/v2/trade/marginType {symbol, marginType: ISOLATED|CROSSED|"
        "SEPARATE_ISOLATED}; reportedly refused with an open position (unconfirmed). "
        "POST /openApi/swap/v2/trade/positionMargin {symbol, amount, type: 1 add|2 reduce}.",
    ),
    notes="LP derived from BingX's published trigger (MM + taker fee); default taker fee "
    "0.05 %, or the snapshot's takerFeeRate (account or per market).",
)


@hookimpl
def riskguard_margin_models(register):
    register(BINGX)
