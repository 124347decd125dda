"""Where a function is not differentiable, and how a gradient check finds out.

ReLU has a kink at 0: its derivative jumps from 0 to 1. A central difference
whose two probes x - h and x + h fall on different sides of the kink measures
neither slope, so comparing it with backprop's answer says nothing about the
backprop code. Ops with a kink report, while a recorder is active, which side
of the kink each input fell on. A gradient check records that pattern at x and
at both probes; an entry whose probes change the pattern is "not checkable"
rather than failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# The active recorder, or None. Ops consult it only at their kinks, so the
# cost when no check is running is a single global lookup.
active: list[object] | None = None


def note(side: object) -> None:
    """Record which side of a kink an op's input fell on (called by the ops)."""
    if active is not None:
        active.append(np.array(side, copy=True))


@contextmanager
def recording() -> Iterator[list[object]]:
    """Collect the kink sides noted by every op evaluated inside the block."""
    global active
    previous, active = active, []
    try:
        yield active
    finally:
        active = previous


def same_sides(a: list[object], b: list[object]) -> bool:
    """True when two recordings put every kinked input on the same side."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
