"""Reading a live function without running it: its bytecode, its source and what it is bound to.

``refused_by`` for the function a learner hands in, ``namespace_of`` for the
globals it runs with.
"""

from __future__ import annotations

import dis
import functools
import inspect
import types
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any

from bpcourse.delegation.behind import real_of
from bpcourse.delegation.loaded import most_precise
from bpcourse.delegation.refusals import Refusals, refusals_for_reading
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
    for index, instruction in enumerate(instructions):
        if isinstance(instruction.argval, types.CodeType):
            yield from _bytecode_uses(instruction.argval, imported)
        elif instruction.opname in _LOCAL_LOADS and instruction.argval in imported:
            attrs = _attributes(instructions, index + 1)
            yield None, f"{imported[instruction.argval]}.{attrs}" if attrs else imported[instruction.argval]
        elif instruction.opname in _GLOBAL_LOADS:
            yield instruction.argval, _attributes(instructions, index + 1)
        elif instruction.opname == "IMPORT_NAME":
            yield from _import_uses(instructions, index, imported)


def _attributes(instructions: Sequence[dis.Instruction], start: int) -> str:
    """The attributes loaded one after the other from ``start`` on, dotted (``""`` for none)."""
    attrs = []
    for following in instructions[start:]:
        if following.opname not in _ATTRIBUTE_LOADS:
            break
        attrs.append(following.argval)
    return ".".join(attrs)


def _import_uses(
    instructions: Sequence[dis.Instruction], index: int, imported: dict[str, str]
) -> Iterator[tuple[None, str]]:
    """What the import at ``index`` (an IMPORT_NAME) imports; where it stores it goes into ``imported``."""
    module = instructions[index].argval
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
    refusals = refusals_for_reading(refused)
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
        elif isinstance(value, types.FunctionType) and value.__globals__ is home:
            uses, reached = _read_function(value, refusals)
            found += uses
            pending += reached
        else:
            pending += _handed_on(value, home)
    return most_precise(found)


def _read_function(function: types.FunctionType, refusals: Refusals) -> tuple[list[str], list[Any]]:
    """The refused names a learner's function uses, and the values it reaches (to be read in turn)."""
    home = function.__globals__
    source = _source(function)
    found = [] if source is None else uses_in(source, refusals, None, home, function.__code__.co_freevars)
    reached: list[Any] = []
    dotted: list[str] = []  # what its imports, and the modules among its globals, lead to
    for name, attrs in _bytecode_uses(function.__code__):
        if name is None:
            dotted.append(attrs)
        elif name in home:
            target = real_of(home[name])
            if isinstance(target, types.ModuleType) and attrs:
                dotted.append(f"{target.__name__}.{attrs}")
            reached.append(target)
    found += (named for named in map(refusals.covering, dotted) if named is not None)
    reached += function.__defaults__ or ()
    reached += (function.__kwdefaults__ or {}).values()
    for cell in function.__closure__ or ():
        with suppress(ValueError):  # a cell not filled yet
            reached.append(cell.cell_contents)
    return found, reached


def _handed_on(value: Any, home: Mapping[str, Any]) -> list[Any]:
    """What a partial, a class of the learner's or a wrapper hands its work to."""
    if isinstance(value, functools.partial):
        return [value.func, *value.args, *value.keywords.values()]
    if isinstance(value, type):
        return [v for v in vars(value).values() if getattr(v, "__globals__", None) is home]
    inner = _inner(value)
    return [] if inner is None else [inner]


def _source(function: types.FunctionType) -> str | None:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):  # defined where no source is kept (exec of a string)
        return None


def namespace_of(function: Callable[..., Any]) -> dict[str, Any]:
    """The globals ``function`` runs with; {} when it has none.

    Found through partials, bound methods, decorators that keep ``__wrapped__``
    (``functools.lru_cache``), and an object's ``__call__``; for a class, those
    of its own methods (a learner's class is read method by method).
    """
    for _ in range(100):  # a chain of wrappers, not a cycle
        found = _inner(function)
        if found is None:
            break
        function = found
    if isinstance(function, type):  # a class runs with the globals of its own methods
        function = _first_method(function)
    found = getattr(function, "__globals__", None)
    return found if isinstance(found, dict) else {}


def _first_method(cls: type) -> Any:
    """The first function defined in ``cls`` itself (read from its dictionary), or None."""
    return next((v for v in vars(cls).values() if isinstance(v, types.FunctionType)), None)


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
