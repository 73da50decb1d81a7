"""The process-pool engine gives exactly what the sequential one gives: the same decisions
in the same order, the same bad records and the same summary, however the input is cut
into chunks."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from .conftest import snapshot_doc
from .test_audit import DEFAULT, audit_json, comparable, decisions, series, summary_part


def mixed_input(path: Path) -> Path:
    """Three accounts interleaved minute by minute, with bad records sprinkled in."""
    streams = [series(40, account=a) for a in ("acct-a", "acct-b", "acct-c")]
    lines = []
    for i in range(40):
        for s in streams:
            lines.append(json.dumps(s[i]))
        if i % 9 == 4:
            lines.append("{truncated")
        if i % 13 == 6:
            bad = snapshot_doc()
            bad["walletBalance"] = "lots"
            lines.append(json.dumps(bad))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(tmp_path: Path, name: str, inp: Path, *extra: str) -> tuple[dict, list[dict]]:
    out = tmp_path / f"{name}.jsonl"
    r, js = audit_json(str(inp), "--out", str(out), "--chunk-size", "7", *extra)
    assert r.returncode == 1, r.stderr
    return js, [comparable(d) | {"ref": d["snapshot"]["ref"]} for d in decisions(out)]


def test_two_workers_equal_sequential(tmp_path):
    inp = mixed_input(tmp_path / "mixed.jsonl")
    seq_js, seq = run(tmp_path, "seq", inp, "--workers", "1")
    par_js, par = run(tmp_path, "par", inp, "--workers", "2")
    assert seq_js["run"]["engine"] == "sequential"
    assert par_js["run"]["engine"] == "process(2)"
    assert len(seq) == 120 and seq_js["badRecords"] == 7
    assert par == seq
    assert summary_part(par_js) == summary_part(seq_js)
    assert seq_js["badRecords"] == 7 and seq_js["accounts"]  # a summary with timelines, not empty


def test_one_chunk_is_not_worth_a_pool(tmp_path):
    inp = tmp_path / "few.jsonl"
    inp.write_text("".join(json.dumps(d) + "\n" for d in series(5)))
    _r, js = audit_json(str(inp), "--workers", "2")
    assert js["run"]["engine"] == "sequential" and js["snapshots"] == 5


# ------------------------------------------------------- chunk summaries merge exactly

_POLICY = None
_RECORDS: list = []


def _setup():
    global _POLICY
    if _POLICY is None:
        from riskguard.engine.policy import load_policy

        _POLICY = load_policy(DEFAULT)
        docs = []
        for i in range(30):
            docs.append(series(30, account="acct-a")[i])
            docs.append(series(30, account="acct-b", start=1_795_000_030_000)[i])
        _RECORDS.extend((f"mem:{i + 1}", json.dumps(d)) for i, d in enumerate(docs))
        _RECORDS.insert(17, ("mem:bad", "{oops"))
    return _POLICY


@given(cuts=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=12, unique=True))
def test_chunk_summaries_merge_to_the_sequential_summary(cuts):
    """What a pool relies on: per-chunk summaries merged in order == one summary fed in order."""
    from riskguard.batch.run import AuditConfig, new_summary, run_chunk

    policy = _setup()
    config = AuditConfig.for_policy(policy, clock_ms=0)
    whole = new_summary()
    ref = run_chunk(policy, config, _RECORDS, whole)
    bounds = [0, *sorted(c for c in cuts if c < len(_RECORDS)), len(_RECORDS)]
    merged = new_summary()
    lines, bad = [], []
    for a, b in itertools.pairwise(bounds):
        res = run_chunk(policy, config, _RECORDS[a:b])
        merged.merge(res.summary)
        lines += res.text.decode().splitlines()
        bad += res.bad
    assert merged.to_dict() == whole.to_dict()
    strip = [
        {k: v for k, v in json.loads(x).items() if k not in ("decisionId", "durationUs")}
        for x in lines
    ]
    ref_strip = [
        {k: v for k, v in json.loads(x).items() if k not in ("decisionId", "durationUs")}
        for x in ref.text.decode().splitlines()
    ]
    assert strip == ref_strip and bad == ref.bad


# ------------------------------------------------------- line ranges read by workers

_line = st.one_of(
    st.just(""),
    st.just("   "),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
        max_size=12,
    ),
)


@given(
    lines=st.lists(_line, max_size=40),
    final_newline=st.booleans(),
    size=st.integers(min_value=1, max_value=9),
)
def test_line_ranges_yield_exactly_what_the_jsonl_source_yields(
    tmp_path_factory, lines, final_newline, size
):
    """Workers reading ranges of a file see the same records, with the same file:line refs,
    as the parent reading it line by line (blank lines skipped, numbering kept)."""
    from riskguard.batch.run import iter_line_ranges
    from riskguard.engine.sources import iter_jsonl

    path = tmp_path_factory.mktemp("ranges") / "f.jsonl"
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    path.write_bytes(text.encode("utf-8"))
    want = [(ref, line.rstrip("\n")) for ref, line in iter_jsonl(str(path))]
    ranges = list(iter_line_ranges(str(path), size))
    got = [rec for r in ranges for rec in r.records()]
    assert got == want
    assert all(a.end == b.start for a, b in itertools.pairwise(ranges))
    if ranges:
        assert ranges[0].start == 0 and ranges[-1].end == len(text.encode("utf-8"))


def test_summary_is_the_same_without_a_decisions_file(tmp_path):
    """Without --out the decisions are neither hashed nor serialised; the summary is unchanged."""
    inp = mixed_input(tmp_path / "mixed.jsonl")
    _r, with_out = audit_json(str(inp), "--out", str(tmp_path / "d.jsonl"), "-w", "2")
    _r, without = audit_json(str(inp), "-w", "2")
    assert summary_part(without) == summary_part(with_out)
    assert without["snapshots"] == 120


def test_every_shipped_policy_reloads_identically_in_a_worker():
    """Workers rebuild the policy from its compiled document and check the digest."""
    from riskguard.batch.run import AuditConfig
    from riskguard.engine.policy import load_policy

    from .conftest import POLICIES

    paths = sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".tests.yaml"))
    assert paths
    for path in paths:
        policy = load_policy(path)
        assert AuditConfig.for_policy(policy).load().digest == policy.digest, path.name
