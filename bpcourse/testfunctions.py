"""Named test functions that exercises hand to a learner's code.

They live outside the exercise registry on purpose: a learner's function that
receives one can reach this module's globals, and there is nothing here but
the test functions themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SmoothFunction:
    """A named smooth test function of one float (named so it can be sent to another process)."""

    name: str

    def __call__(self, x: float) -> float:
        return SMOOTH_FUNCTIONS[self.name](x)


SMOOTH_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "exp(2x)": lambda x: math.exp(2.0 * x),
    "sin(3x) + x^3": lambda x: math.sin(3.0 * x) + x**3,
    "x tanh(x) + x^2": lambda x: x * math.tanh(x) + x * x,
}
