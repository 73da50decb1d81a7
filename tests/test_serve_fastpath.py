"""``POST /v1/check`` skips Starlette's dispatch (``ServiceApp``): the same requests —
good, unauthorized, forbidden, malformed, oversized, cut off — get the same status, headers
and body as through Starlette's router, and every other route still goes through it.

(The real-uvicorn tests in test_serve.py drive the same route end to end.)"""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("starlette")

from riskguard.faces.serve.app import ServiceApp, create_app
from riskguard.faces.serve.auth import hash_token
from riskguard.faces.serve.config import ServeConfig

from .conftest import POLICIES, snapshot_doc

BOT = "b" * 40
ADMIN = "a" * 40
SOL = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 10, "leverage": 5}
VOLATILE = ("decisionId", "timestamp", "durationUs")


@pytest.fixture
def app(tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN)} admin admin\n{hash_token(BOT)} bot accounts=main\n")
    cfg = ServeConfig(
        policy=str(POLICIES / "default.yaml"),
        state_dir=str(tmp_path / "state"),
        token_file=str(tokens),
        watch=False,
        max_body=4096,
        body_timeout_s=0.2,
    )
    (tmp_path / "state").mkdir()
    return create_app(cfg)


def _scope(method, path, headers, query=b""):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8181),
    }


async def _call(asgi, scope, chunks, *, hang=False, arrival="ready"):
    """Drive one request; ``chunks`` arrive as body messages (then a hang, or the end).

    ``arrival``: "ready" (each message is there when asked for: ``receive`` returns
    without waiting), "late" (``receive`` waits a moment for each), "silent" (nothing
    ever arrives), "gone" (the client disconnected before sending anything)."""
    queue = list(chunks)

    async def receive():
        if arrival == "gone":
            return {"type": "http.disconnect"}
        if arrival == "late":
            await asyncio.sleep(0.005)
        if queue and arrival != "silent":
            body = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(queue) or hang}
        await asyncio.sleep(3600)  # a client that stopped sending

    sent = []

    async def send(message):
        sent.append(message)

    await asgi(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], sorted(start["headers"]), body


def _comparable(status, headers, body):
    doc = json.loads(body) if body else None
    if isinstance(doc, dict) and "decision" in doc:
        for k in VOLATILE:
            doc.pop(k)
        headers = [h for h in headers if h[0] != b"content-length"]
    return status, headers, doc


def _auth(token):
    return [("authorization", f"Bearer {token}")] if token else []


SNAP = json.dumps(snapshot_doc(account="main")).encode()
CHECK = json.dumps({"account": "main", "order": SOL}).encode()
CASES = [
    # (token, headers, body chunks, query, hang[, arrival])
    (BOT, [("content-type", "application/json")], [json.dumps({"account": "main", "order": SOL}).encode()], b"", False),
    (BOT, [], [b'{"account": "main",', b' "order": ' + json.dumps(SOL).encode() + b"}"], b"metrics=1", False),
    (BOT, [], [json.dumps({"snapshot": snapshot_doc(account="main"), "order": SOL}).encode()], b"", False),
    (None, [], [json.dumps({"account": "main", "order": SOL}).encode()], b"", False),
    ("wrong" * 8, [], [json.dumps({"account": "main", "order": SOL}).encode()], b"", False),
    (BOT, [], [json.dumps({"account": "other", "order": SOL}).encode()], b"", False),
    (ADMIN, [], [json.dumps({"account": "ghost", "order": SOL}).encode()], b"", False),
    (BOT, [], [b'{"account": NaN}'], b"", False),
    (BOT, [], [b""], b"", False),
    (BOT, [], [b"\xff\xfe"], b"", False),
    (BOT, [], [b"[1, 2]"], b"", False),
    (BOT, [], [b'{"account": "main", "bogus": 1}'], b"", False),
    (BOT, [], [json.dumps({"account": "main", "order": {**SOL, "side": "up"}}).encode()], b"", False),
    (BOT, [], [json.dumps({"account": "main", "order": SOL, "ref": 7}).encode()], b"", False),
    (BOT, [("content-length", "99999")], [b"{}"], b"", False),
    (BOT, [], [b" " * 3000, b" " * 3000], b"", False),
    (BOT, [("content-type", "multipart/form-data; boundary=x")], [b"--x--"], b"", False),
    (BOT, [], [b'{"account": "main"'], b"", True),  # the rest never comes: 408
    # the body is not there yet when asked for: the wait goes through the timeout
    (BOT, [], [CHECK], b"", False, "late"),
    (BOT, [], [CHECK[:9], CHECK[9:]], b"", False, "late"),
    (BOT, [], [b" " * 5000], b"", False, "late"),
    (BOT, [], [CHECK], b"", False, "silent"),  # nothing ever comes: 408
    (BOT, [], [CHECK], b"", False, "gone"),  # a disconnect instead of a body
    (BOT, [], [b" " * 5000], b"", False),  # one message past the limit
]  # fmt: skip


def test_the_check_fast_path_answers_exactly_as_starlettes_router(app):
    assert isinstance(app, ServiceApp)

    async def main():
        # the account must exist for the stored-snapshot cases
        store = _scope("POST", "/v1/snapshots/main", [*_auth(ADMIN)])
        status, _, _ = await _call(app, store, [SNAP])
        assert status == 200
        for token, headers, chunks, query, hang, *arrival in CASES:
            hs = [*_auth(token), *headers]
            how = arrival[0] if arrival else "ready"
            fast_scope = _scope("POST", "/v1/check", hs, query)
            fast = await _call(app, fast_scope, chunks, hang=hang, arrival=how)
            assert "router" not in fast_scope  # answered without Starlette's router
            slow_scope = _scope("POST", "/v1/check", hs, query)
            slow = await _call(app.app, slow_scope, chunks, hang=hang, arrival=how)
            assert "router" in slow_scope
            assert _comparable(*fast) == _comparable(*slow), (token, headers, chunks)
            yield fast[0]

    async def collect():
        return [s async for s in main()]

    statuses = asyncio.run(collect())
    assert statuses == [200, 200, 200, 401, 401, 403, 404, 400, 400, 400, 422, 422, 422, 422,
                        413, 413, 415, 408, 200, 200, 413, 408, 500, 413]  # fmt: skip


def test_every_other_request_goes_through_starlette(app):
    async def main():
        out = {}
        for method, path in (
            ("GET", "/v1/check"),
            ("POST", "/v1/check/"),
            ("GET", "/healthz"),
            ("GET", "/nowhere"),
        ):
            scope = _scope(method, path, _auth(BOT))
            status, _, _ = await _call(app, scope, [b""])
            out[(method, path)] = (status, "router" in scope)
        return out

    got = asyncio.run(main())
    assert got[("GET", "/v1/check")] == (405, True)
    assert got[("GET", "/healthz")] == (200, True)
    assert got[("GET", "/nowhere")] == (404, True)
    assert got[("POST", "/v1/check/")][1] is True


def test_a_body_already_there_is_taken_without_the_body_loop():
    """``whole_body``: the body when the first ``receive`` returns the last message without
    waiting; else None, and ``stream`` goes on with what was received (or awaited)."""
    from riskguard.faces.serve.app import _LiteRequest

    def receiver(messages, wait):
        async def receive():
            if wait:
                await asyncio.sleep(0.001)
            return messages.pop(0)

        return receive

    async def read(request):
        return b"".join([chunk async for chunk in request.stream()])

    async def main():
        scope = _scope("POST", "/v1/check", [])
        last = {"type": "http.request", "body": b"{}", "more_body": False}
        ready = _LiteRequest(scope, receiver([dict(last)], wait=False))
        assert ready.whole_body() == b"{}"
        assert ready.whole_body() is None  # consumed
        late = _LiteRequest(scope, receiver([dict(last)], wait=True))
        assert late.whole_body() is None
        assert await read(late) == b"{}"
        first = {"type": "http.request", "body": b"{", "more_body": True}
        parts = _LiteRequest(scope, receiver([first, {**last, "body": b"}"}], wait=False))
        assert parts.whole_body() is None
        assert await read(parts) == b"{}"

    asyncio.run(main())


def test_reason_metrics_count_every_violation(app):
    """``riskguard_decision_reasons_total`` grows by each decision's violations per code,
    a code that occurs twice in one decision counted twice."""
    from collections import Counter

    wide = snapshot_doc(account="main")
    for p in wide["positions"]:  # stops far away: risk per trade above the limit, twice
        p["stopLossPrice"] = p["entryPrice"] * (0.8 if p["side"] == "long" else 1.2)

    async def main():
        seen: Counter = Counter()
        for doc in (wide, snapshot_doc(account="main"), wide):
            body = json.dumps({"snapshot": doc, "order": SOL}).encode()
            _, _, out = await _call(app, _scope("POST", "/v1/check", _auth(BOT)), [body])
            d = json.loads(out)
            seen.update((d["decision"], v["code"]) for v in d["violations"])
        _, _, text = await _call(app, _scope("GET", "/metrics", _auth(BOT)), [b""])
        return seen, text.decode()

    seen, text = asyncio.run(main())
    assert max(seen.values()) >= 4  # a code repeated within decisions and across them
    for (outcome, code), n in seen.items():
        line = f'riskguard_decision_reasons_total{{code="{code}",outcome="{outcome}"}} {float(n)}'
        assert line in text.splitlines(), line


@pytest.mark.parametrize("status", [200, 201, 503])
@pytest.mark.parametrize("body", [b"", b'{"decision":"allow"}', '{"note":"é€😀"}'.encode()])
def test_json_answers_carry_starlettes_own_headers(status, body):
    """The answers' response class writes its headers directly: the same ones, in the
    same order, as Starlette's ``Response(body, status, media_type="application/json")``."""
    from starlette.responses import Response

    from riskguard.faces.serve.app import _JSONResponse

    ours, theirs = (
        _JSONResponse(body, status),
        Response(body, status, media_type="application/json"),
    )
    assert ours.raw_headers == theirs.raw_headers
    assert (ours.status_code, ours.body, ours.background) == (
        theirs.status_code,
        theirs.body,
        theirs.background,
    )

    async def sent(response):
        out = []

        async def send(message):
            out.append(message)

        await response(_scope("POST", "/v1/check", []), None, send)
        return out

    assert asyncio.run(sent(ours)) == asyncio.run(sent(theirs))


def test_decisions_name_the_snapshot_by_the_engines_digest(app):
    """A snapshot sent with the check, or stored first: the digest in the answer (and the
    one the store returns) is ``Decision.snapshot_digest`` as the library computes it."""
    from riskguard import Guard
    from riskguard.engine.decision import digest
    from riskguard.model.snapshot import build_snapshot

    doc = snapshot_doc(account="main", walletBalance=10000.5)
    want = digest(build_snapshot(doc).to_dict())
    library = Guard.from_file(POLICIES / "default.yaml").check(build_snapshot(doc), SOL)
    assert library.snapshot_digest == want

    async def main():
        body = json.dumps({"snapshot": doc, "order": SOL}).encode()
        _, _, full = await _call(app, _scope("POST", "/v1/check", _auth(BOT)), [body])
        store = _scope("POST", "/v1/snapshots/main", _auth(BOT))
        _, _, stored = await _call(app, store, [json.dumps(doc).encode()])
        _, _, by_account = await _call(app, _scope("POST", "/v1/check", _auth(BOT)), [CHECK])
        return json.loads(full), json.loads(stored), json.loads(by_account)

    full, stored, by_account = asyncio.run(main())
    assert full["snapshot"]["digest"] == want
    assert stored["digest"] == want
    assert by_account["snapshot"]["digest"] == want
