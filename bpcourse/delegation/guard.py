"""The run-time guard: ``refusing`` around a block, ``call_refusing`` around one call."""

from __future__ import annotations

import importlib.abc
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from bpcourse.delegation.behind import real_of
from bpcourse.delegation.functions import namespace_of, refused_by
from bpcourse.delegation.loaded import ITSELF, MODULES, in_package, module_of_namespace, under
from bpcourse.delegation.message import DelegationRefused
from bpcourse.delegation.refusals import Refusals
from bpcourse.delegation.stand_ins import ModuleStandIn, RefusedObject, asked_by_engine


@dataclass(eq=False)
class Guard:
    """One ``refusing`` block: what it refuses, and whether it is still on."""

    refusals: Refusals
    instead: str
    active: bool = True
    module_stand_ins: dict[int, types.ModuleType | None] = field(default_factory=dict)
    _reaching: dict[str, bool] = field(default_factory=dict)

    def refuse(self, name: str) -> NoReturn:
        raise DelegationRefused(name, self.instead)

    def stand_in_for_module(self, module: types.ModuleType) -> types.ModuleType | None:
        """The stand-in for a refused module or a module that leads to refused things; else None."""
        if id(module) not in self.module_stand_ins:
            name = getattr(module, "__name__", "")
            stand_in = None
            if self.refusals.covers(name):
                stand_in = ModuleStandIn.make(module, self, refused=True)
            elif in_package(name) and self.reaches(module):
                stand_in = ModuleStandIn.make(module, self, refused=False)
            self.module_stand_ins[id(module)] = stand_in
        return self.module_stand_ins[id(module)]

    def reaches(self, module: types.ModuleType) -> bool:
        """True when a refused thing is an attribute of ``module``, or of a course module it holds."""
        name = module.__name__
        if name not in self._reaching:
            self._reaching[name] = False  # while this one is looked at (modules that import each other)
            attributes = (v for attr, v in list(vars(module).items()) if not attr.startswith("__"))
            self._reaching[name] = any(self._leads_to_refused(real_of(v)) for v in attributes)
        return self._reaching[name]

    def _leads_to_refused(self, value: Any) -> bool:
        if isinstance(value, types.ModuleType):
            name = getattr(value, "__name__", "")
            return self.refusals.covers(name) or (in_package(name) and self.reaches(value))
        return self.refusals.name_of(value) is not None

    def offered(self, value: Any) -> Any:
        """What a learner gets for ``value`` read through a module stand-in."""
        real = real_of(value)
        if isinstance(real, types.ModuleType):
            return self.stand_in_for_module(real) or real
        named = self.refusals.name_of(real)
        if named is not None:
            self.refuse(named)
        return value

    def stand_in_for_entry(self, value: Any) -> Any:
        """The stand-in for a value of ``sys.modules`` (a course module's), or None."""
        module = real_of(value)
        if isinstance(module, types.ModuleType) and in_package(getattr(module, "__name__", "")):
            return self.stand_in_for_module(module)
        return None

    def stand_in_for_name(self, value: Any, namespace: Mapping[str, Any]) -> Any:
        """The stand-in for a value bound to a name in the learner's ``namespace``, or None."""
        value = real_of(value)
        if isinstance(value, types.ModuleType):
            return self.stand_in_for_module(value)
        named = self.refusals.held_in(value, namespace)
        return RefusedObject.make(value, named, self) if named is not None else None


class _RefusedImports(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` while a guard is on: refuses to load a refused module not loaded yet."""

    def __init__(self, prefixes: Sequence[str], instead: str) -> None:
        # Only names: the finder is visible in sys.meta_path, so it holds nothing worth reaching.
        self.prefixes = tuple(prefixes)
        self.instead = instead

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if any(under(fullname, p) for p in self.prefixes) and not asked_by_engine(1):
            raise DelegationRefused(fullname, self.instead)
        return None


# -- the guard ------------------------------------------------------------------------------------
@contextmanager
def refusing(namespace: dict[str, Any], refused: Sequence[str], instead: str = "") -> Iterator[None]:
    """While the block runs, ``namespace`` and the import system do not offer the refused things.

    ``namespace`` is the learner's: a notebook's globals (IPython's
    ``user_ns``), the ``__globals__`` of every function defined there. Names in
    it bound to a refused object or module, to an instance of a refused class,
    or to a course module through which a refused thing can be reached
    (``bpcourse``, ``minigraph``), are replaced by stand-ins; so are those
    modules in ``sys.modules``, and a finder refuses to load a refused module.
    A stand-in raises ``DelegationRefused`` (message ``"uses NAME: instead"``)
    when the refused thing is called or reached; everything else in a course
    module stays usable, and the engine's own code (an input's methods) gets
    the real modules. The engine's functions are never patched.

    On the way out, even on an exception, every name and module entry the
    guard replaced is put back (unless the learner's code rebound it
    meanwhile), and the finder is removed. A namespace that is a course
    module's own is left alone: only the import system is guarded then.

    It changes state the whole process shares (``sys.modules``,
    ``sys.meta_path``): one guarded call at a time, as a notebook and the
    grader's worker make them.
    """
    if not refused:
        yield
        return
    guard = Guard(Refusals((*refused, *ITSELF)), instead)
    # The import system's own dictionary, and sys.modules if the learner's code rebound it.
    registries = [MODULES] if sys.modules is MODULES else [MODULES, sys.modules]
    swaps = [(registry, _swaps(registry, guard.stand_in_for_entry)) for registry in registries]
    if not in_package(module_of_namespace(namespace) or ""):
        swaps.append((namespace, _swaps(namespace, lambda value: guard.stand_in_for_name(value, namespace))))
    finder = _RefusedImports(guard.refusals.modules, instead)
    try:
        for mapping, swapped in swaps:
            mapping.update({key: stand_in for key, (_, stand_in) in swapped.items()})
        sys.meta_path.insert(0, finder)
        yield
    finally:
        guard.active = False
        sys.meta_path[:] = [f for f in sys.meta_path if f is not finder]
        for mapping, swapped in swaps:
            for key, (original, stand_in) in swapped.items():
                if mapping.get(key) is stand_in:  # else the learner's code rebound it: theirs stays
                    mapping[key] = original


def _swaps(mapping: dict[str, Any], stand_in_for: Callable[[Any], Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (value, its stand-in)}`` for the entries of ``mapping`` that get one."""
    swapped = {}
    for key, value in list(mapping.items()):
        if key != "__builtins__":  # the interpreter reads it for every builtin name
            stand_in = stand_in_for(value)
            if stand_in is not None:
                swapped[key] = (value, stand_in)
    return swapped


def call_refusing(
    function: Callable[..., Any],
    args: Sequence[Any],
    refused: Sequence[str],
    instead: str = "",
    namespace: dict[str, Any] | None = None,
    through: Callable[..., Any] | None = None,
) -> Any:
    """``function(*args)`` with the refused things out of reach; raises ``DelegationRefused`` if used.

    First ``refused_by`` reads the function (and the learner's helpers it
    calls); then the call runs inside ``refusing`` on the function's own
    globals and, when it is another dictionary, on ``namespace`` too (the
    learner's: IPython's ``user_ns``). ``through``: a course function that
    exercises the learner's answer (a class), called as ``through(function,
    *args)`` instead; only the learner's answer is read.
    """
    found = refused_by(function, refused)
    if found:
        raise DelegationRefused(found[0], instead)
    own = namespace_of(function)
    with ExitStack() as guards:
        guards.enter_context(refusing(own, refused, instead))
        if namespace is not None and namespace is not own:
            guards.enter_context(refusing(namespace, refused, instead))
        return function(*args) if through is None else through(function, *args)
