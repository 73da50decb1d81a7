"""Snapshot model: loading, validation errors with JSON paths, schema agreement."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskguard import SnapshotError, load_order, load_snapshot
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot, parse_timestamp, snapshot_to_dict
from riskguard.model.types import Position

from .conftest import snapshot_doc


def paths(exc: SnapshotError) -> set[str]:
    return {p.path for p in exc.problems}


def test_valid_snapshot_builds_frozen_model():
    s = load_snapshot(snapshot_doc())
    assert s.exchange == "binance" and len(s.positions) == 2
    assert s.positions[1].isolatedMargin == 300
    with pytest.raises(AttributeError):
        s.positions[0].contracts = 2  # type: ignore[misc]
    assert s.timestamp == parse_timestamp("2026-11-24T12:00:00Z")


def test_unknown_fields_are_kept():
    doc = snapshot_doc(broker="x")
    doc["positions"][0]["positionSide"] = "BOTH"
    s = load_snapshot(doc)
    assert s.extra == {"broker": "x"}
    assert s.positions[0].extra == {"positionSide": "BOTH"}
    assert (
        snapshot_to_dict(
            s.__class__(**{**{f: getattr(s, f) for f in s.__dataclass_fields__}, "source": None})
        )["broker"]
        == "x"
    )


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d["positions"][0].update(contracts=-1), "$.positions[0].contracts", "> 0"),
        (lambda d: d["positions"][0].update(contracts=0), "$.positions[0].contracts", "> 0"),
        (lambda d: d["positions"][0].update(side="up"), "$.positions[0].side", "long, short"),
        (
            lambda d: d["positions"][1].pop("isolatedMargin"),
            "$.positions[1].isolatedMargin",
            "isolated",
        ),
        (lambda d: d["positions"][0].pop("markPrice"), "$.positions[0].markPrice", "markPrice"),
        (
            lambda d: d["positions"][0].update(entryPrice=float("nan")),
            "$.positions[0].entryPrice",
            "finite",
        ),
        (lambda d: d.update(walletBalance=float("inf")), "$.walletBalance", "finite"),
        (lambda d: d.update(walletBalance="lots"), "$.walletBalance", "number"),
        (lambda d: d.update(timestamp="yesterday"), "$.timestamp", "ISO-8601"),
        (
            lambda d: d.update(
                leverageTiers={
                    "BTC/USDT:USDT": [
                        {"minNotional": 50000, "maintenanceMarginRate": 0.005},
                        {"minNotional": 0, "maintenanceMarginRate": 0.004},
                    ]
                }
            ),
            '$.leverageTiers["BTC/USDT:USDT"][1].minNotional',
            "sorted",
        ),
        (
            lambda d: d.update(
                leverageTiers={
                    "BTC/USDT:USDT": [
                        {"minNotional": 0, "maxNotional": 60000, "maintenanceMarginRate": 0.004},
                        {"minNotional": 50000, "maintenanceMarginRate": 0.005},
                    ]
                }
            ),
            '$.leverageTiers["BTC/USDT:USDT"][1].minNotional',
            "overlaps",
        ),
    ],
)
def test_bad_input_names_path_and_expectation(mutate, path, words):
    doc = snapshot_doc()
    mutate(doc)
    with pytest.raises(SnapshotError) as ei:
        load_snapshot(doc)
    match = [p for p in ei.value.problems if p.path == path]
    assert match, f"expected a problem at {path}, got {paths(ei.value)}"
    assert words in match[0].message


def test_all_problems_reported_at_once():
    doc = snapshot_doc()
    doc["positions"][0]["contracts"] = -1
    doc["positions"][1]["side"] = "sideways"
    doc["walletBalance"] = None
    with pytest.raises(SnapshotError) as ei:
        load_snapshot(doc)
    assert {"$.positions[0].contracts", "$.positions[1].side", "$.walletBalance"} <= paths(ei.value)


def test_file_errors_carry_line_and_column(tmp_path):
    doc = snapshot_doc()
    doc["positions"][1]["side"] = "sideways"
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc, indent=2))
    with pytest.raises(SnapshotError) as ei:
        load_snapshot(p)
    prob = ei.value.problems[0]
    assert prob.file == str(p) and prob.line is not None and prob.column is not None
    assert '"sideways"' in p.read_text().splitlines()[prob.line - 1]


def test_nan_in_json_file_is_rejected(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(snapshot_doc()).replace("10000.0", "NaN"))
    with pytest.raises(Exception) as ei:
        load_snapshot(p)
    assert "NaN" in str(ei.value)


def test_tier_maintenance_amount_derived_and_read_from_ccxt_info():
    doc = snapshot_doc(
        leverageTiers={
            "BTC/USDT:USDT": [
                {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004},
                {"minNotional": 50000, "maxNotional": 250000, "maintenanceMarginRate": 0.005},
                {"minNotional": 250000, "maxNotional": 1000000, "maintenanceMarginRate": 0.01},
            ],
            "ETH/USDT:USDT": [
                {"minNotional": 0, "maintenanceMarginRate": 0.004, "info": {"cum": "0.0"}},
                {"minNotional": 50000, "maintenanceMarginRate": 0.005, "info": {"cum": "50.0"}},
            ],
        }
    )
    s = load_snapshot(doc)
    btc = s.tiers("BTC/USDT:USDT")
    # Binance FAQ: level 3 = 250,000 × (1% − 0.5%) + 50 = 1,300 USDT
    assert btc[2].maintenanceAmount == pytest.approx(1300.0, rel=1e-12)
    assert btc[2].maintenanceAmountDerived
    eth = s.tiers("ETH/USDT:USDT")
    assert eth[1].maintenanceAmount == 50.0 and not eth[1].maintenanceAmountDerived


def test_epoch_millis_and_iso_agree():
    assert parse_timestamp(1764000000000) == parse_timestamp("2025-11-24T16:00:00Z")


def test_order_loading():
    o = load_order({"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.1, "clientOrderId": "a1"})
    assert o.sign == 1 and o.type == "market"
    with pytest.raises(SnapshotError) as ei:
        load_order({"symbol": "BTC/USDT:USDT", "side": "hold", "amount": -1})
    assert {"$.side", "$.amount"} <= paths(ei.value)


finite = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
)


@given(
    field=st.sampled_from(
        [
            "contracts",
            "entryPrice",
            "markPrice",
            "leverage",
            "side",
            "marginMode",
            "isolatedMargin",
            "stopLossPrice",
            "symbol",
        ]
    ),
    value=anything,
)
def test_builder_rejects_whatever_the_schema_rejects(field, value):
    """The fast builder never accepts a document the published JSON Schema rejects."""
    doc = snapshot_doc()
    doc["positions"][0][field] = value
    schema_ok = validator("snapshot").is_valid(doc)
    try:
        build_snapshot(doc)
        built = True
    except SnapshotError:
        built = False
    if built:
        # numbers that JSON Schema accepts but are non-finite must still be rejected by the builder
        assert schema_ok or (isinstance(value, str) and value.strip() and _is_float(value)), (
            field,
            value,
        )
    if isinstance(value, float) and not math.isfinite(value):
        assert not built


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


@given(wallet=finite, contracts=finite, price=finite)
def test_valid_numbers_always_build(wallet, contracts, price):
    doc = snapshot_doc(walletBalance=wallet)
    doc["positions"][0].update(
        contracts=contracts, entryPrice=price, markPrice=price, stopLossPrice=None
    )
    s = build_snapshot(doc)
    assert s.positions[0].contracts == contracts
    assert validator("snapshot").is_valid(doc)


# The builder reads the common case in one pass (``_position_fast``, ``_market_fast``) and
# falls back to the full path, which collects every problem. The two must agree exactly.
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([10**300, 10**309, -(10**301), 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1.5", "x", "long", "short", "cross", "isolated", "", [], {}, [1.0]]),
)
POSITION_FIELDS = [
    "symbol",
    "side",
    "contracts",
    "entryPrice",
    "markPrice",
    "leverage",
    "marginMode",
    "contractSize",
    "isolatedMargin",
    "inverse",
    "stopLossPrice",
    "takeProfitPrice",
    "liquidationPrice",
    "note",
]


def _both(fast, full, d):
    from riskguard.model.snapshot import _Ctx

    ctx = _Ctx(None)
    want = full(ctx, d, ("x",))
    got = fast(d)
    if got is not None:
        assert not ctx.problems
        assert got == want
        assert repr(got) == repr(want)  # 1 vs 1.0 and -0.0 vs 0.0 show here
        assert got.extra == want.extra
    return got


@given(
    which=st.integers(0, 1),
    edits=st.dictionaries(st.sampled_from(POSITION_FIELDS), field_values, max_size=4),
    drop=st.sets(st.sampled_from(POSITION_FIELDS), max_size=3),
)
def test_one_pass_position_builder_agrees_with_the_full_one(which, edits, drop):
    from riskguard.model.snapshot import _position, _position_fast

    d = dict(snapshot_doc()["positions"][which])
    assert _both(_position_fast, _position, dict(d)) is not None  # the fast path is taken
    d.update(edits)
    for k in drop:
        d.pop(k, None)
    _both(_position_fast, _position, d)


@given(
    edits=st.dictionaries(
        st.sampled_from(["markPrice", "atrPct", "contractSize", "candles", "regime"]),
        field_values,
        max_size=3,
    )
)
def test_one_pass_market_builder_agrees_with_the_full_one(edits):
    from riskguard.model.snapshot import _market, _market_fast

    d = {"markPrice": 100.0, "atrPct": 2.5, "regime": "calm"}
    assert _both(_market_fast, _market, dict(d)) is not None
    d.update(edits)
    _both(_market_fast, _market, d)


def test_model_objects_pickle_copy_and_subclass_in_either_build():
    """Compiled, the model's classes are native: they still pickle, deep-copy, compare,
    refuse changes and take subclasses written in Python."""
    import copy
    import dataclasses
    import pickle

    from riskguard.model.types import Position

    snap = build_snapshot(snapshot_doc())
    for obj in (snap, snap.positions[0]):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and copy.deepcopy(obj) == obj
    assert pickle.loads(pickle.dumps(snap)).to_dict() == snap.to_dict()

    class Leg(Position):
        pass

    leg = Leg("X/USDT:USDT", "long", 2.0, 100.0)
    assert leg.size == 2.0 and leg.sign == 1 and isinstance(leg, Position)
    assert dataclasses.replace(leg, contracts=3.0).contracts == 3.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        leg.contracts = 4.0  # type: ignore[misc]


@dataclasses.dataclass(frozen=True)
class _Tagged(Position):
    """A model subclass adding a field: pickling and copying must keep it."""

    tag: str = ""


def test_subclasses_of_the_model_keep_their_fields_and_slots_ones_are_refused_when_compiled():
    import copy
    import dataclasses
    import pickle

    from riskguard._pure import build
    from riskguard.engine.actions import Action
    from riskguard.engine.decision import Violation
    from riskguard.model.types import Position, format_timestamp

    t = _Tagged("X/USDT:USDT", "long", 2.0, 100.0, tag="hedge-1")
    for back in (pickle.loads(pickle.dumps(t)), copy.copy(t), copy.deepcopy(t)):
        assert back == t and back.tag == "hedge-1"

    def declare():
        @dataclasses.dataclass(frozen=True, slots=True)
        class Slotted(Position):
            tag: str = ""

        return Slotted("X/USDT:USDT", "long", 2.0, 100.0)

    if build() == "compiled with mypyc":
        with pytest.raises(TypeError, match="slots dataclass"):
            declare()
    else:
        assert declare().contracts == 2.0

    class Finding(Violation):
        pass

    class Proposal(Action):
        pass

    assert Finding("r", "t", "C", "error", "m").code == "C"
    assert Proposal("alert", "r").type == "alert"
    assert (
        format_timestamp(1.7e12)
        == format_timestamp(1_700_000_000_000)
        == "2023-11-14T22:13:20.000Z"
    )
