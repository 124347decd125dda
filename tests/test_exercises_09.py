"""Tests of the exercises of notebook 09 (``bpcourse.exercises.modular_layers`` and ``digits_capstone``).

The learner writes layer classes with one interface, ``forward(X) -> (out, cache)`` and
``backward(upstream, cache) -> (dX, grads)``, and the notebook's handles (``affine_layer``,
``network_gradients``, ...) run them for the grader. The tests write the classes as a
learner would, and each classic mistake as a subclass that changes one method: every
mistake fails and its verdict names it; a stub reads "not implemented"; the network's
verdict carries the gradient checker's line; the tiny batch and the capstone are judged on
the parameters the learner's training returns, measured by the grader. The last tests
grade the solution notebook itself, its student version and broken copies of it through
the real sandbox: the digits travel to the learner's process as inputs, the capstone's
training runs there within the call's time limit, and an endless training loop costs that
item only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    LIMITS,
    Mistake,
    assert_every_misconception_named,
    assert_mistake_named,
    assert_no_number_shown,
    assert_not_implemented,
    by_exercise,
    coded,
    judging,
    lines_text,
    stub,
)

from bpcourse.exercises import by_notebook, get
from bpcourse.exercises.core import draw_checked_inputs
from bpcourse.exercises.digits_capstone import (
    CAPSTONE_ACCURACY,
    digits_split,
    validation_accuracy,
)
from bpcourse.grading.runner import grade_submission
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import Submission

NOTEBOOK = "09_modular_layers_and_digits"
ROOT = Path(__file__).resolve().parents[1]
judged = judging(NOTEBOOK)


# -- the layers, as a learner writes them ------------------------------------------------------------------
class Layer:
    def __init__(self):
        self.params = {}

    def penalty(self):
        return 0.0


class Affine(Layer):
    def __init__(self, W, b):
        super().__init__()
        self.params = {"W": W, "b": b}

    def forward(self, X):
        return self.params["W"] @ X + self.params["b"], X

    def backward(self, upstream, cache):
        W = self.params["W"]
        return W.T @ upstream, {"W": upstream @ cache.T, "b": np.sum(upstream, axis=1, keepdims=True)}


class ReLU(Layer):
    def forward(self, Z):
        return np.maximum(Z, 0.0), Z

    def backward(self, upstream, cache):
        return np.where(cache > 0, upstream, 0.0), {}


class Tanh(Layer):
    def forward(self, Z):
        A = np.tanh(Z)
        return A, A

    def backward(self, upstream, cache):
        return upstream * (1 - cache**2), {}


class Sigmoid(Layer):
    def forward(self, Z):
        A = 1 / (1 + np.exp(-Z))
        return A, A

    def backward(self, upstream, cache):
        return upstream * cache * (1 - cache), {}


class SoftmaxCrossEntropy:
    def forward(self, Z, Y):
        e = np.exp(Z - Z.max(axis=0))
        P = e / e.sum(axis=0)
        return float(-np.mean(np.sum(Y * np.log(P), axis=0))), (P, Y)

    def backward(self, upstream, cache):
        P, Y = cache
        return upstream * (P - Y) / Y.shape[1]


class DecayedAffine(Affine):
    def __init__(self, W, b, weight_decay):
        super().__init__(W, b)
        self.weight_decay = weight_decay

    def penalty(self):
        return self.weight_decay / 2 * np.sum(self.params["W"] ** 2)

    def backward(self, upstream, cache):
        dX, grads = super().backward(upstream, cache)
        return dX, {"W": grads["W"] + self.weight_decay * self.params["W"], "b": grads["b"]}


class Network:
    def __init__(self, layers, loss_layer):
        self.layers, self.loss_layer = list(layers), loss_layer

    def forward(self, X, Y):
        self.caches = []
        for layer in self.layers:
            X, cache = layer.forward(X)
            self.caches.append(cache)
        loss, self.loss_cache = self.loss_layer.forward(X, Y)
        return loss + sum(layer.penalty() for layer in self.layers)

    def backward(self):
        upstream = self.loss_layer.backward(1.0, self.loss_cache)
        grads = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            upstream, grads[i] = self.layers[i].backward(upstream, self.caches[i])
        return grads


# -- the notebook's handles, over any classes ---------------------------------------------------------------
def affine_handle(cls: type = Affine) -> Callable[..., Any]:
    def affine_layer(W, b, X, G):
        layer = cls(W, b)
        Z, cache = layer.forward(X)
        dX, grads = layer.backward(G, cache)
        return Z, dX, grads["W"], grads["b"]

    return affine_layer


def activation_handle(cls: type) -> Callable[..., Any]:
    def activation_layer(Z, upstream):
        layer = cls()
        A, cache = layer.forward(Z)
        return A, layer.backward(upstream, cache)[0]

    return activation_layer


def loss_handle(cls: type = SoftmaxCrossEntropy) -> Callable[..., Any]:
    def softmax_ce_layer(Z, Y, upstream):
        layer = cls()
        loss, cache = layer.forward(Z, Y)
        return loss, layer.backward(upstream, cache)

    return softmax_ce_layer


def decay_handle(cls: type = DecayedAffine) -> Callable[..., Any]:
    def decayed_affine_layer(W, b, X, G, weight_decay):
        layer = cls(W, b, weight_decay)
        _, cache = layer.forward(X)
        dX, grads = layer.backward(G, cache)
        return layer.penalty(), dX, grads["W"], grads["b"]

    return decayed_affine_layer


def build(params, affine=Affine, activation=Tanh, loss=SoftmaxCrossEntropy, weight_decay=0.0):
    layers = []
    for i in range(0, len(params), 2):
        layers.append(
            affine(params[i], params[i + 1], weight_decay) if weight_decay else affine(*params[i : i + 2])
        )
        if i + 2 < len(params):
            layers.append(activation())
    return Network(layers, loss())


def network_handle(**parts: Any) -> Callable[..., Any]:
    def network_gradients(params, X, Y):
        net = build(params, **parts)
        loss = net.forward(X, Y)
        grads = net.backward()
        return loss, [
            g[k] for layer, g in zip(net.layers, grads, strict=True) for k in ("W", "b") if layer.params
        ]

    return network_gradients


def parameters(net):
    return [layer.params[k] for layer in net.layers for k in ("W", "b") if layer.params]


def new_network(sizes, rng, weight_decay=0.0):
    params = []
    for n, m in zip(sizes[:-1], sizes[1:], strict=True):
        params += [rng.standard_normal((m, n)) / np.sqrt(n), np.zeros((m, 1))]
    return build(params, affine=DecayedAffine if weight_decay else Affine, weight_decay=weight_decay)


def sgd_step(net, X, Y, learning_rate):
    loss = net.forward(X, Y)
    for layer, grads in zip(net.layers, net.backward(), strict=True):
        for name in grads:
            layer.params[name] -= learning_rate * grads[name]
    return loss


def overfit_handle(step: Callable[..., Any] = sgd_step) -> Callable[..., Any]:
    def overfit_tiny_batch(X, Y, seed):
        net = new_network([X.shape[0], 32, Y.shape[0]], np.random.default_rng(seed))
        for _ in range(200):
            step(net, X, Y, 1.0)
        return parameters(net)

    return overfit_tiny_batch


def train_digits(X_train, labels_train, seed, learning_rate=0.3, epochs=20, step=sgd_step):
    rng = np.random.default_rng(seed)
    net = new_network([64, 32, 10], rng)
    Y = np.eye(10)[:, labels_train]
    for _ in range(epochs):
        order = rng.permutation(X_train.shape[1])
        for start in range(0, X_train.shape[1], 64):
            batch = order[start : start + 64]
            step(net, X_train[:, batch], Y[:, batch], learning_rate)
    return parameters(net)


CORRECT = {
    "affine_layer": affine_handle(),
    "relu_layer": activation_handle(ReLU),
    "tanh_layer": activation_handle(Tanh),
    "sigmoid_layer": activation_handle(Sigmoid),
    "softmax_ce_layer": loss_handle(),
    "decayed_affine_layer": decay_handle(),
    "network_gradients": network_handle(),
    "overfit_tiny_batch": overfit_handle(),
    "train_digits": train_digits,
}


def test_the_registry_holds_the_notebooks_exercises_in_order():
    assert [e.name for e in coded(NOTEBOOK)] == list(CORRECT)  # the why-questions: test_why_questions.py
    assert sum(e.points for e in coded(NOTEBOOK)) == 19


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_answer_earns_every_point(name):
    result = judged(CORRECT[name], name)
    assert result.passed and result.score == result.max_score, str(result)


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_is_not_implemented(name):
    assert_not_implemented(judged(stub, name))


def test_the_network_verdict_reports_the_gradient_checker():
    text = str(judged(CORRECT["network_gradients"], "network_gradients"))
    assert "gradient check: gradient check passed:" in text and "entries agree" in text


# -- classic mistakes, each a learner's subclass -----------------------------------------------------------
class TransposedDW(Affine):
    def backward(self, upstream, cache):
        dX, grads = super().backward(upstream, cache)
        return dX, {**grads, "W": cache @ upstream.T}


class BiasNotSummed(Affine):
    def backward(self, upstream, cache):
        return super().backward(upstream, cache)[0], {"W": upstream @ cache.T, "b": upstream}


class BiasWrongAxis(Affine):
    def backward(self, upstream, cache):
        return super().backward(upstream, cache)[0], {
            "W": upstream @ cache.T,
            "b": upstream.sum(0, keepdims=True),
        }


class BiasFlat(Affine):
    def backward(self, upstream, cache):
        return super().backward(upstream, cache)[0], {"W": upstream @ cache.T, "b": upstream.sum(1)}


class AveragedAgain(Affine):
    def backward(self, upstream, cache):
        B = upstream.shape[1]
        return self.params["W"].T @ upstream / B, {
            "W": upstream @ cache.T / B,
            "b": upstream.sum(1, keepdims=True),
        }


class BiasAveraged(Affine):
    def backward(self, upstream, cache):
        return super().backward(upstream, cache)[0], {
            "W": upstream @ cache.T,
            "b": upstream.mean(1, keepdims=True),
        }


class RowsDX(Affine):
    def backward(self, upstream, cache):
        return upstream.T @ self.params["W"], super().backward(upstream, cache)[1]


class NoBias(Affine):
    def forward(self, X):
        return self.params["W"] @ X, X


class MaskFromUpstream(ReLU):
    def backward(self, upstream, cache):
        return upstream * (upstream > 0), {}


class ReLUNoUpstream(ReLU):
    def backward(self, upstream, cache):
        return (cache > 0) * 1.0, {}


class ReLUValues(ReLU):
    def backward(self, upstream, cache):
        return upstream * np.maximum(cache, 0), {}


class TanhCachingInput(Tanh):
    def forward(self, Z):
        return np.tanh(Z), Z


class TanhOfA(Tanh):
    def backward(self, upstream, cache):
        return upstream * (1 - np.tanh(cache) ** 2), {}


class TanhNotSquared(Tanh):
    def backward(self, upstream, cache):
        return upstream * (1 - cache), {}


class TanhNoUpstream(Tanh):
    def backward(self, upstream, cache):
        return 1 - cache**2, {}


class TanhNoSlope(Tanh):
    def backward(self, upstream, cache):
        return upstream, {}


class SigmoidCachingInput(Sigmoid):
    def forward(self, Z):
        return 1 / (1 + np.exp(-Z)), Z


class SigmoidOfA(Sigmoid):
    def backward(self, upstream, cache):
        s = 1 / (1 + np.exp(-cache))
        return upstream * s * (1 - s), {}


class SigmoidNoUpstream(Sigmoid):
    def backward(self, upstream, cache):
        return cache * (1 - cache), {}


class SigmoidPlus(Sigmoid):
    def backward(self, upstream, cache):
        return upstream * cache * (1 + cache), {}


class SigmoidTanhSlope(Sigmoid):
    def backward(self, upstream, cache):
        return upstream * (1 - cache**2), {}


class NoOneOverB(SoftmaxCrossEntropy):
    def backward(self, upstream, cache):
        P, Y = cache
        return upstream * (P - Y)


class SummedLoss(NoOneOverB):
    def forward(self, Z, Y):
        loss, cache = super().forward(Z, Y)
        return loss * Z.shape[1], cache


class LossNoUpstream(SoftmaxCrossEntropy):
    def backward(self, upstream, cache):
        P, Y = cache
        return (P - Y) / Y.shape[1]


class FlippedSign(SoftmaxCrossEntropy):
    def backward(self, upstream, cache):
        P, Y = cache
        return upstream * (Y - P) / Y.shape[1]


class SoftmaxOverRows(SoftmaxCrossEntropy):
    def forward(self, Z, Y):
        e = np.exp(Z - Z.max(axis=1, keepdims=True))
        loss, _ = super().forward(Z, Y)
        return loss, (e / e.sum(axis=1, keepdims=True), Y)


class NoDecayPath(DecayedAffine):
    def backward(self, upstream, cache):
        return Affine.backward(self, upstream, cache)


class TwiceLambda(DecayedAffine):
    def backward(self, upstream, cache):
        dX, grads = Affine.backward(self, upstream, cache)
        return dX, {**grads, "W": grads["W"] + 2 * self.weight_decay * self.params["W"]}


class HalfLambda(DecayedAffine):
    def backward(self, upstream, cache):
        dX, grads = Affine.backward(self, upstream, cache)
        return dX, {**grads, "W": grads["W"] + self.weight_decay / 2 * self.params["W"]}


class PenaltyWithoutHalf(DecayedAffine):
    def penalty(self):
        return self.weight_decay * np.sum(self.params["W"] ** 2)


class PenaltyOfTheNorm(DecayedAffine):
    def penalty(self):
        return self.weight_decay / 2 * np.linalg.norm(self.params["W"])


class DecayAlone(DecayedAffine):
    def backward(self, upstream, cache):
        dX, grads = Affine.backward(self, upstream, cache)
        return dX, {**grads, "W": self.weight_decay * self.params["W"]}


class BiasDecayed(DecayedAffine):
    def backward(self, upstream, cache):
        dX, grads = super().backward(upstream, cache)
        return dX, {**grads, "b": grads["b"] + self.weight_decay * self.params["b"]}


class DecayOverB(DecayedAffine):
    def backward(self, upstream, cache):
        dX, grads = Affine.backward(self, upstream, cache)
        decay = self.weight_decay * self.params["W"] / upstream.shape[1]
        return dX, {**grads, "W": grads["W"] + decay}


MISTAKES = [
    Mistake("affine_layer", affine_handle(TransposedDW), ("dW", "transpose of dW"), wrong=("dW",)),
    Mistake("affine_layer", affine_handle(BiasNotSummed), ("db has one column per example",), wrong=("db",)),
    Mistake("affine_layer", affine_handle(BiasWrongAxis), ("wrong axis",), wrong=("db",)),
    Mistake("affine_layer", affine_handle(BiasFlat), ("lost its second axis",), wrong=("db",)),
    Mistake("affine_layer", affine_handle(BiasAveraged), ("db is the mean of G's columns",), wrong=("db",)),
    Mistake("affine_layer", affine_handle(AveragedAgain), ("B times too small",), wrong=("dX", "dW")),
    Mistake("affine_layer", affine_handle(RowsDX), ("one example per ROW",), wrong=("dX",)),
    Mistake("affine_layer", affine_handle(NoBias), ("left out the bias",), wrong=("Z",)),
    Mistake("relu_layer", activation_handle(MaskFromUpstream), ("the mask comes from the wrong array",)),
    Mistake("relu_layer", activation_handle(ReLUNoUpstream), ("local derivative alone",)),
    Mistake("relu_layer", activation_handle(ReLUValues), ("the forward values",)),
    Mistake("tanh_layer", activation_handle(TanhCachingInput), ("from the layer's input Z",), wrong=("dZ",)),
    Mistake("tanh_layer", activation_handle(TanhOfA), ("applies tanh again",), wrong=("dZ",)),
    Mistake("tanh_layer", activation_handle(TanhNotSquared), ("with a squared",), wrong=("dZ",)),
    Mistake("tanh_layer", activation_handle(TanhNoUpstream), ("local derivative alone",), wrong=("dZ",)),
    Mistake("sigmoid_layer", activation_handle(SigmoidCachingInput), ("from z instead of a",), wrong=("dZ",)),
    Mistake("sigmoid_layer", activation_handle(SigmoidOfA), ("slope at the wrong point",), wrong=("dZ",)),
    Mistake(
        "sigmoid_layer", activation_handle(SigmoidNoUpstream), ("local derivative alone",), wrong=("dZ",)
    ),
    Mistake("sigmoid_layer", activation_handle(SigmoidPlus), ("a sign is off",), wrong=("dZ",)),
    Mistake("sigmoid_layer", activation_handle(SigmoidTanhSlope), ("tanh's slope",), wrong=("dZ",)),
    Mistake("softmax_ce_layer", loss_handle(NoOneOverB), ("B times too large",), wrong=("dZ",)),
    Mistake(
        "softmax_ce_layer", loss_handle(SummedLoss), ("SUM of the per-example losses",), wrong=("loss", "dZ")
    ),
    Mistake(
        "softmax_ce_layer", loss_handle(LossNoUpstream), ("upstream gradient is missing",), wrong=("dZ",)
    ),
    Mistake("softmax_ce_layer", loss_handle(FlippedSign), ("sign of dZ is flipped",), wrong=("dZ",)),
    Mistake("softmax_ce_layer", loss_handle(SoftmaxOverRows), ("wrong axis",), wrong=("dZ",)),
    Mistake("decayed_affine_layer", decay_handle(NoDecayPath), ("the contributions ADD",), wrong=("dW",)),
    Mistake("decayed_affine_layer", decay_handle(TwiceLambda), ("2λ W",), wrong=("dW",)),
    Mistake("decayed_affine_layer", decay_handle(HalfLambda), ("half of what it should be",), wrong=("dW",)),
    Mistake(
        "decayed_affine_layer", decay_handle(PenaltyWithoutHalf), ("twice the course's",), wrong=("penalty",)
    ),
    Mistake("decayed_affine_layer", decay_handle(PenaltyOfTheNorm), ("SUM OF SQUARES",), wrong=("penalty",)),
    Mistake("decayed_affine_layer", decay_handle(DecayAlone), ("decay path alone",), wrong=("dW",)),
    Mistake("decayed_affine_layer", decay_handle(BiasDecayed), ("biases are not decayed",), wrong=("db",)),
    Mistake("decayed_affine_layer", decay_handle(DecayOverB), ("divided by B",), wrong=("dW",)),
    Mistake("network_gradients", network_handle(activation=TanhNoSlope), ("unchanged",), status="partial"),
    Mistake(
        "network_gradients", network_handle(activation=TanhCachingInput), ("its own forward made",), "partial"
    ),
    Mistake("network_gradients", network_handle(loss=NoOneOverB), ("B times too large",), "partial"),
    Mistake("network_gradients", network_handle(affine=TransposedDW), ("transposed",), "partial"),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[f"{m.exercise}-{m.phrases[0][:24]}" for m in MISTAKES])
def test_a_classic_mistake_fails_and_is_named(mistake):
    status = mistake.status
    result = judged(mistake.learner, mistake.exercise)
    if status in ("failed", None):  # one output of several wrong: the verdict is partial
        mistake = Mistake(mistake.exercise, mistake.learner, mistake.phrases, None, mistake.wrong)
    assert_mistake_named(result, mistake)


def test_every_misconception_of_the_notebook_is_named_by_some_mistake():
    assert_every_misconception_named(NOTEBOOK, MISTAKES, judged)


def test_a_wrong_network_fails_the_gradient_checker_line_too():
    result = judged(network_handle(activation=TanhNoSlope), "network_gradients")
    check_line = next(line for line in result.lines if line.what == "gradient check")
    assert not check_line.ok and check_line.message.startswith("gradient check FAILED")


@pytest.mark.parametrize("mistake", MISTAKES, ids=[f"{m.exercise}-{m.phrases[0][:24]}" for m in MISTAKES])
def test_no_verdict_shows_a_number_of_the_answer(mistake):
    exercise = get(mistake.exercise, NOTEBOOK)
    _, expected = draw_checked_inputs(exercise, np.random.default_rng(0))  # the first draw of seed 0
    result = judged(mistake.learner, mistake.exercise, seed=0)
    shown = [e for e in expected if e is not None and np.size(e) > 1]  # arrays: a loss may be named
    assert_no_number_shown(result, shown)


def test_network_answers_of_the_wrong_structure_are_explained():
    def grads_alone(params, X, Y):
        return CORRECT["network_gradients"](params, X, Y)[1]

    def too_few(params, X, Y):
        loss, grads = CORRECT["network_gradients"](params, X, Y)
        return loss, grads[:4]

    assert "should return two values" in str(judged(grads_alone, "network_gradients"))
    assert "one per parameter in the order of params" in str(judged(too_few, "network_gradients"))


# -- training: the tiny batch and the capstone ---------------------------------------------------------------
def sgd_step_ascending(net, X, Y, learning_rate):
    return sgd_step(net, X, Y, -learning_rate)


def sgd_step_not_in_place(net, X, Y, learning_rate):
    loss = net.forward(X, Y)
    for layer, grads in zip(net.layers, net.backward(), strict=True):
        for name in grads:
            updated = layer.params[name] - learning_rate * grads[name]  # a new array, never stored  # noqa: F841
    return loss


@pytest.mark.parametrize("step", [sgd_step_ascending, sgd_step_not_in_place])
def test_a_wrong_step_does_not_memorise_the_tiny_batch(step):
    result = judged(overfit_handle(step), "overfit_tiny_batch")
    assert result.status == "failed" and result.score == 0, str(result)
    assert "not below 0.05" in str(result)


def test_the_tiny_batch_is_measured_by_the_grader_not_reported():
    def returns_untrained(X, Y, seed):
        return parameters(new_network([X.shape[0], 32, Y.shape[0]], np.random.default_rng(seed)))

    assert judged(returns_untrained, "overfit_tiny_batch").score == 0


@pytest.mark.parametrize(
    ("returned", "phrase"),
    [
        (lambda *a: "done", "should return the list of parameters"),
        (lambda *a: [np.zeros((10, 64))], "an even number of arrays"),
        (lambda *a: [np.zeros((10, 63)), np.zeros((10, 1))], "W should be (m, 64)"),
        (lambda *a: [np.zeros((7, 64)), np.zeros((7, 1))], "there are 10 classes"),
        (lambda *a: [np.full((10, 64), np.nan), np.zeros((10, 1))], "training diverged"),
    ],
)
def test_capstone_answers_that_are_not_a_network_are_explained(returned, phrase):
    result = judged(returned, "train_digits")
    assert result.score == 0 and phrase in str(result), str(result)


def test_the_capstone_reaches_the_stated_accuracy_and_a_short_training_does_not():
    X_train, labels_train, _, _ = digits_split()
    params = train_digits(X_train, labels_train, 0)
    assert validation_accuracy(params) >= CAPSTONE_ACCURACY
    short = judged(
        lambda X, labels, seed: train_digits(X, labels, seed, learning_rate=0.003, epochs=1), "train_digits"
    )
    assert short.status == "failed" and "of the 360 validation digits" in str(short), str(short)
    half = judged(
        lambda X, labels, seed: train_digits(X, labels, seed, learning_rate=0.05, epochs=1), "train_digits"
    )
    assert half.status in ("partial", "failed") and half.score <= half.max_score / 2


def test_using_scikit_learn_earns_nothing():
    def train_digits_with_sklearn(X_train, labels_train, seed):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=50).fit(X_train.T, labels_train)
        return [model.coef_, model.intercept_[:, None]]

    result = judged(train_digits_with_sklearn, "train_digits")
    assert result.status == "delegated" and result.score == 0, str(result)
    assert "uses sklearn" in str(result)


# -- through the real sandbox -------------------------------------------------------------------------------
SOLUTION = ROOT / "solutions" / f"{NOTEBOOK}.ipynb"
STUDENT = ROOT / "notebooks" / f"{NOTEBOOK}.ipynb"
FULL_MARKS = sum(e.points for e in by_notebook(NOTEBOOK))


def graded_copy(
    tmp_path: Path, source: Path, change: Callable[[str], str] | None = None, limits: Limits = LIMITS
):
    path = tmp_path / "submitted" / "learner" / NOTEBOOK / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True)
    if change is None:
        shutil.copy(source, path)
    else:
        notebook = json.loads(source.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["source"] = change("".join(cell["source"]))
        path.write_text(json.dumps(notebook), encoding="utf-8")
    return grade_submission(Submission("learner", NOTEBOOK, path), limits, seed=3)


def test_the_solution_earns_full_marks_in_the_sandbox_within_the_time_limit(tmp_path):
    started = time.monotonic()
    result = graded_copy(tmp_path, SOLUTION, limits=Limits(cell_seconds=20, call_seconds=3, memory_mb=1536))
    assert result["problems"] == [], result
    assert result["score"] == result["max_score"] == FULL_MARKS, result
    assert time.monotonic() - started < 60


def test_the_student_notebook_earns_nothing_and_reads_not_implemented(tmp_path):
    result = graded_copy(tmp_path, STUDENT)
    assert result["score"] == 0
    assert all(e["status"] == "not implemented" for e in result["exercises"]), result


def test_a_transposed_dW_is_named_in_the_layer_and_costs_the_network_too(tmp_path):
    result = graded_copy(
        tmp_path, SOLUTION, lambda code: code.replace("dW = upstream @ X.T", "dW = X @ upstream.T")
    )
    graded = by_exercise(result)
    assert "transpose of dW" in lines_text(graded["affine_layer"])
    assert graded["network_gradients"]["score"] < graded["network_gradients"]["max_score"]
    assert graded["relu_layer"]["status"] == "passed"


def test_an_endless_capstone_costs_that_item_only(tmp_path):
    endless = "    while True:\n        pass\n    rng = np.random.default_rng(seed)"
    limits = Limits(cell_seconds=20, call_seconds=2, memory_mb=1536)
    result = graded_copy(
        tmp_path,
        SOLUTION,
        lambda code: code.replace("    rng = np.random.default_rng(seed)", endless),
        limits,
    )
    graded = by_exercise(result)
    assert graded["train_digits"]["score"] == 0
    assert "did not return within" in lines_text(graded["train_digits"])
    assert result["score"] == FULL_MARKS - graded["train_digits"]["max_score"], result


# -- without PyTorch ----------------------------------------------------------------------------------------
WITHOUT_TORCH = """
import contextlib, importlib.abc, io, sys
import nbformat

class NoTorch(importlib.abc.MetaPathFinder):  # as an environment without PyTorch: importing it fails
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")

sys.meta_path.insert(0, NoTorch())
cells = [c for c in nbformat.read(sys.argv[1], as_version=4).cells if c.cell_type == "code"]
namespace, printed = {"__name__": "__main__"}, io.StringIO()
for index, cell in enumerate(cells):
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(cell.source, f"<cell {index}>", "exec"), namespace)
    except Exception as exc:
        print(f"cell {index}: {type(exc).__name__}: {exc}")
print(printed.getvalue())
"""


@pytest.mark.parametrize("path", [STUDENT, SOLUTION], ids=["student", "solution"])
def test_the_notebook_runs_to_the_end_without_pytorch_and_says_how_to_install_it(path, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stdout.splitlines() if line.startswith("cell ")], done.stdout
    assert "pip install '.[torch]'" in done.stdout
    assert done.stdout.count("(PyTorch is missing: this cell would") == 4, done.stdout
