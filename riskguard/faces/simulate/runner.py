"""The simulation loop: price path → paper exchange → Guard.check → executor → fills.

For every (policy, path) pair — and always for "no policy", the baseline — a fresh
:class:`~riskguard.paper.PaperExchange` is opened on the starting account and the path is
played step by step:

1. the step's marks move the paper exchange (an OHLCV candle is played as open, the two
   extremes in their likely order, close, so a wick liquidates even if the close
   recovers); resting stops and limits fill, funding is paid, liquidations happen where
   the margin model puts them;
2. every ``every`` steps (default 1: every step) the account is read back as a snapshot
   and checked by a :class:`~riskguard.Guard` whose clock is the path's clock;
3. the decision's actions of the types in ``execute`` are applied through
   :class:`~riskguard.contrib.ccxt_guard.CcxtExecutor` — the code a live account uses —
   against the paper exchange, which fills or refuses them as the real exchange would.
   A refusal (Binance ``-4048`` …) is recorded once and not re-sent until the account
   changes (a fill or a liquidation), as a bot would not hammer an exchange with the
   same rejected request every minute.

Nothing in the loop favours a policy: the baseline and every policy see the same path,
the same fees and slippage, and the same liquidation rule; a stop that fills at a bad
price, or a margin-mode switch that strips a position of the cross pool's support,
shows up in the numbers as it happened.

Everything recorded is a function of the inputs (the Guard's clock is the path's, no
wall-clock time or random decision ids reach the result), so the JSON result is
byte-identical for the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from riskguard.paper import PaperExchange
from riskguard.paper.prices import PricePath
from riskguard.paper.state import DEFAULT_TAKER_FEE

#: actions the simulated guard may apply by default: the ones that reduce risk
DEFAULT_EXECUTE = (
    "set_stop_loss",
    "reduce_position",
    "close_position",
    "switch_margin_mode",
    "add_isolated_margin",
)
#: every action type an executor can apply on an exchange
EXECUTABLE = DEFAULT_EXECUTE


@dataclass(frozen=True, slots=True)
class SimOptions:
    execute: tuple[str, ...] = DEFAULT_EXECUTE
    min_severity: str = "error"  # the executor's default: apply what the policy enforces
    every: int = 1
    taker_fee: float | None = None  # None: the account's takerFeeRate, else 0.05 %
    maker_fee: float = 0.0002
    slippage_bps: float = 0.0
    funding_rate: float | None = None
    seed: int = 0
    rebase: bool = True
    series_points: int = 400
    max_markers: int = 200

    def to_dict(self) -> dict:
        return {
            "execute": list(self.execute),
            "minSeverity": self.min_severity,
            "every": self.every,
            "takerFee": self.taker_fee,
            "makerFee": self.maker_fee,
            "slippageBps": self.slippage_bps,
            "fundingRate": self.funding_rate,
            "seed": self.seed,
            "rebase": self.rebase,
        }


@dataclass(frozen=True, slots=True)
class PolicyUnderTest:
    name: str
    policy: Any  # CompiledPolicy | None (None: the "no policy" baseline)
    file: str | None = None


BASELINE = PolicyUnderTest("no policy", None, None)


def rebased(path: PricePath, marks: dict[str, float]) -> PricePath:
    """The path scaled per symbol so its first open equals the account's mark: the same
    percentage moves, replayed from where the account stands."""
    first = path.first_marks()
    cols = {}
    for sym, col in path.candles.items():
        f = marks[sym] / first[sym] if sym in marks and sym in first else 1.0
        if f == 1.0:
            cols[sym] = col
            continue
        cols[sym] = [
            None if c is None else (c[0] * f, c[1] * f, c[2] * f, c[3] * f, c[4]) for c in col
        ]
    params = {**path.params, "rebased": sorted(s for s in cols if s in marks and s in first)}
    return replace(path, candles=cols, params=params)


def candles_needed(policy: Any) -> int:
    """How many raw candles the guard must see: 0 when every rule reads ATR% (period 14)
    and realized volatility (window 20) — riskguard's enrichment defaults, which the paper
    exchange keeps incrementally (O(1) a step) and hands over as figures. A rule with
    another period gets the candles themselves (O(candles) a check, exact)."""
    if policy is None:
        return 0
    need = 0
    for spec in getattr(policy, "specs", ()):
        params = getattr(spec, "params", None) or {}
        period = params.get("atrPeriod")
        if isinstance(period, int) and period != 14:
            need = max(need, 3 * period + 1)
        window = params.get("realizedVolWindow")
        if isinstance(window, int) and window != 20:
            need = max(need, window + 1)
    return max(need, 50) if need else 0


def reads_realized_vol(policy: Any) -> bool:
    """Whether a rule of ``policy`` may read a market's realized volatility: a built-in rule
    with ``realizedVolPctAbove`` set, or any plugin code (which may read any figure). When
    none does, the paper exchange keeps ATR% only — the decisions are the same."""
    if policy is None:
        return False
    from riskguard.faces.guard import _plugin_margin_models

    if _plugin_margin_models(policy) is None:  # a plugin rule type or enrichment hook
        return True
    return any(
        (getattr(spec, "params", None) or {}).get("realizedVolPctAbove") is not None
        for spec in getattr(policy, "specs", ())
    )


def _key(a: Any) -> tuple:
    """What makes two refused requests the same request (amounts and prices drift with
    the mark every step; the exchange's answer to "switch BTC to isolated" does not)."""
    return (a.type, a.symbol, a.params.get("to"))


def run_one(
    account: Any,
    put: PolicyUnderTest,
    path: PricePath,
    opts: SimOptions,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Play ``path`` against ``account`` under ``put``; the run's figures as a dict."""
    from riskguard.contrib.ccxt_guard import CcxtExecutor
    from riskguard.faces.guard import Guard
    from riskguard.margin.metrics import compute_metrics

    candles = candles_needed(put.policy)
    ex = PaperExchange(
        account,
        taker_fee=opts.taker_fee,
        maker_fee=opts.maker_fee,
        slippage_bps=opts.slippage_bps,
        funding_rate=opts.funding_rate,
        snapshot_candles=candles,
        market_stats=candles == 0,
        # no candle history when the checks read ATR% and volatility from the stats
        candle_history=1000 if candles else 0,
        realized_vol=reads_realized_vol(put.policy),
    )
    acct = ex.account
    name = acct.name
    guard = executor = None
    if put.policy is not None:
        # previews off: the run reads outcomes and actions, never the what-if figures
        guard = Guard(put.policy, clock=lambda: ex.now / 1000.0, previews=False)
        executor = CcxtExecutor(
            ex, apply=opts.execute, attempt_infeasible=True, min_severity=opts.min_severity
        )
    # the executor's own filter, asked before handing it a decision (most steps' actions
    # are advice below it: no decision copy, no executor call for them)
    accepts = executor.accepts if executor is not None else None
    start_equity = ex.equity()
    peak = start_equity
    mdd = mdd_amount = 0.0
    n = len(path)
    sample = max(1, n // max(opts.series_points, 1))
    series_t: list[int] = []
    series_eq: list[float] = []
    series_dist: list[float | None] = []
    markers: list[dict] = []
    proposed: dict[str, int] = {}
    applied: dict[str, int] = {}
    refused: dict[str, int] = {}
    failed: dict[str, int] = {}
    breach: dict[str, int] = {}
    refusals: list[dict] = []
    refused_keys: set[tuple] = set()
    evaluations = 0
    every = max(1, opts.every)
    marks_of = PricePath.marks
    flat = path.source != "file"  # generated candles are flat: o = h = l = c
    step = ex.step
    dropped_markers = 0

    def sample_point(ts: int) -> None:
        series_t.append(ts)
        series_eq.append(ex.equity())
        if acct.positions:
            m = compute_metrics(ex.snapshot(), ex.model)
            ds = [
                p.liquidationDistancePct
                for p in m.positions
                if p.liquidationDistancePct is not None
            ]
            series_dist.append(min(ds) if ds else None)
        else:
            series_dist.append(None)

    sample_point(ex.now)
    for i, (ts, row) in enumerate(path.closes() if flat else path.steps()):
        # the candle's marks in order; the last sub-step records the candle
        if flat:  # generated paths: one mark per candle, the close
            step(row, ts)
        else:
            subs = [(s, marks_of(c)) for s, c in row.items()]
            depth = max((len(m) for _s, m in subs), default=1)
            for j in range(depth - 1):
                step({s: m[min(j, len(m) - 1)] for s, m in subs}, ts, record=False)
            step({s: m[-1] for s, m in subs}, ts, candles={s: (ts, *c) for s, c in row.items()})
        dirty = False
        if ex.events:
            for e in ex.drain_events():
                if e["type"] == "liquidation" and len(markers) < opts.max_markers:
                    markers.append(
                        {"timestamp": ts, "kind": "liquidation", "scope": e["scope"],
                         "symbols": [p["symbol"] for p in e["positions"]], "loss": e["loss"]}
                    )  # fmt: skip
            refused_keys.clear()  # the account changed: a refused request may now pass
        if guard is not None and i % every == 0 and acct.positions:
            d = guard.check(ex.snapshot())
            evaluations += 1
            seen = set()
            for v in d.violations:
                if v.rule not in seen:
                    seen.add(v.rule)
                    breach[v.rule] = breach.get(v.rule, 0) + every
            todo = []
            for a in d.actions:
                proposed[a.type] = proposed.get(a.type, 0) + 1
                if accepts(a) and _key(a) not in refused_keys:  # type: ignore[misc]
                    todo.append(a)
            if todo:
                run = executor.execute(replace(d, actions=tuple(todo)))  # type: ignore[union-attr]
                for r in run.results:
                    t = r.action.type
                    if r.status == "applied":
                        applied[t] = applied.get(t, 0) + 1
                        if len(markers) < opts.max_markers:
                            markers.append(
                                {"timestamp": ts, "kind": "action", "type": t,
                                 "symbol": r.action.symbol}
                            )  # fmt: skip
                        else:
                            dropped_markers += 1
                    elif r.status in ("refused", "failed"):
                        tally = refused if r.status == "refused" else failed
                        tally[t] = tally.get(t, 0) + 1
                        refused_keys.add(_key(r.action))
                        if len(refusals) < 20:
                            refusals.append(
                                {"timestamp": ts, "type": t, "symbol": r.action.symbol,
                                 "status": r.status, "exchangeCode": r.exchangeCode,
                                 "error": r.error}
                            )  # fmt: skip
                if ex.events:
                    ex.events.clear()  # the executor's own fills
                    dirty = True
        # Σ uPnL as of this step's liquidation check, unless the executor traded since
        eq = ex.equity() if dirty or acct.balances else acct.wallet + acct.upnl
        if eq > peak:
            peak = eq
        elif peak > 0:
            dd = peak - eq
            if dd > mdd_amount:
                mdd_amount = dd
                mdd = dd / peak
        if (i + 1) % sample == 0 or i == n - 1:
            sample_point(ts)
        if progress is not None and (i & 1023) == 1023:
            progress(1024)
    if progress is not None:
        progress(n & 1023)
    liqs = [e for e in acct.liquidations if e["account"] == name]
    final = ex.equity()
    return {
        "policy": put.name,
        "liquidations": len(liqs),
        "positionsLiquidated": sum(len(e["positions"]) for e in liqs),
        "liquidationLoss": sum(e["loss"] for e in liqs),
        "liquidationEvents": [
            {
                "timestamp": e["timestamp"],
                "scope": e["scope"],
                "loss": e["loss"],
                "symbols": [p["symbol"] for p in e["positions"]],
            }
            for e in liqs
        ],
        "startEquity": start_equity,
        "finalEquity": final,
        "pnl": final - start_equity,
        "maxDrawdown": mdd,
        "maxDrawdownAmount": mdd_amount,
        "feesPaid": acct.fees,
        "fundingPaid": acct.funding,
        "openPositionsAtEnd": len(acct.positions),
        "evaluations": evaluations,
        "timeInBreach": {
            r: {"steps": min(s, n), "fraction": min(s, n) / n if n else 0.0}
            for r, s in sorted(breach.items())
        },
        "actions": {
            "proposed": dict(sorted(proposed.items())),
            "applied": dict(sorted(applied.items())),
            "refused": dict(sorted(refused.items())),
            "failed": dict(sorted(failed.items())),
        },
        "refusals": refusals,
        "markers": markers,
        "markersDropped": dropped_markers,
        "series": {"t": series_t, "equity": series_eq, "liquidationDistancePct": series_dist},
    }


@dataclass(frozen=True, slots=True)
class _RunTask:
    """One (policy, path) run for a worker process. The policy travels as its compiled
    document and digest (the audit workers' :class:`~riskguard.batch.run.AuditConfig`),
    reloaded there with the same plugins and checked to compile to the same digest."""

    account: Any
    name: str
    file: str | None
    config: Any  # AuditConfig | None (the baseline)
    path: PricePath
    opts: SimOptions


_LOADED: dict[tuple, Any] = {}  # per worker process: each policy compiled once


def _run_task(t: _RunTask) -> dict:
    policy = None
    if t.config is not None:
        key = (t.config.policy_digest, t.config.plugins)
        policy = _LOADED.get(key)
        if policy is None:
            policy = _LOADED[key] = t.config.load()
    return run_one(t.account, PolicyUnderTest(t.name, policy, t.file), t.path, t.opts)


def _run_parallel(
    account: Any,
    tasks: list[tuple[PricePath, PolicyUnderTest]],
    opts: SimOptions,
    workers: int,
    plugins: tuple[str, ...],
    progress: Callable[[int], None] | None,
) -> list[dict]:
    """The runs on ``workers`` processes; results in ``tasks`` order (the document is the
    one a single process makes, byte for byte), progress as each run finishes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from riskguard.batch.parallel import close_pool
    from riskguard.batch.run import AuditConfig

    configs: dict[int, Any] = {}
    jobs = []
    for path, put in tasks:
        cfg = None
        if put.policy is not None:
            cfg = configs.get(id(put.policy))
            if cfg is None:
                cfg = configs[id(put.policy)] = AuditConfig.for_policy(put.policy, plugins=plugins)
        jobs.append(_RunTask(account, put.name, put.file, cfg, path, opts))
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    results: list[dict | None] = [None] * len(jobs)
    ex = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx)
    done = False
    try:
        futures = {ex.submit(_run_task, job): i for i, job in enumerate(jobs)}
        for f in as_completed(futures):
            i = futures[f]
            results[i] = f.result()
            if progress is not None:
                progress(len(jobs[i].path))
        done = True
    finally:
        # Ctrl-C or a failed run: the runs still playing are ended, not waited for
        close_pool(ex, failed=not done)
    return results  # type: ignore[return-value]


def simulate(
    account: Any,
    policies: list[PolicyUnderTest],
    paths: list[PricePath],
    opts: SimOptions = SimOptions(),
    progress: Callable[[int], None] | None = None,
    *,
    workers: int = 1,
    plugins: tuple[str, ...] | list[str] = (),
) -> dict:
    """Every policy (after the baseline) over every path; the whole result document.

    ``workers`` > 1 plays the runs on that many processes (each run is one process's
    work: a single run is never split); the document is the same byte for byte.
    ``plugins`` are the plugin files the policies were compiled with, which the worker
    processes load too."""
    from riskguard.faces.simulate.result import build_result
    from riskguard.model.snapshot import load_snapshot

    snap = load_snapshot(account)
    marks: dict[str, float] = {}
    for p in snap.positions:
        mk = snap.mark_price(p)
        if mk is not None:
            marks[p.symbol] = mk
    for sym, m in snap.markets.items():
        if m.markPrice is not None:
            marks.setdefault(sym, m.markPrice)
    if opts.taker_fee is None:  # the result states the rate every run paid
        stated = (snap.extra or {}).get("takerFeeRate")
        opts = replace(
            opts,
            taker_fee=float(stated) if isinstance(stated, (int, float)) else DEFAULT_TAKER_FEE,
        )
    played = []
    tasks: list[tuple[PricePath, PolicyUnderTest]] = []
    for path in paths:
        if opts.rebase and path.source == "file":
            path = rebased(path, marks)
        played.append(path)
        tasks.extend((path, put) for put in [BASELINE, *policies])
    if workers > 1 and len(tasks) > 1:
        runs = _run_parallel(snap, tasks, opts, workers, tuple(plugins), progress)
    else:
        runs = [run_one(snap, put, path, opts, progress) for path, put in tasks]
    for (path, _put), r in zip(tasks, runs, strict=True):
        r["scenario"] = path.name
    return build_result(snap, policies, played, runs, opts)
