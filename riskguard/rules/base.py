"""The base classes a rule type builds on — the import path for plugin authors.

The classes live in :mod:`riskguard.engine.rule` (the engine compiles rules, so it owns their
contract); this module is their stable public name, used by the built-in rules and by
third-party plugins alike (see ``plugins/example_rule.py``).
"""

from collections.abc import Callable
from typing import Any

from riskguard.engine.rule import (
    BaseRule,
    Match,
    RuleSpec,
    RuleType,
    hedge_minor_leg,
    judged_liquidation_price,
)
from riskguard.hookspecs import hookimpl


def rule_types_hook(*types: RuleType) -> Callable[[Any], None]:
    """A module's ``riskguard_rule_types`` hook that registers ``types``.

    ``riskguard_rule_types = rule_types_hook(RULE_TYPE)`` does what the hand-written
    ``@hookimpl def riskguard_rule_types(register): register(RULE_TYPE)`` does. The
    built-in rules on the hot path use it because their modules may be compiled with
    mypyc, and a compiled function cannot carry pluggy's ``hookimpl`` marker; this one is
    a plain Python function, defined here.
    """

    @hookimpl
    def riskguard_rule_types(register: Any) -> None:
        for t in types:
            register(t)

    return riskguard_rule_types


__all__ = [
    "BaseRule",
    "Match",
    "RuleSpec",
    "RuleType",
    "hedge_minor_leg",
    "judged_liquidation_price",
    "rule_types_hook",
]
