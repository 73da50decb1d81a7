"""The audit and test commands where CI meets them (issue 13, items 6, 7, 8, 10): a broken
pipe, gzip and re-runs of --out, a compact archive form, a wrong Dask address, JUnit/SARIF."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import EXAMPLES, POLICIES, ROOT, run_cli

DEFAULT = str(POLICIES / "default.yaml")
SNAPSHOTS = str(EXAMPLES / "snapshots")


def _closed_stdout(*args: str) -> tuple[int, str]:
    """Run riskguard with a stdout whose reader has already gone (``| head -0``)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "riskguard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    return p.wait(timeout=120), err


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_broken_pipe_is_not_success(fmt):
    # --fail-on critical: this audit exits 0 when its output is read; unread, it must not.
    rc, err = _closed_stdout("audit", "-p", DEFAULT, SNAPSHOTS, "--fail-on", "critical", *fmt)
    assert rc == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_broken_pipe_in_policy_tests_is_not_success():
    rc, err = _closed_stdout("test", str(POLICIES / "default.yaml"))
    assert rc == 141, err
    assert "Traceback" not in err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "no-port-here"])
def test_a_wrong_dask_scheduler_is_a_usage_error_said_at_once(address):
    pytest.importorskip("distributed")
    addr = address.format(port=_free_port())
    r = run_cli(
        "audit", "-p", DEFAULT, SNAPSHOTS, "--engine", "dask", "--scheduler", addr,
        "--connect-timeout", "1",
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"--scheduler {addr}: cannot reach a Dask scheduler" in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def _audit_out(out, *extra):
    return run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--out", str(out), "-w", "1", *extra)


def _lines(path) -> list[dict]:
    import gzip
    import json

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(x) for x in fh]


def test_out_gz_is_gzip_and_a_rerun_does_not_append_silently(tmp_path):
    out = tmp_path / "d.jsonl.gz"
    r = _audit_out(out)
    assert r.returncode in (0, 1), r.stderr
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic, not text under a .gz name
    first = _lines(out)
    assert first and all("decisionId" in d for d in first)

    again = _audit_out(out)
    assert again.returncode == 2
    assert "exists" in again.stderr and "--append" in again.stderr and "--force" in again.stderr
    assert len(_lines(out)) == len(first)

    assert _audit_out(out, "--append").returncode in (0, 1)
    both = _lines(out)  # two gzip members, read as one stream
    assert len(both) == 2 * len(first)
    assert [d["snapshot"]["ref"] for d in both[len(first) :]] == [
        d["snapshot"]["ref"] for d in first
    ]

    assert _audit_out(out, "--force").returncode in (0, 1)
    assert len(_lines(out)) == len(first)
    r = run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--append", "--force")
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_compact_decisions_keep_the_facts_in_half_the_bytes(tmp_path):
    from riskguard.model.schemas import validator

    full, compact = tmp_path / "full.jsonl", tmp_path / "compact.jsonl"
    assert _audit_out(full).returncode in (0, 1)
    assert _audit_out(compact, "--decision-form", "compact").returncode in (0, 1)
    f, c = _lines(full), _lines(compact)
    assert len(f) == len(c) > 0
    v = validator("decision")
    for d in c:
        errors = list(v.iter_errors(d))
        assert not errors, errors[0].message
        assert d["form"] == "compact" and "metrics" not in d
        assert all(a["type"] != "alert" for a in d["actions"])
    for a, b in zip(f, c, strict=True):
        assert (a["decision"], a["snapshot"]) == (b["decision"], b["snapshot"])
        assert [(x["rule"], x["code"], x["observed"], x["limit"]) for x in a["violations"]] == [
            (x["rule"], x["code"], x["observed"], x["limit"]) for x in b["violations"]
        ]
    assert compact.stat().st_size < 0.6 * full.stat().st_size
    # the schema tells the forms apart: a full decision needs its messages
    bad = dict(c[0], form="full") if c[0]["violations"] else None
    if bad is not None:
        assert list(v.iter_errors(bad))
    assert list(v.iter_errors({**c[0], "metrics": {}}))  # compact: no metrics block


def test_decision_form_and_append_need_out():
    r = run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--decision-form", "compact")
    assert r.returncode == 2 and "go with --out" in r.stderr


# --------------------------------------------------------------------------- JUnit / SARIF

# SARIF 2.1.0 (OASIS, sarif-schema-2.1.0.json): for each object this output uses, the
# properties the schema allows (it sets additionalProperties: false on all of them) and
# the ones it requires. No package on PyPI ships the schema, so the structure is checked
# here by hand against those published facts.
SARIF_ALLOWED = {
    "log": ({"$schema", "version", "runs", "inlineExternalProperties", "properties"}, {"version", "runs"}),
    "run": ({"tool", "invocations", "results", "columnKind", "artifacts", "properties", "automationDetails", "originalUriBaseIds"}, {"tool"}),
    "tool": ({"driver", "extensions", "properties"}, {"driver"}),
    "toolComponent": ({"name", "fullName", "version", "semanticVersion", "informationUri", "rules", "notifications", "properties", "shortDescription", "fullDescription"}, {"name"}),
    "reportingDescriptor": ({"id", "name", "shortDescription", "fullDescription", "defaultConfiguration", "help", "helpUri", "properties", "messageStrings"}, {"id"}),
    "reportingConfiguration": ({"enabled", "level", "parameters", "properties", "rank"}, set()),
    "result": ({"ruleId", "ruleIndex", "rule", "kind", "level", "message", "locations", "relatedLocations", "partialFingerprints", "fingerprints", "properties"}, {"message"}),
    "location": ({"id", "physicalLocation", "message", "logicalLocations", "annotations", "relationships", "properties"}, set()),
    "physicalLocation": ({"artifactLocation", "region", "contextRegion", "address", "properties"}, set()),
    "artifactLocation": ({"uri", "uriBaseId", "index", "description", "properties"}, set()),
    "region": ({"startLine", "startColumn", "endLine", "endColumn", "charOffset", "charLength", "byteOffset", "byteLength", "snippet", "message", "sourceLanguage", "properties"}, set()),
    "message": ({"text", "markdown", "id", "arguments", "properties"}, set()),
    "multiformatMessageString": ({"text", "markdown", "properties"}, {"text"}),
    "invocation": ({"executionSuccessful", "exitCode", "toolExecutionNotifications", "toolConfigurationNotifications", "commandLine", "arguments", "startTimeUtc", "endTimeUtc", "properties", "workingDirectory"}, {"executionSuccessful"}),
    "notification": ({"message", "level", "locations", "descriptor", "associatedRule", "exception", "timeUtc", "threadId", "properties"}, {"message"}),
}  # fmt: skip
LEVELS = {"none", "note", "warning", "error"}
KINDS = {"notApplicable", "pass", "fail", "review", "open", "informational"}


def _obj(o, kind: str) -> None:
    allowed, required = SARIF_ALLOWED[kind]
    assert isinstance(o, dict), (kind, o)
    assert set(o) <= allowed, (kind, set(o) - allowed)
    assert required <= set(o), (kind, required - set(o))
    if "properties" in o:
        assert isinstance(o["properties"], dict)


def _message(m) -> None:
    _obj(m, "message")
    assert isinstance(m.get("text"), str) and m["text"]  # text or id is required


def _loc(loc) -> None:
    _obj(loc, "location")
    if "message" in loc:
        _message(loc["message"])
    phys = loc["physicalLocation"]
    _obj(phys, "physicalLocation")
    _obj(phys["artifactLocation"], "artifactLocation")
    assert (
        isinstance(phys["artifactLocation"]["uri"], str)
        and " " not in phys["artifactLocation"]["uri"]
    )
    if "region" in phys:
        _obj(phys["region"], "region")
        assert isinstance(phys["region"]["startLine"], int) and phys["region"]["startLine"] >= 1
        assert phys["region"].get("startColumn", 1) >= 1


def check_sarif(doc: dict) -> list[dict]:
    import json

    json.dumps(doc, allow_nan=False)  # plain JSON
    _obj(doc, "log")
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    _obj(run, "run")
    _obj(run["tool"], "tool")
    driver = run["tool"]["driver"]
    _obj(driver, "toolComponent")
    ids = []
    for rd in driver.get("rules", []):
        _obj(rd, "reportingDescriptor")
        for k in ("shortDescription", "fullDescription", "help"):
            if k in rd:
                _obj(rd[k], "multiformatMessageString")
        if "defaultConfiguration" in rd:
            _obj(rd["defaultConfiguration"], "reportingConfiguration")
            assert rd["defaultConfiguration"]["level"] in LEVELS
        ids.append(rd["id"])
    assert len(ids) == len(set(ids))
    for inv in run.get("invocations", []):
        _obj(inv, "invocation")
        assert isinstance(inv["executionSuccessful"], bool)
        for n in inv.get("toolExecutionNotifications", []):
            _obj(n, "notification")
            _message(n["message"])
            assert n.get("level", "warning") in LEVELS
            for loc in n.get("locations", []):
                _loc(loc)
    for r in run["results"]:
        _obj(r, "result")
        _message(r["message"])
        assert r.get("level", "warning") in LEVELS and r.get("kind", "fail") in KINDS
        if "ruleIndex" in r:
            assert ids[r["ruleIndex"]] == r["ruleId"]
        for loc in r.get("locations", []) + r.get("relatedLocations", []):
            _loc(loc)
        assert all(isinstance(v, str) for v in r.get("partialFingerprints", {}).values())
    return run["results"]


def check_junit(text: str):
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text.encode())
    assert root.tag == "testsuites"
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for ts in root:
        assert ts.tag == "testsuite" and ts.get("name")
        cases = ts.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        for k, n in counts.items():
            assert int(ts.get(k)) == n, (ts.get("name"), k)
            total[k] += n
        for c in cases:
            assert c.get("name") and c.get("classname")
            outcome = [x.tag for x in c if x.tag in ("failure", "error", "skipped")]
            assert len(outcome) <= 1
    for k in ("tests", "failures", "errors"):
        assert int(root.get(k)) == total[k], k
    return root


def test_audit_junit_fails_exactly_the_rules_breached_at_fail_on(tmp_path):
    import json

    summary = json.loads(run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--json", "-w", "1").stdout)
    for fail_on in ("error", "warning"):
        r = run_cli(
            "audit", "-p", DEFAULT, SNAPSHOTS, "--format", "junit", "--fail-on", fail_on, "-w", "1"
        )
        assert r.returncode == 1, r.stderr
        root = check_junit(r.stdout)
        failed = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
        rank = {"info": 0, "warning": 1, "error": 2, "critical": 3}
        expected = {
            rule
            for rule, s in summary["rules"].items()
            if any(rank[sev] >= rank[fail_on] for sev in s["bySeverity"])
        }
        assert failed == expected
        names = [c.get("name") for c in root.iter("testcase")]
        assert "kill-switch" in names and "bad records" in names  # unbreached rules pass
        for c in root.iter("testcase"):
            if c.get("file"):
                assert (ROOT / c.get("file")).is_file() and int(c.get("line")) >= 1


def test_audit_sarif_has_one_result_per_breach_episode_at_its_snapshot():
    import json

    summary = json.loads(run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--json", "-w", "1").stdout)
    r = run_cli("audit", "-p", DEFAULT, SNAPSHOTS, "--format", "sarif", "-w", "1")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    results = check_sarif(doc)
    episodes = [e for a in summary["accounts"].values() for e in a["episodes"]]
    assert len(results) == len(episodes) > 0
    assert doc["runs"][0]["invocations"][0]["exitCode"] == 1
    levels = {"critical": "error", "error": "error", "warning": "warning", "info": "note"}
    assert sorted((x["ruleId"], x["level"]) for x in results) == sorted(
        (e["rule"], levels[e["severity"]]) for e in episodes
    )
    for x in results:
        phys = x["locations"][0]["physicalLocation"]
        assert (ROOT / phys["artifactLocation"]["uri"]).is_file()
        if phys["artifactLocation"]["uri"].endswith(".jsonl"):
            assert phys["region"]["startLine"] >= 1


def test_policy_tests_as_junit_and_sarif():
    import json

    broken = str(ROOT / "tests" / "fixtures" / "policytests" / "broken" / "wrong.tests.yaml")
    r = run_cli("test", broken, "--format", "junit")
    assert r.returncode == 1
    root = check_junit(r.stdout)
    assert int(root.get("failures")) == 1 and int(root.get("tests")) == 2
    failure = next(root.iter("failure"))
    assert "expected" in failure.text and failure.get("message").startswith("decision")

    r = run_cli("test", broken, "--format", "sarif")
    assert r.returncode == 1
    results = check_sarif(json.loads(r.stdout))
    assert [x["ruleId"] for x in results] == ["policy-test-failed"]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 10 and region["startColumn"] >= 1

    r = run_cli("test", str(POLICIES / "default.yaml"), "--format", "junit")
    assert r.returncode == 0
    root = check_junit(r.stdout)
    assert int(root.get("tests")) >= 30 and root.find(".//failure") is None


def test_a_bad_tests_file_is_an_error_in_junit_and_a_notification_in_sarif(tmp_path):
    import json

    bad = tmp_path / "x.tests.yaml"
    bad.write_text("policy: nowhere.yaml\ncases: [{name: a}]\n")
    r = run_cli("test", str(bad), "--format", "junit")
    assert r.returncode == 2 and "error" in r.stderr
    root = check_junit(r.stdout)
    assert int(root.get("errors")) >= 1
    r = run_cli("test", str(bad), "--format", "sarif")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    check_sarif(doc)
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False and inv["toolExecutionNotifications"]
