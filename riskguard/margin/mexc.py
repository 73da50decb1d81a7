"""MEXC USDT-M perpetual ("contract") futures, one-way mode.

Sources (summarised for users in docs/margin.md):
- MEXC blog "Liquidation in futures", https://blog.mexc.fm/liquidation-in-futures-2 —
  the published LP formula, fees excluded, isolated::

      long : LP = (MM − PM + EP·Q) / Q
      short: LP = (EP·Q − MM + PM) / Q          MM = EP·Q·MMR

  with PM the position margin; for cross the margin is the available cross balance.
- Liquidation FAQ (mexc.co announcements, tag futures-19; mexc.cc/learn
  "faq-on-liquidation-for-futures-trading") — trigger "Position Margin + uPnL ≤
  Maintenance Margin + Liquidation Fees" on the **fair (mark) price**.
- Switching: https://support.mexc.com/hc/en-001/articles/360054875031 (coin-M help page)
  "MEXC supports switching from isolated margin mode to cross margin mode but not vice
  versa".

Formula used: the published one. Maintenance margin is valued at the **entry** price
(``MM = EP·Q·MMR``), so this is the base solver's entry-basis form
``LP = EP ∓ (PM − MM_entry)/Q`` (``mmBasis="entry"``); the LP does not move with the mark.
Tier rates apply to the whole position (no deduction, ``mmDeduction=False``) and tiers are
sized in **contracts** (``tierUnit="contracts"``): ``GET /api/v1/contract/detail`` gives
``maintenanceMarginRate, riskBaseVol, riskIncrVol, riskIncrMmr`` in contracts (vol).

Approximate (``approximate=True``): the rule text adds "liquidation fees" that the
published formula leaves out. The one real position we have (reference M3: ETH_USDT long,
1 contract of 0.01 ETH [unsure], 100×, entry 1217.3, margin 0.1290338, MEXC's LP 1211.2)
gives 1210.48 with the published formula and MMR 0.5 % [MMR unsure], and ≈ 1211.21 when a
0.06 % taker fee is counted at the liquidation price — so live LPs are likely a little
closer to the mark than this model's. The model keeps the published formula (fee 0)
rather than fitting a fee to one sample; ``dataclasses.replace(MEXC, closeFeeRate=...)``
counts one. Without tiers the model assumes MMR 0.5 % (MEXC's BTC_USDT base rate is 0.4 %
per ccxt's docstring) and the metrics say a default was used. ccxt builds MEXC tiers from
floor 0 in steps of ``riskIncrVol`` and ignores ``riskBaseVol``: check tier floors.

Capabilities: the margin mode is the ``openType`` (1 isolated, 2 cross) of ``POST
/api/v1/private/position/change_leverage``; only isolated → cross is reported possible
with an open position (help page above, date and scope unconfirmed). Isolated margin:
``POST /api/v1/private/position/change_margin {positionId, amount, type: ADD|SUB}``.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

MEXC = MarginModel(
    name="mexc",
    title="MEXC",
    source="https://blog.mexc.fm/liquidation-in-futures-2 ; "
    "https://support.mexc.com/hc/en-001/articles/360054875031",
    mmBasis="entry",
    tierUnit="contracts",
    closeFeeRate=0.0,
    mmDeduction=False,
    defaultMaintenanceMarginRate=0.005,
    approximate=True,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=True,  # isolated->cross only (switchDirections); unconfirmed
        switchWithOpenOrders=None,
        switchDirections=("isolated->cross",),
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        notes="Mode = openType of POST /api/v1/private/position/change_leverage (ccxt "
        "set_margin_mode needs params.leverage); with a position only isolated->cross, "
        "per a MEXC help page (unconfirmed). change_margin needs the positionId.",
    ),
    notes="Published formula excludes the liquidation fee MEXC's rule text counts; "
    "live LPs are likely slightly closer to the mark.",
)


@hookimpl
def riskguard_margin_models(register):
    register(MEXC)
