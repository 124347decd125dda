"""Tests of the synthetic data sets (``bpcourse.datasets``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bpcourse.datasets import blobs, digits, one_hot, spirals, split

GENERATORS = {"spirals": spirals, "blobs": blobs}


@pytest.mark.parametrize("name", list(GENERATORS))
@pytest.mark.parametrize(("n_per_class", "n_classes"), [(50, 3), (7, 2), (1, 4), (20, 5)])
def test_shapes_follow_the_course_layout(name, n_per_class, n_classes):
    X, Y, labels = GENERATORS[name](n_per_class, n_classes=n_classes, rng=0)
    N = n_per_class * n_classes
    assert X.shape == (2, N) and X.dtype == np.float64
    assert Y.shape == (n_classes, N) and Y.dtype == np.float64
    assert labels.shape == (N,) and labels.dtype.kind == "i"


@pytest.mark.parametrize("name", list(GENERATORS))
def test_labels_are_one_hot_columns_that_agree_with_the_integers(name):
    X, Y, labels = GENERATORS[name](40, n_classes=3, rng=1)
    assert set(np.unique(Y)) == {0.0, 1.0}
    assert np.array_equal(Y.sum(axis=0), np.ones(X.shape[1]))
    assert np.array_equal(Y.argmax(axis=0), labels)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_classes_are_balanced(name):
    _, Y, labels = GENERATORS[name](33, n_classes=4, rng=2)
    assert np.array_equal(np.bincount(labels), [33] * 4)
    assert np.array_equal(Y.sum(axis=1), [33.0] * 4)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_a_seed_gives_the_same_data_and_another_seed_other_data(name):
    make = GENERATORS[name]
    first, again = make(30, rng=5), make(30, rng=np.random.default_rng(5))
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)
    other = make(30, rng=6)
    assert not np.array_equal(first[0], other[0])
    assert np.array_equal(first[2], other[2])  # the labels do not depend on the noise


def test_a_generator_passed_in_is_used_and_advanced():
    rng = np.random.default_rng(3)
    X1, _, _ = spirals(10, rng=rng)
    X2, _, _ = spirals(10, rng=rng)
    assert not np.array_equal(X1, X2)


def test_spiral_arms_without_noise_lie_on_their_curves():
    X, _, labels = spirals(25, n_classes=3, noise=0.0, rng=0)
    radius = np.hypot(X[0], X[1])
    for k in range(3):
        r = radius[labels == k]
        assert np.allclose(r, np.linspace(0, 1, 25))
        angle = np.arctan2(X[1, labels == k], X[0, labels == k])[1:]
        expected = 2 * np.pi * k / 3 + 4 * r[1:]
        assert np.allclose(np.angle(np.exp(1j * (angle - expected))), 0.0, atol=1e-12)
    assert radius.max() <= 1.0 + 1e-12


def test_spirals_are_not_linearly_separable_but_blobs_nearly_are():
    """A least-squares linear classifier: poor on spirals, good on blobs (what the notebook relies on)."""

    def linear_accuracy(X, Y, labels):
        A = np.vstack([X, np.ones(X.shape[1])])
        weights = np.linalg.lstsq(A.T, Y.T, rcond=None)[0]
        return np.mean((A.T @ weights).argmax(axis=1) == labels)

    assert linear_accuracy(*spirals(100, rng=0)) < 0.7
    assert linear_accuracy(*blobs(100, rng=0)) > 0.9


def test_one_hot():
    Y = one_hot(np.array([2, 0, 1, 2]))
    assert np.array_equal(Y, [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    assert one_hot(np.array([0, 1]), 4).shape == (4, 2)
    with pytest.raises(ValueError, match="0..1"):
        one_hot(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="1-D array of integers"):
        one_hot(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="1-D array of integers"):
        one_hot(np.array([0.0, 1.0]))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError, match="positive integer"):
        spirals(bad)
    with pytest.raises(ValueError, match="positive integer"):
        blobs(10, n_classes=bad)


# -- the digits scikit-learn ships ------------------------------------------------------------------
def test_digits_come_in_the_course_layout():
    X, Y, labels = digits()
    assert X.shape == (64, 1797) and X.dtype == np.float64
    assert Y.shape == (10, 1797) and labels.shape == (1797,) and labels.dtype.kind == "i"
    assert X.min() == 0.0 and X.max() == 1.0  # 0..16 ink counts, scaled
    assert np.array_equal(Y.argmax(axis=0), labels)
    assert set(np.bincount(labels)) <= set(range(170, 190))  # about 180 of each digit


def test_digits_say_how_to_install_scikit_learn_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # what an environment without it sees
    with pytest.raises(ModuleNotFoundError, match="pip install scikit-learn"):
        digits()


def test_split_is_a_seeded_permutation_of_the_columns():
    X = np.arange(20.0).reshape(2, 10)
    labels = np.arange(10)
    X_train, labels_train, X_val, labels_val = split(X, labels, 3, rng=0)
    assert X_train.shape == (2, 7) and X_val.shape == (2, 3)
    assert sorted([*labels_train, *labels_val]) == list(range(10))
    assert np.array_equal(X_train[0], labels_train) and np.array_equal(X_val[1], labels_val + 10)
    again = split(X, labels, 3, rng=0)
    assert all(
        np.array_equal(a, b) for a, b in zip(again, (X_train, labels_train, X_val, labels_val), strict=True)
    )
    assert not np.array_equal(split(X, labels, 3, rng=1)[3], labels_val)


@pytest.mark.parametrize(
    ("X", "labels", "n_validation", "message"),
    [
        (np.zeros((2, 5)), np.zeros(4, dtype=int), 1, "one example per column"),
        (np.zeros(5), np.zeros(5, dtype=int), 1, "one example per column"),
        (np.zeros((2, 5)), np.zeros(5, dtype=int), 0, "from 1 to 4"),
        (np.zeros((2, 5)), np.zeros(5, dtype=int), 5, "from 1 to 4"),
        (np.zeros((2, 5)), np.zeros(5, dtype=int), 1.5, "from 1 to 4"),
    ],
)
def test_split_refuses_what_it_cannot_split(X, labels, n_validation, message):
    with pytest.raises(ValueError, match=message):
        split(X, labels, n_validation)
