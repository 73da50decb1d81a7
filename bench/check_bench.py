"""Pre-trade check speed: ``Guard.check`` of ``policies/default.yaml`` against the same
decision written by hand in Python, in CEL and in OPA Rego — side by side, in one run.

    python bench/check_bench.py                  # the README table
    python bench/check_bench.py --quick          # fewer runs, for a smoke test
    python bench/check_bench.py --profile        # where one 10-position check spends its time

Every figure is the median of many timed runs of one decision (``--runs``), after a
warm-up. The account is a Binance one-way book of N linear positions (half cross, half
isolated, three leverage tiers each, a stop on every position, ATR% given per market)
and the order adds to an existing cross position. Before timing, the benchmark checks
that all four implementations reach the same decision: outcome, violation codes and
the largest allowed amount.

What each competitor does (all of it, per decision):

- **hand-written Python**: project the order, compute uPnL, tiered maintenance margin,
  equity, utilization and each position's Binance liquidation price (tier iteration, cross
  pool), then the three rules and the decision. It covers only what the benchmark account
  needs (linear, Binance, add-to or open a position); the guard covers everything.
- **CEL** (``common-expression-language``, cel-rust): one compiled expression over the
  snapshot and order as maps; ``sum`` is a host function (CEL has no fold), let-bindings
  are written ``[x].map(v, …)[0]`` (this CEL has no ``cel.bind``).
- **Rego** (``regopy``, rego-cpp): one module; the snapshot and order are set as input and
  ``data.riskguard.engine.decision`` is queried.

The guard is timed on ``Snapshot``/``Order`` objects built in code (a bot's case) and on
dicts (validated at the boundary, as from JSON); CEL and Rego take dicts, their native
input, so their times include handing the input over.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import platform
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskguard import Guard, Order, Snapshot  # noqa: E402
from riskguard.model.snapshot import LeverageTier, Market, Position, build_snapshot  # noqa: E402

POLICY = ROOT / "policies" / "default.yaml"
TS = "2026-11-24T12:00:00Z"
TS_MS = 1795521600000  # TS in epoch ms
MAX_UTIL, WARN_UTIL = 0.35, 0.30
BUF_FRACTION, BUF_PCT = 0.10, 0.5
ATR_ABOVE = 5.0
EVENTS = (  # the default policy's windows: (name, start ms, end ms)
    ("FOMC rate decision", 1797447600000 - 60 * 60_000, 1797447600000 + 120 * 60_000),
    ("US CPI", 1796909400000 - 30 * 60_000, 1796909400000 + 60 * 60_000),
)

# --------------------------------------------------------------------------- the account

TIERS = [  # notional floors/caps, MMR, cum (Binance-style, continuous)
    (0.0, 10_000.0, 0.004, 0.0),
    (10_000.0, 50_000.0, 0.005, 10.0),
    (50_000.0, 1e12, 0.01, 260.0),
]


def account_doc(n: int) -> tuple[dict, dict]:
    """A snapshot dict with ``n`` positions and an order adding to the first cross long."""
    positions, tiers, markets = [], {}, {}
    for i in range(n):
        sym = f"C{i:03d}/USDT:USDT"
        px = 50.0 + 7.0 * i
        long = i % 4 != 3
        iso = i % 2 == 1
        qty = round(4_000.0 * (1 + i % 5) / px, 6)  # notionals 4k..20k: tiers 1 and 2
        lev = 10.0
        mark = px * (1.01 if long else 0.99)
        pos = {
            "symbol": sym,
            "side": "long" if long else "short",
            "contracts": qty,
            "contractSize": 1.0,
            "entryPrice": px,
            "markPrice": mark,
            "leverage": lev,
            "marginMode": "isolated" if iso else "cross",
            "stopLossPrice": px * (0.95 if long else 1.05),
        }
        if iso:
            pos["isolatedMargin"] = qty * px / lev
        positions.append(pos)
        tiers[sym] = [
            {
                "minNotional": lo,
                "maxNotional": hi,
                "maintenanceMarginRate": mmr,
                "maxLeverage": 50.0,
                "maintenanceAmount": cum,
            }
            for lo, hi, mmr, cum in TIERS
        ]
        markets[sym] = {"markPrice": mark, "atrPct": 1.5 + (i % 3)}
    doc = {
        "schemaVersion": 1,
        "account": f"bench-{n}",
        "exchange": "binance",
        "timestamp": TS,
        "settle": "USDT",
        "walletBalance": 50_000.0 * n / 10,
        "positions": positions,
        "leverageTiers": tiers,
        "markets": markets,
    }
    first = positions[0]
    order = {
        "symbol": first["symbol"],
        "side": "buy",
        "type": "limit",
        "amount": round(first["contracts"] / 4, 6),
        "price": first["markPrice"],
        "leverage": 10.0,
    }
    return doc, order


def account_objects(n: int) -> tuple[Snapshot, Order]:
    """The same account built in code, as a bot holding ccxt data would (no validation)."""
    doc, o = account_doc(n)
    positions = tuple(
        Position(
            symbol=p["symbol"],
            side=p["side"],
            contracts=p["contracts"],
            entryPrice=p["entryPrice"],
            markPrice=p["markPrice"],
            leverage=p["leverage"],
            marginMode=p["marginMode"],
            contractSize=p["contractSize"],
            isolatedMargin=p.get("isolatedMargin"),
            stopLossPrice=p["stopLossPrice"],
        )
        for p in doc["positions"]
    )
    tiers = {
        sym: tuple(
            LeverageTier(
                t["minNotional"],
                t["maxNotional"],
                t["maintenanceMarginRate"],
                t["maxLeverage"],
                t["maintenanceAmount"],
                k + 1,
            )
            for k, t in enumerate(ts)
        )
        for sym, ts in doc["leverageTiers"].items()
    }
    markets = {
        s: Market(markPrice=m["markPrice"], atrPct=m["atrPct"]) for s, m in doc["markets"].items()
    }
    snap = Snapshot(
        walletBalance=doc["walletBalance"],
        positions=positions,
        exchange="binance",
        account=doc["account"],
        settle="USDT",
        timestamp=TS_MS,
        leverageTiers=tiers,
        markets=markets,
    )
    order = Order(
        symbol=o["symbol"],
        side=o["side"],
        amount=o["amount"],
        type=o["type"],
        price=o["price"],
        leverage=o["leverage"],
    )
    return snap, order


# --------------------------------------------------------------------------- (a) by hand


def _tier(tiers, x):
    chosen = tiers[0]
    for t in tiers:
        if t.minNotional <= x:
            chosen = t
        else:
            break
    return chosen


def _lp(q, sg, ep, tiers, mark, wb, t1, u1):
    """Binance one-way linear LP with tier iteration (the benchmark's tiers are consistent)."""
    tier = _tier(tiers, q * mark)
    for _ in range(len(tiers) + 1):
        den = q * tier.maintenanceMarginRate - sg * q
        if den == 0:
            return None
        lp = (wb - t1 + u1 + tier.maintenanceAmount - sg * q * ep) / den
        if lp <= 0:
            return None
        nxt = _tier(tiers, q * lp)
        if nxt is tier:
            return lp
        tier = nxt
    return lp


def hand_check(s: Snapshot, o: Order) -> tuple[str, list[str], float | None]:
    """The default policy's decision for the benchmark's kind of account, written by hand."""
    price = o.price
    positions = list(s.positions)
    existing = None
    for i, p in enumerate(positions):
        if p.symbol == o.symbol:
            existing = i
            break
    if existing is None:
        mark = s.markets[o.symbol].markPrice
        lev = o.leverage or 1.0
        mode = o.marginMode or "cross"
        positions.append(
            Position(
                o.symbol,
                "long" if o.side == "buy" else "short",
                o.amount,
                price,
                mark,
                lev,
                mode,
                1.0,
                o.amount * price / lev if mode == "isolated" else None,
                stopLossPrice=o.stopLossPrice,
            )
        )
    else:
        p = positions[existing]
        total = p.contracts + o.amount
        iso = p.isolatedMargin
        if p.marginMode == "isolated":
            iso = (iso or 0.0) + o.amount * p.contractSize * price / (
                o.leverage or p.leverage or 1.0
            )
        positions[existing] = replace(
            p,
            contracts=total,
            entryPrice=(p.entryPrice * p.contracts + price * o.amount) / total,
            isolatedMargin=iso,
            stopLossPrice=o.stopLossPrice or p.stopLossPrice,
        )
    # metrics before the order (utilization only) and after it (everything)
    im0 = up0 = 0.0
    for p in s.positions:
        q = p.contracts * p.contractSize
        up0 += (1 if p.side == "long" else -1) * q * (p.markPrice - p.entryPrice)
        im0 += p.isolatedMargin if p.marginMode == "isolated" else q * p.markPrice / p.leverage
    eq0 = s.walletBalance + up0
    rows = []
    iso_total = cross_mm = cross_up = up = im = 0.0
    for p in positions:
        q = p.contracts * p.contractSize
        sg = 1 if p.side == "long" else -1
        u = sg * q * (p.markPrice - p.entryPrice)
        tiers = s.leverageTiers[p.symbol]
        t = _tier(tiers, q * p.markPrice)
        mm = max(q * p.markPrice * t.maintenanceMarginRate - t.maintenanceAmount, 0.0)
        up += u
        if p.marginMode == "isolated":
            iso_total += p.isolatedMargin
            im += p.isolatedMargin
        else:
            cross_mm += mm
            cross_up += u
            im += q * p.markPrice / p.leverage
        rows.append((p, q, sg, u, mm, tiers))
    equity = s.walletBalance + up
    cross_wallet = s.walletBalance - iso_total
    codes: list[tuple[str, str | None, str]] = []
    util, util0 = im / equity, im0 / eq0
    if util > MAX_UTIL:
        if util > util0:
            codes.append(("MARGIN_UTILIZATION_EXCEEDS_MAX", None, "error"))
        else:
            codes.append(("MARGIN_UTILIZATION_EXCEEDS_MAX", None, "warning"))
    elif util > WARN_UTIL:
        codes.append(("MARGIN_UTILIZATION_ABOVE_WARN", None, "warning"))
    now = s.timestamp
    open_events = [e for e in EVENTS if e[1] <= now <= e[2]]
    for p, q, sg, u, mm, tiers in rows:
        if p.marginMode == "isolated":
            lp = _lp(q, sg, p.entryPrice, tiers, p.markPrice, p.isolatedMargin, 0.0, 0.0)
        else:
            lp = _lp(
                q, sg, p.entryPrice, tiers, p.markPrice, cross_wallet, cross_mm - mm, cross_up - u
            )
        ex = p.liquidationPrice if (p.liquidationPrice or 0) > 0 else None
        if ex is not None:
            lp = ex if lp is None else (max(lp, ex) if sg > 0 else min(lp, ex))
        stop, mark = p.stopLossPrice, p.markPrice
        if lp is None:
            if stop is None:
                codes.append(("STOP_LOSS_MISSING", p.symbol, "error"))
        else:
            buf = max(BUF_FRACTION * abs(p.entryPrice - lp), BUF_PCT / 100 * lp)
            safe = lp + buf if sg > 0 else lp - buf
            if (mark <= safe) if sg > 0 else (mark >= safe):
                codes.append(("LIQUIDATION_BUFFER_BREACHED", p.symbol, "critical"))
            elif stop is None:
                codes.append(("STOP_LOSS_MISSING", p.symbol, "error"))
            elif (stop <= lp) if sg > 0 else (stop >= lp):
                codes.append(("STOP_LOSS_BEYOND_LIQUIDATION", p.symbol, "error"))
            elif (stop < safe) if sg > 0 else (stop > safe):
                codes.append(("STOP_LOSS_INSIDE_BUFFER", p.symbol, "error"))
        if p.marginMode == "cross":
            atr = s.markets[p.symbol].atrPct
            if atr is not None and atr > ATR_ABOVE:
                codes.append(("VOLATILITY_ATR_ABOVE_THRESHOLD", p.symbol, "error"))
            for _e in open_events:
                codes.append(("VOLATILITY_EVENT_WINDOW", p.symbol, "error"))
    # the order's bound from the utilization rule: (IM0 + k·a) / (E0 + e·a) ≤ max
    p0 = s.positions[existing] if existing is not None else None
    mark = p0.markPrice if p0 is not None else s.markets[o.symbol].markPrice
    if p0 is not None:
        lev = (o.leverage or p0.leverage) if p0.marginMode == "isolated" else p0.leverage
        k = p0.contractSize * (price if p0.marginMode == "isolated" else mark) / lev
    else:
        mode = o.marginMode or "cross"
        k = (price if mode == "isolated" else mark) / (o.leverage or 1.0)
    e = (1 if o.side == "buy" else -1) * (mark - price)
    den = k - MAX_UTIL * e
    bound = max(0.0, (MAX_UTIL * eq0 - im0) / den) if den > 0 else None
    blocking = [
        c for c, sym, sev in codes if sev in ("error", "critical") and sym in (None, o.symbol)
    ]
    if not blocking:
        outcome = "allow"
    elif all(c == "MARGIN_UTILIZATION_EXCEEDS_MAX" for c in blocking) and bound:
        outcome = "resize"
    else:
        outcome = "deny"
    return outcome, sorted(c for c, _s, _v in codes), bound


# --------------------------------------------------------------------------- (b) CEL

# Let-bindings as [value].map(name, body)[0]; every number is a double (CEL never coerces).
CEL_SOURCE = r"""
[s.positions.filter(x, x.symbol == o.symbol)].map(ex,
 [size(ex) == 0
   ? s.positions + [{'symbol': o.symbol, 'side': o.side == 'buy' ? 'long' : 'short',
        'contracts': o.amount, 'contractSize': 1.0, 'entryPrice': o.price,
        'markPrice': s.markets[o.symbol].markPrice, 'leverage': o.leverage,
        'marginMode': 'cross', 'stopLossPrice': has(o.stopLossPrice) ? o.stopLossPrice : 0.0}]
   : s.positions.filter(x, x.symbol != o.symbol) + [{'symbol': ex[0].symbol, 'side': ex[0].side,
        'contracts': ex[0].contracts + o.amount, 'contractSize': ex[0].contractSize,
        'entryPrice': (ex[0].entryPrice * ex[0].contracts + o.price * o.amount) / (ex[0].contracts + o.amount),
        'markPrice': ex[0].markPrice, 'leverage': ex[0].leverage, 'marginMode': ex[0].marginMode,
        'isolatedMargin': ex[0].marginMode == 'isolated'
            ? ex[0].isolatedMargin + o.amount * ex[0].contractSize * o.price / o.leverage : 0.0,
        'stopLossPrice': has(o.stopLossPrice) ? o.stopLossPrice : ex[0].stopLossPrice}]
 ].map(P,
 [P.map(x, [x.contracts * x.contractSize].map(q, [x.side == 'long' ? 1.0 : -1.0].map(sg,
     [s.leverageTiers[x.symbol]].map(ts,
     [ts.filter(t, t.minNotional <= q * x.markPrice)].map(tf, [tf[size(tf) - 1]].map(t,
     {'p': x, 'q': q, 'sg': sg, 'ts': ts,
      'u': sg * q * (x.markPrice - x.entryPrice),
      'mm': [q * x.markPrice * t.maintenanceMarginRate - t.maintenanceAmount].map(v, v > 0.0 ? v : 0.0)[0],
      'im': x.marginMode == 'isolated' ? x.isolatedMargin : q * x.markPrice / x.leverage,
      'iso': x.marginMode == 'isolated' ? x.isolatedMargin : 0.0}
     )[0])[0])[0])[0])[0])
 ].map(B,
 [{'iso': sum(B.map(b, b.iso)),
   'cmm': sum(B.filter(b, b.p.marginMode == 'cross').map(b, b.mm)),
   'cup': sum(B.filter(b, b.p.marginMode == 'cross').map(b, b.u)),
   'up': sum(B.map(b, b.u)), 'im': sum(B.map(b, b.im)),
   'up0': sum(s.positions.map(x, (x.side == 'long' ? 1.0 : -1.0) * x.contracts * x.contractSize * (x.markPrice - x.entryPrice))),
   'im0': sum(s.positions.map(x, x.marginMode == 'isolated' ? x.isolatedMargin : x.contracts * x.contractSize * x.markPrice / x.leverage))}
 ].map(T,
 [{'eq': s.walletBalance + T.up, 'eq0': s.walletBalance + T.up0, 'cw': s.walletBalance - T.iso}].map(E,
 [T.im / E.eq].map(util, [T.im0 / E.eq0].map(util0,
 [[util > p.max ? [{'code': 'MARGIN_UTILIZATION_EXCEEDS_MAX', 'symbol': '', 'sev': util > util0 ? 'error' : 'warning'}]
   : util > p.warnAt ? [{'code': 'MARGIN_UTILIZATION_ABOVE_WARN', 'symbol': '', 'sev': 'warning'}] : []]
  + B.map(b, [b.p.marginMode == 'isolated'
        ? [b.p.isolatedMargin, 0.0, 0.0] : [E.cw, T.cmm - b.mm, T.cup - b.u]].map(w,
      [b.ts.map(t, [b.q * t.maintenanceMarginRate - b.sg * b.q].map(den, den == 0.0 ? -1.0 :
          (w[0] - w[1] + w[2] + t.maintenanceAmount - b.sg * b.q * b.p.entryPrice) / den)[0])].map(cands,
      [cands.filter(lp, lp > 0.0 && b.ts.exists(t, t.minNotional <= b.q * lp && b.q * lp < t.maxNotional
          && lp == [b.q * t.maintenanceMarginRate - b.sg * b.q].map(den,
              (w[0] - w[1] + w[2] + t.maintenanceAmount - b.sg * b.q * b.p.entryPrice) / den)[0]))].map(ok,
      size(ok) == 0
        ? (b.p.stopLossPrice > 0.0 ? [] : [{'code': 'STOP_LOSS_MISSING', 'symbol': b.p.symbol, 'sev': 'error'}])
        : [ok[0]].map(lp, [[p.bufferFraction * (b.p.entryPrice > lp ? b.p.entryPrice - lp : lp - b.p.entryPrice),
              p.bufferPct / 100.0 * lp]].map(bb, [bb[0] > bb[1] ? bb[0] : bb[1]].map(buf,
            [b.sg > 0.0 ? lp + buf : lp - buf].map(safe,
            (b.sg > 0.0 ? b.p.markPrice <= safe : b.p.markPrice >= safe)
              ? [{'code': 'LIQUIDATION_BUFFER_BREACHED', 'symbol': b.p.symbol, 'sev': 'critical'}]
            : b.p.stopLossPrice <= 0.0 ? [{'code': 'STOP_LOSS_MISSING', 'symbol': b.p.symbol, 'sev': 'error'}]
            : (b.sg > 0.0 ? b.p.stopLossPrice <= lp : b.p.stopLossPrice >= lp)
              ? [{'code': 'STOP_LOSS_BEYOND_LIQUIDATION', 'symbol': b.p.symbol, 'sev': 'error'}]
            : (b.sg > 0.0 ? b.p.stopLossPrice < safe : b.p.stopLossPrice > safe)
              ? [{'code': 'STOP_LOSS_INSIDE_BUFFER', 'symbol': b.p.symbol, 'sev': 'error'}]
            : [])[0])[0])[0])[0]
      )[0])[0])[0]
      + (b.p.marginMode == 'cross'
          ? (s.markets[b.p.symbol].atrPct > p.atrPctAbove
              ? [{'code': 'VOLATILITY_ATR_ABOVE_THRESHOLD', 'symbol': b.p.symbol, 'sev': 'error'}] : [])
            + p.events.filter(ev, ev.start <= now && now <= ev.end).map(ev,
                {'code': 'VOLATILITY_EVENT_WINDOW', 'symbol': b.p.symbol, 'sev': 'error'})
          : []))
 ].map(VS, [flat(VS)].map(V,
 [size(ex) == 0 ? s.markets[o.symbol].markPrice : ex[0].markPrice].map(mk,
 [size(ex) == 0 ? mk / o.leverage
   : ex[0].contractSize * (ex[0].marginMode == 'isolated' ? o.price : mk) / ex[0].leverage].map(k,
 [k - p.max * (o.side == 'buy' ? 1.0 : -1.0) * (mk - o.price)].map(den,
 [V.filter(v, (v.sev == 'error' || v.sev == 'critical') && (v.symbol == '' || v.symbol == o.symbol))].map(bl,
 {'outcome': size(bl) == 0 ? 'allow'
    : bl.all(v, v.code == 'MARGIN_UTILIZATION_EXCEEDS_MAX') && den > 0.0 ? 'resize' : 'deny',
  'codes': V.map(v, v.code),
  'bound': den > 0.0 ? [(p.max * E.eq0 - T.im0) / den].map(a, a > 0.0 ? a : 0.0)[0] : -1.0}
 )[0])[0])[0])[0])[0])[0]
 )[0])[0])[0])[0])[0])[0])[0]
"""

CEL_PARAMS = {
    "max": MAX_UTIL,
    "warnAt": WARN_UTIL,
    "bufferFraction": BUF_FRACTION,
    "bufferPct": BUF_PCT,
    "atrPctAbove": ATR_ABOVE,
    "events": [{"name": n, "start": float(a), "end": float(b)} for n, a, b in EVENTS],
}


def _cel_sum(xs):
    return math.fsum(xs)


def _cel_flat(xss):
    return [x for xs in xss for x in xs]


def cel_prepare(doc: dict) -> dict:
    """CEL needs doubles everywhere, a numeric stop and a finite last tier cap."""
    d = json.loads(json.dumps(doc))
    for p in d["positions"]:
        p.setdefault("stopLossPrice", 0.0)
    return d


def make_cel():
    import cel

    program = cel.compile(CEL_SOURCE)

    def run(doc: dict, order: dict) -> tuple[str, list[str], float | None]:
        out = program.execute(
            {
                "s": doc,
                "o": order,
                "p": CEL_PARAMS,
                "now": float(TS_MS),
                "sum": _cel_sum,
                "flat": _cel_flat,
            }
        )
        bound = out["bound"]
        return out["outcome"], sorted(out["codes"]), (None if bound < 0 else bound)

    return run


# --------------------------------------------------------------------------- (c) Rego

REGO_SOURCE = r"""
package riskguard
import rego.v1

s := input.snapshot
o := input.order
p := data.params

existing := [x | some x in s.positions; x.symbol == o.symbol]

merged := {"symbol": e.symbol, "side": e.side, "contracts": e.contracts + o.amount,
  "contractSize": e.contractSize,
  "entryPrice": (e.entryPrice * e.contracts + o.price * o.amount) / (e.contracts + o.amount),
  "markPrice": e.markPrice, "leverage": e.leverage, "marginMode": e.marginMode,
  "isolatedMargin": iso_after(e), "stopLossPrice": object.get(o, "stopLossPrice", e.stopLossPrice)} if {
  count(existing) > 0
  e := existing[0]
}

iso_after(e) := e.isolatedMargin + o.amount * e.contractSize * o.price / o.leverage if e.marginMode == "isolated"
iso_after(e) := 0 if e.marginMode != "isolated"

newpos := {"symbol": o.symbol, "side": side_of(o.side), "contracts": o.amount, "contractSize": 1,
  "entryPrice": o.price, "markPrice": s.markets[o.symbol].markPrice, "leverage": o.leverage,
  "marginMode": "cross", "isolatedMargin": 0, "stopLossPrice": object.get(o, "stopLossPrice", 0)}

side_of("buy") := "long"
side_of("sell") := "short"

projected := array.concat([x | some x in s.positions; x.symbol != o.symbol], [merged]) if count(existing) > 0
projected := array.concat(s.positions, [newpos]) if count(existing) == 0

sgn(x) := 1 if x.side == "long"
sgn(x) := -1 if x.side == "short"

tier_at(ts, v) := t if {
  i := max({j | some j; ts[j].minNotional <= v})
  t := ts[i]
}

im_of(x) := x.isolatedMargin if x.marginMode == "isolated"
im_of(x) := (x.contracts * x.contractSize * x.markPrice) / x.leverage if x.marginMode == "cross"

upnl(x) := (sgn(x) * x.contracts * x.contractSize) * (x.markPrice - x.entryPrice)

mm_of(x) := max([0, ((q * x.markPrice) * t.maintenanceMarginRate) - t.maintenanceAmount]) if {
  q := x.contracts * x.contractSize
  t := tier_at(s.leverageTiers[x.symbol], q * x.markPrice)
}

rows := [r | some x in projected
  r := {"p": x, "q": x.contracts * x.contractSize, "sg": sgn(x), "u": upnl(x), "mm": mm_of(x), "im": im_of(x)}]

iso_total := sum([x.isolatedMargin | some x in projected; x.marginMode == "isolated"])
cross_mm := sum([r.mm | some r in rows; r.p.marginMode == "cross"])
cross_up := sum([r.u | some r in rows; r.p.marginMode == "cross"])
equity := s.walletBalance + sum([r.u | some r in rows])
equity0 := s.walletBalance + sum([upnl(x) | some x in s.positions])
im_total := sum([r.im | some r in rows])
im0 := sum([im_of(x) | some x in s.positions])
cross_wallet := s.walletBalance - iso_total
util := im_total / equity
util0 := im0 / equity0

wallet_of(r) := [r.p.isolatedMargin, 0, 0] if r.p.marginMode == "isolated"
wallet_of(r) := [cross_wallet, cross_mm - r.mm, cross_up - r.u] if r.p.marginMode == "cross"

lp_for(r, t) := lp if {
  w := wallet_of(r)
  den := (r.q * t.maintenanceMarginRate) - (r.sg * r.q)
  den != 0
  lp := ((((w[0] - w[1]) + w[2]) + t.maintenanceAmount) - ((r.sg * r.q) * r.p.entryPrice)) / den
  lp > 0
  t.minNotional <= r.q * lp
  r.q * lp < t.maxNotional
}

liq(r) := min({lp | some t in s.leverageTiers[r.p.symbol]; lp := lp_for(r, t)})

absf(x) := x if x >= 0
absf(x) := 0 - x if x < 0

safe_of(r, lp) := lp + buf if {
  r.sg == 1
  buf := max([p.bufferFraction * absf(r.p.entryPrice - lp), (p.bufferPct / 100) * lp])
}
safe_of(r, lp) := lp - buf if {
  r.sg == -1
  buf := max([p.bufferFraction * absf(r.p.entryPrice - lp), (p.bufferPct / 100) * lp])
}

inside(r, safe) if { r.sg == 1; r.p.markPrice <= safe }
inside(r, safe) if { r.sg == -1; r.p.markPrice >= safe }
beyond(r, lp) if { r.sg == 1; r.p.stopLossPrice <= lp }
beyond(r, lp) if { r.sg == -1; r.p.stopLossPrice >= lp }
in_buffer(r, safe) if { r.sg == 1; r.p.stopLossPrice < safe }
in_buffer(r, safe) if { r.sg == -1; r.p.stopLossPrice > safe }

stop_code(r) := "STOP_LOSS_MISSING" if {
  not liq(r)
  r.p.stopLossPrice <= 0
}
stop_code(r) := c if {
  lp := liq(r)
  safe := safe_of(r, lp)
  c := stop_verdict(r, lp, safe)
}

stop_verdict(r, lp, safe) := "LIQUIDATION_BUFFER_BREACHED" if inside(r, safe)
stop_verdict(r, lp, safe) := "STOP_LOSS_MISSING" if { not inside(r, safe); r.p.stopLossPrice <= 0 }
stop_verdict(r, lp, safe) := "STOP_LOSS_BEYOND_LIQUIDATION" if {
  not inside(r, safe); r.p.stopLossPrice > 0; beyond(r, lp)
}
stop_verdict(r, lp, safe) := "STOP_LOSS_INSIDE_BUFFER" if {
  not inside(r, safe); r.p.stopLossPrice > 0; not beyond(r, lp); in_buffer(r, safe)
}

severity("LIQUIDATION_BUFFER_BREACHED") := "critical"
severity(c) := "error" if c != "LIQUIDATION_BUFFER_BREACHED"

open_events := [e | some e in p.events; e.start <= data.now; data.now <= e.end]

violations contains v if {
  util > p.max
  v := {"code": "MARGIN_UTILIZATION_EXCEEDS_MAX", "symbol": "", "sev": mu_sev}
}
mu_sev := "error" if util > util0
mu_sev := "warning" if util <= util0

violations contains v if {
  util <= p.max
  util > p.warnAt
  v := {"code": "MARGIN_UTILIZATION_ABOVE_WARN", "symbol": "", "sev": "warning"}
}

violations contains v if {
  some r in rows
  c := stop_code(r)
  v := {"code": c, "symbol": r.p.symbol, "sev": severity(c)}
}

violations contains v if {
  some r in rows
  r.p.marginMode == "cross"
  s.markets[r.p.symbol].atrPct > p.atrPctAbove
  v := {"code": "VOLATILITY_ATR_ABOVE_THRESHOLD", "symbol": r.p.symbol, "sev": "error"}
}

violations contains v if {
  some r in rows
  r.p.marginMode == "cross"
  some e in open_events
  v := {"code": "VOLATILITY_EVENT_WINDOW", "symbol": r.p.symbol, "sev": "error", "event": e.name}
}

blocking := [v | some v in violations; v.sev in {"error", "critical"}; v.symbol in {"", o.symbol}]

mark0 := existing[0].markPrice if count(existing) > 0
mark0 := s.markets[o.symbol].markPrice if count(existing) == 0
k := existing[0].contractSize * o.price / existing[0].leverage if {
  count(existing) > 0; existing[0].marginMode == "isolated"
}
k := existing[0].contractSize * mark0 / existing[0].leverage if {
  count(existing) > 0; existing[0].marginMode == "cross"
}
k := mark0 / o.leverage if count(existing) == 0
order_sign := 1 if o.side == "buy"
order_sign := -1 if o.side == "sell"
den := k - ((p.max * order_sign) * (mark0 - o.price))
bound := max([0, ((p.max * equity0) - im0) / den]) if den > 0
bound := -1 if den <= 0

outcome := "allow" if count(blocking) == 0
outcome := "resize" if {
  count(blocking) > 0
  every v in blocking { v.code == "MARGIN_UTILIZATION_EXCEEDS_MAX" }
  den > 0
}
outcome := "deny" if {
  count(blocking) > 0
  not all_mu
}
all_mu if {
  every v in blocking { v.code == "MARGIN_UTILIZATION_EXCEEDS_MAX" }
}

decision := {"outcome": outcome, "codes": sort([v.code | some v in violations]), "bound": bound}
"""


def make_rego():
    import regopy

    rego = regopy.Interpreter()
    rego.add_module("riskguard", REGO_SOURCE)
    rego.add_data({"params": CEL_PARAMS, "now": float(TS_MS)})

    def run(doc: dict, order: dict) -> tuple[str, list[str], float | None]:
        rego.set_input({"snapshot": doc, "order": order})
        out = json.loads(str(rego.query("x = data.riskguard.engine.decision")))
        d = out["bindings"]["x"]
        return d["outcome"], d["codes"], (None if d["bound"] < 0 else d["bound"])

    return run


# --------------------------------------------------------------------------- timing


def median_us(fn, runs: int, warm: int = 20) -> float:
    for _ in range(warm):
        fn()
    times = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times) / 1000.0


def guard_decision(d) -> tuple[str, list[str], float | None]:
    return d.decision, sorted(v.code for v in d.violations), d.maxAllowedAmount


def agree(name: str, got, want) -> None:
    ok = got[0] == want[0] and got[1] == want[1]
    if want[2] is None or got[2] is None:
        ok = ok and got[2] == want[2]
    else:
        ok = ok and math.isclose(got[2], want[2], rel_tol=1e-6)
    if not ok:
        raise SystemExit(f"{name} disagrees with the guard: {got} != {want}")


def variants(n: int):
    """The timed scenario plus two that must also agree: a resize and a missing stop."""
    doc, order = account_doc(n)
    yield "allow", doc, order
    big = dict(order, amount=order["amount"] * 40 * n)
    yield "resize", doc, big
    new = {
        "symbol": "NEW/USDT:USDT",
        "side": "buy",
        "type": "limit",
        "amount": 1.0,
        "price": 10.0,
        "leverage": 10.0,
    }
    doc2 = json.loads(json.dumps(doc))
    doc2["markets"]["NEW/USDT:USDT"] = {"markPrice": 10.0, "atrPct": 1.0}
    doc2["leverageTiers"]["NEW/USDT:USDT"] = doc["leverageTiers"][doc["positions"][0]["symbol"]]
    yield "deny", doc2, new


def run(args) -> list[dict]:
    guard = Guard.from_file(POLICY)
    cel_run = make_cel() if not args.no_cel else None
    rego_run = make_rego() if not args.no_rego else None
    rows = []
    for n in args.positions:
        runs = max(20, args.runs // max(1, n // 10))
        slow_runs = max(10, runs // 20)
        # agreement first: all four reach the same decision on three scenarios
        for label, doc, order in variants(n):
            want = guard_decision(guard.check(build_snapshot(doc), order))
            assert want[0] == label, (label, want)
            agree("hand-written", hand_check(build_snapshot(doc), Order(**order)), want)
            if cel_run:
                agree("CEL", cel_run(cel_prepare(doc), order), want)
            if rego_run:
                agree("Rego", rego_run(doc, order), want)

        rows.append(measure(n, guard, cel_run, rego_run, runs, slow_runs))
    return rows


def measure(n: int, guard, cel_run, rego_run, runs: int, slow_runs: int) -> dict:
    doc, order_d = account_doc(n)
    snap, order = account_objects(n)
    assert guard_decision(guard.check(snap, order)) == guard_decision(guard.check(doc, order_d))
    r: dict = {"positions": n}
    r["guard_obj"] = median_us(lambda: guard.check(snap, order), runs)
    r["guard_dict"] = median_us(lambda: guard.check(doc, order_d), runs)
    r["hand"] = median_us(lambda: hand_check(snap, order), runs)
    r["max_amount"] = median_us(lambda: guard.max_order_amount(snap, order), runs)
    cel_doc = cel_prepare(doc)
    r["cel"] = median_us(lambda: cel_run(cel_doc, order_d), slow_runs) if cel_run else None
    r["rego"] = median_us(lambda: rego_run(doc, order_d), slow_runs, warm=3) if rego_run else None
    r.update(audit_costs(snap, order, runs))
    return r


def audit_costs(snap: Snapshot, order: Order, runs: int) -> dict:
    """Check with the hash-chained audit log: caller latency, and throughput with the writer.

    Every decision gets a fresh (equal) snapshot object, so no snapshot digest is reused;
    throughput is wall time per decision including ``flush()`` (the writer's work).
    """
    try:
        import riskguard.decisionlog.log  # noqa: F401
    except ImportError:
        return {}
    import gc

    out = {}
    n = max(200, runs // 2)
    snaps = [replace(snap) for _ in range(n)]
    reuse = [snaps[i // 4] for i in range(n)]  # one account update, four orders
    modes = (
        ("none", None, snaps),
        ("audit_async", {}, snaps),
        ("audit_sync", {"audit_async": False}, snaps),
        ("audit_reuse", {}, reuse),
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw, inputs in modes:
            if kw is None:
                g = Guard.from_file(POLICY)
            else:
                g = Guard.from_file(POLICY, audit_log=Path(tmp) / f"{label}.jsonl", **kw)
            for s in inputs[:20]:
                g.check(s, order)
            g.flush()
            gc.collect()
            lat = []
            clock = time.perf_counter_ns
            t = clock()
            for s in inputs:
                t1 = clock()
                g.check(s, order)
                lat.append(clock() - t1)
            g.flush()
            total = (clock() - t) / n / 1000.0
            g.close()
            out[label + "_latency"] = statistics.median(lat) / 1000.0
            out[label + "_throughput"] = total
    return out


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def report(rows: list[dict]) -> str:
    import cel  # noqa: F401

    lines = [
        f"Python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'}), "
        f"median µs per decision, policies/default.yaml (3 rules).",
        "",
        "| positions | guard (objects) | guard (dicts, validated) | hand-written | CEL | Rego "
        "| guard ÷ hand | CEL ÷ guard | Rego ÷ guard | max_order_amount ÷ check |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        g = r["guard_obj"]
        lines.append(
            f"| {r['positions']} | {fmt(g)} | {fmt(r['guard_dict'])} | {fmt(r['hand'])} "
            f"| {fmt(r['cel'])} | {fmt(r['rego'])} | {g / r['hand']:.2f}× "
            f"| {fmt(r['cel'] / g if r['cel'] else None)}× | {fmt(r['rego'] / g if r['rego'] else None)}× "
            f"| {r['max_amount'] / g:.2f}× |"
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        k = b["positions"] / a["positions"]
        lines.append("")
        lines.append(
            f"Scaling {a['positions']} → {b['positions']} positions (×{k:g}): guard ×{b['guard_obj'] / a['guard_obj']:.1f}, "
            f"hand-written ×{b['hand'] / a['hand']:.1f}"
            + (f", CEL ×{b['cel'] / a['cel']:.1f}" if a.get("cel") else "")
            + (f", Rego ×{b['rego'] / a['rego']:.1f}" if a.get("rego") else "")
            + "."
        )
    if rows and "audit_async_latency" in rows[0]:
        lines += [
            "",
            "Audit log (hash-chained, one record per decision, fresh snapshot object each time):",
            "",
            "| positions | no log: latency / throughput | async writer: caller latency | async: throughput "
            "incl. writer | sync (inline): throughput | async, 4 orders per snapshot: throughput |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lat0, thr0 = r["none_latency"], r["none_throughput"]
            lines.append(
                f"| {r['positions']} | {fmt(lat0)} / {fmt(thr0)} "
                f"| {fmt(r['audit_async_latency'])} ({r['audit_async_latency'] / lat0:.2f}×) "
                f"| {fmt(r['audit_async_throughput'])} ({r['audit_async_throughput'] / thr0:.2f}×) "
                f"| {fmt(r['audit_sync_throughput'])} ({r['audit_sync_throughput'] / thr0:.2f}×) "
                f"| {fmt(r['audit_reuse_throughput'])} ({r['audit_reuse_throughput'] / thr0:.2f}×) |"
            )
    return "\n".join(lines)


def profile(n: int = 10) -> str:
    guard = Guard.from_file(POLICY)
    snap, order = account_objects(n)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(5000):
        guard.check(snap, order)
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(20)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--positions", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100])
    ap.add_argument(
        "--runs", type=int, default=5000, help="timed runs for 10 positions (fewer for larger)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="few runs: a smoke test, not a measurement"
    )
    ap.add_argument("--no-cel", action="store_true")
    ap.add_argument("--no-rego", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.runs = 200
    if args.profile:
        print(profile())
        return
    print(report(run(args)))


if __name__ == "__main__":
    main()
