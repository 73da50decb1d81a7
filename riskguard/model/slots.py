"""Cheaper construction of frozen, slotted dataclasses on the hot paths.

A frozen dataclass's generated ``__init__`` calls ``object.__setattr__`` per field (it
must: its own ``__setattr__`` raises), which made building a ``Position`` or a
``PositionMetrics`` cost more than reading or computing its fields. Setting the slot
descriptors directly is the same operation without the generic attribute lookup; the
classes stay frozen (their ``__setattr__`` still raises) and compare as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _setters(cls: type[Any]) -> tuple[list[str], dict[str, Any]]:
    names = [f.name for f in fields(cls)]
    return names, {f"_set_{n}": cls.__dict__[n].__set__ for n in names}


def fast_frozen_init(cls: type[Any]) -> None:
    """Replace the ``__init__`` of a frozen slots dataclass without defaults (so its
    signature stays exact) by one that fills the slots directly."""
    if any(f.default is not MISSING or f.default_factory is not MISSING for f in fields(cls)):
        return
    names, ns = _setters(cls)
    body = "".join(f"    _set_{n}(self, {n})\n" for n in names)
    exec(f"def __init__(self, {', '.join(names)}):\n{body}", ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init


#: Compiled classes (mypyc native classes refuse ``object.__new__``): the function, compiled
#: with them, that fills their fields directly (see ``riskguard.model.types``).
_BUILDERS: dict[type, Callable[..., Any]] = {}


def register_builder(cls: type[Any], fn: Callable[..., Any]) -> None:
    """Name ``fn`` as the positional constructor of the compiled class ``cls``."""
    _BUILDERS[cls] = fn


def positional_constructor(cls: type[T]) -> Callable[..., T]:
    """``cls(*every_field_in_order)`` for a frozen slots dataclass, filling the slots
    directly; for builders that have already validated every field (defaults are not
    applied: pass each value)."""
    native = _BUILDERS.get(cls)
    if native is not None:
        return native
    try:
        object.__new__(cls)
    except TypeError:  # a compiled (native) class without a registered builder
        return cls
    names, ns = _setters(cls)
    ns.update(_new=object.__new__, _cls=cls)
    body = "".join(f"    _set_{n}(self, {n})\n" for n in names)
    exec(f"def make({', '.join(names)}):\n    self = _new(_cls)\n{body}    return self\n", ns)
    make: Callable[..., T] = ns["make"]
    make.__qualname__ = f"{cls.__qualname__}.positional"
    return make


_REDUCE_NAMES: dict[type, tuple[str, ...]] = {}


def reduce_by_init(obj: Any) -> tuple[Any, tuple[Any, ...]]:
    """``__reduce__`` of the compiled data classes: ``type(obj)(*its init fields)``.

    Compiled, a dataclass is a native class, and the dataclass's own slot pickling (each
    field set with ``object.__setattr__``) is refused; rebuilding through ``__init__``
    works in both builds, and a subclass's added fields come along."""
    cls = type(obj)
    names = _REDUCE_NAMES.get(cls)
    if names is None:
        names = _REDUCE_NAMES[cls] = tuple(f.name for f in fields(cls) if f.init)
    return (cls, tuple([getattr(obj, n) for n in names]))
