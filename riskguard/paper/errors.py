"""Refusals of the paper exchange, raised as ccxt's own exception classes.

A bot written against ccxt catches ``ccxt.InsufficientFunds``, ``ccxt.InvalidOrder``,
``ccxt.OperationRejected`` … and reads the exchange's code from the message; the paper
exchange raises exactly those. For the Binance model the class is the one ccxt itself
maps the Binance code to (``binanceusdm.describe()["exceptions"]``, linear section first),
and the message has ccxt's shape for Binance errors, ``binanceusdm {"code":-4048,"msg":…}``.
For the other models the code is the one riskguard's capability facts name where they
know it (``riskguard/margin/<exchange>.py``), otherwise the message carries no code.

ccxt is imported here, lazily: ``riskguard.paper`` itself imports without it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

#: refusal kind -> (Binance code, Binance message, ccxt class used without a code)
BINANCE: dict[str, tuple[str, str]] = {
    "margin_mode_position": ("-4048", "Margin type cannot be changed if there exists position."),
    "margin_mode_orders": ("-4047", "Margin type cannot be changed if there exists open orders."),
    "insufficient_margin": ("-2019", "Margin is insufficient."),
    "reduce_only": ("-2022", "ReduceOnly Order is rejected."),
    "position_side": ("-4061", "Order's position side does not match user's setting."),
    "immediate_trigger": ("-2021", "Order would immediately trigger."),
    "order_not_found": ("-2011", "Unknown order sent."),
    "bad_symbol": ("-1121", "Invalid symbol."),
    "isolated_insufficient": ("-4051", "Isolated balance insufficient."),
    "no_position": ("-4054", "Cannot add position margin: position is 0."),
    "bad_request": ("-1102", "Mandatory parameter was not sent, was empty/null, or malformed."),
}

#: the ccxt class for a refusal where the exchange's own code is not known
GENERIC_CLASS = {
    "margin_mode_position": "OperationRejected",
    "margin_mode_orders": "OperationRejected",
    "insufficient_margin": "InsufficientFunds",
    "reduce_only": "InvalidOrder",
    "position_side": "OperationRejected",
    "immediate_trigger": "OrderImmediatelyFillable",
    "order_not_found": "OrderNotFound",
    "bad_symbol": "BadSymbol",
    "isolated_insufficient": "InsufficientFunds",
    "no_position": "OperationRejected",
    "bad_request": "BadRequest",
}


def ccxt_module() -> Any:
    try:
        import ccxt
    except ImportError as exc:
        raise ImportError(
            "the paper exchange raises ccxt's exception classes: pip install 'riskguard[paper]'"
        ) from exc
    return ccxt


@cache
def _binance_table() -> dict[str, Any]:
    ccxt = ccxt_module()
    exc = ccxt.binanceusdm().describe()["exceptions"]
    table = dict(exc.get("exact") or {})
    table.update((exc.get("linear") or {}).get("exact") or {})
    return table


def refusal(
    exchange_id: str, model: str, kind: str, detail: str = "", code: str | None = None
) -> Exception:
    """The ccxt exception a real exchange of ``model`` would raise for ``kind``."""
    ccxt = ccxt_module()
    msg = detail
    if model == "binance" and kind in BINANCE:
        code, text = BINANCE[kind]
        cls = _binance_table().get(code) or getattr(ccxt, GENERIC_CLASS[kind])
        msg = text + (f" ({detail})" if detail else "")
    else:
        cls = getattr(ccxt, GENERIC_CLASS.get(kind, "ExchangeError"))
    body: dict = {}
    if code is not None:
        body["code"] = int(code) if code.lstrip("-").isdigit() else code
    body["msg"] = msg
    return cls(f"{exchange_id} {json.dumps(body, separators=(',', ':'))}")
