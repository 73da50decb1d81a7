"""risk_per_trade: loss at the stop ≤ max × equity, at the boundaries, and pre-trade sizing."""

from __future__ import annotations

import pytest

from riskguard.engine.evaluate import evaluate
from riskguard.engine.policy import load_policy
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot


def policy(*rules):
    return load_policy(
        {
            "apiVersion": "riskguard/v1",
            "kind": "Policy",
            "metadata": {"name": "t", "version": "1"},
            "spec": {"rules": list(rules)},
        }
    )


def check(pol, doc, order=None):
    d = evaluate(pol, build_snapshot(doc), build_order(order) if order else None)
    validator("decision").validate(d.to_dict())
    return d


def snap(*positions, wallet=10000.0, **over):
    doc = {
        "account": "t",
        "exchange": "binance",
        "timestamp": "2026-11-24T12:00:00Z",
        "walletBalance": wallet,
        "positions": list(positions),
        "markets": {"SOL/USDT:USDT": {"markPrice": 150.0}},
    }
    doc.update(over)
    return doc


def eth(**over):
    """1 ETH long at 3000, mark 3000 (uPnL 0: equity = wallet)."""
    p = {
        "symbol": "ETH/USDT:USDT",
        "side": "long",
        "contracts": 1,
        "entryPrice": 3000,
        "markPrice": 3000,
        "leverage": 10,
        "marginMode": "cross",
    }
    p.update(over)
    return p


RPT = {"id": "rpt", "type": "risk_per_trade", "params": {"max": 0.01}}
P = policy(RPT)


def codes(d):
    return [v.code for v in d.violations]


# ----------------------------------------------------------------- held positions


@pytest.mark.parametrize(
    ("stop", "violated"),
    [(2901, False), (2900, False), (2899, True)],  # loss 99 / 100 (= 1 % of 10,000) / 101
)
def test_loss_at_stop_boundary_long(stop, violated):
    d = check(P, snap(eth(stopLossPrice=stop)))
    assert (codes(d) == ["RISK_PER_TRADE_EXCEEDS_MAX"]) is violated
    assert d.decision == ("deny" if violated else "allow")
    if violated:
        v = d.violations[0]
        assert v.observed == pytest.approx(101 / 10000) and v.limit == 0.01
        assert v.context["risk"] == pytest.approx(101) and v.context["basis"] == "stop"
        assert v.symbol == "ETH/USDT:USDT" and v.scope == "position"


@pytest.mark.parametrize(("stop", "violated"), [(3099, False), (3100, False), (3101, True)])
def test_loss_at_stop_boundary_short(stop, violated):
    d = check(P, snap(eth(side="short", stopLossPrice=stop)))
    assert bool(d.violations) is violated


@pytest.mark.parametrize(("margin", "violated"), [(99, False), (100, False), (101, True)])
def test_isolated_without_stop_risks_its_margin(margin, violated):
    d = check(P, snap(eth(marginMode="isolated", isolatedMargin=margin)))
    assert bool(d.violations) is violated
    if violated:
        assert d.violations[0].context["basis"] == "isolatedMargin"


def test_isolated_loss_is_capped_at_its_margin():
    # the stop is 300 away (loss 300) but liquidation takes only the 100 of margin first
    d = check(P, snap(eth(marginMode="isolated", isolatedMargin=100, stopLossPrice=2700)))
    assert d.decision == "allow" and not d.violations


def test_cross_without_stop_is_unbounded_and_a_stop_is_proposed():
    d = check(P, snap(eth()))
    assert codes(d) == ["RISK_PER_TRADE_UNBOUNDED"] and d.decision == "deny"
    stop = [a for a in d.actions if a.type == "set_stop_loss"]
    assert stop and stop[0].params["price"] == pytest.approx(2900)  # loss 100 = the budget
    again = check(P, snap(eth(stopLossPrice=stop[0].params["price"])))
    assert not again.violations


def test_a_stop_already_through_the_mark_proposes_a_reduction():
    # losing position: entry 3000, mark 2850, stop 2800 → loss 200; a stop capping the loss
    # at 100 (2900) would be above the mark, so the proposal is to halve the position
    d = check(P, snap(eth(markPrice=2850, stopLossPrice=2800), wallet=10150))
    assert codes(d) == ["RISK_PER_TRADE_EXCEEDS_MAX"]
    assert not [a for a in d.actions if a.type == "set_stop_loss"]
    red = [a for a in d.actions if a.type == "reduce_position"]
    assert red and red[0].params["amount"] == pytest.approx(0.5)


def test_loss_from_mark_counts_open_profit_at_risk():
    # entry 3000, mark 3200, stop 3050: from entry the stop locks in +50 (no risk);
    # from the mark 150 of open profit is at risk (equity 10,200 → budget 102)
    pos = eth(markPrice=3200, stopLossPrice=3050)
    assert not check(P, snap(pos)).violations
    d = check(policy({**RPT, "params": {"max": 0.01, "lossFrom": "mark"}}), snap(pos))
    assert codes(d) == ["RISK_PER_TRADE_EXCEEDS_MAX"]
    assert d.violations[0].context["risk"] == pytest.approx(150)


def test_match_limits_the_positions_judged():
    rule = {**RPT, "match": {"symbols": ["BTC/*"]}}
    assert not check(policy(rule), snap(eth())).violations


# ----------------------------------------------------------------- pre-trade sizing

SOL = {
    "symbol": "SOL/USDT:USDT",
    "side": "buy",
    "leverage": 5,
    "marginMode": "cross",
    "stopLossPrice": 145,
}  # market order at the mark 150: loss 5 per contract → 20 contracts = 100 = the budget


@pytest.mark.parametrize(
    ("amount", "decision"), [(19.99, "allow"), (20, "allow"), (20.01, "resize")]
)
def test_order_boundary_and_resize(amount, decision):
    d = check(P, snap(), {**SOL, "amount": amount})
    assert d.decision == decision
    assert d.maxAllowedAmount == pytest.approx(20)
    if decision == "resize":
        assert d.maxAllowedAmount <= 20
        resize = [a for a in d.actions if a.type == "resize_order"]
        assert resize and resize[0].params["amount"] == d.maxAllowedAmount
        again = check(P, snap(), {**SOL, "amount": d.maxAllowedAmount})
        assert again.decision == "allow" and not again.violations


def test_short_order_sized_by_its_stop():
    order = {**SOL, "side": "sell", "stopLossPrice": 160, "amount": 50}  # 10 per contract
    d = check(P, snap(), order)
    assert d.decision == "resize" and d.maxAllowedAmount == pytest.approx(10)


def test_isolated_order_is_sized_by_the_smaller_of_stop_loss_and_margin():
    # stop 50 away: loss bound 2 contracts; isolated margin at 10×: 15 per contract → 6.67;
    # risk = min(loss, margin) so the margin bound (the larger amount) applies
    order = {**SOL, "marginMode": "isolated", "leverage": 10, "stopLossPrice": 100, "amount": 50}
    d = check(P, snap(), order)
    assert d.decision == "resize" and d.maxAllowedAmount == pytest.approx(100 / 15)
    assert check(P, snap(), {**order, "amount": d.maxAllowedAmount}).decision == "allow"


def test_isolated_order_without_stop_is_sized_by_its_margin():
    order = {**SOL, "marginMode": "isolated", "leverage": 10, "amount": 50}
    order.pop("stopLossPrice")
    d = check(P, snap(), order)
    assert d.decision == "resize" and d.maxAllowedAmount == pytest.approx(100 / 15)


def test_cross_order_without_stop_cannot_be_sized():
    order = {k: v for k, v in SOL.items() if k != "stopLossPrice"}
    d = check(P, snap(), {**order, "amount": 1})
    assert d.decision == "deny" and "RISK_PER_TRADE_UNBOUNDED" in codes(d)
    assert any(a.type == "block_order" for a in d.actions)


def test_adding_to_a_position_counts_the_existing_loss():
    # held: 1 ETH, stop 2950 → loss 50; each added contract at 3000 adds 50 → 1 more fits
    held = snap(eth(stopLossPrice=2950))
    order = {"symbol": "ETH/USDT:USDT", "side": "buy", "amount": 2, "price": 3000}
    d = check(P, held, order)
    assert d.decision == "resize" and d.maxAllowedAmount == pytest.approx(1)
    assert check(P, held, {**order, "amount": 1}).decision == "allow"
    assert check(P, held, {**order, "amount": 1.001}).decision == "resize"


def test_flip_closes_first_then_sizes_the_new_leg():
    # short 1 at 3000 (stop 3100, loss 100) flipped by a buy with stop 2950 (50 per contract)
    held = snap(eth(side="short", stopLossPrice=3100))
    order = {"symbol": "ETH/USDT:USDT", "side": "buy", "amount": 4, "stopLossPrice": 2950}
    d = check(P, held, order)
    assert d.decision == "resize" and d.maxAllowedAmount == pytest.approx(3)  # 1 closes + 2 new
    assert check(P, held, {**order, "amount": 3}).decision == "allow"


def test_reducing_order_is_never_bounded():
    held = snap(eth())  # cross without a stop: in breach
    d = check(P, held, {"symbol": "ETH/USDT:USDT", "side": "sell", "amount": 0.5})
    assert d.decision == "allow" and d.maxAllowedAmount is None


def test_inverse_contracts_are_sized_numerically():
    # COIN-M: 100 USD contracts, equity 1 BTC → budget 0.01 BTC; held 10 contracts
    # (1000 USD) long at 50,000 with stop 45,000: loss 1000·(1/45000 − 1/50000) ≈ 0.00222 BTC
    pos = {
        "symbol": "BTC/USD:BTC",
        "side": "long",
        "contracts": 10,
        "contractSize": 100,
        "inverse": True,
        "entryPrice": 50000,
        "markPrice": 50000,
        "leverage": 5,
        "marginMode": "cross",
        "stopLossPrice": 45000,
    }
    doc = snap(pos, wallet=1.0, settle="BTC", markets={})
    order = {"symbol": "BTC/USD:BTC", "side": "buy", "amount": 100}
    d = check(P, doc, order)
    assert d.decision == "resize"
    per_contract = 100 * (1 / 45000 - 1 / 50000)
    assert d.maxAllowedAmount == pytest.approx(0.01 / per_contract - 10, rel=1e-5)
    assert check(P, doc, {**order, "amount": d.maxAllowedAmount}).decision == "allow"
    assert check(P, doc, {**order, "amount": d.maxAllowedAmount * 1.001}).decision == "resize"


def test_invalid_params_are_rejected_with_a_path():
    from riskguard.errors import PolicyError

    with pytest.raises(PolicyError) as ei:
        policy({**RPT, "params": {"max": 1.5, "lossFrm": "entry"}})
    text = str(ei.value)
    assert "lossFrm" in text and "lossFrom" in text and "1.5" in text
