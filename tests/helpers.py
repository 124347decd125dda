"""Helpers shared by the exercise tests (``test_exercises_*.py``).

Judging a learner's function in one notebook, the classic mistakes a test
writes as a learner would, assertions on what a verdict says (and on what it
must never show), and grading a small notebook through the real sandbox.

Imported as ``from helpers import ...``: pytest puts ``tests/`` on ``sys.path``
(the folder has no ``__init__.py``), and ``conftest.py`` registers this module
for pytest's assertion rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bpcourse.check import verdict
from bpcourse.exercises import by_notebook, get
from bpcourse.exercises.core import Exercise, Verdict
from bpcourse.exercises.prediction import Prediction
from bpcourse.grading.runner import grade_submission
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import Submission

SEEDS = (0, 1, 2, 3, 4)

Judged = Callable[..., Verdict]


def judging(notebook: str) -> Judged:
    """``judged(function, name, seed=0)``: the verdict on ``function`` as exercise ``name``."""

    def judged(function: Callable[..., Any], name: str, seed: int | None = 0) -> Verdict:
        return verdict(function, name=name, seed=seed, notebook=notebook)

    return judged


def coded(notebook: str) -> list[Exercise]:
    """The notebook's exercises answered with code, in order: its why-questions (predictions,
    tested in ``test_why_questions.py``) left out."""
    return [e for e in by_notebook(notebook) if not isinstance(e.judge, Prediction)]


def stub(*args: Any) -> Any:
    """A function still as the notebook hands it out."""
    raise NotImplementedError()


# -- classic mistakes, as a learner writes them -----------------------------------------------------
@dataclass
class Mistake:
    """A learner's wrong function and what its verdict must say."""

    exercise: str
    learner: Callable[..., Any]
    phrases: tuple[str, ...]  # each must appear in the verdict
    status: str | None = "failed"  # None: any status but "passed"
    wrong: tuple[str, ...] = ()  # the lines that must fail (all, when empty)


def assert_mistake_named(result: Verdict, mistake: Mistake) -> None:
    """The verdict has the mistake's status, costs points, names it, and fails exactly its lines."""
    text = str(result)
    assert result.status == mistake.status if mistake.status else result.status != "passed", text
    assert result.score < result.max_score
    for phrase in mistake.phrases:
        assert phrase in text, f"{phrase!r} not in\n{text}"
    if mistake.wrong:
        assert {line.what for line in result.lines if not line.ok} == set(mistake.wrong), text


def assert_every_misconception_named(notebook: str, mistakes: Iterable[Mistake], judged: Judged) -> None:
    """Every misconception message of the notebook's exercises appears in the verdict on some mistake."""
    messages = {m.message for e in coded(notebook) for m in e.misconceptions}
    named = set()
    for mistake in mistakes:
        text = str(judged(mistake.learner, mistake.exercise))
        named |= {m for m in messages if m in text}
    assert named == messages, messages - named


def assert_written_from_steps(
    exercise: Exercise, steps: Any, learner: Callable[..., Any], judged: Judged, rng: np.random.Generator
) -> None:
    """A composite exercise written from its step functions (``steps.variant()``, no step
    swapped) gives the registry's reference on ten draws, and a learner built so passes."""
    for _ in range(10):
        inputs = exercise.make_inputs(rng)
        for right, ours in zip(exercise.reference(**inputs), steps.variant()(**inputs), strict=True):
            assert np.allclose(right, ours, rtol=1e-12, atol=1e-12)
    assert judged(learner(), exercise.name).passed


def mistakes_inside(
    composite: str,
    notebook: str,
    steps: Mapping[str, tuple[str, str]],
    mistakes: Iterable[Mistake],
    build: Callable[..., Callable[..., Any]],
) -> list[Mistake]:
    """The single-step mistakes, each made at one step of a composite exercise, as learners of the composite.

    ``steps`` maps a step of the composite to its single-step exercise, (name, notebook);
    ``build(**{step: function})`` is the composite written from its step functions, with
    ``function`` at ``step`` and the right function elsewhere. A single-step mistake whose
    verdict names a misconception that the composite inserts at that step (key
    "step.key") must be named inside the composite too, with the composite's message.
    """
    exercise = get(composite, notebook)
    messages = {m.key: m.message for m in exercise.misconceptions}
    found = []
    for step, (name, home) in steps.items():
        part = get(name, home)
        for mistake in mistakes:
            if mistake.exercise != name:
                continue
            text = str(verdict(mistake.learner, name=name, seed=0, notebook=home))
            for key in [m.key for m in part.misconceptions if m.message in text]:
                if f"{step}.{key}" in messages:
                    learner = build(**{step: mistake.learner})
                    found.append(Mistake(composite, learner, (messages[f"{step}.{key}"],), status=None))
    return found


def steps_left_out(composite: str, notebook: str, mistakes: Iterable[Mistake]) -> set[str]:
    """The misconceptions the composite takes from its steps ("step.key") that no mistake expects named."""
    expected = {phrase for mistake in mistakes for phrase in mistake.phrases}
    inserted = [m for m in get(composite, notebook).misconceptions if "." in m.key]
    return {m.key for m in inserted if m.message not in expected}


# -- what a verdict says ------------------------------------------------------------------------------
def assert_full_points(result: Verdict, points: float | None = None) -> None:
    """Passed with every point (and the exercise is worth ``points``, when given)."""
    assert result.status == "passed", str(result)
    assert result.score == result.max_score
    if points is not None:
        assert result.score == points


def assert_fails_with(result: Verdict, *phrases: str) -> None:
    """Not passed, points lost, and every phrase in the verdict."""
    assert result.status != "passed", str(result)
    assert result.score < result.max_score
    for phrase in phrases:
        assert phrase in str(result), str(result)


def assert_not_implemented(result: Verdict) -> None:
    assert result.status == "not implemented"
    assert result.score == 0
    assert "not implemented" in str(result)


def with_nan(value: Any) -> Any:
    """``value`` with its first entry NaN (a NaN float for a single number)."""
    if np.ndim(value) == 0:
        return float("nan")
    value = np.array(value, dtype=float)
    value.flat[0] = np.nan
    return value


# -- nothing leaks ------------------------------------------------------------------------------------
def spellings(value: float) -> set[str]:
    """Ways a number could be printed; all with three decimals or more, so "1" or "(2, 0)" never match."""
    return {f"{value:.3f}", f"{value:.4f}", f"{value:.6f}", f"{value:.3e}", repr(value)}


def rendered(result: Verdict) -> str:
    """Everything a learner can see of a verdict: the text, the HTML and the JSON."""
    return str(result) + result._repr_html_() + json.dumps(result.to_dict(), ensure_ascii=False)


def _near_zero(value: float) -> bool:
    return abs(value) < 1e-3  # masked entries are exactly 0: "0.000" says nothing


def assert_no_number_shown(
    result: Verdict, arrays: Iterable[Any], ignore: Callable[[float], bool] = _near_zero
) -> None:
    """No entry of ``arrays`` (reference outputs, inputs) appears in any rendering of the verdict."""
    shown = rendered(result)
    for array in arrays:
        for value in np.asarray(array, dtype=float).ravel():
            if ignore(float(value)):
                continue
            for spelling in spellings(float(value)):
                assert spelling not in shown, f"{spelling} appears in\n{shown}"


# -- through the grading sandbox -------------------------------------------------------------------------
LIMITS = Limits(cell_seconds=20, call_seconds=10, memory_mb=1536)


def write_notebook(path: Path, notebook: str, sources: Mapping[str, str]) -> Path:
    """A submission of ``notebook``: a heading, the setup cell of the notebook, one cell per source."""
    setup = (
        "import numpy as np\n"
        "from bpcourse.check import for_notebook\n"
        f"check, grade = for_notebook({notebook!r})"
    )
    cells = [new_markdown_cell(f"# Notebook {notebook[:2]}"), new_code_cell(setup)]
    cells += [new_code_cell(source) for source in sources.values()]
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


def grade_notebook(path: Path, notebook: str, sources: Mapping[str, str], seed: int) -> dict[str, Any]:
    """Write the submission to ``path`` and grade it in the sandbox, as ``bpcourse grade`` does."""
    submission = Submission("learner", notebook, write_notebook(path, notebook, sources))
    return grade_submission(submission, LIMITS, seed=seed)


def assert_full_marks(result: dict[str, Any], max_score: float) -> None:
    """A sandbox result with no problems, every exercise in code passed, and all ``max_score`` points.

    The submissions of these tests answer no why-question: those read "missing" (and
    written answers, "to grade by hand").
    """
    assert result["problems"] == [], result
    names = {e.name for e in coded(result["notebook"])}
    mine = [e for e in result["exercises"] if e["exercise"] in names]
    assert len(mine) == len(names), result
    assert sum(e["score"] for e in mine) == sum(e["max_score"] for e in mine) == max_score, result
    assert all(e["status"] == "passed" for e in mine), result
    others = {e["status"] for e in result["exercises"] if e["exercise"] not in names}
    assert others <= {"missing", "to grade by hand"}, result


def by_exercise(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The graded exercises of a sandbox result, by name."""
    return {e["exercise"]: e for e in result["exercises"]}


def lines_text(entry: dict[str, Any]) -> str:
    """The lines of one graded exercise as "what: message" text."""
    return " ".join(f"{ln['what']}: {ln['message']}" for ln in entry["lines"])
