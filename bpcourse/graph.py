"""Graph traversal shared by the scalar and tensor engines.

Both engines store, in every node, the tuple of nodes it was computed from
(its *parents*). Backpropagation needs the nodes in an order where every node
comes after all of its parents (a topological order); the backward pass then
walks that order in reverse, so a node's gradient is complete before it is
passed on to its parents.

The traversal here is iterative: an explicit stack replaces recursion, so a
chain of a million nodes is as fine as a chain of ten.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

Node = TypeVar("Node", bound=Hashable)

_default_parents = attrgetter("parents")


def topological_order(root: Node, parents: Callable[[Node], Iterable[Node]] = _default_parents) -> list[Node]:
    """Every node reachable from ``root``, parents before children.

    ``parents(node)`` returns the nodes a node was computed from (default: its
    ``.parents`` attribute). ``root`` comes last. Each node appears once, even
    when it feeds several children (a fan-out, which is a merge on the way back).

    This is a depth-first post-order with an explicit stack: a node is emitted
    once every one of its parents has been emitted.
    """
    order: list[Node] = []
    visited = {id(root)}  # by identity: two distinct nodes are two nodes, even if they compare equal
    stack = [(root, iter(parents(root)))]
    push, pop, emit, mark = stack.append, stack.pop, order.append, visited.add
    while stack:
        node, pending = stack[-1]
        for parent in pending:
            if id(parent) not in visited:
                mark(id(parent))
                push((parent, iter(parents(parent))))
                break
        else:
            pop()
            emit(node)
    return order


def topological_order_problems(
    order: Sequence[Node],
    root: Node,
    parents: Callable[[Node], Iterable[Node]] = _default_parents,
) -> list[str]:
    """Why ``order`` is not a valid topological order of the graph under ``root``.

    Returns an empty list when it is valid: it holds exactly the nodes reachable
    from ``root``, each once, and every node comes after all of its parents.
    Nodes are compared by identity, so two nodes with equal values stay distinct.
    """
    problems: list[str] = []
    expected = {id(node) for node in topological_order(root, parents)}
    position: dict[int, int] = {}
    for index, node in enumerate(order):
        if id(node) in position:
            problems.append(f"a node appears twice (positions {position[id(node)]} and {index})")
        position[id(node)] = index
    missing = expected - position.keys()
    extra = position.keys() - expected
    if missing:
        problems.append(f"{len(missing)} node(s) reachable from the root are missing")
    if extra:
        problems.append(f"{len(extra)} node(s) are not part of the graph under the root")
    for index, node in enumerate(order):
        for parent in parents(node):
            where = position.get(id(parent))
            if where is not None and where > index:
                problems.append(f"the node at position {index} comes before its parent at position {where}")
                return problems
    return problems


def is_topological_order(
    order: Sequence[Node],
    root: Node,
    parents: Callable[[Node], Iterable[Node]] = _default_parents,
) -> bool:
    """True when ``order`` lists the graph under ``root`` with parents first."""
    return not topological_order_problems(order, root, parents)


def share(child: Any, slot: int) -> Any:
    """What ``child`` sends back to its parent number ``slot`` once ``child.grad`` is known.

    The child's gradient times its local derivative with respect to that parent:
    for a ``Value``, ``child.grad * child.partials[slot]``; for a ``Tensor``, the
    child's op applying its own backward rule to ``child.grad``.
    """
    if hasattr(child, "partials"):  # the scalar engine stores its local derivatives
        return child.grad * child.partials[slot]
    needs = tuple(parent.requires_grad for parent in child.parents)  # the tensor engine: the op's rule
    return child.op.vjp(child.grad, child.saved, needs)[slot]


def shares(node: Any, root: Any) -> list[tuple[Any, Any]]:
    """What ``node`` received from each of its uses in the graph under ``root``, after a backward pass.

    One ``(child, share)`` pair per use, in the order of ``topological_order(root)``
    (a child that uses ``node`` twice, as in ``x * x``, gives two pairs); see
    ``share``. The shares add up to ``node.grad``: the merge rule, one term per use.
    """
    found = []
    for child in topological_order(root):
        if child.grad is None:
            continue
        found += [(child, share(child, slot)) for slot, parent in enumerate(child.parents) if parent is node]
    return found
