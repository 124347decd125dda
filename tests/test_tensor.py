"""Tests of the tensor engine (``bpcourse.tensor``).

Every op of ``TENSOR_OPS`` is checked on random inputs, broadcasting included,
against central finite differences and against HIPS autograd. The loss is
L = Σ out ⊙ R for a fixed random R of the output's shape, so every output entry
matters; ``out.backward(R)`` computes exactly dL/d(inputs) for that L (checked
once in ``test_backward_with_upstream_is_the_gradient_of_the_weighted_sum``).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from bpcourse.gradcheck import check_gradient
from bpcourse.graph import topological_order
from bpcourse.tensor import (
    TENSOR_OPS,
    Tensor,
    affine,
    mse,
    no_grad,
    softmax,
    softmax_cross_entropy,
)

Sampler = Callable[[np.random.Generator], np.ndarray]


# -- input domains ---------------------------------------------------------------------------------
def normal(*shape: int, scale: float = 1.0) -> Sampler:
    return lambda rng: np.asarray(scale * rng.standard_normal(shape), dtype=np.float64)


def positive(*shape: int) -> Sampler:
    return lambda rng: np.asarray(rng.uniform(0.3, 3.0, shape), dtype=np.float64)


def nonzero(*shape: int) -> Sampler:
    """Entries with |x| in [0.4, 2.5]: away from relu's kink and from division by 0."""

    def sample(rng: np.random.Generator) -> np.ndarray:
        return np.asarray(rng.uniform(0.4, 2.5, shape) * rng.choice((-1.0, 1.0), shape), dtype=np.float64)

    return sample


def one_hot(classes: int, batch: int) -> Sampler:
    return lambda rng: np.eye(classes)[:, rng.integers(0, classes, batch)]


def soft_labels(classes: int, batch: int) -> Sampler:
    return lambda rng: rng.dirichlet(np.ones(classes), size=batch).T


# -- references for autograd ------------------------------------------------------------------
def ref_sigmoid(z):
    return 1.0 / (1.0 + anp.exp(-z))


def ref_softmax_ce(z, y):
    log_p = z - anp.log(anp.sum(anp.exp(z), axis=0, keepdims=True))
    return -anp.sum(y * log_p) / z.shape[1]


def ref_mse(a, y):
    return 0.5 * anp.sum((a - y) ** 2) / a.shape[1]


@dataclass(frozen=True)
class Case:
    """One gradient test of the ``op`` row of the table.

    ``inputs`` sample the tensors the gradient is taken with respect to;
    ``consts`` sample further arguments passed as plain arrays (constants,
    labels). ``engine(*inputs, *consts)`` builds the graph from Tensors;
    ``reference`` is the same function for autograd (``None``: ``engine``
    itself, when it only uses operators and methods autograd also has).
    """

    op: str
    expr: str
    engine: Callable[..., Tensor]
    inputs: tuple[Sampler, ...]
    consts: tuple[Sampler, ...] = ()
    reference: Callable[..., object] | None = None

    @property
    def ref(self) -> Callable[..., object]:
        return self.engine if self.reference is None else self.reference


def add(x, y):
    return x + y


def sub(x, y):
    return x - y


def mul(x, y):
    return x * y


def div(x, y):
    return x / y


CASES = [
    # add, broadcasting in every direction
    Case("add", "(3,4) + (3,4)", add, (normal(3, 4), normal(3, 4))),
    Case("add", "(3,4) + (3,1)", add, (normal(3, 4), normal(3, 1))),
    Case("add", "(3,4) + (4,)", add, (normal(3, 4), normal(4))),
    Case("add", "(1,4) + (3,1)", add, (normal(1, 4), normal(3, 1))),
    Case("add", "() + (2,3)", add, (normal(), normal(2, 3))),
    Case("add", "(2,3) + ()", add, (normal(2, 3), normal())),
    Case("add", "(2,3,4) + (3,1)", add, (normal(2, 3, 4), normal(3, 1))),
    Case("add", "2.5 + x", lambda x: 2.5 + x, (normal(3, 4),)),
    Case("add", "x + const (4,)", lambda x, c: x + c, (normal(3, 4),), (normal(4),)),
    Case("add", "const (3,4) + x (4,)", lambda x, c: c + x, (normal(4),), (normal(3, 4),)),
    # sub
    Case("sub", "(3,4) - (3,1)", sub, (normal(3, 4), normal(3, 1))),
    Case("sub", "(4,) - (3,4)", sub, (normal(4), normal(3, 4))),
    Case("sub", "() - (2,3)", sub, (normal(), normal(2, 3))),
    Case("sub", "(2,3) - (1,3)", sub, (normal(2, 3), normal(1, 3))),
    Case("sub", "1 - x", lambda x: 1.0 - x, (normal(3, 4),)),
    Case("sub", "x - 2", lambda x: x - 2.0, (normal(3, 4),)),
    # mul
    Case("mul", "(3,4) * (3,4)", mul, (normal(3, 4), normal(3, 4))),
    Case("mul", "(3,4) * (1,4)", mul, (normal(3, 4), normal(1, 4))),
    Case("mul", "(3,4) * (3,1)", mul, (normal(3, 4), normal(3, 1))),
    Case("mul", "() * (2,3)", mul, (normal(), normal(2, 3))),
    Case("mul", "(4,) * (3,4)", mul, (normal(4), normal(3, 4))),
    Case("mul", "2 * x", lambda x: 2.0 * x, (normal(3, 4),)),
    Case("mul", "x * 3", lambda x: x * 3.0, (normal(3, 4),)),
    Case("mul", "const (3,1) * x", lambda x, c: c * x, (normal(3, 4),), (normal(3, 1),)),
    # div, denominators away from 0
    Case("div", "(3,4) / (3,4)", div, (normal(3, 4), nonzero(3, 4))),
    Case("div", "(3,4) / (3,1)", div, (normal(3, 4), nonzero(3, 1))),
    Case("div", "(4,) / (3,4)", div, (normal(4), nonzero(3, 4))),
    Case("div", "() / (2,3)", div, (normal(), nonzero(2, 3))),
    Case("div", "(2,3) / ()", div, (normal(2, 3), nonzero())),
    Case("div", "3 / x", lambda x: 3.0 / x, (nonzero(3, 4),)),
    Case("div", "x / 4", lambda x: x / 4.0, (normal(3, 4),)),
    # neg
    Case("neg", "-x (3,4)", lambda x: -x, (normal(3, 4),)),
    Case("neg", "-x ()", lambda x: -x, (normal(),)),
    # matmul, non-square
    Case("matmul", "(3,5) @ (5,2)", lambda a, b: a @ b, (normal(3, 5), normal(5, 2))),
    Case("matmul", "(1,4) @ (4,3)", lambda a, b: a @ b, (normal(1, 4), normal(4, 3))),
    Case("matmul", "(4,1) @ (1,3)", lambda a, b: a @ b, (normal(4, 1), normal(1, 3))),
    Case("matmul", "const (2,3) @ x (3,4)", lambda x, a: a @ x, (normal(3, 4),), (normal(2, 3),)),
    Case("matmul", "x (2,3) @ const (3,4)", lambda x, b: x @ b, (normal(2, 3),), (normal(3, 4),)),
    # matmul under numpy's rules: 1-D operands promoted, stacked operands broadcast
    Case("matmul", "(3,3) @ (3,) square", lambda a, b: a @ b, (normal(3, 3), normal(3))),
    Case("matmul", "(2,3) @ (3,)", lambda a, b: a @ b, (normal(2, 3), normal(3))),
    Case("matmul", "(3,) @ (3,4)", lambda a, b: a @ b, (normal(3), normal(3, 4))),
    Case("matmul", "(3,) @ (3,)", lambda a, b: a @ b, (normal(3), normal(3))),
    Case("matmul", "(2,3,4) @ (4,5)", lambda a, b: a @ b, (normal(2, 3, 4), normal(4, 5))),
    Case("matmul", "(3,4) @ (2,4,5)", lambda a, b: a @ b, (normal(3, 4), normal(2, 4, 5))),
    Case("matmul", "(2,1,3,4) @ (3,4,2)", lambda a, b: a @ b, (normal(2, 1, 3, 4), normal(3, 4, 2))),
    Case("matmul", "(3,) @ (2,3,4)", lambda a, b: a @ b, (normal(3), normal(2, 3, 4))),
    Case("matmul", "(2,3,4) @ (4,)", lambda a, b: a @ b, (normal(2, 3, 4), normal(4))),
    # affine: W (m, n), X (n, B), b (m, 1)
    Case(
        "affine",
        "W(4,3) X(3,5) + b(4,1)",
        affine,
        (normal(4, 3), normal(3, 5), normal(4, 1)),
        reference=lambda w, x, b: w @ x + b,
    ),
    Case(
        "affine",
        "W(2,3) x(3,1) + b(2,1)",
        affine,
        (normal(2, 3), normal(3, 1), normal(2, 1)),
        reference=lambda w, x, b: w @ x + b,
    ),
    # affine: every bias that broadcasts to W X, a 1-D x, a stack of batches
    *(
        Case(
            "affine",
            f"W(4,3) X(3,5) + b{shape}",
            affine,
            (normal(4, 3), normal(3, 5), normal(*shape)),
            reference=lambda w, x, b: w @ x + b,
        )
        for shape in ((4, 5), (1, 1), (1, 5), (5,), (1,), ())
    ),
    Case(
        "affine",
        "W(4,3) x(3,) + b(4,)",
        affine,
        (normal(4, 3), normal(3), normal(4)),
        reference=lambda w, x, b: w @ x + b,
    ),
    Case(
        "affine",
        "W(4,3) X(2,3,5) + b(4,1)",
        affine,
        (normal(4, 3), normal(2, 3, 5), normal(4, 1)),
        reference=lambda w, x, b: w @ x + b,
    ),
    # reductions
    Case("sum", "sum()", lambda x: x.sum(), (normal(3, 4),)),
    Case("sum", "sum(axis=0)", lambda x: x.sum(axis=0), (normal(3, 4),)),
    Case("sum", "sum(axis=1)", lambda x: x.sum(axis=1), (normal(3, 4),)),
    Case("sum", "sum(axis=0, keepdims)", lambda x: x.sum(axis=0, keepdims=True), (normal(3, 4),)),
    Case("sum", "sum(axis=1, keepdims)", lambda x: x.sum(axis=1, keepdims=True), (normal(3, 4),)),
    Case("sum", "sum(keepdims)", lambda x: x.sum(keepdims=True), (normal(3, 4),)),
    Case("sum", "sum(axis=-1)", lambda x: x.sum(axis=-1), (normal(3, 4),)),
    Case("sum", "(2,3,4).sum(axis=1)", lambda x: x.sum(axis=1), (normal(2, 3, 4),)),
    Case("sum", "(2,3,4).sum(axis=(0,2))", lambda x: x.sum(axis=(0, 2)), (normal(2, 3, 4),)),
    Case("mean", "mean()", lambda x: x.mean(), (normal(3, 4),)),
    Case("mean", "mean(axis=0)", lambda x: x.mean(axis=0), (normal(3, 4),)),
    Case("mean", "mean(axis=1)", lambda x: x.mean(axis=1), (normal(3, 4),)),
    Case("mean", "mean(axis=0, keepdims)", lambda x: x.mean(axis=0, keepdims=True), (normal(3, 4),)),
    Case("mean", "mean(axis=1, keepdims)", lambda x: x.mean(axis=1, keepdims=True), (normal(3, 4),)),
    Case("mean", "mean(keepdims)", lambda x: x.mean(keepdims=True), (normal(3, 4),)),
    Case("mean", "(2,3,4).mean(axis=(0,2))", lambda x: x.mean(axis=(0, 2)), (normal(2, 3, 4),)),
    # shape
    Case(
        "reshape",
        "(3,4) -> (2,6)",
        lambda x: x.reshape(2, 6),
        (normal(3, 4),),
        reference=lambda x: anp.reshape(x, (2, 6)),
    ),
    Case(
        "reshape",
        "(3,4) -> (12,)",
        lambda x: x.reshape((12,)),
        (normal(3, 4),),
        reference=lambda x: anp.reshape(x, (12,)),
    ),
    Case(
        "reshape",
        "(2,3,4) -> (4,-1)",
        lambda x: x.reshape(4, -1),
        (normal(2, 3, 4),),
        reference=lambda x: anp.reshape(x, (4, -1)),
    ),
    Case("transpose", "(3,4).T", lambda x: x.T, (normal(3, 4),)),
    Case("transpose", "(2,5).transpose()", lambda x: x.transpose(), (normal(2, 5),)),
    Case("transpose", "(2,3,4).T", lambda x: x.T, (normal(2, 3, 4),)),
    # elementwise functions
    Case("exp", "exp", lambda x: x.exp(), (normal(3, 4),), reference=anp.exp),
    Case("log", "log (positive)", lambda x: x.log(), (positive(3, 4),), reference=anp.log),
    Case("relu", "relu (away from 0)", lambda x: x.relu(), (nonzero(3, 4),), reference=lambda x: x * (x > 0)),
    Case("sigmoid", "sigmoid", lambda x: x.sigmoid(), (normal(3, 4, scale=3.0),), reference=ref_sigmoid),
    Case("tanh", "tanh", lambda x: x.tanh(), (normal(3, 4, scale=2.0),), reference=anp.tanh),
    Case("pow", "x ** 2", lambda x: x**2, (normal(3, 4),)),
    Case("pow", "x ** 3 (integer power of any sign)", lambda x: x**3, (normal(3, 4),)),
    Case("pow", "x ** 0.5 (positive)", lambda x: x**0.5, (positive(3, 4),)),
    Case("pow", "x ** -0.5 (positive)", lambda x: x**-0.5, (positive(3, 1),)),
    Case("pow", "x ** -1 (away from 0)", lambda x: x**-1, (nonzero(2, 5),)),
    Case("pow", "() ** 1.5", lambda x: x**1.5, (positive(),)),
    # losses
    Case(
        "softmax_ce",
        "one-hot (4,5)",
        softmax_cross_entropy,
        (normal(4, 5, scale=2.0),),
        (one_hot(4, 5),),
        ref_softmax_ce,
    ),
    Case(
        "softmax_ce",
        "distributions (4,5)",
        softmax_cross_entropy,
        (normal(4, 5, scale=2.0),),
        (soft_labels(4, 5),),
        ref_softmax_ce,
    ),
    Case(
        "softmax_ce",
        "one-hot (3,1)",
        softmax_cross_entropy,
        (normal(3, 1, scale=2.0),),
        (one_hot(3, 1),),
        ref_softmax_ce,
    ),
    Case(
        "softmax_ce",
        "labels not summing to 1 (4,5)",
        softmax_cross_entropy,
        (normal(4, 5, scale=2.0),),
        (positive(4, 5),),
        ref_softmax_ce,
    ),
    Case("mse", "(3,5)", mse, (normal(3, 5),), (normal(3, 5),), ref_mse),
    Case("mse", "(2,1)", mse, (normal(2, 1),), (normal(2, 1),), ref_mse),
]

DRAWS = 3  # random inputs per case


def ops_in_graph(root: Tensor) -> set[str]:
    return {node.op.name for node in topological_order(root) if node.op is not None}


def test_every_tensor_op_has_a_gradient_test() -> None:
    """Registering a new op in TENSOR_OPS without a gradient test fails here."""
    covered = {case.op for case in CASES}
    assert covered == set(TENSOR_OPS), (
        f"ops without a gradient test: {sorted(set(TENSOR_OPS) - covered)}; "
        f"cases naming no op of the table: {sorted(covered - set(TENSOR_OPS))}"
    )


def check_draw(case: Case, xs: list[np.ndarray], consts: list[np.ndarray], rng: np.random.Generator) -> None:
    """One random input: backprop against the forward value, autograd and central differences."""
    n = len(xs)
    leaves = [Tensor(x) for x in xs]
    out = case.engine(*leaves, *consts)
    assert case.op in ops_in_graph(out), f"{case.expr} builds no {case.op!r} node"
    weights = np.asarray(rng.standard_normal(out.shape))
    kept = weights.copy()
    out.backward(weights)
    np.testing.assert_array_equal(weights, kept)  # the upstream array handed in is left alone

    np.testing.assert_allclose(out.data, case.ref(*xs, *consts), rtol=1e-12, atol=1e-12)

    def reference_loss(*args):
        return anp.sum(case.ref(*args, *consts) * weights)

    def engine_loss(i: int, x: np.ndarray) -> float:
        args = [Tensor(x if j == i else xs[j]) for j in range(n)]
        return float(np.sum(case.engine(*args, *consts).data * weights))

    for i, leaf in enumerate(leaves):
        assert leaf.grad is not None, f"input {i} got no gradient"
        assert leaf.grad.shape == xs[i].shape
        assert leaf.grad.dtype == np.float64

        expected = autograd.grad(reference_loss, i)(*xs)
        np.testing.assert_allclose(leaf.grad, expected, rtol=1e-10, atol=1e-12, err_msg=f"input {i}")

        result = check_gradient(partial(engine_loss, i), xs[i], leaf.grad)
        assert result.passed, f"{case.expr}, input {i}:\n{result}"
        assert result.checked == xs[i].size


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}: {c.expr}" for c in CASES])
def test_gradient_matches_finite_differences_and_autograd(case: Case, rng: np.random.Generator) -> None:
    for _ in range(DRAWS):
        xs = [sample(rng) for sample in case.inputs]
        consts = [sample(rng) for sample in case.consts]
        check_draw(case, xs, consts, rng)


def test_backward_with_upstream_is_the_gradient_of_the_weighted_sum(rng: np.random.Generator) -> None:
    w, x, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((3, 1))
    weights = rng.standard_normal((3, 5))
    seeded = [Tensor(a) for a in (w, x, b)]
    affine(*seeded).tanh().backward(weights)
    summed = [Tensor(a) for a in (w, x, b)]
    (affine(*summed).tanh() * weights).sum().backward()
    for a, c in zip(seeded, summed, strict=True):
        np.testing.assert_allclose(a.grad, c.grad, rtol=1e-13, atol=1e-15)


# -- softmax cross-entropy ---------------------------------------------------------------------
def test_softmax_ce_gradient_single_example(rng: np.random.Generator) -> None:
    z = Tensor(rng.standard_normal((5, 1)))
    y = np.eye(5)[:, [2]]
    loss = softmax_cross_entropy(z, y)
    loss.backward()
    p = np.exp(z.data) / np.exp(z.data).sum()
    assert loss.item() == pytest.approx(-np.log(p[2, 0]), rel=1e-12)
    np.testing.assert_allclose(z.grad, p - y, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("labels", ["one-hot", "distributions"])
def test_softmax_ce_gradient_batch(labels: str, rng: np.random.Generator) -> None:
    classes, batch = 4, 7
    z = Tensor(rng.standard_normal((classes, batch)))
    if labels == "one-hot":
        y = np.eye(classes)[:, rng.integers(0, classes, batch)]
    else:
        y = rng.dirichlet(np.ones(classes), size=batch).T
    loss = softmax_cross_entropy(z, y)
    loss.backward()
    p = np.exp(z.data) / np.exp(z.data).sum(axis=0, keepdims=True)
    assert loss.item() == pytest.approx(-np.sum(y * np.log(p)) / batch, rel=1e-12)
    np.testing.assert_allclose(z.grad, (p - y) / batch, rtol=1e-12, atol=1e-15)


def test_softmax_ce_is_stable_for_large_logits(rng: np.random.Generator) -> None:
    small = rng.standard_normal((4, 6))
    y = np.eye(4)[:, rng.integers(0, 4, 6)]
    z_big = Tensor(small + 1000.0)
    loss_big = softmax_cross_entropy(z_big, y)
    loss_big.backward()
    z_small = Tensor(small)
    loss_small = softmax_cross_entropy(z_small, y)
    loss_small.backward()
    assert np.isfinite(loss_big.item())
    assert np.all(np.isfinite(z_big.grad))
    # softmax is unchanged by adding a constant to every logit of a column
    assert loss_big.item() == pytest.approx(loss_small.item(), rel=1e-9)
    np.testing.assert_allclose(z_big.grad, z_small.grad, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("shift", [0.0, 1000.0, -1000.0])
def test_softmax_columns_sum_to_one(shift: float, rng: np.random.Generator) -> None:
    z = 3.0 * rng.standard_normal((5, 8)) + shift
    p = softmax(z)
    assert p.shape == (5, 8)
    assert np.all(np.isfinite(p)) and np.all(p >= 0.0)
    np.testing.assert_allclose(p.sum(axis=0), np.ones(8), rtol=1e-12)
    np.testing.assert_allclose(p, softmax(z - z.mean()), rtol=1e-9, atol=1e-300)
    column = softmax(z[:, :1])
    np.testing.assert_allclose(column, p[:, :1], rtol=1e-12)


def test_mse_value_and_gradient(rng: np.random.Generator) -> None:
    a = Tensor(rng.standard_normal((3, 4)))
    y = rng.standard_normal((3, 4))
    loss = mse(a, y)
    loss.backward()
    assert loss.item() == pytest.approx(0.5 * np.sum((a.data - y) ** 2) / 4, rel=1e-13)
    np.testing.assert_allclose(a.grad, (a.data - y) / 4, rtol=1e-13)


def test_loss_label_shape_mismatch_raises(rng: np.random.Generator) -> None:
    z = Tensor(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError):
        softmax_cross_entropy(z, np.ones((4, 3)) / 4)
    with pytest.raises(ValueError):
        mse(z, np.zeros((3, 1)))


# -- single precision -------------------------------------------------------------------------
def small_network(arrays: dict[str, np.ndarray], dtype: type) -> tuple[Tensor, dict[str, Tensor]]:
    p = {name: Tensor(a.astype(dtype)) for name, a in arrays.items() if name not in ("Y", "T")}
    z1 = affine(p["W1"], p["X"], p["b1"])
    a1 = z1.tanh()
    z2 = affine(p["W2"], a1, p["b2"])
    h = (a1 * a1 + 1.0).log() + a1.sigmoid() * 0.5 - z1.relu() / 3.0
    extra = (h.exp().mean(axis=0, keepdims=True) * p["s"]).sum() + (-(h.T @ h)).reshape(-1).mean()
    loss = softmax_cross_entropy(z2, arrays["Y"]) + mse(a1, arrays["T"]) * 0.1 + extra * 0.01
    return loss, p


def network_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "W1": rng.standard_normal((5, 3)),
        "b1": rng.standard_normal((5, 1)),
        "W2": rng.standard_normal((4, 5)),
        "b2": rng.standard_normal((4, 1)),
        "X": rng.standard_normal((3, 6)),
        "s": rng.standard_normal(()),
        "Y": np.eye(4)[:, rng.integers(0, 4, 6)],
        "T": rng.uniform(-0.5, 0.5, (5, 6)),
    }


def test_float32_graph_stays_float32_and_agrees_with_float64(rng: np.random.Generator) -> None:
    arrays = network_arrays(rng)
    loss32, p32 = small_network(arrays, np.float32)
    loss64, p64 = small_network(arrays, np.float64)
    loss32.backward()
    loss64.backward()
    for node in topological_order(loss32):
        assert node.data.dtype == np.float32, node
        if node.grad is not None:
            assert node.grad.dtype == np.float32, node
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-5)
    for name in p32:
        g32, g64 = p32[name].grad, p64[name].grad
        assert g32.dtype == np.float32
        scale = np.max(np.abs(g64))
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


def test_float32_constants_take_the_tensor_dtype() -> None:
    x = Tensor(np.array([[1.0, 2.0]], dtype=np.float32))
    for out in (x * 0.1, 2.0 - x, np.array([[1.0], [2.0]]) + x, x / np.float64(3.0)):
        assert out.dtype == np.float32
    assert Tensor([1, 2]).dtype == np.float64


# -- gradient buffers and the merge rule ------------------------------------------------------
def test_leaf_gradient_buffer_is_reused_across_steps(rng: np.random.Generator) -> None:
    w = Tensor(rng.standard_normal((3, 4)))
    b = Tensor(rng.standard_normal((3, 1)))
    x = rng.standard_normal((4, 5))
    buffers = None
    for _step in range(3):
        loss = affine(w, x, b).tanh().sum()
        loss.backward()
        upstream = 1.0 - np.tanh(w.data @ x + b.data) ** 2
        np.testing.assert_allclose(w.grad, upstream @ x.T, rtol=1e-12)
        np.testing.assert_allclose(b.grad, upstream.sum(axis=1, keepdims=True), rtol=1e-12)
        if buffers is None:
            buffers = (w.grad, b.grad)
        assert w.grad is buffers[0] and b.grad is buffers[1]
        w.data -= 0.1 * w.grad  # an SGD step in place
        b.data -= 0.1 * b.grad
        loss.zero_grad()
        assert w.grad is buffers[0] and b.grad is buffers[1]
        assert not w.grad.any() and not b.grad.any()


def test_backward_twice_accumulates_in_leaves_only(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 4)))
    w = Tensor(rng.standard_normal((3, 4)))
    h = x * w
    loss = (h.tanh()).sum()
    loss.backward()
    first_x, first_h = x.grad.copy(), h.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first_x, rtol=1e-15)
    np.testing.assert_array_equal(h.grad, first_h)
    loss.zero_grad()
    loss.backward()
    np.testing.assert_allclose(x.grad, first_x, rtol=1e-15)


def test_interior_node_used_twice_receives_the_sum(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 4)))
    w = Tensor(rng.standard_normal((3, 4)))
    c = rng.standard_normal((3, 4))
    h = x * w
    loss = (h * h).sum() + (h * c).sum() + h.mean()
    loss.backward()
    dh = 2 * h.data + c + 1.0 / 12
    np.testing.assert_allclose(h.grad, dh, rtol=1e-13)
    np.testing.assert_allclose(x.grad, dh * w.data, rtol=1e-13)
    np.testing.assert_allclose(w.grad, dh * x.data, rtol=1e-13)


@pytest.mark.parametrize(
    "order", ["a + b, a*v first", "a + b, a*v last", "b + a, a*v first", "b + a, a*v last"]
)
def test_gradients_passed_on_unchanged_are_not_modified_later(order: str, rng: np.random.Generator) -> None:
    """add hands its upstream to both inputs as is; a later contribution to one input must not change it.

    a receives dL/dh (shared with b and h) and, separately, v from a * v.
    """
    x, y = Tensor(rng.standard_normal((2, 3))), Tensor(rng.standard_normal((2, 3)))
    w, v = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    a, b = x * 2.0, y * 3.0
    h = a + b if order.startswith("a") else b + a
    terms = [(h * w).sum(), (a * v).sum()]
    loss = terms[0] + terms[1] if order.endswith("last") else terms[1] + terms[0]
    loss.backward()
    np.testing.assert_allclose(h.grad, w, rtol=1e-15)
    np.testing.assert_allclose(b.grad, w, rtol=1e-15)
    np.testing.assert_allclose(a.grad, w + v, rtol=1e-15)
    np.testing.assert_allclose(x.grad, 2.0 * (w + v), rtol=1e-15)
    np.testing.assert_allclose(y.grad, 3.0 * w, rtol=1e-15)


@pytest.mark.parametrize(
    ("expr", "build", "expected"),
    [
        ("x * x", lambda x: x * x, lambda x: 2 * x),
        ("x + x", lambda x: x + x, lambda x: 2 * np.ones_like(x)),
        ("x - x", lambda x: x - x, lambda x: np.zeros_like(x)),
        ("x @ x", lambda x: x @ x, lambda x: np.ones_like(x) @ x.T + x.T @ np.ones_like(x)),
        ("x * x.T", lambda x: x * x.T, lambda x: x.T + x.T),
        ("(x + x) * x", lambda x: (x + x) * x, lambda x: 4 * x),
    ],
)
def test_tensor_used_twice_in_one_expression(expr, build, expected, rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 3)))
    build(x).sum().backward()
    np.testing.assert_allclose(x.grad, expected(x.data), rtol=1e-13, atol=1e-15, err_msg=expr)


def test_constants_get_no_gradient(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 4)))
    c = Tensor(rng.standard_normal((3, 4)), requires_grad=False)
    k = c * 2.0 + 1.0  # built from constants only
    assert not k.requires_grad
    loss = (x * k + c).sum()
    loss.backward()
    assert c.grad is None
    assert k.grad is None
    np.testing.assert_allclose(x.grad, 2.0 * c.data + 1.0, rtol=1e-15)


def test_backward_on_a_non_scalar_needs_an_upstream(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 4)))
    out = x.tanh()
    with pytest.raises(ValueError):
        out.backward()
    with pytest.raises(ValueError):
        out.backward(np.ones((4, 3)))
    with pytest.raises(ValueError):
        out.backward(np.ones(12))
    assert x.grad is None  # nothing ran
    # a single-entry output of any shape is fine without an upstream
    single = x.sum(keepdims=True)
    single.backward()
    np.testing.assert_array_equal(x.grad, np.ones((3, 4)))


def test_no_grad_records_no_graph(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 4)))
    with no_grad():
        y = (x * 2.0).tanh().sum(axis=0)
    assert not y.requires_grad and y.op is None and y.parents == () and y.saved is None
    np.testing.assert_allclose(y.data, np.tanh(2.0 * x.data).sum(axis=0), rtol=1e-14)
    with pytest.raises(RuntimeError), no_grad():
        raise RuntimeError
    z = (x * 2.0).tanh().sum()  # recording is back on, also after an exception in the block
    assert z.requires_grad and z.op is not None
    z.backward()
    np.testing.assert_allclose(x.grad, 2.0 * (1 - np.tanh(2.0 * x.data) ** 2), rtol=1e-13)


# -- the affine rules, directly --------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 6])
def test_affine_backward_rules(batch: int, rng: np.random.Generator) -> None:
    m, n = 4, 3
    w, x, b = (Tensor(rng.standard_normal(s)) for s in ((m, n), (n, batch), (m, 1)))
    g = rng.standard_normal((m, batch))
    z = affine(w, x, b)
    np.testing.assert_allclose(z.data, w.data @ x.data + b.data, rtol=1e-14)
    z.backward(g)
    np.testing.assert_allclose(w.grad, g @ x.data.T, rtol=1e-13)
    np.testing.assert_allclose(x.grad, w.data.T @ g, rtol=1e-13)
    assert b.grad.shape == (m, 1)
    np.testing.assert_allclose(b.grad, g.sum(axis=1, keepdims=True), rtol=1e-13)


def test_relu_gradient_at_zero_is_zero() -> None:
    """Same convention as the scalar engine: relu'(0) = 0."""
    z = Tensor(np.array([[-1.0, 0.0, 2.0]]))
    z.relu().sum().backward()
    np.testing.assert_array_equal(z.grad, [[0.0, 0.0, 1.0]])


def test_sigmoid_is_stable_for_large_inputs() -> None:
    z = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
    with np.errstate(over="raise"):
        out = z.sigmoid()
        out.backward(np.ones(5))
    assert np.all((out.data >= 0.0) & (out.data <= 1.0))
    np.testing.assert_allclose(out.data, [0.0, np.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(z.grad))


def test_dropped_tensor_graph_leaves_no_cyclic_garbage(rng: np.random.Generator) -> None:
    arrays = network_arrays(rng)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        loss, params = small_network(arrays, np.float64)
        loss.backward()
        del loss, params
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()


def test_an_op_without_its_backward_rule_is_refused():
    from bpcourse.tensor import TensorOp, register

    class HalfDone(TensorOp):
        name, symbol = "half_done", "?"

        @staticmethod
        def forward(x):
            return x, None

    with pytest.raises(TypeError, match="must define its own vjp rule"):
        register(HalfDone)
    assert "half_done" not in TENSOR_OPS


# -- shapes beyond the course's: numpy's rules or a clear refusal -----------------------------------
def test_matmul_with_a_vector_and_a_square_matrix() -> None:
    """A (3, 3) @ v (3,): dL/dA = G vᵀ has the rows of v, dL/dv = Aᵀ G (G = ones for a sum)."""
    a, v = Tensor(np.eye(3)), Tensor([1.0, 2.0, 3.0])
    (a @ v).sum().backward()
    np.testing.assert_array_equal(a.grad, [[1.0, 2.0, 3.0]] * 3)
    np.testing.assert_array_equal(v.grad, [1.0, 1.0, 1.0])


BIAS_SHAPES: dict[str, Callable[[int, int], tuple[int, ...]]] = {
    "(m,1)": lambda m, batch: (m, 1),
    "(m,B)": lambda m, batch: (m, batch),
    "(1,1)": lambda m, batch: (1, 1),
    "(1,B)": lambda m, batch: (1, batch),
    "(B,)": lambda m, batch: (batch,),
    "(1,)": lambda m, batch: (1,),
    "()": lambda m, batch: (),
}


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("bias", list(BIAS_SHAPES))
def test_affine_bias_of_every_shape_that_broadcasts(bias: str, batch: int, rng: np.random.Generator) -> None:
    m, n = 4, 3
    arrays = [rng.standard_normal(s) for s in ((m, n), (n, batch), BIAS_SHAPES[bias](m, batch))]
    weights = rng.standard_normal((m, batch))
    tensors = [Tensor(a) for a in arrays]
    affine(*tensors).backward(weights)
    for i, t in enumerate(tensors):
        expected = autograd.grad(lambda w, x, b: anp.sum((w @ x + b) * weights), i)(*arrays)
        assert t.grad.shape == arrays[i].shape
        np.testing.assert_allclose(t.grad, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("w", "x", "b"),
    [
        ((4, 3), (3, 5), (3, 1)),  # b has the rows of X, not of W
        ((4, 3), (3, 5), (4, 5, 1)),  # would turn z into a stack
        ((4, 3), (3, 5), (2, 4, 5)),
        ((4, 3), (3,), (4, 1)),  # a 1-D x gives z (4,): a column bias would make it (4, 4)
        ((3, 3), (3,), (3, 1)),
    ],
)
def test_affine_refuses_a_bias_that_would_change_the_shape_of_wx(w, x, b) -> None:
    W, X, B = (Tensor(np.ones(s)) for s in (w, x, b))
    with pytest.raises(ValueError, match=r"affine: b has shape") as raised:
        affine(W, X, B)
    assert str(b) in str(raised.value) and str(w) in str(raised.value) and str(x) in str(raised.value)


@pytest.mark.parametrize(
    ("op", "a", "b", "words"),
    [
        ("matmul", (3, 4), (5, 2), "A has 4 columns but B has 5 rows"),
        ("matmul", (3, 4), (5,), "A has 4 columns but B has 5 entries"),
        ("matmul", (4,), (5, 2), "A has 4 entries but B has 5 rows"),
        ("matmul", (2, 3, 4), (3, 4, 2), "batch axes (2,) and (3,) do not broadcast"),
        ("matmul", (), (3, 4), "at least one axis"),
        ("affine", (3, 4), (5, 2), "W has 4 columns but X has 5 rows"),
    ],
)
def test_shape_mismatch_in_a_product_names_the_op_operands_and_shapes(op, a, b, words) -> None:
    x, y = Tensor(np.ones(a)), Tensor(np.ones(b))
    names = ("A", "B") if op == "matmul" else ("W", "X")
    with pytest.raises(ValueError) as raised:
        x @ y if op == "matmul" else affine(x, y, np.zeros((a[0], 1)))
    text = str(raised.value)
    assert text.startswith(f"{op}: {names[0]} has shape {a} and {names[1]} has shape {b}"), text
    assert words in text, text


@pytest.mark.parametrize(
    ("shape", "words"),
    [((0, 5), "no classes"), ((0,), "no classes"), ((3, 0), "empty batch"), ((2, 3, 4), "at most 2 axes")],
)
def test_softmax_ce_refuses_empty_or_stacked_logits(shape, words) -> None:
    with pytest.raises(ValueError, match=r"softmax_ce: logits Z have shape") as raised:
        softmax_cross_entropy(Tensor(np.zeros(shape)), np.zeros(shape))
    assert str(shape) in str(raised.value) and words in str(raised.value)


def test_mse_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError, match=r"mse: outputs a have shape \(3, 0\): an empty batch"):
        mse(Tensor(np.zeros((3, 0))), np.zeros((3, 0)))


def test_softmax_ce_with_labels_not_summing_to_one_gets_the_true_gradient() -> None:
    """L = -Σ y log p with y = (2, 0) at z = 0: dL/dz = p Σy - y = (0.5·2 - 2, 0.5·2 - 0) = (-1, 1)."""
    z = Tensor(np.zeros((2, 1)))
    softmax_cross_entropy(z, [[2.0], [0.0]]).backward()
    np.testing.assert_allclose(z.grad, [[-1.0], [1.0]], rtol=1e-15)


def test_relu_propagates_nan() -> None:
    z = Tensor(np.array([np.nan, 2.0, -1.0, 0.0]))
    out = z.relu()
    out.backward(np.ones(4))
    np.testing.assert_array_equal(out.data, [np.nan, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(z.grad, [np.nan, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(out.op.jvp([np.ones(4)], out.saved), [np.nan, 1.0, 0.0, 0.0])


# -- results without a graph, stale graphs, shared memory -------------------------------------------
def test_backward_without_a_graph_raises(rng: np.random.Generator) -> None:
    w = Tensor(rng.standard_normal((3, 2)))
    with no_grad():
        under_no_grad = (w * 2.0).sum()
    constants_only = (Tensor(np.ones(3), requires_grad=False) * 2.0).sum()
    for result in (under_no_grad, constants_only, Tensor(1.0, requires_grad=False)):
        with pytest.raises(RuntimeError, match=r"no graph to go back through.*no_grad\(\)"):
            result.backward()
    assert w.grad is None
    leaf = Tensor(np.ones(2))  # a leaf that requires a gradient is its own graph, as in PyTorch
    leaf.backward(np.ones(2))
    np.testing.assert_array_equal(leaf.grad, np.ones(2))


def test_tensor_copies_the_array_it_is_given(rng: np.random.Generator) -> None:
    original = rng.standard_normal((3, 2))
    kept = original.copy()
    w = Tensor(original)
    assert not np.shares_memory(w.data, original)
    (w * w).sum().backward()
    w.data -= 0.1 * w.grad
    np.testing.assert_array_equal(original, kept)


def test_copy_false_shares_the_array_when_no_conversion_is_needed(rng: np.random.Generator) -> None:
    batch = rng.standard_normal((3, 2))
    shared = Tensor(batch, requires_grad=False, copy=False)
    assert np.shares_memory(shared.data, batch)
    shared.data -= 1.0  # documented: an in-place update reaches the caller's array
    np.testing.assert_array_equal(shared.data, batch)
    converted = Tensor(batch.astype(np.float32), dtype=np.float64, copy=False)
    assert converted.dtype == np.float64


def test_constants_made_from_plain_arrays_are_not_copied(rng: np.random.Generator) -> None:
    """A plain array in an expression is only read: no copy of it in the forward pass."""
    x, c = Tensor(rng.standard_normal((3, 2))), rng.standard_normal((3, 2))
    out = x * c
    assert any(np.shares_memory(p.data, c) for p in out.parents)


def test_backward_on_a_graph_built_before_an_update_raises(rng: np.random.Generator) -> None:
    w, x = Tensor(rng.standard_normal((3, 4))), rng.standard_normal((4, 2))
    loss = (w @ x).tanh().sum()
    loss.backward()
    first = w.grad.copy()
    assert w.version == 0
    w.data -= 0.1 * w.grad  # an SGD step
    assert w.version == 1
    with pytest.raises(RuntimeError, match=r"input 0 of a 'matmul' node.*updated in place") as raised:
        loss.backward()
    assert "forward pass again" in str(raised.value)
    np.testing.assert_array_equal(w.grad, first)  # refused before any gradient was added
    w.zero_grad()
    (w @ x).tanh().sum().backward()  # a graph built after the update is fine
    np.testing.assert_allclose(w.grad, (1 - np.tanh(w.data @ x) ** 2) @ x.T, rtol=1e-13)


def test_an_update_of_an_interior_node_is_seen_too(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((2, 2)))
    h = x * 3.0
    loss = (h * h).sum()
    h.data = np.zeros((2, 2))
    with pytest.raises(RuntimeError, match=r"'mul' node"):
        loss.backward()


def test_pytorch_also_refuses_a_stale_graph(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    w = torch.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    loss = (w * w).sum()
    with torch.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize(
    ("x", "p", "words"),
    [
        (np.array([[1.0, -2.0]]), 0.5, "pow: x of shape (1, 2) has 1 negative entries"),
        (np.array([[0.0, 2.0, 0.0]]), -0.5, "pow: x of shape (1, 3) has 2 entries equal to 0"),
        (np.ones((2, 3)), np.ones((2, 3)), "pow: x has shape (2, 3) and the exponent has shape (2, 3)"),
        (np.ones((2, 3)), Tensor(2.0), "a tensor exponent is not supported"),
    ],
)
def test_pow_refuses_what_has_no_real_finite_value_naming_the_op_and_shapes(x, p, words) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        Tensor(x) ** p


def test_pow_keeps_float32_and_has_a_finite_gradient_where_x_is_zero() -> None:
    x = Tensor(np.array([0.0, 1.0, 4.0], dtype=np.float32))
    (x**2).backward(np.ones(3, dtype=np.float32))
    assert (x**0.5).dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 8.0])
    y = Tensor(np.array([0.0, 4.0]))
    (y**1.5).backward(np.ones(2))
    np.testing.assert_allclose(y.grad, [0.0, 3.0])
    z = Tensor(np.array([0.0, -2.0]))
    (z**0).backward(np.ones(2))
    np.testing.assert_array_equal(z.grad, [0.0, 0.0])  # x^0 = 1 is flat, at 0 too
