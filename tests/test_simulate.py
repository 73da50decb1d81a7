"""``riskguard simulate``: through the command line, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from .conftest import EXAMPLES, POLICIES, ROOT, run_cli
from .test_summary_report import assert_self_contained

pytest.importorskip("ccxt")

ISO_NO_STOP = str(EXAMPLES / "snapshots" / "isolated-no-stop.json")
DEFAULT = str(POLICIES / "default.yaml")
SOL = "SOL/USDT:USDT"


def simulate(*args: str, tmp_path=None):
    r = run_cli("simulate", "--account", ISO_NO_STOP, *args)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    return r


def runs_by(result: dict) -> dict:
    return {(r["scenario"], r["policy"]): r for r in result["runs"]}


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    r = run_cli(
        "simulate", "--account", ISO_NO_STOP, "-p", DEFAULT,
        "--scenario", "covid-2020", "--scenario", "gap-down",
        "--json", "--out", str(d / "out.json"), "--report", str(d / "sim.html"),
    )  # fmt: skip
    return r, d


def test_the_default_policy_keeps_the_account_alive_where_no_policy_is_liquidated(crash):
    r, _d = crash
    assert r.returncode == 1, r.stderr  # a run with a policy was liquidated (the gap, below)
    res = runs_by(json.loads(r.stdout))
    base, pol = res["covid-2020", "no policy"], res["covid-2020", "default"]
    # the unprotected 20x SOL long is liquidated: its whole isolated margin is lost
    assert base["liquidations"] == 1 and base["liquidationLoss"] == pytest.approx(375.0)
    assert base["liquidationEvents"][0]["symbols"] == [SOL]
    # with the default policy executing, a stop is placed before liquidation and fills
    assert pol["liquidations"] == 0 and pol["liquidationLoss"] == 0.0
    assert pol["actions"]["applied"].get("set_stop_loss", 0) >= 1
    assert pol["finalEquity"] > base["finalEquity"]
    assert pol["vsNoPolicy"]["finalEquity"] == pytest.approx(
        pol["finalEquity"] - base["finalEquity"]
    )
    assert pol["vsNoPolicy"]["liquidations"] == -1
    # the executor's default applies what the policy enforces (error and above): the
    # promote-to-cross advice (info) to switch the winning ETH short is proposed, not sent
    assert pol["actions"]["proposed"].get("switch_margin_mode", 0) > 0
    assert "switch_margin_mode" not in pol["actions"]["applied"]


def test_exchange_refusals_are_reported_not_raised():
    doc = json.loads(
        simulate(
            "-p", DEFAULT, "--scenario", "covid-2020", "--min-severity", "info", "--json"
        ).stdout
    )  # fmt: skip
    assert doc["settings"]["minSeverity"] == "info"
    pol = runs_by(doc)["covid-2020", "default"]
    # the advice is now sent, and Binance refuses a margin-mode switch with a position open
    refused = [x for x in pol["refusals"] if x["type"] == "switch_margin_mode"]
    assert refused and {x["exchangeCode"] for x in refused} == {"-4048"}
    assert {x["error"] for x in refused} == {"OperationRejected"}
    assert pol["actions"]["refused"]["switch_margin_mode"] == len(refused)
    assert pol["liquidations"] == 0


def test_a_policy_that_makes_things_worse_is_reported_as_worse(crash):
    r, _d = crash
    res = runs_by(json.loads(r.stdout))
    base, pol = res["gap-down", "no policy"], res["gap-down", "default"]
    # a 20 % gap jumps over any stop: both runs lose the SOL long, but the policy had added
    # isolated margin to it first (to move its liquidation away), and that margin is lost too
    assert base["liquidations"] == pol["liquidations"] == 1
    assert pol["actions"]["applied"].get("add_isolated_margin", 0) >= 1
    assert pol["liquidationLoss"] > base["liquidationLoss"]
    assert pol["finalEquity"] < base["finalEquity"]
    assert pol["vsNoPolicy"]["finalEquity"] < 0


def test_json_result_matches_its_schema_and_is_byte_identical_run_to_run(crash, tmp_path):
    r, d = crash
    doc = json.loads(r.stdout)
    schema = json.loads((ROOT / "schemas" / "simulation.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(doc), key=str)
    assert not errors, errors[:3]
    assert (d / "out.json").read_text() == r.stdout
    # the same runs on two processes: the same document, byte for byte
    again = run_cli(
        "simulate", "--account", ISO_NO_STOP, "-p", DEFAULT,
        "--scenario", "covid-2020", "--scenario", "gap-down", "--json", "--workers", "2",
    )  # fmt: skip
    assert again.returncode == r.returncode, again.stderr
    assert again.stdout == r.stdout
    assert all(isinstance(x["liquidations"], int) for x in doc["runs"])
    assert all(0.0 <= x["maxDrawdown"] <= 1.0 for x in doc["runs"])  # equity never below 0
    # `riskguard schema simulation` prints the same schema
    assert json.loads(run_cli("schema", "simulation").stdout) == schema


def test_html_report_is_self_contained_with_equity_and_distance_plots(crash):
    _r, d = crash
    html = (d / "sim.html").read_text()
    assert_self_contained(html)
    assert html.count("<svg") == 4  # equity + distance to liquidation, per scenario
    assert "covid-2020: equity" in html and "distance to liquidation" in html
    assert "no policy: liquidation" in html and "default: action applied" in html
    assert "Runs side by side" in html and "error and above" in html


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs chromium (apt-get install chromium)"
)
def test_html_report_renders_in_a_headless_browser(crash, tmp_path):
    _r, d = crash
    png = tmp_path / "sim.png"
    out = subprocess.run(
        ["sh", str(ROOT / "bench" / "screenshot-report.sh"), str(d / "sim.html"), str(png), "1280x2400"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert png.stat().st_size > 20_000  # a page with tables and plots, not a blank one
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         f"file://{d / 'sim.html'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "riskguard simulation report" in dom.stdout and dom.stdout.count("<svg") == 4


def test_price_files_csv_and_jsonl(tmp_path):
    t0 = 1795521600000  # the account's timestamp
    rows = ["timestamp,symbol,open,high,low,close,volume"]
    jl = []
    for i in range(30):
        px = 100.0 * (1 - 0.01 * i)  # SOL falls 29 % over the file
        rows.append(f"{t0 + i * 60000},{SOL},{px},{px * 1.001},{px * 0.995},{px * 0.998},5")
        eth = 3000.0 * (1 + 0.001 * i)
        rows.append(f"{t0 + i * 60000},ETH/USDT:USDT,{eth},{eth},{eth},{eth},1")
        jl.append(json.dumps([t0 + i * 60000, px, px * 1.001, px * 0.995, px * 0.998, 5]))
    csv = tmp_path / "crash.csv"
    csv.write_text("\n".join(rows) + "\n")
    jsonl = tmp_path / "sol.jsonl"
    jsonl.write_text("\n".join(jl) + "\n")
    r = simulate("--prices", str(csv), "--prices", f"{SOL}={jsonl}", "--json")
    doc = json.loads(r.stdout)
    assert [s["name"] for s in doc["scenarios"]] == ["crash", "sol"]
    assert doc["scenarios"][1]["unpriced"] == ["ETH/USDT:USDT"]
    # rebased: the first open is SOL's mark (148), so a 29 % fall crosses its 143.94 liquidation
    for name in ("crash", "sol"):
        base = runs_by(doc)[name, "no policy"]
        assert base["liquidations"] == 1 and base["liquidationEvents"][0]["symbols"] == [SOL]
    # the table (no --json) names every run
    table = simulate("--prices", str(csv), "-p", DEFAULT).stdout
    assert "crash" in table and "no policy" in table and "default" in table


def test_bad_inputs_exit_2_naming_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "timestamp,symbol,open,high,low,close,volume\n1,BTC/USDT:USDT,1,2,0.5,1,0\n2,BTC/USDT:USDT,1,x,1,1,0\n"
    )
    r = run_cli("simulate", "--account", ISO_NO_STOP, "--prices", str(bad))
    assert r.returncode == 2 and f"{bad}:3:" in r.stderr and "high" in r.stderr
    assert "Traceback" not in r.stderr
    head = tmp_path / "head.csv"
    head.write_text("ts,sym,o,h,l,c,v\n")
    r = run_cli("simulate", "--account", ISO_NO_STOP, "--prices", str(head))
    assert r.returncode == 2 and f"{head}:1:1" in r.stderr
    r = run_cli("simulate", "--account", ISO_NO_STOP, "--scenario", "nope")
    assert r.returncode == 2 and "covid-2020" in r.stderr
    r = run_cli(
        "simulate", "--account", ISO_NO_STOP, "--scenario", "gbm", "--execute", "halt_trading"
    )
    assert r.returncode == 2 and "cannot be applied" in r.stderr
    r = run_cli("simulate", "--account", ISO_NO_STOP)
    assert r.returncode == 2 and "nothing to replay" in r.stderr
    hedge = json.loads((EXAMPLES / "snapshots" / "isolated-no-stop.json").read_text())
    hedge["positions"].append({**hedge["positions"][0], "side": "short"})  # no positionMode
    (tmp_path / "hedge.json").write_text(json.dumps(hedge))
    r = run_cli("simulate", "--account", str(tmp_path / "hedge.json"), "--scenario", "gbm")
    assert r.returncode == 2 and "one-way" in r.stderr and "Traceback" not in r.stderr
    assert "positionMode" in r.stderr
    jl = tmp_path / "x.jsonl"
    jl.write_text("[1, 2, 3]\n")
    r = run_cli("simulate", "--account", ISO_NO_STOP, "--prices", f"{SOL}={jl}")
    assert r.returncode == 2 and f"{jl}:1:1" in r.stderr


def test_execute_none_proposes_but_applies_nothing():
    doc = json.loads(
        simulate("-p", DEFAULT, "--scenario", "covid-2020", "--execute", "none", "--json").stdout
    )
    pol = runs_by(doc)["covid-2020", "default"]
    assert pol["actions"]["proposed"].get("set_stop_loss", 0) > 0
    assert pol["actions"]["applied"] == {} and pol["liquidations"] == 1
    # with nothing applied the policy's account is the baseline's, step for step
    base = runs_by(doc)["covid-2020", "no policy"]
    assert pol["finalEquity"] == base["finalEquity"] and pol["series"] == base["series"]


def test_every_n_checks_less_often():
    doc = json.loads(simulate("-p", DEFAULT, "--scenario", "gbm", "--every", "10", "--json").stdout)
    pol = runs_by(doc)["gbm", "default"]
    assert doc["settings"]["every"] == 10
    assert 0 < pol["evaluations"] <= doc["scenarios"][0]["steps"] // 10 + 1


def test_help_explains_paths_and_exit_codes():
    r = run_cli("simulate", "--help")
    assert r.returncode == 0
    for word in ("--scenarios all", "SYMBOL=FILE.jsonl", "--every", "exit codes", "no policy"):
        assert word in r.stdout


def test_bench_quick_runs():
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate_bench.py"), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "steps/s" in r.stdout


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux script for a TTY")
def test_progress_bar_on_a_terminal_only(tmp_path):
    typescript = tmp_path / "tty"
    cmd = (
        f"{sys.executable} -m riskguard simulate --account {ISO_NO_STOP} -p {DEFAULT} "
        f"--scenario gap-down > {tmp_path / 'out.txt'}"
    )
    r = subprocess.run(
        ["script", "-qec", cmd, str(typescript)], capture_output=True, timeout=300, cwd=ROOT
    )
    assert r.returncode in (0, 1)
    shown = typescript.read_bytes().decode("utf-8", "replace")
    assert "simulate" in shown and "/600 steps" in shown  # 300 steps × (no policy + default)
    # stdout went to a file: the table is there, the bar is not
    table = (tmp_path / "out.txt").read_text()
    assert "gap-down" in table and "/600 steps" not in table


def test_a_hedge_mode_account_is_simulated_leg_by_leg():
    """examples/snapshots/binance-hedge.json: a net-long BTC pair (long 0.4, short 0.15, one
    liquidation price 39,144.47 for both legs) without stops, through the COVID crash."""
    hedge = str(EXAMPLES / "snapshots" / "binance-hedge.json")
    r = run_cli(
        "simulate", "--account", hedge, "-p", DEFAULT, "--scenario", "covid-2020", "--json"
    )  # fmt: skip
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    res = runs_by(json.loads(r.stdout))
    base, pol = res["covid-2020", "no policy"], res["covid-2020", "default"]
    # unprotected, the pair is liquidated together: both legs, the whole cross wallet
    assert base["liquidations"] == 1 and base["positionsLiquidated"] == 2
    (ev,) = base["liquidationEvents"]
    assert ev["scope"] == "cross" and ev["loss"] == pytest.approx(5000.0)
    assert ev["symbols"] == ["BTC/USDT:USDT", "BTC/USDT:USDT"]
    # the default policy's stop (the long's: stop-before-liquidation is an error rule) is
    # placed on its leg and fills; the short leg lives on and the account survives
    assert pol["liquidations"] == 0 and pol["actions"]["applied"].get("set_stop_loss", 0) >= 1
    assert pol["finalEquity"] > base["finalEquity"]


def test_a_multi_collateral_account_is_simulated_with_its_coins():
    """examples/snapshots/bybit-collateral.json: 1,000 USDT and 0.05 BTC (ratio 0.95) behind
    a BTC long without a stop; the BTC collateral falls with the long (liquidation 44,686.87)."""
    acct = str(EXAMPLES / "snapshots" / "bybit-collateral.json")
    r = run_cli("simulate", "--account", acct, "-p", DEFAULT, "--scenario", "covid-2020", "--json")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    res = runs_by(json.loads(r.stdout))
    base, pol = res["covid-2020", "no policy"], res["covid-2020", "default"]
    # equity is riskguard's margin balance: 1,000 + 0.05 × 61,000 × 0.95 + uPnL 200
    assert base["startEquity"] == pytest.approx(4097.5)
    # unprotected, the account is liquidated and its collateral (USDT and BTC) is forfeit
    assert base["liquidations"] == 1 and base["finalEquity"] == 0.0
    (ev,) = base["liquidationEvents"]
    assert ev["scope"] == "cross" and ev["loss"] > 1000.0  # more than the USDT: the BTC too
    # the default policy's stop fills before that
    assert pol["liquidations"] == 0 and pol["actions"]["applied"].get("set_stop_loss", 0) >= 1
    assert pol["finalEquity"] > 0.0


def test_workers_load_the_policys_plugins_and_agree_with_one_process(tmp_path):
    """A plugin rule type in the policy: each worker process compiles the policy with the
    same --plugin files (and checks the digest), and the document is the serial one."""
    pol = tmp_path / "conc.yaml"
    pol.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: concentration, version: '1'}\n"
        "spec:\n  rules:\n    - id: concentration\n      type: max_concentration\n"
        "      params: {maxShare: 0.3, minPositions: 1}\n",
        encoding="utf-8",
    )
    plugin = str(ROOT / "plugins" / "example_rule.py")
    common = ("-p", str(pol), "-p", DEFAULT, "--plugin", plugin, "--scenario", "gap-down", "--json")
    one = simulate(*common)
    two = simulate(*common, "--workers", "3")
    assert two.stdout == one.stdout
    doc = json.loads(one.stdout)
    assert {r["policy"] for r in doc["runs"]} == {"no policy", "concentration", "default"}
    assert "concentration" in runs_by(doc)[("gap-down", "concentration")]["timeInBreach"]


def test_realized_volatility_is_kept_only_when_a_rule_can_read_it(tmp_path, monkeypatch):
    """The simulator's paper exchange skips realized volatility when no rule of the policy
    reads it (ATR% is kept); a rule with realizedVolPctAbove, or any plugin rule type,
    gets it — and a run's result does not depend on the figure it never reads."""
    from riskguard.engine.policy import load_policy
    from riskguard.faces.simulate import BASELINE, PolicyUnderTest, SimOptions, run_one
    from riskguard.faces.simulate.runner import reads_realized_vol
    from riskguard.model.snapshot import load_snapshot
    from riskguard.paper import PaperExchange
    from riskguard.paper.prices import named

    default = load_policy(DEFAULT)
    assert not reads_realized_vol(default) and not reads_realized_vol(None)
    rv_pol = tmp_path / "rv.yaml"
    rv_pol.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: rv, version: '1'}\n"
        "spec:\n  rules:\n    - id: iso\n      type: isolate_on_volatility\n"
        "      params: {atrPctAbove: 50, realizedVolPctAbove: 0.5}\n",
        encoding="utf-8",
    )
    assert reads_realized_vol(load_policy(rv_pol))
    plugin = load_policy(
        _concentration_policy(tmp_path), plugins=[str(ROOT / "plugins" / "example_rule.py")]
    )
    assert reads_realized_vol(plugin)  # plugin code may read any market figure

    snap = load_snapshot(ISO_NO_STOP)
    marks = {p.symbol: snap.mark_price(p) for p in snap.positions}
    path = named("gbm", marks, seed=3, t0=snap.timestamp or 0)
    kept, lean = (
        PaperExchange(snap, market_stats=True, snapshot_candles=0, realized_vol=rv)
        for rv in (True, False)
    )
    for ts, row in list(path.steps())[:40]:
        for ex in (kept, lean):
            ex.step({s: c[3] for s, c in row.items()}, ts)
    a, b = kept.snapshot().markets[SOL], lean.snapshot().markets[SOL]
    assert a.atrPct == b.atrPct is not None
    assert a.extra["realizedVolPct"] > 0 and "realizedVolPct" not in b.extra
    put = PolicyUnderTest("default", default, DEFAULT)
    skipped = run_one(snap, put, path, SimOptions())
    import riskguard.faces.simulate.runner as runner

    monkeypatch.setattr(runner, "reads_realized_vol", lambda policy: True)
    assert run_one(snap, put, path, SimOptions()) == skipped  # kept: the same run
    assert skipped["evaluations"] == len(path)
    assert run_one(snap, BASELINE, path, SimOptions())["evaluations"] == 0


def _concentration_policy(tmp_path):
    pol = tmp_path / "conc2.yaml"
    pol.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: concentration, version: '1'}\n"
        "spec:\n  rules:\n    - id: concentration\n      type: max_concentration\n"
        "      params: {maxShare: 0.3, minPositions: 1}\n",
        encoding="utf-8",
    )
    return pol
