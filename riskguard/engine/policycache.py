"""A compiled-policy cache for one-shot commands (``riskguard check`` from a shell).

Loading a policy parses its YAML and validates it against the JSON Schema composed from
every rule type's parameters; in a one-shot ``riskguard check`` that (with importing
``jsonschema`` and ``yaml``) costs more than the decision itself. This cache keeps the
*result* of loading — the validated rules with their defaults, the normalised document,
its digest, the warnings — as JSON, and on a hit only compiles the rules again (cheap,
and with the running code).

An entry is used only when all of these are unchanged, else it is rebuilt:

- the bytes of every policy file read (the file and each one it ``extends``), by SHA-256;
- riskguard's version, and this module's format number;
- the plugins: every module registered in the plugin manager (built-in rules and margin
  models, entry points, ``--plugin`` files) by path, size and modification time, plus the
  content digest of each ``--plugin`` file; ``RISKGUARD_LOAD_PLUGINS``.

Entries are written to a temporary file in the cache directory and renamed into place
(atomic on POSIX and Windows), so concurrent runs never read a half-written entry; an
entry that does not parse is a miss. Nothing executable is stored (plain JSON, never
pickle), and the directory is created private (0700). Where it lives:
``$RISKGUARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/riskguard``, else ``~/.cache/riskguard``.
``RISKGUARD_CACHE_DIR=off`` (or an unwritable directory) turns the cache off; a policy
that cannot be cached (a non-JSON value) is simply loaded every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from riskguard.engine.plugins import Registry, get_registry
from riskguard.engine.policy import CompiledPolicy, load_policy, text_sha256
from riskguard.engine.rule import Match, RuleSpec
from riskguard.errors import PolicyError, Problem, RiskguardError
from riskguard.model.yamlio import read_text

FORMAT = 1


def cache_dir() -> Path | None:
    """The cache directory, or None when the cache is off."""
    env = os.environ.get("RISKGUARD_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "riskguard"


def _sha(path: str) -> str | None:
    """The digest of the file's text as the policy loader reads it (None: unreadable)."""
    try:
        return text_sha256(read_text(path))
    except (OSError, RiskguardError, UnicodeDecodeError):
        return None


def _file_sha(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _plugin_stamp(reg: Registry, plugin_files: tuple[str, ...]) -> list[Any]:
    """Path, size and mtime of every registered plugin module; content digests of files."""
    stamp: list[Any] = [os.environ.get("RISKGUARD_LOAD_PLUGINS")]
    mods = [m for _n, m in reg.pm.list_name_plugin()] if reg.pm is not None else []
    for mod in (*mods, sys.modules[__name__], sys.modules[load_policy.__module__]):
        f = getattr(mod, "__file__", None) if isinstance(mod, ModuleType) else None
        if not f:
            stamp.append(repr(mod))
            continue
        try:
            st = os.stat(f)
        except OSError:
            stamp.append([f, None])
            continue
        stamp.append([f, st.st_size, st.st_mtime_ns])
    stamp.extend([str(Path(p).resolve()), _file_sha(p)] for p in plugin_files)
    return stamp


def _entry_name(policy: Path, stamp_key: str) -> str:
    # the package is always imported before its submodules; read, not imported (layering)
    version = getattr(sys.modules.get("riskguard"), "__version__", "unknown")
    h = hashlib.sha256(f"{FORMAT}\0{version}\0{policy}\0{stamp_key}".encode())
    return h.hexdigest()[:32] + ".json"


def _to_entry(p: CompiledPolicy, files: list[list[str]]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "files": files,
        "name": p.name,
        "version": p.version,
        "description": p.description,
        "mode": p.mode,
        "digest": p.digest,
        "document": p.document,
        "specs": [
            {
                "id": s.id,
                "type": s.type,
                "params": s.params,
                "severity": s.severity,
                "match": [
                    list(s.match.symbols),
                    s.match.marginMode,
                    s.match.side,
                    list(s.match.exclude),
                ],
                "onViolation": None if s.onViolation is None else list(s.onViolation),
                "description": s.description,
                "file": s.file,
                "line": s.line,
            }
            for s in p.specs
        ],
        "warnings": [[w.message, w.path, w.code, w.file, w.line, w.column] for w in p.warnings],
    }


def _from_entry(e: dict[str, Any], reg: Registry) -> CompiledPolicy | None:
    specs = []
    for s in e["specs"]:
        symbols, mode, side, exclude = s["match"]
        specs.append(
            RuleSpec(
                id=s["id"],
                type=s["type"],
                params=s["params"],
                severity=s["severity"],
                match=Match(tuple(symbols), mode, side, tuple(exclude)),
                onViolation=None if s["onViolation"] is None else tuple(s["onViolation"]),
                description=s["description"],
                file=s["file"],
                line=s["line"],
            )
        )
    rules = []
    for s in specs:
        rtype = reg.rule_types.get(s.type)
        if rtype is None:
            return None
        try:
            rules.append(rtype.compile(s))
        except (ValueError, TypeError, KeyError):
            return None  # the plain load reports it
    return CompiledPolicy(
        name=e["name"],
        version=e["version"],
        description=e["description"],
        mode=e["mode"],
        digest=e["digest"],
        specs=tuple(specs),
        rules=tuple(rules),
        document=e["document"],
        files=tuple(f for f, _h in e["files"]),
        warnings=tuple(Problem(*w) for w in e["warnings"]),
        registry=reg,
        sources=tuple((f, h) for f, h in e["files"]),
    )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return None  # another user's entry: not trusted
        with open(path, encoding="utf-8") as f:
            e = json.load(f)
    except (OSError, ValueError):
        return None
    return e if isinstance(e, dict) and e.get("format") == FORMAT else None


def _write(directory: Path, name: str, entry: dict[str, Any]) -> None:
    try:
        text = json.dumps(entry, allow_nan=False, ensure_ascii=False)
        if json.loads(text) != entry:
            return  # a value JSON cannot carry exactly (tuples, non-text keys): not cached
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, ValueError, TypeError):
        return  # a cache that cannot be written is no cache: the policy was loaded anyway


def load_policy_cached(
    source: str | Path, *, plugins: tuple[str, ...] | list[str] = ()
) -> CompiledPolicy:
    """``load_policy(source, plugins=plugins)``, from the cache when nothing it read changed."""
    directory = cache_dir()
    plugin_files = tuple(str(p) for p in plugins)
    if directory is None:
        return load_policy(source, plugins=plugin_files)
    reg = get_registry(plugin_files)
    top = Path(source).resolve()
    stamp_key = hashlib.sha256(json.dumps(_plugin_stamp(reg, plugin_files)).encode()).hexdigest()
    name = _entry_name(top, stamp_key)
    entry = _read(directory / name)
    if entry is not None and all(_sha(f) == h for f, h in entry["files"]):
        try:
            hit = _from_entry(entry, reg)
        except (KeyError, TypeError, ValueError):
            hit = None
        if hit is not None:
            return hit
    policy = load_policy(source, registry=reg)
    # the digests of the texts the loader parsed (not re-read: a file changed meanwhile
    # then simply misses next time, it never pairs new text with old rules)
    files = [list(x) for x in policy.sources]
    if len(files) == len(policy.files) and str(top) in policy.files:
        _write(directory, name, _to_entry(policy, files))
    return policy


__all__ = ["PolicyError", "cache_dir", "load_policy_cached"]
