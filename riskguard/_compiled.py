"""What the modules compiled with mypyc need from ``mypy_extensions``, without requiring it.

``pip install`` compiles riskguard's hot modules with mypyc where it can (``setup.py``
lists them; ``docs/performance.md`` says why and how to opt out). mypyc reads
``@mypyc_attr(...)`` while compiling; at run time the decorator does nothing, so a plain
Python install, which may not have ``mypy_extensions``, gets a no-op of the same name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:  # plain Python: nothing reads the attributes

        def mypyc_attr(*_args, **_kwargs):
            return lambda cls: cls


def compiled(fn: object) -> bool:
    """Whether ``fn`` — a function of the calling module — was compiled by mypyc (a compiled
    function has no ``__code__``): how a module knows it runs compiled. Compiled, a module's
    dataclasses are native classes, which hot paths build with compiled functions that fill
    the struct directly; the dataclass's own ``__init__`` stays interpreted."""
    return not hasattr(fn, "__code__")


__all__ = ["compiled", "mypyc_attr"]
