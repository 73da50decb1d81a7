"""Alerts as episodes, not spam.

A breach is identified by ``(account, rule, symbol)``. The first decision that shows it
opens an **episode** (one alert); while it lasts, it alerts again only when its severity
**escalates** or every ``reminder`` seconds; the first decision without it **resolves**
it (one alert, with the duration). An account that cannot be seen opens a ``blind``
episode (critical) the same way. Episodes are plain data, so the state file can carry
them across a restart and a restart mid-episode does not alert "open" twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from riskguard.engine.decision import SEVERITY_RANK

BLIND_RULE = "watch.blind"
AUTH_RULE = "watch.authentication"
EXEC_RULE = "watch.execution"
HALT_RULE = "watch.halted"


@dataclass(frozen=True, slots=True)
class Episode:
    account: str
    rule: str
    symbol: str | None
    severity: str
    code: str
    message: str
    opened: float
    last_alert: float
    peak: str  # highest severity seen

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.account, self.rule, self.symbol)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Episode:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification: ``kind`` is open | escalate | remind | resolve | event."""

    kind: str
    account: str
    rule: str
    symbol: str | None
    severity: str
    message: str
    at: float
    duration: float | None = None
    code: str = ""

    @property
    def title(self) -> str:
        what = self.rule + (f" {self.symbol}" if self.symbol else "")
        return f"[riskguard] {self.kind.upper()} {self.severity} {self.account}: {what}"

    @property
    def body(self) -> str:
        if self.kind == "resolve" and self.duration is not None:
            return f"resolved after {_dur(self.duration)}: {self.message}"
        return self.message

    def to_dict(self) -> dict:
        return asdict(self)


def _dur(s: float) -> str:
    s = round(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


@dataclass(frozen=True, slots=True)
class Breach:
    rule: str
    symbol: str | None
    severity: str
    code: str
    message: str


def breaches_of(violations: Iterable) -> list[Breach]:
    """One breach per (rule, symbol), at its worst severity."""
    out: dict[tuple, Breach] = {}
    for v in violations:
        k = (v.rule, v.symbol)
        b = Breach(v.rule, v.symbol, v.severity, v.code, v.message)
        cur = out.get(k)
        if cur is None or SEVERITY_RANK[b.severity] > SEVERITY_RANK[cur.severity]:
            out[k] = b
    return list(out.values())


class EpisodeBook:
    """Open episodes of every account; ``update`` returns the alerts to send."""

    def __init__(self, reminder: float = 3600.0, episodes: Iterable[Episode] = ()) -> None:
        self.reminder = reminder
        self.open: dict[tuple, Episode] = {e.key: e for e in episodes}

    def of(self, account: str) -> list[Episode]:
        return [e for e in self.open.values() if e.account == account]

    def update(
        self,
        account: str,
        breaches: Iterable[Breach],
        now: float,
        *,
        rules: frozenset[str] | None = None,
    ) -> list[Alert]:
        """Apply one decision's breaches. ``rules`` limits which open episodes may resolve
        (None: every policy episode of the account; watcher episodes are never resolved here)."""
        alerts: list[Alert] = []
        seen: set[tuple] = set()
        for b in breaches:
            key = (account, b.rule, b.symbol)
            seen.add(key)
            alerts.extend(self._raise(key, b, now))
        for key, e in list(self.open.items()):
            if e.account != account or key in seen or e.rule.startswith("watch."):
                continue
            if rules is not None and e.rule not in rules:
                continue
            alerts.append(self._resolve(key, now))
        return alerts

    def raise_(self, account: str, b: Breach, now: float) -> list[Alert]:
        return self._raise((account, b.rule, b.symbol), b, now)

    def resolve(self, account: str, rule: str, symbol: str | None, now: float) -> list[Alert]:
        key = (account, rule, symbol)
        return [self._resolve(key, now)] if key in self.open else []

    def _raise(self, key: tuple, b: Breach, now: float) -> list[Alert]:
        e = self.open.get(key)
        account, rule, symbol = key
        if e is None:
            self.open[key] = Episode(
                account, rule, symbol, b.severity, b.code, b.message, now, now, b.severity
            )
            return [Alert("open", account, rule, symbol, b.severity, b.message, now, code=b.code)]
        if SEVERITY_RANK[b.severity] > SEVERITY_RANK[e.peak]:
            self.open[key] = replace(
                e,
                severity=b.severity,
                peak=b.severity,
                message=b.message,
                code=b.code,
                last_alert=now,
            )
            return [
                Alert("escalate", account, rule, symbol, b.severity, b.message, now, code=b.code)
            ]
        if now - e.last_alert >= self.reminder:
            self.open[key] = replace(e, severity=b.severity, message=b.message, last_alert=now)
            return [
                Alert(
                    "remind",
                    account,
                    rule,
                    symbol,
                    b.severity,
                    b.message,
                    now,
                    now - e.opened,
                    b.code,
                )
            ]
        if b.severity != e.severity or b.message != e.message:
            self.open[key] = replace(e, severity=b.severity, message=b.message)
        return []

    def _resolve(self, key: tuple, now: float) -> Alert:
        e = self.open.pop(key)
        return Alert(
            "resolve", e.account, e.rule, e.symbol, e.peak, e.message, now, now - e.opened, e.code
        )
