"""Binance USDⓈ-M (linear) and COIN-M (inverse) futures, one-way mode.

Sources:
- "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
  https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93 — one-way form
  ``LP = (WB − TMM1 + UPNL1 + cum − s·Q·EP) / (Q·MMR − s·Q)``; cross WB is the cross wallet
  balance, isolated WB the isolated wallet with TMM1 = UPNL1 = 0; recompute with the tier
  the notional at LP falls in; LP < 0 shows "--".
- "How to Calculate Liquidation Price of COIN-M Futures Contracts",
  https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46 — one-way form
  ``LP = (Q·MMR + s·Q) / (WB + cum + s·Q/EP)``, Q in USD, WB and cum in coin.
- Maintenance amount recurrence ``cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}``
  (same FAQ; published example level 3 = 250,000 × (1% − 0.5%) + 50 = 1,300 USDT).
- Error codes from ccxt 4.5.90 ``binance.py`` ``exceptions`` (-4046/-4047/-4048/-4167/-4168)
  and Binance's "Error Codes" page for USDⓈ-M futures
  (https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code):
  -4168 "Unable to adjust to isolated-margin mode under the Multi-Assets mode", -4167
  "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under
  isolated-margin mode". Multi-Assets mode is therefore cross-only ("What is
  Multi-Assets mode", https://www.binance.com/en/support/faq/29b45c485d664028b9ca1cdf90b24f6f):
  a Binance snapshot with ``balances`` (riskguard's Multi-Assets form) is judged so.

Hedge mode (LONG and SHORT legs sharing one LP in cross) is not modelled: snapshots are
one-way. Without tiers for a symbol the model assumes MMR 0.5 % (Binance's tier-1 rate
spans 0.4–2.5 % by symbol; 0.5 % is BTC/ETH's second tier), and the metrics say so.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

BINANCE = MarginModel(
    name="binance",
    title="Binance",
    source="https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93 ; "
    "https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46",
    mmBasis="mark",
    tierUnit="notional",
    closeFeeRate=0.0,
    defaultMaintenanceMarginRate=0.005,
    inverseSupported=True,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=False,
        switchWithOpenOrders=False,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes={
            "-4046": "No need to change margin type.",
            "-4047": "Margin type cannot be changed if there exists open orders.",
            "-4048": "Margin type cannot be changed if there exists position.",
            "-4167": "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures "
            "under isolated-margin mode.",
            "-4168": "Unable to adjust to isolated-margin mode under the Multi-Assets mode.",
            "-4051": "Isolated balance insufficient.",
            "-4054": "Cannot add position margin: position is 0.",
        },
        notes="POST /fapi/v1/marginType {symbol, marginType: ISOLATED|CROSSED}; "
        "POST /fapi/v1/positionMargin adds/reduces isolated margin. "
        "Multi-Assets mode is cross-only: -4168 refuses isolated there.",
        multiCollateralCrossOnly="-4168",
    ),
)


@hookimpl
def riskguard_margin_models(register):
    register(BINANCE)
