"""Evaluate a compiled policy against a snapshot (and an order) → Decision.

Data flows one way: snapshot → enrich → metrics (projected after the order, when there
is one) → rules → decide. The hot path calls the compiled rules directly; pluggy is not
involved here.

Decision semantics:

- a violation of severity ``error`` or ``critical`` is *blocking*; ``warning``/``info``
  only report;
- without an order, any blocking violation denies (the account is in breach);
- with an order, a blocking violation denies the order when it concerns the order's
  symbol or the whole account (``symbol`` is None); hygiene findings on other positions
  are reported with their actions but do not block an unrelated order;
- if every blocking violation comes from a rule that can size the order and proposes
  ``resize_order``, the order is re-checked at the largest amount all rules allow and the
  decision is ``resize`` when that amount passes;
- a rule, enrichment plugin or input that cannot be evaluated fails **closed**: a
  ``critical`` violation with its own code, and the other rules still run and report;
- ``monitor`` mode never denies: the decision is ``allow``, ``wouldDecide`` says what
  enforcement would have done, and every decision states that enforcement is off.
"""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import fields as _dc_fields
from dataclasses import replace
from typing import Any, TypeVar

from riskguard.engine.actions import REQUIRED_FIGURES, Action, new_action
from riskguard.engine.context import EvalContext
from riskguard.engine.decision import BLOCKING as BLOCKING_SEVERITIES
from riskguard.engine.decision import (
    SEVERITY_RANK,
    Decision,
    Violation,
    new_decision,
    new_decision_id,
)
from riskguard.engine.policy import CompiledPolicy
from riskguard.margin.base import MarginModel, account_fee_model
from riskguard.margin.metrics import (
    AccountMetrics,
    apply_order,
    at_fill,
    compute_metrics,
    order_reduces,
)
from riskguard.model.snapshot import Order, Snapshot

ENGINE = "riskguard"

#: Reason codes the engine itself emits (input plausibility and faults), for the docs table.
ENGINE_CODES: dict[str, str] = {
    "INPUT_MARK_PRICE_MISSING": "a position has no mark price (nor markets[symbol].markPrice)",
    "INPUT_LIQUIDATION_PRICE_IMPLAUSIBLE": "the exchange reported a liquidation price of 0 or below",
    "INPUT_TIERS_MISSING": "a position has no leverage tiers and its margin model has no default MMR",
    "INPUT_ORDER_UNPRICEABLE": "the order has no price and the snapshot no mark for its symbol",
    "INPUT_POSITION_MODE_UNSTATED": "a long and a short on one symbol in a snapshot without "
    '"positionMode": "hedge": each is judged as a one-way position (a warning)',
    "INPUT_COLLATERAL_RATIO_UNKNOWN": "a collateral coin whose ratio (or price) the snapshot's "
    "source did not know (listed in collateralUnknown): counted at 0, never as safer (a warning)",
    "ORDER_REDUCE_ONLY_WRONG_LEG": "hedge mode: a reduce-only order names (or implies) the leg it "
    "would open or add to; the exchange rejects it",
    "MULTI_ASSETS_ISOLATED_POSITION": "an isolated position in a multi-collateral snapshot of an "
    "exchange whose multi-collateral mode is cross-only (Binance Multi-Assets, error -4168): "
    "the snapshot cannot be as stated; its isolated figures are not trusted",
    "ORDER_ISOLATED_IN_MULTI_ASSETS": "an order for isolated margin in a cross-only multi-collateral "
    "account (Binance Multi-Assets): the exchange refuses isolated there (error -4168)",
    "ACCOUNT_EQUITY_NOT_POSITIVE": "equity (wallet + uPnL) is zero or negative: the account is insolvent",
    "RULE_ERROR": "a rule raised while evaluating; the decision fails closed",
    "ENRICH_ERROR": "an enrichment plugin raised; the decision fails closed",
    "METRICS_ERROR": "the margin model (a plugin) raised computing metrics; the decision fails closed",
    "ENGINE_BOUND_BELOW_ORDER": "the decision would allow an order above the amount the rules "
    "bound it at (maxAllowedAmount); an internal inconsistency, so the decision fails closed",
    "CROSS_POOL_BELOW_MAINTENANCE": "the cross pool's equity is at or below its total maintenance margin: "
    "it is being liquidated now, whatever single liquidation prices say",
}


#: What plugin code may raise that must fail closed rather than end the process:
#: ``sys.exit()`` (SystemExit) and a KeyboardInterrupt raised *by the plugin* included.
_PLUGIN_FAULTS = (Exception, SystemExit, KeyboardInterrupt)

#: Engine findings about the account's state, not faults: like rules' state findings they
#: never block an order that only reduces exposure (an insolvent account must be able to
#: reduce).
_STATE_CODES = frozenset(
    {
        "ACCOUNT_EQUITY_NOT_POSITIVE",
        "CROSS_POOL_BELOW_MAINTENANCE",
        "INPUT_LIQUIDATION_PRICE_IMPLAUSIBLE",
        "INPUT_TIERS_MISSING",
        "MULTI_ASSETS_ISOLATED_POSITION",
    }
)


#: Engine state findings an order can cause by its size alone (so a smaller order may pass).
_RESIZABLE_STATE = frozenset({"CROSS_POOL_BELOW_MAINTENANCE"})


def _engine_violation(
    code: str, message: str, symbol: str | None = None, **context: Any
) -> Violation:
    return Violation(ENGINE, "input", code, "critical", message, symbol, None, None, context)


def _enrich(
    policy: CompiledPolicy, snapshot: Snapshot, errors: list[dict[Any, Any]], vs: list[Violation]
) -> dict[Any, Any]:
    data: dict[Any, Any] = {}
    for plugin, fn in policy.registry.enrichers:
        try:
            extra = fn(snapshot=snapshot)
            if extra and not (
                isinstance(extra, dict) and all(isinstance(f, dict) for f in extra.values())
            ):
                raise TypeError(
                    f"returned {type(extra).__name__}, expected {{symbol: {{field: value}}}}"
                )
        except _PLUGIN_FAULTS as exc:  # a plugin fault must fail closed, not crash
            errors.append({"plugin": plugin, "error": f"{type(exc).__name__}: {exc}"})
            vs.append(
                _engine_violation(
                    "ENRICH_ERROR", f"enrichment plugin {plugin} failed: {exc}", plugin=plugin
                )
            )
            continue
        if not extra:
            continue
        for sym, fields in extra.items():
            slot = data.get(sym)
            if slot is None:
                data[sym] = dict(fields)
            else:
                for k, v in fields.items():
                    slot.setdefault(k, v)
    return data


def _cross_only(snapshot: Snapshot, model: MarginModel) -> str | None:
    """The exchange's error code if this account is in a cross-only multi-collateral mode
    (Binance Multi-Assets: a ``binance`` snapshot with ``balances``), else None."""
    if not snapshot.balances:
        return None
    caps = getattr(model, "capabilities", None)
    return getattr(caps, "multiCollateralCrossOnly", None)


def _cross_only_checks(
    snapshot: Snapshot, order: Order | None, model: MarginModel, vs: list[Violation]
) -> None:
    code = _cross_only(snapshot, model)
    if code is None:
        return
    title = getattr(model, "title", snapshot.exchange)
    for p in snapshot.positions:
        if p.marginMode == "isolated":
            vs.append(
                Violation(
                    ENGINE,
                    "input",
                    "MULTI_ASSETS_ISOLATED_POSITION",
                    "critical",
                    f"{p.symbol}: an isolated {p.side} position, but {title}'s multi-collateral "
                    f"(Multi-Assets) mode is cross-only (error {code}); the snapshot cannot be "
                    "as stated — check the account's mode and the position's margin type",
                    p.symbol,
                    None,
                    None,
                    {"exchangeCode": code, "side": p.side},
                    "position",
                )
            )
    if order is not None and order.marginMode == "isolated":
        vs.append(
            Violation(
                ENGINE,
                "input",
                "ORDER_ISOLATED_IN_MULTI_ASSETS",
                "critical",
                f"{order.symbol}: the order asks for isolated margin, but {title}'s "
                f"multi-collateral (Multi-Assets) mode is cross-only; the exchange refuses "
                f"isolated there (error {code}): send it for cross margin",
                order.symbol,
                None,
                None,
                {"exchangeCode": code},
                "order",
            )
        )


def _input_checks(snapshot: Snapshot, metrics: Any, vs: list[Violation]) -> None:
    if snapshot.positionMode == "oneway" and len(snapshot.positions) > 1:
        sides: dict[str, str] = {}
        for p in snapshot.positions:
            if sides.setdefault(p.symbol, p.side) != p.side:
                vs.append(
                    Violation(
                        ENGINE,
                        "input",
                        "INPUT_POSITION_MODE_UNSTATED",
                        "warning",
                        f"{p.symbol}: a long and a short on one symbol, but the snapshot does "
                        'not say "positionMode": "hedge"; they are judged as independent '
                        "one-way positions, not as legs sharing one cross liquidation price",
                        p.symbol,
                    )
                )
                break
    unknown = snapshot.extra.get("collateralUnknown")
    for u in unknown if isinstance(unknown, list) else ():
        if isinstance(u, dict) and u.get("coin"):
            missing = str(u.get("missing") or "collateralRatio")
            vs.append(
                Violation(
                    ENGINE,
                    "input",
                    "INPUT_COLLATERAL_RATIO_UNKNOWN",
                    "warning",
                    f"{u['coin']}: the snapshot's source gave no {missing} for this collateral "
                    "coin; it counts at 0, so margin figures may understate the collateral",
                    None,
                    None,
                    None,
                    {"coin": str(u["coin"]), "amount": u.get("amount"), "missing": missing},
                )
            )
    for p in snapshot.positions:
        lp = p.liquidationPrice
        if lp is not None and lp <= 0:
            vs.append(
                _engine_violation(
                    "INPUT_LIQUIDATION_PRICE_IMPLAUSIBLE",
                    f"{p.symbol}: the exchange reports liquidation price {lp:g}; treated as unknown, not as safe",
                    p.symbol,
                    reported=lp,
                )
            )
    for pm in metrics.positions:
        if pm.tierSource == "missing":
            vs.append(
                _engine_violation(
                    "INPUT_TIERS_MISSING",
                    f"{pm.symbol}: no leverage tiers and the {pm.marginModel} model has no default "
                    "maintenance margin rate; liquidation price unknown",
                    pm.symbol,
                    model=pm.marginModel,
                )
            )
    # A pool already past liquidation can have no positive liquidation price left for some
    # position (the solver finds none), which must not read as "safe": judge the pool itself.
    cross_mm = cross_upnl = 0.0
    has_cross = False
    for pm in metrics.positions:
        if pm.marginMode == "cross" and pm.maintenanceMargin is not None:
            has_cross = True
            cross_mm += pm.maintenanceMargin
            cross_upnl += pm.unrealizedPnl
    cross_equity = metrics.crossWalletBalance + cross_upnl
    if has_cross and cross_mm > 0 and metrics.equity > 0 and cross_equity <= cross_mm:
        vs.append(
            _engine_violation(
                "CROSS_POOL_BELOW_MAINTENANCE",
                f"cross pool equity {cross_equity:.2f} {metrics.settle} is at or below its maintenance "
                f"margin {cross_mm:.2f}: the pool is being liquidated",
                None,
                crossEquity=cross_equity,
                maintenanceMargin=cross_mm,
            )
        )
    if metrics.equity <= 0 and (snapshot.positions or metrics.walletBalance < 0):
        vs.append(
            _engine_violation(
                "ACCOUNT_EQUITY_NOT_POSITIVE",
                f"equity is {metrics.equity:.2f} {metrics.settle}",
                None,
                equity=metrics.equity,
            )
        )


def _missing_marks(snapshot: Snapshot) -> list[Violation]:
    out = []
    for p in snapshot.positions:
        if snapshot.mark_price(p) is None:
            out.append(
                _engine_violation(
                    "INPUT_MARK_PRICE_MISSING",
                    f"{p.symbol}: no mark price; nothing can be judged",
                    p.symbol,
                )
            )
    return out


def _drop_garbage(ctx: EvalContext, n0: int, a0: int) -> None:
    """Remove what a rule added that is not a Violation with a known severity (or an Action),
    and raise so the caller records RULE_ERROR: an unknown severity is not blocking, so a
    plugin's ``severity="fatal"`` would otherwise allow by accident."""
    # Read as Any: compiled, a list of Violation checks each element's type, and the
    # garbage this looks for is exactly what would fail that check.
    vs: list[Any] = ctx.violations
    acts: list[Any] = ctx.actions
    bad: list[object] = [
        v for v in vs[n0:] if not isinstance(v, Violation) or v.severity not in SEVERITY_RANK
    ]
    bad += [a for a in acts[a0:] if not isinstance(a, Action)]
    if bad:
        vs[n0:] = [v for v in vs[n0:] if not any(v is b for b in bad)]
        acts[a0:] = [a for a in acts[a0:] if isinstance(a, Action)]
        x = bad[0]
        what = f"severity {x.severity!r}" if isinstance(x, Violation) else type(x).__name__
        raise TypeError(f"rule added {what} where a Violation/Action with a known severity belongs")


def _run_rules(policy: CompiledPolicy, ctx: EvalContext, errors: list[dict[Any, Any]]) -> None:
    for rule in policy.rules:
        n0, a0 = len(ctx.violations), len(ctx.actions)
        try:
            rule.evaluate(ctx)
            if len(ctx.violations) > n0 or len(ctx.actions) > a0:
                _drop_garbage(ctx, n0, a0)
        # SystemExit too: a rule calling sys.exit(0) must not end `riskguard check` with 0.
        except _PLUGIN_FAULTS as exc:  # fail closed, record, keep evaluating the rest
            errors.append({"rule": rule.id, "error": f"{type(exc).__name__}: {exc}"})
            ctx.violations.append(
                Violation(
                    rule.id,
                    rule.type,
                    "RULE_ERROR",
                    "critical",
                    f"rule {rule.id} failed: {type(exc).__name__}: {exc}",
                    None,
                    None,
                    None,
                    {"error": type(exc).__name__},
                )
            )


def blocking_violations(
    violations: list[Violation], order: Order | None, reduces: bool = False
) -> list[Violation]:
    if order is None:
        return [v for v in violations if v.blocking]
    sym = order.symbol
    if reduces:
        # Never trap a trader in a position: state findings don't block an order that
        # only reduces exposure; only checks of the order itself (scope "order") do.
        # The engine's own state findings (equity, tiers, a reported LP) are state too;
        # its faults (unpriceable order, plugin errors) still block.
        return [
            v
            for v in violations
            if v.blocking
            and (v.scope == "order" or (v.rule == ENGINE and v.code not in _STATE_CODES))
        ]
    return [
        v
        for v in violations
        if v.blocking and (v.scope == "order" or v.symbol is None or v.symbol == sym)
    ]


def _max_amount(
    policy: CompiledPolicy, ctx: EvalContext, faults: list[tuple[Any, str]] | None = None
) -> tuple[float | None, set[str]]:
    """The smallest bound any rule puts on the order's amount, and which rules bound it.

    A sizing hook that raises (``sys.exit`` included) or returns garbage (text, a bool,
    NaN) bounds the order at 0 and, with ``faults``, is recorded there as
    ``(rule, message)`` so the caller fails closed with ``RULE_ERROR``."""
    best: float | None = None
    bounded: set[str] = set()
    for rule in _sizers(policy):
        # A rule that can only warn does not bound what an order may be.
        if rule.severity not in BLOCKING_SEVERITIES:
            continue
        try:
            m = rule.max_amount(ctx)
        except _PLUGIN_FAULTS as exc:  # a rule that cannot size bounds at 0 and fails closed
            if faults is not None:
                faults.append((rule, f"max_amount raised {type(exc).__name__}: {exc}"))
            m = 0.0
        if m is None:
            continue
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m != m:
            if faults is not None:
                what = f"{type(m).__name__} {str(m)[:40]!r}"
                faults.append((rule, f"max_amount returned {what}, expected a number or None"))
            m = 0.0  # garbage (text, NaN) from a plugin: the order cannot be sized
        bounded.add(rule.id)
        m = max(0.0, m)
        if best is None or m < best:
            best = m
    return best, bounded


def _sizers(policy: Any) -> list[Any]:
    """The policy's rules that bound an order's amount (a ``max_amount`` method), once per
    compiled policy: asking every rule each time raised and caught an AttributeError per
    rule without one."""
    return _per_policy(
        _SIZERS,
        policy,
        lambda: [r for r in policy.rules if getattr(r, "max_amount", None) is not None],
    )


_SIZERS: dict[int, tuple[Any, Any]] = {}
_T = TypeVar("_T")


def _per_policy(table: dict[int, tuple[Any, Any]], policy: Any, build: Callable[[], _T]) -> _T:
    """``build()``, computed once per compiled policy and kept in ``table`` (the table holds
    policies weakly, so a reloaded one is freed as before)."""
    hit = table.get(id(policy))
    if hit is not None and hit[0]() is policy:
        cached: _T = hit[1]
        return cached
    if len(table) > 64:  # policies reloaded many times: keep the table small
        table.clear()
    value = build()
    with contextlib.suppress(TypeError):  # not weakly referenceable: not cached
        table[id(policy)] = (weakref.ref(policy), value)
    return value


def _floor_amount(x: float) -> float:
    """Round an amount down to 8 significant digits so the resized order is never above the bound."""
    if x < 1e-300 or not math.isfinite(x):  # below 1e-300 the scale overflows a float
        return 0.0
    scale: float = 10 ** (7 - math.floor(math.log10(x)))
    return math.floor(x * scale) / scale


def _evaluate_once(
    policy: CompiledPolicy,
    snapshot: Snapshot,
    order: Order | None,
    model: MarginModel,
    market_data: dict[Any, Any],
    now_ms: int,
    state: Any,
    trace: list[Any] | None,
    errors: list[dict[Any, Any]],
    previews: bool = True,
) -> EvalContext:
    vs: list[Violation] = []
    if order is not None:
        try:
            projected = apply_order(snapshot, order)
        except ValueError as exc:  # no price; or an order the exchange would refuse
            code = getattr(exc, "code", "INPUT_ORDER_UNPRICEABLE")
            vs.append(_engine_violation(code, str(exc), order.symbol))
            projected = snapshot
        metrics = compute_metrics(projected, model)
        ctx = EvalContext(
            projected,
            metrics,
            model,
            order=order,
            before=snapshot,
            metrics_before=None,
            market_data=market_data,
            now_ms=now_ms,
            state=state,
            trace=trace,
            previews=previews,
        )
    else:
        metrics = compute_metrics(snapshot, model)
        ctx = EvalContext(
            snapshot,
            metrics,
            model,
            market_data=market_data,
            now_ms=now_ms,
            state=state,
            trace=trace,
            previews=previews,
        )
    _input_checks(ctx.snapshot, metrics, vs)
    _cross_only_checks(snapshot, order, model, vs)
    ctx.violations.extend(vs)
    _run_rules(policy, ctx, errors)
    return ctx


def evaluate(
    policy: CompiledPolicy,
    snapshot: Snapshot,
    order: Order | None = None,
    *,
    now_ms: int | None = None,
    state: Any = None,
    trace: list[Any] | None = None,
    ref: str | None = None,
    previews: bool = True,
) -> Decision:
    """Evaluate ``policy`` on ``snapshot`` (and ``order``) and decide. Never raises on bad data.

    ``previews=False`` leaves out advisory what-if figures (see :class:`EvalContext`); the
    decision, its findings and its executable actions are the same."""
    t0 = time.perf_counter_ns()
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if state is None:
        state = {}
    model = policy.registry.margin_model(snapshot.exchange)
    errors: list[dict[Any, Any]] = []
    notes: list[str] = []
    if snapshot.exchange not in policy.registry.margin_models:
        notes.append(
            f"no margin model for exchange {snapshot.exchange!r}: used 'generic' (approximate)"
        )

    missing = _missing_marks(snapshot)
    if missing:
        return _finish(
            policy, snapshot, order, missing, [], None, errors, notes, now_ms, t0, ref, None, "deny"
        )

    pre: list[Violation] = []
    market_data = _enrich(policy, snapshot, errors, pre)
    # A resting limit order is judged as the account will be when it fills (metrics.at_fill);
    # everything else sees the snapshot itself.
    judged = snapshot if order is None else at_fill(snapshot, order)
    try:
        if model.takerFeeInTrigger and "takerFeeRate" in snapshot.extra:
            model = account_fee_model(model, snapshot)  # rules see the account's rate too
        ctx = _evaluate_once(
            policy, judged, order, model, market_data, now_ms, state, trace, errors, previews
        )
    except _PLUGIN_FAULTS as exc:  # margin-model plugin fault: fail closed
        errors.append({"engine": "metrics", "error": f"{type(exc).__name__}: {exc}"})
        v = _engine_violation(
            "METRICS_ERROR",
            f"metrics failed in the {model.name!r} margin model: {type(exc).__name__}: {exc}",
            model=model.name,
        )
        return _finish(
            policy, snapshot, order, [*pre, v], [], None, errors, notes, now_ms, t0, ref,
            0.0 if order is not None else None, "deny",
        )  # fmt: skip
    violations = pre + ctx.violations
    actions = ctx.actions
    reduces = order is not None and order_reduces(judged, order)
    blocking = blocking_violations(violations, order, reduces)

    max_allowed = None
    outcome = "deny" if blocking else "allow"
    if order is not None:
        faults: list[tuple[Any, str]] = []
        max_allowed, bounded = _max_amount(policy, ctx, faults)
        for rule, msg in faults:  # a sizing hook that fails fails the decision closed
            errors.append({"rule": rule.id, "error": msg})
            v = Violation(
                rule.id, rule.type, "RULE_ERROR", "critical", f"rule {rule.id} failed: {msg}",
                order.symbol, None, None, {"error": "max_amount"}, "order",
            )  # fmt: skip
            violations.append(v)
            blocking.append(v)
            outcome = "deny"
        if max_allowed is not None and 0 < max_allowed < math.inf:
            # One precision for every decision (a resize's amount is floored too), so a
            # stream of answers never shows the same bound at two precisions.
            max_allowed = _floor_amount(max_allowed)
        if blocking and not errors and not pre:
            resizers = {r.id for r in policy.rules if "resize_order" in r.actions} & bounded
            # A pool pushed past maintenance by the order itself is fixed by a smaller order
            # too: the bisection in _try_resize re-judges it at every candidate amount.
            if (
                resizers
                and all(v.rule in resizers or v.code in _RESIZABLE_STATE for v in blocking)
                and any(v.rule in resizers for v in blocking)
                and max_allowed is not None
            ):
                amount = _floor_amount(min(max_allowed, order.amount))
                outcome, amount = _try_resize(
                    policy, judged, order, model, market_data, now_ms, state, amount
                )
                if outcome == "resize":
                    max_allowed = amount
                    actions = [
                        *actions,
                        Action(
                            "resize_order",
                            next(iter(sorted({v.rule for v in blocking if v.rule in resizers}))),
                            order.symbol,
                            {"amount": amount, "requested": order.amount},
                        ),
                    ]
    return _finish(
        policy,
        snapshot,
        order,
        violations,
        actions,
        ctx.metrics,
        errors,
        notes,
        now_ms,
        t0,
        ref,
        max_allowed,
        outcome,
    )


def _try_resize(
    policy: CompiledPolicy,
    snapshot: Snapshot,
    order: Order,
    model: MarginModel,
    market_data: dict[Any, Any],
    now_ms: int,
    state: Any,
    amount: float,
) -> tuple[str, float]:
    """Check the order at ``amount``; shrink by bisection if the closed-form bound was optimistic."""
    lo, hi = 0.0, amount
    for i in range(24):
        cand = hi if i == 0 else _floor_amount((lo + hi) / 2)
        if cand <= 0:
            break
        ctx = _evaluate_once(
            policy,
            snapshot,
            replace(order, amount=cand),
            model,
            market_data,
            now_ms,
            dict(state) if isinstance(state, dict) else state,
            None,
            [],
            False,  # only whether it blocks is read: no advisory previews
        )
        if not blocking_violations(ctx.violations, order, order_reduces(snapshot, order)):
            if i == 0:
                return "resize", cand
            lo = cand
        else:
            hi = cand
        if i > 0 and hi - lo <= 1e-6 * amount:
            break
    if lo > 0:
        return "resize", lo
    return "deny", 0.0


def _finite(x: Any) -> bool:
    """No NaN/±inf anywhere in ``x`` (floats in dicts, lists and tuples, at any depth)."""
    t = type(x)
    if t is float:
        return bool(x - x == 0)
    if t is dict:
        return _finite_items(x.values())
    if t is list or t is tuple:
        return _finite_items(x)
    return True


def _finite_items(items: Any) -> bool:
    # the hot path (every action's params, every finding's context): leaves inline,
    # recursion only into containers
    for v in items:
        tv = type(v)
        if tv is float:
            f: float = v  # compiled: unboxed, the test is C arithmetic
            if f - f != 0.0:
                return False
        elif (tv is dict or tv is list or tv is tuple) and not _finite(v):
            return False
    return True


def _clean(x: Any) -> Any:
    """``x`` with every non-finite float (at any depth) replaced by None."""
    t = type(x)
    if t is float:
        return x if x - x == 0 else None
    if t is dict:
        return {k: _clean(v) for k, v in x.items()}
    if t is list or t is tuple:
        return t(_clean(v) for v in x)
    return x


def _is_finite_number(x: Any) -> bool:
    return type(x) in (int, float) and x - x == 0


def _finite_params(a: Action) -> bool:
    return _finite(a.params)


def _drop_non_finite(a: Action) -> Action:
    """An action whose figure overflowed (absurd sizes or prices): leave the figure out
    rather than propose inf/NaN to a bot or break the decision's JSON (nested figures,
    such as a list of effects, become null)."""
    ok = {k: _clean(v) for k, v in a.params.items() if type(v) is not float or v - v == 0}
    return replace(a, params=ok)


# ``Action`` rebuilt positionally on the hot path only while these are its fields (a field
# added upstream then costs speed, never correctness).
_ACTION_FIELDS = tuple(f.name for f in _dc_fields(Action)) == (
    "type",
    "rule",
    "symbol",
    "params",
    "severity",
    "positionSide",
)


_CONFIGURED: dict[int, tuple[Any, Any]] = {}


def _configured_severity(policy: Any) -> dict[str, str]:
    """Each rule's configured severity, by rule id (once per compiled policy)."""
    return _per_policy(_CONFIGURED, policy, lambda: {r.id: r.severity for r in policy.rules})


def _with_severity(actions: list[Any], violations: list[Any], policy: Any) -> list[Any]:
    """Give each action the severity of what proposed it (``riskguard.actions``)."""
    if not actions or all(a.severity is not None for a in actions):
        return actions
    rank = SEVERITY_RANK
    worst: dict[tuple[str, str | None], str] = {}
    for v in violations:
        sev = v.severity
        r = rank.get(sev)
        if r is None:
            continue
        for key in ((v.rule, v.symbol), (v.rule, "*")):
            cur = worst.get(key)
            if cur is None or r > rank[cur]:
                worst[key] = sev
    configured = _configured_severity(policy)
    out = []
    for a in actions:
        if a.severity is None:
            sev = (
                worst.get((a.rule, a.symbol))
                or worst.get((a.rule, "*"))
                or configured.get(a.rule)
                or ("critical" if a.rule == ENGINE else None)
            )
            if type(a) is Action and _ACTION_FIELDS:  # replace() without its field walk
                a = new_action(a.type, a.rule, a.symbol, a.params, sev, a.positionSide)
            else:
                a = replace(a, severity=sev)
        out.append(a)
    return out


def _merge_stops(actions: list[Any], snapshot: Snapshot) -> list[Any]:
    """One ``set_stop_loss`` per position: the most protective of those the rules propose.

    Several rules may each want a stop (before liquidation, within the risk budget); a bot
    can place only one, and the one nearest the mark on the protective side satisfies
    every rule that asked for a looser one. The merged action names all of them.

    A position is a (symbol, leg): in hedge mode each stop names its leg (``positionSide``)
    and stops merge per leg, never across legs (a long's stop below the mark and a short's
    above it protect different positions). A leg-less stop on a symbol held both ways (a
    custom rule that does not name the leg) cannot be told apart and is left unmerged.
    """
    Key = tuple[str, str | None]
    # The common case first: no position has two stops, nothing to merge (no lists built).
    seen: set[Key] = set()
    for a in actions:
        if a.type == "set_stop_loss" and a.symbol is not None and "price" in a.params:
            key = (a.symbol, a.positionSide)
            if key in seen:
                break
            seen.add(key)
    else:
        return actions
    stops: dict[Key, list[Action]] = {}
    for a in actions:
        if a.type == "set_stop_loss" and a.symbol is not None and "price" in a.params:
            stops.setdefault((a.symbol, a.positionSide), []).append(a)
    sides: dict[str, set[str]] = {}
    for p in snapshot.positions:
        sides.setdefault(p.symbol, set()).add(p.side)
    keep: dict[Key, Action] = {}
    for key, group in stops.items():
        sym, leg = key
        held = sides.get(sym, set())
        if leg is None and len(held) > 1:
            continue  # both legs held, the stops do not say which: merging could drop one
        if len(group) == 1:
            keep[key] = group[0]
            continue
        side = leg if leg is not None else next(iter(held), "long")
        best = (
            max(group, key=lambda a: a.params["price"])
            if side == "long"
            else min(group, key=lambda a: a.params["price"])
        )
        rules = sorted({a.rule for a in group})
        sevs = [a.severity for a in group if a.severity in SEVERITY_RANK]
        sev = max(sevs, key=SEVERITY_RANK.__getitem__) if sevs else None
        keep[key] = Action(
            best.type, best.rule, sym, {**best.params, "rules": rules}, sev, positionSide=leg
        )
    out: list[Any] = []
    done: set[Key] = set()
    for a in actions:
        if a.type == "set_stop_loss" and a.symbol is not None and "price" in a.params:
            key = (a.symbol, a.positionSide)
            if key in keep:
                if key not in done:
                    out.append(keep[key])
                    done.add(key)
                continue
        out.append(a)
    return out


def _finish(
    policy: CompiledPolicy,
    snapshot: Snapshot,
    order: Order | None,
    violations: list[Violation],
    actions: list[Action],
    metrics: AccountMetrics | None,
    errors: list[dict[Any, Any]],
    notes: list[str],
    now_ms: int,
    t0: int,
    ref: str | None,
    max_allowed: float | None,
    outcome: str,
) -> Decision:
    if outcome == "deny" and order is not None:
        blockers = blocking_violations(violations, order, order_reduces(snapshot, order)) or [
            v for v in violations if v.blocking
        ]
        actions = [
            *actions,
            Action(
                "block_order",
                blockers[0].rule if blockers else ENGINE,
                order.symbol,
                {"reasons": [v.reason() for v in blockers]},
            ),
        ]
    if (
        outcome == "allow"
        and order is not None
        and max_allowed is not None
        and not max_allowed >= order.amount * (1 - 1e-9)
    ):
        # Invariant: never allow an order above the bound the rules themselves put on it.
        v = _engine_violation(
            "ENGINE_BOUND_BELOW_ORDER",
            f"the rules bound {order.symbol} at {max_allowed:g} but the order is for "
            f"{order.amount:g}; failing closed",
            order.symbol,
            maxAllowedAmount=max_allowed,
            amount=order.amount,
        )
        v = replace(v, scope="order")
        violations = [*violations, v]
        errors = [*errors, {"engine": "ENGINE_BOUND_BELOW_ORDER", "error": v.message}]
        outcome = "deny"
        actions = [
            *actions,
            Action("block_order", ENGINE, order.symbol, {"reasons": [v.reason()]}),
        ]
    if not all(_finite_items(a.params.values()) for a in actions):
        kept = []
        for a in actions:
            if _finite_params(a):
                kept.append(a)
            elif all(_is_finite_number(a.params.get(k)) for k in REQUIRED_FIGURES.get(a.type, ())):
                kept.append(_drop_non_finite(a))
            else:
                notes = [
                    *notes,
                    f"{a.type} for {a.symbol or 'the account'} not proposed: its "
                    f"{'/'.join(REQUIRED_FIGURES[a.type])} is not a finite number",
                ]
        actions = kept
    if not all(_finite(v.context) for v in violations):
        violations = [
            v if _finite(v.context) else replace(v, context=_clean(v.context)) for v in violations
        ]
    actions = _with_severity(actions, violations, policy)
    actions = _merge_stops(actions, snapshot)
    would = outcome
    if policy.mode == "monitor":
        outcome = "allow"
    return new_decision(
        outcome,  # decision
        new_decision_id(now_ms),  # decisionId
        now_ms,  # timestamp
        policy.ref,
        snapshot.account,
        tuple(violations),
        tuple(actions),
        metrics,
        (time.perf_counter_ns() - t0) / 1000.0,  # durationUs
        policy.mode,
        order,
        max_allowed,  # maxAllowedAmount
        would if policy.mode == "monitor" else None,  # wouldDecide
        tuple(errors),
        tuple(notes),
        snapshot.timestamp,  # snapshotTimestamp
        ref,  # snapshotRef
        snapshot.to_dict,  # _snapshot_dict
        None,  # _snapshot_digest
    )
