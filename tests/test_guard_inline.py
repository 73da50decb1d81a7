"""``Guard.acheck(..., inline_builtin=True)`` (what ``riskguard serve`` uses): an evaluation
that runs only riskguard's own code skips the time budget's worker thread; any plugin code
(a rule type, an enrichment hook, the snapshot's margin model) still runs there, under the
budget, and fails closed."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading

import pytest

from riskguard import Guard
from riskguard.model.schemas import validator

from .conftest import POLICIES, snapshot_doc

DEFAULT = POLICIES / "default.yaml"
SOL_BUY = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 10, "leverage": 5}

PLUGIN = """
import threading
from riskguard import hookimpl
from riskguard.margin.base import MarginModel
from riskguard.rules.base import BaseRule, RuleType

SEEN = []  # the thread each piece of plugin code ran on

class Where(BaseRule):
    release = threading.Event()
    def evaluate(self, ctx):
        SEEN.append(("rule", threading.current_thread().name))
        if ctx.order is not None and ctx.order.clientOrderId == "hang":
            self.release.wait(20)
        if ctx.order is not None and ctx.order.clientOrderId == "boom":
            raise RuntimeError("plugin bug")

class Toy(MarginModel):
    def maintenance_margin(self, *a, **k):
        SEEN.append(("model", threading.current_thread().name))
        return MarginModel.maintenance_margin(self, *a, **k)

@hookimpl
def riskguard_rule_types(register):
    register(RuleType("test_where", {"type": "object"}, Where, "records its thread", {}))

@hookimpl
def riskguard_margin_models(register):
    register(Toy(name="toyex", title="Toy", source="test", defaultMaintenanceMarginRate=0.02))
"""


@pytest.fixture
def plugin(tmp_path):
    p = tmp_path / "where_plugin.py"
    p.write_text(textwrap.dedent(PLUGIN))
    return str(p)


def _seen(guard: Guard) -> list:
    """The plugin module's SEEN list (the module this guard's registry loaded)."""
    toy = guard.policy.registry.margin_models["toyex"]
    return sys.modules[type(toy).__module__].SEEN


def policy_doc(*rules):
    return {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "t", "version": "1"},
        "spec": {"rules": list(rules)},
    }


MU = {"id": "mu", "type": "margin_utilization", "params": {"max": 0.35, "warnAt": 0.30}}
WHERE = {"id": "where", "type": "test_where", "severity": "error"}


def _eval_threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.name == "riskguard-eval"}  # type: ignore[misc]


def _run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("previews", [True, False])
def test_a_built_in_policy_is_decided_inline_and_exactly_as_without_a_budget(previews):
    plain = Guard.from_file(DEFAULT, previews=previews)
    budgeted = Guard.from_file(DEFAULT, time_budget_ms=250, previews=previews)
    before = _eval_threads()
    for order in (SOL_BUY, {**SOL_BUY, "amount": 5000}, None):
        want = plain.check(snapshot_doc(), order)
        got = _run(budgeted.acheck(snapshot_doc(), order, inline_builtin=True))
        a, b = want.to_dict(), got.to_dict()
        for d in (a, b):
            for k in ("decisionId", "timestamp", "durationUs"):
                d.pop(k, None)
        assert a == b
    assert _eval_threads() == before  # no worker thread was started
    # without the flag the same guard hands the evaluation to its worker thread
    _run(budgeted.acheck(snapshot_doc(), SOL_BUY))
    assert _eval_threads() - before


def test_plugin_rule_code_still_runs_on_the_worker_thread_and_fails_closed(plugin):
    g = Guard.from_dict(policy_doc(MU, WHERE), plugins=[plugin], time_budget_ms=250)
    seen = _seen(g)
    seen.clear()
    d = _run(g.acheck(snapshot_doc(), SOL_BUY, inline_builtin=True))
    assert d.decision == "allow"
    assert seen and set(seen) == {("rule", "riskguard-eval")}
    boom = _run(g.acheck(snapshot_doc(), {**SOL_BUY, "clientOrderId": "boom"}, inline_builtin=True))
    assert boom.decision == "deny"
    assert "RULE_ERROR" in {v.code for v in boom.violations}


def test_a_plugin_margin_model_runs_on_the_worker_thread_only_for_its_exchange(plugin):
    g = Guard.from_dict(policy_doc(MU), plugins=[plugin], time_budget_ms=250)
    seen = _seen(g)
    seen.clear()
    before = _eval_threads()
    d = _run(g.acheck(snapshot_doc(), SOL_BUY, inline_builtin=True))  # binance: built in
    assert d.decision == "allow" and seen == [] and _eval_threads() == before
    toy = _run(g.acheck(snapshot_doc(exchange="toyex"), SOL_BUY, inline_builtin=True))
    assert toy.policy == d.policy
    assert seen and {where for _, where in seen} == {"riskguard-eval"}


def test_an_inline_evaluation_past_the_budget_is_denied_as_on_the_thread():
    g = Guard.from_file(DEFAULT, time_budget_ms=0.001)  # no evaluation fits in 1 µs
    d = _run(g.acheck(snapshot_doc(), SOL_BUY, inline_builtin=True))
    assert d.decision == "deny"
    assert [v.code for v in d.violations] == ["ENGINE_TIME_BUDGET_EXCEEDED"]
    assert d.maxAllowedAmount == 0.0
    validator("decision").validate(d.to_dict())


def test_inline_never_waits_on_the_loop_for_a_lock_a_hung_plugin_holds(plugin, tmp_path):
    """A stuck plugin evaluation keeps the evaluation lock; after a reload to a built-in
    policy the next check must not block the event loop waiting for it."""
    g = Guard.from_dict(policy_doc(MU, WHERE), plugins=[plugin], time_budget_ms=50)
    rule = g.policy.rules[1]
    rule.release.clear()
    ticks: list[int] = []

    async def ticker():
        for i in range(100_000):
            ticks.append(i)
            await asyncio.sleep(0)

    async def main():
        hung = await g.acheck(snapshot_doc(), {**SOL_BUY, "clientOrderId": "hang"})
        g.reload(policy_doc(MU))  # built in only, but the stuck worker holds the lock
        t = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        d = await g.acheck(snapshot_doc(), SOL_BUY, inline_builtin=True)
        n = len(ticks)
        t.cancel()
        return hung, d, n

    try:
        hung, d, n = _run(main())
    finally:
        rule.release.set()
    assert hung.violations[0].code == "ENGINE_TIME_BUDGET_EXCEEDED"
    assert d.decision == "deny" and d.violations[0].code == "ENGINE_TIME_BUDGET_EXCEEDED"
    assert n > 1  # the loop kept running while the check waited for the lock
    # once the stuck rule returns, the built-in policy is decided inline again
    for _ in range(200):
        d = _run(g.acheck(snapshot_doc(), SOL_BUY, inline_builtin=True))
        if d.decision == "allow":
            break
        threading.Event().wait(0.05)
    assert d.decision == "allow"
