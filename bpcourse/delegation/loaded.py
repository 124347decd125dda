"""The modules loaded now, and the dotted names that lead into them."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

from bpcourse.delegation.behind import real_of

PACKAGE = "bpcourse"
# Taken once, when this module is imported (before a learner's code runs in the grader's worker):
# rebinding sys.modules or sys._getframe later would not fool the guard. The import system keeps
# using this same dictionary whatever sys.modules is rebound to.
MODULES = sys.modules
getframe = sys._getframe
# The guard's own machinery: a learner's code has no business with it while it is on.
ITSELF = (__name__.rpartition(".")[0],)


def in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


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


def lookup(dotted: str) -> Any:
    """The loaded object ``dotted`` names (a module, or attributes from one), or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = real_of(MODULES.get(".".join(parts[:i])))
        if not isinstance(module, types.ModuleType):
            continue
        value: Any = module
        for attr in parts[i:]:
            try:
                value = real_of(getattr(value, attr))
            except Exception:  # missing, or an attribute that raises: not resolved
                return None
        return value
    return None


def is_module_name(name: str) -> bool:
    """True when ``name`` is a module, loaded or not (the module itself is not imported)."""
    if name in MODULES:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:  # a parent that is not a package, or an import refused here
        return False


def most_precise(names: Sequence[str]) -> list[str]:
    """``names`` without blanks and repeats, and without a module when a name inside it is there too."""
    kept: list[str] = []
    for name in names:
        if name and name not in kept and not any(under(other, name) for other in names if other != name):
            kept.append(name)
    return kept
