"""What is refused: the refused names resolved against the modules loaded now (``Refusals``)."""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bpcourse.delegation.behind import real_of
from bpcourse.delegation.loaded import (
    MODULES,
    PACKAGE,
    attribute_chain,
    in_package,
    is_module_name,
    loaded_module,
    lookup,
    module_of_namespace,
    under,
    unloaded_course_module,
)

# Values that are only data: nothing to refuse, and compared by identity they could match by accident.
ATOMS = (int, float, complex, str, bytes, bool, type(None))
CONTAINERS = (dict, list, tuple, set, frozenset)


class Refusals:
    """The refused names, resolved against the modules loaded now.

    A refused module covers every function and class defined in it (by the
    module their globals are, which cannot be faked), every instance of those
    classes and every container of engine objects it holds (``SCALAR_OPS``).
    A refused object is refused by identity.
    """

    def __init__(self, refused: Sequence[str]) -> None:
        self.modules: list[str] = []
        self.objects: dict[int, str] = {}
        self._kept: list[Any] = []  # the objects whose ids are in self.objects stay alive
        self._classes: dict[int, str | None] = {}
        for name in refused:
            target = _object_named(name)
            if target is None:
                self.modules.append(name)
            else:
                self._refuse(target, name)
        for module_name, module in list(MODULES.items()):
            module = real_of(module) if self.covers(module_name) else None
            if isinstance(module, types.ModuleType):
                for attr, value in list(vars(module).items()):
                    if isinstance(value, CONTAINERS) and not attr.startswith("__") and _holds_objects(value):
                        self._refuse(value, f"{module_name}.{attr}")

    def _refuse(self, value: Any, name: str) -> None:
        self.objects.setdefault(id(value), name)
        self._kept.append(value)

    def covers(self, module_name: str) -> bool:
        """True when the module ``module_name`` is refused (itself, or a package above it)."""
        return any(under(module_name, m) for m in self.modules)

    def name_of(self, value: Any) -> str | None:
        """The dotted name of the refused thing ``value`` is, holds or is an instance of; else None."""
        value = real_of(value)
        if isinstance(value, types.ModuleType):
            name = getattr(value, "__name__", None)
            return name if isinstance(name, str) and self.covers(name) else None
        named = self.objects.get(id(value))
        if named is not None:
            return named
        if isinstance(value, ATOMS):
            return None
        if isinstance(value, types.FunctionType):
            module = module_of_namespace(value.__globals__)
            return f"{module}.{value.__qualname__}" if module and self.covers(module) else None
        if isinstance(value, types.MethodType):
            return self.name_of(value.__func__) or self.name_of(value.__self__)
        if isinstance(value, staticmethod | classmethod):
            return self.name_of(value.__func__)
        if isinstance(value, functools.partial):
            return _first(map(self.name_of, (value.func, *value.args, *value.keywords.values())))
        if isinstance(value, types.BuiltinMethodType) and not isinstance(value.__self__, types.ModuleType):
            return self.name_of(value.__self__)  # a method of a refused container (SCALAR_OPS.get)
        if isinstance(value, type):
            return self._class_name(value)
        return self._class_name(type(value))  # an instance: refused with its class

    def held_in(self, value: Any, namespace: Mapping[str, Any] | None = None) -> str | None:
        """Like ``name_of``, and for a container, the first refused thing it holds (one level down).

        Containers: dicts, lists, tuples, sets, ``SimpleNamespace`` objects, and
        objects of classes defined in ``namespace`` (the learner's own).
        """
        named = self.name_of(value)
        if named is not None:
            return named
        value = real_of(value)
        if isinstance(value, dict):
            items: Any = value.values()
        elif isinstance(value, list | tuple | set | frozenset):
            items = value
        elif isinstance(value, types.SimpleNamespace) or (
            namespace is not None
            and not isinstance(value, type)
            and getattr(type(value), "__module__", None) == namespace.get("__name__")
            and isinstance(getattr(value, "__dict__", None), dict)
        ):
            items = vars(value).values()
        else:
            return None
        return _first(map(self.name_of, list(items)))

    def _class_name(self, cls: type) -> str | None:
        """The refused class ``cls`` is or derives from, or None."""
        if id(cls) not in self._classes:
            self._classes[id(cls)] = _first(map(self._refused_class, getattr(cls, "__mro__", (cls,))))
            self._kept.append(cls)
        return self._classes[id(cls)]

    def _refused_class(self, cls: type) -> str | None:
        """The name of ``cls`` when it is itself refused (bases not looked at), or None."""
        named = self.objects.get(id(cls))
        if named is not None:
            return named
        module = self._defining_module(cls)
        return f"{module}.{cls.__qualname__}" if module is not None else None

    def _defining_module(self, cls: type) -> str | None:
        module = getattr(cls, "__module__", None)
        if isinstance(module, str) and self.covers(module):
            return module
        # __module__ can be reassigned; the globals of the class's own functions cannot.
        for value in vars(cls).values():
            if isinstance(value, types.FunctionType):
                module = module_of_namespace(value.__globals__)
                if module is not None and self.covers(module):
                    return module
        return None

    def covering(self, dotted: str) -> str | None:
        """The refused name that the dotted name ``dotted`` (as written in source) reaches, or None.

        ``bpcourse.tensor.Tensor.zeros`` is reported as ``bpcourse.tensor.Tensor``;
        a re-export (``bpcourse.softmax``) as the object it is (``bpcourse.tensor.softmax``).
        """
        for module in self.modules:
            if under(dotted, module):
                rest = dotted[len(module) + 1 :].split(".")[0]
                return f"{module}.{rest}" if rest else module
        for name in self.objects.values():
            if under(dotted, name):
                return name
        found = loaded_module(dotted, load=True) if in_package(dotted) else None
        if found is None:
            return None
        return _first(map(self.name_of, attribute_chain(*found)))


def refusals_for_reading(refused: Sequence[str]) -> Refusals:
    """``Refusals`` for reading code, the package loaded first: its re-exports are told by identity."""
    if PACKAGE not in MODULES:
        importlib.import_module(PACKAGE)
    return Refusals(refused)


def _object_named(name: str) -> Any:
    """The loaded object, not a module, that the refused name ``name`` is; None for a module's name."""
    if is_module_name(name):
        return None
    parent = name.rpartition(".")[0]
    if unloaded_course_module(parent):
        # The module of a refused object is loaded so that the object can be told by identity.
        importlib.import_module(parent)
    target = lookup(name)
    return None if isinstance(target, types.ModuleType) else target


def _holds_objects(container: Any) -> bool:
    """True when a container holds something other than numbers and strings (engine objects)."""
    items = container.values() if isinstance(container, dict) else container
    return any(not isinstance(item, ATOMS) for item in items)


def _first(names: Iterable[str | None]) -> str | None:
    """The first of ``names`` that is not None (read no further), or None."""
    return next((name for name in names if name is not None), None)
