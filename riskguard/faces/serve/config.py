"""The settings of one service, shared by every worker process as JSON in an environment
variable (uvicorn starts workers by importing the app, so they cannot be handed objects)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

ENV = "RISKGUARD_SERVE_CONFIG"

#: Default request-body limit: a snapshot of a large account (hundreds of positions with
#: tiers and candles) is well under this; anything bigger is refused with 413.
DEFAULT_MAX_BODY = 1 << 20
#: Default time budget of one evaluation: a hung plugin rule is denied after this long.
DEFAULT_TIME_BUDGET_MS = 250.0


@dataclass(frozen=True, slots=True)
class ServeConfig:
    policy: str
    state_dir: str
    plugins: tuple[str, ...] = ()
    audit_log: str | None = None
    audit_fsync: bool = False
    token_file: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    time_budget_ms: float = DEFAULT_TIME_BUDGET_MS
    body_timeout_s: float = 10.0
    watch: bool = True
    watch_debounce_ms: int = 300
    workers: int = 1
    max_accounts: int = 10_000
    log_level: str = "info"
    # each worker listens on a socket of its own (SO_REUSEPORT) instead of sharing one
    reuse_port: bool = False
    extra: dict = field(default_factory=dict)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict | None = None) -> ServeConfig:
        raw = (environ if environ is not None else os.environ).get(ENV)
        if not raw:
            raise RuntimeError(
                f"{ENV} is not set: start the service with `riskguard serve`, or build the app "
                "with riskguard.faces.serve.create_app(ServeConfig(...))"
            )
        d = json.loads(raw)
        d["plugins"] = tuple(d.get("plugins", ()))
        return cls(**d)
