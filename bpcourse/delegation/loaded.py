"""The modules loaded now, and the dotted names that lead into them."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any

from bpcourse.delegation.behind import real_of

PACKAGE = "bpcourse"
# Taken once, when this module is imported (before a learner's code runs in the grader's worker):
# rebinding sys.modules or sys._getframe later would not fool the guard. The import system keeps
# using this same dictionary whatever sys.modules is rebound to.
MODULES = sys.modules
getframe = sys._getframe
# The guard's own machinery (this package): a learner's code has no business with it while it is on.
ITSELF = (__name__.rpartition(".")[0],)


def under(name: str, prefix: str) -> bool:
    """True when the dotted name ``name`` is ``prefix`` or inside it."""
    return name == prefix or name.startswith(prefix + ".")


def in_package(name: str) -> bool:
    return under(name, PACKAGE)


def is_module_name(name: str) -> bool:
    """True when ``name`` is a module, loaded or not (the module itself is not imported)."""
    if name in MODULES:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:  # a parent that is not a package, or an import refused here
        return False


def unloaded_course_module(name: str) -> bool:
    """True when ``name`` is a module of the course that is not loaded yet."""
    return in_package(name) and name not in MODULES and is_module_name(name)


def module_of_namespace(namespace: Mapping[str, Any]) -> str | None:
    """The name of the loaded module whose globals ``namespace`` is, or None.

    Compared by identity with the module's own dictionary, so a namespace that
    merely calls itself ``bpcourse.x`` is not taken for it.
    """
    name = namespace.get("__name__")
    if not isinstance(name, str):
        return None
    module = real_of(MODULES.get(name))
    if isinstance(module, types.ModuleType) and vars(module) is namespace:
        return name
    return None


def loaded_module(dotted: str, *, load: bool = False) -> tuple[types.ModuleType, list[str]] | None:
    """The longest loaded module ``dotted`` starts with, and the attribute names after it; or None.

    ``load``: a module of the course on the way that is not loaded yet is
    imported first (one that cannot be imported here names nothing).
    """
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if load and unloaded_course_module(prefix):
            with suppress(Exception):
                importlib.import_module(prefix)
        module = real_of(MODULES.get(prefix))
        if isinstance(module, types.ModuleType):
            return module, parts[i:]
    return None


def attribute_chain(value: Any, attributes: Sequence[str]) -> Iterator[Any]:
    """``value``, then each attribute down ``attributes`` in turn, up to one that cannot be read."""
    yield value
    for attr in attributes:
        try:
            value = real_of(getattr(value, attr))
        except Exception:  # missing, or an attribute that raises: not resolved
            return
        yield value


def lookup(dotted: str) -> Any:
    """The loaded object ``dotted`` names (a module, or attributes from one), or None."""
    found = loaded_module(dotted)
    if found is None:
        return None
    module, attributes = found
    chain = list(attribute_chain(module, attributes))
    return chain[-1] if len(chain) == len(attributes) + 1 else None


def most_precise(names: Sequence[str]) -> list[str]:
    """``names`` without repeats, and without a module when a name inside it is there too."""
    kept: list[str] = []
    for name in names:
        if name not in kept and not any(under(other, name) for other in names if other != name):
            kept.append(name)
    return kept
