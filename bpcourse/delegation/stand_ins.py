"""The stand-ins the guard puts in place of refused things, and of the modules that lead to them.

A stand-in raises ``DelegationRefused`` when the learner's code calls or
reaches what it stands for, while its guard is on; the engine's own code
gets the real thing (``asked_by_engine``).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bpcourse.delegation.behind import Entry, StandIn, entry_of, remember
from bpcourse.delegation.loaded import ITSELF, MODULES, getframe, in_package, module_of_namespace, under

if TYPE_CHECKING:
    from bpcourse.delegation.guard import Guard


def _importlib_namespaces() -> set[int]:
    names = ("importlib", "_frozen_importlib", "_frozen_importlib_external")
    return {id(vars(MODULES[n])) for n in names if n in MODULES}


def asked_by_engine(depth: int) -> bool:
    """True when the code asking (``depth`` frames up, past the import machinery) is the course's own.

    Engine code that an input runs, or an import inside the engine, gets the
    real module; a learner's code gets the refusal. Code is told by the
    globals it runs with: those of a loaded ``bpcourse`` module, compared by
    identity.
    """
    machinery = _importlib_namespaces()
    frame: types.FrameType | None = getframe(depth + 1)
    while frame is not None and id(frame.f_globals) in machinery:
        frame = frame.f_back
    if frame is None:
        return False
    module = module_of_namespace(frame.f_globals)
    return module is not None and in_package(module) and not any(under(module, m) for m in ITSELF)


def _unless_refused(stand_in: StandIn) -> Any:
    """The object behind ``stand_in``, unless its guard is on: then the refusal."""
    entry = entry_of(stand_in)
    if entry.guard.active:
        entry.guard.refuse(entry.name)
    return entry.real


class RefusedObject(StandIn):
    """Stands for a refused function, class or value: raises when it is called or reached.

    After its ``refusing`` block it behaves as the object it stands for, so a
    reference the learner's code kept keeps working outside the graded call.
    """

    __slots__ = ("__weakref__",)

    @staticmethod
    def make(real: Any, name: str, guard: Guard) -> RefusedObject:
        stand_in = RefusedObject()
        remember(stand_in, Entry(real, guard, name))
        return stand_in

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _unless_refused(self)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(_unless_refused(self), name)

    def __getitem__(self, key: Any) -> Any:
        return _unless_refused(self)[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(_unless_refused(self))

    def __len__(self) -> int:
        return len(_unless_refused(self))

    def __bool__(self) -> bool:  # without it, truth would be asked of __len__
        return bool(_unless_refused(self))

    def __contains__(self, item: Any) -> bool:
        return item in _unless_refused(self)

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, _unless_refused(self))

    def __subclasscheck__(self, subclass: type) -> bool:
        return issubclass(subclass, _unless_refused(self))

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[Any, ...]:
        return (_unless_refused(self),)

    def __repr__(self) -> str:
        entry = entry_of(self)
        return f"<refused while grading: {entry.name}>" if entry.guard.active else repr(entry.real)


def _forwarding(operator: str) -> Callable[..., Any]:
    def method(self: RefusedObject, *args: Any, **kwargs: Any) -> Any:
        return getattr(_unless_refused(self), operator)(*args, **kwargs)

    method.__name__ = operator
    return method


# Arithmetic on a refused value (a Tensor left in the namespace) is reaching it too.
for _operator in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __matmul__ "
    "__rmatmul__ __pow__ __rpow__ __neg__ __float__ __int__ __array__"
).split():
    setattr(RefusedObject, _operator, _forwarding(_operator))
del _operator


_KEPT_DUNDERS = ("__file__", "__path__", "__package__", "__spec__", "__loader__")


class ModuleStandIn(types.ModuleType, StandIn):
    """Stands for a module in ``sys.modules`` and in the learner's namespace.

    A refused module refuses every attribute; another module of the course
    refuses only the refused things it holds (``minigraph.to_values``) and
    hands out stand-ins for the modules it holds. Double-underscore names, and
    any attribute the engine's own code asks for, come from the real module.
    """

    @staticmethod
    def make(module: types.ModuleType, guard: Guard, refused: bool) -> ModuleStandIn:
        stand_in = ModuleStandIn(module.__name__, module.__doc__)
        # Straight into its own dictionary: setting an attribute goes to the real module.
        vars(stand_in).update({k: v for k, v in vars(module).items() if k in _KEPT_DUNDERS})
        remember(stand_in, Entry(module, guard, module.__name__, refused))
        return stand_in

    def __getattr__(self, name: str) -> Any:
        entry = entry_of(self)
        if (name.startswith("__") and name.endswith("__")) or not entry.guard.active or asked_by_engine(1):
            return getattr(entry.real, name)
        if entry.refused:
            entry.guard.refuse(f"{entry.name}.{name}")
        return entry.guard.offered(getattr(entry.real, name))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(entry_of(self).real, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(entry_of(self).real, name)

    def __dir__(self) -> list[str]:
        return dir(entry_of(self).real)

    def __repr__(self) -> str:
        return repr(entry_of(self).real)
