"""Account metrics across models: the cross pool's liquidation condition holds at the computed LP."""

from __future__ import annotations

import pytest

from riskguard.engine.plugins import get_registry
from riskguard.margin.metrics import compute_metrics
from riskguard.model.snapshot import build_snapshot

from .conftest import snapshot_doc


@pytest.mark.parametrize("exchange", ["binance", "okx", "bingx", "weex"])
def test_cross_pool_balance_equals_maintenance_plus_fees_at_each_lp(exchange):
    """Move one cross position to its LP, hold the others at mark: equity = Σ MM + Σ closing fees."""
    doc = snapshot_doc(exchange=exchange, walletBalance=1200)
    doc["positions"][1].update(marginMode="cross", isolatedMargin=None)  # two cross positions
    model = get_registry().margin_model(exchange)
    snap = build_snapshot(doc)
    m = compute_metrics(snap, model)
    f = model.closeFeeRate
    for i, pm in enumerate(m.positions):
        lp = pm.liquidationPrice
        assert lp is not None
        equity = snap.walletBalance
        need = 0.0
        for j, p in enumerate(snap.positions):
            price = lp if j == i else m.positions[j].markPrice
            equity += p.sign * p.size * (price - p.entryPrice)
            basis = price if model.mmBasis == "mark" else p.entryPrice
            tier = model.tier_for(p, (), basis)
            need += p.size * basis * tier.maintenanceMarginRate + f * p.size * price
        assert equity == pytest.approx(need, rel=1e-9)


def test_inverse_position_on_a_model_without_inverse_support_is_approximate():
    doc = snapshot_doc(exchange="okx", settle="BTC", walletBalance=1.0)
    doc["positions"] = [
        {
            "symbol": "BTC/USD:BTC",
            "side": "long",
            "contracts": 100,
            "contractSize": 100,
            "entryPrice": 60000,
            "markPrice": 61000,
            "leverage": 10,
            "marginMode": "cross",
            "inverse": True,
        }
    ]
    m = compute_metrics(build_snapshot(doc), get_registry().margin_model("okx"))
    assert m.positions[0].approximate


def test_metrics_and_decisions_pickle_and_stay_frozen_in_either_build():
    """Compiled, the metrics classes are native; they still pickle (a bot may hand a
    decision to another process), compare equal after, and refuse changes."""
    import dataclasses
    import pickle

    from riskguard import Guard
    from riskguard.margin.metrics import AccountMetrics, PositionMetrics

    from .conftest import POLICIES

    doc = snapshot_doc()
    m = compute_metrics(build_snapshot(doc), get_registry().margin_model("binance"))
    assert type(m) is AccountMetrics and type(m.positions[0]) is PositionMetrics
    back = pickle.loads(pickle.dumps(m))
    assert back == m and back.positions == m.positions
    assert dataclasses.replace(m.positions[0], contracts=1.5).contracts == 1.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.positions[0].symbol = "X"  # type: ignore[misc]
    d = Guard.from_file(POLICIES / "default.yaml").check(
        doc, {"symbol": doc["positions"][0]["symbol"], "side": "buy", "amount": 0.01}
    )
    again = pickle.loads(pickle.dumps(d))
    assert again.to_dict() == d.to_dict() and again.metrics == d.metrics
