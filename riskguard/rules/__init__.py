"""The built-in rule types, one module each, registered through ``riskguard_rule_types``.

Each module is a plugin exactly as a third party would write one (``rules/base.py`` is the
contract they share, ``plugins/example_rule.py`` the tutorial). Rules are pure: they read the
evaluation context and propose violations and actions; they never do I/O.

May import: ``riskguard.errors``, ``riskguard.hookspecs``, ``riskguard.model``,
``riskguard.margin``, ``riskguard.engine``.
"""
