"""``riskguard simulate``: would this policy have saved the account?

Replays price paths (OHLCV files, generated paths, named stress scenarios) against an
account on the paper exchange, once with no policy and once per policy, applying the
policy's actions through the same executor a live account uses, and reports the runs
side by side (JSON, a terminal table, an HTML report). See ``docs/simulate.md``.

    from riskguard.faces.simulate import simulate, PolicyUnderTest, SimOptions
    from riskguard.paper.prices import named
    result = simulate(snapshot, [PolicyUnderTest("default", load_policy(path), path)],
                      [named("covid-2020", marks)], SimOptions())

May import: every lower package — the paper exchange, the Guard (``faces.guard``), the
ccxt executor (``contrib``), the report toolkit (``batch.reportkit``).
"""

from __future__ import annotations

from .runner import (
    BASELINE,
    DEFAULT_EXECUTE,
    EXECUTABLE,
    PolicyUnderTest,
    SimOptions,
    run_one,
    simulate,
)

__all__ = [
    "BASELINE",
    "DEFAULT_EXECUTE",
    "EXECUTABLE",
    "PolicyUnderTest",
    "SimOptions",
    "run_one",
    "simulate",
]
