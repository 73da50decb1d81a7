"""``riskguard serve``: the Guard as an HTTP decision service (an ASGI app on uvicorn).

A bot in any language asks the service before each order, the way OPA is run as a sidecar.
The app is a thin layer over :class:`riskguard.Guard` — the same compiled policy, the same
fail-closed evaluation, the same hash-chained audit log — plus what a platform team expects
from a service: bearer tokens, a body-size limit, problem documents (RFC 9457), health and
readiness, Prometheus metrics, an OpenAPI document and hot policy reload.

Modules: ``config`` (the settings every worker shares), ``auth`` (hashed bearer tokens),
``store`` (account snapshots and the kill switch, shared by workers through a directory),
``openapi`` (the document, built from the JSON Schemas), ``encode`` (response bodies:
the standard library's bytes, by orjson where identical), ``app`` (the routes; ``POST
/v1/check`` bypasses Starlette's router).
Starlette, uvicorn, watchfiles, prometheus-client and orjson are the ``[serve]`` extra; nothing
here is imported by ``import riskguard``.

May import: every package above the faces, ``faces.guard`` and ``faces.stream`` (the Guard
and the stream mode's helpers it is a thin layer over). Only ``faces.commands.serve``
imports it.
"""

from __future__ import annotations

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from riskguard.faces.serve.app import create_app

        return create_app
    if name == "ServeConfig":
        from riskguard.faces.serve.config import ServeConfig

        return ServeConfig
    raise AttributeError(name)
