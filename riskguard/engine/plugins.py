"""The plugin manager: built-ins, entry points (group ``riskguard``) and plugin files.

Environment:

- ``RISKGUARD_LOAD_PLUGINS=a,b`` loads only the named entry-point plugins (empty: none);
  built-ins always load, because rules and margin models *are* built-in plugins.
- ``RISKGUARD_TRACE_PLUGINS=1`` prints each plugin as it loads and every registration
  hook call with what it registered, to stderr.

The registry is built once per set of plugin files and cached: compiling a policy never
re-scans entry points.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from riskguard import hookspecs
from riskguard.errors import PluginError, Problem

ENTRY_POINT_GROUP = "riskguard"


def _discover(package: str) -> tuple[str, ...]:
    mod = importlib.import_module(package)
    names = sorted(
        f"{package}.{m.name}"
        for m in pkgutil.iter_modules(mod.__path__)
        if not m.name.startswith("_") and m.name != "base"
    )
    return tuple(names)


def default_plugins() -> tuple[str, ...]:
    """Built-in plugin modules: every margin model and rule module, plus sinks and sources."""
    return (
        *_discover("riskguard.margin"),
        *_discover("riskguard.rules"),
        "riskguard.engine.enrich",
        "riskguard.engine.sinks",
        "riskguard.engine.sources",
    )


@dataclass
class Registry:
    """What the plugins registered, keyed by name, with the plugin each came from."""

    rule_types: dict[str, Any] = field(default_factory=dict)
    margin_models: dict[str, Any] = field(default_factory=dict)
    action_sinks: dict[str, Any] = field(default_factory=dict)
    snapshot_sources: dict[str, Any] = field(default_factory=dict)
    enrichers: tuple[Any, ...] = ()
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    plugins: list[tuple[str, str]] = field(default_factory=list)  # (name, where from)
    pm: pluggy.PluginManager | None = None

    def margin_model(self, exchange: str) -> Any:
        model = self.margin_models.get(exchange)
        if model is None:
            return self.margin_models["generic"]
        return model


_KINDS = {
    "riskguard_rule_types": ("rule_types", "rule type", ("name", "params", "compile")),
    "riskguard_margin_models": (
        "margin_models",
        "margin model",
        ("name", "liquidation_price", "maintenance_margin"),
    ),
    "riskguard_action_sinks": ("action_sinks", "action sink", ("name", "open")),
    "riskguard_snapshot_sources": (
        "snapshot_sources",
        "snapshot source",
        ("name", "open", "matches"),
    ),
}


def _trace(msg: str) -> None:
    if os.environ.get("RISKGUARD_TRACE_PLUGINS"):
        print(f"riskguard plugins: {msg}", file=sys.stderr)


def _load_file(path: str) -> ModuleType:
    p = Path(path)
    if not p.is_file():
        raise PluginError([Problem("plugin file not found", "$", "plugin", str(p))])
    name = f"riskguard_plugin_{p.stem}_{abs(hash(str(p.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise PluginError([Problem("cannot import plugin file", "$", "plugin", str(p))])
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as the import system does: dataclasses (and pickling)
    # look a class's module up in sys.modules while the plugin file executes.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise PluginError(
            [
                Problem(
                    f"plugin failed to import: {type(exc).__name__}: {exc}", "$", "plugin", str(p)
                )
            ]
        ) from exc
    return module


def build_registry(
    plugin_files: tuple[str, ...] = (), *, load_entry_points: bool = True
) -> Registry:
    pm = pluggy.PluginManager("riskguard")
    pm.add_hookspecs(hookspecs)
    reg = Registry(pm=pm)
    for modname in default_plugins():
        mod = importlib.import_module(modname)
        pm.register(mod, name=modname)
        reg.plugins.append((modname, "built-in"))
        _trace(f"loaded built-in {modname}")
    if load_entry_points and not getattr(sys, "_riskguard_no_entry_points", False):
        allowed = os.environ.get("RISKGUARD_LOAD_PLUGINS")
        allow = None if allowed is None else {x.strip() for x in allowed.split(",") if x.strip()}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allow is not None and ep.name not in allow:
                _trace(f"skipped entry point {ep.name} (not in RISKGUARD_LOAD_PLUGINS)")
                continue
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point {ep.name} ({ep.value}) failed to load: {exc}"
                ) from exc
            pm.register(obj, name=ep.name)
            reg.plugins.append((ep.name, f"entry point {ep.value}"))
            _trace(f"loaded entry point {ep.name} = {ep.value}")
    loaded_files = {
        str(Path(str(m.__file__)).resolve())
        for _n, m in pm.list_name_plugin()
        if isinstance(m, ModuleType) and getattr(m, "__file__", None)
    }
    for f in plugin_files:
        if str(Path(f).resolve()) in loaded_files:
            _trace(f"skipped file {f}: already loaded as an installed plugin")
            continue
        mod = _load_file(f)
        pm.register(mod, name=str(f))
        reg.plugins.append((str(f), "file"))
        _trace(f"loaded file {f}")

    for hook_name, (attr, label, required) in _KINDS.items():
        caller = getattr(pm.hook, hook_name)
        table: dict[Any, Any] = getattr(reg, attr)
        for impl in caller.get_hookimpls():
            plugin_name = impl.plugin_name

            def register(
                obj: Any,
                *,
                _table: dict[Any, Any] = table,
                _label: str = label,
                _req: tuple[str, ...] = required,
                _plugin: str = plugin_name,
                _attr: str = attr,
            ) -> None:
                missing = [r for r in _req if not hasattr(obj, r)]
                if missing:
                    raise PluginError(
                        f"plugin {_plugin} registered a {_label} without "
                        f"{', '.join(missing)}: {obj!r}"
                    )
                name = obj.name
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {_plugin} registered a {_label} with no name")
                if name in _table:
                    first = reg.origins[(_attr, name)]
                    raise PluginError(
                        f"{_label} {name!r} is registered twice: by {first} and by {_plugin}"
                    )
                _table[name] = obj
                reg.origins[(_attr, name)] = _plugin
                _trace(f"{_plugin} registered {_label} {name!r}")

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin_name} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
    reg.enrichers = tuple(
        (impl.plugin_name, impl.function)
        for impl in reversed(pm.hook.riskguard_enrich_snapshot.get_hookimpls())
    )
    if "generic" not in reg.margin_models:
        raise PluginError(
            "no 'generic' margin model registered (riskguard.margin.generic is built in)"
        )
    return reg


_CACHE: dict[tuple[Any, ...], Registry] = {}


def get_registry(plugin_files: tuple[str, ...] | list[str] = ()) -> Registry:
    """The cached registry for these plugin files (built-ins and entry points included)."""
    key = (
        tuple(str(Path(f).resolve()) for f in plugin_files),
        os.environ.get("RISKGUARD_LOAD_PLUGINS"),
    )
    reg = _CACHE.get(key)
    if reg is None:
        reg = build_registry(tuple(str(f) for f in plugin_files))
        _CACHE[key] = reg
    return reg


def clear_cache() -> None:
    _CACHE.clear()
