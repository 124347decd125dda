"""Drivers: course code that exercises a learner's scalar class, wherever the class lives.

An exercise whose answer is a class (notebook 08: the learner's own ``Scalar``)
cannot be called with inputs like a function. A driver takes the class and
plain data (numbers, op names, slot numbers), builds expressions with it,
runs its ``backward()``, and returns what the class computed as plain numbers,
which travel back over the grader's wire. The class grader's worker calls
drivers inside the sandbox (``bpcourse.grading.worker``), and the notebook's
self-check calls them in the notebook, so both judge the same thing.

A driver only builds and reads: it holds no derivative and no reference
answer, so seeing it in the sandbox tells a learner nothing. The judges
compare what it returns with the engine (``bpcourse.Value``, driven by the
same functions) and with finite differences, in the grader.

The class's contract, stated in notebook 08: ``cls(data)`` makes a leaf with
``.data`` (a float) and ``.grad`` (0.0); every node records ``.parents`` and,
aligned with them, ``.local_grads``; ``+ - * /`` take a node or a number on
either side, ``** n`` a constant number; ``exp()``, ``tanh()``, ``relu()``;
``backward()`` fills ``.grad`` of every node under the one it is called on.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

# A program is a list of steps [op, i, j]: slots 0..n-1 are the leaves, each step makes the next
# slot from earlier slots i and j (j is a constant number for "pow"; unused by one-input ops).
BINARY = {"add": "+", "mul": "*", "sub": "-", "truediv": "/"}
UNARY = ("neg", "exp", "tanh", "relu")
OPS = (*BINARY, *UNARY, "pow")


def _number(x: Any) -> float:
    """``x`` as a float when it is a real number, else NaN (the judge says what it was)."""
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x)
    return math.nan


def _kind(x: Any) -> str:
    """ "" for a real number, else the name of what it is."""
    return "" if isinstance(x, numbers.Real) and not isinstance(x, bool) else type(x).__name__


def _apply(op: str, a: Any, b: Any) -> Any:
    """The learner's class applied: ``a op b`` (b a node or a number), or ``op(a)``."""
    if op == "add":
        return a + b
    if op == "mul":
        return a * b
    if op == "sub":
        return a - b
    if op == "truediv":
        return a / b
    if op == "pow":
        return a**b
    if op == "neg":
        return -a
    if op in ("exp", "tanh", "relu"):
        return getattr(a, op)()
    raise ValueError(f"unknown op {op!r}")


def one_op(cls: type, op: str, x: float, y: float) -> dict[str, Any]:
    """One op of ``cls`` on leaves ``a = cls(x)`` and ``b = cls(y)``; what the new node recorded.

    ``op``: one of ``OPS``, or "radd" (the number y on the left: ``y + a``) or "rmul" (``y * a``).
    For "pow" and the one-input ops only ``a`` is made (y is the exponent, or unused).

    Returns:
        {"value": out.data, "value_kind": "" or its type's name, "parents": one entry per
        recorded parent, 0 for a, 1 for b, -1 for any other node (a constant's leaf),
        "local": the recorded local_grads as floats, "local_kind": "" or what one of them is}.
    """
    a = cls(x)
    if op == "radd":
        out, b = y + a, None
    elif op == "rmul":
        out, b = y * a, None
    elif op in BINARY:
        b = cls(y)
        out = _apply(op, a, b)
    else:
        out, b = _apply(op, a, y), None
    parents = list(getattr(out, "parents", ()))
    local = list(getattr(out, "local_grads", ()))
    return {
        "value": _number(getattr(out, "data", None)),
        "value_kind": _kind(getattr(out, "data", None)),
        "parents": [0 if p is a else 1 if (b is not None and p is b) else -1 for p in parents],
        "local": [_number(g) for g in local],
        "local_kind": next((_kind(g) for g in local if _kind(g)), ""),
        "through": _through(out, (a, b)),
    }


def _through(out: Any, targets: Sequence[Any]) -> list[float]:
    """d out / d target for each target, summed over every path of recorded local derivatives.

    The chain rule walked by hand over the few nodes an op made, without the class's own backward
    pass: this judges ops built from others (``a - b = a + (-b)``) by the rules of their parts.
    """
    totals = [0.0] * len(targets)
    stack = [(out, 1.0, 0)]
    while stack:
        node, weight, depth = stack.pop()
        for k, target in enumerate(targets):
            if target is not None and node is target:
                totals[k] += weight
        if depth >= 8:
            continue
        parents = getattr(node, "parents", ())
        local = getattr(node, "local_grads", ())
        try:
            pairs = list(zip(parents, local, strict=False))
        except TypeError:
            continue
        for parent, g in pairs:
            stack.append((parent, weight * _number(g), depth + 1))
    return totals


def run_program(
    cls: type, leaves: Sequence[float], steps: Sequence[Sequence[Any]], passes: int
) -> dict[str, Any]:
    """Build the program's expression with ``cls``, call ``backward()`` on its last node ``passes`` times.

    Args:
        cls: the class (a learner's, or ``bpcourse.Value``).
        leaves: the leaves' values, slots 0..n-1.
        steps: [op, i, j] for each further slot (see ``OPS``).
        passes: how many times ``backward()`` is called on the root (the last slot).

    Returns:
        {"values": each slot's .data, "grads": each slot's .grad (lists of floats, NaN where
        it was not a number), "kind": "" or the type of the first .grad that was not a number}.
    """
    nodes = [cls(float(v)) for v in leaves]
    for op, i, j in steps:
        operand = j if op == "pow" else nodes[int(j)] if op in BINARY else None
        nodes.append(_apply(str(op), nodes[int(i)], operand))
    root = nodes[-1]
    for _ in range(int(passes)):
        root.backward()
    grads = [getattr(node, "grad", None) for node in nodes]
    return {
        "values": [_number(getattr(node, "data", None)) for node in nodes],
        "grads": [_number(g) for g in grads],
        "kind": next((_kind(g) for g in grads if _kind(g)), ""),
    }
