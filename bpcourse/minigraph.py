"""A bare node type for building a backward pass by hand.

In notebook 02 the learner writes the two pieces of an engine that matter
most, the traversal and the backward loop, over this ``Node``. A node stores
its forward ``value``, its ``grad`` (0.0 until a backward pass fills it), the
nodes it was computed from (``parents``) and, aligned with them, the local
derivatives d(node)/d(parent) (``local_grads``), computed once when the node
is made. Nothing else: no backward method, so the learner supplies it.

The grader uses the same type: ``random_graph`` draws graphs in which nodes
feed several children (so gradients must be summed), ``chain`` builds a deep
one, and ``reference_grads`` rebuilds a graph with the course engine
(``bpcourse.scalar.Value``) and returns the gradients its backward pass finds.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from bpcourse.graph import topological_order
from bpcourse.scalar import Value


class Node:
    """One scalar of a computation graph.

    ``local_grads[i]`` is d(this node)/d(``parents[i]``); a node that uses the
    same parent twice (``mul(a, a)``) lists it twice, with one local
    derivative per use.
    """

    __slots__ = ("value", "grad", "parents", "local_grads", "op", "label")

    def __init__(
        self,
        value: float,
        parents: tuple[Node, ...] = (),
        local_grads: tuple[float, ...] = (),
        op: str = "",
        label: str = "",
    ) -> None:
        self.value = float(value)
        self.grad = 0.0
        self.parents = parents
        self.local_grads = local_grads
        self.op = op
        self.label = label

    def __repr__(self) -> str:
        name = self.label or "?"
        if self.parents:
            name += f" = {self.op}({', '.join(p.label or '?' for p in self.parents)})"
        return f"Node({name}, value={self.value:.4g}, grad={self.grad:.4g})"


# -- making nodes: the forward value and the local derivatives together -------------------
def leaf(value: float, label: str = "") -> Node:
    """An input: no parents."""
    return Node(value, label=label)


def add(a: Node, b: Node, label: str = "") -> Node:
    """a + b;  local derivatives 1 and 1."""
    return Node(a.value + b.value, (a, b), (1.0, 1.0), "add", label)


def sub(a: Node, b: Node, label: str = "") -> Node:
    """a - b;  local derivatives 1 and -1."""
    return Node(a.value - b.value, (a, b), (1.0, -1.0), "sub", label)


def mul(a: Node, b: Node, label: str = "") -> Node:
    """a * b;  local derivatives b and a (each input gets the other one)."""
    return Node(a.value * b.value, (a, b), (b.value, a.value), "mul", label)


def square(a: Node, label: str = "") -> Node:
    """a²;  local derivative 2a."""
    return Node(a.value * a.value, (a,), (2.0 * a.value,), "square", label)


def tanh(a: Node, label: str = "") -> Node:
    """tanh(a);  local derivative 1 - tanh(a)²."""
    out = math.tanh(a.value)
    return Node(out, (a,), (1.0 - out * out,), "tanh", label)


_UNARY = {"square": square, "tanh": tanh}
_BINARY = {"add": add, "sub": sub, "mul": mul}


# -- graphs for practice and for grading ---------------------------------------------------
def uses(nodes: list[Node]) -> Counter[int]:
    """How many times each node (by ``id``) is used as a parent within ``nodes``."""
    return Counter(id(parent) for node in nodes for parent in node.parents)


def merges(nodes: list[Node]) -> list[Node]:
    """The nodes used more than once: their gradient is a sum of contributions."""
    count = uses(nodes)
    return [node for node in nodes if count[id(node)] > 1]


def random_graph(
    rng: np.random.Generator, n_leaves: int = 4, n_ops: int = 12, *, fan_out: bool = True
) -> tuple[Node, list[Node]]:
    """A random graph and its nodes, parents before children (root last).

    With ``fan_out`` (the default) nodes may feed several children, and
    sometimes the same node is both inputs of one op (``mul(a, a)``); the graph
    returned always has at least one such merge. With ``fan_out=False`` each
    node is used once: the graph is a tree, where no gradient is ever summed.

    Each op's value is kept between about 0.2 and 2.5 in size (an op whose
    value falls outside is drawn again), so no local derivative vanishes by
    accident and nothing overflows. Nodes that no op used are added together
    at the end, so every node is reachable from the root.
    """
    while True:
        root, nodes = _draw_graph(rng, n_leaves, n_ops, fan_out)
        if not fan_out or merges(nodes):
            return root, nodes


def _draw_graph(
    rng: np.random.Generator, n_leaves: int, n_ops: int, fan_out: bool
) -> tuple[Node, list[Node]]:
    signs = rng.choice([-1.0, 1.0], size=n_leaves)
    nodes = [leaf(float(s * rng.uniform(0.3, 1.2)), f"x{i}") for i, s in enumerate(signs)]
    unused = list(nodes)  # nodes no op has used yet

    def pick(among: list[Node]) -> Node:
        # Mostly one of the latest nodes, so the graph grows deep as well as wide.
        low = max(0, len(among) - 5) if rng.random() < 0.7 else 0
        return among[int(rng.integers(low, len(among)))]

    for k in range(n_ops):
        for _attempt in range(20):
            # Unused nodes first (fewer loose ends), any node when fan-out is allowed.
            pool = nodes if fan_out and rng.random() < 0.5 else unused
            name = str(rng.choice(list(_BINARY) + list(_UNARY)))
            a = pick(pool)
            if name in _UNARY:
                node = _UNARY[name](a, f"n{k}")
            else:
                others = [p for p in pool if p is not a]
                if not others:
                    continue
                b = a if fan_out and rng.random() < 0.15 else pick(others)
                node = _BINARY[name](a, b, f"n{k}")
            if 0.2 <= abs(node.value) <= 2.5:
                break
        else:
            node = tanh(a, f"n{k}")
        nodes.append(node)
        unused = [p for p in unused if all(p is not q for q in node.parents)] + [node]
    k = n_ops
    while len(unused) > 1:
        node = add(unused[0], unused[1], f"n{k}")
        nodes.append(node)
        unused = [*unused[2:], node]
        k += 1
    return unused[0], nodes


def chain(length: int, start: float = 0.8) -> tuple[Node, list[Node]]:
    """A chain ``x -> tanh -> tanh -> ...`` of ``length`` nodes in all: the deepest graph there is."""
    nodes = [leaf(start, "x")]
    for k in range(1, length):
        nodes.append(tanh(nodes[-1], f"n{k}"))
    return nodes[-1], nodes


def practice_graph(x: float, y: float) -> tuple[Node, list[Node]]:
    """The notebook's practice problem: a = x + y, b = x·a, L = b² (x feeds two nodes)."""
    xn, yn = leaf(x, "x"), leaf(y, "y")
    a = add(xn, yn, "a")
    b = mul(xn, a, "b")
    loss = square(b, "L")
    return loss, [xn, yn, a, b, loss]


# -- the engine's answer -------------------------------------------------------------------
def to_values(root: Node) -> dict[int, Value]:
    """The same graph built with the course engine: ``id(node) -> Value``, labels kept."""
    values: dict[int, Value] = {}
    for node in topological_order(root):
        args = [values[id(p)] for p in node.parents]
        if not node.parents:
            v = Value(node.value, node.label)
        elif node.op == "add":
            v = args[0] + args[1]
        elif node.op == "sub":
            v = args[0] - args[1]
        elif node.op == "mul":
            v = args[0] * args[1]
        elif node.op == "square":
            v = args[0] ** 2
        elif node.op == "tanh":
            v = args[0].tanh()
        else:
            raise ValueError(f"unknown op {node.op!r} in node {node!r}")
        v.label = node.label
        values[id(node)] = v
    return values


def reference_grads(root: Node, nodes: list[Node]) -> np.ndarray:
    """dL/d(node) for each of ``nodes`` (L = root), from ``Value.backward()``."""
    values = to_values(root)
    values[id(root)].backward()
    return np.array([values[id(node)].grad for node in nodes])


def collect_grads(nodes: list[Node]) -> np.ndarray:
    """The ``.grad`` of each node, in the order given, as a float array.

    Raises TypeError, naming the node, when a ``.grad`` is not a real number.
    """
    grads = np.empty(len(nodes))
    for i, node in enumerate(nodes):
        g = node.grad
        if isinstance(g, np.ndarray) and g.size == 1:
            g = g.reshape(())[()]
        if isinstance(g, bool) or not isinstance(g, int | float | np.floating | np.integer):
            raise TypeError(f"{node.label or 'a node'}.grad is a {type(g).__name__}, not a number")
        grads[i] = float(g)
    return grads
