"""Exercises of notebook 09_modular_layers_and_digits, part 2: training the learner's own network.

Both exercises train a network made of the learner's layers with the learner's ``sgd_step``,
in the learner's process, and hand back its parameters [W1, b1, ..., WL, bL]. The grader
never trusts a loss or an accuracy the learner reports: it rebuilds the network from the
returned parameters (affine layers with tanh between them, as the notebook's handles build
it) and measures it itself.

- ``overfit_tiny_batch(X, Y, seed)``: the sanity check of any new network. On 20 examples
  with random labels, full-batch steps must drive the mean cross-entropy below
  ``OVERFIT_LOSS``; a network that cannot memorise 20 examples has a bug.
- ``train_digits(X_train, labels_train, seed)``: the capstone. Trained on the 1,437
  training digits of a fixed split (``bpcourse.datasets.split`` with seed 0), the network
  must classify at least ``CAPSTONE_ACCURACY`` of the 360 validation digits it never saw
  (half the points from ``CAPSTONE_PARTIAL``). The digits travel to the learner's process as
  inputs, so the sandbox needs nothing but numpy; the validation digits never leave the grader.

Training is deterministic for a given seed on a given machine; the thresholds sit far
enough below what a correct network reaches (see the notebook) that round-off differences
between processors cannot move a verdict across them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from bpcourse.datasets import DIGIT_CLASSES, DIGIT_PIXELS, digits, one_hot, split
from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    Inputs,
    Line,
    Verdict,
    run_learner,
    type_name,
    verdict_of,
)
from bpcourse.exercises.modular_layers import NOTEBOOK, mean_cross_entropy

OVERFIT_EXAMPLES = 20
OVERFIT_FEATURES = 8
OVERFIT_CLASSES = 4
OVERFIT_LOSS = 0.05  # what the notebook's handle must reach in its fixed number of steps

DIGITS_VALIDATION = 360  # of the 1,797 digits, with the rest for training
DIGITS_SPLIT_SEED = 0
DIGITS_TRAINING_SEED = 0
CAPSTONE_ACCURACY = 0.95
CAPSTONE_PARTIAL = 0.90

# Not the learner's work either: a ready-made classifier.
NOT_YOURS_OR_SKLEARN = (*NOT_YOURS, "sklearn")


def predict_logits(params: Sequence[np.ndarray], X: np.ndarray) -> np.ndarray:
    """Logits (K, N) of the network [W1, b1, ..., WL, bL], tanh between its affine layers, for X (n, N)."""
    A = X
    for i in range(0, len(params) - 2, 2):
        A = np.tanh(params[i] @ A + params[i + 1])
    return params[-2] @ A + params[-1]


def parameter_problem(params: Any, n_inputs: int, n_classes: int) -> str | None:
    """None when ``params`` is a list [W1, b1, ..., WL, bL] from n_inputs to n_classes; else what is off."""
    if not isinstance(params, list | tuple):
        return (
            f"should return the list of parameters [W1, b1, ..., WL, bL], but returned a {type_name(params)}"
        )
    if len(params) < 2 or len(params) % 2:
        return f"should return [W1, b1, ..., WL, bL], an even number of arrays; got {len(params)}"
    if not all(isinstance(p, np.ndarray) and p.ndim == 2 and p.dtype.kind == "f" for p in params):
        return "every parameter should be a 2-D numpy array of floats"
    fan_in = n_inputs
    for layer in range(len(params) // 2):
        W, b = params[2 * layer], params[2 * layer + 1]
        if W.shape[1] != fan_in or b.shape != (W.shape[0], 1):
            return (
                f"layer {layer + 1}'s W has shape {W.shape} and b {b.shape}: W should be (m, {fan_in}) "
                "and b (m, 1), each layer taking the previous one's output"
            )
        fan_in = W.shape[0]
    if fan_in != n_classes:
        return f"the last layer gives {fan_in} outputs; there are {n_classes} classes"
    if not all(np.isfinite(p).all() for p in params):
        return "some parameters are NaN or infinite: training diverged (a learning rate too large?)"
    return None


def _returned_parameters(
    exercise: Exercise, call: Call, inputs: Inputs, n_inputs: int, n_classes: int
) -> tuple[list[np.ndarray] | None, Verdict | None]:
    returned, stop = run_learner(exercise, call, inputs)
    if stop is not None:
        return None, stop
    problem = parameter_problem(returned, n_inputs, n_classes)
    if problem is not None:
        return None, verdict_of(exercise, "failed", [Line("returns", False, problem)])
    return list(returned), None


# -- overfit a tiny batch -----------------------------------------------------------------------------------
def _overfit_inputs(rng: np.random.Generator) -> Inputs:
    labels = rng.integers(0, OVERFIT_CLASSES, OVERFIT_EXAMPLES)
    return {
        "X": rng.standard_normal((OVERFIT_FEATURES, OVERFIT_EXAMPLES)),
        "Y": one_hot(labels, OVERFIT_CLASSES),
        "seed": int(rng.integers(0, 2**31)),
    }


def _judge_overfit(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    inputs = exercise.make_inputs(rng)
    params, stop = _returned_parameters(exercise, call, inputs, OVERFIT_FEATURES, OVERFIT_CLASSES)
    if stop is not None:
        return stop
    loss = mean_cross_entropy(predict_logits(params, inputs["X"]), inputs["Y"])
    if loss < OVERFIT_LOSS:
        line = Line(
            "tiny batch", True, f"the loss on the {OVERFIT_EXAMPLES} examples fell below {OVERFIT_LOSS:g}"
        )
    else:
        line = Line(
            "tiny batch",
            False,
            f"after training, the loss on the {OVERFIT_EXAMPLES} examples is {loss:.3g}, not below "
            f"{OVERFIT_LOSS:g}: a network this size can memorise 20 examples, so a step is wrong (does "
            "sgd_step move every parameter against its gradient, W minus the learning rate times dW, "
            "and keep the layers' arrays updated in place?)",
        )
    status, earned = ("passed", exercise.points) if line.ok else ("failed", 0.0)
    return verdict_of(exercise, status, [Line("returns", True), line], earned)


OVERFIT_TINY_BATCH = Exercise(
    name="overfit_tiny_batch",
    notebook=NOTEBOOK,
    signature="overfit_tiny_batch(X, Y, seed) -> [W1, b1, W2, b2]",
    summary=f"{OVERFIT_EXAMPLES} examples, random labels: full-batch steps, loss below {OVERFIT_LOSS:g}",
    outputs=("params",),
    points=2,
    make_inputs=_overfit_inputs,
    judge=_judge_overfit,
    revisit="the sanity check: a correct network and update memorise a tiny batch",
    refuses=NOT_YOURS_OR_SKLEARN,
    instead="train it with your own layers and sgd_step",
)


# -- the capstone: the digits --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The capstone's fixed split: (X_train (64, 1437), labels_train, X_val (64, 360), labels_val)."""
    X, _, labels = digits()
    return split(X, labels, DIGITS_VALIDATION, DIGITS_SPLIT_SEED)


def _capstone_inputs(rng: np.random.Generator) -> Inputs:
    X_train, labels_train, _, _ = digits_split()
    return {"X_train": X_train.copy(), "labels_train": labels_train.copy(), "seed": DIGITS_TRAINING_SEED}


def validation_accuracy(params: Sequence[np.ndarray]) -> float:
    """The share of the 360 validation digits that the network [W1, b1, ..., WL, bL] classifies right."""
    _, _, X_val, labels_val = digits_split()
    return float(np.mean(predict_logits(params, X_val).argmax(axis=0) == labels_val))


def _judge_capstone(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    inputs = exercise.make_inputs(rng)
    params, stop = _returned_parameters(exercise, call, inputs, DIGIT_PIXELS, DIGIT_CLASSES)
    if stop is not None:
        return stop
    accuracy = validation_accuracy(params)
    if accuracy >= CAPSTONE_ACCURACY:
        line = Line("validation accuracy", True, f"at least {CAPSTONE_ACCURACY:.0%} of the validation digits")
        earned = 1.0
    else:
        reached = (
            f"reaches {CAPSTONE_PARTIAL:.0%} but not {CAPSTONE_ACCURACY:.0%}"
            if accuracy >= CAPSTONE_PARTIAL
            else (f"is below {CAPSTONE_PARTIAL:.0%}")
        )
        line = Line(
            "validation accuracy",
            False,
            f"{accuracy:.1%} of the {DIGITS_VALIDATION} validation digits, which {reached}: check the "
            "learning rate, the number of epochs and the weight decay your search chose",
        )
        earned = 0.5 if accuracy >= CAPSTONE_PARTIAL else 0.0
    status = "passed" if earned == 1.0 else ("partial" if earned else "failed")
    return verdict_of(exercise, status, [Line("returns", True), line], exercise.points * earned)


TRAIN_DIGITS = Exercise(
    name="train_digits",
    notebook=NOTEBOOK,
    signature="train_digits(X_train, labels_train, seed) -> [W1, b1, ..., WL, bL]",
    summary=f"the capstone, retrained by the grader: at least {CAPSTONE_ACCURACY:.0%} of validation digits",
    outputs=("params",),
    points=3,
    make_inputs=_capstone_inputs,
    judge=_judge_capstone,
    trials=1,
    revisit="the capstone: the search over learning rate and weight decay, and the epochs",
    refuses=NOT_YOURS_OR_SKLEARN,
    instead="train it with your own layers and sgd_step",
)

EXERCISES = (OVERFIT_TINY_BATCH, TRAIN_DIGITS)
