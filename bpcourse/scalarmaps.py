"""The error maps of the scalar exercises (notebooks 00 to 02): the learner's gradients on a graph.

``rule_map``: the exercises that return the gradients of their inputs, a
node's backward rule (``mul_backward``: z = x × y, with the upstream
gradient given) or a whole small graph (``worked_example_grads``: u = x·y,
v = u + y, L = v²). Each is drawn as its graph with the learner's gradient on
each input, right or off, and the upstream gradient it was given on the
output. ``backward_map``: the exercise ``backward``, which fills ``.grad`` on
every node of a graph; each node carries the learner's gradient.

The drawing is ``bpcourse.graphmap.graph_map``: it colours the first node,
walking back from the loss, where the learner's gradients part from the
right ones. The right gradients are never written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from bpcourse.exercises.core import Exercise, Inputs, NotGradable, as_outputs
from bpcourse.gradcheck import mismatch
from bpcourse.graph import topological_order
from bpcourse.graphmap import DATA_NOTE, graph_map, marks_of
from bpcourse.minigraph import Node, reference_grads, to_values
from bpcourse.scalar import Value

Built = tuple[Value, list[Value]]  # the graph's output, and the inputs whose gradients are returned


def _named(node: Value, label: str) -> Value:
    node.label = label
    return node


def _binary(op: Callable[[Value, Value], Value]) -> Callable[[Inputs], Built]:
    def build(inputs: Inputs) -> Built:
        x, y = Value(float(inputs["x"]), "x"), Value(float(inputs["y"]), "y")
        return _named(op(x, y), "z"), [x, y]

    return build


def _pow(inputs: Inputs) -> Built:
    x = Value(float(inputs["x"]), "x")
    return _named(x ** float(inputs["n"]), "z"), [x]


def _unary(method: str, inverse: Callable[[float], float]) -> Callable[[Inputs], Built]:
    def build(inputs: Inputs) -> Built:
        x = Value(inverse(float(inputs["out"])), "x")  # the rule is given the cached output z = f(x)
        return _named(getattr(x, method)(), "z"), [x]

    return build


def _worked_example(inputs: Inputs) -> Built:
    x, y = Value(float(inputs["x"]), "x"), Value(float(inputs["y"]), "y")
    v = _named(_named(x * y, "u") + y, "v")
    return _named(v**2, "L"), [x, y]


def _practice(inputs: Inputs) -> Built:
    x, y = Value(float(inputs["x"]), "x"), Value(float(inputs["y"]), "y")
    b = _named(x * _named(x + y, "a"), "b")
    return _named(b**2, "L"), [x, y]


# The graphs of the scalar exercises that return their inputs' gradients, by exercise name.
SCALAR_GRAPHS: dict[str, Callable[[Inputs], Built]] = {
    "sub_backward": _binary(lambda a, b: a - b),
    "add_backward": _binary(lambda a, b: a + b),
    "mul_backward": _binary(lambda a, b: a * b),
    "pow_backward": _pow,
    "exp_backward": _unary("exp", math.log),
    "tanh_backward": _unary("tanh", math.atanh),
    "worked_example_grads": _worked_example,
    "practice_grads": _practice,
}


def floats(values: Sequence[Any]) -> np.ndarray | None:
    """The values as a float array; None unless each is one finite number."""
    try:
        array = np.array([float(np.asarray(v).reshape(())) for v in values])
    except (TypeError, ValueError):
        return None
    return array if np.isfinite(array).all() else None


def rule_map(exercise: Exercise, inputs: Inputs, returned: Any) -> Figure | None:
    """The exercise's graph with the learner's input gradients; None when they are right or not numbers."""
    try:
        got = floats(as_outputs(returned, exercise.outputs))
        root, leaves = SCALAR_GRAPHS[exercise.name](inputs)
    except (NotGradable, KeyError, TypeError, ValueError):  # arrays: tanh_backward of notebook 03
        return None
    expected = floats(exercise.reference(**inputs)) if exercise.reference is not None else None
    if got is None or expected is None or len(got) != len(leaves):
        return None
    wrong = mismatch(got, expected, exercise.atol, exercise.rtol)
    if not wrong.any():
        return None
    given = {}
    if "upstream" in inputs:
        given[id(root)] = (f"upstream {float(inputs['upstream']) + 0.0:.3g} (given)", DATA_NOTE)
    names = " and ".join(exercise.outputs)
    return graph_map(root, marks_of(leaves, got, expected, wrong), f"{exercise.name}: your {names}", given)


def backward_map(exercise: Exercise, root: Node, grads: Sequence[Any]) -> Figure | None:
    """The graph under ``root`` with the gradient the learner's ``backward`` left on each node."""
    nodes = topological_order(root)
    got = floats(grads)
    if got is None or len(got) != len(nodes):
        return None
    expected = reference_grads(root, nodes)
    wrong = mismatch(got, expected, exercise.atol, exercise.rtol)
    if not wrong.any():
        return None
    values = to_values(root)
    marks = marks_of([values[id(node)] for node in nodes], got, expected, wrong)
    return graph_map(values[id(root)], marks, f"{exercise.name}: your gradients on the graph")
