"""``riskguard watch`` against ccxt's real exchange classes answered from recordings.

ccxt's ``binanceusdm`` (and ``bybit``) run as they do against the exchange — request
signing, response parsing, error mapping — with only the HTTP layer answered from
responses recorded in ccxt's own repository (``tests/fixtures/ccxt/recorded``). Alerts go
through apprise's ``json://`` route to a real HTTP server on loopback; ``/metrics`` is
scraped over HTTP and parsed with prometheus_client's parser. Loops are bounded by round
counts, never by wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("ccxt")
pytest.importorskip("apprise")
pytest.importorskip("prometheus_client")

from riskguard.faces.watch import load_config
from riskguard.faces.watch.archive import SnapshotArchive
from riskguard.faces.watch.loop import Watcher
from tests.watch_helpers import AlertReceiver, Recorded, write_config

ROOT = Path(__file__).resolve().parent.parent
POLICY = str(ROOT / "policies" / "default.yaml")
CLI = [sys.executable, "-m", "riskguard"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def _account(name: str, exchange: str = "binanceusdm", **kw) -> dict:
    return {"name": name, "exchange": exchange, "policy": POLICY, **kw}


async def _run_until(w: Watcher, cond, *, max_rounds: int = 400) -> None:
    """Run the watcher until ``cond()`` holds (checked every round), bounded by rounds."""
    task = asyncio.ensure_future(w.run())
    try:
        for _ in range(max_rounds * 20):
            await asyncio.sleep(0.005)
            if cond() or task.done():
                break
            if max(a.rounds + a.failures for a in w.accounts) > max_rounds:
                break
    finally:
        w.stop()
        await asyncio.wait_for(task, 30)


# --------------------------------------------------------------------------- config


def test_validate_reports_watch_config_errors_with_line_and_column(tmp_path):
    bad = tmp_path / "watch.yaml"
    bad.write_text(
        "apiVersion: riskguard/v1\n"
        "kind: Watch\n"
        "spec:\n"
        "  interval: -1\n"
        "  accounts:\n"
        "    - name: main\n"
        "      exchange: binanceusdm\n"
        "      policy: missing.yaml\n"
        "      options: {secret: hunter2}\n"
        "      credentials: {apiKey: 'not a name'}\n"
        "  alerts:\n"
        "    routes:\n"
        "      - minSeverity: loud\n"
    )
    r = _cli("validate", str(bad))
    assert r.returncode == 1
    err = r.stderr
    assert f"{bad}:4:13: error:" in err and "$.spec.interval" in err
    assert f"{bad}:8:15: error: no policy file" in err
    assert f"{bad}:9:" in err and "'secret' is a credential" in err
    assert f"{bad}:10:" in err and "$.spec.accounts[0].credentials.apiKey" in err
    assert "exactly one of 'url' or 'urlEnv'" in err
    assert "Traceback" not in err
    r = _cli("validate", "--format", "json", str(bad))
    codes = {e["code"] for e in json.loads(r.stdout)["errors"]}
    assert {"not_found", "secret_in_config", "schema.exclusiveMinimum"} <= codes

    good = _cli("validate", str(ROOT / "examples" / "watch" / "watch.yaml"))
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith(": ok")


def test_watch_command_bad_config_exits_2_without_traceback(tmp_path):
    p = tmp_path / "w.yaml"
    p.write_text("apiVersion: riskguard/v1\nkind: Watch\nspec: {accounts: []}\n")
    r = _cli("watch", str(p), "--once")
    assert r.returncode == 2
    assert "w.yaml:3:" in r.stderr and "Traceback" not in r.stderr
    r = _cli("watch", str(ROOT / "examples" / "watch" / "watch.yaml"), "--execute", "open_position")
    assert r.returncode == 2 and "cannot be executed by the watcher" in r.stderr


# --------------------------------------------------------------------------- real ccxt


def test_binanceusdm_recorded_round_snapshot_decision_archive_audit(tmp_path):
    cfg = load_config(write_config(tmp_path, [_account("bn")]))
    rec = Recorded("binanceusdm")
    alerts = []

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: rec.exchange, on_alert=alerts.append)
        rc = await w.run(once=True)
        return w, rc

    w, rc = asyncio.run(main())
    snap = w.accounts[0].last_snapshot
    # figures straight from Binance's recorded fapi responses, through ccxt's parser
    assert snap.walletBalance == pytest.approx(31.022612)  # info.assets[USDT].walletBalance
    (p,) = snap.positions
    assert (p.symbol, p.side, p.marginMode) == ("BTC/USDT:USDT", "long", "cross")
    assert p.contracts == pytest.approx(0.009)
    assert p.entryPrice == pytest.approx(67445.9)
    assert p.markPrice == pytest.approx(67502.68519858)
    assert [o.symbol for o in snap.openOrders] == ["LTC/USDT:USDT"]  # the recorded limit order
    d = w.accounts[0].last_decision
    codes = {(v.code, v.symbol) for v in d.violations}
    assert ("STOP_LOSS_MISSING", "BTC/USDT:USDT") in codes
    assert rc == 1  # error-level episodes are open
    opened = {(a.rule, a.symbol) for a in alerts if a.kind == "open"}
    assert ("stop-before-liquidation", "BTC/USDT:USDT") in opened
    # the signed private endpoints ccxt called
    paths = {p for _, p in rec.requests}
    assert {"/fapi/v3/account", "/fapi/v3/positionRisk", "/fapi/v1/openOrders"} <= paths

    # the archive is one snapshot, and `riskguard audit` reads the directory as it is
    files = list((tmp_path / "archive").glob("snapshots-*.jsonl"))
    assert len(files) == 1
    (line,) = files[0].read_text().splitlines()
    assert json.loads(line)["account"] == "bn"
    r = _cli("audit", "-p", POLICY, str(tmp_path / "archive"), "--json", "-w", "1")
    assert r.returncode == 1, r.stderr  # violations found
    summary = json.loads(r.stdout)
    assert summary["snapshots"] == 1 and summary["badRecords"] == 0
    assert summary["byCode"]["STOP_LOSS_MISSING"] == 1
    # the decision log verifies and holds the decision and the alerts
    v = _cli("verify-log", str(tmp_path / "audit.jsonl"))
    assert v.returncode == 0, v.stdout + v.stderr
    events = [json.loads(x)["event"] for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert events.count("decision") == 1 and "watch_alert" in events


def test_bybit_recorded_round_unified_account(tmp_path):
    cfg = load_config(write_config(tmp_path, [_account("by", "bybit", candles=False)]))
    rec = Recorded("bybit")

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: rec.exchange)
        return w, await w.run(once=True)

    w, rc = asyncio.run(main())
    snap = w.accounts[0].last_snapshot
    # the unified account's USDT walletBalance (ccxt's total would include uPnL)
    assert snap.walletBalance == pytest.approx(3322.25896609)
    assert snap.extra["ccxt"]["walletBalanceFrom"] == "info.result.list[].coin[].walletBalance"
    (p,) = snap.positions
    assert (p.symbol, p.side, p.marginMode) == ("LTC/USDT:USDT", "long", "cross")  # tradeMode 0
    assert p.contracts == pytest.approx(1.2) and p.leverage == pytest.approx(6)
    assert p.entryPrice == pytest.approx(64.59947917) and p.markPrice == pytest.approx(71.1)
    codes = {(v.code, v.symbol) for v in w.accounts[0].last_decision.violations}
    assert ("STOP_LOSS_MISSING", "LTC/USDT:USDT") in codes
    assert rc == 1
    assert [p for _, p in rec.requests] == [
        "/v5/account/wallet-balance",
        "/v5/position/list",
        "/v5/order/realtime",
    ]


def test_archive_rotates_daily_gzips_and_audit_reads_both(tmp_path):
    now = [1_790_000_000.0]
    arch = SnapshotArchive(tmp_path / "a", clock=lambda: now[0])
    doc = json.loads((ROOT / "examples" / "snapshots").glob("*.json").__next__().read_text())
    arch.append(doc)
    now[0] += 86400
    arch.append(doc)
    arch.close()
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 2 and names[0].endswith(".jsonl.gz") and names[1].endswith(".jsonl")
    with gzip.open(tmp_path / "a" / names[0], "rt") as f:
        assert json.loads(f.read().splitlines()[0]) == doc
    # a torn last line (a crash mid-write) is cut off when the archive is opened again
    with open(tmp_path / "a" / names[1], "ab") as f:
        f.write(b'{"schemaVersion": 1, "acc')
    arch = SnapshotArchive(tmp_path / "a", clock=lambda: now[0])
    arch.close()
    assert arch.repaired > 0
    assert all(json.loads(x) for x in (tmp_path / "a" / names[1]).read_text().splitlines())
    r = _cli("audit", "-p", POLICY, str(tmp_path / "a"), "--json", "-w", "1")
    assert r.returncode in (0, 1), r.stderr
    summary = json.loads(r.stdout)
    assert summary["snapshots"] == 2 and summary["badRecords"] == 0


# --------------------------------------------------------------------------- alerts


def test_alert_episode_opens_once_and_resolves_once_over_loopback_json(tmp_path):
    with AlertReceiver() as rx:
        cfg = load_config(
            write_config(
                tmp_path,
                [_account("bn")],
                alerts={"routes": [{"url": rx.url, "minSeverity": "error"}], "retryBackoff": 0.01},
            )
        )
        rec = Recorded("binanceusdm")
        w_box = {}

        def flat_after_rounds():
            w = w_box["w"]
            a = w.accounts[0]
            if a.rounds >= 8 and "/fapi/v3/positionRisk" not in rec.overrides:
                # the position is closed: every position episode must resolve, once
                rec.overrides["/fapi/v3/positionRisk"] = []
            return a.rounds >= 16

        async def main():
            w = Watcher(cfg, exchange_factory=lambda a: rec.exchange)
            w_box["w"] = w
            await _run_until(w, flat_after_rounds)

        asyncio.run(main())
        titles = rx.titles()
    key = "stop-before-liquidation BTC/USDT:USDT"
    opens = [t for t in titles if t.startswith("[riskguard] OPEN") and key in t]
    resolves = [t for t in titles if t.startswith("[riskguard] RESOLVE") and key in t]
    assert len(opens) == 1 and len(resolves) == 1, titles
    # routed by severity: the warning-level risk-per-trade episode never reached this route
    assert not any("risk-per-trade" in t for t in titles)
    body = next(b for b in rx.bodies if b["title"] == resolves[0])
    assert body["message"].startswith("resolved after ")


def test_failing_notifier_is_retried_and_never_delays_rounds(tmp_path):
    # the receiver fails the first 3 deliveries (HTTP 500); apprise reports it, we retry
    with AlertReceiver(status=lambda n: 500 if n <= 3 else 200) as rx:
        cfg = load_config(
            write_config(
                tmp_path,
                [_account("bn")],
                alerts={
                    "routes": [{"url": rx.url, "severities": ["error"]}],
                    "retries": 5,
                    "retryBackoff": 0.01,
                },
            )
        )
        rec = Recorded("binanceusdm")

        async def main():
            w = Watcher(cfg, exchange_factory=lambda a: rec.exchange)
            await _run_until(w, lambda: w.accounts[0].rounds >= 3)
            return w

        w = asyncio.run(main())
        assert rx.attempts > len(rx.bodies)  # failures happened and were retried
        assert w.notifier.failed == 0
        # every error-level episode was delivered exactly once
        assert len(rx.bodies) == len({b["title"] for b in rx.bodies})


# --------------------------------------------------------------------------- metrics


def test_metrics_scraped_over_http_and_parsed(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    cfg = load_config(write_config(tmp_path, [_account("bn")], metrics={"listen": "127.0.0.1:0"}))
    rec = Recorded("binanceusdm")
    got = {}

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: rec.exchange)
        task = asyncio.ensure_future(w.run())
        for _ in range(2000):
            await asyncio.sleep(0.005)
            if w.accounts[0].rounds >= 2:
                break
        host, port = w.metrics_address

        def scrape(path):
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
                return r.status, r.read().decode()

        got["metrics"] = await asyncio.to_thread(scrape, "/metrics")
        got["health"] = await asyncio.to_thread(scrape, "/healthz")
        got["decision"] = w.accounts[0].last_decision
        w.stop()
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    status, text = got["metrics"]
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}

    def value(name, **labels):
        for s in fams[name].samples:
            if all(s.labels.get(k) == v for k, v in labels.items()) and s.name == name:
                return s.value
        raise AssertionError(f"no sample {name} {labels}")

    m = got["decision"].metrics
    assert value("riskguard_watch_equity", account="bn") == pytest.approx(m.equity)
    assert value("riskguard_watch_margin_ratio", account="bn") == pytest.approx(m.marginRatio)
    dist = m.positions[0].liquidationDistancePct
    assert value(
        "riskguard_watch_liquidation_distance_percent",
        account="bn",
        symbol="BTC/USDT:USDT",
        side="long",
    ) == pytest.approx(dist)
    assert value("riskguard_watch_open_episodes", account="bn") >= 1
    assert fams["riskguard_watch_decisions"].samples[0].value >= 2
    assert any(
        s.labels.get("code") == "STOP_LOSS_MISSING"
        for s in fams["riskguard_watch_violations"].samples
    )
    assert "riskguard_watch_fetch_seconds" in fams
    assert value("riskguard_watch_last_update_timestamp_seconds", account="bn") > 0
    hs, hbody = got["health"]
    assert hs == 200 and json.loads(hbody)["accounts"] == {"bn": "watching"}


# --------------------------------------------------------------------------- faults


def test_429_storm_backs_off_auth_error_stops_one_account_others_continue(tmp_path):
    cfg = load_config(
        write_config(
            tmp_path,
            [_account("ok"), _account("storm"), _account("badkey")],
            maxBackoff=0.2,
            blindAfterFailures=3,
        )
    )
    recs = {n: Recorded("binanceusdm") for n in ("ok", "storm", "badkey")}
    # a storm of HTTP 429 for the first 12 requests, then the exchange answers again
    recs["storm"].fault = lambda path, n: (
        (429, '{"code":-1003,"msg":"Too many requests"}') if n <= 12 else None
    )
    # Binance's answer to a revoked key: HTTP 401, code -2015
    recs["badkey"].fault = lambda path, n: (
        401,
        '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
    )
    alerts = []

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: recs[a.name].exchange, on_alert=alerts.append)
        by = {a.name: a for a in w.accounts}
        await _run_until(w, lambda: by["storm"].rounds >= 3 and by["ok"].rounds >= 6)
        return w, by

    _w, by = asyncio.run(main())
    assert by["badkey"].state == "stopped"
    # one round (its three concurrent requests), then never again
    assert len(recs["badkey"].requests) <= 3 and by["badkey"].rounds == 0
    assert by["ok"].rounds >= 6 and by["ok"].state == "watching"
    assert by["storm"].rounds >= 3 and by["storm"].state == "watching"
    kinds = {(a.account, a.rule, a.kind, a.severity) for a in alerts}
    assert ("badkey", "watch.authentication", "open", "critical") in kinds
    # the storm made the account blind (critical) and recovery resolved it
    assert ("storm", "watch.blind", "open", "critical") in kinds
    assert ("storm", "watch.blind", "resolve", "critical") in kinds
    assert ("ok", "watch.blind", "open", "critical") not in kinds
    # backing off: far fewer tries than a 0.05 s poll would have made in the same time
    assert by["ok"].rounds > by["storm"].failures


def test_network_errors_make_the_account_blind_and_once_exits_1(tmp_path):
    cfg = load_config(write_config(tmp_path, [_account("bn")]))
    rec = Recorded("binanceusdm")
    rec.fault = lambda path, n: (503, "Service Unavailable")  # ccxt: ExchangeNotAvailable
    alerts = []

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: rec.exchange, on_alert=alerts.append)
        return w, await w.run(once=True)

    w, rc = asyncio.run(main())
    assert rc == 1
    assert w.accounts[0].failures == 1


def test_kill_switch_file_halts_execution_and_alerts(tmp_path):
    halt = tmp_path / "halt"
    halt.write_text("")
    cfg = load_config(
        write_config(
            tmp_path,
            [_account("bn")],
            killSwitchFile=str(halt),
            execution={"allow": ["set_stop_loss"], "dryRun": True},
        )
    )
    rec = Recorded("binanceusdm")
    alerts = []

    seen = {}

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: rec.exchange, on_alert=alerts.append)
        acc = w.accounts[0]

        def cond():
            if "halted" not in seen and acc.rounds >= 3:
                seen["halted"] = (acc.state, acc.guard.trading_state, list(w.executions))
                halt.unlink()  # released: the next rounds may act again (here: a dry run)
            return bool(w.executions)

        await _run_until(w, cond)
        return w, seen["halted"]

    w, (state, trading, executions) = asyncio.run(main())
    assert (state, trading, executions) == ("halted", "halted", [])  # nothing while halted
    halts = [(a.kind, a.severity) for a in alerts if a.rule == "watch.halted"]
    assert halts == [("open", "critical"), ("resolve", "critical")]
    assert w.accounts[0].guard.trading_state == "active"
    assert [e["status"] for e in w.executions] == ["dry-run"]
    assert not any(m == "POST" for m, _ in rec.requests)


def test_a_hanging_exchange_makes_the_account_blind(tmp_path):
    cfg = load_config(write_config(tmp_path, [_account("hang")], blindAfterIntervals=2))
    rec = Recorded("binanceusdm")
    release = asyncio.Event()
    alerts = []

    async def hang(url, method="GET", headers=None, body=None):
        await release.wait()  # the exchange never answers (until the test ends)
        raise AssertionError("unreachable")

    rec.exchange.fetch = hang

    async def main():
        w = Watcher(cfg, exchange_factory=lambda a: rec.exchange, on_alert=alerts.append)
        task = asyncio.ensure_future(w.run())
        for _ in range(4000):
            await asyncio.sleep(0.005)
            if w.accounts[0].state == "blind":
                break
        w.stop()
        release.set()
        await asyncio.wait_for(task, 30)
        return w

    asyncio.run(main())
    assert [(a.rule, a.kind, a.severity) for a in alerts] == [("watch.blind", "open", "critical")]


def test_grafana_dashboard_uses_only_exported_metrics():
    import re

    from riskguard.faces.watch.exporter import WatchMetrics

    m = WatchMetrics()
    m.set_state("x", "watching")
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {f.name + sfx for f in m.registry.collect() for sfx in suffixes[f.type]}
    dash = json.loads((ROOT / "examples" / "watch" / "grafana-dashboard.json").read_text())
    used = set()
    for p in dash["panels"]:
        for t in p["targets"]:
            used |= set(re.findall(r"riskguard_watch_[a-z_]+", t["expr"]))
    assert len(used) >= 10 and used <= exported, used - exported


def test_an_alert_url_apprise_cannot_use_is_a_config_error(tmp_path):
    cfg = write_config(
        tmp_path,
        [_account("bn")],
        alerts={"routes": [{"url": "nosuchscheme://token@host/x"}]},
    )
    r = _cli("watch", str(cfg), "--once")
    assert r.returncode == 2, r.stderr
    assert (
        f"{cfg}: spec.alerts.routes[0]: apprise does not understand the URL nosuchscheme://host/"
        in r.stderr
    )
    assert "token" not in r.stderr and "Traceback" not in r.stderr
