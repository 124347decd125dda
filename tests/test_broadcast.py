"""Property tests of ``bpcourse.tensor.unbroadcast``: the merge rule for broadcasting.

An input broadcast to a bigger shape is used once per copy, so its gradient is
the sum of the gradients of its copies.
"""

from __future__ import annotations

import math

import autograd
import autograd.numpy as anp
import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from bpcourse.tensor import Tensor, unbroadcast

SETTINGS = settings(max_examples=80, deadline=None)


@st.composite
def shape_pairs(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(small, big): ``small`` broadcasts to ``big``.

    ``big`` may have extra leading axes, and each axis of length 1 in ``small``
    may be stretched.
    """
    small = tuple(draw(st.lists(st.sampled_from([1, 1, 2, 3]), max_size=3)))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    tail = tuple(draw(st.integers(1, 4)) if n == 1 else n for n in small)
    return small, lead + tail


@SETTINGS
@given(shape_pairs())
def test_counts_the_copies(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    small, big = shapes
    assert np.broadcast_shapes(small, big) == big  # the strategy's promise
    summed = unbroadcast(np.ones(big), small)
    assert np.shape(summed) == small
    copies = math.prod(big) // math.prod(small)
    np.testing.assert_array_equal(summed, np.full(small, float(copies)))


@SETTINGS
@given(shape_pairs(), st.integers(0, 2**32 - 1))
def test_matches_autograd(shapes: tuple[tuple[int, ...], tuple[int, ...]], seed: int) -> None:
    small, big = shapes
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(big)
    x = rng.standard_normal(small)

    def loss(x):
        # autograd's broadcast_to wants the leading axes spelled out as 1s
        padded = anp.reshape(x, (1,) * (len(big) - len(small)) + small)
        return anp.sum(anp.broadcast_to(padded, big) * weights)

    expected = autograd.grad(loss)(x)
    summed = unbroadcast(weights, small)
    assert np.shape(summed) == small
    np.testing.assert_allclose(summed, expected, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(shape_pairs(), st.integers(0, 2**32 - 1))
def test_add_uses_it_for_both_inputs(shapes: tuple[tuple[int, ...], tuple[int, ...]], seed: int) -> None:
    """x (small) + y (big): dL/dx sums the upstream over the copies, dL/dy is the upstream."""
    small, big = shapes
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(big)
    x, y = Tensor(rng.standard_normal(small)), Tensor(rng.standard_normal(big))
    (x + y).backward(weights)
    np.testing.assert_allclose(x.grad, unbroadcast(weights, small), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y.grad, weights)


@SETTINGS
@given(st.lists(st.integers(1, 4), max_size=3))
def test_same_shape_is_returned_unchanged(dims: list[int]) -> None:
    grad = np.arange(math.prod(dims), dtype=float).reshape(dims)
    assert unbroadcast(grad, tuple(dims)) is grad


def test_bias_column() -> None:
    """A bias (m, 1) added to every column of an (m, B) array: its gradient sums the columns."""
    g = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), [[6.0], [22.0], [38.0]])
    np.testing.assert_array_equal(unbroadcast(g, (1, 4)), [[12.0, 15.0, 18.0, 21.0]])
    np.testing.assert_array_equal(unbroadcast(g, (4,)), [12.0, 15.0, 18.0, 21.0])
    assert unbroadcast(g, ()) == 66.0
