"""The tensor engine: nodes over numpy arrays, built from a table of ops.

Each op is one class in ``TENSOR_OPS`` holding, side by side:

* ``forward(*arrays, **params) -> (out, saved)``: the value, plus what the
  backward rule needs from the forward pass (the cache);
* ``vjp(upstream, saved, needs) -> grads``: the node-local backward rule, a
  vector-Jacobian product: upstream gradient in, one gradient per input out
  (``None`` where ``needs`` says that input wants no gradient);
* ``jvp(tangents, saved) -> tangent``: the same local derivative used in
  forward mode, a Jacobian-vector product.

Conventions of the course: column vectors, z = W x + b with W of shape (m, n),
a batch X of shape (n, B) with one example per column, b of shape (m, 1)
broadcast across the columns. Beyond them the engine follows numpy: any bias
that broadcasts to W X, and ``@`` with 1-D or stacked (batched) operands, get
the gradient numpy's broadcasting implies (``unbroadcast`` sums the copies);
shapes numpy would refuse are refused in the forward pass, naming the op and
the shapes.

Gradient policy, as in PyTorch: ``backward()`` adds into the ``.grad`` of
leaves (parameters and inputs created with ``requires_grad=True``), reusing
the same buffer from step to step; ``zero_grad`` fills it with zeros. Interior
nodes hold the gradient of the latest pass. ``backward()`` refuses a result
that has no graph (made under ``no_grad`` or from constants only) and a graph
one of whose tensors had its ``.data`` reassigned or updated in place with an
augmented assignment (``p.data -= lr * p.grad``) after the graph was built:
every tensor counts those updates (its version), as PyTorch does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from bpcourse import kinks
from bpcourse.graph import topological_order

ArrayLike = Any  # anything np.asarray accepts


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``, undoing numpy broadcasting.

    An input that was broadcast (a bias (m, 1) added to every column of an
    (m, B) array) was used once per copy, so its gradient is the sum of the
    copies' gradients: this is the merge rule applied to broadcasting.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class TensorOp:
    """Base of the op table: what every op class states, side by side.

    ``forward(*arrays, **params) -> (out, saved)``,
    ``vjp(upstream, saved, needs) -> one gradient (or None) per input`` and
    ``jvp(tangents, saved) -> the output's tangent``, all static methods.
    ``register`` refuses an op class that does not define all three itself,
    so a missing rule fails loudly when the module is imported.
    """

    name: ClassVar[str]
    symbol: ClassVar[str]
    forward: ClassVar[Callable[..., tuple[np.ndarray, Any]]]
    vjp: ClassVar[Callable[[np.ndarray, Any, Sequence[bool]], tuple[np.ndarray | None, ...]]]
    jvp: ClassVar[Callable[[Sequence[np.ndarray], Any], np.ndarray]]


TENSOR_OPS: dict[str, type[TensorOp]] = {}


def register(op: type[TensorOp]) -> type[TensorOp]:
    """Add an op class to the table (a class decorator)."""
    for rule in ("forward", "vjp", "jvp"):
        if rule not in vars(op):
            raise TypeError(f"op {op.__name__} must define its own {rule} rule")
    TENSOR_OPS[op.name] = op
    return op


# -- elementwise arithmetic (numpy broadcasting; unbroadcast on the way back) -------
@register
class Add(TensorOp):
    """z = x + y;  dL/dx = g, dL/dy = g (each summed to its own shape)."""

    name, symbol = "add", "+"

    @staticmethod
    def forward(x, y):
        return x + y, (x.shape, y.shape)

    @staticmethod
    def vjp(g, saved, needs):
        xs, ys = saved
        return unbroadcast(g, xs), unbroadcast(g, ys)

    @staticmethod
    def jvp(tangents, saved):
        return tangents[0] + tangents[1]


@register
class Sub(TensorOp):
    """z = x - y;  dL/dx = g, dL/dy = -g."""

    name, symbol = "sub", "-"

    @staticmethod
    def forward(x, y):
        return x - y, (x.shape, y.shape)

    @staticmethod
    def vjp(g, saved, needs):
        xs, ys = saved
        return unbroadcast(g, xs), (unbroadcast(-g, ys) if needs[1] else None)

    @staticmethod
    def jvp(tangents, saved):
        return tangents[0] - tangents[1]


@register
class Mul(TensorOp):
    """z = x ⊙ y;  dL/dx = g ⊙ y, dL/dy = g ⊙ x."""

    name, symbol = "mul", "×"

    @staticmethod
    def forward(x, y):
        return x * y, (x, y)

    @staticmethod
    def vjp(g, saved, needs):
        x, y = saved
        return (
            unbroadcast(g * y, x.shape) if needs[0] else None,
            unbroadcast(g * x, y.shape) if needs[1] else None,
        )

    @staticmethod
    def jvp(tangents, saved):
        x, y = saved
        return tangents[0] * y + x * tangents[1]


@register
class Div(TensorOp):
    """z = x / y;  dL/dx = g / y, dL/dy = -g ⊙ z / y."""

    name, symbol = "div", "÷"

    @staticmethod
    def forward(x, y):
        z = x / y
        return z, (x, y, z)

    @staticmethod
    def vjp(g, saved, needs):
        x, y, z = saved
        return (
            unbroadcast(g / y, x.shape) if needs[0] else None,
            unbroadcast(-g * z / y, y.shape) if needs[1] else None,
        )

    @staticmethod
    def jvp(tangents, saved):
        x, y, z = saved
        return (tangents[0] - z * tangents[1]) / y


@register
class Neg(TensorOp):
    """z = -x;  dL/dx = -g."""

    name, symbol = "neg", "neg"

    @staticmethod
    def forward(x):
        return -x, None

    @staticmethod
    def vjp(g, saved, needs):
        return (-g,)

    @staticmethod
    def jvp(tangents, saved):
        return -tangents[0]


# -- linear algebra -------------------------------------------------------------------
def _matmul(a: np.ndarray, b: np.ndarray, op: str, names: tuple[str, str]) -> np.ndarray:
    """``a @ b``, or a ValueError naming ``op``, the operands and their shapes (not numpy's gufunc text)."""
    try:
        return a @ b
    except ValueError:
        raise _matmul_shape_error(a.shape, b.shape, op, names) from None


def _matmul_shape_error(
    sa: tuple[int, ...], sb: tuple[int, ...], op: str, names: tuple[str, str]
) -> ValueError:
    """Why numpy's matmul refuses operands of shapes ``sa`` and ``sb``, in the course's words."""
    an, bn = names
    where = f"{op}: {an} has shape {sa} and {bn} has shape {sb}"
    if not sa or not sb:
        return ValueError(f"{where}; a matrix product needs at least one axis on each side (use * to scale)")
    inner = sb[-2] if len(sb) >= 2 else sb[0]
    if sa[-1] != inner:
        along_a = "columns" if len(sa) >= 2 else "entries"
        along_b = "rows" if len(sb) >= 2 else "entries"
        return ValueError(
            f"{where}: {an} has {sa[-1]} {along_a} but {bn} has {inner} {along_b}; they must agree"
        )
    return ValueError(f"{where}: their batch axes {sa[:-2]} and {sb[:-2]} do not broadcast")


def _matmul_vjp(
    g: np.ndarray, a: np.ndarray, b: np.ndarray, needs: Sequence[bool]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """dL/dA = G Bᵀ and dL/dB = Aᵀ G for Z = A @ B, under numpy's matmul rules.

    A 1-D left operand (n,) is used as a row (1, n) and a 1-D right operand
    (n,) as a column (n, 1), and numpy drops that axis from Z: put it back in
    G, apply the 2-D rules, and drop it from the gradient again. Stacked
    (batched) products broadcast their leading axes: ``unbroadcast`` sums the
    gradient of an operand used for several matrices of the stack.
    """
    if a.ndim == 2 and b.ndim == 2:  # the course's case, and a training step's hot path
        return (g @ b.T if needs[0] else None, a.T @ g if needs[1] else None)
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    if b.ndim == 1:
        g = np.expand_dims(g, -1)
    if a.ndim == 1:
        g = np.expand_dims(g, -2)
    return (
        unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if needs[0] else None,
        unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape) if needs[1] else None,
    )


@register
class MatMul(TensorOp):
    """Z = A B;  dL/dA = G Bᵀ, dL/dB = Aᵀ G (numpy's rules for 1-D and stacked operands)."""

    name, symbol = "matmul", "@"

    @staticmethod
    def forward(a, b):
        return _matmul(a, b, "matmul", ("A", "B")), (a, b)

    @staticmethod
    def vjp(g, saved, needs):
        a, b = saved
        return _matmul_vjp(g, a, b, needs)

    @staticmethod
    def jvp(tangents, saved):
        a, b = saved
        return tangents[0] @ b + a @ tangents[1]


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """True when an array of ``shape`` broadcasts to ``target`` without changing it."""
    return len(shape) <= len(target) and all(
        n == 1 or n == m for n, m in zip(reversed(shape), reversed(target), strict=False)
    )


@register
class Affine(TensorOp):
    """Z = W X + b, W (m, n), X (n, B), b (m, 1) broadcast over the B columns.

    With G = dL/dZ (m, B):  dL/dW = G Xᵀ,  dL/db = Σ_columns G,  dL/dX = Wᵀ G.
    Any bias that broadcasts to W X works ((m, B), (1, B), (B,), (): b's
    gradient sums G over the copies, by ``unbroadcast``), and W X follows the
    matmul op's rules (a 1-D x gives a 1-D z, of shape (m,)).
    """

    name, symbol = "affine", "Wx+b"

    @staticmethod
    def forward(w, x, b):
        wx = _matmul(w, x, "affine", ("W", "X"))
        if not _broadcasts_to(b.shape, wx.shape):
            raise _bias_shape_error(w.shape, x.shape, b.shape, wx.shape)
        return wx + b, (w, x, b.shape)

    @staticmethod
    def vjp(g, saved, needs):
        w, x, b_shape = saved
        return (*_matmul_vjp(g, w, x, needs), unbroadcast(g, b_shape) if needs[2] else None)

    @staticmethod
    def jvp(tangents, saved):
        w, x, _ = saved
        tw, tx, tb = tangents
        return tw @ x + w @ tx + tb


def _bias_shape_error(
    sw: tuple[int, ...], sx: tuple[int, ...], sb: tuple[int, ...], swx: tuple[int, ...]
) -> ValueError:
    """The bias would change the shape of W X (numpy would broadcast W X to a bigger array instead)."""
    usual = f"({swx[-2]}, 1)" if len(swx) >= 2 else str(swx)
    return ValueError(
        f"affine: b has shape {sb}, which does not broadcast to the shape {swx} of W X "
        f"(W {sw}, X {sx}); one bias per output is b of shape {usual}"
    )


# -- reductions and shape ---------------------------------------------------------------
@register
class Sum(TensorOp):
    """z = Σ x over ``axis`` (all axes when None);  dL/dx = g copied back over that axis."""

    name, symbol = "sum", "Σ"

    @staticmethod
    def forward(x, axis=None, keepdims=False):
        # np.asarray: a full reduction gives a numpy scalar, and node data is always an array.
        return np.asarray(x.sum(axis=axis, keepdims=keepdims)), (x.shape, axis, keepdims)

    @staticmethod
    def vjp(g, saved, needs):
        shape, axis, keepdims = saved
        if axis is not None and not keepdims:
            g = np.expand_dims(g, axis)
        return (np.broadcast_to(g, shape),)

    @staticmethod
    def jvp(tangents, saved):
        shape, axis, keepdims = saved
        return tangents[0].sum(axis=axis, keepdims=keepdims)


@register
class Mean(TensorOp):
    """z = mean of x over ``axis`` (N entries);  dL/dx = g / N copied back over that axis."""

    name, symbol = "mean", "mean"

    @staticmethod
    def forward(x, axis=None, keepdims=False):
        out = np.asarray(x.mean(axis=axis, keepdims=keepdims))
        count = x.size // max(out.size, 1)
        return out, (x.shape, axis, keepdims, count)

    @staticmethod
    def vjp(g, saved, needs):
        shape, axis, keepdims, count = saved
        if axis is not None and not keepdims:
            g = np.expand_dims(g, axis)
        return (np.broadcast_to(g / count, shape),)

    @staticmethod
    def jvp(tangents, saved):
        shape, axis, keepdims, count = saved
        return tangents[0].mean(axis=axis, keepdims=keepdims)


@register
class Reshape(TensorOp):
    """z = x viewed with a new shape;  dL/dx = g viewed with x's shape."""

    name, symbol = "reshape", "reshape"

    @staticmethod
    def forward(x, shape=()):
        out = x.reshape(shape)
        return out, (x.shape, out.shape)

    @staticmethod
    def vjp(g, saved, needs):
        return (g.reshape(saved[0]),)

    @staticmethod
    def jvp(tangents, saved):
        return tangents[0].reshape(saved[1])


@register
class Transpose(TensorOp):
    """z = xᵀ (axes reversed);  dL/dx = gᵀ."""

    name, symbol = "transpose", "ᵀ"

    @staticmethod
    def forward(x):
        return x.T, None

    @staticmethod
    def vjp(g, saved, needs):
        return (g.T,)

    @staticmethod
    def jvp(tangents, saved):
        return tangents[0].T


# -- elementwise functions (the activation rows of the rules table) --------------------
@register
class Exp(TensorOp):
    """a = eᶻ;  dL/dz = g ⊙ a."""

    name, symbol = "exp", "exp"

    @staticmethod
    def forward(z):
        a = np.exp(z)
        return a, a

    @staticmethod
    def vjp(g, a, needs):
        return (g * a,)

    @staticmethod
    def jvp(tangents, a):
        return tangents[0] * a


@register
class Log(TensorOp):
    """a = ln z;  dL/dz = g / z."""

    name, symbol = "log", "log"

    @staticmethod
    def forward(z):
        return np.log(z), z

    @staticmethod
    def vjp(g, z, needs):
        return (g / z,)

    @staticmethod
    def jvp(tangents, z):
        return tangents[0] / z


@register
class ReLU(TensorOp):
    """a = max(0, z);  dL/dz = g ⊙ 1[z > 0] (the mask comes from z, the pre-activation).

    At a NaN entry of z both a and the gradient are NaN: a NaN stays visible.
    """

    name, symbol = "relu", "relu"

    @staticmethod
    def forward(z):
        mask = z > 0  # the cache: one byte per entry, and g * mask is the cheapest backward
        kinks.note(mask)
        nan = np.isnan(z)
        if nan.any():  # z > 0 is False at NaN, which would hide it: a float mask carries it instead
            mask = np.where(nan, np.nan, mask).astype(z.dtype)
        return np.maximum(z, 0), mask

    @staticmethod
    def vjp(g, mask, needs):
        return (g * mask,)

    @staticmethod
    def jvp(tangents, mask):
        return tangents[0] * mask


@register
class Sigmoid(TensorOp):
    """a = σ(z);  dL/dz = g ⊙ a ⊙ (1 - a) (from the cached activation a)."""

    name, symbol = "sigmoid", "σ"

    @staticmethod
    def forward(z):
        # exp(-|z|) never overflows; the two halves give σ(z) on each side of 0.
        e = np.exp(-np.abs(z))
        a = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return a, a

    @staticmethod
    def vjp(g, a, needs):
        return (g * a * (1.0 - a),)

    @staticmethod
    def jvp(tangents, a):
        return tangents[0] * a * (1.0 - a)


@register
class Tanh(TensorOp):
    """a = tanh(z);  dL/dz = g ⊙ (1 - a²) (from the cached activation a)."""

    name, symbol = "tanh", "tanh"

    @staticmethod
    def forward(z):
        a = np.tanh(z)
        return a, a

    @staticmethod
    def vjp(g, a, needs):
        return (g * (1.0 - a * a),)

    @staticmethod
    def jvp(tangents, a):
        return tangents[0] * (1.0 - a * a)


@register
class Pow(TensorOp):
    """a = x^p for a constant real exponent p;  dL/dx = g ⊙ p x^(p-1) (from the cached x and a).

    ``x ** 0.5`` is a square root and ``x ** -0.5`` the 1/√x of batch normalization. Written as
    p · a / x the rule would divide by 0 at x = 0, so the cache keeps x and a and computes
    p · x^(p-1) directly. Refused in the forward pass, naming the op and the shapes: a tensor or
    array exponent (only a constant number is supported), and a non-integer exponent of a
    negative entry or a negative exponent of a zero entry (no real, finite value: numpy would
    give NaN or Inf and every gradient after it would be silently meaningless).
    """

    name, symbol = "pow", "pow"

    @staticmethod
    def forward(x, p=1.0):
        _check_power(x, p)
        p = float(p)  # a Python float keeps a float32 x in float32
        return x**p, (x, p)

    @staticmethod
    def vjp(g, saved, needs):
        return (g * _power_slope(*saved),)

    @staticmethod
    def jvp(tangents, saved):
        return tangents[0] * _power_slope(*saved)


def _power_slope(x: np.ndarray, p: float) -> np.ndarray:
    """p x^(p-1), with the slope of x^0 = 1 zero everywhere (0 · 0^(-1) would be NaN at x = 0).

    At x = 0 with 0 < p < 1 (a square root) the slope is +inf, the limit of the derivative.
    """
    if p == 0.0:
        return np.zeros_like(x)
    return p * x ** (p - 1.0)


def _check_power(x: np.ndarray, p: Any) -> None:
    """Refuse exponents the pow op has no rule for, and bases that give no real, finite power."""
    if isinstance(p, Tensor) or np.ndim(p) != 0 or isinstance(p, bool) or not np.isreal(p):
        shape = p.shape if hasattr(p, "shape") else type(p).__name__
        raise ValueError(
            f"pow: x has shape {x.shape} and the exponent has shape {shape}; the exponent must be a "
            "constant real number (x ** 0.5, x ** -1.0): a tensor exponent is not supported"
        )
    p = float(p)
    if p != round(p) and np.any(x < 0):
        raise ValueError(
            f"pow: x of shape {x.shape} has {int(np.sum(x < 0))} negative entries, and x ** {p:g} of a "
            "negative number has no real value (add the ε or take the power of a square)"
        )
    if p < 0 and np.any(x == 0):
        raise ValueError(
            f"pow: x of shape {x.shape} has {int(np.sum(x == 0))} entries equal to 0, and x ** {p:g} "
            "is infinite there (add a small ε first, as batch normalization does)"
        )


# -- losses -------------------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    """Softmax down each column, shifted by the column max so exp cannot overflow."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _batch_size(op: str, a: np.ndarray, what: str, rows: str) -> int:
    """B, the number of columns of a loss's input (1 for a single vector), refusing empty inputs.

    Softmax over no classes has no value and an empty batch has no mean loss:
    both would otherwise end in numpy's empty-reduction error or in a NaN.
    """
    if a.ndim > 2:
        raise ValueError(
            f"{op}: {what} have shape {a.shape}; expected at most 2 axes: {rows} down the rows, "
            "one example per column"
        )
    if a.ndim >= 1 and a.shape[0] == 0:
        raise ValueError(f"{op}: {what} have shape {a.shape}: no {rows} (zero rows); need at least one")
    if a.ndim == 2 and a.shape[1] == 0:
        raise ValueError(f"{op}: {what} have shape {a.shape}: an empty batch (B = 0) has no mean loss")
    return a.shape[1] if a.ndim == 2 else 1


@register
class SoftmaxCrossEntropy(TensorOp):
    """L = -(1/B) Σ_k Σ_i Y[i,k] log softmax(Z[:,k])_i for logits Z (K, B).

    Y holds one label distribution per column (one-hot or soft). Fused through
    log-sum-exp: dL/dZ = (P ⊙ s - Y) / B, with s the sum of each column of Y.
    For distributions s = 1 and this is the familiar (P - Y) / B; labels whose
    columns do not sum to 1 still get their true gradient.
    """

    name, symbol = "softmax_ce", "softmax-CE"

    @staticmethod
    def forward(z, y=None):
        if z.ndim == 0:
            raise ValueError("softmax_ce: logits Z have shape (); expected (K, B), K classes down the rows")
        batch = _batch_size("softmax_ce", z, "logits Z", "classes")
        shifted = z - z.max(axis=0, keepdims=True)
        e = np.exp(shifted)
        norm = e.sum(axis=0, keepdims=True)
        log_p = shifted - np.log(norm)
        loss = -(y * log_p).sum() / batch
        mass = y.sum(axis=0, keepdims=True)  # s: 1 per column for distributions
        return np.asarray(loss, dtype=z.dtype), (e / norm, y, mass, batch)

    @staticmethod
    def vjp(g, saved, needs):
        p, y, mass, batch = saved
        return ((p * mass - y) * (g / batch),)

    @staticmethod
    def jvp(tangents, saved):
        p, y, mass, batch = saved
        return np.asarray(((p * mass - y) * tangents[0]).sum() / batch)


@register
class MeanSquaredError(TensorOp):
    """L = (1/B) Σ_k ½‖a_k - y_k‖² over the B columns (½‖a - y‖² for one column);  dL/da = (a - y)/B."""

    name, symbol = "mse", "½‖a-y‖²"

    @staticmethod
    def forward(a, y=None):
        batch = _batch_size("mse", a, "outputs a", "outputs")
        diff = a - y
        return np.asarray(0.5 * (diff * diff).sum() / batch, dtype=a.dtype), (diff, batch)

    @staticmethod
    def vjp(g, saved, needs):
        diff, batch = saved
        return (diff * (g / batch),)

    @staticmethod
    def jvp(tangents, saved):
        diff, batch = saved
        return np.asarray((diff * tangents[0]).sum() / batch)


# -- the node -------------------------------------------------------------------------------
class Tensor:
    """A node of a tensor computation graph over a numpy array.

    ``data`` is the forward value (float64 by default, float32 kept as is),
    ``grad`` is dL/d(this node) after ``L.backward()`` (same shape as data, or
    None before any gradient reached it), ``parents`` are the input nodes and
    ``op`` the row of ``TENSOR_OPS`` that made it (None for a leaf).
    ``tangent``, when set on an input, is pushed forward through every op
    (forward mode): ``out.tangent`` is then J·tangent.

    ``Tensor(array)`` copies the array, so that updating the tensor in place
    (``SGD.step``) never changes the caller's array. ``copy=False`` shares the
    caller's memory instead when no dtype conversion is needed: for a large
    input that is only read (a batch), at the price that an in-place update of
    the tensor changes the caller's array too.

    Assigning ``data`` (``p.data = new`` or ``p.data -= lr * p.grad``) counts
    as one update of the tensor (its version): ``backward()`` refuses a graph
    built before an update of one of its tensors. Writing into the array itself
    (``p.data[0] = 1``, or through another name for it) is not seen.
    """

    __slots__ = (
        "_data", "_version", "_updated_at", "_made_at", "grad", "parents", "op", "saved", "requires_grad",
        "label", "tangent", "_owns_grad",
    )  # fmt: skip
    __array_priority__ = 1000  # so that ndarray + Tensor defers to Tensor.__radd__

    def __init__(
        self,
        data: ArrayLike,
        requires_grad: bool = True,
        label: str = "",
        dtype: Any = None,
        tangent: ArrayLike | None = None,
        copy: bool = True,
    ) -> None:
        array = np.asarray(data)
        if dtype is None:
            dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float64
        self._data = np.array(array, dtype=dtype) if copy else array.astype(dtype, copy=False)
        self._version = self._updated_at = 0
        self._made_at = _clock
        self.grad: np.ndarray | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.op: type[TensorOp] | None = None
        self.saved: Any = None
        self.requires_grad = requires_grad
        self.label = label
        self.tangent = None if tangent is None else np.asarray(tangent, dtype=dtype).reshape(self.data.shape)
        self._owns_grad = False

    @property
    def data(self) -> np.ndarray:
        """The forward value (an array of this tensor's shape and dtype)."""
        return self._data

    @data.setter
    def data(self, value: ArrayLike) -> None:
        # `p.data -= step` updates the array in place and then assigns it back: either way the
        # values a graph built earlier saw are gone, and the version says so.
        global _clock
        self._data = np.asarray(value)
        self._version += 1
        _clock += 1
        self._updated_at = _clock

    @property
    def version(self) -> int:
        """How many times ``data`` was assigned (an augmented assignment counts) since construction."""
        return self._version

    # -- array-like conveniences ------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        op = self.op.name if self.op else "leaf"
        return f"Tensor({name}{op}, shape={self.shape}, dtype={self.dtype})"

    # -- operators ------------------------------------------------------------------------
    def __add__(self, other: Tensor | ArrayLike) -> Tensor:
        return apply(Add, self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return apply(Add, other, self)

    def __sub__(self, other: Tensor | ArrayLike) -> Tensor:
        return apply(Sub, self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return apply(Sub, other, self)

    def __mul__(self, other: Tensor | ArrayLike) -> Tensor:
        return apply(Mul, self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return apply(Mul, other, self)

    def __truediv__(self, other: Tensor | ArrayLike) -> Tensor:
        return apply(Div, self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return apply(Div, other, self)

    def __neg__(self) -> Tensor:
        return apply(Neg, self)

    def __matmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return apply(MatMul, self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return apply(MatMul, other, self)

    @property
    def T(self) -> Tensor:
        return apply(Transpose, self)

    def transpose(self) -> Tensor:
        return apply(Transpose, self)

    def reshape(self, *shape: int) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return apply(Reshape, self, shape=shape)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply(Sum, self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return apply(Mean, self, axis=axis, keepdims=keepdims)

    def exp(self) -> Tensor:
        return apply(Exp, self)

    def log(self) -> Tensor:
        return apply(Log, self)

    def relu(self) -> Tensor:
        return apply(ReLU, self)

    def sigmoid(self) -> Tensor:
        return apply(Sigmoid, self)

    def tanh(self) -> Tensor:
        return apply(Tanh, self)

    def __pow__(self, exponent: float) -> Tensor:
        return apply(Pow, self, p=exponent)

    # -- reverse mode ----------------------------------------------------------------------
    def backward(self, upstream: ArrayLike | None = None) -> None:
        """Fill ``.grad`` of every node under this one with d(self)/d(node) · upstream.

        ``upstream`` defaults to 1 for a single-entry tensor (a loss). Nodes are
        visited in reverse topological order; each applies its op's vjp rule
        and the contributions a node receives from its children are summed.

        Raises RuntimeError, before any gradient is touched, when this tensor
        has no graph and no gradient to receive (it was computed under
        ``no_grad`` or from constants only: as in PyTorch, rather than doing
        nothing and leaving every ``.grad`` as it was), and when a tensor of the
        graph was updated after the graph was built (see ``Tensor``).
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward(): {self!r} has no graph to go back through: it was computed under no_grad() "
                "or from constants only (Tensors with requires_grad=False and plain arrays), so no "
                "gradient would reach anything. Compute it outside no_grad() from at least one Tensor "
                "with requires_grad=True."
            )
        if upstream is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without an upstream gradient needs a single-entry output, "
                    f"not shape {self.shape}"
                )
            upstream = np.ones_like(self.data)
        upstream = np.asarray(upstream, dtype=self.dtype)
        if upstream.shape != self.shape:
            raise ValueError(f"upstream gradient has shape {upstream.shape}, output has {self.shape}")
        order = topological_order(self)
        for node in order:
            if node.op is not None:
                if node._made_at != _clock:  # some tensor was updated since this node was made
                    _check_current(node)
                node.grad = None
        self._accumulate(upstream)
        for node in reversed(order):
            if node.op is None or node.grad is None:
                continue
            parents = node.parents
            needs = tuple(p.requires_grad for p in parents)
            grads = node.op.vjp(node.grad, node.saved, needs)
            for parent, grad, need in zip(parents, grads, needs, strict=True):
                if need:
                    parent._accumulate(grad)

    def _accumulate(self, grad: np.ndarray) -> None:
        """Add one gradient contribution (the merge rule)."""
        if self.op is None:
            # A leaf keeps one buffer for its whole life and adds into it in place.
            if self.grad is None or self.grad.shape != self.shape:
                self.grad = np.zeros_like(self.data)
            self.grad += grad
        elif self.grad is None:
            # The first contribution is kept as is; it may be another node's array.
            self.grad, self._owns_grad = grad, False
        elif self._owns_grad:
            self.grad += grad
        else:
            self.grad, self._owns_grad = self.grad + grad, True

    def zero_grad(self) -> None:
        """Zero the gradient of every leaf under this node (reusing the buffers)."""
        zero_grad(node for node in topological_order(self) if node.op is None)


def _check_current(node: Tensor) -> None:
    """Refuse a node whose inputs were updated after it was computed.

    Its cache holds the old values (a mask, an activation, the inputs of a
    product), so its local gradient would be right neither for the old values
    nor for the new ones.
    """
    for i, parent in enumerate(node.parents):
        if parent._updated_at > node._made_at:
            raise RuntimeError(
                f"backward(): input {i} of a {node.op.name!r} node, {parent!r}, was updated in place "
                f"(its .data assigned, now version {parent._version}) after this graph was built, so the "
                "graph's saved values are stale. Run the forward pass again and call backward() on its "
                "new result."
            )


def zero_grad(tensors: Iterable[Tensor]) -> None:
    """Set the gradient of each given leaf to zero, keeping its buffer."""
    for tensor in tensors:
        if tensor.grad is not None:
            tensor.grad.fill(0.0)


_recording = True  # False inside no_grad(): ops keep no graph and no cache
# Counts every assignment of any tensor's data. A node remembers the count when it was made and a
# tensor when its data was last assigned: an input assigned after the node was made is stale. When
# the count has not moved since a node was made, backward() skips the check with one comparison.
_clock = 0


@contextmanager
def no_grad() -> Iterator[None]:
    """Evaluate without recording a graph (inference, or the forward pass of checkpointing).

    Inside the block every op's result is a constant: no parents, no cache.
    """
    global _recording
    previous, _recording = _recording, False
    try:
        yield
    finally:
        _recording = previous


def as_tensor(value: Tensor | ArrayLike, dtype: Any = None) -> Tensor:
    """``value`` itself if it is a Tensor, else a constant (no gradient) of that dtype."""
    if isinstance(value, Tensor):
        return value
    # No copy: the engine never writes into a constant, and copying every plain array an
    # expression mentions would cost a pass over it in every forward pass.
    return Tensor(value, requires_grad=False, dtype=dtype, copy=False)


def apply(op: type[TensorOp], *inputs: Tensor | ArrayLike, **params: Any) -> Tensor:
    """Run ``op`` forward on ``inputs`` and record the node for the backward pass.

    Plain numbers and arrays become constants of the first tensor input's dtype.
    """
    dtype = next((x.dtype for x in inputs if isinstance(x, Tensor)), None)
    parents = tuple(as_tensor(x, dtype) for x in inputs)
    out, saved = op.forward(*(p._data for p in parents), **params)
    node = Tensor.__new__(Tensor)
    node._data = out
    node._version = node._updated_at = 0
    node._made_at = _clock
    node.grad = None
    node.requires_grad = _recording and any(p.requires_grad for p in parents)
    node.parents = parents if node.requires_grad else ()
    node.op = op if node.requires_grad else None
    node.label = ""
    node._owns_grad = False
    node.tangent = None
    if any(p.tangent is not None for p in parents):
        tangents = [np.zeros_like(p.data) if p.tangent is None else p.tangent for p in parents]
        node.tangent = op.jvp(tangents, saved)
    # Without a gradient to compute, the cache is not needed: let it go now.
    node.saved = saved if node.requires_grad else None
    return node


def affine(W: Tensor | ArrayLike, x: Tensor | ArrayLike, b: Tensor | ArrayLike) -> Tensor:
    """z = W x + b: W (m, n), x (n, 1) or a batch (n, B), b (m, 1) -> (m, 1) or (m, B).

    b may have any shape that broadcasts to W x ((m, B), (1, B), (B,), () ...);
    other shapes, and W and x whose sizes do not fit, are refused with a
    ValueError naming the shapes. W x follows numpy's matmul (a 1-D x gives (m,)).
    """
    return apply(Affine, W, x, b)


def softmax_cross_entropy(z: Tensor, y: ArrayLike) -> Tensor:
    """Mean cross-entropy of softmax(z) against labels y, both (K, B) (or (K, 1)).

    y holds a distribution per column: one-hot or soft, each column summing to 1
    (other labels get the gradient of this formula too, see SoftmaxCrossEntropy).
    """
    labels = np.asarray(y, dtype=z.dtype)
    if labels.shape != z.shape:
        raise ValueError(f"softmax_ce: labels Y have shape {labels.shape}, logits Z have shape {z.shape}")
    return apply(SoftmaxCrossEntropy, z, y=labels)


def mse(a: Tensor, y: ArrayLike) -> Tensor:
    """(1/B) Σ_k ½‖a_k - y_k‖² over the B columns of a and y (both (m, B))."""
    target = np.asarray(y, dtype=a.dtype)
    if target.shape != a.shape:
        raise ValueError(f"mse: targets y have shape {target.shape}, outputs a have shape {a.shape}")
    return apply(MeanSquaredError, a, y=target)


def softmax(z: ArrayLike) -> np.ndarray:
    """Numerically stable softmax down the columns of z (K, B) (or of a (K, 1) column)."""
    return _softmax(np.asarray(z, dtype=float))
