"""Old import paths of modules that moved into folders (0.2), kept working for one release.

``import riskguard.snapshot`` (or ``from riskguard.guard import Guard``) still works: the old
name resolves to the very module object at its new home — same classes, same state, so an
``isinstance`` check or a monkeypatch through either name agrees — and a
``DeprecationWarning`` names the new path. One table instead of thirty stub files keeps the
package's top level reading as its architecture.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: old module -> new module. Removed in 0.3.
MOVED: dict[str, str] = {
    "riskguard.snapshot": "riskguard.model.snapshot",
    "riskguard.yamlio": "riskguard.model.yamlio",
    "riskguard.slots": "riskguard.model.slots",
    "riskguard.schemas_util": "riskguard.model.schemas",
    "riskguard.redact": "riskguard.model.redact",
    "riskguard.volatility": "riskguard.model.volatility",
    "riskguard.metrics": "riskguard.margin.metrics",
    "riskguard.actions": "riskguard.engine.actions",
    "riskguard.decision": "riskguard.engine.decision",
    "riskguard.context": "riskguard.engine.context",
    "riskguard.policy": "riskguard.engine.policy",
    "riskguard.plugins": "riskguard.engine.plugins",
    "riskguard.enrich": "riskguard.engine.enrich",
    "riskguard.sources": "riskguard.engine.sources",
    "riskguard.sinks": "riskguard.engine.sinks",
    "riskguard.audit": "riskguard.decisionlog.log",
    "riskguard.auditrun": "riskguard.batch.run",
    "riskguard.parallel": "riskguard.batch.parallel",
    "riskguard.summary": "riskguard.batch.summary",
    "riskguard.report": "riskguard.batch.report",
    "riskguard.tiermemo": "riskguard.batch.tiermemo",
    "riskguard.policytest": "riskguard.policytools.testing",
    "riskguard.explain": "riskguard.policytools.explain",
    "riskguard.generate": "riskguard.policytools.generate",
    "riskguard.codes": "riskguard.policytools.codes",
    "riskguard.cli": "riskguard.faces.cli",
    "riskguard.guard": "riskguard.faces.guard",
    "riskguard.stream": "riskguard.faces.stream",
    "riskguard.render": "riskguard.faces.render",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; the old path will be removed in riskguard 0.3",
            DeprecationWarning,
            stacklevel=4,
        )
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the old name's spec on the shared module: put its own back
        module.__spec__ = self._spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
