"""The simulation's HTML report, drawn with the audit report's toolkit (``riskguard.batch.reportkit``).

One self-contained page (inline CSS and SVG, no URL): the runs side by side, then per
scenario the equity of every policy and of "no policy" over time with markers where
actions were applied and where liquidations happened, the distance to liquidation of the
nearest position, and the actions proposed, applied and refused. Plots use matplotlib
when installed and the report's built-in SVG renderer otherwise, as the audit report does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from riskguard.batch.reportkit import CSS, LINE_COLORS, Charts, card, esc, html_table

LIQ_COLOR = "#b00020"


def _when_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _money(v: float) -> str:
    return f"{v:,.2f}"


def _at(run: dict, ts: int) -> float:
    """The run's equity at (or just before) ``ts``, from its sampled series."""
    t, eq = run["series"]["t"], run["series"]["equity"]
    best = eq[0]
    for a, b in zip(t, eq, strict=True):
        if a > ts:
            break
        best = b
    return best


def render_html(result: dict) -> str:
    acc = result["account"]
    settle = acc["settle"]
    plots = Charts()
    runs = result["runs"]
    policies = [p["name"] for p in result["policies"]]
    colors = {p: LINE_COLORS[i % len(LINE_COLORS)] for i, p in enumerate(policies)}
    body = [
        "<h1>riskguard simulation report</h1>",
        f'<p class="meta">Account {esc(acc["account"])} on the {esc(acc["exchange"])} margin '
        f"model · equity {esc(_money(acc['equity']))} {esc(settle)} at "
        f"{esc(_when_ms(acc['timestamp']))} · {len(acc['positions'])} positions · "
        f"{len(result['scenarios'])} price paths × {len(policies)} policies "
        "(including “no policy”, the baseline)</p>",
    ]
    liq_base = sum(r["liquidations"] for r in runs if r["policy"] == "no policy")
    liq_pol = sum(r["liquidations"] for r in runs if r["policy"] != "no policy")
    n_pol = max(len(policies) - 1, 1)
    body.append(
        '<div class="cards">'
        + card(
            "Liquidations without a policy",
            str(liq_base),
            f"over {len(result['scenarios'])} paths",
            "bad" if liq_base else "ok",
        )
        + card(
            "Liquidations with a policy",
            str(liq_pol),
            f"over {len(result['scenarios'])} paths × {n_pol} policies",
            "bad" if liq_pol else "ok",
        )
        + card(
            "Actions applied",
            str(sum(sum(r["actions"]["applied"].values()) for r in runs)),
            "through the ccxt executor",
        )
        + card(
            "Refused by the exchange",
            str(sum(sum(r["actions"]["refused"].values()) for r in runs)),
            "reported, not raised",
        )
        + "</div>"
    )
    head = [
        "Scenario",
        "Policy",
        "Liquidations",
        f"Liquidation loss ({settle})",
        "Max drawdown",
        f"Final equity ({settle})",
        "vs no policy",
        "Applied",
        "Refused",
        f"Fees ({settle})",
    ]
    rows = [
        [
            r["scenario"],
            r["policy"],
            str(r["liquidations"]),
            _money(r["liquidationLoss"]),
            f"{r['maxDrawdown'] * 100:.1f} %",
            _money(r["finalEquity"]),
            "—" if r["vsNoPolicy"] is None else f"{r['vsNoPolicy']['finalEquity']:+,.2f}",
            str(sum(r["actions"]["applied"].values())),
            str(sum(r["actions"]["refused"].values())),
            _money(r["feesPaid"]),
        ]
        for r in runs
    ]
    body += ["<h2>Runs side by side</h2>", html_table(head, rows, set(range(2, 10)))]
    if plots.mpl is None:
        body.append(
            '<p class="note">matplotlib is not installed, so these plots were drawn by '
            "riskguard's simple built-in SVG renderer (pip install 'riskguard[plot]').</p>"
        )
    for sc in result["scenarios"]:
        sruns = [r for r in runs if r["scenario"] == sc["name"]]
        body.append(f"<h2>{esc(sc['name'])}</h2>")
        desc = sc.get("description") or ""
        params = ", ".join(f"{k} {v}" for k, v in sorted(sc["params"].items()) if k != "rebased")
        body.append(
            f'<p class="muted">{esc(desc)} · {sc["steps"]} steps from '
            f"{esc(_when_ms(sc['start']))} to {esc(_when_ms(sc['end']))} UTC"
            + (f" · {esc(params)}" if params else "")
            + (
                f" · not priced by this path: {esc(', '.join(sc['unpriced']))}"
                if sc["unpriced"]
                else ""
            )
            + "</p>"
        )
        lines = []
        marks = []
        for r in sruns:
            pts = list(zip(r["series"]["t"], r["series"]["equity"], strict=True))
            lines.append((r["policy"], colors[r["policy"]], [pts]))
            acts = [
                (m["timestamp"], _at(r, m["timestamp"]))
                for m in r["markers"]
                if m["kind"] == "action"
            ]
            if acts:
                marks.append(
                    (f"{r['policy']}: action applied", colors[r["policy"]], [[p] for p in acts])
                )
            liqs = [
                (m["timestamp"], _at(r, m["timestamp"]))
                for m in r["markers"]
                if m["kind"] == "liquidation"
            ]
            if liqs:
                marks.append((f"{r['policy']}: liquidation", LIQ_COLOR, [[p] for p in liqs]))
        svg = plots.lines(f"{sc['name']}: equity", f"equity ({settle})", lines + marks)
        body.append(f'<div class="plot">{svg}</div>')
        dl = []
        for r in sruns:
            pts = [
                (t, v)
                for t, v in zip(
                    r["series"]["t"], r["series"]["liquidationDistancePct"], strict=True
                )
                if v is not None
            ]
            if pts:
                dl.append((r["policy"], colors[r["policy"]], [pts]))
        if dl:
            svg = plots.lines(
                f"{sc['name']}: distance to liquidation (nearest position)",
                "% of mark price",
                dl,
                hline=(0.0, "liquidation"),
            )
            body.append(f'<div class="plot">{svg}</div>')
        arows = []
        for r in sruns:
            a = r["actions"]
            for t in sorted(set(a["proposed"]) | set(a["applied"]) | set(a["refused"])):
                arows.append(
                    [r["policy"], t, str(a["proposed"].get(t, 0)), str(a["applied"].get(t, 0)),
                     str(a["refused"].get(t, 0)), str(a["failed"].get(t, 0))]
                )  # fmt: skip
        if arows:
            body.append("<h3>Actions</h3>")
            body.append(
                '<p class="muted">Proposed counts every evaluation that proposed the action; '
                "applied and refused count what the executor sent and what the exchange did "
                "with it (a refused request is not re-sent until the account changes).</p>"
            )
            body.append(
                html_table(
                    ["Policy", "Action", "Proposed", "Applied", "Refused", "Failed"],
                    arows,
                    {2, 3, 4, 5},
                )
            )
        brows = [
            [r["policy"], rule, str(v["steps"]), f"{v['fraction'] * 100:.1f} %"]
            for r in sruns
            for rule, v in r["timeInBreach"].items()
        ]
        if brows:
            body.append("<h3>Time in breach per rule</h3>")
            body.append(html_table(["Policy", "Rule", "Steps", "Share of the path"], brows, {2, 3}))
        refs = [(r["policy"], x) for r in sruns for x in r["refusals"]]
        if refs:
            body.append("<h3>Refusals by the exchange</h3>")
            body.append(
                html_table(
                    ["Policy", "When (UTC)", "Action", "Symbol", "Code", "Error"],
                    [
                        [
                            p,
                            _when_ms(x["timestamp"]),
                            x["type"],
                            x["symbol"] or "",
                            x["exchangeCode"] or "",
                            x["error"] or "",
                        ]
                        for p, x in refs
                    ],
                )
            )
    s = result["settings"]
    body.append("<h2>Settings</h2>")
    body.append(
        html_table(
            ["Setting", "Value"],
            [
                ["actions the guard may apply", ", ".join(s["execute"]) or "none"],
                ["proposed at severity", f"{s['minSeverity']} and above"],
                ["evaluation cadence", f"every {s['every']} step(s)"],
                ["taker / maker fee", f"{s['takerFee']} / {s['makerFee']}"],
                ["slippage", f"{s['slippageBps']} bps"],
                ["funding rate per 8 h", str(s["fundingRate"])],
                ["seed", str(s["seed"])],
            ]
            + [[f"policy {p['name']}", p["file"] or "—"] for p in result["policies"][1:]],
            cls="kv",
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>riskguard simulation report</title>"
        f"<style>{CSS}</style></head><body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


def write_html(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(result), encoding="utf-8")
    return path
