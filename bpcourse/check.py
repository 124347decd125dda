"""Self-checks for the notebooks: ``check(affine_backward)`` right after an exercise.

The learner's function is tried on fresh random inputs, compared with the
engine (which agrees with finite differences on those inputs), and the result
is shown as one line per output: a tick, or a cross with what is wrong in
words (a transposed product, a missing sum at a merge, ...). A function that
still raises NotImplementedError reads "not implemented yet".

``grade(function)`` does the same and returns the points as a plain number:
the graded nbgrader cells end with it, and nbgrader reads the number as
partial credit.

A function that uses what its exercise refuses (the engine's ``topological_order``
for the exercise ``topological_order``, ``Tensor`` for a backward rule, ...)
scores 0 with one line saying what it used. It is read before it runs (its
source and the learner's helpers it calls; what its globals are bound to), and
each call runs with the refused things out of its reach
(``bpcourse.delegation.refusing`` on the notebook's globals). Outside
``check`` and ``grade`` nothing changes: demonstration cells use the engine
freely.

A notebook binds both to itself in its first cell, so that a function name
graded in two notebooks (``tanh_backward``) is judged as the right exercise::

    check, grade = for_notebook("03_affine_and_activations")
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from bpcourse import errormap
from bpcourse.delegation import namespace_of, refused_by, refusing
from bpcourse.exercises import get
from bpcourse.exercises.core import Exercise, Verdict, call_directly, delegated, judge


def _name_of(function: Callable[..., Any], name: str | None) -> str:
    if name is not None:
        return name
    found = getattr(function, "__name__", None)
    if not found:
        raise TypeError("pass the exercise's function itself, e.g. check(affine_backward)")
    return found


def verdict(
    function: Callable[..., Any],
    name: str | None = None,
    seed: int | None = None,
    notebook: str | None = None,
    watch: errormap.Watch | None = None,
) -> Verdict:
    """Judge ``function`` as the exercise ``name`` (default: the function's own name).

    ``watch``, when given, keeps the calls made (for the error map under a wrong answer).
    """
    exercise = get(_name_of(function, name), notebook)
    found = refused_by(function, exercise.refuses)
    if found:
        return delegated(exercise, found[0])
    call = call_directly(_refusing_engine(function, exercise))
    return judge(exercise, watch.around(call) if watch else call, np.random.default_rng(seed))


def _refusing_engine(function: Callable[..., Any], exercise: Exercise) -> Callable[..., Any]:
    """``function``, each call of it run with what ``exercise`` refuses out of its reach."""
    namespace = namespace_of(function)

    def call(*args: Any) -> Any:
        with refusing(namespace, exercise.refuses, exercise.instead):
            return function(*args)

    return call


def check(
    function: Callable[..., Any],
    name: str | None = None,
    seed: int | None = None,
    notebook: str | None = None,
    picture: bool = True,
) -> Verdict:
    """Run the self-check and show the result (HTML in Jupyter, text elsewhere).

    ``picture``: under a wrong answer, in Jupyter, a map of where it is wrong (``bpcourse.errormap``).
    """
    watch = errormap.Watch() if picture else None
    result = verdict(function, name, seed, notebook, watch)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(result)
            if watch is not None:
                errormap.show(get(result.exercise, notebook), result, watch)
            return None  # type: ignore[return-value]  # shown once, not echoed again
    except ImportError:
        pass
    print(result)
    return result


def grade(
    function: Callable[..., Any],
    name: str | None = None,
    seed: int | None = None,
    notebook: str | None = None,
) -> float:
    """The points ``function`` earns as the exercise ``name``: a number, for nbgrader."""
    return verdict(function, name, seed, notebook).score


def for_notebook(notebook: str) -> tuple[Callable[..., Any], Callable[..., float]]:
    """``check`` and ``grade`` bound to one notebook's exercises."""
    return partial(check, notebook=notebook), partial(grade, notebook=notebook)
