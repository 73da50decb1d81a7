"""``RISKGUARD_PURE=1``: run riskguard's Python source even where modules are compiled.

An install compiles the hot modules with mypyc where it can (``setup.py``); each compiled
module's source file stays beside its extension module, and the import system prefers
the extension. With ``RISKGUARD_PURE`` set (to anything but ``0``) when riskguard is
first imported, this finder loads every ``riskguard.*`` module from its ``.py`` file
instead: the reference behaviour, for a comparison (the test suite checks both builds
decide alike) or to rule the compiled build out when chasing a problem.
"""

from __future__ import annotations

import importlib.machinery as machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

ENV = "RISKGUARD_PURE"


def requested() -> bool:
    return os.environ.get(ENV, "").strip() not in ("", "0")


class SourceFinder:
    """Finds ``riskguard.*`` modules as source files only (never an extension module)."""

    @classmethod
    def find_spec(
        cls, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith("riskguard.") or path is None:
            return None
        for entry in path:
            finder = machinery.FileFinder(
                entry, (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES)
            )
            spec = finder.find_spec(name, target)
            if spec is not None:
                return spec
        return None


def install() -> None:
    if SourceFinder not in sys.meta_path:
        sys.meta_path.insert(0, SourceFinder)


def compiled_modules() -> list[str]:
    """The riskguard modules imported so far that run compiled (extension modules)."""
    out = []
    for name, mod in list(sys.modules.items()):
        spec = getattr(mod, "__spec__", None)
        loader = getattr(spec, "loader", None)
        if name.startswith("riskguard.") and isinstance(loader, machinery.ExtensionFileLoader):
            out.append(name)
    return sorted(out)


def build() -> str:
    """Which build runs: ``compiled (mypyc)`` or ``plain Python`` — read from where the
    engine's module would load from, without importing it."""
    import importlib.util

    if requested():
        return f"plain Python: {ENV} is set"
    try:
        spec = importlib.util.find_spec("riskguard.engine.evaluate")
    except ImportError:  # pragma: no cover - a broken install
        return "unknown build"
    if spec is not None and isinstance(spec.loader, machinery.ExtensionFileLoader):
        return "compiled with mypyc"
    return "plain Python"


def stale_modules() -> list[str]:
    """Compiled modules whose ``.py`` source was edited after they were built: on an
    editable install the extension still runs, so the edit has no effect until
    ``pip install -e .`` compiles again (or ``RISKGUARD_PURE=1`` runs the source)."""
    if requested():
        return []
    root = os.path.dirname(os.path.abspath(__file__))
    out = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            stem, dot, _rest = name.partition(".")
            if not dot or not any(name.endswith(s) for s in machinery.EXTENSION_SUFFIXES):
                continue
            src = os.path.join(folder, stem + ".py")
            if os.path.exists(src) and os.path.getmtime(src) > os.path.getmtime(
                os.path.join(folder, name)
            ):
                out.append(os.path.relpath(src, os.path.dirname(root)))
    return sorted(out)
