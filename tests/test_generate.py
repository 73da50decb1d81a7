"""The synthetic snapshot generator: reproducible, valid, and realistic where it claims to be."""

from __future__ import annotations

import gzip
import itertools
import json
import statistics
from collections import defaultdict

import pytest

from riskguard.engine.plugins import get_registry
from riskguard.margin.metrics import compute_metrics
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot, parse_timestamp
from riskguard.policytools.generate import generate_stream, leverage_tiers_for, write_jsonl

from .conftest import run_cli

HOUR = 3600


def stream(**kw) -> list[dict]:
    return list(generate_stream(**kw))


@pytest.fixture(scope="module")
def hourly() -> list[dict]:
    """Three accounts, 25 days of hourly snapshots: long enough for regimes to switch."""
    return stream(accounts=3, steps=600, positions=8, seed=11, interval_s=HOUR)


def by_account(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for d in docs:
        out[d["account"]].append(d)
    return out


# ----------------------------------------------------------------- reproducible


def test_same_seed_same_stream_and_other_seed_differs():
    a = stream(accounts=2, steps=40, positions=6, seed=3, candles=5)
    b = stream(accounts=2, steps=40, positions=6, seed=3, candles=5)
    assert json.dumps(a) == json.dumps(b)
    c = stream(accounts=2, steps=40, positions=6, seed=4, candles=5)
    assert json.dumps(a) != json.dumps(c)


def test_accounts_do_not_depend_on_how_many_there_are():
    alone = stream(accounts=1, steps=30, positions=5, seed=9)
    among = [
        d for d in stream(accounts=3, steps=30, positions=5, seed=9) if d["account"] == "acct-01"
    ]
    assert alone == among


def test_asking_for_candles_does_not_change_prices_or_positions():
    plain = stream(steps=60, positions=6, seed=2, interval_s=HOUR)
    with_c = stream(steps=60, positions=6, seed=2, interval_s=HOUR, candles=12)
    for p, c in zip(plain, with_c, strict=True):
        assert p["positions"] == c["positions"] and p["walletBalance"] == c["walletBalance"]
        for sym, m in c["markets"].items():
            assert {k: v for k, v in m.items() if k != "candles"} == p["markets"][sym]


# ----------------------------------------------------------------- valid


@pytest.mark.parametrize(
    "kw",
    [
        {"accounts": 2, "steps": 50, "positions": 10, "seed": 0},
        {"accounts": 1, "steps": 80, "positions": 3, "seed": 5, "interval_s": HOUR, "candles": 20},
        {
            "accounts": 4,
            "steps": 20,
            "positions": 30,
            "seed": 1,
            "exchange": "bybit",
        },  # ALT symbols
        {"accounts": 1, "steps": 5, "positions": 0, "seed": 0},
    ],
)
def test_every_snapshot_builds_and_matches_the_schema(kw):
    docs = stream(**kw)
    assert len(docs) == kw["accounts"] * kw["steps"]
    v = validator("snapshot")
    for d in docs:
        snap = build_snapshot(d)  # raises SnapshotError on any problem
        assert snap.exchange == kw.get("exchange", "binance")
        assert len(snap.positions) <= kw["positions"]
        errors = list(v.iter_errors(d))
        assert not errors, errors[0].message


def test_shape_timestamps_and_interleaving():
    docs = stream(
        accounts=3, steps=4, positions=2, seed=0, start="2026-11-01T00:00:00Z", interval_s=90
    )
    assert [d["account"] for d in docs[:3]] == ["acct-01", "acct-02", "acct-03"]
    times = [d["timestamp"] for d in docs[::3]]
    assert times == [
        "2026-11-01T00:00:00Z",
        "2026-11-01T00:01:30Z",
        "2026-11-01T00:03:00Z",
        "2026-11-01T00:04:30Z",
    ]
    d = docs[0]
    assert d["schemaVersion"] == 1 and d["settle"] == "USDT" and d["exchange"] == "binance"
    for p in d["positions"]:
        assert p["symbol"].endswith("/USDT:USDT")
        assert set(d["leverageTiers"]) == set(d["markets"]) == {q["symbol"] for q in d["positions"]}


def test_bad_arguments_are_value_errors():
    for kw in ({"accounts": 0}, {"steps": -1}, {"interval_s": 0}, {"candles": -2}):
        with pytest.raises(ValueError):
            generate_stream(**kw)
    with pytest.raises(ValueError):
        generate_stream(start="yesterday")


# ----------------------------------------------------------------- tiers


def test_btc_and_eth_use_the_2024_10_24_brackets_and_others_three_tiers():
    btc = leverage_tiers_for("BTC/USDT:USDT")
    assert len(btc) == 12
    assert btc[2] == {
        "tier": 3,
        "minNotional": 600_000,
        "maxNotional": 3_000_000,
        "maintenanceMarginRate": 0.0065,
        "maxLeverage": 75,
        "maintenanceAmount": 950,
    }
    eth = leverage_tiers_for("ETH/USDT:USDT")
    assert eth[5]["minNotional"] == 50_000_000 and eth[5]["maintenanceAmount"] == 381_450
    sol = leverage_tiers_for("SOL/USDT:USDT")
    assert [t["maintenanceMarginRate"] for t in sol] == [0.01, 0.025, 0.05]
    # Every table satisfies Binance's recurrence cum_n = floor_n·(MMR_n − MMR_{n−1}) + cum_{n−1}.
    for tiers in (btc, eth, sol):
        for prev, cur in itertools.pairwise(tiers):
            expect = cur["minNotional"] * (
                cur["maintenanceMarginRate"] - prev["maintenanceMarginRate"]
            )
            assert cur["maintenanceAmount"] == pytest.approx(expect + prev["maintenanceAmount"])
            assert cur["minNotional"] == prev["maxNotional"]


# ----------------------------------------------------------------- realistic


def test_volatile_regimes_raise_atr(hourly):
    atr: dict[str, list[float]] = defaultdict(list)
    switches = 0
    last: dict[str, str] = {}
    for d in hourly:
        if d["account"] != "acct-01":
            continue
        for sym, m in d["markets"].items():
            atr[m["regime"]].append(m["atrPct"])
            if sym in last and last[sym] != m["regime"]:
                switches += 1
            last[sym] = m["regime"]
    assert switches >= 2, "regimes never switched"
    assert atr["calm"] and atr["volatile"]
    assert statistics.mean(atr["volatile"]) > 1.5 * statistics.mean(atr["calm"])
    assert max(atr["volatile"]) > 5.0 > statistics.median(atr["calm"])


def test_positions_open_and_close_long_short_isolated_cross(hourly):
    for name, docs in by_account(hourly).items():
        held = [frozenset((p["symbol"], p["entryPrice"]) for p in d["positions"]) for d in docs]
        opened = sum(len(b - a) for a, b in itertools.pairwise(held))
        closed = sum(len(a - b) for a, b in itertools.pairwise(held))
        assert opened >= 5 and closed >= 5, name
    positions = [p for d in hourly for p in d["positions"]]
    assert {p["side"] for p in positions} == {"long", "short"}
    assert {p["marginMode"] for p in positions} == {"isolated", "cross"}
    assert all(2 <= p["leverage"] <= 50 for p in positions)
    for p in positions:
        if p["marginMode"] == "isolated":
            expect = p["contracts"] * p["entryPrice"] / p["leverage"]
            assert p["isolatedMargin"] == pytest.approx(expect, rel=1e-6, abs=1e-4)
        else:
            assert "isolatedMargin" not in p


def test_stops_mostly_present_some_missing_some_beyond_liquidation(hourly):
    model = get_registry(()).margin_model("binance")
    n = with_stop = beyond = 0
    for d in hourly[::5]:
        m = compute_metrics(build_snapshot(d), model)
        for p in m.positions:
            n += 1
            if p.stopLossPrice is None:
                continue
            with_stop += 1
            lp = p.liquidationPrice
            if lp is not None and (p.stopLossPrice - lp) * (1 if p.side == "long" else -1) <= 0:
                beyond += 1
    assert 0.7 * n < with_stop < n
    assert beyond > 0


def _holdings(d: dict) -> list:
    return sorted((p["symbol"], p["entryPrice"], p["contracts"]) for p in d["positions"])


def test_wallet_moves_only_when_positions_open_or_close(hourly):
    changes = 0
    for docs in by_account(hourly).values():
        for a, b in itertools.pairwise(docs):
            if _holdings(a) == _holdings(b):
                assert a["walletBalance"] == b["walletBalance"]
            elif a["walletBalance"] != b["walletBalance"]:
                changes += 1
    assert changes > 10


def test_candles_end_at_the_snapshot_and_track_the_mark():
    docs = stream(steps=30, positions=4, seed=8, interval_s=300, candles=12)
    for d in docs:
        t = parse_timestamp(d["timestamp"])
        for m in d["markets"].values():
            c = m["candles"]
            assert len(c) == 12
            assert c[-1][0] == t - 300_000  # the last candle opened one interval ago…
            assert c[-1][4] == m["markPrice"]  # …and closed at the mark
            assert all(b[0] - a[0] == 300_000 for a, b in itertools.pairwise(c))
            assert all(b[1] == a[4] for a, b in itertools.pairwise(c))  # open = previous close


# ----------------------------------------------------------------- output


def test_write_jsonl_plain_and_gzip(tmp_path):
    docs = stream(accounts=2, steps=6, positions=3, seed=1)
    n = write_jsonl(tmp_path / "s.jsonl", iter(docs))
    assert n == 12
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == docs
    write_jsonl(tmp_path / "s.jsonl.gz", iter(docs))
    with gzip.open(tmp_path / "s.jsonl.gz", "rt") as fh:
        assert [json.loads(x) for x in fh] == docs
    write_jsonl(tmp_path / "forced", iter(docs), gzip=True)
    assert gzip.decompress((tmp_path / "forced").read_bytes()).decode().count("\n") == 12


def test_cli_generate_stdout_file_and_errors(tmp_path):
    r = run_cli("generate", "--accounts", "2", "--steps", "3", "--positions", "2", "--seed", "5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6
    assert [json.loads(x) for x in lines] == stream(accounts=2, steps=3, positions=2, seed=5)

    out = tmp_path / "g.jsonl.gz"
    r = run_cli("generate", "--steps", "4", "--candles", "3", "--interval", "3600", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "4 snapshots written" in r.stderr
    with gzip.open(out, "rt") as fh:
        docs = [json.loads(x) for x in fh]
    assert len(docs) == 4 and all(len(m["candles"]) == 3 for m in docs[0]["markets"].values())

    for bad in (["--steps", "-1"], ["--accounts", "0"], ["--start", "nope"], ["--interval", "0"]):
        r = run_cli("generate", *bad)
        assert r.returncode == 2, bad
        assert "Traceback" not in r.stderr
    r = run_cli("generate", "--help")
    assert r.returncode == 0 and "--positions" in r.stdout and "regimes" in r.stdout
