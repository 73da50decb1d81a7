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

import html
import io
import itertools
import math
import os
import statistics
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from riskguard.batch.summary import SEVERITIES, Summary
from riskguard.errors import RiskguardError

__all__ = ["render_html", "render_markdown", "write_report"]

SEVERITY_COLORS = {
    "critical": "#7f0000",
    "error": "#d62728",
    "warning": "#ff9f1c",
    "info": "#6c8ebf",
}
LINE_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
)
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


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    return iso.replace("T", " ").replace(".000Z", "Z").replace("Z", "")


def _when_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _n(v: int | None) -> str:
    return "—" if v is None else f"{v:,}"


def _pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v * 100:.{digits}f} %"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _share(part: int, whole: int) -> str:
    return "—" if not whole else f"{part / whole * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m:02d} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


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
        return _pct(v)
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
            ("Period covered (UTC)", f"{_when(first)} → {_when(last)}" if first else "—"),
            ("Snapshots evaluated", _n(d["snapshots"])),
            ("Accounts", _n(len(self.accounts))),
            ("Bad records (not evaluated)", _n(d["badRecords"])),
            (
                "Decisions",
                " · ".join(f"{k} {_n(v)}" for k, v in d["decisions"].items()) or "—",
            ),
        ]
        if d["wouldDecide"]:
            rows.append(
                (
                    "Monitor mode: would have decided",
                    " · ".join(f"{k} {_n(v)}" for k, v in d["wouldDecide"].items()),
                )
            )
        rows += [
            (
                "Snapshots with violations",
                f"{_n(d['snapshotsWithViolations'])} ({_share(d['snapshotsWithViolations'], d['snapshots'])})",
            ),
            ("Violations", _n(d["violations"])),
            (
                "Breach episodes",
                f"{_n(sum(len(a['episodes']) + a['episodesLeftOut'] for a in self.accounts.values()))}"
                f" ({_n(sum(a['episodesOngoing'] for a in self.accounts.values()))} ongoing at the end)",
            ),
        ]
        wu = d["worstUtilization"]
        if wu:
            lim = f" (policy limit {_pct(self.limit)})" if self.limit is not None else ""
            rows.append(
                (
                    "Worst margin utilization",
                    f"{_pct(wu['value'])}{lim} — {wu['account']} at {_when(wu['timestamp'])}"
                    + (f" ({wu['ref']})" if wu["ref"] else ""),
                )
            )
        elif self.limit is not None:
            rows.append(("Margin-utilization limit", _pct(self.limit)))
        nl = d["nearestLiquidation"]
        if nl:
            rows.append(
                (
                    "Nearest liquidation",
                    f"{nl['distancePct']:.2f} % from mark — {nl['account']} {nl['symbol']} "
                    f"{nl['side'] or ''} at {_when(nl['timestamp'])}"
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
                [rule, r["type"] or "—", _n(r["violations"])]
                + [_n(r["bySeverity"].get(s, 0)) for s in sevs]
            )
        return head, rows

    def severity_rows(self) -> list[list[str]]:
        total = self.d["violations"]
        return [[s, _n(n), _share(n, total)] for s, n in self.d["bySeverity"].items()]

    def code_rows(self) -> list[list[str]]:
        total = self.d["violations"]
        return [[c, _n(n), _share(n, total)] for c, n in self.d["byCode"].items()]

    def account_rows(self) -> list[list[str]]:
        rows = []
        for name in self.account_order():
            a = self.accounts[name]
            wu, nl = a["worstUtilization"], a["nearestLiquidation"]
            rows.append(
                [
                    name,
                    _n(a["snapshots"]),
                    f"{_n(a['snapshotsWithViolations'])} ({_share(a['snapshotsWithViolations'], a['snapshots'])})",
                    _n(a["violations"]),
                    _n(len(a["episodes"]) + a["episodesLeftOut"]),
                    _n(a["episodesOngoing"]),
                    _pct(wu["value"]) if wu else "—",
                    f"{nl['distancePct']:.2f} % ({nl['symbol']})" if nl else "—",
                ]
            )
        return rows

    def account_order(self) -> list[str]:
        return sorted(self.accounts, key=lambda k: (-self.accounts[k]["violations"], k))

    def symbol_rows(self) -> list[list[str]]:
        total = self.d["violations"]
        return [
            [s, _n(n), _share(n, total)]
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
                    _when(e["start"]),
                    "ongoing" if e["ongoing"] else _when(e["end"]),
                    _duration(e["durationS"]),
                    _n(e["snapshots"]),
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
                f"{_n(len(a['episodes']) - MAX_EPISODE_ROWS)} more episodes are not listed here "
                "(they are in the summary JSON)."
            )
        if a["episodesLeftOut"]:
            notes.append(
                f"{_n(a['episodesLeftOut'])} later finished episodes were counted but not kept "
                f"(the summary keeps the earliest {self.summary.max_episodes:,} per account)."
            )
        if a["outOfOrder"]:
            notes.append(
                f"{_n(a['outOfOrder'])} snapshots of this account arrived out of timestamp order; "
                "episodes follow the input order."
            )
        return notes


def _settle_from_symbols(by_symbol: dict) -> str | None:
    """ccxt symbols name their settle currency after the colon (``BTC/USDT:USDT``)."""
    settles = {s.rsplit(":", 1)[1] for s in by_symbol if ":" in s}
    return settles.pop() if len(settles) == 1 else None


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
                [
                    "Account",
                    "Snapshots",
                    "In breach",
                    "Violations",
                    "Episodes",
                    "Ongoing",
                    "Worst utilization",
                    "Nearest liquidation",
                ],
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
                f"{_n(a['snapshots'])} snapshots from {_when(a['first'])} to {_when(a['last'])}; "
                f"{_n(len(a['episodes']) + a['episodesLeftOut'])} episodes, "
                f"{_n(a['episodesOngoing'])} ongoing.",
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


def _broken(points: list[tuple[int, float]], gap_ms: float | None) -> list[list[tuple[int, float]]]:
    """Split a series where consecutive points are further apart than ``gap_ms``
    (a position closed and reopened later must not be drawn as one line)."""
    if not points:
        return []
    runs = [[points[0]]]
    for p, q in itertools.pairwise(points):
        if gap_ms is not None and q[0] - p[0] > gap_ms:
            runs.append([])
        runs[-1].append(q)
    return runs


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
        self.mpl = _load_matplotlib()
        self.n = 0

    @property
    def backend_note(self) -> str | None:
        if self.mpl is not None:
            return None
        return (
            "matplotlib is not installed, so these plots were drawn by riskguard's simple "
            "built-in SVG renderer. Install the plot extra (pip install 'riskguard[plot]') for "
            "the full charts."
        )

    def _salt(self) -> str:
        self.n += 1
        return f"riskguard-plot-{self.n}"

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
                    _broken(pts, _typical_step(self.summary, name)),
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
            lines.append((sym, LINE_COLORS[i % len(LINE_COLORS)], _broken(pts, gap)))
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

    # -- backends

    def _lines(self, title, ylabel, lines, *, hline=None, ymin=None, symlog=False) -> str:
        if self.mpl is not None:
            with warnings.catch_warnings():  # tick-locator chatter is not the reader's concern
                warnings.simplefilter("ignore", UserWarning)
                return _mpl_lines(self.mpl, self._salt(), title, ylabel, lines, hline, ymin, symlog)
        return _svg_lines(title, ylabel, lines, hline, ymin, symlog)

    def _gantt(self, title, labels, bars, first, last) -> str:
        if self.mpl is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return _mpl_gantt(self.mpl, self._salt(), title, labels, bars, first, last)
        return _svg_gantt(title, labels, bars, first, last)


def _ms(iso: str | None) -> int | None:
    if not iso:
        return None
    s = iso[:-1] + "+00:00" if iso.endswith("Z") else iso
    return int(datetime.fromisoformat(s).timestamp() * 1000)


# --------------------------------------------------------------------------- plots: matplotlib


def _load_matplotlib():
    try:
        import matplotlib
        import matplotlib.figure  # the backend-free Figure must import too
    except ImportError:
        return None
    return matplotlib


def _svg_text(fig, mpl, salt: str) -> str:
    buf = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(
            buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight"
        )
    return _inline_svg(buf.getvalue())


def _inline_svg(svg: str) -> str:
    """An SVG document → an element to inline in HTML: no XML prolog, DOCTYPE, metadata
    or namespace declarations (HTML parses inline SVG without them), so the report holds
    no URL at all."""
    import re

    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    # Scale with the page: width 100 %, height from the viewBox.
    svg = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"', r'\1 width="100%"', svg, count=1)
    svg = re.sub(r'(<svg[^>]*?)\s+height="[^"]*"', r"\1", svg, count=1)
    return svg.strip()


def _mpl_dates(mpl, ax) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(tz=timezone.utc, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=timezone.utc))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


#: Plain text everywhere: an account called "a$b$" must not be parsed as mathtext.
_RC = {"font.size": 9, "font.family": "sans-serif", "axes.titlesize": 11, "text.parse_math": False}


def _mpl_figure(mpl, height: float):
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(10, height), dpi=100)
    return fig


def _mpl_lines(mpl, salt, title, ylabel, lines, hline, ymin, symlog) -> str:
    with mpl.rc_context(_RC):
        fig = _mpl_figure(mpl, 3.6)
        ax = fig.add_subplot(1, 1, 1)
        for label, color, runs in lines:
            first = True
            for run in runs:
                if not run:
                    continue
                xs = [_dt(t) for t, _v in run]
                ys = [v for _t, v in run]
                ax.plot(
                    xs,
                    ys,
                    color=color,
                    linewidth=1.2,
                    marker="." if len(run) == 1 else None,
                    label=label if first else None,
                )
                first = False
        if hline is not None:
            ax.axhline(hline[0], color="#c00000", linestyle="--", linewidth=1.2, label=hline[1])
        times = [t for _l, _c, runs in lines for run in runs for t, _v in run]
        if times and max(times) - min(times) < 3_600_000:
            mid = (max(times) + min(times)) // 2  # one instant: an hour around it, not years
            ax.set_xlim(_dt(mid - 1_800_000), _dt(mid + 1_800_000))
        if symlog:
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("symlog", linthresh=1.0, linscale=0.6)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        elif ymin is not None:
            ax.set_ylim(bottom=ymin)
        if title:
            ax.set_title(title, loc="left", fontweight="bold")
        ax.set_ylabel(ylabel)
        ax.set_xlabel("time (UTC)")
        ax.grid(True, color="#e5e5e5", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        _mpl_dates(mpl, ax)
        n = sum(1 for _l, _c, runs in lines if runs) + (hline is not None)
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize=8,
            ncol=1 if n <= 14 else 2,
        )
        fig.tight_layout()
        return _svg_text(fig, mpl, salt)


def _mpl_gantt(mpl, salt, title, labels, bars, first, last) -> str:
    from matplotlib.patches import Patch

    height = 1.2 + 0.28 * len(labels)
    with mpl.rc_context(_RC):
        fig = _mpl_figure(mpl, height)
        ax = fig.add_subplot(1, 1, 1)
        span = max((last or 0) - (first or 0), 1)
        min_w = span * 0.004  # a one-snapshot episode still shows
        from matplotlib.dates import date2num

        for row, start, stop, sev in bars:
            x0 = date2num(_dt(start))
            w = max(date2num(_dt(stop)) - x0, min_w / 86_400_000)
            ax.broken_barh(
                [(x0, w)], (row - 0.38, 0.76), facecolors=SEVERITY_COLORS.get(sev, "#d62728")
            )
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        if first is not None and last is not None:
            ax.set_xlim(_dt(first), _dt(max(last, first + 1)))
        ax.set_title(title, loc="left", fontweight="bold")
        ax.set_xlabel("time (UTC)")
        ax.set_axisbelow(True)
        ax.grid(True, axis="x", color="#e5e5e5", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        ax.xaxis_date(tz=timezone.utc)
        _mpl_dates(mpl, ax)
        present = [s for s in reversed(SEVERITIES) if any(b[3] == s for b in bars)]
        ax.legend(
            handles=[Patch(color=SEVERITY_COLORS[s], label=s) for s in present],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize=8,
            title="severity",
            title_fontsize=8,
        )
        fig.tight_layout()
        return _svg_text(fig, mpl, salt)


# --------------------------------------------------------------------------- plots: fallback SVG

_W, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 960, 64, 190, 34, 42


def _esc(s: str) -> str:
    return html.escape(str(s), quote=True)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9 * step:
        out.append(round(t, 10))
        t += step
    return out


def _time_ticks(t0: int, t1: int, n: int = 8) -> list[tuple[int, str]]:
    span = max(t1 - t0, 1)
    steps = [
        60_000,
        300_000,
        900_000,
        3_600_000,
        6 * 3_600_000,
        12 * 3_600_000,
        86_400_000,
        2 * 86_400_000,
        7 * 86_400_000,
        30 * 86_400_000,
        365 * 86_400_000,
    ]
    step = next((s for s in steps if span / s <= n), steps[-1])
    fmt = "%H:%M" if step < 86_400_000 else "%Y-%m-%d"
    if span > 86_400_000 and step < 86_400_000:
        fmt = "%m-%d %H:%M"
    t = (t0 // step + 1) * step if t0 % step else t0
    out = []
    while t <= t1:
        out.append((t, _dt(t).strftime(fmt)))
        t += step
    return out


def _svg_frame(title: str | None, height: int) -> list[str]:
    out = [
        f'<svg viewBox="0 0 {_W} {height}" width="100%" role="img" '
        f'aria-label="{_esc(title or "chart")}" font-family="sans-serif" font-size="11">'
    ]
    if title:
        out.append(
            f'<text x="{_PAD_L}" y="18" font-size="13" font-weight="bold">{_esc(title)}</text>'
        )
    return out


def _symlog(v: float) -> float:
    """Linear within ±1, logarithmic beyond (matplotlib's symlog with linthresh 1)."""
    return v if -1.0 <= v <= 1.0 else math.copysign(1.0 + math.log10(abs(v)), v)


def _svg_lines(title, ylabel, lines, hline, ymin, symlog=False) -> str:
    h = 320
    pts = [p for _l, _c, runs in lines for run in runs for p in run]
    if not pts:
        return ""
    f = _symlog if symlog else (lambda v: v)
    t0 = min(p[0] for p in pts)
    t1 = max(p[0] for p in pts)
    vals = [p[1] for p in pts] + ([hline[0]] if hline else [])
    lo = min(vals) if ymin is None else min(ymin, min(vals))
    hi = max(vals)
    if symlog:
        lo = min(lo, 0.0)
        ticks = [0.0] + [10.0**k for k in range(0, 7) if 10.0**k <= hi * 1.0001]
        ticks = [t for t in ticks if t >= lo]
        lo, hi = f(lo), f(hi)
    hi = hi + (hi - lo) * 0.05 or 1.0
    if not symlog:
        ticks = _nice_ticks(lo, hi)
    x0, x1, y0, y1 = _PAD_L, _W - _PAD_R, h - _PAD_B, _PAD_T

    def x(t):
        return x0 + (t - t0) / max(t1 - t0, 1) * (x1 - x0)

    def y(v):
        return y0 - (f(v) - lo) / (hi - lo) * (y0 - y1)

    out = _svg_frame(title, h)
    for v in ticks:
        out.append(
            f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{x0 - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    for t, label in _time_ticks(t0, t1):
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#555"/>'
            f'<text x="{x(t):.1f}" y="{y0 + 16}" text-anchor="middle">{_esc(label)}</text>'
        )
    out.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#555"/>')
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{y1}" y2="{y0}" stroke="#555"/>')
    out.append(
        f'<text transform="translate(14 {(y0 + y1) / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{_esc(ylabel)}</text>"
        f'<text x="{(x0 + x1) / 2:.0f}" y="{h - 6}" text-anchor="middle">time (UTC)</text>'
    )
    legend_y = _PAD_T + 8
    for label, color, runs in lines:
        for run in runs:
            if len(run) == 1:
                t, v = run[0]
                out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="1.8" fill="{color}"/>')
            elif run:
                d = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
                out.append(
                    f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="1.3"/>'
                )
        out.append(
            f'<rect x="{x1 + 14}" y="{legend_y - 8}" width="14" height="3" fill="{color}"/>'
            f'<text x="{x1 + 34}" y="{legend_y - 3}">{_esc(label)}</text>'
        )
        legend_y += 16
    if hline is not None:
        out.append(
            f'<line x1="{x0}" x2="{x1}" y1="{y(hline[0]):.1f}" y2="{y(hline[0]):.1f}" '
            'stroke="#c00000" stroke-width="1.3" stroke-dasharray="6 4"/>'
            f'<line x1="{x1 + 14}" x2="{x1 + 28}" y1="{legend_y - 7}" y2="{legend_y - 7}" '
            'stroke="#c00000" stroke-width="1.3" stroke-dasharray="4 2"/>'
            f'<text x="{x1 + 34}" y="{legend_y - 3}">{_esc(hline[1])}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _svg_gantt(title, labels, bars, first, last) -> str:
    row_h = 18
    left = 250
    h = _PAD_T + row_h * len(labels) + _PAD_B
    if first is None or last is None:
        return ""
    t0, t1 = first, max(last, first + 1)
    x0, x1 = left, _W - _PAD_R
    y_top = _PAD_T

    def x(t):
        return x0 + (t - t0) / (t1 - t0) * (x1 - x0)

    out = _svg_frame(title, h)
    for i, label in enumerate(labels):
        yy = y_top + i * row_h
        out.append(
            f'<text x="{x0 - 6}" y="{yy + row_h * 0.7:.1f}" text-anchor="end">{_esc(label)}</text>'
        )
        if i % 2 == 0:
            out.append(
                f'<rect x="{x0}" y="{yy}" width="{x1 - x0}" height="{row_h}" fill="#f6f6f6"/>'
            )
    for row, start, stop, sev in bars:
        xa, xb = x(start), x(stop)
        w = max(xb - xa, 1.5)
        out.append(
            f'<rect x="{xa:.1f}" y="{y_top + row * row_h + 3}" width="{w:.1f}" '
            f'height="{row_h - 6}" fill="{SEVERITY_COLORS.get(sev, "#d62728")}"/>'
        )
    y0 = y_top + row_h * len(labels)
    out.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#555"/>')
    for t, label in _time_ticks(t0, t1):
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#555"/>'
            f'<text x="{x(t):.1f}" y="{y0 + 16}" text-anchor="middle">{_esc(label)}</text>'
        )
    legend_y = _PAD_T + 8
    for sev in reversed(SEVERITIES):
        if any(b[3] == sev for b in bars):
            out.append(
                f'<rect x="{x1 + 14}" y="{legend_y - 9}" width="12" height="10" '
                f'fill="{SEVERITY_COLORS[sev]}"/>'
                f'<text x="{x1 + 32}" y="{legend_y}">{sev}</text>'
            )
            legend_y += 16
    out.append("</svg>")
    return "\n".join(out)


# --------------------------------------------------------------------------- html

_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d1d1f; margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e8e8e8; }
h3 { font-size: 15px; margin: 20px 0 8px; }
p.meta { color: #666; margin: 0 0 18px; font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
         margin: 16px 0 8px; }
.card { border: 1px solid #e3e3e3; border-radius: 8px; padding: 10px 14px; background: #fcfcfc; }
.card .label { font-size: 12px; color: #666; text-transform: uppercase; letter-spacing: .03em; }
.card .value { font-size: 22px; font-weight: 600; margin-top: 2px; }
.card .sub { font-size: 12px; color: #666; }
.card.bad .value { color: #b00020; }
.card.ok .value { color: #1b7f3b; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 10px; }
th, td { text-align: left; padding: 5px 9px; border-bottom: 1px solid #ececec; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; white-space: nowrap; }
td.nw { white-space: nowrap; }
.scroll { overflow-x: auto; }
table.episodes { font-size: 12px; }
table.episodes td { padding: 4px 7px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:hover td { background: #fafbfd; }
table.kv th { width: 260px; background: none; }
.sev { display: inline-block; padding: 0 7px; border-radius: 9px; color: #fff; font-size: 12px; }
.sev-critical { background: #7f0000; } .sev-error { background: #d62728; }
.sev-warning { background: #e08a00; } .sev-info { background: #6c8ebf; }
.plot { margin: 10px 0 18px; }
.plot svg { max-width: 100%; height: auto; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; font-size: 13px;
        margin: 10px 0; }
.muted { color: #666; font-size: 13px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
dl dt { font-weight: 600; margin-top: 8px; } dl dd { margin: 2px 0 0 0; color: #333; }
@media print { body { background: #fff; } main { padding: 0; } details { display: block; } }
"""


def _h_table(
    head: list[str],
    rows: list[list[str]],
    right: set[int] | None = None,
    sev_col: int | None = None,
    cls: str = "",
    nowrap: set[int] | None = None,
) -> str:
    right = right or set()
    nowrap = nowrap or set()
    out = [
        '<div class="scroll">',
        f'<table class="{cls}">' if cls else "<table>",
        "<thead><tr>",
    ]
    for i, h in enumerate(head):
        out.append(f'<th class="num">{_esc(h)}</th>' if i in right else f"<th>{_esc(h)}</th>")
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for i, c in enumerate(r):
            if i == sev_col and c in SEVERITY_COLORS:
                out.append(f'<td><span class="sev sev-{c}">{_esc(c)}</span></td>')
            elif i in right:
                out.append(f'<td class="num">{_esc(c)}</td>')
            elif i in nowrap:
                out.append(f'<td class="nw">{_esc(c)}</td>')
            else:
                out.append(f"<td>{_esc(c)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _card(label: str, value: str, sub: str = "", cls: str = "") -> str:
    return (
        f'<div class="card {cls}"><div class="label">{_esc(label)}</div>'
        f'<div class="value">{_esc(value)}</div>'
        + (f'<div class="sub">{_esc(sub)}</div>' if sub else "")
        + "</div>"
    )


def render_html(summary: Summary, *, policy_limit: float | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG plots, no URLs)."""
    data = _Data(summary, policy_limit)
    d = data.d
    plots = _Plots(data)
    first, last = d["period"]["first"], d["period"]["last"]
    body: list[str] = [
        "<h1>riskguard audit report</h1>",
        f'<p class="meta">Period {_esc(_when(first))} → {_esc(_when(last))} UTC · generated '
        f"{_esc(data.generated)} · percentages are of equity unless stated · amounts in "
        f"{_esc(data.unit)}</p>",
    ]

    # cards
    denied = d["decisions"].get("deny", 0)
    wu, nl = d["worstUtilization"], d["nearestLiquidation"]
    over = wu is not None and data.limit is not None and wu["value"] > data.limit
    cards = [
        _card("Snapshots", _n(d["snapshots"]), f"{_n(len(data.accounts))} accounts"),
        _card(
            "In breach",
            _share(d["snapshotsWithViolations"], d["snapshots"]),
            f"{_n(d['snapshotsWithViolations'])} snapshots with violations",
            "bad" if d["snapshotsWithViolations"] else "ok",
        ),
        _card(
            "Denied",
            _n(denied),
            _share(denied, d["snapshots"]) + " of decisions",
            "bad" if denied else "ok",
        ),
        _card(
            "Worst utilization",
            _pct(wu["value"]) if wu else "—",
            (f"limit {_pct(data.limit)} · " if data.limit is not None else "")
            + (wu["account"] if wu else ""),
            "bad" if over else "",
        ),
        _card(
            "Nearest liquidation",
            f"{nl['distancePct']:.2f} %" if nl else "—",
            f"{nl['account']} {nl['symbol']}" if nl else "",
            "bad" if nl and nl["distancePct"] < 2 else "",
        ),
        _card(
            "Bad records", _n(d["badRecords"]), "not evaluated", "bad" if d["badRecords"] else ""
        ),
    ]
    body.append('<div class="cards">' + "".join(cards) + "</div>")

    body.append("<h2>Overview</h2>")
    body.append(
        _h_table(["", ""], [[k, v] for k, v in data.overview()], cls="kv").replace(
            "<thead><tr><th></th><th></th></tr></thead>", ""
        )
    )

    # plots: utilization
    note = plots.backend_note
    if note:
        body.append(f'<p class="note">{_esc(note)}</p>')
    util_svg = plots.utilization()
    if util_svg:
        body.append("<h2>Margin utilization over time</h2>")
        body.append(
            '<p class="muted">Σ initial margin ÷ equity per account; each point is the highest '
            "value in its time bucket"
            + (
                f"; the dashed line is the policy limit ({_pct(data.limit)})"
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
            _h_table(head, rows, set(range(2, len(head)))),
            "<h2>Breaches by severity</h2>",
            _h_table(["Severity", "Violations", "Share"], data.severity_rows(), {1, 2}, sev_col=0),
            "<h2>Breaches by reason code</h2>",
            _h_table(["Code", "Violations", "Share"], data.code_rows(), {1, 2}),
        ]
    else:
        body.append("<h2>Breaches</h2><p>No violations.</p>")
    if data.accounts:
        body += [
            "<h2>Breaches by account</h2>",
            _h_table(
                [
                    "Account",
                    "Snapshots",
                    "In breach",
                    "Violations",
                    "Episodes",
                    "Ongoing",
                    "Worst utilization",
                    "Nearest liquidation",
                ],
                data.account_rows(),
                {1, 2, 3, 4, 5, 6, 7},
            ),
        ]
    if d["bySymbol"]:
        body += [
            "<h2>Breaches by symbol</h2>",
            _h_table(["Symbol", "Violations", "Share"], data.symbol_rows(), {1, 2}),
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
                    f'<p class="muted">{_esc(name)}: {rows_total - MAX_GANTT_ROWS} more rule/symbol '
                    "rows not drawn (see the table below).</p>"
                )
        single = plots.single_snapshot_accounts()
        if single:
            shown = ", ".join(single[:10]) + (" …" if len(single) > 10 else "")
            body.append(
                f'<p class="muted">Not charted: {_plural(len(single), "account")} with a single '
                f"snapshot ({_esc(shown)}); their breaches are in the tables.</p>"
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
                f"<details{opened}><summary>{_esc(name)} — "
                f"{_n(len(a['episodes']) + a['episodesLeftOut'])} episodes, "
                f"{_n(a['episodesOngoing'])} ongoing · {_n(a['snapshots'])} snapshots from "
                f"{_esc(_when(a['first']))} to {_esc(_when(a['last']))}</summary>"
            )
            body.append(
                _h_table(
                    EPISODE_HEAD,
                    data.episode_rows(name),
                    {7},
                    sev_col=2,
                    cls="episodes",
                    nowrap={1, 4, 5, 6},
                )
            )
            for n in data.episode_notes(name):
                body.append(f'<p class="muted">{_esc(n)}</p>')
            body.append("</details>")

    body.append("<h2>Definitions</h2><dl>")
    for k, v in DEFINITIONS:
        body.append(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>")
    body.append("</dl>")

    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>riskguard audit report</title>"
        f"<style>{_CSS}</style></head><body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )
