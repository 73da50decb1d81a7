"""``riskguard watch`` end to end on the paper exchange: the crash path, the execution
rails, a crash mid-episode, and the command line (SIGTERM, --once, --dry-run).

The paper exchange (``riskguard.paper``) liquidates where the margin models say, so the
outcome of each run is asserted on its books: the orders it holds, its fills and its
liquidations. The price path is driven step by step and each watcher round is awaited,
so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ccxt")
pytest.importorskip("apprise")
pytest.importorskip("prometheus_client")

from riskguard.engine.decision import digest
from riskguard.faces.watch import load_config
from riskguard.faces.watch.loop import Watcher
from riskguard.paper import AsyncPaperExchange, PaperExchange
from tests.watch_helpers import Recorded, write_config

ROOT = Path(__file__).resolve().parent.parent
POLICY = str(ROOT / "policies" / "default.yaml")
CRASH = ROOT / "tests" / "fixtures" / "watch" / "crash-long.json"
SYM = "BTC/USDT:USDT"
T0 = 1_790_000_000_000


def _cfg(tmp_path: Path, **spec):
    acct = {"name": "acct", "exchange": "binanceusdm", "policy": spec.pop("policy", POLICY)}
    return load_config(write_config(tmp_path, [acct], **spec))


async def _crash(w: Watcher, paper: PaperExchange, steps: int = 40, drop: float = 0.005):
    """Mark falls ``drop`` a step from 60 000; one watcher round per step."""
    acc = w.accounts[0]
    px = 60_000.0
    for i in range(steps):
        await acc.round()
        px *= 1 - drop
        paper.step({SYM: px}, timestamp=T0 + (i + 1) * 60_000)


def _run_crash(tmp_path: Path, **spec):
    cfg = _cfg(tmp_path, **spec)
    paper = PaperExchange({"acct": json.loads(CRASH.read_text())})
    aex = AsyncPaperExchange(paper=paper)
    alerts = []

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: aex, on_alert=alerts.append)
        await _crash(w, paper)
        w.save_state()
        return w

    return asyncio.run(main()), paper, alerts


def test_crash_path_with_execute_places_a_stop_and_the_account_survives(tmp_path):
    w, paper, alerts = _run_crash(tmp_path, execution={"allow": ["set_stop_loss"]})
    acct = paper.accounts["acct"]
    assert acct.liquidations == []  # never liquidated
    fills = [e for e in paper.events if e["type"] == "fill"]
    (stop_fill,) = fills
    assert stop_fill["kind"] == "stop_loss" and stop_fill["reduceOnly"]
    (ex,) = w.executions
    assert ex["type"] == "set_stop_loss" and ex["status"] == "applied" and ex["verified"] is True
    order = paper.fetch_order(stop_fill["orderId"], SYM)
    assert order["clientOrderId"] == ex["id"]  # the rails' idempotency key reached the book
    # the stop sat before the liquidation price the model computes, and the account kept
    # the difference: more than the 4 000 left after an isolated liquidation
    assert paper.fetch_positions() == []
    assert paper.equity("acct") > 4_000.0 + 400.0
    opened = [a for a in alerts if a.kind == "open" and a.rule == "stop-before-liquidation"]
    assert len(opened) == 1 and opened[0].severity == "error"


def test_crash_path_without_execute_alerts_and_the_account_is_liquidated(tmp_path):
    w, paper, alerts = _run_crash(tmp_path)
    acct = paper.accounts["acct"]
    (liq,) = acct.liquidations
    assert liq["scope"] == "isolated" and liq["loss"] == pytest.approx(6000.0)
    assert not [e for e in paper.events if e["type"] == "fill"]  # nothing was ever sent
    assert w.executions == []
    assert paper.equity("acct") == pytest.approx(4000.0)
    kinds = {(a.rule, a.kind, a.severity) for a in alerts}
    assert ("stop-before-liquidation", "open", "error") in kinds
    assert ("stop-before-liquidation", "escalate", "critical") in kinds  # inside the buffer


def test_dry_run_runs_the_rails_and_sends_nothing(tmp_path, capsys):
    w, paper, _ = _run_crash(tmp_path, execution={"allow": ["set_stop_loss"], "dryRun": True})
    assert paper.accounts["acct"].liquidations  # nothing protected it
    assert not [e for e in paper.events if e["type"] == "fill"]
    assert w.executions and {e["status"] for e in w.executions} == {"dry-run"}
    assert "dry-run: acct: would set_stop_loss BTC/USDT:USDT" in capsys.readouterr().err


def test_warning_only_proposal_is_not_executed_unless_configured(tmp_path):
    pol = tmp_path / "warn.yaml"
    text = Path(POLICY).read_text()
    block = "      params: {required: true, bufferFraction: 0.10, bufferPct: 0.5, liquidationSource: conservative}\n      severity: error\n"
    assert block in text
    pol.write_text(text.replace(block, block.replace("severity: error", "severity: warning")))
    w, paper, _ = _run_crash(tmp_path, policy=str(pol), execution={"allow": ["set_stop_loss"]})
    assert w.executions == [] and paper.accounts["acct"].liquidations
    (tmp_path / "again").mkdir()
    w, paper, _ = _run_crash(
        tmp_path / "again",
        policy=str(pol),
        execution={"allow": ["set_stop_loss"], "minSeverity": "warning"},
    )
    assert [e["status"] for e in w.executions] == ["applied"]
    assert paper.accounts["acct"].liquidations == []


def test_hourly_budget_caps_actions(tmp_path):
    w, paper, _ = _run_crash(
        tmp_path, execution={"allow": ["set_stop_loss"], "maxActionsPerHour": 0}
    )
    assert w.executions == [] and paper.accounts["acct"].liquidations


def test_exchange_refusal_is_recorded_alerted_and_not_retried(tmp_path):
    # the account is switched to cross on the paper book after the snapshot was taken... no:
    # a stop already crossed is refused (Binance -2021); gap the mark under the proposal
    cfg = _cfg(tmp_path, execution={"allow": ["set_stop_loss"]})
    paper = PaperExchange({"acct": json.loads(CRASH.read_text())})
    aex = AsyncPaperExchange(paper=paper)

    class Gapping:
        """Moves the mark through the stop between the decision and the order."""

        def __getattr__(self, name):
            return getattr(aex, name)

        async def create_order(self, *a, **kw):
            paper.step({SYM: 54_300.0}, timestamp=T0 + 60_000)
            return await aex.create_order(*a, **kw)

    alerts = []

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: Gapping(), on_alert=alerts.append)
        for _ in range(4):
            await w.accounts[0].round()
        return w

    w = asyncio.run(main())
    (ex,) = w.executions  # refused once, never retried on the next rounds
    assert ex["status"] == "refused" and ex["exchangeCode"] == "-2021"
    assert any(a.rule == "watch.execution" and a.severity == "error" for a in alerts)
    assert paper.fetch_open_orders() == []


def test_crash_mid_episode_resumes_without_realerting_or_executing_twice(tmp_path):
    """The watcher dies after sending the stop (no shutdown, nothing flushed beyond what it
    wrote as it went); a new one on the same state file and book carries on."""
    cfg = _cfg(tmp_path, execution={"allow": ["set_stop_loss"]})
    paper = PaperExchange({"acct": json.loads(CRASH.read_text())})
    aex = AsyncPaperExchange(paper=paper)
    first, second = [], []

    async def run_first():
        w = Watcher(cfg, exchange_factory=lambda a: aex, on_alert=first.append)
        await w.accounts[0].round()  # breach, stop sent, state written before sending
        return w

    w1 = asyncio.run(run_first())
    assert [e["status"] for e in w1.executions] == ["applied"]
    # the stop order is on the book; drop it from the book's view of the rails' memory:
    # a new watcher must recognise the client id from the state file, not re-send it
    assert len(paper.fetch_open_orders()) == 1
    del w1  # no close, no final save: a kill

    async def run_second():
        w = Watcher(cfg, exchange_factory=lambda a: aex, on_alert=second.append)
        assert ("acct", "stop-before-liquidation", SYM) in w.book.open
        # the stop from before the crash is found on the next fetch: the episode resolves,
        # and nothing is sent again even if the rule still proposed it
        for _ in range(3):
            await w.accounts[0].round()
        return w

    w2 = asyncio.run(run_second())
    assert w2.executions == []
    assert len(paper.fetch_open_orders()) == 1
    assert not [a for a in second if a.kind == "open" and a.rule == "stop-before-liquidation"]
    assert [a.kind for a in second if a.rule == "stop-before-liquidation"] == ["resolve"]


# --------------------------------------------------------------------------- kill -9


CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from riskguard.faces.watch import load_config
from riskguard.faces.watch.loop import Watcher
from tests.watch_helpers import Recorded
cfg = load_config({cfg!r})
rec = Recorded("binanceusdm", log=Path({log!r}))
rec.fault = {fault}
asyncio.run(Watcher(cfg, exchange_factory=lambda a: rec.exchange).run())
"""

#: Binance refuses the stop (documented error -2021): the action is recorded as refused and
#: must never be sent again, before or after the crash
REFUSE_STOP = (
    'lambda path, n: (400, \'{"code":-2021,"msg":"Order would immediately trigger."}\') '
    "if path == '/fapi/v1/algoOrder' else None"
)


def test_kill_9_mid_episode_loses_nothing_resumes_and_never_sends_twice(tmp_path):
    cfgp = write_config(
        tmp_path,
        [{"name": "bn", "exchange": "binanceusdm", "policy": POLICY}],
        execution={"allow": ["set_stop_loss"]},
    )
    log = tmp_path / "requests.log"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), cfg=str(cfgp), log=str(log), fault=REFUSE_STOP))
    audit = tmp_path / "audit.jsonl"
    state = tmp_path / "state.json"
    child = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # bounded: up to ~60 s under load
            time.sleep(0.1)
            n = audit.read_bytes().count(b'"event":"decision"') if audit.exists() else 0
            sent = state.exists() and json.loads(state.read_text())["rails"]["bn"]["sent"]
            if n >= 20 and sent:
                break
        assert child.poll() is None, "the watcher exited by itself"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    saved = json.loads(state.read_text())
    assert saved["episodes"]  # it died mid-episode
    (cid,) = saved["rails"]["bn"]["sent"]
    posts = [x for x in log.read_text().splitlines() if x.startswith("POST")]
    assert len(posts) == 1 and cid in posts[0]  # one stop, with the rails' client id

    alerts = []

    async def resume():
        rec = Recorded("binanceusdm", log=log)
        w = Watcher(
            load_config(cfgp),
            exchange_factory=lambda a: rec.exchange,
            on_alert=alerts.append,
        )
        for _ in range(3):
            await w.accounts[0].round()
        await w._close()
        return w

    w = asyncio.run(resume())
    # the same proposal in the same episode: recognised from the state file, not re-sent
    assert w.executions == []
    assert len([x for x in log.read_text().splitlines() if x.startswith("POST")]) == 1
    # the open episodes were resumed: no second "open" for the same breach
    assert not [a for a in alerts if a.kind == "open"]
    # the decision log verifies (a torn last line is repaired on the next append)
    r = subprocess.run(
        [sys.executable, "-m", "riskguard", "verify-log", str(audit)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    refused = [x for x in records if x["event"] == "watch_execution"]
    assert [x["status"] for x in refused] == ["refused"] and refused[0]["exchangeCode"] == "-2021"
    # every decision's snapshot is in the archive (archived before it is decided)
    decided = {rec["snapshot"]["digest"] for rec in records if rec["event"] == "decision"}
    archived = set()
    for f in (tmp_path / "archive").iterdir():
        for x in f.read_text().splitlines():
            archived.add(digest(json.loads(x)))  # every line parses: no torn line is left
    assert len(decided) >= 20 and decided <= archived


# --------------------------------------------------------------------------- the CLI


def _paper_config(tmp_path: Path, **spec) -> Path:
    return write_config(
        tmp_path,
        [
            {
                "name": "acct",
                "exchange": "paper",
                "policy": POLICY,
                "options": {"snapshot": str(CRASH)},
            }
        ],
        **spec,
    )


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "riskguard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kw,
    )


def test_cli_once_dry_run_on_a_paper_account(tmp_path):
    cfg = _paper_config(tmp_path)
    r = _cli("watch", str(cfg), "--once", "--execute", "set_stop_loss", "--dry-run")
    assert r.returncode == 1, r.stderr  # error-level breaches are open
    assert "dry-run: acct: would set_stop_loss BTC/USDT:USDT" in r.stderr
    assert "Traceback" not in r.stderr
    st = json.loads((tmp_path / "state.json").read_text())
    assert {e["rule"] for e in st["episodes"]} >= {"stop-before-liquidation"}
    r = _cli("watch", "--help")
    assert "--execute" in r.stdout and "SIGUSR1" in r.stdout


def test_cli_sigterm_drains_and_exits_cleanly(tmp_path):
    cfg = _paper_config(tmp_path, metrics={"listen": "127.0.0.1:0"})
    p = subprocess.Popen(
        [sys.executable, "-m", "riskguard", "watch", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    audit = tmp_path / "audit.jsonl"
    try:
        for _ in range(600):
            time.sleep(0.1)
            if audit.exists() and audit.read_bytes().count(b'"event":"decision"') >= 3:
                break
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode in (0, 1), err  # 1: the breach is still open at exit
    assert "Traceback" not in err
    assert _cli("verify-log", str(audit)).returncode == 0
    assert json.loads((tmp_path / "state.json").read_text())["episodes"]


def test_watch_bench_quick_runs_and_sees_every_step():
    """The benchmark's smoke mode: a table, every price step detected (no timing asserted)."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "watch_bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(x for x in r.stdout.splitlines() if x.startswith("| 20 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-1] == "0"  # missed
    assert int(cells[-2]) == 40  # 20 accounts x 2 drops


def test_stream_auto_wakes_on_position_updates_and_falls_back_to_polling(tmp_path):
    """An exchange with ccxt.pro's ``watchPositions`` wakes the account at once; when the
    websocket fails the account polls instead. The interval is an hour: only a wake-up
    can make a second round happen within this test's bounded loop."""
    cfg = load_config(
        write_config(
            tmp_path,
            [{"name": "acct", "exchange": "binanceusdm", "policy": POLICY}],
            interval=3600,
        )
    )
    paper = PaperExchange({"acct": json.loads(CRASH.read_text())})
    updates: asyncio.Queue = asyncio.Queue()

    class Streaming(AsyncPaperExchange):
        """The paper exchange with ccxt.pro's watch_positions (pushed by the test)."""

        async def watch_positions(self, symbols=None, since=None, limit=None, params=None):
            got = await updates.get()
            if isinstance(got, Exception):
                raise got
            return await self.fetch_positions()

    ex = Streaming(paper=paper)
    ex.has["watchPositions"] = True

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: ex)
        acc = w.accounts[0]
        task = asyncio.ensure_future(w.run())
        for _ in range(2000):
            await asyncio.sleep(0.005)
            if acc.rounds >= 1:
                break
        paper.step({SYM: 58_000.0}, timestamp=T0 + 60_000)
        updates.put_nowait("position update")
        for _ in range(2000):
            await asyncio.sleep(0.005)
            if acc.rounds >= 2:
                break
        woke = acc.rounds
        updates.put_nowait(ConnectionError("websocket closed"))
        for _ in range(200):
            await asyncio.sleep(0.005)
            if not acc._stream_ok:
                break
        streaming_after_failure = acc._stream_ok
        w.stop()
        await asyncio.wait_for(task, 30)
        return woke, streaming_after_failure, acc.last_snapshot

    woke, streaming, snap = asyncio.run(main())
    assert woke == 2  # the update woke the account long before its hourly poll
    assert snap.positions[0].markPrice == pytest.approx(58_000.0)
    assert streaming is False  # the failed websocket left the account polling
