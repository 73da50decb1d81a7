"""Hypothesis strategies for snapshots, orders and policies: valid and near-valid.

Valid documents are what a ccxt bot would send (finite prices, marks within ±50 % of
entry, derived tier tables, leverage up to the absurd 10,000×); near-valid ones are a
valid document with exactly one field replaced by a hostile value (NaN, a string, a huge
integer, a wrong type...). Shared by ``test_properties_engine.py`` and ``test_fuzz.py``
(and ``bench/fuzz.py`` seeds its corpus from them).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import strategies as st

from riskguard.engine.plugins import get_registry

LINEAR = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "DOGE/USDT:USDT")
INVERSE = ("BTC/USD:BTC", "ETH/USD:ETH")
EXCHANGES = ("binance", "generic", "some-unknown-exchange")

#: Values that break naive parsers: one replaces one field of a valid document.
HOSTILE: tuple[Any, ...] = (
    None,
    "",
    "text",
    "1e999",
    "nan",
    -1,
    0,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    10**400,
    True,
    [],
    {},
    [1, 2],
    {"a": {"b": None}},
    "BTC/USDT:USDT",
    "2026-13-45T99:99:99Z",
    2**63,
)

price = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=1e-6, max_value=1e5, allow_nan=False, allow_infinity=False)
money = st.floats(min_value=0.0, max_value=1e8, allow_nan=False, allow_infinity=False)
leverage = st.one_of(
    st.sampled_from([1, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125]),
    st.floats(min_value=1.0, max_value=125.0),
    st.just(10_000),  # absurd, but exchanges will not stop a snapshot from saying it
)


@st.composite
def tiers(draw) -> list[dict]:
    """A sorted, non-overlapping tier table; maintenance amounts derived (omitted)."""
    n = draw(st.integers(min_value=1, max_value=4))
    floors = [0.0]
    for _ in range(n - 1):
        floors.append(floors[-1] + draw(st.floats(min_value=100.0, max_value=1e6)))
    rates = sorted(draw(st.lists(st.floats(0.001, 0.2), min_size=n, max_size=n)))
    out = []
    for i in range(n):
        t = {"minNotional": floors[i], "maintenanceMarginRate": rates[i]}
        if i + 1 < n:
            t["maxNotional"] = floors[i + 1]
        t["maxLeverage"] = max(1.0, round(1 / (2 * rates[i]), 2))
        out.append(t)
    return out


@st.composite
def positions(draw, symbol: str, inverse: bool | None = None) -> dict:
    inv = symbol in INVERSE if inverse is None else inverse
    side = draw(st.sampled_from(["long", "short"]))
    entry = draw(price)
    mark = entry * draw(st.floats(min_value=0.5, max_value=1.5))
    contracts = draw(size)
    lev = draw(leverage)
    mode = draw(st.sampled_from(["cross", "isolated"]))
    p: dict = {
        "symbol": symbol,
        "side": side,
        "contracts": contracts,
        "entryPrice": entry,
        "markPrice": mark,
        "leverage": lev,
        "marginMode": mode,
    }
    if inv:
        p["inverse"] = True
        p["contractSize"] = draw(st.sampled_from([1.0, 10.0, 100.0]))
    if mode == "isolated":
        notional = contracts * p.get("contractSize", 1.0) * (1 / entry if inv else entry)
        p["isolatedMargin"] = notional / lev * draw(st.floats(min_value=0.5, max_value=3.0))
    if draw(st.booleans()):
        away = draw(st.floats(min_value=0.001, max_value=0.9))
        p["stopLossPrice"] = entry * (1 - away) if side == "long" else entry * (1 + away)
    if draw(st.integers(0, 4)) == 0:
        p["liquidationPrice"] = draw(st.one_of(st.just(0.0), price))
    return p


@st.composite
def snapshots(draw, max_positions: int = 4) -> dict:
    """A valid snapshot document (builds without error)."""
    exchange = draw(st.sampled_from(EXCHANGES))
    # One account, one settle currency: USDT-margined (linear) or coin-margined (inverse).
    inverse = draw(st.integers(0, 4)) == 0
    pool = INVERSE[:1] if inverse else LINEAR
    symbols = draw(st.lists(st.sampled_from(pool), unique=True, max_size=max_positions))
    doc: dict = {
        "schemaVersion": 1,
        "account": draw(st.sampled_from(["main", "sub-1", "ünïcode ✓"])),
        "exchange": exchange,
        "timestamp": draw(
            st.one_of(
                st.just("2026-11-24T12:00:00Z"),
                st.integers(min_value=0, max_value=4_102_444_800_000),
            )
        ),
        "settle": "BTC" if inverse else "USDT",
        "walletBalance": draw(money),
        "positions": [draw(positions(s)) for s in symbols],
    }
    # Markets: marks for symbols an order may use without a position, ATR sometimes.
    markets: dict = {}
    for s in draw(st.lists(st.sampled_from(pool), unique=True, max_size=3)):
        m: dict = {"markPrice": draw(price)}
        if draw(st.booleans()):
            m["atrPct"] = draw(st.floats(min_value=0.0, max_value=50.0))
        markets[s] = m
    if markets:
        doc["markets"] = markets
    tiered = [s for s in symbols if draw(st.booleans())]
    if tiered:
        doc["leverageTiers"] = {s: draw(tiers()) for s in tiered}
    if draw(st.integers(0, 3)) == 0:
        sym = draw(st.sampled_from(pool))
        doc["openOrders"] = [
            {
                "symbol": sym,
                "side": draw(st.sampled_from(["buy", "sell"])),
                "type": "limit",
                "amount": draw(size),
                "price": draw(price),
            }
        ]
    return doc


def mark_of(doc: dict, symbol: str) -> float | None:
    for p in doc.get("positions", []):
        if p["symbol"] == symbol and p.get("markPrice") is not None:
            return p["markPrice"]
    return doc.get("markets", {}).get(symbol, {}).get("markPrice")


def order_symbols(doc: dict) -> list[str]:
    """Symbols an order on ``doc`` can be priced for (a position's or a market's mark)."""
    syms = [p["symbol"] for p in doc.get("positions", [])]
    syms += [s for s in doc.get("markets", {}) if s not in syms]
    return syms or ["BTC/USDT:USDT"]


@st.composite
def orders(draw, doc: dict, amount: Any = None) -> dict:
    """A valid order for ``doc`` (its symbol is usually priceable from the snapshot)."""
    o: dict = {
        "symbol": draw(st.sampled_from(order_symbols(doc))),
        "side": draw(st.sampled_from(["buy", "sell"])),
        "type": draw(st.sampled_from(["market", "limit"])),
        "amount": draw(size) if amount is None else amount,
    }
    if o["type"] == "limit" or draw(st.booleans()):
        o["price"] = draw(price)
    if draw(st.integers(0, 3)) == 0:
        o["reduceOnly"] = True
    if draw(st.booleans()):
        o["leverage"] = draw(leverage)
    if draw(st.booleans()):
        o["marginMode"] = draw(st.sampled_from(["cross", "isolated"]))
    return o


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``obj`` (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw, base: Any, extra_keys: tuple[str, ...] = ()) -> Any:
    """``base`` with one value replaced by a hostile one, one key deleted, or one added."""
    doc = copy.deepcopy(base)
    paths = _paths(doc)
    how = draw(st.sampled_from(["replace", "delete", "add"] if paths else ["add"]))
    if how == "add" or not paths:
        key = draw(st.sampled_from((*extra_keys, "unknownField", "apiKey", "x")))
        target = doc
        if paths and draw(st.booleans()):
            p = draw(st.sampled_from(paths))
            parent = _get(doc, p)
            if isinstance(parent, dict):
                target = parent
        if isinstance(target, dict):
            target[key] = draw(st.sampled_from(HOSTILE))
        return doc
    path = draw(st.sampled_from(paths))
    parent = _get(doc, path[:-1])
    if how == "delete":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
        return doc
    parent[path[-1]] = draw(st.sampled_from(HOSTILE))
    return doc


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


# --------------------------------------------------------------------------- policies

#: Built-in rule types whose verdict can only get worse as an order grows (used by the
#: monotonicity property). Left out: duplicate_order (an *equal* order is the finding),
#: order_rate (counts orders, not size), drawdown (history), margin_mode (mode, not size).
SIZE_MONOTONE = (
    "margin_utilization",
    "stop_before_liquidation",
    "isolate_on_volatility",
    "max_leverage",
    "min_liquidation_distance",
    "risk_per_trade",
    "order_limits",
    "cross_stress",
    "trading_state",
)


def _param_value(draw, schema: dict) -> Any:
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if t == "boolean":
        return draw(st.booleans())
    if t in ("number", "integer"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        hi = schema.get("maximum", schema.get("exclusiveMaximum", max(lo, 0) + 1000))
        if t == "integer":
            lo_i = math.ceil(lo) + (1 if "exclusiveMinimum" in schema else 0)
            hi_i = int(min(hi, lo_i + 1000)) - (1 if "exclusiveMaximum" in schema else 0)
            return draw(st.integers(lo_i, max(lo_i, hi_i)))
        return draw(
            st.floats(
                lo,
                hi,
                exclude_min="exclusiveMinimum" in schema,
                exclude_max="exclusiveMaximum" in schema,
                allow_nan=False,
            )
        )
    return schema.get("default")


@st.composite
def rules(draw, rule_type: str, rule_id: str) -> dict:
    rtype = get_registry().rule_types[rule_type]
    params: dict = {}
    for name, sub in rtype.params.get("properties", {}).items():
        if not isinstance(sub, dict) or not draw(st.booleans()):
            continue  # leave it to the default
        v = _param_value(draw, sub)
        if v is not None:
            params[name] = v
    rule: dict = {
        "id": rule_id,
        "type": rule_type,
        "params": params,
        "severity": draw(st.sampled_from(["warning", "error", "critical"])),
    }
    if draw(st.integers(0, 3)) == 0:
        rule["match"] = {
            "symbols": draw(
                st.sampled_from([["*"], ["BTC/*"], ["*/USDT:USDT"], ["ETH/USDT:USDT"]])
            ),
            "marginMode": draw(st.sampled_from(["any", "cross", "isolated"])),
        }
    return rule


@st.composite
def policies(draw, types: tuple[str, ...] | None = None, mode: str | None = None) -> dict:
    """A policy document (it may still fail a rule type's cross-field check: callers
    treat PolicyError as "not a valid policy", which ``valid_policies`` filters out)."""
    known = sorted(get_registry().rule_types)
    pool = [t for t in (types or known) if t in known]
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
    return {
        "apiVersion": "riskguard/v1",
        "kind": "Policy",
        "metadata": {"name": "hypothesis", "version": "1"},
        "spec": {
            "mode": mode or draw(st.sampled_from(["enforce", "enforce", "monitor"])),
            "rules": [draw(rules(t, f"r{i}-{t}")) for i, t in enumerate(chosen)],
        },
    }
