"""Named test functions that exercises hand to a learner's code.

They live outside the exercise registry on purpose: a learner's function that
receives one can reach this module's globals, and there is nothing here but
the test functions themselves. They hold data only (a name, arrays, call
counters), so they can be sent to another process (bpcourse.grading.wire_types).

* ``SmoothFunction``: a function of one float, by name.
* ``ArrayFunction``: a scalar function of an array of any shape, by name.
* ``JvpFunction`` / ``VjpFunction``: a map Rⁿ -> Rᵐ made of engine ops, run
  one forward-mode pass (J u) or one reverse-mode pass (Jᵀ w) per call.
* ``TanhLayer``: one layer of a deep chain, with ``forward`` and ``backward``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcourse.forward import jvp, vjp
from bpcourse.tensor import Tensor, affine


@dataclass(frozen=True)
class SmoothFunction:
    """A named smooth test function of one float (named so it can be sent to another process)."""

    name: str

    def __call__(self, x: float) -> float:
        return SMOOTH_FUNCTIONS[self.name](x)


SMOOTH_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "exp(2x)": lambda x: math.exp(2.0 * x),
    "sin(3x) + x^3": lambda x: math.sin(3.0 * x) + x**3,
    "x tanh(x) + x^2": lambda x: x * math.tanh(x) + x * x,
}


# -- functions of arrays, for a finite-difference gradient ----------------------------------------
class ArrayFunction:
    """A named scalar function of an array of any shape (its entries, read in order).

    ``calls`` counts the evaluations, so that the cost of a finite-difference
    gradient (two evaluations per entry) can be seen.
    """

    def __init__(self, name: str) -> None:
        if name not in ARRAY_FUNCTIONS:
            raise KeyError(f"unknown array function {name!r}; known: {', '.join(ARRAY_FUNCTIONS)}")
        self.name = name
        self.calls = 0

    def __call__(self, theta: np.ndarray) -> float:
        self.calls += 1
        v = np.asarray(theta, dtype=np.float64).reshape(-1)
        return float(ARRAY_FUNCTIONS[self.name](v))

    def __repr__(self) -> str:
        return f"ArrayFunction({self.name!r})"


def _coupled_tanh(v: np.ndarray) -> float:
    s = v.sum()
    return 0.5 * s * s + np.tanh(2.0 * v).sum()


def _log_sum_exp_cubic(v: np.ndarray) -> float:
    return np.log(np.exp(1.5 * v).sum()) + 0.3 * (v**3).sum()


def _sigmoid_times_square(v: np.ndarray) -> float:
    return (1.0 / (1.0 + np.exp(-3.0 * v))).sum() * (v * v).sum()


ARRAY_FUNCTIONS: dict[str, Callable[[np.ndarray], float]] = {
    "½(Σθ)² + Σ tanh(2θ)": _coupled_tanh,
    "log Σ exp(1.5θ) + 0.3 Σ θ³": _log_sum_exp_cubic,
    "Σ σ(3θ) · Σ θ²": _sigmoid_times_square,
}


# -- maps Rⁿ -> Rᵐ written with engine ops, run in forward or in reverse mode -----------------------
def _columns(A: np.ndarray, c: np.ndarray, t: Tensor) -> Tensor:
    """z = A x + c for a flat input tensor x of shape (n,), as a column (m, 1)."""
    return affine(A, t.reshape(A.shape[1], 1), c)


def _tanh_map(A: np.ndarray, c: np.ndarray, t: Tensor) -> Tensor:
    return _columns(A, c, t).tanh()


def _swish_map(A: np.ndarray, c: np.ndarray, t: Tensor) -> Tensor:
    z = _columns(A, c, t)
    return z * z.sigmoid()


def _softplus_map(A: np.ndarray, c: np.ndarray, t: Tensor) -> Tensor:
    return (_columns(A, c, t).exp() + 1.0).log()


ENGINE_MAPS: dict[str, Callable[[np.ndarray, np.ndarray, Tensor], Tensor]] = {
    "tanh(Ax + c)": _tanh_map,
    "z σ(z), z = Ax + c": _swish_map,
    "log(1 + exp(Ax + c))": _softplus_map,
}


class EngineMap:
    """A named map f: Rⁿ -> Rᵐ built from engine ops, f(x) = g(A x + c), A (m, n), c (m, 1).

    Only data: the name of g and the arrays. ``calls`` counts the passes run.
    """

    def __init__(self, name: str, A: np.ndarray, c: np.ndarray) -> None:
        if name not in ENGINE_MAPS:
            raise KeyError(f"unknown map {name!r}; known: {', '.join(ENGINE_MAPS)}")
        A, c = np.asarray(A, dtype=np.float64), np.asarray(c, dtype=np.float64)
        if A.ndim != 2 or c.shape != (A.shape[0], 1):
            raise ValueError(f"A must be (m, n) and c (m, 1), got {A.shape} and {c.shape}")
        self.name, self.A, self.c = name, A, c
        self.calls = 0

    @property
    def n(self) -> int:
        return self.A.shape[1]

    @property
    def m(self) -> int:
        return self.A.shape[0]

    def tensor_function(self) -> Callable[[Tensor], Tensor]:
        """f as a function of a flat Tensor (n,) returning a flat Tensor (m,)."""
        g, A, c, m = ENGINE_MAPS[self.name], self.A, self.c, self.m
        return lambda t: g(A, c, t).reshape(m)

    def _flat(self, what: str, value: np.ndarray, size: int, meaning: str) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (size,):
            name = type(self).__name__
            raise ValueError(f"{name}: {what} must have shape ({size},) ({meaning}), got shape {value.shape}")
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={self.n}, m={self.m})"


class JvpFunction(EngineMap):
    """``f_jvp(x, u) -> J u``: one forward-mode pass. x and u have shape (n,), J u has shape (m,)."""

    def __call__(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        x = self._flat("x", x, self.n, "the point, one entry per input")
        u = self._flat("u", u, self.n, "a direction in the input space: one pass per input entry")
        self.calls += 1
        return jvp(self.tensor_function(), x, u)[1]


class VjpFunction(EngineMap):
    """``f_vjp(x, w) -> Jᵀ w``: one reverse-mode pass. x has shape (n,), w (m,), Jᵀ w (n,)."""

    def __call__(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        x = self._flat("x", x, self.n, "the point, one entry per input")
        w = self._flat("w", w, self.m, "a weight for each output: one pass per output")
        self.calls += 1
        return vjp(self.tensor_function(), x, w)[1]


# -- a layer of a deep chain, for checkpointing ------------------------------------------------------
class TanhLayer:
    """a_next = tanh(W a + b), with W (m, n), b (m, 1) and a batch a of shape (n, B).

    * ``forward(a) -> a_next`` (m, B);
    * ``backward(a, upstream) -> da`` (n, B): the gradient with respect to the
      layer's INPUT ``a``, given upstream = dL/d(a_next). It recomputes what it
      needs (W a + b) from ``a``, so it keeps nothing between calls.

    ``forward_calls`` and ``backward_calls`` count the calls.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if W.ndim != 2 or b.shape != (W.shape[0], 1):
            raise ValueError(f"W must be (m, n) and b (m, 1), got {W.shape} and {b.shape}")
        self.W, self.b = W, b
        self.forward_calls = 0
        self.backward_calls = 0

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.forward_calls += 1
        return np.tanh(self.W @ a + self.b)

    def backward(self, a: np.ndarray, upstream: np.ndarray) -> np.ndarray:
        self.backward_calls += 1
        out = np.tanh(self.W @ a + self.b)
        return self.W.T @ ((1.0 - out * out) * upstream)

    def __repr__(self) -> str:
        m, n = self.W.shape
        return f"TanhLayer({n} -> {m})"
