"""The class report from nbgrader: its gradebook database and the diagnoses in the graded notebooks.

A class graded with ``nbgrader autograde`` has its scores in the course
folder's ``gradebook.db`` (one grade per test cell ``check_<function>``), and
its diagnoses in the autograded notebooks: each test cell shows the verdict of
``check(function)``, the same lines ``bpcourse grade`` writes in its gradebook
(``✗ dW: has shape ... — this is x gᵀ, the transpose of dW``), and these are
what the feedback pages show the students. ``results`` turns both into the
results ``bpcourse.grading.report.build`` reads, so the report of an nbgrader
class is the report of a ``bpcourse grade`` class:

- the score of each exercise is nbgrader's (a manual grade included), its
  maximum the cell's points;
- its status and lines are the verdict shown in the autograded notebook's
  test cell; a test cell that raised instead says "missing" (the function is
  not defined: a NameError naming it) or "error"; without an autograded
  notebook, the status comes from the score alone (passed, partial, failed);
- a student without a submission of a notebook counts as having handed in
  nothing, as in the report of ``bpcourse grade``;
- a written answer (``bpcourse.exercises.written``) not yet graded in the
  formgrader is "to grade by hand", with no score; once graded, its status
  comes from the score given by hand. Either way the totals count only the
  automatically graded cells, as the report of ``bpcourse grade`` does.

nbgrader is the instructor's optional extra: without it, ``NbgraderMissing``
says how to install it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from bpcourse.exercises.written import BY_HAND, written_by_notebook

GRADE_PREFIX = "check_"
_HEAD = re.compile(r"^(?P<exercise>\w+): (?P<status>[a-z ]+) \([\d.]+/[\d.]+ points\)$")
_LINE = re.compile(r"^  (?P<mark>[✓✗]) (?P<what>[^:]+?)(?:: (?P<message>.*))?$")


class NbgraderMissing(Exception):
    """nbgrader is not installed here; the message says how to install it."""


class NoGradebook(Exception):
    """The folder holds no nbgrader gradebook; the message says what to give instead."""


def verdict_of_text(text: str) -> dict[str, Any] | None:
    """The status and lines of a verdict as ``check`` prints it; None when ``text`` is not one."""
    lines = text.strip("\n").splitlines()
    head = _HEAD.match(lines[0]) if lines else None
    if head is None:
        return None
    found = []
    for line in lines[1:]:
        match = _LINE.match(line)
        if match:
            found.append(
                {"what": match["what"], "ok": match["mark"] == "✓", "message": match["message"] or ""}
            )
    return {"exercise": head["exercise"], "status": head["status"], "lines": found}


def _outputs_text(output: Any) -> str:
    value = output.get("data", {}).get("text/plain", "")
    return "".join(value) if isinstance(value, list) else str(value)


def cell_verdict(cell: Any, function: str) -> dict[str, Any] | None:
    """The verdict a graded test cell shows, or what it raised; None when it shows neither."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name, value = output.get("ename", ""), output.get("evalue", "")
            if name == "NameError" and f"'{function}'" in value:
                return {"status": "missing", "lines": [{"what": "defined", "ok": False, "message": value}]}
            return {
                "status": "error",
                "lines": [{"what": "runs", "ok": False, "message": f"{name}: {value}"}],
            }
        verdict = verdict_of_text(_outputs_text(output))
        if verdict is not None and verdict["exercise"] == function:
            return verdict
    return None


def notebook_verdicts(path: Path) -> dict[str, dict[str, Any]]:
    """The verdicts of an autograded notebook's test cells, by function name."""
    notebook = nbformat.read(str(path), as_version=4)
    found = {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if cell.cell_type == "code" and grade_id.startswith(GRADE_PREFIX):
            function = grade_id.removeprefix(GRADE_PREFIX)
            verdict = cell_verdict(cell, function)
            if verdict is not None:
                found[function] = verdict
    return found


def _status_from_score(score: float, max_score: float) -> str:
    if max_score and score >= max_score:
        return "passed"
    return "partial" if score > 0 else "failed"


def _exercise(grade: Any, verdict: dict[str, Any] | None) -> dict[str, Any]:
    score, max_score = float(grade.score or 0.0), float(grade.max_score or 0.0)
    status = verdict["status"] if verdict else _status_from_score(score, max_score)
    return {
        "exercise": grade.name.removeprefix(GRADE_PREFIX),
        "score": score,
        "max_score": max_score,
        "status": status,
        "lines": verdict["lines"] if verdict else [],
    }


def _written(grade: Any) -> dict[str, Any]:
    """A written answer's grade: to grade by hand until the formgrader has a score for it."""
    max_score = float(grade.max_score or 0.0)
    if grade.needs_manual_grade or grade.score is None:
        line = {"what": "written answer", "ok": True, "message": "not graded yet: grade it in the formgrader"}
        return {
            "exercise": grade.name,
            "score": None,
            "max_score": max_score,
            "status": BY_HAND,
            "lines": [line],
        }
    score = float(grade.score)
    message = f"{score:g} in nbgrader's gradebook"
    line = {"what": "written answer", "ok": score >= max_score, "message": message}
    return {"exercise": grade.name, "score": score, "max_score": max_score,
            "status": _status_from_score(score, max_score), "lines": [line]}  # fmt: skip


def _result(student: str, notebook: str, grades: list[Any], graded: Path) -> dict[str, Any]:
    """One submission as ``bpcourse grade`` records it, from its grades and its autograded notebook."""
    verdicts = notebook_verdicts(graded) if graded.is_file() else {}
    tests = [g for g in grades if g.name.startswith(GRADE_PREFIX)]
    exercises = [_exercise(g, verdicts.get(g.name.removeprefix(GRADE_PREFIX))) for g in tests]
    by_hand = {answer.grade_id for answer in written_by_notebook(notebook)}
    written = [_written(g) for g in grades if g.name in by_hand]
    return {
        "student": student,
        "notebook": notebook,
        "path": str(graded),
        "score": sum(e["score"] for e in exercises),  # the written answers wait outside the totals
        "max_score": sum(e["max_score"] for e in exercises),
        "exercises": exercises + written,
    }


def _gradebook_class() -> Any:
    try:
        from nbgrader.api import Gradebook
    except ImportError:
        raise NbgraderMissing(
            "nbgrader is not installed: it comes with the instructor's extra: "
            "pip install 'bpcourse[instructor]'"
        ) from None
    return Gradebook


def results(course: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(grader record, results) of the nbgrader class in ``course`` (its gradebook.db and autograded/)."""
    Gradebook = _gradebook_class()  # noqa: N806 (a class)
    from nbgrader import __version__
    from nbgrader.api import MissingEntry

    database = Path(course) / "gradebook.db"
    if not database.is_file():
        raise NoGradebook(f"{course}: no gradebook.db here (give the nbgrader course folder, where it is)")
    found = []
    with Gradebook(f"sqlite:///{database.resolve()}") as gradebook:
        for assignment in gradebook.assignments:
            for notebook in assignment.notebooks:
                for student in gradebook.students:
                    try:
                        submitted = gradebook.find_submission_notebook(
                            notebook.name, assignment.name, student.id
                        )
                    except MissingEntry:
                        continue  # not handed in: the report counts it as missing
                    graded = (
                        Path(course) / "autograded" / student.id / assignment.name / f"{notebook.name}.ipynb"
                    )
                    found.append(_result(student.id, notebook.name, submitted.grades, graded))
    grader = {"described": f"nbgrader {__version__} (autograde), scores from {database.name}"}
    return grader, found
