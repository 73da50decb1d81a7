"""The ``riskguard test`` file format as a JSON Schema, and its constants.

The format is documented in ``docs/policy-testing.md``; keep it stable — preset authors
write against it.
"""

from __future__ import annotations

from jsonschema import Draft202012Validator

from riskguard.engine.decision import SEVERITIES
from riskguard.engine.policy import API_VERSION

KIND = "PolicyTest"
SUFFIXES = (".tests.yaml", ".tests.yml")
DECISIONS = ("allow", "resize", "deny")
#: The clock when neither the case, the file nor the snapshot says what time it is.
DEFAULT_NOW = "2026-01-01T00:00:00Z"
#: Default tolerance when a number is compared: YAML ``0.35`` vs a computed float.
REL_TOL = 1e-9

# --------------------------------------------------------------------------- schema

_SOURCE: dict = {
    "type": ["string", "object"],
    "minLength": 1,
    "description": "a file path (relative to the test file), an inline mapping, or "
    "{extends: PATH_OR_MAPPING, set: {PATH: VALUE}} to derive one from another",
}
_NOW: dict = {
    "type": ["string", "integer"],
    "description": 'ISO-8601, epoch milliseconds, or an offset from the previous step: "+30s"',
}
_NUMBER_MATCH: dict = {
    "type": ["number", "null", "object"],
    "additionalProperties": False,
    "properties": {
        "approx": {"type": "number"},
        "rel": {"type": "number", "minimum": 0},
        "abs": {"type": "number", "minimum": 0},
        "min": {"type": "number"},
        "max": {"type": "number"},
    },
    "description": "a number (±1e-9 relative), null, {approx, rel, abs} or {min, max}",
}
_VIOLATION_MATCH: dict = {
    "type": ["string", "object"],
    "minLength": 1,
    "additionalProperties": False,
    "properties": {
        "rule": {"type": "string"},
        "type": {"type": "string"},
        "code": {"type": "string"},
        "severity": {"enum": list(SEVERITIES)},
        "symbol": {"type": ["string", "null"]},
        "scope": {"enum": ["order", "position", "account"]},
        "message": {"type": "string", "description": "a substring of the message"},
        "observed": {},
        "limit": {},
        "context": {"type": "object"},
    },
    "description": "a rule id, or a mapping that must match (subset of keys) some violation",
}
_ACTION_MATCH: dict = {
    "type": ["string", "object"],
    "minLength": 1,
    "description": "an action type, or a mapping that must match (subset of keys) some action",
}
_STRINGS: dict = {"type": "array", "items": {"type": "string", "minLength": 1}}

EXPECT_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "decision": {"enum": list(DECISIONS)},
        "wouldDecide": {"enum": list(DECISIONS), "description": "monitor-mode policies"},
        "violations": {"type": "array", "items": _VIOLATION_MATCH},
        "codes": _STRINGS,
        "absent": _STRINGS,
        "actions": {"type": "array", "items": _ACTION_MATCH},
        "absentActions": {"type": "array", "items": _ACTION_MATCH},
        "maxAllowedAmount": _NUMBER_MATCH,
    },
}
_TRADING_STATE: dict = {
    "enum": ["active", "reducing", "halted"],
    "description": "flip the guard's kill switch first (Guard.set_trading_state)",
}
STEP_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "snapshot": _SOURCE,
        "order": {"type": ["string", "object", "null"], "minLength": 1},
        "now": _NOW,
        "tradingState": _TRADING_STATE,
        "expect": EXPECT_SCHEMA,
    },
}
_CASE_BODY: dict = {
    "description": {"type": "string"},
    "skip": {"type": ["boolean", "string"], "description": "true or a reason: reported SKIP"},
    "snapshot": _SOURCE,
    "order": {"type": ["string", "object", "null"], "minLength": 1},
    "now": _NOW,
    "tradingState": _TRADING_STATE,
    "expect": EXPECT_SCHEMA,
    "steps": {"type": "array", "items": STEP_SCHEMA, "minItems": 1},
}
CASE_SCHEMA: dict = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        **_CASE_BODY,
        "table": {
            "type": ["array", "string"],
            "items": {"type": "object"},
            "minItems": 1,
            "description": "rows of variables (or a YAML/JSON file of them), one case per row",
        },
        "template": {"type": "object", "description": "the case body rows are substituted into"},
    },
}
TEMPLATE_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, **_CASE_BODY},
}
POLICYTEST_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://riskguard.dev/schemas/policytest.schema.json",
    "title": "riskguard policy test file (<policy-stem>.tests.yaml)",
    "type": "object",
    "required": ["apiVersion", "kind", "cases"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "policy": {
            "type": "string",
            "minLength": 1,
            "description": "the policy under test, relative to this file; default: the file "
            "named like this one without `.tests`",
        },
        "description": {"type": "string"},
        "now": _NOW,
        "fixtures": {"description": "free-form: a place for YAML anchors (&name) cases reuse"},
        "cases": {"type": "array", "items": CASE_SCHEMA, "minItems": 1},
    },
}

FILE_VALIDATOR = Draft202012Validator(POLICYTEST_SCHEMA)
TEMPLATE_VALIDATOR = Draft202012Validator(TEMPLATE_SCHEMA)
