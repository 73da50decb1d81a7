"""Multi-collateral balances from ccxt's recorded unified accounts (issue 18).

ccxt's real classes, HTTP answered from the recorded bodies (``tests/ccxt_recorded.py``).
Expected amounts and prices are computed here from the raw bodies in the fixtures, not
from the mapping: amount = the coin's cash without uPnL, price = its USD value over its
equity, divided by the settle coin's (USD per USDT). No payload carries a per-coin
collateral ratio the mapping trusts here (OKX's acctLv is absent from the recording), so
every non-settle coin counts at 0 and the decision warns INPUT_COLLATERAL_RATIO_UNKNOWN.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ccxt")

from riskguard import Guard
from riskguard.contrib.ccxt.builder import SnapshotBuilder
from tests.ccxt_recorded import load_fixture, recorded_exchange


def _body(name: str, path: str) -> dict:
    [r] = [r for r in load_fixture(name)["routes"] if r["path"] == path]
    return r["response"]


def _expected(rows, coin_key, amount, usd, qty, settle="USDT"):
    """{coin: (amount, price in settle)} from raw rows, the settle coin at price 1."""
    per_usd = {r[coin_key]: float(r[usd]) / float(r[qty]) for r in rows if float(r[qty])}
    out = {}
    for r in rows:
        a = float(r[amount]) if not callable(amount) else amount(r)
        if a == 0 and r[coin_key] != settle:
            continue
        px = 1.0 if r[coin_key] == settle else per_usd[r[coin_key]] / per_usd.get(settle, 1.0)
        out[r[coin_key]] = (a, px)
    return out


def _snapshot(name: str):
    ex, _ = recorded_exchange(name)
    return SnapshotBuilder(ex, ohlcv=False).fetch()


CASES = {
    "bybit_v5": lambda: _expected(
        _body("bybit_v5", "/v5/account/wallet-balance")["result"]["list"][0]["coin"],
        "coin", "walletBalance", "usdValue", "equity",
    ),
    "okx_recorded": lambda: _expected(
        _body("okx_recorded", "/api/v5/account/balance")["data"][0]["details"],
        "ccy", "cashBal", "eqUsd", "eq",
    ),
    "bitget_uta": lambda: _expected(
        _body("bitget_uta", "/api/v3/account/assets")["data"]["assets"],
        "coin", lambda r: float(r["balance"]) - float(r["debt"]), "usdValue", "equity",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_unified_accounts_carry_every_coin_with_amount_and_price(name):
    snap = _snapshot(name)
    want = CASES[name]()
    got = {b.coin: (b.amount, b.price) for b in snap.balances}
    assert set(got) == set(want)
    for coin, (amount, price) in want.items():
        assert got[coin][0] == pytest.approx(amount, rel=1e-12), coin
        assert got[coin][1] == pytest.approx(price, rel=1e-12), coin
    ratios = {b.coin: b.collateralRatio for b in snap.balances}
    assert ratios.pop("USDT") == 1.0  # the settle cash counts as walletBalance did
    assert set(ratios.values()) == {0.0}  # no ratio in the payload: counted at 0
    # the settle cash is unchanged, so the collateral value is exactly it
    m = Guard.from_preset("default").metrics(snap)
    assert m.equity == pytest.approx(
        snap.walletBalance + sum(p.contracts * p.contractSize * (p.markPrice - p.entryPrice)
                                 for p in snap.positions), abs=1e-9)  # fmt: skip
    # ... and the decision says the collateral was not counted, coin by coin
    d = Guard.from_preset("default").check(snap)
    warned = {
        v.context["coin"]: v for v in d.violations if v.code == "INPUT_COLLATERAL_RATIO_UNKNOWN"
    }
    assert set(warned) == set(want) - {"USDT"}
    assert {v.severity for v in warned.values()} == {"warning"}
    assert all(v.context["missing"] == "collateralRatio" for v in warned.values())


def test_okx_btc_collateral_is_no_longer_invisible():
    """The recorded OKX account: 0.000259 USDT cash against 1.06 BTC (eqUsd ~125k)."""
    snap = _snapshot("okx_recorded")
    [btc] = [b for b in snap.balances if b.coin == "BTC"]
    assert btc.amount == 1.06126645222
    usd_per_usdt = 0.0002588348194 / 0.000258796  # the USDT row's eqUsd / eq
    # amount × price × USD per USDT = the BTC row's eqUsd (its eq equals its cashBal)
    assert btc.amount * btc.price * usd_per_usdt == pytest.approx(125092.85636955927, rel=1e-12)
    assert snap.walletBalance == 0.000258796


@pytest.mark.parametrize("name", ["okx", "binanceusdm"])
def test_single_currency_accounts_are_unchanged(name):
    snap = _snapshot(name)
    assert snap.balances == ()
    assert "collateralUnknown" not in snap.extra
    d = Guard.from_preset("default").check(snap)
    assert "INPUT_COLLATERAL_RATIO_UNKNOWN" not in {v.code for v in d.violations}


def test_okx_ratio_from_disEq_only_in_a_multi_currency_mode():
    """acctLv 3 (multi-currency margin): OKX's discounted equity disEq/eqUsd is the ratio;
    acctLv 2 (single-currency): other coins do not margin the swap, no balances."""
    from riskguard.contrib.ccxt.mapping import collateral_balances

    body = _body("okx_recorded", "/api/v5/account/balance")
    btc = next(d for d in body["data"][0]["details"] if d["ccy"] == "BTC")
    for lv, expect in (("3", float(btc["disEq"]) / float(btc["eqUsd"])), ("2", None)):
        info = {**body, "data": [{**body["data"][0], "acctLv": lv}]}
        got = collateral_balances("okx", {"info": info}, "USDT", wallet=0.000258796)
        if expect is None:
            assert got is None
            continue
        balances, unknown, src = got
        assert unknown == [] and "disEq" in src
        [b] = [b for b in balances if b["coin"] == "BTC"]
        assert b["collateralRatio"] == pytest.approx(expect, rel=1e-12)


def test_binance_multi_assets_prices_from_tickers():
    """Binance's account body with multiAssetsMargin true and a BTC asset row (after
    Binance's documented GET /fapi/v3/account); BTC priced from the ticker ccxt fetched."""
    from riskguard.contrib.ccxt.mapping import collateral_balances

    body = _body("binanceusdm", "/fapi/v3/account")
    usdt = body["assets"][0]
    info = {**body, "multiAssetsMargin": True,
            "assets": [usdt, {**usdt, "asset": "BTC", "walletBalance": "0.5"},
                       {**usdt, "asset": "BNB", "walletBalance": "2"}]}  # fmt: skip
    tickers = {"BTC/USDT:USDT": {"markPrice": 60000.0}}
    balances, unknown, _ = collateral_balances(
        "binanceusdm", {"info": info}, "USDT", tickers, wallet=31.022612
    )
    assert {b["coin"]: (b["amount"], b["price"]) for b in balances} == {
        "USDT": (31.022612, 1.0),
        "BTC": (0.5, 60000.0),
    }
    assert {(u["coin"], u["missing"]) for u in unknown} == {
        ("BTC", "collateralRatio"),
        ("BNB", "price"),
    }
    # multiAssetsMargin false (the recorded body): single-asset mode, nothing emitted
    assert collateral_balances("binanceusdm", {"info": body}, "USDT", tickers) is None


def test_a_liability_is_priced_and_an_unpriced_one_refused():
    """Bybit reports a borrowed coin with negative walletBalance, equity and usdValue: its
    price is still usdValue / equity, and it counts at ratio 1 (a debt). Binance gives no
    price without a ticker: a debt left out would look safer, so the mapping refuses."""
    from riskguard.contrib.ccxt.mapping import collateral_balances
    from riskguard.model.balances import Balance

    body = _body("bybit_v5", "/v5/account/wallet-balance")
    acct = body["result"]["list"][0]
    usdc = next(c for c in acct["coin"] if c["coin"] == "USDC")
    debt = {**usdc, "walletBalance": "-100", "equity": "-100", "usdValue": "-100.05"}
    info = {**body, "result": {"list": [{**acct, "coin": [debt]}]}}
    balances, unknown, _ = collateral_balances("bybit", {"info": info}, "USDT", wallet=50.0)
    by = {b["coin"]: b for b in balances}
    assert by["USDC"]["amount"] == -100.0
    assert by["USDC"]["price"] == pytest.approx(1.0005, rel=1e-12)
    assert unknown == []  # a ratio applies only to positive balances
    b = Balance("USDC", by["USDC"]["amount"], by["USDC"]["price"], by["USDC"]["collateralRatio"])
    assert b.collateral_value() == pytest.approx(-100.05, rel=1e-12)

    bn = _body("binanceusdm", "/fapi/v3/account")
    owed = {**bn, "multiAssetsMargin": True,
            "assets": [bn["assets"][0], {**bn["assets"][0], "asset": "BNB", "walletBalance": "-2"}]}  # fmt: skip
    with pytest.raises(ValueError, match="owes 2 BNB"):
        collateral_balances("binanceusdm", {"info": owed}, "USDT", {}, wallet=31.0)


def test_cli_check_warns_on_the_built_snapshot(tmp_path):
    """The snapshot the builder wrote, as a file, through ``riskguard check --json``."""
    import json
    import subprocess
    import sys

    ex, _ = recorded_exchange("bitget_uta")
    snap = SnapshotBuilder(ex, ohlcv=False).fetch()
    from riskguard.model.types import snapshot_to_dict

    path = tmp_path / "bitget.json"
    path.write_text(json.dumps(snapshot_to_dict(snap)), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "riskguard", "check", "-p", "policies/default.yaml",
         "-s", str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    warned = sorted(
        v["context"]["coin"]
        for v in doc["violations"]
        if v["code"] == "INPUT_COLLATERAL_RATIO_UNKNOWN"
    )
    assert warned == ["BTC", "ETH", "SOL", "USDC", "WBTC"]
