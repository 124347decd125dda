"""Exercises of notebook 08_build_your_own_engine: the learner's own scalar autodiff class.

The answer is a class, ``Scalar``, not a function, so each exercise has a
driver (``bpcourse.drive``) that builds expressions with the class and reads
back what it computed, inside the sandbox when the class grader runs it and in
the notebook for the self-check. The judges here compare those numbers with
the engine (``bpcourse.Value``, driven by the same functions) and with finite
differences.

* ``Scalar``: the class with its ops. Each op is made on fresh leaves, and the
  node it returns must hold the right value and record its parents with the
  right local derivatives (``-``, ``/`` and unary minus may be built from the
  other ops: their value is judged, and their derivatives with respect to
  ``a`` and ``b`` along the local derivatives of the nodes they are built
  from). ``2 + a`` and ``2 * a`` need
  ``__radd__`` and ``__rmul__``.
* ``order``: the learner's iterative topological order, a function of a node
  that reads only ``.parents``. It is judged on its own, as notebook 02's
  ``topological_order`` is, on the course's bare nodes (``minigraph``): graphs
  with merges, then a chain too deep for recursion.
* ``backward``: the whole class, once ``order`` and ``backward`` complete it.
  Random programs (trees, a value used twice by one node, graphs with merges),
  a chain of 10,000 nodes, and a second ``backward()`` on the same graph. The
  gradients of every node come back; when they are wrong, the first wrong node
  walking from the root is compared with what the nodes that use it hold,
  which tells an assignment at a merge from a node visited too early.

Gradient policy, as ``bpcourse.Value``'s: ``backward()`` adds into the leaves'
``.grad`` (a training loop sets them to 0 before each pass) and starts every
inner node from 0, so a second pass doubles the leaves' gradients and leaves
the inner nodes' as they were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bpcourse import drive
from bpcourse.exercises.core import (
    ATOL,
    ENGINE,
    GRAPH_ANSWERS,
    REFERENCES,
    RTOL,
    TEST_FUNCTIONS,
    Call,
    Exercise,
    GradingStop,
    LearnerRaised,
    Line,
    OracleDisagreement,
    Verdict,
    learner_error,
    not_implemented,
    type_name,
    weighted_verdict,
)
from bpcourse.exercises.merges_and_traversal import _judge_topological_order as judge_order
from bpcourse.gradcheck import mismatch
from bpcourse.minigraph import random_graph
from bpcourse.scalar import SCALAR_OPS, Value

NOTEBOOK = "08_build_your_own_engine"

# The drivers' op names, as the engine's rules table calls them.
RULE = {"add": "add", "mul": "mul", "sub": "sub", "truediv": "div", "neg": "neg", "pow": "pow"}
RULE |= {"exp": "exp", "tanh": "tanh", "relu": "relu"}


def _close(a: Any, b: Any) -> bool:
    return not np.any(mismatch(np.asarray(a, dtype=float), np.asarray(b, dtype=float), ATOL, RTOL))


def _away(rng: np.random.Generator, low: float, high: float) -> float:
    """A number of either sign with low <= |x| <= high."""
    return float(rng.uniform(low, high) * rng.choice([-1.0, 1.0]))


def _rule(op: str, u: float, v: Any) -> tuple[float, ...]:
    """The engine's rule for ``op``: (value, d/du) or (value, d/du, d/dv)."""
    entry = SCALAR_OPS[RULE[op]]
    return entry.rule(u, v) if entry.arity == 2 or op == "pow" else entry.rule(u)


def _is_recursion_error(exc: BaseException) -> bool:
    if isinstance(exc, LearnerRaised):
        return exc.kind == "RecursionError" or exc.learner_message.startswith("raised RecursionError")
    return isinstance(exc, RecursionError)


# -- Scalar: each op's value and local derivatives ---------------------------------------------------------
# (the driver's op, what the verdict's line says)
OP_CASES: tuple[tuple[str, str], ...] = (
    ("add", "a + b"),
    ("mul", "a × b"),
    ("pow", "a to a constant power n"),
    ("exp", "exp(a)"),
    ("tanh", "tanh(a)"),
    ("relu", "relu(a)"),
    ("neg", "minus a"),
    ("sub", "a − b"),
    ("truediv", "a / b"),
    ("radd", "a number plus a node (2 + a)"),
    ("rmul", "a number times a node (2 × a)"),
)
BUILT_FROM_OTHERS = ("neg", "sub", "truediv")  # judged through the local derivatives of their parts

WRONG_VALUE = "has the wrong value"
NOT_A_NUMBER = "is not a number: a node's data, its gradient and its local derivatives are floats"
NOT_ALIGNED = (
    "records {p} parents but {g} local derivatives: the two are aligned, one local derivative "
    "for each parent, in the same order"
)
MISSING_PARENT = (
    "does not record {name} among its parents: the new node must remember every node it was made from"
)
WRONG_LOCAL = (
    "records the wrong local derivative with respect to {name}: the derivative of this op's output "
    "with respect to that input, at the input's value"
)
COMPOSED_LOCAL = (
    "has the right value, but the local derivatives it records lead to the wrong derivative with "
    "respect to {name}: build it from the ops above (then their rules give the right one), or, if it "
    "has a rule of its own, check that rule"
)
MUL_SWAPPED = (
    "records each input's own value as its local derivative: the derivative of a product with respect "
    "to one factor is the OTHER factor"
)
TANH_OF_INPUT = (
    "records one minus the square of the input: the local derivative of tanh is one minus the square "
    "of its OUTPUT, tanh(a), which the node already holds"
)
POW_WITHOUT_N = (
    "records a to the power n − 1 without the factor n: the power rule brings the exponent down in front"
)
RELU_AT_ZERO = (
    "records slope 1 at a = 0 exactly: the slope of max(0, a) is 1 only where a > 0, and is taken as 0 at 0"
)
NO_RADD = (
    "a plain number on the left of your node fails: Python first asks the number, which does not know "
    "your class, and then asks your node through its reflected method. Write the reflected addition "
    "and multiplication (they can hand the work to the ordinary ones, since both ops commute)"
)


def _op_inputs(rng: np.random.Generator, op: str) -> dict[str, Any]:
    """x and y for one op, drawn so that no classic mistake gives the right answer by chance."""
    while True:
        x, y = _away(rng, 0.3, 1.6), _away(rng, 0.3, 1.6)
        if op == "pow":
            y = float(rng.choice([2.0, 3.0, -1.0, 0.5]))
            x = abs(x) if y == 0.5 else x
        if op in ("radd", "rmul"):
            y = float(rng.choice([2.0, 3.0, -2.0]))
        if abs(x - y) > 0.2 and abs(abs(x) - 1.0) > 0.1:
            return {"op": op, "x": x, "y": y}


def _expected_op(op: str, x: float, y: float) -> tuple[float, float, float | None]:
    """(value, d out/d a, d out/d b or None)."""
    if op == "radd":
        return y + x, 1.0, None
    if op == "rmul":
        return y * x, y, None
    rule = _rule(op, x, y)
    return rule[0], rule[1], (rule[2] if len(rule) == 3 else None)


def _local_problem(op: str, x: float, y: float, got: dict[str, Any]) -> str | None:
    """None when the op's node is right; else what is wrong with it, in words."""
    value, d_a, d_b = _expected_op(op, x, y)
    if got.get("value_kind"):
        return f"its data is a {got['value_kind']}, which {NOT_A_NUMBER}"
    if not _close(got.get("value", math.nan), value):
        return WRONG_VALUE
    if op in BUILT_FROM_OTHERS:
        through = list(got.get("through", []))
        for index, name, expected in ((0, "a", d_a), (1, "b", d_b)):
            if expected is not None and index < len(through) and not _close(through[index], expected):
                return COMPOSED_LOCAL.format(name=name)
        return None
    parents, local = list(got.get("parents", [])), list(got.get("local", []))
    if len(parents) != len(local):
        return NOT_ALIGNED.format(p=len(parents), g=len(local))
    if got.get("local_kind"):
        return f"a local derivative is a {got['local_kind']}, which {NOT_A_NUMBER}"
    for index, name, expected in ((0, "a", d_a), (1, "b", d_b)):
        if expected is None:
            continue
        if index not in parents:
            return MISSING_PARENT.format(name=name)
        recorded = sum(g for p, g in zip(parents, local, strict=True) if p == index)
        if _close(recorded, expected):
            continue
        if op == "mul" and _close(recorded, x if index == 0 else y):
            return MUL_SWAPPED
        if op == "tanh" and _close(recorded, 1.0 - x * x):
            return TANH_OF_INPUT
        if op == "pow" and _close(recorded, x ** (y - 1.0)):
            return POW_WITHOUT_N
        if op == "relu" and x == 0.0 and _close(recorded, 1.0):
            return RELU_AT_ZERO
        return WRONG_LOCAL.format(name=name)
    return None


def _raised(op: str, exc: BaseException) -> str:
    text = learner_error(exc)
    if op in ("radd", "rmul") and "TypeError" in text and "unsupported operand" in text:
        return f"{text} — {NO_RADD}"
    return text


def _relu_at_zero(call: Call) -> str | None:
    try:
        got = call({"op": "relu", "x": 0.0, "y": 0.5})
    except GradingStop:
        raise
    except Exception as exc:
        return _raised("relu", exc)
    if not isinstance(got, dict):
        return f"could not be read back ({type_name(got)})"
    return _local_problem("relu", 0.0, 0.5, got)


def _judge_ops(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    lines, stubs = [], 0
    for op, what in OP_CASES:
        problem = None
        for _ in range(exercise.trials):
            inputs = _op_inputs(rng, op)
            try:
                got = call(inputs)
            except NotImplementedError:
                problem, stubs = "not implemented yet", stubs + 1
                break
            except GradingStop:
                raise
            except Exception as exc:
                problem = _raised(op, exc)
                break
            if not isinstance(got, dict):
                problem = f"could not be read back ({type_name(got)})"
                break
            problem = _local_problem(op, inputs["x"], inputs["y"], got)
            if problem is not None:
                break
        if op == "relu" and problem is None:
            # The kink itself, where a slope of 1 for a >= 0 would go unseen on random inputs.
            problem = _relu_at_zero(call)
        lines.append(Line(what, problem is None, problem or ""))
    if stubs == len(OP_CASES):
        return not_implemented(exercise)
    # Half a point for each op with a rule of its own, a fifth for each built from others or reflected.
    weights = [0.2 if op in (*BUILT_FROM_OTHERS, "radd", "rmul") else 0.5 for op, _ in OP_CASES]
    return weighted_verdict(exercise, lines, weights)


SCALAR = Exercise(
    name="Scalar",
    notebook=NOTEBOOK,
    signature="class Scalar: data, grad, parents, local_grads; + − × / ** exp tanh relu",
    summary="each op makes a node with its value, its parents and their local derivatives",
    outputs=("node",),
    points=4,
    make_inputs=lambda rng: _op_inputs(rng, "mul"),
    judge=_judge_ops,
    revisit="the local rules: one op at a time, its value and its local derivatives",
    trials=3,
    instead="write the class yourself",
    driver=drive.one_op,
)


# -- order: the topological order, on its own --------------------------------------------------------------
ORDER = Exercise(
    name="order",
    notebook=NOTEBOOK,
    signature="order(self) -> list",
    summary="every node under this one once, each after its parents (this one last), without recursion",
    outputs=("order",),
    points=2,
    make_inputs=lambda rng: {"root": random_graph(rng)[0]},
    # Notebook 02's judge: the order reads only .parents, so the course's bare nodes can stand in for
    # the learner's, and the order is judged whatever state the rest of the class is in.
    judge=judge_order,
    revisit="the order of the walk: a depth-first search with a stack of your own",
    trials=4,
    refuses=ENGINE + GRAPH_ANSWERS + TEST_FUNCTIONS + REFERENCES,
    instead="write the order yourself",
)


# -- backward: the whole class on programs -------------------------------------------------------------------
CHAIN = 10_000

WRONG_NODE_VALUE = (
    "the node made by {op} at step {k} has the wrong value: the ops are checked one by one by Scalar"
)
GRAD_NOT_NUMBER = "a gradient is a {kind}, not a number: gradients are floats, like the data"
NOT_FINITE = "a gradient is NaN or infinite: did a node get something that is not a finite number?"
NO_SEED = (
    "every gradient is still 0, the root's too — the backward pass starts by setting the root's gradient "
    "to 1 (dL/dL = 1); every other gradient is a multiple of it"
)
BAD_SEED = "the root's gradient is {got:.4g} after the pass but should be 1 (dL/dL = 1)"
WRONG_ORDER = (
    "only the root's own inputs received gradients — the nodes were visited inputs first. A node may pass "
    "its gradient on only once it is complete, so walk the order reversed, the root first"
)
NO_UPSTREAM = (
    "every parent received the local derivatives alone: a parent's share is the node's own gradient "
    "(upstream) TIMES the local derivative"
)
OVERWRITTEN = (
    "is used {k} times, and its gradient equals just one of the contributions — at a merge each "
    "contribution must be ADDED to what the node already holds; assigning replaces it and keeps only the last"
)
INCOMPLETE = (
    "has the wrong gradient although every node that uses it has the right one. Either a node passed its "
    "gradient on before it was complete (each node must come after every node that uses it, the order "
    "reversed), or a local derivative is wrong (Scalar checks them op by op)"
)
VISITED_EARLY = (
    "did not receive every contribution in time: a node that uses it passed its gradient on before that "
    "gradient was complete. Each node must come after every node that uses it: walk a topological order "
    "reversed (one node using a value twice is right, so adding at merges is not the problem)"
)
TOO_DEEP = (
    "raised RecursionError on a chain of {n:,} nodes — Python allows about 1,000 nested calls, so a "
    "recursive order fails on deep graphs. Keep your own stack (a list you append to and pop from) "
    "instead of recursing"
)
NOT_RESET = (
    "after a second backward() on the same graph an inner node's gradient is not what one pass gives — "
    "it kept the first pass's gradient and added the new one to it. Each pass starts every inner node "
    "from 0; only the leaves keep adding up, as in bpcourse.Value"
)
LEAVES_RESET = (
    "after a second backward() the leaves hold the gradients of one pass — backward() adds into the leaves' "
    "gradients, as bpcourse.Value does (a training loop sets them to 0 itself before each pass)"
)
ONE_PASS_FIRST = "counts once one pass is right"

Program = dict[str, Any]


def _evaluate(leaves: Sequence[float], steps: Sequence[Sequence[Any]]) -> list[float]:
    """Every slot's value, in floats, by the engine's rules."""
    values = [float(v) for v in leaves]
    for op, i, j in steps:
        operand = j if op == "pow" else values[int(j)] if op in drive.BINARY else None
        values.append(_rule(op, values[int(i)], operand)[0])
    return values


def _uses(
    values: Sequence[float], steps: Sequence[Sequence[Any]], leaves: int
) -> list[list[tuple[int, float]]]:
    """For each slot, the (slot that uses it, local derivative of that use)."""
    uses: list[list[tuple[int, float]]] = [[] for _ in values]
    for k, (op, i, j) in enumerate(steps):
        child = leaves + k
        operand = j if op == "pow" else values[int(j)] if op in drive.BINARY else None
        rule = _rule(op, values[int(i)], operand)
        uses[int(i)].append((child, rule[1]))
        if op in drive.BINARY:
            uses[int(j)].append((child, rule[2]))
    return uses


def _safe(op: str, u: float, v: Any) -> bool:
    """True when ``op`` at these values is far from overflow, poles and kinks."""
    if op == "truediv":
        return abs(v) > 0.3
    if op == "pow":
        return (v != 0.5 or u > 0.2) and (v != -1.0 or abs(u) > 0.3) and abs(u) < 3.0
    if op == "exp":
        return u < 2.0
    if op == "relu":
        return abs(u) > 0.1
    return True


def _step(rng: np.random.Generator, values: list[float], i: int, j: int | None) -> list[Any] | None:
    """One random step on slots i (and j), or None when it would be unsafe there."""
    if j is None:
        op = str(rng.choice(["neg", "pow", "exp", "tanh", "relu"]))
        operand: Any = float(rng.choice([2.0, 3.0, -1.0, 0.5])) if op == "pow" else 0
    else:
        op, operand = str(rng.choice(["add", "mul", "sub", "truediv"])), j
    v = operand if op == "pow" else values[j] if j is not None else None
    if not _safe(op, values[i], v):
        return None
    out = _rule(op, values[i], v)[0]
    if not math.isfinite(out) or abs(out) > 20.0:
        return None
    return [op, i, operand]


def _program(rng: np.random.Generator, merges: bool) -> Program:
    """A random program whose root is a sum or a product; a tree, or a graph where values are reused."""
    while True:
        n = int(rng.integers(3, 5))
        values = [_away(rng, 0.3, 1.6) for _ in range(n)]
        steps: list[list[Any]] = []
        free = list(range(n))  # slots nothing uses yet
        for _ in range(40):
            if (len(free) <= 2 and len(steps) >= 6) or len(steps) >= 12:
                break
            binary = rng.random() < 0.6
            if merges:
                i, j = (int(k) for k in rng.choice(len(values), size=2, replace=False))
            else:
                picks = rng.choice(len(free), size=2 if binary and len(free) > 1 else 1, replace=False)
                i, j = free[int(picks[0])], (free[int(picks[1])] if len(picks) > 1 else None)
            step = _step(rng, values, i, j if binary else None)
            if step is None:
                continue
            steps.append(step)
            values.append(_rule_value(values, step))
            free = [s for s in free if s not in (i, step[2] if step[0] in drive.BINARY else -1)]
            free.append(len(values) - 1)
        while len(free) > 1:  # whatever nothing uses yet joins the root
            a, b = free.pop(), free.pop()
            steps.append([str(rng.choice(["add", "mul"])), a, b])
            values.append(_rule_value(values, steps[-1]))
            free.append(len(values) - 1)
        program = {"leaves": values[:n], "steps": steps, "passes": 1}
        if _shows_the_mistakes(program, merges):
            return program


def _rule_value(values: Sequence[float], step: Sequence[Any]) -> float:
    op, i, j = step
    operand = j if op == "pow" else values[int(j)] if op in drive.BINARY else None
    return _rule(op, values[int(i)], operand)[0]


def _shows_the_mistakes(program: Program, merges: bool) -> bool:
    """The root is a sum or product of an op; with merges, a value used twice with two clear contributions."""
    leaves, steps = program["leaves"], program["steps"]
    n = len(leaves)
    if not steps or steps[-1][0] not in ("add", "mul") or max(steps[-1][1], steps[-1][2]) < n:
        return False
    values = _evaluate(leaves, steps)
    if max(abs(v) for v in values) > 20.0:
        return False
    expected = drive.run_program(Value, leaves, steps, 1)["grads"]
    if sum(abs(g) > 0.05 for g in expected[:n]) < 2:
        return False
    if not merges:
        return True
    uses = _uses(values, steps, n)
    return any(
        len(used) > 1 and all(abs(expected[c] * local) > 0.05 for c, local in used)
        for used in uses[: len(values) - 1]
    )


def _twice_by_one_node(rng: np.random.Generator) -> Program:
    """x·x and y + y: one node uses the same value twice."""
    x, y, z = _away(rng, 0.4, 1.4), _away(rng, 0.4, 1.4), _away(rng, 0.4, 1.4)
    steps = [["mul", 0, 0], ["add", 1, 1], ["tanh", 3, 0], ["mul", 5, 4], ["add", 6, 2]]
    return {"leaves": [x, y, z], "steps": steps, "passes": 1}


def _chain(rng: np.random.Generator) -> Program:
    """x + y + y + ... : a chain of CHAIN nodes, y used by every one of them."""
    steps = [["add", 0, 1]] + [["add", k + 2, 1] for k in range(CHAIN - 1)]
    return {
        "leaves": [_away(rng, 0.5, 1.5), float(rng.uniform(0.5, 1.5)) * 1e-3],
        "steps": steps,
        "passes": 1,
    }


def _numeric_leaf_grads(program: Program, h: float = 1e-5) -> np.ndarray:
    leaves = np.asarray(program["leaves"], dtype=float)
    grads = np.zeros(leaves.size)
    for k in range(leaves.size):
        up, down = leaves.copy(), leaves.copy()
        up[k] += h
        down[k] -= h
        grads[k] = (_evaluate(up, program["steps"])[-1] - _evaluate(down, program["steps"])[-1]) / (2 * h)
    return grads


def _reference(program: Program) -> dict[str, Any]:
    """What the engine computes on the program, checked against finite differences (one pass)."""
    expected = drive.run_program(Value, program["leaves"], program["steps"], program["passes"])
    one = drive.run_program(Value, program["leaves"], program["steps"], 1)
    n = len(program["leaves"])
    numeric = _numeric_leaf_grads(program)
    if np.any(mismatch(np.asarray(one["grads"][:n]), numeric)):
        raise OracleDisagreement("backward: the engine and finite differences disagree on a program")
    return {"expected": expected, "one": one}


def _forward_order(grads: np.ndarray, expected: np.ndarray, uses: list[list[tuple[int, float]]]) -> bool:
    """True when only the root and its own inputs got gradients: the root's shares, nothing more."""
    root = len(grads) - 1
    from_root = {s: sum(local for child, local in used if child == root) for s, used in enumerate(uses)}
    own = {s for s, used in enumerate(uses) if any(child == root for child, _ in used)}
    others = [s for s in range(root) if s not in own]
    return (
        _close(grads[root], 1.0)
        and all(_close(grads[s], from_root[s]) for s in own)
        and all(grads[s] == 0.0 for s in others)
        and any(abs(expected[s]) > 1e-6 for s in others)
    )


def _local_alone(
    grads: np.ndarray,
    right: np.ndarray,
    uses: list[list[tuple[int, float]]],
    steps: Sequence[Sequence[Any]],
    n: int,
) -> bool:
    """Whether each node received the bare sum of its local derivatives, without the upstream factor.

    Judged on the nodes used only by ops with a rule of their own: the class may build -, / and
    unary minus from other ops, with nodes of its own in between.
    """
    slots = [
        slot
        for slot in range(grads.size - 1)
        if uses[slot] and all(str(steps[child - n][0]) not in BUILT_FROM_OTHERS for child, _ in uses[slot])
    ]
    bare = [sum(local for _, local in uses[slot]) for slot in slots]
    return (
        bool(slots) and _close(grads[slots], bare) and not _close(np.asarray(right, dtype=float)[slots], bare)
    )


def _grads_problem(program: Program, got: Any, reference: dict[str, Any], adds: bool = False) -> str | None:
    """None when values and gradients are right; else the first thing wrong, in words.

    ``adds``: the class was right on one node using a value twice, so it adds at merges and its
    local rules are right, and a node short of contributions was visited too early.
    """
    if not isinstance(got, dict):
        return f"could not be read back ({type_name(got)})"
    leaves, steps = program["leaves"], program["steps"]
    n = len(leaves)
    expected = reference["expected"]
    values = np.asarray(got.get("values", []), dtype=float)
    if values.shape != (n + len(steps),):
        return "the program's nodes could not all be read back"
    wrong = [k for k in range(n, values.size) if not _close(values[k], expected["values"][k])]
    if wrong:
        k = wrong[0] - n
        return WRONG_NODE_VALUE.format(op=steps[k][0], k=k + 1)
    if got.get("kind"):
        return GRAD_NOT_NUMBER.format(kind=got["kind"])
    grads = np.asarray(got.get("grads", []), dtype=float)
    if not np.all(np.isfinite(grads)):
        return NOT_FINITE
    right = np.asarray(expected["grads"], dtype=float)
    if _close(grads, right):
        return None
    if program["passes"] > 1:
        return _second_pass_problem(grads, reference, n)
    if not grads.any():
        return NO_SEED
    if not _close(grads[-1], 1.0):
        return BAD_SEED.format(got=grads[-1])
    uses = _uses(expected["values"], steps, n)
    if _forward_order(grads, right, uses):
        return WRONG_ORDER
    if _local_alone(grads, right, uses, steps, n):
        return NO_UPSTREAM
    for slot in reversed(range(grads.size - 1)):
        shares = [grads[child] * local for child, local in uses[slot]]
        if _close(grads[slot], sum(shares)):
            continue
        name = (
            f"the leaf x{slot + 1}"
            if slot < n
            else f"the node made by {steps[slot - n][0]} at step {slot - n + 1}"
        )
        if adds:
            return f"{name} {VISITED_EARLY}"
        if len(shares) > 1 and any(_close(grads[slot], share) for share in shares):
            return f"{name} {OVERWRITTEN.format(k=f'{len(shares):,}')}"
        return f"{name} {INCOMPLETE}"
    return f"{int(np.sum(mismatch(grads, right, ATOL, RTOL)))} of the {grads.size} gradients are wrong"


def _second_pass_problem(grads: np.ndarray, reference: dict[str, Any], n: int) -> str:
    one = np.asarray(reference["one"]["grads"], dtype=float)
    if not _close(grads[n:], one[n:]):
        return NOT_RESET
    if _close(grads[:n], one[:n]):
        return LEAVES_RESET
    return "after a second backward() the leaves' gradients are not twice those of one pass"


def _run(call: Call, program: Program) -> tuple[Any, str | None]:
    """What the learner's class computed on ``program``, or the problem that stopped it."""
    try:
        return call(program), None
    except (NotImplementedError, GradingStop):
        raise
    except Exception as exc:
        if _is_recursion_error(exc):
            return None, TOO_DEEP.format(n=len(program["steps"]))
        return None, learner_error(exc)


def _line(call: Call, programs: Sequence[Program], adds: bool = False) -> str | None:
    for program in programs:
        reference = _reference(program)
        got, problem = _run(call, program)
        problem = problem or _grads_problem(program, got, reference, adds)
        if problem is not None:
            return problem
    return None


def _judge_backward(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    trials = exercise.trials
    trees = _line(call, [_program(rng, merges=False) for _ in range(trials)])
    reuse = _line(call, [_twice_by_one_node(rng) for _ in range(trials)])
    merges = _line(call, [_program(rng, merges=True) for _ in range(trials)], adds=reuse is None)
    chain = _line(call, [_chain(rng)])
    twice_programs = [{**_program(rng, merges=True), "passes": 2} for _ in range(trials)]
    one_pass_right = trees is None and merges is None
    twice = _line(call, twice_programs) if one_pass_right else ONE_PASS_FIRST
    lines = [
        Line("trees (each value used once)", trees is None, trees or ""),
        Line("one node using a value twice (x × x, y + y)", reuse is None, reuse or ""),
        Line("graphs with merges (a value on two paths)", merges is None, merges or ""),
        Line(f"a chain of {CHAIN:,} nodes", chain is None, chain or ""),
        Line("backward() twice on the same graph", twice is None, twice or ""),
    ]
    return weighted_verdict(exercise, lines)  # a point each


BACKWARD = Exercise(
    name="backward",
    notebook=NOTEBOOK,
    signature="Scalar.order() -> list; Scalar.backward() -> None",
    summary="the whole class: seed 1, walk the order reversed, upstream × local, sum at merges",
    outputs=("grads",),
    points=5,
    make_inputs=lambda rng: _twice_by_one_node(rng),
    judge=_judge_backward,
    revisit="the backward pass: an iterative order, the seed, the reverse walk and the sum at merges",
    trials=3,
    instead="write the backward pass yourself",
    answer="Scalar",
    driver=drive.run_program,
)

EXERCISES = [SCALAR, ORDER, BACKWARD]
