"""The tier-table memos of the audit path change nothing: for any text, ``read_snapshot``
gives the document, Snapshot and errors of ``parse_json_fast`` + ``build_snapshot``, and
``snapshot_digest`` the digest of the plain document — when the memo hits, when it
misses, and when a text only looks like a hit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskguard.batch import tiermemo
from riskguard.engine.decision import digest
from riskguard.errors import RiskguardError
from riskguard.model.snapshot import build_snapshot
from riskguard.model.yamlio import parse_json_fast

from .conftest import snapshot_doc

TIERS = {
    "BTC/USDT:USDT": [
        {
            "tier": 1,
            "minNotional": 0,
            "maxNotional": 50000,
            "maintenanceMarginRate": 0.004,
            "maxLeverage": 125,
            "maintenanceAmount": 0,
        },
        {
            "tier": 2,
            "minNotional": 50000,
            "maxNotional": None,
            "maintenanceMarginRate": 0.005,
            "maxLeverage": 100,
            "maintenanceAmount": 50,
        },
    ],
    "ETH/USDT:USDT": [
        {"tier": 1, "minNotional": 0, "maxNotional": None, "maintenanceMarginRate": 0.005}
    ],
}


@pytest.fixture(autouse=True)
def _fresh_memo():
    tiermemo.clear()
    yield
    tiermemo.clear()


def plain(text: str):
    """What the audit read before the memos: (document, Snapshot) or the error's problems."""
    try:
        data = parse_json_fast(text, "f.jsonl")
        return data, build_snapshot(data)
    except RiskguardError as exc:
        return [str(p) for p in exc.problems]


def memo(text: str):
    try:
        return tiermemo.read_snapshot(text, "f.jsonl")
    except RiskguardError as exc:
        return [str(p) for p in exc.problems]


def assert_same(text: str) -> None:
    want, got = plain(text), memo(text)
    if isinstance(want, list):
        assert got == want
        return
    assert not isinstance(got, list), got
    (wd, ws), (gd, gs) = want, got
    # json.dumps tells 1 from 1.0 from true, and keeps the key order
    assert json.dumps(gd) == json.dumps(wd)
    assert gs == ws
    assert gs.leverageTiers == ws.leverageTiers
    assert gs.source is gd
    assert tiermemo.snapshot_digest(gd) == digest(wd)


def line(**over) -> str:
    return json.dumps(snapshot_doc(leverageTiers=TIERS, **over), separators=(",", ":"))


def test_a_repeated_table_set_is_read_once_and_shared():
    first = tiermemo.read_snapshot(line(walletBalance=1000.0))[0]
    second = tiermemo.read_snapshot(line(walletBalance=2000.0))[0]
    assert second["leverageTiers"] is first["leverageTiers"]  # the text memo hit
    assert second["walletBalance"] == 2000.0
    assert_same(line(walletBalance=3000.0))


def test_generated_archive_reads_like_the_plain_path():
    from riskguard.policytools.generate import generate_stream

    docs = list(generate_stream(accounts=3, steps=6, positions=6, seed=5, candles=2))
    for doc in docs + docs:  # the second pass hits for every line
        assert_same(json.dumps(doc))
        assert_same(json.dumps(doc, separators=(",", ":")))
        assert_same(json.dumps(doc, indent=1))  # the memo is not used; still the same


SEEN = line()
TIERS_TEXT = json.dumps(TIERS, separators=(",", ":"))


@pytest.mark.parametrize(
    "text",
    [
        # the tiers' key spelled with an escape at the top level, the literal one nested
        SEEN.replace('"leverageTiers":', '"leverage\\u0054iers":', 1)[:-1]
        + ',"markets":{"BTC/USDT:USDT":{"leverageTiers":'
        + TIERS_TEXT
        + "}}}",
        # the literal text inside a string value (its quotes escaped)
        SEEN[:-1] + ',"note":' + json.dumps('"leverageTiers":' + TIERS_TEXT) + "}",
        # twice at the top level: a duplicate key is an error
        SEEN[:-1] + ',"leverageTiers":' + TIERS_TEXT + "}",
        # the remembered text followed by more of the same object (not the whole value)
        SEEN.replace(TIERS_TEXT, TIERS_TEXT[:-1] + ',"X/USDT:USDT":[]}'),
        # a remembered prefix, then different numbers
        SEEN.replace('"maintenanceAmount":50', '"maintenanceAmount":50.0'),
        SEEN.replace('"maintenanceAmount":50', '"maintenanceAmount":true'),
        # bad JSON after and before the tiers: located in the original text
        SEEN[:-1] + ',"x":[1,}',
        SEEN.replace('"account":"test"', '"account":tst'),
        SEEN.replace('"walletBalance":10000.0', '"walletBalance":NaN'),
        # invalid values in the rest of the document
        SEEN.replace('"walletBalance":10000.0', '"walletBalance":"lots"'),
        SEEN.replace('"side":"long"', '"side":"up"'),
        # an escape elsewhere in an otherwise good line: read without the splice
        SEEN.replace('"account":"test"', '"account":"t\\u00e9st"'),
        SEEN.replace('"account":"test"', '"account":"\\ud800"'),
        # whitespace after the colon, and a top-level array
        SEEN.replace('"leverageTiers":', '"leverageTiers": '),
        "[" + SEEN + "]",
        '{"leverageTiers":' + TIERS_TEXT + "}",
    ],
)
def test_texts_that_look_like_a_hit_read_like_the_plain_path(text):
    assert_same(SEEN)  # learnt
    assert (
        tiermemo.read_snapshot(SEEN)[0]["leverageTiers"]
        is tiermemo.read_snapshot(SEEN)[0]["leverageTiers"]
    )
    assert_same(text)
    assert_same(SEEN)  # and the memo still serves the good line


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='"\\:{}[],leverageTirs0é', max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    extra=st.dictionaries(
        st.sampled_from(["note", "leverageTiers", "markets", "walletBalance", "zz", "a\\"]),
        JSON_VALUES,
        max_size=3,
    ),
    where=st.integers(0, 9),
    cut=st.integers(-3, 3),
)
def test_any_edit_of_a_remembered_line_reads_like_the_plain_path(extra, where, cut):
    """Edits of a line whose tier set is remembered: extra keys (some repeating or escaping
    the tiers' key), values inserted anywhere, a few characters cut around the tiers."""
    tiermemo.read_snapshot(SEEN)
    body = json.dumps(extra, separators=(",", ":"))[1:-1]
    candidates = [SEEN]
    if body:
        candidates.append(SEEN[:-1] + "," + body + "}")
        candidates.append("{" + body + "," + SEEN[1:])
    j = SEEN.index(TIERS_TEXT)
    k = j + len(TIERS_TEXT)
    for pos in (j, k, j + where, k - where):
        candidates.append(SEEN[: pos + min(cut, 0)] + SEEN[pos + max(cut, 0) :])
    for text in candidates:
        assert_same(text)


def test_digest_of_documents_not_read_as_text_is_the_plain_digest():
    doc = snapshot_doc(leverageTiers=TIERS)
    assert tiermemo.snapshot_digest(doc) == digest(doc)
    data, _ = tiermemo.read_snapshot(json.dumps(doc))
    data2, _ = tiermemo.read_snapshot(json.dumps({**doc, "walletBalance": 5.0}))
    assert data2["leverageTiers"] is data["leverageTiers"]
    assert tiermemo.snapshot_digest(data2) == digest(json.loads(json.dumps(data2)))


def test_memory_stays_bounded_when_tables_never_repeat(monkeypatch):
    monkeypatch.setattr(tiermemo, "_MAX_SETS", 4)
    for i in range(60):
        tiers = {"BTC/USDT:USDT": [{**TIERS["BTC/USDT:USDT"][0], "maxNotional": 1000 + i}]}
        assert_same(json.dumps(snapshot_doc(leverageTiers=tiers)))
    assert len(tiermemo._MEMO.by_id) <= 4
    assert tiermemo._MEMO.resets == tiermemo._MAX_RESETS  # then it stops learning


_scalar = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 0, 1, 1.0, True, False, None]),
    st.integers(-(10**6), 10**6),
    st.text(max_size=5),
)
_tables = st.dictionaries(
    st.text(max_size=8),
    st.lists(
        st.dictionaries(
            st.sampled_from(["minNotional", "maxNotional", "ü", "tier"]), _scalar, max_size=4
        ),
        max_size=3,
    ),
    max_size=3,
)


@given(st.lists(_tables, min_size=1, max_size=4))
def test_digest_of_dicts_with_remembered_table_text_is_the_plain_digest(sets):
    """Dicts (a bot's, a stream's) are hashed with each table's canonical text remembered
    by content: any sequence of documents gives the plain digest — equal tables whose
    numbers differ only in type (1, 1.0, true) or in the sign of zero included."""
    for tiers in sets:
        doc = snapshot_doc(leverageTiers=tiers)
        assert tiermemo.snapshot_digest(doc) == digest(doc)


def test_negative_zero_is_not_taken_for_zero():
    a = snapshot_doc(leverageTiers={"X": [{"minNotional": 0.0}]})
    b = snapshot_doc(leverageTiers={"X": [{"minNotional": -0.0}]})
    assert tiermemo.snapshot_digest(a) == digest(a)
    assert tiermemo.snapshot_digest(b) == digest(b) != digest(a)
