"""Hedge-mode actions name their leg, the executor acts on that leg, and Binance
Multi-Assets mode is cross-only.

- Actions on a position carry ``positionSide`` (long | short) in a hedge-mode snapshot
  only; stops proposed by several rules merge per (symbol, leg), never across legs.
- ``CcxtExecutor`` sends each exchange's leg parameter, checked on ccxt's real classes
  with only the HTTP layer answered (tests/ccxt_recorded.py): Binance ``positionSide``
  LONG|SHORT without ``reduceOnly`` (Binance "New Order": reduceOnly "cannot be sent in
  Hedge Mode"), OKX ``posSide`` long|short, Bybit ``positionIdx`` 1|2.
- Binance Multi-Assets mode allows cross margin only: Binance refuses isolated there with
  error -4168 ("Unable to adjust to isolated-margin mode under the Multi-Assets mode",
  USDⓈ-M Futures "Error Codes", developers.binance.com).
"""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from riskguard import Guard
from riskguard.contrib.ccxt_guard import CcxtExecutor
from riskguard.engine.actions import Action
from tests.ccxt_recorded import recorded_exchange
from tests.conftest import ROOT, run_cli

pytest.importorskip("ccxt")

BTC = "BTC/USDT:USDT"
XRP = "XRP/USDT:USDT"
# Binance BTCUSDT brackets, freqtrade snapshot 2024-10-24 (first three tiers)
TIERS = [
    {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maintenanceAmount": 0},
    {"minNotional": 50000, "maxNotional": 600000, "maintenanceMarginRate": 0.005, "maintenanceAmount": 50},
    {"minNotional": 600000, "maxNotional": 3000000, "maintenanceMarginRate": 0.0065, "maintenanceAmount": 950},
]  # fmt: skip


def policy(*rules):
    return {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "hedge-actions", "version": "1"},
        "spec": {"rules": list(rules)},
    }


STOP_RULES = policy(
    {"id": "stop-before-liquidation", "type": "stop_before_liquidation",
     "params": {"required": True, "bufferFraction": 0.1, "bufferPct": 0.5},
     "severity": "error", "onViolation": ["set_stop_loss", "reduce_position"]},
    {"id": "risk-per-trade", "type": "risk_per_trade", "params": {"max": 0.01, "lossFrom": "entry"},
     "severity": "error", "onViolation": ["set_stop_loss", "reduce_position"]},
)  # fmt: skip
RISK_ONLY = policy(
    {"id": "risk-per-trade", "type": "risk_per_trade", "params": {"max": 0.01, "lossFrom": "entry"},
     "severity": "error", "onViolation": ["set_stop_loss", "reduce_position"]},
)  # fmt: skip


def leg(side, contracts, entry, mark=61000.0, symbol=BTC, **kw):
    return {"symbol": symbol, "side": side, "contracts": contracts, "entryPrice": entry,
            "markPrice": mark, "leverage": 10, **kw}  # fmt: skip


def btc_doc(mode="hedge", exchange="binance", wallet=3000.0, **kw):
    legs = kw.pop("positions", [leg("long", 0.2, 60000), leg("short", 0.1, 62000)])
    return {"exchange": exchange, "walletBalance": wallet, "positionMode": mode,
            "positions": legs, "leverageTiers": {BTC: TIERS}, **kw}  # fmt: skip


def stops(d):
    return [a for a in d.actions if a.type == "set_stop_loss"]


# --------------------------------------------------------------------------- actions


def test_hedge_actions_name_their_leg_and_stops_merge_per_leg():
    d = Guard.from_dict(STOP_RULES).check(btc_doc())
    by_leg = {a.positionSide: a for a in stops(d)}
    assert len(stops(d)) == 2 and set(by_leg) == {"long", "short"}
    long, short = by_leg["long"], by_leg["short"]
    # risk per trade: 1 % of 3,000 = 30 USDT... of equity (wallet + uPnL); the stops cap
    # each leg's loss from its own entry, on its own protective side
    m = Guard.from_dict(STOP_RULES).metrics(btc_doc())
    budget = 0.01 * m.equity
    assert long.params["price"] == pytest.approx(60000 - budget / 0.2)
    assert short.params["price"] == pytest.approx(62000 + budget / 0.1)
    # the long's two proposals (before liquidation, within budget) merged into the tighter
    # one; the short's own stop was never merged with the long's
    assert long.params["rules"] == ["risk-per-trade", "stop-before-liquidation"]
    assert "rules" not in short.params
    for a in d.actions:
        if a.type in ("set_stop_loss", "reduce_position"):
            assert a.to_dict()["positionSide"] == a.positionSide in ("long", "short")


def test_stops_merge_within_a_leg_never_across_legs():
    """Two rules per leg: one stop per leg survives, the most protective of that leg's."""
    pol = policy(
        {"id": "budget-tight", "type": "risk_per_trade", "params": {"max": 0.01, "lossFrom": "entry"},
         "severity": "error", "onViolation": ["set_stop_loss"]},
        {"id": "budget-loose", "type": "risk_per_trade", "params": {"max": 0.02, "lossFrom": "entry"},
         "severity": "warning", "onViolation": ["set_stop_loss"]},
    )  # fmt: skip
    d = Guard.from_dict(pol).check(btc_doc())
    got = {(a.symbol, a.positionSide): a for a in stops(d)}
    assert len(stops(d)) == 2 and set(got) == {(BTC, "long"), (BTC, "short")}
    eq = Guard.from_dict(pol).metrics(btc_doc()).equity
    # the tighter budget wins on both legs: highest stop for the long, lowest for the short
    assert got[BTC, "long"].params["price"] == pytest.approx(60000 - 0.01 * eq / 0.2)
    assert got[BTC, "short"].params["price"] == pytest.approx(62000 + 0.01 * eq / 0.1)
    for a in got.values():
        assert a.params["rules"] == ["budget-loose", "budget-tight"]
        assert a.severity == "error"  # the highest of the merged rules'


def test_the_smaller_cross_leg_is_not_judged_against_the_shared_liquidation_price():
    """The pair's one liquidation price lies below the mark (net long): the short leg
    gains there. Reducing the short would only add to the net long, so no rule asks it."""
    pol = policy(
        {"id": "sbl", "type": "stop_before_liquidation",
         "params": {"required": True, "bufferFraction": 0.1, "bufferPct": 0.5},
         "severity": "error", "onViolation": ["set_stop_loss", "reduce_position"]},
        {"id": "mld", "type": "min_liquidation_distance", "params": {"minPct": 10},
         "severity": "error", "onViolation": ["reduce_position"]},
    )  # fmt: skip
    d = Guard.from_dict(pol).check(btc_doc())
    lp = {p.side: p.liquidationPrice for p in d.metrics.positions}
    assert lp["long"] == lp["short"] < 61000 * 0.5  # far below the mark
    codes = {v.code for v in d.violations}
    assert codes == {"STOP_LOSS_MISSING"}  # both legs lack a stop; nothing is breached
    (stop,) = d.actions
    assert (stop.type, stop.positionSide) == ("set_stop_loss", "long")
    assert stop.params["price"] < 61000
    # the larger leg is still judged: with little wallet the shared price comes within 10 %
    near = Guard.from_dict(pol).check(btc_doc(wallet=200.0))
    assert {(a.type, a.positionSide) for a in near.actions} <= {
        ("set_stop_loss", "long"),
        ("reduce_position", "long"),
    }
    assert any(a.type == "reduce_position" for a in near.actions)


def test_one_way_actions_carry_no_leg():
    doc = btc_doc(mode="oneway", positions=[leg("long", 0.2, 60000)])
    d = Guard.from_dict(STOP_RULES).check(doc)
    assert stops(d) and all(a.positionSide is None for a in d.actions)
    assert all("positionSide" not in a.to_dict() for a in d.actions)
    (stop,) = stops(d)  # one position, one merged stop
    assert stop.params["rules"] == ["risk-per-trade", "stop-before-liquidation"]


def test_a_leg_less_stop_on_a_symbol_held_both_ways_is_never_merged():
    """A custom rule that does not name the leg: its stops cannot be told apart."""
    from riskguard.engine.evaluate import _merge_stops
    from riskguard.model.snapshot import build_snapshot

    snap = build_snapshot(btc_doc())
    raw = [Action("set_stop_loss", "x", BTC, {"price": 59000.0}),
           Action("set_stop_loss", "x", BTC, {"price": 64000.0})]  # fmt: skip
    assert _merge_stops(raw, snap) == raw


def test_action_leg_is_validated():
    with pytest.raises(ValueError, match="positionSide"):
        Action("set_stop_loss", "r", BTC, {"price": 1.0}, positionSide="both")


def test_decision_json_with_legs_is_valid_and_the_schema_knows_the_field():
    schema = json.loads((ROOT / "schemas" / "decision.schema.json").read_text())
    d = Guard.from_dict(STOP_RULES).check(btc_doc())
    doc = d.to_dict()
    jsonschema.validate(doc, schema)
    legs = {a["positionSide"] for a in doc["actions"] if a["type"] == "set_stop_loss"}
    assert legs == {"long", "short"}
    bad = json.loads(json.dumps(doc))
    next(a for a in bad["actions"] if a["type"] == "set_stop_loss")["positionSide"] = "BOTH"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_cli_check_prints_the_leg(tmp_path):
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(btc_doc()))
    pol = tmp_path / "policy.yaml"
    pol.write_text(json.dumps(RISK_ONLY))  # JSON is YAML
    r = run_cli("check", "-s", str(snap), "-p", str(pol), "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    got = sorted(
        (a["positionSide"], a["price"]) for a in out["actions"] if a["type"] == "set_stop_loss"
    )
    assert [s for s, _ in got] == ["long", "short"]
    assert got[0][1] < 61000 < got[1][1]


def test_explain_words_name_the_leg():
    from riskguard.policytools.explain import action_words

    a = Action("reduce_position", "r", BTC, {"amount": 0.1}, "error", positionSide="short")
    assert "short leg" in action_words(a)


# --------------------------------------------------------------------------- executor


def hedge_decision(exchange="binance", policy_doc=STOP_RULES, doc=None):
    return Guard.from_dict(policy_doc).check(doc or btc_doc(exchange=exchange))


def test_binance_stop_for_each_leg_is_a_close_on_that_side():
    d = hedge_decision()
    ex, http = recorded_exchange("hedge_binanceusdm")
    run = CcxtExecutor(ex).execute(d)
    applied = [r for r in run.results if r.status == "applied"]
    assert {r.action.positionSide for r in applied if r.action.type == "set_stop_loss"} == {
        "long",
        "short",
    }
    long_stop = http.requested("POST", "/fapi/v1/algoOrder", positionSide="LONG")
    short_stop = http.requested("POST", "/fapi/v1/algoOrder", positionSide="SHORT")
    assert len(long_stop) == len(short_stop) == 1
    lp, sp = long_stop[0].params, short_stop[0].params
    # the long leg's stop: a SELL of the long's 0.2 on the LONG side; the short's: a BUY of 0.1
    assert (lp["side"], lp["type"], float(lp["quantity"])) == ("SELL", "STOP_MARKET", 0.2)
    assert (sp["side"], sp["type"], float(sp["quantity"])) == ("BUY", "STOP_MARKET", 0.1)
    price = {a.positionSide: a.params["price"] for a in stops(d)}
    assert float(lp["triggerPrice"]) >= price["long"]  # rounded toward the mark, never past
    assert float(sp["triggerPrice"]) <= price["short"]
    assert float(lp["triggerPrice"]) < 61000 < float(sp["triggerPrice"])
    # Binance rejects reduceOnly in hedge mode (-1106): the side and positionSide close
    assert "reduceOnly" not in lp and "reduceOnly" not in sp


def test_binance_reduce_position_acts_on_the_named_leg_only():
    # the long leg is under water with a far stop: a stop within the 1 % budget would sit
    # above the mark, so risk per trade proposes reducing that leg
    doc = btc_doc(positions=[leg("long", 0.2, 60000, mark=59000, stopLossPrice=58000),
                             leg("short", 0.1, 62000, mark=59000, stopLossPrice=62500)])  # fmt: skip
    d = hedge_decision(policy_doc=RISK_ONLY, doc=doc)
    (reduce,) = [a for a in d.actions if a.type == "reduce_position"]
    assert reduce.positionSide == "long"
    ex, http = recorded_exchange("hedge_binanceusdm")
    CcxtExecutor(ex, apply=("reduce_position",)).execute(d)
    (call,) = http.requested("POST", "/fapi/v1/order")
    want = {"long": ("SELL", "LONG"), "short": ("BUY", "SHORT")}[reduce.positionSide]
    assert (call.params["side"], call.params["positionSide"]) == want
    assert call.params["type"] == "MARKET" and "reduceOnly" not in call.params
    # ccxt truncates to the market's amount precision (0.001 BTC)
    assert float(call.params["quantity"]) == pytest.approx(reduce.params["amount"], abs=1e-3)


def test_one_way_binance_stop_stays_reduce_only_without_a_leg():
    doc = btc_doc(mode="oneway", positions=[leg("long", 0.2, 60000)])
    d = hedge_decision(doc=doc)
    ex, http = recorded_exchange("hedge_binanceusdm")
    CcxtExecutor(ex).execute(d)
    (call,) = http.requested("POST", "/fapi/v1/algoOrder")
    assert call.params["side"] == "SELL" and "positionSide" not in call.params
    assert call.params["reduceOnly"] == "true"


def test_executor_skips_a_leg_less_action_on_a_symbol_held_both_ways():
    d = hedge_decision()
    blind = dataclasses.replace(
        d, actions=tuple(dataclasses.replace(a, positionSide=None) for a in d.actions)
    )
    ex, http = recorded_exchange("hedge_binanceusdm")
    run = CcxtExecutor(ex, apply=("set_stop_loss", "reduce_position")).execute(blind)
    acted = [r for r in run.results if r.action.type in ("set_stop_loss", "reduce_position")]
    assert acted and all(r.status == "skipped" for r in acted)
    assert all("does not name its leg" in r.detail for r in acted)
    assert http.calls == []


def isolated_hedge_doc(exchange, wallet=2000.0):
    """Two isolated BTC legs, the long nearly liquidated (1 % margin, 100×)."""
    size = 0.01 if exchange != "okx" else 1.0  # OKX counts contracts of 0.01 BTC
    cs = {"contractSize": 0.01} if exchange == "okx" else {}
    return btc_doc(
        exchange=exchange,
        wallet=wallet,
        positions=[
            leg("long", 20 * size, 61000, marginMode="isolated", isolatedMargin=7.0, leverage=100, **cs),
            leg("short", 10 * size, 61000, marginMode="isolated", isolatedMargin=1220.0, leverage=5, **cs),
        ],
    )  # fmt: skip


ADD_MARGIN = policy(
    {"id": "liq-distance", "type": "min_liquidation_distance", "params": {"minPct": 5},
     "severity": "error", "onViolation": ["add_isolated_margin"]},
)  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "exchange", "path", "leg_param"),
    [
        ("hedge_binanceusdm", "binance", "/fapi/v1/positionMargin", {"positionSide": "LONG"}),
        ("hedge_okx", "okx", "/api/v5/account/position/margin-balance", {"posSide": "long"}),
    ],
)
def test_add_isolated_margin_names_the_leg(fixture, exchange, path, leg_param):
    d = Guard.from_dict(ADD_MARGIN).check(isolated_hedge_doc(exchange))
    (add,) = [a for a in d.actions if a.type == "add_isolated_margin"]
    assert add.positionSide == "long" and add.params["amount"] > 0
    ex, http = recorded_exchange(fixture)
    (res,) = [r for r in CcxtExecutor(ex).execute(d).results if r.action is add]
    if exchange == "binance":
        assert res.status == "applied", res.detail
    # (ccxt 4.5.90's okx.parse_margin_modification raises on OKX's documented answer,
    # `type['type']` on a string: the request is sent, the result reads "failed")
    (call,) = http.requested("POST", path, **leg_param)
    # ccxt truncates the amount to the exchange's precision (3 decimals here)
    assert float(call.params.get("amount", call.params.get("amt"))) == pytest.approx(
        add.params["amount"], abs=1e-3
    )


def test_okx_stops_carry_pos_side_and_the_legs_margin_mode():
    doc = btc_doc(
        exchange="okx",
        positions=[
            leg("long", 20, 60000, contractSize=0.01, marginMode="isolated", isolatedMargin=130.0),
            leg("short", 10, 62000, contractSize=0.01),
        ],
    )
    d = Guard.from_dict(RISK_ONLY).check(doc)
    assert {a.positionSide for a in stops(d)} == {"long", "short"}
    ex, http = recorded_exchange("hedge_okx")
    run = CcxtExecutor(ex).execute(d)
    assert [r.status for r in run.results if r.action.type == "set_stop_loss"] == ["applied"] * 2
    calls = {
        c.params["posSide"]: c.params for c in http.requested("POST", "/api/v5/trade/order-algo")
    }
    assert set(calls) == {"long", "short"}
    long, short = calls["long"], calls["short"]
    assert (long["side"], long["sz"], long["tdMode"]) == ("sell", "20", "isolated")
    assert (short["side"], short["sz"], short["tdMode"]) == ("buy", "10", "cross")
    assert float(long["slTriggerPx"]) < 61000 < float(short["slTriggerPx"])
    assert "reduceOnly" not in long and "reduceOnly" not in short  # net mode only on OKX


def test_bybit_stops_carry_position_idx():
    tiers = {XRP: [{"minNotional": 0, "maxNotional": 200000, "maintenanceMarginRate": 0.01,
                    "maintenanceAmount": 0}]}  # fmt: skip
    doc = {
        "exchange": "bybit",
        "walletBalance": 400.0,
        "positionMode": "hedge",
        "positions": [
            leg("long", 1000, 0.50, mark=0.52, symbol=XRP),
            leg("short", 600, 0.55, mark=0.52, symbol=XRP),
        ],
        "leverageTiers": tiers,
    }
    d = Guard.from_dict(RISK_ONLY).check(doc)
    ex, http = recorded_exchange("hedge_bybit")
    CcxtExecutor(ex).execute(d)
    calls = {c.params["positionIdx"]: c.params for c in http.requested("POST", "/v5/order/create")}
    assert set(calls) == {1, 2}  # 1: the long leg ("Buy side"), 2: the short ("Sell side")
    long, short = calls[1], calls[2]
    assert (long["side"], long["qty"], long["reduceOnly"]) == ("Sell", "1000", True)
    assert (short["side"], short["qty"], short["reduceOnly"]) == ("Buy", "600", True)
    # a long's stop triggers on a fall (triggerDirection 2), a short's on a rise (1)
    assert (long["triggerDirection"], short["triggerDirection"]) == (2, 1)
    assert float(long["triggerPrice"]) < 0.52 < float(short["triggerPrice"])


def test_leg_params_per_exchange():
    from riskguard.contrib.ccxt_guard import leg_order_params

    assert leg_order_params("binanceusdm", "short") == {"positionSide": "SHORT"}
    assert leg_order_params("okx", "long", "cross") == {"posSide": "long", "marginMode": "cross"}
    assert leg_order_params("bybit", "short") == {"positionIdx": 2, "reduceOnly": True}
    assert leg_order_params("gate", "long") == {"hedged": True, "reduceOnly": True}
    with pytest.raises(ValueError):
        leg_order_params("okx", "net")


def test_margin_mode_switch_is_sent_once_per_symbol():
    pol = policy(
        {"id": "iso", "type": "isolate_on_volatility", "params": {"atrPctAbove": 1.0},
         "severity": "error", "onViolation": ["switch_margin_mode"]},
    )  # fmt: skip
    doc = btc_doc(markets={BTC: {"markPrice": 61000.0, "atrPct": 3.0}})
    d = Guard.from_dict(pol).check(doc)
    switches = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert {a.positionSide for a in switches} == {"long", "short"}
    ex, http = recorded_exchange("hedge_binanceusdm")
    run = CcxtExecutor(ex, attempt_infeasible=True).execute(d)
    statuses = [r.status for r in run.results if r.action.type == "switch_margin_mode"]
    assert sorted(statuses) == ["refused", "skipped"]
    assert len(http.requested("POST", "/fapi/v1/marginType")) == 1


def test_a_switch_skipped_as_advice_does_not_block_the_same_switch_enforced():
    """The per-symbol dedup counts only switches actually sent: an info-level switch (advice,
    below min_severity) ahead of an error-level one for the same symbol must not make the
    executor skip the enforced one."""
    from dataclasses import replace

    pol = policy(
        {"id": "iso", "type": "isolate_on_volatility", "params": {"atrPctAbove": 1.0},
         "severity": "error", "onViolation": ["switch_margin_mode"]},
    )  # fmt: skip
    doc = btc_doc(markets={BTC: {"markPrice": 61000.0, "atrPct": 3.0}})
    d = Guard.from_dict(pol).check(doc)
    enforced = [a for a in d.actions if a.type == "switch_margin_mode"][0]
    advice = replace(enforced, rule="advice", severity="info")
    ex, http = recorded_exchange("hedge_binanceusdm")
    run = CcxtExecutor(ex, attempt_infeasible=True).execute(
        replace(d, actions=(advice, enforced))
    )
    assert [r.status for r in run.results] == ["skipped", "refused"]
    assert "min_severity" in run.results[0].detail
    assert len(http.requested("POST", "/fapi/v1/marginType")) == 1


# --------------------------------------------------------------------------- Multi-Assets


def multi_assets_doc(positions, **kw):
    return {
        "exchange": "binance",
        "walletBalance": 3000.0,
        "balances": [
            {"coin": "USDT", "amount": 3000, "price": 1, "collateralRatio": 1},
            {"coin": "BNB", "amount": 2, "price": 500, "collateralRatio": 0.95},
        ],
        "positions": positions,
        "leverageTiers": {BTC: TIERS},
        **kw,
    }


EMPTY = policy()


def test_isolated_position_in_multi_assets_is_flagged_with_binances_code():
    doc = multi_assets_doc([leg("long", 0.05, 60000, marginMode="isolated", isolatedMargin=400.0)])
    d = Guard.from_dict(EMPTY).check(doc)
    (v,) = [v for v in d.violations if v.code == "MULTI_ASSETS_ISOLATED_POSITION"]
    assert v.symbol == BTC and v.context["exchangeCode"] == "-4168"
    assert d.decision == "deny"
    # the same position in a single-asset account is fine
    single = {k: v for k, v in doc.items() if k != "balances"}
    assert not [v for v in Guard.from_dict(EMPTY).check(single).violations if "MULTI" in v.code]
    # a cross position in Multi-Assets is fine too
    cross = multi_assets_doc([leg("long", 0.05, 60000)])
    assert Guard.from_dict(EMPTY).check(cross).decision == "allow"


def test_isolated_order_in_multi_assets_is_denied_even_when_reducing():
    doc = multi_assets_doc([leg("long", 0.05, 60000)])
    g = Guard.from_dict(EMPTY)
    order = {"symbol": BTC, "side": "buy", "amount": 0.01, "marginMode": "isolated"}
    d = g.check(doc, order)
    assert d.decision == "deny"
    (v,) = [v for v in d.violations if v.code == "ORDER_ISOLATED_IN_MULTI_ASSETS"]
    assert v.context["exchangeCode"] == "-4168" and v.scope == "order"
    reduce = {**order, "side": "sell", "reduceOnly": True}
    assert g.check(doc, reduce).decision == "deny"
    assert g.check(doc, {**order, "marginMode": "cross"}).decision == "allow"
    # the order is fine on a single-asset account
    single = {k: v for k, v in doc.items() if k != "balances"}
    assert g.check(single, order).decision == "allow"


def test_cli_check_reports_the_multi_assets_code(tmp_path):
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(multi_assets_doc([leg("long", 0.05, 60000)])))
    order = tmp_path / "o.json"
    order.write_text(
        json.dumps({"symbol": BTC, "side": "buy", "amount": 0.01, "marginMode": "isolated"})
    )
    pol = tmp_path / "p.yaml"
    pol.write_text(json.dumps(EMPTY))
    r = run_cli("check", "-s", str(snap), "-o", str(order), "-p", str(pol), "--json")
    assert r.returncode == 1, r.stderr
    codes = [v["code"] for v in json.loads(r.stdout)["violations"]]
    assert "ORDER_ISOLATED_IN_MULTI_ASSETS" in codes


@pytest.mark.parametrize("rule", ["isolate_on_volatility", "margin_mode"])
def test_switch_to_isolated_is_infeasible_in_multi_assets(rule):
    params = {"atrPctAbove": 1.0} if rule == "isolate_on_volatility" else {"mode": "isolated"}
    pol = policy({"id": "r", "type": rule, "params": params, "severity": "error",
                  "onViolation": ["switch_margin_mode"]})  # fmt: skip
    markets = {BTC: {"markPrice": 61000.0, "atrPct": 3.0}}
    doc = multi_assets_doc([leg("long", 0.05, 60000)], markets=markets)
    (sw,) = [a for a in Guard.from_dict(pol).check(doc).actions if a.type == "switch_margin_mode"]
    assert sw.params["to"] == "isolated" and sw.params["feasible"] is False
    assert sw.params["exchangeCode"] == "-4168" and "Multi-Assets" in sw.params["reason"]
    # single-asset: refused for the open position (-4048), not for the account mode
    single = {k: v for k, v in doc.items() if k != "balances"}
    (sw1,) = [
        a for a in Guard.from_dict(pol).check(single).actions if a.type == "switch_margin_mode"
    ]
    assert sw1.params.get("exchangeCode") != "-4168"
    # and the executor does not send it (unless told to; Binance then answers -4168)
    d = Guard.from_dict(pol).check(doc)
    ex, http = recorded_exchange("hedge_binanceusdm")
    (res,) = CcxtExecutor(ex).execute(d).results
    assert res.status == "skipped" and "-4168" in res.detail and http.calls == []
    (res,) = CcxtExecutor(ex, attempt_infeasible=True).execute(d).results
    assert (res.status, res.exchangeCode) == ("refused", "-4168")


def test_every_built_in_position_action_is_proposed_with_its_leg():
    """Each ``self.act(ctx, "<position action>", ...)`` in the built-in rules passes ``leg=``."""
    import ast

    from riskguard.engine.actions import POSITION_ACTIONS

    missing, seen = [], 0
    for path in sorted((ROOT / "riskguard" / "rules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "act" or len(node.args) < 2:
                continue
            kind = node.args[1]
            if isinstance(kind, ast.Constant) and kind.value in POSITION_ACTIONS:
                seen += 1
                if not any(k.arg == "leg" for k in node.keywords):
                    missing.append(f"{path.name}:{node.lineno} {kind.value}")
    assert seen >= 10 and missing == []


def test_default_policy_on_a_hedge_account_names_every_position_actions_leg():
    d = Guard.from_file(ROOT / "policies" / "default.yaml").check(
        btc_doc(wallet=400.0, markets={BTC: {"markPrice": 61000.0, "atrPct": 6.0}})
    )
    from riskguard.engine.actions import POSITION_ACTIONS

    acts = [a for a in d.actions if a.type in POSITION_ACTIONS]
    assert {a.type for a in acts} >= {"set_stop_loss", "switch_margin_mode"}
    assert all(a.positionSide in ("long", "short") for a in acts)
