"""Small synthetic 2-D data sets for training classifiers in the notebooks.

Everything is generated on the spot (nothing is downloaded) and follows the
course's layout: inputs ``X`` of shape (2, N), one example per column; labels
both as one-hot columns ``Y`` of shape (K, N) and as integers ``labels`` of
shape (N,). Classes are balanced and stored one after the other (all of class
0, then all of class 1, ...): shuffle before cutting minibatches. A seeded
generator (or an integer seed) gives the same data on every call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blobs", "one_hot", "spirals"]

Dataset = tuple[np.ndarray, np.ndarray, np.ndarray]


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check_counts(n_per_class: int, n_classes: int) -> None:
    if int(n_per_class) != n_per_class or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")


def one_hot(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """One-hot columns for integer labels.

    Args:
        labels: integers in 0..K-1, shape (N,).
        n_classes: K; by default one more than the largest label.

    Returns:
        Y of shape (K, N), float64, with Y[labels[i], i] = 1 and zeros elsewhere.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D array of integers, got shape {labels.shape} ({labels.dtype})")
    k = int(labels.max()) + 1 if n_classes is None and labels.size else int(n_classes or 0)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in 0..{k - 1}")
    Y = np.zeros((k, labels.size))
    Y[labels, np.arange(labels.size)] = 1.0
    return Y


def spirals(
    n_per_class: int,
    n_classes: int = 3,
    noise: float = 0.2,
    rng: np.random.Generator | int | None = None,
) -> Dataset:
    """K interleaved spiral arms in the plane, one arm per class.

    Point i of arm k sits at radius r = i / (n_per_class - 1) (from the centre
    out to 1) and angle θ = 2πk/K + 4r + noise·ε, with ε standard normal: each
    arm turns by 4 radians while it grows, and ``noise`` blurs the angle, so
    points near the centre (small r) mix the most. No straight line separates
    the classes: a classifier needs a hidden layer.

    Args:
        n_per_class: points in each arm.
        n_classes: K, the number of arms (and classes).
        noise: standard deviation of the angle's jitter, in radians.
        rng: a numpy Generator, an integer seed, or None (fresh randomness).

    Returns:
        (X, Y, labels): X of shape (2, N) with N = K · n_per_class, one point per
        column; Y one-hot of shape (K, N); labels of shape (N,), integers 0..K-1.
    """
    _check_counts(n_per_class, n_classes)
    gen = _generator(rng)
    radius = np.linspace(0.0, 1.0, n_per_class) if n_per_class > 1 else np.ones(1)
    columns, labels = [], []
    for k in range(n_classes):
        angle = 2.0 * np.pi * k / n_classes + 4.0 * radius + noise * gen.standard_normal(n_per_class)
        columns.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)]))
        labels.append(np.full(n_per_class, k))
    label_array = np.concatenate(labels)
    return np.concatenate(columns, axis=1), one_hot(label_array, n_classes), label_array


def blobs(
    n_per_class: int,
    n_classes: int = 3,
    spread: float = 0.5,
    distance: float = 2.0,
    rng: np.random.Generator | int | None = None,
) -> Dataset:
    """K round clusters whose centres sit evenly on a circle: an easy, nearly separable set.

    Args:
        n_per_class: points in each cluster.
        n_classes: K, the number of clusters (and classes).
        spread: standard deviation of each cluster around its centre.
        distance: radius of the circle the centres sit on.
        rng: a numpy Generator, an integer seed, or None (fresh randomness).

    Returns:
        (X, Y, labels) as for ``spirals``: X (2, N), Y one-hot (K, N), labels (N,).
    """
    _check_counts(n_per_class, n_classes)
    gen = _generator(rng)
    angles = 2.0 * np.pi * np.arange(n_classes) / n_classes
    centres = distance * np.stack([np.cos(angles), np.sin(angles)])  # (2, K)
    label_array = np.repeat(np.arange(n_classes), n_per_class)
    X = centres[:, label_array] + spread * gen.standard_normal((2, label_array.size))
    return X, one_hot(label_array, n_classes), label_array
