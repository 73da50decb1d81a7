"""Price paths for the paper exchange: OHLCV files, generated paths, stress scenarios.

A :class:`PricePath` is a sequence of steps ``(timestamp_ms, {symbol: candle})`` with a
candle ``(open, high, low, close, volume)`` per symbol; :meth:`PricePath.marks` gives the
marks a step passes through (``open``, the two extremes in the order the candle most
likely took them, ``close`` — a falling candle goes open → high → low → close, a rising
one open → low → high → close), so a wick liquidates even when the close recovers.

Sources:

- **CSV** with the header ``timestamp,symbol,open,high,low,close,volume`` (timestamp in
  epoch ms, several symbols in one file, rows in any order): :func:`read_csv`.
- **JSON Lines** in ccxt's OHLCV shape, one ``[ts, o, h, l, c, v]`` per line, one symbol
  per file (``SYMBOL=path`` on the command line): :func:`read_jsonl`.
- **Generated**: :func:`gbm` (geometric Brownian motion with Poisson jumps and a common
  factor across symbols), :func:`gap` (one instant gap), and the named stress scenarios
  of :data:`SCENARIOS` (:func:`scenario`), each a piecewise path whose parameters are
  stated on the scenario and in ``docs/simulate.md``.

Generated paths are seeded (``random.Random(seed)``, whose sequence Python guarantees
for a given seed) so the same arguments give the same path on every machine.

A step where a symbol has no row keeps its last mark (a gap in the data is no move).
Bad input raises :class:`riskguard.RiskguardError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from riskguard.errors import Problem, RiskguardError

MINUTE = 60_000
CSV_HEADER = ("timestamp", "symbol", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class PricePath:
    """A price path: timestamps and per-symbol candles (columns, for memory)."""

    name: str
    timestamps: tuple[int, ...]
    candles: dict  # symbol -> list[tuple[o, h, l, c, v] | None] aligned with timestamps
    source: str = "generated"  # generated | scenario | file
    params: dict = field(default_factory=dict)
    description: str = ""

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.candles)

    def steps(self) -> Iterator[tuple[int, dict]]:
        """``(timestamp, {symbol: (o, h, l, c, v)})`` per step (symbols without a row omitted)."""
        return self._rows(None)

    def closes(self) -> Iterator[tuple[int, dict]]:
        """``(timestamp, {symbol: close})`` per step: :meth:`steps` for a path whose
        candles are flat (generated: o = h = l = c), without building each row twice."""
        return self._rows(3)

    def _rows(self, field: int | None) -> Iterator[tuple[int, dict]]:
        """Each step's candles (``field`` None) or one field of each, by symbol."""
        cols = list(self.candles.items())
        for i, ts in enumerate(self.timestamps):
            row = {}
            for sym, col in cols:
                c = col[i]
                if c is not None:
                    row[sym] = c if field is None else c[field]
            yield ts, row

    @staticmethod
    def marks(candle: tuple) -> tuple[float, ...]:
        """The marks one candle passes through (see the module docstring)."""
        o, h, low, c = candle[0], candle[1], candle[2], candle[3]
        if h <= max(o, c) and low >= min(o, c):
            return (c,) if o == c else (o, c)
        if c < o:
            return (o, h, low, c)
        return (o, low, h, c)

    def first_marks(self) -> dict[str, float]:
        out = {}
        for sym, col in self.candles.items():
            for c in col:
                if c is not None:
                    out[sym] = c[0]
                    break
        return out

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "steps": len(self.timestamps),
            "start": self.timestamps[0] if self.timestamps else None,
            "end": self.timestamps[-1] if self.timestamps else None,
            "symbols": list(self.candles),
            "params": self.params,
            "description": self.description,
        }


# --------------------------------------------------------------------------- files


def _bad(file: str, line: int, col: int | None, msg: str) -> RiskguardError:
    return RiskguardError([Problem(msg, "$", "invalid", file, line, col)])


def _num(text: str, file: str, line: int, col: int, name: str, positive: bool = True) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise _bad(file, line, col, f"{name}: expected a number, got {text!r}") from None
    if not math.isfinite(v) or (positive and v <= 0) or v < 0:
        raise _bad(
            file,
            line,
            col,
            f"{name}: expected a {'positive ' if positive else ''}finite number, got {text}",
        )
    return v


def _candle(o, h, low, c, v, file, line, col) -> tuple:
    if not (low <= min(o, c) and h >= max(o, c)):
        raise _bad(file, line, col, f"high/low do not enclose open/close ({o}, {h}, {low}, {c})")
    return (o, h, low, c, v)


def read_csv(path: str | Path, name: str | None = None) -> PricePath:
    """OHLCV CSV: header ``timestamp,symbol,open,high,low,close,volume``, ms timestamps."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RiskguardError(f"{file}: cannot read: {exc.strerror or exc}", file=file) from None
    rows: dict[str, dict[int, tuple]] = {}
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise _bad(
            file, 1, 1, f"the header must be {','.join(CSV_HEADER)}, got {','.join(header or [])!r}"
        )
    for n, rec in enumerate(reader, start=2):
        if not rec or all(not x.strip() for x in rec):
            continue
        if len(rec) != 7:
            raise _bad(file, n, None, f"expected 7 fields, got {len(rec)}")
        try:
            ts = int(rec[0])
        except ValueError:
            raise _bad(
                file, n, 1, f"timestamp: expected epoch milliseconds, got {rec[0]!r}"
            ) from None
        sym = rec[1].strip()
        if not sym:
            raise _bad(file, n, 2, "symbol is empty")
        col = len(rec[0]) + len(rec[1]) + 3
        o, h, low, c = (_num(rec[i], file, n, col, CSV_HEADER[i]) for i in range(2, 6))
        v = _num(rec[6] or "0", file, n, col, "volume", positive=False)
        if ts in rows.setdefault(sym, {}):
            raise _bad(file, n, 1, f"a second row for {sym} at {ts}")
        rows[sym][ts] = _candle(o, h, low, c, v, file, n, col)
    if not rows:
        raise _bad(file, 2, None, "no rows")
    return _align(rows, name or path.stem, file)


def read_jsonl(path: str | Path, symbol: str, name: str | None = None) -> PricePath:
    """ccxt OHLCV JSON Lines for one symbol: ``[ts, open, high, low, close, volume]`` per line."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RiskguardError(f"{file}: cannot read: {exc.strerror or exc}", file=file) from None
    rows: dict[int, tuple] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(file, n, exc.colno, f"not JSON: {exc.msg}") from None
        if not isinstance(r, list) or len(r) < 5:
            raise _bad(
                file, n, 1, "expected ccxt's OHLCV row [timestamp, open, high, low, close, volume]"
            )
        if isinstance(r[0], bool) or not isinstance(r[0], (int, float)):
            raise _bad(file, n, 1, f"timestamp: expected epoch milliseconds, got {r[0]!r}")
        vals = [_num(str(x), file, n, 1, CSV_HEADER[i + 2]) for i, x in enumerate(r[1:5])]
        vol = _num(
            str(r[5] if len(r) > 5 and r[5] is not None else 0),
            file,
            n,
            1,
            "volume",
            positive=False,
        )
        ts = int(r[0])
        if ts in rows:
            raise _bad(file, n, 1, f"a second row at {ts}")
        rows[ts] = _candle(vals[0], vals[1], vals[2], vals[3], vol, file, n, 1)
    if not rows:
        raise _bad(file, 1, None, "no rows")
    return _align({symbol: rows}, name or path.stem, file)


def _align(rows: dict[str, dict[int, tuple]], name: str, file: str) -> PricePath:
    stamps = sorted({ts for r in rows.values() for ts in r})
    cols = {sym: [r.get(ts) for ts in stamps] for sym, r in rows.items()}
    return PricePath(name, tuple(stamps), cols, "file", {"file": file})


def merge(paths: list[PricePath], name: str | None = None) -> PricePath:
    """Several paths (e.g. one JSON Lines file per symbol) as one, aligned on timestamps."""
    if len(paths) == 1:
        return paths[0]
    rows: dict[str, dict[int, tuple]] = {}
    for p in paths:
        for sym, col in p.candles.items():
            if sym in rows:
                raise RiskguardError(f"{sym} comes from two price files ({p.name})")
            rows[sym] = {ts: c for ts, c in zip(p.timestamps, col, strict=True) if c is not None}
    out = _align(rows, name or "+".join(p.name for p in paths), "")
    return PricePath(
        out.name,
        out.timestamps,
        out.candles,
        "file",
        {"files": [p.params.get("file") for p in paths]},
    )


# --------------------------------------------------------------------------- generated


def _flat(price: float) -> tuple:
    return (price, price, price, price, 0.0)


def _common_noise(rng: random.Random, n_sym: int, corr: float) -> list[float]:
    """One standard-normal draw per symbol with pairwise correlation ``corr``."""
    z = rng.gauss(0.0, 1.0)
    a, b = math.sqrt(max(corr, 0.0)), math.sqrt(max(1.0 - corr, 0.0))
    return [a * z + b * rng.gauss(0.0, 1.0) for _ in range(n_sym)]


def gbm(
    start: dict[str, float],
    *,
    steps: int = 1440,
    step_ms: int = MINUTE,
    sigma: float = 0.6,
    drift: float = 0.0,
    correlation: float = 0.8,
    jumps_per_day: float = 0.0,
    jump_mean: float = -0.05,
    jump_std: float = 0.03,
    seed: int = 0,
    t0: int = 0,
    name: str = "gbm",
) -> PricePath:
    """Geometric Brownian motion with Merton jumps, one close per step (o = h = l = c).

    ``sigma`` and ``drift`` are annualised (365-day year); a jump arrives with probability
    ``jumps_per_day · step/day`` per step, hits every symbol at once, and moves the log
    price by ``N(jump_mean, jump_std)``; the diffusion shocks are correlated ``correlation``.
    """
    rng = random.Random(seed)
    syms = list(start)
    dt = step_ms / (365.0 * 86_400_000.0)
    vol = sigma * math.sqrt(dt)
    mu = (drift - 0.5 * sigma * sigma) * dt
    p_jump = jumps_per_day * step_ms / 86_400_000.0
    logp = [math.log(start[s]) for s in syms]
    cols: dict[str, list] = {s: [] for s in syms}
    stamps = []
    for i in range(steps):
        z = _common_noise(rng, len(syms), correlation)
        jump = rng.gauss(jump_mean, jump_std) if rng.random() < p_jump else 0.0
        for k, s in enumerate(syms):
            logp[k] += mu + vol * z[k] + jump
            cols[s].append(_flat(math.exp(logp[k])))
        stamps.append(t0 + (i + 1) * step_ms)
    params = {
        "steps": steps,
        "stepMs": step_ms,
        "sigma": sigma,
        "drift": drift,
        "correlation": correlation,
        "jumpsPerDay": jumps_per_day,
        "jumpMean": jump_mean,
        "jumpStd": jump_std,
        "seed": seed,
    }
    return PricePath(name, tuple(stamps), cols, "generated", params, "GBM with jumps")


def gap(
    start: dict[str, float],
    *,
    pct: float = -20.0,
    before: int = 60,
    after: int = 240,
    step_ms: int = MINUTE,
    t0: int = 0,
    name: str = "gap",
) -> PricePath:
    """Flat marks, then every symbol gaps by ``pct`` percent in one step, then flat."""
    cols: dict[str, list] = {s: [] for s in start}
    stamps = []
    for i in range(before + after):
        f = 1.0 if i < before else 1.0 + pct / 100.0
        for s, p in start.items():
            cols[s].append(_flat(p * f))
        stamps.append(t0 + (i + 1) * step_ms)
    return PricePath(
        name,
        tuple(stamps),
        cols,
        "generated",
        {"pct": pct, "before": before, "after": after, "stepMs": step_ms},
        f"every symbol gaps {pct:+g} % in one step",
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """A stress scenario: calm, a crash leg, a partial recovery, 1-minute steps.

    Every symbol's log price follows the same piecewise-linear shape scaled by its beta
    (BTC 1, every other symbol ``altBeta``; the depth is capped at 95 %), plus correlated
    Gaussian noise of ``noisePct`` per step with pairwise correlation ``correlation``.
    """

    name: str
    title: str
    depthPct: float  # the crash leg's fall (BTC), percent of the pre-crash price
    crashMinutes: int  # duration of the crash leg
    recoveryPct: float  # share of the fall recovered afterwards, percent
    recoveryMinutes: int
    correlation: float  # pairwise correlation of the per-step noise across symbols
    altBeta: float  # how much harder every non-BTC symbol falls (depth × beta)
    noisePct: float = 0.05  # standard deviation of the per-minute noise, percent
    calmMinutes: int = 120
    tailMinutes: int = 240
    direction: int = -1  # -1 a crash, +1 a squeeze
    history: str = ""  # what it is shaped after, with a public source

    def params(self) -> dict:
        return {
            "depthPct": self.depthPct,
            "crashMinutes": self.crashMinutes,
            "recoveryPct": self.recoveryPct,
            "recoveryMinutes": self.recoveryMinutes,
            "correlation": self.correlation,
            "altBeta": self.altBeta,
            "noisePct": self.noisePct,
            "calmMinutes": self.calmMinutes,
            "tailMinutes": self.tailMinutes,
            "direction": "down" if self.direction < 0 else "up",
        }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "covid-2020",
            "Black Thursday, 12–13 March 2020",
            depthPct=50.0,
            crashMinutes=30 * 60,
            recoveryPct=20.0,
            recoveryMinutes=12 * 60,
            correlation=0.9,
            altBeta=1.1,
            history="BTC fell from about 7,900 to about 3,900 USD within roughly 30 hours "
            "(12–13 March 2020), ETH by more; https://en.wikipedia.org/wiki/2020_stock_market_crash",
        ),
        Scenario(
            "may-2021",
            "19 May 2021 sell-off",
            depthPct=30.0,
            crashMinutes=10 * 60,
            recoveryPct=50.0,
            recoveryMinutes=10 * 60,
            correlation=0.85,
            altBeta=1.3,
            history="BTC traded from about 43,000 to about 30,000 USD intraday on 19 May 2021 "
            "and closed near 37,000; https://en.wikipedia.org/wiki/Cryptocurrency_bubble",
        ),
        Scenario(
            "ftx-2022",
            "FTX collapse, 8–9 November 2022",
            depthPct=25.0,
            crashMinutes=40 * 60,
            recoveryPct=10.0,
            recoveryMinutes=24 * 60,
            correlation=0.8,
            altBeta=1.6,
            history="BTC fell from about 20,600 to about 15,700 USD over two days as FTX "
            "halted withdrawals, SOL far more; https://en.wikipedia.org/wiki/Bankruptcy_of_FTX",
        ),
        Scenario(
            "aug-2024",
            "Carry-trade unwind, 4–5 August 2024",
            depthPct=16.0,
            crashMinutes=18 * 60,
            recoveryPct=40.0,
            recoveryMinutes=18 * 60,
            correlation=0.9,
            altBeta=1.4,
            history="BTC fell from about 58,000 to about 49,000 USD and ETH more than 20 % "
            "as the yen carry trade unwound; https://en.wikipedia.org/wiki/2024_stock_market_crash",
        ),
        Scenario(
            "squeeze",
            "Short squeeze (generic)",
            depthPct=25.0,
            crashMinutes=6 * 60,
            recoveryPct=30.0,
            recoveryMinutes=6 * 60,
            correlation=0.8,
            altBeta=1.5,
            direction=1,
            history="a generic 25 % rally in six hours, not a historical replay: shorts' turn",
        ),
    )
}


def scenario(
    name: str | Scenario,
    start: dict[str, float],
    *,
    seed: int = 0,
    t0: int = 0,
    step_ms: int = MINUTE,
) -> PricePath:
    """The named stress scenario as a path from the marks in ``start``."""
    sc = name if isinstance(name, Scenario) else SCENARIOS.get(name)
    if sc is None:
        known = ", ".join([*SCENARIOS, "gap-down", "gap-up", "gbm", "gbm-jumps"])
        raise RiskguardError(f"unknown scenario {name!r}; known: {known}")
    rng = random.Random(seed)
    syms = list(start)
    legs = (
        (sc.calmMinutes, 0.0, 0.0),
        (sc.crashMinutes, 0.0, 1.0),
        (sc.recoveryMinutes, 1.0, 1.0 - sc.recoveryPct / 100.0),
        (sc.tailMinutes, 1.0 - sc.recoveryPct / 100.0, 1.0 - sc.recoveryPct / 100.0),
    )
    target = []
    for sym in syms:
        beta = 1.0 if sym.split("/")[0].upper() in ("BTC", "XBT") else sc.altBeta
        depth = min(sc.depthPct / 100.0 * beta, 0.95)
        target.append(math.log(1.0 - depth) if sc.direction < 0 else math.log(1.0 + depth))
    noise = [0.0] * len(syms)
    sd = sc.noisePct / 100.0
    cols: dict[str, list] = {s: [] for s in syms}
    stamps = []
    i = 0
    for n, a, b in legs:
        for j in range(n):
            frac = a + (b - a) * (j + 1) / n
            z = _common_noise(rng, len(syms), sc.correlation)
            for k, s in enumerate(syms):
                noise[k] += sd * z[k]
                cols[s].append(_flat(start[s] * math.exp(frac * target[k] + noise[k])))
            i += 1
            stamps.append(t0 + i * step_ms)
    return PricePath(
        sc.name, tuple(stamps), cols, "scenario", {**sc.params(), "seed": seed}, sc.title
    )


GENERATED = {
    "gap-down": lambda start, seed, t0: gap(start, pct=-20.0, t0=t0, name="gap-down"),
    "gap-up": lambda start, seed, t0: gap(start, pct=20.0, t0=t0, name="gap-up"),
    "gbm": lambda start, seed, t0: gbm(start, seed=seed, t0=t0, name="gbm"),
    "gbm-jumps": lambda start, seed, t0: gbm(
        start, seed=seed, t0=t0, jumps_per_day=4.0, name="gbm-jumps"
    ),
}

ALL = (*SCENARIOS, *GENERATED)


def named(name: str, start: dict[str, float], *, seed: int = 0, t0: int = 0) -> PricePath:
    """A scenario or generated path by name (``riskguard simulate --scenario NAME``)."""
    if name in GENERATED:
        return GENERATED[name](start, seed, t0)
    return scenario(name, start, seed=seed, t0=t0)
