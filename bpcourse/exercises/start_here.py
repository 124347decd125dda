"""The exercise of notebook 00_start_here: a warm-up on the subtraction node.

It exists so that the first notebook can show a self-check at work, wrong and
right, on a rule that no later notebook grades.
"""

from __future__ import annotations

import numpy as np

from bpcourse.exercises.core import NOT_YOURS, Exercise, Inputs, Misconception, slope
from bpcourse.exercises.inputs import scalar_away_from_zero
from bpcourse.exercises.scalar_graphs import FORGOT_UPSTREAM
from bpcourse.scalar import Value

NOTEBOOK = "00_start_here"


def _sub_inputs(rng: np.random.Generator) -> Inputs:
    # |upstream| >= 1.5 keeps the local derivatives (1, -1) alone visibly different from the answer.
    return {
        "upstream": scalar_away_from_zero(rng, 1.5, 3.0),
        "x": scalar_away_from_zero(rng),
        "y": scalar_away_from_zero(rng),
    }


def _sub_reference(upstream: float, x: float, y: float) -> tuple[float, float]:
    a, b = Value(x), Value(y)
    (a - b).backward(upstream)
    return a.grad, b.grad


def _sub_numeric(upstream: float, x: float, y: float) -> tuple[float, float]:
    return upstream * slope(lambda v: v - y, x), upstream * slope(lambda v: x - v, y)


SUB_BACKWARD = Exercise(
    name="sub_backward",
    notebook=NOTEBOOK,
    signature="sub_backward(upstream, x, y) -> (dx, dy)",
    summary="z = x - y: x receives the upstream gradient, y receives its negative",
    outputs=("dx", "dy"),
    points=1,
    make_inputs=_sub_inputs,
    reference=_sub_reference,
    numeric=_sub_numeric,
    misconceptions=(
        Misconception(
            "sign_not_flipped",
            "the minus sign belongs to y's local derivative: dz/dy = -1, "
            "so y receives minus the upstream gradient",
            lambda upstream, x, y: (upstream, upstream),
        ),
        Misconception("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, x, y: (1.0, -1.0)),
    ),
    revisit="Running a self-check: the subtraction node",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)

EXERCISES = (SUB_BACKWARD,)
