"""The paper exchange: ccxt surface, refusals, round trip through snapshot_from_ccxt,
riskguard's ccxt wrappers against it, and liquidation exactly where the margin models say."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from riskguard import Guard
from riskguard.engine.plugins import get_registry
from riskguard.margin.metrics import compute_metrics
from riskguard.model.snapshot import build_snapshot, snapshot_to_dict

from .conftest import EXAMPLES, POLICIES

ccxt = pytest.importorskip("ccxt")

from riskguard.contrib.ccxt_guard import (  # noqa: E402
    AsyncGuardedExchange,
    CcxtExecutor,
    GuardedExchange,
    OrderRejected,
    SnapshotBuilder,
)
from riskguard.paper import AsyncPaperExchange, PaperExchange  # noqa: E402

TWO_CROSS = EXAMPLES / "snapshots" / "binance-two-cross.json"
DEFAULT = POLICIES / "default.yaml"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
#: every bundled margin model: the property tests run over all of them
MODELS = tuple(sorted(get_registry().margin_models))


def doc(model: str = "binance", **over) -> dict:
    d = json.loads(TWO_CROSS.read_text())
    d.pop("description", None)
    d["exchange"] = model
    d.update(over)
    return d


def isolated_doc(model: str = "binance") -> dict:
    d = doc(model)
    d["positions"][1].update(marginMode="isolated", isolatedMargin=650.0)
    return d


def builder_snapshot(ex: PaperExchange):
    return SnapshotBuilder(ex, account=ex.account.name, clock=lambda: ex.now / 1000.0).fetch()


def _comparable(snap) -> dict:
    d = snapshot_to_dict(snap)
    for p in d["positions"]:
        p.pop("liquidationPrice", None)  # the exchange's own figure, compared separately
    return {k: d.get(k) for k in ("walletBalance", "positions", "openOrders", "leverageTiers")}


# ----------------------------------------------------------------- round trip


@pytest.mark.parametrize("model", MODELS)
def test_snapshot_from_ccxt_reads_back_what_the_paper_exchange_holds(model):
    ex = PaperExchange(isolated_doc(model))
    ex.create_order(BTC, "limit", "buy", 0.01, 50000.0)  # a resting entry is an open order
    for i, px in enumerate((61200.0, 60900.0, 61050.0)):
        ex.step({BTC: px, ETH: 2950.0 - i}, timestamp=ex.now + 60_000)
    held = ex.snapshot()
    read = builder_snapshot(ex)
    assert _comparable(read) == _comparable(held)
    assert read.openOrders and read.openOrders[0].price == 50000.0
    # the candles the path recorded come back through fetch_ohlcv
    assert read.markets[BTC].candles == held.markets[BTC].candles
    assert [c[4] for c in held.markets[BTC].candles][-3:] == [61200.0, 60900.0, 61050.0]
    # the liquidation prices the exchange reports are riskguard's own
    m_held = compute_metrics(held, ex.model)
    for p, pm in zip(read.positions, m_held.positions, strict=True):
        assert p.liquidationPrice == pytest.approx(pm.liquidationPrice, rel=1e-12)
    assert compute_metrics(read, ex.model).equity == pytest.approx(m_held.equity, rel=1e-12)


def test_async_paper_exchange_has_ccxt_async_shape_and_shares_the_book():
    ex = PaperExchange(doc())
    aex = AsyncPaperExchange(paper=ex)

    async def go():
        async with aex:
            bal = await aex.fetch_balance()
            pos = await aex.fetch_positions()
            await aex.create_order(BTC, "market", "sell", 0.05, None, {"reduceOnly": True})
            return bal, pos, await aex.fetch_positions([BTC])

    bal, pos, after = asyncio.run(go())
    assert bal["USDT"]["total"] == pytest.approx(10350.0)
    assert {p["symbol"] for p in pos} == {BTC, ETH}
    assert after[0]["contracts"] == pytest.approx(0.20)
    assert ex.account.positions[BTC].contracts == pytest.approx(0.20)  # one book
    snap = asyncio.run(SnapshotBuilder(aex, account="main").afetch())
    assert _comparable(snap) == _comparable(ex.snapshot())


# ----------------------------------------------------------------- refusals


def test_refusals_are_ccxt_exceptions_with_binance_codes():
    ex = PaperExchange(doc())
    with pytest.raises(ccxt.OperationRejected, match='"code":-4048'):
        ex.set_margin_mode("isolated", BTC)
    with pytest.raises(ccxt.InsufficientFunds, match='"code":-2019'):
        ex.create_order(BTC, "market", "buy", 100.0)  # 6.1M notional at 10x on 10k
    with pytest.raises(ccxt.InvalidOrder, match='"code":-2022'):
        ex.create_order(BTC, "market", "buy", 0.1, None, {"reduceOnly": True})  # long: buy adds
    with pytest.raises(ccxt.OrderImmediatelyFillable, match='"code":-2021'):
        ex.create_order(BTC, "market", "sell", 0.1, None, {"stopLossPrice": 62000.0})
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("999", BTC)
    with pytest.raises(ccxt.BadSymbol):
        ex.fetch_ticker("DOGE/USDT:USDT")
    # no position, no open order: the switch goes through and new orders open isolated
    ex.set_margin_mode("isolated", "SOL/USDT:USDT") if "SOL/USDT:USDT" in ex.markets else None
    ex.step({"SOL/USDT:USDT": 150.0})
    ex.set_margin_mode("isolated", "SOL/USDT:USDT")
    ex.set_leverage(5, "SOL/USDT:USDT")
    ex.create_order("SOL/USDT:USDT", "market", "buy", 10.0)
    p = ex.fetch_position("SOL/USDT:USDT")
    assert p["marginMode"] == "isolated" and p["info"]["isolatedWallet"] == repr(300.0)
    assert ex.add_margin("SOL/USDT:USDT", 100.0)["total"] == pytest.approx(400.0)
    with pytest.raises(ccxt.InsufficientFunds, match='"code":-4051'):
        ex.reduce_margin("SOL/USDT:USDT", 200.0)  # 300 is the position's initial margin


def test_other_models_refuse_from_their_capability_facts():
    ex = PaperExchange(doc("okx"))  # OKX picks the mode per order: a switch is no refusal
    assert ex.set_margin_mode("isolated", BTC)["marginMode"] == "isolated"
    assert ex.account.positions[BTC].marginMode == "isolated"
    ex = PaperExchange(doc("bybit"))
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "market", "buy", 100.0)


# ----------------------------------------------------------------- fills


def test_fills_fees_slippage_stops_and_limits():
    ex = PaperExchange(doc(), taker_fee=0.001, maker_fee=0.0, slippage_bps=10)
    w0 = ex.account.wallet
    ex.create_order(BTC, "market", "sell", 0.05, None, {"reduceOnly": True})
    px = 61000.0 * (1 - 0.001)
    fee = 0.05 * px * 0.001
    assert ex.account.wallet == pytest.approx(w0 + 0.05 * (px - 60000.0) - fee)
    assert ex.account.fees == pytest.approx(fee)
    # a resting limit fills at its price when the mark reaches it (maker: no fee here)
    o = ex.create_order(ETH, "limit", "buy", 1.0, 2900.0)
    assert ex.fetch_order(o["id"])["status"] == "open"
    ex.step({ETH: 2899.0, BTC: 61000.0}, timestamp=ex.now + 60_000)
    assert ex.fetch_order(o["id"])["status"] == "closed"
    assert ex.account.positions[ETH].contracts == pytest.approx(1.0)
    # the BTC stop (57,000) fires on the mark and closes the rest; the take-profit expires
    ev = ex.step({BTC: 56000.0}, timestamp=ex.now + 60_000)
    assert [e["kind"] for e in ev if e["type"] == "fill"] == ["stop_loss"]
    assert BTC not in ex.account.positions
    assert not ex.fetch_open_orders(BTC)


# ----------------------------------------------------------------- riskguard's wrappers


def test_guarded_exchange_denies_before_the_book_and_resizes_to_max_allowed():
    ex = PaperExchange(doc())
    guard = Guard.from_file(DEFAULT)
    g = GuardedExchange(ex, guard, leverage=10)
    before = copy.deepcopy(ex.fetch_open_orders())
    with pytest.raises(OrderRejected):
        g.create_order(BTC, "market", "buy", 5.0)
    assert ex.fetch_open_orders() == before and ex.account.positions[BTC].contracts == 0.25
    g = GuardedExchange(ex, guard, leverage=10, resize=True)
    g.create_order(BTC, "market", "buy", 0.3)
    allowed = g.last_decision.maxAllowedAmount
    assert g.last_decision.decision == "resize" and 0 < allowed < 0.3
    assert ex.account.positions[BTC].contracts == pytest.approx(0.25 + allowed, abs=1e-8)


def test_async_guarded_exchange_against_the_async_paper_exchange():
    aex = AsyncPaperExchange(doc())
    g = AsyncGuardedExchange(aex, Guard.from_file(DEFAULT), leverage=10)

    async def go():
        with pytest.raises(OrderRejected):
            await g.create_order(BTC, "market", "buy", 5.0)
        return await g.create_order(ETH, "market", "buy", 0.5, None, {"reduceOnly": True})

    out = asyncio.run(go())
    assert out["status"] == "closed"
    assert aex.account.positions[ETH].contracts == pytest.approx(1.5)


def test_executor_reports_the_4048_refusal_and_places_the_stop():
    d = doc()
    for p in d["positions"]:
        p.pop("stopLossPrice")
    ex = PaperExchange(d)
    decision = Guard.from_file(DEFAULT).check(ex.snapshot())
    assert {a.type for a in decision.actions} >= {"set_stop_loss"}
    run = CcxtExecutor(
        ex, apply=("set_stop_loss", "switch_margin_mode"), attempt_infeasible=True
    ).execute(decision)
    stops = [r for r in run.results if r.action.type == "set_stop_loss"]
    assert stops and all(r.status == "applied" for r in stops)
    held = ex.snapshot()
    for r in stops:
        assert (
            held.positions[[p.symbol for p in held.positions].index(r.action.symbol)].stopLossPrice
            == r.action.params["price"]
        )
    # a forced margin-mode switch with a position open comes back as a refusal with -4048
    from riskguard import Action

    forced = replace(
        decision,
        actions=(Action("switch_margin_mode", "test", BTC, {"to": "isolated"}, "error"),),
    )
    run = CcxtExecutor(ex, apply=("switch_margin_mode",), attempt_infeasible=True).execute(forced)
    (r,) = run.results
    assert r.status == "refused" and r.exchangeCode == "-4048" and r.error == "OperationRejected"


# ----------------------------------------------------------------- liquidation = the model


def _tiers(draw) -> list[dict]:
    n = draw(st.integers(1, 3))
    floors = [0.0]
    for _ in range(n - 1):
        floors.append(floors[-1] + draw(st.floats(500.0, 50_000.0)))
    rates = sorted(draw(st.lists(st.floats(0.002, 0.05), min_size=n, max_size=n)))
    return [
        {"minNotional": floors[i], "maintenanceMarginRate": rates[i],
         **({"maxNotional": floors[i + 1]} if i + 1 < n else {})}
        for i in range(n)
    ]  # fmt: skip


@st.composite
def one_position(draw, mode: str):
    model = draw(st.sampled_from(MODELS))
    side = draw(st.sampled_from(["long", "short"]))
    entry = draw(st.floats(10.0, 100_000.0))
    lev = draw(st.floats(2.0, 50.0))
    contracts = draw(st.floats(0.01, 5.0)) * 1000.0 / entry * draw(st.floats(1.0, 50.0))
    p = {"symbol": BTC, "side": side, "contracts": contracts, "entryPrice": entry,
         "markPrice": entry, "leverage": lev, "marginMode": mode}  # fmt: skip
    notional = contracts * entry
    if mode == "isolated":
        p["isolatedMargin"] = notional / lev * draw(st.floats(1.0, 2.0))
        wallet = p["isolatedMargin"] + draw(st.floats(0.0, 5000.0))
    else:
        wallet = notional / lev * draw(st.floats(1.0, 3.0))
    d = {"schemaVersion": 1, "account": "a", "exchange": model, "timestamp": 0,
         "walletBalance": wallet, "positions": [p]}  # fmt: skip
    if draw(st.booleans()):
        d["leverageTiers"] = {BTC: _tiers(draw)}
    # mostly adverse moves (so most paths reach liquidation), some favourable ones
    steps = draw(st.lists(st.floats(-0.03, 0.08), min_size=5, max_size=40))
    return d, steps


def _path(entry: float, steps: list[float], side: str) -> list[float]:
    out, px = [], entry
    for r in steps:
        px *= 1.0 - r if side == "long" else 1.0 + r
        out.append(px)
    return out


@given(one_position("isolated"), st.sampled_from([0.0, 0.0006]))
def test_isolated_position_liquidated_on_the_first_step_past_riskguards_price(case, fee):
    d, steps = case
    ex = PaperExchange(d, taker_fee=fee)  # OKX, Gate, BingX count it in their trigger
    lp = compute_metrics(ex.snapshot(), ex.model).positions[0].liquidationPrice
    assume(lp is not None)
    side = d["positions"][0]["side"]
    path = _path(d["positions"][0]["entryPrice"], steps, side)
    assume(all(abs(px - lp) > 1e-9 * lp for px in path))
    crossed = [px <= lp if side == "long" else px >= lp for px in path]
    iso = d["positions"][0]["isolatedMargin"]
    for k, px in enumerate(path):
        ev = ex.step({BTC: px}, timestamp=(k + 1) * 60_000)
        liq = [e for e in ev if e["type"] == "liquidation"]
        if crossed[k] and not any(crossed[:k]):
            assert liq and liq[0]["scope"] == "isolated"
            assert ex.account.wallet == pytest.approx(d["walletBalance"] - iso, abs=1e-9 * iso)
            break
        assert not liq, (k, px, lp)


@given(
    one_position("cross"),
    st.floats(0.1, 3.0),
    st.sampled_from(["long", "short"]),
    st.sampled_from([0.0, 0.0006]),
)
def test_cross_pool_liquidated_when_margin_balance_reaches_maintenance(
    case, eth_size, eth_side, fee
):
    d, steps = case
    d["positions"].append(
        {"symbol": ETH, "side": eth_side, "contracts": eth_size, "entryPrice": 3000.0,
         "markPrice": 3000.0, "leverage": 10.0, "marginMode": "cross"}
    )  # fmt: skip
    d["walletBalance"] += eth_size * 300.0
    ex = PaperExchange(d, taker_fee=fee)
    side = d["positions"][0]["side"]
    path = _path(d["positions"][0]["entryPrice"], steps, side)
    eth = 3000.0
    for k, px in enumerate(path):
        eth *= 1.0 - steps[k] / 2  # the other leg moves too (against or with, by its side)
        # riskguard's figures at the new marks, before the exchange moves
        held = ex.snapshot()
        moved = replace(
            held,
            positions=tuple(
                replace(p, markPrice=px if p.symbol == BTC else eth) for p in held.positions
            ),
        )
        m = compute_metrics(moved, ex.model)
        # the pool's margin balance against its maintenance margin (+ the model's closing fee)
        balance = m.crossWalletBalance + sum(p.unrealizedPnl for p in m.positions)
        need = sum(
            (p.maintenanceMargin or 0.0) + ex.model.closeFeeRate * p.notional for p in m.positions
        )
        assume(abs(balance - need) > 1e-9 * max(abs(need), 1.0))
        past = balance <= need
        # and the liquidation price the metrics give BTC (ETH held at its new mark) says the
        # same wherever it exists: crossed exactly when the pool is past maintenance
        lp = m.positions[0].liquidationPrice
        if lp is not None:
            assume(abs(px - lp) > 1e-9 * lp)
            assert (px <= lp if side == "long" else px >= lp) == past, (k, px, lp)
        ev = ex.step({BTC: px, ETH: eth}, timestamp=(k + 1) * 60_000)
        liq = [e for e in ev if e["type"] == "liquidation"]
        assert bool(liq) == past, (k, px, lp, ev)
        if liq:
            assert liq[0]["scope"] == "cross" and not ex.account.positions
            assert ex.account.wallet == 0.0
            break


def test_every_bundled_model_is_covered():
    known = {"binance", "bybit", "bybit-classic", "okx", "gate", "bingx", "mexc", "weex", "generic"}
    assert known <= set(MODELS)


def test_a_gap_through_stop_and_liquidation_is_a_liquidation():
    d = isolated_doc()
    d["positions"][1]["stopLossPrice"] = 3100.0
    ex = PaperExchange(d)
    lp = compute_metrics(ex.snapshot(), ex.model).position(ETH).liquidationPrice
    ev = ex.step({ETH: lp * 1.05, BTC: 61000.0}, timestamp=ex.now + 60_000)
    assert [e["type"] for e in ev] == ["liquidation"]
    assert ex.account.liquidations[0]["loss"] == pytest.approx(650.0)


def test_paper_snapshot_is_a_valid_snapshot_document():
    ex = PaperExchange(doc())
    ex.step({BTC: 60000.0, ETH: 3000.0}, timestamp=ex.now + 60_000)
    again = build_snapshot(snapshot_to_dict(ex.snapshot()))
    assert again.walletBalance == ex.account.wallet


@given(st.lists(st.floats(0.9, 1.1), min_size=2, max_size=80), st.floats(1.0, 1e5))
def test_incremental_market_stats_equal_riskguards_volatility(moves, start):
    from riskguard.model.volatility import atr_pct, realized_vol_pct
    from riskguard.paper.state import MarketStats

    candles, px = [], start
    for i, m in enumerate(moves):
        o, px = px, px * m
        candles.append([i, o, max(o, px) * 1.001, min(o, px) * 0.999, px, 0.0])
    st_ = MarketStats()
    for c in candles:
        st_.add(c[2], c[3], c[4])
    want = atr_pct(candles, 14)
    assert (st_.atr_pct is None) == (want is None)
    if want is not None:
        assert st_.atr_pct == pytest.approx(want, rel=1e-12)
    rv = realized_vol_pct(candles, 20)
    assert (st_.realized_vol_pct is None) == (rv is None)
    if rv is not None:
        # a running sum of squares: exact up to ~1e-7 percentage points of cancellation
        assert st_.realized_vol_pct == pytest.approx(rv, rel=1e-6, abs=1e-6)


def test_funding_is_paid_when_a_funding_time_is_crossed():
    ex = PaperExchange(doc(), funding_rate=0.0001)
    w0 = ex.account.wallet
    t8 = (ex.now // 28_800_000 + 1) * 28_800_000  # the next 00/08/16 UTC
    assert ex.step({BTC: 61000.0, ETH: 2950.0}, timestamp=t8 - 60_000) == []
    ev = ex.step({BTC: 61000.0, ETH: 2950.0}, timestamp=t8)
    assert sorted(e["symbol"] for e in ev if e["type"] == "funding") == [BTC, ETH]
    # the long pays, the short receives: 0.25 × 61,000 × 1e-4 − 2 × 2,950 × 1e-4
    assert ex.account.wallet == pytest.approx(w0 - 1.525 + 0.59)
    assert ex.account.funding == pytest.approx(1.525 - 0.59)


def test_several_accounts_share_the_market_and_keep_their_books():
    a, b = doc(), isolated_doc()
    ex = PaperExchange({"a": a, "b": b})
    assert set(ex.accounts) == {"a", "b"} and ex.account.name == "a"
    ex.create_order(BTC, "market", "sell", 0.25, None, {"reduceOnly": True, "account": "b"})
    assert BTC in ex.accounts["a"].positions and BTC not in ex.accounts["b"].positions
    vb = ex.view("b")
    assert [p["symbol"] for p in vb.fetch_positions()] == [ETH]
    assert vb.fetch_positions()[0]["marginMode"] == "isolated"
    with pytest.raises(ccxt.BadRequest):
        ex.fetch_balance({"account": "c"})
    # one mark moves both books
    lp = compute_metrics(ex.snapshot("b"), ex.model).position(ETH).liquidationPrice
    ev = ex.step({ETH: lp * 1.01, BTC: 61000.0}, timestamp=ex.now + 60_000)
    assert [(e["type"], e["account"]) for e in ev if e["type"] == "liquidation"] == [
        ("liquidation", "b")
    ]


@given(
    st.sampled_from(["long", "short"]),
    st.floats(1000.0, 100_000.0),
    st.floats(2.0, 50.0),
    st.integers(1, 500),
    st.lists(st.floats(-0.03, 0.08), min_size=5, max_size=40),
)
def test_inverse_isolated_liquidation_matches_binance_coin_m(side, entry, lev, contracts, steps):
    sym = "BTC/USD:BTC"
    margin = contracts * 100 / entry / lev  # coin
    d = {"schemaVersion": 1, "account": "c", "exchange": "binance", "timestamp": 0,
         "settle": "BTC", "walletBalance": margin * 2,
         "positions": [{"symbol": sym, "side": side, "contracts": float(contracts),
                        "contractSize": 100.0, "inverse": True, "entryPrice": entry,
                        "markPrice": entry, "leverage": lev, "marginMode": "isolated",
                        "isolatedMargin": margin}]}  # fmt: skip
    ex = PaperExchange(d, taker_fee=0.0)
    lp = compute_metrics(ex.snapshot(), ex.model).positions[0].liquidationPrice
    assume(lp is not None)
    path = _path(entry, steps, side)
    assume(all(abs(px - lp) > 1e-9 * lp for px in path))
    crossed = [px <= lp if side == "long" else px >= lp for px in path]
    for k, px in enumerate(path):
        liq = [
            e for e in ex.step({sym: px}, timestamp=(k + 1) * 60_000) if e["type"] == "liquidation"
        ]
        first = crossed[k] and not any(crossed[:k])
        assert bool(liq) == first, (k, px, lp)
        if liq:
            assert ex.account.wallet == pytest.approx(margin, rel=1e-9)
            break


@given(one_position("cross"), st.booleans())
def test_the_equity_the_simulator_reads_each_step_is_the_exchanges(case, stop):
    """``acct.wallet + acct.upnl`` (kept by the liquidation check) equals ``equity()`` after
    every step: fills, stops, liquidations and the last position closing included."""
    d, steps = case
    p = d["positions"][0]
    if stop:  # a stop halfway to where the path goes
        p["stopLossPrice"] = p["entryPrice"] * (0.97 if p["side"] == "long" else 1.03)
    ex = PaperExchange(d)
    for k, px in enumerate(_path(p["entryPrice"], steps, p["side"])):
        ex.step({BTC: px}, timestamp=(k + 1) * 60_000)
        acct = ex.account
        assert acct.wallet + acct.upnl == pytest.approx(ex.equity(), rel=1e-12, abs=1e-9)
        assert ex.equity() >= -1e-9 or acct.positions  # a closed book never shows debt


def test_the_package_imports_without_ccxt_and_says_what_to_install():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['ccxt'] = None\n"
        "import riskguard.paper, riskguard.paper.prices\n"
        "p = riskguard.paper.prices.gap({'BTC/USDT:USDT': 100.0})\n"
        "try:\n"
        "    riskguard.paper.PaperExchange()\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "pip install 'riskguard[paper]'" in r.stdout


# ----------------------------------------------------------------- hedge mode


def hedge_doc(model: str = "binance", *, long_: float = 0.3, short: float = 0.1, **over) -> dict:
    """One BTC long and one BTC short leg (cross) plus an ETH position, in hedge mode."""
    d = {"schemaVersion": 1, "account": "h", "exchange": model, "timestamp": 1_700_000_000_000,
         "walletBalance": 5000.0, "positionMode": "hedge",
         "positions": [
             {"symbol": BTC, "side": "long", "contracts": long_, "entryPrice": 60000.0,
              "markPrice": 60000.0, "leverage": 20.0, "marginMode": "cross"},
             {"symbol": BTC, "side": "short", "contracts": short, "entryPrice": 61000.0,
              "markPrice": 60000.0, "leverage": 20.0, "marginMode": "cross"},
             {"symbol": ETH, "side": "short", "contracts": 1.0, "entryPrice": 3000.0,
              "markPrice": 3000.0, "leverage": 10.0, "marginMode": "isolated",
              "isolatedMargin": 300.0},
         ]}  # fmt: skip
    d["leverageTiers"] = doc()["leverageTiers"]
    d.update(over)
    return d


def _legs(ex: PaperExchange) -> dict:
    return {(p.symbol, p.side): p.contracts for p in ex.account.positions.values()}


@pytest.mark.parametrize("model", MODELS)
def test_hedge_mode_round_trips_through_snapshot_from_ccxt(model):
    ex = PaperExchange(hedge_doc(model))
    ex.create_order(BTC, "limit", "sell", 0.02, 65000.0, {"positionSide": "SHORT"})  # opens
    ex.create_order(BTC, "market", "sell", 0.3, None, {"stopLossPrice": 55000.0,
                                                        "positionSide": "LONG"})  # fmt: skip
    ex.create_order(BTC, "market", "buy", 0.1, None, {"stopLossPrice": 64000.0,
                                                       "positionSide": "SHORT"})  # fmt: skip
    for i, px in enumerate((60500.0, 59800.0, 60100.0)):
        ex.step({BTC: px, ETH: 2990.0 + i}, timestamp=ex.now + 60_000)
    held = ex.snapshot()
    assert held.positionMode == "hedge"
    assert [(p.symbol, p.side) for p in held.positions] == [(BTC, "long"), (BTC, "short"),
                                                            (ETH, "short")]  # fmt: skip
    # each leg's stop is its own: the long's sells below, the short's buys above
    assert [p.stopLossPrice for p in held.positions[:2]] == [55000.0, 64000.0]
    rows = ex.fetch_positions()
    assert all(r["hedged"] is True for r in rows)
    assert [r["side"] for r in rows] == ["long", "short", "short"]
    if ex.id == "binanceusdm":
        assert [r["info"]["positionSide"] for r in rows] == ["LONG", "SHORT", "SHORT"]
        assert float(rows[1]["info"]["positionAmt"]) == -0.1
    if ex.id == "bybit":
        assert [r["info"]["positionIdx"] for r in rows] == [1, 2, 2]
    read = builder_snapshot(ex)
    assert read.positionMode == "hedge"
    assert _comparable(read) == _comparable(held)
    m_held = compute_metrics(held, ex.model)
    assert m_held.positionMode == "hedge"
    for p, pm in zip(read.positions, m_held.positions, strict=True):
        assert (p.liquidationPrice is None) == (pm.liquidationPrice is None)
        if pm.liquidationPrice is not None:
            assert p.liquidationPrice == pytest.approx(pm.liquidationPrice, rel=1e-12)
    assert compute_metrics(read, ex.model).equity == pytest.approx(m_held.equity, rel=1e-12)


@pytest.mark.parametrize(
    "leg_params",
    [
        lambda leg: {"positionSide": leg.upper()},  # Binance
        lambda leg: {"posSide": leg},  # OKX
        lambda leg: {"positionIdx": 1 if leg == "long" else 2},  # Bybit
    ],
    ids=["positionSide", "posSide", "positionIdx"],
)
def test_hedge_orders_open_and_close_their_own_leg_only(leg_params):
    ex = PaperExchange(hedge_doc())
    ex.create_order(BTC, "market", "sell", 0.05, None, leg_params("short"))  # adds to the short
    assert _legs(ex)[(BTC, "long")] == 0.3
    assert _legs(ex)[(BTC, "short")] == pytest.approx(0.15)
    # the short leg's entry is the average of both fills; the long's is untouched
    assert ex.account.position(BTC, "short").entryPrice == pytest.approx(
        (61000.0 * 0.1 + 60000.0 * 0.05) / 0.15
    )
    assert ex.account.position(BTC, "long").entryPrice == 60000.0
    # a buy larger than the short closes it and does not flip into (or add to) the long
    o = ex.create_order(BTC, "market", "buy", 0.5, None, leg_params("short"))
    assert o["filled"] == pytest.approx(0.15) and o["status"] == "closed"
    assert _legs(ex) == {(BTC, "long"): 0.3, (ETH, "short"): 1.0}
    # the short's PnL at the mark of 60,000: 0.1 × (61,000 − 60,000) + 0.05 × 0
    assert ex.account.realized == pytest.approx(100.0)
    # a sell on the long leg closes part of it; the short stays closed
    ex.create_order(BTC, "market", "sell", 0.1, None, leg_params("long"))
    assert _legs(ex)[(BTC, "long")] == pytest.approx(0.2) and (BTC, "short") not in _legs(ex)
    # closing an empty leg, and a reduce-only order that would open its leg: Binance -2022
    for side, leg, extra in (("buy", "short", {}), ("buy", "long", {"reduceOnly": True})):
        with pytest.raises(ccxt.InvalidOrder, match='"code":-2022'):
            ex.create_order(BTC, "market", side, 0.1, None, {**leg_params(leg), **extra})
    assert _legs(ex)[(BTC, "long")] == pytest.approx(0.2)


def test_hedge_leg_inferred_like_ccxt_hedged_and_position_side_mismatch_refused():
    ex = PaperExchange(hedge_doc())
    # ccxt's hedged flag: a reduce-only buy closes the short, a plain buy opens the long
    ex.create_order(BTC, "market", "buy", 0.04, None, {"hedged": True, "reduceOnly": True})
    ex.create_order(BTC, "market", "buy", 0.01, None, {"hedged": True})
    assert _legs(ex)[(BTC, "short")] == pytest.approx(0.06)
    assert _legs(ex)[(BTC, "long")] == pytest.approx(0.31)
    # the one-way side on a hedge-mode account, a leg on a one-way account: Binance -4061
    with pytest.raises(ccxt.OperationRejected, match='"code":-4061'):
        ex.create_order(BTC, "market", "buy", 0.01, None, {"positionSide": "BOTH"})
    oneway = PaperExchange(doc())
    with pytest.raises(ccxt.OperationRejected, match='"code":-4061'):
        oneway.create_order(BTC, "market", "buy", 0.01, None, {"positionSide": "LONG"})
    # both legs open: add_margin must name the leg (Binance: positionSide "must be sent")
    ex.set_margin_mode("isolated", ETH)  # (already isolated: no-op)
    with pytest.raises(ccxt.BadRequest):
        ex.add_margin(BTC, 10.0)
    # leverage is the symbol's: both legs take it
    ex.set_leverage(10, BTC)
    assert {p.leverage for p in ex.account.legs(BTC)} == {10.0}


def test_a_closed_legs_stops_expire_and_the_other_legs_stay():
    ex = PaperExchange(hedge_doc())
    ex.create_order(BTC, "market", "sell", 0.3, None, {"stopLossPrice": 55000.0,
                                                        "positionSide": "LONG"})  # fmt: skip
    ex.create_order(BTC, "market", "buy", 0.1, None, {"stopLossPrice": 64000.0,
                                                       "positionSide": "SHORT"})  # fmt: skip
    ev = ex.step({BTC: 64500.0, ETH: 3000.0}, timestamp=ex.now + 60_000)  # the short's stop
    assert [(e["type"], e["side"]) for e in ev] == [("fill", "buy")]
    assert (BTC, "short") not in _legs(ex) and _legs(ex)[(BTC, "long")] == 0.3
    left = ex.fetch_open_orders(BTC)
    assert [(o["side"], o["info"]["positionSide"], o["stopPrice"]) for o in left] == [
        ("sell", "LONG", 55000.0)
    ]


@st.composite
def hedged_pair(draw):
    model = draw(st.sampled_from(MODELS))
    net = draw(st.sampled_from(["long", "short"]))
    entry = draw(st.floats(100.0, 100_000.0))
    big = draw(st.floats(0.5, 5.0)) * 1000.0 / entry * draw(st.floats(1.0, 50.0))
    # the bigger leg at least 1.25× the smaller: the pair is net exposed (maintenance rates
    # and fees cannot turn the margin balance's slope), so "past the price" has one side
    small = big / draw(st.floats(1.25, 6.0))
    sizes = {net: big, ("short" if net == "long" else "long"): small}
    lev = draw(st.floats(2.0, 50.0))
    legs = [
        {"symbol": BTC, "side": side, "contracts": sizes[side],
         "entryPrice": entry * draw(st.floats(0.97, 1.03)), "markPrice": entry,
         "leverage": lev, "marginMode": "cross"}
        for side in ("long", "short")
    ]  # fmt: skip
    wallet = (big - small) * entry / lev * draw(st.floats(1.0, 3.0)) + small * entry / lev
    d = {"schemaVersion": 1, "account": "a", "exchange": model, "timestamp": 0,
         "walletBalance": wallet, "positionMode": "hedge", "positions": legs}  # fmt: skip
    if draw(st.booleans()):
        d["leverageTiers"] = {BTC: _tiers(draw)}
    steps = draw(st.lists(st.floats(-0.03, 0.08), min_size=5, max_size=40))
    return d, steps, net, entry


@given(hedged_pair(), st.sampled_from([0.0, 0.0006]))
def test_hedged_pair_liquidated_on_the_first_step_past_riskguards_price(case, fee):
    d, steps, net, entry = case
    ex = PaperExchange(d, taker_fee=fee)
    m = compute_metrics(ex.snapshot(), ex.model)
    lps = {pm.liquidationPrice for pm in m.positions}
    assert len(lps) == 1  # one price for both legs of a cross hedged pair
    (lp,) = lps
    assume(lp is not None and lp > 0)
    path = _path(entry, steps, net)
    assume(all(abs(px - lp) > 1e-9 * lp for px in path))
    crossed = [px <= lp if net == "long" else px >= lp for px in path]
    for k, px in enumerate(path):
        ev = ex.step({BTC: px}, timestamp=(k + 1) * 60_000)
        liq = [e for e in ev if e["type"] == "liquidation"]
        if crossed[k] and not any(crossed[:k]):
            event("liquidated")
            assert liq and liq[0]["scope"] == "cross"
            assert sorted(p["side"] for p in liq[0]["positions"]) == ["long", "short"]
            assert not ex.account.positions and ex.account.wallet == 0.0
            break
        assert not liq, (k, px, lp)


def test_executor_puts_a_hedged_accounts_stop_on_the_right_leg():
    d = hedge_doc()
    d["positions"] = d["positions"][:2]
    ex = PaperExchange(d)
    decision = Guard.from_file(DEFAULT).check(ex.snapshot())
    proposed = [a for a in decision.actions if a.type == "set_stop_loss"]
    assert proposed and all(a.positionSide in ("long", "short") for a in proposed)
    run = CcxtExecutor(ex, apply=("set_stop_loss",), min_severity="info").execute(decision)
    applied = [r for r in run.results if r.action.type == "set_stop_loss"]
    assert applied and all(r.status == "applied" for r in applied), run.to_dict()
    held = {p.side: p for p in ex.snapshot().positions}
    for r in applied:
        leg = r.action.positionSide
        assert held[leg].stopLossPrice == r.action.params["price"]
        # and the order sits on that leg's side of the book, closing it
        (o,) = [o for o in ex.fetch_open_orders(BTC) if o["info"]["positionSide"] == leg.upper()]
        assert o["side"] == ("sell" if leg == "long" else "buy") and o["reduceOnly"]
    # the stop of the long fills and closes the long only
    long_stop = held["long"].stopLossPrice
    ex.step({BTC: long_stop * 0.999}, timestamp=ex.now + 60_000)
    assert (BTC, "long") not in _legs(ex) and _legs(ex)[(BTC, "short")] == 0.1


@pytest.mark.parametrize("model", MODELS)
def test_isolated_hedge_legs_liquidate_one_at_a_time_at_riskguards_price(model):
    d = hedge_doc(model)
    for p, iso in zip(d["positions"][:2], (900.0, 310.0), strict=True):
        p.update(marginMode="isolated", isolatedMargin=iso)
    ex = PaperExchange(d)
    m = compute_metrics(ex.snapshot(), ex.model)
    lp_long = m.position(BTC, "long").liquidationPrice
    lp_short = m.position(BTC, "short").liquidationPrice
    assert lp_long < 60000.0 < lp_short  # isolated legs: each its own price
    assert ex.step({BTC: lp_long * 1.0001}, timestamp=ex.now + 60_000) == []
    ev = ex.step({BTC: lp_long * 0.9999}, timestamp=ex.now + 60_000)
    (liq,) = [e for e in ev if e["type"] == "liquidation"]
    assert liq["scope"] == "isolated" and [p["side"] for p in liq["positions"]] == ["long"]
    assert liq["loss"] == pytest.approx(900.0)
    assert (BTC, "long") not in _legs(ex) and _legs(ex)[(BTC, "short")] == 0.1
    assert ex.account.wallet == pytest.approx(5000.0 - 900.0)


# ----------------------------------------------------------------- multi-collateral


@st.composite
def collateral_account(draw):
    model = draw(st.sampled_from(MODELS))
    side = draw(st.sampled_from(["long", "short"]))
    entry = draw(st.floats(1000.0, 100_000.0))
    lev = draw(st.floats(2.0, 50.0))
    contracts = draw(st.floats(0.5, 5.0)) * 1000.0 / entry * draw(st.floats(1.0, 50.0))
    im = contracts * entry / lev
    # BTC held as collateral: with a short it is a partial hedge (at most half the short,
    # so the account stays net short), with a long a second exposure
    btc = contracts * draw(st.floats(0.0, 0.5))
    ratio = draw(st.sampled_from([1.0, 0.95, 0.8]))
    usdt = im * draw(st.floats(0.2, 2.0)) - btc * entry * ratio * draw(st.floats(0.0, 1.0))
    d = {"schemaVersion": 1, "account": "a", "exchange": model, "timestamp": 0,
         "walletBalance": usdt,
         "balances": [{"coin": "USDT", "amount": usdt, "price": 1.0},
                      {"coin": "BTC", "amount": btc, "price": entry, "collateralRatio": ratio}],
         "positions": [{"symbol": BTC, "side": side, "contracts": contracts,
                        "entryPrice": entry, "markPrice": entry, "leverage": lev,
                        "marginMode": "cross"}]}  # fmt: skip
    if draw(st.booleans()):
        d["leverageTiers"] = {BTC: _tiers(draw)}
    steps = draw(st.lists(st.floats(-0.03, 0.08), min_size=5, max_size=40))
    return d, steps, side, entry


@given(collateral_account(), st.sampled_from([0.0, 0.0006]))
def test_multi_collateral_account_liquidated_on_the_first_step_past_riskguards_price(case, fee):
    d, steps, side, entry = case
    ex = PaperExchange(d, taker_fee=fee)
    held = ex.snapshot()
    assert [b.coin for b in held.balances] == ["USDT", "BTC"]
    m = compute_metrics(held, ex.model)
    assume((m.marginBalance or 0.0) > 0 and (m.accountMaintenanceMarginRate or 0.0) < 1.0)
    lp = m.positions[0].liquidationPrice
    assume(lp is not None)
    path = _path(entry, steps, side)
    assume(all(abs(px - lp) > 1e-9 * lp for px in path))
    crossed = [px <= lp if side == "long" else px >= lp for px in path]
    for k, px in enumerate(path):
        ev = ex.step({BTC: px}, timestamp=(k + 1) * 60_000)
        liq = [e for e in ev if e["type"] == "liquidation"]
        if crossed[k] and not any(crossed[:k]):
            event("liquidated")
            assert liq and liq[0]["scope"] == "cross" and not ex.account.positions
            # the BTC collateral is forfeit with the cross wallet
            assert [b.amount for b in ex.snapshot().balances][1] == 0.0
            break
        assert not liq, (k, px, lp)
        # the coin's price follows BTC's mark: riskguard reads the moved account the same
        now = ex.snapshot()
        assert now.balances[1].price == pytest.approx(entry * px / entry, rel=1e-12)
        assert ex.equity() == pytest.approx(compute_metrics(now, ex.model).equity, rel=1e-9)
