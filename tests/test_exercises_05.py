"""Tests of the exercises of notebook 05 (``bpcourse.exercises.minibatches_and_training``).

For every exercise: a correct answer earns every point (including correct
answers written differently from the reference); each classic mistake, written
as a learner would write it, fails and the verdict names it; a stub reads "not
implemented"; wrong shapes, NaN and lists get a message of their own; the
structure of ``mlp_loss_and_grads``'s answer is explained when it is wrong; no
verdict shows a number of the reference answer. The classic mistakes of the
softmax (notebook 04's learners), made inside softmax_ce_batch, and those of
softmax_ce_batch, affine_backward_batch and relu_backward (notebook 03's
learners), made at one step of the whole model, are named there as those
exercises name them. The last tests grade a whole notebook through the real
sandbox, so the inputs (a dict of arrays among them) and the outputs are known
to travel between processes.
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
    assert_full_marks,
    assert_full_points,
    assert_mistake_named,
    assert_no_number_shown,
    assert_not_implemented,
    assert_written_from_steps,
    by_exercise,
    coded,
    grade_notebook,
    judging,
    lines_text,
    mistakes_inside,
    steps_left_out,
    stub,
    with_nan,
)
from test_exercises_03 import MISTAKES as MISTAKES_03
from test_exercises_03 import NOTEBOOK as NOTEBOOK_03
from test_exercises_03 import relu_backward
from test_exercises_04 import MISTAKES as MISTAKES_04
from test_exercises_04 import NOTEBOOK as NOTEBOOK_04

from bpcourse.check import verdict
from bpcourse.exercises import get
from bpcourse.exercises.core import draw_checked_inputs
from bpcourse.exercises.minibatches_and_training import MLP_STEPS as MLP_WHOLE
from bpcourse.exercises.minibatches_and_training import SOFTMAX_CE_BATCH_STEPS as SOFTMAX_CE_BATCH_WHOLE

NOTEBOOK = "05_minibatches_and_training"
judged = judging(NOTEBOOK)


def softmax_columns(Z: np.ndarray) -> np.ndarray:
    e = np.exp(Z - Z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


# -- correct answers -------------------------------------------------------------------------------
def affine_backward_batch(G, X, W):
    return G @ X.T, G.sum(axis=1, keepdims=True), W.T @ G


def softmax_ce_batch(Z, Y):
    B = Z.shape[1]
    shifted = Z - Z.max(axis=0, keepdims=True)
    log_P = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return float(-np.sum(Y * log_P) / B), (np.exp(log_P) - Y) / B


def mlp_loss_and_grads(params, X, Y):
    Z1 = params["W1"] @ X + params["b1"]
    A1 = np.maximum(Z1, 0)
    loss, D2 = softmax_ce_batch(params["W2"] @ A1 + params["b2"], Y)
    dW2, db2, dA1 = affine_backward_batch(D2, A1, params["W2"])
    dW1, db1, _ = affine_backward_batch(dA1 * (Z1 > 0), X, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


CORRECT: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (affine_backward_batch, softmax_ce_batch, mlp_loss_and_grads)
}


# Right answers written another way: they must pass too.
def affine_by_loop(G, X, W):
    dW = np.zeros(W.shape)
    db = np.zeros((W.shape[0], 1))
    for k in range(X.shape[1]):
        dW += G[:, [k]] @ X[:, [k]].T
        db += G[:, [k]]
    return dW, db, W.T @ G


def softmax_via_log_of_p(Z, Y):
    P = softmax_columns(Z)
    return -np.mean(np.sum(Y * np.log(P), axis=0)), (P - Y) / Z.shape[1]


def mlp_mask_from_activation(params, X, Y):
    """relu(z) > 0 exactly when z > 0: a mask read from A1 is not a mistake."""
    A1 = np.maximum(params["W1"] @ X + params["b1"], 0)
    loss, D2 = softmax_ce_batch(params["W2"] @ A1 + params["b2"], Y)
    D1 = (params["W2"].T @ D2) * (A1 > 0)
    grads = {"W1": D1 @ X.T, "b1": D1.sum(1, keepdims=True), "W2": D2 @ A1.T, "b2": D2.sum(1, keepdims=True)}
    return np.float64(loss), grads


def mlp_with_extras_and_in_place_update(params, X, Y):
    """A list instead of a tuple, an extra key, and the parameters changed afterwards."""
    loss, grads = mlp_loss_and_grads(params, X, Y)
    for name in grads:
        params[name] -= 0.5 * grads[name]
    return [np.array([[loss]]), {**grads, "note": "extra keys are ignored"}]


ALTERNATIVES = [
    ("affine_backward_batch", affine_by_loop),
    ("softmax_ce_batch", softmax_via_log_of_p),
    ("mlp_loss_and_grads", mlp_mask_from_activation),
    ("mlp_loss_and_grads", mlp_with_extras_and_in_place_update),
]


# -- classic mistakes, as a learner writes them -----------------------------------------------------
def _mlp_with(
    scale: Callable[[int], float] = lambda B: 1 / B,
    sign: float = 1.0,
    local: Callable[[np.ndarray], Any] = lambda Z1: Z1 > 0,
    bias: Callable[[np.ndarray], np.ndarray] = lambda D: D.sum(axis=1, keepdims=True),
    dW1: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda D1, X: D1 @ X.T,
    dW2: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = lambda D2, A1, Z1: D2 @ A1.T,
    loss_change: Callable[[float, int, int], float] = lambda loss, K, B: loss,
) -> Callable[..., Any]:
    def learner(params, X, Y):
        Z1 = params["W1"] @ X + params["b1"]
        A1 = np.maximum(Z1, 0)
        Z2 = params["W2"] @ A1 + params["b2"]
        P = softmax_columns(Z2)
        loss = -np.sum(Y * np.log(P)) / X.shape[1]
        D2 = sign * (P - Y) * scale(X.shape[1])
        D1 = (params["W2"].T @ D2) * local(Z1)
        grads = {"W1": dW1(D1, X), "b1": bias(D1), "W2": dW2(D2, A1, Z1), "b2": bias(D2)}
        return loss_change(loss, *Y.shape), grads

    return learner


def _softmax_with(
    dZ: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None,
    loss: Callable[[np.ndarray, np.ndarray, int], float] | None = None,
) -> Callable[..., Any]:
    def learner(Z, Y):
        B = Z.shape[1]
        P = softmax_columns(Z)
        right_loss = -np.sum(Y * np.log(P)) / B
        return (
            right_loss if loss is None else loss(P, Y, B),
            (P - Y) / B if dZ is None else dZ(P, Y, B),
        )

    return learner


def softmax_wrong_axis(Z, Y):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    P = e / e.sum(axis=1, keepdims=True)
    return -np.sum(Y * np.log(P)) / Z.shape[1], (P - Y) / Z.shape[1]


def softmax_unshifted(Z, Y):
    P = np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True)
    return -np.sum(Y * np.log(P)) / Z.shape[1], (P - Y) / Z.shape[1]


def softmax_global_shift(Z, Y):
    """Shifted by the largest logit of the whole batch: columns far below it underflow to 0/0."""
    e = np.exp(Z - Z.max())
    P = e / e.sum(axis=0, keepdims=True)
    return -np.sum(Y * np.log(P)) / Z.shape[1], (P - Y) / Z.shape[1]


def affine_assigned_in_loop(G, X, W):
    for k in range(X.shape[1]):
        dW = G[:, [k]] @ X[:, [k]].T  # = where += belongs
        db = G[:, [k]]
    return dW, db, W.T @ G


AFFINE = "affine_backward_batch"
SOFTMAX = "softmax_ce_batch"
MLP = "mlp_loss_and_grads"

MISTAKES = [
    # affine_backward_batch
    Mistake(AFFINE, lambda G, X, W: (X @ G.T, G.sum(1, keepdims=True), W.T @ G),
            ("(transposed?)", "this is X Gᵀ", "dW = G Xᵀ"), "partial", ("dW",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G, W.T @ G),
            ("but should have shape", "db has one column per example", "merge rule"), "partial", ("db",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.mean(axis=1, keepdims=True), W.T @ G),
            ("db is the mean of G's columns", "already inside G"), "partial", ("db",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.mean(axis=1), W.T @ G),
            ("1-D array", "db is the mean of G's columns"), "partial", ("db",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.sum(axis=1), W.T @ G),
            ("keep it 2-D", "db lost its second axis"), "partial", ("db",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.sum(axis=0, keepdims=True), W.T @ G),
            ("sums over the wrong axis", "axis 1"), "partial", ("db",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.sum(axis=0), W.T @ G),
            ("1-D array", "sums over the wrong axis"), "partial", ("db",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T / X.shape[1], G.sum(1, keepdims=True), W.T @ G / X.shape[1]),
            ("B times too small", "the 1/B of a mean loss belongs to the loss"), "partial", ("dW", "dX")),
    Mistake(AFFINE, affine_assigned_in_loop,
            ("the last example alone", "ADD UP"), "partial", ("dW", "db")),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.sum(1, keepdims=True), G.T @ W),
            ("(transposed?)", "one example per ROW"), "partial", ("dX",)),
    Mistake(AFFINE, lambda G, X, W: (G @ X.T, G.sum(1, keepdims=True), W @ G),
            ("raised ValueError", "The gradient of X is Wᵀ G", "W G does not fit"), "error"),
    # softmax_ce_batch
    Mistake(SOFTMAX, _softmax_with(dZ=lambda P, Y, B: P - Y),
            ("dZ is B times too large", "(P - Y) / B"), "partial", ("dZ",)),
    Mistake(SOFTMAX, _softmax_with(loss=lambda P, Y, B: -np.sum(Y * np.log(P))),
            ("the SUM of the per-example losses",), "partial", ("mean_loss",)),
    Mistake(SOFTMAX, _softmax_with(loss=lambda P, Y, B: -np.mean(Y * np.log(P))),
            ("a mean over the whole (K, B) array",), "partial", ("mean_loss",)),
    Mistake(SOFTMAX, _softmax_with(loss=lambda P, Y, B: np.sum(Y * np.log(P)) / B),
            ("the loss has the wrong sign",), "partial", ("mean_loss",)),
    Mistake(SOFTMAX, _softmax_with(dZ=lambda P, Y, B: (Y - P) / B),
            ("the sign of dZ is flipped",), "partial", ("dZ",)),
    Mistake(SOFTMAX, softmax_wrong_axis,
            ("normalised along the wrong axis", "axis 0"), "failed", ("mean_loss", "dZ", "large logits")),
    Mistake(SOFTMAX, softmax_unshifted,
            ("NaN or inf", "exp overflows", "each column's OWN maximum"), "partial", ("large logits",)),
    Mistake(SOFTMAX, softmax_global_shift,
            ("NaN or inf", "underflows", "each column's OWN maximum"), "partial", ("large logits",)),
    # mlp_loss_and_grads
    Mistake(MLP, _mlp_with(local=lambda Z1: 1.0),
            ("the ReLU mask is missing",), "partial", ("W1", "b1")),
    Mistake(MLP, _mlp_with(local=lambda Z1: np.maximum(Z1, 0)),
            ("in the ReLU step", "this multiplies by relu(z)"), "partial", ("W1", "b1")),
    Mistake(MLP, _mlp_with(bias=lambda D: D),
            ("but should have shape", "one column per example"), "partial", ("b1", "b2")),
    Mistake(MLP, _mlp_with(scale=lambda B: 1.0),
            ("B times too large", "(P - Y) / B"), "partial", ("W1", "b1", "W2", "b2")),
    Mistake(MLP, _mlp_with(sign=-1.0),
            ("in the loss", "the sign of dZ is flipped"), "partial", ("W1", "b1", "W2", "b2")),
    Mistake(MLP, _mlp_with(dW1=lambda D1, X: X @ D1.T),
            ("(transposed?)", "in layer 1's affine step", "this is X Gᵀ"), "partial", ("W1",)),
    Mistake(MLP, _mlp_with(dW2=lambda D2, A1, Z1: A1 @ D2.T),
            ("(transposed?)", "in layer 2's affine step", "this is X Gᵀ"), "partial", ("W2",)),
    Mistake(MLP, _mlp_with(dW2=lambda D2, A1, Z1: D2 @ Z1.T),
            ("dW2 used Z1",), "partial", ("W2",)),
    Mistake(MLP, _mlp_with(loss_change=lambda loss, K, B: loss * B),
            ("in the loss", "the SUM of the per-example losses"), "partial", ("loss",)),
    Mistake(MLP, _mlp_with(loss_change=lambda loss, K, B: loss / K),
            ("a mean over the whole (K, B) array",), "partial", ("loss",)),
    Mistake(MLP, _mlp_with(loss_change=lambda loss, K, B: -loss),
            ("the loss has the wrong sign",), "partial", ("loss",)),
    Mistake(MLP, lambda params, X, Y: mlp_loss_and_grads({**params, "W2": params["W2"].T}, X, Y),
            ("raised ValueError",), "error"),
]  # fmt: skip


# -- the same mistakes inside the whole model ---------------------------------------------------------
def mlp_from(
    loss=softmax_ce_batch, layer2=affine_backward_batch, relu=relu_backward, layer1=affine_backward_batch
):
    """mlp_loss_and_grads written with the step functions, as a learner who calls their own writes it."""

    def learner(params, X, Y):
        Z1 = params["W1"] @ X + params["b1"]
        A1 = np.maximum(Z1, 0)
        value, D2 = loss(params["W2"] @ A1 + params["b2"], Y)
        dW2, db2, dA1 = layer2(D2, A1, params["W2"])
        D1 = relu(dA1, Z1)
        dW1, db1, _ = layer1(D1, X, params["W1"])
        return value, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    return learner


def softmax_ce_batch_from(softmax=softmax_columns):
    """softmax_ce_batch written with a softmax function (notebook 04's exercise)."""

    def learner(Z, Y):
        P = softmax(Z)
        return -np.sum(Y * np.log(P)) / Z.shape[1], (P - Y) / Z.shape[1]

    return learner


SOFTMAX_STEPS = {"softmax": ("softmax", NOTEBOOK_04)}
MLP_STEPS = {
    "loss": (SOFTMAX, NOTEBOOK),
    "layer2": (AFFINE, NOTEBOOK),
    "relu": ("relu_backward", NOTEBOOK_03),
    "layer1": (AFFINE, NOTEBOOK),
}
SOFTMAX_INSIDE = mistakes_inside(SOFTMAX, NOTEBOOK, SOFTMAX_STEPS, MISTAKES_04, softmax_ce_batch_from)
# The softmax's mistakes inside softmax_ce_batch, inside the model's loss, are mistakes of its loss step too.
INSIDE = [
    *SOFTMAX_INSIDE,
    *mistakes_inside(MLP, NOTEBOOK, MLP_STEPS, MISTAKES + SOFTMAX_INSIDE + MISTAKES_03, mlp_from),
]
COMPOSITES = {SOFTMAX: (SOFTMAX_CE_BATCH_WHOLE, softmax_ce_batch_from), MLP: (MLP_WHOLE, mlp_from)}


def _id(mistake: Mistake) -> str:
    return f"{mistake.exercise}-{mistake.phrases[-1][:28]}"


def _inside_id(mistake: Mistake) -> str:
    wheres, what = mistake.phrases[0].split("): ")[:-1], mistake.phrases[0].split("): ")[-1]
    return f"{mistake.exercise}-{', '.join(w.split(' (the rule')[0] for w in wheres)}: {what[:24]}"


# -- the registry -----------------------------------------------------------------------------------
def test_the_notebook_registers_its_three_exercises_in_order_with_their_points():
    exercises = coded(NOTEBOOK)
    assert [e.name for e in exercises] == list(CORRECT)
    assert [e.points for e in exercises] == [3, 2, 4]


# -- inputs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_inputs_have_distinct_sizes_stay_off_kinks_and_both_oracles_agree(name, rng):
    exercise = get(name, NOTEBOOK)
    for _ in range(15):
        inputs, expected = draw_checked_inputs(exercise, rng)
        if name == AFFINE:
            (m, n), (m2, B), (n2, B2) = inputs["W"].shape, inputs["G"].shape, inputs["X"].shape
            assert (m, n, B) == (m2, n2, B2) and len({m, n, B}) == 3
        elif name == SOFTMAX:
            K, B = inputs["Z"].shape
            assert inputs["Y"].shape == (K, B) and K != B
            assert np.array_equal(inputs["Y"].sum(axis=0), np.ones(B))
            assert np.unique(inputs["Y"].argmax(axis=0)).size > 1
            assert isinstance(expected[0], float)
        else:
            params = inputs["params"]
            (h, n), (K, h2) = params["W1"].shape, params["W2"].shape
            B = inputs["X"].shape[1]
            assert h == h2 and len({n, h, K, B}) == 4
            assert params["b1"].shape == (h, 1) and params["b2"].shape == (K, 1)
            assert inputs["Y"].shape == (K, B)
            Z1 = params["W1"] @ inputs["X"] + params["b1"]
            assert np.all(np.abs(Z1) > 0.1) and (Z1 > 0).any() and (Z1 < 0).any()
        for value in expected:
            assert isinstance(value, float) or value.dtype == np.float64


def test_the_large_logits_really_overflow_a_naive_softmax():
    from bpcourse.exercises.minibatches_and_training import _large_logit_inputs

    Z = _large_logit_inputs(np.random.default_rng(0))["Z"]
    assert np.all(np.abs(Z) > 700) and (Z > 0).any() and (Z < 0).any()
    with np.errstate(all="ignore"):
        assert not np.all(np.isfinite(softmax_unshifted(Z, np.eye(*Z.shape))[1]))


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
    for function in CORRECT.values():
        assert verdict(function, notebook=NOTEBOOK).passed


# -- classic mistakes -------------------------------------------------------------------------------
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
    """The softmax's mistakes inside softmax_ce_batch; softmax_ce_batch's, affine_backward_batch's and
    relu_backward's inside the model, one step each."""
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


@pytest.mark.parametrize(("name", "count"), [(SOFTMAX, 4), (MLP, 31)])
def test_every_step_mistake_is_made_by_a_learner_above(name, count):
    assert len([m for m in INSIDE if m.exercise == name]) >= count
    assert not steps_left_out(name, NOTEBOOK, INSIDE)


def test_a_mistake_seen_on_ordinary_logits_is_not_counted_again_at_large_logits():
    result = judged(_softmax_with(dZ=lambda P, Y, B: P - Y), SOFTMAX)
    assert [line.ok for line in result.lines] == [True, False, True]
    assert result.score == pytest.approx(2 * 2 / 3, abs=1e-3)


def test_large_logits_are_tried_only_once_something_is_right():
    def wrong_everywhere(Z, Y):
        return -1.0, np.zeros_like(Z)

    result = judged(wrong_everywhere, SOFTMAX)
    assert result.status == "failed" and result.score == 0
    assert "not tried yet" in str(result)


def test_an_error_raised_only_at_large_logits_is_reported_on_that_line():
    def refuses_large(Z, Y):
        if np.abs(Z).max() > 100:
            raise OverflowError("logits too large")
        return softmax_ce_batch(Z, Y)

    result = judged(refuses_large, SOFTMAX)
    assert result.status == "partial"
    assert "raised OverflowError: logits too large" in str(result)


# -- what mlp_loss_and_grads returns ---------------------------------------------------------------
def _grads_only(params, X, Y):
    return mlp_loss_and_grads(params, X, Y)[1]


STRUCTURE = [
    (_grads_only, "returned the gradients alone"),
    (lambda p, X, Y: {"loss": mlp_loss_and_grads(p, X, Y)[0], "grads": mlp_loss_and_grads(p, X, Y)[1]},
     "returned one dict (keys 'loss', 'grads')"),
    (lambda p, X, Y: mlp_loss_and_grads(p, X, Y)[0], "returned a single float"),
    (lambda p, X, Y: (*mlp_loss_and_grads(p, X, Y), 0), "but returned 3"),
    (lambda p, X, Y: mlp_loss_and_grads(p, X, Y)[::-1], "the two values are swapped"),
    (lambda p, X, Y: (1.0, list(_grads_only(p, X, Y).values())), "grads should be a dict"),
    (lambda p, X, Y: (1.0, {"grads": _grads_only(p, X, Y)}), "nested one level too deep"),
    (lambda p, X, Y: (1.0, {"layer1": {"W": 0, "b": 0}, "layer2": {"W": 0, "b": 0}}),
     "dicts under 'layer1', 'layer2'"),
    (lambda p, X, Y: (1.0, {"d" + k: v for k, v in _grads_only(p, X, Y).items()}),
     "grads has no 'W1', 'b1', 'W2', 'b2'"),
    (lambda p, X, Y: (1.0, {k: v for k, v in _grads_only(p, X, Y).items() if k != "b2"}),
     "grads has no 'b2'"),
]  # fmt: skip


@pytest.mark.parametrize(("learner", "phrase"), STRUCTURE, ids=[p for _, p in STRUCTURE])
def test_a_wrongly_structured_answer_is_explained(learner, phrase):
    result = judged(learner, MLP)
    assert result.status == "failed" and result.score == 0
    assert phrase in str(result), str(result)


def test_a_gradient_that_is_not_an_array_is_named():
    def tensors(params, X, Y):
        loss, grads = mlp_loss_and_grads(params, X, Y)
        return loss, {**grads, "W2": {"value": grads["W2"]}}

    result = judged(tensors, MLP)
    assert [line.what for line in result.lines if not line.ok] == ["W2"]
    assert "should be a numpy array of shape" in str(result) and "got dict" in str(result)


# -- stubs, shapes, NaN, lists ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_reads_not_implemented(name):
    assert_not_implemented(judged(stub, name))


def _replace(name: str, key: Any, change: Callable[[Any], Any]) -> Callable[..., Any]:
    """The correct answer with one output passed through ``change`` (key: an index, or a dict key)."""

    def learner(*args):
        out = CORRECT[name](*args)
        if isinstance(key, str):
            loss, grads = out
            return loss, {**grads, key: change(grads[key])}
        return tuple(change(v) if i == key else v for i, v in enumerate(out))

    return learner


BIASES = [(AFFINE, 1), (MLP, "b1"), (MLP, "b2")]


@pytest.mark.parametrize(("name", "key"), BIASES)
def test_a_flat_bias_gradient_gets_a_shape_message(name, key):
    text = str(judged(_replace(name, key, lambda v: v.ravel()), name))
    assert "a flat 1-D array" in text and "keep it 2-D" in text


@pytest.mark.parametrize(("name", "key"), [(AFFINE, 2), (SOFTMAX, 1), (MLP, "W1")])
def test_a_transposed_array_gets_a_shape_message(name, key):
    text = str(judged(_replace(name, key, lambda v: v.T), name))
    assert "but should have shape" in text and "(transposed?)" in text


@pytest.mark.parametrize(("name", "key"), [(AFFINE, 0), (SOFTMAX, 0), (SOFTMAX, 1), (MLP, "W2")])
def test_nan_in_an_output_gets_a_nan_message(name, key):
    result = judged(_replace(name, key, with_nan), name)
    assert not result.passed
    assert "contains NaN" in str(result) or "is nan" in str(result)


@pytest.mark.parametrize(("name", "key"), [(AFFINE, 0), (SOFTMAX, 1), (MLP, "b1")])
def test_a_list_in_place_of_an_array_gets_a_type_message(name, key):
    result = judged(_replace(name, key, lambda v: np.asarray(v).tolist()), name)
    assert_fails_with(result, "should be a numpy array", "got a list")


def test_a_per_example_loss_vector_is_not_a_number():
    def per_example(Z, Y):
        loss, dZ = softmax_ce_batch(Z, Y)
        return -np.sum(Y * np.log(softmax_columns(Z)), axis=0), dZ

    result = judged(per_example, SOFTMAX)
    assert "mean_loss: should be a number" in str(result)


# -- nothing leaks -----------------------------------------------------------------------------------
def _scaled(out: Any) -> Any:
    if isinstance(out, dict):
        return {k: 1.5 * v + 0.25 for k, v in out.items()}
    if isinstance(out, tuple):
        return tuple(_scaled(v) for v in out)
    return 1.5 * out + 0.25


@pytest.mark.parametrize("name", list(CORRECT))
@pytest.mark.parametrize("how", ["scaled", "misconception"])
def test_no_verdict_shows_a_number_of_the_reference(name, how):
    exercise = get(name, NOTEBOOK)
    seen: list[dict[str, Any]] = []
    mistake = next(m for m in MISTAKES if m.exercise == name and m.status != "error")
    names = list(exercise.make_inputs(np.random.default_rng(0)))  # out here: the registry is refused

    def learner(*args):
        seen.append(dict(zip(names, args, strict=True)))
        return mistake.learner(*args) if how == "misconception" else _scaled(CORRECT[name](*args))

    result = judged(learner, name)
    assert not result.passed and seen
    assert_no_number_shown(result, [output for inputs in seen for output in exercise.reference(**inputs)])


# -- through the sandbox -----------------------------------------------------------------------------
SOURCES = {
    AFFINE: "def affine_backward_batch(G, X, W):\n    return G @ X.T, G.sum(axis=1, keepdims=True), W.T @ G",
    SOFTMAX: (
        "def softmax_ce_batch(Z, Y):\n"
        "    shifted = Z - Z.max(axis=0, keepdims=True)\n"
        "    log_P = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))\n"
        "    return -np.sum(Y * log_P) / Z.shape[1], (np.exp(log_P) - Y) / Z.shape[1]"
    ),
    MLP: (
        "def mlp_loss_and_grads(params, X, Y):\n"
        "    Z1 = params['W1'] @ X + params['b1']\n"
        "    A1 = np.maximum(Z1, 0)\n"
        "    loss, D2 = softmax_ce_batch(params['W2'] @ A1 + params['b2'], Y)\n"
        "    dW2, db2, dA1 = affine_backward_batch(D2, A1, params['W2'])\n"
        "    dW1, db1, _ = affine_backward_batch(dA1 * (Z1 > 0), X, params['W1'])\n"
        "    return loss, {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2}"
    ),
}
WRONG_SOURCES = {
    AFFINE: "def affine_backward_batch(G, X, W):\n    return G @ X.T, G.sum(axis=1, keepdims=True), W @ G",
    SOFTMAX: (
        "def softmax_ce_batch(Z, Y):\n"
        "    P = np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True)\n"
        "    return float(-np.sum(Y * np.log(P)) / Z.shape[1]), (P - Y) / Z.shape[1]"
    ),
    MLP: (
        "def mlp_loss_and_grads(params, X, Y):\n"
        "    A1 = np.maximum(params['W1'] @ X + params['b1'], 0)\n"
        "    Z2 = params['W2'] @ A1 + params['b2']\n"
        "    P = np.exp(Z2 - Z2.max(0)) / np.exp(Z2 - Z2.max(0)).sum(0)\n"
        "    D2 = (P - Y) / X.shape[1]\n"
        "    D1 = params['W2'].T @ D2\n"
        "    grads = {'layer1': {'W': D1 @ X.T}, 'layer2': {'W': D2 @ A1.T}}\n"
        "    return -np.sum(Y * np.log(P)) / X.shape[1], grads"
    ),
}


def test_a_correct_notebook_gets_full_marks_through_the_sandbox(tmp_path):
    assert_full_marks(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, SOURCES, seed=11), 9)


def test_mistakes_are_diagnosed_through_the_sandbox(tmp_path):
    result = by_exercise(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, WRONG_SOURCES, seed=11))
    text = {name: lines_text(entry) for name, entry in result.items()}
    assert result[AFFINE]["status"] == "error"
    assert "ValueError" in text[AFFINE] and "W G does not fit" in text[AFFINE]
    assert result[SOFTMAX]["status"] == "partial"
    assert "large logits: with very large logits the result is NaN or inf" in text[SOFTMAX]
    assert result[MLP]["status"] == "failed"
    assert "nested one level too deep" in text[MLP]


def test_a_numpy_nan_loss_travels_through_the_sandbox(tmp_path):
    sources = {
        **SOURCES,
        SOFTMAX: WRONG_SOURCES[SOFTMAX].replace("return float(-np.sum(Y * np.log(P)) / Z.shape[1])",
                                                "return -np.sum(Y * np.log(P)) / Z.shape[1]"),
    }  # fmt: skip
    assert sources[SOFTMAX] != WRONG_SOURCES[SOFTMAX]
    result = by_exercise(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, sources, seed=11))
    assert result[SOFTMAX]["status"] == "partial", result[SOFTMAX]
