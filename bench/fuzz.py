"""Fuzz the policy and snapshot parsers (and the engine behind them) for a bounded time.

    python bench/fuzz.py --seconds 60                  # atheris if installed, else mutation
    python bench/fuzz.py --engine mutate --iterations 5000 --seed 1
    python bench/fuzz.py --engine atheris --seconds 600

One input is bytes; its first byte picks a target:

- snapshot: JSON fast path (``parse_json_fast``) or YAML (``parse_text``) → ``build_snapshot``
  → ``evaluate`` under the default policy (and an order) → ``to_dict`` → strict JSON, and
  the decision schema;
- order: JSON → ``build_order`` → ``evaluate``;
- policy: YAML/JSON from a file (so marks and ``extends`` run) → ``load_policy`` →
  ``evaluate``.

A parser may only raise ``RiskguardError`` (``SnapshotError``/``PolicyError``); any other
exception, an evaluation that raises, a decision that is not strict JSON or fails its
schema, or an input taking longer than ``--timeout`` seconds is a **finding**: printed
with its traceback and saved to ``--crashes`` (default ``$TMPDIR/riskguard-fuzz-crashes/``). Exit 1
when there is any.

Engines: ``atheris`` (coverage-guided, libFuzzer; ``pip install atheris``) and ``mutate``
(pure Python: byte and token mutations, JSON-level value swaps and splices of a seed corpus
made from ``tests/fixtures``, ``examples`` and ``policies``; deterministic for a seed).
``tests/test_fuzz.py`` runs the mutation engine for a small fixed budget in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = ("snapshot-json", "snapshot-yaml", "order", "policy")
NOW = 1_795_000_000_000


class Finding(Exception):
    """An input broke a promise (not a RiskguardError, or a bad decision)."""


# --------------------------------------------------------------------------- the target


@cache
def _engine():
    """Imports done once (atheris instruments them when it imports this lazily)."""
    from riskguard.engine.evaluate import evaluate
    from riskguard.engine.policy import load_policy
    from riskguard.errors import RiskguardError
    from riskguard.model.schemas import validator
    from riskguard.model.snapshot import build_order, build_snapshot
    from riskguard.model.yamlio import parse_json_fast, parse_text

    policy = load_policy(ROOT / "policies" / "default.yaml")
    return {
        "evaluate": evaluate,
        "RiskguardError": RiskguardError,
        "load_policy": load_policy,
        "validator": validator("decision"),
        "build_order": build_order,
        "build_snapshot": build_snapshot,
        "parse_json_fast": parse_json_fast,
        "parse_text": parse_text,
        "policy": policy,
        "snapshot": build_snapshot(
            json.loads((ROOT / "examples" / "snapshots" / "binance-two-cross.json").read_text())
        ),
    }


def _check_decision(e: dict, decision) -> None:
    try:
        doc = decision.to_dict()
        json.dumps(doc, allow_nan=False)
    except Exception as exc:
        raise Finding(f"decision.to_dict/json failed: {type(exc).__name__}: {exc}") from exc
    errors = list(e["validator"].iter_errors(doc))
    if errors:
        raise Finding(f"decision fails its schema: {errors[0].message}")


def _evaluate(e: dict, policy, snap, order=None) -> None:
    try:
        d = e["evaluate"](policy, snap, order, now_ms=NOW)
    except Exception as exc:
        raise Finding(f"evaluate raised {type(exc).__name__}: {exc}") from exc
    _check_decision(e, d)


def run_one(data: bytes, tmpdir: str | None = None) -> str:
    """Run one input; return what happened ("rejected", "accepted"); raise on a finding."""
    e = _engine()
    if not data:
        return "rejected"
    target = TARGETS[data[0] % len(TARGETS)]
    text = data[1:].decode("utf-8", errors="replace")
    rg_error = e["RiskguardError"]
    try:
        if target == "snapshot-json":
            snap = e["build_snapshot"](e["parse_json_fast"](text, "fuzz.json"))
        elif target == "snapshot-yaml":
            loc = e["parse_text"](text, "fuzz.yaml")
            snap = e["build_snapshot"](loc.data, loc)
        elif target == "order":
            order = e["build_order"](e["parse_json_fast"](text, "order.json"))
        else:
            directory = tmpdir or tempfile.gettempdir()
            path = Path(directory) / "fuzz-policy.yaml"
            path.write_text(text, encoding="utf-8", errors="replace")
            policy = e["load_policy"](path)
    except rg_error as exc:
        if not exc.problems or not all(str(p) for p in exc.problems):
            raise Finding(f"{type(exc).__name__} without a readable problem") from exc
        return "rejected"
    except RecursionError as exc:
        raise Finding("RecursionError escaped a parser") from exc
    except Exception as exc:
        raise Finding(f"parser raised {type(exc).__name__}: {exc}") from exc
    if target.startswith("snapshot"):
        _evaluate(e, e["policy"], snap)
        if snap.positions:
            o = e["build_order"]({"symbol": snap.positions[0].symbol, "side": "buy", "amount": 1})
            _evaluate(e, e["policy"], snap, o)
    elif target == "order":
        _evaluate(e, e["policy"], e["snapshot"], order)
    else:
        _evaluate(e, policy, e["snapshot"])
    return "accepted"


# --------------------------------------------------------------------------- corpus


def seed_corpus() -> list[bytes]:
    """Inputs from the repository: snapshots, orders, policies (each with its target byte)."""
    out: list[bytes] = []

    def add(target: str, text: str) -> None:
        out.append(bytes([TARGETS.index(target)]) + text.encode())

    for d in ("examples/snapshots", "tests/fixtures/policytests", "tests/fixtures/hostile"):
        for p in sorted((ROOT / d).glob("*")):
            if p.suffix not in (".json", ".yaml", ".yml") or p.stat().st_size > 200_000:
                continue
            t = p.read_text(encoding="utf-8", errors="replace")
            if "apiVersion" in t:
                add("policy", t)
            elif '"amount"' in t and '"walletBalance"' not in t:
                add("order", t)
            else:
                add("snapshot-json" if p.suffix == ".json" else "snapshot-yaml", t)
                add("snapshot-yaml", t)
    for p in sorted((ROOT / "policies").glob("*.yaml")):
        add("policy", p.read_text(encoding="utf-8"))
    for p in sorted((ROOT / "examples" / "orders").glob("*.json")):
        add("order", p.read_text(encoding="utf-8"))
    return out


TOKENS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1", b"0", b"0.0", b"-0.0", b"5e-324",
    b"1" + b"0" * 400, b"1" + b"0" * 4400, b"null", b"true", b"[]", b"{}", b'""', b"\"\\u0000\"",
    b".nan", b".inf", b"!!python/object/apply:os.system [x]", b"!!set {a}", b"!!binary aGk=",
    b"&a [1, 2]", b"*a", b"<<: *a", b"? [a]", b"2026-01-01", b"on", b"~", b"[" * 200,
    b"{" * 70, b"'", b'"', b":", b"- ", b"\n  ", b"\t", b"\xff", b"\xed\xa0\x80",
    b'"symbol": "BTC/USDT:USDT"', b'"side": "short"', b'"marginMode": "isolated"',
    b'"inverse": true', b'"leverage": 10000', b'"walletBalance": -1e308',
    b'"timestamp": 1e300', b'"extends": ["fuzz-policy.yaml"]', b'"type": ["x"]',
    b'"match": {"symbols": null}', b'"severity": "fatal"', b'"apiKey": "k"',
]  # fmt: skip

HOSTILE_VALUES = [None, "", "x", -1, 0, 1e308, -1e308, 5e-324, 10**30, True, [], {}, [None]]


def _json_mutation(rng: random.Random, data: bytes) -> bytes | None:
    """Swap one value of a JSON seed for a hostile one, or drop/duplicate a key."""
    try:
        doc = json.loads(data[1:])
    except ValueError:
        return None
    nodes: list[tuple[object, object]] = []

    def walk(o: object) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                nodes.append((o, k))
                walk(v)
        elif isinstance(o, list):
            for i, v in enumerate(o):
                nodes.append((o, i))
                walk(v)

    walk(doc)
    if not nodes:
        return None
    parent, key = rng.choice(nodes)
    r = rng.random()
    if r < 0.6:
        parent[key] = rng.choice(HOSTILE_VALUES)  # type: ignore[index]
    elif r < 0.8 and isinstance(parent, dict):
        del parent[key]
    elif isinstance(parent, list):
        parent.append(parent[key])  # type: ignore[index]
    else:
        parent[key] = {"nested": parent[key]}  # type: ignore[index]
    try:
        return data[:1] + json.dumps(doc).encode()
    except ValueError:
        return None


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(1, max(1, len(out)))
        if op < 0.2 and len(out) > 1:  # flip a byte
            i = rng.randrange(1, len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op < 0.45:  # insert a token
            out[pos:pos] = rng.choice(TOKENS)
        elif op < 0.6 and len(out) > 2:  # delete a range
            end = min(len(out), pos + rng.randint(1, 32))
            del out[pos:end]
        elif op < 0.7 and len(out) > 2:  # duplicate a range
            end = min(len(out), pos + rng.randint(1, 64))
            out[pos:pos] = out[pos:end]
        elif op < 0.8:  # splice another seed's tail
            other = rng.choice(corpus)
            cut = rng.randint(1, max(1, len(other)))
            out = out[:pos] + bytearray(other[cut:])
        elif op < 0.95:
            j = _json_mutation(rng, bytes(out))
            if j is not None:
                out = bytearray(j)
        else:  # retarget: the same text through another parser
            out[0] = rng.randrange(len(TARGETS))
    return bytes(out[:300_000])


# --------------------------------------------------------------------------- engines


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise Finding(f"input took longer than {seconds:g} s (hang)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def fuzz_mutate(
    *,
    seconds: float | None = None,
    iterations: int | None = None,
    seed: int = 0,
    timeout: float = 10.0,
    on_finding: Callable[[bytes, BaseException], None] | None = None,
    target: Callable[[bytes, str], str] = run_one,
) -> dict:
    """The pure-Python mutation fuzzer; returns counts and findings (deterministic per seed)."""
    rng = random.Random(seed)
    corpus = seed_corpus()
    interesting = list(corpus)
    stats = {"runs": 0, "accepted": 0, "rejected": 0, "findings": [], "seconds": 0.0}
    seen: set[str] = set()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="riskguard-fuzz-") as tmp:
        # Every seed as is first, then mutations.
        queue = iter(corpus)
        while True:
            if iterations is not None and stats["runs"] >= iterations:
                break
            if seconds is not None and time.monotonic() - t0 >= seconds:
                break
            data = next(queue, None)
            if data is None:
                data = mutate(rng, rng.choice(interesting), corpus)
            stats["runs"] += 1
            try:
                with _deadline(timeout):
                    outcome = target(data, tmp)
            except Finding as exc:
                key = _finding_key(exc)
                if key not in seen:
                    seen.add(key)
                    stats["findings"].append((data, exc))
                    if on_finding:
                        on_finding(data, exc)
                continue
            stats[outcome] += 1
            if outcome == "accepted" and len(interesting) < 5000 and rng.random() < 0.2:
                interesting.append(data)  # inputs that parse are the best parents
    stats["seconds"] = time.monotonic() - t0
    return stats


def _finding_key(exc: BaseException) -> str:
    """Same bug, same key: the exception type and the innermost riskguard frame."""
    cause = exc.__cause__ or exc
    frames = [f for f in traceback.extract_tb(cause.__traceback__) if "riskguard" in f.filename]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(exc)[:80]
    return f"{type(cause).__name__}@{where}"


def save_finding(directory: Path, data: bytes, exc: BaseException) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16]
    p = directory / f"crash-{name}.bin"
    p.write_bytes(data)
    (directory / f"crash-{name}.txt").write_text(
        "".join(traceback.format_exception(exc.__cause__ or exc)), encoding="utf-8"
    )
    return p


def fuzz_atheris(seconds: float, crashes: Path, timeout: float) -> int:
    import atheris

    corpus_dir = Path(tempfile.mkdtemp(prefix="riskguard-corpus-"))
    for i, seed in enumerate(seed_corpus()):
        (corpus_dir / f"seed-{i}").write_bytes(seed)
    with atheris.instrument_imports():  # coverage feedback from riskguard's own code
        for mod in ("yamlio", "snapshot", "policy", "metrics", "engine", "margin.base"):
            importlib.import_module(f"riskguard.{mod}")
    _engine()
    tmp = tempfile.mkdtemp(prefix="riskguard-fuzz-")

    def one(data: bytes) -> None:
        run_one(data, tmp)  # a Finding propagates: libFuzzer saves the input and stops

    crashes.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        f"-max_total_time={int(seconds)}",
        f"-timeout={int(timeout)}",
        f"-artifact_prefix={crashes}/",
        "-max_len=65536",
        str(corpus_dir),
    ]
    atheris.Setup(argv, one)
    atheris.Fuzz()  # exits the process: 0 when the time ran out without a finding
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    ap.add_argument("--iterations", type=int, help="stop after N inputs (mutate engine)")
    ap.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    ap.add_argument("--seed", type=int, default=0, help="mutation engine seed")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per input (hang)")
    ap.add_argument(
        "--crashes", type=Path, default=Path(tempfile.gettempdir()) / "riskguard-fuzz-crashes"
    )
    ap.add_argument("--replay", nargs="*", type=Path, help="run these saved inputs and exit")
    args = ap.parse_args(argv)

    if args.replay is not None:
        bad = 0
        for p in args.replay:
            try:
                print(f"{p}: {run_one(p.read_bytes())}")
            except Finding as exc:
                bad += 1
                print(f"{p}: FINDING {exc}")
                traceback.print_exception(exc.__cause__ or exc)
        return 1 if bad else 0

    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    if engine == "atheris":
        return fuzz_atheris(args.seconds, args.crashes, args.timeout)

    def report(data: bytes, exc: BaseException) -> None:
        p = save_finding(args.crashes, data, exc)
        print(f"FINDING {exc} -> {p}", file=sys.stderr)
        traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)

    stats = fuzz_mutate(
        seconds=args.seconds if args.iterations is None else None,
        iterations=args.iterations,
        seed=args.seed,
        timeout=args.timeout,
        on_finding=report,
    )
    rate = stats["runs"] / stats["seconds"] if stats["seconds"] else 0
    print(
        f"mutate: {stats['runs']} inputs in {stats['seconds']:.1f} s ({rate:.0f}/s), "
        f"{stats['accepted']} accepted, {stats['rejected']} rejected, "
        f"{len(stats['findings'])} findings"
    )
    return 1 if stats["findings"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
