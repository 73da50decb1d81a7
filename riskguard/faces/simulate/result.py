"""The simulation result: one JSON document (``schemas/simulation.schema.json``) and its
terminal table.

The document is deterministic: keys sorted, floats as Python writes them, no wall-clock
time, so the same inputs give byte-identical output (:func:`dumps`).
"""

from __future__ import annotations

import json
from typing import Any

from riskguard.margin.metrics import compute_metrics

SCHEMA_VERSION = 1


def build_result(snap: Any, policies: list, paths: list, runs: list[dict], opts: Any) -> dict:
    from riskguard.engine.plugins import get_registry

    model = get_registry().margin_model(snap.exchange)
    m = compute_metrics(snap, model)
    base = {r["scenario"]: r for r in runs if r["policy"] == "no policy"}
    for r in runs:
        b = base.get(r["scenario"])
        r["vsNoPolicy"] = (
            None
            if b is None or r is b
            else {
                "finalEquity": r["finalEquity"] - b["finalEquity"],
                "liquidations": r["liquidations"] - b["liquidations"],
                "maxDrawdown": r["maxDrawdown"] - b["maxDrawdown"],
            }
        )
    return {
        "schemaVersion": SCHEMA_VERSION,
        "kind": "riskguard/simulation",
        "account": {
            "account": snap.account,
            "exchange": snap.exchange,
            "settle": snap.settle,
            "timestamp": snap.timestamp,
            "walletBalance": snap.walletBalance,
            "equity": m.equity,
            "positions": [
                {
                    "symbol": p.symbol,
                    "side": p.side,
                    "contracts": p.contracts,
                    "marginMode": p.marginMode,
                    "leverage": p.leverage,
                    "liquidationPrice": p.liquidationPrice,
                    "stopLossPrice": p.stopLossPrice,
                }
                for p in m.positions
            ],
        },
        "settings": opts.to_dict(),
        "policies": [{"name": "no policy", "file": None, "digest": None}]
        + [
            {"name": p.name, "file": p.file, "digest": getattr(p.policy, "digest", None)}
            for p in policies
        ],
        "scenarios": [
            {
                **p.summary(),
                "unpriced": sorted(s.symbol for s in snap.positions if s.symbol not in p.candles),
            }
            for p in paths
        ],
        "runs": runs,
    }


def dumps(result: dict) -> str:
    """The result as JSON text, byte-identical for the same inputs."""
    return json.dumps(result, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _money(v: float) -> str:
    return f"{v:,.2f}"


def render_table(result: dict, console: Any = None) -> None:
    """The runs side by side, one row per scenario × policy (rich)."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # a pipe or a file: keep the rows whole
    settle = result["account"]["settle"]
    t = Table(
        title=f"riskguard simulate — account {result['account']['account']} "
        f"({result['account']['exchange']}), equity {_money(result['account']['equity'])} {settle}",
        title_justify="left",
    )
    for col, just in (
        ("scenario", "left"),
        ("policy", "left"),
        ("liquidations", "right"),
        ("liq. loss", "right"),
        ("max drawdown", "right"),
        ("final equity", "right"),
        ("vs no policy", "right"),
        ("actions applied", "right"),
        ("refused", "right"),
        ("fees", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    last = None
    for r in result["runs"]:
        if last is not None and r["scenario"] != last:
            t.add_section()
        last = r["scenario"]
        vs = r["vsNoPolicy"]
        liq = str(r["liquidations"])
        t.add_row(
            r["scenario"],
            r["policy"],
            f"[bold red]{liq}[/]" if r["liquidations"] else liq,
            _money(r["liquidationLoss"]),
            f"{r['maxDrawdown'] * 100:.1f} %",
            _money(r["finalEquity"]),
            "—" if vs is None else f"{vs['finalEquity']:+,.2f}",
            str(sum(r["actions"]["applied"].values())),
            str(sum(r["actions"]["refused"].values()) + sum(r["actions"]["failed"].values())),
            _money(r["feesPaid"]),
        )
    console.print(t)
    for r in result["runs"]:
        if r["timeInBreach"]:
            worst = max(r["timeInBreach"].items(), key=lambda kv: kv[1]["fraction"])
            console.print(
                f"  {r['scenario']} / {r['policy']}: in breach longest on {worst[0]} "
                f"({worst[1]['fraction'] * 100:.1f} % of steps)",
                highlight=False,
            )
