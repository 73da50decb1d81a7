"""The watch configuration: YAML checked against ``schemas/watch.schema.json``.

Every problem names file, line, column and JSON path (the policy loader's
:class:`~riskguard.yamlio.Located` marks), so ``riskguard validate watch.yaml`` reports a
watch config exactly as it reports a policy. Credentials are *names* of environment
variables; the values are read when the watcher starts and never written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from riskguard.engine.decision import SEVERITY_RANK
from riskguard.errors import Problem, RiskguardError
from riskguard.model.schemas import validator
from riskguard.model.yamlio import Located, load_file, parse_text

#: Action types the watcher may ever apply: each reduces risk.
RISK_REDUCING = (
    "set_stop_loss",
    "add_isolated_margin",
    "reduce_position",
    "close_position",
    "switch_margin_mode",
)


@dataclass(frozen=True, slots=True)
class Route:
    url: str
    min_severity: str = "info"
    severities: tuple[str, ...] | None = None

    def wants(self, severity: str) -> bool:
        if self.severities is not None:
            return severity in self.severities
        return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[self.min_severity]


@dataclass(frozen=True, slots=True)
class AccountConfig:
    name: str
    exchange: str
    policy: str
    settle: str = "USDT"
    symbols: tuple[str, ...] | None = None  # None: all
    credentials: dict = field(default_factory=dict)  # ccxt key -> env var name
    options: dict = field(default_factory=dict)
    sandbox: bool = False
    stream: str = "auto"
    interval: float | None = None
    candles: bool = True


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    allow: frozenset[str] = frozenset()
    dry_run: bool = False
    min_severity: str = "error"
    max_actions_per_hour: int = 6
    add_margin_budget: float = 0.0


@dataclass(frozen=True, slots=True)
class WatchConfig:
    accounts: tuple[AccountConfig, ...]
    interval: float = 5.0
    blind_after_intervals: float = 3.0
    blind_after_failures: int = 3
    max_backoff: float = 60.0
    routes: tuple[Route, ...] = ()
    reminder_interval: float = 3600.0
    alert_min_severity: str = "warning"
    alert_retries: int = 5
    alert_retry_backoff: float = 1.0
    execution: ExecutionConfig = ExecutionConfig()
    archive_dir: str | None = None
    archive_gzip: bool = True
    audit_log: str | None = None
    state_file: str | None = None
    kill_switch_file: str | None = None
    metrics_listen: str | None = None
    source: str | None = None

    def account_interval(self, a: AccountConfig) -> float:
        return a.interval if a.interval is not None else self.interval


def _schema_problems(doc: Located) -> list[Problem]:
    out: list[Problem] = []
    for err in sorted(
        validator("watch").iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        path = tuple(err.absolute_path)
        msg = err.message
        if err.validator == "additionalProperties":
            allowed = ", ".join(err.schema.get("properties", {}))
            for k in err.instance:
                if k not in err.schema.get("properties", {}):
                    out.append(
                        doc.problem(
                            (*path, k), f"unknown field {k!r} (allowed: {allowed})", "schema"
                        )
                    )
            continue
        if err.validator == "oneOf" and path and "routes" in path:
            msg = "a route needs exactly one of 'url' or 'urlEnv'"
        out.append(doc.problem(path, msg, f"schema.{err.validator}"))
    return out


def _relative(base: Path, p: str) -> str:
    q = Path(os.path.expanduser(p))
    return str(q if q.is_absolute() else base / q)


def check_config(source: str | Path, *, text: str | None = None) -> tuple[Located, list[Problem]]:
    """Parse and validate; return the located document and every problem (never raises
    for a bad config, only for an unreadable file)."""
    doc = parse_text(text, str(source)) if text is not None else load_file(source)
    problems = _schema_problems(doc)
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("accounts"), list):
        return doc, problems
    base = Path(str(source)).resolve().parent
    names: dict[str, int] = {}
    for i, a in enumerate(spec["accounts"]):
        if not isinstance(a, dict):
            continue
        name = a.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(
                    doc.problem(
                        ("spec", "accounts", i, "name"),
                        f"duplicate account name {name!r} (also accounts[{names[name]}])",
                        "duplicate",
                    )
                )
            names.setdefault(name, i)
        if isinstance(a.get("policy"), str):
            pol = _relative(base, a["policy"])
            if not Path(pol).is_file():
                problems.append(
                    doc.problem(
                        ("spec", "accounts", i, "policy"), f"no policy file {pol}", "not_found"
                    )
                )
        opts: dict = a["options"] if isinstance(a.get("options"), dict) else {}
        if a.get("exchange") == "paper":
            snap = opts.get("snapshot")
            if not isinstance(snap, str) or not Path(_relative(base, snap)).is_file():
                problems.append(
                    doc.problem(
                        ("spec", "accounts", i, "options"),
                        "a paper account needs options.snapshot: the snapshot file it starts from",
                        "paper_snapshot",
                    )
                )
        for k in opts:
            if str(k).lower() in ("apikey", "secret", "password", "privatekey", "token", "uid"):
                problems.append(
                    doc.problem(
                        ("spec", "accounts", i, "options", k),
                        f"{k!r} is a credential: name its environment variable under "
                        "'credentials' instead of writing it here",
                        "secret_in_config",
                    )
                )
    ex: dict = spec["execution"] if isinstance(spec.get("execution"), dict) else {}
    if ex.get("minSeverity") == "info":
        problems.append(
            doc.problem(
                ("spec", "execution", "minSeverity"),
                "info-level proposals are never executed; use warning, error or critical",
                "invalid",
            )
        )
    return doc, problems


def load_config(source: str | Path) -> WatchConfig:
    """A validated :class:`WatchConfig`, or :class:`RiskguardError` listing every problem."""
    doc, problems = check_config(source)
    if problems:
        raise RiskguardError(problems)
    spec = doc.data["spec"]
    base = Path(str(source)).resolve().parent
    accounts = []
    for a in spec["accounts"]:
        syms = a.get("symbols", "all")
        options = dict(a.get("options") or {})
        if a["exchange"] == "paper":
            options["snapshot"] = _relative(base, options["snapshot"])
        accounts.append(
            AccountConfig(
                name=a["name"],
                exchange=a["exchange"],
                policy=_relative(base, a["policy"]),
                settle=a.get("settle", "USDT"),
                symbols=None if syms == "all" else tuple(syms),
                credentials=dict(a.get("credentials") or {}),
                options=options,
                sandbox=bool(a.get("sandbox", False)),
                stream=a.get("stream", "auto"),
                interval=a.get("interval"),
                candles=bool(a.get("candles", True)),
            )
        )
    al = spec.get("alerts") or {}
    routes = []
    for i, r in enumerate(al.get("routes") or ()):
        url = r.get("url")
        if url is None:
            url = os.environ.get(r["urlEnv"])
            if not url:
                raise RiskguardError(
                    [
                        doc.problem(
                            ("spec", "alerts", "routes", i, "urlEnv"),
                            f"environment variable {r['urlEnv']} is not set",
                            "env",
                        )
                    ]
                )
        routes.append(
            Route(
                url,
                r.get("minSeverity", al.get("minSeverity", "warning")),
                tuple(r["severities"]) if "severities" in r else None,
            )
        )
    ex = spec.get("execution") or {}
    arch = spec.get("archive") or {}

    def path_of(key: str) -> str | None:
        v = spec.get(key)
        return _relative(base, v) if v else None

    return WatchConfig(
        accounts=tuple(accounts),
        interval=float(spec.get("interval", 5)),
        blind_after_intervals=float(spec.get("blindAfterIntervals", 3)),
        blind_after_failures=int(spec.get("blindAfterFailures", 3)),
        max_backoff=float(spec.get("maxBackoff", 60)),
        routes=tuple(routes),
        reminder_interval=float(al.get("reminderInterval", 3600)),
        alert_min_severity=al.get("minSeverity", "warning"),
        alert_retries=int(al.get("retries", 5)),
        alert_retry_backoff=float(al.get("retryBackoff", 1.0)),
        execution=ExecutionConfig(
            allow=frozenset(ex.get("allow") or ()),
            dry_run=bool(ex.get("dryRun", False)),
            min_severity=ex.get("minSeverity", "error"),
            max_actions_per_hour=int(ex.get("maxActionsPerHour", 6)),
            add_margin_budget=float(ex.get("addMarginBudget", 0)),
        ),
        archive_dir=_relative(base, arch["dir"]) if arch.get("dir") else None,
        archive_gzip=bool(arch.get("gzip", True)),
        audit_log=path_of("auditLog"),
        state_file=path_of("stateFile"),
        kill_switch_file=path_of("killSwitchFile"),
        metrics_listen=(spec.get("metrics") or {}).get("listen"),
        source=str(source),
    )


def is_watch_config(path: str | Path) -> bool:
    """True for a YAML/JSON document whose ``kind`` is ``Watch`` (cheap sniff for validate)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    import re

    return re.search(r"^\s*\"?kind\"?\s*:\s*\"?Watch\"?\s*,?\s*$", head, re.M) is not None


def credentials_from_env(a: AccountConfig) -> dict[str, str]:
    """ccxt config keys from the named environment variables; a missing one is an error."""
    out: dict[str, str] = {}
    missing = []
    for key, env in a.credentials.items():
        v = os.environ.get(env)
        if v:
            out[key] = v
        else:
            missing.append(env)
    if missing:
        raise RiskguardError(
            f"account {a.name}: environment variable(s) not set: {', '.join(missing)}"
        )
    return out


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
