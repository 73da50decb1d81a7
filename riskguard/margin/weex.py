"""WEEX USDT-M perpetual futures, one-way mode.

Sources (summarised for users in docs/margin.md):
- "Margin rate", https://weexsupport.zendesk.com/hc/en-us/articles/4417905343129 —
  ``margin rate = (position margin + uPnL) / position value``, position value =
  contractVal × contracts × **mark price**; liquidation when the margin rate falls to the
  tier's maintenance margin rate (no fee term). Tiers are by position size in **contracts**
  (isolated: long and short separately; cross: long + short combined).
- "Maintenance Margin Rate", https://weexsupport.zendesk.com/hc/en-us/articles/5491591989785 .
- "Futures Pro estimated liquidation price",
  https://weexsupport.zendesk.com/hc/en-us/articles/24780414317593 — cross::

      net long : LP = MP − (TotalValue − TotalMM) / ((ΣLong − ΣShort) · (1 − MMR))
      net short: same with (1 + MMR)

  TotalValue = cross equity, TotalMM at the current mark.
- Example tier table (TRB/USDT from 2023-09-15, in Cont):
  https://weex-tr.com/en-TR/help/articles/23006169884185 .

Formula used: the trigger ``margin + s·Q·(P − EP) = Q·P·MMR`` solved for P, i.e. the base
solver's mark-basis form with no fee and no deduction::

    long : LP = (EP·Q − M) / (Q·(1 − MMR))      short: LP = (EP·Q + M) / (Q·(1 + MMR))

The Pro cross formula is the same algebra: with one-way positions (ΣLong − ΣShort = s·Q),
TotalValue = WB + U_others + s·Q·(MP − EP) and TotalMM = MM_others + Q·MP·MMR, it reduces
to ``P = (MM_others − WB − U_others + s·Q·EP) / (Q·(s − MMR))`` — the base solver with the
other cross positions held at their mark. So no subclass: the tests check the Pro
formula against this model on a multi-position cross book.

Parameters and assumptions:
- ``tierUnit="contracts"``: tier floors are contract counts, compared with the position's
  ``contracts`` (not base units). Rates apply to the whole position (``mmDeduction=False``).
- WEEX publishes no tier API (``GET /capi/v3/market/exchangeInfo`` has no MMR): tiers come
  from help-center tables. Without tiers the model assumes MMR 0.5 % (the
  ``keepMarginRate`` "0.005" in WEEX's legacy v1 API sample) and the metrics say so.
- Hedge mode (long + short combined for the cross tier) is not modelled.

Capabilities: ``POST /capi/v3/account/marginType {symbol, marginType: CROSSED|ISOLATED}``;
whether it is refused with a position or open orders is not documented → ``None``.
Isolated margin: ``POST /capi/v3/account/positionMargin {isolatedPositionId, amount, type:
1 add|2 reduce}``; isolated auto margin top-up exists (``modifyAutoAppendMargin``).
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

WEEX = MarginModel(
    name="weex",
    title="WEEX",
    source="https://weexsupport.zendesk.com/hc/en-us/articles/4417905343129 ; "
    "https://weexsupport.zendesk.com/hc/en-us/articles/24780414317593",
    mmBasis="mark",
    tierUnit="contracts",
    closeFeeRate=0.0,
    mmDeduction=False,
    defaultMaintenanceMarginRate=0.005,
    approximate=False,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        notes="POST /capi/v3/account/marginType {symbol, marginType: CROSSED|ISOLATED}; "
        "switch rules with a position or open orders undocumented. POST "
        "/capi/v3/account/positionMargin {isolatedPositionId, amount, type: 1 add|2 reduce}.",
    ),
    notes="Tiers in contracts (help-center tables; no tier API).",
)


@hookimpl
def riskguard_margin_models(register):
    register(WEEX)
