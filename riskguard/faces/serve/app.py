"""The ASGI app: routes over one :class:`riskguard.Guard` per worker process.

Every route answers JSON; every refusal is an RFC 9457 problem document
(``application/problem+json``) whose ``problems`` carry riskguard's located problems (a
JSON path into the request body), never a traceback. Decisions come from
``Guard.acheck`` with the service's time budget, so a hung plugin rule is denied
(``ENGINE_TIME_BUDGET_EXCEEDED``) and the event loop keeps serving; engine and plugin
faults deny exactly as in the library. A check that runs no plugin code is evaluated on
the event loop (``inline_builtin``: built-in rules do not wait on anything), saving the
worker-thread hand-off; one past the budget is still denied. What-if routes (max order amount, metrics,
explain) run on a small thread pool under the same budget.

Policy reload (file change seen by ``watchfiles``, or ``SIGHUP``) goes through
``Guard.reload``: the new policy is compiled before one reference is swapped, so each
decision is made under the old or the new policy — the digest in the decision says which —
and a broken file keeps the old policy in force, is logged and is shown by ``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from riskguard import __version__
from riskguard.engine.decision import clean_metrics
from riskguard.errors import Problem, RiskguardError, problems_under
from riskguard.faces.guard import TRADING_STATES, AuditWriteError, Guard
from riskguard.faces.serve import encode
from riskguard.faces.serve.auth import ANONYMOUS, Authenticator, Principal, load_tokens
from riskguard.faces.serve.config import ServeConfig
from riskguard.faces.serve.openapi import PROBLEM_TYPE_BASE, build_openapi
from riskguard.faces.serve.store import SharedState, StoreFull
from riskguard.model.snapshot import Snapshot, build_order, build_snapshot
from riskguard.model.yamlio import parse_json_fast

log = logging.getLogger("riskguard.serve")

JSON = "application/json"
#: What-if evaluations (max order amount, metrics, explain) running at once, stuck ones included.
MAX_WHAT_IF = 16
PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
    507: "Insufficient Storage",
}


class ProblemError(Exception):
    """Raised by a handler; becomes a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        problems: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.problems = problems
        self.headers = headers


_dumps = encode.dumps  # json.dumps's compact UTF-8 bytes, by orjson where identical


def problem_response(p: ProblemError, instance: str) -> Response:
    doc: dict = {
        "type": PROBLEM_TYPE_BASE + p.slug,
        "title": _TITLES.get(p.status, "Error"),
        "status": p.status,
        "detail": p.detail,
        "instance": instance,
    }
    if p.problems:
        doc["problems"] = p.problems
    return Response(_dumps(doc), p.status, headers=p.headers, media_type=PROBLEM)


class _JSONResponse(Response):
    """Starlette's ``Response(body, status, media_type=JSON)``, its two headers written
    directly: ``content-length`` and ``content-type``, in Starlette's order and spelling
    (for a status that has a body: 200 and up, not 204 or 304)."""

    media_type = JSON

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]


def _json(obj: Any, status: int = 200) -> Response:
    if status < 200 or status in (204, 304):  # pragma: no cover - no such answer yet
        return Response(_dumps(obj), status, media_type=JSON)
    return _JSONResponse(_dumps(obj), status)


def _refuse_unknown(body: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """A request body's unknown fields are a 422 naming each one, never silently ignored."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ProblemError(
            422,
            "invalid-request",
            f"unknown field(s): {', '.join(unknown)} (expected: {', '.join(sorted(allowed))})",
            [_problem(f"$.{k}", "unknown field", "unknown_field") for k in unknown],
        )


def _problem(path: str, message: str, code: str, **loc: Any) -> dict:
    return {"path": path, "message": message, "code": code, **loc}


def _located(p: Problem) -> dict:
    loc = {k: v for k, v in (("line", p.line), ("column", p.column)) if v is not None}
    return _problem(p.path, p.message, p.code, **loc)


def _invalid(path: str, message: str, code: str = "invalid") -> ProblemError:
    return ProblemError(422, "invalid-request", message, [_problem(path, message, code)])


# --------------------------------------------------------------------------- metrics


class Metrics:
    """Prometheus metrics; per-process, or aggregated over workers in multiprocess mode."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # the *_created series double the exposition for nothing

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "riskguard_http_requests",
            "HTTP requests answered, by route, method and status code",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "riskguard_http_request_duration_seconds",
            "Time from request to response (body read, decision, serialization)",
            ["route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.decisions = Counter(
            "riskguard_decisions",
            "Decisions made, by outcome (allow, resize, deny)",
            ["outcome"],
            registry=r,
        )
        self.reasons = Counter(
            "riskguard_decision_reasons",
            "Violations in decisions, by the decision's outcome and the violation's reason code",
            ["outcome", "code"],
            registry=r,
        )
        self.reloads = Counter(
            "riskguard_policy_reloads",
            "Policy reload attempts by result (ok, failed)",
            ["result"],
            registry=r,
        )
        self.policy_info = Gauge(
            "riskguard_policy_info",
            "The policy in force (1) by name, version and digest",
            ["name", "version", "digest"],
            registry=r,
            multiprocess_mode="livemax",  # with workers: the live ones only (else ignored)
        )
        self._policy_labels: tuple[str, str, str] | None = None
        self._children: dict[tuple, Any] = {}

    def set_policy(self, ref: dict) -> None:
        labels = (ref["name"], ref["version"], ref["digest"])
        if self._policy_labels is not None and self._policy_labels != labels:
            self.policy_info.labels(*self._policy_labels).set(0)
        self.policy_info.labels(*labels).set(1)
        self._policy_labels = labels

    def decision(self, d: Any) -> None:
        outcome = d.decision
        self._child(self.decisions, (outcome,)).inc()
        if not d.violations:
            return
        # one increment per reason code, by its count (the same totals as one per violation)
        counts: dict[str, int] = {}
        for v in d.violations:
            counts[v.code] = counts.get(v.code, 0) + 1
        for code, n in counts.items():
            self._child(self.reasons, (outcome, code)).inc(n)

    def request(self, route: str, method: str, status: int) -> None:
        self._child(self.requests, (route, method, str(status))).inc()

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        # labels() costs a lock and a tuple build per call; the children are few and fixed
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# --------------------------------------------------------------------------- the service


class Service:
    """One worker's state: the guard, the shared store, reload status, metrics."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.auth = Authenticator(load_tokens(cfg.token_file) if cfg.token_file else None)
        self.guard = Guard.from_file(
            cfg.policy,
            plugins=cfg.plugins,
            audit_log=cfg.audit_log,
            audit_fsync=cfg.audit_fsync,
            time_budget_ms=cfg.time_budget_ms,
        )
        self.shared = SharedState(cfg.state_dir, cfg.max_accounts)
        self.shared.sync_trading_state(self.guard)
        self.metrics = Metrics()
        self.metrics.set_policy(self.guard.policy.ref)
        self.last_reload: dict = {
            "status": "loaded",
            "at": _now_iso(),
            "policy": self.guard.policy.ref,
        }
        self._reload_lock = threading.Lock()
        self._what_if_running = 0
        self._what_if_lock = threading.Lock()
        self._budget_s = cfg.time_budget_ms / 1000.0
        self._watch_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self.openapi = _dumps(build_openapi(__version__))

    # ------------------------------------------------------------------ reload

    def reload(self, trigger: str) -> dict:
        """Compile the policy again and swap it in; a broken policy keeps the old one."""
        with self._reload_lock:
            old = self.guard.policy.ref
            try:
                new = self.guard.reload()
            except RiskguardError as exc:
                self.metrics.reloads.labels("failed").inc()
                self.last_reload = {
                    "status": "failed",
                    "trigger": trigger,
                    "at": _now_iso(),
                    "policy": old,
                    "error": str(exc),
                    "problems": [p.to_dict() for p in exc.problems],
                }
                log.error("policy reload (%s) failed; keeping %s: %s", trigger, old["digest"], exc)
                return self.last_reload
            except Exception as exc:  # a plugin crashed while compiling: keep the old policy
                self.metrics.reloads.labels("failed").inc()
                self.last_reload = {
                    "status": "failed",
                    "trigger": trigger,
                    "at": _now_iso(),
                    "policy": old,
                    "error": f"{type(exc).__name__}: {exc}",
                }
                log.exception("policy reload (%s) failed; keeping %s", trigger, old["digest"])
                return self.last_reload
            self.metrics.reloads.labels("ok").inc()
            self.metrics.set_policy(new.ref)
            self.last_reload = {
                "status": "ok",
                "trigger": trigger,
                "at": _now_iso(),
                "policy": new.ref,
                "previous": old,
            }
            log.info("policy reloaded (%s): %s -> %s", trigger, old["digest"], new.ref["digest"])
            return self.last_reload

    def start_watching(self) -> None:
        if not self.cfg.watch:
            return
        dirs = sorted({str(Path(f).resolve().parent) for f in self._policy_files()})
        if not dirs:
            return
        self._watch_thread = threading.Thread(
            target=self._watch, args=(dirs,), name="riskguard-policy-watch", daemon=True
        )
        self._watch_thread.start()

    def _policy_files(self) -> set[str]:
        files = self.guard.policy.files or (self.cfg.policy,)
        return {str(Path(f).resolve()) for f in files if f and not f.startswith("<")}

    def _watch(self, dirs: list[str]) -> None:
        from watchfiles import watch

        try:
            for changes in watch(
                *dirs,
                watch_filter=lambda _change, path: (
                    str(Path(path).resolve()) in self._policy_files()
                ),
                stop_event=self._watch_stop,
                debounce=self.cfg.watch_debounce_ms,
                step=50,
                yield_on_timeout=False,
                raise_interrupt=False,
            ):
                if changes:
                    self.reload("file change")
        except Exception:  # the watcher must never take the service down; SIGHUP still works
            log.exception("policy file watcher stopped; SIGHUP still reloads")

    def close(self) -> None:
        self._watch_stop.set()
        if self._watch_thread is not None:
            self._watch_thread.join(timeout=2)
        self.guard.close()

    # ------------------------------------------------------------------ request helpers

    def principal(self, request: Request) -> Principal:
        p = self.auth.principal(request.headers.get("authorization"))
        if p is None:
            raise ProblemError(
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": 'Bearer realm="riskguard"'},
            )
        return p

    def admin(self, request: Request) -> Principal:
        if not self.auth.required:
            raise ProblemError(
                403,
                "forbidden",
                "changing the trading state needs an admin token: start the service with "
                "--token-file listing one marked 'admin'",
            )
        p = self.principal(request)
        if not p.admin:
            raise ProblemError(403, "forbidden", "this token may not change the trading state")
        return p

    async def body(self, request: Request | _LiteRequest) -> dict:
        # Any content type is read as JSON (curl -d sends form-urlencoded), except
        # multipart forms, which cannot be a JSON document.
        media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media.startswith("multipart/"):
            raise ProblemError(415, "unsupported-media-type", f"expected {JSON}, got {media!r}")
        limit = self.cfg.max_body
        clen = request.headers.get("content-length")
        if clen is not None and clen.isdigit() and int(clen) > limit:
            raise ProblemError(
                413, "payload-too-large", f"the body is {clen} bytes; the limit is {limit}"
            )
        if type(request) is _LiteRequest:
            whole = request.whole_body()
            if whole is not None:  # the body was all there: nothing waited, no timer needed
                if len(whole) > limit:
                    raise ProblemError(
                        413, "payload-too-large", f"the body exceeds the limit of {limit} bytes"
                    )
                return self._parse(whole)
        return self._parse(await self._read(request, limit))

    async def _read(self, request: Any, limit: int) -> bytes:
        """The body's bytes, message by message, under the body timeout (408) and the
        size limit (413)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        expired = [False]

        def expire() -> None:
            expired[0] = True
            if task is not None:
                task.cancel()

        timer = loop.call_later(self.cfg.body_timeout_s, expire)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProblemError(
                        413, "payload-too-large", f"the body exceeds the limit of {limit} bytes"
                    )
                chunks.append(chunk)
        except asyncio.CancelledError:
            if expired[0]:
                if task is not None and hasattr(task, "uncancel"):
                    task.uncancel()  # the cancellation was ours, consumed here
                raise ProblemError(
                    408,
                    "request-timeout",
                    f"the body did not arrive within {self.cfg.body_timeout_s:g} s",
                ) from None
            raise
        finally:
            timer.cancel()
        return b"".join(chunks)

    def _parse(self, raw: bytes) -> dict:
        if not raw.strip():
            raise ProblemError(
                400,
                "invalid-json",
                "the request body is empty; expected a JSON object",
                [_problem("$", "expected a JSON object", "invalid_json")],
            )
        # The library's strict JSON reader: NaN/Infinity, duplicate keys, lone surrogates,
        # 4300-digit numbers and deep nesting refused, each with its line and column.
        try:
            doc = parse_json_fast(raw.decode("utf-8"), "<body>")
        except UnicodeDecodeError as exc:
            raise ProblemError(
                400,
                "invalid-json",
                f"the body is not UTF-8: {exc.reason} at byte {exc.start}",
                [_problem("$", f"not UTF-8: {exc.reason}", "invalid_json")],
            ) from None
        except RiskguardError as exc:
            raise ProblemError(
                400,
                "invalid-json",
                f"the body is not JSON: {exc.problems[0].message}",
                [_located(p) for p in exc.problems],
            ) from None
        if not isinstance(doc, dict):
            raise _invalid("$", f"expected a JSON object, got {_kind(doc)}", "type")
        return doc

    def subject(
        self, body: dict, principal: Principal, allowed: frozenset[str], *, need_order: bool
    ) -> tuple[Snapshot, Any, str | None]:
        """``{snapshot, account?, order?}`` or ``{account, order?}`` -> (snapshot, order,
        the stored snapshot's digest or None)."""
        _refuse_unknown(body, allowed)
        account = body.get("account")
        if account is not None and not _account_ok(account):
            raise _invalid("$.account", ACCOUNT_RULE, "type")
        order = None
        raw_order = body.get("order")
        if raw_order is None and need_order:
            raise _invalid("$.order", "an order is required", "required")
        raw_snap = body.get("snapshot")
        sdigest = None
        if raw_snap is not None:
            snap = _snapshot(raw_snap, "$.snapshot")
            account = account or snap.account
            if not principal.may_use(account):
                raise _forbidden_account()
        elif account is not None:
            if not principal.may_use(account):
                raise _forbidden_account()  # before the lookup: no hint whether it exists
            try:
                stored = self.shared.get_snapshot(account)
            except (OSError, ValueError, RiskguardError) as exc:
                log.error("stored snapshot of %r unreadable: %s", account, exc)
                stored = None
            if stored is None:
                raise ProblemError(
                    404,
                    "unknown-account",
                    f"no snapshot is stored for account {account!r}; POST one to "
                    f"/v1/snapshots/{{account}} first, or send 'snapshot'",
                    [
                        _problem(
                            "$.account", "no snapshot stored for this account", "unknown_account"
                        )
                    ],
                )
            snap, sdigest = stored
        else:
            raise _invalid(
                "$", "expected 'snapshot', or 'account' naming a stored snapshot", "required"
            )
        if raw_order is not None:
            try:
                order = build_order(raw_order)
            except RiskguardError as exc:
                raise ProblemError(
                    422, "invalid-order", "the order is not valid", problems_under(exc, "$.order")
                ) from None
        return snap, order, sdigest

    async def what_if(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on a daemon thread, waiting at most the time budget.

        Daemon threads, not a pool: a hung plugin rule must neither delay the process's
        exit nor keep a pool's slot; at most ``MAX_WHAT_IF`` may be running at once.
        """
        if self._what_if_running >= MAX_WHAT_IF:
            raise ProblemError(
                503,
                "time-budget-exceeded",
                f"{MAX_WHAT_IF} evaluations are still running past their budget; try later",
            )
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if not fut.done():
                (fut.set_result if ok else fut.set_exception)(value)

        def run() -> None:
            try:
                out = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                loop.call_soon_threadsafe(settle, False, exc)
            else:
                loop.call_soon_threadsafe(settle, True, out)
            finally:
                with self._what_if_lock:
                    self._what_if_running -= 1

        with self._what_if_lock:
            self._what_if_running += 1
        threading.Thread(target=run, name="riskguard-whatif", daemon=True).start()
        try:
            return await asyncio.wait_for(fut, self._budget_s)
        except asyncio.TimeoutError:
            log.error("a what-if evaluation exceeded the %g ms budget", self.cfg.time_budget_ms)
            raise ProblemError(
                503,
                "time-budget-exceeded",
                f"the evaluation did not finish within the {self.cfg.time_budget_ms:g} ms budget",
            ) from None


ACCOUNT_RULE = "an account name is a string of 1 to 256 characters without control characters"


def _account_ok(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 256 and v.isprintable()


def _forbidden_account() -> ProblemError:
    return ProblemError(403, "forbidden", "this token may not use that account")


def _kind(v: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


def _snapshot(raw: Any, prefix: str) -> Snapshot:
    try:
        return build_snapshot(raw)
    except RiskguardError as exc:
        raise ProblemError(
            422, "invalid-snapshot", "the snapshot is not valid", problems_under(exc, prefix)
        ) from None


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- routes

CHECK_FIELDS = frozenset({"snapshot", "account", "order", "ref"})
ORDER_FIELDS = frozenset({"snapshot", "account", "order"})
SNAPSHOT_FIELDS = frozenset({"snapshot", "account"})


async def check(svc: Service, request: Request) -> Response:
    principal = svc.principal(request)
    body = await svc.body(request)
    snap, order, sdigest = svc.subject(body, principal, CHECK_FIELDS, need_order=False)
    ref = body.get("ref")
    if ref is not None and (not isinstance(ref, str) or len(ref) > 256):
        raise _invalid("$.ref", "ref must be a string of at most 256 characters", "type")
    svc.shared.sync_trading_state(svc.guard)
    decision = await svc.guard.acheck(snap, order, ref=ref, inline_builtin=True)
    if decision._snapshot_digest is None:
        if sdigest is None:  # Decision.snapshot_digest's own value, hashed by encode's bytes
            src = decision._snapshot_dict
            sdigest = encode.digest(src() if callable(src) else src)
        decision._snapshot_digest = sdigest  # a stored one's hashed once when stored
    svc.metrics.decision(decision)
    return _json(decision.to_dict(metrics=_truthy(request.query_params.get("metrics"))))


async def store_snapshot(svc: Service, request: Request) -> Response:
    principal = svc.principal(request)
    account = request.path_params["account"]
    if not _account_ok(account):
        raise _invalid("$", f"the account in the path: {ACCOUNT_RULE}", "type")
    if not principal.may_use(account):
        raise _forbidden_account()
    body = await svc.body(request)
    snap = _snapshot(body, "$")
    try:
        sdigest = svc.shared.put_snapshot(account, snap, body)
    except StoreFull as exc:
        raise ProblemError(
            507,
            "too-many-accounts",
            f"{exc.limit} accounts have snapshots stored, the limit (--max-accounts); "
            "replacing a stored account's snapshot still works",
        ) from None
    return _json({"account": account, "digest": sdigest, "positions": len(snap.positions)})


async def max_order_amount(svc: Service, request: Request) -> Response:
    principal = svc.principal(request)
    body = await svc.body(request)
    snap, order, _ = svc.subject(body, principal, ORDER_FIELDS, need_order=True)
    svc.shared.sync_trading_state(svc.guard)
    policy = svc.guard.policy.ref
    try:
        amount = await svc.what_if(lambda: svc.guard.max_order_amount(snap, order))
    except ProblemError as p:
        if p.slug != "time-budget-exceeded":
            raise
        # fail closed, as a denied decision would: nothing fits
        return _json(
            {
                "maxOrderAmount": 0.0,
                "policy": policy,
                "errors": [{"engine": "ENGINE_TIME_BUDGET_EXCEEDED", "error": p.detail}],
            }
        )
    return _json({"maxOrderAmount": amount, "policy": policy})


async def account_metrics(svc: Service, request: Request) -> Response:
    principal = svc.principal(request)
    body = await svc.body(request)
    snap, _, _ = svc.subject(body, principal, SNAPSHOT_FIELDS, need_order=False)
    m = await svc.what_if(lambda: svc.guard.metrics(snap))
    return _json(clean_metrics(m.to_dict()))


async def explain_route(svc: Service, request: Request) -> Response:
    from riskguard.policytools.explain import explain

    principal = svc.principal(request)
    body = await svc.body(request)
    snap, order, _ = svc.subject(body, principal, ORDER_FIELDS, need_order=False)
    svc.shared.sync_trading_state(svc.guard)
    policy = svc.guard.policy
    state = dict(svc.guard.state)
    x = await svc.what_if(lambda: explain(policy, snap, order, state=state))
    return _json(x.to_dict())


async def policy_info(svc: Service, request: Request) -> Response:
    svc.principal(request)
    p = svc.guard.policy
    svc.shared.sync_trading_state(svc.guard)
    return _json(
        {
            **p.ref,
            "mode": p.mode,
            "description": p.description,
            "rules": [
                {"id": s.id, "type": s.type, "severity": s.severity, "description": s.description}
                for s in p.specs
            ],
            "tradingState": svc.guard.trading_state,
        }
    )


async def get_trading_state(svc: Service, request: Request) -> Response:
    svc.principal(request)
    svc.shared.sync_trading_state(svc.guard)
    return _json({"tradingState": svc.guard.trading_state})


async def put_trading_state(svc: Service, request: Request) -> Response:
    principal = svc.admin(request)
    body = await svc.body(request)
    _refuse_unknown(body, {"tradingState", "reason"})
    state = body.get("tradingState")
    if state not in TRADING_STATES:
        raise _invalid(
            "$.tradingState", f"tradingState must be one of {', '.join(TRADING_STATES)}", "enum"
        )
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise _invalid("$.reason", "reason must be a string", "type")
    reason = f"{reason} (by {principal.name})" if reason else f"by {principal.name}"
    previous = svc.shared.put_trading_state(svc.guard, state, reason)
    return _json({"tradingState": state, "previous": previous})


async def healthz(svc: Service, request: Request) -> Response:
    return _json({"status": "ok"})


async def readyz(svc: Service, request: Request) -> Response:
    ready = True
    reasons: list[str] = []
    try:
        await asyncio.to_thread(svc.guard.flush)
    except AuditWriteError as exc:
        ready = False
        reasons.append(f"audit log unavailable (every decision is denied): {exc}")
    doc = {
        "ready": ready,
        "policy": svc.guard.policy.ref,
        "tradingState": svc.guard.trading_state,
        "lastReload": svc.last_reload,
    }
    if reasons:
        doc["reasons"] = reasons
    return _json(doc, 200 if ready else 503)


async def prometheus(svc: Service, request: Request) -> Response:
    svc.principal(request)
    data, ctype = svc.metrics.exposition()
    return Response(data, media_type=ctype)


async def openapi(svc: Service, request: Request) -> Response:
    return Response(svc.openapi, media_type=JSON)


# --------------------------------------------------------------------------- the app


def create_app(cfg: ServeConfig) -> ServiceApp:
    svc = Service(cfg)

    def route(
        path: str,
        name: str,
        fn: Callable[[Service, Request], Awaitable[Response]],
        methods: list[str],
    ) -> Route:
        metrics = svc.metrics
        latency = svc.metrics.latency.labels(name)

        async def endpoint(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                resp = await fn(svc, request)
            except ProblemError as p:
                resp = problem_response(p, request.url.path)
            except Exception:  # never a traceback to the client
                log.exception("internal error on %s %s", request.method, request.url.path)
                resp = problem_response(
                    ProblemError(500, "internal", "internal error; the service log has details"),
                    request.url.path,
                )
            latency.observe(time.perf_counter() - t0)
            metrics.request(name, request.method, resp.status_code)
            return resp

        endpoints[name] = endpoint
        return Route(path, endpoint, methods=methods, name=name)

    endpoints: dict[str, Callable[[Any], Awaitable[Response]]] = {}
    routes = [
        route("/v1/check", "check", check, ["POST"]),
        route("/v1/snapshots/{account}", "snapshots", store_snapshot, ["POST"]),
        route("/v1/max-order-amount", "max_order_amount", max_order_amount, ["POST"]),
        route("/v1/metrics", "metrics", account_metrics, ["POST"]),
        route("/v1/explain", "explain", explain_route, ["POST"]),
        route("/v1/policy", "policy", policy_info, ["GET"]),
        route("/v1/trading-state", "trading_state", get_trading_state, ["GET"]),
        route("/v1/trading-state", "trading_state_put", put_trading_state, ["PUT"]),
        route("/healthz", "healthz", healthz, ["GET"]),
        route("/readyz", "readyz", readyz, ["GET"]),
        route("/metrics", "prometheus", prometheus, ["GET"]),
        route("/openapi.json", "openapi", openapi, ["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(status, "http-error")
        detail = getattr(exc, "detail", None) or _TITLES.get(status, "error")
        headers = getattr(exc, "headers", None)
        resp = problem_response(
            ProblemError(status, slug, str(detail), headers=headers), request.url.path
        )
        svc.metrics.request("unmatched", request.method, status)
        return resp

    async def server_error(request: Request, exc: Exception) -> Response:
        return problem_response(
            ProblemError(500, "internal", "internal error; the service log has details"),
            request.url.path,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        svc.start_watching()
        loop = asyncio.get_running_loop()
        hup = getattr(signal, "SIGHUP", None)
        if hup is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(
                    hup, lambda: loop.run_in_executor(None, svc.reload, "SIGHUP")
                )
        # Start-up objects (modules, the compiled policy, schemas) never become garbage:
        # moved out of the collector's reach, a full collection no longer walks them
        # (about 11 ms per full collection in a worker, a pause every request waits on).
        gc.collect()
        gc.freeze()
        log.info(
            "serving policy %s %s (%s), pid %d",
            svc.guard.policy.name,
            svc.guard.policy.version,
            svc.guard.policy.digest,
            os.getpid(),
        )
        try:
            yield
        finally:
            if hup is not None:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(hup)
            svc.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.service = svc
    return ServiceApp(app, endpoints["check"])


class ServiceApp:
    """The service's ASGI app: Starlette, except that ``POST /v1/check`` — the request a
    bot sends before every order — skips Starlette's middleware and router.

    The check is answered by the same endpoint (the same token check, body limits and
    timeout, problem documents, latency and request metrics) given a :class:`_LiteRequest`
    instead of a Starlette ``Request``; only the dispatch (two middleware layers, the
    route table, the request wrapper) is skipped, about 10 µs of a check's CPU. Everything
    else, ``/v1/check/`` or another method included, goes through Starlette.
    """

    def __init__(self, app: Starlette, check: Callable[[Any], Awaitable[Response]]) -> None:
        self.app = app
        self.state = app.state
        self._check = check

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/v1/check"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            response = await self._check(_LiteRequest(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _LiteRequest:
    """What the endpoints read of a Starlette ``Request``, straight from the ASGI scope:
    ``headers.get`` (first match, names case-insensitive, latin-1 as Starlette decodes),
    ``stream()`` (Starlette's body loop: ``ClientDisconnect`` on a disconnect), ``method``,
    and ``url`` / ``query_params`` / ``path_params`` built by Starlette when asked for.

    :meth:`whole_body` answers the common case without the body loop: the first message
    carries the whole body and ``receive`` returned it without waiting."""

    __slots__ = ("_consumed", "_pending", "_receive", "_url", "scope")

    def __init__(self, scope: dict, receive: Callable) -> None:
        self.scope = scope
        self._receive = receive
        self._consumed = False
        self._url: Any = None
        self._pending: Any = None  # a message already received, or the rest of a receive

    @property
    def headers(self) -> _LiteRequest:
        return self

    def get(self, key: str, default: str | None = None) -> str | None:
        name = key.lower().encode("latin-1")
        for k, v in self.scope["headers"]:
            if k == name:
                return v.decode("latin-1")
        return default

    @property
    def method(self) -> str:
        return self.scope["method"]

    @property
    def url(self) -> Any:
        if self._url is None:
            from starlette.datastructures import URL

            self._url = URL(scope=self.scope)
        return self._url

    @property
    def query_params(self) -> Any:
        if not self.scope.get("query_string"):
            return {}
        from starlette.datastructures import QueryParams

        return QueryParams(self.scope["query_string"])

    @property
    def path_params(self) -> dict:
        return self.scope.get("path_params", {})

    def whole_body(self) -> bytes | None:
        """The body, if the first ``receive()`` finishes without waiting and its message
        is the last one (``more_body`` false); else None, and :meth:`stream` goes on from
        where this left off (the message received, or the receive still waiting)."""
        if self._consumed or self._pending is not None:
            return None
        done, got = _run_until_wait(self._receive())
        if not done:
            self._pending = got
            return None
        if got["type"] == "http.request" and not got.get("more_body", False):
            self._consumed = True
            return got.get("body", b"")
        self._pending = got  # a first part, or a disconnect: the body loop's to handle
        return None

    async def stream(self) -> Any:
        from starlette.requests import ClientDisconnect

        if self._consumed:
            raise RuntimeError("Stream consumed")
        while not self._consumed:
            pending = self._pending
            if pending is None:
                message = await self._receive()
            else:
                self._pending = None
                message = await pending if type(pending) is _Resume else pending
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if not message.get("more_body", False):
                    self._consumed = True
                if body:
                    yield body
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
        yield b""


def _run_until_wait(awaitable: Any) -> tuple[bool, Any]:
    """Run ``awaitable`` up to the point where it would wait: ``(True, its result)`` if it
    finished first, else ``(False, a _Resume)`` to await for the rest. (What ``await``
    does, stopping at the first suspension instead of handing it to the task.)"""
    it = awaitable.__await__()
    try:
        waiting_on = it.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, _Resume(it, waiting_on)


class _Resume:
    """The rest of an awaitable that :func:`_run_until_wait` ran up to its first wait:
    awaiting it hands what it waits on to the task and relays the task's resumption —
    or its cancellation (the body timeout) — exactly as ``await`` would have."""

    __slots__ = ("_it", "_waiting_on")

    def __init__(self, it: Any, waiting_on: Any) -> None:
        self._it = it
        self._waiting_on = waiting_on

    def __await__(self) -> Any:
        it, out = self._it, self._waiting_on
        while True:
            try:
                sent = yield out
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: relayed
                try:
                    out = it.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    out = it.send(sent)
                except StopIteration as stop:
                    return stop.value


def take_own_listener() -> bool:
    """Give this worker a listening socket of its own on the service's address.

    ``riskguard serve --workers N`` (Linux) binds the port with ``SO_REUSEPORT`` without
    listening and hands that socket to every worker. Each worker, before uvicorn starts
    serving, binds a socket of its own to the same address (``SO_REUSEPORT``), listens,
    and puts it in place of the inherited one (``dup2`` onto the same descriptor, which
    uvicorn then serves). The kernel spreads new connections over the workers' sockets
    instead of leaving them to whichever worker wakes first. False if no such inherited
    socket is found (uvicorn then listens on the shared one, as without the option).
    """
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return False
    for fd in fds:
        try:
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if (
                probe.type != socket.SOCK_STREAM
                or probe.family not in (socket.AF_INET, socket.AF_INET6)
                or probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                or not probe.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            ):
                continue
            addr = probe.getsockname()
            own = socket.socket(probe.family, socket.SOCK_STREAM)
            try:
                own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                own.bind(addr)
                own.listen(2048)
                os.dup2(own.fileno(), fd)
            finally:
                own.close()
            return True
        except OSError:
            continue
        finally:
            probe.close()
    return False


def app_from_env() -> ServiceApp:
    """The uvicorn factory every worker calls (``riskguard serve`` sets the environment)."""
    cfg = ServeConfig.from_env()
    logging.basicConfig(
        level=getattr(logging, cfg.log_level.upper(), logging.INFO),
        format="%(levelname)s:%(name)s: %(message)s",
    )
    if cfg.reuse_port and not take_own_listener():
        log.warning("no inherited SO_REUSEPORT socket found: this worker shares the listener")
    return create_app(cfg)


__all__ = ["ANONYMOUS", "ProblemError", "Service", "ServiceApp", "app_from_env", "create_app"]
