"""Bitget USDT-M perpetual futures (linear), classic account, isolated and cross.

Sources (Bitget help center):
- "Bitget Futures: Estimated liquidation price"
  (https://www.bitget.com/support/articles/12560603808759, 2025-09-18), isolated margin::

      LP = [position margin + pre-calculated offset − Q × EP × dir]
           ÷ [Q × (MMR + taker fee ratio − dir)]          dir = 1 long, −1 short

  which is the shared solver's mark-basis form with the closing fee in the trigger
  (``closeFeeRate`` = the taker fee ratio) and the tier's offset as the maintenance
  amount: ``(WB + amt − s·Q·EP) / (Q·(MMR + f) − s·Q)``.
- "Bitget to update maintenance margin calculation for classic account futures"
  (https://www.bitget.cloud/support/articles/12560603841952; from 2025-11-10 08:00 UTC):
  maintenance margin is tiered progressively, each part of the position value at its
  tier's rate plus the fee rate. Published example: BTCUSDT, 3 BTC at mark 110,000 =
  330,000 USDT, tier 1 (to 200,000) 0.40 %, tier 2 0.50 %, fee 0.06 % →
  200,000 × 0.46 % + 130,000 × 0.56 % = **1,648 USDT** (the old whole-position method:
  1,848). The progressive sum equals ``value × (MMR_n + fee) − offset_n`` with the
  offset by Binance's recurrence (here 200,000 × 0.1 % = 200), which is how riskguard
  derives the offset when the tiers do not carry it.
- "Position Tier" (https://www.bitget.com/support/articles/360052911052): margin rate =
  (position margin + uPnL) / position value at the fair (mark) price; liquidation when it
  reaches the maintenance margin rate. Isolated: each direction tiered separately; cross:
  long and short sizes combined for the tier.

Fee ratio: 0.06 % (the taker rate of the examples above and of Bitget's 2024 announcement
of the liquidation fee rate "set at 0.0006"); a VIP account's taker rate differs —
``dataclasses.replace(BITGET, closeFeeRate=...)``.

Not modelled / limits: positions opened before 2025-11-10 keep the old whole-position MM
(their tier's rate on the whole value, no offset: ``mmDeduction=False`` reproduces it);
the cross **hedge-mode** formula (Bitget nets the two legs' order risk its own way) — the
shared hedge solver values each leg by its own tier; multi-asset mode's liability
maintenance margin; Coin-M futures; auto-deleveraging and the insurance fund.

Without tiers the model assumes MMR 0.40 % (BTCUSDT's first tier in the example above;
most other symbols start higher) and the metrics say a default was used.

Capabilities (Bitget API v2 as ccxt's ``bitget.py`` calls it): ``POST
/api/v2/mix/account/set-margin-mode`` switches per symbol and margin coin; whether it is
refused with a position or open orders was not confirmed from a Bitget page → ``None``.
``POST /api/v2/mix/account/set-margin`` adds or reduces isolated margin.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

BITGET = MarginModel(
    name="bitget",
    title="Bitget (USDT-M)",
    source="https://www.bitget.com/support/articles/12560603808759 ; "
    "https://www.bitget.cloud/support/articles/12560603841952",
    mmBasis="mark",
    tierUnit="notional",
    closeFeeRate=0.0006,
    mmDeduction=True,
    defaultMaintenanceMarginRate=0.004,
    approximate=False,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes={},
        notes="POST /api/v2/mix/account/set-margin-mode {symbol, productType, marginCoin, "
        "marginMode: isolated|crossed}; POST /api/v2/mix/account/set-margin adds/reduces "
        "isolated margin.",
    ),
    notes="Taker fee 0.06 % counted in the trigger (Bitget's estimated-LP formula); "
    "progressive MM tiers (positions opened from 2025-11-10).",
)


@hookimpl
def riskguard_margin_models(register):
    register(BITGET)
