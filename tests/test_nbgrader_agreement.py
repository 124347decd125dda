"""nbgrader's autograde and ``bpcourse grade`` give the same scores on the same submissions.

Both judge through the exercise registry: nbgrader runs the hidden ``grade(fn)``
of each test cell inside the learner's kernel and reads the number as partial
credit; ``bpcourse grade`` calls the learner's functions from a sandbox. A real
nbgrader course is built in a temporary folder from the course's own
configuration and solution notebook, and three students submit: one correct,
one with classic mistakes, one who did nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from bpcourse.grading.runner import grade_class
from bpcourse.grading.submissions import discover

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "03_affine_and_activations"

MISTAKES = {
    # dW transposed: x gᵀ instead of g xᵀ
    "affine_backward": ("def affine_backward(g, x, W):\n    return x @ g.T, g, W.T @ g\n"),
    # the derivative applied to the cached activation as if it were z
    "tanh_backward": (
        "import numpy as np\n\ndef tanh_backward(upstream, a):\n    return upstream * (1 - np.tanh(a) ** 2)\n"
    ),
}


def _nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # nbgrader calls alembic
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--CourseDirectory.root=" + str(course)],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


def _solution_sources(notebook: nbformat.NotebookNode) -> dict[str, str]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in notebook.cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def _submit(course: Path, student: str, release: nbformat.NotebookNode, sources: dict[str, str]) -> None:
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, str(folder / f"{ASSIGNMENT}.ipynb"))


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", course / "nbgrader_config.py")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(
        ROOT / "solutions" / f"{ASSIGNMENT}.ipynb", course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    )
    _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(str(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    solutions = _solution_sources(
        nbformat.read(str(ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"), as_version=4)
    )
    _submit(course, "correct", release, solutions)
    _submit(course, "mistakes", release, {**solutions, **MISTAKES})
    _submit(course, "untouched", release, {})
    _nbgrader(course, "autograde", ASSIGNMENT, "--force")
    return course


def _nbgrader_scores(course: Path) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in ("correct", "mistakes", "untouched"):
            submission = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            scores[student] = {
                grade.name.removeprefix("check_"): float(grade.score)
                for grade in submission.grades
                if grade.name.startswith("check_")
            }
    return scores


def test_nbgrader_and_bpcourse_grade_agree(graded_course: Path, tmp_path: Path) -> None:
    by_nbgrader = _nbgrader_scores(graded_course)
    run = grade_class(discover([graded_course / "submitted"]), tmp_path / "out", seed=5, progress=None)
    by_bpcourse = {
        r["student"]: {e["exercise"]: e["score"] for e in r["exercises"] if e["status"] != "to grade by hand"}
        for r in run.results
    }  # a written answer: nbgrader waits for a person too (tests/test_nbgrader_lifecycle.py)

    assert set(by_bpcourse) == set(by_nbgrader)
    for student, expected in by_nbgrader.items():
        assert by_bpcourse[student] == pytest.approx(expected, abs=1e-3), student
    # The three students really differ: full marks, partial credit, nothing.
    assert sum(by_nbgrader["untouched"].values()) == 0
    assert 0 < sum(by_nbgrader["mistakes"].values()) < sum(by_nbgrader["correct"].values())
    assert by_nbgrader["mistakes"]["tanh_backward"] == 0
    assert 0 < by_nbgrader["mistakes"]["affine_backward"] < by_nbgrader["correct"]["affine_backward"]
