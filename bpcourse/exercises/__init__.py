"""The exercise registry: every graded function of the course, in one place.

The notebook self-checks (``bpcourse.check``), the nbgrader test cells and the
command-line grader all judge through this registry, so they cannot disagree.
Each notebook's exercises live in a module of their own; notebook 00's
prerequisites check in ``prerequisites``, and the questions that ask why, of
every notebook, in ``why`` (predictions: ``prediction``). The written answers,
graded by hand and never by this registry, are listed in ``written``.
"""

from __future__ import annotations

from bpcourse.exercises import (
    affine_and_activations,
    build_your_own_engine,
    cost_of_backprop,
    digits_capstone,
    merges_and_traversal,
    minibatches_and_training,
    modular_layers,
    prerequisites,
    rules_transformers_need,
    scalar_graphs,
    softmax_cross_entropy,
    start_here,
    vanishing_and_exploding,
    why,
)
from bpcourse.exercises.core import Exercise, Misconception, Verdict, judge

__all__ = ["REGISTRY", "Exercise", "Misconception", "Verdict", "get", "judge", "by_notebook"]

_MODULES = (
    start_here,
    prerequisites,
    scalar_graphs,
    merges_and_traversal,
    affine_and_activations,
    softmax_cross_entropy,
    minibatches_and_training,
    vanishing_and_exploding,
    cost_of_backprop,
    build_your_own_engine,
    modular_layers,
    digits_capstone,
    rules_transformers_need,
    why,
)

# Keyed by (notebook, function name): a name may be graded in two notebooks
# (tanh_backward on scalars in 01 and on arrays in 03).
REGISTRY: dict[tuple[str, str], Exercise] = {}
for _module in _MODULES:
    for _exercise in _module.EXERCISES:
        _key = (_exercise.notebook, _exercise.name)
        if _key in REGISTRY:
            raise RuntimeError(f"exercise {_key} is registered twice")
        REGISTRY[_key] = _exercise


def get(name: str, notebook: str | None = None) -> Exercise:
    """The exercise graded as function ``name`` (in ``notebook``, when given)."""
    found = [e for (nb, n), e in REGISTRY.items() if n == name and notebook in (None, nb)]
    if len(found) == 1:
        return found[0]
    if not found:
        where = f" in notebook {notebook}" if notebook else ""
        known = ", ".join(sorted({n for _, n in REGISTRY}))
        raise KeyError(f"no exercise called {name!r}{where}; known: {known}")
    notebooks = ", ".join(e.notebook for e in found)
    raise KeyError(f"{name!r} is graded in several notebooks ({notebooks}): say which with notebook=...")


def by_notebook(notebook: str) -> list[Exercise]:
    """The exercises of one notebook, in the order they appear."""
    return [e for (nb, _), e in REGISTRY.items() if nb == notebook]
