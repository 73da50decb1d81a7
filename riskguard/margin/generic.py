"""The ``generic`` margin model: Binance's algebra with a conservative default MMR.

For an exchange riskguard has no model for. It is marked ``approximate: true`` on every
figure: the liquidation condition "margin balance = maintenance margin" holds on every
exchange we know, but fees in the trigger, the maintenance basis and the tier table
differ. Supply ``leverageTiers`` to make it as exact as your exchange's tiers allow.
"""

from __future__ import annotations

from riskguard.hookspecs import hookimpl
from riskguard.margin.base import Capabilities, MarginModel

GENERIC = MarginModel(
    name="generic",
    title="generic exchange",
    source="docs/margin.md (derivation: margin balance = maintenance margin)",
    defaultMaintenanceMarginRate=0.01,
    approximate=True,
    inverseSupported=True,
    capabilities=Capabilities(
        switchWithPosition=None,
        switchWithOpenOrders=None,
        addIsolatedMargin=None,
        reduceIsolatedMargin=None,
    ),
)


@hookimpl
def riskguard_margin_models(register):
    register(GENERIC)
