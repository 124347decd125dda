"""Forward mode, for comparing with reverse mode (backprop).

Forward mode carries, next to every value, a *tangent*: the derivative of that
value along one chosen input direction u. Each op maps input tangents to its
output tangent with the same local derivatives backprop uses, applied in the
forward direction: one pass gives the Jacobian-vector product J u. Reverse mode
gives the vector-Jacobian product wᵀ J in one pass. For f: Rⁿ -> Rᵐ a full
Jacobian costs n forward passes (one per column) or m reverse passes (one per
row); a loss has m = 1, which is why training uses reverse mode.

* ``Dual``: scalar dual numbers driven by the scalar rules table
  (``bpcourse.scalar.SCALAR_OPS``): tangent_out = Σ local_i · tangent_i.
* ``jvp`` / ``vjp``: for functions of tensors, through the tensor op table's
  ``jvp`` and ``vjp`` rules.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpcourse.scalar import SCALAR_OPS, Number
from bpcourse.tensor import Tensor

TensorFunction = Callable[[Tensor], Tensor]


class Dual:
    """A scalar with a tangent: ``value`` and d(value)/dt along one direction."""

    __slots__ = ("value", "tangent")

    def __init__(self, value: Number, tangent: Number = 0.0) -> None:
        self.value = float(value)
        self.tangent = float(tangent)

    def _unary(self, name: str, *const: Number) -> Dual:
        out, local = SCALAR_OPS[name].rule(self.value, *const)
        return Dual(out, local * self.tangent)

    @staticmethod
    def _binary(name: str, x: Dual | Number, y: Dual | Number) -> Dual:
        x = x if isinstance(x, Dual) else Dual(x)
        y = y if isinstance(y, Dual) else Dual(y)
        out, dx, dy = SCALAR_OPS[name].rule(x.value, y.value)
        return Dual(out, dx * x.tangent + dy * y.tangent)

    def __add__(self, other: Dual | Number) -> Dual:
        return Dual._binary("add", self, other)

    def __radd__(self, other: Number) -> Dual:
        return Dual._binary("add", other, self)

    def __sub__(self, other: Dual | Number) -> Dual:
        return Dual._binary("sub", self, other)

    def __rsub__(self, other: Number) -> Dual:
        return Dual._binary("sub", other, self)

    def __mul__(self, other: Dual | Number) -> Dual:
        return Dual._binary("mul", self, other)

    def __rmul__(self, other: Number) -> Dual:
        return Dual._binary("mul", other, self)

    def __truediv__(self, other: Dual | Number) -> Dual:
        return Dual._binary("div", self, other)

    def __rtruediv__(self, other: Number) -> Dual:
        return Dual._binary("div", other, self)

    def __neg__(self) -> Dual:
        return self._unary("neg")

    def __pow__(self, exponent: Number) -> Dual:
        return self._unary("pow", exponent)

    def exp(self) -> Dual:
        return self._unary("exp")

    def log(self) -> Dual:
        return self._unary("log")

    def tanh(self) -> Dual:
        return self._unary("tanh")

    def sigmoid(self) -> Dual:
        return self._unary("sigmoid")

    def relu(self) -> Dual:
        return self._unary("relu")

    def __repr__(self) -> str:
        return f"Dual({self.value:.6g}, tangent={self.tangent:.6g})"


def derivative(f: Callable[[Dual], Dual], x: Number) -> tuple[float, float]:
    """(f(x), f'(x)) for a scalar function written with ordinary operators, in one forward pass."""
    out = f(Dual(x, 1.0))
    return out.value, out.tangent


def jvp(f: TensorFunction, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward mode: ``(f(x), J u)`` in one pass, J the Jacobian of f at x.

    ``f`` maps a Tensor to a Tensor using engine ops; ``u`` has x's shape and
    the result J u has f(x)'s shape.
    """
    x = np.asarray(x)
    out = f(Tensor(x, requires_grad=False, tangent=u))
    tangent = np.zeros_like(out.data) if out.tangent is None else out.tangent
    return out.data, tangent


def vjp(f: TensorFunction, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reverse mode: ``(f(x), Jᵀ w)`` in one backward pass.

    ``w`` has f(x)'s shape and the result Jᵀ w has x's shape.
    """
    inp = Tensor(np.asarray(x), requires_grad=True)
    out = f(inp)
    out.backward(np.asarray(w, dtype=out.dtype).reshape(out.shape))
    grad = np.zeros_like(inp.data) if inp.grad is None else inp.grad
    return out.data, grad


def jacobian_by_jvp(f: TensorFunction, x: np.ndarray) -> np.ndarray:
    """The (m, n) Jacobian of f at x (flattened), one forward pass per input entry (column)."""
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for j in range(x.size):
        u = np.zeros(x.size)
        u[j] = 1.0
        columns.append(jvp(f, x, u.reshape(x.shape))[1].reshape(-1))
    return np.stack(columns, axis=1)


def jacobian_by_vjp(f: TensorFunction, x: np.ndarray) -> np.ndarray:
    """The (m, n) Jacobian of f at x (flattened), one reverse pass per output entry (row)."""
    x = np.asarray(x, dtype=np.float64)
    out_shape = np.shape(f(Tensor(x, requires_grad=False)).data)
    m = int(np.prod(out_shape))
    rows = []
    for i in range(m):
        w = np.zeros(m)
        w[i] = 1.0
        rows.append(vjp(f, x, w.reshape(out_shape))[1].reshape(-1))
    return np.stack(rows, axis=0)
