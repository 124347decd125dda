"""nbgrader with the course's configuration: no false "checksum has changed", no stray Out[n] in feedback.

A course folder is set up from ``grader/`` as ``grader/README.md`` says, notebook 01
is generated, and two learners' submissions are put in ``submitted/``: ada hands
the notebook back with her answers and every check cell as released; ben also
edits the visible line of one check cell. ``nbgrader autograde`` must warn about
ben's edited cell only (nbgrader itself warns for every check cell: issue #1961),
and the feedback pages must not show the value each hidden ``grade(fn)`` call
displays, which nbgrader reads as the cell's partial credit while autograding.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_nbgrader_lifecycle import _answer, _environment, _nbgrader_cells, _without_markers

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_scalar_graphs"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
EDITED = "check_mul_backward"


def _nbgrader(course: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    top = tmp_path_factory.mktemp("nbgrader-feedback")
    course = top / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copyfile(ROOT / "grader" / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copyfile(ROOT / "solutions" / NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (top / "jupyter").mkdir()
    env = _environment(JUPYTER_CONFIG_DIR=str(top / "jupyter"))
    _nbgrader(course, env, "generate_assignment", ASSIGNMENT)

    solutions = {
        grade_id: _without_markers(source)
        for grade_id, source in _nbgrader_cells(
            nbformat.read(str(ROOT / "solutions" / NOTEBOOK), as_version=4), "solution"
        ).items()
    }
    released = course / "release" / ASSIGNMENT / NOTEBOOK
    check_cells = _nbgrader_cells(nbformat.read(str(released), as_version=4), "grade")
    assert EDITED in check_cells and "BEGIN HIDDEN TESTS" not in check_cells[EDITED]
    for student in ("ada", "ben"):
        path = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
        path.parent.mkdir(parents=True)
        shutil.copyfile(released, path)
        edits = {EDITED: check_cells[EDITED] + "\nprint('edited')"} if student == "ben" else {}
        _answer(path, {**solutions, **edits})
    logs = {s: _nbgrader(course, env, "autograde", ASSIGNMENT, f"--student={s}") for s in ("ada", "ben")}
    _nbgrader(course, env, "generate_feedback", ASSIGNMENT)
    return {"course": course, "logs": logs, "check_cells": check_cells}


def test_only_an_edited_check_cell_is_reported_as_changed(course):
    logs = course["logs"]
    assert "checksum" not in logs["ada"], logs["ada"]
    warned = re.findall(r"Attribute 'checksum' for cell (\w+) has changed", logs["ben"])
    assert warned == [EDITED], logs["ben"]


def test_hidden_tests_are_still_restored_and_graded(course):
    autograded = nbformat.read(
        str(course["course"] / "autograded" / "ada" / ASSIGNMENT / NOTEBOOK), as_version=4
    )
    restored = _nbgrader_cells(autograded, "grade")
    assert all("grade(" in restored[grade_id] for grade_id in course["check_cells"]), restored
    # each check cell displays its points: nbgrader's partial credit
    results = [
        output
        for cell in autograded.cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in course["check_cells"]
        for output in cell.outputs
        if output.output_type == "execute_result"
    ]
    assert len(results) == len(course["check_cells"])


def test_feedback_shows_no_out_prompt_under_check_cells(course):
    root = course["course"]
    autograded = nbformat.read(str(root / "autograded" / "ada" / ASSIGNMENT / NOTEBOOK), as_version=4)
    elsewhere = sum(
        1
        for cell in autograded.cells
        if cell.cell_type == "code"
        and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") not in course["check_cells"]
        for output in cell.outputs
        if output.output_type == "execute_result"
    )
    page = (root / "feedback" / "ada" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    prompts = re.findall(r"Out\[\d+\]:", page)
    assert len(prompts) == elsewhere  # the demonstrations' results only
