"""``riskguard serve``: the decision service (HTTP, JSON) — see riskguard/faces/serve/."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile

from riskguard.errors import Problem, RiskguardError
from riskguard.faces.commands._common import add_plugin_arg

EPILOG = """API (JSON bodies are riskguard's snapshot, order and decision schemas):
  POST /v1/check                {snapshot, order?} or {account, order?}  -> decision
  POST /v1/snapshots/{account}  a snapshot, stored for later {account, ...} requests
  POST /v1/max-order-amount     {snapshot|account, order}  -> {maxOrderAmount}
  POST /v1/metrics              {snapshot|account}         -> account figures
  POST /v1/explain              {snapshot|account, order?} -> per-rule trace
  GET  /v1/policy               name, version, digest, rules
  GET|PUT /v1/trading-state     the kill switch (PUT needs an admin token)
  GET  /healthz  /readyz  /metrics (Prometheus)  /openapi.json
  errors are RFC 9457 application/problem+json documents with JSON paths

safety:
  binds 127.0.0.1 unless --host says otherwise; with --token-file every route but
  /healthz, /readyz and /openapi.json needs 'Authorization: Bearer <token>'; the file
  stores SHA-256 hashes (--hash-token prints one). Bodies over --max-body-bytes get 413;
  each evaluation is bounded by --time-budget-ms (a hung rule is denied, fail closed).

reload:
  the policy files are watched; SIGHUP reloads too. The new policy is compiled before it
  is swapped in; a broken one keeps the old in force and is shown by /readyz.

examples:
  riskguard serve -p policies/default.yaml
  riskguard serve -p policies/default.yaml --port 8181 --workers 2 --audit-log audit.jsonl
  openssl rand -hex 32 | tee bot.token | riskguard serve --hash-token >> tokens.txt
  curl -s localhost:8181/v1/check -H 'content-type: application/json' \\
       -d '{"snapshot": ..., "order": {"symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.1}}'
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="run the decision service: the guard over HTTP for bots in any language",
        description="Serve pre-trade decisions over HTTP/JSON (an ASGI app on uvicorn; needs "
        "the [serve] extra: pip install 'riskguard[serve]'). One guard per worker process; "
        "stored snapshots and the kill switch are shared by all workers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("-p", "--policy", help="policy YAML file (required unless --hash-token)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=8181, help="port (default: 8181; 0 picks a free one)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1); stateful rules (order rates, drawdown peaks) "
        "count per worker",
    )
    p.add_argument(
        "--audit-log", metavar="FILE", help="append every decision to this hash-chained log"
    )
    p.add_argument("--audit-fsync", action="store_true", help="fdatasync each audit record")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="require bearer tokens; FILE lists 'sha256:<hex> [name] [admin] [accounts=a,b]' "
        "a line",
    )
    p.add_argument(
        "--hash-token",
        action="store_true",
        help="read a token on stdin, print its token-file line and exit",
    )
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest request body (default 1 MiB); larger ones get 413",
    )
    p.add_argument(
        "--time-budget-ms",
        type=float,
        default=None,
        metavar="MS",
        help="deny (ENGINE_TIME_BUDGET_EXCEEDED) when an evaluation takes longer (default 250)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a request body must arrive within this long, else 408 (default 10)",
    )
    p.add_argument(
        "--max-accounts",
        type=int,
        default=10_000,
        metavar="N",
        help="most accounts with a stored snapshot (default 10000); one more gets 507",
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="keep stored snapshots and the trading state here (they then survive a restart; "
        "default: a temporary directory removed at exit)",
    )
    p.add_argument(
        "--no-watch",
        action="store_true",
        help="do not watch the policy files (SIGHUP still reloads)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (uvicorn's log)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default info)",
    )
    add_plugin_arg(p)
    return p


def _usage(msg: str) -> RiskguardError:
    return RiskguardError([Problem(msg, code="usage")])


def run(args) -> int:
    if args.hash_token:
        from riskguard.faces.serve.auth import hash_token

        token = sys.stdin.readline().strip()
        if len(token) < 16:
            raise _usage("--hash-token: expected a token of at least 16 characters on stdin")
        print(f"{hash_token(token)}  bot")
        return 0
    if not args.policy:
        raise _usage("the following arguments are required: -p/--policy")
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        raise _usage(
            f"riskguard serve needs the [serve] extra ({exc.name} is missing): "
            "pip install 'riskguard[serve]'"
        ) from None
    if args.workers < 1:
        raise _usage("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        raise _usage("--port must be between 0 and 65535")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise _usage("--tls-cert and --tls-key go together")
    if args.max_body_bytes is not None and args.max_body_bytes < 1024:
        raise _usage("--max-body-bytes must be at least 1024")
    if args.max_accounts < 1:
        raise _usage("--max-accounts must be at least 1")
    if not args.body_timeout > 0:
        raise _usage("--body-timeout must be > 0")
    if args.time_budget_ms is not None and not args.time_budget_ms > 0:
        raise _usage("--time-budget-ms must be > 0")

    from riskguard.engine.policy import load_policy
    from riskguard.faces.serve.auth import load_tokens
    from riskguard.faces.serve.config import (
        DEFAULT_MAX_BODY,
        DEFAULT_TIME_BUDGET_MS,
        ENV,
        ServeConfig,
    )

    # Fail here, with located problems and exit 2, rather than in every worker.
    load_policy(args.policy, plugins=tuple(args.plugin))
    if args.token_file:
        load_tokens(args.token_file)
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path and not os.path.isfile(path):
            raise _usage(f"{flag}: no such file: {path}")
    if args.audit_log:
        from riskguard.decisionlog.log import AuditLog

        AuditLog(args.audit_log).close()  # opens (creates) it, or says why it cannot

    # With workers on one shared listening socket, whichever worker wakes first accepts every
    # pending connection: eight clients connecting at once mostly land on one worker, and
    # the other core idles. On Linux each worker listens on a socket of its own instead
    # (SO_REUSEPORT, riskguard.faces.serve.app.take_own_listener) and the kernel spreads
    # connections over them; this process only holds the port.
    reuse_port = (
        args.workers > 1 and sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    )
    own_state = args.state_dir is None
    state_dir = tempfile.mkdtemp(prefix="riskguard-serve-") if own_state else args.state_dir
    os.makedirs(state_dir, exist_ok=True)
    cfg = ServeConfig(
        policy=os.path.abspath(args.policy),
        state_dir=os.path.abspath(state_dir),
        plugins=tuple(os.path.abspath(p) for p in args.plugin),
        audit_log=os.path.abspath(args.audit_log) if args.audit_log else None,
        audit_fsync=args.audit_fsync,
        token_file=os.path.abspath(args.token_file) if args.token_file else None,
        max_body=args.max_body_bytes or DEFAULT_MAX_BODY,
        time_budget_ms=args.time_budget_ms or DEFAULT_TIME_BUDGET_MS,
        body_timeout_s=args.body_timeout,
        watch=not args.no_watch,
        workers=args.workers,
        log_level=args.log_level,
        max_accounts=args.max_accounts,
        reuse_port=reuse_port,
    )
    os.environ[ENV] = cfg.to_env()
    prom_dir = None
    if args.workers > 1:
        # workers' metrics are aggregated through files (prometheus-client multiprocess mode)
        prom_dir = tempfile.mkdtemp(prefix="riskguard-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = prom_dir

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    port = args.port
    if reuse_port:
        # SO_REUSEPORT would let this service join another one already on the port (a
        # second `riskguard serve --workers N` of the same user): bind once without it
        # first, so a port in use is refused as it is with one worker.
        probe = socket.socket(family, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((args.host, port))
            port = probe.getsockname()[1]
        except OSError as exc:
            raise _usage(f"cannot bind {args.host}:{args.port}: {exc.strerror}") from None
        finally:
            probe.close()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((args.host, port))
    except OSError as exc:
        sock.close()
        raise _usage(f"cannot bind {args.host}:{args.port}: {exc.strerror}") from None
    if not reuse_port:
        sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    config = uvicorn.Config(
        "riskguard.faces.serve.app:app_from_env",
        factory=True,
        fd=sock.fileno(),
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=10,
        server_header=False,
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
        lifespan="on",
    )
    scheme = "https" if args.tls_cert else "http"
    shown = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(
        f"riskguard serve: {scheme}://{shown}:{port} policy {args.policy} "
        f"({args.workers} worker{'s' if args.workers > 1 else ''}, pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn restores the handlers it found and re-raises the signal after a graceful
    # shutdown; with this one in place SIGTERM ends in SystemExit, so the cleanup below runs.
    previous_term = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        if args.workers > 1:
            import inspect

            sup = _supervisor_class()
            if "target" in inspect.signature(sup.__init__).parameters:  # older uvicorn
                sup(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
            else:
                sup(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        sock.close()
        if own_state:
            shutil.rmtree(state_dir, ignore_errors=True)
        if prom_dir:
            shutil.rmtree(prom_dir, ignore_errors=True)
    return 0


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(0)


def _supervisor_class():
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's process manager, except SIGHUP reloads the policy in every worker
        (each worker swaps it atomically) instead of restarting the processes."""

        def handle_hup(self) -> None:
            for p in self.processes:
                if p.pid is not None and p.process.is_alive():
                    os.kill(p.pid, signal.SIGHUP)

    return Supervisor
