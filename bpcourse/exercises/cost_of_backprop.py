"""Exercises of notebook 07_cost_of_backprop: what gradients cost, in passes, time and memory.

* ``numerical_gradient(f, theta, h)``: central differences, entry by entry, for
  a ``theta`` of any shape. The reference is ``bpcourse.gradcheck``'s own
  central difference with the same step h; the oracle evaluates the same
  function written with engine ops, after checking that the engine's analytic
  gradient agrees with a small-step difference (so the test function is what
  it claims to be). The judge passes large steps (h from 0.01 to 0.1), where
  a one-sided difference, a forgotten factor 2, an ignored h or a probe left
  in place all change the answer at order one.
* ``jacobian_forward_mode(f_jvp, x, m)`` and ``jacobian_reverse_mode(f_vjp, x, m)``:
  the (m, n) Jacobian of a map made of engine ops, one column per forward
  pass or one row per reverse pass. The reference is the engine's
  ``jacobian_by_jvp`` / ``jacobian_by_vjp``, the oracle a finite-difference
  Jacobian. n and m always differ, so a transposed Jacobian has the wrong
  shape. The input objects count their calls (the count travels back from a
  learner's process), and a line of the verdict checks that forward mode ran
  exactly n passes and reverse mode exactly m.
* ``checkpointed_backward(layers, x, upstream, every)``: dL/dx through a chain
  of ``TanhLayer`` s keeping only the inputs of layers 0, k, 2k, ... The
  reference is ``bpcourse.checkpoint.checkpointed_backward`` on the same
  layers written with engine ops, the oracle a central difference of
  sum(upstream * chain(x)). L is never a multiple of k (so ceil and floor
  differ). The layers count their forward calls: a learner who ran each
  layer forward only once cannot have recomputed anything, so kept every
  activation whatever ``stored_count`` says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bpcourse.checkpoint import checkpointed_backward as engine_checkpointed_backward
from bpcourse.exercises.core import (
    ENGINE,
    MINIGRAPH,
    REFERENCES,
    Call,
    Exercise,
    Inputs,
    Line,
    OracleDisagreement,
    Outputs,
    Verdict,
    judge_by_reference,
    judged_every_output,
    weighted_verdict,
)
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import away_from_zero, distinct_sizes
from bpcourse.forward import jacobian_by_jvp, jacobian_by_vjp
from bpcourse.gradcheck import mismatch, numerical_gradient
from bpcourse.tensor import Tensor, affine, no_grad
from bpcourse.testfunctions import (
    ARRAY_FUNCTIONS,
    ENGINE_MAPS,
    ArrayFunction,
    EngineMap,
    JvpFunction,
    TanhLayer,
    VjpFunction,
)

NOTEBOOK = "07_cost_of_backprop"


# -- central differences over an array of any shape ------------------------------------------------------
SHAPES = ((3, 4), (4, 2), (2, 3, 2), (5, 3))
STEPS = (1e-2, 3e-2, 1e-1)


def _gradient_inputs(rng: np.random.Generator) -> Inputs:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    return {
        "f": ArrayFunction(str(rng.choice(list(ARRAY_FUNCTIONS)))),
        "theta": away_from_zero(rng, shape, 0.2, 1.2),
        "h": float(rng.choice(STEPS)),
    }


def _coupled_tanh(t: Tensor) -> Tensor:
    s = t.sum()
    return s * s * 0.5 + (t * 2.0).tanh().sum()


# The test functions of bpcourse.testfunctions, written again with engine ops.
ENGINE_FORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "½(Σθ)² + Σ tanh(2θ)": _coupled_tanh,
    "log Σ exp(1.5θ) + 0.3 Σ θ³": lambda t: (t * 1.5).exp().sum().log() + (t * t * t).sum() * 0.3,
    "Σ σ(3θ) · Σ θ²": lambda t: (t * 3.0).sigmoid().sum() * (t * t).sum(),
}


def _gradient_reference(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
    return (numerical_gradient(f, theta, h),)


def _gradient_numeric(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
    form = ENGINE_FORMS[f.name]

    def value(v: np.ndarray) -> float:
        with no_grad():
            return form(Tensor(v, requires_grad=False)).item()

    leaf = Tensor(theta.copy())
    form(leaf).backward()
    if mismatch(leaf.grad, numerical_gradient(value, theta)).any():
        raise OracleDisagreement(
            f"numerical_gradient: the test function {f.name!r} and its gradient disagree"
        )
    return (numerical_gradient(value, theta, h),)


def _probes(theta: np.ndarray, h: float, i: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    plus, minus = theta.copy(), theta.copy()
    plus[i] += h
    minus[i] -= h
    return plus, minus


def _forward_difference(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
    grad, f0 = np.zeros_like(theta), f(theta)
    for i in np.ndindex(theta.shape):
        grad[i] = (f(_probes(theta, h, i)[0]) - f0) / h
    return (grad,)


def _backward_difference(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
    grad, f0 = np.zeros_like(theta), f(theta)
    for i in np.ndindex(theta.shape):
        grad[i] = (f0 - f(_probes(theta, h, i)[1])) / h
    return (grad,)


def _not_restored(first: float) -> Callable[..., Outputs]:
    """One probe array, each entry moved by ``first`` h, then by -2·first h, and left there."""

    def variant(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
        grad, probe = np.zeros_like(theta), theta.copy()
        for i in np.ndindex(theta.shape):
            probe[i] += first * h
            f_first = f(probe)
            probe[i] -= 2 * first * h
            f_second = f(probe)
            grad[i] = first * (f_first - f_second) / (2 * h)
        return (grad,)

    return variant


def _aliased_half(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
    # plus = theta; plus[i] += h; f(plus); minus = theta; minus[i] -= h  (the same array, back at θ)
    grad, f0 = np.zeros_like(theta), f(theta)
    for i in np.ndindex(theta.shape):
        grad[i] = (f(_probes(theta, h, i)[0]) - f0) / (2 * h)
    return (grad,)


def _rows_only(f: ArrayFunction, theta: np.ndarray, h: float) -> np.ndarray:
    """theta[i] += h on a 2-D theta moves a whole row: one directional derivative per row."""
    rows = np.zeros(theta.shape[0])
    for i in range(theta.shape[0]):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += h
        minus[i] -= h
        rows[i] = (f(plus) - f(minus)) / (2 * h)
    return rows


def _rows_broadcast(f: ArrayFunction, theta: np.ndarray, h: float) -> Outputs:
    rows = _rows_only(f, theta, h)
    return (np.broadcast_to(rows.reshape((-1,) + (1,) * (theta.ndim - 1)), theta.shape).copy(),)


ONE_SIDED = (
    "this is a one-sided difference, (f(θ + h eᵢ) - f(θ)) / h, whose error shrinks only like h; the "
    "central difference probes both sides: (f(θ + h eᵢ) - f(θ - h eᵢ)) / (2h)"
)
NOT_RESTORED = (
    "each probe must restore theta before the next entry: after entry i was probed it stayed at θᵢ ± h, "
    "so every later entry was differentiated at a shifted point. Work on a fresh copy per entry, or put "
    "the original value back"
)
ROWS_ONLY = (
    "theta[i] is a whole row when theta has two or more axes, so this moved a row at a time. Probe every "
    "single entry: one index per entry, with as many numbers in it as theta has axes (or a flat view "
    "of theta, one entry per position)"
)

NUMERICAL_GRADIENT = Exercise(
    name="numerical_gradient",
    notebook=NOTEBOOK,
    signature="numerical_gradient(f, theta, h=1e-5) -> ndarray",
    summary="central differences for every entry of theta (any shape): 2 evaluations of f per entry",
    outputs=("gradient",),
    points=2,
    make_inputs=_gradient_inputs,
    reference=_gradient_reference,
    numeric=_gradient_numeric,
    misconceptions=(
        M("forward_difference", ONE_SIDED, _forward_difference),
        M("backward_difference", ONE_SIDED, _backward_difference),
        M(
            "divided_by_h",
            "the two probes θ + h eᵢ and θ - h eᵢ are 2h apart: divide by 2h, not h",
            lambda f, theta, h: (2.0 * _gradient_reference(f, theta, h)[0],),
        ),
        M("not_restored_minus", NOT_RESTORED, _not_restored(1.0)),
        M("not_restored_plus", NOT_RESTORED, _not_restored(-1.0)),
        M(
            "aliased_zero",
            "every entry is 0: both probes were the same array as theta (plus = theta does not copy), so "
            "f was evaluated twice at the same point. Give each probe an array of its own (a copy), or "
            "move theta's entry and put it back",
            lambda f, theta, h: (np.zeros_like(theta),),
        ),
        M(
            "aliased_half",
            "plus = theta and minus = theta are one and the same array, so moving minus undid plus: this is "
            "(f(θ + h eᵢ) - f(θ)) / (2h). Give each probe an array of its own (a copy)",
            _aliased_half,
        ),
        M(
            "ignored_h",
            "use the step h you are given: this was computed with a fixed step",
            lambda f, theta, h: (numerical_gradient(f, theta, 1e-5),),
        ),
        M(
            "flattened",
            "the values are right but flat: the gradient has the shape of theta (start from "
            "an array of theta's shape, or give the result that shape at the end)",
            lambda f, theta, h: (_gradient_reference(f, theta, h)[0].reshape(-1),),
        ),
        M("rows_only", ROWS_ONLY, lambda f, theta, h: (_rows_only(f, theta, h),)),
        M("rows_broadcast", ROWS_ONLY, _rows_broadcast),
    ),
    revisit="central differences, one entry at a time: two evaluations of f per parameter",
    # Its input is a bpcourse.testfunctions object, and calling it is the exercise: that module stays open.
    refuses=ENGINE + MINIGRAPH + REFERENCES,
    instead="write the central differences yourself",
)


# -- Jacobians by forward mode (columns) and by reverse mode (rows) ----------------------------------------
def _map_inputs(cls: type[EngineMap], key: str) -> Callable[[np.random.Generator], Inputs]:
    def make(rng: np.random.Generator) -> Inputs:
        n, m = distinct_sizes(rng, 2, 2, 7)
        A = rng.standard_normal((m, n)) * 0.8
        c = rng.standard_normal((m, 1)) * 0.3
        f = cls(str(rng.choice(list(ENGINE_MAPS))), A, c)
        return {key: f, "x": rng.uniform(-1.0, 1.0, n), "m": m}

    return make


def _map_values(f: EngineMap) -> Callable[[np.ndarray], np.ndarray]:
    function = f.tensor_function()

    def value(v: np.ndarray) -> np.ndarray:
        with no_grad():
            return function(Tensor(v, requires_grad=False)).data

    return value


def _finite_difference_jacobian(f: EngineMap, x: np.ndarray, m: int) -> Outputs:
    value = _map_values(f)
    rows = [numerical_gradient(lambda v, i=i: float(value(v)[i]), x) for i in range(m)]
    return (np.stack(rows, axis=0),)


def _swapped_jvp(f_jvp: JvpFunction, x: np.ndarray, m: int) -> Outputs:
    basis = np.eye(x.size)
    return (np.stack([f_jvp(basis[j], x) for j in range(x.size)], axis=1),)


def _passes_line(who: str, seen: list[tuple[int, int, int]], forward: bool) -> Line:
    """seen: (calls, n, m) per trial. Forward mode needs n passes, reverse mode m."""
    for calls, n, m in seen:
        needed = n if forward else m
        if calls == needed:
            continue
        if forward:
            rule = (
                f"forward mode needs exactly one pass per input direction: n = {n} passes, "
                "pass j (u = e_j) giving column j"
            )
        else:
            rule = (
                f"reverse mode needs exactly one pass per output: m = {m} passes, "
                "pass i (w = e_i) giving row i"
            )
        if calls == 0:
            return Line("passes", False, f"{who} was never called (the grader counts the calls): {rule}")
        if calls < 0:
            return Line("passes", False, f"the call counter of {who} was changed: {rule}")
        return Line("passes", False, f"{who} was called {calls} times for one Jacobian: {rule}")
    return Line("passes", True)


def _judge_with_passes(key: str, forward: bool) -> Callable[[Exercise, Call, np.random.Generator], Verdict]:
    """The default judge on J, then one more line: were exactly n (or m) passes run?"""

    def run(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
        seen: list[tuple[int, int, int]] = []

        def counted(inputs: Inputs) -> Any:
            given = inputs[key]
            fresh = type(given)(given.name, given.A.copy(), given.c.copy())
            raw = call({**inputs, key: fresh})
            seen.append((fresh.calls, given.n, given.m))
            return raw

        verdict = judge_by_reference(exercise, counted, rng)
        if not judged_every_output(verdict, exercise):
            return verdict
        return weighted_verdict(exercise, [*verdict.lines, _passes_line(key, seen, forward)], [1.5, 0.5])

    return run


JACOBIAN_FORWARD_MODE = Exercise(
    name="jacobian_forward_mode",
    notebook=NOTEBOOK,
    signature="jacobian_forward_mode(f_jvp, x, m) -> J (m, n)",
    summary="n forward passes: f_jvp(x, e_j) = J e_j is column j of J",
    outputs=("J",),
    points=2,
    make_inputs=_map_inputs(JvpFunction, "f_jvp"),
    reference=lambda f_jvp, x, m: (jacobian_by_jvp(f_jvp.tensor_function(), x),),
    numeric=lambda f_jvp, x, m: _finite_difference_jacobian(f_jvp, x, m),
    misconceptions=(
        M(
            "columns_stacked_as_rows",
            "each forward pass gives a COLUMN of J (J e_j, shape (m,)); stacked as rows they make Jᵀ, of "
            "shape (n, m): put them side by side, one column per pass, to get J of shape (m, n)",
            lambda f_jvp, x, m: (jacobian_by_jvp(f_jvp.tensor_function(), x).T,),
        ),
        M(
            "swapped_arguments",
            "f_jvp(x, u) takes the point x first and the direction u second: with the two swapped, each "
            "pass differentiated at the point e_j in the direction x",
            _swapped_jvp,
        ),
    ),
    revisit="forward mode: a Jacobian-vector product pushes one input direction forward, one column per pass",
    judge=_judge_with_passes("f_jvp", forward=True),
    # Its input is a bpcourse.testfunctions object, and calling it is the exercise: that module stays open.
    refuses=ENGINE + MINIGRAPH + REFERENCES,
    instead="build J from the calls of f_jvp yourself",
)

JACOBIAN_REVERSE_MODE = Exercise(
    name="jacobian_reverse_mode",
    notebook=NOTEBOOK,
    signature="jacobian_reverse_mode(f_vjp, x, m) -> J (m, n)",
    summary="m reverse passes: f_vjp(x, e_i) = Jᵀ e_i is row i of J",
    outputs=("J",),
    points=2,
    make_inputs=_map_inputs(VjpFunction, "f_vjp"),
    reference=lambda f_vjp, x, m: (jacobian_by_vjp(f_vjp.tensor_function(), x),),
    numeric=lambda f_vjp, x, m: _finite_difference_jacobian(f_vjp, x, m),
    misconceptions=(
        M(
            "rows_stacked_as_columns",
            "each reverse pass gives a ROW of J (Jᵀ e_i = the i-th row, shape (n,)); stacked as columns "
            "they make Jᵀ, of shape (n, m): put them one under the other, one row per pass, to get J of "
            "shape (m, n)",
            lambda f_vjp, x, m: (jacobian_by_vjp(f_vjp.tensor_function(), x).T,),
        ),
    ),
    revisit="reverse mode: a vector-Jacobian product pulls one output's weights back, one row per pass",
    judge=_judge_with_passes("f_vjp", forward=False),
    # Its input is a bpcourse.testfunctions object, and calling it is the exercise: that module stays open.
    refuses=ENGINE + MINIGRAPH + REFERENCES,
    instead="build J from the calls of f_vjp yourself",
)


# -- checkpointing a deep chain ---------------------------------------------------------------------------
CHAIN_LENGTHS = (7, 9, 10, 11)
SEGMENT_LENGTHS = (2, 3, 4)


def _chain_inputs(rng: np.random.Generator) -> Inputs:
    while True:
        depth, every = int(rng.choice(CHAIN_LENGTHS)), int(rng.choice(SEGMENT_LENGTHS))
        if depth % every:
            break
    width, batch = distinct_sizes(rng, 2, 3, 6)
    layers = [
        TanhLayer(
            rng.standard_normal((width, width)) * 1.3 / np.sqrt(width), rng.standard_normal((width, 1)) * 0.2
        )
        for _ in range(depth)
    ]
    return {
        "layers": layers,
        "x": rng.standard_normal((width, batch)),
        "upstream": away_from_zero(rng, (width, batch), 0.3, 1.5),
        "every": every,
    }


def _tensor_layer(layer: TanhLayer) -> Callable[[Tensor], Tensor]:
    W = Tensor(layer.W, requires_grad=False)
    b = Tensor(layer.b, requires_grad=False)
    return lambda t: affine(W, t, b).tanh()


def _chain_reference(layers: list[TanhLayer], x: np.ndarray, upstream: np.ndarray, every: int) -> Outputs:
    dx, stored = engine_checkpointed_backward([_tensor_layer(layer) for layer in layers], x, upstream, every)
    return dx, stored


def _forward(layer: TanhLayer, a: np.ndarray) -> np.ndarray:
    return np.tanh(layer.W @ a + layer.b)


def _backward(layer: TanhLayer, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    out = _forward(layer, a)
    return layer.W.T @ ((1.0 - out * out) * g)


def _chain_numeric(layers: list[TanhLayer], x: np.ndarray, upstream: np.ndarray, every: int) -> Outputs:
    def loss(v: np.ndarray) -> float:
        for layer in layers:
            v = _forward(layer, v)
        return float(np.sum(upstream * v))

    return numerical_gradient(loss, x), None


def _variant_dx(
    layers: list[TanhLayer],
    x: np.ndarray,
    upstream: np.ndarray,
    every: int,
    *,
    use: str = "input",
    segments_forward: bool = False,
    layers_forward: bool = False,
    restart: bool = False,
    span: int = 0,
) -> np.ndarray:
    """Checkpointed backprop with one thing done wrong (the keyword arguments say which)."""
    depth = len(layers)
    checkpoints, a = {}, x
    for i, layer in enumerate(layers):
        if i % every == 0:
            checkpoints[i] = a
        a = _forward(layer, a)
    output = a
    segments = [(s, max(s + 1, min(s + every + span, depth))) for s in range(0, depth, every)]
    grad = upstream
    for start, end in segments if segments_forward else reversed(segments):
        inputs = [checkpoints[start]]
        for j in range(start, end):
            inputs.append(_forward(layers[j], inputs[-1]))
        g = upstream if restart else grad
        order = range(start, end) if layers_forward else range(end - 1, start - 1, -1)
        for j in order:
            chosen = {
                "input": inputs[j - start],
                "output": inputs[j - start + 1],
                "checkpoint": checkpoints[start],
                "last": output,
            }[use]
            g = _backward(layers[j], chosen, g)
        grad = g
    return grad


def _dx_variant(**how: Any) -> Callable[..., Outputs]:
    return lambda layers, x, upstream, every: (_variant_dx(layers, x, upstream, every, **how), None)


def _count_variant(count: Callable[[int, int], int]) -> Callable[..., Outputs]:
    return lambda layers, x, upstream, every: (None, count(len(layers), every))


NOT_CHECKPOINTING = (
    "that is the count of storing every activation, which is not checkpointing: the forward pass keeps "
    "only the inputs of layers 0, k, 2k, …; the others are recomputed, one segment at a time, during the "
    "backward pass"
)
STALE = (
    "inside a segment each layer's backward needs its OWN input: run the segment forward again from its "
    "checkpoint to recompute the inputs of the layers after the first, then go back through them in reverse"
)
WRONG_SEGMENTS = (
    "the segments must cover every layer exactly once: the segment starting at layer s is layers "
    "s, s+1, …, s+k-1 (the last one may be shorter); here some layers were skipped or run back twice"
)


def _recomputes_line(seen: list[tuple[int, int, int]]) -> Line:
    """seen: (forward calls, L, every) per trial, ok unless no layer ever ran forward twice."""
    for forward_calls, depth, _every in seen:
        if 0 < forward_calls <= depth:
            return Line(
                "recomputes",
                False,
                "each layer ran forward only once, so nothing was recomputed: the inputs of the layers "
                "inside each segment were all kept from the forward pass, which is not checkpointing. Keep "
                "only the inputs of layers 0, k, 2k, … and recompute the others from them during the "
                "backward pass, one segment at a time",
            )
    return Line("recomputes", True)


def _judge_checkpointing(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """The default judge on (dx, stored_count), then: did the backward pass recompute anything?"""
    seen: list[tuple[int, int, int]] = []

    def counted(inputs: Inputs) -> Any:
        fresh = [TanhLayer(layer.W.copy(), layer.b.copy()) for layer in inputs["layers"]]
        raw = call({**inputs, "layers": fresh})
        counts = [layer.forward_calls for layer in fresh]
        total = -1 if any(c < 0 for c in counts) else sum(counts)
        seen.append((total, len(fresh), inputs["every"]))
        return raw

    verdict = judge_by_reference(exercise, counted, rng)
    if not judged_every_output(verdict, exercise):
        return verdict
    return weighted_verdict(exercise, [*verdict.lines, _recomputes_line(seen)], [1.5, 1.0, 0.5])


CHECKPOINTED_BACKWARD = Exercise(
    name="checkpointed_backward",
    notebook=NOTEBOOK,
    signature="checkpointed_backward(layers, x, upstream, every) -> (dx, stored_count)",
    summary="keep the inputs of layers 0, k, 2k, …; recompute each segment from its checkpoint going back",
    outputs=("dx", "stored_count"),
    points=3,
    make_inputs=_chain_inputs,
    reference=_chain_reference,
    numeric=_chain_numeric,
    misconceptions=(
        M("stored_all_with_output", NOT_CHECKPOINTING, _count_variant(lambda depth, every: depth + 1)),
        M("stored_all", NOT_CHECKPOINTING, _count_variant(lambda depth, every: depth)),
        M(
            "floor_count",
            "the last segment is shorter but it needs a checkpoint too: the inputs of layers 0, k, 2k, … "
            "below L are ceil(L / k) of them, not L // k",
            _count_variant(lambda depth, every: depth // every),
        ),
        M(
            "counted_output",
            "count only the inputs of layers 0, k, 2k, … (x itself is the first); the output of the last "
            "layer is not needed by the backward pass (the upstream gradient is given): it is not a "
            "checkpoint",
            _count_variant(lambda depth, every: math.ceil(depth / every) + 1),
        ),
        M(
            "counted_segment",
            "stored_count counts the checkpoints the forward pass keeps, not the activations recomputed "
            "for one segment during the backward pass",
            _count_variant(lambda depth, every: math.ceil(depth / every) + every - 1),
        ),
        M("stale_checkpoint", STALE, _dx_variant(use="checkpoint")),
        M("stale_output", STALE, _dx_variant(use="last")),
        M(
            "outputs_for_inputs",
            "off by one layer: a layer's backward takes the activation that went INTO that layer, not the "
            "one it produced",
            _dx_variant(use="output"),
        ),
        M("segment_too_short", WRONG_SEGMENTS, _dx_variant(span=-1)),
        M("segment_too_long", WRONG_SEGMENTS, _dx_variant(span=1)),
        M(
            "segments_first_to_last",
            "the gradient flows from the output back to the input: handle the LAST segment first, and "
            "hand its result to the segment before it",
            _dx_variant(segments_forward=True),
        ),
        M(
            "layers_first_to_last",
            "inside a segment, too, go from its last layer back to its first",
            _dx_variant(layers_forward=True),
        ),
        M(
            "gradient_not_carried",
            "each segment started again from the upstream gradient: the gradient at a segment's input is "
            "the upstream gradient of the segment before it, carry it along",
            _dx_variant(restart=True),
        ),
    ),
    revisit="checkpointing: keep every k-th activation, recompute the rest one segment at a time",
    judge=_judge_checkpointing,
    # Its input is a bpcourse.testfunctions object, and calling it is the exercise: that module stays open.
    refuses=ENGINE + MINIGRAPH + REFERENCES,
    instead="write the checkpointing yourself with layer.forward and layer.backward",
)


EXERCISES = (NUMERICAL_GRADIENT, JACOBIAN_FORWARD_MODE, JACOBIAN_REVERSE_MODE, CHECKPOINTED_BACKWARD)
