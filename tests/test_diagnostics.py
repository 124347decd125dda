"""Per-layer gradient norms show vanishing and exploding gradients."""

import numpy as np
import pytest

from bpcourse.diagnostics import layer_grad_norms, layer_gradients
from bpcourse.nn import MLP


def _deep(rng, **kw):
    return MLP([8] + [32] * 12 + [1], rng=rng, **kw)


def test_norms_are_the_sensitivities_of_each_layer(rng):
    model = MLP([3, 4, 2], "tanh", rng=rng)
    X, Y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    norms = layer_grad_norms(model, X, Y)
    assert norms == pytest.approx([np.linalg.norm(z.grad) for z in model.preactivations])
    # The last layer's δ is (a - y)/B for the mean squared error with a linear output.
    out = model.preactivations[-1].data
    assert norms[-1] == pytest.approx(np.linalg.norm((out - Y) / 5))


def test_sigmoid_with_naive_init_vanishes_and_residual_paths_keep_gradients(rng):
    X, Y = rng.normal(size=(8, 16)), rng.normal(size=(1, 16))
    plain = layer_grad_norms(_deep(rng, activation="sigmoid", init="normal", scale=0.1), X, Y)
    assert plain[0] < 1e-6 * plain[-1]
    residual = layer_grad_norms(
        _deep(rng, activation="sigmoid", init="normal", scale=0.1, residual=True), X, Y
    )
    assert residual[0] > 0.1 * residual[-1]


def test_large_init_explodes(rng):
    X, Y = rng.normal(size=(8, 16)), rng.normal(size=(1, 16))
    norms = layer_grad_norms(_deep(rng, activation="relu", init="normal", scale=0.5), X, Y)
    assert norms[0] > 100 * norms[-1]


def test_he_init_keeps_relu_gradients_within_an_order_of_magnitude(rng):
    X, Y = rng.normal(size=(8, 64)), rng.normal(size=(1, 64))
    norms = layer_grad_norms(_deep(rng, activation="relu", init="he"), X, Y)
    ratios = np.array(norms[:-1]) / norms[-2]
    assert np.all((ratios > 0.1) & (ratios < 10))


def test_unknown_loss_is_refused(rng):
    with pytest.raises(ValueError, match="unknown loss"):
        layer_gradients(MLP([2, 2], rng=rng), np.ones((2, 1)), np.ones((2, 1)), loss="hinge")
