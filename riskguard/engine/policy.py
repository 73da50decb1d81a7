"""Policies: load YAML → validate (jsonschema, composed from the rule plugins) → compile.

The policy schema is composed at load time: the static envelope below plus, for each
registered rule type, an ``if type == T then params: <T's schema>`` clause. So a plugin's
rule type is validated exactly like a built-in one, and ``riskguard schema policy``
prints the schema editors should use.

Every problem is reported at once, each with file, line, column and JSON path; unknown
rule types and parameters get a "did you mean" suggestion. Checks JSON Schema cannot
express run after it: duplicate rule ids, each type's cross-field ``check`` (e.g.
``warnAt`` above ``max``), ``extends`` cycles, and rules of one type that apply to the
same symbols with different limits (a warning that says which one wins).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskguard.engine.actions import ACTION_TYPES
from riskguard.engine.decision import SEVERITIES, digest
from riskguard.engine.plugins import Registry, get_registry
from riskguard.engine.rule import Match, RuleSpec
from riskguard.errors import PolicyError, Problem, RiskguardError
from riskguard.model.yamlio import Located, json_path, parse_text, read_text

if TYPE_CHECKING:  # jsonschema is imported when a policy is validated (not on a cache hit)
    from jsonschema import Draft202012Validator

API_VERSION = "riskguard/v1"

MATCH_SCHEMA: dict[Any, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "which positions and orders the rule applies to",
    "properties": {
        "symbols": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "description": 'glob patterns, e.g. ["BTC/*", "ETH/USDT:USDT"]; default ["*"]',
        },
        "exclude": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "marginMode": {"enum": ["any", "cross", "isolated"]},
        "side": {"enum": ["any", "long", "short"]},
    },
}


def policy_schema(registry: Registry | None = None) -> dict[Any, Any]:
    """The full policy JSON Schema for the rule types registered now."""
    reg = registry or get_registry()
    types = sorted(reg.rule_types)
    rule: dict[Any, Any] = {
        "type": "object",
        "required": ["id", "type"],
        "additionalProperties": False,
        "properties": {
            "id": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                "description": "unique within the policy; `extends` overrides by id",
            },
            "type": {"enum": types, "description": "the rule type (see `riskguard plugins`)"},
            "description": {"type": "string"},
            "enabled": {"type": "boolean", "default": True},
            "severity": {
                "enum": list(SEVERITIES),
                "default": "error",
                "description": "error and critical deny; warning and info only report",
            },
            "match": MATCH_SCHEMA,
            "onViolation": {
                "type": "array",
                "items": {"enum": sorted(ACTION_TYPES)},
                "description": "actions to propose; default: the rule type's own",
            },
            "params": {"type": "object"},
        },
        "allOf": [
            {
                "if": {"properties": {"type": {"const": t}}, "required": ["type"]},
                "then": {"properties": {"params": reg.rule_types[t].params}},
            }
            for t in types
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://riskguard.dev/schemas/policy.schema.json",
        "title": "riskguard policy",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": "Policy"},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": True,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "version": {"type": "string"},
                    "description": {"type": "string"},
                },
            },
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "mode": {
                        "enum": ["enforce", "monitor"],
                        "default": "enforce",
                        "description": "monitor: decide and log, never deny",
                    },
                    "extends": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "policy files (relative to this one) whose rules this one overrides by id",
                    },
                    "rules": {"type": "array", "items": rule},
                },
            },
        },
    }


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class PolicyDoc:
    """A parsed policy file (before ``extends`` merging)."""

    data: Any
    located: Located
    sha256: str | None = None  # of the text parsed (files only): what a cache checks


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    version: str
    description: str
    mode: str
    digest: str
    specs: tuple[RuleSpec, ...]
    rules: tuple[Any, ...]
    document: dict[Any, Any]
    files: tuple[str, ...]
    warnings: tuple[Problem, ...]
    registry: Registry = field(repr=False)
    # (file, SHA-256 of the text parsed) for each policy file read, in ``files`` order
    sources: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> dict[Any, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _schema_problems(
    doc: PolicyDoc, validator: Draft202012Validator, registry: Registry
) -> list[Problem]:
    problems: list[Problem] = []
    types = sorted(registry.rule_types)
    seen: set[tuple[Any, ...]] = set()
    for err in sorted(
        validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        path = tuple(err.absolute_path)
        if err.validator in ("if", "allOf"):
            continue
        msg = err.message
        code = f"schema.{err.validator}"
        if err.validator == "enum" and path and path[-1] == "type" and "rules" in path:
            got = err.instance
            msg = (
                f"unknown rule type {got!r}{_suggest(str(got), types)} "
                f"Known types: {', '.join(types)}"
            )
            code = "unknown_rule_type"
        elif err.validator == "additionalProperties":
            allowed = list(err.schema.get("properties", {}))
            extras = [k for k in err.instance if k not in err.schema.get("properties", {})]
            for k in extras:
                where = "parameter" if path and path[-1] == "params" else "field"
                key = (*path, k)
                if key in seen:
                    continue
                seen.add(key)
                problems.append(
                    doc.located.problem(
                        key,
                        f"unknown {where} {k!r}{_suggest(k, allowed)} Allowed: {', '.join(allowed)}",
                        "unknown_field",
                    )
                )
            continue
        elif err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", msg)
            if missing:
                msg = f"missing required field {missing[0]!r}"
        elif err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            msg = (
                f"{err.instance!r} is out of range: expected {err.validator} {err.validator_value}"
            )
        elif err.validator == "const" and path == ("apiVersion",):
            msg = f"expected apiVersion {API_VERSION!r}, got {err.instance!r}"
        key = path
        if (key, msg) in seen:
            continue
        seen.add((key, msg))
        problems.append(doc.located.problem(path, msg, code))
    return problems


def _validator(registry: Registry) -> Draft202012Validator:
    cached = getattr(registry, "_policy_validator", None)
    if cached is None:
        from jsonschema import Draft202012Validator

        cached = Draft202012Validator(policy_schema(registry))
        registry._policy_validator = cached  # type: ignore[attr-defined]
    return cached


def _params_valid(schema: dict[str, Any], params: dict[str, Any]) -> bool:
    from jsonschema import Draft202012Validator

    return bool(Draft202012Validator(schema).is_valid(params))


def _parse(source: str | Path | dict[Any, Any], file: str | None = None) -> PolicyDoc:
    if isinstance(source, dict):
        return PolicyDoc(source, Located(source, {}, file or "<dict>"))
    text = read_text(source)
    loc = parse_text(text, str(source))
    return PolicyDoc(loc.data, loc, text_sha256(text))


def text_sha256(text: str) -> str:
    """The digest of a policy file's text as read (the compiled-policy cache compares it)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _not_json(v: Any, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], str] | None:
    """The first value of a dict policy that canonical JSON cannot hash, and what it is.

    Files are checked by the YAML reader; a dict from Python can hold NaN (which also
    passes ``exclusiveMinimum``/``maximum``: ``max: nan`` would never deny), a date or
    a non-text key.
    """
    if isinstance(v, float):
        return None if math.isfinite(v) else (path, repr(v))
    if v is None or isinstance(v, (str, int)):
        return None
    if len(path) > 64:
        return (path, "nesting deeper than 64 levels")
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                return (path, f"the non-text key {k!r}")
            bad = _not_json(x, (*path, k))
            if bad is not None:
                return bad
        return None
    if isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            bad = _not_json(x, (*path, i))
            if bad is not None:
                return bad
        return None
    return (path, type(v).__name__)


def _collect(
    source: str | Path | dict[Any, Any],
    registry: Registry,
    problems: list[Problem],
    stack: tuple[str, ...],
    docs: list[tuple[PolicyDoc, str]],
) -> None:
    """Parse a policy and, depth first, the policies it extends (cycle-checked)."""
    key = str(Path(source).resolve()) if not isinstance(source, dict) else "<dict>"
    if key in stack:
        chain = " -> ".join(Path(s).name for s in (*stack, key))
        problems.append(
            Problem(f"extends cycle: {chain}", "$.spec.extends", "extends_cycle", str(source))
        )
        return
    doc = _parse(source)
    if isinstance(source, dict):
        bad = _not_json(source)
        if bad is not None:
            problems.append(
                doc.located.problem(
                    bad[0], f"expected JSON data, got {bad[1]} (the policy is hashed)", "not_json"
                )
            )
    schema_problems = _schema_problems(doc, _validator(registry), registry)
    if not isinstance(doc.data, dict):
        problems.extend(
            schema_problems or [doc.located.problem((), "expected a policy mapping", "type")]
        )
        return
    problems.extend(schema_problems)
    extends = (
        doc.data.get("spec", {}).get("extends", [])
        if isinstance(doc.data.get("spec"), dict)
        else []
    )
    base_dir = Path(source).parent if not isinstance(source, dict) else Path.cwd()
    for i, ref in enumerate(extends if isinstance(extends, list) else []):
        if not isinstance(ref, str):
            continue
        target = (base_dir / ref) if not Path(ref).is_absolute() else Path(ref)
        try:
            found = target.exists()
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte
            problems.append(
                doc.located.problem(
                    ("spec", "extends", i), f"not a usable file name: {exc}", "not_found"
                )
            )
            continue
        if not found:
            problems.append(
                doc.located.problem(
                    ("spec", "extends", i), f"extended policy not found: {target}", "not_found"
                )
            )
            continue
        _collect(target, registry, problems, (*stack, key), docs)
    docs.append((doc, key))


def _match_of(raw: dict[Any, Any] | None) -> Match:
    if not raw:
        return Match()
    return Match(
        symbols=tuple(raw.get("symbols", ("*",))),
        marginMode=raw.get("marginMode", "any"),
        side=raw.get("side", "any"),
        exclude=tuple(raw.get("exclude", ())),
    )


def _defaults(schema: dict[Any, Any], params: dict[Any, Any]) -> dict[Any, Any]:
    out = dict(params)
    for k, sub in schema.get("properties", {}).items():
        if k not in out and isinstance(sub, dict) and "default" in sub:
            out[k] = copy.deepcopy(sub["default"])
    return out


def _overlap(a: Match, b: Match) -> bool:
    if a.marginMode != "any" and b.marginMode != "any" and a.marginMode != b.marginMode:
        return False
    if a.side != "any" and b.side != "any" and a.side != b.side:
        return False
    if "*" in a.symbols or "*" in b.symbols:
        return True
    return any(
        fnmatch.fnmatchcase(x, y) or fnmatch.fnmatchcase(y, x) for x in a.symbols for y in b.symbols
    )


_WILDCARDS = frozenset("*?[")


def _unreachable(spec: RuleSpec, rtype: Any) -> list[Problem]:
    """Warnings for a ``match`` that can never select anything (the rule would be inert).

    - a symbol pattern without ``/`` or a wildcard cannot match a ccxt unified symbol
      (``BASE/QUOTE:SETTLE``): usually an exchange id such as ``BTCUSDT``;
    - every symbol pattern is covered by an ``exclude`` pattern;
    - ``marginMode`` names a mode the rule type never looks at (a type may declare
      ``marginModes``, e.g. ``("cross",)`` for one that only judges the cross pool).
    """
    out: list[Problem] = []
    m = spec.match

    def warn(msg: str) -> None:
        out.append(Problem(msg, "$.spec.rules", "unreachable_match", spec.file, spec.line))

    for pat in m.symbols:
        if "/" not in pat and not _WILDCARDS.intersection(pat):
            hint = ""
            for quote in ("USDT", "USDC", "BUSD", "USD"):
                if pat.upper().endswith(quote) and len(pat) > len(quote):
                    base = pat[: -len(quote)].upper()
                    settle = base if quote == "USD" else quote  # USD: inverse, settled in coin
                    hint = f"; did you mean '{base}/{quote}:{settle}'?"
                    break
            warn(
                f"rule {spec.id!r}: match.symbols pattern {pat!r} can never match a ccxt "
                f"unified symbol (BASE/QUOTE:SETTLE, e.g. 'BTC/USDT:USDT'){hint}"
            )
    if m.exclude and all(any(fnmatch.fnmatchcase(p, e) for e in m.exclude) for p in m.symbols):
        warn(
            f"rule {spec.id!r}: match.exclude {list(m.exclude)} removes every symbol that "
            f"match.symbols {list(m.symbols)} selects: the rule never applies"
        )
    modes = getattr(rtype, "marginModes", None)
    if modes and m.marginMode != "any" and m.marginMode not in modes:
        warn(
            f"rule {spec.id!r}: match.marginMode {m.marginMode!r} can never apply: "
            f"{spec.type} only judges {' and '.join(modes)} positions"
        )
    return out


# --------------------------------------------------------------------- presets


def _preset_dir() -> Path:
    """``riskguard/presets/`` in an installed wheel, else ``policies/`` of the source tree."""
    pkg = Path(__file__).resolve().parent
    while pkg.name != "riskguard" and pkg.parent != pkg:  # this module may sit in a subpackage
        pkg = pkg.parent
    for d in (pkg / "presets", pkg.parent / "policies"):
        if (d / "default.yaml").is_file():
            return d
    raise FileNotFoundError(
        f"riskguard's preset policies are missing (looked in {pkg / 'presets'})"
    )


def preset_names() -> list[str]:
    """The policies shipped with riskguard (``default``, ``conservative``, ...)."""
    return sorted(
        p.stem for p in _preset_dir().glob("*.yaml") if not p.name.endswith(".tests.yaml")
    )


def preset_path(name: str) -> Path:
    """The file of the shipped policy ``name``; a ValueError lists the known ones.

    ``load_policy("preset:<name>")`` (so ``riskguard check -p preset:default``) and
    ``Guard.from_preset(name)`` load it.
    """
    path = _preset_dir() / f"{name}.yaml"
    if name.endswith(".tests") or "/" in name or "\\" in name or not path.is_file():
        raise ValueError(f"no preset policy {name!r}; known: {', '.join(preset_names())}")
    return path


def load_policy(
    source: str | Path | dict[Any, Any],
    *,
    registry: Registry | None = None,
    plugins: tuple[str, ...] | list[str] = (),
) -> CompiledPolicy:
    """Load, validate and compile a policy; raise PolicyError listing every problem.

    ``source`` is a file, a dict, or ``"preset:<name>"`` for a policy shipped with riskguard.
    """
    if isinstance(source, str) and source.startswith("preset:"):
        try:
            source = preset_path(source[len("preset:") :])
        except (ValueError, FileNotFoundError) as exc:
            raise PolicyError([Problem(str(exc), "$", "not_found", str(source))]) from None
    reg = registry or get_registry(tuple(plugins))
    problems: list[Problem] = []
    docs: list[tuple[PolicyDoc, str]] = []
    _collect(source, reg, problems, (), docs)
    if not docs or any(not isinstance(d.data, dict) for d, _k in docs):
        raise PolicyError(problems)
    schema_failed = bool(problems)
    # Merge: documents in extends order, the file itself last; later ids replace earlier.
    merged: dict[str, tuple[dict[Any, Any], PolicyDoc, int]] = {}
    order: list[str] = []
    for doc, _key in docs:
        ids_here: dict[str, int] = {}
        spec_ = doc.data.get("spec")
        rules_ = spec_.get("rules") if isinstance(spec_, dict) else None
        for i, rule in enumerate(rules_ if isinstance(rules_, list) else []):
            if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
                continue
            rid = rule["id"]
            if rid in ids_here:
                line, _ = doc.located.mark(("spec", "rules", ids_here[rid]))
                problems.append(
                    doc.located.problem(
                        ("spec", "rules", i, "id"),
                        f"duplicate rule id {rid!r} (first at line {line})",
                        "duplicate_id",
                    )
                )
                continue
            ids_here[rid] = i
            if rid not in merged:
                order.append(rid)
            merged[rid] = (rule, doc, i)
    top = docs[-1][0]
    specs: list[RuleSpec] = []
    for rid in order:
        rule, doc, i = merged[rid]
        if rule.get("enabled", True) is False:
            continue
        rtype = reg.rule_types.get(rule["type"]) if isinstance(rule.get("type"), str) else None
        raw_params = rule.get("params") or {}
        if rtype is None or not isinstance(raw_params, dict):
            continue
        if schema_failed and not _params_valid(rtype.params, raw_params):
            continue  # its schema errors are already reported; cross-field checks need valid params
        params = _defaults(rtype.params, raw_params)
        if rtype.check is not None:
            for sub, msg in rtype.check(params):
                path = ("spec", "rules", i, "params", *[p for p in sub.split(".") if p])
                problems.append(doc.located.problem(path, msg, "params"))
        if schema_failed:
            continue  # errors are raised below; match/onViolation may be malformed
        line, _ = doc.located.mark(("spec", "rules", i))
        specs.append(
            RuleSpec(
                id=rid,
                type=rule["type"],
                params=params,
                severity=rule.get("severity", "error"),
                match=_match_of(rule.get("match")),
                onViolation=tuple(rule["onViolation"]) if "onViolation" in rule else None,
                description=rule.get("description", ""),
                file=doc.located.file,
                line=line,
            )
        )
    if problems:
        raise PolicyError(
            sorted(problems, key=lambda q: (q.file or "", q.line or 0, q.column or 0))
        )

    warnings: list[Problem] = []
    for s in specs:
        warnings.extend(_unreachable(s, reg.rule_types[s.type]))
    for a_i, a in enumerate(specs):
        limit_keys = reg.rule_types[a.type].limitKeys
        if not limit_keys:
            continue
        for b in specs[a_i + 1 :]:
            if b.type != a.type or not _overlap(a.match, b.match):
                continue
            diff = {
                k: (a.params.get(k), b.params.get(k))
                for k in limit_keys
                if a.params.get(k) != b.params.get(k)
            }
            if diff:
                desc = ", ".join(f"{k}: {x!r} vs {y!r}" for k, (x, y) in diff.items())
                warnings.append(
                    Problem(
                        f"rules {a.id!r} and {b.id!r} ({a.type}) both apply to some symbols with different "
                        f"limits ({desc}); both are enforced, so the stricter limit wins for those symbols",
                        "$.spec.rules",
                        "overlapping_rules",
                        b.file,
                        b.line,
                    )
                )

    document = {
        "apiVersion": API_VERSION,
        "kind": "Policy",
        "metadata": top.data.get("metadata", {}),
        "spec": {
            "mode": top.data.get("spec", {}).get("mode", "enforce"),
            "rules": [
                {
                    "id": s.id,
                    "type": s.type,
                    "params": s.params,
                    "severity": s.severity,
                    "match": {
                        "symbols": list(s.match.symbols),
                        "exclude": list(s.match.exclude),
                        "marginMode": s.match.marginMode,
                        "side": s.match.side,
                    },
                    # a rule without onViolation uses its type's default actions
                    **({"onViolation": list(s.onViolation)} if s.onViolation is not None else {}),
                }
                for s in specs
            ],
        },
    }
    compiled_rules = []
    for s in specs:
        try:
            compiled_rules.append(reg.rule_types[s.type].compile(s))
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(
                Problem(
                    f"rule {s.id!r} does not compile: {exc}",
                    "$.spec.rules",
                    "compile",
                    s.file,
                    s.line,
                )
            )
    if problems:
        raise PolicyError(problems)
    meta = top.data.get("metadata", {})
    return CompiledPolicy(
        name=meta.get("name", "unnamed"),
        version=str(meta.get("version", "0")),
        description=meta.get("description", ""),
        mode=document["spec"]["mode"],
        digest=digest(document),
        specs=tuple(specs),
        rules=tuple(compiled_rules),
        document=document,
        files=tuple(k for _d, k in docs),
        warnings=tuple(warnings),
        registry=reg,
        sources=tuple((k, d.sha256) for d, k in docs if d.sha256 is not None),
    )


def validate_policy(
    source: str | Path | dict[Any, Any], *, plugins: tuple[str, ...] = ()
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for a policy without raising."""
    try:
        p = load_policy(source, plugins=plugins)
    except RiskguardError as exc:
        return exc.problems, []
    return [], list(p.warnings)


__all__ = ["CompiledPolicy", "json_path", "load_policy", "policy_schema", "validate_policy"]
