"""The embedding API as a bot uses it: Guard.check/acheck, reload, threads, audit queue,
time budget (fail closed on a hung rule) and the kill switch."""

from __future__ import annotations

import asyncio
import copy
import threading
import time

import pytest

import riskguard
from riskguard import Action, Decision, Guard, Order, PolicyError, Snapshot, Violation
from riskguard.model.schemas import validator
from riskguard.model.snapshot import build_snapshot

from .conftest import POLICIES, snapshot_doc

DEFAULT = POLICIES / "default.yaml"

# A test plugin: a rule that hangs until released, and a stateful rule with a racy
# read-modify-write (only the guard's evaluation lock keeps its count exact).
PLUGIN = """
import threading, time
from riskguard import hookimpl
from riskguard.rules.base import BaseRule, RuleType

class Hang(BaseRule):
    release = threading.Event()
    entered = threading.Event()
    def evaluate(self, ctx):
        self.entered.set()
        self.release.wait(20)

class Count(BaseRule):
    def evaluate(self, ctx):
        n = ctx.state.get("n", 0)
        time.sleep(0)  # invite a thread switch between read and write
        ctx.state["n"] = n + 1

OBJ = {"type": "object"}

@hookimpl
def riskguard_rule_types(register):
    register(RuleType("test_hang", OBJ, Hang, "hangs until released", {}))
    register(RuleType("test_count", OBJ, Count, "counts evaluations in state", {}))
"""


def policy_doc(*rules, name="t", version="1", mode="enforce"):
    return {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": name, "version": version},
        "spec": {"mode": mode, "rules": list(rules)},
    }


MU = {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35, "warnAt": 0.30}}
HANG = {"id": "hang", "type": "test_hang", "severity": "error"}
COUNT = {"id": "count", "type": "test_count", "severity": "info"}
SOL_BUY = {
    "symbol": "SOL/USDT:USDT",
    "side": "buy",
    "amount": 200,
    "leverage": 5,
    "stopLossPrice": 140,
}


@pytest.fixture
def plugin(tmp_path):
    p = tmp_path / "test_plugin.py"
    p.write_text(PLUGIN)
    return str(p)


class MemoryLog:
    """An audit sink that records in memory; ``gate`` can hold appends to mimic a slow disk."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.records: list[tuple[str, dict]] = []
        self.gate = gate
        self.fail = fail
        self.waiting = threading.Event()
        self.closed = False

    def append(self, event, record):
        if self.gate is not None:
            self.waiting.set()
            self.gate.wait(20)
        if self.fail:
            raise OSError(28, "No space left on device")
        self.records.append((event, record))

    def close(self):
        self.closed = True


def test_public_api_is_exported():
    for name in ("Guard", "Decision", "Violation", "Action", "load_policy", "evaluate"):
        assert name in riskguard.__all__ and getattr(riskguard, name) is not None
    g = Guard.from_file(DEFAULT)
    d = g.check(snapshot_doc(walletBalance=1500))
    assert isinstance(d, Decision) and d.decision == "deny"
    assert all(isinstance(v, Violation) for v in d.violations)
    assert all(isinstance(a, Action) for a in d.actions)
    validator("decision").validate(d.to_dict())


def test_dict_and_object_inputs_decide_alike():
    g = Guard.from_file(DEFAULT)
    doc = snapshot_doc()
    by_dict = g.check(doc, SOL_BUY)
    by_obj = g.check(build_snapshot(doc), Order(**SOL_BUY))
    assert by_dict.decision == by_obj.decision == "resize"
    assert by_dict.maxAllowedAmount == pytest.approx(by_obj.maxAllowedAmount)
    assert [v.code for v in by_dict.violations] == [v.code for v in by_obj.violations]


def test_max_order_amount_is_what_a_resize_sends():
    g = Guard.from_file(DEFAULT)
    snap = build_snapshot(snapshot_doc())
    amount = g.max_order_amount(snap, SOL_BUY)
    assert 0 < amount < SOL_BUY["amount"]
    assert g.check(snap, {**SOL_BUY, "amount": amount}).decision == "allow"
    assert g.check(snap, {**SOL_BUY, "amount": amount * 1.01}).decision != "allow"


# ----------------------------------------------------------------- reload


def test_reload_swaps_and_a_bad_policy_keeps_the_old(tmp_path):
    path = tmp_path / "p.yaml"
    import yaml

    path.write_text(yaml.safe_dump(policy_doc(MU, version="1")))
    g = Guard.from_file(path)
    doc = snapshot_doc(walletBalance=1500)  # utilization 37.8 %
    assert g.check(doc).decision == "deny"

    loose = copy.deepcopy(MU)
    loose["params"]["max"] = 0.9
    path.write_text(yaml.safe_dump(policy_doc(loose, version="2")))
    new = g.reload()
    assert new.version == "2" and g.policy is new
    assert g.check(doc).decision == "allow"

    path.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: t}\nspec:\n  rules: [{id: x, type: nope}]\n"
    )
    with pytest.raises(PolicyError, match="unknown rule type"):
        g.reload()
    assert g.policy is new and g.check(doc).decision == "allow"


def test_reload_is_atomic_under_concurrent_checks():
    strict = policy_doc(MU, name="strict", version="1")
    loose_rule = copy.deepcopy(MU)
    loose_rule["params"]["max"] = 0.9
    loose = policy_doc(loose_rule, name="loose", version="2")
    g = Guard.from_dict(strict)
    snap = build_snapshot(snapshot_doc(walletBalance=1500))
    stop = threading.Event()
    seen: list[tuple[str, str]] = []

    def checker():
        while not stop.is_set():
            d = g.check(snap)
            seen.append((d.policy["name"], d.decision))

    threads = [threading.Thread(target=checker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(30):
        g.reload(loose if i % 2 == 0 else strict)
    stop.set()
    for t in threads:
        t.join()
    assert {name for name, _ in seen} <= {"strict", "loose"} and seen
    # every decision matches the policy it names: never a half-swapped one
    assert all((name == "strict") == (dec == "deny") for name, dec in seen)


# ----------------------------------------------------------------- threads and state


def test_stateful_rules_count_exactly_under_threads(plugin):
    g = Guard.from_dict(policy_doc(COUNT), plugins=[plugin])
    snap = build_snapshot(snapshot_doc())
    n_threads, per = 8, 200

    def work():
        for _ in range(per):
            g.check(snap)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert g.state["n"] == n_threads * per


def test_check_quiet_neither_logs_nor_changes_state(plugin):
    sink = MemoryLog()
    g = Guard.from_dict(policy_doc(COUNT), plugins=[plugin], audit_log=sink)
    g.check_quiet(snapshot_doc())
    g.close()
    assert "n" not in g.state and sink.records == []


# ----------------------------------------------------------------- audit queue


def test_audit_records_are_written_in_order_and_drained_by_close():
    sink = MemoryLog()
    g = Guard.from_file(DEFAULT, audit_log=sink)
    ids = [g.check(snapshot_doc(), SOL_BUY).decisionId for _ in range(20)]
    g.close()
    assert sink.closed
    assert [r["decisionId"] for e, r in sink.records if e == "decision"] == ids
    assert all(r["snapshot"]["digest"].startswith("sha256:") for _, r in sink.records)


def test_dict_snapshot_is_hashed_before_the_caller_can_change_it():
    gate = threading.Event()
    sink = MemoryLog(gate=gate)
    g = Guard.from_file(DEFAULT, audit_log=sink)
    doc = snapshot_doc()
    d = g.check(doc)
    expected = riskguard.engine.decision.digest(copy.deepcopy(doc))
    doc["walletBalance"] = 1.0  # the bot reuses its dict while the record is queued
    gate.set()
    g.close()
    assert sink.records[0][1]["snapshot"]["digest"] == expected == d.snapshot_digest


def test_acheck_never_waits_for_the_audit_disk():
    gate = threading.Event()
    sink = MemoryLog(gate=gate)
    g = Guard.from_file(DEFAULT, audit_log=sink)

    async def bot():
        decisions = [await g.acheck(snapshot_doc(), SOL_BUY) for _ in range(3)]
        # the writer is still blocked on the first record while every check has returned
        return decisions, sink.waiting.wait(5), len(sink.records)

    decisions, writer_blocked, written = asyncio.run(bot())
    assert [d.decision for d in decisions] == ["resize"] * 3
    assert writer_blocked and written == 0
    gate.set()
    g.flush()
    assert len(sink.records) == 3
    g.close()


def test_a_failed_audit_write_fails_closed():
    sink = MemoryLog(fail=True)
    g = Guard.from_file(DEFAULT, audit_log=sink)
    assert g.check(snapshot_doc()).decision == "allow"
    with pytest.raises(riskguard.AuditWriteError, match="No space left"):
        g.flush()
    d = g.check(snapshot_doc(), SOL_BUY)
    assert d.decision == "deny" and [v.code for v in d.violations] == ["AUDIT_LOG_UNAVAILABLE"]
    assert d.actions[0].type == "block_order"
    validator("decision").validate(d.to_dict())


def test_real_audit_log_file_gets_every_decision(tmp_path):
    pytest.importorskip("riskguard.decisionlog.log")
    path = tmp_path / "audit.jsonl"
    with Guard.from_file(DEFAULT, audit_log=path) as g:
        for _ in range(5):
            g.check(snapshot_doc(), SOL_BUY)
        g.set_trading_state("halted", reason="test")
    lines = path.read_text().splitlines()
    assert len(lines) == 6


# ----------------------------------------------------------------- time budget


def test_hung_rule_is_denied_within_the_budget_without_waiting(plugin):
    g = Guard.from_dict(policy_doc(HANG), plugins=[plugin], time_budget_ms=50)
    rule = g.policy.rules[0]
    rule.release.clear()
    try:
        d = g.check(snapshot_doc(), SOL_BUY)
        assert rule.entered.is_set()  # it really was evaluating when the guard gave up
        assert d.decision == "deny"
        assert [v.code for v in d.violations] == ["ENGINE_TIME_BUDGET_EXCEEDED"]
        assert d.errors and d.errors[0]["engine"] == "ENGINE_TIME_BUDGET_EXCEEDED"
        assert d.actions[0].type == "block_order" and d.maxAllowedAmount == 0.0
        validator("decision").validate(d.to_dict())
    finally:
        rule.release.set()


def test_acheck_with_a_hung_rule_keeps_the_loop_running(plugin):
    g = Guard.from_dict(policy_doc(HANG), plugins=[plugin], time_budget_ms=50)
    rule = g.policy.rules[0]
    rule.release.clear()
    ticks = []

    async def ticker():
        for i in range(1000):
            ticks.append(i)
            await asyncio.sleep(0)

    async def main():
        t = asyncio.create_task(ticker())
        d = await g.acheck(snapshot_doc(), SOL_BUY)
        t.cancel()
        return d

    try:
        d = asyncio.run(main())
    finally:
        rule.release.set()
    assert d.decision == "deny" and d.violations[0].code == "ENGINE_TIME_BUDGET_EXCEEDED"
    assert len(ticks) > 1  # the loop ran other tasks while the check waited


def test_stuck_workers_are_capped_and_the_guard_recovers(plugin):
    g = Guard.from_dict(policy_doc(HANG), plugins=[plugin], time_budget_ms=30, max_stuck_workers=1)
    rule = g.policy.rules[0]
    rule.release.clear()
    try:
        first = g.check(snapshot_doc())
        second = g.check(snapshot_doc())
        assert (
            first.violations[0].code == second.violations[0].code == "ENGINE_TIME_BUDGET_EXCEEDED"
        )
        assert second.violations[0].context["stuckWorkers"] == 1
        assert "without evaluating" in second.violations[0].message
    finally:
        rule.release.set()
    for _ in range(200):  # the abandoned worker exits once its rule returns
        if g._runner.stuck() == 0:
            break
        time.sleep(0.01)
    g.reload(policy_doc(MU))
    assert g.check(snapshot_doc()).decision == "allow"  # through the worker, within budget


def test_budget_in_monitor_mode_records_and_allows(plugin):
    g = Guard.from_dict(policy_doc(HANG, mode="monitor"), plugins=[plugin], time_budget_ms=30)
    rule = g.policy.rules[0]
    rule.release.clear()
    try:
        d = g.check(snapshot_doc())
    finally:
        rule.release.set()
    assert d.decision == "allow" and d.wouldDecide == "deny"
    assert d.violations[0].code == "ENGINE_TIME_BUDGET_EXCEEDED"


def test_budget_rejects_nonsense():
    with pytest.raises(ValueError, match="time_budget_ms"):
        Guard.from_file(DEFAULT, time_budget_ms=0)


# ----------------------------------------------------------------- kill switch


def test_kill_switch_writes_state_and_is_audited():
    sink = MemoryLog()
    g = Guard.from_file(DEFAULT, audit_log=sink)
    assert g.trading_state == "active"
    assert g.set_trading_state("halted", reason="exchange outage") == "active"
    assert g.state["tradingState"] == "halted" and g.trading_state == "halted"
    assert g.set_trading_state("reducing") == "halted"
    with pytest.raises(ValueError, match="active, reducing, halted"):
        g.set_trading_state("paused")
    g.close()
    events = [(e, r["state"], r["previous"]) for e, r in sink.records if e == "trading_state"]
    assert events == [
        ("trading_state", "halted", "active"),
        ("trading_state", "reducing", "halted"),
    ]


def test_halted_guard_denies_new_exposure_when_the_rule_exists():
    from riskguard.engine.plugins import get_registry

    if "trading_state" not in get_registry().rule_types:
        pytest.skip("the trading_state rule type is not built in yet")
    g = Guard.from_dict(policy_doc({"id": "ks", "type": "trading_state"}))
    snap = build_snapshot(snapshot_doc())
    assert g.check(snap, SOL_BUY).decision == "allow"
    g.set_trading_state("halted")
    assert g.check(snap, SOL_BUY).decision == "deny"


def test_guard_accepts_snapshot_objects_built_in_code():
    g = Guard.from_file(DEFAULT)
    snap = Snapshot(walletBalance=1000.0, exchange="binance", account="code")
    assert g.check(snap).decision == "allow"


# ----------------------------------------------------------------- hot-path equivalence
# compute_metrics inlines the base margin model's arithmetic and shares each position's
# tier between maintenance margin and liquidation price; these tests pin it to the
# model's own methods (a subclass that overrides them takes the general path).

from dataclasses import FrozenInstanceError, replace  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from riskguard.margin.binance import BINANCE  # noqa: E402
from riskguard.margin.generic import GENERIC  # noqa: E402
from riskguard.margin.metrics import PositionMetrics, compute_margin, compute_metrics  # noqa: E402


class _General(type(BINANCE)):
    """Same data, overridden methods: compute_metrics must call them one by one."""

    def maintenance_margin(self, pos, tiers, mark):
        return super().maintenance_margin(pos, tiers, mark)

    def liquidation_price(self, *a, **k):
        return super().liquidation_price(*a, **k)

    @staticmethod
    def unrealized_pnl(pos, mark):
        return type(BINANCE).unrealized_pnl(pos, mark)

    @staticmethod
    def notional(pos, mark):
        return type(BINANCE).notional(pos, mark)


def _general(model):
    return _General(**{f: getattr(model, f) for f in model.__dataclass_fields__})


_price = st.floats(1, 100_000, allow_nan=False)


@st.composite
def accounts(draw):
    n = draw(st.integers(1, 6))
    positions, tiers = [], {}
    for i in range(n):
        sym = f"S{i}/USDT:USDT"
        entry = draw(_price)
        mark = entry * draw(st.floats(0.5, 1.5))
        pos = {
            "symbol": sym,
            "side": draw(st.sampled_from(["long", "short"])),
            "contracts": draw(st.floats(0.001, 1000)),
            "entryPrice": entry,
            "markPrice": mark,
            "leverage": draw(st.sampled_from([None, 1, 5, 20, 125])),
            "inverse": draw(st.booleans()),
            "marginMode": draw(st.sampled_from(["cross", "isolated"])),
        }
        if pos["leverage"] is None:
            del pos["leverage"]
        if pos["marginMode"] == "isolated":
            pos["isolatedMargin"] = draw(st.floats(0, 50_000))
        positions.append(pos)
        k = draw(st.integers(0, 4))
        if k:
            floors = sorted(
                draw(st.lists(st.floats(1, 5e6), min_size=k - 1, max_size=k - 1, unique=True))
            )
            lo = [0.0, *floors]
            rates = sorted(draw(st.lists(st.floats(0.001, 0.2), min_size=k, max_size=k)))
            tiers[sym] = [
                {
                    "minNotional": lo[j],
                    "maxNotional": lo[j + 1] if j + 1 < k else None,
                    "maintenanceMarginRate": rates[j],
                }
                for j in range(k)
            ]
    doc = snapshot_doc(positions=positions, leverageTiers=tiers, markets={})
    doc["walletBalance"] = draw(st.floats(-1000, 1e6))
    return build_snapshot(doc)


@given(accounts())
def test_fast_metrics_equal_the_models_own_methods(snap):
    for model in (BINANCE, GENERIC):
        fast = compute_metrics(snap, model).to_dict()
        slow = compute_metrics(snap, _general(model)).to_dict()
        assert repr(fast) == repr(slow)  # bit for bit (repr keeps NaN and -0.0 apart)
        m = compute_metrics(snap, model)
        margin = compute_margin(snap, model)
        assert (margin.equity, margin.initialMargin, margin.marginUtilization) == (
            m.equity,
            m.initialMargin,
            m.marginUtilization,
        )
        assert [
            (p.symbol, p.initialMargin, p.unrealizedPnl, p.notional) for p in margin.positions
        ] == [(p.symbol, p.initialMargin, p.unrealizedPnl, p.notional) for p in m.positions]


@st.composite
def rootless_books(draw):
    """Books whose positions often have no positive root in their mark's tier: cross longs
    well above the lowest tier with a wallet near or above their entry value, a short or an
    isolated leg beside them, tier tables with and without hand-made (discontinuous)
    maintenance amounts — the tier walk's cases (``_first_hit``), reached from the hot path."""
    k = draw(st.integers(2, 5))
    upper = draw(st.lists(st.floats(100, 1e6), min_size=k - 1, max_size=k - 1, unique=True))
    floors = [0.0, *sorted(upper)]
    rates = sorted(draw(st.lists(st.floats(0.001, 0.3), min_size=k, max_size=k)))
    hand_made = draw(st.booleans())
    tiers = []
    for j in range(k):
        t = {
            "minNotional": floors[j],
            "maxNotional": floors[j + 1] if j + 1 < k else None,
            "maintenanceMarginRate": rates[j],
        }
        if hand_made:
            t["maintenanceAmount"] = draw(st.floats(0, 5e4))
        tiers.append(t)
    positions = []
    for i in range(draw(st.integers(1, 3))):
        entry = draw(_price)
        mark = entry * draw(st.floats(0.8, 1.3))
        notional = draw(st.floats(floors[-1], floors[-1] * 3 + 1000))  # at the mark: top tier
        pos = {
            "symbol": f"W{i}/USDT:USDT",
            "side": draw(st.sampled_from(["long", "long", "long", "short"])),
            "contracts": notional / mark,
            "entryPrice": entry,
            "markPrice": mark,
            "leverage": draw(st.sampled_from([1, 2, 10])),
            "marginMode": draw(st.sampled_from(["cross", "cross", "cross", "isolated"])),
        }
        if pos["marginMode"] == "isolated":
            pos["isolatedMargin"] = notional * draw(st.floats(0.05, 1.5))
        positions.append(pos)
    doc = snapshot_doc(
        positions=positions,
        leverageTiers={p["symbol"]: tiers for p in positions},
        markets={},
    )
    value = sum(p["contracts"] * p["entryPrice"] for p in positions)
    if draw(st.booleans()):
        doc["walletBalance"] = value * draw(st.floats(0.0, 2.0))
    else:
        # a wallet just below the entry value: no positive root in the mark's (top) tier,
        # whose maintenance amount lifts the balance past the entry value, but one lower
        cum = sum(floors[j] * (rates[j] - rates[j - 1]) for j in range(1, k))
        doc["walletBalance"] = max(0.0, value - cum * draw(st.floats(0.0, 1.0)))
    return build_snapshot(doc)


@given(rootless_books())
def test_fast_metrics_equal_the_models_tier_walk(snap):
    for model in (BINANCE, GENERIC):
        fast = compute_metrics(snap, model).to_dict()
        slow = compute_metrics(snap, _general(model)).to_dict()
        assert repr(fast) == repr(slow)  # bit for bit


def test_metrics_records_stay_frozen_with_the_same_signature():
    m = compute_metrics(build_snapshot(snapshot_doc()), BINANCE)
    p = m.positions[0]
    with pytest.raises(FrozenInstanceError):
        p.notional = 1.0  # type: ignore[misc]
    assert replace(p, notional=1.0).notional == 1.0 and p.notional != 1.0
    assert PositionMetrics(**p.to_dict()) == p


def test_decision_ids_are_sortable_ulids():
    from riskguard.engine.decision import new_decision_id

    ids = [new_decision_id(ms) for ms in (0, 1, 1_795_521_600_000, 2**48 - 1)]
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert ids == sorted(ids) and ids[0].startswith("0000000000")
    assert ids[-1].startswith("7ZZZZZZZZZ")


def test_a_snapshot_checked_with_several_orders_is_hashed_once_and_right():
    sink = MemoryLog()
    g = Guard.from_file(DEFAULT, audit_log=sink)
    snap = build_snapshot(snapshot_doc())
    other = build_snapshot(snapshot_doc(walletBalance=9000.0))
    for s in (snap, snap, other, snap):
        g.check(s, SOL_BUY)
    g.close()
    got = [r["snapshot"]["digest"] for _, r in sink.records]
    want = [riskguard.engine.decision.digest(s.to_dict()) for s in (snap, snap, other, snap)]
    assert got == want and got[0] != got[2]


# ----------------------------------------------------------------- merged stops


def _stops(doc: dict) -> list[Action]:
    return [a for a in Guard.from_file(DEFAULT).check(doc).actions if a.type == "set_stop_loss"]


def _two_sided(sides: tuple[str, ...]) -> dict:
    return {
        "schemaVersion": 1, "account": "h", "exchange": "binance", "settle": "USDT",
        "timestamp": "2026-11-24T12:00:00Z", "walletBalance": 10000,
        "positions": [
            {"symbol": "BTC/USDT:USDT", "side": s, "contracts": 0.05, "entryPrice": 60000,
             "markPrice": 61000, "leverage": 10, "marginMode": "isolated", "isolatedMargin": 300}
            for s in sides
        ],
    }  # fmt: skip


def test_stops_from_several_rules_merge_into_the_most_protective_one():
    """No stop: stop-before-liquidation and risk-per-trade both propose; one stop remains."""
    [stop] = _stops(_two_sided(("long",)))
    assert stop.params["rules"] == ["risk-per-trade", "stop-before-liquidation"]
    # 1 % of equity 10,050 is 100.50: over 0.05 BTC, 2,010 below the entry
    assert stop.params["price"] == pytest.approx(57990.0)


def test_hedged_positions_keep_a_stop_each():
    """A long and a short on one symbol (hedge mode): a stop names only the symbol, so the
    engine cannot merge them without dropping one side's stop; each proposal is kept."""
    stops = _stops(_two_sided(("long", "short")))
    prices = sorted(a.params["price"] for a in stops)
    assert len(stops) == 4 and all("rules" not in a.params for a in stops)
    assert prices[0] < 61000.0 < prices[-1]  # the long's stops below the mark, the short's above
    # equity 10,000 (the PnLs cancel): each side's risk budget stop is 2,000 from the entry
    assert prices[1] == pytest.approx(58000.0) and prices[2] == pytest.approx(62000.0)


# ----------------------------------------------------------------- dict path, tier memo
# Guard.check reads a dict's leverage-tier tables once per distinct table (the bot sends
# the same ones every tick); the decision and the errors must be those of a fresh read.

_TABLE = [
    {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maxLeverage": 125},
    {
        "minNotional": 50000,
        "maxNotional": 250000,
        "maintenanceMarginRate": 0.005,
        "maxLeverage": 100,
    },
]


def test_dict_checks_with_remembered_tiers_decide_as_objects_do():
    g = Guard.from_file(DEFAULT)
    doc = snapshot_doc(leverageTiers={"BTC/USDT:USDT": copy.deepcopy(_TABLE)})
    order = {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01, "price": 61000}
    first = g.check(copy.deepcopy(doc), order)
    again = g.check(copy.deepcopy(doc), order)  # the table now comes from the memo
    objects = g.check(build_snapshot(copy.deepcopy(doc)), Order(**order))
    for d in (again, objects):
        assert (d.decision, d.maxAllowedAmount, [v.code for v in d.violations]) == (
            first.decision,
            first.maxAllowedAmount,
            [v.code for v in first.violations],
        )
    assert again.metrics.to_dict() == first.metrics.to_dict()


@pytest.mark.parametrize(
    "mutate, path",
    [
        (
            lambda t: t[1].update(maintenanceMarginRate=True),  # equal to 1 in Python
            '$.leverageTiers["BTC/USDT:USDT"][1].maintenanceMarginRate',
        ),
        (
            lambda t: t[0].update(maintenanceMarginRate=-0.004),
            '$.leverageTiers["BTC/USDT:USDT"][0].maintenanceMarginRate',
        ),
        (lambda t: t.reverse(), '$.leverageTiers["BTC/USDT:USDT"]'),
    ],
)
def test_a_bad_table_after_a_good_one_is_still_named_by_path(mutate, path):
    g = Guard.from_file(DEFAULT)
    doc = snapshot_doc(leverageTiers={"BTC/USDT:USDT": copy.deepcopy(_TABLE)})
    g.check(doc)  # remembered
    bad = copy.deepcopy(doc)
    mutate(bad["leverageTiers"]["BTC/USDT:USDT"])
    with pytest.raises(riskguard.SnapshotError) as ei:
        g.check(bad)
    assert any(p.path.startswith(path) for p in ei.value.problems), [
        p.path for p in ei.value.problems
    ]
