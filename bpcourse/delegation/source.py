"""Reading source code (``ast``): the refused names it imports or uses (``refused_uses``)."""

from __future__ import annotations

import ast
import textwrap
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bpcourse.delegation.behind import real_of
from bpcourse.delegation.loaded import most_precise
from bpcourse.delegation.refusals import Refusals, refusals_for_reading
from bpcourse.syntax import parse

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

    def __init__(self, refusals: Refusals, module: Scope, namespace: Mapping[str, Any] | None) -> None:
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
            value = real_of(self.namespace[name])
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

    def _chain(self, node: ast.AST) -> bool:
        """Records the dotted name ``node`` stands for, then reads the rest; False when it stands for none."""
        dotted = self._dotted(node)
        if dotted is None:
            return False
        self._record(dotted)
        for part in self._rest_of_chain(node):
            self.visit(part)
        return True

    def _in_scope(self, body: Sequence[ast.AST], scope: Scope) -> None:
        """Reads ``body`` in a scope of its own, which starts as ``scope``."""
        self.scopes.append(_bindings(body, scope))
        for statement in body:
            self.visit(statement)
        self.scopes.pop()

    # -- walking ---------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._record(self._root(node.id))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not self._chain(node):
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        imported = self._import(node)
        if imported is not None:
            self._record(imported[0])  # importing a refused module is using it
        elif self._getattr(node) and self._chain(node):
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(alias.name == "*" for alias in node.names):
                self._record(node.module)
        for _, _, imported in _import_targets(node):
            self._record(imported)

    visit_ImportFrom = visit_Import

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for expr in (*getattr(node, "decorator_list", ()), *node.args.defaults, *node.args.kw_defaults):
            if expr is not None:
                self.visit(expr)
        body = node.body if isinstance(node.body, list) else [node.body]
        self._in_scope(body, dict.fromkeys(_parameters(node)))

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.visit(expr)
        self._in_scope(node.body, {})


def _parse(source: str) -> ast.Module | None:
    """The module ``source`` parses to, IPython's syntax (``%time``, ``!ls``, ``x?``) made Python first."""
    source = textwrap.dedent(source)
    try:
        return parse(source)
    except SyntaxError:
        pass
    try:  # imported only when needed: IPython is slow to import where it is not loaded already
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return parse(source)
    except SyntaxError:
        return None


def uses_in(
    source: str,
    refusals: Refusals,
    function: str | None,
    namespace: Mapping[str, Any] | None,
    free: Sequence[str] = (),
) -> list[str]:
    """The refused names ``source`` uses, each once: all of it, or ``function`` and the helpers it calls.

    ``free``: names the source uses but does not bind (a nested function's free variables).
    """
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
    return most_precise(uses_in(source, refusals_for_reading(refused), function, namespace))
