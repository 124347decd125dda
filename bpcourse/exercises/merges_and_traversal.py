"""Exercises of notebook 02_merges_and_traversal: sums at merges, the traversal, a backward loop.

``practice_grads`` and ``residual_backward`` are judged against the engine like
the exercises of notebook 01. ``topological_order`` and ``backward`` act on
whole graphs (``bpcourse.minigraph.Node``), so they have judges of their own:

* ``topological_order``: any valid order is right, so the answer is checked
  for validity (``bpcourse.graph.topological_order_problems``) on random
  graphs with fan-out, then on a chain too deep for a recursive traversal;
* ``backward``: the learner's function fills ``.grad`` in place and returns
  nothing; the judge reads the gradients back from the nodes and compares
  them with the engine's, on trees (no merges) and on graphs with merges,
  each drawn so that every mistake of the loop changes some gradient.
  When they differ, the first wrong node (walking from the root) is checked
  against the gradients of its own children, which tells an assignment at a
  merge from a forgotten local derivative or a node visited too early.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bpcourse.exercises.core import (
    ATOL,
    ENGINE,
    GRAPH_ANSWERS,
    NOT_YOURS,
    REFERENCES,
    RTOL,
    TEST_FUNCTIONS,
    Call,
    Exercise,
    GradingStop,
    Inputs,
    LearnerRaised,
    Line,
    Misconception,
    Verdict,
    learner_error,
    run_learner,
    slope,
    weighted_verdict,
)
from bpcourse.exercises.inputs import scalar_away_from_zero
from bpcourse.gradcheck import mismatch, numerical_gradient
from bpcourse.graph import is_topological_order, topological_order_problems
from bpcourse.graph import topological_order as engine_order
from bpcourse.minigraph import Node, chain, collect_grads, random_graph, reference_grads
from bpcourse.scalar import Value
from bpcourse.tensor import Tensor

NOTEBOOK = "02_merges_and_traversal"


def _is_recursion_error(exc: BaseException) -> bool:
    """True for a RecursionError, raised here or in the learner's own process."""
    if isinstance(exc, LearnerRaised):
        return exc.learner_message.startswith("raised RecursionError")
    return isinstance(exc, RecursionError)


def _name(node: Node) -> str:
    return node.label or "a node"


# -- the practice problem: a = x + y, b = x·a, L = b² ------------------------------------------
def _practice_inputs(rng: np.random.Generator) -> Inputs:
    while True:
        x, y = scalar_away_from_zero(rng, 0.4, 1.8), scalar_away_from_zero(rng, 0.4, 1.8)
        a, b = x + y, x * (x + y)
        # No term may vanish (a, 2x + y) and no wrong variant may coincide with the
        # right answer (|2b| = 1 hides a forgotten 2b, |x| = 1 a forgotten factor x).
        if min(abs(a), abs(2 * x + y), abs(abs(2 * b) - 1), abs(abs(x) - 1)) > 0.2:
            return {"x": x, "y": y}


def _practice_reference(x: float, y: float) -> tuple[float, float]:
    xv, yv = Value(x, "x"), Value(y, "y")
    a = xv + yv
    b = xv * a
    (b**2).backward()
    return xv.grad, yv.grad


def _practice_loss(x: float, y: float) -> float:
    return (x * (x + y)) ** 2


def _practice_numeric(x: float, y: float) -> tuple[float, float]:
    return slope(lambda v: _practice_loss(v, y), x), slope(lambda v: _practice_loss(x, v), y)


MISSED_MERGE = (
    "x is used twice (directly in b = x·a, and inside a = x + y): dL/dx is the SUM of both contributions"
)

PRACTICE_GRADS = Exercise(
    name="practice_grads",
    notebook=NOTEBOOK,
    signature="practice_grads(x, y) -> (dL_dx, dL_dy)",
    summary="a = x + y, b = x·a, L = b²: x reaches L along two paths",
    outputs=("dL_dx", "dL_dy"),
    points=2,
    make_inputs=_practice_inputs,
    reference=_practice_reference,
    numeric=_practice_numeric,
    misconceptions=(
        Misconception(
            "only_direct_path",
            f"{MISSED_MERGE}; only the direct one, 2b·a, is here",
            lambda x, y: (2 * x * (x + y) * (x + y), None),
        ),
        Misconception(
            "only_path_through_a",
            f"{MISSED_MERGE}; only the one through a, 2b·x, is here",
            lambda x, y: (2 * x * (x + y) * x, None),
        ),
        Misconception(
            "forgot_dL_db",
            "every path starts at L = b², so each contribution carries the factor dL/db = 2b; it is missing",
            lambda x, y: (2 * x + y, x),
        ),
        Misconception(
            "missing_factor_two",
            "d(b²)/db = 2b: the factor 2 is missing",
            lambda x, y: (x * (x + y) * (2 * x + y), x * x * (x + y)),
        ),
        Misconception(
            "dy_without_x",
            "y reaches L only through a, and a enters b = x·a multiplied by x: dL/dy = dL/da = 2b·x, not 2b",
            lambda x, y: (None, 2 * x * (x + y)),
        ),
        Misconception(
            "swapped_outputs",
            "the two gradients are swapped: return (dL_dx, dL_dy) in that order",
            lambda x, y: (2 * x * x * (x + y), 2 * x * (x + y) * (2 * x + y)),
        ),
    ),
    revisit="sum at merges: the practice problem",
    refuses=NOT_YOURS,
    instead="write the backward pass yourself",
)


# -- topological_order(root) ------------------------------------------------------------------
DEEP_CHAIN = 5_000

NOT_A_LIST = "should return a list of nodes"
TWICE = (
    "appears more than once: a node that feeds two children is reached along two paths "
    "and was added each time; keep a set of visited nodes and skip any node already in it"
)
MISSING = "reachable from the root are missing from the list: follow every parent of every node"
ROOT_FIRST = (
    "the root comes first and the leaves last: that is the order the backward pass walks in. "
    "Return parents before children (the root last); backward walks the list reversed"
)
BEFORE_PARENT = (
    "a node may be added only once all of its parents are in the list "
    "(post-order: add a node when you leave it, after its parents, not when you first reach it)"
)
TOO_DEEP = (
    "raised RecursionError on a chain of {n:,} nodes — Python allows about 1,000 nested calls, "
    "so a recursive traversal fails on deep graphs. Keep your own stack (a list you append to "
    "and pop from) instead of recursing"
)


def _order_problem(got: Any, root: Node) -> str | None:
    """None when ``got`` is a valid topological order of the graph under ``root``."""
    if got is None:
        return f"returned None: {NOT_A_LIST} (is `return order` missing?)"
    if isinstance(got, set | frozenset):
        return f"returned a set, which has no order: {NOT_A_LIST}"
    if not isinstance(got, list | tuple):
        return f"{NOT_A_LIST}, got a {type(got).__name__}"
    strangers = [item for item in got if not isinstance(item, Node)]
    if strangers:
        # An object that could not travel back from the learner's process names its type.
        kind = getattr(strangers[0], "type_name", None) or type(strangers[0]).__name__
        hint = " (append the node itself, not its value)" if isinstance(strangers[0], int | float) else ""
        return f"{NOT_A_LIST}: the list holds {kind} items, not Node objects{hint}"
    problems = topological_order_problems(got, root)
    if not problems:
        return None
    seen: set[int] = set()
    for node in got:
        if id(node) in seen:
            return f"{_name(node)} {TWICE}"
        seen.add(id(node))
    reachable = {id(node) for node in engine_order(root)}
    missing = len(reachable - seen)
    if missing:
        return f"{missing} of the {len(reachable)} nodes {MISSING}"
    if seen - reachable:
        return "the list holds nodes that are not part of the graph under the root"
    if is_topological_order(list(reversed(got)), root):
        return ROOT_FIRST
    position = {id(node): i for i, node in enumerate(got)}
    for i, node in enumerate(got):
        for parent in node.parents:
            if position[id(parent)] > i:
                return f"{_name(node)} comes before its parent {_name(parent)}: {BEFORE_PARENT}"
    return problems[0]


def _judge_topological_order(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    problem = None
    for _ in range(exercise.trials):
        root, _nodes = random_graph(rng, int(rng.integers(3, 6)), int(rng.integers(8, 15)))
        got, stop = run_learner(exercise, call, {"root": root})
        if stop is not None:
            return stop
        problem = _order_problem(got, root)
        if problem is not None:
            break
    lines = [Line("valid order on graphs with merges", problem is None, problem or "")]

    root, _nodes = chain(DEEP_CHAIN)
    try:
        deep = _order_problem(call({"root": root}), root)
    except (NotImplementedError, GradingStop):
        raise
    except Exception as exc:
        deep = TOO_DEEP.format(n=DEEP_CHAIN) if _is_recursion_error(exc) else learner_error(exc)
    if deep is None and problem is not None:
        # A chain has one path only: an order that fails on merges may look right on it.
        deep = "counts once the order is right on the graphs with merges"
    lines.append(Line(f"a chain of {DEEP_CHAIN:,} nodes", deep is None, deep or ""))
    return weighted_verdict(exercise, lines, [3.0, 1.0])


TOPOLOGICAL_ORDER = Exercise(
    name="topological_order",
    notebook=NOTEBOOK,
    signature="topological_order(root) -> list[Node]",
    summary="every node under root once, each after its parents (root last), without recursion",
    outputs=("order",),
    points=2,
    make_inputs=lambda rng: {"root": random_graph(rng)[0]},
    judge=_judge_topological_order,
    revisit="reverse topological order: a depth-first search with an explicit stack",
    trials=4,
    # Its input is a graph of minigraph nodes: minigraph stays open, all but its conversion to Values.
    refuses=ENGINE + GRAPH_ANSWERS + TEST_FUNCTIONS + REFERENCES,
    instead="write the order yourself",
)


# -- backward(root) ----------------------------------------------------------------------------
NO_SEED = (
    "every gradient is still 0, the root's too — the backward pass starts by setting the root's gradient "
    "to 1 (dL/dL = 1); "
    "every other gradient is a multiple of it"
)
BAD_SEED = "root.grad is {got:.4g} but should be 1.0 (dL/dL = 1)"
FORWARD_ORDER = (
    "only the root's parents received gradients — the nodes were visited parents first. "
    "A node may pass its gradient on only once it is complete, so walk the topological "
    "order reversed, root first"
)
OVERWRITTEN = (
    "feeds {k} children, and its gradient equals just one of their contributions — at a merge "
    "the contributions must be added to what the parent already holds; assigning replaces it and keeps "
    "only the last one"
)
NO_LOCAL = (
    "got its children's gradients without the local derivatives: each contribution is the child's "
    "gradient times the child's local derivative with respect to this node (the entry of local_grads at "
    "this node's position in the child's parents)"
)
SWAPPED_LOCAL = (
    "got the local derivative that belongs to the child's other parent: local_grads and parents are "
    "aligned, the local derivative at each position belongs to the parent at the same position"
)
LEFT_AT_ZERO = (
    "still has gradient 0 although its children have gradients to pass on: visit every node, "
    "each one after all of its children (the topological order reversed)"
)
NOT_FINITE = "every gradient should be a finite float (did a .grad get something that is not a number?)"
WRONG_SUM = (
    "has the wrong gradient although its children's are right: it should be the sum over its "
    "children of the child's gradient times the child's local derivative with respect to it (upstream "
    "times local)"
)


def _forward_order_grads(root: Node, nodes: list[Node]) -> np.ndarray:
    """What a loop over the nodes parents-first leaves behind: only the root has passed anything on."""
    index = {id(node): i for i, node in enumerate(nodes)}
    grads = np.zeros(len(nodes))
    grads[index[id(root)]] = 1.0
    for parent, local in zip(root.parents, root.local_grads, strict=True):
        grads[index[id(parent)]] += local
    return grads


def _loop_grads(root: Node, nodes: list[Node], local: Callable[[Node, int], float]) -> np.ndarray:
    """The backward loop done right, except that parent ``slot`` of ``child`` gets ``local(child, slot)``."""
    index = {id(node): i for i, node in enumerate(nodes)}
    grads = np.zeros(len(nodes))
    grads[index[id(root)]] = 1.0
    for child in reversed(nodes):
        for slot, parent in enumerate(child.parents):
            grads[index[id(parent)]] += grads[index[id(child)]] * local(child, slot)
    return grads


def _no_local(child: Node, slot: int) -> float:
    return 1.0


def _other_parents_local(child: Node, slot: int) -> float:
    return child.local_grads[len(child.local_grads) - 1 - slot]


def _backward_problem(root: Node, nodes: list[Node], got: np.ndarray, expected: np.ndarray) -> str | None:
    """None when ``got`` matches ``expected``; else the first wrong node and why, in words.

    ``nodes`` lists the graph parents first. Walking it from the root, every
    node before the first wrong one has the right gradient, so the wrong one
    can be checked against its children's gradients, which the learner's own
    loop computed.
    """

    def close(a: Any, b: Any) -> bool:
        return not np.any(mismatch(a, b, ATOL, RTOL))

    if close(got, expected):
        return None
    index = {id(node): i for i, node in enumerate(nodes)}
    broken = np.flatnonzero(~np.isfinite(got))
    if broken.size:
        node = nodes[int(broken[0])]
        return f"{_name(node)}.grad is {got[broken[0]]}: {NOT_FINITE}"
    if not got.any():
        return NO_SEED
    if not close(got[index[id(root)]], 1.0):
        return BAD_SEED.format(got=got[index[id(root)]])
    if close(got, _forward_order_grads(root, nodes)):
        return FORWARD_ORDER
    # Mistakes made at every node alike show in every gradient: recognise them whole first.
    if close(got, _loop_grads(root, nodes, _no_local)):
        return f"every node {NO_LOCAL}"
    if close(got, _loop_grads(root, nodes, _other_parents_local)):
        return f"every node {SWAPPED_LOCAL}"
    children: list[list[tuple[Node, int]]] = [[] for _ in nodes]
    for child in nodes:
        for slot, parent in enumerate(child.parents):
            children[index[id(parent)]].append((child, slot))

    def total(i: int, local: Callable[[Node, int], float]) -> float:
        """Node i's gradient from its children's, with ``local(child, slot)`` as local derivative."""
        return float(sum(got[index[id(child)]] * local(child, slot) for child, slot in children[i]))

    for i in reversed(range(len(nodes))):
        node, g = nodes[i], float(got[i])
        if node is root or close(g, total(i, lambda child, slot: child.local_grads[slot])):
            continue
        name = _name(node)
        shares = [got[index[id(child)]] * child.local_grads[slot] for child, slot in children[i]]
        if len(shares) > 1 and any(close(g, share) for share in shares):
            return f"{name} {OVERWRITTEN.format(k=len(shares))}"
        if close(g, total(i, _no_local)):
            return f"{name} {NO_LOCAL}"
        if close(g, total(i, _other_parents_local)):
            return f"{name} {SWAPPED_LOCAL}"
        if g == 0.0:
            return f"{name} {LEFT_AT_ZERO}"
        return f"{name} {WRONG_SUM}"
    return f"{int(np.sum(mismatch(got, expected, ATOL, RTOL)))} of the {len(nodes)} gradients are wrong"


def _shows_the_mistakes(nodes: list[Node]) -> bool:
    """True when every mistake of the backward loop changes some gradient of this graph.

    A node whose local derivatives differ by more than 0.1 from parent to parent
    (``sub``, or ``mul`` of two different nodes): a swapped ``local_grads`` shows,
    and so does a forgotten one (the two cannot both be 1). An op whose parent is
    an op: a walk in the forward order leaves that parent's parents at 0.
    """
    uneven = any(len(n.local_grads) == 2 and abs(n.local_grads[0] - n.local_grads[1]) > 0.1 for n in nodes)
    deep = any(any(p.parents for p in n.parents) for n in nodes)
    return uneven and deep


def _backward_graph(rng: np.random.Generator, fan_out: bool) -> tuple[Node, list[Node]]:
    """A random tree (no merges) or graph with merges on which every mistake of the loop shows.

    Most draws qualify; the others are drawn again, so that whether a mistake is
    caught never depends on the seed.
    """
    while True:
        # A tree needs more leaves than a graph with merges for the same number of ops.
        n_leaves, n_ops = (
            (int(rng.integers(3, 5)), int(rng.integers(9, 14)))
            if fan_out
            else (int(rng.integers(4, 7)), int(rng.integers(5, 9)))
        )
        root, nodes = random_graph(rng, n_leaves, n_ops, fan_out=fan_out)
        if _shows_the_mistakes(nodes):
            return root, nodes


def _judge_backward(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    # The gradients are read from these very nodes after the call (collect_grads).
    # In a notebook the learner's function worked on them directly; when it runs
    # in another process, the wire format (bpcourse.grading.wire_types) copies the
    # gradients computed there back onto the nodes that were sent.
    lines = []
    for what, fan_out in (("trees (each node used once)", False), ("graphs with merges", True)):
        problem = None
        for _ in range(exercise.trials):
            root, nodes = _backward_graph(rng, fan_out)
            expected = reference_grads(root, nodes)
            _returned, stop = run_learner(exercise, call, {"root": root})
            if stop is not None:
                return stop
            try:
                got = collect_grads(nodes)
            except TypeError as exc:
                problem = f"{exc}: a gradient is a float, like the node's value"
            else:
                problem = _backward_problem(root, nodes, got, expected)
            if problem is not None:
                break
        lines.append(Line(what, problem is None, problem or ""))
    return weighted_verdict(exercise, lines, [1.0, 2.0])


BACKWARD = Exercise(
    name="backward",
    notebook=NOTEBOOK,
    signature="backward(root) -> None",
    summary="fill .grad of every node under root: seed 1, reverse order, upstream × local, sum at merges",
    outputs=("grads",),
    points=3,
    make_inputs=lambda rng: {"root": random_graph(rng)[0]},
    judge=_judge_backward,
    revisit="the backward loop: seed the root, walk the order reversed, add up at merges",
    trials=3,
    # Its input is a graph of minigraph nodes: minigraph stays open, all but its conversion to Values.
    refuses=ENGINE + GRAPH_ANSWERS + TEST_FUNCTIONS + REFERENCES,
    instead="write the backward loop yourself",
)


# -- residual connection: h = x + F(x) ---------------------------------------------------------
def _residual_inputs(rng: np.random.Generator) -> Inputs:
    n = int(rng.integers(3, 6))
    while True:
        u = rng.standard_normal((n, 1))
        J = rng.standard_normal((n, n))
        # J is far from symmetric along u, so J u and Jᵀ u differ clearly.
        if np.abs((J - J.T) @ u).max() > 0.5 and np.abs(J.T @ u).max() > 0.5:
            return {"u": u, "J_F": J}


def _residual_reference(u: np.ndarray, J_F: np.ndarray) -> tuple[np.ndarray]:
    # A linear F(x) = J_F x has Jacobian J_F at every x, so any x will do.
    x = Tensor(np.linspace(-1.0, 1.0, u.shape[0]).reshape(-1, 1))
    h = x + Tensor(J_F, requires_grad=False) @ x
    h.backward(u)
    return (x.grad.copy(),)


def _residual_numeric(u: np.ndarray, J_F: np.ndarray) -> tuple[np.ndarray]:
    # L = uᵀ h has dL/dh = u: the finite differences of L give dL/dx.
    x = np.linspace(-1.0, 1.0, u.shape[0]).reshape(-1, 1)
    return (numerical_gradient(lambda v: float((u.T @ (v + J_F @ v))[0, 0]), x),)


RESIDUAL_BACKWARD = Exercise(
    name="residual_backward",
    notebook=NOTEBOOK,
    signature="residual_backward(u, J_F) -> dL_dx",
    summary="h = x + F(x), u = dL/dh (n, 1), J_F = dF/dx (n, n): dL/dx = u + J_Fᵀ u",
    outputs=("dL_dx",),
    points=1,
    make_inputs=_residual_inputs,
    reference=_residual_reference,
    numeric=_residual_numeric,
    misconceptions=(
        Misconception(
            "forgot_identity_path",
            "the skip path is missing: h = x + F(x) hands u back to x unchanged along the identity, so add u",
            lambda u, J_F: (J_F.T @ u,),
        ),
        Misconception(
            "not_transposed",
            "the F path is a vector-Jacobian product, J_Fᵀ u (transposed); "
            "J_F u is what forward mode computes",
            lambda u, J_F: (u + J_F @ u,),
        ),
        Misconception(
            "forgot_F_path",
            "only the skip path is here: x also reaches h through F, which adds J_Fᵀ u",
            lambda u, J_F: (u,),
        ),
        Misconception(
            "identity_missing_and_not_transposed",
            "two things: the skip path (+ u) is missing, and the F path needs the transpose, J_Fᵀ u",
            lambda u, J_F: (J_F @ u,),
        ),
    ),
    revisit="the residual connection: two paths from x to h",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)

EXERCISES = (PRACTICE_GRADS, TOPOLOGICAL_ORDER, BACKWARD, RESIDUAL_BACKWARD)
