"""The boundary search behind action amounts (``rules/_search.py``): for any monotone
figure it ends on the good side, within the tolerance of the true boundary, and never
takes many more evaluations than bisection would."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from riskguard.rules._search import boundary


@st.composite
def piecewise(draw):
    """A decreasing piecewise-linear figure on [0, 1000] with jumps, crossing zero at
    ``root`` (f ≥ 0 below it), and +inf on an optional stretch near 0 (no figure)."""
    root = draw(st.floats(1e-6, 999.0))
    knots = sorted(draw(st.lists(st.floats(0, 1000), max_size=6)))
    slopes = draw(st.lists(st.floats(1e-6, 1e6), min_size=len(knots) + 1, max_size=len(knots) + 1))
    jumps = draw(st.lists(st.floats(0, 100), min_size=len(knots), max_size=len(knots)))
    inf_below = draw(st.one_of(st.none(), st.floats(0, root)))

    def f(x: float) -> float:
        if inf_below is not None and x < inf_below:
            return math.inf
        # slope and downward jumps between root and x (keeps the sign change at root)
        v, a, b = 0.0, min(x, root), max(x, root)
        edges = [a] + [k for k in knots if a < k < b] + [b]
        for lo, hi in itertools.pairwise(edges):
            i = sum(1 for k in knots if k <= lo)
            v += slopes[i] * (hi - lo)
        v += sum(j for k, j in zip(knots, jumps, strict=True) if a < k < b)
        return v if x <= root else -v - 1e-12

    return f, root


@given(piecewise(), st.floats(1e-9, 1e-3))
def test_the_search_ends_good_and_next_to_the_boundary(case, tol):
    f, root = case
    calls = []

    def counted(x: float) -> float:
        calls.append(x)
        return f(x)

    got = boundary(counted, 0.0, 1000.0, f(0.0), f(1000.0), abs_tol=tol)
    assert f(got) >= 0
    assert root - tol <= got <= root + 1e-9
    bisection = math.ceil(math.log2(1000.0 / tol))
    assert len(calls) <= 2 * bisection + 2


@given(st.floats(1, 1e6), st.floats(-1e3, 1e3), st.floats(1e-9, 1e-6))
def test_a_linear_figure_takes_a_few_evaluations(slope, offset, rel):
    """Isolated margin against distance is linear within a tier: found in a handful."""
    root = 500.0 + offset / 10
    calls = []

    def f(x: float) -> float:
        calls.append(x)
        return slope * (x - root)  # increasing: good is the high end

    got = boundary(f, 1000.0, 0.0, f(1000.0), f(0.0), abs_tol=1e-9, rel_tol=rel)
    assert f(got) >= 0 and got - root <= max(1e-9, rel * got) + 1e-9
    assert len(calls) <= 2 + 6
