"""Fees are inputs: where the exchange's liquidation trigger counts the taker fee to close
(OKX, Gate, BingX), the account's own rate — snapshot ``takerFeeRate``, per symbol
``markets[s].takerFeeRate`` — replaces the model's base-tier default, and the metrics say
which rate was used."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskguard import Guard, SnapshotError

from .conftest import run_cli

SYM = "BTC/USDT:USDT"


def okx(exchange: str = "okx", **top) -> dict:
    doc = {
        "walletBalance": 10000,
        "exchange": exchange,
        "positions": [
            {
                "symbol": SYM, "side": "long", "contracts": 100, "contractSize": 0.01,
                "entryPrice": 60000, "markPrice": 60000, "leverage": 10,
                "marginMode": "isolated", "isolatedMargin": 6000,
            }
        ],
        "leverageTiers": {SYM: [{"minNotional": 0, "maxNotional": None, "maintenanceMarginRate": 0.01}]},
    }  # fmt: skip
    doc.update(top)
    return doc


def published_long_lp(ep: float, margin: float, q: float, mmr: float, fee: float) -> float:
    """OKX / Gate isolated long, the published condition solved for the mark:
    LP = (EP − M/Q) / (1 − (MMR + fee)) (see riskguard/margin/okx.py for the sources)."""
    return (ep - margin / q) / (1 - (mmr + fee))


GUARD = Guard.from_preset("default")


def pos(doc: dict):
    return GUARD.metrics(doc).position(SYM)


def test_the_accounts_rate_replaces_the_default_and_is_reported():
    base = pos(okx())
    assert (base.closeFeeRate, base.closeFeeRateSource) == (0.0005, "default")
    vip = pos(okx(takerFeeRate=0.0002))
    assert (vip.closeFeeRate, vip.closeFeeRateSource) == (0.0002, "account")
    assert vip.liquidationPrice == pytest.approx(published_long_lp(60000, 6000, 1.0, 0.01, 0.0002))
    assert base.liquidationPrice == pytest.approx(published_long_lp(60000, 6000, 1.0, 0.01, 0.0005))
    assert vip.liquidationPrice < base.liquidationPrice  # a lower fee: further from the mark


def test_a_symbols_rate_overrides_the_accounts():
    doc = okx(takerFeeRate=0.0006)
    doc["markets"] = {SYM: {"markPrice": 60000, "takerFeeRate": 0.0002}}
    p = pos(doc)
    assert (p.closeFeeRate, p.closeFeeRateSource) == (0.0002, "market")
    assert p.liquidationPrice == pytest.approx(published_long_lp(60000, 6000, 1.0, 0.01, 0.0002))


@pytest.mark.parametrize("exchange", ["gate", "bingx"])
def test_gate_and_bingx_take_the_rate_too(exchange):
    p = pos(okx(exchange, takerFeeRate=0.0007))
    assert (p.closeFeeRate, p.closeFeeRateSource) == (0.0007, "account")


def test_exchanges_without_a_fee_in_the_trigger_ignore_it():
    plain = pos(okx("binance"))
    taxed = pos(okx("binance", takerFeeRate=0.0007))
    assert (taxed.closeFeeRate, taxed.closeFeeRateSource) == (0.0, "none")
    assert taxed.liquidationPrice == plain.liquidationPrice


def test_the_rules_judge_with_the_accounts_rate():
    # the decision's metrics (what every rule reads) use the same rate as guard.metrics
    d = GUARD.check(okx(takerFeeRate=0.0002))
    assert d.metrics.position(SYM).liquidationPrice == pytest.approx(
        published_long_lp(60000, 6000, 1.0, 0.01, 0.0002)
    )


def test_a_rate_in_percent_is_refused_with_its_path():
    with pytest.raises(SnapshotError, match=r"\$\.takerFeeRate.*outside"):
        GUARD.metrics(okx(takerFeeRate=5))
    d = GUARD.check(okx(takerFeeRate=5))  # the engine fails closed on it
    assert d.decision == "deny" and "METRICS_ERROR" in {v.code for v in d.violations}


@given(
    fee=st.floats(0, 0.005),
    lev=st.floats(2, 50),
    mmr=st.sampled_from([0.004, 0.01, 0.02]),
)
def test_lp_follows_the_published_formula_for_any_rate(fee, lev, mmr):
    doc = okx(takerFeeRate=fee)
    doc["positions"][0]["isolatedMargin"] = 60000 / lev
    doc["leverageTiers"][SYM][0]["maintenanceMarginRate"] = mmr
    p = pos(doc)
    want = published_long_lp(60000, 60000 / lev, 1.0, mmr, fee)
    if want <= 0:
        assert p.liquidationPrice is None
    else:
        assert p.liquidationPrice == pytest.approx(want, rel=1e-9)


def test_metrics_command_shows_the_rate(tmp_path):
    f = tmp_path / "okx.json"
    f.write_text(json.dumps(okx(takerFeeRate=0.0002)))
    r = run_cli("metrics", str(f), "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["positions"][0]
    assert (p["closeFeeRate"], p["closeFeeRateSource"]) == (0.0002, "account")
    r = run_cli("metrics", str(f))
    assert "fee 0.02 % (account)" in r.stdout
    bad = copy.deepcopy(okx(takerFeeRate=5))
    f.write_text(json.dumps(bad))
    r = run_cli("metrics", str(f))
    assert r.returncode == 2 and "$.takerFeeRate" in r.stderr and "Traceback" not in r.stderr
