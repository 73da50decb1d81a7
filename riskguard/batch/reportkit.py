"""The toolkit riskguard's HTML reports are drawn with: charts, tables, cards, one stylesheet.

Used by the audit report (:mod:`riskguard.batch.report`) and by any other self-contained
page (the simulation report). Charts are drawn by matplotlib when it is installed
(``pip install 'riskguard[plot]'``) and by a small built-in SVG renderer otherwise; either
way they come back as inline SVG text with no URL in it, so a page is one file that can be
mailed or archived as is. Output is deterministic (matplotlib's SVG ids are salted per chart).
"""

from __future__ import annotations

import html
import io
import itertools
import math
import warnings
from datetime import datetime, timezone

__all__ = [
    "CSS",
    "LINE_COLORS",
    "SEVERITY_COLORS",
    "Charts",
    "broken_runs",
    "card",
    "esc",
    "html_table",
]

#: Severity colours, most severe first (legends list them in this order).
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


def broken_runs(
    points: list[tuple[int, float]], gap_ms: float | None
) -> list[list[tuple[int, float]]]:
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


class Charts:
    """Line charts and Gantt bars as inline SVG: matplotlib when installed, else built-in SVG.

    ``lines``: ``[(label, color, [[(epoch_ms, value), ...], ...]), ...]`` — each line a list of
    runs (see :func:`broken_runs`); ``hline``: ``(y, label)``; ``symlog``: log scale above 1.
    ``gantt``: ``labels`` per row, ``bars`` as ``(row, start_ms, stop_ms, severity)``.
    """

    def __init__(self) -> None:
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

    def lines(self, title, ylabel, lines, *, hline=None, ymin=None, symlog=False) -> str:
        if self.mpl is not None:
            with warnings.catch_warnings():  # tick-locator chatter is not the reader's concern
                warnings.simplefilter("ignore", UserWarning)
                return _mpl_lines(self.mpl, self._salt(), title, ylabel, lines, hline, ymin, symlog)
        return _svg_lines(title, ylabel, lines, hline, ymin, symlog)

    def gantt(self, title, labels, bars, first, last) -> str:
        if self.mpl is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return _mpl_gantt(self.mpl, self._salt(), title, labels, bars, first, last)
        return _svg_gantt(title, labels, bars, first, last)


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
        present = [s for s in SEVERITY_COLORS if any(b[3] == s for b in bars)]
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


def esc(s: str) -> str:
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
        f'aria-label="{esc(title or "chart")}" font-family="sans-serif" font-size="11">'
    ]
    if title:
        out.append(
            f'<text x="{_PAD_L}" y="18" font-size="13" font-weight="bold">{esc(title)}</text>'
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
            f'<text x="{x(t):.1f}" y="{y0 + 16}" text-anchor="middle">{esc(label)}</text>'
        )
    out.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#555"/>')
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{y1}" y2="{y0}" stroke="#555"/>')
    out.append(
        f'<text transform="translate(14 {(y0 + y1) / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{esc(ylabel)}</text>"
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
            f'<text x="{x1 + 34}" y="{legend_y - 3}">{esc(label)}</text>'
        )
        legend_y += 16
    if hline is not None:
        out.append(
            f'<line x1="{x0}" x2="{x1}" y1="{y(hline[0]):.1f}" y2="{y(hline[0]):.1f}" '
            'stroke="#c00000" stroke-width="1.3" stroke-dasharray="6 4"/>'
            f'<line x1="{x1 + 14}" x2="{x1 + 28}" y1="{legend_y - 7}" y2="{legend_y - 7}" '
            'stroke="#c00000" stroke-width="1.3" stroke-dasharray="4 2"/>'
            f'<text x="{x1 + 34}" y="{legend_y - 3}">{esc(hline[1])}</text>'
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
            f'<text x="{x0 - 6}" y="{yy + row_h * 0.7:.1f}" text-anchor="end">{esc(label)}</text>'
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
            f'<text x="{x(t):.1f}" y="{y0 + 16}" text-anchor="middle">{esc(label)}</text>'
        )
    legend_y = _PAD_T + 8
    for sev in SEVERITY_COLORS:
        if any(b[3] == sev for b in bars):
            out.append(
                f'<rect x="{x1 + 14}" y="{legend_y - 9}" width="12" height="10" '
                f'fill="{SEVERITY_COLORS[sev]}"/>'
                f'<text x="{x1 + 32}" y="{legend_y}">{sev}</text>'
            )
            legend_y += 16
    out.append("</svg>")
    return "\n".join(out)


CSS = """
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


def html_table(
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
        out.append(f'<th class="num">{esc(h)}</th>' if i in right else f"<th>{esc(h)}</th>")
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for i, c in enumerate(r):
            if i == sev_col and c in SEVERITY_COLORS:
                out.append(f'<td><span class="sev sev-{c}">{esc(c)}</span></td>')
            elif i in right:
                out.append(f'<td class="num">{esc(c)}</td>')
            elif i in nowrap:
                out.append(f'<td class="nw">{esc(c)}</td>')
            else:
                out.append(f"<td>{esc(c)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def card(label: str, value: str, sub: str = "", cls: str = "") -> str:
    return (
        f'<div class="card {cls}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div>'
        + (f'<div class="sub">{esc(sub)}</div>' if sub else "")
        + "</div>"
    )
