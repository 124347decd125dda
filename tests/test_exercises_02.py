"""Tests of notebook 02's exercises (``bpcourse.exercises.merges_and_traversal``) and of ``minigraph``.

For each exercise: the reference solution (the notebook's) earns full points,
each classic mistake fails with its own diagnosis, a stub reads "not
implemented", and answers of the wrong kind get a message instead of a
traceback. The random graphs the graders draw are checked to really hold
merges (and the trees to hold none).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import assert_fails_with, assert_full_points, assert_not_implemented, coded, judging, stub

from bpcourse import minigraph
from bpcourse.exercises import get, judge
from bpcourse.exercises import merges_and_traversal as mt
from bpcourse.exercises.core import LearnerRaised
from bpcourse.graph import is_topological_order
from bpcourse.minigraph import Node

NOTEBOOK = "02_merges_and_traversal"
judged = judging(NOTEBOOK)


# -- the reference solutions, as in the notebook --------------------------------------------------
def practice_grads(x: float, y: float) -> tuple[float, float]:
    a = x + y
    b = x * a
    dL_db = 2 * b
    dL_dx = dL_db * a  # through b = x·a directly
    dL_da = dL_db * x
    dL_dx += dL_da * 1.0  # through a = x + y: the second contribution
    dL_dy = dL_da * 1.0
    return dL_dx, dL_dy


def topological_order(root: Node) -> list[Node]:
    order = []
    visited = {root}
    stack = [(root, 0)]
    while stack:
        node, i = stack.pop()
        if i < len(node.parents):
            stack.append((node, i + 1))
            parent = node.parents[i]
            if parent not in visited:
                visited.add(parent)
                stack.append((parent, 0))
        else:
            order.append(node)
    return order


def backward(root: Node) -> None:
    order = topological_order(root)
    root.grad = 1.0
    for node in reversed(order):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def residual_backward(u: np.ndarray, J_F: np.ndarray) -> np.ndarray:
    return u + J_F.T @ u


def test_the_notebook_has_these_four_exercises() -> None:
    names = [e.name for e in coded(NOTEBOOK)]
    assert names == ["practice_grads", "topological_order", "backward", "residual_backward"]
    for exercise in coded(NOTEBOOK):
        assert 1 <= exercise.points <= 3


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("function", "name"),
    [
        (practice_grads, "practice_grads"),
        (topological_order, "topological_order"),
        (backward, "backward"),
        (residual_backward, "residual_backward"),
    ],
)
def test_reference_solution_earns_full_points(function: Callable[..., Any], name: str, seed: int) -> None:
    assert_full_points(judged(function, name, seed))


@pytest.mark.parametrize("name", ["practice_grads", "topological_order", "backward", "residual_backward"])
def test_a_stub_reads_not_implemented(name: str) -> None:
    assert_not_implemented(judged(stub, name))


@pytest.mark.parametrize("name", ["practice_grads", "topological_order", "backward", "residual_backward"])
def test_an_exception_in_learner_code_is_reported_not_raised(name: str) -> None:
    def broken(*args: Any) -> Any:
        return 1 / 0

    result = judged(broken, name)
    assert result.status == "error"
    assert "ZeroDivisionError" in str(result)


# -- practice_grads -----------------------------------------------------------------------------------
def _b(x: float, y: float) -> float:
    return x * (x + y)


PRACTICE_MISTAKES = {
    "only the direct one": lambda x, y: (2 * _b(x, y) * (x + y), practice_grads(x, y)[1]),
    "only the one through a": lambda x, y: (2 * _b(x, y) * x, practice_grads(x, y)[1]),
    "dL/db = 2b": lambda x, y: ((x + y) + x, x),
    "the factor 2 is missing": lambda x, y: (_b(x, y) * (2 * x + y), _b(x, y) * x),
    "not 2b": lambda x, y: (practice_grads(x, y)[0], 2 * _b(x, y)),
    "swapped": lambda x, y: practice_grads(x, y)[::-1],
}


@pytest.mark.parametrize("phrase", list(PRACTICE_MISTAKES))
def test_practice_grads_mistakes_are_diagnosed(phrase: str) -> None:
    result = judged(PRACTICE_MISTAKES[phrase], "practice_grads")
    assert_fails_with(result, phrase)


def test_practice_grads_missing_merge_keeps_the_points_of_dL_dy() -> None:
    result = judged(PRACTICE_MISTAKES["only the direct one"], "practice_grads")
    assert result.status == "partial"
    assert result.score == pytest.approx(result.max_score / 2)
    assert "SUM of both contributions" in str(result)


def test_practice_grads_wrong_return_kind_is_explained() -> None:
    result = judged(lambda x, y: 2 * x * (x + y) * (2 * x + y), "practice_grads")
    assert "should return 2 values" in str(result)
    result = judged(lambda x, y: (np.array([1.0, 2.0]), "two"), "practice_grads")
    assert result.status == "failed"
    assert "should be a number" in str(result)


def test_practice_inputs_stay_away_from_degenerate_values() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        x, y = mt.PRACTICE_GRADS.make_inputs(rng).values()
        assert min(abs(x), abs(y), abs(x + y), abs(2 * x + y)) > 0.2


# -- topological_order ----------------------------------------------------------------------------------
def recursive_order(root: Node) -> list[Node]:
    order, visited = [], set()

    def visit(node: Node) -> None:
        if node in visited:
            return
        visited.add(node)
        for parent in node.parents:
            visit(parent)
        order.append(node)

    visit(root)
    return order


def no_visited_set(root: Node) -> list[Node]:
    order = []

    def visit(node: Node) -> None:
        for parent in node.parents:
            visit(parent)
        order.append(node)

    visit(root)
    return order


def pre_order(root: Node) -> list[Node]:
    order, visited, stack = [], set(), [root]
    while stack:
        node = stack.pop()
        if node in visited:
            continue
        visited.add(node)
        order.append(node)  # on arrival: too early
        stack.extend(reversed(node.parents))
    return order


def first_parent_only(root: Node) -> list[Node]:
    order, node = [], root
    while True:
        order.append(node)
        if not node.parents:
            return order[::-1]
        node = node.parents[0]


TOPO_MISTAKES = {
    mt.TWICE: no_visited_set,
    mt.BEFORE_PARENT: pre_order,
    mt.ROOT_FIRST: lambda root: topological_order(root)[::-1],
    mt.MISSING: first_parent_only,
    "returned None": lambda root: None,
    "a set, which has no order": lambda root: set(topological_order(root)),
    "not Node objects (append the node itself, not its value)": lambda root: [
        n.value for n in topological_order(root)
    ],
    "got a dict": lambda root: {n.label: n for n in topological_order(root)},
}


@pytest.mark.parametrize("phrase", list(TOPO_MISTAKES))
def test_topological_order_mistakes_are_diagnosed(phrase: str) -> None:
    result = judged(TOPO_MISTAKES[phrase], "topological_order")
    assert_fails_with(result, phrase)
    assert "Traceback" not in str(result)


def test_a_recursive_traversal_gets_partial_credit_and_the_recursion_message() -> None:
    result = judged(recursive_order, "topological_order")
    assert result.status == "partial"
    assert 0 < result.score < result.max_score
    assert result.lines[0].ok
    assert not result.lines[1].ok
    assert "RecursionError" in result.lines[1].message
    assert "stack" in result.lines[1].message


def test_a_recursion_error_in_the_learners_process_gets_the_same_message() -> None:
    # Out of process, the learner's exception arrives as LearnerRaised with its description.
    def call(inputs: dict[str, Any]) -> list[Node]:
        order = topological_order(inputs["root"])
        if len(order) > 1000:
            raise LearnerRaised(
                "raised RecursionError: maximum recursion depth exceeded (at line 5: visit(p))"
            )
        return order

    result = judge(get("topological_order", NOTEBOOK), call, np.random.default_rng(0))
    assert result.status == "partial"
    assert "Keep your own stack" in result.lines[1].message


def test_the_deep_chain_counts_only_with_a_valid_order_on_merges() -> None:
    result = judged(first_parent_only, "topological_order")  # right on a chain, wrong elsewhere
    assert result.score == 0
    assert "counts once the order is right" in result.lines[1].message


def test_a_tuple_in_a_valid_order_is_accepted() -> None:
    assert_full_points(judged(lambda root: tuple(topological_order(root)), "topological_order"))


# -- backward ---------------------------------------------------------------------------------------------
def overwrites_at_merges(root: Node) -> None:
    root.grad = 1.0
    for node in reversed(topological_order(root)):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad = node.grad * local


def forgets_the_seed(root: Node) -> None:
    for node in reversed(topological_order(root)):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def forward_order(root: Node) -> None:
    root.grad = 1.0
    for node in topological_order(root):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def forgets_local_grads(root: Node) -> None:
    root.grad = 1.0
    for node in reversed(topological_order(root)):
        for parent in node.parents:
            parent.grad += node.grad


def swaps_local_grads(root: Node) -> None:
    root.grad = 1.0
    for node in reversed(topological_order(root)):
        for parent, local in zip(node.parents, node.local_grads[::-1], strict=True):
            parent.grad += node.grad * local


def seeds_two(root: Node) -> None:
    backward(root)
    for node in topological_order(root):
        node.grad *= 2


def grads_become_none(root: Node) -> None:
    backward(root)
    root.parents[0].grad = None


BACKWARD_MISTAKES = {
    "added to what the parent already holds": overwrites_at_merges,
    "setting the root's gradient to 1": forgets_the_seed,
    "visited parents first": forward_order,
    "without the local derivatives": forgets_local_grads,
    "belongs to the child's other parent": swaps_local_grads,
    "should be 1.0": seeds_two,
    "not a number": grads_become_none,
}


@pytest.mark.parametrize("phrase", list(BACKWARD_MISTAKES))
def test_backward_mistakes_are_diagnosed(phrase: str) -> None:
    result = judged(BACKWARD_MISTAKES[phrase], "backward")
    assert_fails_with(result, phrase)


def test_overwriting_passes_on_trees_and_fails_on_merges() -> None:
    for seed in range(5):
        result = judged(overwrites_at_merges, "backward", seed)
        trees, merges = result.lines
        assert trees.ok, str(result)
        assert not merges.ok
        assert result.status == "partial"
        assert result.score == pytest.approx(result.max_score / 3)


@pytest.mark.parametrize("seed", (27, 933))
def test_swapped_local_grads_fail_on_trees_too_whatever_the_seed(seed: int) -> None:
    """These seeds once drew trees made of add and unary ops only, where a swap changes nothing."""
    result = judged(swaps_local_grads, "backward", seed)
    assert result.score == 0 and not any(line.ok for line in result.lines), str(result)


def test_the_backward_judges_graphs_show_every_mistake(rng: np.random.Generator) -> None:
    for fan_out in (False, True):
        for _ in range(100):
            _root, nodes = mt._backward_graph(rng, fan_out)
            uneven = [n for n in nodes if len(n.local_grads) == 2 and n.local_grads[0] != n.local_grads[1]]
            assert uneven and any(any(p.parents for p in n.parents) for n in nodes)
            assert minigraph.merges(nodes) if fan_out else not minigraph.merges(nodes)


def test_backward_names_the_first_wrong_node() -> None:
    # Only the last multiply of a chain is wrong: the diagnosis points at its parent.
    def wrong_mul(root: Node) -> None:
        root.grad = 1.0
        for node in reversed(topological_order(root)):
            for parent, local in zip(node.parents, node.local_grads, strict=True):
                scale = 2.0 if node.op == "mul" else 1.0
                parent.grad += node.grad * local * scale

    result = judged(wrong_mul, "backward")
    assert not result.passed
    assert "has the wrong gradient" in str(result) or "just one of" in str(result)


# -- residual_backward ----------------------------------------------------------------------------------
RESIDUAL_MISTAKES = {
    "the skip path is missing": lambda u, J_F: J_F.T @ u,
    "J_Fᵀ u (transposed)": lambda u, J_F: u + J_F @ u,
    "only the skip path is here": lambda u, J_F: u.copy(),
    "two things": lambda u, J_F: J_F @ u,
}


@pytest.mark.parametrize("phrase", list(RESIDUAL_MISTAKES))
def test_residual_mistakes_are_diagnosed(phrase: str) -> None:
    assert_fails_with(judged(RESIDUAL_MISTAKES[phrase], "residual_backward"), phrase)


@pytest.mark.parametrize(
    ("wrong", "phrase"),
    [
        (lambda u, J_F: (u + J_F.T @ u).ravel(), "flat 1-D array"),
        (lambda u, J_F: (u + J_F.T @ u).T, "transposed?"),
        (lambda u, J_F: (u + J_F.T @ u).tolist(), "should be a numpy array"),
        (lambda u, J_F: None, "should be a numpy array"),
    ],
)
def test_residual_wrong_kinds_are_explained(wrong: Callable[..., Any], phrase: str) -> None:
    result = judged(wrong, "residual_backward")
    assert result.status == "failed"
    assert phrase in str(result)


def test_residual_inputs_are_far_from_symmetric() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        u, J = mt.RESIDUAL_BACKWARD.make_inputs(rng).values()
        assert u.shape == (J.shape[0], 1)
        assert np.abs(J @ u - J.T @ u).max() > 0.5


# -- minigraph ----------------------------------------------------------------------------------------------
def test_random_graphs_have_fan_out_and_trees_do_not(rng: np.random.Generator) -> None:
    saw_same_node_twice = False
    for _ in range(200):
        root, nodes = minigraph.random_graph(rng, 4, 12)
        assert minigraph.merges(nodes), "a graph drawn for grading has no merge"
        assert max(minigraph.uses(nodes).values()) >= 2
        saw_same_node_twice |= any(len(n.parents) == 2 and n.parents[0] is n.parents[1] for n in nodes)
        tree_root, tree = minigraph.random_graph(rng, 5, 7, fan_out=False)
        assert max(minigraph.uses(tree).values()) == 1
        assert not minigraph.merges(tree)
    assert saw_same_node_twice, "no op ever used one node as both of its inputs"


def test_random_graphs_are_connected_ordered_and_moderate(rng: np.random.Generator) -> None:
    for fan_out in (True, False):
        for _ in range(100):
            root, nodes = minigraph.random_graph(rng, 5, 10, fan_out=fan_out)
            assert nodes[-1] is root
            assert is_topological_order(nodes, root)  # every node reachable, parents first
            values = np.array([n.value for n in nodes])
            assert np.all(np.abs(values) < 20)
            grads = minigraph.reference_grads(root, nodes)
            assert np.all(np.isfinite(grads)) and grads[-1] == 1.0


def test_node_local_grads_match_the_engine_and_reference_grads_match_a_plain_loop(
    rng: np.random.Generator,
) -> None:
    for _ in range(50):
        root, nodes = minigraph.random_graph(rng)
        values = minigraph.to_values(root)
        for node in nodes:
            v = values[id(node)]
            assert v.data == pytest.approx(node.value, rel=1e-12)
            assert v.partials == pytest.approx(node.local_grads, rel=1e-12)
        expected = minigraph.reference_grads(root, nodes)
        backward(root)
        np.testing.assert_allclose(minigraph.collect_grads(nodes), expected, rtol=1e-12, atol=1e-12)


def test_practice_graph_matches_the_closed_forms() -> None:
    x, y = 1.3, -0.4
    root, nodes = minigraph.practice_graph(x, y)
    grads = minigraph.reference_grads(root, nodes)
    assert grads[0] == pytest.approx(2 * x * (x + y) * (2 * x + y))
    assert grads[1] == pytest.approx(2 * x * x * (x + y))
    assert minigraph.merges(nodes) == [nodes[0]]  # x, and only x, feeds two nodes


def test_chain_is_deep_and_repr_is_readable() -> None:
    root, nodes = minigraph.chain(3000)
    assert len(nodes) == 3000 and is_topological_order(nodes, root)
    a = minigraph.leaf(2.0, "a")
    assert repr(minigraph.mul(a, a, "s")) == "Node(s = mul(a, a), value=4, grad=0)"
    assert repr(a) == "Node(a, value=2, grad=0)"


def test_collect_grads_refuses_what_is_not_a_number() -> None:
    a = minigraph.leaf(1.0, "a")
    a.grad = np.float64(0.5)
    assert minigraph.collect_grads([a])[0] == 0.5
    a.grad = [0.5]
    with pytest.raises(TypeError, match="a.grad is a list"):
        minigraph.collect_grads([a])
    a.grad = math.nan
    assert math.isnan(minigraph.collect_grads([a])[0])
