"""Gradient clipping by global norm: one scale for every gradient of a model.

The global norm of gradients g_1, ..., g_k (arrays of any shapes) is the norm
of all their entries together, ‖g‖ = (Σ_i Σ_entries g_i²)^½, as if the arrays
were flattened and joined into one vector. Clipping to ``max_norm`` c scales
every g_i by the same factor min(1, c / ‖g‖): a step whose gradient is longer
than c keeps its direction and gets length c; a shorter one is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def global_norm(grads: Sequence[np.ndarray]) -> float:
    """‖g‖ = (Σ_i Σ_entries g_i²)^½ over a list of arrays of any shapes."""
    if len(grads) == 0:
        raise ValueError("global_norm: the list of gradients is empty; there is no norm to take")
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))


def clip_by_global_norm(grads: Sequence[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float]:
    """Every gradient scaled by min(1, max_norm / ‖g‖), and ‖g‖ before clipping.

    ``grads``: arrays of any shapes (one per parameter); the clipped arrays have
    the same shapes. ``max_norm`` must be a positive number.
    """
    if not max_norm > 0:
        raise ValueError(f"clip_by_global_norm: max_norm must be a positive number, got {max_norm!r}")
    total = global_norm(grads)
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [np.asarray(g) * scale for g in grads], total
