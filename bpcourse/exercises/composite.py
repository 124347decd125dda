"""Exercises made of steps: their classic mistakes are the steps' own, inserted into the whole.

A multi-step exercise (a two-layer network's gradients, a whole model's loss and
gradients, softmax and cross-entropy together) is made of steps that are
exercises of their own: an affine backward, an activation's backward, a softmax,
a loss. A learner who gets one step wrong inside the whole should read what the
single-step exercise says about that mistake, and where it happened, not only
"12 of 12 entries are wrong".

``Composite`` writes the exercise's computation from named steps, each a plain
numpy function with the inputs and the outputs of its single-step exercise
(``steps["layer1"](g=..., x=..., W=...) -> (dW, db, dx)``). ``Part`` says which
single-step exercise a step is, in words where it sits, and which of that
exercise's misconceptions can happen there (a mistake that only makes the
whole raise, such as a row where the next step needs a column, is left out:
the judge's shape hint speaks for it). ``Composite.inserted`` turns every one
of them into a misconception of the whole: the computation with that one step
swapped for the single-step misconception's variant (the outputs the variant
leaves as None taken from the right step), and the message "where: what the
single-step exercise says". ``Composite.variant`` builds the composite's own
mistakes the same way, with any step replaced by hand.

A right ``Composite.variant()`` must agree with the exercise's reference: the
tests check that it does on every exercise built from steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcourse.exercises.core import Exercise, Misconception, Outputs

Step = Callable[..., Outputs]


@dataclass(frozen=True)
class Part:
    """A step of a composite exercise that is an exercise of its own.

    ``step``: the step's name in the composite (the misconceptions' keys are
    "step.key"); ``where``: the words put before the single-step message, saying
    which step it is and what its symbols stand for here; ``keys``: the
    single-step exercise's misconceptions that can happen at this step.
    """

    step: str
    exercise: Exercise
    where: str
    keys: tuple[str, ...]


def _quiet(function: Callable[..., Outputs]) -> Callable[..., Outputs]:
    """``function`` with numpy's overflow and invalid-value warnings silenced (wrong steps overflow)."""

    def run(**inputs: Any) -> Outputs:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return function(**inputs)

    return run


def wrong_step(exercise: Exercise, key: str, right: Step) -> Step:
    """The step with the misconception ``key`` of ``exercise``; what it leaves alone comes from ``right``."""
    mistake = next((m for m in exercise.misconceptions if m.key == key), None)
    if mistake is None:
        raise KeyError(f"{exercise.name} has no misconception {key!r}")

    def step(**inputs: Any) -> Outputs:
        wrong = mistake.variant(**inputs)
        if any(value is None for value in wrong):
            wrong = tuple(r if w is None else w for w, r in zip(wrong, right(**inputs), strict=True))
        return wrong

    return step


@dataclass(frozen=True)
class Composite:
    """An exercise's computation written from named steps.

    ``whole(steps, **inputs)`` computes the exercise's outputs, in its output
    order, calling ``steps[name](...)`` for each step; ``right`` holds the right
    function of every step.
    """

    whole: Callable[..., Outputs]
    right: Mapping[str, Step]

    def variant(self, **changed: Step) -> Callable[..., Outputs]:
        """The exercise's outputs with the named steps replaced (none: the right answer)."""
        unknown = set(changed) - set(self.right)
        if unknown:
            names = ", ".join(self.right)
            raise KeyError(f"no step called {', '.join(sorted(unknown))}; the steps are {names}")
        steps = {**self.right, **changed}
        return _quiet(lambda **inputs: self.whole(steps, **inputs))

    def inserted(self, parts: Sequence[Part]) -> tuple[Misconception, ...]:
        """One misconception per part and key: that step's classic mistake, inside the whole."""
        found = []
        for part in parts:
            messages = {m.key: m.message for m in part.exercise.misconceptions}
            for key in part.keys:
                step = wrong_step(part.exercise, key, self.right[part.step])
                message = f"{part.where}: {messages[key]}"
                found.append(Misconception(f"{part.step}.{key}", message, self.variant(**{part.step: step})))
        return tuple(found)
