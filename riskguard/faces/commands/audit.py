"""``riskguard audit``: run a policy over many snapshots and report every breach."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

from riskguard.batch.run import (
    DECISION_FORMS,
    DEFAULT_CHUNK_SIZE,
    METRICS_MODES,
    AuditOptions,
    AuditTotals,
    BadRecord,
    check_out_free,
    expand_inputs,
    input_size,
    run_audit,
)
from riskguard.engine.decision import SEVERITIES, SEVERITY_RANK
from riskguard.engine.policy import CompiledPolicy, load_policy
from riskguard.engine.sources import JSONL_SUFFIXES
from riskguard.errors import RiskguardError
from riskguard.faces.commands._common import add_plugin_arg, count, print_json, seconds

EPILOG = """exit codes:
  0  no violation at or above --fail-on
  1  some violation at or above --fail-on
  2  bad input or usage (with --strict: also any bad record)
  4  a worker process died (killed, out of memory) or no worker finished a chunk
     within --stall-timeout seconds (a stopped or hung worker): the run stops, says which,
     and the decisions already made are in --out
  130, 143  interrupted (Ctrl-C, SIGTERM): the decisions already made are in --out

examples:
  riskguard audit --policy policies/default.yaml examples/snapshots
  riskguard audit -p policies/default.yaml 'archive/2026-11-*.jsonl.gz' --out decisions.jsonl
  riskguard audit -p policies/default.yaml big.jsonl --out archive.jsonl.gz --decision-form compact
  riskguard audit -p policies/default.yaml archive/ --report report.html --json
  riskguard audit -p policies/default.yaml archive/ --format junit > audit.xml
  riskguard audit -p policies/default.yaml archive/ --format sarif > audit.sarif
  riskguard audit -p policies/default.yaml big.jsonl --engine dask --scheduler tcp://10.0.0.5:8786
"""

REPORT_SUFFIXES = (".html", ".htm", ".md")
EXIT_WORKER = 4


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="evaluate a policy over snapshot files, directories or JSON Lines",
        description="Audit account snapshots: evaluate the policy on every snapshot (files,\n"
        "directories, globs, JSON Lines, gzip), in parallel, and report breaches by rule,\n"
        "severity, account and symbol, with each account's breach timeline. Each snapshot\n"
        "is judged at its own timestamp, so a re-run gives the same decisions. Memory stays\n"
        "flat however long the input; a bad record is reported (file:line) and skipped.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("-p", "--policy", required=True, help="policy YAML file")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="snapshot file, directory, glob or .jsonl[.gz] ('-' = stdin)",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write one decision per snapshot to this JSON Lines file, in input order "
        "(FILE.gz: gzip-compressed). An existing file is refused unless --append or --force",
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--append", action="store_true", help="add to an existing --out file (a .gz gets a member)"
    )
    again.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--decision-form",
        choices=DECISION_FORMS,
        default="full",
        help="--out decisions: full (default) or compact, the archive form (no metrics, "
        "violation messages, alert actions or explanatory text; the codes, context and "
        'numbers stay; marked "form": "compact"; about half the size)',
    )
    p.add_argument(
        "--metrics",
        choices=METRICS_MODES,
        default="compact",
        help="metrics in each --out decision: compact (utilization, equity, liquidation "
        "distance per position; default) or full (every figure of `riskguard metrics`, slower)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "junit", "sarif"),
        default=None,
        help="output on stdout: text summary (default), json summary, junit (JUnit XML: one "
        "test case per policy rule, failed by breaches at or above --fail-on) or sarif "
        "(SARIF 2.1.0: one result per breach episode, at the snapshot's file:line)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON (= --format json)"
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write a report: .html (self-contained, with plots) or .md",
    )
    p.add_argument(
        "--fail-on",
        default="error",
        choices=SEVERITIES,
        help="exit 1 when any violation has at least this severity (default: error)",
    )
    p.add_argument("--strict", action="store_true", help="exit 2 when any record is malformed")
    p.add_argument(
        "-w",
        "--workers",
        type=count(1),
        default=None,
        metavar="N",
        help="worker processes (default: all cores; 1 = evaluate in this process)",
    )
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="process engine: stop with exit 4 when no worker finishes a chunk for S seconds "
        "(a stopped or hung worker; default 300, 0 = wait forever)",
    )
    p.add_argument(
        "--engine",
        choices=("process", "dask"),
        default="process",
        help="process: a local process pool (default); dask: a Dask cluster "
        '(needs pip install "riskguard[dask]")',
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address (tcp://host:8786); records are read here and sent with "
        "the tasks. Default: start a local cluster of --workers processes",
    )
    p.add_argument(
        "--connect-timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="how long to try --scheduler before giving up with exit 2 (default: 5)",
    )
    p.add_argument(
        "--chunk-size",
        type=count(1),
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"snapshots per unit of work sent to a worker (default: {DEFAULT_CHUNK_SIZE})",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (there is none anyway when stderr is not a terminal)",
    )
    add_plugin_arg(p)
    return p


def _policy_limit(policy: CompiledPolicy) -> float | None:
    """The margin-utilization limit to draw on the report's utilization plot."""
    for s in policy.specs:
        if s.type == "margin_utilization" and isinstance(s.params.get("max"), (int, float)):
            return float(s.params["max"])
    return None


class _StopSignals:
    """Ctrl-C / SIGTERM ask the audit to stop between chunks (keeping every decision made);
    a second signal interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def _handler(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @contextlib.contextmanager
    def installed(self):
        old: dict[int, object] = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread (embedded use): leave signals alone
            pass
        try:
            yield self
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)


@contextlib.contextmanager
def _progress(enabled: bool, total: int | None):
    """A rich progress bar on stderr; a no-op callback when disabled."""
    if not enabled:
        yield None, None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]audit"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(
            "{task.fields[snaps]:,} snapshots · {task.fields[rate]} /s · {task.fields[bad]} bad"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("audit", total=total, snaps=0, rate="-", bad=0)
    t0 = time.perf_counter()

    def update(t: AuditTotals) -> None:
        dt = time.perf_counter() - t0
        progress.update(
            task,
            completed=t.chars_read if total else None,
            snaps=t.snapshots,
            bad=t.bad_count,
            rate=f"{t.snapshots / dt:,.0f}" if dt > 0 else "-",
        )

    with progress:
        try:
            yield update, console
        finally:
            if total:
                progress.update(task, completed=total)


def _check_out_is_not_an_input(out: Path, locations: list[str]) -> None:
    """Refuse --out inside what is being read: the audit would read its own decisions."""
    target = out.resolve()
    for loc in locations:
        if loc == "-":
            continue
        p = Path(loc).resolve()
        inside = p.is_dir() and target.is_relative_to(p) and target.name.endswith(JSONL_SUFFIXES)
        if p == target or inside:
            raise RiskguardError(
                f"--out {out}: this file is read as an input ({loc}); write decisions elsewhere",
                file=str(out),
            )


def run(args) -> int:
    if args.report and not args.report.lower().endswith(REPORT_SUFFIXES):
        raise RiskguardError(
            f"--report {args.report}: expected a .html or .md file name", file=args.report
        )
    if args.report and not Path(args.report).resolve().parent.is_dir():
        raise RiskguardError(
            f"--report {args.report}: no such directory", file=str(Path(args.report).parent)
        )
    if args.json and args.format not in (None, "json"):
        raise RiskguardError(f"--json and --format {args.format} ask for two outputs: pick one")
    fmt = "json" if args.json else (args.format or "text")
    if args.scheduler and args.engine != "dask":
        raise RiskguardError("--scheduler needs --engine dask")
    policy = load_policy(args.policy, plugins=tuple(args.plugin))
    locations = expand_inputs(args.inputs)  # exit 2 on a missing input, before any work
    if args.out:
        _check_out_is_not_an_input(Path(args.out), locations)
        if not (args.append or args.force):
            check_out_free(args.out)
    elif args.append or args.force or args.decision_form != "full":
        raise RiskguardError("--append, --force and --decision-form go with --out FILE")
    from riskguard.batch.parallel import default_workers

    workers = args.workers or default_workers()
    options = AuditOptions(
        stall_s=args.stall_timeout or None,
        out=args.out,
        workers=workers,
        engine=args.engine,
        scheduler=args.scheduler,
        connect_timeout=args.connect_timeout,
        chunk_size=args.chunk_size,
        metrics=args.metrics,
        plugins=tuple(args.plugin),
        out_mode="append" if args.append else "overwrite" if args.force else "new",
        decision_form=args.decision_form,
    )
    show_progress = sys.stderr.isatty() and not args.no_progress
    stop = _StopSignals()
    t0 = time.perf_counter()
    with _progress(show_progress, input_size(locations)) as (update, console):

        def on_bad(b: BadRecord) -> None:
            line = f"error: {b.ref}: {b.message}"
            if console is not None:
                console.print(line, markup=False, highlight=False)
            else:
                print(line, file=sys.stderr)

        with stop.installed():
            try:
                totals = run_audit(
                    policy, args.inputs, options, on_bad=on_bad, on_progress=update, stop=stop
                )
            except RiskguardError as exc:
                # imported here: the pool's module (multiprocessing) is not loaded for
                # every command line
                from riskguard.batch.parallel import WorkerFailure

                if not isinstance(exc, WorkerFailure):
                    raise
                where = f" in {args.out}" if args.out else ""
                print(f"error: {exc} (decisions made before it are{where} kept)", file=sys.stderr)
                return EXIT_WORKER
    elapsed = time.perf_counter() - t0

    if totals.bad_count > len(totals.bad_examples):
        print(
            f"error: {totals.bad_count - len(totals.bad_examples)} more bad records not shown "
            f"({totals.bad_count} in all)",
            file=sys.stderr,
        )
    if totals.interrupted:
        where = f"; {totals.written} decisions are in {args.out}" if args.out else ""
        print(f"interrupted after {totals.snapshots} snapshots{where}", file=sys.stderr)
        return 128 + (stop.signum or signal.SIGINT)

    failed = totals.worst >= SEVERITY_RANK[args.fail_on]
    if args.report:
        from riskguard.batch.report import write_report

        write_report(totals.summary, Path(args.report), policy_limit=_policy_limit(policy))
    code = 2 if args.strict and totals.bad_count else 1 if failed else 0
    if fmt == "junit":
        from riskguard.faces.ciformats import audit_junit

        sys.stdout.write(audit_junit(totals.summary, policy, fail_on=args.fail_on))
    elif fmt == "sarif":
        from riskguard.faces.ciformats import audit_sarif

        print_json(audit_sarif(totals.summary, policy, fail_on=args.fail_on, exit_code=code))
    elif fmt == "json":
        print_json(
            {
                **totals.summary.to_dict(),
                "worstSeverity": totals.worst_severity,
                "failOn": args.fail_on,
                "failed": failed,
                "policy": policy.ref,
                "out": args.out,
                "report": args.report,
                "run": {
                    "engine": totals.engine,
                    "workers": workers if totals.engine != "sequential" else 1,
                    "chunkSize": args.chunk_size,
                    "elapsedS": round(elapsed, 3),
                    "snapshotsPerS": round(totals.snapshots / elapsed) if elapsed > 0 else None,
                },
            }
        )
    else:
        from riskguard.batch.summary import render_text

        text = render_text(totals.summary)
        print(
            f"{totals.snapshots} snapshots, {totals.bad_count} bad records "
            f"({totals.engine}, {elapsed:.1f} s)"
        )
        if text:
            print(text.rstrip("\n"))
        if args.out:
            print(f"decisions: {args.out}")
        if args.report:
            print(f"report: {args.report}")
    return code
