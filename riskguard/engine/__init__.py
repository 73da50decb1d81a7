"""The engine: a policy compiled once, evaluated against a snapshot, decided.

``policy`` loads, validates and compiles YAML policies (rule types come from ``plugins``, the
pluggy manager); ``context`` precomputes what every rule reads (metrics once per snapshot, the
order's projection); ``evaluate`` runs the compiled rules and makes the ``decision`` with its
``actions``; ``rule`` is the base every rule type builds on (re-exported for plugin authors as
``riskguard.rules.base``). The built-in enrichers, sinks and sources are plugins here too.

May import: ``riskguard.errors``, ``riskguard.hookspecs``, ``riskguard.model``,
``riskguard.margin``. Never the rules (they are found through the plugin hooks), the decision
log, batch runs, the policy tools or a face.
"""
