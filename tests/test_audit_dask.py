"""`--engine dask` runs the same evaluation on a Dask cluster and gives the same results as
the sequential engine (a two-process LocalCluster, started once for this module)."""

from __future__ import annotations

import pytest

from .test_audit import audit_json, comparable, decisions, summary_part
from .test_audit_parallel import mixed_input

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def scheduler():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_dask_equals_sequential(tmp_path, scheduler):
    inp = mixed_input(tmp_path / "mixed.jsonl")
    results = {}
    for name, extra in {
        "seq": ("--workers", "1"),
        "dask": ("--engine", "dask", "--scheduler", scheduler),
    }.items():
        out = tmp_path / f"{name}.jsonl"
        r, js = audit_json(str(inp), "--out", str(out), "--chunk-size", "7", *extra)
        assert r.returncode == 1, r.stderr
        rows = [comparable(d) | {"ref": d["snapshot"]["ref"]} for d in decisions(out)]
        results[name] = (js, rows)
    (seq_js, seq), (dask_js, got) = results["seq"], results["dask"]
    assert dask_js["run"]["engine"] == "dask"
    assert len(got) == 120 and got == seq
    assert summary_part(dask_js) == summary_part(seq_js)
    assert seq_js["badRecords"] == 7 and seq_js["accounts"]  # a summary with timelines, not empty
