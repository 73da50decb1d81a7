"""The rule-type contract every built-in and third-party rule implements.

A plugin registers a :class:`RuleType` through ``riskguard_rule_types(register)``. At
policy load the type's ``params`` JSON Schema is composed into the policy schema; at
compile time ``compile(spec)`` returns a rule object whose ``evaluate(ctx)`` is called
directly on the hot path. Rules are pure: they read the :class:`EvalContext` and add
violations and actions through the helpers on :class:`BaseRule`; they never do I/O.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from riskguard._compiled import mypyc_attr
from riskguard.engine.actions import Action, new_action
from riskguard.engine.context import EvalContext
from riskguard.engine.decision import Violation, new_violation
from riskguard.margin.metrics import PositionMetrics


@dataclass(frozen=True, slots=True)
class Match:
    """Which positions/orders a rule applies to: symbol globs, margin mode, side."""

    symbols: tuple[str, ...] = ("*",)
    marginMode: str = "any"  # any | cross | isolated
    side: str = "any"  # any | long | short
    exclude: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return (
            self.symbols == ("*",)
            and self.marginMode == "any"
            and self.side == "any"
            and not self.exclude
        )

    def symbol(self, symbol: str) -> bool:
        if self.exclude and any(fnmatch.fnmatchcase(symbol, p) for p in self.exclude):
            return False
        return self.symbols == ("*",) or any(fnmatch.fnmatchcase(symbol, p) for p in self.symbols)

    def position(self, pos: Any) -> bool:
        mode = self.marginMode
        if mode != "any" and pos.marginMode != mode:
            return False
        side = self.side
        if side != "any" and pos.side != side:
            return False
        if not self.exclude and self.symbols == ("*",):
            return True  # every rule matching everything asks this for every position
        return self.symbol(pos.symbol)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule of a loaded policy: validated, defaults applied."""

    id: str
    type: str
    params: dict[Any, Any]
    severity: str = "error"
    match: Match = field(default_factory=Match)
    onViolation: tuple[str, ...] | None = None  # None: the rule type's default actions
    description: str = ""
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RuleType:
    """A rule type as a plugin registers it.

    ``codes`` maps each reason code the rule can emit to a one-line description (the
    docs table is generated from it). ``check(params) -> [(json_path_suffix, message)]``
    does cross-field validation the JSON Schema cannot express. ``defaultActions`` are
    emitted on violation when a policy does not say ``onViolation``.
    """

    name: str
    params: dict[Any, Any]
    compile: Callable[[RuleSpec], Any]
    description: str
    codes: dict[str, str]
    defaultActions: tuple[str, ...] = ("alert",)
    check: Callable[[dict[Any, Any]], list[tuple[str, str]]] | None = None
    example: str = ""
    stateful: bool = False
    limitKeys: tuple[
        str, ...
    ] = ()  # params compared across rules of this type that match one symbol
    #: margin modes whose positions the rule judges (None: both); a policy whose
    #: ``match.marginMode`` names another one gets an "unreachable match" warning
    marginModes: tuple[str, ...] | None = None


# compiled by mypyc where it can be: plugins' rules subclass it in plain Python
@mypyc_attr(allow_interpreted_subclasses=True)
class BaseRule:
    """Helpers shared by rules: emit violations/actions, trace for ``explain``.

    Subclasses implement ``evaluate(ctx)``; rules that can size an order implement
    ``max_amount(ctx) -> float | None`` (None: this rule puts no bound on the amount).
    """

    __slots__ = ("actions", "id", "match", "params", "severity", "spec", "type")

    default_actions: ClassVar[tuple[str, ...]] = ("alert",)

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.id = spec.id
        self.type = spec.type
        self.params = spec.params
        self.severity = spec.severity
        self.match = spec.match
        self.actions = frozenset(
            spec.onViolation if spec.onViolation is not None else self.default_actions
        )

    def evaluate(self, ctx: EvalContext) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def violate(
        self,
        ctx: EvalContext,
        code: str,
        message: str,
        *,
        symbol: str | None = None,
        observed: Any = None,
        limit: Any = None,
        severity: str | None = None,
        scope: str | None = None,
        **context: Any,
    ) -> Violation:
        if scope is None:
            scope = "position" if symbol is not None else "account"
        v = new_violation(
            self.id,
            self.type,
            code,
            severity or self.severity,
            message,
            symbol,
            observed,
            limit,
            context,
            scope,
        )
        ctx.violations.append(v)
        if "alert" in self.actions:
            ctx.actions.append(
                new_action(
                    "alert",
                    self.id,
                    symbol,
                    {"code": code, "severity": v.severity, "message": message},
                    v.severity,
                    None,
                )
            )
        if "halt_trading" in self.actions and v.blocking:
            ctx.actions.append(
                Action(
                    "halt_trading",
                    self.id,
                    None,
                    {"state": self.params.get("haltState", "reducing")},
                    v.severity,
                )
            )
        return v

    def act(
        self,
        ctx: EvalContext,
        type_: str,
        *,
        symbol: str | None = None,
        leg: str | None = None,
        **params: Any,
    ) -> None:
        """Propose an action (if the policy lists ``type_`` in the rule's ``actions``).

        ``leg`` is the side (long | short) of the position the action is for: in a hedge-mode
        snapshot the action carries it as ``positionSide`` so an executor acts on that leg
        and not the symbol's other one; in one-way mode it is dropped.
        """
        if type_ in self.actions:
            if leg is not None and ctx.snapshot.positionMode == "hedge":
                ctx.actions.append(Action(type_, self.id, symbol, params, positionSide=leg))
            else:
                ctx.actions.append(new_action(type_, self.id, symbol, params, None, None))

    def note(
        self,
        ctx: EvalContext,
        text: str,
        *,
        symbol: str | None = None,
        passed: bool | None = None,
        **values: Any,
    ) -> None:
        """Record a step of the rule's reasoning for ``riskguard explain`` (no-op on the hot path)."""
        if ctx.trace is not None:
            ctx.trace.append(
                {
                    "rule": self.id,
                    "type": self.type,
                    "symbol": symbol,
                    "text": text,
                    "passed": passed,
                    "values": values,
                }
            )


def hedge_minor_leg(ctx: EvalContext, pm: PositionMetrics) -> bool:
    """A hedge-mode cross leg smaller than the symbol's opposite cross leg.

    Cross legs of one symbol share one liquidation price, on the side where the *net*
    exposure (the larger leg) loses: for the smaller leg that price lies where it gains.
    Its own stop cannot protect against that liquidation and reducing it only adds to the
    net exposure, so price-distance rules judge the symbol through its larger leg and
    propose nothing for this one. Equal legs: neither is minor.
    """
    if ctx.snapshot.positionMode != "hedge" or pm.marginMode != "cross":
        return False
    size = abs(pm.notional)
    return any(
        p.symbol == pm.symbol
        and p.side != pm.side
        and p.marginMode == "cross"
        and abs(p.notional) > size
        for p in ctx.metrics.positions
    )


def judged_liquidation_price(pm: PositionMetrics, source: str) -> float | None:
    """The liquidation price a rule judges against: ``model`` (riskguard's exchange model),
    ``exchange`` (the snapshot's reported figure, falling back to the model's), or
    ``conservative`` (whichever is nearer the mark). A reported price of 0 or below is
    implausible (the engine flags it) and never used.
    """
    model_lp = pm.liquidationPrice
    if source == "model":
        return model_lp
    ex = pm.exchangeLiquidationPrice if (pm.exchangeLiquidationPrice or 0) > 0 else None
    if source == "exchange" or ex is None:  # conservative with no reported price: the model's
        return ex if ex is not None else model_lp
    cands = [x for x in (model_lp, ex) if x is not None]
    if not cands:
        return None
    return max(cands) if pm.side == "long" else min(cands)
