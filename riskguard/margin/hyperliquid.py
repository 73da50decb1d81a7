"""Hyperliquid perpetuals (USDC-settled, linear), cross and isolated margin.

Sources (Hyperliquid docs, https://hyperliquid.gitbook.io/hyperliquid-docs):
- Trading › Liquidations: liquidation when "account equity falls below the maintenance
  margin, which is half of the initial margin at max leverage"; liquidations use the mark
  price. "Computing liquidation price"::

      liq_price = price − side × margin_available / position_size / (1 − l × side)
      l = 1 / MAINTENANCE_LEVERAGE,  side = 1 long, −1 short
      margin_available = isolated_margin − maintenance_margin_required   (isolated)
                       = account_value − maintenance_margin_required     (cross)

- Trading › Margin tiers: each asset has a margin table (``meta.universe[].marginTableId``
  → ``{"type": "marginTable"}``: tiers of ``lowerBound`` notional and ``maxLeverage``);
  the maintenance margin rate of a tier is half its initial margin rate at max leverage,
  ``1 / (2 · maxLeverage)``, and the maintenance deduction follows
  ``deduction_i = deduction_{i−1} + lowerBound_i · (mmr_i − mmr_{i−1})`` — Binance's
  maintenance-amount recurrence, which riskguard derives when a tier has no amount.

With MM(P) = Q·P·l − deduction this is the shared solver's mark-basis form: the
condition ``account_value + s·Q·(P − MP) = other MM + Q·P·l − deduction`` solved for P is
``(WB − TMM1 + UPNL1 + deduction − s·Q·EP) / (Q·l − s·Q)``, the same expression as the
docs' (``tests/test_margin_venues.py`` pins it against liquidation prices Hyperliquid
reported for real positions, recorded in freqtrade's ``tests/exchange/test_hyperliquid.py``,
to the 1e-4 relative tolerance that record allows).

Tiers: a snapshot's ``leverageTiers[symbol]`` holds ``maintenanceMarginRate = 1/(2·maxLev)``
per margin tier; ``riskguard.contrib.ccxt_guard.snapshot_from_ccxt`` builds a one-tier table
from ccxt's ``market.limits.leverage.max`` when none is given. Without tiers the model has
**no default** (the maintenance rate ranges from 1 % at 50× to 16.7 % at 3×): the decision
reports the tiers as missing rather than guessing.

Not modelled: funding accrued into isolated margin between snapshots; the backstop
liquidation (liquidator vault) at 2/3 of maintenance margin and partial liquidation of
positions over 100k USDC — the liquidation price is where liquidation *starts*; HIP-3
markets' own margin tables beyond what the snapshot's tiers say; auto-deleveraging.

Capabilities: margin mode and leverage are set per asset with the ``updateLeverage``
action (``isCross``); isolated margin is added or removed with ``updateIsolatedMargin``.
Whether a mode switch is refused with an open position is not stated in the docs read →
``None``.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

HYPERLIQUID = MarginModel(
    name="hyperliquid",
    title="Hyperliquid",
    source="https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations ; "
    "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers",
    mmBasis="mark",
    tierUnit="notional",
    closeFeeRate=0.0,
    mmDeduction=True,
    defaultMaintenanceMarginRate=None,
    approximate=False,
    inverseSupported=False,
    capabilities=Capabilities(
        switchScope="symbol",
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=True,
        reduceIsolatedMargin=True,
        errorCodes={},
        notes="Exchange action updateLeverage {asset, isCross, leverage} sets the margin mode "
        "per asset; updateIsolatedMargin {asset, isBuy, ntli} adds/removes isolated margin.",
    ),
    notes="Maintenance rate = 1/(2 × max leverage of the margin tier); no default rate.",
)


@hookimpl
def riskguard_margin_models(register):
    register(HYPERLIQUID)
