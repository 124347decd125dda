"""Forward mode against reverse mode (``bpcourse.forward``).

Scalar: dual numbers run the same rules table as ``Value``; both must give the
same derivatives. Tensor: the jvp rules (forward) and vjp rules (reverse) of
every op must be transposes of each other, <J u, w> = <u, Jᵀ w>, and the
Jacobians built column by column (jvp) and row by row (vjp) must both equal
autograd's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from bpcourse.forward import Dual, derivative, jacobian_by_jvp, jacobian_by_vjp, jvp, vjp
from bpcourse.scalar import SCALAR_OPS, Value
from bpcourse.scalar import topological_order as scalar_order
from bpcourse.tensor import TENSOR_OPS, Tensor, affine, mse, softmax_cross_entropy
from bpcourse.tensor import topological_order as tensor_order


# -- scalar: dual numbers against Value.backward ------------------------------------------------
def anywhere(rng: np.random.Generator) -> float:
    return float(rng.uniform(-2.0, 2.0))


def positive(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.3, 3.0))


def nonzero(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.4, 2.5) * rng.choice((-1.0, 1.0)))


@dataclass(frozen=True)
class ScalarCase:
    """``f`` is written once and run on both ``Dual`` and ``Value`` inputs."""

    op: str
    expr: str
    f: Callable
    domains: tuple[Callable[[np.random.Generator], float], ...]


SCALAR_CASES = [
    ScalarCase("add", "x + y", lambda x, y: x + y, (anywhere, anywhere)),
    ScalarCase("add", "2 + x", lambda x: 2 + x, (anywhere,)),
    ScalarCase("sub", "x - y", lambda x, y: x - y, (anywhere, anywhere)),
    ScalarCase("sub", "1 - x", lambda x: 1 - x, (anywhere,)),
    ScalarCase("mul", "x * y", lambda x, y: x * y, (anywhere, anywhere)),
    ScalarCase("mul", "x * 3", lambda x: x * 3, (anywhere,)),
    ScalarCase("div", "x / y", lambda x, y: x / y, (anywhere, nonzero)),
    ScalarCase("div", "3 / x", lambda x: 3 / x, (nonzero,)),
    ScalarCase("neg", "-x", lambda x: -x, (anywhere,)),
    ScalarCase("pow", "x ** 3", lambda x: x**3, (anywhere,)),
    ScalarCase("pow", "x ** -1.5", lambda x: x**-1.5, (positive,)),
    ScalarCase("exp", "exp(x)", lambda x: x.exp(), (anywhere,)),
    ScalarCase("log", "log(x)", lambda x: x.log(), (positive,)),
    ScalarCase("tanh", "tanh(x)", lambda x: x.tanh(), (anywhere,)),
    ScalarCase("sigmoid", "sigmoid(x)", lambda x: x.sigmoid(), (anywhere,)),
    ScalarCase("relu", "relu(x)", lambda x: x.relu(), (nonzero,)),
    ScalarCase(
        "mul",
        "a composite",
        lambda x, y: ((x * y + 1).tanh() * x - y / (x * x + 1)).sigmoid() + (x * x + 0.5).log(),
        (anywhere, anywhere),
    ),
]


def test_every_scalar_op_has_a_dual_test() -> None:
    assert {case.op for case in SCALAR_CASES} == set(SCALAR_OPS)


@pytest.mark.parametrize("case", SCALAR_CASES, ids=[f"{c.op}: {c.expr}" for c in SCALAR_CASES])
def test_dual_numbers_agree_with_backward(case: ScalarCase, rng: np.random.Generator) -> None:
    for _ in range(5):
        inputs = [sample(rng) for sample in case.domains]
        leaves = [Value(v) for v in inputs]
        out = case.f(*leaves)
        assert case.op in {node.op for node in scalar_order(out)}
        out.backward()
        for j, leaf in enumerate(leaves):
            duals = [Dual(v, 1.0 if k == j else 0.0) for k, v in enumerate(inputs)]
            pushed = case.f(*duals)
            assert pushed.value == out.data
            assert pushed.tangent == pytest.approx(leaf.grad, rel=1e-13, abs=1e-15), f"d/d input {j}"


def test_derivative_gives_value_and_slope(rng: np.random.Generator) -> None:
    for x in rng.uniform(-2, 2, 5):
        value, slope = derivative(lambda v: (v * v).tanh() * 3, x)
        assert value == pytest.approx(3 * np.tanh(x * x), rel=1e-14)
        assert slope == pytest.approx(3 * (1 - np.tanh(x * x) ** 2) * 2 * x, rel=1e-13)


def test_dual_relu_at_zero_follows_the_same_convention() -> None:
    assert derivative(lambda v: v.relu(), 0.0) == (0.0, 0.0)


@pytest.mark.parametrize(("n", "value", "slope"), [(0, 1.0, 0.0), (0.5, 0.0, math.inf), (1.5, 0.0, 0.0)])
def test_dual_pow_at_zero_shares_the_scalar_rule(n: float, value: float, slope: float) -> None:
    assert derivative(lambda v: v**n, 0.0) == (value, slope)
    x = Value(0.0)
    (x**n).backward()
    assert x.grad == slope


@pytest.mark.parametrize(
    ("f", "x", "error", "words"),
    [
        (lambda v: v ** (1 / 3), -8.0, ValueError, "pow: -8.0 ** 0.3333333333333333 is not a real number"),
        (lambda v: v**-1, 0.0, ZeroDivisionError, "pow: 0.0 ** -1 divides by zero"),
        (lambda v: v.log(), 0.0, ValueError, "log: ln x needs x > 0, got x = 0.0"),
        (lambda v: v.exp(), 1000.0, OverflowError, "exp: e ** 1000.0 overflows"),
        (lambda v: 1.0 / v, 0.0, ZeroDivisionError, "div: 1.0 / 0.0 divides by zero"),
    ],
)
def test_dual_errors_are_the_scalar_errors(f, x: float, error: type, words: str) -> None:
    with pytest.raises(error, match=re.escape(words)):
        derivative(f, x)
    with pytest.raises(error, match=re.escape(words)):
        f(Value(x))


def test_dual_relu_of_nan_is_nan() -> None:
    value, slope = derivative(lambda v: v.relu(), math.nan)
    assert math.isnan(value) and math.isnan(slope)


# -- tensor: jvp and vjp rules of every op ------------------------------------------------------
def normal(*shape: int, scale: float = 1.0) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: scale * np.asarray(rng.standard_normal(shape), dtype=np.float64)


def away(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Entries with |x| in [0.4, 2.5]."""
    return lambda rng: rng.uniform(0.4, 2.5, shape) * rng.choice((-1.0, 1.0), shape)


def positive_array(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.3, 3.0, shape)


def one_hot(classes: int, batch: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: np.eye(classes)[:, rng.integers(0, classes, batch)]


def soft_labels(classes: int, batch: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.dirichlet(np.ones(classes), size=batch).T


def ref_softmax_ce(z, y):
    return -anp.sum(y * (z - anp.log(anp.sum(anp.exp(z), axis=0, keepdims=True)))) / z.shape[1]


def ref_mse(a, y):
    return 0.5 * anp.sum((a - y) ** 2) / a.shape[1]


@dataclass(frozen=True)
class TensorCase:
    """A function of one tensor x, the others held constant.

    ``engine(x, *consts)`` uses engine ops; ``reference`` is the same function
    for autograd (``None``: ``engine`` itself works for both).
    """

    op: str
    expr: str
    engine: Callable
    x: Callable[[np.random.Generator], np.ndarray]
    consts: tuple[Callable[[np.random.Generator], np.ndarray], ...] = ()
    reference: Callable | None = None

    @property
    def ref(self) -> Callable:
        return self.engine if self.reference is None else self.reference


TENSOR_CASES = [
    TensorCase("add", "x (3,1) + c (3,4)", lambda x, c: x + c, normal(3, 1), (normal(3, 4),)),
    TensorCase("add", "c (3,4) + x (4,)", lambda x, c: c + x, normal(4), (normal(3, 4),)),
    TensorCase("sub", "x (3,4) - c (3,1)", lambda x, c: x - c, normal(3, 4), (normal(3, 1),)),
    TensorCase("sub", "c (1,4) - x (3,4)", lambda x, c: c - x, normal(3, 4), (normal(1, 4),)),
    TensorCase("mul", "x (3,1) * c (3,4)", lambda x, c: x * c, normal(3, 1), (normal(3, 4),)),
    TensorCase("mul", "c (1,4) * x (3,4)", lambda x, c: c * x, normal(3, 4), (normal(1, 4),)),
    TensorCase("mul", "x * x", lambda x: x * x, normal(3, 2)),
    TensorCase("div", "x (3,4) / c (3,1)", lambda x, c: x / c, normal(3, 4), (away(3, 1),)),
    TensorCase("div", "c (3,4) / x (4,)", lambda x, c: c / x, away(4), (normal(3, 4),)),
    TensorCase("neg", "-x", lambda x: -x, normal(3, 2)),
    TensorCase("matmul", "x (2,3) @ c (3,4)", lambda x, c: x @ c, normal(2, 3), (normal(3, 4),)),
    TensorCase("matmul", "c (2,3) @ x (3,4)", lambda x, c: c @ x, normal(3, 4), (normal(2, 3),)),
    TensorCase("matmul", "c (3,3) @ x (3,)", lambda x, c: c @ x, normal(3), (normal(3, 3),)),
    TensorCase("matmul", "x (3,3) @ c (3,)", lambda x, c: x @ c, normal(3, 3), (normal(3),)),
    TensorCase("matmul", "x (2,3,4) @ c (4,2)", lambda x, c: x @ c, normal(2, 3, 4), (normal(4, 2),)),
    TensorCase("matmul", "c (2,3,4) @ x (4,2)", lambda x, c: c @ x, normal(4, 2), (normal(2, 3, 4),)),
    TensorCase(
        "affine",
        "b (1,4) varies",
        lambda b, w, x: affine(w, x, b),
        normal(1, 4),
        (normal(3, 2), normal(2, 4)),
        lambda b, w, x: w @ x + b,
    ),
    TensorCase(
        "affine",
        "W varies",
        lambda w, x, b: affine(w, x, b),
        normal(3, 2),
        (normal(2, 4), normal(3, 1)),
        lambda w, x, b: w @ x + b,
    ),
    TensorCase(
        "affine",
        "X varies",
        lambda x, w, b: affine(w, x, b),
        normal(2, 4),
        (normal(3, 2), normal(3, 1)),
        lambda x, w, b: w @ x + b,
    ),
    TensorCase(
        "affine",
        "b varies",
        lambda b, w, x: affine(w, x, b),
        normal(3, 1),
        (normal(3, 2), normal(2, 4)),
        lambda b, w, x: w @ x + b,
    ),
    TensorCase("sum", "sum()", lambda x: x.sum(), normal(3, 4)),
    TensorCase("sum", "sum(axis=0, keepdims)", lambda x: x.sum(axis=0, keepdims=True), normal(3, 4)),
    TensorCase("sum", "sum(axis=1)", lambda x: x.sum(axis=1), normal(3, 4)),
    TensorCase("mean", "mean()", lambda x: x.mean(), normal(3, 4)),
    TensorCase("mean", "mean(axis=1)", lambda x: x.mean(axis=1), normal(3, 4)),
    TensorCase("mean", "mean(axis=0, keepdims)", lambda x: x.mean(axis=0, keepdims=True), normal(3, 4)),
    TensorCase(
        "reshape",
        "(3,4) -> (2,6)",
        lambda x: x.reshape(2, 6),
        normal(3, 4),
        reference=lambda x: anp.reshape(x, (2, 6)),
    ),
    TensorCase("transpose", "x.T", lambda x: x.T, normal(3, 4)),
    TensorCase("exp", "exp", lambda x: x.exp(), normal(3, 4), reference=anp.exp),
    TensorCase("log", "log", lambda x: x.log(), positive_array(3, 4), reference=anp.log),
    TensorCase("relu", "relu", lambda x: x.relu(), away(3, 4), reference=lambda x: x * (x > 0)),
    TensorCase(
        "sigmoid",
        "sigmoid",
        lambda x: x.sigmoid(),
        normal(3, 4, scale=3.0),
        reference=lambda x: 1 / (1 + anp.exp(-x)),
    ),
    TensorCase("tanh", "tanh", lambda x: x.tanh(), normal(3, 4), reference=anp.tanh),
    TensorCase("pow", "x ** 3", lambda x: x**3, normal(3, 4)),
    TensorCase("pow", "x ** -0.5", lambda x: x**-0.5, positive_array(3, 4)),
    TensorCase(
        "softmax_ce",
        "one-hot",
        softmax_cross_entropy,
        normal(4, 3, scale=2.0),
        (one_hot(4, 3),),
        ref_softmax_ce,
    ),
    TensorCase(
        "softmax_ce",
        "distributions",
        softmax_cross_entropy,
        normal(4, 3, scale=2.0),
        (soft_labels(4, 3),),
        ref_softmax_ce,
    ),
    TensorCase("mse", "mse", mse, normal(3, 4), (normal(3, 4),), ref_mse),
]


def test_every_tensor_op_has_a_forward_mode_test() -> None:
    assert {case.op for case in TENSOR_CASES} == set(TENSOR_OPS)


def adjoint_gap(f: Callable, x: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """<J u, w> and <u, Jᵀ w> for random u, w; also checks both passes agree on f(x)."""
    u = rng.standard_normal(x.shape)
    out_fwd, ju = jvp(f, x, u)
    w = rng.standard_normal(np.shape(out_fwd))
    out_rev, jtw = vjp(f, x, w)
    np.testing.assert_array_equal(out_fwd, out_rev)
    assert np.shape(ju) == np.shape(out_fwd) and np.shape(jtw) == x.shape
    return float(np.sum(ju * w)), float(np.sum(u * jtw))


def check_jacobians(f: Callable, reference: Callable, x: np.ndarray) -> None:
    by_jvp = jacobian_by_jvp(f, x)
    by_vjp = jacobian_by_vjp(f, x)
    expected = np.asarray(autograd.jacobian(reference)(x))
    expected = expected.reshape(by_vjp.shape)
    np.testing.assert_allclose(by_jvp, by_vjp, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(by_jvp, expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(by_vjp, expected, rtol=1e-10, atol=1e-13)


def check_case_at(case: TensorCase, x: np.ndarray, consts: list, rng: np.random.Generator) -> None:
    def f(t: Tensor) -> Tensor:
        return case.engine(t, *consts)

    def ref(v):
        return case.ref(v, *consts)

    assert case.op in {n.op.name for n in tensor_order(f(Tensor(x))) if n.op is not None}
    forward, reverse = adjoint_gap(f, x, rng)
    assert forward == pytest.approx(reverse, rel=1e-10, abs=1e-13)
    check_jacobians(f, ref, x)


@pytest.mark.parametrize("case", TENSOR_CASES, ids=[f"{c.op}: {c.expr}" for c in TENSOR_CASES])
def test_jvp_and_vjp_rules_of_each_op(case: TensorCase, rng: np.random.Generator) -> None:
    for _ in range(3):
        x = case.x(rng)
        check_case_at(case, x, [sample(rng) for sample in case.consts], rng)


# -- tensor: functions built from several ops ----------------------------------------------------
def composite_functions(rng: np.random.Generator) -> dict[str, tuple[Callable, Callable, np.ndarray]]:
    """name -> (engine function, autograd function, input)."""
    w1, b1 = rng.standard_normal((5, 3)), rng.standard_normal((5, 1))
    w2, b2 = rng.standard_normal((4, 5)), rng.standard_normal((4, 1))
    scale = rng.standard_normal((1, 4))
    y = np.eye(4)[:, rng.integers(0, 4, 4)]

    def layer(x):
        return affine(w1, x, b1).tanh()

    def layer_ref(x):
        return anp.tanh(w1 @ x + b1)

    def classifier(x):
        return softmax_cross_entropy(affine(w2, layer(x) * scale, b2), y)

    def classifier_ref(x):
        return ref_softmax_ce(w2 @ (layer_ref(x) * scale) + b2, y)

    def pooled(x):
        return (layer(x) * scale).sum(axis=0, keepdims=True) + x.sum(axis=0) * 0.5

    def pooled_ref(x):
        return anp.sum(layer_ref(x) * scale, axis=0, keepdims=True) + anp.sum(x, axis=0) * 0.5

    def mixed(x):
        h = layer(x)
        return ((h * h.sigmoid()).mean(axis=0) - (x.T.T / (x * x + 1.0)).mean(axis=0)) * 3.0

    def mixed_ref(x):
        h = layer_ref(x)
        return (anp.mean(h / (1 + anp.exp(-h)), axis=0) - anp.mean(x / (x * x + 1.0), axis=0)) * 3.0

    x = rng.standard_normal((3, 4))
    return {
        "tanh(affine)": (layer, layer_ref, x),
        "softmax_ce(affine(tanh(affine) * row))": (classifier, classifier_ref, x),
        "sum over a broadcast product": (pooled, pooled_ref, x),
        "sigmoid, div, transpose, mean": (mixed, mixed_ref, x),
    }


COMPOSITES = list(composite_functions(np.random.default_rng(0)))


@pytest.mark.parametrize("name", COMPOSITES)
def test_adjoint_identity_on_composite_functions(name: str, rng: np.random.Generator) -> None:
    f, reference, x = composite_functions(rng)[name]
    for _ in range(5):
        forward, reverse = adjoint_gap(f, x, rng)
        assert forward == pytest.approx(reverse, rel=1e-10)


@pytest.mark.parametrize("name", COMPOSITES)
def test_jacobians_of_composite_functions(name: str, rng: np.random.Generator) -> None:
    f, reference, x = composite_functions(rng)[name]
    check_jacobians(f, reference, x)


def test_jacobian_shapes_and_costs() -> None:
    """f: R⁶ -> R²: the jvp Jacobian is built from 6 columns, the vjp one from 2 rows."""
    w = np.arange(12.0).reshape(2, 6) / 10

    def f(x):
        return w @ x

    x = np.ones((6, 1))
    np.testing.assert_allclose(jacobian_by_jvp(f, x), w, rtol=1e-15)
    np.testing.assert_allclose(jacobian_by_vjp(f, x), w, rtol=1e-15)


def test_tangent_of_an_input_reaches_the_output(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2))
    u = rng.standard_normal((3, 2))
    t = Tensor(x, requires_grad=False, tangent=u)
    out = (t * 2.0).exp().sum()
    assert out.tangent == pytest.approx(np.sum(2.0 * np.exp(2.0 * x) * u), rel=1e-13)
    constant_only = Tensor(x, requires_grad=False) * 2.0
    assert constant_only.tangent is None
