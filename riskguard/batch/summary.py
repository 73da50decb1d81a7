"""Streaming summary of decisions: counts, worst figures, breach timelines, plot series.

``Summary.add(decision_dict)`` takes one decision (the ``Decision.to_dict()`` shape, full
or compact metrics) per snapshot. Memory stays constant in the number of decisions
except for what a timeline needs: per account the breach episodes (the earliest
``max_episodes`` finished ones are kept, the rest counted) and down-sampled series for
plots (at most ``series_points`` buckets per account and ``position_points`` per account
and symbol).

``merge(other)`` folds in a summary of the decisions that came *after* this one's in
input order (a later chunk), so parallel workers can summarise chunks separately and
the parent merges them in order: the result equals one summary fed every decision in
order, exactly — ``to_dict()`` compares equal, series included. Every piece is built for
that: counters add; "worst" figures break ties by time, account and reference, never by
arrival; an episode open at the end of a chunk joins the one open at the start of the
next; series buckets have fixed, time-aligned widths (1 s · 2^k) that double together.

Breach timeline: per account, for each (rule, symbol) — symbol ``None`` for account-wide
rules — consecutive snapshots of that account in breach form one **episode**. It
``start``\\ s at the first snapshot in breach and ``end``\\ s at the first later snapshot of the
account without that breach (``end`` is ``None`` while it is still ongoing at the last
snapshot seen); ``lastSeen`` is its last snapshot in breach. Snapshots are taken in
input order; an account whose snapshots arrive out of timestamp order is flagged
(``outOfOrder``) rather than re-sorted, since re-sorting would need every snapshot kept.

Decision fields read: ``decision``, ``wouldDecide`` (monitor mode), ``timestamp``,
``snapshot.account``/``.timestamp``/``.ref``, ``violations[].rule/type/code/severity/
symbol/observed/limit``, ``metrics.marginUtilization``, ``metrics.settle`` (when present)
and ``metrics.positions[].symbol/side/liquidationDistancePct``.
"""

from __future__ import annotations

from typing import Any

from riskguard.batch.textfmt import count, duration, pct, when
from riskguard.batch.timeline import NO_TS, Episode, Series, iso_ms, parse_ts
from riskguard.engine.decision import SEVERITIES

__all__ = ["Summary", "render_text"]

_SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def _inc(d: dict, k: Any, n: int = 1) -> None:
    d[k] = d.get(k, 0) + n


def _add_counts(into: dict, other: dict) -> None:
    for k, n in other.items():
        into[k] = into.get(k, 0) + n


def _sorted_counts(d: dict) -> dict:
    return dict(sorted(d.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


# --------------------------------------------------------------------------- accounts


def _worst_util_key(value: float, ts: int, account: str, ref: str | None) -> tuple:
    return (-value, ts, account, ref or "")


def _nearest_key(
    value: float, ts: int, account: str, symbol: str, side: str | None, ref: str | None
) -> tuple:
    return (value, ts, account, symbol, side or "", ref or "")


class _Account:
    __slots__ = (
        "closed",
        "closed_total",
        "decisions",
        "first_eps",
        "first_ts",
        "last_ts",
        "liq",
        "max_ts",
        "min_ts",
        "n",
        "nearest",
        "open",
        "out_of_order",
        "util",
        "violations",
        "with_violations",
        "worst_util",
    )

    def __init__(self, series_points: int) -> None:
        self.n = 0
        self.first_ts = NO_TS  # arrival order
        self.last_ts = NO_TS
        self.min_ts: int | None = None
        self.max_ts: int | None = None
        self.out_of_order = 0
        self.open: dict[tuple, Episode] = {}
        self.closed: list[Episode] = []
        self.closed_total = 0
        self.first_eps: dict[tuple, Episode] = {}
        self.decisions: dict[str, int] = {}
        self.violations = 0
        self.with_violations = 0
        self.worst_util: tuple | None = None
        self.nearest: tuple | None = None
        self.util = Series(series_points)
        self.liq: dict[str, Series] = {}


# --------------------------------------------------------------------------- summary


class Summary:
    """Streaming, mergeable summary of decision dicts (see the module docstring)."""

    def __init__(
        self,
        *,
        series_points: int = 5000,
        position_points: int = 1000,
        max_episodes: int = 10_000,
        max_bad_examples: int = 20,
    ) -> None:
        self.series_points = series_points
        self.position_points = position_points
        self.max_episodes = max_episodes
        self.max_bad_examples = max_bad_examples
        self.snapshots = 0
        self.violations = 0
        self.with_violations = 0
        self.decisions: dict[str, int] = {}
        self.would_decide: dict[str, int] = {}
        self.by_rule: dict[str, int] = {}
        self.by_code: dict[str, int] = {}
        self.by_severity: dict[str, int] = {}
        self.by_account: dict[str, int] = {}
        self.by_symbol: dict[str, int] = {}
        self.rule_severity: dict[tuple[str, str], int] = {}
        self.rule_types: dict[str, str] = {}
        self.settle: dict[str, int] = {}
        self.worst_util: tuple | None = None
        self.nearest: tuple | None = None
        self.bad_records = 0
        self.bad_examples: list[dict] = []
        self.accounts: dict[str, _Account] = {}
        self._ts_text: Any = object()
        self._ts_ms = NO_TS

    # ------------------------------------------------------------------ input

    def add_bad(self, ref: str | None = None, message: str | None = None) -> None:
        """Count a record that could not be evaluated (keeps the first few as examples)."""
        self.bad_records += 1
        if len(self.bad_examples) < self.max_bad_examples:
            self.bad_examples.append({"ref": ref, "message": message})

    def add(self, decision: dict) -> None:
        """Fold in one decision (one snapshot)."""
        self.snapshots += 1
        outcome = decision.get("decision") or "unknown"
        _inc(self.decisions, outcome)
        would = decision.get("wouldDecide")
        if would:
            _inc(self.would_decide, would)
        snap = decision.get("snapshot") or {}
        name = snap.get("account") or "default"
        ref = snap.get("ref")
        text = snap.get("timestamp") or decision.get("timestamp")
        if text == self._ts_text:  # accounts interleaved at one instant share it
            ts = self._ts_ms
        else:
            ts = parse_ts(text)
            self._ts_text, self._ts_ms = text, ts
        acct = self.accounts.get(name)
        if acct is None:
            acct = self.accounts[name] = _Account(self.series_points)
        _inc(acct.decisions, outcome)

        # violations → counts and this snapshot's breached keys
        keys: dict[tuple, list] = {}
        viols = decision.get("violations") or ()
        if viols:
            self.with_violations += 1
            acct.with_violations += 1
            n = len(viols)
            self.violations += n
            acct.violations += n
            _inc(self.by_account, name, n)
            for v in viols:
                rule = v.get("rule") or "?"
                sev = v.get("severity") or "error"
                code = v.get("code") or "?"
                sym = v.get("symbol")
                _inc(self.by_rule, rule)
                _inc(self.by_code, code)
                _inc(self.by_severity, sev)
                _inc(self.rule_severity, (rule, sev))
                if sym is not None:
                    _inc(self.by_symbol, sym)
                typ = v.get("type")
                if typ and rule not in self.rule_types:
                    self.rule_types[rule] = typ
                obs = v.get("observed")
                num = obs if _is_num(obs) else None
                key = (rule, sym)
                info = keys.get(key)
                rank = _SEV_RANK.get(sev, 2)
                if info is None:
                    keys[key] = [rank, {code}, num, num, v.get("limit"), typ]
                else:
                    if rank > info[0]:
                        info[0] = rank
                    info[1].add(code)
                    if num is not None:
                        if info[2] is None or num < info[2]:
                            info[2] = num
                        if info[3] is None or num > info[3]:
                            info[3] = num
                    if v.get("limit") is not None:
                        info[4] = v.get("limit")
        self._observe(acct, ts, ref, keys)

        # metrics → worst utilization, nearest liquidation, series
        m = decision.get("metrics")
        if m:
            settle = m.get("settle")
            if settle:
                _inc(self.settle, settle)
            u = m.get("marginUtilization")
            if _is_num(u):
                k = _worst_util_key(u, ts, name, ref)
                if acct.worst_util is None or k < acct.worst_util:
                    acct.worst_util = k
                    if self.worst_util is None or k < self.worst_util:
                        self.worst_util = k
                if ts != NO_TS:
                    acct.util.add(ts, u)
            liq = acct.liq
            for p in m.get("positions") or ():
                dist = p.get("liquidationDistancePct")
                if not _is_num(dist):
                    continue
                sym = p.get("symbol") or "?"
                near = acct.nearest
                if near is None or dist <= near[0]:  # else its key cannot be smaller
                    k = _nearest_key(dist, ts, name, sym, p.get("side"), ref)
                    if near is None or k < near:
                        acct.nearest = k
                        if self.nearest is None or k < self.nearest:
                            self.nearest = k
                if ts != NO_TS:
                    s = liq.get(sym)
                    if s is None:
                        s = liq[sym] = Series(self.position_points)
                    s.add(ts, dist)

    def _observe(self, acct: _Account, ts: int, ref: str | None, keys: dict) -> None:
        first = acct.n == 0
        if first:
            acct.first_ts = ts
        elif ts < acct.last_ts:
            acct.out_of_order += 1
        acct.n += 1
        acct.last_ts = ts
        if ts != NO_TS:
            if acct.min_ts is None or ts < acct.min_ts:
                acct.min_ts = ts
            if acct.max_ts is None or ts > acct.max_ts:
                acct.max_ts = ts
        opened = acct.open
        if opened:
            for k in [k for k in opened if k not in keys]:
                gone = opened.pop(k)
                gone.end = ts
                self._finish(acct, gone)
        for k, info in keys.items():
            ep = opened.get(k)
            if ep is None:
                ep = opened[k] = Episode(k[0], k[1], ts, ref)
                if first:
                    ep.at_first = True
                    acct.first_eps[k] = ep
            else:
                ep.last = ts
            ep.absorb(info)

    def _finish(self, acct: _Account, ep: Episode) -> None:
        acct.closed.append(ep)
        acct.closed_total += 1
        if len(acct.closed) > 2 * self.max_episodes:
            self._truncate(acct)

    def _truncate(self, acct: _Account) -> None:
        """Keep the earliest ``max_episodes`` finished episodes (plus those a merge may
        still extend: the ones that began at this summary's first snapshot)."""
        keep = [e for e in acct.closed if e.at_first]
        rest = sorted((e for e in acct.closed if not e.at_first), key=Episode.sort_key)
        acct.closed = keep + rest[: self.max_episodes]

    # ------------------------------------------------------------------ merge

    def merge(self, other: Summary) -> None:
        """Fold in ``other``, a summary of decisions that came after this one's.

        ``other`` is consumed: its internals may be taken over, do not use it afterwards.
        """
        self.snapshots += other.snapshots
        self.violations += other.violations
        self.with_violations += other.with_violations
        for mine, theirs in (
            (self.decisions, other.decisions),
            (self.would_decide, other.would_decide),
            (self.by_rule, other.by_rule),
            (self.by_code, other.by_code),
            (self.by_severity, other.by_severity),
            (self.by_account, other.by_account),
            (self.by_symbol, other.by_symbol),
            (self.rule_severity, other.rule_severity),
            (self.settle, other.settle),
        ):
            _add_counts(mine, theirs)
        for rule, typ in other.rule_types.items():
            self.rule_types.setdefault(rule, typ)
        if other.worst_util is not None and (
            self.worst_util is None or other.worst_util < self.worst_util
        ):
            self.worst_util = other.worst_util
        if other.nearest is not None and (self.nearest is None or other.nearest < self.nearest):
            self.nearest = other.nearest
        self.bad_records += other.bad_records
        room = self.max_bad_examples - len(self.bad_examples)
        if room > 0:
            self.bad_examples.extend(other.bad_examples[:room])
        for name, b in other.accounts.items():
            a = self.accounts.get(name)
            if a is None:
                self.accounts[name] = b
            else:
                self._merge_account(a, b)

    def _merge_account(self, a: _Account, b: _Account) -> None:
        if b.n == 0:
            return
        if a.n == 0:
            # Nothing to join: take b's timeline as it is.
            a.first_ts, a.first_eps = b.first_ts, b.first_eps
            a.open, a.closed = b.open, b.closed
            a.closed_total = b.closed_total
        else:
            joined: set[int] = set()
            for k, ep in list(a.open.items()):
                later = b.first_eps.get(k)
                if later is None:
                    ep.end = b.first_ts  # b's first snapshot no longer has this breach
                    del a.open[k]
                    a.closed.append(ep)
                    a.closed_total += 1
                    continue
                joined.add(id(later))
                ep.join(later)
                if later.end is not None:  # the breach ended inside b
                    del a.open[k]
                    a.closed.append(ep)
                # else it stays open in a (b's open entry for k is `later`, dropped below)
            a.closed.extend(e for e in b.closed if id(e) not in joined)
            a.closed_total += b.closed_total
            for k, ep in b.open.items():
                if id(ep) not in joined:
                    a.open[k] = ep
            for e in b.first_eps.values():
                e.at_first = False  # no longer at the first snapshot: nothing can extend it
            if b.first_ts < a.last_ts:
                a.out_of_order += 1
            if len(a.closed) > 2 * self.max_episodes:
                self._truncate(a)
        a.n += b.n
        a.last_ts = b.last_ts
        a.out_of_order += b.out_of_order
        if b.min_ts is not None and (a.min_ts is None or b.min_ts < a.min_ts):
            a.min_ts = b.min_ts
        if b.max_ts is not None and (a.max_ts is None or b.max_ts > a.max_ts):
            a.max_ts = b.max_ts
        _add_counts(a.decisions, b.decisions)
        a.violations += b.violations
        a.with_violations += b.with_violations
        if b.worst_util is not None and (a.worst_util is None or b.worst_util < a.worst_util):
            a.worst_util = b.worst_util
        if b.nearest is not None and (a.nearest is None or b.nearest < a.nearest):
            a.nearest = b.nearest
        a.util.merge(b.util)
        for sym, s in b.liq.items():
            mine = a.liq.get(sym)
            if mine is None:
                a.liq[sym] = s
            else:
                mine.merge(s)

    # ------------------------------------------------------------------ output

    def episodes(self, account: str) -> tuple[list[Episode], int]:
        """(episodes of ``account`` in start order — ongoing ones included —, number of
        finished episodes left out beyond ``max_episodes``)."""
        a = self.accounts[account]
        closed = sorted(a.closed, key=Episode.sort_key)
        dropped = max(0, a.closed_total - self.max_episodes)
        closed = closed[: self.max_episodes]
        eps = sorted(closed + list(a.open.values()), key=Episode.sort_key)
        return eps, dropped

    def utilization_series(self, account: str) -> Series:
        return self.accounts[account].util

    def liquidation_series(self, account: str) -> dict[str, Series]:
        return self.accounts[account].liq

    @property
    def settle_currency(self) -> str | None:
        """The settle currency when every decision that said one said the same."""
        return next(iter(self.settle)) if len(self.settle) == 1 else None

    @property
    def period(self) -> tuple[int | None, int | None]:
        lo = [a.min_ts for a in self.accounts.values() if a.min_ts is not None]
        hi = [a.max_ts for a in self.accounts.values() if a.max_ts is not None]
        return (min(lo) if lo else None, max(hi) if hi else None)

    def rules(self) -> dict[str, dict]:
        """Per rule: type, violations, by severity."""
        out: dict[str, dict] = {}
        for rule, n in _sorted_counts(self.by_rule).items():
            sev = {
                s: self.rule_severity[(rule, s)]
                for s in reversed(SEVERITIES)
                if (rule, s) in self.rule_severity
            }
            for (r, s), c in self.rule_severity.items():  # severities outside the four
                if r == rule and s not in sev:
                    sev[s] = c
            out[rule] = {"type": self.rule_types.get(rule), "violations": n, "bySeverity": sev}
        return out

    @staticmethod
    def _util_dict(k: tuple | None) -> dict | None:
        if k is None:
            return None
        return {"value": -k[0], "account": k[2], "timestamp": iso_ms(k[1]), "ref": k[3] or None}

    @staticmethod
    def _nearest_dict(k: tuple | None) -> dict | None:
        if k is None:
            return None
        return {
            "distancePct": k[0],
            "account": k[2],
            "symbol": k[3],
            "side": k[4] or None,
            "timestamp": iso_ms(k[1]),
            "ref": k[5] or None,
        }

    def to_dict(self, *, series: bool = False) -> dict:
        """The summary as JSON-ready data; ``series=True`` adds the plot series."""
        first, last = self.period
        accounts: dict[str, dict] = {}
        for name in sorted(self.accounts):
            a = self.accounts[name]
            eps, dropped = self.episodes(name)
            d = {
                "snapshots": a.n,
                "first": iso_ms(a.min_ts),
                "last": iso_ms(a.max_ts),
                "decisions": _sorted_counts(a.decisions),
                "snapshotsWithViolations": a.with_violations,
                "violations": a.violations,
                "worstUtilization": self._util_dict(a.worst_util),
                "nearestLiquidation": self._nearest_dict(a.nearest),
                "outOfOrder": a.out_of_order,
                "episodes": [e.to_dict() for e in eps],
                "episodesOngoing": len(a.open),
                "episodesLeftOut": dropped,
            }
            if series:
                d["series"] = {
                    "marginUtilization": a.util.to_dict(),
                    "liquidationDistancePct": {s: a.liq[s].to_dict() for s in sorted(a.liq)},
                }
            accounts[name] = d
        return {
            "snapshots": self.snapshots,
            "badRecords": self.bad_records,
            "badRecordExamples": list(self.bad_examples),
            "period": {"first": iso_ms(first), "last": iso_ms(last)},
            "settle": self.settle_currency,
            "decisions": _sorted_counts(self.decisions),
            "wouldDecide": _sorted_counts(self.would_decide),
            "snapshotsWithViolations": self.with_violations,
            "violations": self.violations,
            "byRule": _sorted_counts(self.by_rule),
            "byCode": _sorted_counts(self.by_code),
            "bySeverity": {
                s: self.by_severity[s]
                for s in [*reversed(SEVERITIES), *sorted(set(self.by_severity) - set(SEVERITIES))]
                if s in self.by_severity
            },
            "byAccount": _sorted_counts(self.by_account),
            "bySymbol": _sorted_counts(self.by_symbol),
            "rules": self.rules(),
            "worstUtilization": self._util_dict(self.worst_util),
            "nearestLiquidation": self._nearest_dict(self.nearest),
            "accounts": accounts,
        }


# --------------------------------------------------------------------------- text


def _when(iso: str | None) -> str:
    return when(iso, missing="(no time)", zone=" UTC")


def _table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    right = right or set()
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def fmt(r: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)
        ).rstrip()

    return [
        "  " + fmt(headers),
        "  " + "  ".join("-" * w for w in widths),
        *("  " + fmt(r) for r in rows),
    ]


def render_text(summary: Summary, *, max_rows: int = 10) -> str:
    """The summary for a terminal: outcomes, breaches by rule, worst figures, accounts."""
    d = summary.to_dict()
    lines: list[str] = []
    first, last = d["period"]["first"], d["period"]["last"]
    if first:
        lines.append(f"period: {_when(first)} → {_when(last)}")
    outcomes = " · ".join(f"{k} {count(v)}" for k, v in d["decisions"].items())
    lines.append(f"decisions: {outcomes or 'none'}")
    if d["wouldDecide"]:
        lines.append(
            "monitor mode, would have decided: "
            + " · ".join(f"{k} {count(v)}" for k, v in d["wouldDecide"].items())
        )
    lines.append(
        f"violations: {count(d['violations'])} in {count(d['snapshotsWithViolations'])} of "
        f"{count(d['snapshots'])} snapshots"
        + (
            " (" + " · ".join(f"{k} {count(v)}" for k, v in d["bySeverity"].items()) + ")"
            if d["bySeverity"]
            else ""
        )
    )
    if d["badRecords"]:
        lines.append(f"bad records: {count(d['badRecords'])} (not evaluated)")
    if d["rules"]:
        lines.append("")
        lines.append("breaches by rule")
        rows = []
        for rule, r in list(d["rules"].items())[:max_rows]:
            sev = ", ".join(f"{s} {count(c)}" for s, c in r["bySeverity"].items())
            rows.append([rule, r["type"] or "", count(r["violations"]), sev])
        lines += _table(["rule", "type", "violations", "severity"], rows, {2})
        if len(d["rules"]) > max_rows:
            lines.append(f"  … {len(d['rules']) - max_rows} more rules")
    if d["byCode"]:
        lines.append("")
        lines.append("reason codes")
        rows = [[c, count(n)] for c, n in list(d["byCode"].items())[:max_rows]]
        lines += _table(["code", "violations"], rows, {1})
    settle = d["settle"] or "settle currency"
    wu, nl = d["worstUtilization"], d["nearestLiquidation"]
    if wu or nl:
        lines.append("")
    if wu:
        lines.append(
            f"worst margin utilization: {pct(wu['value'])} — {wu['account']} at "
            f"{_when(wu['timestamp'])}" + (f" ({wu['ref']})" if wu["ref"] else "")
        )
    if nl:
        lines.append(
            f"nearest liquidation: {nl['distancePct']:.2f} % from mark — {nl['account']} "
            f"{nl['symbol']} {nl['side'] or ''} at {_when(nl['timestamp'])}"
            + (f" ({nl['ref']})" if nl["ref"] else "")
        )
    if d["accounts"]:
        lines.append("")
        lines.append(f"accounts (figures in {settle} and % of equity)")
        rows = []
        names = sorted(d["accounts"], key=lambda k: (-d["accounts"][k]["violations"], k))
        for name in names[:max_rows]:
            a = d["accounts"][name]
            eps = a["episodes"]
            rows.append(
                [
                    name,
                    count(a["snapshots"]),
                    count(a["snapshotsWithViolations"]),
                    count(len(eps) + a["episodesLeftOut"]),
                    count(a["episodesOngoing"]),
                    pct(a["worstUtilization"]["value"]) if a["worstUtilization"] else "—",
                    f"{a['nearestLiquidation']['distancePct']:.2f} %"
                    if a["nearestLiquidation"]
                    else "—",
                ]
            )
        lines += _table(
            [
                "account",
                "snapshots",
                "in breach",
                "episodes",
                "ongoing",
                "worst util.",
                "nearest liq.",
            ],
            rows,
            {1, 2, 3, 4, 5, 6},
        )
        if len(names) > max_rows:
            lines.append(f"  … {len(names) - max_rows} more accounts")
        longest = []
        for name, a in d["accounts"].items():
            for e in a["episodes"]:
                longest.append((-(e["durationS"] or 0), name, e))
        longest.sort(key=lambda x: (x[0], x[1], x[2]["start"] or "", x[2]["rule"]))
        if longest:
            lines.append("")
            lines.append("longest breach episodes")
            rows = []
            for _neg, name, e in longest[:max_rows]:
                rows.append(
                    [
                        name,
                        e["rule"],
                        e["symbol"] or "(account)",
                        _when(e["start"]),
                        "ongoing" if e["ongoing"] else _when(e["end"]),
                        duration(e["durationS"], keep_seconds=True),
                        count(e["snapshots"]),
                    ]
                )
            lines += _table(
                ["account", "rule", "symbol", "start", "end", "duration", "snapshots"],
                rows,
                {6},
            )
        ooo = sum(a["outOfOrder"] for a in d["accounts"].values())
        if ooo:
            lines.append(
                f"note: {count(ooo)} snapshots arrived out of timestamp order; episodes follow input order"
            )
    return "\n".join(lines) + "\n"
