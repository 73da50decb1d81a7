"""``margin_mode``: each symbol runs in the margin mode the policy says.

Practice (docs/trading-risk.md, "where each mode fits"): isolated for scalping,
breakouts, hedges that must not share margin and beginners; cross for long-horizon trend
books and netted hedges. The policy fixes the mode per symbol or group; drift between the
policy and the account (configured isolated, found cross) is a violation with a
``switch_margin_mode`` action whose ``feasible``/``reason`` come from the exchange model —
Binance, for one, refuses the switch while a position or order is open (-4048/-4047), and
the action then says so.

``mode`` applies to every symbol the rule matches; ``groups`` override it for symbol globs
(first matching group wins). Pre-trade, an order that opens a position must state the
required mode: a stated other mode is a violation of the order; an order that states none
cannot be judged (the symbol's exchange setting is not in the snapshot) and is denied
unless ``unstatedOrderMode: allow`` — then riskguard projects it as cross, the engine's
assumption for a new position.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from riskguard.engine.context import EvalContext
from riskguard.hookspecs import hookimpl
from riskguard.margin.metrics import order_position
from riskguard.rules.base import BaseRule, RuleSpec, RuleType

MODES = ("isolated", "cross")

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "mode": {
            "enum": list(MODES),
            "default": "isolated",
            "description": "the mode every matched symbol must run in (unless a group says otherwise)",
        },
        "groups": {
            "type": "array",
            "default": [],
            "description": "per-group modes: the first group whose globs match a symbol wins",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["symbols", "mode"],
                "properties": {
                    "name": {"type": "string"},
                    "symbols": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "minLength": 1},
                    },
                    "mode": {"enum": list(MODES)},
                },
            },
        },
        "unstatedOrderMode": {
            "enum": ["deny", "allow"],
            "default": "deny",
            "description": "an order opening a position without `marginMode`: deny (fail "
            "closed) or allow (projected as cross)",
        },
    },
}

CODES = {
    "MARGIN_MODE_MISMATCH": "a position runs in another margin mode than the policy requires",
    "MARGIN_MODE_ORDER_MISMATCH": "an order would open a position in another margin mode than required",
    "MARGIN_MODE_ORDER_UNSTATED": "an order opening a position does not state its margin mode, "
    "so it cannot be checked",
}


class MarginMode(BaseRule):
    __slots__ = ("deny_unstated", "groups", "mode")
    default_actions = ("switch_margin_mode", "alert")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        p = spec.params
        self.mode = p["mode"]
        self.groups = tuple(
            (g.get("name", ",".join(g["symbols"])), tuple(g["symbols"]), g["mode"])
            for g in p["groups"]
        )
        self.deny_unstated = p["unstatedOrderMode"] == "deny"

    def required(self, symbol: str) -> tuple[str, str]:
        """(mode, where it comes from) for ``symbol``."""
        for name, globs, mode in self.groups:
            if any(fnmatch.fnmatchcase(symbol, g) for g in globs):
                return mode, f"group {name}"
        return self.mode, "rule"

    def evaluate(self, ctx: EvalContext) -> None:
        order = ctx.order
        opening = None
        if order is not None and self.match.symbol(order.symbol):
            existing = order_position(ctx.before, order)
            if existing is None and not order.reduceOnly:
                opening = order.symbol
                self._judge_order(ctx)
        trace = ctx.trace is not None
        model = ctx.model
        for pm in ctx.metrics.positions:
            if pm.symbol == opening or not self.match.position(pm):
                continue
            need, where = self.required(pm.symbol)
            if trace:
                self.note(
                    ctx,
                    f"{pm.symbol}: {pm.marginMode} (required {need}, {where})",
                    symbol=pm.symbol,
                    passed=pm.marginMode == need,
                    found=pm.marginMode,
                    required=need,
                )
            if pm.marginMode == need:
                continue
            has_orders = any(o.symbol == pm.symbol for o in ctx.before.openOrders)
            feas = model.switch_feasibility(
                need, True, has_orders, multi_collateral=bool(ctx.before.balances)
            )
            self.violate(
                ctx,
                "MARGIN_MODE_MISMATCH",
                f"{pm.symbol}: runs {pm.marginMode}, the policy requires {need} ({where})"
                + ("" if feas.feasible else f"; {feas.reason}"),
                symbol=pm.symbol,
                observed=pm.marginMode,
                limit=need,
                required=need,
                found=pm.marginMode,
                requiredBy=where,
            )
            params: dict[Any, Any] = {"to": need, "feasible": feas.feasible, "reason": feas.reason}
            if need == "isolated":
                params["isolatedMargin"] = pm.initialMargin
            if feas.code:
                params["exchangeCode"] = feas.code
            if not feas.feasible:
                params["alternative"] = (
                    f"close the position (or let it run out) and reopen it {need}; "
                    "until then keep its stop before liquidation"
                )
            self.act(ctx, "switch_margin_mode", symbol=pm.symbol, leg=pm.side, **params)

    def _judge_order(self, ctx: EvalContext) -> None:
        order = ctx.order
        assert order is not None
        need, where = self.required(order.symbol)
        stated = order.marginMode
        if ctx.trace is not None:
            self.note(
                ctx,
                f"order opens {order.symbol} {stated or 'without a stated mode'} "
                f"(required {need}, {where})",
                symbol=order.symbol,
                passed=stated == need or (stated is None and not self.deny_unstated),
                stated=stated,
                required=need,
            )
        if stated is None:
            if self.deny_unstated:
                self.violate(
                    ctx,
                    "MARGIN_MODE_ORDER_UNSTATED",
                    f"the order opens a {order.symbol} position without stating marginMode; "
                    f"the policy requires {need} ({where}): state marginMode: {need}",
                    symbol=order.symbol,
                    observed=None,
                    limit=need,
                    scope="order",
                    required=need,
                )
            return
        if stated != need:
            self.violate(
                ctx,
                "MARGIN_MODE_ORDER_MISMATCH",
                f"the order opens a {stated} {order.symbol} position; the policy requires "
                f"{need} ({where})",
                symbol=order.symbol,
                observed=stated,
                limit=need,
                scope="order",
                required=need,
                stated=stated,
            )


RULE_TYPE = RuleType(
    name="margin_mode",
    params=PARAMS,
    compile=MarginMode,
    description="each symbol (or group of symbols) runs in the margin mode the policy requires; "
    "drift gives a switch_margin_mode action with the exchange's feasibility.",
    codes=CODES,
    defaultActions=("switch_margin_mode", "alert"),
    example="""- id: margin-mode
  type: margin_mode
  params:
    mode: isolated
    groups:
      - {name: majors, symbols: ["BTC/*", "ETH/*"], mode: cross}""",
    limitKeys=("mode",),
)


@hookimpl
def riskguard_rule_types(register: Any) -> None:
    register(RULE_TYPE)
