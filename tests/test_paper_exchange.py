"""The paper exchange: ccxt surface, refusals, round trip through snapshot_from_ccxt,
riskguard's ccxt wrappers against it, and liquidation exactly where the margin models say."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace

import pytest
from hypothesis import assume, given
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
