"""Tests of the exercises of notebook 03 (``bpcourse.exercises.affine_and_activations``).

For every exercise: a correct answer earns every point; each classic mistake,
written as a learner would write it, fails and the verdict names it; a stub
reads "not implemented"; wrong shapes, NaN and lists get a message of their
own; and no verdict shows a number of the reference answer. The classic
mistakes of affine_backward, relu_backward and tanh_backward, made at one step
of affine_relu_backward or of the two-layer network, are named there as those
exercises name them.

``tanh_backward`` is graded in notebooks 01 and 03, so every lookup here says
which notebook it means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import (
    SEEDS,
    Mistake,
    assert_every_misconception_named,
    assert_fails_with,
    assert_full_points,
    assert_mistake_named,
    assert_no_number_shown,
    assert_not_implemented,
    assert_written_from_steps,
    coded,
    judging,
    mistakes_inside,
    steps_left_out,
    stub,
    with_nan,
)

from bpcourse.check import verdict
from bpcourse.exercises import get
from bpcourse.exercises.affine_and_activations import AFFINE_RELU_STEPS as AFFINE_RELU
from bpcourse.exercises.affine_and_activations import TWO_LAYER_STEPS as TWO_LAYER
from bpcourse.exercises.core import LearnerRaised, draw_checked_inputs, judge

NOTEBOOK = "03_affine_and_activations"
judged = judging(NOTEBOOK)


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


# -- correct answers -------------------------------------------------------------------------
def affine_backward(g, x, W):
    return g @ x.T, g.copy(), W.T @ g


def relu_backward(upstream, z):
    return upstream * (z > 0)


def sigmoid_backward(upstream, a):
    return upstream * a * (1 - a)


def tanh_backward(upstream, a):
    return upstream * (1 - a**2)


def affine_relu_backward(upstream, x, W, z):
    delta = upstream * (z > 0)
    return delta @ x.T, delta, W.T @ delta


def two_layer_mse_grads(x, y, W1, b1, W2, b2):
    a1 = np.tanh(W1 @ x + b1)
    delta2 = W2 @ a1 + b2 - y
    delta1 = (W2.T @ delta2) * (1 - a1**2)
    return {"W1": delta1 @ x.T, "b1": delta1, "W2": delta2 @ a1.T, "b2": delta2}


CORRECT: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        affine_backward,
        relu_backward,
        sigmoid_backward,
        tanh_backward,
        affine_relu_backward,
        two_layer_mse_grads,
    )
}


def _two_layer_with(
    sign: float = 1.0,
    back: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda W2, d2: W2.T @ d2,
    slope: Callable[[np.ndarray], np.ndarray] = lambda a1: 1 - a1**2,
    dW1: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda d1, x: d1 @ x.T,
    dW2: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda d2, a1: d2 @ a1.T,
) -> Callable[..., dict[str, np.ndarray]]:
    def learner(x, y, W1, b1, W2, b2):
        a1 = np.tanh(W1 @ x + b1)
        d2 = sign * (W2 @ a1 + b2 - y)
        d1 = back(W2, d2) * slope(a1)
        return {"W1": dW1(d1, x), "b1": d1, "W2": dW2(d2, a1), "b2": d2}

    return learner


# -- classic mistakes, as a learner writes them ------------------------------------------------
def _ones(v: np.ndarray) -> np.ndarray:
    return np.ones_like(v)


def _relu_values_in_place_of_mask(upstream, x, W, z):
    delta = upstream * np.maximum(z, 0)
    return delta @ x.T, delta, W.T @ delta


MISTAKES = [
    # affine_backward
    Mistake("affine_backward", lambda g, x, W: (x @ g.T, g, W.T @ g),
            ("(transposed?)", "this is x gᵀ", "dW = g xᵀ"), "partial", ("dW",)),
    Mistake("affine_backward", lambda g, x, W: (_ones(g) @ x.T, _ones(g), W.T @ _ones(g)),
            ("only the local derivative",)),
    Mistake("affine_backward", lambda g, x, W: (g @ x.T, g.T, W.T @ g),
            ("(transposed?)", "db is a row"), "partial", ("db",)),
    Mistake("affine_backward", lambda g, x, W: (g @ x.T, g.ravel(), W.T @ g),
            ("1-D array", "db lost its second axis"), "partial", ("db",)),
    Mistake("affine_backward", lambda g, x, W: (g @ x.T, g.sum(), W.T @ g),
            ("got a single number", "nothing to add up"), "partial", ("db",)),
    Mistake("affine_backward", lambda g, x, W: (g @ x.T, g, g.T @ W),
            ("(transposed?)", "gᵀ W holds the right numbers"), "partial", ("dx",)),
    Mistake("affine_backward", lambda g, x, W: (g @ x.T, g, W @ g),
            ("raised ValueError", "the gradient of x is Wᵀ g", "W g does not fit"), "error"),
    # relu_backward
    Mistake("relu_backward", lambda upstream, z: upstream * (upstream > 0),
            ("mask comes from the wrong array",)),
    Mistake("relu_backward", lambda upstream, z: (z > 0).astype(float), ("local derivative alone",)),
    Mistake("relu_backward", lambda upstream, z: upstream * np.maximum(z, 0), ("multiplies by relu(z)",)),
    # sigmoid_backward
    Mistake("sigmoid_backward", lambda upstream, a: upstream * sigmoid(a) * (1 - sigmoid(a)),
            ("φ′(a) used where φ′(z) belongs", "a(1 - a)")),
    Mistake("sigmoid_backward", lambda upstream, a: a * (1 - a), ("local derivative alone",)),
    Mistake("sigmoid_backward", lambda upstream, a: upstream * a * (1 + a), ("not a(1 + a)",)),
    # tanh_backward
    Mistake("tanh_backward", lambda upstream, a: upstream * (1 - np.tanh(a) ** 2),
            ("φ′(a) used where φ′(z) belongs", "1 - a²")),
    Mistake("tanh_backward", lambda upstream, a: upstream * (1 - a), ("with a squared",)),
    Mistake("tanh_backward", lambda upstream, a: 1 - a**2, ("local derivative alone",)),
    # affine_relu_backward
    Mistake("affine_relu_backward", lambda upstream, x, W, z: (upstream @ x.T, upstream, W.T @ upstream),
            ("the ReLU mask is missing", "skips the ReLU")),
    Mistake("affine_relu_backward",
            lambda upstream, x, W, z: ((upstream @ x.T) * (z > 0), upstream * (z > 0), W.T @ upstream),
            ("skips the ReLU", "BEFORE the affine"), "partial", ("dx",)),
    Mistake("affine_relu_backward",
            lambda upstream, x, W, z: ((upstream * (z > 0)) @ x.T, upstream * (z > 0),
                                       (W.T @ upstream) * (x > 0)),
            ("masks dx with 1[x > 0]",), "partial", ("dx",)),
    Mistake("affine_relu_backward", _relu_values_in_place_of_mask,
            ("in the ReLU step", "multiplies by relu(z)")),
    Mistake("affine_relu_backward",
            lambda upstream, x, W, z: (x @ (upstream * (z > 0)).T,
                                       *affine_relu_backward(upstream, x, W, z)[1:]),
            ("(transposed?)", "in the affine step", "this is x gᵀ"), "partial", ("dW",)),
    # two_layer_mse_grads
    Mistake("two_layer_mse_grads", _two_layer_with(slope=lambda a1: 1 - np.tanh(a1) ** 2),
            ("in the tanh step", "φ′(a) used where φ′(z) belongs"), "partial", ("W1", "b1")),
    Mistake("two_layer_mse_grads", _two_layer_with(slope=lambda a1: 1.0),
            ("missing the activation's factor",), "partial", ("W1", "b1")),
    Mistake("two_layer_mse_grads", _two_layer_with(sign=-1.0), ("the sign is flipped",)),
    Mistake("two_layer_mse_grads", _two_layer_with(dW1=lambda d1, x: x @ d1.T),
            ("(transposed?)", "in layer 1's affine step", "this is x gᵀ"), "partial", ("W1",)),
    Mistake("two_layer_mse_grads", _two_layer_with(dW2=lambda d2, a1: a1 @ d2.T),
            ("(transposed?)", "in layer 2's affine step", "this is x gᵀ"), "partial", ("W2",)),
    Mistake("two_layer_mse_grads", _two_layer_with(back=lambda W2, d2: W2 @ d2),
            ("raised ValueError", "W2ᵀ δ2", "W2 δ2 does not fit"), "error"),
    Mistake("two_layer_mse_grads", lambda *args: tuple(two_layer_mse_grads(*args).values()),
            ("should return a dict", "returned a tuple")),
    Mistake("two_layer_mse_grads",
            lambda *args: {"d" + k: v for k, v in two_layer_mse_grads(*args).items()},
            ("the dict has no 'W1', 'b1', 'W2', 'b2'", "its keys are 'dW1'")),
]  # fmt: skip


# -- the same mistakes inside the two-layer network ----------------------------------------------------
def two_layer_from(layer2=affine_backward, tanh=tanh_backward, layer1=affine_backward):
    """two_layer_mse_grads written with the step functions, as a learner who calls their own writes it."""

    def learner(x, y, W1, b1, W2, b2):
        a1 = np.tanh(W1 @ x + b1)
        delta2 = W2 @ a1 + b2 - y
        dW2, db2, da1 = layer2(delta2, a1, W2)
        delta1 = tanh(da1, a1)
        dW1, db1, _ = layer1(delta1, x, W1)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    return learner


def affine_relu_from(relu=relu_backward, affine=affine_backward):
    """affine_relu_backward written with the two step functions."""

    def learner(upstream, x, W, z):
        return affine(relu(upstream, z), x, W)

    return learner


TWO_LAYER_STEPS = {
    "layer2": ("affine_backward", NOTEBOOK),
    "tanh": ("tanh_backward", NOTEBOOK),
    "layer1": ("affine_backward", NOTEBOOK),
}
AFFINE_RELU_STEPS = {"relu": ("relu_backward", NOTEBOOK), "affine": ("affine_backward", NOTEBOOK)}
INSIDE = [
    *mistakes_inside("affine_relu_backward", NOTEBOOK, AFFINE_RELU_STEPS, MISTAKES, affine_relu_from),
    *mistakes_inside("two_layer_mse_grads", NOTEBOOK, TWO_LAYER_STEPS, MISTAKES, two_layer_from),
]
COMPOSITES = {
    "affine_relu_backward": (AFFINE_RELU, affine_relu_from),
    "two_layer_mse_grads": (TWO_LAYER, two_layer_from),
}


def _id(mistake: Mistake) -> str:
    return f"{mistake.exercise}-{mistake.phrases[-1][:24]}"


def _inside_id(mistake: Mistake) -> str:
    where, what = mistake.phrases[0].split("): ", 1)
    return f"{mistake.exercise}-{where.split(' (the rule')[0]}: {what[:24]}"


# -- the registry ----------------------------------------------------------------------------------
def test_the_notebook_registers_its_six_exercises_in_order():
    names = [e.name for e in coded(NOTEBOOK)]
    assert names == list(CORRECT)


def test_tanh_backward_of_notebook_03_is_the_array_version():
    exercise = get("tanh_backward", NOTEBOOK)
    assert exercise.notebook == NOTEBOOK
    assert "(upstream, a)" in exercise.signature
    assert get("tanh_backward", "01_scalar_graphs") is not exercise


# -- inputs ----------------------------------------------------------------------------------------
def _shapes(name: str, inputs: dict[str, Any]) -> None:
    if name in ("affine_backward", "affine_relu_backward"):
        m, n = inputs["W"].shape
        assert m != n
        assert inputs["x"].shape == (n, 1)
    if name == "affine_backward":
        assert inputs["g"].shape == (m, 1)
    if name == "affine_relu_backward":
        z = inputs["z"]
        assert z.shape == (m, 1) and np.all(np.abs(z) > 0.1)
        assert (z > 0).any() and (z < 0).any()
    if name == "relu_backward":
        assert np.all(np.abs(inputs["z"]) > 0.1)
    if name in ("sigmoid_backward", "tanh_backward"):
        assert inputs["a"].shape[1] == 1 and np.all(np.abs(inputs["a"]) < 1)
    if name == "two_layer_mse_grads":
        (h, n), (k, h2) = inputs["W1"].shape, inputs["W2"].shape
        assert h == h2 and len({n, h, k}) == 3
        assert inputs["x"].shape == (n, 1) and inputs["y"].shape == (k, 1)


@pytest.mark.parametrize("name", list(CORRECT))
def test_inputs_are_non_square_away_from_kinks_and_agreed_by_both_oracles(name, rng):
    exercise = get(name, NOTEBOOK)
    for _ in range(20):
        inputs, expected = draw_checked_inputs(exercise, rng)
        _shapes(name, inputs)
        for value in expected:
            assert isinstance(value, np.ndarray) and value.dtype == np.float64


# -- correct answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_answer_earns_every_point(name, seed):
    assert_full_points(judged(CORRECT[name], name, seed), get(name, NOTEBOOK).points)


def test_without_a_seed_a_correct_answer_still_passes():
    for function in CORRECT.values():
        assert verdict(function, notebook=NOTEBOOK).passed


# -- classic mistakes ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", MISTAKES, ids=_id)
def test_each_classic_mistake_fails_and_is_named(mistake, seed):
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


def test_every_misconception_of_the_registry_is_exercised_by_a_learner_above():
    assert_every_misconception_named(NOTEBOOK, MISTAKES + INSIDE, judged)


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_the_exercises_written_from_their_steps_are_the_reference(name, rng):
    steps, learner = COMPOSITES[name]
    assert_written_from_steps(get(name, NOTEBOOK), steps, learner, judged, rng)


@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", INSIDE, ids=_inside_id)
def test_a_mistake_of_one_step_inside_an_exercise_is_named_as_its_own_exercise_names_it(mistake, seed):
    """affine_backward's, relu_backward's and tanh_backward's classic mistakes, each made at one step."""
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_every_step_mistake_is_made_by_a_learner_above(name):
    assert len([m for m in INSIDE if m.exercise == name]) >= 9
    assert not steps_left_out(name, NOTEBOOK, INSIDE)


# -- stubs, shapes, NaN, lists --------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_reads_not_implemented(name):
    assert_not_implemented(judged(stub, name))


def _replace(name: str, index: int, change: Callable[[np.ndarray], Any]) -> Callable[..., Any]:
    """The correct answer with output ``index`` passed through ``change``."""
    keys = ("W1", "b1", "W2", "b2")

    def learner(*args):
        out = CORRECT[name](*args)
        if isinstance(out, dict):
            return {**out, keys[index]: change(out[keys[index]])}
        if isinstance(out, tuple):
            return tuple(change(v) if i == index else v for i, v in enumerate(out))
        return change(out)

    return learner


# (exercise, index of a column output, index of the bias-like output)
COLUMNS = [
    ("affine_backward", 2, 1),
    ("relu_backward", 0, 0),
    ("sigmoid_backward", 0, 0),
    ("tanh_backward", 0, 0),
    ("affine_relu_backward", 2, 1),
    ("two_layer_mse_grads", 3, 1),
]


@pytest.mark.parametrize(("name", "column", "bias"), COLUMNS)
def test_a_row_in_place_of_a_column_gets_a_shape_message(name, column, bias):
    text = str(judged(_replace(name, column, lambda v: v.T), name))
    assert "but should have shape" in text and "(transposed?)" in text


@pytest.mark.parametrize(("name", "column", "bias"), COLUMNS)
def test_a_flat_bias_gets_a_shape_message(name, column, bias):
    text = str(judged(_replace(name, bias, lambda v: v.ravel()), name))
    assert "a flat 1-D array" in text and "keep it 2-D" in text


@pytest.mark.parametrize("name", list(CORRECT))
def test_nan_in_an_output_gets_a_nan_message(name):
    assert_fails_with(judged(_replace(name, 0, with_nan), name), "contains NaN")


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_list_in_place_of_an_array_gets_a_type_message(name):
    result = judged(_replace(name, 0, lambda v: np.asarray(v).tolist()), name)
    assert_fails_with(result, "should be a numpy array", "got a list")


def test_a_shape_error_relayed_from_the_grading_process_gets_the_hint():
    def call(inputs):
        raise LearnerRaised("raised ValueError: matmul: Input operand 1 has a mismatch (at line 3: W @ g)")

    result = judge(get("affine_backward", NOTEBOOK), call, np.random.default_rng(0))
    assert result.status == "error"
    assert "at line 3" in str(result) and "the gradient of x is Wᵀ g" in str(result)


def test_other_errors_are_reported_unchanged():
    def learner(g, x, W):
        raise KeyError("oops")

    text = str(judged(learner, "affine_backward"))
    assert "raised KeyError: 'oops'" in text and "Wᵀ g" not in text


# -- nothing leaks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
@pytest.mark.parametrize("how", ["scaled", "misconception"])
def test_no_verdict_shows_a_number_of_the_reference(name, how):
    exercise = get(name, NOTEBOOK)
    seen: list[dict[str, Any]] = []
    mistake = next(m for m in MISTAKES if m.exercise == name and m.status != "error")
    names = list(exercise.make_inputs(np.random.default_rng(0)))  # out here: the registry is refused

    def learner(*args):
        seen.append(dict(zip(names, args, strict=True)))
        if how == "misconception":
            return mistake.learner(*args)
        out = CORRECT[name](*args)
        if isinstance(out, dict):
            return {k: 1.5 * v + 0.25 for k, v in out.items()}
        if isinstance(out, tuple):
            return tuple(1.5 * v + 0.25 for v in out)
        return 1.5 * out + 0.25

    result = judged(learner, name)
    assert not result.passed and seen
    assert_no_number_shown(result, [output for inputs in seen for output in exercise.reference(**inputs)])
