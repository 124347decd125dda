"""Reading a live function without running it: its bytecode, its source and what it is bound to.

``refused_by`` for the function a learner hands in, ``namespace_of`` for the
globals it runs with.
"""

from __future__ import annotations

import dis
import functools
import importlib
import inspect
import types
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from bpcourse.delegation.behind import real_of
from bpcourse.delegation.loaded import MODULES, PACKAGE, most_precise
from bpcourse.delegation.refusals import Refusals
from bpcourse.delegation.source import uses_in

_ATTRIBUTE_LOADS = ("LOAD_ATTR", "LOAD_METHOD")
_GLOBAL_LOADS = ("LOAD_GLOBAL", "LOAD_NAME")
_LOCAL_LOADS = ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_NAME")
_STORES = ("STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF")


def _bytecode_uses(
    code: types.CodeType, outer: Mapping[str, str] | None = None
) -> Iterator[tuple[str | None, str]]:
    """What ``code`` (and the code nested in it) reaches, read from its instructions.

    ``(name, "a.b")`` for a global ``name`` and the attributes loaded from it
    straight after (``name.a.b``; ``""`` for none); ``(None, "m.x.a")`` for an
    import (``import m``, ``from m import x``) and for the attributes loaded
    from the name it was stored under. Exact where source is not: it needs no
    source, and locals are never taken for globals. Nested code (a lambda, a
    comprehension) is read where it is made, knowing the imports around it.
    """
    instructions = [i for i in dis.get_instructions(code) if i.opname not in ("CACHE", "EXTENDED_ARG")]
    imported: dict[str, str] = dict(outer or {})  # local name -> the dotted name an import stored there

    def attributes(start: int) -> str:
        attrs = []
        for following in instructions[start:]:
            if following.opname not in _ATTRIBUTE_LOADS:
                break
            attrs.append(following.argval)
        return ".".join(attrs)

    for index, instruction in enumerate(instructions):
        if isinstance(instruction.argval, types.CodeType):
            yield from _bytecode_uses(instruction.argval, imported)
        elif instruction.opname in _LOCAL_LOADS and instruction.argval in imported:
            attrs = attributes(index + 1)
            yield None, f"{imported[instruction.argval]}.{attrs}" if attrs else imported[instruction.argval]
        elif instruction.opname in _GLOBAL_LOADS:
            yield instruction.argval, attributes(index + 1)
        elif instruction.opname == "IMPORT_NAME":
            module = instruction.argval
            yield None, module
            # ``from m import x`` has a tuple of names before IMPORT_NAME. ``import m.x as y`` has
            # None, and its IMPORT_FROM only walks down to the submodule already named.
            fromlist = instructions[index - 1].argval if index else None
            walked, target = False, module
            for following in instructions[index + 1 :]:
                if following.opname == "IMPORT_FROM":
                    if isinstance(fromlist, tuple):
                        target = f"{module}.{following.argval}"
                        yield None, target
                    walked = True
                elif following.opname in _STORES:
                    if isinstance(fromlist, tuple):
                        imported[following.argval] = target
                    else:
                        imported[following.argval] = module if walked else module.split(".")[0]
                        break
                else:
                    break


def _source(function: types.FunctionType) -> str | None:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):  # defined where no source is kept (exec of a string)
        return None


def refused_by(function: Callable[..., Any], refused: Sequence[str]) -> list[str]:
    """The refused names a live function uses, found without running it; each once.

    Read are ``function`` and, recursively, the learner's own functions it
    calls (those sharing its globals, nested ones too): their instructions
    (the globals they load, and the attributes loaded from those; their
    imports), their source when it can be read (``refused_uses``, names
    resolved through their globals), and, by identity, the values of those
    globals, their default arguments and their closures. A container among
    them (a dict, a list, an object of the learner's) counts when it holds a
    refused thing. A function that is itself refused (the engine's own, passed
    under the exercise's name) is reported too.
    """
    if not refused:
        return []
    if PACKAGE not in MODULES:
        importlib.import_module(PACKAGE)
    refusals = Refusals(refused)
    found: list[str] = []
    home = namespace_of(function)
    pending: deque[Any] = deque([function])  # first in, first out: names come in the order of the code
    seen: set[int] = set()
    while pending:
        value = real_of(pending.popleft())
        if id(value) in seen:
            continue
        seen.add(id(value))
        named = refusals.held_in(value, home)
        if named is not None:
            found.append(named)
            continue
        if isinstance(value, functools.partial):
            pending.extend((value.func, *value.args, *value.keywords.values()))
        elif isinstance(value, type):
            pending.extend(v for v in vars(value).values() if getattr(v, "__globals__", None) is home)
        elif isinstance(value, types.FunctionType) and value.__globals__ is home:
            source = _source(value)
            if source is not None:
                found.extend(uses_in(source, refusals, None, home, value.__code__.co_freevars))
            for name, attrs in _bytecode_uses(value.__code__):
                if name is None:
                    found.append(refusals.covering(attrs) or "")
                elif name in home:
                    target = real_of(home[name])
                    if isinstance(target, types.ModuleType) and attrs:
                        found.append(refusals.covering(f"{target.__name__}.{attrs}") or "")
                    pending.append(target)
            pending.extend(value.__defaults__ or ())
            pending.extend((value.__kwdefaults__ or {}).values())
            for cell in value.__closure__ or ():
                try:
                    pending.append(cell.cell_contents)
                except ValueError:  # a cell not filled yet
                    pass
        elif (inner := _inner(value)) is not None:
            pending.append(inner)
    return most_precise(found)


def namespace_of(function: Callable[..., Any]) -> dict[str, Any]:
    """The globals ``function`` runs with; {} when it has none.

    Found through partials, bound methods, decorators that keep ``__wrapped__``
    (``functools.lru_cache``), and an object's ``__call__``.
    """
    for _ in range(100):  # a chain of wrappers, not a cycle
        found = _inner(function)
        if found is None:
            break
        function = found
    found = getattr(function, "__globals__", None)
    return found if isinstance(found, dict) else {}


def _inner(function: Any) -> Any:
    """The callable ``function`` hands its calls to (a partial's, a decorator's), or None."""
    if isinstance(function, functools.partial):
        return function.func
    if isinstance(function, types.MethodType | staticmethod | classmethod):
        return function.__func__
    if isinstance(function, types.FunctionType | type):
        return None
    # Read from the dictionaries, not by getattr: an object's __getattr__ could answer anything.
    own = getattr(function, "__dict__", None)
    if isinstance(own, dict) and own.get("__wrapped__") is not None:
        return own["__wrapped__"]
    call = next((vars(c)["__call__"] for c in type(function).__mro__ if "__call__" in vars(c)), None)
    return call if isinstance(call, types.FunctionType) else None
