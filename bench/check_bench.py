"""Pre-trade check speed: ``Guard.check`` of ``policies/default.yaml`` against the same
decision written by hand in Python, in CEL and in OPA Rego — side by side, in one run.

    python bench/check_bench.py                  # the README table
    python bench/check_bench.py --quick          # few runs, 10 positions: a smoke test (CI)
    python bench/check_bench.py --set core       # only the three-core-rule row set
    python bench/check_bench.py --profile        # where one 10-position check spends its time

Two row sets: the whole default policy (nine rules: kill switch, margin utilization, stop
before liquidation, isolate on volatility, risk per trade, max leverage, min liquidation
distance, cross stress, promote to cross) and the three core rules of the first default
policy (kept so figures stay comparable with earlier rounds).

Every figure is the median of many timed runs of one decision (``--runs``), after a
warm-up. The account is a Binance one-way book of N linear positions (half cross, half
isolated, three leverage tiers each, a stop on every position, ATR% given per market)
and the order adds to an existing cross position. Before timing, the benchmark checks
that every implementation reaches the guard's decision — outcome, violation codes
(warnings and advice included) and the largest allowed amount — on an allow, a resize and
a deny scenario; a disagreement stops the run.

What each competitor does (all of it, per decision):

- **hand-written Python**: project the order, compute uPnL, tiered maintenance margin,
  equity, utilization, notional and each position's Binance liquidation price (tier
  iteration, cross pool), then every rule of the row set, the order's bounds (utilization,
  account leverage and tier caps, the stressed pool by bisection) and the engine's re-check
  of a resized amount. It covers only what the benchmark account needs (linear, Binance,
  add-to or open a position); the guard covers everything.
- **CEL** (``common-expression-language``, cel-rust): one compiled expression (per row set) over the
  snapshot and order as maps; ``sum`` is a host function (CEL has no fold), let-bindings
  are written ``[x].map(v, …)[0]`` (this CEL has no ``cel.bind``); the stressed pool's
  bound is solved per tier in closed form, like the Rego.
- **Rego** (``regopy``, rego-cpp): one module; the snapshot and order are set as input and
  ``data.riskguard.decision_all`` (``decision`` for the core rules) is queried. The
  stressed pool's bound is solved per tier in closed form (Rego has no loops), and
  ``min``/``max`` are written as rules: regopy 1.5.2's builtins compare numbers as text.

CEL and Rego are skipped, with a note in the output, when the ``[bench]`` extra is not
installed; the hand-written agreement always runs.

The guard is timed on ``Snapshot``/``Order`` objects built in code (a bot's case) and on
dicts (validated at the boundary, as from JSON), interleaved so load hits both alike; CEL
and Rego take dicts, their native input, so their times include handing the input over.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskguard import Guard, Order, Snapshot  # noqa: E402
from riskguard._pure import build  # noqa: E402
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


def hand_core(s: Snapshot, o: Order) -> tuple[str, list[str], float | None]:
    """The three core rules' decision for the benchmark's kind of account, written by hand."""
    price = o.price
    positions, existing = _project(s, o)
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


# --------------------------------------------------------------------------- (a) by hand, all rules

LEV_MAX, LEV_ACCOUNT_MAX = 20.0, 10.0
RISK_MAX = 0.01
MIN_DIST_PCT, DIST_ATR_MULT = 5.0, 3.0
SHOCK_PCT = 10.0
PROMOTE_MULT = 3.0
_TOL = 1e-9
RESIZERS = {"margin-utilization", "max-leverage", "cross-stress"}  # resize_order, error severity
RULE_OF = {
    "MARGIN_UTILIZATION_EXCEEDS_MAX": "margin-utilization",
    "LEVERAGE_POSITION_EXCEEDS_MAX": "max-leverage",
    "LEVERAGE_ACCOUNT_EXCEEDS_MAX": "max-leverage",
    "LEVERAGE_EXCEEDS_TIER_MAX": "max-leverage",
    "CROSS_STRESS_POOL_LIQUIDATED": "cross-stress",
}


def _project(s: Snapshot, o: Order) -> tuple[list, int | None]:
    """The positions after ``o`` fills at its price (adds to or opens a one-way position)."""
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
    return positions, existing


def _stress_surplus(s: Snapshot, positions) -> float:
    """Cross equity minus maintenance margin after a SHOCK_PCT adverse move of every cross leg."""
    wallet = s.walletBalance
    for p in positions:
        if p.marginMode == "isolated":
            wallet -= p.isolatedMargin or 0.0
    equity, need = wallet, 0.0
    for p in positions:
        if p.marginMode != "cross":
            continue
        q = p.contracts * p.contractSize
        sg = 1 if p.side == "long" else -1
        m2 = p.markPrice * (1.0 - sg * SHOCK_PCT / 100.0)
        equity += sg * q * (m2 - p.entryPrice)
        t = _tier(s.leverageTiers[p.symbol], q * m2)
        need += max(q * m2 * t.maintenanceMarginRate - t.maintenanceAmount, 0.0)
    return equity - need


def _judge(s: Snapshot, o: Order, state: str) -> tuple[list, float | None, set]:
    """Every rule of the default policy on the account after ``o``: (findings, bound, bounded)."""
    positions, existing = _project(s, o)
    price = o.price
    codes: list[tuple[str, str | None, str]] = []
    # kill switch: an active state lets every order through
    if state == "halted":
        codes.append(("TRADING_STATE_HALTED", o.symbol, "error"))
    elif state == "reducing":
        codes.append(("TRADING_STATE_REDUCING", o.symbol, "error"))
    # the account before the order: equity, initial margin, notional, stress surplus
    im0 = up0 = n0 = 0.0
    for p in s.positions:
        q = p.contracts * p.contractSize
        up0 += (1 if p.side == "long" else -1) * q * (p.markPrice - p.entryPrice)
        im0 += p.isolatedMargin if p.marginMode == "isolated" else q * p.markPrice / p.leverage
        n0 += q * p.markPrice
    eq0 = s.walletBalance + up0
    # the projected account: per position uPnL, tier, maintenance margin, initial margin
    rows = []
    iso_total = cross_mm = cross_up = up = im = notional = 0.0
    for p in positions:
        q = p.contracts * p.contractSize
        sg = 1 if p.side == "long" else -1
        u = sg * q * (p.markPrice - p.entryPrice)
        tiers = s.leverageTiers[p.symbol]
        t = _tier(tiers, q * p.markPrice)
        mm = max(q * p.markPrice * t.maintenanceMarginRate - t.maintenanceAmount, 0.0)
        up += u
        notional += q * p.markPrice
        if p.marginMode == "isolated":
            iso_total += p.isolatedMargin
            im += p.isolatedMargin
        else:
            cross_mm += mm
            cross_up += u
            im += q * p.markPrice / p.leverage
        rows.append((p, q, sg, u, mm, tiers, t))
    equity = s.walletBalance + up
    cross_wallet = s.walletBalance - iso_total
    # margin utilization
    util, util0 = im / equity, im0 / eq0
    if util > MAX_UTIL:
        codes.append(
            ("MARGIN_UTILIZATION_EXCEEDS_MAX", None, "error" if util > util0 else "warning")
        )
    elif util > WARN_UTIL:
        codes.append(("MARGIN_UTILIZATION_ABOVE_WARN", None, "warning"))
    now = s.timestamp
    open_events = [e for e in EVENTS if e[1] <= now <= e[2]]
    budget = RISK_MAX * eq0
    for p, q, sg, u, mm, tiers, t in rows:
        sym, mark, stop = p.symbol, p.markPrice, p.stopLossPrice
        # liquidation price (Binance, tier iteration; cross: the others held at mark)
        if p.marginMode == "isolated":
            lp = _lp(q, sg, p.entryPrice, tiers, mark, p.isolatedMargin, 0.0, 0.0)
        else:
            lp = _lp(q, sg, p.entryPrice, tiers, mark, cross_wallet, cross_mm - mm, cross_up - u)
        ex = p.liquidationPrice if (p.liquidationPrice or 0) > 0 else None
        if ex is not None:
            lp = ex if lp is None else (max(lp, ex) if sg > 0 else min(lp, ex))
        # stop before liquidation, with a buffer
        if lp is None:
            if stop is None:
                codes.append(("STOP_LOSS_MISSING", sym, "error"))
        else:
            buf = max(BUF_FRACTION * abs(p.entryPrice - lp), BUF_PCT / 100 * lp)
            safe = lp + buf if sg > 0 else lp - buf
            if (mark <= safe) if sg > 0 else (mark >= safe):
                codes.append(("LIQUIDATION_BUFFER_BREACHED", sym, "critical"))
            elif stop is None:
                codes.append(("STOP_LOSS_MISSING", sym, "error"))
            elif (stop <= lp) if sg > 0 else (stop >= lp):
                codes.append(("STOP_LOSS_BEYOND_LIQUIDATION", sym, "error"))
            elif (stop < safe) if sg > 0 else (stop > safe):
                codes.append(("STOP_LOSS_INSIDE_BUFFER", sym, "error"))
        atr = s.markets[sym].atrPct
        trigger = atr is not None and atr > ATR_ABOVE  # promote-to-cross: no event windows
        # isolate on volatility (cross positions)
        if p.marginMode == "cross":
            if atr is not None and atr > ATR_ABOVE:
                codes.append(("VOLATILITY_ATR_ABOVE_THRESHOLD", sym, "error"))
            for _e in open_events:
                codes.append(("VOLATILITY_EVENT_WINDOW", sym, "error"))
        # risk per trade (a warning in this policy): loss at the stop vs 1 % of equity
        if stop is None:
            risk = p.isolatedMargin if p.marginMode == "isolated" else None
        else:
            risk = max(0.0, -sg * q * (stop - p.entryPrice))
            if p.marginMode == "isolated" and risk > p.isolatedMargin:
                risk = p.isolatedMargin
        if risk is None:
            codes.append(("RISK_PER_TRADE_UNBOUNDED", sym, "warning"))
        elif risk > budget * (1 + _TOL):
            codes.append(("RISK_PER_TRADE_EXCEEDS_MAX", sym, "warning"))
        # max leverage per position (configured, the order's, entry notional / isolated margin)
        lev = p.leverage
        if sym == o.symbol and o.leverage is not None and o.leverage > lev:
            lev = o.leverage
        if p.marginMode == "isolated" and p.isolatedMargin > 0:
            r = q * p.entryPrice / p.isolatedMargin
            if r > lev * (1 + _TOL):
                lev = r
        if lev > LEV_MAX * (1 + _TOL):
            codes.append(("LEVERAGE_POSITION_EXCEEDS_MAX", sym, "error"))
        if t.maxLeverage is not None and lev > t.maxLeverage * (1 + _TOL):
            codes.append(("LEVERAGE_EXCEEDS_TIER_MAX", sym, "error"))
        # liquidation at least 5 % and 3 ATRs from the mark
        if lp is not None:
            dist = sg * (mark - lp) / mark * 100.0
            need = max(MIN_DIST_PCT, DIST_ATR_MULT * atr)
            if dist < need:
                if dist < MIN_DIST_PCT:
                    codes.append(("LIQUIDATION_DISTANCE_BELOW_MIN_PCT", sym, "error"))
                if dist < DIST_ATR_MULT * atr:
                    codes.append(("LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE", sym, "error"))
        # promote to cross (advisory): an isolated winner, calm market
        if p.marginMode == "isolated" and u > PROMOTE_MULT * mm and not trigger:
            codes.append(("PROMOTE_TO_CROSS_ELIGIBLE", sym, "info"))
    # account leverage
    acc = notional / equity
    if acc > LEV_ACCOUNT_MAX * (1 + _TOL):
        codes.append(
            (
                "LEVERAGE_ACCOUNT_EXCEEDS_MAX",
                None,
                "warning" if acc <= n0 / eq0 * (1 + _TOL) else "error",
            )
        )
    # cross stress: a 10 % adverse shock of every cross position must not liquidate the pool
    surplus = _stress_surplus(s, positions)
    if surplus < 0:
        before = _stress_surplus(s, s.positions)
        worse = surplus < before - 1e-9 * max(1.0, abs(before))
        codes.append(("CROSS_STRESS_POOL_LIQUIDATED", None, "error" if worse else "warning"))
    # the order's bounds: utilization, account leverage and tier caps, stress (bisection)
    p0 = s.positions[existing] if existing is not None else None
    mark = p0.markPrice if p0 is not None else s.markets[o.symbol].markPrice
    sgn = 1 if o.side == "buy" else -1
    if p0 is not None:
        lev = (o.leverage or p0.leverage) if p0.marginMode == "isolated" else p0.leverage
        k = p0.contractSize * (price if p0.marginMode == "isolated" else mark) / lev
        lev_cap = max(p0.leverage, o.leverage or 0.0)
        c0 = p0.contracts
    else:
        mode = o.marginMode or "cross"
        k = (price if mode == "isolated" else mark) / (o.leverage or 1.0)
        lev_cap, c0 = o.leverage or 1.0, 0.0
    den = k - MAX_UTIL * sgn * (mark - price)
    bounds = {"margin-utilization": max(0.0, (MAX_UTIL * eq0 - im0) / den) if den > 0 else None}
    bound_l = math.inf
    for t in s.leverageTiers[o.symbol]:
        if t.maxLeverage is not None and lev_cap > t.maxLeverage * (1 + _TOL):
            bound_l = max(0.0, (t.minNotional / mark - c0) * (1 - 1e-9))
            break
    den = mark - LEV_ACCOUNT_MAX * sgn * (mark - price)
    if den > 0:
        bound_l = min(bound_l, max(0.0, (LEV_ACCOUNT_MAX * eq0 - n0) / den))
    bounds["max-leverage"] = None if math.isinf(bound_l) else bound_l
    if surplus < 0:
        if _stress_surplus(s, s.positions) < 0:
            bounds["cross-stress"] = 0.0
        else:
            lo, hi = 0.0, o.amount
            for _ in range(40):
                mid = (lo + hi) / 2
                if _stress_surplus(s, _project(s, replace(o, amount=mid))[0]) >= 0:
                    lo = mid
                else:
                    hi = mid
                if hi - lo <= 1e-7 * o.amount:
                    break
            bounds["cross-stress"] = lo
    bounded = {r for r, b in bounds.items() if b is not None}
    bound = min((b for b in bounds.values() if b is not None), default=None)
    return codes, bound, bounded


def _blocking_of(codes, o: Order) -> list:
    return [
        (c, sym)
        for c, sym, sev in codes
        if sev in ("error", "critical") and sym in (None, o.symbol)
    ]


def _floor8(x: float) -> float:
    if x < 1e-300 or not math.isfinite(x):
        return 0.0
    scale = 10 ** (7 - math.floor(math.log10(x)))
    return math.floor(x * scale) / scale


def hand_full(s: Snapshot, o: Order, state: str = "active") -> tuple[str, list[str], float | None]:
    """``policies/default.yaml``'s decision (all nine rules) for the benchmark's kind of account."""
    codes, bound, bounded = _judge(s, o, state)
    blocking = _blocking_of(codes, o)
    outcome = "deny" if blocking else "allow"
    resizers = RESIZERS & bounded
    if (
        blocking
        and resizers
        and all(RULE_OF.get(c) in resizers for c, _sym in blocking)
        and bound is not None
    ):
        # the engine re-checks the bound, shrinking by bisection if it was optimistic
        amount = _floor8(min(bound, o.amount))
        lo, hi = 0.0, amount
        for i in range(24):
            cand = hi if i == 0 else _floor8((lo + hi) / 2)
            if cand <= 0:
                break
            if not _blocking_of(_judge(s, replace(o, amount=cand), state)[0], o):
                if i == 0:
                    lo = cand
                    break
                lo = cand
            else:
                hi = cand
            if i > 0 and hi - lo <= 1e-6 * amount:
                break
        outcome, bound = ("resize", lo) if lo > 0 else ("deny", 0.0)
    return outcome, sorted(c for c, _s, _v in codes), bound


# --------------------------------------------------------------------------- (b) CEL

# Let-bindings as [value].map(name, body)[0]; every number is a double (CEL never coerces).
CEL_CORE = r"""
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

CEL_FULL: str | None = r"""
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
     {'p': x, 'q': q, 'sg': sg, 'ts': ts, 't': t, 'atr': s.markets[x.symbol].atrPct,
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
   'n': sum(B.map(b, b.q * b.p.markPrice)),
   'up0': sum(s.positions.map(x, (x.side == 'long' ? 1.0 : -1.0) * x.contracts * x.contractSize * (x.markPrice - x.entryPrice))),
   'im0': sum(s.positions.map(x, x.marginMode == 'isolated' ? x.isolatedMargin : x.contracts * x.contractSize * x.markPrice / x.leverage)),
   'n0': sum(s.positions.map(x, x.contracts * x.contractSize * x.markPrice))}
 ].map(T,
 [{'eq': s.walletBalance + T.up, 'eq0': s.walletBalance + T.up0, 'cw': s.walletBalance - T.iso}].map(E,
 [T.im / E.eq].map(util, [T.im0 / E.eq0].map(util0,
 [[P, s.positions].map(L,
   s.walletBalance - sum(L.map(x, x.marginMode == 'isolated' ? x.isolatedMargin : 0.0))
   + sum(L.filter(x, x.marginMode == 'cross').map(x,
       [x.side == 'long' ? 1.0 : -1.0].map(sg, [x.contracts * x.contractSize].map(q,
       [x.markPrice * (1.0 - sg * p.shockPct / 100.0)].map(m2,
         sg * q * (m2 - x.entryPrice)
         - [s.leverageTiers[x.symbol].filter(t, t.minNotional <= q * m2)].map(tf, [tf[size(tf) - 1]].map(t,
             [q * m2 * t.maintenanceMarginRate - t.maintenanceAmount].map(v, v > 0.0 ? v : 0.0)[0])[0])[0]
       )[0])[0])[0])))].map(SS, [SS[0]].map(S1, [SS[1]].map(S0,
 [[util > p.max ? [{'code': 'MARGIN_UTILIZATION_EXCEEDS_MAX', 'symbol': '', 'sev': util > util0 ? 'error' : 'warning'}]
   : util > p.warnAt ? [{'code': 'MARGIN_UTILIZATION_ABOVE_WARN', 'symbol': '', 'sev': 'warning'}] : []]
  + [[T.n / E.eq].map(acc, acc > p.accountMax * (1.0 + 1e-9)
      ? [{'code': 'LEVERAGE_ACCOUNT_EXCEEDS_MAX', 'symbol': '',
          'sev': acc <= T.n0 / E.eq0 * (1.0 + 1e-9) ? 'warning' : 'error'}] : [])[0]]
  + [S1 < 0.0 ? [{'code': 'CROSS_STRESS_POOL_LIQUIDATED', 'symbol': '',
      'sev': S1 < S0 - 1e-9 * (S0 > 1.0 || S0 < -1.0 ? (S0 > 0.0 ? S0 : -S0) : 1.0) ? 'error' : 'warning'}] : []]
  + B.map(b, [b.p.marginMode == 'isolated'
        ? [b.p.isolatedMargin, 0.0, 0.0] : [E.cw, T.cmm - b.mm, T.cup - b.u]].map(w,
      [b.ts.map(t, [b.q * t.maintenanceMarginRate - b.sg * b.q].map(den, den == 0.0 ? -1.0 :
          (w[0] - w[1] + w[2] + t.maintenanceAmount - b.sg * b.q * b.p.entryPrice) / den)[0])].map(cands,
      [cands.filter(lp, lp > 0.0 && b.ts.exists(t, t.minNotional <= b.q * lp && b.q * lp < t.maxNotional
          && lp == [b.q * t.maintenanceMarginRate - b.sg * b.q].map(den,
              (w[0] - w[1] + w[2] + t.maintenanceAmount - b.sg * b.q * b.p.entryPrice) / den)[0]))].map(ok,
      (size(ok) == 0
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
            : [])[0])[0])[0])[0])
      + (size(ok) == 0 ? [] : [b.sg * (b.p.markPrice - ok[0]) / b.p.markPrice * 100.0].map(dist,
          (dist < p.minPct ? [{'code': 'LIQUIDATION_DISTANCE_BELOW_MIN_PCT', 'symbol': b.p.symbol, 'sev': 'error'}] : [])
          + (dist < p.distAtrMultiple * b.atr
              ? [{'code': 'LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE', 'symbol': b.p.symbol, 'sev': 'error'}] : []))[0])
      )[0])[0])[0]
      + (b.p.marginMode == 'cross'
          ? (b.atr > p.atrPctAbove
              ? [{'code': 'VOLATILITY_ATR_ABOVE_THRESHOLD', 'symbol': b.p.symbol, 'sev': 'error'}] : [])
            + p.events.filter(ev, ev.start <= now && now <= ev.end).map(ev,
                {'code': 'VOLATILITY_EVENT_WINDOW', 'symbol': b.p.symbol, 'sev': 'error'})
          : [])
      + [b.p.stopLossPrice > 0.0
          ? [[-b.sg * b.q * (b.p.stopLossPrice - b.p.entryPrice)].map(l, l > 0.0 ? l : 0.0)[0]].map(l,
              b.p.marginMode == 'isolated' && l > b.p.isolatedMargin ? b.p.isolatedMargin : l)[0]
          : (b.p.marginMode == 'isolated' ? b.p.isolatedMargin : -1.0)].map(risk,
         risk < 0.0 ? [{'code': 'RISK_PER_TRADE_UNBOUNDED', 'symbol': b.p.symbol, 'sev': 'warning'}]
         : risk > p.riskMax * E.eq0 * (1.0 + 1e-9)
           ? [{'code': 'RISK_PER_TRADE_EXCEEDS_MAX', 'symbol': b.p.symbol, 'sev': 'warning'}] : [])[0]
      + [[b.p.symbol == o.symbol && o.leverage > b.p.leverage ? o.leverage : b.p.leverage].map(l0,
          b.p.marginMode == 'isolated' && b.p.isolatedMargin > 0.0
            && b.q * b.p.entryPrice / b.p.isolatedMargin > l0 * (1.0 + 1e-9)
          ? b.q * b.p.entryPrice / b.p.isolatedMargin : l0)[0]].map(lev,
         (lev > p.levMax * (1.0 + 1e-9)
           ? [{'code': 'LEVERAGE_POSITION_EXCEEDS_MAX', 'symbol': b.p.symbol, 'sev': 'error'}] : [])
         + (lev > b.t.maxLeverage * (1.0 + 1e-9)
           ? [{'code': 'LEVERAGE_EXCEEDS_TIER_MAX', 'symbol': b.p.symbol, 'sev': 'error'}] : []))[0]
      + (b.p.marginMode == 'isolated' && b.u > p.promoteMultiple * b.mm && !(b.atr > p.atrPctAbove)
          ? [{'code': 'PROMOTE_TO_CROSS_ELIGIBLE', 'symbol': b.p.symbol, 'sev': 'info'}] : []))
 ].map(VS, [flat(VS)].map(V,
 [size(ex) == 0 ? s.markets[o.symbol].markPrice : ex[0].markPrice].map(mk,
 [o.side == 'buy' ? 1.0 : -1.0].map(osg,
 [size(ex) == 0 ? 0.0 : ex[0].contracts].map(c0,
 [size(ex) == 0 ? mk / o.leverage
   : ex[0].contractSize * (ex[0].marginMode == 'isolated' ? o.price : mk) / ex[0].leverage].map(k,
 [k - p.max * osg * (mk - o.price)].map(den,
 [den > 0.0 ? [[(p.max * E.eq0 - T.im0) / den].map(a, a > 0.0 ? a : 0.0)[0]] : []].map(mu,
 [size(ex) == 0 ? o.leverage : (ex[0].leverage > o.leverage ? ex[0].leverage : o.leverage)].map(levcap,
 [mk - p.accountMax * osg * (mk - o.price)].map(dacc,
 [s.leverageTiers[o.symbol].filter(t, levcap > t.maxLeverage * (1.0 + 1e-9)).map(t,
     [(t.minNotional / mk - c0) * (1.0 - 1e-9)].map(v, v > 0.0 ? v : 0.0)[0])
  + (dacc > 0.0 ? [[(p.accountMax * E.eq0 - T.n0) / dacc].map(a, a > 0.0 ? a : 0.0)[0]] : [])].map(levcaps,
 [S1 >= 0.0 ? [] : S0 < 0.0 ? [0.0]
   : [P.filter(x, x.symbol == o.symbol)[0]].map(mine,
     [mk * (1.0 - osg * p.shockPct / 100.0)].map(m2,
     [mine.contracts * mine.contractSize].map(q,
     [S1 - (osg * q * (m2 - mine.entryPrice)
       - [s.leverageTiers[o.symbol].filter(t, t.minNotional <= q * m2)].map(tf, [tf[size(tf) - 1]].map(t,
           [q * m2 * t.maintenanceMarginRate - t.maintenanceAmount].map(v, v > 0.0 ? v : 0.0)[0])[0])[0])].map(rest,
     [size(ex) == 0 ? o.price : ex[0].entryPrice].map(ep0,
     [s.leverageTiers[o.symbol].map(t,
        {'t': t, 'a': (rest + osg * c0 * (m2 - ep0) - c0 * m2 * t.maintenanceMarginRate + t.maintenanceAmount)
                      / (m2 * t.maintenanceMarginRate - osg * (m2 - o.price))})
      .filter(r, r.a >= 0.0 && r.a <= o.amount
        && [s.leverageTiers[o.symbol].filter(u, u.minNotional <= (c0 + r.a) * m2)].map(tf,
             tf[size(tf) - 1].minNotional == r.t.minNotional)[0])
      .map(r, r.a)].map(roots, roots.filter(a, roots.all(z, a <= z)))[0]
     )[0])[0])[0])[0])[0]].map(stress,
 [mu + levcaps + stress].map(caps,
 [size(caps) == 0 ? -1.0 : caps.filter(c, caps.all(z, c <= z))[0]].map(bound,
 [(den > 0.0 ? ['mu'] : []) + (size(levcaps) > 0 ? ['lev'] : []) + (S1 < 0.0 ? ['stress'] : [])].map(bounded,
 [V.filter(v, (v.sev == 'error' || v.sev == 'critical') && (v.symbol == '' || v.symbol == o.symbol))].map(bl,
 [bl.all(v, v.code in rules && rules[v.code] in bounded)].map(resizable,
 [size(bl) == 0 ? 'allow' : resizable && bound > 0.0 ? 'resize' : 'deny'].map(outcome,
 {'outcome': outcome, 'codes': V.map(v, v.code),
  'bound': outcome == 'resize' && bound > o.amount ? o.amount : bound}
 )[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0])[0]
 )[0])[0])[0])[0])[0])[0])[0])[0])[0])[0]
"""

CEL_PARAMS = {
    "max": MAX_UTIL,
    "warnAt": WARN_UTIL,
    "bufferFraction": BUF_FRACTION,
    "bufferPct": BUF_PCT,
    "atrPctAbove": ATR_ABOVE,
    "events": [{"name": n, "start": float(a), "end": float(b)} for n, a, b in EVENTS],
    "riskMax": RISK_MAX,
    "levMax": LEV_MAX,
    "accountMax": LEV_ACCOUNT_MAX,
    "minPct": MIN_DIST_PCT,
    "distAtrMultiple": DIST_ATR_MULT,
    "promoteMultiple": PROMOTE_MULT,
    "shockPct": SHOCK_PCT,
}


# which rule a blocking code belongs to, for the resize test (a map literal costs per run)
CEL_RULE_OF = {
    "MARGIN_UTILIZATION_EXCEEDS_MAX": "mu",
    "LEVERAGE_POSITION_EXCEEDS_MAX": "lev",
    "LEVERAGE_ACCOUNT_EXCEEDS_MAX": "lev",
    "LEVERAGE_EXCEEDS_TIER_MAX": "lev",
    "CROSS_STRESS_POOL_LIQUIDATED": "stress",
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


def make_cel(full: bool = True):
    import cel

    if full and CEL_FULL is None:
        return None

    program = cel.compile(CEL_FULL if full else CEL_CORE)

    def run(doc: dict, order: dict) -> tuple[str, list[str], float | None]:
        out = program.execute(
            {
                "s": doc,
                "o": order,
                "p": CEL_PARAMS,
                "now": float(TS_MS),
                "sum": _cel_sum,
                "flat": _cel_flat,
                "rules": CEL_RULE_OF,
            }
        )
        bound = out["bound"]
        return out["outcome"], sorted(out["codes"]), (None if bound < 0 else bound)

    return run


# --------------------------------------------------------------------------- (c) Rego

REGO_CORE = r"""
package riskguard
import rego.v1

# rego-cpp's min/max builtins compare numbers as text (min([5.5, 10.5]) is 10.5 in
# regopy 1.5.2): numeric versions.
maxn(xs) := m if { some m in xs; every y in xs { m >= y } }
minn(xs) := m if { some m in xs; every y in xs { m <= y } }

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
  i := maxn({j | some j; ts[j].minNotional <= v})
  t := ts[i]
}

im_of(x) := x.isolatedMargin if x.marginMode == "isolated"
im_of(x) := (x.contracts * x.contractSize * x.markPrice) / x.leverage if x.marginMode == "cross"

upnl(x) := (sgn(x) * x.contracts * x.contractSize) * (x.markPrice - x.entryPrice)

mm_of(x) := maxn([0, ((q * x.markPrice) * t.maintenanceMarginRate) - t.maintenanceAmount]) if {
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

liq(r) := minn({lp | some t in s.leverageTiers[r.p.symbol]; lp := lp_for(r, t)})

absf(x) := x if x >= 0
absf(x) := 0 - x if x < 0

safe_of(r, lp) := lp + buf if {
  r.sg == 1
  buf := maxn([p.bufferFraction * absf(r.p.entryPrice - lp), (p.bufferPct / 100) * lp])
}
safe_of(r, lp) := lp - buf if {
  r.sg == -1
  buf := maxn([p.bufferFraction * absf(r.p.entryPrice - lp), (p.bufferPct / 100) * lp])
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
bound := maxn([0, ((p.max * equity0) - im0) / den]) if den > 0
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


REGO_FULL = (
    REGO_CORE
    + r"""
# ---- the other six rules of policies/default.yaml

notional_of(x) := (x.contracts * x.contractSize) * x.markPrice
n0 := sum([notional_of(x) | some x in s.positions])
notional := sum([notional_of(r.p) | some r in rows])
budget := p.riskMax * equity0

has_stop(x) if x.stopLossPrice > 0

loss_at_stop(r) := maxn([0, 0 - ((r.sg * r.q) * (r.p.stopLossPrice - r.p.entryPrice))])

risk(r) := r.p.isolatedMargin if { not has_stop(r.p); r.p.marginMode == "isolated" }
risk(r) := minn([loss_at_stop(r), r.p.isolatedMargin]) if { has_stop(r.p); r.p.marginMode == "isolated" }
risk(r) := loss_at_stop(r) if { has_stop(r.p); r.p.marginMode == "cross" }

violations contains v if {
  some r in rows
  not has_stop(r.p)
  r.p.marginMode == "cross"
  v := {"code": "RISK_PER_TRADE_UNBOUNDED", "symbol": r.p.symbol, "sev": "warning"}
}

violations contains v if {
  some r in rows
  risk(r) > budget * (1 + 1e-9)
  v := {"code": "RISK_PER_TRADE_EXCEEDS_MAX", "symbol": r.p.symbol, "sev": "warning"}
}

order_lev(r) := [o.leverage] if r.p.symbol == o.symbol
order_lev(r) := [] if r.p.symbol != o.symbol
iso_ratio(r) := [(r.q * r.p.entryPrice) / r.p.isolatedMargin] if {
  r.p.marginMode == "isolated"; r.p.isolatedMargin > 0
}
iso_ratio(r) := [] if r.p.marginMode != "isolated"
pos_lev(r) := maxn(array.concat(array.concat([r.p.leverage], order_lev(r)), iso_ratio(r)))

violations contains v if {
  some r in rows
  pos_lev(r) > p.levMax * (1 + 1e-9)
  v := {"code": "LEVERAGE_POSITION_EXCEEDS_MAX", "symbol": r.p.symbol, "sev": "error"}
}

violations contains v if {
  some r in rows
  t := tier_at(s.leverageTiers[r.p.symbol], r.q * r.p.markPrice)
  pos_lev(r) > t.maxLeverage * (1 + 1e-9)
  v := {"code": "LEVERAGE_EXCEEDS_TIER_MAX", "symbol": r.p.symbol, "sev": "error"}
}

acc := notional / equity
acc_sev := "warning" if acc <= (n0 / equity0) * (1 + 1e-9)
acc_sev := "error" if acc > (n0 / equity0) * (1 + 1e-9)

violations contains v if {
  acc > p.accountMax * (1 + 1e-9)
  v := {"code": "LEVERAGE_ACCOUNT_EXCEEDS_MAX", "symbol": "", "sev": acc_sev}
}

distance(r) := ((r.sg * (r.p.markPrice - lp)) / r.p.markPrice) * 100 if lp := liq(r)

violations contains v if {
  some r in rows
  distance(r) < p.minPct
  v := {"code": "LIQUIDATION_DISTANCE_BELOW_MIN_PCT", "symbol": r.p.symbol, "sev": "error"}
}

violations contains v if {
  some r in rows
  distance(r) < p.distAtrMultiple * s.markets[r.p.symbol].atrPct
  v := {"code": "LIQUIDATION_DISTANCE_BELOW_ATR_MULTIPLE", "symbol": r.p.symbol, "sev": "error"}
}

violations contains v if {
  some r in rows
  r.p.marginMode == "isolated"
  r.u > p.promoteMultiple * r.mm
  not s.markets[r.p.symbol].atrPct > p.atrPctAbove
  v := {"code": "PROMOTE_TO_CROSS_ELIGIBLE", "symbol": r.p.symbol, "sev": "info"}
}

shocked(x) := x.markPrice * (1 - (sgn(x) * p.shockPct) / 100)
shocked_upnl(x) := ((sgn(x) * x.contracts) * x.contractSize) * (shocked(x) - x.entryPrice)

mm_at(x, price) := maxn([0, ((q * price) * t.maintenanceMarginRate) - t.maintenanceAmount]) if {
  q := x.contracts * x.contractSize
  t := tier_at(s.leverageTiers[x.symbol], q * price)
}

stress_surplus(ps) := ((s.walletBalance - iso) + up) - need if {
  iso := sum([x.isolatedMargin | some x in ps; x.marginMode == "isolated"])
  up := sum([shocked_upnl(x) | some x in ps; x.marginMode == "cross"])
  need := sum([mm_at(x, shocked(x)) | some x in ps; x.marginMode == "cross"])
}

surplus1 := stress_surplus(projected)
surplus0 := stress_surplus(s.positions)
stress_sev := "error" if surplus1 < surplus0 - 1e-9 * maxn([1, absf(surplus0)])
stress_sev := "warning" if surplus1 >= surplus0 - 1e-9 * maxn([1, absf(surplus0)])

violations contains v if {
  surplus1 < 0
  v := {"code": "CROSS_STRESS_POOL_LIQUIDATED", "symbol": "", "sev": stress_sev}
}

# ---- the order's bounds: utilization (above), account leverage and tier caps, stress

c0 := existing[0].contracts if count(existing) > 0
c0 := 0 if count(existing) == 0
lev_cap := maxn([existing[0].leverage, o.leverage]) if count(existing) > 0
lev_cap := o.leverage if count(existing) == 0
tier_cap(t) := maxn([0, ((t.minNotional / mark0) - c0) * (1 - 1e-9)])
tier_caps := [tier_cap(t) | some t in s.leverageTiers[o.symbol]; lev_cap > t.maxLeverage * (1 + 1e-9)]
den_acc := mark0 - ((p.accountMax * order_sign) * (mark0 - o.price))
acc_caps := [maxn([0, ((p.accountMax * equity0) - n0) / den_acc])] if den_acc > 0
acc_caps := [] if den_acc <= 0
lev_caps := array.concat(tier_caps, acc_caps)

# the order's own (cross) leg in the shocked pool is linear in the amount within a tier
stress_rest := surplus1 - leg_now if {
  mine := [x | some x in projected; x.symbol == o.symbol][0]
  leg_now := (((sgn(mine) * mine.contracts) * mine.contractSize) * (shocked(mine) - mine.entryPrice)) - mm_at(mine, shocked(mine))
}
m2 := mark0 * (1 - (order_sign * p.shockPct) / 100)
ep0 := existing[0].entryPrice if count(existing) > 0
ep0 := o.price if count(existing) == 0
stress_roots := [a |
  some t in s.leverageTiers[o.symbol]
  a := ((((stress_rest + ((order_sign * c0) * (m2 - ep0))) - ((c0 * m2) * t.maintenanceMarginRate)) + t.maintenanceAmount)
    / ((m2 * t.maintenanceMarginRate) - (order_sign * (m2 - o.price))))
  a >= 0
  a <= o.amount
  tier_at(s.leverageTiers[o.symbol], (c0 + a) * m2) == t
]
stress_caps := [] if surplus1 >= 0
stress_caps := [0] if { surplus1 < 0; surplus0 < 0 }
stress_caps := [minn(stress_roots)] if { surplus1 < 0; surplus0 >= 0 }

all_caps := array.concat(array.concat([b | some b in [bound]; b >= 0], lev_caps), stress_caps)
bound_all := minn(all_caps) if count(all_caps) > 0
bound_all := -1 if count(all_caps) == 0

rule_of := {"MARGIN_UTILIZATION_EXCEEDS_MAX": "mu", "LEVERAGE_POSITION_EXCEEDS_MAX": "lev",
  "LEVERAGE_ACCOUNT_EXCEEDS_MAX": "lev", "LEVERAGE_EXCEEDS_TIER_MAX": "lev",
  "CROSS_STRESS_POOL_LIQUIDATED": "stress"}
bounded contains "mu" if bound >= 0
bounded contains "lev" if count(lev_caps) > 0
bounded contains "stress" if count(stress_caps) > 0

resizable if {
  every v in blocking { rule_of[v.code] in bounded }
}

outcome_all := "allow" if count(blocking) == 0
outcome_all := "resize" if { count(blocking) > 0; resizable; bound_all > 0 }
outcome_all := "deny" if { count(blocking) > 0; not resizable }
outcome_all := "deny" if { count(blocking) > 0; resizable; bound_all <= 0 }

decision_all := {"outcome": outcome_all, "codes": sort([v.code | some v in violations]),
  "bound": bound_all_out}
bound_all_out := minn([bound_all, o.amount]) if outcome_all == "resize"
bound_all_out := bound_all if outcome_all != "resize"
"""
)


def make_rego(full: bool = True):
    import regopy

    rego = regopy.Interpreter()
    rego.add_module("riskguard", REGO_FULL if full else REGO_CORE)
    query = "x = data.riskguard." + ("decision_all" if full else "decision")
    rego.add_data({"params": CEL_PARAMS, "now": float(TS_MS)})

    def run(doc: dict, order: dict) -> tuple[str, list[str], float | None]:
        rego.set_input({"snapshot": doc, "order": order})
        out = json.loads(str(rego.query(query)))
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


CORE_POLICY = """\
apiVersion: riskguard/v1
kind: Policy
metadata: {name: bench-core, version: "1.0.0"}
spec:
  mode: enforce
  rules:
    - id: margin-utilization
      type: margin_utilization
      params: {max: 0.35, warnAt: 0.30, includeOpenOrders: true}
      severity: error
      onViolation: [resize_order, alert]
    - id: stop-before-liquidation
      type: stop_before_liquidation
      params: {required: true, bufferFraction: 0.10, bufferPct: 0.5,
               liquidationSource: conservative}
      severity: error
      onViolation: [set_stop_loss, alert]
    - id: isolate-on-volatility
      type: isolate_on_volatility
      params:
        atrPctAbove: 5.0
        atrPeriod: 14
        events:
          - {name: FOMC rate decision, at: "2026-12-16T19:00:00Z", beforeMinutes: 60, afterMinutes: 120}
          - {name: US CPI, at: "2026-12-10T13:30:00Z", beforeMinutes: 30, afterMinutes: 60}
      severity: error
      onViolation: [switch_margin_mode, alert]
"""

# (label, full policy?) — the whole default policy first; the three core rules of the first
# default policy as a second row set, comparable with earlier rounds.
ROW_SETS = (
    ("policies/default.yaml, all 9 rules", True),
    (
        "three core rules (margin utilization, stop before liquidation, isolate on volatility)",
        False,
    ),
)


def engines(args) -> tuple[bool, bool, list[str]]:
    """Which of CEL and Rego can run here, and a note for each that cannot."""
    notes = []
    have = {}
    for flag, mod, name in (("no_cel", "cel", "CEL"), ("no_rego", "regopy", "Rego")):
        if getattr(args, flag):
            have[mod] = False
            continue
        try:
            __import__(mod)
            have[mod] = True
        except ImportError:
            have[mod] = False
            pkg = "common-expression-language" if mod == "cel" else "regopy"
            notes.append(f"{name} skipped: {pkg} is not installed (pip install -e '.[bench]')")
    return have["cel"], have["regopy"], notes


def run(args) -> tuple[list[tuple[str, list[dict]]], list[str]]:
    has_cel, has_rego, notes = engines(args)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        core = Path(tmp) / "bench-core.yaml"
        core.write_text(CORE_POLICY)
        for label, full in ROW_SETS:
            if args.set not in ("both", "default" if full else "core"):
                continue
            guard = Guard.from_file(POLICY if full else core)
            hand = hand_full if full else hand_core
            cel_run = make_cel(full) if has_cel else None
            rego_run = make_rego(full) if has_rego else None
            rows = []
            for n in args.positions:
                runs = max(20, args.runs // max(1, n // 10))
                slow_runs = max(args.slow_min, runs // 20)
                # agreement first: all four reach the same decision on three scenarios
                for scenario, doc, order in variants(n):
                    want = guard_decision(guard.check(build_snapshot(doc), order))
                    assert want[0] == scenario, (label, scenario, want)
                    agree(
                        f"hand-written ({scenario}, {n})",
                        hand(build_snapshot(doc), Order(**order)),
                        want,
                    )
                    if cel_run:
                        agree(f"CEL ({scenario}, {n})", cel_run(cel_prepare(doc), order), want)
                    if rego_run:
                        agree(f"Rego ({scenario}, {n})", rego_run(doc, order), want)
                rows.append(measure(n, guard, hand, cel_run, rego_run, runs, slow_runs, audit=full))
            out.append((label, rows))
    return out, notes


def measure(
    n: int, guard, hand, cel_run, rego_run, runs: int, slow_runs: int, audit: bool = True
) -> dict:
    doc, order_d = account_doc(n)
    snap, order = account_objects(n)
    assert guard_decision(guard.check(snap, order)) == guard_decision(guard.check(doc, order_d))
    r: dict = {"positions": n}
    # object and dict paths interleaved, so that load on the shared machine hits both alike
    obj, dct = [], []
    for _ in range(3):
        obj.append(median_us(lambda: guard.check(snap, order), runs // 3 + 1))
        dct.append(median_us(lambda: guard.check(doc, order_d), runs // 3 + 1))
    r["guard_obj"] = statistics.median(obj)
    r["guard_dict"] = statistics.median(dct)
    r["hand"] = median_us(lambda: hand(snap, order), runs)
    r["max_amount"] = median_us(lambda: guard.max_order_amount(snap, order), runs)
    cel_doc = cel_prepare(doc)
    r["cel"] = median_us(lambda: cel_run(cel_doc, order_d), slow_runs) if cel_run else None
    r["rego"] = median_us(lambda: rego_run(doc, order_d), slow_runs, warm=3) if rego_run else None
    if audit:
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


def report(sets: list[tuple[str, list[dict]]], notes: list[str]) -> str:
    out = [
        f"Python {platform.python_version()} ({build()}) on {platform.machine()} ({platform.processor() or 'cpu'}), "
        f"median µs per decision; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"commit {commit()}.",
    ]
    out += [f"({n})" for n in notes]
    for label, rows in sets:
        out += ["", f"**{label}**", "", table(rows)]
    return "\n".join(out)


def commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[dict]) -> str:
    lines = [
        "| positions | guard (objects) | guard (dicts, validated) | dicts ÷ objects | hand-written | CEL | Rego "
        "| guard ÷ hand | CEL ÷ guard | Rego ÷ guard | max_order_amount ÷ check |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        g = r["guard_obj"]
        lines.append(
            f"| {r['positions']} | {fmt(g)} | {fmt(r['guard_dict'])} | {r['guard_dict'] / g:.2f}× | {fmt(r['hand'])} "
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
    ap.add_argument(
        "--set", choices=("both", "default", "core"), default="both", help="which row set(s) to run"
    )
    ap.add_argument("--no-cel", action="store_true")
    ap.add_argument("--no-rego", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    args.slow_min = 10
    if args.quick:
        args.runs, args.slow_min = 60, 2
        if args.positions == [10, 100]:
            args.positions = [10]
    if args.profile:
        print(profile())
        return
    sets, notes = run(args)
    print(report(sets, notes))


if __name__ == "__main__":
    main()
