"""Bybit USDT perpetual (linear), one-way mode: ``bybit`` (Unified Trading Account) and
``bybit-classic`` (classic derivatives account). The two differ only in how the margin
mode is switched; the liquidation math is the same.

Formula used — Bybit help center, "Liquidation Price (USDT Contract)", current version
(read from the testnet mirror
https://testnet.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract)::

    long : LP = EP − (IM − MM)/Q − ExtraMarginAdded/Q
    short: LP = EP + (IM − MM)/Q + ExtraMarginAdded/Q
    Position Value = Q × EP ;  IM = Position Value / leverage
    MM = Position Value × MMR − MM Deduction      (MMR and deduction of the risk-limit tier)

IM + ExtraMarginAdded is the position's isolated margin, so this is the base solver's
**entry-basis** form ``LP = EP ∓ (WB − MM_entry)/Q`` (``mmBasis="entry"``): maintenance
margin is valued at the entry price, not the mark, and the LP does not move with the
mark. Published example Y1: long 1 BTC @ 20,000, 50×, MMR 0.5 % → IM 400, MM 100,
LP 19,700.

Legacy formula — https://help.bybit.com/hc/en-us/articles/900000181046-Liquidation-Price-USDT-Contract-::

    long : LP = EP × (1 − IMR + MMR) − ExtraMarginAdded/ContractSize
    short: LP = EP × (1 + IMR − MMR) + ExtraMarginAdded/ContractSize,   IMR = 1/leverage

Why the current one: with no MM deduction and no extra margin the two are the same
expression (``EP·(1 − IMR + MMR) = EP − (IM − MM)/Q``; the legacy examples Y2 9,850 and
Y3 8,160 come out identical), but the legacy form has no MM deduction (Bybit's tiered
risk limits deduct one above the first tier), assumes the margin is exactly EP·Q/leverage,
and divides extra margin by "ContractSize" where the current page divides by the
quantity. The current form takes the position's actual margin, so it is the general one.

Cross margin: the legacy article's rule "Total Sustainable Loss = Available Balance +
IM − MM; LP(long) = EP − Sustainable Loss/Q" (example Y4: available 2,000, IM 200, MM
100 → LP 17,900) is the same solver with WB = the cross wallet (available + this
position's IM while the book is flat). With several cross positions riskguard holds the
others at their mark (their MM and uPnL enter as in Binance's TMM1/UPNL1) — [derived].
Under a Unified Trading Account, cross and portfolio margin are judged on the whole
account (liquidation when the account MMR reaches 100 %), so a per-position cross LP is
an estimate there.

What is approximate / unsure:
- UTA isolated margin: Bybit's UTA article
  (https://www.kbybit.com/en/help-center/article/Liquidation-Price-Calculation-under-Isolated-Mode-Unified-Trading-Account)
  counts an "Estimated Fee to Close Position" in IM and MM; the exact term for USDT
  perpetuals was not captured, so the model counts **no fee** and live UTA liquidation
  prices sit slightly closer to the mark. ``dataclasses.replace(model, closeFeeRate=...)``
  adds a fee at the liquidation price, but whether that is Bybit's exact term is unknown.
- Tiers are keyed on position value at entry. The MM deduction is read from the risk-limit
  tiers (``GET /v5/market/risk-limit``; ccxt keeps it in ``info.mmDeduction``); when absent
  it is derived by Binance's recurrence, which assumes Bybit's deduction also makes MM
  continuous at tier boundaries.
- Without tiers the model assumes MMR 0.5 % (BTC/ETH's lowest risk limit; many other
  symbols start higher) and the metrics say a default was used.
- Inverse contracts are not modelled (Bybit's inverse formula has fee terms, and the
  inverse example in the legacy article disagrees with its own equation by 0.42).

Capabilities (API: https://bybit-exchange.github.io/docs/v5/account/set-margin-mode and
https://bybit-exchange.github.io/docs/v5/position/cross-isolate; error texts are English
renderings of Bybit's error-code table read at
https://bybit-exchange.github.io/docs/zh-TW/derivatives/error, plus 3400045 from the
set-margin-mode page):
- UTA: margin mode is account-level, ``POST /v5/account/set-margin-mode
  {setMarginMode: ISOLATED_MARGIN|REGULAR_MARGIN|PORTFOLIO_MARGIN}``; failures return
  3400045 "Set margin mode failed" with a ``reasons[]`` list. Whether it refuses with
  open positions is not documented in what we read → ``None``.
- Classic: per symbol, ``POST /v5/position/switch-isolated {category, symbol, tradeMode
  0 cross|1 isolated, buyLeverage, sellLeverage}`` (deprecated in ccxt 4.5.90's API map).
  Whether it refuses with a position or open orders is not confirmed → ``None``.
- Isolated margin can be added/reduced with ``POST /v5/position/add-margin`` (not unified in
  ccxt: ``addMargin`` is None there).
"""

from __future__ import annotations

from dataclasses import replace

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

_ERRORS = {
    "110026": "Cross/isolated margin mode is not modified.",
    "110028": "You have open orders, so the position mode cannot be changed.",
    "110033": "Margin cannot be set without an open position.",
    "110014": "Insufficient available balance to add margin.",
    "110046": "Any adjustment made will trigger immediate liquidation.",
    "3400045": "Set margin mode failed (see result.reasons[]).",
}

BYBIT = MarginModel(
    name="bybit",
    title="Bybit (Unified Trading Account)",
    source="https://testnet.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract ; "
    "https://help.bybit.com/hc/en-us/articles/900000181046-Liquidation-Price-USDT-Contract-",
    mmBasis="entry",
    tierUnit="notional",
    closeFeeRate=0.0,
    mmDeduction=True,
    defaultMaintenanceMarginRate=0.005,
    approximate=False,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="account",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes=dict(_ERRORS),
        notes="UTA: POST /v5/account/set-margin-mode {setMarginMode: ISOLATED_MARGIN|"
        "REGULAR_MARGIN|PORTFOLIO_MARGIN} switches the whole account; 3400045 lists reasons. "
        "POST /v5/position/add-margin adjusts isolated margin (ccxt: not unified). "
        "Switching with positions open: not documented in the sources read.",
    ),
    notes="UTA isolated LP includes an estimated fee to close on Bybit's side (term unsure); "
    "this model counts none, so live LPs sit slightly closer to the mark.",
)

BYBIT_CLASSIC = replace(
    BYBIT,
    name="bybit-classic",
    title="Bybit (classic account)",
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes=dict(_ERRORS),
        notes="Classic: POST /v5/position/switch-isolated {category, symbol, tradeMode 0 cross|"
        "1 isolated, buyLeverage, sellLeverage} per symbol (deprecated in ccxt 4.5.90's API "
        "map); 110026 when the mode is already set. Switching with a position or open "
        "orders: not confirmed from a Bybit document.",
    ),
    notes="Same liquidation math as 'bybit'; only the margin-mode switch differs.",
)


@hookimpl
def riskguard_margin_models(register):
    register(BYBIT)
    register(BYBIT_CLASSIC)
