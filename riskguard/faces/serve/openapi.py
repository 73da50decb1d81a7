"""The service's OpenAPI 3.1 document, built from the same JSON Schemas the library validates
with (``schemas/*.schema.json``), so the API description cannot drift from the checks.

OpenAPI 3.1 schema objects are JSON Schema 2020-12. Each file schema becomes a component
(``Snapshot``, ``Order``, ``Decision``); its ``$defs`` are hoisted to components named
``<Owner>_<def>`` and every ``$ref`` is rewritten to ``#/components/schemas/...``, so the
document is self-contained and tools that do not follow relative file references read it.
"""

from __future__ import annotations

import copy
from typing import Any

from riskguard.faces.guard import TRADING_STATES
from riskguard.model.schemas import load_schema

FILES = {"snapshot": "Snapshot", "order": "Order", "decision": "Decision"}
PROBLEM_TYPE_BASE = "https://riskguard.dev/problems/"


def _rewrite(node: Any, owner: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out[k] = _ref(v, owner)
            elif k in ("$id", "$schema", "$defs"):
                continue
            else:
                out[k] = _rewrite(v, owner)
        return out
    if isinstance(node, list):
        return [_rewrite(v, owner) for v in node]
    return node


def _ref(ref: str, owner: str) -> str:
    if ref.startswith("#/$defs/"):
        return f"#/components/schemas/{owner}_{ref[len('#/$defs/') :]}"
    base, _, frag = ref.partition("#")
    name = base.rsplit("/", 1)[-1].removesuffix(".schema.json")
    if name in FILES:
        if frag.startswith("/$defs/"):
            return f"#/components/schemas/{FILES[name]}_{frag[len('/$defs/') :]}"
        return f"#/components/schemas/{FILES[name]}"
    raise ValueError(f"unresolvable $ref {ref!r} in the {owner} schema")


def component_schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for file, owner in FILES.items():
        s = copy.deepcopy(load_schema(file))
        for name, sub in s.get("$defs", {}).items():
            out[f"{owner}_{name}"] = _rewrite(sub, owner)
        out[owner] = _rewrite(s, owner)
    return out


def _ref_to(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict, description: str = "") -> dict:
    body: dict = {"required": True, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def _ok(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _errors(*codes: int) -> dict:
    return {str(c): _PROBLEM for c in codes}


def build_openapi(version: str) -> dict:
    schemas = component_schemas()
    subject = {
        "description": "Either a full snapshot, or the name of an account whose snapshot was "
        "stored with POST /v1/snapshots/{account}.",
        "oneOf": [
            {
                "type": "object",
                "required": ["snapshot"],
                "properties": {
                    "snapshot": _ref_to("Snapshot"),
                    "account": {
                        "type": "string",
                        "description": "overrides the snapshot's own account name",
                    },
                },
            },
            {
                "type": "object",
                "required": ["account"],
                "not": {"required": ["snapshot"]},
                "properties": {"account": {"type": "string"}},
            },
        ],
    }
    check_req = {
        "allOf": [subject],
        "properties": {
            "snapshot": True,
            "account": True,
            "order": _ref_to("Order"),
            "ref": {"type": "string", "description": "a caller reference kept in the decision"},
        },
        "unevaluatedProperties": False,
    }
    order_req = {
        "allOf": [subject],
        "required": ["order"],
        "properties": {"snapshot": True, "account": True, "order": _ref_to("Order")},
        "unevaluatedProperties": False,
    }
    snap_req = {
        "allOf": [subject],
        "properties": {"snapshot": True, "account": True},
        "unevaluatedProperties": False,
    }
    schemas.update(
        {
            "CheckRequest": check_req,
            "OrderRequest": order_req,
            "SnapshotRequest": snap_req,
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details; `problems` lists riskguard's located "
                "problems (JSON path into the request body, message, code).",
                "required": ["type", "title", "status"],
                "properties": {
                    "type": {"type": "string", "format": "uri"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "problems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["path", "message", "code"],
                            "properties": {
                                "path": {
                                    "type": "string",
                                    "description": "JSON path, e.g. $.order.amount",
                                },
                                "message": {"type": "string"},
                                "code": {"type": "string"},
                                "line": {"type": "integer"},
                                "column": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "PolicyInfo": {
                "type": "object",
                "required": ["name", "version", "digest", "mode", "rules"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "digest": {"type": "string"},
                    "mode": {"enum": ["enforce", "monitor"]},
                    "description": {"type": "string"},
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "type", "severity"],
                            "properties": {
                                "id": {"type": "string"},
                                "type": {"type": "string"},
                                "severity": {"type": "string"},
                                "description": {"type": "string"},
                            },
                        },
                    },
                    "tradingState": {"enum": list(TRADING_STATES)},
                },
            },
            "TradingState": {
                "type": "object",
                "required": ["tradingState"],
                "properties": {
                    "tradingState": {"enum": list(TRADING_STATES)},
                    "reason": {"type": "string"},
                },
                "additionalProperties": False,
            },
        }
    )
    sec: list[dict[str, list[str]]] = [{"bearer": []}]
    paths = {
        "/v1/check": {
            "post": {
                "summary": "Decide on an order (or the account alone): allow, resize or deny",
                "description": "Engine and plugin faults fail closed: the decision is deny with "
                "an ENGINE_* code, as in the library. `?metrics=true` adds the account figures.",
                "parameters": [{"name": "metrics", "in": "query", "schema": {"type": "boolean"}}],
                "requestBody": _json_body(_ref_to("CheckRequest")),
                "responses": {
                    "200": _ok(_ref_to("Decision"), "the decision"),
                    **_errors(400, 401, 403, 404, 413, 415, 422),
                },
                "security": sec,
            }
        },
        "/v1/snapshots/{account}": {
            "post": {
                "summary": "Store the account's latest snapshot for later {account, order} checks",
                "parameters": [
                    {
                        "name": "account",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": _json_body(_ref_to("Snapshot")),
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "account": {"type": "string"},
                                "digest": {"type": "string"},
                                "positions": {"type": "integer"},
                            },
                        },
                        "stored",
                    ),
                    **_errors(400, 401, 403, 413, 415, 422),
                },
                "security": sec,
            }
        },
        "/v1/max-order-amount": {
            "post": {
                "summary": "The largest amount of the order every rule allows (what-if: not "
                "logged, rule state untouched)",
                "requestBody": _json_body(_ref_to("OrderRequest")),
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["maxOrderAmount", "policy"],
                            "properties": {
                                "maxOrderAmount": {
                                    "type": ["number", "null"],
                                    "description": "null: no rule bounds it",
                                },
                                "policy": {"type": "object"},
                            },
                        },
                        "the amount",
                    ),
                    **_errors(400, 401, 403, 404, 413, 415, 422, 503),
                },
                "security": sec,
            }
        },
        "/v1/metrics": {
            "post": {
                "summary": "Account and position figures (equity, margins, liquidation prices)",
                "requestBody": _json_body(_ref_to("SnapshotRequest")),
                "responses": {
                    "200": _ok({"type": "object"}, "the figures, as `riskguard metrics --json`"),
                    **_errors(400, 401, 403, 404, 413, 415, 422, 503),
                },
                "security": sec,
            }
        },
        "/v1/explain": {
            "post": {
                "summary": "Every rule's inputs, comparison and outcome (what-if: not logged)",
                "requestBody": _json_body(_ref_to("CheckRequest")),
                "responses": {
                    "200": _ok({"type": "object"}, "as `riskguard explain --json`"),
                    **_errors(400, 401, 403, 404, 413, 415, 422, 503),
                },
                "security": sec,
            }
        },
        "/v1/policy": {
            "get": {
                "summary": "The policy in force: name, version, digest, rules",
                "responses": {"200": _ok(_ref_to("PolicyInfo"), "the policy"), **_errors(401)},
                "security": sec,
            }
        },
        "/v1/trading-state": {
            "get": {
                "summary": "The kill switch's position",
                "responses": {"200": _ok(_ref_to("TradingState"), "the state"), **_errors(401)},
                "security": sec,
            },
            "put": {
                "summary": "Flip the kill switch for every worker (admin token required)",
                "requestBody": _json_body(_ref_to("TradingState")),
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "tradingState": {"enum": list(TRADING_STATES)},
                                "previous": {"enum": list(TRADING_STATES)},
                            },
                        },
                        "the new and the previous state",
                    ),
                    **_errors(400, 401, 403, 413, 415, 422),
                },
                "security": sec,
            },
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers",
                "responses": {"200": _ok({"type": "object"}, "alive")},
                "security": [],
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: a valid policy is loaded and the audit log is writable; "
                "reports the last reload (a failed one keeps the old policy in force)",
                "responses": {
                    "200": _ok({"type": "object"}, "ready"),
                    "503": _ok({"type": "object"}, "not ready, with the reason"),
                },
                "security": [],
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                "security": sec,
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "riskguard decision service",
            "version": version,
            "description": "Pre-trade risk decisions over HTTP. Bodies are riskguard's JSON "
            "Schemas (snapshot, order, decision); errors are RFC 9457 problem documents.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Problem": {
                    "description": "a problem document",
                    "content": {"application/problem+json": {"schema": _ref_to("Problem")}},
                }
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "required when the service runs with --token-file; always "
                    "required (admin) for PUT /v1/trading-state",
                }
            },
        },
    }
