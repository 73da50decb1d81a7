"""Human-readable terminal output (rich): decisions and metrics as tables.

Machines get ``--json``; this module is only for people, so it favours units, signs and
colour over completeness.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

OUTCOME_STYLE = {"allow": "bold green", "resize": "bold yellow", "deny": "bold red"}
SEVERITY_STYLE = {"info": "dim", "warning": "yellow", "error": "red", "critical": "bold red"}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich exits 1 here; the command line turns a broken pipe into exit 141 (cli.py)
        self.quiet = True
        raise BrokenPipeError


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output (logs, CI, `| less`) gets a wide fixed width so codes don't wrap.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))
    return _Console(file=stream, highlight=False, soft_wrap=False, width=width)


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if abs(v) >= 1e6:
            return f"{v:,.0f}"
        return f"{v:,.{digits}f}"
    return str(v)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.2f} %"


def metrics_tables(m: Any) -> list[Table]:
    acc = Table(
        title=f"account {m.account} · {m.exchange} · {m.settle}", show_header=False, box=None
    )
    acc.add_column(style="bold")
    acc.add_column(justify="right")
    rows = [
        ("equity", _num(m.equity)),
        ("wallet balance", _num(m.walletBalance)),
        ("cross wallet", _num(m.crossWalletBalance)),
        ("unrealized PnL", _num(m.unrealizedPnl)),
        ("initial margin", _num(m.initialMargin)),
        ("open-order margin", _num(m.openOrderInitialMargin)),
        ("maintenance margin", _num(m.maintenanceMargin)),
        ("margin utilization", _pct(m.marginUtilization)),
        ("margin ratio (MM/equity)", _pct(m.marginRatio)),
        (
            "effective leverage",
            "—" if m.effectiveLeverage is None else f"{m.effectiveLeverage:.2f}×",
        ),
    ]
    if getattr(m, "positionMode", "oneway") == "hedge":
        rows.append(("position mode", "hedge (legs of a symbol share a cross LP)"))
    if getattr(m, "collateralValue", None) is not None:  # multi-collateral account
        rows += [
            ("collateral value", _num(m.collateralValue)),
            ("margin balance", _num(m.marginBalance)),
            ("account IM rate", _pct(m.accountInitialMarginRate)),
            ("account MM rate (liq. at 100 %)", _pct(m.accountMaintenanceMarginRate)),
        ]
    for k, v in rows:
        acc.add_row(k, v)
    pos = Table(title="positions")
    for col, just in (
        ("symbol", "left"),
        ("side", "left"),
        ("mode", "left"),
        ("notional", "right"),
        ("IM", "right"),
        ("MM", "right"),
        ("uPnL", "right"),
        ("mark", "right"),
        ("liq. price", "right"),
        ("liq. dist.", "right"),
        ("stop", "right"),
        ("model", "left"),
    ):
        pos.add_column(col, justify=just)  # type: ignore[arg-type]
    for p in m.positions:
        dist = "—" if p.liquidationDistancePct is None else f"{p.liquidationDistancePct:.2f} %"
        model = p.marginModel + (" ≈" if p.approximate else "")
        if p.tierSource != "tiers":
            model += f" ({p.tierSource} MMR)"
        src = getattr(p, "closeFeeRateSource", "none")
        if src != "none":  # the exchange's trigger counts the taker fee to close
            model += f", fee {p.closeFeeRate * 100:.4g} % ({src})"
        pos.add_row(
            p.symbol,
            p.side,
            p.marginMode,
            _num(p.notional),
            _num(p.initialMargin),
            _num(p.maintenanceMargin),
            _num(p.unrealizedPnl),
            _num(p.markPrice, 4),
            _num(p.liquidationPrice, 4),
            dist,
            _num(p.stopLossPrice, 4),
            model,
        )
    return [acc, pos]


def print_metrics(m: Any) -> None:
    c = console()
    for t in metrics_tables(m):
        c.print(t)
    if m.approximate:
        c.print(
            "≈ approximate: a default maintenance-margin rate or an approximate exchange model was used",
            style="dim",
        )


def print_decision(d: Any, *, title: str | None = None) -> None:
    c = console()
    head = f"[{OUTCOME_STYLE.get(d.decision, 'bold')}]{d.decision.upper()}[/]"
    if d.mode == "monitor":
        head += f"  [bold yellow](monitor mode: enforcement OFF — would {d.wouldDecide})[/]"
    if title:
        head = f"{title}: {head}"
    c.print(head + f"  policy {d.policy['name']} {d.policy['version']} · decision {d.decisionId}")
    if d.order is not None:
        o = d.order
        line = f"order {o.side} {o.amount:g} {o.symbol}"
        line += f" · send {d.approved_amount:g}"
        if d.maxAllowedAmount is not None:
            line += f" · largest allowed amount {d.maxAllowedAmount:g}"
        c.print(line)
    if d.violations:
        t = Table(title="violations")
        for col in ("severity", "rule", "code", "symbol", "message"):
            t.add_column(col)
        for v in d.violations:
            t.add_row(
                f"[{SEVERITY_STYLE.get(v.severity, '')}]{v.severity}[/]",
                v.rule,
                v.code,
                v.symbol or "",
                v.message,
            )
        c.print(t)
    else:
        c.print("[green]no violations[/]")
    acts = [a for a in d.actions if a.type != "alert"]
    if acts:
        t = Table(title="proposed actions")
        for col in ("action", "symbol", "details", "rule"):
            t.add_column(col)
        for a in acts:
            details = ", ".join(
                f"{k}={_num(v, 6) if isinstance(v, float) else v}" for k, v in a.params.items()
            )
            t.add_row(a.type, a.symbol or "", details, a.rule)
        c.print(t)
    for e in d.errors:
        c.print(f"[bold red]fault (failed closed):[/] {e}")
    for n in d.notes:
        c.print(f"[dim]note: {n}[/]")
