"""The service's JSON encoder writes exactly the standard library's bytes (orjson only where
they are the same): property-tested on decision-like documents, and on real decisions."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import math
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from riskguard import Guard
from riskguard.engine.decision import canonical_json
from riskguard.engine.decision import digest as engine_digest
from riskguard.faces.serve.encode import digest, dumps, fast_dumps, std_dumps

from .conftest import POLICIES, snapshot_doc

orjson = pytest.importorskip("orjson")


class Side(enum.Enum):
    BUY = "buy"


class Lots(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


class Whole(int):
    pass


class Real(float):
    pass


class Items(list):
    pass


@dataclasses.dataclass(frozen=True)
class Point:
    x: float = 1.0


# Objects orjson writes (or refuses) by rules of its own and json refuses (or writes by its
# own): none of them may reach orjson's bytes unless they are json's.
exotics = st.sampled_from(
    [
        Side.BUY,
        Lots.ONE,
        uuid.UUID(int=7),
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        datetime.date(2026, 1, 2),
        datetime.time(3, 4),
        Point(),
        orjson.Fragment(b"1"),
        Text("buy"),
        Whole(5),
        Real(0.5),
        Items([1, 2]),
        collections.OrderedDict(a=1),
        b"bytes",
        {1, 2},
        1j,
        decimal.Decimal("1.5"),
    ]
)


def outcome(fn, obj):
    try:
        return ("ok", fn(obj))
    except (TypeError, ValueError, RecursionError) as exc:
        return ("error", type(exc))


# Floats at every magnitude (the ones below 1e-4 are where orjson's text differs), NaN and
# the infinities (json refuses them), integers past 64 bits, text with any code point
# (lone surrogates included), keys that are not strings, tuples.
numbers = st.one_of(
    st.floats(),
    st.floats(min_value=1e-12, max_value=1e-3),
    st.floats(min_value=-1e-3, max_value=-1e-12),
    st.floats(min_value=1e14, max_value=1e18),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**62)),
)
texts = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=6),
    st.sampled_from(["BTC/USDT:USDT", "e-5", "0.00001", "1e-07", "ü€😀", '"\\\n\t\x00\x1f\x7f']),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, exotics)
keys = st.one_of(
    texts,
    st.integers(min_value=-3, max_value=3),
    st.floats(),
    st.booleans(),
    st.none(),
    st.sampled_from([Text("k"), Side.BUY, Lots.ONE]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(texts, inner, max_size=6),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=40,
)


@given(documents)
@example(1e-05)
@example(-2.969114578159886e-07)
@example(3.6331846240704507e-09)
@example(1e16)
@example(0.0001)
@example(-0.0)
@example(5e-324)
@example({"a": math.nan})
@example([math.inf])
@example(2**64)
@example(-(2**63) - 1)
@example({1: 2, None: 3, 1.5: 4, False: 5})
@example(("a", 1))
@example("\ud800")
@example({"s": "\x1f\u2028\x7f"})
@example({"a": None, "b": math.nan})
@example([None, math.inf, "null"])
@example({"side": Side.BUY})
@example([Text("a"), Whole(1), Real(1.5)])
@example({"at": datetime.datetime(2026, 1, 2)})
@example({Text("k"): 1})
def test_dumps_is_byte_for_byte_the_standard_librarys(doc):
    assert outcome(dumps, doc) == outcome(std_dumps, doc)
    fast = fast_dumps(doc)
    if fast is not None:  # whenever orjson's bytes are used, they are json's
        assert fast == std_dumps(doc)


@given(documents)
@example({"b": 1, "a": {"é": 1, "z": 2, "Z": 3, "\U0001f600": 4, "\ufb01": 5, "": 6}})
@example({"a": None, "b": math.nan})
@example({"side": Side.BUY})
def test_sorted_keys_and_the_digest_are_the_engines(doc):
    """Sorted keys (orjson: by UTF-8 bytes) are Python's order: the canonical JSON the
    engine names snapshots by, and so its digest."""
    sort = lambda d: dumps(d, sort_keys=True)  # noqa: E731
    assert outcome(sort, doc) == outcome(lambda d: std_dumps(d, sort_keys=True), doc)
    assert outcome(sort, doc) == outcome(lambda d: canonical_json(d).encode(), doc)
    fast = fast_dumps(doc, sort_keys=True)
    if fast is not None:
        assert fast == canonical_json(doc).encode()
    assert outcome(digest, doc) == outcome(engine_digest, doc)


@pytest.mark.parametrize(
    "doc",
    [
        1e-05,
        {"price": 3.5e-06},
        [1e-07],
        {"x": math.nan},
        {"x": -math.inf},
        2**64,
        {1: "a"},
        "\udc80",
        {"x": None, "y": math.nan},
        Side.BUY,
        {"n": Lots.ONE},
        uuid.UUID(int=1),
        [datetime.date(2026, 1, 2)],
        {"p": Point()},
        orjson.Fragment(b"{}"),
        [Text("a")],
        {Text("k"): 1},
        {"n": Whole(2)},
        Items(),
        collections.OrderedDict(a=1),
        {"nested": [[[[]]]] * 2, "deep": [[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]},
    ],
)
def test_the_fast_path_refuses_what_it_would_write_differently(doc):
    nested_only = isinstance(doc, dict) and "nested" in doc
    if nested_only:
        assert fast_dumps(doc) == std_dumps(doc)  # plain nesting is fine
        return
    assert fast_dumps(doc) is None
    assert outcome(dumps, doc) == outcome(std_dumps, doc)


@pytest.mark.parametrize(
    "doc",
    [
        ("a", 1),  # an array in both
        {"a": None, "b": [None, "null"], "c": 0.0001, "d": 1e-10, "e": 1e16, "n": 100.00001},
    ],
)
def test_the_fast_path_takes_what_it_writes_the_same(doc):
    fast = fast_dumps(doc)
    assert fast is not None
    assert fast == std_dumps(doc)


@pytest.mark.parametrize("doc", [{"id": "0.00001"}, ["1e-7"], {"e+5": 1}])
def test_float_text_inside_a_string_is_only_text(doc):
    assert fast_dumps(doc) == std_dumps(doc)


@given(st.floats())
@example(1e-9)
@example(9.99e-10)
@example(1e-4)
@example(9.999999999999999e-05)
@example(-0.0)
@example(5e-324)
@example(1.7976931348623157e308)
def test_a_float_vouched_for_is_written_alike(x):
    from riskguard.faces.serve.plainjson import same_text

    if same_text(x):
        assert orjson.dumps(x) == std_dumps(x)
    else:  # refused only where the texts differ, or json refuses (NaN, infinities)
        assert not math.isfinite(x) or 1e-9 <= abs(x) < 1e-4


ORDERS = [
    {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 10, "leverage": 5},
    {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 5000, "leverage": 20, "note": "é€😀"},
    {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.001, "reduceOnly": True},
    None,
]


def test_a_snapshots_digest_is_the_engines_by_the_fast_path():
    from riskguard.model.snapshot import build_snapshot

    for doc in (snapshot_doc(), snapshot_doc(account="ü€😀", walletBalance=1e-7)):
        canon = build_snapshot(doc).to_dict()
        assert digest(canon) == engine_digest(canon)
    assert fast_dumps(build_snapshot(snapshot_doc()).to_dict(), sort_keys=True) is not None


@pytest.mark.parametrize("order", ORDERS)
def test_real_decisions_take_the_fast_path_with_the_same_bytes(order):
    guard = Guard.from_file(POLICIES / "default.yaml")
    d = guard.check(snapshot_doc(), order)
    for doc in (d.to_dict(metrics=False), d.to_dict()):
        fast = fast_dumps(doc)
        assert fast is not None
        assert fast == std_dumps(doc)
