"""Predictions (``bpcourse.exercises.prediction``): why-questions and the prerequisites check.

Every prediction of the registry is judged with its right answer (passed, full
points, the explanation shown), with each of its registered wrong answers (0
points, that answer's hint, neither the explanation nor the right answer
shown) and with answers that are not answers at all. The verdicts depend on
the answer alone: the same under every seed. The mechanism's own rules (how
a letter, a shape, a sign or a number is read) are tested on a question made
up here.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from bpcourse.check import verdict
from bpcourse.exercises import REGISTRY, by_notebook
from bpcourse.exercises.core import call_directly, judge
from bpcourse.exercises.prediction import ANSWER, Prediction, predict

PREDICTIONS = {key: e for key, e in REGISTRY.items() if isinstance(e.judge, Prediction)}
IDS = [f"{nb[:2]}-{name}" for nb, name in PREDICTIONS]

# The topics the course's why-questions must cover, each with the question that covers it.
REQUIRED = {
    "why reverse order": ("02_merges_and_traversal", "why_reverse_order"),
    "why a bias gradient is a sum over the batch": ("05_minibatches_and_training", "why_bias_gradient_sums"),
    "what a flipped sign does to training": ("05_minibatches_and_training", "flipped_sign_training"),
    "why p - y needs each label column to sum to 1": ("04_softmax_cross_entropy", "why_labels_sum_to_one"),
    "when forward mode beats reverse mode": ("07_cost_of_backprop", "when_forward_mode_wins"),
    "why residual paths help": ("06_vanishing_and_exploding", "why_residual_helps"),
    "when residual paths do not help": ("06_vanishing_and_exploding", "when_residual_explodes"),
    "what = computes at a merge": ("08_build_your_own_engine", "assign_at_merge"),
    "why leaves accumulate across passes": ("08_build_your_own_engine", "why_leaves_accumulate"),
    "the shape of a layer's upstream gradient": ("09_modular_layers_and_digits", "upstream_shape"),
    "what weight decay does to W": ("09_modular_layers_and_digits", "decay_factor"),
    "the shape of dK for S = QᵀK": ("10_rules_transformers_need", "key_gradient_shape"),
    "what clipping by global norm does to each gradient": ("10_rules_transformers_need", "clipped_norm"),
}


def answering(value: Any, name: str) -> Any:
    """A learner's function called ``name`` that returns ``value``."""

    def learner() -> Any:
        return value

    learner.__name__ = name
    return learner


def judged(key: tuple[str, str], value: Any, seed: int | None = 0) -> Any:
    notebook, name = key
    return verdict(answering(value, name), name=name, seed=seed, notebook=notebook)


def test_every_notebook_from_00_to_10_has_why_questions_and_the_required_topics_are_covered() -> None:
    per_notebook = {nb: [n for (b, n) in PREDICTIONS if b == nb] for nb, _ in PREDICTIONS}
    assert sorted(nb[:2] for nb in per_notebook) == [f"{i:02d}" for i in range(11)]
    assert all(len(per_notebook[nb]) >= 2 for nb in per_notebook if nb[:2] in ("08", "09", "10"))
    for topic, key in REQUIRED.items():
        assert key in PREDICTIONS, topic
    kinds = {e.judge.kind for e in PREDICTIONS.values()}
    assert kinds == {"choice", "shape", "sign", "number"}


@pytest.mark.parametrize("key", PREDICTIONS, ids=IDS)
def test_the_right_answer_earns_the_points_and_its_explanation(key) -> None:
    exercise = PREDICTIONS[key]
    result = judged(key, exercise.judge.answer)
    assert result.status == "passed" and result.score == result.max_score == exercise.points, str(result)
    assert [line.what for line in result.lines] == [ANSWER]
    assert result.lines[0].ok and result.lines[0].message == exercise.judge.explanation


@pytest.mark.parametrize("key", PREDICTIONS, ids=IDS)
def test_each_classic_wrong_answer_gets_its_hint_and_never_the_answer(key) -> None:
    exercise = PREDICTIONS[key]
    prediction = exercise.judge
    assert prediction.wrong or prediction.kind == "number", "a question without classic wrong answers"
    for wrong, hint in prediction.wrong.items():
        result = judged(key, wrong)
        text = str(result)
        assert result.status == "failed" and result.score == 0, text
        assert hint in text and prediction.explanation not in text
        assert exercise.revisit in text
        _assert_answer_not_shown(prediction, text)


@pytest.mark.parametrize("key", PREDICTIONS, ids=IDS)
def test_any_other_wrong_answer_gets_the_general_hint(key) -> None:
    prediction = PREDICTIONS[key].judge
    other = {"choice": None, "shape": (7, 7, 7), "sign": 0 if prediction.answer else 1, "number": 12345.5}
    wrong = other[prediction.kind]
    if wrong is None:  # every wrong letter of a choice is a classic mistake with its own hint
        assert set(prediction.wrong) == set(prediction.choices) - {prediction.answer}
        return
    result = judged(key, wrong)
    assert result.status == "failed"
    assert prediction.hint in str(result)
    _assert_answer_not_shown(prediction, str(result))


def _assert_answer_not_shown(prediction: Prediction, text: str) -> None:
    answer = prediction.answer
    if prediction.kind == "choice":
        assert f"({answer})" not in text and f'"{answer}"' not in text and f"'{answer}'" not in text
    elif prediction.kind == "shape":
        assert str(tuple(answer)) not in text
    elif abs(answer) >= 4:  # small numbers (0, 2, 3) are too common in words to scan for
        assert not re.search(rf"(?<![\w.]){answer}(?![\w.])", text), text


@pytest.mark.parametrize("key", PREDICTIONS, ids=IDS)
def test_verdicts_depend_on_the_answer_alone(key) -> None:
    exercise = PREDICTIONS[key]
    answers = [exercise.judge.answer, *exercise.judge.wrong]
    for answer in answers:
        seen = {str(judged(key, answer, seed)) for seed in (0, 1, 2, None)}
        assert len(seen) == 1, seen


@pytest.mark.parametrize("key", PREDICTIONS, ids=IDS)
def test_non_answers_fail_on_one_line_and_a_stub_is_not_implemented(key) -> None:
    for value in (None, [["x"]], float("nan"), {"a": 1}):
        result = judged(key, value)
        assert result.status == "failed" and result.score == 0
        assert len(result.lines) == 1 and result.lines[0].message.startswith("should be")

    def stub() -> Any:
        raise NotImplementedError()

    assert verdict(stub, name=key[1], notebook=key[0]).status == "not implemented"


@pytest.mark.parametrize(
    ("kind", "answer", "written", "right"),
    [
        ("choice", "b", "b", True),
        ("choice", "b", " (B) ", True),
        ("choice", "b", "B", True),
        ("choice", "b", "c", False),
        ("shape", (3, 5), (3, 5), True),
        ("shape", (3, 5), [3, 5], True),
        ("shape", (3, 5), (np.int64(3), 5), True),
        ("shape", (3, 5), (5, 3), False),
        ("sign", -1, -1, True),
        ("sign", -1, -1.0, True),
        ("sign", -1, 1, False),
        ("number", 42, 42.0, True),
        ("number", 42, np.float64(42.00000001), True),
        ("number", 42, 42.01, False),
    ],
)
def test_answers_are_read_in_every_usual_spelling(kind, answer, written, right) -> None:
    choices = ("a", "b", "c") if kind == "choice" else ()
    made_up = predict("made_up", "99_test", "a made-up question", Prediction(kind, answer, "because", "think",
                      choices), "nowhere")  # fmt: skip
    result = judge(made_up, call_directly(lambda: written), np.random.default_rng(0))
    assert result.passed == right, str(result)


@pytest.mark.parametrize(
    ("kind", "answer", "written", "says"),
    [
        ("choice", "b", "e", 'should be one of "a", "b", "c"'),
        ("choice", "b", 2, "should be one letter as a string"),
        ("shape", (3, 5), (3.0, 5.0), "every entry a whole number"),
        ("shape", (3, 5), "(3, 5)", "should be a shape"),
        ("sign", -1, 0.5, "should be +1, -1 or 0"),
        ("number", 42, "42", "should be a number"),
        ("number", 42, True, "should be a number"),
        ("number", 42, float("inf"), "should be a finite number"),
    ],
)
def test_what_is_not_an_answer_is_said_in_words(kind, answer, written, says) -> None:
    choices = ("a", "b", "c") if kind == "choice" else ()
    made_up = predict("made_up", "99_test", "a made-up question", Prediction(kind, answer, "because", "think",
                      choices), "nowhere")  # fmt: skip
    result = judge(made_up, call_directly(lambda: written), np.random.default_rng(0))
    assert result.status == "failed" and says in result.lines[0].message, str(result)


def test_a_badly_written_prediction_is_refused_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="kind"):
        Prediction("essay", "b", "because", "think")
    with pytest.raises(ValueError, match="not one of the choices"):
        Prediction("choice", "e", "because", "think", ("a", "b"))
    with pytest.raises(ValueError, match="it is the right one"):
        Prediction("number", 7, "because", "think", wrong={7.0: "no"})


def test_a_learner_raising_or_reading_the_registry_gets_no_marks() -> None:
    key = ("02_merges_and_traversal", "why_reverse_order")

    def why_reverse_order() -> str:
        raise ValueError("not sure")

    assert verdict(why_reverse_order, notebook=key[0]).status == "error"

    def why_reverse_order() -> str:  # noqa: F811  (the learner's second try)
        from bpcourse.exercises import get

        return get("why_reverse_order").reference()[0]

    result = verdict(why_reverse_order, notebook=key[0])
    assert result.status == "delegated" and result.score == 0, str(result)


def test_the_prerequisites_are_in_notebook_00_each_with_a_place_to_go_back_to() -> None:
    names = [e.name for e in by_notebook("00_start_here")]
    prerequisites = ["chain_rule_one_variable", "chain_rule_two_paths", "partial_derivative",
                     "product_shape", "gradient_shape", "broadcast_shape", "center_features"]  # fmt: skip
    assert names == ["sub_backward", *prerequisites, "why_backprop_is_cheap"]
    for name in prerequisites:
        revisit = REGISTRY[("00_start_here", name)].revisit
        assert revisit.startswith("Check your prerequisites: ") and "(review: " in revisit, revisit
