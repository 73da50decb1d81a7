"""Properties of the engine over generated snapshots, orders and policies.

- the engine never raises: every snapshot that builds gets a Decision, and near-valid
  input (one field made hostile) raises only SnapshotError / PolicyError;
- every decision validates against ``schemas/decision.schema.json``;
- monotonic facts: a larger order never turns deny into allow; adding isolated margin
  never moves the liquidation price closer to the mark; more wallet never moves a cross
  liquidation price closer.

Example counts come from the conftest profile (bounded for CI).
"""

from __future__ import annotations

import json
import math
from functools import cache

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from riskguard.engine.decision import Decision
from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import get_registry
from riskguard.engine.policy import load_policy
from riskguard.errors import PolicyError, SnapshotError
from riskguard.margin.metrics import compute_metrics
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_order, build_snapshot

from . import strategies as S
from .conftest import POLICIES

NOW = 1_795_000_000_000
relaxed = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@cache
def default_policy():
    return load_policy(POLICIES / "default.yaml")


def _load(doc: dict):
    try:
        return load_policy(doc)
    except PolicyError:
        assume(False)  # a cross-field check refused the draw: not a valid policy


def _valid_decision(d: Decision) -> dict:
    assert isinstance(d, Decision)
    assert d.decision in ("allow", "resize", "deny")
    doc = d.to_dict()
    errors = sorted(validator("decision").iter_errors(doc), key=str)
    assert not errors, [e.message for e in errors[:3]]
    json.dumps(doc, allow_nan=False)  # what `check --json` prints
    return doc


# --------------------------------------------------------------------------- never raises


@relaxed
@given(doc=S.snapshots(), data=st.data())
def test_every_valid_snapshot_and_order_gets_a_valid_decision(doc, data):
    policy = _load(data.draw(S.policies(), label="policy"))
    snap = build_snapshot(doc)
    _valid_decision(evaluate(policy, snap, now_ms=NOW))
    order = build_order(data.draw(S.orders(doc), label="order"))
    d = evaluate(policy, snap, order, now_ms=NOW)
    _valid_decision(d)
    if d.decision == "resize":
        assert 0 < d.maxAllowedAmount < order.amount


def _without_previews(doc: dict) -> dict:
    """A decision document with what ``previews=False`` leaves out removed (and its id,
    time and duration, which differ between any two evaluations)."""
    for k in ("decisionId", "timestamp", "durationUs"):
        doc.pop(k)
    for a in doc["actions"]:
        if a["type"] == "switch_margin_mode" and a["rule"] == "promote-to-cross":
            a.pop("effect", None)
            a.pop("liquidationPriceAfter", None)
    return doc


@relaxed
@given(doc=S.snapshots(max_positions=5), data=st.data())
def test_previews_off_changes_nothing_but_the_what_if_figures(doc, data):
    """The simulator evaluates with ``previews=False``: the decision, every finding and
    every action must be the one a full evaluation makes, minus promote_to_cross's
    effect preview — with and without an order, under the default policy."""
    policy = default_policy()
    snap = build_snapshot(doc)
    orders = [None, build_order(data.draw(S.orders(doc), label="order"))]
    for order in orders:
        full = evaluate(policy, snap, order, now_ms=NOW)
        lean = evaluate(policy, snap, order, now_ms=NOW, previews=False)
        lean_doc = _valid_decision(lean)
        assert all(
            "effect" not in a for a in lean_doc["actions"] if a["type"] == "switch_margin_mode"
        )
        assert _without_previews(lean_doc) == _without_previews(_valid_decision(full))


def test_previews_off_leaves_out_the_effect_of_a_promotion():
    """The case the flag exists for: an isolated winner with cross positions to lend to."""
    doc = {
        "schemaVersion": 1, "exchange": "binance", "account": "a", "timestamp": NOW,
        "walletBalance": 10000.0,
        "positions": [
            {"symbol": "BTC/USDT:USDT", "side": "long", "contracts": 0.1, "entryPrice": 50000,
             "markPrice": 60000, "leverage": 5, "marginMode": "isolated", "isolatedMargin": 1000,
             "stopLossPrice": 55000},
            {"symbol": "ETH/USDT:USDT", "side": "long", "contracts": 1, "entryPrice": 3000,
             "markPrice": 3000, "leverage": 5, "marginMode": "cross", "stopLossPrice": 2700},
        ],
    }  # fmt: skip
    snap = build_snapshot(doc)
    full = evaluate(default_policy(), snap, now_ms=NOW)
    lean = evaluate(default_policy(), snap, now_ms=NOW, previews=False)
    (fa,) = [a for a in full.actions if a.rule == "promote-to-cross"]
    (la,) = [a for a in lean.actions if a.rule == "promote-to-cross"]
    assert [e["symbol"] for e in fa.params["effect"]] == ["ETH/USDT:USDT"]
    assert "liquidationPriceAfter" in fa.params
    assert "effect" not in la.params and "liquidationPriceAfter" not in la.params
    assert _without_previews(lean.to_dict()) == _without_previews(full.to_dict())


@given(base=S.snapshots(), data=st.data())
def test_near_valid_snapshots_raise_only_snapshot_error(base, data):
    doc = data.draw(S.mutated(base, extra_keys=("walletBalance", "positions", "markets")))
    try:
        snap = build_snapshot(doc)
    except SnapshotError as exc:
        assert exc.problems and all(p.path.startswith("$") for p in exc.problems)
        return
    _valid_decision(evaluate(default_policy(), snap, now_ms=NOW))


def test_an_action_whose_figure_overflows_is_not_proposed_and_the_decision_stays_valid():
    """Found by the property above: a cross short of 5e-324 contracts (a denormal) beside a
    position at 10,000x made a stop-loss price overflow; leaving the price out gave a
    ``set_stop_loss`` with no price, which the decision schema (and any executor) refuses.
    Such an action is not proposed; the violation stays and a note says why."""
    pos = {"entryPrice": 1.0, "markPrice": 1.0, "stopLossPrice": 0.5, "side": "long"}
    doc = {
        "schemaVersion": 1,
        "account": "main",
        "exchange": "binance",
        "timestamp": "2026-11-24T12:00:00Z",
        "settle": "USDT",
        "walletBalance": 0.0,
        "positions": [
            {**pos, "symbol": "BTC/USDT:USDT", "contracts": 1.0, "leverage": 1,
             "marginMode": "isolated", "isolatedMargin": 1.0},
            {**pos, "symbol": "ETH/USDT:USDT", "contracts": 1.0, "markPrice": 1.5, "leverage": 1,
             "marginMode": "isolated", "isolatedMargin": 1.0},
            {**pos, "symbol": "SOL/USDT:USDT", "contracts": 1.0, "leverage": 10000,
             "marginMode": "isolated", "isolatedMargin": 0.0001},
            {"symbol": "DOGE/USDT:USDT", "side": "short", "contracts": 5e-324, "entryPrice": 1.0,
             "markPrice": 1.0, "leverage": 1, "marginMode": "cross", "liquidationPrice": 0.0},
        ],
        "openOrders": [
            {"symbol": "BTC/USDT:USDT", "side": "buy", "type": "limit", "amount": 1.0, "price": 1.0}
        ],
    }  # fmt: skip
    d = evaluate(default_policy(), build_snapshot(doc), now_ms=NOW)
    out = _valid_decision(d)
    for a in out["actions"]:
        if a["type"] == "set_stop_loss":
            assert isinstance(a.get("price"), float) and math.isfinite(a["price"])


@given(base=S.snapshots(max_positions=2), data=st.data())
def test_near_valid_orders_raise_only_snapshot_error(base, data):
    odoc = data.draw(S.mutated(data.draw(S.orders(base)), extra_keys=("amount", "price")))
    try:
        order = build_order(odoc)
    except SnapshotError:
        return
    _valid_decision(evaluate(default_policy(), build_snapshot(base), order, now_ms=NOW))


@relaxed
@given(data=st.data())
def test_near_valid_policies_raise_only_policy_error(data):
    base = data.draw(S.policies())
    doc = data.draw(S.mutated(base, extra_keys=("spec", "rules", "params", "extends")))
    try:
        policy = load_policy(doc)
    except PolicyError as exc:
        assert exc.problems
        return
    snap = build_snapshot(data.draw(S.snapshots(max_positions=2)))
    _valid_decision(evaluate(policy, snap, now_ms=NOW))


# --------------------------------------------------------------------------- monotonic


@relaxed
@given(doc=S.snapshots(max_positions=3), data=st.data())
def test_a_larger_order_never_turns_deny_into_allow(doc, data):
    policy = _load(data.draw(S.policies(types=S.SIZE_MONOTONE, mode="enforce")))
    snap = build_snapshot(doc)
    small = data.draw(st.floats(min_value=1e-6, max_value=1e4), label="small")
    factor = data.draw(st.floats(min_value=1.0, max_value=100.0), label="factor")
    base = data.draw(S.orders(doc, amount=small * factor), label="big order")
    # An order that fills now: at the mark or worse. A resting limit (a buy below the
    # mark) is projected as filled at its price with the mark unchanged, which credits
    # unrealized profit growing with the amount: a known non-monotonicity of the model.
    mark = S.mark_of(doc, base["symbol"])
    if mark is not None and "price" in base:
        worse = data.draw(st.floats(min_value=1.0, max_value=1.5), label="worse")
        base["price"] = mark * worse if base["side"] == "buy" else mark / worse
    big = build_order(base)
    small_order = build_order({**base, "amount": small})
    d_big = evaluate(policy, snap, big, now_ms=NOW)
    d_small = evaluate(policy, snap, small_order, now_ms=NOW)
    if d_big.decision == "allow":
        assert d_small.decision == "allow", (
            f"{small} denied but {small * factor} allowed: "
            f"{[v.reason() for v in d_small.violations if v.blocking]}"
        )


def _distance(pm) -> float:
    """Signed distance of the liquidation price from the mark (+inf: none)."""
    return math.inf if pm.liquidationDistancePct is None else pm.liquidationDistancePct


def _not_closer(after: float, before: float) -> bool:
    if math.isinf(before):
        return math.isinf(after)
    return after >= before - 1e-9 * max(1.0, abs(before))


MODELS = ("binance", "generic")


@given(
    doc=S.snapshots(max_positions=3),
    model=st.sampled_from(MODELS),
    more=st.floats(min_value=0.0, max_value=1e6),
    data=st.data(),
)
def test_adding_isolated_margin_never_moves_liquidation_closer(doc, model, more, data):
    assume(doc["positions"])
    i = data.draw(st.integers(0, len(doc["positions"]) - 1))
    p = doc["positions"][i]
    if p["marginMode"] != "isolated":
        p["marginMode"], p["isolatedMargin"] = "isolated", data.draw(S.money)
    richer = json.loads(json.dumps(doc))
    richer["positions"][i]["isolatedMargin"] += more
    m = get_registry().margin_model(model)
    before = compute_metrics(build_snapshot(doc), m).positions[i]
    after = compute_metrics(build_snapshot(richer), m).positions[i]
    assert _not_closer(_distance(after), _distance(before)), (doc["positions"][i], more)


@given(
    doc=S.snapshots(max_positions=3),
    model=st.sampled_from(MODELS),
    more=st.floats(min_value=0.0, max_value=1e6),
)
def test_more_wallet_never_moves_a_cross_liquidation_closer(doc, model, more):
    assume(doc["positions"])
    doc["positions"][0]["marginMode"] = "cross"
    cross = [i for i, p in enumerate(doc["positions"]) if p["marginMode"] == "cross"]
    richer = {**doc, "walletBalance": doc["walletBalance"] + more}
    m = get_registry().margin_model(model)
    mb = compute_metrics(build_snapshot(doc), m)
    cross_mm = sum(pm.maintenanceMargin or 0.0 for pm in mb.positions if pm.marginMode == "cross")
    cross_upnl = sum(pm.unrealizedPnl for pm in mb.positions if pm.marginMode == "cross")
    # From a pool not already past liquidation: there a short whose root is <= 0 (no
    # price is safe) reports no liquidation price, and more wallet then gives it one.
    assume(mb.crossWalletBalance + cross_upnl > cross_mm)
    before = mb.positions
    after = compute_metrics(build_snapshot(richer), m).positions
    for i in cross:
        b, a = _distance(before[i]), _distance(after[i])
        assert _not_closer(a, b), (doc["positions"][i], b, a)
