"""Batch evaluation of many snapshots (``riskguard audit``): stream in, decide, stream out.

Sources are resolved through the registered snapshot sources (file, directory, JSON
Lines, …). The input is cut into units of work: a :class:`LineRange` of a plain JSON
Lines file (the process that evaluates it reads those bytes itself), or a list of raw
records read here (gzip, stdin, documents). A unit is parsed, built and evaluated in one
place (this process, a pool worker or a Dask worker) and comes back as compact JSON
lines plus a :class:`~riskguard.batch.summary.Summary` of the chunk, so every engine runs the
very same code (:func:`run_chunk`) and results are identical whichever engine ran them.

Guarantees the command relies on:

- constant memory: records are read lazily and at most a bounded window of chunks is
  in flight; nothing grows with the input except the summary;
- a bad record (malformed JSON, schema violation) becomes a :class:`BadRecord` naming
  its file and line; it is counted and the run goes on;
- decisions are written in input order and flushed chunk by chunk, so an interrupted
  run keeps every decision already evaluated, as complete lines;
- reproducible: the evaluation clock is the snapshot's own timestamp (or one clock fixed
  for the whole run when a snapshot has none), never the wall clock of each decision.
"""

from __future__ import annotations

import gc
import glob
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

from riskguard.batch.summary import Summary
from riskguard.batch.tiermemo import build_snapshot_memo, read_snapshot, snapshot_digest
from riskguard.engine.decision import SEVERITY_RANK
from riskguard.engine.evaluate import evaluate
from riskguard.engine.plugins import Registry
from riskguard.engine.policy import CompiledPolicy, load_policy
from riskguard.engine.sources import DOC_SUFFIXES, JSONL_SUFFIXES
from riskguard.errors import Problem, RiskguardError

#: Records per chunk: large enough that per-chunk IPC and summary merging are noise,
#: small enough that a chunk is well under a second of work and a few MB in flight.
DEFAULT_CHUNK_SIZE = 256
#: Bad records kept (and printed) in full; the rest are only counted.
MAX_BAD_EXAMPLES = 100
METRICS_MODES = ("compact", "full")

_ENDS_WITH_LINE = re.compile(r":\d+$")


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be evaluated: where it is (``file[:line]``) and why."""

    ref: str
    message: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}"

    def to_dict(self) -> dict:
        return {"ref": self.ref, "message": self.message}


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Everything a worker needs to evaluate chunks exactly as this process would.

    The policy travels as its compiled document (not a path) so a remote Dask worker
    needs no copy of the policy files; the digest proves it compiled to the same policy.
    Plugin files must exist at the same paths wherever the workers run.
    """

    policy_document: dict
    policy_digest: str
    plugins: tuple[str, ...] = ()
    metrics: str = "compact"
    clock_ms: int = 0  # evaluation clock for snapshots without a timestamp
    write: bool = True  # False: decisions only feed the summary (no --out)
    form: str = "full"  # the written decisions: full | compact

    @classmethod
    def for_policy(
        cls,
        policy: CompiledPolicy,
        *,
        plugins: Iterable[str] = (),
        metrics: str = "compact",
        clock_ms: int | None = None,
        write: bool = True,
        form: str = "full",
    ) -> AuditConfig:
        if metrics not in METRICS_MODES:
            raise ValueError(f"metrics must be one of {METRICS_MODES}, got {metrics!r}")
        if form not in DECISION_FORMS:
            raise ValueError(f"form must be one of {DECISION_FORMS}, got {form!r}")
        return cls(
            policy.document,
            policy.digest,
            tuple(str(Path(p).resolve()) for p in plugins),
            metrics,
            int(time.time() * 1000) if clock_ms is None else clock_ms,
            write,
            form,
        )

    def load(self) -> CompiledPolicy:
        policy = load_policy(self.policy_document, plugins=self.plugins)
        if policy.digest != self.policy_digest:
            raise RiskguardError(
                f"the policy compiled to {policy.digest} on this worker, expected "
                f"{self.policy_digest}: are the same riskguard version and plugins installed?"
            )
        return policy


@dataclass(slots=True)
class ChunkResult:
    """What one chunk produced: decision lines in input order, bad records, a summary."""

    #: the decision lines, UTF-8, each ending in a newline: one bytes object is copied
    #: through the pool's pipe and written as it is (a list of strings was ~10 µs a
    #: record of the parent's time to unpickle, join and encode)
    text: bytes
    written: int
    bad: list[BadRecord]
    snapshots: int
    worst: int  # highest severity rank seen, -1 for none
    summary: Summary | None  # None when the caller summarised in place


@dataclass(slots=True)
class AuditTotals:
    """The running totals of a whole audit (the parent's side)."""

    summary: Summary = field(default_factory=Summary)
    snapshots: int = 0
    bad_count: int = 0
    bad_examples: list[BadRecord] = field(default_factory=list)
    worst: int = -1
    written: int = 0
    chars_read: int = 0  # input consumed so far: characters of records, bytes of ranges
    engine: str = "sequential"
    interrupted: bool = False

    @property
    def worst_severity(self) -> str | None:
        from riskguard.engine.decision import SEVERITIES

        return SEVERITIES[self.worst] if self.worst >= 0 else None

    def absorb(self, res: ChunkResult) -> list[BadRecord]:
        """Fold a chunk in; returns the bad records worth showing (the first ones only)."""
        self.snapshots += res.snapshots
        if res.worst > self.worst:
            self.worst = res.worst
        if res.summary is not None:
            self.summary.merge(res.summary)
        shown: list[BadRecord] = []
        for b in res.bad:
            self.bad_count += 1
            if len(self.bad_examples) < MAX_BAD_EXAMPLES:
                self.bad_examples.append(b)
                shown.append(b)
        return shown


def new_summary() -> Summary:
    """An empty summary, as every engine makes them (one per chunk, or one per run)."""
    return Summary()


# --------------------------------------------------------------------------- inputs


def expand_inputs(inputs: list[str]) -> list[str]:
    """Expand globs (``**`` too); every input must exist or match something."""
    out: list[str] = []
    for item in inputs:
        if item != "-" and any(ch in item for ch in "*?[") and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise RiskguardError(
                    [Problem("no file matches this pattern", "$", "not_found", item)]
                )
            out.extend(matches)
        else:
            if item != "-" and not Path(item).exists():
                raise RiskguardError([Problem("no such file or directory", "$", "not_found", item)])
            out.append(item)
    return out


def iter_records(registry: Registry, inputs: list[str]) -> Iterator[tuple[str, Any]]:
    """``(ref, item)`` for every record of every input, lazily, in input order."""
    return iter_locations(registry, expand_inputs(inputs))


def iter_locations(registry: Registry, locations: list[str]) -> Iterator[tuple[str, Any]]:
    """``(ref, item)`` for every record of already expanded locations."""
    for loc in locations:
        for src in registry.snapshot_sources.values():
            if src.matches(loc):
                yield from src.open(loc)
                break
        else:
            yield (
                loc,
                RiskguardError(
                    [
                        Problem(
                            "not a snapshot file, directory or JSON Lines file "
                            "(.json .yaml .yml .jsonl .ndjson .gz)",
                            "$",
                            "unknown_input",
                            loc,
                        )
                    ]
                ),
            )


def bad_record(ref: str, exc: RiskguardError) -> BadRecord:
    """A located BadRecord: ``file:line`` for JSON Lines, ``file:line:column`` for documents."""
    problems = exc.problems
    p = problems[0] if problems else None
    where = ref
    msgs = []
    for q in problems[:5]:
        text = q.message if q.path == "$" else f"{q.path}: {q.message}"
        if q is p and q.line is not None:
            if _ENDS_WITH_LINE.search(ref):
                # One JSON Lines record: its line is already in ref; say the column.
                if q.column is not None:
                    text += f" (column {q.column})"
            else:
                where = f"{ref}:{q.line}" + (f":{q.column}" if q.column is not None else "")
        msgs.append(text)
    if len(problems) > 5:
        msgs.append(f"and {len(problems) - 5} more problems")
    return BadRecord(where, "; ".join(msgs) or str(exc))


def iter_chunks(
    records: Iterable[tuple[str, Any]], size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[list[tuple[str, Any]]]:
    """Group records into lists of ``size``; exceptions from sources become BadRecords here
    so chunks are plain picklable data (strings, dicts, BadRecords)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    it = iter(records)
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        yield _clean(chunk)


@dataclass(frozen=True, slots=True)
class LineRange:
    """Lines ``first…`` of a plain JSON Lines file, bytes ``[start, end)``.

    The unit of work for plain ``.jsonl`` files: the parent only finds line boundaries
    (a byte scan, well under a microsecond a line) and the process that evaluates the
    range reads it itself, so the parent's cost per record stays tiny however many
    workers there are and no record text crosses a pipe.
    """

    path: str
    start: int
    end: int
    first: int  # line number of the byte at ``start``

    def records(self) -> list[tuple[str, Any]]:
        """``(ref, line)`` for the non-blank lines of the range (what ``iter_jsonl`` yields)."""
        ref = self.path
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.start)
                data = fh.read(self.end - self.start)
        except OSError as exc:
            return [
                (f"{ref}:{self.first}", BadRecord(f"{ref}:{self.first}", f"cannot read: {exc}"))
            ]
        try:
            lines: list[Any] = data.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            lines = [_decode(raw) for raw in data.split(b"\n")]
        out: list[tuple[str, Any]] = []
        n = self.first
        for line in lines:
            if isinstance(line, Exception):
                out.append((f"{ref}:{n}", BadRecord(f"{ref}:{n}", f"not UTF-8 text: {line}")))
            elif line.strip():  # str.strip, as the line-by-line reader skips blank lines
                out.append((f"{ref}:{n}", line))
            n += 1
        return out


def _decode(raw: bytes) -> str | UnicodeDecodeError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc


#: Bytes read at a time when finding line boundaries.
_SCAN_BLOCK = 1 << 22


def iter_line_ranges(path: str, lines: int) -> Iterator[LineRange]:
    """Cut a plain JSON Lines file into ranges of ``lines`` lines (the last may be shorter)."""
    with open(path, "rb") as fh:
        start = 0  # file offset where the current range begins
        first = 1  # its first line number
        count = 0  # newlines seen in it so far
        offset = 0  # file offset of the current block
        while True:
            block = fh.read(_SCAN_BLOCK)
            if not block:
                break
            find = block.find
            pos = 0
            while True:
                nl = find(b"\n", pos)
                if nl < 0:
                    break
                pos = nl + 1
                count += 1
                if count == lines:
                    end = offset + pos
                    yield LineRange(path, start, end, first)
                    start, first, count = end, first + lines, 0
            offset += len(block)
        if offset > start:
            yield LineRange(path, start, offset, first)


def _ranges(path: str, size: int) -> Iterator[Any]:
    try:
        yield from iter_line_ranges(path, size)
    except OSError as exc:
        yield path, RiskguardError(f"cannot read further: {exc}", file=path)


def _builtin(src: Any, fn: Callable) -> bool:
    return getattr(src, "open", None) is fn


def iter_work(
    registry: Registry,
    locations: list[str],
    size: int = DEFAULT_CHUNK_SIZE,
    *,
    ranges: bool = True,
) -> Iterator[list[tuple[str, Any]] | LineRange]:
    """The units of work for ``locations``, in input order: a :class:`LineRange` per
    ``size`` lines of each plain JSON Lines file (when ``ranges``: the evaluating process
    can read the file), else lists of ``size`` records read here."""
    from riskguard.engine.sources import iter_directory, iter_file, iter_jsonl

    if size < 1:
        raise ValueError("chunk size must be at least 1")

    def plain_jsonl(loc: str) -> bool:
        return ranges and loc != "-" and loc.endswith(JSONL_SUFFIXES) and not loc.endswith(".gz")

    def units(loc: str) -> Iterator[Any]:
        """LineRanges, or single records, for one location."""
        for src in registry.snapshot_sources.values():
            if src.matches(loc):
                break
        else:
            yield from iter_locations(registry, [loc])  # reports the unknown input
            return
        if _builtin(src, iter_jsonl) and plain_jsonl(loc) and Path(loc).is_file():
            yield from _ranges(loc, size)
        elif _builtin(src, iter_directory) and ranges:
            # iter_directory's walk, with its plain JSON Lines files cut into ranges
            for p in sorted(x for x in Path(loc).rglob("*") if x.is_file()):
                name = str(p)
                if plain_jsonl(name):
                    yield from _ranges(name, size)
                elif name.endswith(JSONL_SUFFIXES):
                    yield from iter_jsonl(name)
                elif name.endswith(DOC_SUFFIXES):
                    yield from iter_file(name)
        else:
            yield from src.open(loc)

    pending: list[tuple[str, Any]] = []
    for loc in locations:
        for u in units(loc):
            if isinstance(u, LineRange):
                if pending:
                    yield _clean(pending)
                    pending = []
                yield u
            else:
                pending.append(u)
                if len(pending) >= size:
                    yield _clean(pending)
                    pending = []
    if pending:
        yield _clean(pending)


def _clean(chunk: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Exceptions from sources become BadRecords: chunks are plain picklable data."""
    for i, (ref, item) in enumerate(chunk):
        if isinstance(item, RiskguardError):
            chunk[i] = (ref, bad_record(ref, item))
        elif isinstance(item, Exception):
            chunk[i] = (ref, BadRecord(ref, f"{type(item).__name__}: {item}"))
    return chunk


# --------------------------------------------------------------------------- evaluation


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def compact_metrics(m: Any) -> dict:
    """The metric fields a summary and a report need, as a key-subset of the full block.

    The full block is most of the serialisation cost of a decision; these few fields are
    what the audit summary reads (utilization, liquidation distance per position).
    """
    return {
        "settle": m.settle,
        "equity": _num(m.equity),
        "marginUtilization": _num(m.marginUtilization),
        "marginUtilizationWithOrders": _num(m.marginUtilizationWithOrders),
        "marginRatio": _num(m.marginRatio),
        "effectiveLeverage": _num(m.effectiveLeverage),
        "positions": [
            {
                "symbol": p.symbol,
                "side": p.side,
                "marginMode": p.marginMode,
                "liquidationPrice": _num(p.liquidationPrice),
                "liquidationDistancePct": _num(p.liquidationDistancePct),
            }
            for p in m.positions
        ],
    }


DECISION_FORMS = ("full", "compact")

#: text that explains rather than records: left out of the compact form
_ACTION_TEXT = ("note", "alternative")


def compact_decision(d: dict) -> dict:
    """The archive form of a decision (``audit --decision-form compact``).

    It keeps every fact and number and drops what can be derived again: the metrics block,
    each violation's ``message``, ``type``, ``scope``, a null ``symbol`` and an empty
    ``context`` (the reason code and its context carry the facts; ``riskguard explain``
    re-derives the words), ``alert`` actions (each repeats a violation), and actions'
    explanatory ``note`` / ``alternative`` text. ``"form": "compact"`` marks it; it is
    valid against ``decision.schema.json``. About 45 % of the full form's size."""
    out = {k: v for k, v in d.items() if k != "metrics"}
    out["violations"] = [
        {
            k: v
            for k, v in x.items()
            if k not in ("message", "type", "scope")
            and not (k == "symbol" and v is None)
            and not (k == "context" and not v)
        }
        for x in d["violations"]
    ]
    out["actions"] = [
        {k: v for k, v in a.items() if k not in _ACTION_TEXT}
        for a in d["actions"]
        if a.get("type") != "alert"
    ]
    out["form"] = "compact"
    return out


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps(d: dict) -> str:
    """One decision as one compact JSON line (no newline)."""
    return _dumps(d)


def evaluate_record(
    policy: CompiledPolicy,
    ref: str,
    item: Any,
    now_ms: int | None = None,
    *,
    metrics: str = "full",
    digest: bool = True,
) -> tuple[dict | None, BadRecord | None]:
    """``(decision dict, None)`` or ``(None, BadRecord)`` for one raw record.

    ``now_ms`` is the clock for a snapshot without a timestamp; a snapshot with one is
    judged at its own time, so re-running an audit gives the same decisions.
    ``digest=False`` leaves the snapshot digest empty: for a dict that only feeds a
    summary, since hashing the canonical snapshot costs about as much as parsing it.
    """
    if isinstance(item, BadRecord):
        return None, item
    try:
        if isinstance(item, Exception):
            raise item
        if isinstance(item, str):
            data, snap = read_snapshot(item, ref)
        else:
            data, snap = item, build_snapshot_memo(item)
    except RiskguardError as exc:
        return None, bad_record(ref, exc)
    ts = snap.timestamp
    if ts is None:
        ts = int(time.time() * 1000) if now_ms is None else now_ms
    d = evaluate(policy, snap, now_ms=ts, ref=ref)
    d._snapshot_digest = snapshot_digest(data) if digest else ""
    if metrics == "full":
        return d.to_dict(), None
    out = d.to_dict(metrics=False)
    if d.metrics is not None:
        out["metrics"] = compact_metrics(d.metrics)
    return out, None


_POLICIES: dict[tuple, CompiledPolicy] = {}
_POLICIES_LOCK = threading.Lock()


def _policy_for(config: AuditConfig) -> CompiledPolicy:
    """The compiled policy for ``config`` in this process, loaded once."""
    key = (config.policy_digest, config.plugins)
    policy = _POLICIES.get(key)
    if policy is None:
        with _POLICIES_LOCK:
            policy = _POLICIES.get(key)
            if policy is None:
                policy = config.load()
                _POLICIES[key] = policy
    return policy


@dataclass(frozen=True, slots=True)
class AuditTask:
    """One audit's unit of work as the parallel engines see it (:class:`~riskguard.batch.
    parallel.ChunkTask`): picklable, so it travels to each worker once."""

    config: AuditConfig

    def prepare(self) -> None:
        _policy_for(self.config)

    def __call__(self, chunk: Any) -> ChunkResult:
        return run_chunk(_policy_for(self.config), self.config, chunk)


def run_chunk(
    policy: CompiledPolicy,
    config: AuditConfig,
    chunk: list[tuple[str, Any]] | LineRange,
    summary: Summary | None = None,
) -> ChunkResult:
    """Evaluate one chunk: the unit of work of every engine.

    With ``summary`` the decisions are added to it in place (the sequential engine keeps
    one summary for the whole run); otherwise the chunk gets its own, to merge later.
    """
    if isinstance(chunk, LineRange):
        chunk = chunk.records()
    own = summary is None
    summ = new_summary() if summary is None else summary
    add = summ.add
    lines: list[str] = []
    bad: list[BadRecord] = []
    worst = -1
    rank = SEVERITY_RANK
    write = config.write
    compact = config.form == "compact"
    n = 0
    for ref, item in chunk:
        try:
            d, b = evaluate_record(
                policy, ref, item, config.clock_ms, metrics=config.metrics, digest=write
            )
            if write and d is not None:
                line = _dumps(compact_decision(d) if compact else d)
            else:
                line = ""
        except Exception as exc:  # noqa: BLE001 - one record's fault must not end the audit
            d, b = (
                None,
                BadRecord(ref, f"internal error, not evaluated: {type(exc).__name__}: {exc}"),
            )
        if d is None:
            bad.append(b)  # type: ignore[arg-type]
            summ.add_bad(b.ref, b.message)  # type: ignore[union-attr]
            continue
        for v in d["violations"]:
            r = rank[v["severity"]]
            if r > worst:
                worst = r
        add(d)
        n += 1
        if write:
            lines.append(line)
    text = ("\n".join(lines) + "\n").encode() if lines else b""
    return ChunkResult(text, len(lines), bad, n, worst, summ if own else None)


# --------------------------------------------------------------------------- driver


OUT_MODES = ("new", "append", "overwrite")


class DecisionWriter:
    """Writes decision lines; flushed per chunk so an interruption keeps whole lines.

    A path ending in ``.gz`` is written gzip-compressed (an ``append`` adds a gzip member,
    which every gzip reader, ``riskguard audit`` included, reads as one stream). ``mode``:
    ``new`` refuses a file that exists and is not empty, ``append`` adds to it,
    ``overwrite`` replaces it.
    """

    def __init__(self, path: str | None, mode: str = "append") -> None:
        if mode not in OUT_MODES:
            raise ValueError(f"mode must be one of {OUT_MODES}, got {mode!r}")
        if path and mode == "new":
            check_out_free(path)
        self._fh: BinaryIO | None = None
        if path:
            flag: Literal["wb", "ab"] = "wb" if mode == "overwrite" else "ab"
            if path.endswith(".gz"):
                import gzip

                # a GzipFile is a binary file object; typeshed does not call it BinaryIO
                self._fh = cast(BinaryIO, gzip.GzipFile(path, flag, compresslevel=6))
            else:
                self._fh = open(path, flag)  # noqa: SIM115 - closed in close()

    def write(self, text: bytes) -> None:
        if self._fh is not None and text:
            # One write per chunk: a chunk's lines land together, each ending in "\n".
            self._fh.write(text)
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def check_out_free(path: str) -> None:
    """A usage error when ``path`` already holds decisions: re-running an audit must not
    append to (or replace) an earlier run's output by accident."""
    p = Path(path)
    if p.exists() and (not p.is_file() or p.stat().st_size > 0):
        raise RiskguardError(
            f"--out {path}: the file exists; pass --append to add this run's decisions to "
            "it, or --force to replace it"
        )


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """How to run an audit (what the CLI flags say)."""

    out: str | None = None
    workers: int = 1
    engine: str = "process"  # process | dask
    scheduler: str | None = None  # dask scheduler address; None: a LocalCluster
    connect_timeout: float = 5.0  # seconds to reach ``scheduler`` before a usage error
    chunk_size: int = DEFAULT_CHUNK_SIZE
    metrics: str = "compact"
    plugins: tuple[str, ...] = ()
    clock_ms: int | None = None
    #: an existing ``out``: ``append`` to it (the library's historical behaviour),
    #: ``overwrite`` it, or refuse (``new``, what the command line does by default)
    out_mode: str = "append"
    #: ``full`` decisions, or ``compact`` ones for archives (see :func:`compact_decision`)
    decision_form: str = "full"


def run_audit(
    policy: CompiledPolicy,
    inputs: list[str],
    options: AuditOptions = AuditOptions(),
    *,
    on_bad: Callable[[BadRecord], None] | None = None,
    on_progress: Callable[[AuditTotals], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> AuditTotals:
    """Audit every record of ``inputs``; decisions to ``options.out``, totals returned.

    ``stop`` is polled between chunks: once it returns true the run stops reading, keeps
    (writes) every decision already made, sets ``totals.interrupted`` and returns. The
    command sets it from Ctrl-C / SIGTERM.
    """
    config = AuditConfig.for_policy(
        policy,
        plugins=options.plugins,
        metrics=options.metrics,
        clock_ms=options.clock_ms,
        write=options.out is not None,
        form=options.decision_form,
    )
    stop = stop or (lambda: False)
    totals = AuditTotals()
    # Expand first: a missing input is a usage error (exit 2) before any work is done.
    locations = expand_inputs(inputs)
    # Workers read plain JSON Lines files themselves, unless they may be on other
    # machines (a Dask scheduler given by address): then the text travels with the task.
    ranges = not (options.engine == "dask" and options.scheduler)
    sizes: deque[int] = deque()  # input size of each chunk handed out, consumed in order
    chunks = _sized(iter_work(policy.registry, locations, options.chunk_size, ranges=ranges), sizes)
    writer = DecisionWriter(options.out, options.out_mode)
    unfreeze = gc.get_freeze_count() == 0  # leave a caller's own frozen objects alone

    def consume(res: ChunkResult) -> None:
        writer.write(res.text)
        totals.written += res.written
        totals.chars_read += sizes.popleft()
        for b in totals.absorb(res):
            if on_bad is not None:
                on_bad(b)
        # The running summary is long-lived and only grows: keep the cyclic collector
        # from walking it again every few thousand allocations (it was a third of this
        # process's time on large audits). What is frozen is never collected as a cycle,
        # so the garbage of this chunk is collected first; that collection walks only
        # what was made since the last freeze.
        gc.collect()
        gc.freeze()
        if on_progress is not None:
            on_progress(totals)

    try:
        if options.engine == "dask":
            from riskguard.batch.parallel import dask_map

            totals.engine = "dask"
            done = dask_map(
                AuditTask(config),
                chunks,
                consume,
                scheduler=options.scheduler,
                connect_timeout=options.connect_timeout,
                workers=options.workers,
                stop=stop,
            )
        elif options.engine != "process":
            raise ValueError(f"unknown engine {options.engine!r}")
        else:
            head = list(islice(chunks, 2))
            if options.workers > 1 and len(head) > 1:
                # Two chunks or more: worth starting a pool (a single chunk is not).
                from riskguard.batch.parallel import pool_map

                totals.engine = f"process({options.workers})"
                done = pool_map(
                    AuditTask(config),
                    chain(head, chunks),
                    consume,
                    workers=options.workers,
                    stop=stop,
                )
            else:
                totals.engine = "sequential"
                done = True
                for chunk in chain(head, chunks):
                    consume(run_chunk(policy, config, chunk, totals.summary))
                    if stop():
                        done = False
                        break
        totals.interrupted = not done
        return totals
    finally:
        writer.close()
        if unfreeze:
            gc.unfreeze()


def _sized(chunks: Iterator[Any], sizes: deque[int]) -> Iterator[Any]:
    for c in chunks:
        if isinstance(c, LineRange):
            sizes.append(c.end - c.start)
        else:
            sizes.append(sum(len(item) for _ref, item in c if isinstance(item, str)))
        yield c


def input_size(locations: list[str]) -> int | None:
    """Bytes of snapshot text in ``locations`` (for a progress bar), or None if unknowable
    (stdin, gzip)."""
    total = 0
    for loc in locations:
        if loc == "-" or loc.endswith(".gz"):
            return None
        p = Path(loc)
        if p.is_dir():
            for q in p.rglob("*"):
                if q.name.endswith(".gz"):
                    return None
                if q.is_file() and q.name.endswith(JSONL_SUFFIXES + DOC_SUFFIXES):
                    total += q.stat().st_size
        elif p.is_file():
            total += p.stat().st_size
    return total
