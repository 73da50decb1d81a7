"""Protective execution with rails. Off unless the config or ``--execute`` names types.

The watcher applies a decision's actions through the existing
:class:`~riskguard.contrib.ccxt_guard.CcxtExecutor`, one action at a time, only when
every rail agrees:

1. **Risk-reducing types only**, and only those allowed (``execution.allow`` /
   ``--execute``): set_stop_loss, add_isolated_margin, reduce_position, close_position,
   switch_margin_mode.
2. **Severity.** An action carries the severity of the rule that proposed it; below
   ``execution.minSeverity`` (default ``error``) it is never executed, so a warning-only
   proposal acts only when configured to.
3. **Idempotent.** Every order carries a client order id derived from the account, the
   episode and the action; an id already sent (the state file remembers them across a
   restart) is never sent again.
4. **Budgets.** At most ``maxActionsPerHour`` actions per account per hour, and
   ``addMarginBudget`` of settle currency per account per day for added margin.
5. **Verified.** After an applied action the account is fetched again and the result is
   checked (the stop is there, the margin went up, the position shrank, the mode changed).
6. **A refusal is final.** An exchange refusal is recorded, alerted and not retried.

``dry_run`` runs every rail and records what would be sent, sending nothing.

The ccxt executor is synchronous; an asyncio exchange (``ccxt.async_support``, the paper
exchange) is reached through :class:`LoopBridge`, which runs each call on the watcher's
loop while the executor waits in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
from typing import Any

from riskguard.engine.decision import SEVERITY_RANK
from riskguard.faces.watch.config import RISK_REDUCING, ExecutionConfig

HOUR = 3600.0
DAY = 86400.0


def action_severity(action: Any, decision: Any) -> str:
    """The severity of the rule that proposed ``action`` (the action's own when it has one).

    The engine merges the same action proposed by several rules into one and lists them
    in ``params.rules``; the merged action carries the highest of their severities.
    """
    sev = getattr(action, "severity", None)
    if sev in SEVERITY_RANK:
        return sev
    rules = {action.rule, *(action.params.get("rules") or ())}
    best = None
    for v in decision.violations:
        same = v.rule in rules and (action.symbol is None or v.symbol in (None, action.symbol))
        if same and (best is None or SEVERITY_RANK[v.severity] > SEVERITY_RANK[best]):
            best = v.severity
    return best or "info"


def client_order_id(
    account: str, episode_opened: float | None, action: Any, attempt: int = 0
) -> str:
    """Stable for one proposal in one episode: a retry of the same thing reuses it."""
    key = "|".join(
        [
            account,
            action.rule,
            action.symbol or "",
            action.type,
            f"{episode_opened or 0:.3f}",
            _param_key(action),
            str(attempt),
        ]
    )
    return "rg" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _param_key(action: Any) -> str:
    p = action.params
    for k in ("price", "amount", "to"):
        if k in p:
            v = p[k]
            return f"{k}={v:.10g}" if isinstance(v, float) else f"{k}={v}"
    return ""


class LoopBridge:
    """A synchronous face over an exchange whose methods may be coroutines.

    ``create_order`` gets ``params.clientOrderId`` (the rails' idempotency key).
    """

    def __init__(
        self, exchange: Any, loop: asyncio.AbstractEventLoop, client_id: str | None
    ) -> None:
        self._ex = exchange
        self._loop = loop
        self._client_id = client_id

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ex, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            argv = list(args)
            if name == "create_order" and self._client_id is not None:
                if len(argv) >= 6:
                    argv[5] = {**(argv[5] or {}), "clientOrderId": self._client_id}
                else:
                    kwargs["params"] = {
                        **(kwargs.get("params") or {}),
                        "clientOrderId": self._client_id,
                    }
            out = attr(*argv, **kwargs)
            if inspect.isawaitable(out):
                return asyncio.run_coroutine_threadsafe(_await(out), self._loop).result()
            return out

        return call


async def _await(x: Any) -> Any:
    return await x


@dataclasses.dataclass(slots=True)
class Rails:
    """Per-account execution state: recent actions (budgets) and client ids sent."""

    config: ExecutionConfig
    history: list = dataclasses.field(default_factory=list)  # [{at, type, amount, id, status}]
    sent: set = dataclasses.field(default_factory=set)

    def to_dict(self) -> dict:
        return {"history": self.history[-200:], "sent": sorted(self.sent)[-500:]}

    @classmethod
    def from_dict(cls, config: ExecutionConfig, d: dict | None) -> Rails:
        d = d or {}
        return cls(config, list(d.get("history") or ()), set(d.get("sent") or ()))

    def screen(self, action: Any, decision: Any, now: float) -> str | None:
        """Why ``action`` must not be executed now (None: it may)."""
        cfg = self.config
        if action.type not in RISK_REDUCING:
            return "not a risk-reducing exchange action"
        if action.type not in cfg.allow:
            return f"{action.type} is not in the execution allowlist"
        sev = action_severity(action, decision)
        if SEVERITY_RANK[sev] < SEVERITY_RANK[cfg.min_severity]:
            return f"proposed by a {sev} rule; execution needs {cfg.min_severity} or above"
        if action.type == "switch_margin_mode" and action.params.get("feasible") is False:
            return f"the exchange refuses the switch now: {action.params.get('reason', '')}"
        recent = [h for h in self.history if now - h["at"] < HOUR and h["status"] != "dry-run"]
        if len(recent) >= cfg.max_actions_per_hour:
            return f"hourly budget spent ({cfg.max_actions_per_hour} actions per hour)"
        if action.type == "add_isolated_margin":
            spent = sum(
                h.get("amount") or 0.0
                for h in self.history
                if h["type"] == "add_isolated_margin"
                and now - h["at"] < DAY
                and h["status"] != "dry-run"
            )
            amount = float(action.params.get("amount") or 0.0)
            if spent + amount > cfg.add_margin_budget:
                return (
                    f"add-margin budget: {spent:g} of {cfg.add_margin_budget:g} spent today, "
                    f"{amount:g} more would exceed it"
                )
        return None


def verified(action: Any, before: Any, after: Any) -> bool | None:
    """Did the re-fetched snapshot ``after`` show the action's effect? (None: cannot tell)."""
    if after is None:
        return None
    sym = action.symbol
    pa = next((p for p in after.positions if p.symbol == sym), None)
    pb = (
        next((p for p in before.positions if p.symbol == sym), None) if before is not None else None
    )
    t = action.type
    if t == "set_stop_loss":
        want = float(action.params["price"])
        if pa is None:
            return True  # the position is gone: the stop fired or it was closed
        sl = pa.stopLossPrice
        if sl is None:
            return False
        tol = abs(want) * 1e-6
        return sl >= want - tol if pa.side == "long" else sl <= want + tol
    if t == "add_isolated_margin":
        if pa is None or pb is None:
            return None
        return (pa.isolatedMargin or 0.0) > (pb.isolatedMargin or 0.0)
    if t == "reduce_position":
        if pb is None:
            return None
        return pa is None or pa.contracts < pb.contracts
    if t == "close_position":
        return pa is None
    if t == "switch_margin_mode":
        return pa is None or pa.marginMode == action.params.get("to")
    return None
