"""Gradescope's ``results.json`` for one graded submission.

The same grader runs as a Gradescope autograder: ``run_autograder`` calls
``bpcourse grade /autograder/submission --gradescope /autograder/results/results.json``
and Gradescope shows what this module writes. Each exercise becomes one test
case (``"<notebook>: <exercise>"``) whose output is the verdict's diagnosis
lines, the same words as the feedback files, which never show reference
values. What concerns the whole notebook (a cell that failed or hung, a file
that is not a notebook) goes into the top-level output.

Everything here but ``write_results`` is a pure function from plain data to
plain data: a result of ``grade_submission`` in, a ``results.json`` dict out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bpcourse.exercises.written import BY_HAND, by_hand_points
from bpcourse.grading.gradebook import TAMPERING_NOTE, readable, tampering
from bpcourse.grading.results import write_atomically

# Gradescope's visibility settings, from most to least hidden.
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


def _check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    return visibility


def _points(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _number(x: Any) -> float:
    """A finite float: Gradescope reads scores as JSON numbers, which cannot be NaN or Inf."""
    value = float(x)
    return value if math.isfinite(value) else 0.0


def case_name(notebook: str, exercise: str) -> str:
    return f"{notebook}: {exercise}"


def case_output(exercise: dict[str, Any]) -> str:
    """The diagnosis lines of one exercise's verdict, one per line (✓ right, ✗ wrong)."""
    lines = [f"✗ {TAMPERING_NOTE}"] if tampering(exercise) else []
    for line in exercise.get("lines", []):
        mark = "✓" if line.get("ok") else "✗"
        message = readable(line.get("message") or "")
        lines.append(f"{mark} {line.get('what', '')}" + (f": {message}" if message else ""))
    if not lines:
        lines.append(exercise.get("status", ""))
    return "\n".join(lines)


def exercise_case(notebook: str, exercise: dict[str, Any], visibility: str = "visible") -> dict[str, Any]:
    """One Gradescope test case for one exercise's verdict."""
    max_score = _number(exercise["max_score"])
    score = min(max(_number(exercise["score"]), 0.0), max_score)
    return {
        "name": case_name(notebook, exercise["exercise"]),
        "score": score,
        "max_score": max_score,
        "status": "passed" if exercise.get("status") == "passed" else "failed",
        "output": case_output(exercise),
        "visibility": _check_visibility(visibility),
    }


def summary_output(result: dict[str, Any]) -> str:
    """The top-level output: the notebook's total and what went wrong with the notebook as a whole."""
    name = result.get("notebook") or Path(result.get("path", "")).name or "this submission"
    lines = [f"{name}: {_points(result.get('score', 0.0))} / {_points(result.get('max_score', 0.0))} points"]
    pending = by_hand_points(result.get("exercises", []))
    if pending:
        lines[0] += f" + {_points(pending)} points to grade by hand"
        lines += [f"- {e['exercise']}: a written answer, graded by hand ({_points(e['max_score'])} points)"
                  for e in result.get("exercises", []) if e.get("status") == BY_HAND]  # fmt: skip
    problems = list(result.get("problems", []))
    if problems:
        lines += ["", "About the notebook as a whole:"]
        lines += [f"- {readable(problem)}" for problem in problems]
    return "\n".join(lines)


def results_json(
    result: dict[str, Any], visibility: str = "visible", stdout_visibility: str = "hidden"
) -> dict[str, Any]:
    """Gradescope's results.json (as a dict) for one result of ``grade_submission``.

    ``visibility`` applies to the submission and to every test case;
    ``stdout_visibility`` to the grader's own log (progress, table), which is
    meant for the instructor.
    """
    notebook = result.get("notebook") or Path(result.get("path", "")).stem
    # Written answers are graded by hand on Gradescope itself: the summary names them, no test scores them.
    exercises = [e for e in result.get("exercises", []) if e.get("status") != BY_HAND]
    tests = [exercise_case(notebook, e, visibility) for e in exercises]
    return {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": max(0, round(_number(result.get("seconds", 0.0)))),
        "output": summary_output(result),
        "visibility": _check_visibility(visibility),
        "stdout_visibility": _check_visibility(stdout_visibility),
        "tests": tests,
    }


def problem_results(
    message: str, visibility: str = "visible", stdout_visibility: str = "hidden"
) -> dict[str, Any]:
    """results.json for a submission that could not be graded at all (no notebook, several)."""
    return {
        "score": 0.0,
        "output": message,
        "visibility": _check_visibility(visibility),
        "stdout_visibility": _check_visibility(stdout_visibility),
        "tests": [],
    }


def not_one_notebook_message(paths: Sequence[str | Path]) -> str:
    """What to tell a learner whose submission holds no notebook or several."""
    if not paths:
        return "No notebook (.ipynb file) was found in your submission: upload your course notebook."
    names = ", ".join(Path(p).name for p in paths)
    return (
        f"Your submission holds {len(paths)} notebooks ({names}); upload exactly one "
        "course notebook per submission."
    )


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write results.json atomically (Gradescope reads it once run_autograder ends)."""
    write_atomically(Path(path), json.dumps(results, indent=1, ensure_ascii=False) + "\n")
