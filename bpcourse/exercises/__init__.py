"""The exercise registry: every graded function of the course, in one place.

The notebook self-checks (``bpcourse.check``), the nbgrader test cells and the
command-line grader all judge through this registry, so they cannot disagree.
Each notebook's exercises live in a module of their own.
"""

from __future__ import annotations

from bpcourse.exercises import scalar_graphs
from bpcourse.exercises.core import Exercise, Misconception, Verdict, judge

__all__ = ["REGISTRY", "Exercise", "Misconception", "Verdict", "get", "judge", "by_notebook"]

_MODULES = (scalar_graphs,)

REGISTRY: dict[str, Exercise] = {}
for _module in _MODULES:
    for _exercise in _module.EXERCISES:
        if _exercise.name in REGISTRY:
            raise RuntimeError(f"exercise {_exercise.name!r} is registered twice")
        REGISTRY[_exercise.name] = _exercise


def get(name: str) -> Exercise:
    """The exercise called ``name`` (the graded function's name)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no exercise called {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def by_notebook(notebook: str) -> list[Exercise]:
    """The exercises of one notebook, in the order they appear."""
    return [e for e in REGISTRY.values() if e.notebook == notebook]
