"""Summary of decisions (counts, worst figures, breach episodes, merge) and the reports."""

from __future__ import annotations

import itertools
import json
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskguard.batch import report, reportkit
from riskguard.batch.summary import Summary, render_text
from riskguard.batch.timeline import Series
from riskguard.errors import RiskguardError

from .conftest import EXAMPLES, POLICIES, run_cli

T0 = "2026-11-01T00:00:00.000Z"


def ts(minute: int) -> str:
    return f"2026-11-01T{minute // 60:02d}:{minute % 60:02d}:00.000Z"


def viol(rule, code, severity="error", symbol=None, observed=None, limit=None, type_=None):
    return {
        "rule": rule,
        "type": type_ or rule.replace("-", "_"),
        "code": code,
        "severity": severity,
        "symbol": symbol,
        "observed": observed,
        "limit": limit,
        "message": f"{code} on {symbol or 'the account'}",
    }


def MU(observed=0.42, severity="error"):
    return viol(
        "margin-utilization",
        "MARGIN_UTILIZATION_EXCEEDS_MAX",
        severity,
        observed=observed,
        limit=0.35,
    )


def SL(symbol="BTC/USDT:USDT", code="STOP_LOSS_MISSING", severity="error"):
    return viol("stop-before-liquidation", code, severity, symbol=symbol, limit=57000.0)


def decision(account, minute, violations=(), util=0.2, positions=None, ref=None, outcome=None):
    positions = positions if positions is not None else [("BTC/USDT:USDT", "long", 12.0)]
    return {
        "decision": outcome or ("deny" if violations else "allow"),
        "decisionId": f"id-{account}-{minute}",
        "timestamp": ts(minute),
        "mode": "enforce",
        "snapshot": {
            "account": account,
            "digest": "sha256:x",
            "timestamp": ts(minute),
            "ref": ref or f"snaps.jsonl:{minute + 1}",
        },
        "violations": list(violations),
        "actions": [],
        "metrics": {
            "equity": 10000.0,
            "marginUtilization": util,
            "positions": [
                {"symbol": s, "side": side, "marginMode": "cross", "liquidationDistancePct": dist}
                for s, side, dist in positions
            ],
        },
    }


def story() -> list[dict]:
    """Account A, minute by minute, with account B interleaved:

    A: t0 clean · t1 MU · t2 MU + SL(BTC) · t3 SL(BTC) · t4 MU · t5 MU (still in breach)
    B: t0 SL(ETH) · t2 clean · t4 SL(ETH, critical)
    """
    return [
        decision("A", 0, util=0.20),
        decision("B", 0, [SL("ETH/USDT:USDT")], positions=[("ETH/USDT:USDT", "short", 40.0)]),
        decision("A", 1, [MU(0.41)], util=0.41),
        decision("A", 2, [MU(0.44), SL()], util=0.44, positions=[("BTC/USDT:USDT", "long", 3.5)]),
        decision("B", 2, [], positions=[("ETH/USDT:USDT", "short", 35.0)]),
        decision("A", 3, [SL()], util=0.30),
        decision("A", 4, [MU(0.37)], util=0.37),
        decision(
            "B",
            4,
            [SL("ETH/USDT:USDT", "LIQUIDATION_BUFFER_BREACHED", "critical")],
            positions=[("ETH/USDT:USDT", "short", 0.8)],
        ),
        decision("A", 5, [MU(0.39)], util=0.39, positions=[("BTC/USDT:USDT", "long", 9.0)]),
    ]


def summarise(decisions, **kw) -> Summary:
    s = Summary(**kw)
    for d in decisions:
        s.add(d)
    return s


def brief(e: dict) -> tuple:
    return (
        e["rule"],
        e["symbol"],
        e["start"],
        e["end"],
        e["lastSeen"],
        e["snapshots"],
        e["severity"],
    )


# --------------------------------------------------------------------------- counts


def test_counts_by_rule_code_severity_account_symbol_and_outcome():
    d = summarise(story()).to_dict()
    assert d["snapshots"] == 9
    assert d["decisions"] == {"deny": 7, "allow": 2}
    assert d["violations"] == 8 and d["snapshotsWithViolations"] == 7
    assert d["byRule"] == {"margin-utilization": 4, "stop-before-liquidation": 4}
    assert d["byCode"] == {
        "MARGIN_UTILIZATION_EXCEEDS_MAX": 4,
        "STOP_LOSS_MISSING": 3,
        "LIQUIDATION_BUFFER_BREACHED": 1,
    }
    assert d["bySeverity"] == {"critical": 1, "error": 7}
    assert list(d["bySeverity"]) == ["critical", "error"]  # worst first
    assert d["byAccount"] == {"A": 6, "B": 2}
    assert d["bySymbol"] == {"BTC/USDT:USDT": 2, "ETH/USDT:USDT": 2}
    assert d["rules"]["stop-before-liquidation"] == {
        "type": "stop_before_liquidation",
        "violations": 4,
        "bySeverity": {"critical": 1, "error": 3},
    }
    assert d["period"] == {"first": T0, "last": ts(5)}


def test_worst_utilization_and_nearest_liquidation_with_where_and_when():
    d = summarise(story()).to_dict()
    assert d["worstUtilization"] == {
        "value": 0.44,
        "account": "A",
        "timestamp": ts(2),
        "ref": "snaps.jsonl:3",
    }
    assert d["nearestLiquidation"] == {
        "distancePct": 0.8,
        "account": "B",
        "symbol": "ETH/USDT:USDT",
        "side": "short",
        "timestamp": ts(4),
        "ref": "snaps.jsonl:5",
    }
    a = d["accounts"]["A"]
    assert a["worstUtilization"]["value"] == 0.44
    assert a["nearestLiquidation"]["distancePct"] == 3.5


def test_ties_go_to_the_earliest_snapshot_whatever_the_arrival_order():
    early = decision("A", 1, util=0.5, ref="early")
    late = decision("A", 2, util=0.5, ref="late")
    for order in ([early, late], [late, early]):
        assert summarise(order).to_dict()["worstUtilization"]["ref"] == "early"


# --------------------------------------------------------------------------- episodes


def test_breach_timeline_episodes_exactly():
    d = summarise(story()).to_dict()
    a = d["accounts"]["A"]
    assert [brief(e) for e in a["episodes"]] == [
        ("margin-utilization", None, ts(1), ts(3), ts(2), 2, "error"),
        ("stop-before-liquidation", "BTC/USDT:USDT", ts(2), ts(4), ts(3), 2, "error"),
        ("margin-utilization", None, ts(4), None, ts(5), 2, "error"),
    ]
    first, _sl, last = a["episodes"]
    assert first["observedMin"] == 0.41 and first["observedMax"] == 0.44
    assert first["limit"] == 0.35 and first["durationS"] == 120.0
    assert first["codes"] == ["MARGIN_UTILIZATION_EXCEEDS_MAX"]
    assert first["startRef"] == "snaps.jsonl:2"
    assert last["ongoing"] is True and last["durationS"] == 60.0
    assert a["episodesOngoing"] == 1 and a["snapshots"] == 6 and a["outOfOrder"] == 0

    b = d["accounts"]["B"]
    assert [brief(e) for e in b["episodes"]] == [
        ("stop-before-liquidation", "ETH/USDT:USDT", ts(0), ts(2), ts(0), 1, "error"),
        ("stop-before-liquidation", "ETH/USDT:USDT", ts(4), None, ts(4), 1, "critical"),
    ]
    assert b["episodes"][1]["codes"] == ["LIQUIDATION_BUFFER_BREACHED"]


def test_two_violations_of_one_rule_and_symbol_in_a_snapshot_are_one_episode_step():
    two = [SL(code="STOP_LOSS_INSIDE_BUFFER"), SL(code="STOP_LOSS_MISSING", severity="critical")]
    d = summarise([decision("A", 0, two), decision("A", 1)]).to_dict()
    (e,) = d["accounts"]["A"]["episodes"]
    assert e["snapshots"] == 1 and e["severity"] == "critical"
    assert e["codes"] == ["STOP_LOSS_INSIDE_BUFFER", "STOP_LOSS_MISSING"]
    assert d["violations"] == 2


def test_out_of_order_snapshots_are_flagged_not_reordered():
    docs = [decision("A", 0, [MU()]), decision("A", 5), decision("A", 2, [MU()])]
    d = summarise(docs).to_dict()
    a = d["accounts"]["A"]
    assert a["outOfOrder"] == 1
    assert [(e["start"], e["end"]) for e in a["episodes"]] == [(ts(0), ts(5)), (ts(2), None)]
    assert "out of timestamp order" in render_text(summarise(docs))


def test_episode_cap_keeps_the_earliest_and_counts_the_rest():
    docs = []
    for i in range(40):  # 20 one-snapshot episodes
        docs.append(decision("A", i, [MU()] if i % 2 == 0 else []))
    d = summarise(docs, max_episodes=5).to_dict()
    a = d["accounts"]["A"]
    assert [e["start"] for e in a["episodes"]] == [ts(i) for i in (0, 2, 4, 6, 8)]
    assert a["episodesLeftOut"] == 15


# --------------------------------------------------------------------------- merge


def test_merge_equals_single_pass_for_every_cut():
    docs = story()
    whole = summarise(docs).to_dict(series=True)
    for cut in range(len(docs) + 1):
        left, right = summarise(docs[:cut]), summarise(docs[cut:])
        left.merge(right)
        assert left.to_dict(series=True) == whole, cut


def many_decisions(n: int = 240) -> list[dict]:
    """Three accounts with breaches that start and stop at varied times."""
    out = []
    for i in range(n):
        acct = "ABC"[i % 3]
        minute = i // 3
        v = []
        if (minute // 3 + i % 3) % 4 == 0:
            v.append(MU(0.35 + (minute % 7) / 100))
        if (minute // 5) % 3 == 1:
            v.append(SL("SOL/USDT:USDT"))
        if minute % 11 == 0:
            v.append(SL("ETH/USDT:USDT", "STOP_LOSS_BEYOND_LIQUIDATION", "warning"))
        pos = [("SOL/USDT:USDT", "long", 5 + (i * 7) % 13), ("ETH/USDT:USDT", "short", 9 + i % 5)]
        out.append(decision(acct, minute, v, util=0.1 + (i * 13) % 40 / 100, positions=pos))
    return out


def test_merge_of_chunks_equals_single_pass_with_small_caps():
    """Chunked like a process pool (and merged as a tree): the same summary, down-sampled
    series and capped episode lists included."""
    kw = {"series_points": 6, "position_points": 4, "max_episodes": 3}
    docs = many_decisions()
    whole = summarise(docs, **kw).to_dict(series=True)
    assert len(whole["accounts"]["A"]["series"]["marginUtilization"]["points"]) <= 6
    assert whole["accounts"]["A"]["episodesLeftOut"] > 0
    for size in (1, 2, 7, 50):
        parts = [summarise(docs[i : i + size], **kw) for i in range(0, len(docs), size)]
        seq = Summary(**kw)
        for p in parts:
            seq.merge(p)
        assert seq.to_dict(series=True) == whole, size
        # pairwise tree: ((p0+p1)+(p2+p3))+...
        parts = [summarise(docs[i : i + size], **kw) for i in range(0, len(docs), size)]
        while len(parts) > 1:
            nxt = []
            for a, b in itertools.zip_longest(parts[::2], parts[1::2]):
                if b is not None:
                    a.merge(b)
                nxt.append(a)
            parts = nxt
        assert parts[0].to_dict(series=True) == whole, f"tree {size}"


def test_bad_records_counted_and_merged():
    a, b = Summary(max_bad_examples=2), Summary(max_bad_examples=2)
    a.add_bad("f.jsonl:3", "malformed JSON")
    b.add_bad("f.jsonl:9", "walletBalance: expected a number")
    b.add_bad("f.jsonl:10", "x")
    a.merge(b)
    d = a.to_dict()
    assert d["badRecords"] == 3
    assert [x["ref"] for x in d["badRecordExamples"]] == ["f.jsonl:3", "f.jsonl:9"]


# --------------------------------------------------------------------------- series


def test_series_downsamples_to_a_bounded_size_keeping_extremes():
    s = Series(50)
    for i in range(10_000):
        s.add(1_790_000_000_000 + i * 60_000, (i * 37) % 101 / 100)
    assert len(s) <= 50
    assert max(v for _t, v in s.points("max")) == 1.0
    assert min(v for _t, v in s.points("min")) == 0.0
    times = [t for t, _v in s.points()]
    assert times == sorted(times)


def test_summary_memory_is_bounded_per_account():
    s = Summary(series_points=100, position_points=20)
    for i in range(5000):
        s.add(decision("A", i, util=(i % 50) / 100))
    assert len(s.utilization_series("A")) <= 100
    assert len(s.liquidation_series("A")["BTC/USDT:USDT"]) <= 20


# --------------------------------------------------------------------------- text


def test_render_text_for_the_terminal():
    text = render_text(summarise(story()))
    assert "decisions: deny 7 · allow 2" in text
    assert "violations: 8 in 7 of 9 snapshots (critical 1 · error 7)" in text
    assert "worst margin utilization: 44.0 % — A" in text
    assert "nearest liquidation: 0.80 % from mark — B ETH/USDT:USDT short" in text
    assert "stop-before-liquidation" in text and "longest breach episodes" in text
    assert render_text(Summary()).startswith("decisions: none")


# --------------------------------------------------------------------------- reports


class _Refs(HTMLParser):
    """Collects every place an HTML page could load something from: attributes and CSS."""

    def __init__(self) -> None:
        super().__init__()
        self.attr_urls: list[str] = []
        self.tags: set[str] = set()
        self.in_style = False
        self.css = ""
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.in_style = tag == "style"
        for _k, v in attrs:
            # url(#id) and href="#id" point inside the page (SVG clip paths, markers): fine.
            if v and re.search(r"(https?:)?//|url\((?!#)", v, re.I):
                self.attr_urls.append(v)

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.css += data
        else:
            self.text += data


def assert_self_contained(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    assert p.attr_urls == []
    assert not re.search(r"url\(|@import|https?:", p.css, re.I)
    assert not {"link", "script", "img", "iframe", "object", "embed"} & p.tags
    # Any http(s):// left is plain text that a reader sees, never something fetched.
    assert html.count("https://") + html.count("http://") == p.text.count(
        "https://"
    ) + p.text.count("http://")
    return p


@pytest.fixture
def rich_summary() -> Summary:
    docs = many_decisions()
    # The worst snapshot's reference is a URL: the report shows it as text, never links it.
    docs.append(
        decision("A", 200, [MU(0.9)], util=0.9, ref="https://archive.example/snap-200.json")
    )
    return summarise(docs)


def test_markdown_report_has_the_tables(tmp_path, rich_summary):
    p = report.write_report(rich_summary, tmp_path / "r.md", policy_limit=0.35)
    md = p.read_text()
    for heading in (
        "## Overview",
        "## Breaches by rule",
        "## Breaches by severity",
        "## Breaches by reason code",
        "## Breaches by account",
        "## Breaches by symbol",
        "## Timeline of breach episodes",
        "### A",
    ):
        assert heading in md, heading
    assert "| Rule | Type | Violations | error | warning |" in md
    assert (
        "| Worst margin utilization | 90.0 % (policy limit 35.0 %) — A at 2026-11-01 03:20:00 "
        "(https://archive.example/snap-200.json) |"
    ) in md
    assert "| margin-utilization | (account) | error | MARGIN_UTILIZATION_EXCEEDS_MAX |" in md
    assert "{" not in md  # no raw JSON


def test_html_report_is_self_contained_with_plots(tmp_path, rich_summary):
    pytest.importorskip("matplotlib")
    p = report.write_report(rich_summary, tmp_path / "r.html", policy_limit=0.35)
    html = p.read_text()
    refs = assert_self_contained(html)
    assert "https://archive.example/snap-200.json" in refs.text  # a ref, shown as text
    assert html.count("<svg") == 1 + 3 + 3  # utilization, liquidation ×3, timeline ×3
    for title in (
        "Margin utilization over time",
        "Liquidation distance per position",
        "Breach timeline",
    ):
        assert f"<h2>{title}</h2>" in html
    assert "policy limit 35 %" in html  # the limit line's legend
    assert "A: breach timeline" in html and "A: distance to liquidation per position" in html
    assert "matplotlib is not installed" not in html
    assert "<table" in html and "Timeline of breach episodes" in html


def test_html_report_without_matplotlib_draws_its_own_svg_and_says_so(
    tmp_path, rich_summary, monkeypatch
):
    monkeypatch.setattr(reportkit, "_load_matplotlib", lambda: None)
    html = report.write_report(rich_summary, tmp_path / "r.html", policy_limit=0.35).read_text()
    assert_self_contained(html)
    assert "matplotlib is not installed" in html and "riskguard[plot]" in html
    assert html.count("<svg") == 7
    assert "<polyline" in html and "stroke-dasharray" in html  # lines and the limit


def test_html_escapes_names(tmp_path, monkeypatch):
    evil = '<script>alert("x")</script>'
    s = summarise([decision(evil, 0, [MU()]), decision(evil, 1)])
    for mpl in (True, False):
        if not mpl:
            monkeypatch.setattr(reportkit, "_load_matplotlib", lambda: None)
        html = report.render_html(s, policy_limit=0.35)
        assert evil not in html and "<script" not in html


def test_empty_summary_reports(tmp_path):
    s = Summary()
    assert "No violations." in report.render_markdown(s)
    assert_self_contained(report.render_html(s))


def test_unknown_report_suffix_is_a_usage_error(tmp_path):
    with pytest.raises(RiskguardError, match=r"expected a \.html or \.md"):
        report.write_report(Summary(), tmp_path / "r.pdf")


# --------------------------------------------------------------------------- end to end


def test_readme_main_command_on_the_bundled_examples(tmp_path):
    """What the README runs: the default policy over examples/snapshots, with a report."""
    out = tmp_path / "report.html"
    r = run_cli(
        "audit",
        "--policy",
        str(POLICIES / "default.yaml"),
        str(EXAMPLES / "snapshots"),
        "--fail-on",
        "critical",
        "--report",
        str(out),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)  # the summary, plus run details
    assert summary["snapshots"] == 246 and summary["badRecords"] == 0
    # binance-hedge: a hedge-mode pair without stops is denied (STOP_LOSS_MISSING per leg)
    assert summary["accounts"]["hedger"]["decisions"] == {"deny": 1}
    # bybit-collateral: a multi-collateral account's long without a stop is denied
    assert summary["accounts"]["collateral"]["decisions"] == {"deny": 1}
    assert summary["worstUtilization"]["account"] == "swing"
    assert summary["worstUtilization"]["value"] == pytest.approx(0.4971, abs=1e-4)
    main = summary["accounts"]["main"]  # binance-two-cross: allowed, only warned
    assert main["decisions"] == {"allow": 1}
    # risk-per-trade (a warning in the default policy): the stops risk 7.25 % and 2.90 %
    assert main["violations"] == 2
    assert {(e["rule"], e["severity"], e["symbol"]) for e in main["episodes"]} == {
        ("risk-per-trade", "warning", "BTC/USDT:USDT"),
        ("risk-per-trade", "warning", "ETH/USDT:USDT"),
    }
    assert summary["byCode"]["STOP_LOSS_MISSING"] >= 1
    assert {"VOLATILITY_ATR_ABOVE_THRESHOLD", "VOLATILITY_EVENT_WINDOW"} <= set(summary["byCode"])
    assert_self_contained(out.read_text())


@given(
    values=st.lists(
        st.tuples(st.integers(0, 10**7), st.sampled_from([0.1, 0.2, 0.5, 0.9])),
        min_size=1,
        max_size=120,
    ),
    cuts=st.lists(st.integers(0, 120), max_size=6),
    cap=st.integers(2, 12),
)
def test_series_merged_from_pieces_equals_one_series_fed_everything(values, cuts, cap):
    """Pieces of a time-ordered stream, each down-sampled on its own (so at widths that
    differ from the running series'), merge into exactly the one-pass series."""
    values = sorted(values)
    one = Series(cap)
    for t, v in values:
        one.add(t * 1000, v)
    bounds = sorted({0, len(values), *(c for c in cuts if c < len(values))})
    merged = Series(cap)
    for a, b in itertools.pairwise(bounds):
        piece = Series(cap)
        for t, v in values[a:b]:
            piece.add(t * 1000, v)
        merged.merge(piece)
    assert merged.width == one.width
    assert merged.buckets == one.buckets
