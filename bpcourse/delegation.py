"""No marks for calling the course's engine: what a graded function may not use, and a guard.

Each exercise names the parts of ``bpcourse`` that would hand a learner its
answer (``Exercise.refuses``: dotted names of modules, which cover everything
in them, or of single objects). Two checks keep a graded function from using
them, and a refusal reads as one line, ``uses bpcourse.graph.topological_order:
write the order yourself``:

* ``refused_uses(source, refused)`` reads source code (``ast``): imports, and
  attribute chains from imported names, aliases and re-exports resolved
  (``from bpcourse import softmax`` is ``bpcourse.tensor.softmax``).
  ``refused_by(function, refused)`` applies it to a live function and to the
  learner's helpers it calls, reads their bytecode (which needs no source),
  and looks at what their globals, defaults and closures are bound to, by
  identity.
* ``refusing(namespace, refused)`` is the run-time guard around a call. While
  it is on, the learner's namespace (a notebook's globals, the ``__globals__``
  of every function defined there) and the import system do not offer the
  refused things: names bound to them, and ``sys.modules`` entries, are
  replaced by stand-ins that raise ``DelegationRefused`` once the refused thing
  is called or reached, and importing a refused module raises it too. The
  engine's own functions are never patched, so inputs made of engine pieces
  (``minigraph.Node``, ``testfunctions.JvpFunction``, ...) keep working, and
  a module stand-in answers the engine's own code as the real module would.
  Everything is put back on the way out.

``call_refusing`` does both around one call, for a process that runs the
learner's code (the class grader's worker).

This module imports only the standard library: it runs inside the grading
sandbox, where the exercise registry and the grader cannot be imported.

It raises the bar; it is not a sandbox. Python can always reach an object by
introspection (``__globals__`` of an input's methods, ``__closure__``,
``gc``, frames), a copy of the engine's source, or a reference hidden deeper
than one level inside a container; those are left to the course's rules on
plagiarism.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib
import importlib.abc
import importlib.util
import inspect
import sys
import textwrap
import types
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

__all__ = [
    "DelegationRefused",
    "call_refusing",
    "namespace_of",
    "refusal_line",
    "refused_by",
    "refused_name",
    "refused_uses",
    "refusing",
]

PACKAGE = "bpcourse"
# Taken once, when this module is imported (before a learner's code runs in the grader's worker):
# rebinding sys.modules or sys._getframe later would not fool the guard. The import system keeps
# using this same dictionary whatever sys.modules is rebound to.
_MODULES = sys.modules
_getframe = sys._getframe
# The guard's own machinery: a learner's code has no business with it while it is on.
_ITSELF = (__name__,)
# Values that are only data: nothing to refuse, and compared by identity they could match by accident.
_ATOMS = (int, float, complex, str, bytes, bool, type(None))
_CONTAINERS = (dict, list, tuple, set, frozenset)


class DelegationRefused(Exception):
    """A graded function reached a part of the course's engine that it must write itself.

    ``name`` is the dotted name of what it reached, ``instead`` what to do instead;
    ``str()`` is the line the learner reads (``refusal_line``).
    """

    def __init__(self, name: str, instead: str = "") -> None:
        super().__init__(name, instead)
        self.name = name
        self.instead = instead

    def __str__(self) -> str:
        return refusal_line(self.name, self.instead)


def refusal_line(name: str, instead: str = "") -> str:
    """The line a learner reads: ``"uses bpcourse.graph.topological_order: write the order yourself"``."""
    return f"uses {name}: {instead}" if instead else f"uses {name}"


def refused_name(report: str) -> str | None:
    """The dotted name in a refusal relayed as text (``"... DelegationRefused: uses a.b.c: ..."``).

    A learner's process reports an exception as text; this finds what was
    refused in it, so the line can be written again on the grader's side.
    """
    marker = "DelegationRefused: uses "
    start = report.find(marker)
    if start < 0:
        return None
    rest = report[start + len(marker) :]
    end = next((i for i, c in enumerate(rest) if not (c.isalnum() or c in "._")), len(rest))
    return rest[:end] or None


# -- what is refused ----------------------------------------------------------------------------
def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _module_of_namespace(namespace: Mapping[str, Any]) -> str | None:
    """The name of the loaded module whose globals ``namespace`` is, or None.

    Compared by identity with the module's own dictionary, so a namespace that
    merely calls itself ``bpcourse.x`` is not taken for it.
    """
    name = namespace.get("__name__")
    if not isinstance(name, str):
        return None
    module = _real(_MODULES.get(name))
    if isinstance(module, types.ModuleType) and vars(module) is namespace:
        return name
    return None


def _lookup(dotted: str) -> Any:
    """The loaded object ``dotted`` names (a module, or attributes from one), or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = _real(_MODULES.get(".".join(parts[:i])))
        if not isinstance(module, types.ModuleType):
            continue
        value: Any = module
        for attr in parts[i:]:
            try:
                value = _real(getattr(value, attr))
            except Exception:  # missing, or an attribute that raises: not resolved
                return None
        return value
    return None


def _is_module_name(name: str) -> bool:
    """True when ``name`` is a module, loaded or not (the module itself is not imported)."""
    if name in _MODULES:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:  # a parent that is not a package, or an import refused here
        return False


class _Refusals:
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
            if not _is_module_name(name):
                parent = name.rpartition(".")[0]
                if _in_package(parent) and parent not in _MODULES and _is_module_name(parent):
                    # The module of a refused object is loaded so that the object can be told by identity.
                    importlib.import_module(parent)
                target = _lookup(name)
                if target is not None and not isinstance(target, types.ModuleType):
                    self._refuse(target, name)
                    continue
            self.modules.append(name)
        for module_name, module in list(_MODULES.items()):
            module = _real(module) if self.covers(module_name) else None
            if isinstance(module, types.ModuleType):
                for attr, value in list(vars(module).items()):
                    if isinstance(value, _CONTAINERS) and not attr.startswith("__") and _holds_objects(value):
                        self._refuse(value, f"{module_name}.{attr}")

    def _refuse(self, value: Any, name: str) -> None:
        self.objects.setdefault(id(value), name)
        self._kept.append(value)

    def covers(self, module_name: str) -> bool:
        """True when the module ``module_name`` is refused (itself, or a package above it)."""
        return any(_under(module_name, m) for m in self.modules)

    def name_of(self, value: Any) -> str | None:
        """The dotted name of the refused thing ``value`` is, holds or is an instance of; else None."""
        value = _real(value)
        if isinstance(value, types.ModuleType):
            name = getattr(value, "__name__", None)
            return name if isinstance(name, str) and self.covers(name) else None
        named = self.objects.get(id(value))
        if named is not None:
            return named
        if isinstance(value, _ATOMS):
            return None
        if isinstance(value, types.FunctionType):
            module = _module_of_namespace(value.__globals__)
            return f"{module}.{value.__qualname__}" if module and self.covers(module) else None
        if isinstance(value, types.MethodType):
            return self.name_of(value.__func__) or self.name_of(value.__self__)
        if isinstance(value, staticmethod | classmethod):
            return self.name_of(value.__func__)
        if isinstance(value, functools.partial):
            inner = (value.func, *value.args, *value.keywords.values())
            return next((n for n in map(self.name_of, inner) if n is not None), None)
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
        value = _real(value)
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
        for item in list(items):
            named = self.name_of(item)
            if named is not None:
                return named
        return None

    def _class_name(self, cls: type) -> str | None:
        """The refused class ``cls`` is or derives from, or None."""
        if id(cls) not in self._classes:
            found = None
            for base in getattr(cls, "__mro__", (cls,)):
                named = self.objects.get(id(base))
                if named is not None:
                    found = named
                    break
                module = self._defining_module(base)
                if module is not None:
                    found = f"{module}.{base.__qualname__}"
                    break
            self._classes[id(cls)] = found
            self._kept.append(cls)
        return self._classes[id(cls)]

    def _defining_module(self, cls: type) -> str | None:
        module = getattr(cls, "__module__", None)
        if isinstance(module, str) and self.covers(module):
            return module
        # __module__ can be reassigned; the globals of the class's own functions cannot.
        for value in vars(cls).values():
            if isinstance(value, types.FunctionType):
                module = _module_of_namespace(value.__globals__)
                if module is not None and self.covers(module):
                    return module
        return None

    def covering(self, dotted: str) -> str | None:
        """The refused name that the dotted name ``dotted`` (as written in source) reaches, or None.

        ``bpcourse.tensor.Tensor.zeros`` is reported as ``bpcourse.tensor.Tensor``;
        a re-export (``bpcourse.softmax``) as the object it is (``bpcourse.tensor.softmax``).
        """
        for module in self.modules:
            if _under(dotted, module):
                rest = dotted[len(module) + 1 :].split(".")[0]
                return f"{module}.{rest}" if rest else module
        for name in self.objects.values():
            if _under(dotted, name):
                return name
        if not _in_package(dotted):
            return None
        parts = dotted.split(".")
        value: Any = None
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if _in_package(prefix) and prefix not in _MODULES and _is_module_name(prefix):
                try:
                    importlib.import_module(prefix)
                except Exception:  # a module that cannot be imported here names nothing
                    continue
            value = _real(_MODULES.get(prefix))
            if isinstance(value, types.ModuleType):
                parts = parts[i:]
                break
        else:
            return None
        for attr in (None, *parts):
            if attr is not None:
                try:
                    value = _real(getattr(value, attr))
                except Exception:
                    return None
            named = self.name_of(value)
            if named is not None:
                return named
        return None


def _holds_objects(container: Any) -> bool:
    """True when a container holds something other than numbers and strings (engine objects)."""
    items = container.values() if isinstance(container, dict) else container
    return any(not isinstance(item, _ATOMS) for item in items)


# -- reading source -----------------------------------------------------------------------------
Scope = dict[str, Any]  # name -> dotted target of an import, None (a plain local), or a def node


def _import_targets(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None, str]]:
    """(bound name, dotted target or None, dotted name imported) for each name an import binds."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name, alias.name
            else:
                top = alias.name.split(".")[0]
                yield top, top, alias.name
        return
    base = node.module or ""
    for alias in node.names:
        if node.level:  # a relative import: a learner's own package, not the engine
            yield alias.asname or alias.name, None, ""
        elif alias.name != "*":
            yield alias.asname or alias.name, f"{base}.{alias.name}", f"{base}.{alias.name}"


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return names + [x.arg for x in (a.vararg, a.kwarg) if x is not None]


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _bindings(body: Sequence[ast.AST], scope: Scope) -> Scope:
    """The names ``body`` binds in its own scope, in source order (the last binding wins).

    Nested functions and classes bind their name here, their body elsewhere.
    """
    declared_global: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for child in (*node.decorator_list, *getattr(node, "bases", ())):
                visit(child)
            scope[node.name] = node
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            for bound, target, _ in _import_targets(node):
                scope[bound] = target
            return
        if isinstance(node, ast.Global | ast.Nonlocal):
            declared_global.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            scope[node.id] = None
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope[node.name] = None
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in body:
        visit(statement)
    for name in declared_global:
        scope.pop(name, None)
    return scope


class _Uses(ast.NodeVisitor):
    """The refused names a region of source reaches.

    Names are resolved through the scopes of the source (imports and aliases),
    then through ``namespace`` (the globals a live function runs with), where
    only modules are followed: a name bound to a refused object is found by
    identity (``refused_by``), which is exact where a static reading is not.
    """

    def __init__(self, refusals: _Refusals, module: Scope, namespace: Mapping[str, Any] | None) -> None:
        self.refusals = refusals
        self.scopes: list[Scope] = [module]
        self.namespace = namespace
        self.found: list[str] = []
        self.helpers: list[ast.AST] = []  # the source's own top-level functions this region calls

    # -- resolving names -------------------------------------------------------------------
    def _root(self, name: str) -> str | None:
        for depth in range(len(self.scopes) - 1, -1, -1):
            if name in self.scopes[depth]:
                target = self.scopes[depth][name]
                if isinstance(target, ast.AST):
                    if depth == 0:
                        self.helpers.append(target)
                    return None
                return target
        if self.namespace is not None and name in self.namespace:
            value = _real(self.namespace[name])
            if isinstance(value, types.ModuleType):
                return getattr(value, "__name__", None)
        return None

    def _builtin(self, node: ast.AST, name: str) -> bool:
        """True when ``node`` is the builtin ``name`` (not shadowed by the source or the namespace)."""
        if not (isinstance(node, ast.Name) and node.id == name):
            return False
        if any(name in scope for scope in self.scopes):
            return False
        return self.namespace is None or name not in self.namespace

    def _getattr(self, node: ast.AST) -> bool:
        """True for ``getattr(obj, "name", ...)`` with the name written out."""
        return (
            isinstance(node, ast.Call)
            and self._builtin(node.func, "getattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        )

    def _import(self, node: ast.AST) -> tuple[str, str] | None:
        """For ``__import__("a.b", ...)`` or ``importlib.import_module("a.b")``: (imported, value)."""
        if not isinstance(node, ast.Call) or not node.args:
            return None
        first = node.args[0]
        if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
            return None
        name = first.value
        if self._builtin(node.func, "__import__"):
            fromlist = node.args[3] if len(node.args) > 3 else None
            fromlist = next((k.value for k in node.keywords if k.arg == "fromlist"), fromlist)
            empty = fromlist is None or (isinstance(fromlist, ast.List | ast.Tuple) and not fromlist.elts)
            return name, name.split(".")[0] if empty else name  # without a fromlist, the top package
        if self._dotted(node.func) == "importlib.import_module":
            return name, name
        return None

    def _dotted(self, node: ast.AST) -> str | None:
        """The dotted name an expression stands for (``bp.graph.topological_order``), or None."""
        if isinstance(node, ast.Name):
            return self._root(node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if self._getattr(node):
            assert isinstance(node, ast.Call)
            base = self._dotted(node.args[0])
            return f"{base}.{node.args[1].value}" if base else None  # type: ignore[attr-defined]
        imported = self._import(node)
        return imported[1] if imported else None

    def _record(self, dotted: str | None) -> None:
        if dotted:
            named = self.refusals.covering(dotted)
            if named is not None and named not in self.found:
                self.found.append(named)

    def _rest_of_chain(self, node: ast.AST) -> Iterator[ast.AST]:
        """The parts of a resolved chain that are not the chain itself (further call arguments)."""
        while True:
            if isinstance(node, ast.Attribute):
                node = node.value
            elif self._getattr(node):
                assert isinstance(node, ast.Call)
                yield from node.args[2:]
                node = node.args[0]
            else:
                if isinstance(node, ast.Call):
                    yield from node.args[1:]
                    yield from (k.value for k in node.keywords)
                return

    # -- walking ---------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._record(self._root(node.id))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted is None:
            self.generic_visit(node)
            return
        self._record(dotted)
        for part in self._rest_of_chain(node):
            self.visit(part)

    def visit_Call(self, node: ast.Call) -> None:
        imported = self._import(node)
        if imported is not None:
            self._record(imported[0])  # importing a refused module is using it
        elif self._getattr(node):
            dotted = self._dotted(node)
            if dotted is not None:
                self._record(dotted)
                for part in self._rest_of_chain(node):
                    self.visit(part)
                return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for _, _, imported in _import_targets(node):
            self._record(imported)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module and any(alias.name == "*" for alias in node.names):
            self._record(node.module)
        for _, _, imported in _import_targets(node):
            self._record(imported)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for expr in (*getattr(node, "decorator_list", ()), *node.args.defaults, *node.args.kw_defaults):
            if expr is not None:
                self.visit(expr)
        scope: Scope = dict.fromkeys(_parameters(node))
        body = node.body if isinstance(node.body, list) else [node.body]
        self.scopes.append(_bindings(body, scope))
        for statement in body:
            self.visit(statement)
        self.scopes.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.visit(expr)
        self.scopes.append(_bindings(node.body, {}))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()


def _parse(source: str) -> ast.Module | None:
    """The module ``source`` parses to, IPython's syntax (``%time``, ``!ls``, ``x?``) made Python first."""
    source = textwrap.dedent(source)
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:  # imported here: the grading sandbox never reads source, and IPython is slow to import
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _uses_in(
    source: str,
    refusals: _Refusals,
    function: str | None,
    namespace: Mapping[str, Any] | None,
    free: Sequence[str] = (),
) -> list[str]:
    tree = _parse(source)
    if tree is None:
        return []
    module = _bindings(tree.body, dict.fromkeys(free))
    uses = _Uses(refusals, module, namespace)
    if function is None:
        regions: list[ast.AST] = list(tree.body)
    else:
        # The last top-level statement that binds the name is what a run of the cell leaves bound:
        # a def, an assignment (``softmax = bp.softmax``), or an import.
        defined = [n for n in tree.body if function in _bindings([n], {})]
        regions = defined[-1:]
    seen: set[int] = set()
    while regions:
        region = regions.pop()
        if id(region) in seen:
            continue
        seen.add(id(region))
        uses.visit(region)
        regions.extend(uses.helpers)
        uses.helpers = []
    return uses.found


def refused_uses(
    source: str,
    refused: Sequence[str],
    *,
    function: str | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> list[str]:
    """The refused names that ``source`` imports or uses, each once, in the order found.

    Aliases are resolved (``import bpcourse as bp; bp.graph.topological_order``,
    ``from bpcourse.graph import topological_order as t``), and so are the
    package's re-exports (``from bpcourse import softmax`` is
    ``bpcourse.tensor.softmax``). A refused module covers everything in it, and
    is reported with the name reached in it (``bpcourse.tensor.Tensor``).

    ``function``: read only the definition of that function (the last
    top-level statement binding it: a def, an assignment, an import) and the
    source's own functions it calls, with the source's top-level imports as
    aliases; an import counts as a use only inside what is read. Without
    it, the whole source is read. ``namespace``: the globals the code runs
    with, to resolve names the source does not bind (``bp`` imported in
    another cell). Source that does not parse gives an empty list.
    """
    if not refused:
        return []
    if PACKAGE not in _MODULES:
        importlib.import_module(PACKAGE)  # its re-exports are resolved by identity
    return _most_precise(_uses_in(source, _Refusals(refused), function, namespace))


# -- reading a live function --------------------------------------------------------------------
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
    if PACKAGE not in _MODULES:
        importlib.import_module(PACKAGE)
    refusals = _Refusals(refused)
    found: list[str] = []
    home = namespace_of(function)
    pending: deque[Any] = deque([function])  # first in, first out: names come in the order of the code
    seen: set[int] = set()
    while pending:
        value = _real(pending.popleft())
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
                found.extend(_uses_in(source, refusals, None, home, value.__code__.co_freevars))
            for name, attrs in _bytecode_uses(value.__code__):
                if name is None:
                    found.append(refusals.covering(attrs) or "")
                elif name in home:
                    target = _real(home[name])
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
    return _most_precise(found)


def _most_precise(names: Sequence[str]) -> list[str]:
    """``names`` without blanks and repeats, and without a module when a name inside it is there too."""
    kept: list[str] = []
    for name in names:
        if name and name not in kept and not any(_under(other, name) for other in names if other != name):
            kept.append(name)
    return kept


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


# -- stand-ins ------------------------------------------------------------------------------------
class _StandIn:
    """What the guard puts in place of a refused thing (or of a module that leads to one)."""

    __slots__ = ()


@dataclass(eq=False)
class _Guard:
    """One ``refusing`` block: what it refuses, and whether it is still on."""

    refusals: _Refusals
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
                stand_in = _ModuleStandIn.make(module, self, refused=True)
            elif _in_package(name) and self.reaches(module):
                stand_in = _ModuleStandIn.make(module, self, refused=False)
            self.module_stand_ins[id(module)] = stand_in
        return self.module_stand_ins[id(module)]

    def reaches(self, module: types.ModuleType) -> bool:
        """True when a refused thing is an attribute of ``module``, or of a course module it holds."""
        name = module.__name__
        if name not in self._reaching:
            self._reaching[name] = False  # while this one is looked at (modules that import each other)
            for attr, value in list(vars(module).items()):
                if attr.startswith("__"):
                    continue
                value = _real(value)
                if isinstance(value, types.ModuleType):
                    inner = getattr(value, "__name__", "")
                    if self.refusals.covers(inner) or (_in_package(inner) and self.reaches(value)):
                        self._reaching[name] = True
                        break
                elif self.refusals.name_of(value) is not None:
                    self._reaching[name] = True
                    break
        return self._reaching[name]

    def offered(self, value: Any) -> Any:
        """What a learner gets for ``value`` read through a module stand-in."""
        real = _real(value)
        if isinstance(real, types.ModuleType):
            return self.stand_in_for_module(real) or real
        named = self.refusals.name_of(real)
        if named is not None:
            self.refuse(named)
        return value


@dataclass(eq=False)
class _Entry:
    real: Any
    guard: _Guard
    name: str  # what is refused: the object's name, or the module's
    refused: bool = True  # for a module: refused itself (True), or only what leads on (False)


def _registry() -> tuple[Callable[[_StandIn, _Entry], None], Callable[[_StandIn], _Entry]]:
    # Kept in a closure, not as a module attribute: what stands behind a stand-in is not one
    # attribute away from a learner's code.
    entries: weakref.WeakKeyDictionary[_StandIn, _Entry] = weakref.WeakKeyDictionary()

    def remember(stand_in: _StandIn, entry: _Entry) -> None:
        entries[stand_in] = entry

    def entry_of(stand_in: _StandIn) -> _Entry:
        return entries[stand_in]

    return remember, entry_of


_remember, _entry_of = _registry()


def _real(value: Any) -> Any:
    """The object behind a stand-in (``value`` itself when it is not one)."""
    if issubclass(type(value), _StandIn):
        return _entry_of(value).real
    return value


def _importlib_namespaces() -> set[int]:
    names = ("importlib", "_frozen_importlib", "_frozen_importlib_external")
    return {id(vars(_MODULES[n])) for n in names if n in _MODULES}


def _asked_by_engine(depth: int) -> bool:
    """True when the code asking (``depth`` frames up, past the import machinery) is the course's own.

    Engine code that an input runs, or an import inside the engine, gets the
    real module; a learner's code gets the refusal. Code is told by the
    globals it runs with: those of a loaded ``bpcourse`` module, compared by
    identity.
    """
    machinery = _importlib_namespaces()
    frame: types.FrameType | None = _getframe(depth + 1)
    while frame is not None and id(frame.f_globals) in machinery:
        frame = frame.f_back
    if frame is None:
        return False
    module = _module_of_namespace(frame.f_globals)
    return module is not None and _in_package(module) and not any(_under(module, m) for m in _ITSELF)


class _RefusedObject(_StandIn):
    """Stands for a refused function, class or value: raises when it is called or reached.

    After its ``refusing`` block it behaves as the object it stands for, so a
    reference the learner's code kept keeps working outside the graded call.
    """

    __slots__ = ("__weakref__",)

    @staticmethod
    def make(real: Any, name: str, guard: _Guard) -> _RefusedObject:
        stand_in = _RefusedObject()
        _remember(stand_in, _Entry(real, guard, name))
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
        entry = _entry_of(self)
        return f"<refused while grading: {entry.name}>" if entry.guard.active else repr(entry.real)


def _forwarding(operator: str) -> Callable[..., Any]:
    def method(self: _RefusedObject, *args: Any, **kwargs: Any) -> Any:
        return getattr(_unless_refused(self), operator)(*args, **kwargs)

    method.__name__ = operator
    return method


# Arithmetic on a refused value (a Tensor left in the namespace) is reaching it too.
for _operator in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __matmul__ "
    "__rmatmul__ __pow__ __rpow__ __neg__ __float__ __int__ __array__"
).split():
    setattr(_RefusedObject, _operator, _forwarding(_operator))
del _operator


def _unless_refused(stand_in: _StandIn) -> Any:
    entry = _entry_of(stand_in)
    if entry.guard.active:
        entry.guard.refuse(entry.name)
    return entry.real


_KEPT_DUNDERS = ("__file__", "__path__", "__package__", "__spec__", "__loader__")


class _ModuleStandIn(types.ModuleType, _StandIn):
    """Stands for a module in ``sys.modules`` and in the learner's namespace.

    A refused module refuses every attribute; another module of the course
    refuses only the refused things it holds (``minigraph.to_values``) and
    hands out stand-ins for the modules it holds. Double-underscore names, and
    any attribute the engine's own code asks for, come from the real module.
    """

    @staticmethod
    def make(module: types.ModuleType, guard: _Guard, refused: bool) -> _ModuleStandIn:
        stand_in = _ModuleStandIn(module.__name__, module.__doc__)
        # Straight into its own dictionary: setting an attribute goes to the real module.
        vars(stand_in).update({k: v for k, v in vars(module).items() if k in _KEPT_DUNDERS})
        _remember(stand_in, _Entry(module, guard, module.__name__, refused))
        return stand_in

    def __getattr__(self, name: str) -> Any:
        entry = _entry_of(self)
        if (name.startswith("__") and name.endswith("__")) or not entry.guard.active or _asked_by_engine(1):
            return getattr(entry.real, name)
        if entry.refused:
            entry.guard.refuse(f"{entry.name}.{name}")
        return entry.guard.offered(getattr(entry.real, name))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_entry_of(self).real, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(_entry_of(self).real, name)

    def __dir__(self) -> list[str]:
        return dir(_entry_of(self).real)

    def __repr__(self) -> str:
        return repr(_entry_of(self).real)


class _RefusedImports(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` while a guard is on: refuses to load a refused module not loaded yet."""

    def __init__(self, prefixes: Sequence[str], instead: str) -> None:
        # Only names: the finder is visible in sys.meta_path, so it holds nothing worth reaching.
        self.prefixes = tuple(prefixes)
        self.instead = instead

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if any(_under(fullname, p) for p in self.prefixes) and not _asked_by_engine(1):
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
    guard = _Guard(_Refusals((*refused, *_ITSELF)), instead)

    def module_stand_in(value: Any) -> Any:
        real = _real(value)
        if isinstance(real, types.ModuleType) and _in_package(getattr(real, "__name__", "")):
            return guard.stand_in_for_module(real)
        return None

    def name_stand_in(value: Any) -> Any:
        real = _real(value)
        if isinstance(real, types.ModuleType):
            return guard.stand_in_for_module(real)
        named = guard.refusals.held_in(real, namespace)
        return _RefusedObject.make(real, named, guard) if named is not None else None

    # The import system's own dictionary, and sys.modules if the learner's code rebound it.
    registries = [_MODULES] if sys.modules is _MODULES else [_MODULES, sys.modules]
    swaps = [(registry, _swaps(registry, module_stand_in)) for registry in registries]
    if not _in_package(_module_of_namespace(namespace) or ""):
        swaps.append((namespace, _swaps(namespace, name_stand_in)))
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
) -> Any:
    """``function(*args)`` with the refused things out of reach; raises ``DelegationRefused`` if used.

    First ``refused_by`` reads the function (and the learner's helpers it
    calls); then the call runs inside ``refusing`` on the function's own
    globals and, when it is another dictionary, on ``namespace`` too (the
    learner's: IPython's ``user_ns``).
    """
    found = refused_by(function, refused)
    if found:
        raise DelegationRefused(found[0], instead)
    own = namespace_of(function)
    with ExitStack() as guards:
        guards.enter_context(refusing(own, refused, instead))
        if namespace is not None and namespace is not own:
            guards.enter_context(refusing(namespace, refused, instead))
        return function(*args)
