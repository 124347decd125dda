"""Differential tests of the tensor engine: every op of ``TENSOR_OPS`` on every shape, in random graphs.

Each op has a ``Spec`` below: the input shapes it is tried on (``patterns``:
every broadcasting pair of shapes for the elementwise ops, every bias shape
for ``affine``, 1-D and stacked operands for ``@``, every axis for the
reductions, ...) and the same function written for autograd and for PyTorch.
An op registered without a spec fails ``test_every_op_has_a_spec``, and every
random program uses every registered op, so an op added later is covered.

A program is a random graph: leaves drawn from each input's domain, then one
node per op, whose inputs are earlier results of the right shape when one
fits (fan-out, so gradients merge) or fresh leaves. Its loss is
Σ_k ⟨R_k, node_k⟩ over every node, for fixed random R_k. The engine's value,
the gradient of every leaf (reverse mode, the vjp rules) and the tangent of the
loss (forward mode, the jvp rules) must agree with autograd's, and with
PyTorch's where it is installed. Everything is seeded; the counts keep each
test to a few seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from bpcourse.tensor import TENSOR_OPS, Tensor, affine, mse, no_grad, softmax_cross_entropy

Shape = tuple[int, ...]
Params = Callable[[np.random.Generator], dict[str, Any]]

PROGRAMS = 60  # random programs per test
EXTRA_STEPS = 8  # nodes per program beyond one per registered op
REUSE = 0.7  # chance that an input is an earlier entry of the right shape, when one fits
CHAIN = 0.8  # chance that a node takes an earlier node as its first input, when one fits

# -- input domains: where each op's inputs are drawn, and which earlier results may feed it -----
DRAW: dict[str, Callable[[np.random.Generator, Shape], np.ndarray]] = {
    "any": lambda rng, shape: rng.standard_normal(shape),
    "small": lambda rng, shape: rng.uniform(-3.0, 3.0, shape),  # exp's input: its output stays moderate
    "positive": lambda rng, shape: rng.uniform(0.2, 3.0, shape),  # log's input
    "nonzero": lambda rng, shape: rng.uniform(0.3, 2.5, shape) * rng.choice((-1.0, 1.0), shape),  # divisors
}
FITS: dict[str, Callable[[np.ndarray], bool]] = {
    "any": lambda v: bool(np.all(np.abs(v) < 1e3)),
    "small": lambda v: bool(np.all(np.abs(v) <= 3.0)),
    "positive": lambda v: bool(np.all((v >= 0.2) & (v < 1e3))),
    "nonzero": lambda v: bool(np.all((np.abs(v) >= 0.3) & (np.abs(v) < 1e3))),
}


def draw(domain: str, rng: np.random.Generator, shape: Shape) -> np.ndarray:
    return np.asarray(DRAW[domain](rng, shape), dtype=np.float64)  # an array, also for shape ()


def no_params(rng: np.random.Generator) -> dict[str, Any]:
    return {}


def fixed(**params: Any) -> Params:
    return lambda rng: params


@dataclass(frozen=True)
class Pattern:
    """One way to call an op: the shape and domain of each input, and its other arguments."""

    shapes: tuple[Shape, ...]
    domains: tuple[str, ...]
    params: Params = no_params


@dataclass(frozen=True)
class Spec:
    """An op's patterns, and the op written for the engine, for autograd and for PyTorch."""

    patterns: tuple[Pattern, ...]
    engine: Callable[..., Tensor]
    autograd: Callable[..., Any]
    torch: Callable[..., Any]


# -- shapes ---------------------------------------------------------------------------------------
FULL = (2, 3, 4)
SHAPES = [(), (3,), (1, 4), (3, 4), (2, 3, 4)]


def suffix_patterns(full: Shape) -> list[Shape]:
    """Every shape that broadcasts to ``full`` without growing it: its last r axes, each kept or 1."""
    found: list[Shape] = []
    for r in range(len(full) + 1):
        for keep in itertools.product((True, False), repeat=r):
            shape = tuple(n if k else 1 for n, k in zip(full[len(full) - r :], keep, strict=True))
            if shape not in found:
                found.append(shape)
    return found


BROADCAST_PAIRS = list(itertools.product(suffix_patterns(FULL), repeat=2))  # 15 x 15, all of them
MATMUL_PAIRS = [
    *itertools.product([(4,), (3, 4), (1, 3, 4), (2, 3, 4)], [(4,), (4, 3), (1, 4, 3), (2, 4, 3)]),
    ((2, 1, 3, 4), (3, 4, 2)),  # batch axes (2, 1) and (3,) broadcast to (2, 3)
]
AFFINE_W = (3, 4)
AFFINE_X = [(4,), (4, 1), (4, 5), (2, 4, 5)]


def product_shape(a: Shape, b: Shape) -> Shape:
    return np.matmul(np.zeros(a), np.zeros(b)).shape


RESHAPES = {(): [(1, 1), ()], (3,): [(3, 1), (1, 3)], (1, 4): [(4,), (2, 2)], (3, 4): [(2, 6), (12,), (4, 3)]}
RESHAPES[(2, 3, 4)] = [(6, 4), (-1,), (4, 3, 2), (2, 12)]


def axis_choices(ndim: int) -> list[int | tuple[int, ...] | None]:
    """None, every single axis (also counted from the end) and every tuple of axes."""
    axes: list[int | tuple[int, ...] | None] = [None]
    axes += [a for i in range(ndim) for a in (i, i - ndim)]
    axes += [c for r in range(2, ndim + 1) for c in itertools.combinations(range(ndim), r)]
    return axes


def labels(kind: str, shape: Shape) -> Params:
    """Labels for softmax-CE of logits of ``shape``: one-hot, distributions, or columns not summing to 1."""

    def draw(rng: np.random.Generator) -> dict[str, Any]:
        columns = shape[1] if len(shape) == 2 else 1
        if kind == "one-hot":
            y = np.eye(shape[0])[:, rng.integers(0, shape[0], columns)]
        elif kind == "soft":
            y = rng.dirichlet(np.ones(shape[0]), size=columns).T
        else:
            y = rng.uniform(0.0, 2.0, (shape[0], columns))
        return {"y": y.reshape(shape)}

    return draw


def targets(shape: Shape) -> Params:
    return lambda rng: {"y": rng.standard_normal(shape)}


# -- the op written three times: engine, autograd, PyTorch ---------------------------------------------
def batch_of(shape: Shape) -> int:
    return shape[1] if len(shape) == 2 else 1


def ag_softmax_ce(z, y):
    shifted = z - anp.max(z, axis=0, keepdims=True)  # the shift cancels in the gradient
    log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=0, keepdims=True))
    return -anp.sum(y * log_p) / batch_of(z.shape)


def torch_softmax_ce(z, y):
    return -(y * torch_module().log_softmax(z, dim=0)).sum() / batch_of(tuple(z.shape))


def torch_reduce(method: str) -> Callable[..., Any]:
    def reduce(x, axis=None, keepdims=False):
        if axis is None:
            axis = tuple(range(x.ndim))
        if axis == ():  # a 0-d tensor: nothing to reduce
            return x
        return getattr(x, method)(dim=axis, keepdim=keepdims)

    return reduce


def torch_transpose(x):
    return x.permute(*reversed(range(x.ndim))) if x.ndim else x  # permute() wants at least one axis


def torch_module():
    import torch

    return torch


def unary(domain: str, engine: Callable, ag: Callable, th: Callable, shapes: list[Shape] = SHAPES) -> Spec:
    return Spec(tuple(Pattern((s,), (domain,)) for s in shapes), engine, ag, th)


def binary(divisor: str, engine: Callable) -> Spec:
    patterns = tuple(Pattern(pair, ("any", divisor)) for pair in BROADCAST_PAIRS)
    return Spec(patterns, engine, engine, engine)


# The pow op's exponents, each with the domain where its base has a real, finite power.
POWERS = ((2, "any"), (3.0, "any"), (0.5, "positive"), (-0.5, "positive"), (-1.0, "nonzero"))

SPECS: dict[str, Spec] = {
    "add": binary("any", lambda x, y: x + y),
    "sub": binary("any", lambda x, y: x - y),
    "mul": binary("any", lambda x, y: x * y),
    "div": binary("nonzero", lambda x, y: x / y),
    "neg": unary("any", lambda x: -x, lambda x: -x, lambda x: -x),
    "matmul": Spec(
        tuple(Pattern(pair, ("any", "any")) for pair in MATMUL_PAIRS),
        lambda a, b: a @ b,
        lambda a, b: a @ b,
        lambda a, b: a @ b,
    ),
    "affine": Spec(
        tuple(
            Pattern((AFFINE_W, x, b), ("any", "any", "any"))
            for x in AFFINE_X
            for b in suffix_patterns(product_shape(AFFINE_W, x))
        ),
        affine,
        lambda w, x, b: w @ x + b,
        lambda w, x, b: w @ x + b,
    ),
    "sum": Spec(
        tuple(
            Pattern((s,), ("any",), fixed(axis=a, keepdims=k))
            for s in SHAPES
            for a in axis_choices(len(s))
            for k in (False, True)
        ),
        lambda x, **p: x.sum(**p),
        lambda x, **p: anp.sum(x, **p),
        torch_reduce("sum"),
    ),
    "mean": Spec(
        tuple(
            Pattern((s,), ("any",), fixed(axis=a, keepdims=k))
            for s in SHAPES
            for a in axis_choices(len(s))
            for k in (False, True)
        ),
        lambda x, **p: x.mean(**p),
        lambda x, **p: anp.mean(x, **p),
        torch_reduce("mean"),
    ),
    "reshape": Spec(
        tuple(Pattern((s,), ("any",), fixed(shape=t)) for s, ts in RESHAPES.items() for t in ts),
        lambda x, shape: x.reshape(shape),
        lambda x, shape: anp.reshape(x, shape),
        lambda x, shape: x.reshape(shape),
    ),
    "transpose": unary("any", lambda x: x.T, anp.transpose, torch_transpose),
    "exp": unary("small", Tensor.exp, anp.exp, lambda x: x.exp()),
    "log": unary("positive", Tensor.log, anp.log, lambda x: x.log()),
    "relu": unary("any", Tensor.relu, lambda x: x * (x > 0), lambda x: x.relu()),
    "sigmoid": unary("any", Tensor.sigmoid, lambda x: 1.0 / (1.0 + anp.exp(-x)), lambda x: x.sigmoid()),
    "tanh": unary("any", Tensor.tanh, anp.tanh, lambda x: x.tanh()),
    "pow": Spec(
        tuple(Pattern((s,), (domain,), fixed(p=p)) for s in SHAPES for p, domain in POWERS),
        lambda x, p: x**p,
        lambda x, p: x**p,
        lambda x, p: x**p,
    ),
    "softmax_ce": Spec(
        tuple(
            Pattern((s,), ("any",), labels(kind, s))
            for s in [(3, 5), (3, 1), (3,), (1, 4)]
            for kind in ("one-hot", "soft", "unnormalized")
        ),
        lambda z, y: softmax_cross_entropy(z, y),
        ag_softmax_ce,
        torch_softmax_ce,
    ),
    "mse": Spec(
        tuple(Pattern((s,), ("any",), targets(s)) for s in [(3, 5), (3, 1), (3,), ()]),
        lambda a, y: mse(a, y),
        lambda a, y: 0.5 * anp.sum((a - y) ** 2) / batch_of(a.shape),
        lambda a, y: 0.5 * ((a - y) ** 2).sum() / batch_of(tuple(a.shape)),
    ),
}


# -- programs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    op: str
    inputs: tuple[int, ...]  # indices into the program's entries
    params: dict[str, Any]
    weights: np.ndarray  # R: this node's share of the loss is Σ R ⊙ node


@dataclass
class Program:
    """Entries in order: a leaf is an array, a node is a Step on earlier entries."""

    entries: list[np.ndarray | Step] = field(default_factory=list)

    @property
    def leaves(self) -> list[np.ndarray]:
        return [e for e in self.entries if isinstance(e, np.ndarray)]

    def describe(self) -> str:
        shapes: list[Shape] = []
        lines = []
        for i, e in enumerate(self.entries):
            if isinstance(e, Step):
                args = ", ".join(f"#{j} {shapes[j]}" for j in e.inputs)
                params = {k: (v.shape if isinstance(v, np.ndarray) else v) for k, v in e.params.items()}
                lines.append(f"#{i} = {e.op}({args}) {params or ''} -> {e.weights.shape}")
                shapes.append(e.weights.shape)
            else:
                shapes.append(e.shape)
        return "\n".join(lines)


def pick(candidates: list[int], program: Program, rng: np.random.Generator) -> int | None:
    """An earlier entry to reuse (a node rather than a leaf, when one fits: deeper graphs), or None."""
    nodes = [i for i in candidates if isinstance(program.entries[i], Step)]
    pool = nodes or candidates
    return int(rng.choice(pool)) if pool and rng.random() < REUSE else None


def add_step(program: Program, values: list[np.ndarray], op: str, rng: np.random.Generator) -> None:
    """Append a node of ``op``, mostly on a pattern whose first input an earlier node can be.

    Its inputs are earlier entries that fit or fresh leaves. A node whose
    values grow large is dropped, with the leaves drawn for it.
    """
    spec = SPECS[op]
    fits = [
        [i for i, v in enumerate(values) if v.shape == p.shapes[0] and FITS[p.domains[0]](v)]
        for p in spec.patterns
    ]
    chained = [k for k, found in enumerate(fits) if any(isinstance(program.entries[i], Step) for i in found)]
    chain = chained and rng.random() < CHAIN
    pattern = spec.patterns[int(rng.choice(chained)) if chain else rng.integers(len(spec.patterns))]
    before = len(program.entries)
    inputs = []
    for shape, domain in zip(pattern.shapes, pattern.domains, strict=True):
        fitting = [i for i, v in enumerate(values) if v.shape == shape and FITS[domain](v)]
        reused = pick(fitting, program, rng)
        if reused is None:
            program.entries.append(draw(domain, rng, shape))
            values.append(program.entries[-1])
            reused = len(values) - 1
        inputs.append(reused)
    params = pattern.params(rng)
    with no_grad():
        out = spec.engine(*(Tensor(values[i], requires_grad=False) for i in inputs), **params).data
    if not np.all(np.abs(out) < 1e4):  # keep values moderate, so that round-off stays small
        del program.entries[before:], values[before:]
        return
    program.entries.append(Step(op, tuple(inputs), params, rng.standard_normal(out.shape)))
    values.append(out)


def random_program(rng: np.random.Generator) -> Program:
    """A graph using every registered op at least once, in random order."""
    ops = list(TENSOR_OPS)
    order = [ops[i] for i in rng.permutation(len(ops))] + list(rng.choice(ops, EXTRA_STEPS))
    program, values = Program(), []
    for op in order:
        add_step(program, values, op, rng)
    return program


def one_node(op: str, pattern: Pattern, rng: np.random.Generator) -> Program:
    program = Program([draw(d, rng, s) for s, d in zip(pattern.shapes, pattern.domains, strict=True)])
    params = pattern.params(rng)
    with no_grad():
        out = SPECS[op].engine(*(Tensor(v, requires_grad=False) for v in program.entries), **params)
    program.entries.append(
        Step(op, tuple(range(len(pattern.shapes))), params, rng.standard_normal(out.shape))
    )
    return program


def evaluate(program: Program, leaves: list[Any], run: Callable[[Step, list[Any]], Any], total: Any) -> Any:
    """Σ_k ⟨R_k, node_k⟩ with ``run(step, inputs)`` computing each node in one framework."""
    values, leaf_iter = [], iter(leaves)
    for entry in program.entries:
        if isinstance(entry, Step):
            out = run(entry, [values[i] for i in entry.inputs])
            total = total + (out * entry.weights).sum()
            values.append(out)
        else:
            values.append(next(leaf_iter))
    return total


def engine_run(program: Program, tangents: list[np.ndarray] | None = None) -> tuple[Tensor, list[Tensor]]:
    """The loss and the leaves after ``loss.backward()``; with ``tangents``, forward mode too."""
    tangents = tangents or [None] * len(program.leaves)
    leaves = [Tensor(x, tangent=u) for x, u in zip(program.leaves, tangents, strict=True)]
    loss = evaluate(program, leaves, lambda s, xs: SPECS[s.op].engine(*xs, **s.params), 0.0)
    loss.backward()
    return loss, leaves


def autograd_loss(program: Program) -> Callable[[list[np.ndarray]], Any]:
    return lambda leaves: evaluate(program, leaves, lambda s, xs: SPECS[s.op].autograd(*xs, **s.params), 0.0)


def assert_close(actual: Any, expected: Any, what: str, program: Program, rtol: float = 1e-9) -> None:
    expected = np.asarray(expected, dtype=float)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=rtol * scale, err_msg=f"{what} of\n{program.describe()}"
    )


def check_against_autograd(program: Program, rng: np.random.Generator) -> None:
    """Value, every leaf's gradient (vjp rules) and the loss's tangent (jvp rules) against autograd."""
    tangents = [rng.standard_normal(x.shape) for x in program.leaves]
    loss, leaves = engine_run(program, tangents)
    value, grads = autograd.value_and_grad(autograd_loss(program))(program.leaves)
    assert_close(loss.data, value, "the loss", program)
    for i, (leaf, grad) in enumerate(zip(leaves, grads, strict=True)):
        assert leaf.grad is not None, f"leaf {i} got no gradient in\n{program.describe()}"
        assert leaf.grad.shape == leaf.shape
        assert_close(leaf.grad, grad, f"the gradient of leaf {i}", program)
    directional = sum(float(np.sum(g * u)) for g, u in zip(grads, tangents, strict=True))
    assert_close(loss.tangent, directional, "the tangent (forward mode)", program)


# -- the tests ------------------------------------------------------------------------------------------
def test_every_op_has_a_spec() -> None:
    """An op registered in TENSOR_OPS without a spec here fails: add its patterns and references."""
    assert set(SPECS) == set(TENSOR_OPS), (
        f"ops without a spec: {sorted(set(TENSOR_OPS) - set(SPECS))}; "
        f"specs of no registered op: {sorted(set(SPECS) - set(TENSOR_OPS))}"
    )


def test_the_elementwise_ops_meet_every_broadcasting_pair() -> None:
    shapes = suffix_patterns(FULL)
    assert len(shapes) == 15 and len(BROADCAST_PAIRS) == 225
    for op in ("add", "sub", "mul", "div"):
        assert [p.shapes for p in SPECS[op].patterns] == BROADCAST_PAIRS


@pytest.mark.parametrize("op", list(TENSOR_OPS))
def test_every_pattern_of_each_op_against_autograd(op: str, rng: np.random.Generator) -> None:
    for pattern in SPECS[op].patterns:
        check_against_autograd(one_node(op, pattern, rng), rng)


def test_random_programs_against_autograd() -> None:
    rng = np.random.default_rng(20261129)
    used: set[str] = set()
    for _ in range(PROGRAMS):
        program = random_program(rng)
        used |= {e.op for e in program.entries if isinstance(e, Step)}
        check_against_autograd(program, rng)
    assert used == set(TENSOR_OPS)


def check_against_pytorch(program: Program) -> None:
    """Value and every leaf's gradient against PyTorch's autograd (float64, CPU)."""
    torch = torch_module()

    def run(step: Step, xs: list[Any]) -> Any:
        params = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in step.params.items()}
        return SPECS[step.op].torch(*xs, **params)

    loss, leaves = engine_run(program)
    inputs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in program.leaves]
    weighted = [
        Step(e.op, e.inputs, e.params, torch.from_numpy(e.weights)) if isinstance(e, Step) else e
        for e in program.entries
    ]
    expected = evaluate(Program(weighted), inputs, run, torch.zeros((), dtype=torch.float64))
    expected.backward()
    assert_close(loss.data, expected.item(), "the loss (PyTorch)", program)
    for i, (leaf, ref) in enumerate(zip(leaves, inputs, strict=True)):
        grad = np.zeros(leaf.shape) if ref.grad is None else ref.grad.numpy()
        assert_close(leaf.grad, grad, f"the gradient of leaf {i} (PyTorch)", program)


def test_every_pattern_of_every_op_against_pytorch(rng: np.random.Generator) -> None:
    pytest.importorskip("torch")
    for op in TENSOR_OPS:
        for pattern in SPECS[op].patterns:
            check_against_pytorch(one_node(op, pattern, rng))


def test_random_programs_against_pytorch() -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(20261130)
    for _ in range(PROGRAMS):
        check_against_pytorch(random_program(rng))
