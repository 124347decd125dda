"""Data sets for training classifiers in the notebooks: small synthetic 2-D sets and real digits.

Nothing is downloaded: the 2-D sets are generated on the spot, and ``digits``
reads the 8x8 handwritten digits that scikit-learn ships inside its package.
Everything follows the course's layout: inputs ``X`` of shape (2, N), one example per column; labels
both as one-hot columns ``Y`` of shape (K, N) and as integers ``labels`` of
shape (N,). The synthetic classes are balanced and stored one after the other
(all of class 0, then all of class 1, ...): shuffle before cutting minibatches
(``split`` shuffles). A seeded
generator (or an integer seed) gives the same data on every call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blobs", "digits", "one_hot", "spirals", "split"]

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


DIGIT_PIXELS = 64  # 8x8 images, read row by row
DIGIT_CLASSES = 10
DIGIT_MAX_INK = 16.0  # the pixel values are counts 0..16 (4x4 blocks of a 32x32 bitmap)


def digits() -> Dataset:
    """The 1,797 handwritten digits (8x8 images) that scikit-learn ships inside its package.

    Read from the files scikit-learn installs (``sklearn.datasets.load_digits``):
    nothing is downloaded. Each column of X is one image, its 64 pixels read row
    by row and scaled from 0..16 to 0..1; ``X[:, i].reshape(8, 8)`` draws it.

    Returns:
        (X, Y, labels): X of shape (64, 1797), float64 in [0, 1]; Y one-hot of
        shape (10, 1797); labels of shape (1797,), the digits 0..9.

    Raises:
        ModuleNotFoundError: scikit-learn is not installed (the message says how to install it).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # the course depends on it; a hand-made environment may not have it
        raise ModuleNotFoundError(
            "the digits come with scikit-learn, which is not installed here: "
            "pip install scikit-learn (or install the course again: pip install .)"
        ) from exc
    bunch = load_digits()
    X = np.ascontiguousarray(bunch.data.T, dtype=np.float64) / DIGIT_MAX_INK
    labels = np.asarray(bunch.target, dtype=np.int64)
    return X, one_hot(labels, DIGIT_CLASSES), labels


def split(
    X: np.ndarray, labels: np.ndarray, n_validation: int, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random train/validation split of the columns of X.

    Args:
        X: inputs of shape (n, N), one example per column.
        labels: integers of shape (N,).
        n_validation: how many examples go to the validation set (1..N-1).
        rng: a numpy Generator, an integer seed, or None: the same seed gives the same split.

    Returns:
        (X_train, labels_train, X_val, labels_val): X_train (n, N - n_validation),
        X_val (n, n_validation), and their labels, (N - n_validation,) and (n_validation,).
    """
    X, labels = np.asarray(X), np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[1],):
        raise ValueError(
            "X must be (n, N) with one example per column and labels (N,); "
            f"got X {X.shape}, labels {labels.shape}"
        )
    if int(n_validation) != n_validation or not 0 < n_validation < X.shape[1]:
        raise ValueError(f"n_validation must be an integer from 1 to {X.shape[1] - 1}, got {n_validation!r}")
    order = _generator(rng).permutation(X.shape[1])
    val, train = order[: int(n_validation)], order[int(n_validation) :]
    return X[:, train], labels[train], X[:, val], labels[val]
