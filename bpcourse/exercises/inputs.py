"""Drawing inputs for the exercises: numbers away from zero, sizes that differ.

Shared by the exercise modules. Each helper draws from the generator it is
given, in a fixed order, so that a seed always gives the same inputs (the
solution notebooks store the verdicts of seeded checks).
"""

from __future__ import annotations

import numpy as np

KINK_MARGIN = 0.1  # |z| of every ReLU pre-activation is at least this


def scalar_away_from_zero(rng: np.random.Generator, low: float = 0.3, high: float = 2.0) -> float:
    """A float with low <= |x| <= high and a random sign (no accidental zeros or ones)."""
    return float(rng.uniform(low, high) * rng.choice([-1.0, 1.0]))


def away_from_zero(
    rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.3, high: float = 2.0
) -> np.ndarray:
    """An array of ``shape`` with low <= |entry| <= high and random signs."""
    return rng.uniform(low, high, shape) * rng.choice((-1.0, 1.0), shape)


def distinct_sizes(rng: np.random.Generator, count: int, low: int = 2, high: int = 6) -> list[int]:
    """``count`` different sizes from low..high, in random order.

    With every size different, a transposed answer or a sum over the wrong axis
    has the wrong shape and can never pass by accident.
    """
    return [int(s) for s in rng.choice(np.arange(low, high + 1), size=count, replace=False)]
