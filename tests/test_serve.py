"""`riskguard serve` as bots and operators use it: a real uvicorn process on loopback,
driven with httpx — every endpoint, auth refusals, hostile bodies, a hung plugin rule,
reload under load, several workers sharing one audit log, the kill switch and the store."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from riskguard import Guard, load_policy
from riskguard.engine.decision import clean_metrics
from riskguard.model.schemas import validator

from .conftest import POLICIES, run_cli, snapshot_doc
from .serve_helpers import Server

pytest.importorskip("uvicorn")

DEFAULT = str(POLICIES / "default.yaml")
SOL = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 10, "leverage": 5, "stopLossPrice": 140}
BIG_SOL = {**SOL, "amount": 200}
PROBLEM_JSON = "application/problem+json"


def snap(account: str = "main") -> dict:
    return snapshot_doc(account=account)


def problem(r: httpx.Response, status: int) -> dict:
    """The response is a problem document of ``status`` (never a traceback)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    doc = r.json()
    assert doc["status"] == status
    assert doc["type"].startswith("https://riskguard.dev/problems/")
    assert "Traceback" not in r.text
    return doc


def paths(doc: dict) -> list[str]:
    return [p["path"] for p in doc.get("problems", [])]


# --------------------------------------------------------------------------- fixtures

TOKENS = {
    "admin": secrets.token_hex(32),
    "bot": secrets.token_hex(32),  # accounts=main only
    "reader": secrets.token_hex(32),  # any account, not admin
}


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokens")
    lines = []
    for name, flags in (("admin", "admin"), ("bot", "accounts=main"), ("reader", "")):
        r = run_cli("serve", "--hash-token", input=TOKENS[name] + "\n")
        assert r.returncode == 0, r.stderr
        h = r.stdout.split()[0]
        assert TOKENS[name] not in r.stdout  # the file holds the hash, never the token
        lines.append(f"{h} {name} {flags}".rstrip())
    f = d / "tokens.txt"
    f.write_text("# riskguard tokens\n" + "\n".join(lines) + "\n")
    return str(f)


@pytest.fixture(scope="module")
def server(token_file, tmp_path_factory):
    d = tmp_path_factory.mktemp("srv")
    with Server(
        "-p",
        DEFAULT,
        "--token-file",
        token_file,
        "--audit-log",
        str(d / "audit.jsonl"),
        "--max-body-bytes",
        "65536",
    ) as s:
        yield s


def client(server: Server, who: str | None = "reader") -> httpx.Client:
    headers = {"authorization": f"Bearer {TOKENS[who]}"} if who else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


# --------------------------------------------------------------------------- endpoints


def test_check_with_a_snapshot_matches_the_library_and_the_decision_schema(server):
    guard = Guard.from_file(DEFAULT)
    with client(server) as c:
        for order in (SOL, BIG_SOL, None):
            body = {"snapshot": snap()} if order is None else {"snapshot": snap(), "order": order}
            r = c.post("/v1/check", json=body)
            assert r.status_code == 200, r.text
            d = r.json()
            validator("decision").validate(d)
            lib = guard.check(snap(), order)
            assert d["decision"] == lib.decision
            assert d["policy"] == lib.policy
            assert [v["code"] for v in d["violations"]] == [v.code for v in lib.violations]
            assert d.get("maxAllowedAmount") == lib.to_dict().get("maxAllowedAmount")
            assert d.get("approvedAmount") == lib.to_dict().get("approvedAmount")
            assert "metrics" not in d
        r = c.post("/v1/check?metrics=true", json={"snapshot": snap(), "order": SOL})
        assert r.json()["metrics"]["equity"] == pytest.approx(guard.metrics(snap()).equity)


def test_stored_snapshot_serves_account_checks(server):
    with client(server) as c:
        r = c.post("/v1/snapshots/main", json=snap("main"))
        assert r.status_code == 200, r.text
        assert r.json()["account"] == "main" and r.json()["positions"] == 2
        a = c.post("/v1/check", json={"account": "main", "order": BIG_SOL}).json()
        b = c.post("/v1/check", json={"snapshot": snap("main"), "order": BIG_SOL}).json()
        assert a["decision"] == b["decision"] == "resize"
        assert a["snapshot"]["digest"] == b["snapshot"]["digest"] == r.json()["digest"]
        assert a["maxAllowedAmount"] == b["maxAllowedAmount"]
        # a newer snapshot replaces the stored one
        richer = snap("main")
        richer["walletBalance"] = 1_000_000.0
        assert c.post("/v1/snapshots/main", json=richer).status_code == 200
        assert (
            c.post("/v1/check", json={"account": "main", "order": BIG_SOL}).json()["decision"]
            == "allow"
        )
        r = c.post("/v1/check", json={"account": "never-stored", "order": SOL})
        assert paths(problem(r, 404)) == ["$.account"]


def test_what_if_routes_answer_as_the_library(server):
    guard = Guard.from_file(DEFAULT)
    with client(server) as c:
        r = c.post("/v1/max-order-amount", json={"snapshot": snap(), "order": BIG_SOL})
        assert r.status_code == 200, r.text
        assert r.json()["maxOrderAmount"] == guard.max_order_amount(snap(), BIG_SOL)
        assert r.json()["policy"] == guard.policy.ref
        problem(c.post("/v1/max-order-amount", json={"snapshot": snap()}), 422)

        r = c.post("/v1/metrics", json={"snapshot": snap()})
        assert r.status_code == 200, r.text
        assert r.json() == json.loads(json.dumps(clean_metrics(guard.metrics(snap()).to_dict())))

        r = c.post("/v1/explain", json={"snapshot": snap(), "order": BIG_SOL})
        assert r.status_code == 200, r.text
        x = r.json()
        assert x["decision"] == "resize"
        assert {rule["id"] for rule in x["rules"]} == {s.id for s in guard.policy.specs}
        assert x["why"]


def test_policy_health_readiness_and_openapi(server):
    pol = load_policy(DEFAULT)
    with client(server) as c:
        p = c.get("/v1/policy").json()
        assert (p["name"], p["version"], p["digest"]) == (pol.name, pol.version, pol.digest)
        assert [r["id"] for r in p["rules"]] == [s.id for s in pol.specs]
    with client(server, None) as anon:  # health needs no token
        assert anon.get("/healthz").json() == {"status": "ok"}
        ready = anon.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True and ready.json()["policy"]["digest"] == pol.digest
        doc = anon.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    from openapi_spec_validator import validate

    validate(doc)  # a valid OpenAPI 3.1 document (raises otherwise)
    for path in (
        "/v1/check",
        "/v1/snapshots/{account}",
        "/v1/max-order-amount",
        "/v1/metrics",
        "/v1/explain",
        "/v1/policy",
        "/v1/trading-state",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in doc["paths"], path
    # every $ref resolves inside the document, and its schemas validate real bodies
    text = json.dumps(doc)
    for ref in set(__import__("re").findall(r'"\$ref": "#/([^"]+)"', text)):
        node = doc
        for part in ref.split("/"):
            node = node[part]
    reg = Registry().with_resource(
        "urn:api",
        Resource.from_contents(
            doc, default_specification=__import__("referencing.jsonschema").jsonschema.DRAFT202012
        ),
    )

    def check(component: str, instance: object) -> list:
        v = Draft202012Validator({"$ref": f"urn:api#/components/schemas/{component}"}, registry=reg)
        return list(v.iter_errors(instance))

    assert check("Snapshot", snap()) == []
    with client(server) as c:  # the service's own answers match its own description
        live = c.post("/v1/check", json={"snapshot": snap(), "order": BIG_SOL}).json()
        bad_answer = c.post("/v1/check", json={"order": SOL})
    assert check("Decision", live) == []
    assert check("Problem", bad_answer.json()) == []
    assert check("CheckRequest", {"snapshot": snap(), "order": SOL}) == []
    assert check("CheckRequest", {"account": "main", "order": SOL}) == []
    assert check("CheckRequest", {"order": SOL}) != []
    assert check("CheckRequest", {"snapshot": snap(), "bogus": 1}) != []
    bad = snap()
    bad["positions"][0]["side"] = "sideways"
    assert check("Snapshot", bad) != []


def test_prometheus_metrics_count_requests_and_decisions(server):
    with client(server) as c:
        c.post("/v1/check", json={"snapshot": snap(), "order": BIG_SOL})
        text = c.get("/metrics").text
    assert 'riskguard_decisions_total{outcome="resize"}' in text
    assert 'riskguard_decision_reasons_total{code="MARGIN_UTILIZATION_EXCEEDS_MAX"' in text
    assert 'riskguard_http_requests_total{method="POST",route="check",status="200"}' in text
    assert "riskguard_http_request_duration_seconds_bucket" in text
    assert "riskguard_policy_info{" in text


def test_kill_switch_needs_an_admin_token_and_halts_checks(server):
    with client(server, "reader") as reader, client(server, "admin") as admin:
        problem(reader.put("/v1/trading-state", json={"tradingState": "halted"}), 403)
        r = admin.put("/v1/trading-state", json={"tradingState": "halted", "reason": "test"})
        assert r.status_code == 200, r.text
        assert r.json() == {"tradingState": "halted", "previous": "active"}
        try:
            assert reader.get("/v1/trading-state").json() == {"tradingState": "halted"}
            d = reader.post("/v1/check", json={"snapshot": snap(), "order": SOL}).json()
            assert d["decision"] == "deny"
            assert "TRADING_STATE_HALTED" in {v["code"] for v in d["violations"]}
            bad = admin.put("/v1/trading-state", json={"tradingState": "paused"})
            assert paths(problem(bad, 422)) == ["$.tradingState"]
        finally:
            r = admin.put("/v1/trading-state", json={"tradingState": "active"})
            assert r.json()["previous"] == "halted"
        assert (
            reader.post("/v1/check", json={"snapshot": snap(), "order": SOL}).json()["decision"]
            == "allow"
        )


# --------------------------------------------------------------------------- auth


def test_auth_refusals_do_not_leak_whether_an_account_exists(server):
    with client(server, None) as anon:
        r = anon.post("/v1/check", json={"snapshot": snap(), "order": SOL})
        problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        problem(anon.get("/v1/policy"), 401)
        problem(anon.get("/metrics"), 401)
        wrong = {"authorization": "Bearer " + secrets.token_hex(32)}
        problem(anon.post("/v1/check", json={"account": "main"}, headers=wrong), 401)
        problem(anon.get("/v1/policy", headers={"authorization": "Basic dXNlcjpwYXNz"}), 401)
        problem(anon.put("/v1/trading-state", json={"tradingState": "halted"}), 401)
    with client(server, "reader") as reader:
        assert reader.post("/v1/snapshots/other", json=snap("other")).status_code == 200
    with client(server, "bot") as bot:
        # 'other' has a snapshot stored, 'ghost' has none: the bot cannot tell them apart
        a = bot.post("/v1/check", json={"account": "other", "order": SOL})
        b = bot.post("/v1/check", json={"account": "ghost", "order": SOL})
        da, db = problem(a, 403), problem(b, 403)
        assert {k: v for k, v in da.items()} == {k: v for k, v in db.items()}
        assert "other" not in a.text and "ghost" not in b.text
        problem(bot.post("/v1/check", json={"snapshot": snap("other"), "order": SOL}), 403)
        problem(bot.post("/v1/snapshots/other", json=snap("other")), 403)
        problem(bot.post("/v1/max-order-amount", json={"account": "ghost", "order": SOL}), 403)
        assert (
            bot.post("/v1/check", json={"snapshot": snap("main"), "order": SOL}).status_code == 200
        )


# --------------------------------------------------------------------------- hostile bodies


def test_malformed_and_oversized_bodies_get_problem_documents(server):
    with client(server) as c:
        r = c.post(
            "/v1/check",
            content=b'{"snapshot": {"account": ',
            headers={"content-type": "application/json"},
        )
        doc = problem(r, 400)
        assert doc["problems"][0]["path"] == "$" and doc["problems"][0]["line"] == 1
        problem(c.post("/v1/check", content=b'{"snapshot": NaN}'), 400)
        dup = problem(c.post("/v1/check", content=b'{"account": "a",\n "account": "b"}'), 400)
        assert dup["problems"][0]["code"] == "duplicate_key"
        assert dup["problems"][0]["line"] == 2
        problem(c.post("/v1/check", content=b""), 400)
        problem(c.post("/v1/check", content=b"\xff\xfe\x00"), 400)
        assert paths(problem(c.post("/v1/check", json=[1, 2]), 422)) == ["$"]
        assert paths(problem(c.post("/v1/check", json={"snapshot": snap(), "bogus": 1}), 422)) == [
            "$.bogus"
        ]
        assert paths(problem(c.post("/v1/check", json={"order": SOL}), 422)) == ["$"]
        assert paths(problem(c.post("/v1/check", json={"account": 7}), 422)) == ["$.account"]
        assert paths(problem(c.post("/v1/check", json={"account": "x" * 300}), 422)) == [
            "$.account"
        ]
        problem(c.post("/v1/snapshots/" + "x" * 300, json=snap()), 422)
        s = snap()
        s["positions"][0]["contracts"] = "lots"
        doc = problem(c.post("/v1/check", json={"snapshot": s, "order": SOL}), 422)
        assert "$.snapshot.positions[0].contracts" in paths(doc)
        doc = problem(
            c.post(
                "/v1/check", json={"snapshot": snap(), "order": {**SOL, "side": "up", "amount": -1}}
            ),
            422,
        )
        assert set(paths(doc)) == {"$.order.side", "$.order.amount"}
        problem(c.post("/v1/snapshots/main", json={"positions": "none"}), 422)
        # oversized: declared, and streamed without a length
        big = b'{"snapshot": "' + b"x" * 70_000 + b'"}'
        problem(c.post("/v1/check", content=big), 413)

        def chunks():
            for _ in range(20):
                yield b" " * 8192

        problem(c.post("/v1/check", content=chunks()), 413)
        problem(
            c.post(
                "/v1/check",
                content=b"--x\r\n",
                headers={"content-type": "multipart/form-data; boundary=x"},
            ),
            415,
        )
        problem(c.get("/v1/nothing-here"), 404)
        problem(c.get("/v1/check"), 405)
        # deeply nested JSON is refused, not a crash
        deep = b'{"snapshot": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
        assert paths(problem(c.post("/v1/check", content=deep), 400)) == ["$"]
        s = snap()
        s["extra"] = json.loads("[" * 200 + "]" * 200)  # parses, but deeper than a snapshot may be
        problem(c.post("/v1/check", json={"snapshot": s}), 422)
        assert c.get("/healthz").status_code == 200
        assert "Traceback" not in server.log()


def test_a_body_that_never_arrives_gets_408_and_the_server_goes_on(tmp_path):
    import socket

    with Server("-p", DEFAULT, "--body-timeout", "1") as s:
        host, port = s.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.sendall(
                b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"snapshot": '
            )
            answer = b""
            while b"\r\n\r\n" not in answer:  # the server answers without the rest
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"application/problem+json" in answer
        with httpx.Client(base_url=s.url, timeout=10) as c:
            assert c.post("/v1/check", json={"snapshot": snap()}).status_code == 200


def test_an_unwritable_audit_log_fails_closed_and_is_not_ready():
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with (
        Server("-p", DEFAULT, "--audit-log", "/dev/full") as s,
        httpx.Client(base_url=s.url, timeout=10) as c,
    ):
        c.post("/v1/check", json={"snapshot": snap(), "order": SOL})  # this write fails
        deadline = time.monotonic() + 20
        while (r := c.get("/readyz")).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert r.status_code == 503 and r.json()["ready"] is False
        assert "audit log" in r.json()["reasons"][0]
        d = c.post("/v1/check", json={"snapshot": snap(), "order": SOL}).json()
        assert d["decision"] == "deny"
        assert d["violations"][0]["code"] == "AUDIT_LOG_UNAVAILABLE"


# --------------------------------------------------------------------------- a hung rule

HANG_PLUGIN = """
import time
from riskguard import hookimpl
from riskguard.rules.base import BaseRule, RuleType

class Hang(BaseRule):
    def evaluate(self, ctx):
        if ctx.order is not None and ctx.order.clientOrderId == "hang":
            time.sleep(1.5)  # a plugin waiting on a dead network call
        if ctx.order is not None and ctx.order.clientOrderId == "boom":
            raise RuntimeError("plugin bug")

@hookimpl
def riskguard_rule_types(register):
    register(RuleType("test_hang", {"type": "object"}, Hang, "hangs on request", {}))
"""


def test_a_hung_plugin_rule_is_denied_within_the_budget_and_the_server_stays_up(tmp_path):
    plugin = tmp_path / "hang_plugin.py"
    plugin.write_text(HANG_PLUGIN)
    pol = yaml.safe_load(Path(DEFAULT).read_text())
    pol["spec"]["rules"].append({"id": "hang", "type": "test_hang", "severity": "error"})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pol))
    with (
        Server(
            "-p", str(tmp_path / "p.yaml"), "--plugin", str(plugin), "--time-budget-ms", "200"
        ) as s,
        httpx.Client(base_url=s.url, timeout=10) as c,
    ):
        hung = {**SOL, "clientOrderId": "hang"}
        # a rule that raises: deny, as the library decides (fail closed)
        boom = {"snapshot": snap(), "order": {**SOL, "clientOrderId": "boom"}}
        d = c.post("/v1/check", json=boom).json()
        lib = Guard.from_file(tmp_path / "p.yaml", plugins=[str(plugin)]).check(
            snap(), boom["order"]
        )
        assert d["decision"] == lib.decision == "deny"
        assert "RULE_ERROR" in {v["code"] for v in d["violations"]}
        for _ in range(6):  # more than the guard keeps stuck workers for
            r = c.post("/v1/check", json={"snapshot": snap(), "order": hung})
            assert r.status_code == 200, r.text
            d = r.json()
            assert d["decision"] == "deny"
            assert d["violations"][0]["code"] == "ENGINE_TIME_BUDGET_EXCEEDED"
            assert d["maxAllowedAmount"] == 0.0
        m = c.post("/v1/max-order-amount", json={"snapshot": snap(), "order": hung}).json()
        assert (
            m["maxOrderAmount"] == 0.0 and m["errors"][0]["engine"] == "ENGINE_TIME_BUDGET_EXCEEDED"
        )
        problem(c.post("/v1/explain", json={"snapshot": snap(), "order": hung}), 503)
        assert c.get("/healthz").status_code == 200
        # once the stuck rules return, ordinary orders are allowed again
        deadline = time.monotonic() + 30
        while True:
            d = c.post("/v1/check", json={"snapshot": snap(), "order": SOL}).json()
            if d["decision"] == "allow" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert d["decision"] == "allow"


# --------------------------------------------------------------------------- reload


def _policy_variant(version: str, max_util: float) -> str:
    pol = yaml.safe_load(Path(DEFAULT).read_text())
    pol["metadata"]["version"] = version
    for rule in pol["spec"]["rules"]:
        if rule["type"] == "margin_utilization":
            rule["params"]["max"] = max_util
            rule["params"].pop("warnAt", None)
    return yaml.safe_dump(pol, sort_keys=False)


def _swap(path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_reload_under_load_swaps_atomically_with_no_failed_request(tmp_path):
    """50 swaps (file replaced + SIGHUP) while 4 keep-alive clients check: every request
    answers 200, each decision names policy A or B, and its outcome is the one that
    policy gives (never a mix of the two)."""
    a_text, b_text = _policy_variant("A", 0.35), _policy_variant("B", 0.95)
    p = tmp_path / "policy.yaml"
    p.write_text(a_text)
    (tmp_path / "b.yaml").write_text(b_text)
    digest = {"A": load_policy(p).digest, "B": load_policy(tmp_path / "b.yaml").digest}
    body = {"snapshot": snap(), "order": BIG_SOL}
    expect = {
        digest[k]: Guard.from_file(f).check(snap(), BIG_SOL).decision
        for k, f in (("A", p), ("B", tmp_path / "b.yaml"))
    }
    assert expect[digest["A"]] != expect[digest["B"]]  # the outcome tells the policies apart

    with Server("-p", str(p), "--workers", "1") as s:
        stop = threading.Event()
        seen: list[tuple[str, str]] = []
        failures: list[str] = []

        def send() -> None:
            with httpx.Client(base_url=s.url, timeout=10) as c:
                for _ in range(100_000):
                    if stop.is_set():
                        return
                    try:
                        r = c.post("/v1/check", json=body)
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:200]}")
                            continue
                        d = r.json()
                        seen.append((d["policy"]["digest"], d["decision"]))
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(50):
                _swap(p, b_text if i % 2 == 0 else a_text)
                s.signal(signal.SIGHUP)
                time.sleep(0.05)
        finally:
            time.sleep(0.3)
            stop.set()
            for t in threads:
                t.join(30)
        # the last swap wrote A; the policy in force ends as A
        deadline = time.monotonic() + 10
        while httpx.get(s.url + "/v1/policy").json()["digest"] != digest["A"]:
            assert time.monotonic() < deadline, "the last policy never took effect"
            time.sleep(0.1)
    assert failures == []
    assert len(seen) > 50
    assert {d for d, _ in seen} == set(digest.values())  # both were in force at some time
    mixed = [(d, o) for d, o in seen if expect[d] != o]
    assert mixed == []
    assert "reloaded" in s.log()


def test_a_broken_policy_keeps_the_old_one_and_shows_in_readyz(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text(_policy_variant("A", 0.35))
    good = load_policy(p).digest
    with Server("-p", str(p)) as s, httpx.Client(base_url=s.url, timeout=10) as c:
        _swap(
            p,
            "apiVersion: riskguard/v1\nkind: Policy\nspec:\n  rules:\n    - id: x\n      type: no_such_rule\n",
        )
        # the watcher sees the change (no signal); poll /readyz for the failed reload
        deadline = time.monotonic() + 20
        while (ready := c.get("/readyz").json())["lastReload"]["status"] != "failed":
            assert time.monotonic() < deadline, ready
            time.sleep(0.1)
        assert ready["ready"] is True and ready["policy"]["digest"] == good
        assert ready["lastReload"]["trigger"] == "file change"
        assert any("no_such_rule" in pr["message"] for pr in ready["lastReload"]["problems"])
        d = c.post("/v1/check", json={"snapshot": snap(), "order": SOL}).json()
        assert d["policy"]["digest"] == good
        # fixed again: the new version is compiled and swapped in
        _swap(p, _policy_variant("C", 0.5))
        while (ready := c.get("/readyz").json())["lastReload"]["status"] != "ok":
            assert time.monotonic() < deadline + 20, ready
            time.sleep(0.1)
        assert c.get("/v1/policy").json()["version"] == "C"
    assert "policy reload (file change) failed" in s.log()


# --------------------------------------------------------------------------- workers


def _sockets_per_process(root: int) -> dict[int, int]:
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        n = 0
        for fd in fds:
            with contextlib.suppress(OSError):
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        out[pid] = n
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreading: Linux")
def test_workers_each_accept_connections_from_a_socket_of_their_own():
    """32 keep-alive clients connecting at once are spread over both workers (each listens
    on its own SO_REUSEPORT socket), not left to whichever worker wakes first."""
    with Server("-p", DEFAULT, "--no-watch", "--workers", "2") as s:
        time.sleep(1.0)  # both workers listening
        idle = _sockets_per_process(s.proc.pid)
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        conns = [socket.create_connection((host, int(port)), timeout=10) for _ in range(32)]
        try:
            for c in conns:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            for c in conns:
                assert c.recv(4096).startswith(b"HTTP/1.1 200")
            now = _sockets_per_process(s.proc.pid)
            held = sorted(n - idle.get(pid, 0) for pid, n in now.items())
        finally:
            for c in conns:
                c.close()
        held = [h for h in held if h > 0]
        assert len(held) == 2 and sum(held) == 32, held
        assert min(held) >= 6, held  # random spreading: below 6 of 32 has odds of ~1e-4
        # a second service on the same port is refused, not let into the group
        for workers in ("2", "1"):
            r = run_cli("serve", "-p", DEFAULT, "--port", port, "--workers", workers)
            assert r.returncode == 2, r.stderr
            assert f"cannot bind {host}:{port}" in r.stderr
        assert httpx.get(s.url + "/healthz").status_code == 200


def test_workers_share_store_and_kill_switch_and_one_verifiable_audit_log(tmp_path, token_file):
    log_path = tmp_path / "audit.jsonl"
    admin = {"authorization": f"Bearer {TOKENS['admin']}"}
    (tmp_path / "p.yaml").write_text(Path(DEFAULT).read_text())
    with Server(
        "-p",
        str(tmp_path / "p.yaml"),
        "--no-watch",
        "--workers",
        "2",
        "--audit-log",
        str(log_path),
        "--token-file",
        token_file,
    ) as s:
        with httpx.Client(base_url=s.url, headers=admin, timeout=10) as c:
            assert c.post("/v1/snapshots/main", json=snap("main")).status_code == 200
        n = 0

        def fresh(path: str, **kw) -> httpx.Response:
            # a new connection each time, so the kernel spreads requests over both workers
            with httpx.Client(base_url=s.url, headers=admin, timeout=10) as c:
                return c.post(path, **kw)

        for _ in range(40):
            r = fresh("/v1/check", json={"account": "main", "order": SOL})
            assert r.status_code == 200, r.text
            assert r.json()["decision"] == "allow"
            n += 1
        with httpx.Client(base_url=s.url, headers=admin, timeout=10) as c:
            assert c.put("/v1/trading-state", json={"tradingState": "halted"}).status_code == 200
        for _ in range(20):  # every worker sees the kill switch
            d = fresh("/v1/check", json={"account": "main", "order": SOL}).json()
            assert d["decision"] == "deny", d
            n += 1
        text = httpx.get(s.url + "/metrics", headers=admin).text
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("riskguard_decisions_total{")
        )
        assert total == n  # aggregated over both workers
        # SIGHUP to the supervisor reloads the policy in every worker
        (tmp_path / "p.yaml").write_text(_policy_variant("HUP", 0.35))
        assert s.args[1] == str(tmp_path / "p.yaml")
        newer = load_policy(tmp_path / "p.yaml").digest
        assert newer != load_policy(DEFAULT).digest
        s.signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        digests: list[str] = []
        while time.monotonic() < deadline:
            digests = [
                httpx.get(s.url + "/v1/policy", headers=admin, timeout=10).json()["digest"]
                for _ in range(10)
            ]
            if set(digests) == {newer}:
                break
            time.sleep(0.2)
        assert set(digests) == {newer}
        assert s.stop() == 0
    r = run_cli("verify-log", str(log_path))
    assert r.returncode == 0, r.stdout + r.stderr
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert sum(1 for x in records if x["event"] == "decision") == n
    assert len({x["seq"] for x in records}) == len(records)


# --------------------------------------------------------------------------- the command


def test_serve_command_refuses_bad_setups_with_exit_2(tmp_path):
    r = run_cli("serve")
    assert r.returncode == 2 and "--policy" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nspec:\n  rules: [{id: x, type: nope}]\n"
    )
    r = run_cli("serve", "-p", str(bad), "--port", "0")
    assert r.returncode == 2 and "bad.yaml" in r.stderr and "Traceback" not in r.stderr
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# ok\nplaintext-token-here\n")
    r = run_cli("serve", "-p", DEFAULT, "--token-file", str(tokens), "--port", "0")
    assert r.returncode == 2 and "tokens.txt:2" in r.stderr and "plaintext" not in r.stderr
    r = run_cli("serve", "-p", DEFAULT, "--tls-cert", "c.pem", "--port", "0")
    assert r.returncode == 2 and "--tls-key" in r.stderr
    r = run_cli("serve", "--hash-token", input="short\n")
    assert r.returncode == 2
    r = run_cli("serve", "-p", DEFAULT, "--tls-cert", "nope.pem", "--tls-key", "nope.pem")
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run_cli("serve", "-p", DEFAULT, "--audit-log", str(tmp_path / "no" / "dir" / "a.jsonl"))
    assert r.returncode == 2 and "a.jsonl" in r.stderr and "Traceback" not in r.stderr


def test_tls(tmp_path):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert))
    with Server("-p", DEFAULT, "--tls-cert", str(cert), "--tls-key", str(key), verify=ctx) as s:
        assert s.url.startswith("https://")
        with httpx.Client(base_url=s.url, verify=ctx, timeout=10) as c:
            d = c.post("/v1/check", json={"snapshot": snap(), "order": SOL}).json()
            assert d["decision"] == "allow"


def test_bench_quick_runs_every_mode():
    import subprocess
    import sys

    from .conftest import ROOT

    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serve_bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ") and "ms |" in line]
    modes = {row.split("|")[1].strip() for row in rows}
    assert modes == {"in-process Guard", "check --stream", "serve (1 worker)"}
    assert len(rows) == 12 and all(row.rstrip().endswith("| 0 |") for row in rows)
    assert "load average" in r.stdout


def test_app_bench_quick_prints_both_forms():
    """bench/serve_app_bench.py: the app in process beside Guard.check, a row per form."""
    import subprocess
    import sys

    from .conftest import ROOT

    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serve_app_bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split("|")[1:-1] for line in r.stdout.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in rows[0][:3]] == [
        "request",
        "Guard.check",
        "service (app in process)",
    ]
    body = {row[0].strip(): row for row in rows[1:]}  # the |---| line is not "| "
    assert set(body) == {"stored", "full"}
    for row in body.values():
        assert all(c.strip().endswith("µs") for c in row[1:4])
        assert row[-1].strip() == "100"  # 50 checks, 2 rounds
    assert "load average" in r.stdout


def test_state_dir_keeps_the_kill_switch_across_restarts_and_accounts_are_capped(
    tmp_path, token_file
):
    admin = {"authorization": f"Bearer {TOKENS['admin']}"}
    state = str(tmp_path / "state")
    with (
        Server(
            "-p", DEFAULT, "--state-dir", state, "--token-file", token_file, "--max-accounts", "1"
        ) as s,
        httpx.Client(base_url=s.url, headers=admin, timeout=10) as c,
    ):
        assert c.post("/v1/snapshots/main", json=snap("main")).status_code == 200
        problem(c.post("/v1/snapshots/second", json=snap("second")), 507)
        assert c.post("/v1/snapshots/main", json=snap("main")).status_code == 200  # replacing
        r = c.put("/v1/trading-state", json={"tradingState": "halted", "reason": "incident"})
        assert r.status_code == 200
    with (
        Server("-p", DEFAULT, "--state-dir", state, "--token-file", token_file) as s,
        httpx.Client(base_url=s.url, headers=admin, timeout=10) as c,
    ):
        assert c.get("/v1/trading-state").json() == {"tradingState": "halted"}
        d = c.post("/v1/check", json={"account": "main", "order": SOL}).json()
        assert d["decision"] == "deny"
        assert "TRADING_STATE_HALTED" in {v["code"] for v in d["violations"]}
    assert os.path.isdir(state)  # a given state directory is kept


def test_the_example_clients_run_against_a_real_server(server):
    """examples/serve/: the curl session runs to its end (it leaves the trading state
    active again); the Go client too where Go is installed."""
    import shutil
    import subprocess

    from .conftest import ROOT

    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("needs bash and curl")
    env = {**os.environ, "RISKGUARD_URL": server.url, "RISKGUARD_TOKEN": TOKENS["admin"]}
    r = subprocess.run(
        ["bash", "examples/serve/curl.sh"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"decision":"resize"' in r.stdout
    assert '"path":"$.order.amount"' in r.stdout  # step 6, the bad order
    assert '{"tradingState":"halted","previous":"active"}' in r.stdout
    assert 'riskguard_decisions_total{outcome="deny"}' in r.stdout
    assert httpx.get(server.url + "/readyz").json()["tradingState"] == "active"
    if shutil.which("go") is not None:
        r = subprocess.run(
            ["go", "run", "examples/serve/client.go"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env={**env, "GO111MODULE": "off"},
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("resize: send 0.2471")
