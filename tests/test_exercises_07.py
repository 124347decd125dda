"""Tests of the exercises of notebook 07 (``bpcourse.exercises.cost_of_backprop``).

For every exercise: a correct answer earns every point (written in more than
one way); each classic mistake, written as a learner would write it, fails and
the verdict names it; a stub reads "not implemented"; wrong shapes, NaN and
lists get a message of their own; no verdict shows a number of the reference.
The input objects (array functions, forward- and reverse-mode maps, layers)
are data only, travel through the wire format, and bring their call counters
back, which is how the grader counts passes; the last tests grade whole
notebooks through the real sandbox.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import (
    SEEDS,
    Mistake,
    assert_every_misconception_named,
    assert_fails_with,
    assert_full_marks,
    assert_full_points,
    assert_mistake_named,
    assert_no_number_shown,
    assert_not_implemented,
    by_exercise,
    coded,
    grade_notebook,
    judging,
    lines_text,
    stub,
    with_nan,
)

from bpcourse.exercises import get
from bpcourse.exercises.core import draw_checked_inputs
from bpcourse.forward import jacobian_by_jvp
from bpcourse.grading.wire import Decoder, Encoder, state_after_call, write_back
from bpcourse.tensor import Tensor
from bpcourse.testfunctions import ARRAY_FUNCTIONS, ArrayFunction, JvpFunction, TanhLayer, VjpFunction

NOTEBOOK = "07_cost_of_backprop"
GRADIENT = "numerical_gradient"
FORWARD = "jacobian_forward_mode"
REVERSE = "jacobian_reverse_mode"
CHECKPOINT = "checkpointed_backward"
judged = judging(NOTEBOOK)


# -- correct answers -------------------------------------------------------------------------------
def numerical_gradient(f, theta, h=1e-5):
    grad = np.zeros_like(theta, dtype=float)
    for i in np.ndindex(theta.shape):
        original = theta[i]
        theta[i] = original + h
        f_plus = f(theta)
        theta[i] = original - h
        f_minus = f(theta)
        theta[i] = original
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def jacobian_forward_mode(f_jvp, x, m):
    columns = [f_jvp(x, e) for e in np.eye(x.size)]
    return np.stack(columns, axis=1)


def jacobian_reverse_mode(f_vjp, x, m):
    rows = [f_vjp(x, e) for e in np.eye(m)]
    return np.stack(rows, axis=0)


def checkpointed_backward(layers, x, upstream, every):
    checkpoints, a = {}, x
    for i, layer in enumerate(layers):
        if i % every == 0:
            checkpoints[i] = a
        a = layer.forward(a)
    grad = upstream
    for start in sorted(checkpoints, reverse=True):
        segment = layers[start : start + every]
        inputs = [checkpoints[start]]
        for layer in segment[:-1]:
            inputs.append(layer.forward(inputs[-1]))
        for layer, a_in in zip(reversed(segment), reversed(inputs), strict=True):
            grad = layer.backward(a_in, grad)
    return grad, len(checkpoints)


CORRECT: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (numerical_gradient, jacobian_forward_mode, jacobian_reverse_mode, checkpointed_backward)
}


# Right answers written another way: they must pass too.
def gradient_on_flat_copies(f, theta, h=1e-5):
    flat = theta.reshape(-1)
    grad = np.empty(flat.size)
    for i in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus.reshape(theta.shape)) - f(minus.reshape(theta.shape))) / (2 * h)
    return grad.reshape(theta.shape)


def forward_mode_filling_columns(f_jvp, x, m):
    J = np.zeros((m, x.size))
    for j in range(x.size):
        u = np.zeros_like(x)
        u[j] = 1.0
        J[:, j] = f_jvp(x, u)
    return J


def checkpointing_with_engine_style_segments(layers, x, upstream, every):
    """Recomputes every layer of a segment (its output too), as the engine does."""
    stored, a = [], x
    for i, layer in enumerate(layers):
        if i % every == 0:
            stored.append((i, a))
        a = layer.forward(a)
    grad = upstream
    for start, a in reversed(stored):
        acts = [a]
        for layer in layers[start : start + every]:
            acts.append(layer.forward(acts[-1]))
        for j in reversed(range(len(acts) - 1)):
            grad = layers[start + j].backward(acts[j], grad)
    return grad, len(stored)


ALTERNATIVES = [
    (GRADIENT, gradient_on_flat_copies),
    (FORWARD, forward_mode_filling_columns),
    (CHECKPOINT, checkpointing_with_engine_style_segments),
]


# -- classic mistakes, as a learner would write them ---------------------------------------------------
def gradient_one_sided(f, theta, h=1e-5):
    grad, f0 = np.zeros_like(theta), f(theta)
    for i in np.ndindex(theta.shape):
        plus = theta.copy()
        plus[i] += h
        grad[i] = (f(plus) - f0) / h
    return grad


def gradient_backward_one_sided(f, theta, h=1e-5):
    grad, f0 = np.zeros_like(theta), f(theta)
    for i in np.ndindex(theta.shape):
        minus = theta.copy()
        minus[i] -= h
        grad[i] = (f0 - f(minus)) / h
    return grad


def gradient_over_h(f, theta, h=1e-5):
    return 2 * numerical_gradient(f, theta, h)


def gradient_not_restored(f, theta, h=1e-5):
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        theta[i] += h
        f_plus = f(theta)
        theta[i] -= 2 * h
        grad[i] = (f_plus - f(theta)) / (2 * h)  # theta[i] is left at θᵢ - h
    return grad


def gradient_not_restored_plus(f, theta, h=1e-5):
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        theta[i] -= h
        f_minus = f(theta)
        theta[i] += 2 * h
        grad[i] = (f(theta) - f_minus) / (2 * h)  # theta[i] is left at θᵢ + h
    return grad


def gradient_aliased(f, theta, h=1e-5):
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        plus = theta
        plus[i] += h
        minus = theta
        minus[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2 * h)
    return grad


def gradient_aliased_half(f, theta, h=1e-5):
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        plus = theta
        plus[i] += h
        f_plus = f(plus)
        minus = theta
        minus[i] -= h
        grad[i] = (f_plus - f(minus)) / (2 * h)
    return grad


def gradient_fixed_step(f, theta, h=1e-5):
    return numerical_gradient(f, theta, 1e-5)


def gradient_flat(f, theta, h=1e-5):
    flat = theta.reshape(-1).copy()
    grad = np.zeros(flat.size)
    for i in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2 * h)
    return grad


def gradient_by_rows(f, theta, h=1e-5):
    grad = np.zeros(len(theta))
    for i in range(len(theta)):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2 * h)
    return grad


def gradient_by_rows_full_shape(f, theta, h=1e-5):
    grad = np.zeros_like(theta)
    for i in range(len(theta)):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2 * h)
    return grad


def forward_mode_as_rows(f_jvp, x, m):
    return np.stack([f_jvp(x, e) for e in np.eye(x.size)])


def forward_mode_swapped(f_jvp, x, m):
    return np.stack([f_jvp(e, x) for e in np.eye(x.size)], axis=1)


def forward_mode_over_outputs(f_jvp, x, m):
    return np.stack([f_jvp(x, e) for e in np.eye(m)], axis=1)


def forward_mode_one_pass_too_many(f_jvp, x, m):
    f_jvp(x, np.zeros_like(x))  # a "warm-up" pass
    return jacobian_forward_mode(f_jvp, x, m)


def forward_mode_without_passes(f_jvp, x, m):
    # Central differences of the map inside f_jvp (engine ops, run by the input itself): never a pass.
    f = f_jvp.tensor_function()
    h = 1e-6
    columns = [(f(x + h * e).data - f(x - h * e).data) / (2 * h) for e in np.eye(x.size)]
    return np.stack(columns, axis=1)


def reverse_mode_as_columns(f_vjp, x, m):
    return np.stack([f_vjp(x, e) for e in np.eye(m)], axis=1)


def reverse_mode_over_inputs(f_vjp, x, m):
    return np.stack([f_vjp(x, e) for e in np.eye(x.size)])


def reverse_mode_twice(f_vjp, x, m):
    jacobian_reverse_mode(f_vjp, x, m)
    return jacobian_reverse_mode(f_vjp, x, m)


def _checkpointing_with(
    count: Callable[[int, int, int], int] | None = None,
    input_of: str = "input",
    span: int = 0,
    segments_forward: bool = False,
    layers_forward: bool = False,
    restart: bool = False,
) -> Callable[..., Any]:
    """A learner's checkpointing with one thing done wrong."""

    def learner(layers, x, upstream, every):
        L = len(layers)
        checkpoints, a = {}, x
        for i, layer in enumerate(layers):
            if i % every == 0:
                checkpoints[i] = a
            a = layer.forward(a)
        starts = sorted(checkpoints) if segments_forward else sorted(checkpoints, reverse=True)
        grad = upstream
        for start in starts:
            stop = max(start + 1, min(start + every + span, L))
            acts = [checkpoints[start]]
            for j in range(start, stop):
                acts.append(layers[j].forward(acts[-1]))
            g = upstream if restart else grad
            order = range(start, stop) if layers_forward else reversed(range(start, stop))
            for j in order:
                chosen = {"input": acts[j - start], "output": acts[j - start + 1],
                          "checkpoint": checkpoints[start], "last": a}[input_of]  # fmt: skip
                g = layers[j].backward(chosen, g)
            grad = g
        stored = len(checkpoints) if count is None else count(L, every, len(checkpoints))
        return grad, stored

    return learner


def checkpointing_that_stores_everything(layers, x, upstream, every):
    acts = [x]
    for layer in layers:
        acts.append(layer.forward(acts[-1]))
    grad = upstream
    for layer, a in zip(reversed(layers), reversed(acts[:-1]), strict=True):
        grad = layer.backward(a, grad)
    return grad, len(acts)


def checkpointing_that_stores_everything_quietly(layers, x, upstream, every):
    grad, _ = checkpointing_that_stores_everything(layers, x, upstream, every)
    return grad, math.ceil(len(layers) / every)


NOT_CHECKPOINTING = "which is not checkpointing"

MISTAKES = [
    # numerical_gradient
    Mistake(GRADIENT, gradient_one_sided, ("one-sided difference", "(2h)")),
    Mistake(GRADIENT, gradient_backward_one_sided, ("one-sided difference",)),
    Mistake(GRADIENT, gradient_over_h, ("2h apart",)),
    Mistake(GRADIENT, gradient_not_restored, ("each probe must restore theta before the next entry",)),
    Mistake(GRADIENT, gradient_not_restored_plus, ("each probe must restore theta before the next entry",)),
    Mistake(GRADIENT, gradient_aliased, ("every entry is 0", "an array of its own")),
    Mistake(GRADIENT, gradient_aliased_half, ("one and the same array", "an array of its own")),
    Mistake(GRADIENT, gradient_fixed_step, ("use the step h you are given",)),
    Mistake(GRADIENT, gradient_flat, ("a flat 1-D array", "the values are right but flat")),
    Mistake(GRADIENT, gradient_by_rows, ("theta[i] is a whole row", "one index per entry")),
    Mistake(GRADIENT, gradient_by_rows_full_shape, ("theta[i] is a whole row",)),
    # jacobian_forward_mode
    Mistake(FORWARD, forward_mode_as_rows, ("(transposed?)", "COLUMN of J", "side by"), "partial", ("J",)),
    Mistake(FORWARD, forward_mode_swapped, ("takes the point x first",), "partial", ("J",)),
    Mistake(FORWARD, forward_mode_over_outputs, ("raised ValueError", "u must have shape", "per input entry"),
            "error"),
    Mistake(FORWARD, forward_mode_one_pass_too_many, ("times for one Jacobian", "one pass per input"),
            "partial", ("passes",)),
    Mistake(FORWARD, forward_mode_without_passes, ("was never called",), "partial", ("passes",)),
    # jacobian_reverse_mode
    Mistake(REVERSE, reverse_mode_as_columns, ("(transposed?)", "ROW of J", "one under"), "partial", ("J",)),
    Mistake(REVERSE, reverse_mode_over_inputs, ("raised ValueError", "w must have shape", "per output"),
            "error"),
    Mistake(REVERSE, reverse_mode_twice, ("one pass per output",), "partial", ("passes",)),
    # checkpointed_backward
    Mistake(CHECKPOINT, checkpointing_that_stores_everything, (NOT_CHECKPOINTING, "nothing was recomputed"),
            "partial", ("stored_count", "recomputes")),
    Mistake(CHECKPOINT, checkpointing_that_stores_everything_quietly, ("nothing was recomputed",),
            "partial", ("recomputes",)),
    Mistake(CHECKPOINT, _checkpointing_with(count=lambda L, k, c: L), (NOT_CHECKPOINTING,),
            "partial", ("stored_count",)),
    Mistake(CHECKPOINT, _checkpointing_with(count=lambda L, k, c: L // k), ("ceil(L / k)",),
            "partial", ("stored_count",)),
    Mistake(CHECKPOINT, _checkpointing_with(count=lambda L, k, c: c + 1), ("is not a checkpoint",),
            "partial", ("stored_count",)),
    Mistake(CHECKPOINT, _checkpointing_with(count=lambda L, k, c: c + k - 1),
            ("not the activations recomputed",), "partial", ("stored_count",)),
    Mistake(CHECKPOINT, _checkpointing_with(input_of="checkpoint"), ("needs its OWN input",),
            "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(input_of="last"), ("needs its OWN input",), "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(input_of="output"), ("off by one layer",), "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(span=-1), ("cover every layer exactly once",),
            "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(span=1), ("cover every layer exactly once",),
            "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(segments_forward=True), ("LAST segment first",),
            "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(layers_forward=True), ("from its last layer back",),
            "partial", ("dx",)),
    Mistake(CHECKPOINT, _checkpointing_with(restart=True), ("carry it along",), "partial", ("dx",)),
]  # fmt: skip


def _id(mistake: Mistake) -> str:
    return f"{mistake.exercise}-{getattr(mistake.learner, '__name__', '')}-{mistake.phrases[-1][:24]}"


# -- the registry -----------------------------------------------------------------------------------
def test_the_notebook_registers_its_four_exercises_in_order_with_their_points():
    exercises = coded(NOTEBOOK)
    assert [e.name for e in exercises] == list(CORRECT)
    assert [e.points for e in exercises] == [2, 2, 2, 3]


# -- inputs -----------------------------------------------------------------------------------------
def test_gradient_inputs_have_several_axes_large_steps_and_agreeing_oracles(rng):
    exercise = get(GRADIENT, NOTEBOOK)
    names = set()
    for _ in range(20):
        inputs, (expected,) = draw_checked_inputs(exercise, rng)
        theta = inputs["theta"]
        assert theta.ndim >= 2 and theta.dtype == np.float64 and len(set(theta.shape)) > 1
        assert 1e-2 <= inputs["h"] <= 1e-1
        assert expected.shape == theta.shape and expected.dtype == np.float64
        names.add(inputs["f"].name)
    assert names == set(ARRAY_FUNCTIONS)


def test_the_engine_forms_are_the_test_functions():
    from bpcourse.exercises.cost_of_backprop import ENGINE_FORMS

    assert set(ENGINE_FORMS) == set(ARRAY_FUNCTIONS)
    theta = np.random.default_rng(5).uniform(-1, 1, (3, 4))
    for name, form in ENGINE_FORMS.items():
        assert form(Tensor(theta, requires_grad=False)).item() == pytest.approx(
            ArrayFunction(name)(theta), rel=1e-13
        )


def test_a_test_function_that_disagrees_with_its_gradient_is_the_graders_problem(monkeypatch):
    from bpcourse.exercises import cost_of_backprop

    monkeypatch.setitem(cost_of_backprop.ENGINE_FORMS, "Σ σ(3θ) · Σ θ²", lambda t: (t * t).sum())
    monkeypatch.setitem(cost_of_backprop.ENGINE_FORMS, "½(Σθ)² + Σ tanh(2θ)", lambda t: (t * t).sum())
    monkeypatch.setitem(cost_of_backprop.ENGINE_FORMS, "log Σ exp(1.5θ) + 0.3 Σ θ³", lambda t: (t * t).sum())
    result = judged(numerical_gradient, GRADIENT)
    assert result.status == "error" and "internal problem of the grader" in str(result)


@pytest.mark.parametrize("name", [FORWARD, REVERSE])
def test_jacobian_inputs_are_never_square_and_both_oracles_agree(name, rng):
    exercise = get(name, NOTEBOOK)
    for _ in range(15):
        inputs, (expected,) = draw_checked_inputs(exercise, rng)
        f, x, m = inputs.values()
        assert isinstance(f, JvpFunction if name == FORWARD else VjpFunction)
        assert x.shape == (f.n,) and m == f.m != f.n
        assert expected.shape == (m, x.size)


def test_chain_inputs_have_a_shorter_last_segment_and_agreeing_oracles(rng):
    exercise = get(CHECKPOINT, NOTEBOOK)
    for _ in range(15):
        inputs, (dx, stored) = draw_checked_inputs(exercise, rng)
        layers, x, upstream, every = inputs.values()
        L = len(layers)
        assert all(isinstance(layer, TanhLayer) for layer in layers)
        assert 1 < every < L and L % every != 0
        assert x.shape == upstream.shape == dx.shape and x.shape[0] != x.shape[1]
        assert stored == math.ceil(L / every)
        assert np.abs(dx).max() > 1e-3  # the gradient has not vanished over the chain


# -- correct answers --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_answer_earns_every_point(name, seed):
    assert_full_points(judged(CORRECT[name], name, seed), get(name, NOTEBOOK).points)


@pytest.mark.parametrize(("name", "learner"), ALTERNATIVES, ids=[f.__name__ for _, f in ALTERNATIVES])
def test_right_answers_written_differently_pass_too(name, learner):
    for seed in (0, 1):
        result = judged(learner, name, seed)
        assert result.passed, str(result)


def test_without_a_seed_a_correct_answer_still_passes():
    for name, function in CORRECT.items():
        assert judged(function, name, seed=None).passed


def test_the_correct_answers_count_their_passes_as_the_notebook_says():
    rng = np.random.default_rng(0)
    A, c, x = rng.standard_normal((50, 2)), np.zeros((50, 1)), rng.standard_normal(2)
    f_jvp, f_vjp = JvpFunction("tanh(Ax + c)", A, c), VjpFunction("tanh(Ax + c)", A, c)
    J_forward = jacobian_forward_mode(f_jvp, x, 50)
    J_reverse = jacobian_reverse_mode(f_vjp, x, 50)
    np.testing.assert_allclose(J_forward, J_reverse, rtol=1e-12, atol=1e-14)
    assert (f_jvp.calls, f_vjp.calls) == (2, 50)
    f = ArrayFunction("Σ σ(3θ) · Σ θ²")
    numerical_gradient(f, rng.standard_normal((3, 4)))
    assert f.calls == 2 * 12


# -- classic mistakes -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", MISTAKES, ids=_id)
def test_each_classic_mistake_fails_and_is_named(mistake, seed):
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


def test_every_misconception_of_the_registry_is_exercised_by_a_learner_above():
    assert_every_misconception_named(NOTEBOOK, MISTAKES, judged)


def test_partial_credit_follows_the_weights_of_the_lines():
    assert judged(forward_mode_one_pass_too_many, FORWARD).score == pytest.approx(1.5)
    assert judged(forward_mode_as_rows, FORWARD).score == pytest.approx(0.5)
    assert judged(checkpointing_that_stores_everything_quietly, CHECKPOINT).score == pytest.approx(2.5)
    assert judged(checkpointing_that_stores_everything, CHECKPOINT).score == pytest.approx(1.5)


def test_a_learner_that_never_calls_the_layers_is_not_blamed_for_not_recomputing():
    def own_arithmetic(layers, x, upstream, every):
        acts = [x]
        for layer in layers:
            acts.append(np.tanh(layer.W @ acts[-1] + layer.b))
        grad = upstream
        for layer, out in zip(reversed(layers), reversed(acts[1:]), strict=True):
            grad = layer.W.T @ ((1 - out**2) * grad)
        return grad, math.ceil(len(layers) / every)

    assert judged(own_arithmetic, CHECKPOINT).passed


# -- stubs, shapes, NaN, lists ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_reads_not_implemented(name):
    assert_not_implemented(judged(stub, name))


def _first(name: str, change: Callable[[Any], Any]) -> Callable[..., Any]:
    """The correct answer with its first output passed through ``change``."""

    def learner(*args):
        out = CORRECT[name](*args)
        return (change(out[0]), *out[1:]) if isinstance(out, tuple) else change(out)

    return learner


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_transposed_answer_gets_a_shape_message(name):
    if name == GRADIENT:

        def change(g):
            return g.T if g.ndim == 2 else np.moveaxis(g, 0, -1)
    else:
        change = np.transpose
    text = str(judged(_first(name, change), name))
    assert "but should have shape" in text


@pytest.mark.parametrize("name", list(CORRECT))
def test_nan_in_an_output_gets_a_nan_message(name):
    assert_fails_with(judged(_first(name, with_nan), name), "contains NaN")


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_list_in_place_of_an_array_gets_a_type_message(name):
    result = judged(_first(name, lambda v: np.asarray(v).tolist()), name)
    assert_fails_with(result, "should be a numpy array", "got a list")


def test_a_single_array_where_two_values_belong_is_named():
    result = judged(lambda layers, x, upstream, every: checkpointed_backward(layers, x, upstream, every)[0],
                    CHECKPOINT)  # fmt: skip
    assert result.status == "failed" and "should return 2 values" in str(result)


def test_a_count_that_is_not_a_number_is_named():
    result = judged(lambda *args: (checkpointed_backward(*args)[0], "3"), CHECKPOINT)
    assert [line.what for line in result.lines if not line.ok] == ["stored_count"]
    assert "should be a number" in str(result)


# -- nothing leaks -----------------------------------------------------------------------------------
def _scaled(out: Any) -> Any:
    if isinstance(out, tuple):
        return (1.5 * out[0] + 0.25, *out[1:])
    return 1.5 * out + 0.25


@pytest.mark.parametrize("name", list(CORRECT))
@pytest.mark.parametrize("how", ["scaled", "misconception"])
def test_no_verdict_shows_a_number_of_the_reference(name, how):
    exercise = get(name, NOTEBOOK)
    seen: list[dict[str, Any]] = []
    mistake = next(m for m in MISTAKES if m.exercise == name and m.status != "error")
    keys = list(exercise.make_inputs(np.random.default_rng(0)))

    def learner(*args):
        seen.append(dict(zip(keys, args, strict=True)))
        return mistake.learner(*args) if how == "misconception" else _scaled(CORRECT[name](*args))

    result = judged(learner, name)
    assert not result.passed and seen
    assert_no_number_shown(result, [output for inputs in seen for output in exercise.reference(**inputs)])


# -- the input objects on the wire -----------------------------------------------------------------------
def _round_trip(value: Any) -> tuple[Any, Encoder]:
    encoder = Encoder()
    message = json.loads(json.dumps(encoder.encode(value)))
    return Decoder().decode(message), encoder


def test_the_input_objects_travel_as_data_and_bring_their_counters_back():
    rng = np.random.default_rng(3)
    A, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    layer = TanhLayer(rng.standard_normal((3, 3)), rng.standard_normal((3, 1)))
    sent = [ArrayFunction("Σ σ(3θ) · Σ θ²"), JvpFunction("z σ(z), z = Ax + c", A, c),
            VjpFunction("log(1 + exp(Ax + c))", A, c), [layer, layer]]  # fmt: skip
    encoder = Encoder()
    message = json.loads(json.dumps(encoder.encode(sent)))
    decoder = Decoder()
    f, f_jvp, f_vjp, layers = decoder.decode(message)
    assert layers[0] is layers[1]  # a layer sent twice is one object on the other side
    assert f.name == sent[0].name and np.array_equal(f_jvp.A, A) and np.array_equal(f_vjp.c, c)
    np.testing.assert_array_equal(layers[0].W, layer.W)
    x = rng.standard_normal(3)
    np.testing.assert_allclose(f_jvp(x, np.eye(3)[0]), jacobian_by_jvp(sent[1].tensor_function(), x)[:, 0])
    f(x)
    f(x)
    f_vjp(x, np.ones(4))
    layers[0].forward(np.ones((3, 2)))
    state = json.loads(json.dumps(state_after_call(decoder.objects)))
    write_back(encoder.objects, state)
    assert (sent[0].calls, sent[1].calls, sent[2].calls) == (2, 1, 1)  # what ran on the other side
    assert (layer.forward_calls, layer.backward_calls) == (1, 0)


def test_a_counter_a_learner_replaced_comes_back_as_unknown():
    f, encoder = ArrayFunction("Σ σ(3θ) · Σ θ²"), Encoder()
    decoder = Decoder()
    g = decoder.decode(json.loads(json.dumps(encoder.encode(f))))
    g.calls = "many"
    write_back(encoder.objects, json.loads(json.dumps(state_after_call(decoder.objects))))
    assert f.calls == -1


@pytest.mark.parametrize("bad", [{"name": "not a map"}, {"A": "text"}, {"c": np.zeros((2, 1))}])
def test_a_malformed_map_is_refused(bad):
    from bpcourse.grading.wire import WireError

    A, c = np.ones((4, 3)), np.zeros((4, 1))
    message = Encoder().encode(JvpFunction("tanh(Ax + c)", A, c))
    payload = message["payload"]
    for key, value in bad.items():
        payload[key] = Encoder().encode(value)
    with pytest.raises(WireError):
        Decoder().decode(json.loads(json.dumps(message)))


# -- through the sandbox -----------------------------------------------------------------------------
SOURCES = {
    GRADIENT: (
        "def numerical_gradient(f, theta, h=1e-5):\n"
        "    grad = np.zeros_like(theta)\n"
        "    for i in np.ndindex(theta.shape):\n"
        "        old = theta[i]\n"
        "        theta[i] = old + h\n"
        "        f_plus = f(theta)\n"
        "        theta[i] = old - h\n"
        "        f_minus = f(theta)\n"
        "        theta[i] = old\n"
        "        grad[i] = (f_plus - f_minus) / (2 * h)\n"
        "    return grad"
    ),
    FORWARD: (
        "def jacobian_forward_mode(f_jvp, x, m):\n"
        "    return np.stack([f_jvp(x, u) for u in np.eye(x.size)], axis=1)"
    ),
    REVERSE: (
        "def jacobian_reverse_mode(f_vjp, x, m):\n"
        "    return np.stack([f_vjp(x, w) for w in np.eye(m)], axis=0)"
    ),
    CHECKPOINT: (
        "def checkpointed_backward(layers, x, upstream, every):\n"
        "    kept, a = [], x\n"
        "    for i, layer in enumerate(layers):\n"
        "        if i % every == 0:\n"
        "            kept.append(a)\n"
        "        a = layer.forward(a)\n"
        "    grad = upstream\n"
        "    for s in reversed(range(len(kept))):\n"
        "        segment = layers[s * every:(s + 1) * every]\n"
        "        inputs = [kept[s]]\n"
        "        for layer in segment[:-1]:\n"
        "            inputs.append(layer.forward(inputs[-1]))\n"
        "        for layer, a_in in zip(segment[::-1], inputs[::-1]):\n"
        "            grad = layer.backward(a_in, grad)\n"
        "    return grad, len(kept)"
    ),
}
WRONG_SOURCES = {
    GRADIENT: (
        "def numerical_gradient(f, theta, h=1e-5):\n"
        "    grad = np.zeros_like(theta)\n"
        "    for i in np.ndindex(theta.shape):\n"
        "        theta[i] += h\n"
        "        f_plus = f(theta)\n"
        "        theta[i] -= 2 * h\n"
        "        grad[i] = (f_plus - f(theta)) / (2 * h)\n"
        "    return grad"
    ),
    FORWARD: (
        "def jacobian_forward_mode(f_jvp, x, m):\n"
        "    f_jvp(x, x)\n"
        "    return np.stack([f_jvp(x, u) for u in np.eye(x.size)], axis=0)"
    ),
    REVERSE: (
        "def jacobian_reverse_mode(f_vjp, x, m):\n"
        "    return np.stack([f_vjp(x, w) for w in np.eye(x.size)], axis=0)"
    ),
    CHECKPOINT: (
        "def checkpointed_backward(layers, x, upstream, every):\n"
        "    acts = [x]\n"
        "    for layer in layers:\n"
        "        acts.append(layer.forward(acts[-1]))\n"
        "    grad = upstream\n"
        "    for layer, a in zip(layers[::-1], acts[-2::-1]):\n"
        "        grad = layer.backward(a, grad)\n"
        "    return grad, -(-len(layers) // every)"
    ),
}


def test_a_correct_notebook_gets_full_marks_through_the_sandbox(tmp_path):
    assert_full_marks(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, SOURCES, seed=11), 9)


def test_mistakes_and_pass_counts_are_diagnosed_through_the_sandbox(tmp_path):
    result = by_exercise(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, WRONG_SOURCES, seed=11))
    text = {name: lines_text(entry) for name, entry in result.items()}
    assert result[GRADIENT]["status"] == "failed"
    assert "each probe must restore theta" in text[GRADIENT]
    assert result[FORWARD]["status"] == "failed" and result[FORWARD]["score"] == 0
    assert "COLUMN of J" in text[FORWARD] and "times for one Jacobian" in text[FORWARD]
    assert result[REVERSE]["status"] == "error" and "w must have shape" in text[REVERSE]
    assert result[CHECKPOINT]["status"] == "partial" and result[CHECKPOINT]["score"] == 2.5
    assert "nothing was recomputed" in text[CHECKPOINT]
