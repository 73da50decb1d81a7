"""The package layout holds: imports flow one way, and no module imports itself in a circle.

riskguard's folders are layers (see ``docs/architecture.md``): the data model at the bottom,
then the margin models, the engine, the rules, the decision log, batch auditing, the paper
exchange, the policy tools and the faces on top. A module may import from its own layer or a
lower one, never a higher one — so the engine cannot grow a dependency on the CLI, and a rule
cannot reach the decision log. Every import counts, including the ones deferred into a
function body (they are still edges of the design); only ``if TYPE_CHECKING:`` imports are
exempt, because they never run.
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "riskguard"

#: (module prefix, layer). The longest matching prefix wins; a module may import only
#: modules whose layer is <= its own. Keep in step with docs/architecture.md.
LAYERS: list[tuple[str, int]] = [
    ("riskguard.errors", 0),
    ("riskguard.hookspecs", 0),
    ("riskguard._moved", 0),
    # the build's two helpers: mypyc's class attributes and the RISKGUARD_PURE switch
    ("riskguard._compiled", 0),
    ("riskguard._pure", 0),
    ("riskguard.model", 1),
    ("riskguard.margin", 2),
    ("riskguard.engine", 3),
    ("riskguard.rules", 4),
    ("riskguard.decisionlog", 4),
    ("riskguard.batch", 5),
    ("riskguard.paper", 5),
    # the stateful runtime around the engine and its terminal styles: used by the policy
    # tools (a test case with steps runs one long-lived Guard) and by contrib
    ("riskguard.faces.guard", 6),
    ("riskguard.faces.render", 6),
    ("riskguard.policytools", 7),
    ("riskguard.contrib", 8),
    # the top: the faces, and the package root that re-exports the public names (the CLI
    # reads its __version__)
    ("riskguard.faces", 9),
    ("riskguard", 9),
]


def _layer(mod: str) -> int:
    best = max((p for p, _ in LAYERS if mod == p or mod.startswith(p + ".")), key=len)
    return dict(LAYERS)[best]


def _modname(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _imports() -> dict[str, set[str]]:
    """module -> the riskguard modules it imports (resolved to modules, not names)."""
    modules = {_modname(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    src = ".".join([*base, node.module] if node.module else base)
                else:
                    src = node.module or ""
                # "from pkg import mod" names a module; "from mod import name" a name in it
                targets = [
                    f"{src}.{a.name}" if f"{src}.{a.name}" in modules else src for a in node.names
                ]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t.startswith("riskguard") and t != mod:
                    deps.add(t)
        graph[mod] = deps
    return graph


GRAPH = _imports()


def test_the_layer_table_covers_every_module():
    assert all(m.startswith("riskguard") for m in GRAPH)
    for mod in GRAPH:
        _layer(mod)  # raises if no prefix matches


def test_imports_never_reach_a_higher_layer():
    wrong = sorted(
        f"{mod} (layer {_layer(mod)}) imports {dep} (layer {_layer(dep)})"
        for mod, deps in GRAPH.items()
        for dep in deps
        # a package's __init__ may re-export its own modules; the root re-exports everything
        if _layer(dep) > _layer(mod) and not dep.startswith(mod + ".")
    )
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    # package __init__ modules that re-export their children are not cycles of the design
    graph = {
        m: {d for d in deps if not (m == d.rpartition(".")[0] or d == m.rpartition(".")[0])}
        for m, deps in GRAPH.items()
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_package_says_what_it_holds_and_may_import():
    for init in PKG.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert doc, f"{init} has no docstring"
        if init.parent.name not in ("riskguard", "commands", "rules", "contrib"):
            assert "May import" in doc, f"{init}: the docstring must say what it may import"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("riskguard.snapshot", "riskguard.model.snapshot"),
        ("riskguard.guard", "riskguard.faces.guard"),
        ("riskguard.audit", "riskguard.decisionlog.log"),
        ("riskguard.metrics", "riskguard.margin.metrics"),
    ],
)
def test_old_import_paths_still_work_with_a_deprecation_warning(old, new):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__spec__.name == new  # the shared module keeps its own spec
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in seen)


def test_every_old_path_resolves():
    from riskguard._moved import MOVED

    for old, new in MOVED.items():
        where = PKG.parent / Path(*new.split("."))
        assert where.with_suffix(".py").is_file() or (where / "__init__.py").is_file(), (old, new)
