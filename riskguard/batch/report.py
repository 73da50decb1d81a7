"""Audit reports from a :class:`~riskguard.batch.summary.Summary`: Markdown or self-contained HTML.

``write_report(summary, path, policy_limit=0.35)`` picks the format by extension:

- ``.md`` — tables: overview, breaches by rule / severity / reason code / account /
  symbol, and each account's timeline of breach episodes;
- ``.html`` (or ``.htm``) — the same content plus plots: margin utilization over time
  with the policy limit, liquidation distance per position, and the breach timeline as
  a Gantt chart. One file, no external references (styles inline, plots inline SVG), so
  it can be mailed or archived as is.

Plots use matplotlib when it is installed (``pip install 'riskguard[plot]'``); without
it the report draws simpler SVG charts itself and says so in a note.

Plot series are down-sampled by the summary into time buckets; each point shown is the
worst value of its bucket (highest utilization, smallest liquidation distance), so
peaks are never averaged away.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from riskguard.batch.reportkit import (
    CSS,
    LINE_COLORS,
    Charts,
    broken_runs,
    card,
    esc,
    html_table,
)
from riskguard.batch.summary import Summary
from riskguard.batch.textfmt import count, duration, pct, when
from riskguard.engine.decision import SEVERITIES
from riskguard.errors import RiskguardError

__all__ = ["render_html", "render_markdown", "write_report"]

#: How much the HTML plots show; the tables carry the rest.
MAX_UTIL_ACCOUNTS = 8
MAX_LIQ_ACCOUNTS = 4
MAX_LIQ_SYMBOLS = 12
MAX_GANTT_ACCOUNTS = 6
MAX_GANTT_ROWS = 30
MAX_EPISODE_ROWS = 300  # per account, in the tables
MAX_SYMBOL_ROWS = 30

DEFINITIONS = (
    (
        "Margin utilization",
        "Σ initial margin of open positions ÷ equity (open orders not included); "
        "initial margin is the isolated margin for isolated positions and notional ÷ leverage for cross.",
    ),
    (
        "Liquidation distance",
        "how far the mark price may move against a position before its "
        "liquidation price, in % of the mark: s·(mark − liquidation)/mark·100.",
    ),
    (
        "Breach episode",
        "consecutive snapshots of one account in breach of one rule for one symbol "
        "(or account-wide). It starts at the first snapshot in breach and ends at the first later "
        "snapshot without it; ongoing means still in breach at the account's last snapshot.",
    ),
)


# --------------------------------------------------------------------------- entry point


def write_report(summary: Summary, path: str | Path, *, policy_limit: float | None = None) -> Path:
    """Write the report to ``path`` (.md, .html or .htm); returns the path written.

    ``policy_limit`` is the margin-utilization limit (a fraction, e.g. 0.35) drawn on the
    utilization plot and quoted in the overview.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".md":
        text = render_markdown(summary, policy_limit=policy_limit)
    elif suffix in (".html", ".htm"):
        text = render_html(summary, policy_limit=policy_limit)
    else:
        raise RiskguardError(
            f"expected a .html or .md report file name, got {p.name!r}", file=str(p)
        )
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RiskguardError(
            f"cannot write the report: {exc.strerror or exc}", file=str(p)
        ) from None
    return p


# --------------------------------------------------------------------------- formatting


def _when_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _share(part: int, whole: int) -> str:
    return "—" if not whole else f"{part / whole * 100:.1f} %"


def _num(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "—" if v is None else str(v)
    if isinstance(v, (int, float)):
        if v != v or v in (math.inf, -math.inf):
            return "—"
        if abs(v) >= 1000:
            return f"{v:,.2f}"
        return f"{v:.6g}"
    return str(v)


def _observed(rule_type: str | None, v: Any, settle: str) -> str:
    """An observed value or limit in the unit its rule type uses."""
    if v is None:
        return "—"
    if rule_type == "margin_utilization" and isinstance(v, (int, float)):
        return pct(v)
    if rule_type == "isolate_on_volatility" and isinstance(v, (int, float)):
        return f"{v:.2f} %"
    if rule_type == "stop_before_liquidation" and isinstance(v, (int, float)):
        return f"{_num(v)} {settle}"
    return _num(v)


def _observed_range(e: dict, settle: str) -> str:
    lo, hi = e["observedMin"], e["observedMax"]
    if lo is None:
        return "—"
    a, b = _observed(e["type"], lo, settle), _observed(e["type"], hi, settle)
    return a if a == b else f"{a} – {b}"


class _Data:
    """What both formats show, computed once from the summary."""

    def __init__(self, summary: Summary, policy_limit: float | None) -> None:
        self.summary = summary
        self.d = summary.to_dict()
        self.limit = policy_limit
        self.settle = self.d["settle"] or _settle_from_symbols(self.d["bySymbol"]) or ""
        self.unit = self.settle or "settle currency"
        self.accounts = self.d["accounts"]
        self.generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def overview(self) -> list[tuple[str, str]]:
        d = self.d
        first, last = d["period"]["first"], d["period"]["last"]
        rows = [
            ("Period covered (UTC)", f"{when(first)} → {when(last)}" if first else "—"),
            ("Snapshots evaluated", count(d["snapshots"])),
            ("Accounts", count(len(self.accounts))),
            ("Bad records (not evaluated)", count(d["badRecords"])),
            (
                "Decisions",
                " · ".join(f"{k} {count(v)}" for k, v in d["decisions"].items()) or "—",
            ),
        ]
        if d["wouldDecide"]:
            rows.append(
                (
                    "Monitor mode: would have decided",
                    " · ".join(f"{k} {count(v)}" for k, v in d["wouldDecide"].items()),
                )
            )
        rows += [
            (
                "Snapshots with violations",
                f"{count(d['snapshotsWithViolations'])} ({_share(d['snapshotsWithViolations'], d['snapshots'])})",
            ),
            ("Violations", count(d["violations"])),
            (
                "Breach episodes",
                f"{count(sum(len(a['episodes']) + a['episodesLeftOut'] for a in self.accounts.values()))}"
                f" ({count(sum(a['episodesOngoing'] for a in self.accounts.values()))} ongoing at the end)",
            ),
        ]
        wu = d["worstUtilization"]
        if wu:
            lim = f" (policy limit {pct(self.limit)})" if self.limit is not None else ""
            rows.append(
                (
                    "Worst margin utilization",
                    f"{pct(wu['value'])}{lim} — {wu['account']} at {when(wu['timestamp'])}"
                    + (f" ({wu['ref']})" if wu["ref"] else ""),
                )
            )
        elif self.limit is not None:
            rows.append(("Margin-utilization limit", pct(self.limit)))
        nl = d["nearestLiquidation"]
        if nl:
            rows.append(
                (
                    "Nearest liquidation",
                    f"{nl['distancePct']:.2f} % from mark — {nl['account']} {nl['symbol']} "
                    f"{nl['side'] or ''} at {when(nl['timestamp'])}"
                    + (f" ({nl['ref']})" if nl["ref"] else ""),
                )
            )
        return rows

    def rule_rows(self) -> tuple[list[str], list[list[str]]]:
        sevs = [s for s in reversed(SEVERITIES) if s in self.d["bySeverity"]]
        head = ["Rule", "Type", "Violations", *sevs]
        rows = []
        for rule, r in self.d["rules"].items():
            rows.append(
                [rule, r["type"] or "—", count(r["violations"])]
                + [count(r["bySeverity"].get(s, 0)) for s in sevs]
            )
        return head, rows

    def severity_rows(self) -> list[list[str]]:
        total = self.d["violations"]
        return [[s, count(n), _share(n, total)] for s, n in self.d["bySeverity"].items()]

    def code_rows(self) -> list[list[str]]:
        total = self.d["violations"]
        return [[c, count(n), _share(n, total)] for c, n in self.d["byCode"].items()]

    def account_rows(self) -> list[list[str]]:
        rows = []
        for name in self.account_order():
            a = self.accounts[name]
            wu, nl = a["worstUtilization"], a["nearestLiquidation"]
            rows.append(
                [
                    name,
                    count(a["snapshots"]),
                    f"{count(a['snapshotsWithViolations'])} ({_share(a['snapshotsWithViolations'], a['snapshots'])})",
                    count(a["violations"]),
                    count(len(a["episodes"]) + a["episodesLeftOut"]),
                    count(a["episodesOngoing"]),
                    pct(wu["value"]) if wu else "—",
                    f"{nl['distancePct']:.2f} % ({nl['symbol']})" if nl else "—",
                ]
            )
        return rows

    def account_order(self) -> list[str]:
        return sorted(self.accounts, key=lambda k: (-self.accounts[k]["violations"], k))

    def symbol_rows(self) -> list[list[str]]:
        total = self.d["violations"]
        return [
            [s, count(n), _share(n, total)]
            for s, n in list(self.d["bySymbol"].items())[:MAX_SYMBOL_ROWS]
        ]

    def episode_rows(self, name: str) -> list[list[str]]:
        rows = []
        for e in self.accounts[name]["episodes"][:MAX_EPISODE_ROWS]:
            rows.append(
                [
                    e["rule"],
                    e["symbol"] or "(account)",
                    e["severity"] or "—",
                    ", ".join(e["codes"]),
                    when(e["start"]),
                    "ongoing" if e["ongoing"] else when(e["end"]),
                    duration(e["durationS"]),
                    count(e["snapshots"]),
                    _observed_range(e, self.settle),
                    _observed(e["type"], e["limit"], self.settle),
                ]
            )
        return rows

    def episode_notes(self, name: str) -> list[str]:
        a = self.accounts[name]
        notes = []
        if len(a["episodes"]) > MAX_EPISODE_ROWS:
            notes.append(
                f"{count(len(a['episodes']) - MAX_EPISODE_ROWS)} more episodes are not listed here "
                "(they are in the summary JSON)."
            )
        if a["episodesLeftOut"]:
            notes.append(
                f"{count(a['episodesLeftOut'])} later finished episodes were counted but not kept "
                f"(the summary keeps the earliest {self.summary.max_episodes:,} per account)."
            )
        if a["outOfOrder"]:
            notes.append(
                f"{count(a['outOfOrder'])} snapshots of this account arrived out of timestamp order; "
                "episodes follow the input order."
            )
        return notes


def _settle_from_symbols(by_symbol: dict) -> str | None:
    """ccxt symbols name their settle currency after the colon (``BTC/USDT:USDT``)."""
    settles = {s.rsplit(":", 1)[1] for s in by_symbol if ":" in s}
    return settles.pop() if len(settles) == 1 else None


ACCOUNT_HEAD = [
    "Account",
    "Snapshots",
    "In breach",
    "Violations",
    "Episodes",
    "Ongoing",
    "Worst utilization",
    "Nearest liquidation",
]
EPISODE_HEAD = [
    "Rule",
    "Symbol",
    "Severity",
    "Codes",
    "Start (UTC)",
    "End (UTC)",
    "Duration",
    "Snapshots",
    "Observed (range)",
    "Limit",
]


# --------------------------------------------------------------------------- markdown


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    right = right or set()
    out = ["| " + " | ".join(_md_cell(h) for h in head) + " |"]
    out.append("|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|")
    for r in rows:
        out.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
    return out


def render_markdown(summary: Summary, *, policy_limit: float | None = None) -> str:
    """The report as Markdown (tables only)."""
    data = _Data(summary, policy_limit)
    d = data.d
    out = [
        "# riskguard audit report",
        "",
        f"Generated {data.generated}. Times are UTC; percentages are of equity unless stated; "
        f"amounts are in {data.unit}.",
        "",
        "## Overview",
        "",
        *_md_table(["", ""], [[k, v] for k, v in data.overview()]),
        "",
    ]
    if d["violations"]:
        head, rows = data.rule_rows()
        out += [
            "## Breaches by rule",
            "",
            *_md_table(head, rows, set(range(2, len(head)))),
            "",
            "## Breaches by severity",
            "",
            *_md_table(["Severity", "Violations", "Share"], data.severity_rows(), {1, 2}),
            "",
            "## Breaches by reason code",
            "",
            *_md_table(["Code", "Violations", "Share"], data.code_rows(), {1, 2}),
            "",
        ]
    else:
        out += ["No violations.", ""]
    if data.accounts:
        out += [
            "## Breaches by account",
            "",
            *_md_table(
                ACCOUNT_HEAD,
                data.account_rows(),
                {1, 2, 3, 4, 5, 6, 7},
            ),
            "",
        ]
    if d["bySymbol"]:
        out += [
            "## Breaches by symbol",
            "",
            *_md_table(["Symbol", "Violations", "Share"], data.symbol_rows(), {1, 2}),
            "",
        ]
        if len(d["bySymbol"]) > MAX_SYMBOL_ROWS:
            out += [f"_{len(d['bySymbol']) - MAX_SYMBOL_ROWS} more symbols not shown._", ""]
    if any(a["episodes"] for a in data.accounts.values()):
        out += ["## Timeline of breach episodes", ""]
        for name in sorted(data.accounts):
            a = data.accounts[name]
            if not a["episodes"]:
                continue
            out += [
                f"### {name}",
                "",
                f"{count(a['snapshots'])} snapshots from {when(a['first'])} to {when(a['last'])}; "
                f"{count(len(a['episodes']) + a['episodesLeftOut'])} episodes, "
                f"{count(a['episodesOngoing'])} ongoing.",
                "",
                *_md_table(EPISODE_HEAD, data.episode_rows(name), {7}),
                "",
            ]
            out += [f"_{n}_" for n in data.episode_notes(name)]
            if data.episode_notes(name):
                out.append("")
    out += ["## Definitions", ""]
    out += [f"- **{k}**: {v}" for k, v in DEFINITIONS]
    out += [
        "",
        "Plots of utilization, liquidation distance and the breach timeline are in the HTML "
        "report (`--report report.html`).",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- plots: data


def _typical_step(summary: Summary, name: str) -> float | None:
    """A gap threshold for an account's series: 3 × its median spacing of points."""
    pts = summary.utilization_series(name).points()
    if len(pts) < 3:
        return None
    diffs = [b[0] - a[0] for a, b in itertools.pairwise(pts) if b[0] > a[0]]
    if not diffs:
        return None
    return 3.0 * statistics.median(diffs)


class _Plots:
    """Chooses what to plot; draws through matplotlib or the built-in SVG fallback."""

    def __init__(self, data: _Data) -> None:
        self.data = data
        self.summary = data.summary
        self.charts = Charts()
        self._lines = self.charts.lines
        self._gantt = self.charts.gantt

    @property
    def backend_note(self) -> str | None:
        return self.charts.backend_note

    # -- selections

    def util_accounts(self) -> list[str]:
        accts = self.data.accounts
        named = [n for n in accts if accts[n]["worstUtilization"] is not None]
        named.sort(key=lambda n: (-accts[n]["worstUtilization"]["value"], n))
        return named

    def single_snapshot_accounts(self) -> list[str]:
        """Accounts seen at one instant only: nothing to draw over time; the tables show them."""
        accts = self.data.accounts
        return sorted(n for n in accts if accts[n]["first"] == accts[n]["last"])

    def liq_accounts(self) -> list[str]:
        accts = self.data.accounts
        single = set(self.single_snapshot_accounts())
        named = [n for n in accts if accts[n]["nearestLiquidation"] is not None and n not in single]
        named.sort(key=lambda n: (accts[n]["nearestLiquidation"]["distancePct"], n))
        return named

    def gantt_accounts(self) -> list[str]:
        accts = self.data.accounts
        single = set(self.single_snapshot_accounts())
        named = [n for n in accts if accts[n]["episodes"] and n not in single]
        named.sort(key=lambda n: (-accts[n]["violations"], n))
        return named

    # -- charts (each returns inline SVG text)

    def utilization(self) -> str | None:
        names = self.util_accounts()[:MAX_UTIL_ACCOUNTS]
        if not names:
            return None
        lines = []
        for i, name in enumerate(names):
            pts = [(t, v * 100.0) for t, v in self.summary.utilization_series(name).points("max")]
            lines.append(
                (
                    name,
                    LINE_COLORS[i % len(LINE_COLORS)],
                    broken_runs(pts, _typical_step(self.summary, name)),
                )
            )
        limit = self.data.limit * 100.0 if self.data.limit is not None else None
        return self._lines(
            None,  # the section heading says it
            "% of equity",
            lines,
            hline=(limit, f"policy limit {limit:g} %") if limit is not None else None,
            ymin=0.0,
        )

    def liquidation(self, name: str) -> str | None:
        series = self.summary.liquidation_series(name)
        if not series:
            return None
        nearest = sorted(series, key=lambda s: (min(v for _t, v in series[s].points("min")), s))
        gap = _typical_step(self.summary, name)
        lines = []
        for i, sym in enumerate(nearest[:MAX_LIQ_SYMBOLS]):
            pts = series[sym].points("min")
            lines.append((sym, LINE_COLORS[i % len(LINE_COLORS)], broken_runs(pts, gap)))
        return self._lines(
            f"{name}: distance to liquidation per position",
            "% of mark price (log scale above 1 %)",
            lines,
            symlog=True,
        )

    def gantt(self, name: str) -> str | None:
        a = self.data.accounts[name]
        eps = a["episodes"]
        if not eps:
            return None
        keys: list[tuple] = []
        for e in eps:
            k = (e["rule"], e["symbol"])
            if k not in keys:
                keys.append(k)
        keys = keys[:MAX_GANTT_ROWS]
        index = {k: i for i, k in enumerate(keys)}
        first = _ms(a["first"])
        last = _ms(a["last"])
        bars = []
        for e in eps:
            k = (e["rule"], e["symbol"])
            if k not in index:
                continue
            start = _ms(e["start"])
            stop = _ms(e["end"]) if e["end"] else _ms(e["lastSeen"])
            if start is None or stop is None:
                continue
            bars.append((index[k], start, stop, e["severity"] or "error"))
        labels = [f"{r} · {s or 'account'}" for r, s in keys]
        if first is not None and last is not None and last - first < 3_600_000:
            # One snapshot (or a few close together): give the axis an hour around them.
            mid = (first + last) // 2
            first, last = mid - 1_800_000, mid + 1_800_000
        return self._gantt(f"{name}: breach timeline", labels, bars, first, last)


def _ms(iso: str | None) -> int | None:
    if not iso:
        return None
    s = iso[:-1] + "+00:00" if iso.endswith("Z") else iso
    return int(datetime.fromisoformat(s).timestamp() * 1000)


# --------------------------------------------------------------------------- html


def render_html(summary: Summary, *, policy_limit: float | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG plots, no URLs)."""
    data = _Data(summary, policy_limit)
    d = data.d
    plots = _Plots(data)
    first, last = d["period"]["first"], d["period"]["last"]
    body: list[str] = [
        "<h1>riskguard audit report</h1>",
        f'<p class="meta">Period {esc(when(first))} → {esc(when(last))} UTC · generated '
        f"{esc(data.generated)} · percentages are of equity unless stated · amounts in "
        f"{esc(data.unit)}</p>",
    ]

    # cards
    denied = d["decisions"].get("deny", 0)
    wu, nl = d["worstUtilization"], d["nearestLiquidation"]
    over = wu is not None and data.limit is not None and wu["value"] > data.limit
    cards = [
        card("Snapshots", count(d["snapshots"]), f"{count(len(data.accounts))} accounts"),
        card(
            "In breach",
            _share(d["snapshotsWithViolations"], d["snapshots"]),
            f"{count(d['snapshotsWithViolations'])} snapshots with violations",
            "bad" if d["snapshotsWithViolations"] else "ok",
        ),
        card(
            "Denied",
            count(denied),
            _share(denied, d["snapshots"]) + " of decisions",
            "bad" if denied else "ok",
        ),
        card(
            "Worst utilization",
            pct(wu["value"]) if wu else "—",
            (f"limit {pct(data.limit)} · " if data.limit is not None else "")
            + (wu["account"] if wu else ""),
            "bad" if over else "",
        ),
        card(
            "Nearest liquidation",
            f"{nl['distancePct']:.2f} %" if nl else "—",
            f"{nl['account']} {nl['symbol']}" if nl else "",
            "bad" if nl and nl["distancePct"] < 2 else "",
        ),
        card(
            "Bad records", count(d["badRecords"]), "not evaluated", "bad" if d["badRecords"] else ""
        ),
    ]
    body.append('<div class="cards">' + "".join(cards) + "</div>")

    body.append("<h2>Overview</h2>")
    body.append(
        html_table(["", ""], [[k, v] for k, v in data.overview()], cls="kv").replace(
            "<thead><tr><th></th><th></th></tr></thead>", ""
        )
    )

    # plots: utilization
    note = plots.backend_note
    if note:
        body.append(f'<p class="note">{esc(note)}</p>')
    util_svg = plots.utilization()
    if util_svg:
        body.append("<h2>Margin utilization over time</h2>")
        body.append(
            '<p class="muted">Σ initial margin ÷ equity per account; each point is the highest '
            "value in its time bucket"
            + (
                f"; the dashed line is the policy limit ({pct(data.limit)})"
                if data.limit is not None
                else ""
            )
            + ".</p>"
        )
        body.append(f'<div class="plot">{util_svg}</div>')
        more = len(plots.util_accounts()) - MAX_UTIL_ACCOUNTS
        if more > 0:
            body.append(
                f'<p class="muted">Showing the {MAX_UTIL_ACCOUNTS} accounts with the highest '
                f"utilization; {more} more are in the tables.</p>"
            )

    # breaches
    if d["violations"]:
        head, rows = data.rule_rows()
        body += [
            "<h2>Breaches by rule</h2>",
            html_table(head, rows, set(range(2, len(head)))),
            "<h2>Breaches by severity</h2>",
            html_table(
                ["Severity", "Violations", "Share"], data.severity_rows(), {1, 2}, sev_col=0
            ),
            "<h2>Breaches by reason code</h2>",
            html_table(["Code", "Violations", "Share"], data.code_rows(), {1, 2}),
        ]
    else:
        body.append("<h2>Breaches</h2><p>No violations.</p>")
    if data.accounts:
        body += [
            "<h2>Breaches by account</h2>",
            html_table(
                ACCOUNT_HEAD,
                data.account_rows(),
                {1, 2, 3, 4, 5, 6, 7},
            ),
        ]
    if d["bySymbol"]:
        body += [
            "<h2>Breaches by symbol</h2>",
            html_table(["Symbol", "Violations", "Share"], data.symbol_rows(), {1, 2}),
        ]
        if len(d["bySymbol"]) > MAX_SYMBOL_ROWS:
            body.append(
                f'<p class="muted">{len(d["bySymbol"]) - MAX_SYMBOL_ROWS} more symbols not shown.</p>'
            )

    # liquidation distance
    liq_names = plots.liq_accounts()
    if liq_names:
        body.append("<h2>Liquidation distance per position</h2>")
        body.append(
            '<p class="muted">How far each position’s mark price was from its liquidation price, '
            "in % of the mark; each point is the smallest distance in its time bucket. Accounts "
            "with the nearest liquidation first.</p>"
        )
        for name in liq_names[:MAX_LIQ_ACCOUNTS]:
            svg = plots.liquidation(name)
            if svg:
                body.append(f'<div class="plot">{svg}</div>')
        if len(liq_names) > MAX_LIQ_ACCOUNTS:
            more = len(liq_names) - MAX_LIQ_ACCOUNTS
            body.append(
                f'<p class="muted">{_plural(more, "more account")} not plotted; '
                "see their nearest liquidation in the account table.</p>"
            )

    # timeline
    if any(a["episodes"] for a in data.accounts.values()):
        body.append("<h2>Breach timeline</h2>")
        body.append(
            '<p class="muted">Each bar is one breach episode: consecutive snapshots of the account '
            "in breach of one rule for one symbol, coloured by its worst severity.</p>"
        )
        g_names = plots.gantt_accounts()
        for name in g_names[:MAX_GANTT_ACCOUNTS]:
            svg = plots.gantt(name)
            if svg:
                body.append(f'<div class="plot">{svg}</div>')
            rows_total = len({(e["rule"], e["symbol"]) for e in data.accounts[name]["episodes"]})
            if rows_total > MAX_GANTT_ROWS:
                body.append(
                    f'<p class="muted">{esc(name)}: {rows_total - MAX_GANTT_ROWS} more rule/symbol '
                    "rows not drawn (see the table below).</p>"
                )
        single = plots.single_snapshot_accounts()
        if single:
            shown = ", ".join(single[:10]) + (" …" if len(single) > 10 else "")
            body.append(
                f'<p class="muted">Not charted: {_plural(len(single), "account")} with a single '
                f"snapshot ({esc(shown)}); their breaches are in the tables.</p>"
            )
        if len(g_names) > MAX_GANTT_ACCOUNTS:
            body.append(
                f'<p class="muted">Charts for the {MAX_GANTT_ACCOUNTS} accounts with the most '
                f"violations; {len(g_names) - MAX_GANTT_ACCOUNTS} more accounts are in the "
                "tables below.</p>"
            )
        body.append("<h2>Timeline of breach episodes</h2>")
        for i, name in enumerate(sorted(data.accounts)):
            a = data.accounts[name]
            if not a["episodes"]:
                continue
            opened = " open" if i < 3 else ""
            body.append(
                f"<details{opened}><summary>{esc(name)} — "
                f"{count(len(a['episodes']) + a['episodesLeftOut'])} episodes, "
                f"{count(a['episodesOngoing'])} ongoing · {count(a['snapshots'])} snapshots from "
                f"{esc(when(a['first']))} to {esc(when(a['last']))}</summary>"
            )
            body.append(
                html_table(
                    EPISODE_HEAD,
                    data.episode_rows(name),
                    {7},
                    sev_col=2,
                    cls="episodes",
                    nowrap={1, 4, 5, 6},
                )
            )
            for n in data.episode_notes(name):
                body.append(f'<p class="muted">{esc(n)}</p>')
            body.append("</details>")

    body.append("<h2>Definitions</h2><dl>")
    for k, v in DEFINITIONS:
        body.append(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>")
    body.append("</dl>")

    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>riskguard audit report</title>"
        f"<style>{CSS}</style></head><body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
