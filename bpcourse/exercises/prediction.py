"""Predictions: exercises whose answer is a choice, a shape, a sign or a number, not code.

A why-question asks the learner to commit to an answer before the notebook
shows it. The learner writes a function of no arguments that returns it::

    def why_reverse_order():
        return "b"

and ``check(why_reverse_order)`` judges it like every exercise (points,
gradebook, nbgrader's ``grade``). A right answer is shown with a sentence that
explains why it is right; a wrong one gets a hint that points at the idea
without naming the answer (the hint of the classic mistake behind that wrong
answer when there is one, otherwise the question's general hint). The verdict
never shows the right answer, and it depends on the returned value alone: no
random input is drawn, so it is the same on every run.

Kinds of answer (``Prediction.kind``):

* ``"choice"``: one letter of ``choices``; case, spaces and brackets are ignored ("(B) " is "b");
* ``"shape"``: a tuple (or list) of non-negative ints, the shape of an array;
* ``"sign"``: +1, -1 or 0, the sign of a quantity;
* ``"number"``: a real number, right within ``rtol`` (relative) of the answer.

``predict(...)`` builds the ``Exercise``; its judge is the ``Prediction``
itself, so ``isinstance(exercise.judge, Prediction)`` tells a prediction
apart and gives its explanation (used by the tests that keep explanations out
of student notebooks).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    Line,
    Misconception,
    Verdict,
    run_learner,
    type_name,
    verdict_of,
)

KINDS = ("choice", "shape", "sign", "number")
ANSWER = "answer"  # the one line of a prediction's verdict (and its one output)


class _Unreadable(ValueError):
    """What the learner returned is not an answer of this kind; the message says what is expected."""


@dataclass(frozen=True)
class Prediction:
    """How a prediction is judged: its kind, its answer, what to say after a right or a wrong one.

    ``wrong``: the classic wrong answers, each with a hint that does not give
    the right one away. ``hint``: what any other wrong answer reads.
    """

    kind: str
    answer: Any
    explanation: str
    hint: str
    choices: tuple[str, ...] = ()
    wrong: Mapping[Any, str] = field(default_factory=dict)
    rtol: float = 1e-6

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a prediction's kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "choice" and self.answer not in self.choices:
            raise ValueError(f"the answer {self.answer!r} is not one of the choices {self.choices}")
        for wrong in self.wrong:
            if self.same(self.read(wrong)):
                raise ValueError(f"{wrong!r} is listed as a wrong answer but it is the right one")

    def read(self, raw: Any) -> Any:
        """The learner's answer in the kind's normal form; ``_Unreadable`` when it is not one."""
        if self.kind == "choice":
            return self._read_choice(raw)
        if self.kind == "shape":
            return _read_shape(raw)
        number = _read_number(raw)
        if self.kind == "sign" and number not in (-1.0, 0.0, 1.0):
            raise _Unreadable(f"should be +1, -1 or 0 (a sign), got {number:g}")
        return number

    def _read_choice(self, raw: Any) -> str:
        letters = ", ".join(f'"{c}"' for c in self.choices)
        if not isinstance(raw, str):
            raise _Unreadable(f"should be one letter as a string ({letters}), got {type_name(raw)}")
        letter = raw.strip().strip("()").strip().lower()
        if letter not in self.choices:
            shown = raw if len(raw) <= 20 else raw[:20] + "..."
            raise _Unreadable(f"should be one of {letters}, got {shown!r}")
        return letter

    def same(self, got: Any) -> bool:
        """True when ``got`` (in normal form) is the right answer."""
        if self.kind == "number":
            return math.isclose(got, float(self.answer), rel_tol=self.rtol, abs_tol=1e-12)
        if self.kind == "shape":
            return got == tuple(self.answer)
        if self.kind == "sign":
            return got == float(self.answer)
        return got == self.answer

    def hint_for(self, got: Any) -> str:
        """The hint of the classic mistake that gives ``got``, or the general hint."""
        for wrong, message in self.wrong.items():
            if self.read(wrong) == got:
                return message
        return self.hint

    def __call__(self, exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
        """The judge: one line, with the explanation when right and a hint when wrong.

        ``rng`` is not used: a prediction's verdict depends on the answer alone.
        """
        returned, stop = run_learner(exercise, call, {})
        if stop is not None:
            return stop
        try:
            got = self.read(returned)
        except _Unreadable as exc:
            return verdict_of(exercise, "failed", [Line(ANSWER, False, str(exc))])
        if self.same(got):
            right = [Line(ANSWER, True, self.explanation)]
            return verdict_of(exercise, "passed", right, float(exercise.points))
        return verdict_of(exercise, "failed", [Line(ANSWER, False, self.hint_for(got))])


def _read_shape(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, tuple | list):
        raise _Unreadable(f"should be a shape, a tuple of whole numbers such as (2, 3), got {type_name(raw)}")
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in raw):
        raise _Unreadable("should be a shape: every entry a whole number, 0 or more")
    return tuple(int(n) for n in raw)


def _read_number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise _Unreadable(f"should be a number, got {type_name(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise _Unreadable(f"should be a finite number, got {value}")
    return value


def predict(
    name: str,
    notebook: str,
    summary: str,
    prediction: Prediction,
    revisit: str,
    points: float = 1,
) -> Exercise:
    """The exercise ``name()`` -> the answer of ``prediction``, worth ``points``.

    Each classic wrong answer is also a ``Misconception`` (its variant returns
    that answer), so the registry's tests try every one of them.
    """
    answer = prediction.answer
    mistakes = tuple(
        Misconception(f"answers_{_key(wrong)}", message, lambda wrong=wrong: (wrong,))
        for wrong, message in prediction.wrong.items()
    )
    return Exercise(
        name=name,
        notebook=notebook,
        signature=f"{name}() -> {_returns(prediction)}",
        summary=summary,
        outputs=(ANSWER,),
        points=points,
        make_inputs=lambda rng: {},
        reference=lambda: (answer,),
        misconceptions=mistakes,
        revisit=revisit,
        trials=1,
        judge=prediction,
        refuses=NOT_YOURS,
        instead="answer it yourself",
    )


def _key(wrong: Any) -> str:
    is_shape = isinstance(wrong, Sequence) and not isinstance(wrong, str)
    text = "x".join(map(str, wrong)) if is_shape else str(wrong)
    return "".join(c if c.isalnum() else "_" for c in text)


def _returns(prediction: Prediction) -> str:
    if prediction.kind == "choice":
        return "one of " + ", ".join(f'"{c}"' for c in prediction.choices)
    return {"shape": "a shape (tuple)", "sign": "+1, -1 or 0", "number": "a number"}[prediction.kind]
