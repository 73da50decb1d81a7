"""The base classes a rule type builds on — the import path for plugin authors.

The classes live in :mod:`riskguard.engine.rule` (the engine compiles rules, so it owns their
contract); this module is their stable public name, used by the built-in rules and by
third-party plugins alike (see ``plugins/example_rule.py``).
"""

from riskguard.engine.rule import (
    BaseRule,
    Match,
    RuleSpec,
    RuleType,
    hedge_minor_leg,
    judged_liquidation_price,
)

__all__ = [
    "BaseRule",
    "Match",
    "RuleSpec",
    "RuleType",
    "hedge_minor_leg",
    "judged_liquidation_price",
]
