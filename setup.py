"""riskguard's build. The package is configured in ``pyproject.toml``; this file adds only
the modules compiled with mypyc.

The evaluation's hot path (the data model, margin arithmetic, the engine and its findings,
the rules of the default policy, the paper exchange, the service's JSON check) is plain,
fully typed Python that mypyc compiles to C
extension modules — the way black and mypy ship. The source stays the reference: the
same files run as plain Python where nothing is compiled, and the test suite checks both
give the same decisions. Nothing is compiled when:

- ``RISKGUARD_PURE=1`` is set at install time, or
- no C compiler is found (each extension is optional: its build failing leaves the
  module in Python, not a failed install).

``docs/performance.md`` has the figures and how to tell which build is installed.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

COMPILED = [
    "riskguard/margin/base.py",
    "riskguard/margin/metrics.py",
    "riskguard/engine/context.py",
    "riskguard/engine/rule.py",
    "riskguard/engine/evaluate.py",
    "riskguard/rules/trading_state.py",
    "riskguard/rules/margin_utilization.py",
    "riskguard/rules/stop_before_liquidation.py",
    "riskguard/rules/isolate_on_volatility.py",
    "riskguard/rules/risk_per_trade.py",
    "riskguard/rules/max_leverage.py",
    "riskguard/rules/min_liquidation_distance.py",
    "riskguard/rules/cross_stress.py",
    "riskguard/rules/promote_to_cross.py",
    "riskguard/paper/state.py",
    "riskguard/paper/venue.py",
    "riskguard/faces/serve/plainjson.py",
    "riskguard/engine/actions.py",
    "riskguard/engine/decision.py",
    "riskguard/model/types.py",
]


def ext_modules() -> list:
    if os.environ.get("RISKGUARD_PURE", "").strip() not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("riskguard: mypyc is not available; installing plain Python", file=sys.stderr)
        return []
    try:
        exts = mypycify(COMPILED, opt_level="3", debug_level="0")
    except (SystemExit, Exception) as exc:  # noqa: BLE001 - mypyc refused the source: stay usable
        print(f"riskguard: not compiled ({exc!r}); installing plain Python", file=sys.stderr)
        return []
    for ext in exts:
        ext.optional = True  # no compiler: plain Python rather than a failed install
    return exts


setup(ext_modules=ext_modules())
