"""Checkpointed backward gives the same gradients as storing every activation."""

import numpy as np
import pytest

from bpcourse.checkpoint import checkpointed_backward, full_backward
from bpcourse.tensor import Tensor, affine


def _chain(rng, depth=9, width=4):
    params = [
        (Tensor(rng.normal(size=(width, width)) * 0.6), Tensor(rng.normal(size=(width, 1)) * 0.1))
        for _ in range(depth)
    ]

    def make_layer(W, b):
        return lambda t: affine(W, t, b).tanh()

    return [make_layer(W, b) for W, b in params], params


@pytest.mark.parametrize("every", [1, 2, 3, 4, 9, 20])
def test_same_input_and_parameter_gradients(rng, every):
    layers, params = _chain(rng)
    x = rng.normal(size=(4, 3))
    upstream = rng.normal(size=(4, 3))
    dx_full, stored_full = full_backward(layers, x, upstream)
    grads_full = [W.grad.copy() for W, _ in params]
    for W, b in params:
        W.grad.fill(0.0)
        b.grad.fill(0.0)
    dx_ckpt, stored = checkpointed_backward(layers, x, upstream, every)
    np.testing.assert_allclose(dx_ckpt, dx_full, rtol=1e-12, atol=1e-15)
    for (W, _), expected in zip(params, grads_full, strict=True):
        np.testing.assert_allclose(W.grad, expected, rtol=1e-12, atol=1e-15)
    assert stored_full == len(layers) + 1
    assert stored == -(-len(layers) // every)  # ceil(L / every) checkpoints


def test_every_must_be_positive(rng):
    layers, _ = _chain(rng, depth=2)
    with pytest.raises(ValueError):
        checkpointed_backward(layers, np.ones((4, 1)), np.ones((4, 1)), 0)
