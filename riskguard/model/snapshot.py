"""Reading snapshots and orders from outside: validated, located, built into the model.

The data model itself is :mod:`riskguard.model.types` (re-exported here, its long-standing
import path). ``schemas/snapshot.schema.json`` and ``schemas/order.schema.json`` are the published
contract. The builders below enforce the same contract in plain Python — jsonschema is
about 50× slower, and the audit path builds millions of snapshots — and additionally
check what JSON Schema cannot say (finite numbers, sorted non-overlapping tiers).
``tests/test_snapshot.py`` checks that the two agree. Every problem is collected with
its JSON path; nothing is reported first-only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from riskguard.errors import Problem, RiskguardError, SnapshotError
from riskguard.model.fastpath import (
    _any,
    _ge0,
    _json_ok,
    _market_fast,
    _plain_extra,
    _position_fast,
)
from riskguard.model.slots import positional_constructor
from riskguard.model.types import (
    _MARKET_KEYS,
    _ORDER_KEYS,
    _POSITION_KEYS,
    _SNAPSHOT_KEYS,
    MARGIN_MODES,
    ORDER_SIDES,
    SIDES,
    LeverageTier,
    Market,
    Order,
    Position,
    Snapshot,
    format_timestamp,
    order_to_dict,
    parse_timestamp,
    position_to_dict,
    snapshot_to_dict,
)
from riskguard.model.yamlio import Located, json_path, load_file, parse_json_fast, read_text

# The data model is re-exported: ``riskguard.model.snapshot`` is where readers of the model
# have always imported it from.
__all__ = [
    "MARGIN_MODES",
    "ORDER_SIDES",
    "SIDES",
    "LeverageTier",
    "Market",
    "Order",
    "Position",
    "Snapshot",
    "build_order",
    "build_snapshot",
    "derive_tiers",
    "format_timestamp",
    "iter_snapshot_files",
    "load_order",
    "load_snapshot",
    "order_to_dict",
    "parse_timestamp",
    "position_to_dict",
    "snapshot_to_dict",
]

# --------------------------------------------------------------------------- builders


#: Every field in order, filled directly (compiled: the builder riskguard.model.types
#: registers; the dataclass's keyword ``__init__`` is interpreted and sets each frozen
#: field through ``object.__setattr__``).
_new_order = positional_constructor(Order)
_new_snapshot = positional_constructor(Snapshot)
_new_tier = positional_constructor(LeverageTier)


class _Ctx:
    __slots__ = ("loc", "problems")

    def __init__(self, loc: Located | None) -> None:
        self.problems: list[Problem] = []
        self.loc = loc

    def add(self, path: tuple[Any, ...], message: str, code: str = "invalid") -> None:
        if self.loc is not None:
            self.problems.append(self.loc.problem(path, message, code))
        else:
            self.problems.append(Problem(message, json_path(path), code))


def _num(
    ctx: _Ctx,
    d: dict[Any, Any],
    key: str,
    path: tuple[Any, ...],
    *,
    required: bool = False,
    minimum: float | None = None,
    exclusive: bool = False,
    nullable: bool = True,
) -> float | None:
    v = d.get(key)
    if v is None:
        if required or (key in d and not nullable):
            ctx.add(
                (*path, key),
                f"required: expected a number, got {'null' if key in d else 'nothing'}",
                "required",
            )
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        # Exchanges (and ccxt's raw `info`) send numbers as strings; accept clean ones.
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                ctx.add((*path, key), f"expected a number, got {v!r}", "type")
                return None
        else:
            ctx.add((*path, key), f"expected a number, got {type(v).__name__}", "type")
            return None
    if not _finite(v):
        shown = v if isinstance(v, float) else "an integer beyond the float range"
        ctx.add((*path, key), f"expected a finite number, got {shown}", "not_finite")
        return None
    if minimum is not None:
        if exclusive and v <= minimum:
            ctx.add((*path, key), f"expected a number > {minimum:g}, got {v:g}", "range")
            return None
        if not exclusive and v < minimum:
            ctx.add((*path, key), f"expected a number >= {minimum:g}, got {v:g}", "range")
            return None
    return float(v)


def _finite(v: float) -> bool:
    """math.isfinite that says False for an int too large for a float (JSON allows 1e400
    written out in full) instead of raising OverflowError."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _check_json(ctx: _Ctx, v: Any, path: tuple[Any, ...], depth: int = 0) -> None:
    """Unknown fields are kept and hashed as canonical JSON, so they must be JSON data.

    Files cannot break this (the parsers refuse NaN, dates, non-text keys); a Python
    caller can pass anything, and a NaN or a datetime there used to surface as a raw
    ValueError/TypeError when the decision was hashed. Only runs on non-empty extras.
    """
    if isinstance(v, str) or v is None or isinstance(v, bool):
        return
    if isinstance(v, int):
        if v.bit_length() > 13_000:  # ~4000 digits: beyond CPython's int/str limit
            ctx.add(path, "integer with more than 4000 digits", "limits")
        return
    if isinstance(v, float):
        if not math.isfinite(v):
            ctx.add(path, f"expected a finite number, got {v}", "not_finite")
        return
    if depth >= 64:
        ctx.add(path, "nested deeper than 64 levels", "limits")
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(k, str):
                _check_json(ctx, x, (*path, k), depth + 1)
            else:
                ctx.add(path, f"key {k!r} is not text (JSON object keys are strings)", "type")
        return
    if isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            _check_json(ctx, x, (*path, i), depth + 1)
        return
    ctx.add(path, f"expected JSON data, got {type(v).__name__}", "type")


def _str(
    ctx: _Ctx,
    d: dict[Any, Any],
    key: str,
    path: tuple[Any, ...],
    *,
    required: bool = False,
    choices: tuple[Any, ...] | None = None,
    default: str | None = None,
) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            ctx.add((*path, key), "required: expected a string", "required")
        return default
    if not isinstance(v, str):
        ctx.add((*path, key), f"expected a string, got {type(v).__name__}", "type")
        return default
    if choices is not None and v not in choices:
        ctx.add((*path, key), f"expected one of {', '.join(choices)}, got {v!r}", "enum")
        return default
    return v


def _bool(
    ctx: _Ctx, d: dict[Any, Any], key: str, path: tuple[Any, ...], default: bool = False
) -> bool:
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        ctx.add((*path, key), f"expected true or false, got {v!r}", "type")
        return default
    return v


# Times a decision can print back (format_timestamp): 0001-01-01 to 9999-12-31 UTC.
def _position(ctx: _Ctx, d: Any, path: tuple[Any, ...]) -> Position | None:
    if not isinstance(d, dict):
        ctx.add(path, f"expected a position object, got {type(d).__name__}", "type")
        return None
    n0 = len(ctx.problems)
    symbol = _str(ctx, d, "symbol", path, required=True)
    side = _str(ctx, d, "side", path, required=True, choices=SIDES)
    contracts = _num(ctx, d, "contracts", path, required=True, minimum=0, exclusive=True)
    cs = _num(ctx, d, "contractSize", path, minimum=0, exclusive=True)
    entry = _num(ctx, d, "entryPrice", path, required=True, minimum=0, exclusive=True)
    mark = _num(ctx, d, "markPrice", path, minimum=0, exclusive=True)
    lev = _num(ctx, d, "leverage", path, minimum=0, exclusive=True)
    mode = _str(ctx, d, "marginMode", path, choices=MARGIN_MODES, default="cross")
    iso = _num(ctx, d, "isolatedMargin", path, minimum=0)
    if mode == "isolated" and d.get("isolatedMargin") is None:
        ctx.add(
            (*path, "isolatedMargin"),
            "required for an isolated position: the margin assigned to it, excluding uPnL",
            "required",
        )
    inverse = _bool(ctx, d, "inverse", path)
    sl = _num(ctx, d, "stopLossPrice", path, minimum=0, exclusive=True)
    tp = _num(ctx, d, "takeProfitPrice", path, minimum=0, exclusive=True)
    # An exchange may report 0 or a negative liquidation price; keep it (rules flag it as
    # implausible) rather than rejecting the whole snapshot.
    lp = _num(ctx, d, "liquidationPrice", path)
    if len(ctx.problems) > n0:
        return None
    extra = {k: v for k, v in d.items() if k not in _POSITION_KEYS}
    if extra and not _json_ok(extra):
        _check_json(ctx, extra, path)
        if len(ctx.problems) > n0:
            return None
    return Position(
        symbol=symbol,  # type: ignore[arg-type]  # validated above
        side=side,  # type: ignore[arg-type]  # validated above
        contracts=contracts,  # type: ignore[arg-type]  # validated above
        entryPrice=entry,  # type: ignore[arg-type]
        markPrice=mark,
        leverage=lev,
        marginMode=mode or "cross",
        contractSize=1.0 if cs is None else cs,
        isolatedMargin=iso,
        inverse=inverse,
        stopLossPrice=sl,
        takeProfitPrice=tp,
        liquidationPrice=lp,
        extra=extra,
    )


def _order(ctx: _Ctx, d: Any, path: tuple[Any, ...]) -> Order | None:
    if not isinstance(d, dict):
        ctx.add(path, f"expected an order object, got {type(d).__name__}", "type")
        return None
    n0 = len(ctx.problems)
    symbol = _str(ctx, d, "symbol", path, required=True)
    side = _str(ctx, d, "side", path, required=True, choices=ORDER_SIDES)
    amount = _num(ctx, d, "amount", path, required=True, minimum=0, exclusive=True)
    otype = _str(ctx, d, "type", path, default="market")
    price = _num(ctx, d, "price", path, minimum=0, exclusive=True)
    reduce_only = _bool(ctx, d, "reduceOnly", path)
    sl = _num(ctx, d, "stopLossPrice", path, minimum=0, exclusive=True)
    lev = _num(ctx, d, "leverage", path, minimum=0, exclusive=True)
    mode = _str(ctx, d, "marginMode", path, choices=MARGIN_MODES)
    coid = d.get("clientOrderId")
    if coid is not None and not isinstance(coid, str):
        ctx.add((*path, "clientOrderId"), "expected a string", "type")
    pside = d.get("positionSide")
    if pside is not None:
        pside = _position_side(ctx, pside, (*path, "positionSide"))
    if len(ctx.problems) > n0:
        return None
    extra = {k: v for k, v in d.items() if k not in _ORDER_KEYS}
    if extra and not _json_ok(extra):
        _check_json(ctx, extra, path)
        if len(ctx.problems) > n0:
            return None
    return _new_order(
        symbol,  # validated above
        side,
        amount,
        otype or "market",  # type
        price,
        reduce_only,  # reduceOnly
        sl,  # stopLossPrice
        lev,  # leverage
        mode,  # marginMode
        coid,  # clientOrderId
        extra,
        pside,  # positionSide
    )


_TIER_NUMBERS = frozenset(
    {"minNotional", "maxNotional", "maintenanceMarginRate", "maxLeverage", "maintenanceAmount"}
)


def _tier_fast(
    t: dict[Any, Any],
) -> tuple[float, float | None, float, float | None, float | None, int | None] | None:
    """A tier whose every field is already what ``_tiers`` would accept (JSON numbers in
    range, plain extra fields, no maintenance amount to look for in ``info``), read in one
    pass; None sends it through the checks, which say what is wrong (a snapshot holds a
    tier table per symbol: tiers are most of what a full snapshot's check parses)."""
    lo = _ge0(t.get("minNotional"))
    mmr = _ge0(t.get("maintenanceMarginRate"))
    if lo is None or mmr is None or mmr >= 1:
        return None
    v = t.get("maxNotional")
    hi = None if v is None else _ge0(v)
    if v is not None and hi is None:
        return None
    v = t.get("maxLeverage")
    maxlev = None if v is None else _any(v)
    if v is not None and (maxlev is None or maxlev < 1):
        return None
    v = t.get("maintenanceAmount")
    amt = None if v is None else _any(v)
    if v is not None and amt is None:
        return None
    if amt is None and isinstance(t.get("info"), dict):
        return None  # ccxt's cum / maintAmount / mmDeduction: the full path reads them
    if _plain_extra(t, _TIER_NUMBERS) is None:
        return None
    tier_no = t.get("tier")
    return (lo, hi, mmr, maxlev, amt, tier_no if isinstance(tier_no, int) else None)


def _position_side(ctx: _Ctx, v: Any, path: tuple[Any, ...]) -> str | None:
    """An order's hedge-mode leg: long | short (ccxt/Binance spell LONG, SHORT; BOTH is one-way)."""
    if v in ("long", "short", "both", "LONG", "SHORT", "BOTH"):
        return None if v in ("both", "BOTH") else str(v).lower()
    ctx.add(path, f"expected long, short or both (or LONG, SHORT, BOTH), got {v!r}", "enum")
    return None


def _tiers(
    ctx: _Ctx, symbol: str, raw: Any, path: tuple[Any, ...]
) -> tuple[LeverageTier, ...] | None:
    if not isinstance(raw, list):
        ctx.add(path, "expected a list of tiers", "type")
        return None
    n0 = len(ctx.problems)
    parsed: list[tuple[float, float | None, float, float | None, float | None, int | None]] = []
    for i, t in enumerate(raw):
        tp = (*path, i)
        if not isinstance(t, dict):
            ctx.add(tp, "expected a tier object", "type")
            continue
        row = _tier_fast(t)
        if row is not None:
            parsed.append(row)
            continue
        lo = _num(ctx, t, "minNotional", tp, required=True, minimum=0)
        hi = _num(ctx, t, "maxNotional", tp, minimum=0)
        mmr = _num(ctx, t, "maintenanceMarginRate", tp, required=True, minimum=0)
        if mmr is not None and mmr >= 1:
            ctx.add(
                (*tp, "maintenanceMarginRate"), f"expected a rate below 1, got {mmr:g}", "range"
            )
        maxlev = _num(ctx, t, "maxLeverage", tp, minimum=1)
        amt = _num(ctx, t, "maintenanceAmount", tp)
        if amt is None:
            # ccxt keeps Binance's `cum` (and BingX's `maintAmount`) only in `info`.
            info = t.get("info")
            if isinstance(info, dict):
                for k in ("cum", "maintAmount", "mmDeduction"):
                    if info.get(k) is not None:
                        amt = _num(ctx, info, k, (*tp, "info"))
                        break
        rest = {k: v for k, v in t.items() if k not in _TIER_NUMBERS}
        if rest and not _json_ok(rest):
            _check_json(ctx, rest, tp)
        tier_no = t.get("tier")
        parsed.append((lo, hi, mmr, maxlev, amt, tier_no if isinstance(tier_no, int) else None))  # type: ignore[arg-type]
    if len(ctx.problems) > n0:
        return None
    for i in range(1, len(parsed)):
        prev, cur = parsed[i - 1], parsed[i]
        if cur[0] < prev[0]:
            ctx.add(
                (*path, i, "minNotional"),
                f"tiers must be sorted by minNotional ({cur[0]:g} after {prev[0]:g})",
                "tiers",
            )
        elif prev[1] is not None and cur[0] < prev[1]:
            ctx.add(
                (*path, i, "minNotional"),
                f"tier overlaps the previous one (starts at {cur[0]:g}, previous ends at {prev[1]:g})",
                "tiers",
            )
    for i, (lo, hi, *_rest) in enumerate(parsed):
        if hi is not None and hi <= lo:
            ctx.add(
                (*path, i, "maxNotional"), f"expected maxNotional > minNotional ({lo:g})", "range"
            )
    if len(ctx.problems) > n0:
        return None
    return derive_tiers(parsed)


def derive_tiers(rows: list[Any]) -> tuple[LeverageTier, ...]:
    """Build tiers, deriving each missing maintenance amount by Binance's recurrence."""
    out: list[LeverageTier] = []
    cum_prev = 0.0
    mmr_prev = 0.0
    for i, (lo, hi, mmr, maxlev, amt, tier_no) in enumerate(rows):
        derived = amt is None
        if derived:
            amt = 0.0 if i == 0 else lo * (mmr - mmr_prev) + cum_prev
        out.append(
            _new_tier(lo, hi, mmr, maxlev, amt, tier_no if tier_no is not None else i + 1, derived)
        )
        cum_prev, mmr_prev = amt, mmr
    return tuple(out)


def _market(ctx: _Ctx, d: Any, path: tuple[Any, ...]) -> Market | None:
    if not isinstance(d, dict):
        ctx.add(path, "expected a market object", "type")
        return None
    n0 = len(ctx.problems)
    mark = _num(ctx, d, "markPrice", path, minimum=0, exclusive=True)
    atr = _num(ctx, d, "atrPct", path, minimum=0)
    cs = _num(ctx, d, "contractSize", path, minimum=0, exclusive=True)
    candles_raw = d.get("candles")
    candles: list[Any] = []
    if candles_raw is not None:
        if not isinstance(candles_raw, list):
            ctx.add(
                (*path, "candles"),
                "expected a list of [ts, open, high, low, close, volume]",
                "type",
            )
        else:
            for i, c in enumerate(candles_raw):
                cp = (*path, "candles", i)
                if not isinstance(c, list) or len(c) < 5:
                    ctx.add(cp, "expected [timestamp, open, high, low, close, volume?]", "type")
                    continue
                for j in range(6, len(c)):
                    _check_json(ctx, c[j], (*cp, j))
                row = []
                for j, v in enumerate(c[:6]):
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
                        ctx.add((*cp, j), f"expected a finite number, got {v!r}", "type")
                        break
                    row.append(float(v))
                else:
                    _ts, o, h, lo, cl = row[:5]
                    if min(o, h, lo, cl) <= 0 or h < max(o, cl, lo) or lo > min(o, cl):
                        ctx.add(cp, "expected 0 < low <= open, close <= high", "range")
                    candles.append(tuple(row))
    if len(ctx.problems) > n0:
        return None
    extra = {k: v for k, v in d.items() if k not in _MARKET_KEYS}
    if extra and not _json_ok(extra):
        _check_json(ctx, extra, path)
        if len(ctx.problems) > n0:
            return None
    return Market(mark, atr, tuple(candles), cs, extra)


def build_snapshot(
    d: Any, loc: Located | None = None, *, leverage_tiers: dict[Any, Any] | None = None
) -> Snapshot:
    """Validate a snapshot document and build the model; raise SnapshotError listing every problem.

    ``leverage_tiers``: the document's ``leverageTiers`` already built (by this function,
    from the same value: see :mod:`riskguard.batch.tiermemo`); the value in ``d`` is not read.
    """
    ctx = _Ctx(loc)
    if not isinstance(d, dict):
        ctx.add((), f"expected a snapshot object, got {type(d).__name__}", "type")
        raise SnapshotError(ctx.problems)
    root: tuple[Any, ...] = ()
    sv = d.get("schemaVersion", 1)
    if sv != 1:
        ctx.add(
            ("schemaVersion",),
            f"expected 1 (the only version this riskguard reads), got {sv!r}",
            "enum",
        )
    wallet = _num(ctx, d, "walletBalance", root, required=True)
    exchange = _str(ctx, d, "exchange", root, default="generic")
    account = _str(ctx, d, "account", root, default="default")
    settle = _str(ctx, d, "settle", root, default="USDT")
    ts = None
    try:
        ts = parse_timestamp(d.get("timestamp"))
    except (ValueError, OverflowError) as exc:
        ctx.add(("timestamp",), f"expected ISO-8601 text or epoch milliseconds: {exc}", "format")

    markets: dict[Any, Any] = {}
    raw_markets = d.get("markets")
    if raw_markets is not None:
        if not isinstance(raw_markets, dict):
            ctx.add(("markets",), "expected an object keyed by symbol", "type")
        else:
            for sym, m in raw_markets.items():
                if not isinstance(sym, str):
                    ctx.add(("markets",), f"symbol {sym!r} is not text", "type")
                    continue
                mk = _market_fast(m) or _market(ctx, m, ("markets", sym))
                if mk is not None:
                    markets[sym] = mk

    tiers: dict[Any, Any] = {} if leverage_tiers is None else leverage_tiers
    raw_tiers = d.get("leverageTiers") if leverage_tiers is None else None
    if raw_tiers is not None:
        if not isinstance(raw_tiers, dict):
            ctx.add(("leverageTiers",), "expected an object keyed by symbol", "type")
        else:
            for sym, t in raw_tiers.items():
                if not isinstance(sym, str):
                    ctx.add(("leverageTiers",), f"symbol {sym!r} is not text", "type")
                    continue
                tt = _tiers(ctx, sym, t, ("leverageTiers", sym))
                if tt is not None:
                    tiers[sym] = tt

    positions: list[Position] = []
    raw_pos = d.get("positions", [])
    if not isinstance(raw_pos, list):
        ctx.add(("positions",), "expected a list of positions", "type")
    else:
        for i, p in enumerate(raw_pos):
            pos = _position_fast(p) or _position(ctx, p, ("positions", i))
            if pos is None:
                continue
            if pos.markPrice is None and (
                markets.get(pos.symbol) is None or markets[pos.symbol].markPrice is None
            ):
                ctx.add(
                    ("positions", i, "markPrice"),
                    f"required: no markPrice on the position and none in markets[{pos.symbol!r}]",
                    "required",
                )
                continue
            positions.append(pos)

    orders: list[Order] = []
    raw_orders = d.get("openOrders", [])
    if raw_orders is not None:
        if not isinstance(raw_orders, list):
            ctx.add(("openOrders",), "expected a list of orders", "type")
        else:
            for i, o in enumerate(raw_orders):
                order = _order(ctx, o, ("openOrders", i))
                if order is not None:
                    orders.append(order)

    mode: str = "oneway"
    balances: tuple[Any, ...] = ()
    if "positionMode" in d or "balances" in d:
        from riskguard.model.balances import read_account_forms

        mode, balances = read_account_forms(ctx, d, positions)
    extra = {k: v for k, v in d.items() if k not in _SNAPSHOT_KEYS}
    if extra and not _json_ok(extra):
        _check_json(ctx, extra, root)
    if ctx.problems:
        raise SnapshotError(ctx.problems)
    return _new_snapshot(
        wallet,  # walletBalance, validated above
        tuple(positions),
        exchange,
        account,
        settle,
        ts,  # timestamp
        tuple(orders),  # openOrders
        tiers,  # leverageTiers
        markets,
        1,  # schemaVersion
        extra,
        d,  # source
        mode,  # positionMode
        balances,
    )


def build_order(d: Any, loc: Located | None = None) -> Order:
    ctx = _Ctx(loc)
    order = _order(ctx, d, ())
    if ctx.problems or order is None:
        raise SnapshotError(ctx.problems)
    return order


def _load(path: str | Path) -> tuple[Any, Located | None]:
    p = str(path)
    if p.endswith(".json"):
        text = read_text(path)
        data = parse_json_fast(text, p)
        return data, None
    loc = load_file(path)
    return loc.data, loc


_T = TypeVar("_T")


def _load_built(src: str | Path, build: Callable[[Any, Located | None], _T]) -> _T:
    """Read a file and build it; a JSON file's problems get their line and column by
    re-parsing it as YAML only when there are problems to point at."""
    data, loc = _load(src)
    try:
        return build(data, loc)
    except SnapshotError as exc:
        if loc is None:
            from riskguard.model.yamlio import parse_text

            try:
                loc = parse_text(read_text(src), str(src))
            except RiskguardError:  # valid JSON YAML cannot read (e.g. a raw \x7f)
                raise SnapshotError(_relocate(exc.problems, None, str(src))) from None
            raise SnapshotError(_relocate(exc.problems, loc)) from None
        raise


def load_snapshot(src: str | Path | dict[Any, Any] | Snapshot) -> Snapshot:
    """A Snapshot from a file path (JSON or YAML), a dict, or a Snapshot (returned as is)."""
    if isinstance(src, Snapshot):
        return src
    if isinstance(src, dict):
        return build_snapshot(src)
    return _load_built(src, build_snapshot)


def load_order(src: str | Path | dict[Any, Any] | Order) -> Order:
    if isinstance(src, Order):
        return src
    if isinstance(src, dict):
        return build_order(src)
    return _load_built(src, build_order)


def _relocate(problems: list[Problem], loc: Located | None, file: str = "") -> list[Problem]:
    out = []
    for p in problems:
        if loc is None:
            out.append(Problem(p.message, p.path, p.code, file))
            continue
        key = _path_tuple(p.path)
        line, col = loc.mark(key)
        out.append(Problem(p.message, p.path, p.code, loc.file, line, col))
    return out


def _path_tuple(path: str) -> tuple[Any, ...]:
    import re

    out: list[Any] = []
    for m in re.finditer(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(\"(?:[^\"\\]|\\.)*\")\]", path):
        if m.group(1):
            out.append(m.group(1))
        elif m.group(2):
            out.append(int(m.group(2)))
        else:
            import json

            out.append(json.loads(m.group(3)))
    return tuple(out)


def iter_snapshot_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(
            x for x in p.rglob("*") if x.suffix in (".json", ".yaml", ".yml") and x.is_file()
        )
    return [p]
