"""Tests of the scalar engine (``bpcourse.scalar``).

Every row of the rules table ``SCALAR_OPS`` is checked against two independent
references: central finite differences (``bpcourse.gradcheck``) and HIPS
autograd. ``test_every_scalar_op_has_a_gradient_test`` keeps that promise: a
new row added to the table without a case below fails the suite.
"""

from __future__ import annotations

import gc
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from bpcourse.gradcheck import check_gradient
from bpcourse.graph import is_topological_order
from bpcourse.scalar import SCALAR_OPS, Value, topological_order

Sampler = Callable[[np.random.Generator], float]


# -- input domains: away from kinks and from the edges of each op's domain ----------------
def anywhere(rng: np.random.Generator) -> float:
    return float(rng.uniform(-2.0, 2.0))


def positive(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.3, 3.0))


def negative(rng: np.random.Generator) -> float:
    return float(rng.uniform(-3.0, -0.3))


def nonzero(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.4, 2.5) * rng.choice((-1.0, 1.0)))


@dataclass(frozen=True)
class Case:
    """One gradient test: an expression exercising the ``op`` row of the table.

    ``engine`` acts on ``Value`` nodes; ``reference`` is the same formula for
    autograd (``None`` when ``engine`` is written with operators only, which
    autograd understands as they are). ``domains`` holds one sampler per input.
    """

    op: str
    expr: str
    engine: Callable[..., Value]
    domains: tuple[Sampler, ...]
    reference: Callable[..., object] | None = None

    @property
    def ref(self) -> Callable[..., object]:
        return self.engine if self.reference is None else self.reference


CASES = [
    # binary ops: Value with Value, a number on the left, a number on the right
    Case("add", "x + y", lambda x, y: x + y, (anywhere, anywhere)),
    Case("add", "2 + x", lambda x: 2 + x, (anywhere,)),
    Case("add", "x + 2", lambda x: x + 2, (anywhere,)),
    Case("add", "x + 0.5", lambda x: x + 0.5, (anywhere,)),
    Case("sub", "x - y", lambda x, y: x - y, (anywhere, anywhere)),
    Case("sub", "1 - x", lambda x: 1 - x, (anywhere,)),
    Case("sub", "x - 1", lambda x: x - 1, (anywhere,)),
    Case("mul", "x * y", lambda x, y: x * y, (anywhere, anywhere)),
    Case("mul", "2 * x", lambda x: 2 * x, (anywhere,)),
    Case("mul", "x * 3", lambda x: x * 3, (anywhere,)),
    Case("mul", "x * x", lambda x: x * x, (anywhere,)),
    Case("div", "x / y", lambda x, y: x / y, (anywhere, nonzero)),
    Case("div", "3 / x", lambda x: 3 / x, (nonzero,)),
    Case("div", "x / 4", lambda x: x / 4, (anywhere,)),
    Case("div", "1.5 / (x * y)", lambda x, y: 1.5 / (x * y), (nonzero, nonzero)),
    # unary ops
    Case("neg", "-x", lambda x: -x, (anywhere,)),
    Case("neg", "-(x * y)", lambda x, y: -(x * y), (anywhere, anywhere)),
    Case("pow", "x ** 2", lambda x: x**2, (anywhere,)),
    Case("pow", "x ** 3", lambda x: x**3, (anywhere,)),
    Case("pow", "x ** -2", lambda x: x**-2, (nonzero,)),
    Case("pow", "x ** 0.5", lambda x: x**0.5, (positive,)),
    Case("pow", "x ** -1.5", lambda x: x**-1.5, (positive,)),
    Case("exp", "exp(x)", lambda x: x.exp(), (anywhere,), lambda x: anp.exp(x)),
    Case("exp", "exp(x * y)", lambda x, y: (x * y).exp(), (anywhere, anywhere), lambda x, y: anp.exp(x * y)),
    Case("log", "log(x)", lambda x: x.log(), (positive,), lambda x: anp.log(x)),
    Case("log", "log(x * y)", lambda x, y: (x * y).log(), (positive, positive), lambda x, y: anp.log(x * y)),
    Case("tanh", "tanh(x)", lambda x: x.tanh(), (anywhere,), lambda x: anp.tanh(x)),
    Case("tanh", "tanh(3 * x)", lambda x: (3 * x).tanh(), (anywhere,), lambda x: anp.tanh(3 * x)),
    Case("sigmoid", "sigmoid(x)", lambda x: x.sigmoid(), (anywhere,), lambda x: 1.0 / (1.0 + anp.exp(-x))),
    Case(
        "sigmoid",
        "sigmoid(4 * x)",
        lambda x: (4 * x).sigmoid(),
        (anywhere,),
        lambda x: 1.0 / (1.0 + anp.exp(-4 * x)),
    ),
    Case("relu", "relu(x), x > 0", lambda x: x.relu(), (positive,), lambda x: anp.maximum(x, 0.0)),
    Case("relu", "relu(x), x < 0", lambda x: x.relu(), (negative,), lambda x: anp.maximum(x, 0.0)),
    Case(
        "relu",
        "relu(x - y)",
        lambda x, y: (x - y).relu(),
        (positive, negative),
        lambda x, y: anp.maximum(x - y, 0.0),
    ),
]

DRAWS = 5  # random inputs per case


def ops_in_graph(root: Value) -> set[str]:
    return {node.op for node in topological_order(root)}


def test_every_scalar_op_has_a_gradient_test() -> None:
    """Registering a new op in SCALAR_OPS without a gradient test fails here."""
    covered = {case.op for case in CASES}
    assert covered == set(SCALAR_OPS), (
        f"ops without a gradient test: {sorted(set(SCALAR_OPS) - covered)}; "
        f"cases naming no op of the table: {sorted(covered - set(SCALAR_OPS))}"
    )


def test_binary_ops_are_tested_with_numbers_on_both_sides() -> None:
    for name, row in SCALAR_OPS.items():
        if row.arity != 2:
            continue
        exprs = [case.expr for case in CASES if case.op == name]
        assert any(e[0].isdigit() for e in exprs), f"{name}: no case with a number on the left"
        assert any(e[-1].isdigit() for e in exprs), f"{name}: no case with a number on the right"
        assert any(len(case.domains) == 2 for case in CASES if case.op == name), name


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}: {c.expr}" for c in CASES])
def test_gradient_matches_finite_differences_and_autograd(case: Case, rng: np.random.Generator) -> None:
    for _ in range(DRAWS):
        inputs = [sample(rng) for sample in case.domains]
        leaves = [Value(v) for v in inputs]
        out = case.engine(*leaves)
        assert case.op in ops_in_graph(out), f"{case.expr} builds no {case.op!r} node"
        out.backward()
        analytic = np.array([leaf.grad for leaf in leaves])

        # the forward value
        assert out.data == pytest.approx(float(case.ref(*inputs)), rel=1e-12, abs=1e-12)

        # autograd, one partial derivative per input
        expected = np.array([float(autograd.grad(case.ref, i)(*inputs)) for i in range(len(inputs))])
        np.testing.assert_allclose(analytic, expected, rtol=1e-10, atol=1e-12, err_msg=f"at {inputs}")

        # central differences
        def f(x: np.ndarray) -> float:
            return case.engine(*[Value(float(v)) for v in x]).data

        result = check_gradient(f, np.array(inputs), analytic)
        assert result.passed, f"{case.expr} at {inputs}:\n{result}"
        assert result.checked == len(inputs)


# -- the worked example and the practice problem of the course --------------------------------
def worked_example(xv: float, yv: float) -> tuple[Value, ...]:
    x, y = Value(xv, "x"), Value(yv, "y")
    u = x * y
    v = u + y
    loss = v**2
    return x, y, u, v, loss


def test_worked_example(rng: np.random.Generator) -> None:
    for _ in range(DRAWS):
        xv, yv = rng.uniform(-2.0, 2.0, 2)
        x, y, u, v, loss = worked_example(xv, yv)
        loss.backward()
        vv = xv * yv + yv
        assert loss.data == pytest.approx(vv**2, rel=1e-14)
        assert x.grad == pytest.approx(2 * vv * yv, rel=1e-12)
        assert y.grad == pytest.approx(2 * vv * (1 + xv), rel=1e-12)
        assert v.grad == pytest.approx(2 * vv, rel=1e-14)
        assert u.grad == pytest.approx(2 * vv, rel=1e-14)


def test_worked_example_sums_both_paths_into_y(rng: np.random.Generator) -> None:
    """y feeds both u = x y and v = u + y: forgetting the merge drops one of the two terms."""
    for _ in range(DRAWS):
        xv, yv = rng.uniform(0.5, 2.0, 2) * rng.choice((-1.0, 1.0), 2)
        _, y, _, v, loss = worked_example(xv, yv)
        loss.backward()
        through_u_only = 2 * v.data * xv  # dL/du · du/dy
        direct_only = 2 * v.data  # dL/dv · dv/dy
        assert y.grad == pytest.approx(through_u_only + direct_only, rel=1e-12)
        assert abs(y.grad - through_u_only) > 1e-3
        assert abs(y.grad - direct_only) > 1e-3


def test_practice_problem(rng: np.random.Generator) -> None:
    for _ in range(DRAWS):
        xv, yv = rng.uniform(-2.0, 2.0, 2)
        x, y = Value(xv), Value(yv)
        a = x + y
        b = x * a
        loss = b**2
        loss.backward()
        assert x.grad == pytest.approx(2 * xv * (xv + yv) * (2 * xv + yv), rel=1e-12, abs=1e-14)
        assert y.grad == pytest.approx(2 * xv**2 * (xv + yv), rel=1e-12, abs=1e-14)


# -- gradient policy: leaves accumulate, interior nodes hold the latest pass -------------------
def test_backward_twice_doubles_leaves_only(rng: np.random.Generator) -> None:
    xv, yv = rng.uniform(0.5, 2.0, 2)
    x, y, u, v, loss = worked_example(xv, yv)
    loss.backward()
    first = {name: node.grad for name, node in zip("xyuvL", (x, y, u, v, loss), strict=True)}
    loss.backward()
    assert x.grad == pytest.approx(2 * first["x"], rel=1e-14)
    assert y.grad == pytest.approx(2 * first["y"], rel=1e-14)
    # interior nodes are recomputed from scratch on each pass
    assert u.grad == first["u"]
    assert v.grad == first["v"]
    assert loss.grad == first["L"] == 1.0


def test_zero_grad_resets_everything_under_the_root(rng: np.random.Generator) -> None:
    xv, yv = rng.uniform(0.5, 2.0, 2)
    x, y, u, v, loss = worked_example(xv, yv)
    elsewhere = Value(4.0)
    (elsewhere * 3.0).backward()
    loss.backward()
    loss.backward()
    loss.zero_grad()
    assert [n.grad for n in (x, y, u, v, loss)] == [0.0] * 5
    assert elsewhere.grad == 3.0  # not under the root: untouched
    # after zeroing, one pass gives single-pass values again
    loss.backward()
    vv = xv * yv + yv
    assert x.grad == pytest.approx(2 * vv * yv, rel=1e-12)
    assert y.grad == pytest.approx(2 * vv * (1 + xv), rel=1e-12)


def test_backward_with_upstream_scales_the_gradient() -> None:
    x, y, _, v, loss = worked_example(1.5, -0.5)
    loss.backward(upstream=3.0)
    assert x.grad == pytest.approx(3.0 * 2 * v.data * -0.5, rel=1e-14)
    assert loss.grad == 3.0


# -- a deep graph ------------------------------------------------------------------------------
def test_chain_of_a_million_nodes() -> None:
    """v <- -(v · c) repeated: 10⁶ interior nodes; L = x c^N (N even), dL/dx = c^N, dL/dc = N x c^(N-1)."""
    steps = 500_000
    assert sys.getrecursionlimit() < 2 * steps  # a recursive traversal could not do this
    x, c = Value(0.75), Value(1.0000001)
    v = x
    for _ in range(steps):
        v = -(v * c)
    v.backward()
    c_pow_n = math.exp(steps * math.log1p(1e-7))
    assert v.data == pytest.approx(0.75 * c_pow_n, rel=1e-9)
    assert x.grad == pytest.approx(c_pow_n, rel=1e-9)
    assert c.grad == pytest.approx(steps * 0.75 * c_pow_n / 1.0000001, rel=1e-8)
    assert len(topological_order(v)) == 2 * steps + 2


# -- conventions and edge cases ---------------------------------------------------------------
def test_relu_gradient_at_zero_is_zero() -> None:
    """Convention: relu'(0) = 0 (the subgradient at the kink is taken from the flat side)."""
    x = Value(0.0)
    out = x.relu()
    out.backward()
    assert out.data == 0.0
    assert x.grad == 0.0
    # the same when the 0 is computed inside a graph
    a = Value(1.25)
    out = (a - a).relu()
    out.backward()
    assert a.grad == 0.0
    # just above zero the slope is 1
    b = Value(1e-300)
    b.relu().backward()
    assert b.grad == 1.0


@pytest.mark.parametrize("xv", [-1000.0, -745.0, -50.0, 50.0, 745.0, 1000.0])
def test_sigmoid_is_stable_for_large_inputs(xv: float) -> None:
    x = Value(xv)
    out = x.sigmoid()
    out.backward()
    assert 0.0 <= out.data <= 1.0
    assert out.data == pytest.approx(1.0 if xv > 0 else 0.0, abs=1e-20)
    assert math.isfinite(x.grad) and 0.0 <= x.grad < 1e-20
    if xv == -50.0:  # on the negative side σ(x) = e^x / (1 + e^x) keeps full relative precision
        assert x.grad == pytest.approx(math.exp(-50.0), rel=1e-9)


def test_pow_takes_a_constant_exponent_only() -> None:
    x, n = Value(2.0), Value(3.0)
    with pytest.raises(TypeError):
        x**n
    with pytest.raises(TypeError):
        x**True
    with pytest.raises(TypeError):
        2**x
    with pytest.raises(TypeError):
        x ** "2"
    out = x**3.0
    out.backward()
    assert (out.data, x.grad) == (8.0, 12.0)


# x ** n where n x^(n-1) alone would divide by zero: value and slope in closed form
POW_AT_ZERO = [
    (0, 1.0, 0.0),  # x^0 = 1 everywhere: a constant
    (0.0, 1.0, 0.0),
    (1, 0.0, 1.0),
    (2, 0.0, 0.0),
    (0.5, 0.0, math.inf),  # √x leaves 0 vertically
    (1 / 3, 0.0, math.inf),
    (1.5, 0.0, 0.0),
]


@pytest.mark.parametrize(("n", "value", "slope"), POW_AT_ZERO)
def test_pow_at_zero(n: float, value: float, slope: float) -> None:
    x = Value(0.0)
    out = x**n
    out.backward()
    assert (out.data, x.grad) == (value, slope)
    with np.errstate(divide="ignore"):  # autograd agrees, through numpy's 0.0 ** negative = inf
        assert autograd.grad(lambda v: v**n)(np.float64(0.0)) == slope


@pytest.mark.parametrize("n", [2, 3, -1, -2.0, 4.0])
def test_pow_of_a_negative_base_with_a_whole_exponent(n: float) -> None:
    x = Value(-2.0)
    out = x**n
    out.backward()
    assert out.data == (-2.0) ** n
    assert x.grad == pytest.approx(autograd.grad(lambda v: v**n)(-2.0), rel=1e-15)


@pytest.mark.parametrize(
    ("x", "n", "error", "words"),
    [
        (-8.0, 1 / 3, ValueError, "pow: -8.0 ** 0.3333333333333333 is not a real number"),
        (-1.0, 0.5, ValueError, "pow: -1.0 ** 0.5 is not a real number"),
        (0.0, -1, ZeroDivisionError, "pow: 0.0 ** -1 divides by zero"),
        (0.0, -0.5, ZeroDivisionError, "pow: 0.0 ** -0.5 divides by zero"),
        (10.0, 400, OverflowError, "pow: 10.0 ** 400 overflows"),
        (0.0, None, ValueError, "log: ln x needs x > 0, got x = 0.0"),
        (-1.0, None, ValueError, "log: ln x needs x > 0, got x = -1.0"),
        (1000.0, None, OverflowError, "exp: e ** 1000.0 overflows a float"),
        (1.0, 0.0, ZeroDivisionError, "div: 1.0 / 0.0 divides by zero"),
    ],
)
def test_errors_name_the_op_and_its_input(x: float, n: float | None, error: type, words: str) -> None:
    op = words.split(":")[0]
    build = {
        "pow": lambda v: v**n,
        "log": lambda v: v.log(),
        "exp": lambda v: v.exp(),
        "div": lambda v: v / Value(n),
    }[op]
    with pytest.raises(error, match=re.escape(words)):
        build(Value(x))


def test_relu_of_nan_is_nan_and_so_is_its_slope() -> None:
    x = Value(math.nan)
    out = x.relu()
    out.backward()
    assert math.isnan(out.data) and math.isnan(x.grad)


def test_leaf_parents_and_partials_follow_the_rules_table() -> None:
    x, y = Value(3.0), Value(-2.0)
    z = x / y
    assert z.parents == (x, y)
    assert z.partials == pytest.approx((1 / -2.0, -(3.0 / -2.0) / -2.0))
    w = z.tanh()
    assert w.parents == (z,)
    assert w.partials == pytest.approx((1 - math.tanh(-1.5) ** 2,))
    assert x.parents == () and x.partials == ()


def test_graph_order_is_topological(rng: np.random.Generator) -> None:
    x, y, u, v, loss = worked_example(*rng.uniform(-1, 1, 2))
    order = topological_order(loss)
    assert order[-1] is loss
    assert is_topological_order(order, loss)
    assert {id(n) for n in order} == {id(n) for n in (x, y, u, v, loss)}


# -- memory: no reference cycles ---------------------------------------------------------------
def build_and_drop_graph(width: int) -> None:
    xs = [Value(0.1 * i) for i in range(width)]
    total = Value(0.0)
    for i, x in enumerate(xs):
        term = (x * xs[i - 1] + 1.0).tanh() - x.sigmoid() / 2.0 + (x**2).exp().log() - x.relu()
        total = total + term
    total.backward()
    total.zero_grad()


def test_dropped_graph_leaves_no_cyclic_garbage() -> None:
    """A graph is freed by reference counting alone: the cycle collector finds nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        # control: the measurement does see a cycle when there is one
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
        build_and_drop_graph(200)
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()
