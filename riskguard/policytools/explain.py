"""``riskguard explain``: a plain-language trace of every rule behind one decision.

Like ``opa eval --explain``, but written for a trader rather than a policy author: for
each rule the inputs it read (metric values), the comparison it made, the outcome and
why, then the decision in one sentence with what would pass instead ("the largest order
that fits is 0.12 BTC").

It builds on the engine's own tracing: ``evaluate(..., trace=[])`` makes rules record
their reasoning through ``BaseRule.note()``; the hot path pays nothing when tracing is
off. A rule that records no notes still shows its violations, or "passed, no findings".
Nothing here re-implements a rule: the explanation is of the decision the engine made.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from riskguard.engine.actions import Action
from riskguard.engine.decision import Decision, Violation, clean_metrics
from riskguard.engine.evaluate import ENGINE, blocking_violations, evaluate
from riskguard.engine.policy import CompiledPolicy
from riskguard.margin.metrics import (
    AccountMetrics,
    compute_metrics,
    contract_size_for,
    order_reduces,
)
from riskguard.model.redact import redact
from riskguard.model.snapshot import Order, Snapshot, format_timestamp, order_to_dict

#: Per-rule outcomes, from worst to best.
OUTCOMES = ("error", "violated", "warning", "passed")


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What one rule looked at and concluded in one evaluation."""

    id: str
    type: str
    severity: str
    description: str
    params: dict
    match: dict
    outcome: str  # error | violated | warning | passed
    blocks: bool  # its violations decided a deny/resize of this order (or account)
    notes: tuple[dict, ...]
    violations: tuple[Violation, ...]
    decisive: tuple[bool, ...]  # per violation: did it count towards the deny/resize?
    actions: tuple[Action, ...]
    sizing: bool  # the rule can bound the order amount (has max_amount)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "description": self.description,
            "params": _jsonable(self.params),
            "match": self.match,
            "outcome": self.outcome,
            "blocksDecision": self.blocks,
            "notes": [_note_dict(n) for n in self.notes],
            "violations": [
                {**v.to_dict(), "blocksDecision": b}
                for v, b in zip(self.violations, self.decisive, strict=True)
            ],
            "actions": [_jsonable(a.to_dict()) for a in self.actions],
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision plus the per-rule trace and the plain-language reasons behind it."""

    decision: Decision
    policy: CompiledPolicy
    snapshot: Snapshot
    order: Order | None
    rules: tuple[RuleTrace, ...]
    engine: tuple[Violation, ...]  # input/fault findings of the engine itself
    metrics_before: AccountMetrics | None  # the account before the order (order checks only)
    why: tuple[str, ...]
    resized_notes: tuple[dict, ...] = ()  # the sizing rules' notes at the resized amount

    def to_dict(self) -> dict:
        d = self.decision
        out: dict = {
            "decision": d.decision,
            "policy": d.policy,
            "mode": d.mode,
            "order": redact(order_to_dict(self.order)) if self.order is not None else None,
            "maxAllowedAmount": _finite(d.maxAllowedAmount),
            "why": list(self.why),
            "rules": [r.to_dict() for r in self.rules],
            "engine": [v.to_dict() for v in self.engine],
            "metrics": clean_metrics(d.metrics.to_dict()) if d.metrics is not None else None,
        }
        if d.wouldDecide is not None:
            out["wouldDecide"] = d.wouldDecide
        if self.metrics_before is not None:
            out["metricsBefore"] = clean_metrics(self.metrics_before.to_dict())
        if self.resized_notes:
            out["resized"] = {
                "amount": _finite(d.maxAllowedAmount),
                "notes": [_note_dict(n) for n in self.resized_notes],
            }
        if d.errors:
            out["errors"] = list(d.errors)
        if d.notes:
            out["notes"] = list(d.notes)
        return out


# --------------------------------------------------------------------------- building


def rule_outcomes(policy: CompiledPolicy, decision: Decision, trace: list[dict]) -> dict[str, str]:
    """rule id → ``violated`` (any violation, any severity) | ``passed`` (noted, no violation)
    | ``silent`` (neither: the rule found nothing it applies to). Used for test coverage."""
    violated = {v.rule for v in decision.violations}
    noted = {n.get("rule") for n in trace}
    out = {}
    for spec in policy.specs:
        if spec.id in violated:
            out[spec.id] = "violated"
        elif spec.id in noted:
            out[spec.id] = "passed"
        else:
            out[spec.id] = "silent"
    return out


def explain(
    policy: CompiledPolicy,
    snapshot: Snapshot,
    order: Order | None = None,
    *,
    now_ms: int | None = None,
    state: Any = None,
) -> Explanation:
    """Evaluate with tracing on and assemble the per-rule explanation."""
    trace: list[dict] = []
    decision = evaluate(policy, snapshot, order, now_ms=now_ms, state=state, trace=trace)
    reduces = order is not None and order_reduces(snapshot, order)
    blocking_ids = {id(v) for v in blocking_violations(list(decision.violations), order, reduces)}
    if order is None:
        blocking_ids = {id(v) for v in decision.violations if v.blocking}
    compiled = {r.id: r for r in policy.rules}
    rules = []
    for spec in policy.specs:
        vs = tuple(v for v in decision.violations if v.rule == spec.id)
        notes = tuple(n for n in trace if n.get("rule") == spec.id)
        acts = tuple(a for a in decision.actions if a.rule == spec.id)
        if any(v.code == "RULE_ERROR" for v in vs):
            outcome = "error"
        elif any(v.blocking for v in vs):
            outcome = "violated"
        elif vs:
            outcome = "warning"
        else:
            outcome = "passed"
        rules.append(
            RuleTrace(
                id=spec.id,
                type=spec.type,
                severity=spec.severity,
                description=spec.description,
                params=dict(spec.params),
                match=_match_dict(spec.match),
                outcome=outcome,
                blocks=any(id(v) in blocking_ids for v in vs),
                notes=notes,
                violations=vs,
                decisive=tuple(id(v) in blocking_ids for v in vs),
                actions=acts,
                sizing=callable(getattr(compiled.get(spec.id), "max_amount", None)),
            )
        )
    engine = tuple(v for v in decision.violations if v.rule == ENGINE)
    metrics_before = None
    if order is not None and decision.metrics is not None:
        metrics_before = compute_metrics(snapshot, policy.registry.margin_model(snapshot.exchange))
    resized_notes: tuple[dict, ...] = ()
    if order is not None and decision.decision == "resize" and decision.maxAllowedAmount:
        again: list[dict] = []
        evaluate(
            policy,
            snapshot,
            replace(order, amount=decision.maxAllowedAmount),
            now_ms=decision.timestamp,
            state=dict(state) if isinstance(state, dict) else state,
            trace=again,
        )
        blockers = {r.id for r in rules if r.blocks}
        resized_notes = tuple(n for n in again if n.get("rule") in blockers)
    partial = Explanation(
        decision, policy, snapshot, order, tuple(rules), engine, metrics_before, (), resized_notes
    )
    return replace(partial, why=tuple(_why(partial)))


# --------------------------------------------------------------------------- plain words


def unit_of(snapshot: Snapshot, symbol: str) -> str:
    """What one order amount counts: the base coin for linear contracts of size 1, else contracts."""
    cs = contract_size_for(snapshot, symbol)
    inverse = any(p.inverse for p in snapshot.positions if p.symbol == symbol)
    if cs == 1 and not inverse and "/" in symbol:
        return symbol.split("/", 1)[0]
    return "contracts"


def _amount(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.8g}"


def _fits(x: float | None) -> str:
    """A largest allowed amount, rounded *down* to 8 significant digits: never above the bound."""
    if x is None or x <= 0 or not math.isfinite(x):
        return _amount(x)
    scale = 10 ** (7 - math.floor(math.log10(x)))
    return f"{math.floor(x * scale) / scale:.8g}"


def _order_words(snapshot: Snapshot, order: Order) -> str:
    unit = unit_of(snapshot, order.symbol)
    price = f" at {order.price:,.8g}" if order.price is not None else " at market"
    return f"{order.side} {_amount(order.amount)} {unit} of {order.symbol}{price}"


def _why(x: Explanation) -> list[str]:
    """The decision and its reasons as sentences a trader can act on."""
    d, order, snap = x.decision, x.order, x.snapshot
    outcome = d.wouldDecide if d.mode == "monitor" and d.wouldDecide else d.decision
    lines: list[str] = []
    blockers = [r for r in x.rules if r.blocks]
    blocking_vs = [
        v for r in x.rules for v, dec in zip(r.violations, r.decisive, strict=True) if dec
    ]
    engine_block = [v for v in x.engine if v.blocking]
    if order is not None:
        unit = unit_of(snap, order.symbol)
        what = f"the order to {_order_words(snap, order)}"
        if outcome == "allow":
            lines.append(f"ALLOWED: {what} passes every rule.")
        elif outcome == "resize":
            lines.append(
                f"RESIZED: {what} is too large; send {_fits(d.maxAllowedAmount)} {unit} instead "
                "(the largest amount every rule allows)."
            )
        else:
            lines.append(f"DENIED: {what} must not be sent.")
    else:
        if outcome == "allow":
            lines.append("ALLOWED: the account is within every rule of the policy.")
        else:
            lines.append("DENIED: the account is in breach of the policy; no new risk until fixed.")
    for v in engine_block:
        lines.append(f"input problem ({v.code}): {v.message}")
    for v in blocking_vs:
        lines.append(f"{v.rule}: {v.message}")
    for r in x.rules:
        if r.outcome == "error":
            lines.append(
                f"{r.id}: the rule failed to evaluate, so the decision fails closed (deny)."
            )
    if order is not None and outcome == "deny" and not engine_block:
        unit = unit_of(snap, order.symbol)
        hard = [r.id for r in blockers if not r.sizing]
        if hard:
            lines.append(
                "a smaller order does not help: "
                + ", ".join(hard)
                + (" blocks" if len(hard) == 1 else " block")
                + " this order at any size."
            )
            if len(hard) < len(blockers) and d.maxAllowedAmount:
                lines.append(
                    f"once that is fixed, the largest order that fits is "
                    f"{_fits(d.maxAllowedAmount)} {unit}."
                )
        elif d.maxAllowedAmount is not None and d.maxAllowedAmount > 0:
            resize_hint = (
                ""
                if any("resize_order" in compiled_actions(x.policy, r.id) for r in blockers)
                else " (the policy does not resize orders for this rule, so it denies instead)"
            )
            lines.append(
                f"the largest order that fits is {_fits(d.maxAllowedAmount)} {unit}{resize_hint}."
            )
        elif d.maxAllowedAmount is not None:
            lines.append(
                "no amount of this order fits: the limit is already used up; reduce exposure first."
            )
    if outcome == "resize":
        for n in x.resized_notes:
            unit = unit_of(snap, order.symbol) if order is not None else ""
            lines.append(f"at {_fits(d.maxAllowedAmount)} {unit}: {n.get('text')}")
    warnings = [v for r in x.rules for v in r.violations if not v.blocking]
    if warnings:
        lines.append(
            f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} (reported, not blocking): "
            + "; ".join(f"{v.rule}: {v.message}" for v in warnings)
        )
    others = [
        v
        for r in x.rules
        for v, decisive in zip(r.violations, r.decisive, strict=True)
        if v.blocking and not decisive and order is not None
    ]
    if others:
        lines.append(
            "findings on other positions (reported with their fixes, they do not block this order): "
            + "; ".join(f"{v.rule}: {v.message}" for v in others)
        )
    fixes = [a for a in d.actions if a.type not in ("alert", "block_order", "resize_order")]
    for a in fixes:
        lines.append(f"proposed: {action_words(a)}")
    if d.mode == "monitor":
        lines.append(
            f"monitor mode: enforcement is off, so the decision is ALLOW; enforce mode would {outcome}."
        )
    return lines


def compiled_actions(policy: CompiledPolicy, rule_id: str) -> frozenset[str]:
    for r in policy.rules:
        if r.id == rule_id:
            return frozenset(getattr(r, "actions", ()))
    return frozenset()


def action_words(a: Action) -> str:
    """One action as an instruction."""
    p = a.params
    sym = a.symbol or "the account"
    if a.positionSide is not None:  # hedge mode: the leg, e.g. "BTC/USDT:USDT (long leg)"
        sym = f"{sym} ({a.positionSide} leg)"
    if a.type == "resize_order":
        return f"send {_amount(p.get('amount'))} instead of {_amount(p.get('requested'))} ({sym})"
    if a.type == "block_order":
        return f"do not send the {sym} order"
    if a.type == "set_stop_loss":
        prev = p.get("previous")
        was = f" (now {_price(prev)})" if prev is not None else " (there is none)"
        return f"set the stop-loss of {sym} to {_price(p.get('price'))}{was}"
    if a.type == "reduce_position":
        return f"reduce {sym} by {_amount(p.get('amount'))} contracts" + (
            f": {p['reason']}" if p.get("reason") else ""
        )
    if a.type == "switch_margin_mode":
        text = f"switch {sym} to {p.get('to')}"
        if p.get("isolatedMargin") is not None:
            text += f" with {_money(p.get('isolatedMargin'))} margin"
        if p.get("feasible") is False:
            text += f" — the exchange refuses this now ({p.get('reason')})"
            if p.get("alternative"):
                text += f"; instead: {p['alternative']}"
        elif p.get("feasible") is True:
            text += " — the exchange allows it now"
        return text
    if a.type == "add_isolated_margin":
        return f"add {_money(p.get('amount'))} isolated margin to {sym}"
    if a.type == "close_position":
        return f"close {sym}"
    if a.type == "halt_trading":
        return f"move trading to {p.get('state')}"
    if a.type == "alert":
        return f"alert: {p.get('message', '')}"
    details = ", ".join(f"{k}={_plain(v)}" for k, v in p.items())
    return f"{a.type} {sym}" + (f" ({details})" if details else "")


# --------------------------------------------------------------------------- values

_FRACTION_KEYS = frozenset(
    {"utilization", "marginUtilization", "marginUtilizationWithOrders", "marginRatio", "before"}
)
#: Parameters that are fractions (0.35 = 35 %) for a given rule type.
_TYPE_FRACTIONS: dict[str, frozenset[str]] = {
    "margin_utilization": frozenset({"max", "warnAt"}),
}
_MONEY_KEYS = frozenset(
    {
        "equity",
        "initialMargin",
        "openOrderInitialMargin",
        "maintenanceMargin",
        "walletBalance",
        "crossWalletBalance",
        "unrealizedPnl",
        "isolatedMargin",
        "notional",
    }
)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return _finite(v)
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return str(v)


def _note_dict(n: dict) -> dict:
    return {
        "text": n.get("text"),
        "symbol": n.get("symbol"),
        "passed": n.get("passed"),
        "values": _jsonable(n.get("values") or {}),
    }


def _match_dict(m: Any) -> dict:
    return {
        "symbols": list(m.symbols),
        "exclude": list(m.exclude),
        "marginMode": m.marginMode,
        "side": m.side,
    }


def words(key: str) -> str:
    """camelCase → "camel case" (labels for values rules record)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower().replace("pct", "%")


def _price(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (int, float)):
        return f"{v:,.8g}"
    return str(v)


def _money(v: Any, settle: str = "") -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return _plain(v)
    return f"{v:,.2f}" + (f" {settle}" if settle else "")


def _plain(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_plain(x) for x in v) or "none"
    return str(v)


def format_value(key: str, v: Any, rule_type: str = "", settle: str = "") -> str:
    """A value a rule recorded, with its unit: percent, money, price or plain."""
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _plain(v)
    if key in _FRACTION_KEYS or key in _TYPE_FRACTIONS.get(rule_type, ()):
        return f"{v * 100:.2f} %"
    if key.endswith("Pct"):
        return f"{v:.2f} %"
    if key in _MONEY_KEYS:
        return _money(v, settle)
    if key.endswith("Price") or key.endswith("Stop") or key == "price":
        return _price(v)
    return _plain(v)


def _format_like(value: Any, notes: tuple[dict, ...], rule_type: str, settle: str) -> str:
    """Format a violation's observed/limit like the note value it equals (same unit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for n in notes:
            for k, x in (n.get("values") or {}).items():
                if isinstance(x, (int, float)) and not isinstance(x, bool) and x == value:
                    return format_value(k, value, rule_type, settle)
    return format_value("", value, rule_type, settle)


# --------------------------------------------------------------------------- terminal


_OUTCOME_LABEL = {
    "error": ("FAILED TO EVALUATE", "bold red"),
    "violated": ("VIOLATED", "bold red"),
    "warning": ("WARNING", "bold yellow"),
    "passed": ("PASSED", "bold green"),
}


def print_explanation(x: Explanation, *, only_findings: bool = False) -> None:
    """The trace as panels: metrics on top, one panel per rule, the decision at the bottom."""
    from rich.console import Group
    from rich.markup import escape
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from riskguard.faces.render import OUTCOME_STYLE, SEVERITY_STYLE, console

    c = console()
    d, snap, order = x.decision, x.snapshot, x.order
    m = d.metrics
    settle = snap.settle
    head = (
        f"[bold]riskguard explain[/] · policy {escape(d.policy['name'])} {escape(d.policy['version'])}"
        f" · account {escape(snap.account)} ({escape(snap.exchange)}, {settle})"
    )
    if snap.timestamp is not None:
        head += f" · snapshot {format_timestamp(snap.timestamp)}"
    c.print(head)
    if order is not None:
        c.print(f"order: [bold]{escape(_order_words(snap, order))}[/]")

    if m is not None:
        c.print(_metrics_table(x, Table))
        pos = _positions_table(m, Table, escape)
        if pos is not None:
            c.print(pos)
    for v in x.engine:
        style = SEVERITY_STYLE.get(v.severity, "")
        c.print(
            Panel(
                f"[{style}]{v.severity}[/] {v.code}: {escape(v.message)}",
                title="input check (engine)",
                border_style="red" if v.blocking else "yellow",
            )
        )

    total = len(x.rules)
    for i, r in enumerate(x.rules, 1):
        if only_findings and r.outcome == "passed":
            continue
        label, style = _OUTCOME_LABEL[r.outcome]
        if r.blocks:
            label += " — decides this " + ("order" if order is not None else "decision")
        elif r.outcome == "violated" and order is not None:
            label += " — does not block this order"
        parts: list[Any] = []
        if r.description:
            parts.append(Text(r.description, style="dim"))
        params = " · ".join(
            f"{k}={_plain(v)}"
            if not isinstance(v, list) or not v or not isinstance(v[0], dict)
            else f"{k}=[{len(v)} entries]"
            for k, v in r.params.items()
        )
        scope = _scope_words(r.match)
        parts.append(Text.from_markup(f"[bold]params[/] {escape(params) or '—'} · {escape(scope)}"))
        if r.notes:
            parts.append(Text("checked:", style="bold"))
            for n in r.notes:
                marks: dict[Any, str] = {True: "[green]✔[/]", False: "[red]✘[/]"}
                mark = marks.get(n.get("passed"), "•")
                parts.append(
                    Padding(Text.from_markup(f"{mark} {escape(str(n.get('text')))}"), (0, 0, 0, 2))
                )
                vals = n.get("values") or {}
                if vals:
                    shown = " · ".join(
                        f"{words(k)} {format_value(k, v, r.type, settle)}" for k, v in vals.items()
                    )
                    parts.append(Padding(Text(shown, style="dim"), (0, 0, 0, 4)))
        if r.violations:
            parts.append(Text("findings:", style="bold"))
            for v, decisive in zip(r.violations, r.decisive, strict=True):
                sev = SEVERITY_STYLE.get(v.severity, "")
                parts.append(
                    Padding(
                        Text.from_markup(
                            f"[{sev}]{v.severity.upper()}[/] {v.code} — {escape(v.message)}"
                        ),
                        (0, 0, 0, 2),
                    )
                )
                bits = []
                if v.observed is not None:
                    bits.append(f"observed {_format_like(v.observed, r.notes, r.type, settle)}")
                if v.limit is not None:
                    bits.append(f"limit {_format_like(v.limit, r.notes, r.type, settle)}")
                if decisive:
                    bits.append("blocks this order" if order is not None else "denies")
                elif not v.blocking:
                    bits.append(f"{v.severity}: reported, not blocking")
                else:
                    bits.append("another position: does not block this order")
                parts.append(Padding(Text(" · ".join(bits), style="dim"), (0, 0, 0, 4)))
        elif not r.notes:
            parts.append(Text("passed, no findings (nothing in this snapshot it applies to)"))
        acts = [a for a in r.actions if a.type != "alert"]
        if acts:
            parts.append(Text("proposes:", style="bold"))
            for a in acts:
                parts.append(Padding(Text("→ " + action_words(a)), (0, 0, 0, 2)))
        c.print(
            Panel(
                Group(*parts),
                title=f"[{style}]{i}/{total} {escape(r.id)}[/] ({escape(r.type)}) — [{style}]{label}[/]",
                title_align="left",
                border_style=style.replace("bold ", ""),
            )
        )

    outcome = d.decision
    style = OUTCOME_STYLE.get(outcome, "bold")
    bullets = Table.grid(padding=(0, 1))
    bullets.add_column(no_wrap=True)
    bullets.add_column()  # wrapped lines keep their hanging indent
    for line in x.why[1:]:
        bullets.add_row("•", Text(line))
    for e in d.errors:
        bullets.add_row("•", Text(f"fault (failed closed): {e}", style="bold red"))
    for note in d.notes:
        bullets.add_row("•", Text(f"note: {note}", style="dim"))
    body = Group(Text(x.why[0] if x.why else outcome.upper(), style=style), bullets)
    title = f"[{style}]decision: {outcome.upper()}[/]"
    if d.mode == "monitor":
        title += f" [bold yellow](monitor mode — enforce would {d.wouldDecide})[/]"
    c.print(Panel(body, title=title, title_align="left", border_style=style.replace("bold ", "")))


def _scope_words(match: dict) -> str:
    syms = match["symbols"]
    text = "applies to " + ("all symbols" if syms == ["*"] else ", ".join(syms))
    if match["exclude"]:
        text += " except " + ", ".join(match["exclude"])
    if match["marginMode"] != "any":
        text += f", {match['marginMode']} positions"
    if match["side"] != "any":
        text += f", {match['side']} side"
    return text


def _metrics_table(x: Explanation, Table: Any) -> Any:
    m = x.decision.metrics
    b = x.metrics_before
    t = Table(title="account", title_justify="left", box=None, show_header=b is not None)
    t.add_column("", style="bold")
    if b is not None:
        t.add_column("now", justify="right")
        t.add_column("after the order", justify="right")
    else:
        t.add_column("", justify="right")
    s = m.settle

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v * 100:.2f} %"

    def lev(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}×"

    rows = [
        ("equity", lambda a: _money(a.equity, s)),
        ("wallet balance", lambda a: _money(a.walletBalance, s)),
        ("unrealized PnL", lambda a: _money(a.unrealizedPnl, s)),
        ("initial margin", lambda a: _money(a.initialMargin, s)),
        ("open-order margin", lambda a: _money(a.openOrderInitialMargin, s)),
        ("maintenance margin", lambda a: _money(a.maintenanceMargin, s)),
        ("margin utilization", lambda a: pct(a.marginUtilization)),
        ("utilization incl. open orders", lambda a: pct(a.marginUtilizationWithOrders)),
        ("margin ratio (MM / equity)", lambda a: pct(a.marginRatio)),
        ("effective leverage", lambda a: lev(a.effectiveLeverage)),
    ]
    for label, fn in rows:
        if b is not None:
            t.add_row(label, fn(b), fn(m))
        else:
            t.add_row(label, fn(m))
    return t


def _positions_table(m: Any, Table: Any, escape: Any) -> Any:
    if not m.positions:
        return None
    t = Table(title="positions (as the rules judged them)", title_justify="left")
    for col, just in (
        ("symbol", "left"),
        ("side", "left"),
        ("mode", "left"),
        ("contracts", "right"),
        ("mark", "right"),
        ("initial margin", "right"),
        ("liq. price", "right"),
        ("liq. distance", "right"),
        ("stop", "right"),
    ):
        t.add_column(col, justify=just)
    for p in m.positions:
        dist = "—" if p.liquidationDistancePct is None else f"{p.liquidationDistancePct:.2f} %"
        t.add_row(
            escape(p.symbol),
            p.side,
            p.marginMode,
            _amount(p.contracts),
            _price(p.markPrice),
            _money(p.initialMargin),
            _price(p.liquidationPrice),
            dist,
            _price(p.stopLossPrice),
        )
    return t


__all__ = [
    "Explanation",
    "RuleTrace",
    "action_words",
    "explain",
    "format_value",
    "print_explanation",
    "rule_outcomes",
    "unit_of",
]
