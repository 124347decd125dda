"""Tests of notebook 00's warm-up exercise (``bpcourse.exercises.start_here``) and of the one
exercise in code of its prerequisites check (``center_features``).

The notebook's solutions earn the point on any seed, each classic mistake fails
with its own diagnosis, a stub reads "not implemented", and the warm-up is
graded in no other notebook. The predictions of the prerequisites check are
tested with every other prediction, in ``test_why_questions.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bpcourse.check import check, verdict
from bpcourse.exercises import REGISTRY, by_notebook, get
from bpcourse.exercises import start_here as sh
from bpcourse.exercises.core import Verdict

NOTEBOOK = "00_start_here"


def judged(function: Callable[..., Any], seed: int | None = 0) -> Verdict:
    return verdict(function, name="sub_backward", seed=seed, notebook=NOTEBOOK)


def sub_backward(upstream: float, x: float, y: float) -> tuple[float, float]:
    """The solution of the notebook."""
    return upstream * 1.0, upstream * -1.0


def test_every_exercise_of_the_notebook_is_worth_one_point() -> None:
    exercises = by_notebook(NOTEBOOK)
    assert exercises[0].name == "sub_backward"
    assert all(e.points == 1 for e in exercises)


def test_sub_backward_is_graded_in_no_other_notebook() -> None:
    assert [nb for nb, name in REGISTRY if name == "sub_backward"] == [NOTEBOOK]


@pytest.mark.parametrize("seed", [0, 1, 2, None])
def test_the_solution_earns_the_point(seed: int | None) -> None:
    result = judged(sub_backward, seed)
    assert result.status == "passed", str(result)
    assert result.score == result.max_score == 1


def test_the_notebook_binding_finds_it_by_the_function_name() -> None:
    assert check(sub_backward, notebook=NOTEBOOK).passed


def test_sign_not_flipped_is_diagnosed_and_keeps_half_the_point() -> None:
    result = judged(lambda upstream, x, y: (upstream, upstream))
    assert result.status == "partial", str(result)
    assert result.score == pytest.approx(0.5)
    dx, dy = result.lines
    assert dx.ok and not dy.ok
    assert "the minus sign belongs to y's local derivative" in dy.message
    assert "-1" in dy.message


def test_forgot_upstream_is_diagnosed_on_both_outputs() -> None:
    result = judged(lambda upstream, x, y: (1.0, -1.0))
    assert result.status == "failed", str(result)
    assert result.score == 0
    for line in result.lines:
        assert not line.ok
        assert "multiply it by the upstream gradient" in line.message


def test_an_unrecognised_mistake_gets_no_diagnosis() -> None:
    result = judged(lambda upstream, x, y: (upstream * x, -upstream * y))
    assert result.status == "failed", str(result)
    for line in result.lines:
        assert line.message == "has the wrong value"


def test_a_stub_reads_not_implemented() -> None:
    def stub(upstream: float, x: float, y: float) -> tuple[float, float]:
        raise NotImplementedError()

    result = judged(stub)
    assert result.status == "not implemented"
    assert result.score == 0
    assert "not implemented" in str(result)


def test_the_seeded_verdict_is_the_same_every_time() -> None:
    """The notebook stores the output of a check with seed=0."""

    def wrong(upstream: float, x: float, y: float) -> tuple[float, float]:
        return upstream, upstream

    assert str(judged(wrong)) == str(judged(wrong))


def test_inputs_keep_the_mistakes_apart_from_the_answer() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        inputs = sh.SUB_BACKWARD.make_inputs(rng)
        assert 1.5 <= abs(inputs["upstream"]) <= 3.0
        assert min(abs(inputs["x"]), abs(inputs["y"])) >= 0.3


# -- the prerequisites check: center_features (the predictions: test_why_questions.py) ---------------------
def center_features(X: np.ndarray) -> np.ndarray:
    """The solution of the notebook."""
    return X - X.mean(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2, None])
def test_center_features_solution_earns_the_point(seed: int | None) -> None:
    result = verdict(center_features, seed=seed, notebook=NOTEBOOK)
    assert result.status == "passed" and result.score == 1, str(result)


CENTERING_MISTAKES = {
    "the mean of a feature runs along its row": lambda X: X - X.mean(axis=0, keepdims=True),
    "the means lost their axis": lambda X: X - X.mean(axis=1),
    "each feature needs its own mean": lambda X: X - X.mean(),
    "a flat 1-D array": lambda X: X.mean(axis=1),
}


@pytest.mark.parametrize("phrase", CENTERING_MISTAKES)
@pytest.mark.parametrize("seed", [0, 1, None])
def test_center_features_mistakes_are_named_in_words(phrase: str, seed: int | None) -> None:
    result = verdict(CENTERING_MISTAKES[phrase], name="center_features", seed=seed, notebook=NOTEBOOK)
    assert result.status == "failed" and result.score == 0, str(result)
    assert phrase in str(result)
    assert "Check your prerequisites: numpy axes, keepdims and broadcasting" in str(result)


def test_center_features_inputs_are_square_batches_whose_features_have_different_means() -> None:
    exercise = get("center_features", NOTEBOOK)
    rng = np.random.default_rng(0)
    for _ in range(50):
        X = exercise.make_inputs(rng)["X"]
        n, B = X.shape
        assert n == B and 3 <= n <= 6
        means = X.mean(axis=1)
        assert np.ptp(means) > 0.1  # a mean over the wrong axis, or one mean for all, is far off
