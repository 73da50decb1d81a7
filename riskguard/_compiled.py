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


__all__ = ["mypyc_attr"]
