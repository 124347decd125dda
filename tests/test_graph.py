"""Property tests of the graph traversal (``bpcourse.graph``).

Graphs are random DAGs with fan-out (a node feeding several children) and
repeated parents (``x * x``). Validity is judged against the definition, written
out independently in ``satisfies_definition``, not only by the library's own
checker.
"""

from __future__ import annotations

from collections.abc import Sequence

import hypothesis.strategies as st
import numpy as np
from hypothesis import HealthCheck, given, settings

from bpcourse.graph import is_topological_order, shares, topological_order, topological_order_problems
from bpcourse.scalar import Value
from bpcourse.scalar import topological_order as scalar_topological_order

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Node:
    """A bare graph node: a name and the nodes it was computed from."""

    __slots__ = ("name", "parents")

    def __init__(self, name: int, parents: Sequence[Node] = ()) -> None:
        self.name = name
        self.parents = tuple(parents)

    def __repr__(self) -> str:
        return f"Node({self.name})"


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 25) -> list[Node]:
    """Nodes of a random DAG in creation order; the last one is the root.

    Each node draws up to three parents among earlier nodes (repeats allowed),
    so fan-out is common. Half the time the root joins every node that has no
    child yet, so the whole graph hangs under it.
    """
    count = draw(st.integers(1, max_nodes))
    nodes: list[Node] = []
    for i in range(count):
        picks = draw(st.lists(st.integers(0, i - 1), max_size=3)) if i else []
        nodes.append(Node(i, [nodes[j] for j in picks]))
    if count > 1 and draw(st.booleans()):
        used = {id(p) for n in nodes for p in n.parents}
        nodes.append(Node(count, [n for n in nodes if id(n) not in used]))
    return nodes


def reachable(root: Node) -> set[int]:
    seen, todo = {id(root)}, [root]
    while todo:
        for parent in todo.pop().parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                todo.append(parent)
    return seen


def satisfies_definition(order: Sequence[Node], root: Node) -> bool:
    """Exactly the nodes under ``root``, each once, every one after all of its parents."""
    position = {id(n): i for i, n in enumerate(order)}
    if len(position) != len(order) or set(position) != reachable(root):
        return False
    return all(position[id(p)] < position[id(n)] for n in order for p in n.parents)


@SETTINGS
@given(dags())
def test_order_is_valid(nodes: list[Node]) -> None:
    root = nodes[-1]
    order = topological_order(root)
    assert satisfies_definition(order, root)
    assert order[-1] is root
    assert topological_order_problems(order, root) == []
    assert is_topological_order(order, root)


@SETTINGS
@given(dags())
def test_order_with_a_parents_function(nodes: list[Node]) -> None:
    """The same traversal over plain integers, with parents given by a function."""
    edges = {n.name: [p.name for p in n.parents] for n in nodes}
    root = nodes[-1].name
    order = topological_order(root, parents=edges.__getitem__)
    assert order[-1] == root
    assert len(order) == len(set(order)) == len(reachable(nodes[-1]))
    position = {name: i for i, name in enumerate(order)}
    assert all(position[p] < position[n] for n in order for p in edges[n])
    assert is_topological_order(order, root, parents=edges.__getitem__)


@SETTINGS
@given(dags())
def test_reversed_order_is_invalid(nodes: list[Node]) -> None:
    root = nodes[-1]
    order = topological_order(root)
    backwards = order[::-1]
    if len(order) > 1:  # the root has a parent, so there is an edge to violate
        assert not is_topological_order(backwards, root)
        problems = topological_order_problems(backwards, root)
        assert any("before its parent" in p for p in problems), problems
    else:
        assert is_topological_order(backwards, root)


@SETTINGS
@given(dags(), st.data())
def test_shuffled_order_is_judged_correctly(nodes: list[Node], data: st.DataObject) -> None:
    root = nodes[-1]
    order = topological_order(root)
    shuffled = data.draw(st.permutations(order))
    assert is_topological_order(shuffled, root) == satisfies_definition(shuffled, root)
    if len(order) > 1:
        root_first = [root] + [n for n in shuffled if n is not root]
        assert not is_topological_order(root_first, root)


@SETTINGS
@given(dags(), st.data())
def test_missing_node_is_reported(nodes: list[Node], data: st.DataObject) -> None:
    root = nodes[-1]
    order = topological_order(root)
    k = data.draw(st.integers(0, len(order) - 1))
    shorter = order[:k] + order[k + 1 :]
    problems = topological_order_problems(shorter, root)
    assert any("1 node(s) reachable from the root are missing" in p for p in problems), problems
    assert not is_topological_order(shorter, root)


@SETTINGS
@given(dags(), st.data())
def test_duplicate_node_is_reported(nodes: list[Node], data: st.DataObject) -> None:
    root = nodes[-1]
    order = topological_order(root)
    k = data.draw(st.integers(0, len(order) - 1))
    j = data.draw(st.integers(0, len(order)))
    doubled = order[:j] + [order[k]] + order[j:]
    problems = topological_order_problems(doubled, root)
    assert any("appears twice" in p for p in problems), problems
    assert not any("missing" in p or "not part of" in p for p in problems), problems
    assert not is_topological_order(doubled, root)


@SETTINGS
@given(dags(), st.data())
def test_extra_node_is_reported(nodes: list[Node], data: st.DataObject) -> None:
    root = nodes[-1]
    order = topological_order(root)
    under_root = reachable(root)
    outside = [n for n in nodes if id(n) not in under_root] or [Node(-1)]
    stranger = data.draw(st.sampled_from(outside))
    j = data.draw(st.integers(0, len(order)))
    longer = order[:j] + [stranger] + order[j:]
    problems = topological_order_problems(longer, root)
    assert any("1 node(s) are not part of the graph" in p for p in problems), problems
    assert not is_topological_order(longer, root)


def test_nodes_equal_in_value_stay_distinct() -> None:
    """The checker compares nodes by identity: a node listed twice is caught even when
    another node of the graph compares equal to it."""

    class Same(Node):
        __slots__ = ()

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Same)

        def __hash__(self) -> int:
            return 0

    a, b = Same(0), Same(1)
    root = Node(2, [a, b])
    problems = topological_order_problems([a, a, root], root)
    assert any("appears twice" in p for p in problems), problems


def test_deep_chain_is_traversed_iteratively() -> None:
    length = 200_000
    node = Node(0)
    chain = [node]
    for i in range(1, length):
        node = Node(i, [node])
        chain.append(node)
    order = topological_order(node)
    assert len(order) == length
    assert [n.name for n in order] == list(range(length))
    assert order[0] is chain[0] and order[-1] is chain[-1]
    assert is_topological_order(order, node)
    assert not is_topological_order(order[1:], node)


def test_diamond() -> None:
    """x feeds a and b, both feed the root: x once, first; the root last."""
    x = Node(0)
    a, b = Node(1, [x]), Node(2, [x])
    root = Node(3, [a, b, a])
    order = topological_order(root)
    assert order[0] is x and order[-1] is root and len(order) == 4
    assert is_topological_order([x, b, a, root], root)
    assert not is_topological_order([a, x, b, root], root)


# -- the scalar engine's own traversal ----------------------------------------------------------
@st.composite
def scalar_graphs(draw: st.DrawFn) -> Value:
    nodes = [Value(draw(st.floats(-1, 1)), label=f"x{i}") for i in range(draw(st.integers(1, 4)))]
    for _ in range(draw(st.integers(0, 30))):
        a = nodes[draw(st.integers(0, len(nodes) - 1))]
        b = nodes[draw(st.integers(0, len(nodes) - 1))]
        kind = draw(st.sampled_from(["add", "sub", "mul", "neg", "tanh", "sigmoid", "relu", "const"]))
        if kind == "add":
            out = a + b
        elif kind == "sub":
            out = a - b
        elif kind == "mul":
            out = (a * b).tanh()
        elif kind == "neg":
            out = -a
        elif kind == "const":
            out = 0.5 * a + 1
        else:
            out = getattr(a, kind)()
        nodes.append(out)
    return nodes[-1]


@SETTINGS
@given(scalar_graphs())
def test_scalar_engine_order_is_valid(root: Value) -> None:
    order = scalar_topological_order(root)
    assert order[-1] is root
    assert is_topological_order(order, root)
    assert topological_order_problems(order, root) == []
    assert {id(n) for n in order} == {id(n) for n in topological_order(root)}
    if len(order) > 1:
        assert not is_topological_order(order[::-1], root)


# -- shares: what each use of a node sends back ---------------------------------------------------
def test_shares_of_the_worked_example_add_up_to_the_gradient() -> None:
    x, y = Value(2.0, "x"), Value(-1.5, "y")
    u = x * y
    v = u + y
    loss = v**2
    loss.backward()
    found = shares(y, loss)
    assert [child for child, _ in found] == [u, v]
    assert [share for _, share in found] == [-18.0, -9.0]  # 2v·x through u, 2v·1 through v
    assert sum(share for _, share in found) == y.grad
    assert shares(x, loss) == [(u, x.grad)]  # one use, one share


def test_shares_of_a_tensor_used_three_times() -> None:
    from bpcourse.tensor import Tensor

    x = Tensor(np.array([[0.5], [-1.0], [2.0]]), label="x")
    h = x + (x * x).tanh()  # x feeds the product twice and the sum once
    h.backward(np.array([[1.0], [2.0], [-0.5]]))
    found = shares(x, h)
    assert len(found) == 3 and all(share.shape == x.shape for _, share in found)
    np.testing.assert_allclose(sum(share for _, share in found), x.grad, rtol=1e-12)
