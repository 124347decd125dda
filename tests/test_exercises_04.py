"""Tests of the exercises of notebook 04 (``bpcourse.exercises.softmax_cross_entropy``).

For every exercise: a correct answer earns every point; each classic mistake,
written as a learner would write it, fails and the verdict names it; a stub
reads "not implemented"; wrong shapes, NaN and lists get a message of their
own; no verdict shows a number of the reference answer; and the whole notebook
is graded through the real sandbox, where NaN answers must travel too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from helpers import (
    SEEDS,
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
    mistakes_inside,
    steps_left_out,
    stub,
    with_nan,
)
from helpers import Mistake as BaseMistake

from bpcourse.check import verdict
from bpcourse.exercises import get
from bpcourse.exercises.core import GradingStop, MissingFunction, draw_checked_inputs, judge
from bpcourse.exercises.softmax_cross_entropy import CE_STEPS, LARGE

NOTEBOOK = "04_softmax_cross_entropy"
judged = judging(NOTEBOOK)


# -- correct answers -------------------------------------------------------------------------
def softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_ce(z, y):
    shifted = z - z.max()
    log_p = shifted - np.log(np.exp(shifted).sum())
    return float(-np.sum(y * log_p)), np.exp(log_p) - y


def softmax_jacobian(z):
    p = softmax(z).ravel()
    return np.diag(p) - np.outer(p, p)


CORRECT: dict[str, Callable[..., Any]] = {f.__name__: f for f in (softmax, softmax_ce, softmax_jacobian)}


# -- classic mistakes, as a learner writes them ------------------------------------------------
def log_softmax(z):
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _shifted(z, shift, axis):
    e = np.exp(z - shift)
    return e / e.sum(axis=axis, keepdims=axis is not None)


def _ce_with(loss=None, dz=None):
    """softmax_ce with the loss and/or dz replaced by a function of (z, y, p)."""

    def learner(z, y):
        right_loss, right_dz = softmax_ce(z, y)
        p = softmax(z)
        return (right_loss if loss is None else loss(z, y, p)), (right_dz if dz is None else dz(z, y, p))

    return learner


def _jac_with(f):
    def learner(z):
        p = softmax(z).ravel()
        return f(p, z.ravel())

    return learner


LARGE_LINE = "large logits (±1000)"
BATCH_LINE = "a batch whose columns differ by 1000"


@dataclass
class Mistake(BaseMistake):
    status: str = "partial"  # most mistakes here cost some of the lines, not all


MISTAKES = [
    # softmax
    Mistake("softmax", naive_softmax, ("contains NaN", "exp overflows", "subtract each column's max"),
            wrong=(LARGE_LINE, BATCH_LINE)),
    Mistake("softmax", lambda z: _shifted(z, z.max(), 0),
            ("contains NaN", "the max was taken over the whole array", "taken down axis 0"),
            wrong=(BATCH_LINE,)),
    Mistake("softmax", lambda z: _shifted(z, z.max(axis=1, keepdims=True), 1),
            ("normalised along the wrong axis",), wrong=("probabilities",)),
    Mistake("softmax", lambda z: _shifted(z, z.max(), None),
            ("the whole batch sums to 1",), wrong=("probabilities",)),
    Mistake("softmax", lambda z: _shifted(z, z.max(axis=1, keepdims=True), 0),
            ("ONE number per column",), wrong=("probabilities", BATCH_LINE)),
    Mistake("softmax", lambda z: np.exp(z - z.max(axis=0, keepdims=True)),
            ("divided by its column sum",), wrong=("probabilities",)),
    # softmax_ce: the gradient
    Mistake("softmax_ce", _ce_with(dz=lambda z, y, p: y - p), ("the sign is flipped", "uphill"),
            wrong=("dz",)),
    Mistake("softmax_ce", _ce_with(dz=lambda z, y, p: p), ("this is p alone",), wrong=("dz",)),
    Mistake("softmax_ce", _ce_with(dz=lambda z, y, p: -y / p), ("∂L/∂p = -y/p",),
            wrong=("dz", LARGE_LINE)),  # -y/p also divides by probabilities that underflowed to 0
    Mistake("softmax_ce", _ce_with(dz=lambda z, y, p: (p - y).ravel()),
            ("a flat 1-D array", "lost its second axis"), wrong=("dz",)),
    # softmax_ce: stability
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.sum(y * np.log(naive_softmax(z)))),
                                   dz=lambda z, y, p: naive_softmax(z) - y),
            ("is nan", "exp(z) overflows", "subtract max(z)"), wrong=(LARGE_LINE,)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.sum(y * np.log(p)))),
            ("is inf", "underflowed to 0", "log-sum-exp"), wrong=(LARGE_LINE,)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.sum(y * np.log(p + 1e-12)))),
            ("loss has the wrong value", "even with a small epsilon"), wrong=(LARGE_LINE,)),
    # softmax_ce: the loss
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.sum(y * z))),
            ("the log was taken of exp(z)",), wrong=("loss",)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.sum(p * np.log(y)))),
            ("labels and probabilities are swapped",), wrong=("loss",)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.log(np.sum(y * p)))),
            ("the log goes inside the sum",), wrong=("loss",)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(np.sum(y * log_softmax(z)))),
            ("the minus sign is missing",), wrong=("loss",)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.mean(y * log_softmax(z)))),
            ("a mean divides it by K",), wrong=("loss",)),
    # softmax_ce: labels taken as one-hot (the label's class alone); through log(p), that class's
    # probability underflows on the large example too
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-log_softmax(z)[np.argmax(y), 0])),
            ("only handles one-hot labels", "L = -Σ_i y_i log p_i"), wrong=("loss",)),
    Mistake("softmax_ce", _ce_with(loss=lambda z, y, p: float(-np.log(p[np.argmax(y), 0]))),
            ("only handles one-hot labels", "is inf", "underflowed to 0"), wrong=("loss", LARGE_LINE)),
    Mistake("softmax_ce", _ce_with(dz=lambda z, y, p: p - np.eye(len(y))[:, [np.argmax(y)]]),
            ("this gradient only handles one-hot labels", "∂L/∂z = p - y"), wrong=("dz",)),
    # softmax_jacobian
    Mistake("softmax_jacobian", _jac_with(lambda p, z: np.diag(p * (1 - p))),
            ("only the diagonal",), "failed"),
    Mistake("softmax_jacobian", _jac_with(lambda p, z: -np.outer(p, p)),
            ("the diagonal term diag(p) is missing",), "failed"),
    Mistake("softmax_jacobian", _jac_with(lambda p, z: np.outer(p, p) - np.diag(p)),
            ("the sign is flipped",), "failed"),
    Mistake("softmax_jacobian", _jac_with(lambda p, z: np.eye(p.size) - np.outer(np.ones_like(p), p)),
            ("the Jacobian of log p",), "failed"),
    Mistake("softmax_jacobian", _jac_with(lambda p, z: np.diag(z) - np.outer(z, z)),
            ("applied to the logits z",), "failed"),
]  # fmt: skip


# -- the softmax's mistakes inside softmax_ce -----------------------------------------------------------
def ce_from(softmax=softmax):
    """softmax_ce written with a softmax function, as a learner who calls their own writes it."""

    def learner(z, y):
        p = softmax(z)
        return float(-np.sum(y * np.log(p))), p - y

    return learner


INSIDE = mistakes_inside("softmax_ce", NOTEBOOK, {"softmax": ("softmax", NOTEBOOK)}, MISTAKES, ce_from)


def _id(mistake: Mistake) -> str:
    return f"{mistake.exercise}-{mistake.phrases[-1][:24]}"


# -- the registry ----------------------------------------------------------------------------------
def test_the_notebook_registers_its_three_exercises_in_order():
    exercises = coded(NOTEBOOK)
    assert [e.name for e in exercises] == list(CORRECT)
    assert [e.points for e in exercises] == [2, 3, 2]


# -- inputs ----------------------------------------------------------------------------------------
def test_ordinary_inputs_are_agreed_by_both_oracles_and_labels_are_distributions(rng):
    for name in ("softmax_ce", "softmax_jacobian"):
        exercise = get(name, NOTEBOOK)
        for _ in range(20):
            inputs, expected = draw_checked_inputs(exercise, rng)
            z = inputs["z"]
            assert z.ndim == 2 and z.shape[1] == 1 and z.shape[0] >= 3
            if name == "softmax_ce":
                y = inputs["y"]
                assert y.shape == z.shape and np.all(y >= 0) and np.isclose(y.sum(), 1.0)
                assert isinstance(expected[0], float) and expected[1].shape == z.shape
            else:
                assert expected[0].shape == (z.shape[0], z.shape[0])


def test_the_large_logit_example_overflows_a_naive_softmax_and_the_oracles_agree(rng):
    from bpcourse.exercises.softmax_cross_entropy import _ce_large_inputs

    exercise = get("softmax_ce", NOTEBOOK)
    for _ in range(10):
        inputs = _ce_large_inputs(rng)
        z, y = inputs["z"], inputs["y"]
        assert z.max() > 709.8 and z.max() - z.min() > 745  # exp overflows, some p underflow to 0
        assert np.all(y > 0)
        label = np.argmax(y)
        assert z.max() - z[label, 0] > 1600 and np.exp(z[label, 0] - z.max()) == 0  # its p underflows
        loss, dz = exercise.reference(**inputs)
        numeric_loss, numeric_dz = exercise.numeric(**inputs)
        assert np.isfinite(loss) and np.allclose(loss, numeric_loss)
        assert np.allclose(dz, numeric_dz, atol=1e-6)


def test_the_softmax_reference_is_stable_on_the_judges_inputs():
    exercise = get("softmax", NOTEBOOK)
    z = np.array([[LARGE + 3.0, 0.5], [LARGE - 2.0, -1.0], [LARGE, 2.0]])
    (p,) = exercise.reference(z=z)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=0), 1.0)


# -- correct answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_answer_earns_every_point(name, seed):
    assert_full_points(judged(CORRECT[name], name, seed), get(name, NOTEBOOK).points)


def test_without_a_seed_a_correct_answer_still_passes():
    for function in CORRECT.values():
        assert verdict(function, notebook=NOTEBOOK).passed


def test_other_correct_ways_pass_too():
    """log-sum-exp written differently, a transposed Jacobian (it is symmetric), a (1, 1) loss."""

    def softmax_via_log(z):
        m = z.max(axis=0, keepdims=True)
        return np.exp(z - m - np.log(np.exp(z - m).sum(axis=0, keepdims=True)))

    def ce_with_array_loss(z, y):
        loss, dz = softmax_ce(z, y)
        return np.array([[loss]]), dz

    assert judged(softmax_via_log, "softmax").passed
    assert judged(ce_with_array_loss, "softmax_ce").passed
    assert judged(lambda z: softmax_jacobian(z).T, "softmax_jacobian").passed


# -- classic mistakes ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", MISTAKES, ids=_id)
def test_each_classic_mistake_fails_and_is_named(mistake, seed):
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


def test_every_misconception_of_the_registry_is_exercised_by_a_learner_above():
    assert_every_misconception_named(NOTEBOOK, MISTAKES + INSIDE, judged)


def test_softmax_ce_written_from_its_softmax_step_is_the_reference(rng):
    exercise = get("softmax_ce", NOTEBOOK)
    for _ in range(10):
        inputs = exercise.make_inputs(rng)
        for right, ours in zip(exercise.reference(**inputs), CE_STEPS.variant()(**inputs), strict=True):
            assert np.allclose(right, ours, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", INSIDE, ids=_id)
def test_a_mistake_of_the_softmax_inside_softmax_ce_is_named_as_softmax_names_it(mistake, seed):
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)
    assert "in the softmax step" in str(judged(mistake.learner, mistake.exercise, seed))


def test_every_softmax_mistake_of_softmax_ce_is_made_by_a_learner_above():
    assert len(INSIDE) == 3
    assert not steps_left_out("softmax_ce", NOTEBOOK, INSIDE)


@pytest.mark.parametrize("seed", range(40))
def test_a_loss_through_the_labels_probability_fails_the_large_example_whatever_the_seed(seed):
    """The large example puts the label on a logit far below the max: its probability underflows."""
    one_hot_only = next(m for m in MISTAKES if "underflowed to 0" in m.phrases and "is inf" in m.phrases
                        and "only handles one-hot labels" in m.phrases)  # fmt: skip
    result = judged(one_hot_only.learner, "softmax_ce", seed)
    assert result.score == 1.0 and [line.ok for line in result.lines] == [False, True, False], str(result)


def test_the_global_max_costs_only_the_batch_line():
    result = judged(lambda z: _shifted(z, z.max(), 0), "softmax")
    assert result.score == 1.5


# -- stubs, shapes, NaN, lists, errors -------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_reads_not_implemented(name):
    assert_not_implemented(judged(stub, name))


def _replace(name: str, index: int, change: Callable[[Any], Any]) -> Callable[..., Any]:
    """The correct answer with output ``index`` passed through ``change``."""

    def learner(*args):
        out = CORRECT[name](*args)
        if isinstance(out, tuple):
            return tuple(change(v) if i == index else v for i, v in enumerate(out))
        return change(out)

    return learner


ARRAY_OUTPUT = [("softmax", 0), ("softmax_ce", 1), ("softmax_jacobian", 0)]


@pytest.mark.parametrize(("name", "index"), ARRAY_OUTPUT)
def test_nan_in_an_output_gets_a_nan_message(name, index):
    assert_fails_with(judged(_replace(name, index, with_nan), name), "contains NaN")


@pytest.mark.parametrize(("name", "index"), ARRAY_OUTPUT)
def test_a_list_in_place_of_an_array_gets_a_type_message(name, index):
    result = judged(_replace(name, index, lambda v: np.asarray(v).tolist()), name)
    assert_fails_with(result, "should be a numpy array", "got a list")


def test_a_row_in_place_of_a_column_gets_a_shape_message():
    text = str(judged(_replace("softmax_ce", 1, lambda v: v.T), "softmax_ce"))
    assert "but should have shape" in text and "(transposed?)" in text


def test_a_loss_that_is_not_a_number_gets_a_type_message():
    result = judged(_replace("softmax_ce", 0, lambda v: "small"), "softmax_ce")
    assert not result.passed and "should be a number, got str" in str(result)


def test_a_single_value_where_two_belong_gets_a_message():
    result = judged(lambda z, y: softmax(z) - y, "softmax_ce")
    assert result.status == "failed"
    assert "should return 2 values (loss, dz)" in str(result)


def test_an_error_in_the_learners_code_is_reported():
    def learner(z):
        raise KeyError("oops")

    result = judged(learner, "softmax")
    assert result.status == "error" and "raised KeyError: 'oops'" in str(result)


@pytest.mark.parametrize("name", ["softmax", "softmax_ce"])
def test_the_custom_judges_let_grading_stops_through(name):
    def missing(inputs):
        raise MissingFunction(f"no function called {name}")

    def timed_out(inputs):
        raise GradingStop("ran past its time limit")

    exercise = get(name, NOTEBOOK)
    assert judge(exercise, missing, np.random.default_rng(0)).status == "missing"
    result = judge(exercise, timed_out, np.random.default_rng(0))
    assert result.status == "error" and "time limit" in str(result)


# -- nothing leaks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
@pytest.mark.parametrize("how", ["scaled", "misconception"])
def test_no_verdict_shows_a_number_of_the_reference(name, how):
    exercise = get(name, NOTEBOOK)
    keys = list(exercise.make_inputs(np.random.default_rng(0)))
    seen: list[dict[str, Any]] = []
    mistake = next(m for m in MISTAKES if m.exercise == name)

    def learner(*args):
        seen.append(dict(zip(keys, args, strict=True)))
        if how == "misconception":
            return mistake.learner(*args)
        out = CORRECT[name](*args)
        if isinstance(out, tuple):
            return tuple(1.5 * v + 0.25 for v in out)
        return 1.5 * out + 0.25

    result = judged(learner, name)
    assert not result.passed and seen
    values = [value for inputs in seen for value in (*inputs.values(), *exercise.reference(**inputs))]
    # Exact zeros and ones (one-hot labels) say nothing.
    assert_no_number_shown(result, values, ignore=lambda value: abs(value) < 1e-3 or value.is_integer())


# -- through the grading sandbox -------------------------------------------------------------------
SOURCES = {
    "softmax": (
        "def softmax(z):\n"
        "    e = np.exp(z - z.max(axis=0, keepdims=True))\n"
        "    return e / e.sum(axis=0, keepdims=True)"
    ),
    "softmax_ce": (
        "def softmax_ce(z, y):\n"
        "    shifted = z - z.max()\n"
        "    log_p = shifted - np.log(np.exp(shifted).sum())\n"
        "    return float(-np.sum(y * log_p)), np.exp(log_p) - y"
    ),
    "softmax_jacobian": (
        "def softmax_jacobian(z):\n    p = softmax(z).ravel()\n    return np.diag(p) - np.outer(p, p)"
    ),
}
NAIVE = "def softmax(z):\n    e = np.exp(z)\n    return e / e.sum(axis=0, keepdims=True)"


def test_the_sandbox_grades_correct_solutions_with_full_marks_and_carries_nan_back(tmp_path):
    full = sum(e.points for e in coded(NOTEBOOK))
    assert_full_marks(grade_notebook(tmp_path / "a.ipynb", NOTEBOOK, SOURCES, seed=3), full)

    naive = {**SOURCES, "softmax": NAIVE}
    entry = by_exercise(grade_notebook(tmp_path / "b.ipynb", NOTEBOOK, naive, seed=3))["softmax"]
    assert entry["score"] == 1 and entry["status"] == "partial"
    text = " ".join(line["message"] for line in entry["lines"])
    assert "contains NaN" in text and "subtract each column's max" in text
