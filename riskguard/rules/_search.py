"""Where a monotone margin figure crosses a limit: the search behind action amounts.

Rules propose amounts (isolated margin to add, contracts to shed) as the point where a
requirement starts to hold. The figures they search over are piecewise linear or smooth
within a tier, so interpolating (regula falsi, Illinois variant) lands on the boundary in
a few evaluations where plain bisection took thirty to forty; a bisection step is taken
whenever interpolation is impossible (a side without a finite figure) or stops halving the
bracket, so the search never does much worse than bisection.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def boundary(
    f: Callable[[float], float],
    good: float,
    bad: float,
    f_good: float | None,
    f_bad: float | None,
    *,
    abs_tol: float,
    rel_tol: float = 0.0,
    max_steps: int = 200,
) -> float:
    """The point on the ``good`` side within ``max(abs_tol, rel_tol·|good|)`` of where
    ``f`` turns negative, for ``f`` monotone between ``good`` (``f ≥ 0``) and ``bad``
    (``f < 0``). ``f`` may return ``inf`` (good, no figure to interpolate); ``None`` for an
    end's value means it was not evaluated. Returns the last good point found.
    """
    isfinite = math.isfinite
    side = 0  # +1: the last step moved ``good``, -1: it moved ``bad``
    last_width = math.inf
    slow = False
    for _ in range(max_steps):
        width = abs(good - bad)
        tol = max(abs_tol, rel_tol * abs(good))
        if width <= tol:
            break
        slow = width > 0.6 * last_width  # the last step cut the bracket by < 40 %: bisect
        last_width = width
        x = None
        if (
            not slow
            and f_good is not None
            and f_bad is not None
            and isfinite(f_good)
            and isfinite(f_bad)
            and f_good > f_bad
        ):
            x = good + f_good * (bad - good) / (f_good - f_bad)
            # Step at least half a tolerance off each end, so a root found exactly is
            # bracketed by the next evaluation instead of approached from one side.
            step = 0.5 * tol if width > tol else 0.5 * width
            lo, hi = (good, bad) if good < bad else (bad, good)
            x = min(max(x, lo + step), hi - step)
        if x is None:
            x = (good + bad) / 2
            side = 0
        fx = f(x)
        if fx >= 0:
            good, f_good = x, fx
            if side == 1 and f_bad is not None:
                f_bad /= 2  # Illinois: the end kept twice weighs less
            side = 1
        else:
            bad, f_bad = x, fx
            if side == -1 and f_good is not None:
                f_good /= 2
            side = -1
    return good
