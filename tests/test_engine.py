"""Engine and core rules through the public API: decisions, resize, fail-closed, monitor mode."""

from __future__ import annotations

import copy

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import get_registry
from riskguard.engine.policy import load_policy
from riskguard.margin.metrics import compute_metrics
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot

from .conftest import POLICIES, snapshot_doc

DEFAULT = load_policy(POLICIES / "default.yaml")


def policy(*rules, mode="enforce"):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"mode": mode, "rules": list(rules)},
        }
    )


MU = {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35, "warnAt": 0.30}}
SL = {"id": "sl", "type": "stop_before_liquidation", "params": {"bufferFraction": 0.1}}
VOL = {"id": "vol", "type": "isolate_on_volatility", "params": {"atrPctAbove": 5}}


def check(pol, doc, order=None):
    d = evaluate(pol, build_snapshot(doc), build_order(order) if order else None)
    validator("decision").validate(d.to_dict())  # every decision the tests produce is schema-valid
    return d


def codes(d):
    return {v.code for v in d.violations}


# ----------------------------------------------------------------- margin utilization


def test_utilization_within_limit_allows():
    d = check(policy(MU), snapshot_doc())
    # IM: BTC cross 0.05×61000/10 = 305, ETH isolated 300; equity 10000 + 50 + 50 = 10100
    assert d.metrics.marginUtilization == pytest.approx(605 / 10100)
    assert d.decision == "allow" and not d.violations


def test_utilization_warning_does_not_deny():
    doc = snapshot_doc(walletBalance=1900)  # equity 2000 → 605/2000 = 30.25 %
    d = check(policy(MU), doc)
    assert d.decision == "allow"
    assert codes(d) == {"MARGIN_UTILIZATION_ABOVE_WARN"} and d.violations[0].severity == "warning"


def test_utilization_above_max_denies_snapshot():
    doc = snapshot_doc(walletBalance=1500)  # equity 1600 → 37.8 %
    d = check(policy(MU), doc)
    assert d.decision == "deny" and codes(d) == {"MARGIN_UTILIZATION_EXCEEDS_MAX"}
    v = d.violations[0]
    assert v.observed == pytest.approx(605 / 1600) and v.limit == 0.35


def test_order_past_limit_is_resized_to_largest_amount_that_fits():
    doc = snapshot_doc()
    order = {
        "symbol": "SOL/USDT:USDT",
        "side": "buy",
        "amount": 200,
        "leverage": 5,
        "stopLossPrice": 140,
    }
    d = check(policy(MU), doc, order)
    # fits while (605 + a·150/5) / 10100 ≤ 0.35  →  a ≤ (3535 − 605)/30 = 97.666…
    assert d.decision == "resize"
    assert d.maxAllowedAmount == pytest.approx((0.35 * 10100 - 605) / 30, rel=1e-6)
    assert d.maxAllowedAmount <= (0.35 * 10100 - 605) / 30
    resize = [a for a in d.actions if a.type == "resize_order"]
    assert resize and resize[0].params["amount"] == d.maxAllowedAmount
    # the proposed amount itself passes
    again = check(policy(MU), doc, {**order, "amount": d.maxAllowedAmount})
    assert again.decision == "allow"


def test_order_that_fits_is_allowed_with_headroom_reported():
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 10, "leverage": 5}
    d = check(policy(MU), snapshot_doc(), order)
    assert d.decision == "allow"
    assert d.maxAllowedAmount == pytest.approx((0.35 * 10100 - 605) / 30, rel=1e-6)


def test_resize_disabled_means_deny():
    rule = {**MU, "onViolation": ["alert"]}
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 200, "leverage": 5}
    d = check(policy(rule), snapshot_doc(), order)
    assert d.decision == "deny"
    assert any(a.type == "block_order" for a in d.actions)


def test_reducing_order_is_never_blocked_by_account_state():
    doc = snapshot_doc(walletBalance=1500)  # already over the limit
    order = {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": 0.02}
    d = check(policy(MU), doc, order)
    assert d.decision == "allow"
    assert all(not v.blocking for v in d.violations)


def test_open_orders_count_when_asked():
    doc = snapshot_doc(
        openOrders=[
            {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 100, "price": 150, "leverage": 5}
        ]
    )
    with_orders = check(policy(MU), doc)
    without = check(policy({**MU, "params": {**MU["params"], "includeOpenOrders": False}}), doc)
    assert with_orders.metrics.openOrderInitialMargin == pytest.approx(3000)
    assert codes(with_orders) == {"MARGIN_UTILIZATION_EXCEEDS_MAX"}  # (605 + 3000)/10100 = 35.7 %
    assert not without.violations


# ----------------------------------------------------------------- stop before liquidation


def _lp(doc, symbol):
    s = build_snapshot(doc)
    m = compute_metrics(s, get_registry().margin_model("binance"))
    return m.position(symbol).liquidationPrice


def test_stop_beyond_liquidation_is_flagged_with_safe_price():
    doc = snapshot_doc()
    lp = _lp(doc, "ETH/USDT:USDT")  # isolated short: (300 + 0 + 3000)/(1·0.005 + 1) → 3283.58
    assert lp == pytest.approx((300 + 3000) / 1.005, rel=1e-12)
    doc["positions"][1]["stopLossPrice"] = lp + 10  # a short's stop above LP: liquidated first
    d = check(policy(SL), doc)
    assert d.decision == "deny"
    v = next(v for v in d.violations if v.symbol == "ETH/USDT:USDT")
    assert v.code == "STOP_LOSS_BEYOND_LIQUIDATION"
    safe = lp - 0.1 * abs(3000 - lp)
    assert v.limit == pytest.approx(safe)
    act = next(a for a in d.actions if a.type == "set_stop_loss")
    assert act.symbol == "ETH/USDT:USDT" and act.params["price"] == pytest.approx(safe)


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-0.0, "STOP_LOSS_BEYOND_LIQUIDATION"), (-5.0, "STOP_LOSS_INSIDE_BUFFER"), (-40.0, None)],
)
def test_stop_boundaries(offset, code):
    doc = snapshot_doc()
    lp = _lp(doc, "ETH/USDT:USDT")
    doc["positions"][1]["stopLossPrice"] = lp + offset
    d = check(policy(SL), doc)
    found = {v.code for v in d.violations if v.symbol == "ETH/USDT:USDT"}
    assert found == ({code} if code else set())


def test_missing_stop_proposes_one():
    doc = snapshot_doc(walletBalance=1000)  # cross wallet 700: the BTC long has a liquidation price
    doc["positions"][0]["stopLossPrice"] = None
    lp = _lp(doc, "BTC/USDT:USDT")
    assert lp == pytest.approx((700 - 0.05 * 60000) / (0.05 * 0.005 - 0.05), rel=1e-12)
    d = check(policy(SL), doc)
    assert codes(d) == {"STOP_LOSS_MISSING"}
    act = next(a for a in d.actions if a.type == "set_stop_loss")
    assert act.symbol == "BTC/USDT:USDT" and act.params["price"] == pytest.approx(
        lp + 0.1 * (60000 - lp)
    )


def test_missing_stop_is_a_violation_even_when_liquidation_is_impossible():
    doc = snapshot_doc()  # 10,000 wallet behind a 3,050 notional cross long: no positive LP
    doc["positions"][0]["stopLossPrice"] = None
    assert _lp(doc, "BTC/USDT:USDT") is None
    d = check(policy(SL), doc)
    assert codes(d) == {"STOP_LOSS_MISSING"} and d.decision == "deny"


def test_freqtrade_buffer_example():
    """freqtrade docs: entry 10, liquidation 8, buffer 0.05 → the minimum stop is 8.1."""
    rule = load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "x"},
            "spec": {
                "rules": [
                    {
                        "id": "sl",
                        "type": "stop_before_liquidation",
                        "params": {"bufferFraction": 0.05},
                    }
                ]
            },
        }
    ).rules[0]
    assert rule.safe_stop("long", 10, 8) == pytest.approx(8.1)


def test_exchange_reported_lp_of_zero_fails_closed():
    doc = snapshot_doc()
    doc["positions"][0]["liquidationPrice"] = 0
    d = check(policy(SL), doc)
    assert "INPUT_LIQUIDATION_PRICE_IMPLAUSIBLE" in codes(d) and d.decision == "deny"


# ----------------------------------------------------------------- volatility


def test_atr_spike_proposes_isolating_every_cross_position_with_feasibility():
    doc = snapshot_doc(markets={"BTC/USDT:USDT": {"markPrice": 61000, "atrPct": 7.5}})
    d = check(policy(VOL), doc)
    assert codes(d) == {"VOLATILITY_ATR_ABOVE_THRESHOLD"}
    sw = [a for a in d.actions if a.type == "switch_margin_mode"]
    assert len(sw) == 1 and sw[0].symbol == "BTC/USDT:USDT"  # ETH is already isolated
    assert sw[0].params["to"] == "isolated"
    assert sw[0].params["isolatedMargin"] == pytest.approx(0.05 * 61000 / 10)
    assert sw[0].params["feasible"] is False and "-4048" in sw[0].params["reason"]


def test_atr_computed_from_candles():
    # 15 candles with a constant true range of 10 on a close of 100: ATR% = 10
    candles = [[i * 60000, 100, 105, 95, 100, 1] for i in range(16)]
    doc = snapshot_doc(markets={"BTC/USDT:USDT": {"markPrice": 61000, "candles": candles}})
    d = check(policy(VOL), doc)
    v = next(v for v in d.violations if v.code == "VOLATILITY_ATR_ABOVE_THRESHOLD")
    assert v.observed == pytest.approx(10.0)


def test_event_window_triggers_with_reason():
    rule = {
        **VOL,
        "params": {
            "atrPctAbove": 50,
            "events": [
                {
                    "name": "FOMC",
                    "at": "2026-11-24T12:30:00Z",
                    "beforeMinutes": 60,
                    "reason": "rate decision",
                }
            ],
        },
    }
    d = check(policy(rule), snapshot_doc())  # snapshot at 12:00, window 11:30–13:30
    v = next(iter(d.violations))
    assert v.code == "VOLATILITY_EVENT_WINDOW" and v.context["reason"] == "rate decision"
    later = check(policy(rule), snapshot_doc(timestamp="2026-11-24T14:00:00Z"))
    assert not later.violations


def test_new_cross_order_during_event_is_denied():
    rule = {
        **VOL,
        "params": {
            "events": [
                {"name": "CPI", "start": "2026-11-24T11:00:00Z", "end": "2026-11-24T13:00:00Z"}
            ]
        },
    }
    d = check(
        policy(rule),
        snapshot_doc(),
        {
            "symbol": "SOL/USDT:USDT",
            "side": "buy",
            "amount": 1,
            "leverage": 5,
            "marginMode": "cross",
        },
    )
    assert d.decision == "deny"
    ok = check(
        policy(rule),
        snapshot_doc(),
        {
            "symbol": "SOL/USDT:USDT",
            "side": "buy",
            "amount": 1,
            "leverage": 5,
            "marginMode": "isolated",
        },
    )
    assert not any(v.symbol == "SOL/USDT:USDT" for v in ok.violations)


# ----------------------------------------------------------------- engine behaviour


def test_monitor_mode_never_denies_but_says_so():
    doc = snapshot_doc(walletBalance=1500)
    d = check(policy(MU, mode="monitor"), doc)
    assert d.decision == "allow" and d.wouldDecide == "deny"
    out = d.to_dict()
    assert out["mode"] == "monitor" and "off" in out["enforcement"]


def test_missing_mark_price_on_a_model_built_in_code_fails_closed():
    from dataclasses import replace

    s = build_snapshot(snapshot_doc())
    s = replace(s, positions=(replace(s.positions[0], markPrice=None),), markets={}, source=None)
    d = evaluate(DEFAULT, s)
    assert d.decision == "deny" and codes(d) == {"INPUT_MARK_PRICE_MISSING"}


def test_unknown_exchange_uses_generic_model_and_notes_it():
    d = check(DEFAULT, snapshot_doc(exchange="acme"))
    assert d.metrics.marginModel == "generic" and d.metrics.approximate
    assert any("acme" in n for n in d.notes)


def test_decision_ids_and_digests():
    doc = snapshot_doc()
    a, b = check(DEFAULT, doc), check(DEFAULT, copy.deepcopy(doc))
    assert a.decisionId != b.decisionId and len(a.decisionId) == 26
    assert a.to_dict()["snapshot"]["digest"] == b.to_dict()["snapshot"]["digest"]
    assert a.policy["digest"].startswith("sha256:")
    c = check(DEFAULT, snapshot_doc(walletBalance=9999))
    assert c.to_dict()["snapshot"]["digest"] != a.to_dict()["snapshot"]["digest"]


def test_unrelated_position_hygiene_does_not_block_an_order():
    doc = snapshot_doc()
    doc["positions"][1]["stopLossPrice"] = None  # ETH has no stop
    d = check(
        DEFAULT,
        doc,
        {
            "symbol": "SOL/USDT:USDT",
            "side": "buy",
            "amount": 1,
            "leverage": 5,
            "stopLossPrice": 140,
            "marginMode": "isolated",
        },
    )
    assert d.decision == "allow"
    assert "STOP_LOSS_MISSING" in codes(d)  # still reported, with its action
    assert any(a.type == "set_stop_loss" and a.symbol == "ETH/USDT:USDT" for a in d.actions)


def test_a_warning_rule_does_not_bound_the_order_amount():
    warn_only = {**MU, "severity": "warning"}
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 200, "leverage": 5}
    d = check(policy(warn_only), snapshot_doc(), order)
    assert d.decision == "allow" and d.maxAllowedAmount is None
    assert codes(d) == {"MARGIN_UTILIZATION_EXCEEDS_MAX"} and d.violations[0].severity == "warning"


def test_stops_proposed_by_several_rules_merge_into_the_most_protective():
    doc = snapshot_doc(walletBalance=1000)
    doc["positions"][0]["stopLossPrice"] = None  # BTC long, liquidation ≈ 46,231
    rpt = {"id": "rpt", "type": "risk_per_trade", "params": {"max": 0.01}}
    d = check(policy(SL, rpt), doc)
    stops = [a for a in d.actions if a.type == "set_stop_loss" and a.symbol == "BTC/USDT:USDT"]
    assert len(stops) == 1
    # 1 % of equity (1100) over 0.05 BTC allows a 220 move from the 60,000 entry: 59,780 is
    # above the liquidation-buffer stop, so it satisfies both rules
    assert stops[0].params["price"] == pytest.approx(60000 - 0.01 * 1100 / 0.05, rel=1e-6)
    assert stops[0].params["rules"] == ["rpt", "sl"]


def test_a_cross_pool_past_maintenance_is_flagged_even_without_liquidation_prices():
    # cross wallet 320 − 300 isolated = 20, BTC cross uPnL −50: pool equity −30 < MM; the isolated
    # ETH winner keeps total equity positive, so only the pool check can see it
    doc = snapshot_doc(walletBalance=320)
    doc["positions"][0].update(contracts=0.05, entryPrice=62000, markPrice=61000)  # cross uPnL −50
    doc["positions"][1]["markPrice"] = 2900  # isolated ETH short wins 100
    d = check(policy(MU), doc)
    assert "CROSS_POOL_BELOW_MAINTENANCE" in codes(d) and d.decision == "deny"
    v = next(v for v in d.violations if v.code == "CROSS_POOL_BELOW_MAINTENANCE")
    assert v.context["crossEquity"] <= v.context["maintenanceMargin"]
    healthy = check(policy(MU), snapshot_doc())
    assert "CROSS_POOL_BELOW_MAINTENANCE" not in codes(healthy)


def test_a_reduce_only_order_that_would_add_changes_nothing():
    """An exchange rejects a reduce-only order on the position's own side (Binance -2022),
    so it is judged as no change; found by the larger-order-never-allows property: a
    bigger reduce-only buy on an inverse long used to pass where a smaller one failed."""
    doc = {
        "exchange": "binance",
        "settle": "BTC",
        "walletBalance": 3401.0,
        "positions": [
            {
                "symbol": "BTC/USD:BTC",
                "side": "long",
                "contracts": 8264.0,
                "entryPrice": 43.0,
                "markPrice": 21.5,
                "leverage": 1,
                "inverse": True,
                "stopLossPrice": 12.09375,
            }
        ],
    }
    pol = load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {
                "rules": [
                    {
                        "id": "stop",
                        "type": "stop_before_liquidation",
                        "params": {"bufferFraction": 0.28125},
                    }
                ]
            },
        }
    )
    alone = check(pol, doc)
    for amount in (5306.0, 10612.0):
        order = {"symbol": "BTC/USD:BTC", "side": "buy", "amount": amount, "reduceOnly": True}
        d = check(pol, doc, order)
        assert [v.code for v in d.violations] == [v.code for v in alone.violations]
        assert d.metrics.positions[0].contracts == 8264.0
