"""Tests of the exercises of notebook 06 (``bpcourse.exercises.vanishing_and_exploding``).

For every exercise: a correct answer earns every point (including correct answers
written differently from the reference); each classic mistake, written as a learner
would write it, fails and the verdict names it; a stub reads "not implemented";
wrong lengths, shapes, types and NaN get messages of their own; no verdict shows a
number of the reference answer. ``init_weights`` is judged by statistics: its
tolerances are checked against the sampling distributions they are derived from,
and a uniform draw with the right variance is accepted with a note. The classic
mistakes of tanh_backward and affine_backward (notebook 03's learners), made at
one step of the residual block, are named there as those exercises name them. The last tests
grade whole notebooks through the real sandbox, so the inputs (lists of arrays, a
numpy Generator) and the outputs (a list of floats) are known to travel.
"""

from __future__ import annotations

import itertools
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
    mistakes_inside,
    steps_left_out,
    stub,
)
from test_exercises_03 import MISTAKES as MISTAKES_03
from test_exercises_03 import NOTEBOOK as NOTEBOOK_03
from test_exercises_03 import affine_backward as affine_backward_03
from test_exercises_03 import tanh_backward as tanh_backward_03

from bpcourse.check import verdict
from bpcourse.exercises import get
from bpcourse.exercises import vanishing_and_exploding as module
from bpcourse.exercises.core import call_directly, draw_checked_inputs, judge
from bpcourse.exercises.vanishing_and_exploding import RESIDUAL_STEPS as RESIDUAL_WHOLE

NOTEBOOK = "06_vanishing_and_exploding"
NORMS, INIT, RESIDUAL = "layer_grad_norms", "init_weights", "residual_block_backward"
judged = judging(NOTEBOOK)


# -- correct answers, as a learner writes them ------------------------------------------------------
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


PHI = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
PHI_PRIME = {
    "sigmoid": lambda z: sigmoid(z) * (1 - sigmoid(z)),
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0) * 1.0,
}


def _learner_norms(
    slope: Callable[[str, np.ndarray, np.ndarray], np.ndarray] = lambda act, z, a: PHI_PRIME[act](z),
    divide_by_batch: bool = True,
    measure: Callable[[np.ndarray, np.ndarray, np.ndarray], Any] = lambda d, a_prev, up: np.linalg.norm(d),
    first_layer_first: bool = True,
) -> Callable[..., list]:
    """A learner's loop: forward, then backward collecting one number per layer on the way back."""

    def learner(Ws, bs, x, y, activation):
        a, zs, acts = x, [], [x]
        for index, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = W @ a + b
            zs.append(z)
            a = z if index == len(Ws) - 1 else PHI[activation](z)
            acts.append(a)
        delta = (a - y) / (x.shape[1] if divide_by_batch else 1)
        found = [measure(delta, acts[-2], delta)]
        for index in range(len(Ws) - 1, 0, -1):
            upstream = Ws[index].T @ delta
            delta = upstream * slope(activation, zs[index - 1], acts[index])
            found.append(measure(delta, acts[index - 1], upstream))
        return found[::-1] if first_layer_first else found

    return learner


layer_grad_norms = _learner_norms()


def init_weights(fan_out, fan_in, scheme, rng):
    variance = 2 / (fan_in + fan_out) if scheme == "xavier" else 2 / fan_in
    return rng.standard_normal((fan_out, fan_in)) * np.sqrt(variance)


def residual_block_backward(u, x, W, b):
    a = np.tanh(W @ x + b)
    delta = u * (1 - a**2)
    return u + W.T @ delta, delta @ x.T, delta


CORRECT: dict[str, Callable[..., Any]] = {
    NORMS: layer_grad_norms,
    INIT: init_weights,
    RESIDUAL: residual_block_backward,
}


# Right answers written another way: they must pass too.
def norms_as_array_from_cached_activations(Ws, bs, x, y, activation):
    """φ′ from the cached a (a(1 − a), 1 − a², a > 0), and a numpy array instead of a list."""
    from_a = {"sigmoid": lambda a: a * (1 - a), "tanh": lambda a: 1 - a * a, "relu": lambda a: a > 0}
    norms = _learner_norms(slope=lambda act, z, a: from_a[act](a))(Ws, bs, x, y, activation)
    return np.array(norms)


def norms_with_the_engine(Ws, bs, x, y, activation):
    from bpcourse.tensor import Tensor, affine, mse

    a = Tensor(x, requires_grad=False)
    zs = []
    for index, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        z = affine(Tensor(W), a, Tensor(b))
        zs.append(z)
        a = z if index == len(Ws) - 1 else getattr(z, activation)()
    mse(a, y).backward()
    return tuple(np.float64(np.sqrt(np.sum(z.grad**2))) for z in zs)


def init_with_normal(fan_out, fan_in, scheme, rng):
    std = math.sqrt(2 / (fan_in + fan_out)) if scheme == "xavier" else math.sqrt(2 / fan_in)
    return rng.normal(0.0, std, size=(fan_out, fan_in)).astype(np.float32)


def residual_through_the_engine(u, x, W, b):
    from bpcourse.tensor import Tensor, affine

    xt, Wt, bt = Tensor(x), Tensor(W), Tensor(b)
    (xt + affine(Wt, xt, bt).tanh()).backward(u)
    return [xt.grad, Wt.grad, bt.grad]


ALTERNATIVES = [
    (NORMS, norms_as_array_from_cached_activations),
    (INIT, init_with_normal),
]


# -- classic mistakes, as a learner writes them -----------------------------------------------------
def _init_with(
    variance: Callable[[str, int, int], float] | None = None,
    draw: Callable[[np.random.Generator, tuple[int, int], float], np.ndarray] | None = None,
) -> Callable[..., Any]:
    def learner(fan_out, fan_in, scheme, rng):
        right = 2 / (fan_in + fan_out) if scheme == "xavier" else 2 / fan_in
        var = right if variance is None else variance(scheme, fan_out, fan_in)
        if draw is not None:
            return draw(rng, (fan_out, fan_in), var)
        return rng.standard_normal((fan_out, fan_in)) * np.sqrt(var)

    return learner


def _xavier(wrong: Callable[[int, int], float]) -> Callable[[str, int, int], float]:
    return lambda s, fo, fi: wrong(fo, fi) if s == "xavier" else 2 / fi


def _he(wrong: Callable[[int, int], float]) -> Callable[[str, int, int], float]:
    return lambda s, fo, fi: wrong(fo, fi) if s == "he" else 2 / (fi + fo)


def _residual_with(
    slope: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = lambda z, a, h: 1 - a**2,
    dx: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = lambda u, W, d: u + W.T @ d,
    dW: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda d, x: d @ x.T,
) -> Callable[..., Any]:
    def learner(u, x, W, b):
        z = W @ x + b
        a = np.tanh(z)
        d = u * slope(z, a, x + a)
        return dx(u, W, d), dW(d, x), d

    return learner


def _seeded_inside(rng, shape, var):
    return np.random.default_rng(0).normal(0, np.sqrt(var), shape)


def _slope_at_a(act, z, a):
    return PHI_PRIME[act](a)


def _formula_on_z(act, z, a):
    return {"sigmoid": z * (1 - z), "tanh": 1 - z**2, "relu": (z > 0) * 1.0}[act]


MISTAKES = [
    Mistake(NORMS, _learner_norms(first_layer_first=False), ("reverse order",)),
    Mistake(NORMS, _learner_norms(measure=lambda d, a_prev, up: np.linalg.norm(d @ a_prev.T)),
            ("norms of the weight gradients",)),
    Mistake(NORMS, _learner_norms(slope=_slope_at_a), ("taken at the activation a = φ(z)",)),
    Mistake(NORMS, _learner_norms(slope=_formula_on_z), ("fed the pre-activation z",)),
    Mistake(NORMS, _learner_norms(divide_by_batch=False), ("B times too large",)),
    Mistake(NORMS, _learner_norms(slope=lambda act, z, a: 1.0), ("φ′ is missing",)),
    Mistake(NORMS, _learner_norms(measure=lambda d, a_prev, up: np.linalg.norm(up)),
            ("the gradient at the activation",)),
    Mistake(NORMS, _learner_norms(measure=lambda d, a_prev, up: np.linalg.norm(d.sum(axis=1))),
            ("dL/db^l, which adds δ^l's columns up",)),
    Mistake(NORMS, _learner_norms(measure=lambda d, a_prev, up: np.sum(d**2)), ("squared norms",)),
    Mistake(INIT, _init_with(variance=lambda s, fo, fi: (2 / (fi + fo) if s == "xavier" else 2 / fi) ** 2),
            ("far too small", "the VARIANCE"), "partial", ("xavier", "he")),
    Mistake(INIT, lambda fo, fi, s, rng: rng.standard_normal((fo, fi)),
            ("plain standard-normal draws",), "partial", ("xavier", "he")),
    Mistake(INIT, _init_with(draw=lambda rng, shape, var: rng.uniform(-np.sqrt(var), np.sqrt(var), shape)),
            ("variance r²/3",), "partial", ("xavier", "he")),
    Mistake(INIT, _init_with(variance=_xavier(lambda fo, fi: 1 / fi)), ("LeCun's variance",), "partial",
            ("xavier",)),
    Mistake(INIT, _init_with(variance=_xavier(lambda fo, fi: 1 / fo)), ("only balances the backward pass",),
            "partial", ("xavier",)),
    Mistake(INIT, _init_with(variance=lambda s, fo, fi: 2 / fi), ("this is He's variance",), "partial",
            ("xavier",)),
    Mistake(INIT, _init_with(variance=_xavier(lambda fo, fi: 1 / (fi + fo))), ("half the Xavier variance",),
            "partial", ("xavier",)),
    Mistake(INIT, _init_with(variance=_he(lambda fo, fi: 1 / fi)), ("He doubles the variance",), "partial",
            ("he",)),
    Mistake(INIT, _init_with(variance=_he(lambda fo, fi: 2 / fo)), ("fan_in and fan_out are swapped",),
            "partial", ("he",)),
    Mistake(INIT, _init_with(variance=lambda s, fo, fi: 2 / (fi + fo)), ("this is Xavier's variance",),
            "partial", ("he",)),
    Mistake(INIT, _init_with(draw=lambda rng, shape, var: np.random.randn(*shape) * np.sqrt(var)),  # noqa: NPY002
            ("do not come from rng",), "partial", ("uses rng",)),
    Mistake(INIT, _init_with(draw=_seeded_inside),
            ("the same whatever rng is",), "partial", ("uses rng",)),
    Mistake(RESIDUAL, _residual_with(dx=lambda u, W, d: W.T @ d), ("missing the identity path", "merge"),
            "partial", ("dx",)),
    Mistake(RESIDUAL, _residual_with(dx=lambda u, W, d: u), ("only the skip's contribution u",), "partial",
            ("dx",)),
    Mistake(RESIDUAL, _residual_with(dx=lambda u, W, d: u + W @ d), ("via the TRANSPOSE",), "partial",
            ("dx",)),
    Mistake(RESIDUAL, _residual_with(slope=lambda z, a, h: 1 - np.tanh(a) ** 2),
            ("in the tanh step", "φ′(a) used where φ′(z) belongs")),
    Mistake(RESIDUAL, _residual_with(slope=lambda z, a, h: 1 - z**2), ("fed the pre-activation z",)),
    Mistake(RESIDUAL, _residual_with(slope=lambda z, a, h: 1 - h**2), ("the output of the whole block",)),
    Mistake(RESIDUAL, _residual_with(slope=lambda z, a, h: 1.0), ("tanh's slope is missing",)),
    Mistake(RESIDUAL, _residual_with(dW=lambda d, x: x @ d.T), ("in the affine step", "this is x gᵀ"),
            "partial", ("dW",)),
]  # fmt: skip


def _id(mistake: Mistake) -> str:
    return f"{mistake.exercise}-{mistake.phrases[0][:30]}"


# -- affine_backward's and tanh_backward's mistakes inside the block ----------------------------------------
def residual_from(tanh=tanh_backward_03, affine=affine_backward_03):
    """residual_block_backward written with notebook 03's step functions, then the merge."""

    def learner(u, x, W, b):
        delta = tanh(u, np.tanh(W @ x + b))
        dW, db, through_F = affine(delta, x, W)
        return u + through_F, dW, db

    return learner


RESIDUAL_STEPS = {"tanh": ("tanh_backward", NOTEBOOK_03), "affine": ("affine_backward", NOTEBOOK_03)}
INSIDE = mistakes_inside(RESIDUAL, NOTEBOOK, RESIDUAL_STEPS, MISTAKES_03, residual_from)


def _inside_id(mistake: Mistake) -> str:
    where, what = mistake.phrases[0].split("): ", 1)
    return f"{where.split(' (the rule')[0]}: {what[:24]}"


# -- the registry -----------------------------------------------------------------------------------
def test_the_notebook_registers_its_three_exercises_in_order_with_their_points():
    exercises = coded(NOTEBOOK)
    assert [e.name for e in exercises] == list(CORRECT)
    assert [e.points for e in exercises] == [3, 2, 3]


# -- inputs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("batch", [1, 4])
def test_network_inputs_line_up_stay_off_kinks_and_both_oracles_agree(activation, batch, rng):
    exercise = get(NORMS, NOTEBOOK)
    for _ in range(5):
        inputs = module.network_inputs(rng, batch, activation)
        Ws, bs, x, y = inputs["Ws"], inputs["bs"], inputs["x"], inputs["y"]
        sizes = [x.shape[0], *(W.shape[0] for W in Ws)]
        assert 3 <= len(Ws) <= 5 and all(a != b for a, b in itertools.pairwise(sizes))
        assert all(W.shape == (m, n) for W, n, m in zip(Ws, sizes, sizes[1:], strict=False))
        assert all(b.shape == (m, 1) for b, m in zip(bs, sizes[1:], strict=True))
        assert x.shape == (sizes[0], batch) and y.shape == (sizes[-1], batch)
        zs, _ = module.forward_pass(Ws, bs, x, activation)
        if activation == "relu":
            assert all(np.all(np.abs(z) > 0.1) for z in zs[:-1])
        (engine,) = exercise.reference(**inputs)
        (numeric,) = exercise.numeric(**inputs)
        assert np.allclose(engine, numeric, rtol=1e-6, atol=1e-9)
        assert np.allclose(engine, layer_grad_norms(**inputs), rtol=1e-12)
        assert np.min(engine) > 1e-2


def test_the_oracle_with_one_example_nudges_the_biases():
    """With B = 1, ‖dL/db^l‖ is ‖δ^l‖: the oracle's shortcut holds."""
    inputs = module.network_inputs(np.random.default_rng(5), 1, "tanh")
    (numeric,) = module._norms_numeric(**inputs)
    assert np.allclose(numeric, layer_grad_norms(**inputs), rtol=1e-7)


def test_the_trials_are_one_example_then_each_activation_on_a_batch():
    make = module._norm_schedule()
    rng = np.random.default_rng(0)
    drawn = [make(rng) for _ in range(4)]
    assert drawn[0]["x"].shape[1] == 1
    assert [d["activation"] for d in drawn[1:]] == ["sigmoid", "tanh", "relu"]
    assert all(d["x"].shape[1] > 1 for d in drawn[1:])


def test_residual_inputs_are_square_far_from_symmetric_and_both_oracles_agree(rng):
    exercise = get(RESIDUAL, NOTEBOOK)
    for _ in range(10):
        inputs, expected = draw_checked_inputs(exercise, rng)
        W = inputs["W"]
        n = W.shape[0]
        assert W.shape == (n, n) and inputs["x"].shape == inputs["b"].shape == inputs["u"].shape == (n, 1)
        assert np.linalg.norm(W - W.T) > 0.5 * np.linalg.norm(W)
        for got, want in zip(residual_block_backward(**inputs), expected, strict=True):
            assert np.allclose(got, want, rtol=1e-12)


def test_init_draws_are_large_with_one_fan_much_larger_than_the_other():
    for seed in range(20):
        shapes = module._init_shapes(np.random.default_rng(seed))
        assert len(shapes) == module.DRAWS
        assert {fo > fi for fo, fi in shapes} == {True, False}
        assert all(max(s) / min(s) >= 8 for s in shapes)
        assert sum(fo * fi for fo, fi in shapes) >= 120_000


def test_the_init_tolerances_follow_from_the_sampling_distributions():
    """The numbers in the module's comment: a correct answer practically never fails."""
    per_matrix = module.SMALL[0] * module.LARGE[0]
    pooled = module.DRAWS * per_matrix
    assert (per_matrix, pooled) == (40_000, 120_000)
    variance_sd, mean_sd = math.sqrt(2 / per_matrix), 1 / math.sqrt(pooled)
    assert variance_sd < 0.0071 and mean_sd < 0.0029
    # Two-sided normal tail probabilities: the chance a correct answer fails each check.
    p_variance = math.erfc(module.VARIANCE_RTOL / variance_sd / math.sqrt(2))
    p_mean = math.erfc(module.MEAN_ATOL / mean_sd / math.sqrt(2))
    assert p_variance < 2e-12 and p_mean < 1e-11
    schemes = 2
    assert schemes * (module.DRAWS * p_variance + p_mean) < 3e-11
    # Every classic variance mistake is far outside the tolerance (factors 2, 3, 8, ...).
    assert module.VARIANCE_RTOL + module.MATCH_RTOL < 0.5


def test_the_init_reference_is_the_engine_and_passes_its_own_judge():
    exercise = get(INIT, NOTEBOOK)

    def engine(fan_out, fan_in, scheme, rng):
        return exercise.reference(fan_out, fan_in, scheme, rng)[0]

    # Straight to the judge: as a learner's function it would be refused (it calls the registry).
    assert judge(exercise, call_directly(engine), np.random.default_rng(0)).passed


# -- correct answers --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_answer_earns_every_point(name, seed):
    result = judged(CORRECT[name], name, seed)
    assert_full_points(result, get(name, NOTEBOOK).points)
    assert all(not line.message for line in result.lines), str(result)


@pytest.mark.parametrize(("name", "learner"), ALTERNATIVES, ids=[f.__name__ for _, f in ALTERNATIVES])
def test_right_answers_written_differently_pass_too(name, learner):
    for seed in (0, 1):
        result = judged(learner, name, seed)
        assert result.passed, str(result)


# Right answers that the engine computes: no marks (the exercises refuse bpcourse.tensor).
ENGINE_ANSWERS = [(NORMS, norms_with_the_engine), (RESIDUAL, residual_through_the_engine)]


@pytest.mark.parametrize(("name", "learner"), ENGINE_ANSWERS, ids=[f.__name__ for _, f in ENGINE_ANSWERS])
def test_right_answers_computed_by_the_engine_score_nothing(name, learner):
    result = judged(learner, name)
    assert result.status == "delegated" and result.score == 0, str(result)
    assert "uses bpcourse.tensor.Tensor: write" in str(result)


def test_without_a_seed_a_correct_answer_still_passes():
    for name, function in CORRECT.items():
        assert verdict(function, name=name, notebook=NOTEBOOK).passed


def test_a_correct_init_passes_on_many_seeds():
    for seed in range(30):
        assert judged(init_weights, INIT, seed).passed


def test_a_uniform_draw_with_the_right_variance_is_accepted_with_a_note():
    uniform = _init_with(draw=lambda rng, shape, var: rng.uniform(-np.sqrt(3 * var), np.sqrt(3 * var), shape))
    result = judged(uniform, INIT)
    assert result.passed and result.score == 2, str(result)
    assert "accepted: a uniform draw with the right variance" in str(result)


def test_another_distribution_with_the_right_variance_is_accepted_with_a_note():
    laplace = _init_with(draw=lambda rng, shape, var: rng.laplace(0.0, np.sqrt(var / 2), shape))
    result = judged(laplace, INIT)
    assert result.passed, str(result)
    assert "not normally distributed" in str(result)


# -- classic mistakes -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", MISTAKES, ids=_id)
def test_each_classic_mistake_fails_and_is_named(mistake, seed):
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


def test_every_misconception_of_the_registry_is_exercised_by_a_learner_above():
    assert_every_misconception_named(NOTEBOOK, MISTAKES + INSIDE, judged)


def test_the_block_written_from_its_steps_is_the_reference(rng):
    exercise = get(RESIDUAL, NOTEBOOK)
    for _ in range(10):
        inputs = exercise.make_inputs(rng)
        for right, ours in zip(exercise.reference(**inputs), RESIDUAL_WHOLE.variant()(**inputs), strict=True):
            assert np.allclose(right, ours, rtol=1e-12, atol=1e-12)
    assert judged(residual_from(), RESIDUAL).passed


@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", INSIDE, ids=_inside_id)
def test_a_mistake_of_one_step_inside_the_block_is_named_as_its_exercise_names_it(mistake, seed):
    """tanh_backward's and affine_backward's classic mistakes (notebook 03's learners), one step each."""
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


def test_every_step_mistake_of_the_block_is_made_by_a_learner_above():
    assert len(INSIDE) == 9
    assert not steps_left_out(RESIDUAL, NOTEBOOK, INSIDE)


def test_the_slope_at_a_mistake_is_invisible_for_relu_and_caught_on_the_other_activations():
    """relu′(a) = relu′(z) away from the kink, so only sigmoid and tanh expose it: both are tried."""
    learner = _learner_norms(slope=_slope_at_a)
    inputs = module.network_inputs(np.random.default_rng(3), 3, "relu")
    assert np.allclose(learner(**inputs), layer_grad_norms(**inputs))
    assert not judged(learner, NORMS).passed


# -- what layer_grad_norms returns ---------------------------------------------------------------------
def _changed(change: Callable[[list, dict], Any]) -> Callable[..., Any]:
    def learner(Ws, bs, x, y, activation):
        return change(layer_grad_norms(Ws, bs, x, y, activation), dict(Ws=Ws, bs=bs, x=x, y=y))

    return learner


# The δ^l themselves, where their norms belong.
_deltas = _learner_norms(measure=lambda delta, a_prev, upstream: delta)


SHAPES_OF_ANSWERS = [
    (_changed(lambda norms, inp: [np.linalg.norm(inp["x"]) * 0 + 1.0, *norms]), "the input x has no δ"),
    (_changed(lambda norms, inp: norms[1:]), "the output layer counts too"),
    (_changed(lambda norms, inp: norms + [1.0, 1.0]), "one norm per layer, first layer first"),
    (_deltas, "not δ^l itself"),
    (_changed(lambda norms, inp: float(sum(norms))), "returned a single float"),
    (_changed(lambda norms, inp: [str(v) for v in norms]), "is a str"),
    (_changed(lambda norms, inp: {"norms": norms}), "returned a single dict"),
]


@pytest.mark.parametrize(("learner", "phrase"), SHAPES_OF_ANSWERS, ids=[p for _, p in SHAPES_OF_ANSWERS])
def test_a_wrongly_shaped_list_of_norms_is_explained(learner, phrase):
    result = judged(learner, NORMS)
    assert result.status == "failed" and result.score == 0
    assert phrase in str(result), str(result)


def test_norms_as_a_column_or_as_size_one_arrays_are_read_as_numbers():
    assert judged(_changed(lambda norms, inp: np.array(norms).reshape(-1, 1)), NORMS).passed
    assert judged(_changed(lambda norms, inp: [np.array([[v]]) for v in norms]), NORMS).passed


def test_a_learner_that_reverses_the_weight_list_in_place_is_still_diagnosed():
    def reverses_in_place(Ws, bs, x, y, activation):
        norms = layer_grad_norms(Ws, bs, x, y, activation)
        Ws.reverse()
        bs.reverse()
        return norms[::-1]

    assert "reverse order" in str(judged(reverses_in_place, NORMS))


def test_a_nan_norm_gets_a_nan_message():
    assert_fails_with(judged(_changed(lambda norms, inp: [float("nan"), *norms[1:]]), NORMS), "contains NaN")


# -- what init_weights returns -------------------------------------------------------------------------
BROKEN_MATRICES = [
    (lambda fo, fi, s, rng: init_weights(fi, fo, s, rng), "transposed: W^l maps n_{l-1} inputs"),
    (lambda fo, fi, s, rng: (init_weights(fo, fi, s, rng) * 100).astype(int), "has dtype int64"),
    (lambda fo, fi, s, rng: init_weights(fo, fi, s, rng).tolist(), "should be a numpy array"),
    (lambda fo, fi, s, rng: np.repeat(init_weights(fo, 1, s, rng), fi, axis=1) * np.sqrt(fo / fo),
     "different values among its"),
    (lambda fo, fi, s, rng: np.abs(init_weights(fo, fi, s, rng)), "do not average 0"),
    (lambda fo, fi, s, rng: np.full((fo, fi), np.nan), "contains NaN"),
]  # fmt: skip


@pytest.mark.parametrize(("learner", "phrase"), BROKEN_MATRICES, ids=[p for _, p in BROKEN_MATRICES])
def test_a_broken_matrix_is_explained(learner, phrase):
    result = judged(learner, INIT)
    assert not result.passed and result.score < 2
    assert phrase in str(result), str(result)


def test_a_variance_far_from_every_known_mistake_gets_the_ratio_alone():
    result = judged(
        _init_with(variance=lambda s, fo, fi: 7.0 * (2 / (fi + fo) if s == "xavier" else 2 / fi)), INIT
    )
    text = str(result)
    assert (
        "about 7 times the target 2/(fan_in + fan_out)" in text
        and "about 7 times the target 2/fan_in" in text
    )
    assert "init_weights" in text and " — " not in text


def test_variances_that_depend_on_the_shape_are_described_as_a_range():
    result = judged(_init_with(variance=lambda s, fo, fi: 1 / fo), INIT)
    assert "between 1/" in str(result) and "(it depends on the matrix's shape)" in str(result), str(result)
    assert "only balances the backward pass" in str(result)


# -- stubs and errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_reads_not_implemented(name):
    assert_not_implemented(judged(stub, name))


def test_an_init_that_raises_is_an_error_with_the_learners_message():
    def picky(fan_out, fan_in, scheme, rng):
        raise ValueError(f"unknown scheme {scheme}")

    result = judged(picky, INIT)
    assert result.status == "error" and "raised ValueError: unknown scheme" in str(result)


@pytest.mark.parametrize(("index", "change", "phrase"), [
    (0, lambda v: v.ravel(), "a flat 1-D array"),
    (1, lambda v: v.tolist(), "got a list"),
    (2, lambda v: np.full_like(v, np.nan), "contains NaN"),
])  # fmt: skip
def test_residual_outputs_of_the_wrong_kind_are_named(index, change, phrase):
    def learner(u, x, W, b):
        out = list(residual_block_backward(u, x, W, b))
        out[index] = change(out[index])
        return tuple(out)

    result = judged(learner, RESIDUAL)
    assert not result.passed and phrase in str(result), str(result)


# -- nothing leaks -----------------------------------------------------------------------------------
def _scaled(out: Any) -> Any:
    if isinstance(out, tuple):
        return tuple(_scaled(v) for v in out)
    if isinstance(out, list):
        return [1.5 * v + 0.25 for v in out]
    return 1.5 * out + 0.25


@pytest.mark.parametrize("name", [NORMS, RESIDUAL])
@pytest.mark.parametrize("how", ["scaled", "misconception"])
def test_no_verdict_shows_a_number_of_the_reference(name, how):
    exercise = get(name, NOTEBOOK)
    seen: list[dict[str, Any]] = []
    mistake = next(m for m in MISTAKES if m.exercise == name)
    keys = list(exercise.make_inputs(np.random.default_rng(0)))

    def learner(*args):
        seen.append(dict(zip(keys, args, strict=True)))
        return mistake.learner(*args) if how == "misconception" else _scaled(CORRECT[name](*args))

    result = judged(learner, name)
    assert not result.passed and seen
    assert_no_number_shown(result, [output for inputs in seen for output in exercise.reference(**inputs)])


# -- through the sandbox -----------------------------------------------------------------------------
SOURCES = {
    NORMS: (
        "def layer_grad_norms(Ws, bs, x, y, activation):\n"
        "    phi = {'sigmoid': lambda z: 1 / (1 + np.exp(-z)), 'tanh': np.tanh,\n"
        "           'relu': lambda z: np.maximum(z, 0)}\n"
        "    a, zs = x, []\n"
        "    for l, (W, b) in enumerate(zip(Ws, bs)):\n"
        "        zs.append(W @ a + b)\n"
        "        a = zs[-1] if l == len(Ws) - 1 else phi[activation](zs[-1])\n"
        "    delta = (a - y) / x.shape[1]\n"
        "    norms = [np.linalg.norm(delta)]\n"
        "    for l in range(len(Ws) - 1, 0, -1):\n"
        "        s = phi[activation](zs[l - 1])\n"
        "        slope = {'sigmoid': s * (1 - s), 'tanh': 1 - s**2, 'relu': zs[l - 1] > 0}[activation]\n"
        "        delta = (Ws[l].T @ delta) * slope\n"
        "        norms.append(np.linalg.norm(delta))\n"
        "    return norms[::-1]"
    ),
    INIT: (
        "def init_weights(fan_out, fan_in, scheme, rng):\n"
        "    var = 2 / (fan_in + fan_out) if scheme == 'xavier' else 2 / fan_in\n"
        "    return rng.standard_normal((fan_out, fan_in)) * np.sqrt(var)"
    ),
    RESIDUAL: (
        "def residual_block_backward(u, x, W, b):\n"
        "    a = np.tanh(W @ x + b)\n"
        "    d = u * (1 - a**2)\n"
        "    return u + W.T @ d, d @ x.T, d"
    ),
}
WRONG_SOURCES = {
    NORMS: SOURCES[NORMS].replace("return norms[::-1]", "return norms"),
    INIT: SOURCES[INIT].replace("rng.standard_normal((fan_out, fan_in))", "np.random.randn(fan_out, fan_in)"),
    RESIDUAL: SOURCES[RESIDUAL].replace("u + W.T @ d", "W.T @ d"),
}


def test_a_correct_notebook_gets_full_marks_through_the_sandbox(tmp_path):
    assert_full_marks(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, SOURCES, seed=11), 8)


def test_mistakes_are_diagnosed_through_the_sandbox(tmp_path):
    result = by_exercise(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, WRONG_SOURCES, seed=11))
    text = {name: lines_text(entry) for name, entry in result.items()}
    assert result[NORMS]["status"] == "failed" and "reverse order" in text[NORMS]
    assert result[INIT]["status"] == "partial" and "uses rng: two generators in the same state" in text[INIT]
    assert result[RESIDUAL]["status"] == "partial" and "missing the identity path" in text[RESIDUAL]
