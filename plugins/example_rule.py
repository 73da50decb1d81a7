"""A complete third-party rule plugin — the "writing plugins" tutorial in code.

``max_concentration``: no single symbol may hold more than ``maxShare`` of the account's
total notional. Diversification limits like this are what risk desks add first, and the
rule shows every piece a plugin needs:

1. a params JSON Schema (composed into the policy schema, so typos are caught at load);
2. stable reason codes (listed in ``riskguard plugins`` and the codes table);
3. a cross-field ``check`` run when the policy loads;
4. a rule object whose ``evaluate(ctx)`` reads precomputed metrics — never does I/O —
   and reports through ``violate`` / ``act`` / ``note`` (the last feeds ``explain``);
5. registration through the same hook the built-in rules use.

Use it::

    riskguard check --plugin plugins/example_rule.py -p my-policy.yaml -s snapshot.json

with a policy rule such as::

    - id: concentration
      type: max_concentration
      params: {maxShare: 0.5, minPositions: 2}

or package it with an entry point in the ``riskguard`` group::

    [project.entry-points.riskguard]
    concentration = "my_package.example_rule"
"""

from __future__ import annotations

from riskguard import hookimpl
from riskguard.rules.base import BaseRule, RuleSpec, RuleType

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["maxShare"],
    "properties": {
        "maxShare": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "largest share of total notional one symbol may hold",
        },
        "minPositions": {
            "type": "integer",
            "minimum": 1,
            "default": 2,
            "description": "only judge accounts holding at least this many positions",
        },
    },
}

CODES = {"CONCENTRATION_EXCEEDS_MAX": "one symbol holds more than `maxShare` of total notional"}


def check(params: dict) -> list[tuple[str, str]]:
    if params["maxShare"] < 0.05:
        return [
            ("maxShare", "below 5 % no realistic book passes; did you mean a fraction like 0.5?")
        ]
    return []


class MaxConcentration(BaseRule):
    __slots__ = ("max_share", "min_positions")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.max_share = spec.params["maxShare"]
        self.min_positions = spec.params["minPositions"]

    def evaluate(self, ctx) -> None:
        positions = [p for p in ctx.metrics.positions if self.match.position(p)]
        if len(positions) < self.min_positions:
            self.note(
                ctx, f"{len(positions)} positions: below minPositions, not judged", passed=True
            )
            return
        total = sum(p.notional for p in positions)
        by_symbol: dict[str, float] = {}
        for p in positions:
            by_symbol[p.symbol] = by_symbol.get(p.symbol, 0.0) + p.notional
        for symbol, notional in by_symbol.items():
            share = notional / total if total > 0 else 0.0
            self.note(
                ctx,
                f"{symbol} holds {share:.1%} of notional (max {self.max_share:.0%})",
                symbol=symbol,
                passed=share <= self.max_share,
                share=share,
            )
            if share > self.max_share:
                self.violate(
                    ctx,
                    "CONCENTRATION_EXCEEDS_MAX",
                    f"{symbol} holds {share:.1%} of total notional, above {self.max_share:.0%}",
                    symbol=symbol,
                    observed=share,
                    limit=self.max_share,
                    notional=notional,
                )


RULE_TYPE = RuleType(
    name="max_concentration",
    params=PARAMS,
    compile=MaxConcentration,
    description="no single symbol holds more than `maxShare` of the account's total notional",
    codes=CODES,
    check=check,
    example="""- id: concentration
  type: max_concentration
  params: {maxShare: 0.5}""",
    limitKeys=("maxShare",),
)


@hookimpl
def riskguard_rule_types(register):
    register(RULE_TYPE)
