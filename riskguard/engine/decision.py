"""Decisions and violations: the engine's output.

A decision is ``allow``, ``resize`` (the order fits at ``maxAllowedAmount``) or ``deny``.
Each violation carries a stable reason ``code`` (``CATEGORY_CONDITION``, NautilusTrader
style) plus key=value ``context``, the observed and limit values and a human message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from riskguard._compiled import compiled, mypyc_attr
from riskguard.engine.actions import Action
from riskguard.model.redact import redact
from riskguard.model.slots import positional_constructor, reduce_by_init
from riskguard.model.snapshot import Order, format_timestamp, order_to_dict

SEVERITIES = ("info", "warning", "error", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
BLOCKING = frozenset({"error", "critical"})


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled, still subclassable
@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    type: str
    code: str
    severity: str
    message: str
    symbol: str | None = None
    observed: Any = None
    limit: Any = None
    context: dict[Any, Any] = field(default_factory=dict)
    #: "order" (judges the order itself: blocks even a reducing order), "position" or
    #: "account" (judge the resulting state: never block an order that reduces exposure)
    scope: str = "account"

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING

    def reason(self) -> str:
        """``CODE: k=v, k=v`` — the one-line form for logs and bots."""
        if not self.context:
            return self.code
        return self.code + ": " + ", ".join(f"{k}={_fmt(v)}" for k, v in self.context.items())

    def to_dict(self) -> dict[Any, Any]:
        return {
            "rule": self.rule,
            "type": self.type,
            "code": self.code,
            "severity": self.severity,
            "symbol": self.symbol,
            "observed": _json_num(self.observed),
            "limit": _json_num(self.limit),
            "message": self.message,
            # _json_num inline: a non-finite float becomes None (the hot path of every answer)
            "context": {
                k: (None if isinstance(v, float) and v - v != 0 else v)
                for k, v in self.context.items()
            },
            "scope": self.scope,
        }

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_init(self)


def _native_violation(
    rule: str,
    type: str,
    code: str,
    severity: str,
    message: str,
    symbol: str | None,
    observed: Any,
    limit: Any,
    context: dict[Any, Any],
    scope: str,
) -> Violation:
    v = Violation.__new__(Violation)
    v.rule = rule  # type: ignore[misc]
    v.type = type  # type: ignore[misc]
    v.code = code  # type: ignore[misc]
    v.severity = severity  # type: ignore[misc]
    v.message = message  # type: ignore[misc]
    v.symbol = symbol  # type: ignore[misc]
    v.observed = observed  # type: ignore[misc]
    v.limit = limit  # type: ignore[misc]
    v.context = context  # type: ignore[misc]
    v.scope = scope  # type: ignore[misc]
    return v


#: Compiled (mypyc, ``setup.py``), ``Violation`` and ``Decision`` are native classes.
_COMPILED = compiled(_native_violation)

#: ``Violation(...)`` with all ten fields given, the fields filled directly (the hot path's
#: constructor: every finding a rule reports is built by it; compiled, the dataclass's
#: ``__init__`` is still interpreted).
new_violation: Callable[..., Violation] = (
    _native_violation if _COMPILED else positional_constructor(Violation)
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _json_num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> two digits


def new_decision_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, sortable by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    # 26 Crockford digits = 130 bits (the 128-bit ULID with two leading zero bits), read
    # ten bits at a time: the time's 50 bits, then the randomness as two 40-bit halves —
    # numbers that fit a machine word, so the compiled build never does big-int arithmetic
    # (a hot path: one per decision).
    t = ms & 0x3FFFFFFFFFFFF
    r = os.urandom(10)
    hi = int.from_bytes(r[:5], "big")
    lo = int.from_bytes(r[5:], "big")
    p = _PAIRS
    return "".join(
        [
            p[(t >> 40) & 1023], p[(t >> 30) & 1023], p[(t >> 20) & 1023],
            p[(t >> 10) & 1023], p[t & 1023],
            p[(hi >> 30) & 1023], p[(hi >> 20) & 1023], p[(hi >> 10) & 1023], p[hi & 1023],
            p[(lo >> 30) & 1023], p[(lo >> 20) & 1023], p[(lo >> 10) & 1023], p[lo & 1023],
        ]
    )  # fmt: skip


def canonical_json(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()


@dataclass(slots=True)
class Decision:
    decision: str  # allow | resize | deny
    decisionId: str
    timestamp: int  # epoch ms of the evaluation
    policy: dict[Any, Any]  # name, version, digest
    account: str
    violations: tuple[Violation, ...]
    actions: tuple[Action, ...]
    metrics: Any  # AccountMetrics
    durationUs: float
    mode: str = "enforce"
    order: Order | None = None
    maxAllowedAmount: float | None = None
    wouldDecide: str | None = None  # monitor mode: what enforce would have decided
    errors: tuple[dict[Any, Any], ...] = ()
    notes: tuple[str, ...] = ()
    snapshotTimestamp: int | None = None
    snapshotRef: str | None = None
    _snapshot_dict: Any = None
    _snapshot_digest: str | None = None

    @property
    def allowed(self) -> bool:
        """True only when the order (or account) may go ahead **unchanged**.

        A ``resize`` is not ``allowed``: the order fits only at a smaller amount. Send
        :attr:`approved_amount` (or :meth:`amount_to_send`), never the order's own amount.
        Monitor mode never denies, so there ``allowed`` is always true.
        """
        return self.decision == "allow"

    @property
    def approved_amount(self) -> float:
        """The amount this decision lets you send: the order's amount when allowed, the
        resized amount (``maxAllowedAmount``, never above the order's) when resized, and
        ``0.0`` when denied or when the check had no order. Round it **down** to the
        exchange's precision before sending (ccxt's ``amount_to_precision`` truncates)."""
        order = self.order
        if order is None or self.decision == "deny":
            return 0.0
        if self.decision == "allow":
            return float(order.amount)
        m = self.maxAllowedAmount  # resize
        if m is None or not math.isfinite(m) or m <= 0:
            return 0.0
        return float(min(m, order.amount))

    def amount_to_send(self, order: Any = None) -> float:
        """:attr:`approved_amount`, after checking that ``order`` (dict or
        :class:`~riskguard.Order`) is the order this decision judged: a decision is never
        applied to another symbol, side or a larger amount. ``0.0`` means: send nothing."""
        if order is not None and self.order is not None:

            def get(key: str) -> Any:
                if isinstance(order, dict):
                    return order.get(key)
                return getattr(order, key, None)

            for key in ("symbol", "side"):
                theirs = get(key)
                ours = getattr(self.order, key)
                if theirs is not None and theirs != ours:
                    raise ValueError(
                        f"this decision judged a {self.order.side} {self.order.symbol} order, "
                        f"not {key}={theirs!r}: check that order first"
                    )
            amount = get("amount")
            if amount is not None and float(amount) > self.order.amount:
                raise ValueError(
                    f"this decision judged amount {self.order.amount:g}, not {float(amount):g}: "
                    "check that order first"
                )
        return self.approved_amount

    @property
    def snapshot_digest(self) -> str:
        if self._snapshot_digest is None:
            src = self._snapshot_dict
            self._snapshot_digest = digest(src() if callable(src) else src)
        return self._snapshot_digest

    def reasons(self) -> list[str]:
        return [v.reason() for v in self.violations]

    def to_dict(self, *, metrics: bool = True) -> dict[Any, Any]:
        d: dict[Any, Any] = {
            "decision": self.decision,
            "decisionId": self.decisionId,
            "timestamp": format_timestamp(self.timestamp),
            "mode": self.mode,
            "policy": self.policy,
            "snapshot": {
                "account": self.account,
                "digest": self.snapshot_digest,
                "timestamp": format_timestamp(self.snapshotTimestamp),
            },
            "violations": [v.to_dict() for v in self.violations],
            "actions": [a.to_dict() for a in self.actions],
            "durationUs": round(self.durationUs, 1),
        }
        if self.snapshotRef is not None:
            d["snapshot"]["ref"] = self.snapshotRef
        if self.order is not None:
            # An order's unknown fields are echoed; a bot may have left credentials there.
            d["order"] = redact(order_to_dict(self.order))
            d["maxAllowedAmount"] = _json_num(self.maxAllowedAmount)
            d["approvedAmount"] = self.approved_amount
        if self.mode == "monitor":
            d["enforcement"] = "off: monitor mode never denies"
            d["wouldDecide"] = self.wouldDecide
        if self.errors:
            d["errors"] = list(self.errors)
        if self.notes:
            d["notes"] = list(self.notes)
        if metrics and self.metrics is not None:
            d["metrics"] = clean_metrics(self.metrics.to_dict())
        return d


def _native_decision(
    decision: str,
    decisionId: str,
    timestamp: int,
    policy: dict[Any, Any],
    account: str,
    violations: tuple[Violation, ...],
    actions: tuple[Action, ...],
    metrics: Any,
    durationUs: float,
    mode: str,
    order: Order | None,
    maxAllowedAmount: float | None,
    wouldDecide: str | None,
    errors: tuple[dict[Any, Any], ...],
    notes: tuple[str, ...],
    snapshotTimestamp: int | None,
    snapshotRef: str | None,
    _snapshot_dict: Any,
    _snapshot_digest: str | None,
) -> Decision:
    d = Decision.__new__(Decision)
    d.decision = decision
    d.decisionId = decisionId
    d.timestamp = timestamp
    d.policy = policy
    d.account = account
    d.violations = violations
    d.actions = actions
    d.metrics = metrics
    d.durationUs = durationUs
    d.mode = mode
    d.order = order
    d.maxAllowedAmount = maxAllowedAmount
    d.wouldDecide = wouldDecide
    d.errors = errors
    d.notes = notes
    d.snapshotTimestamp = snapshotTimestamp
    d.snapshotRef = snapshotRef
    d._snapshot_dict = _snapshot_dict
    d._snapshot_digest = _snapshot_digest
    return d


#: ``Decision(...)`` with all nineteen fields given in order: the engine's constructor
#: (compiled, the dataclass's ``__init__`` is interpreted; the struct is filled directly).
new_decision: Callable[..., Decision] = _native_decision if _COMPILED else Decision


def clean_metrics(m: dict[Any, Any]) -> dict[Any, Any]:
    out = {k: _json_num(v) for k, v in m.items() if k != "positions"}
    out["positions"] = [{k: _json_num(v) for k, v in p.items()} for p in m.get("positions", [])]
    return out
