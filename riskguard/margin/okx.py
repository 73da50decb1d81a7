"""OKX USDT-margined perpetual swaps (``okx``) and Gate USDT futures (``gate``).

Both liquidate on a maintenance requirement that counts the taker fee to close next to
the maintenance margin rate, with the tier's rate applied to the whole position.

OKX — sources: OKX help center, margin ratio
(https://www.okx.com/help-center/6997123251341) and "Tiered Maintenance Margin Ratio
System" (https://support.okexcn.com/hc/en-us/articles/360040581412-Tiered-Maintenance-Margin-Ratio-System).
A position is liquidated when its margin ratio falls to 100 %::

    margin ratio = (margin balance + uPnL) / (face value × |contracts| × MP × (MMR + fee rate))

Setting the ratio to 1 and solving for MP gives (derived; see docs/margin.md)::

    long : LP = (EP − M/Q) / (1 − (MMR + fee))
    short: LP = (EP + M/Q) / (1 + (MMR + fee))

which is the base solver's mark-basis form with the fee in the denominator
(``closeFeeRate``). The same expression is freqtrade's generic dry-run liquidation price
for OKX and Gate; its test vectors (MMR 0.01, taker 0.0006) reproduce exactly. Cross
margin uses the same condition on the cross equity, with the other cross positions held
at their mark ([derived]; OKX judges cross positions on the account's margin ratio).

Gate — source: Gate help "Liquidation Price & Bankruptcy Price"
(https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price), as
quoted in freqtrade's ``dry_run_liquidation_price`` docstring::

    LP = (EP ± Margin / ContractMultiplier / Size) / [1 ± (MMR + TakerRate)]
    ("−" for long, "+" for short)

— the same form. We did not read Gate's page ourselves and Gate's cross-margin rule is not
covered, so ``gate`` is marked approximate. It is registered here because it costs only a
second parameter set.

Parameters and assumptions:
- The fee rate is an input: the snapshot's ``takerFeeRate`` (the account's taker rate,
  which depends on its fee tier), or ``markets[symbol].takerFeeRate`` for one symbol,
  replaces the default; the metrics report the rate used per position
  (``closeFeeRate``, ``closeFeeRateSource``: market | account | default). Without one,
  ``closeFeeRate`` defaults to 0.0005, the base-tier taker rate for perpetuals we assume
  for both exchanges [unsure: check your fee tier]; freqtrade's fixtures use 0.0006.
- OKX tiers (``GET /api/v5/public/position-tiers``: ``minSz, maxSz, mmr, imr, maxLever``)
  are sized in **contracts** for swaps; ccxt copies ``minSz``/``maxSz`` into
  ``minNotional``/``maxNotional`` unchanged, so the ``okx`` model reads tier floors as
  contracts (``tierUnit="contracts"``).
- Gate's risk-limit tiers are built by ccxt from ``risk_limit_base/step/max`` in the
  settle currency, so ``gate`` reads them as notional (at mark) [unsure].
- Neither exchange deducts a maintenance amount: the tier's rate applies to the whole
  position (``mmDeduction=False``); an amount given or derived in the snapshot's tiers is
  ignored. At a tier boundary the requirement jumps; the base solver's tier walk returns
  the boundary price when the jump crosses the margin balance.
- Without tiers the models assume MMR 0.5 % (an assumed typical first-tier rate, not an
  OKX or Gate figure) and the metrics say a default was used.
- Other positions' closing fees in a cross pool are not part of ``others_mm`` as
  ``compute_metrics`` passes it, so the cross LP leaves out f × (other cross notional).

Capabilities: OKX has no margin-mode switch; the mode (``tdMode`` cross|isolated) is chosen
**per order**, and ccxt's ``setMarginMode`` maps to ``POST /api/v5/account/set-leverage
{mgnMode}``. Cross and isolated positions can coexist on one instrument (from ccxt and
third-party code, not an OKX page we read). Isolated margin is adjusted with ``POST
/api/v5/account/position/margin-balance`` (type add|reduce). Gate's switching rules were
not researched: ``None``.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

OKX = MarginModel(
    name="okx",
    title="OKX",
    source="https://www.okx.com/help-center/6997123251341 ; "
    "https://support.okexcn.com/hc/en-us/articles/360040581412-Tiered-Maintenance-Margin-Ratio-System",
    mmBasis="mark",
    tierUnit="contracts",
    closeFeeRate=0.0005,
    takerFeeInTrigger=True,
    mmDeduction=False,
    defaultMaintenanceMarginRate=0.005,
    approximate=False,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="order",
        # n/a: no switch to refuse; a new order simply carries the other mode
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes={
            "59100": "You have open positions. Please cancel all open positions before "
            "changing the leverage.",
            "59101": "Leverage can't be modified: pending orders with isolated positions.",
        },
        notes="Margin mode is the order's tdMode (cross|isolated); ccxt setMarginMode -> "
        "POST /api/v5/account/set-leverage {mgnMode}. Isolated margin: POST "
        "/api/v5/account/position/margin-balance {type: add|reduce}.",
    ),
    notes="Fee rate in the trigger: the snapshot's takerFeeRate (account or per market), "
    "else 0.05 % taker (assumed base tier).",
)

GATE = MarginModel(
    name="gate",
    title="Gate",
    source="https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price",
    mmBasis="mark",
    tierUnit="notional",
    closeFeeRate=0.0005,
    takerFeeInTrigger=True,
    mmDeduction=False,
    defaultMaintenanceMarginRate=0.005,
    approximate=True,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=None,
        reduceIsolatedMargin=None,
    ),
    notes="Isolated formula as quoted by freqtrade; cross rule and risk-limit units unconfirmed.",
)


@hookimpl
def riskguard_margin_models(register):
    register(OKX)
    register(GATE)
