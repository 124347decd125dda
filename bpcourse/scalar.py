"""The scalar engine: ``Value`` nodes built from a table of node-local rules.

Every op is one row of ``SCALAR_OPS``: a rule that takes the op's inputs and
returns its output together with the local partial derivatives
d(out)/d(input), side by side as in the course's rules table. When a node is
made, those partials are stored on it as plain floats, so the backward pass is
the same two lines for every op::

    parent.grad += node.grad * local          # upstream times local derivative

and a parent used by several children collects one such term from each (the
sum at a merge).

Design notes.

* A node stores at most two parents in slots of its own (``_a``, ``_b``) and
  never a function, so graphs hold no reference cycles and are freed by
  reference counting as soon as they are dropped. Per node there is a single
  object for Python's cycle collector to track (micrograd's per-node closures
  and tuples make that collector most of its forward cost).
* ``backward()`` orders the graph with an iterative depth-first search: no
  recursion limit, a chain of a million nodes works.
* Gradient policy, as in PyTorch: ``backward()`` ADDS into the ``.grad`` of
  leaves (inputs and parameters), so calling it twice doubles their gradients;
  clear them with ``zero_grad``. Interior nodes are reset at the start of each
  pass and hold the gradient of the latest pass only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bpcourse import kinks

Number = int | float


# -- the rules table: each op's forward value and local partials together -----------
def _add(x: float, y: float) -> tuple[float, float, float]:
    return x + y, 1.0, 1.0


def _sub(x: float, y: float) -> tuple[float, float, float]:
    return x - y, 1.0, -1.0


def _mul(x: float, y: float) -> tuple[float, float, float]:
    return x * y, y, x


def _div(x: float, y: float) -> tuple[float, float, float]:
    try:
        out = x / y
    except ZeroDivisionError:
        raise ZeroDivisionError(f"div: {x!r} / {y!r} divides by zero") from None
    return out, 1.0 / y, -out / y


def _neg(x: float) -> tuple[float, float]:
    return -x, -1.0


def _pow(x: float, n: float) -> tuple[float, float]:
    if x > 0.0:  # the usual case; Python's float ** covers it, overflow aside
        try:
            return x**n, n * x ** (n - 1)
        except OverflowError:
            raise OverflowError(f"pow: {x!r} ** {n!r} overflows a float") from None
    return _pow_at_nonpositive(x, n)


def _pow_at_nonpositive(x: float, n: float) -> tuple[float, float]:
    """x^n and n x^(n-1) for x <= 0 (or NaN), where n x^(n-1) alone would divide by 0 or turn complex."""
    if x == 0.0:
        if n == 0:
            return 1.0, 0.0  # x^0 = 1 for every x (0^0 = 1, as in Python and numpy): a constant, slope 0
        if n < 0:
            raise ZeroDivisionError(f"pow: 0.0 ** {n!r} divides by zero (x^n with n < 0 has a pole at x = 0)")
        # 0 < n < 1: the curve leaves 0 vertically (√x at 0), so the slope is +inf, as numpy says
        return 0.0, (n * 0.0 ** (n - 1) if n >= 1 else math.inf)
    if x < 0.0 and not float(n).is_integer():
        raise ValueError(
            f"pow: {x!r} ** {n!r} is not a real number: a negative base needs a whole exponent "
            "(for the real cube root of a negative x, write -((-x) ** (1/3)))"
        )
    try:
        return x**n, n * x ** (n - 1)
    except OverflowError:
        raise OverflowError(f"pow: {x!r} ** {n!r} overflows a float") from None


def _exp(x: float) -> tuple[float, float]:
    try:
        out = math.exp(x)
    except OverflowError:
        raise OverflowError(f"exp: e ** {x!r} overflows a float (e^x does above x = 709.78)") from None
    return out, out


def _log(x: float) -> tuple[float, float]:
    if x <= 0.0:
        raise ValueError(f"log: ln x needs x > 0, got x = {x!r}")
    return math.log(x), 1.0 / x


def _tanh(x: float) -> tuple[float, float]:
    out = math.tanh(x)
    return out, 1.0 - out * out


def _sigmoid(x: float) -> tuple[float, float]:
    # Two branches so that exp never overflows.
    if x >= 0.0:
        out = 1.0 / (1.0 + math.exp(-x))
    else:
        e = math.exp(x)
        out = e / (1.0 + e)
    return out, out * (1.0 - out)


def _relu(x: float) -> tuple[float, float]:
    # relu'(0) is taken as 0; a gradient check treats 0 as a kink (kinks.py).
    if kinks.active is not None:
        kinks.note(x > 0.0)
    if x > 0.0:
        return x, 1.0
    return (0.0, 0.0) if x <= 0.0 else (x, x)  # NaN is neither: it stays NaN, value and slope


@dataclass(frozen=True)
class ScalarOp:
    """One row of the rules table: ``rule(*inputs) -> (out, *local_partials)``."""

    name: str
    arity: int
    symbol: str
    math: str
    rule: Callable[..., tuple[float, ...]]


SCALAR_OPS: dict[str, ScalarOp] = {op.name: op for op in (
    #        op         inputs symbol  forward; local partials
    ScalarOp("add",     2, "+",    "z = x + y;  dz/dx = 1, dz/dy = 1", _add),
    ScalarOp("sub",     2, "-",    "z = x - y;  dz/dx = 1, dz/dy = -1", _sub),
    ScalarOp("mul",     2, "×",    "z = x y;  dz/dx = y, dz/dy = x", _mul),
    ScalarOp("div",     2, "÷",    "z = x / y;  dz/dx = 1/y, dz/dy = -z/y", _div),
    ScalarOp("neg",     1, "neg",  "z = -x;  dz/dx = -1", _neg),
    ScalarOp("pow",     1, "**",   "z = x^n (n constant);  dz/dx = n x^(n-1)", _pow),
    ScalarOp("exp",     1, "exp",  "z = e^x;  dz/dx = z", _exp),
    ScalarOp("log",     1, "log",  "z = ln x;  dz/dx = 1/x", _log),
    ScalarOp("tanh",    1, "tanh", "z = tanh x;  dz/dx = 1 - z^2", _tanh),
    ScalarOp("sigmoid", 1, "σ",    "z = 1/(1 + e^-x);  dz/dx = z (1 - z)", _sigmoid),
    ScalarOp("relu",    1, "relu", "z = max(0, x);  dz/dx = 1[x > 0]", _relu),
)}  # fmt: skip


class Value:
    """A scalar node of a computation graph.

    ``data`` is the forward value and ``grad`` is dL/d(this node) once
    ``L.backward()`` has run. ``parents`` are the nodes this one was computed
    from and ``partials`` the local derivatives d(this)/d(parent), in order.
    """

    __slots__ = ("data", "grad", "op", "label", "_a", "_b", "_da", "_db")

    def __init__(
        self,
        data: Number,
        label: str = "",
        _a: Value | None = None,
        _b: Value | None = None,
        _da: float = 0.0,
        _db: float = 0.0,
        _op: str = "",
    ) -> None:
        self.data = data if type(data) is float else float(data)
        self.grad = 0.0
        self.op = _op
        self.label = label
        self._a, self._b, self._da, self._db = _a, _b, _da, _db

    @property
    def parents(self) -> tuple[Value, ...]:
        """The nodes this one was computed from (empty for a leaf)."""
        if self._a is None:
            return ()
        return (self._a,) if self._b is None else (self._a, self._b)

    @property
    def partials(self) -> tuple[float, ...]:
        """d(this)/d(parent) for each parent, in the order of ``parents``."""
        if self._a is None:
            return ()
        return (self._da,) if self._b is None else (self._da, self._db)

    # -- making nodes from the rules table ----------------------------------------
    def _unary(self, name: str, rule: Callable[..., tuple[float, float]], *const: Number) -> Value:
        out, local = rule(self.data, *const)
        return Value(out, "", self, None, local, 0.0, name)

    def _binary(
        self, name: str, rule: Callable[..., tuple[float, float, float]], x: Value | Number, y: Value | Number
    ) -> Value:
        if not isinstance(x, Value):
            x = Value(x)
        if not isinstance(y, Value):
            y = Value(y)
        out, dx, dy = rule(x.data, y.data)
        return Value(out, "", x, y, dx, dy, name)

    def __add__(self, other: Value | Number) -> Value:
        return self._binary("add", _add, self, other)

    def __radd__(self, other: Number) -> Value:
        return self._binary("add", _add, other, self)

    def __sub__(self, other: Value | Number) -> Value:
        return self._binary("sub", _sub, self, other)

    def __rsub__(self, other: Number) -> Value:
        return self._binary("sub", _sub, other, self)

    def __mul__(self, other: Value | Number) -> Value:
        return self._binary("mul", _mul, self, other)

    def __rmul__(self, other: Number) -> Value:
        return self._binary("mul", _mul, other, self)

    def __truediv__(self, other: Value | Number) -> Value:
        return self._binary("div", _div, self, other)

    def __rtruediv__(self, other: Number) -> Value:
        return self._binary("div", _div, other, self)

    def __neg__(self) -> Value:
        return self._unary("neg", _neg)

    def __pow__(self, exponent: Number) -> Value:
        if isinstance(exponent, bool) or not isinstance(exponent, int | float):
            raise TypeError("Value ** n takes a constant int or float exponent n")
        return self._unary("pow", _pow, exponent)

    def exp(self) -> Value:
        return self._unary("exp", _exp)

    def log(self) -> Value:
        return self._unary("log", _log)

    def tanh(self) -> Value:
        return self._unary("tanh", _tanh)

    def sigmoid(self) -> Value:
        return self._unary("sigmoid", _sigmoid)

    def relu(self) -> Value:
        return self._unary("relu", _relu)

    # -- reverse mode --------------------------------------------------------------
    def backward(self, upstream: float = 1.0) -> None:
        """Fill ``.grad`` of every node this one depends on with d(self)/d(node).

        Visits the nodes in reverse topological order; each node hands
        ``upstream * local`` to each parent, and a parent with several children
        sums what they hand it. Leaves accumulate across calls (see module doc).
        """
        order = topological_order(self)
        for node in order:
            if node._a is not None:
                node.grad = 0.0
        self.grad += upstream
        for node in reversed(order):
            parent = node._a
            if parent is not None:
                g = node.grad
                parent.grad += g * node._da
                parent = node._b
                if parent is not None:
                    parent.grad += g * node._db

    def zero_grad(self) -> None:
        """Set ``.grad`` of this node and of everything it depends on to 0."""
        zero_grad(topological_order(self))

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.6g}, grad={self.grad:.6g})"


def topological_order(root: Value) -> list[Value]:
    """The nodes under ``root``, each after its parents (root last).

    The same iterative post-order as :func:`bpcourse.graph.topological_order`,
    written out for the two parent slots of ``Value``: the backward pass of a
    large scalar graph spends a good part of its time here.
    """
    order: list[Value] = []
    visited = {root}
    stack = [root]
    push, pop, emit, mark = stack.append, stack.pop, order.append, visited.add
    while stack:
        node = stack[-1]
        parent = node._a
        if parent is not None and parent not in visited:
            mark(parent)
            push(parent)
            continue
        parent = node._b
        if parent is not None and parent not in visited:
            mark(parent)
            push(parent)
            continue
        pop()
        emit(node)
    return order


def zero_grad(nodes: Iterable[Value]) -> None:
    """Set ``.grad`` of each given node to 0 (call between training steps)."""
    for node in nodes:
        node.grad = 0.0
