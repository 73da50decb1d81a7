"""`riskguard audit` as an auditor runs it: inputs of every kind, bad records, exit codes,
the decisions file (order, completeness after an interruption), summary and report."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import POLICIES, ROOT, run_cli, snapshot_doc

DEFAULT = str(POLICIES / "default.yaml")
T0 = 1_795_000_000_000  # 2026-11-18, epoch ms
# walletBalance → margin utilization of snapshot_doc's two positions (605 of initial margin):
# 10000 → ~6 % (fine), 1900 → ~30.6 % (warning), 1500 → ~39 % (error: breach)
WALLETS = (10000.0, 10000.0, 1900.0, 1500.0, 1500.0, 10000.0, 1500.0)


def series(n: int, account: str = "acct-a", start: int = T0) -> list[dict]:
    """A minute-by-minute series of one account whose utilization breaches come and go."""
    return [
        snapshot_doc(account=account, timestamp=start + i * 60_000, walletBalance=WALLETS[i % 7])
        for i in range(n)
    ]


def write_jsonl(path: Path, docs: list, gz: bool = False) -> Path:
    text = "".join(json.dumps(d) + "\n" for d in docs)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def decisions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def comparable(d: dict) -> dict:
    """A decision without what legitimately differs between runs (id, timing, where it was read)."""
    d = dict(d)
    for k in ("decisionId", "durationUs"):
        d.pop(k)
    d["snapshot"] = {k: v for k, v in d["snapshot"].items() if k != "ref"}
    return d


def summary_part(js: dict) -> dict:
    """The --json output without what depends on how and where the run happened."""
    return {k: v for k, v in js.items() if k not in ("run", "out", "report")}


def audit_json(*args: str) -> tuple[subprocess.CompletedProcess, dict]:
    r = run_cli("audit", "-p", DEFAULT, "--json", *args)
    assert "Traceback" not in r.stderr, r.stderr
    return r, json.loads(r.stdout)


# --------------------------------------------------------------------------- inputs


def test_directory_glob_jsonl_and_gzip_give_the_same_decisions(tmp_path):
    docs = series(9)
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    for i, doc in enumerate(docs):  # names sort in series order; one level nested
        (d / ("sub" if i >= 5 else "") / f"s{i:02d}.json").write_text(json.dumps(doc))
    jl = write_jsonl(tmp_path / "all.jsonl", docs)
    gz = write_jsonl(tmp_path / "all.jsonl.gz", docs, gz=True)
    parts = tmp_path / "parts"
    parts.mkdir()
    write_jsonl(parts / "p1.jsonl", docs[:4])
    write_jsonl(parts / "p2.ndjson", docs[4:])

    results = {}
    for name, inp in {
        "directory": str(d),
        "jsonl": str(jl),
        "gzip": str(gz),
        "glob": str(parts / "p*"),
    }.items():
        out = tmp_path / f"{name}.out.jsonl"
        r, js = audit_json(inp, "--out", str(out), "-w", "1")
        assert r.returncode == 1, (name, r.stderr)  # the series has error-level breaches
        assert js["snapshots"] == 9 and js["badRecords"] == 0, name
        results[name] = [comparable(x) for x in decisions(out)]
    first = results["jsonl"]
    expected = ["allow", "allow", "allow", "deny", "deny", "allow", "deny", "allow", "allow"]
    assert [x["decision"] for x in first] == expected
    for name, got in results.items():
        assert got == first, name


def test_refs_name_file_and_line(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(3))
    out = tmp_path / "out.jsonl"
    audit_json(str(jl), "--out", str(out))
    assert [x["snapshot"]["ref"] for x in decisions(out)] == [f"{jl}:{i}" for i in (1, 2, 3)]


def test_stdin(tmp_path):
    text = "".join(json.dumps(d) + "\n" for d in series(4))
    r = run_cli("audit", "-p", DEFAULT, "--json", "-", input=text)
    assert json.loads(r.stdout)["snapshots"] == 4


def test_missing_input_and_empty_glob_are_usage_errors(tmp_path):
    for inp in (str(tmp_path / "nope.jsonl"), str(tmp_path / "*.jsonl")):
        r = run_cli("audit", "-p", DEFAULT, inp)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "nope.jsonl" in r.stderr or "*.jsonl" in r.stderr


def test_bad_options_are_usage_errors(tmp_path):
    jl = str(write_jsonl(tmp_path / "a.jsonl", series(2)))
    for extra in (["--workers", "0"], ["--scheduler", "tcp://x:1"], ["--report", "r.pdf"]):
        r = run_cli("audit", "-p", DEFAULT, jl, *extra)
        assert r.returncode == 2 and "Traceback" not in r.stderr, extra


# --------------------------------------------------------------------------- bad records


def test_bad_records_are_located_counted_and_the_run_goes_on(tmp_path):
    good = [json.dumps(d) for d in series(4)]
    broken = snapshot_doc()
    broken["positions"][1]["contracts"] = -1
    lines = [good[0], "{not json", good[1], json.dumps(broken), "", good[2], "[1, 2]", good[3]]
    jl = tmp_path / "mixed.jsonl"
    jl.write_text("\n".join(lines) + "\n")
    doc = tmp_path / "broken.json"
    doc.write_text('{\n  "walletBalance": 1000,\n  "positions": [,]\n}\n')

    out = tmp_path / "out.jsonl"
    r, js = audit_json(str(jl), str(doc), "--out", str(out), "--fail-on", "critical")
    assert r.returncode == 0, r.stderr  # bad records alone do not fail without --strict
    assert js["snapshots"] == 4 and js["badRecords"] == 4
    err = r.stderr
    assert f"{jl}:2: not valid JSON" in err
    assert f"{jl}:4: $.positions[1].contracts: expected a number > 0" in err
    assert f"{jl}:7: " in err and "expected a snapshot object" in err
    assert f"{doc}:3:" in err  # a JSON document: file:line:column
    refs = [b["ref"] for b in js["badRecordExamples"]]
    assert refs[:3] == [f"{jl}:2", f"{jl}:4", f"{jl}:7"] and refs[3].startswith(f"{doc}:3:")
    # the good records around the bad ones were all evaluated, in order
    assert [x["snapshot"]["ref"] for x in decisions(out)] == [f"{jl}:{i}" for i in (1, 3, 6, 8)]

    strict = run_cli("audit", "-p", DEFAULT, str(jl), "--strict", "--fail-on", "critical")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    clean = run_cli(
        "audit", "-p", DEFAULT, str(write_jsonl(tmp_path / "ok.jsonl", series(2))), "--strict"
    )
    assert clean.returncode == 0, clean.stderr


# --------------------------------------------------------------------------- exit codes


def _calm_doc() -> dict:
    """snapshot_doc() with stops inside the 1 % risk budget, ATR data and a modest winner:
    no finding at all under the default policy, not even a warning or an advisory."""
    doc = snapshot_doc(
        markets={
            "BTC/USDT:USDT": {"markPrice": 61000, "atrPct": 1.5},
            "ETH/USDT:USDT": {"markPrice": 2990, "atrPct": 2.0},
        }
    )
    doc["positions"][0]["stopLossPrice"] = 58500
    doc["positions"][1].update(markPrice=2990, stopLossPrice=3080)
    return doc


@pytest.mark.parametrize(
    ("wallets", "fail_on", "code"),
    [
        ((None,), "info", 0),  # nothing at all: a calm account with tight stops and ATR data
        ((1900.0,), "warning", 1),  # a utilization warning
        ((1900.0,), "error", 0),
        ((1500.0,), "error", 1),  # a utilization breach
        ((1500.0,), "critical", 0),
    ],
)
def test_fail_on(tmp_path, wallets, fail_on, code):
    docs = [_calm_doc() if w is None else snapshot_doc(walletBalance=w) for w in wallets]
    jl = write_jsonl(tmp_path / "a.jsonl", docs)
    r, js = audit_json(str(jl), "--fail-on", fail_on)
    assert r.returncode == code, (js["worstSeverity"], r.stderr)
    assert js["failed"] is bool(code)


# --------------------------------------------------------------------------- decisions file


def test_decisions_are_reproducible_and_judged_at_the_snapshot_time(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(7))
    runs = []
    for i in range(2):
        out = tmp_path / f"out{i}.jsonl"
        run_cli("audit", "-p", DEFAULT, str(jl), "--out", str(out))
        runs.append(decisions(out))
    assert [comparable(x) for x in runs[0]] == [comparable(x) for x in runs[1]]
    for d in runs[0]:
        assert d["timestamp"] == d["snapshot"]["timestamp"]


def test_out_appends_only_when_asked(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(3))
    out = tmp_path / "out.jsonl"
    out.write_text('{"earlier": true}\n')
    r = run_cli("audit", "-p", DEFAULT, str(jl), "--out", str(out))
    assert r.returncode == 2 and "--append" in r.stderr and "--force" in r.stderr
    assert out.read_text() == '{"earlier": true}\n'  # refused before any work
    run_cli("audit", "-p", DEFAULT, str(jl), "--out", str(out), "--append")
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0]) == {"earlier": True}
    run_cli("audit", "-p", DEFAULT, str(jl), "--out", str(out), "--force")
    assert [json.loads(x)["snapshot"]["ref"] for x in out.read_text().splitlines()] == [
        f"{jl}:{n}" for n in (1, 2, 3)
    ]


def test_compact_metrics_are_a_subset_of_full(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(4))
    outs = {}
    for mode in ("compact", "full"):
        outs[mode] = tmp_path / f"{mode}.jsonl"
        run_cli("audit", "-p", DEFAULT, str(jl), "--out", str(outs[mode]), "--metrics", mode)
    for c, f in zip(decisions(outs["compact"]), decisions(outs["full"]), strict=True):
        cm, fm = c.pop("metrics"), f.pop("metrics")
        assert comparable(c) == comparable(f)
        assert len(fm) > len(cm) >= 5
        for k, v in cm.items():
            if k != "positions":
                assert fm[k] == v, k
        for cp, fp in zip(cm["positions"], fm["positions"], strict=True):
            assert cp == {k: fp[k] for k in cp}
            assert "liquidationDistancePct" in cp


def _big_series(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "big.jsonl"
    write_jsonl(path, series(n))
    return path


@pytest.mark.parametrize(
    ("sig", "workers", "code"), [(signal.SIGTERM, "1", 143), (signal.SIGINT, "2", 130)]
)
def test_interrupted_run_keeps_every_decision_as_complete_lines(tmp_path, sig, workers, code):
    n = 20_000  # several seconds of work: the signal always lands mid-run
    jl = _big_series(tmp_path, n)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "riskguard",
            "audit",
            "-p",
            DEFAULT,
            str(jl),
            "--out",
            str(out),
            "--workers",
            workers,
            "--chunk-size",
            "100",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    text = out.read_text()
    assert text.endswith("\n")
    got = [json.loads(line) for line in text.splitlines()]  # every line is whole JSON
    assert 0 < len(got) < n
    assert [d["snapshot"]["ref"] for d in got] == [f"{jl}:{i}" for i in range(1, len(got) + 1)]
    assert f"interrupted after {len(got)} snapshots" in stderr


# --------------------------------------------------------------------------- progress


def test_no_progress_bar_when_piped(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(3))
    r = run_cli("audit", "-p", DEFAULT, str(jl))
    assert "━" not in r.stderr and "snapshots ·" not in r.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(30))
    master, slave = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "riskguard", "audit", "-p", DEFAULT, str(jl), "-w", "1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
            timeout=60,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    err = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 1
    assert "30 snapshots" in err and "100%" in err


def test_out_inside_an_input_directory_is_refused(tmp_path):
    d = tmp_path / "snaps"
    d.mkdir()
    write_jsonl(d / "a.jsonl", series(2))
    for out in (d / "decisions.jsonl", d / "a.jsonl"):
        r = run_cli("audit", "-p", DEFAULT, str(d), "--out", str(out))
        assert r.returncode == 2 and "read as an input" in r.stderr, r.stderr
    assert not (d / "decisions.jsonl").exists()


# --------------------------------------------------------------------------- fidelity


def _generated(n_steps: int = 15) -> list[dict]:
    from riskguard.policytools.generate import generate_stream

    return list(generate_stream(accounts=2, steps=n_steps, positions=10, seed=3, candles=3))


def test_audit_decides_exactly_like_the_engine():
    """The audit path (tier tables parsed once per process, compact metrics) changes
    nothing about the decision: same Snapshot, same violations, same actions."""
    from riskguard.batch.run import evaluate_record
    from riskguard.batch.tiermemo import build_snapshot_memo
    from riskguard.engine.evaluate import evaluate
    from riskguard.engine.policy import load_policy
    from riskguard.model.snapshot import build_snapshot

    policy = load_policy(DEFAULT)
    docs = _generated()
    assert any(d.get("leverageTiers") for d in docs)
    for i, doc in enumerate(docs):
        text = json.dumps(doc)
        assert build_snapshot_memo(json.loads(text)) == build_snapshot(json.loads(text))
        snap = build_snapshot(json.loads(text))
        want = evaluate(policy, snap, now_ms=snap.timestamp, ref=f"g:{i}").to_dict()
        got, bad = evaluate_record(policy, f"g:{i}", text, metrics="full")
        assert bad is None
        assert comparable(got) == comparable(want)
        assert got["snapshot"]["digest"] == want["snapshot"]["digest"]


@pytest.mark.parametrize(
    ("field", "value"), [("maxLeverage", True), ("maxNotional", "lots"), ("tier", 1.0)]
)
def test_remembered_tier_tables_validate_like_new_ones(field, value):
    """A table equal to a remembered one under ``==`` but not in JSON types (1 vs true vs
    1.0) is validated on its own: same result as without the memo."""
    from riskguard.batch.tiermemo import build_snapshot_memo
    from riskguard.errors import SnapshotError
    from riskguard.model.snapshot import build_snapshot

    tiers = [
        {
            "tier": 1,
            "minNotional": 0,
            "maxNotional": 1,
            "maintenanceMarginRate": 0.01,
            "maxLeverage": 1,
        },
        {"tier": 2, "minNotional": 1, "maxNotional": None, "maintenanceMarginRate": 0.02},
    ]
    good = snapshot_doc(leverageTiers={"BTC/USDT:USDT": tiers})
    build_snapshot_memo(json.loads(json.dumps(good)))  # remembered
    odd = json.loads(json.dumps(good))
    odd["leverageTiers"]["BTC/USDT:USDT"][0][field] = value
    try:
        want = build_snapshot(odd)
    except SnapshotError as exc:
        with pytest.raises(SnapshotError) as got:
            build_snapshot_memo(odd)
        assert [str(p) for p in got.value.problems] == [str(p) for p in exc.problems]
    else:
        assert build_snapshot_memo(odd) == want
        assert build_snapshot_memo(odd).leverageTiers == want.leverageTiers


# --------------------------------------------------------------------------- timeline


def test_breach_timeline_of_a_generated_series(tmp_path):
    """Each account's episodes in the summary are exactly the maximal runs of consecutive
    snapshots in breach of a (rule, symbol), recomputed here from the decisions file."""
    from riskguard.policytools.generate import generate_stream, write_jsonl

    jl = tmp_path / "gen.jsonl"
    write_jsonl(jl, generate_stream(accounts=3, steps=150, positions=6, seed=3, interval_s=3600))
    out = tmp_path / "out.jsonl"
    _r, js = audit_json(str(jl), "--out", str(out), "--chunk-size", "40")

    runs: dict[str, list] = {}  # account -> [(ts, {(rule, symbol)})]
    for d in decisions(out):
        keys = {(v["rule"], v["symbol"]) for v in d["violations"]}
        runs.setdefault(d["snapshot"]["account"], []).append((d["snapshot"]["timestamp"], keys))
    assert set(js["accounts"]) == set(runs) and len(runs) == 3
    total = 0
    for account, seq in runs.items():
        want = []
        open_: dict = {}
        for ts, keys in seq:
            for k in [k for k in open_ if k not in keys]:
                want.append((*k, open_.pop(k), ts))
            for k in keys:
                open_.setdefault(k, ts)
        want += [(*k, start, None) for k, start in open_.items()]
        got = [
            (e["rule"], e["symbol"], e["start"], e["end"])
            for e in js["accounts"][account]["episodes"]
        ]
        assert sorted(got, key=str) == sorted(want, key=str), account
        assert js["accounts"][account]["episodesLeftOut"] == 0
        total += len(want)
    assert total >= 20  # the generator produces breaches that start and end
    assert any(e["end"] is not None for a in js["accounts"].values() for e in a["episodes"])
    assert js["worstUtilization"]["value"] == max(
        d["metrics"]["marginUtilization"] or 0 for d in decisions(out)
    )


# --------------------------------------------------------------------------- report


def test_reports_in_html_and_markdown(tmp_path):
    jl = write_jsonl(tmp_path / "a.jsonl", series(14, account="acct-report"))
    for name in ("report.md", "report.html"):
        path = tmp_path / name
        r, js = audit_json(str(jl), "--report", str(path))
        assert r.returncode == 1, r.stderr
        assert js["report"] == str(path)
        text = path.read_text()
        assert "acct-report" in text and "margin-utilization" in text
        assert "35.0" in text  # the policy's utilization limit is quoted
        if name.endswith(".html"):
            assert text.lstrip().lower().startswith("<!doctype html")
    r = run_cli("audit", "-p", DEFAULT, str(jl), "--report", str(tmp_path / "no" / "r.md"))
    assert r.returncode == 2 and "no such directory" in r.stderr


def test_a_line_that_is_not_utf8_is_one_bad_record(tmp_path):
    a, b = (json.dumps(d).encode() for d in series(2))
    jl = tmp_path / "bytes.jsonl"
    jl.write_bytes(a + b"\n" + b'{"account": "\xff"}\n' + b + b"\n")
    for workers in ("1", "2"):
        r, js = audit_json(str(jl), "--workers", workers, "--chunk-size", "1")
        assert js["snapshots"] == 2 and js["badRecords"] == 1, workers
        assert f"{jl}:2: not UTF-8 text" in r.stderr
