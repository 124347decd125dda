"""The whole nbgrader lifecycle of one assignment, with the real ``nbgrader`` commands.

An instructor's course folder is set up from ``grader/`` the way
``grader/README.md`` describes it, next to an exchange folder shared by
everyone. The instructor generates and releases the assignment; two students,
each with a home folder of their own, fetch it, answer it and submit it (one
correctly, one with the classic mistakes: dW transposed, and tanh's derivative
taken at the activation a where it belongs at z). The instructor collects,
autogrades, generates and releases feedback, which a student fetches, and
exports the grades.

The notebook has a written answer (a Markdown cell nbgrader grades by hand).
ada writes one, ben does not. Autograde leaves it needing manual grading; the
instructor then scores ada's answer by hand through nbgrader's gradebook (the
database formgrader writes to), before feedback and the export.

Checked: nbgrader's gradebook and ``bpcourse grade`` on the collected
``submitted/`` folder give the same points per student and per exercise; the
correct student gets full marks and the other partial credit; ``grades.csv``
lists both, with the score given by hand in ada's total; ``bpcourse grade``
reports the written answer as to be graded by hand with its points; and the
feedback a student receives shows neither the hidden tests, nor the
instructor's solution code, nor the rubric of the written answer.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from bpcourse.grading.runner import grade_class
from bpcourse.grading.submissions import discover

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "03_affine_and_activations"  # one assignment keeps the test fast; it has partial credit
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
COURSE_ID = "bpcourse"

MISTAKES = {
    # dW transposed: x gᵀ instead of g xᵀ (the right shape only for a square W, so partial credit)
    "affine_backward": "def affine_backward(g, x, W):\n    return x @ g.T, g, W.T @ g\n",
    # φ′ evaluated at the cached activation a, where φ′(z) belongs
    "tanh_backward": (
        "import numpy as np\n\ndef tanh_backward(upstream, a):\n    return upstream * (1 - np.tanh(a) ** 2)\n"
    ),
}
STUDENTS = {"ada": "correct", "ben": "mistakes"}
WRITTEN = "written_delta_recurrence"  # the notebook's written answer, graded by hand
WRITTEN_ANSWER = (
    "Each entry of a1 reaches every entry of z2, weighted by a column of W2, and the chain rule adds "
    "those paths: that sum is the transpose of W2 times delta2. The activation acts entry by entry, "
    "so its Jacobian is diagonal: an elementwise product."
)
BY_HAND_SCORE = 1.5  # what the instructor gives ada's written answer
# The state of each student's written answer after autograde, before the score by hand.
AFTER_AUTOGRADE: dict[str, tuple[float | None, float | None, bool]] = {}
# What ``bpcourse report --nbgrader`` read of ada's written answer then.
REPORTED_AFTER_AUTOGRADE: dict[str, dict] = {}
TIMEOUT = 300  # seconds for one nbgrader command, far above its usual few seconds


# -- running nbgrader as an instructor and as students -------------------------------------------
def _environment(**settings: str) -> dict[str, str]:
    """The environment of an nbgrader command: this venv's bin/ first (nbgrader runs ``alembic``).

    Jupyter's own location variables of the caller are dropped; ``settings`` are
    added (a student's HOME: their nbgrader configuration and submission cache
    live there; the instructor's empty JUPYTER_CONFIG_DIR: only the course's
    ``nbgrader_config.py`` applies, while the caller's home keeps its caches).
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_CONFIG_PATH", "JUPYTER_DATA_DIR", "JUPYTER_PATH",
                 "JUPYTER_RUNTIME_DIR", "JUPYTER_PLATFORM_DIRS", "JUPYTER_NO_CONFIG", "XDG_DATA_HOME",
                 "JUPYTERHUB_USER", "PYTHONSTARTUP"):  # fmt: skip
        env.pop(name, None)
    env.update(settings)
    return env


def _start(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(*processes: subprocess.Popen[str]) -> None:
    """Wait for the commands; each must have succeeded."""
    failures = []
    for process in processes:
        try:
            log, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            log, _ = process.communicate()
        if process.returncode != 0:
            failures.append(f"nbgrader {' '.join(process.args[3:])} failed:\n{log[-4000:]}")
    assert not failures, "\n\n".join(failures)


# -- the notebooks -------------------------------------------------------------------------------
def _nbgrader_cells(notebook: nbformat.NotebookNode, kind: str) -> dict[str, str]:
    """grade_id -> source of the solution cells (kind "solution") or graded test cells ("grade")."""
    cells = {}
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get(kind) and not (kind == "grade" and meta.get("solution")):
            cells[meta["grade_id"]] = cell.source
    return cells


def _between(source: str, begin: str, end: str) -> list[str]:
    """The stripped, non-empty lines of ``source`` between the lines holding ``begin`` and ``end``."""
    lines, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _without_markers(source: str) -> str:
    """A solution cell as a learner would write it: the code, without nbgrader's delimiter lines."""
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line) + "\n"  # fmt: skip


def _answer(path: Path, sources: dict[str, str]) -> None:
    """What a student does in Jupyter: write code into the solution cells, save."""
    notebook = nbformat.read(str(path), as_version=4)
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
    nbformat.write(notebook, str(path))


def _visible_text(page: str) -> str:
    """What a reader of an HTML page sees: scripts, styles and tags dropped, entities decoded.

    Code cells are split into many highlighting spans; without the tags a line of
    code reads as it was written.
    """
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


# -- the lifecycle -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    top = tmp_path_factory.mktemp("nbgrader-lifecycle")
    course, exchange = top / "course", top / "exchange"

    # The exchange: one folder every user can write to (c.Exchange.root).
    exchange.mkdir()
    exchange.chmod(0o777)

    # The course folder: grader/'s configuration plus the exchange, each assignment at source/<id>/<id>.ipynb.
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    config = (ROOT / "grader" / "nbgrader_config.py").read_text(encoding="utf-8")
    config += f"\nc.Exchange.root = {str(exchange)!r}\n"
    (course / "nbgrader_config.py").write_text(config, encoding="utf-8")
    shutil.copyfile(ROOT / "solutions" / NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)

    (top / "instructor-jupyter").mkdir()
    instructor = _environment(JUPYTER_CONFIG_DIR=str(top / "instructor-jupyter"))
    _finish(_start(course, instructor, "generate_assignment", ASSIGNMENT))
    _finish(_start(course, instructor, "release_assignment", ASSIGNMENT))

    # Each student: a home folder with the configuration the instructor hands out.
    homes = {student: top / "home" / student for student in STUDENTS}
    student_env = {student: _environment(HOME=str(home)) for student, home in homes.items()}
    for home in homes.values():
        (home / ".jupyter").mkdir(parents=True)
        (home / ".jupyter" / "nbgrader_config.py").write_text(
            "c = get_config()\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            f"c.Exchange.root = {str(exchange)!r}\n",
            encoding="utf-8",
        )
    _finish(*(_start(homes[s], student_env[s], "fetch_assignment", ASSIGNMENT) for s in STUDENTS))

    instructor_cells = _nbgrader_cells(
        nbformat.read(str(ROOT / "solutions" / NOTEBOOK), as_version=4), "solution"
    )
    solutions = {grade_id: _without_markers(source) for grade_id, source in instructor_cells.items()}
    solutions[WRITTEN] = WRITTEN_ANSWER  # ada writes the answer; ben leaves the cell as handed out
    answers = {"correct": solutions, "mistakes": {**_without(solutions, WRITTEN), **MISTAKES}}
    for student, home in homes.items():
        _answer(home / ASSIGNMENT / NOTEBOOK, answers[STUDENTS[student]])
    # All students run as this one system user: --student names them (otherwise nbgrader
    # takes the login name, or JUPYTERHUB_USER for the user jovyan).
    _finish(
        *(
            _start(homes[student], student_env[student], "submit", ASSIGNMENT, f"--student={student}")
            for student in STUDENTS
        )
    )

    _finish(_start(course, instructor, "collect", ASSIGNMENT))
    _finish(_start(course, instructor, "autograde", ASSIGNMENT))
    _grade_by_hand(course)
    _finish(_start(course, instructor, "generate_feedback", ASSIGNMENT))
    export = _start(course, instructor, "export")  # grades.csv in the course folder, meanwhile:
    try:
        _finish(_start(course, instructor, "release_feedback", ASSIGNMENT))
        # One student fetching is enough to see release_feedback hand each page to its owner.
        _finish(_start(homes["ben"], student_env["ben"], "fetch_feedback", ASSIGNMENT, "--student=ben"))
    finally:
        _finish(export)
    return {"course": course, "exchange": exchange, **{f"home:{s}": h for s, h in homes.items()}}


def _without(sources: dict[str, str], grade_id: str) -> dict[str, str]:
    return {key: value for key, value in sources.items() if key != grade_id}


def _grade_by_hand(course: Path) -> None:
    """What an instructor does in formgrader: score ada's written answer, leave ben's for later.

    Formgrader's API (``GradeHandler.put``) writes the manual score into the grade's row of
    nbgrader's gradebook and clears its flag; this does the same through ``nbgrader.api.Gradebook``.
    """
    from nbgrader.api import Gradebook

    from bpcourse.grading.nbgrader_gradebook import results

    for result in results(course)[1]:
        REPORTED_AFTER_AUTOGRADE[result["student"]] = next(
            e for e in result["exercises"] if e["exercise"] == WRITTEN
        )
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student in STUDENTS:
            grade = gradebook.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, student)
            AFTER_AUTOGRADE[student] = (grade.auto_score, grade.manual_score, grade.needs_manual_grade)
        grade = gradebook.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, "ada")
        grade.manual_score = BY_HAND_SCORE
        grade.needs_manual_grade = False
        gradebook.db.commit()


def _written_grade(course: Path, student: str) -> tuple[float, float, bool]:
    """(score, max_score, still needs grading by hand) of a student's written answer in nbgrader."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        grade = gradebook.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, student)
        return float(grade.score), float(grade.max_score), bool(grade.needs_manual_grade)


def _gradebook_scores(course: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """student -> exercise -> (score, max_score), from nbgrader's SQLite gradebook."""
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student in STUDENTS:
            submission = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            scores[student] = {
                grade.name.removeprefix("check_"): (float(grade.score), float(grade.max_score))
                for grade in submission.grades
                if grade.name.startswith("check_")
            }
    return scores


def test_exchange_carries_the_release_and_the_submissions(lifecycle: dict[str, Path]) -> None:
    course_in_exchange = lifecycle["exchange"] / COURSE_ID
    assert (course_in_exchange / "outbound" / ASSIGNMENT / NOTEBOOK).is_file()
    inbound = sorted(path.name.split("+")[:2] for path in (course_in_exchange / "inbound").iterdir())
    assert inbound == [[student, ASSIGNMENT] for student in sorted(STUDENTS)]
    for student in STUDENTS:
        folder = lifecycle["course"] / "submitted" / student / ASSIGNMENT
        assert (folder / NOTEBOOK).is_file(), student
        assert (folder / "timestamp.txt").is_file(), student


def test_gradebook_agrees_with_bpcourse_grade(lifecycle: dict[str, Path], tmp_path: Path) -> None:
    course = lifecycle["course"]
    by_nbgrader = _gradebook_scores(course)
    run = grade_class(discover([course / "submitted"]), tmp_path / "grades", seed=3, progress=None)
    assert not run.failed
    by_bpcourse = {
        r["student"]: {
            e["exercise"]: (e["score"], e["max_score"]) for e in r["exercises"] if e["exercise"] != WRITTEN
        }
        for r in run.results
    }
    for result in run.results:  # never scored by the grader: its points wait for a person
        (written,) = [e for e in result["exercises"] if e["exercise"] == WRITTEN]
        assert (written["status"], written["score"], written["max_score"]) == ("to grade by hand", None, 2)
        assert written["lines"][0]["ok"] is (result["student"] == "ada")

    assert set(by_bpcourse) == set(by_nbgrader) == set(STUDENTS)
    for student, expected in by_nbgrader.items():
        assert set(by_bpcourse[student]) == set(expected), student
        for exercise, (score, max_score) in expected.items():
            assert by_bpcourse[student][exercise] == pytest.approx((score, max_score), abs=1e-3), (
                student,
                exercise,
            )

    correct, mistakes = by_nbgrader["ada"], by_nbgrader["ben"]
    assert all(score == max_score > 0 for score, max_score in correct.values())
    total = sum(score for score, _ in mistakes.values())
    assert 0 < total < sum(max_score for _, max_score in mistakes.values())
    assert mistakes["tanh_backward"][0] == 0
    assert 0 < mistakes["affine_backward"][0] < mistakes["affine_backward"][1]


def test_autograde_leaves_the_written_answer_to_be_graded_by_hand(lifecycle: dict[str, Path]) -> None:
    """Autograde gives ada's written answer no score and flags it for grading by hand; the score then
    given by hand counts. An answer cell left as handed out (ben's) nbgrader itself scores 0."""
    assert AFTER_AUTOGRADE["ada"] == (None, None, True)
    assert AFTER_AUTOGRADE["ben"] == (0.0, None, False)
    assert _written_grade(lifecycle["course"], "ada") == (BY_HAND_SCORE, 2.0, False)


def test_export_lists_both_students(lifecycle: dict[str, Path]) -> None:
    course = lifecycle["course"]
    with open(course / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle) if row["assignment"] == ASSIGNMENT}
    assert set(rows) == set(STUDENTS)
    scores = _gradebook_scores(course)
    for student, row in rows.items():
        written, written_max, _ = _written_grade(course, student)
        automatic = sum(s for s, _ in scores[student].values())
        assert float(row["raw_score"]) == pytest.approx(automatic + written)
        assert float(row["max_score"]) == pytest.approx(
            sum(m for _, m in scores[student].values()) + written_max
        )
    # ada: every check passed, and the score given by hand to her written answer is in the export
    automatic = sum(s for s, _ in scores["ada"].values())
    assert float(rows["ada"]["score"]) == pytest.approx(automatic + BY_HAND_SCORE)
    assert float(rows["ada"]["score"]) == float(rows["ada"]["max_score"]) - (2 - BY_HAND_SCORE)
    assert 0 < float(rows["ben"]["score"]) < float(rows["ben"]["max_score"])


def test_feedback_shows_no_hidden_tests_and_no_solutions(lifecycle: dict[str, Path]) -> None:
    course = lifecycle["course"]
    source = nbformat.read(str(ROOT / "solutions" / NOTEBOOK), as_version=4)
    released = nbformat.read(str(course / "release" / ASSIGNMENT / NOTEBOOK), as_version=4)
    released_text = "\n".join(cell.source for cell in released.cells)

    # The hidden tests: the grade(...) calls nbgrader restores at autograding.
    hidden = [
        line
        for cell in _nbgrader_cells(source, "grade").values()
        for line in _between(cell, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    ]
    assert len(hidden) == len(_nbgrader_cells(source, "grade")), hidden
    assert all(line.startswith("grade(") for line in hidden), hidden
    # The instructor's code for the exercises ben got wrong, less the lines the released
    # notebook shows anyway (a demonstration repeats tanh's rule): what he must not see.
    solutions = _nbgrader_cells(source, "solution")
    secret = [
        line
        for exercise in MISTAKES
        for line in _between(solutions[exercise], "### BEGIN SOLUTION", "### END SOLUTION")
        if line not in released_text
    ]
    assert len(secret) >= 3, secret

    scores = _gradebook_scores(course)
    pages = {}
    for student in STUDENTS:
        page = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text("utf-8")
        text = pages[student] = _visible_text(page)
        # The page is this student's graded notebook: their total, the test cells' visible
        # check(...) lines and the points each earned.
        written, written_max, _ = _written_grade(course, student)
        total = sum(score for score, _ in scores[student].values()) + written
        maximum = sum(max_score for _, max_score in scores[student].values()) + written_max
        assert f"{ASSIGNMENT} (Score: {total:.1f} / {maximum:.1f})" in text, student
        assert "check(affine_backward)" in text and "check(two_layer_mse_grads)" in text
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION"):
            assert marker not in page and marker not in text, (student, marker)
        for line in hidden:
            assert line not in text, (student, line)
        assert "Rubric" not in text and "No point for the formula alone" not in text, student

    assert "return x @ g.T, g, W.T @ g" in pages["ben"]  # his own answer is there...
    assert "dW = g @ x.T" in pages["ada"]  # (as is ada's, the instructor's code, which she wrote)
    for line in secret:
        assert line not in pages["ben"], line  # ...the instructor's is not


def test_release_feedback_reaches_the_student(lifecycle: dict[str, Path]) -> None:
    course, home = lifecycle["course"], lifecycle["home:ben"]
    fetched = sorted((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert len(fetched) == 1, fetched
    # <assignment>/feedback/<submission time>/<notebook>.html, exactly the page made for ben
    assert fetched[0].parent.name == (course / "submitted" / "ben" / ASSIGNMENT / "timestamp.txt").read_text()
    generated = course / "feedback" / "ben" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert fetched[0].read_bytes() == generated.read_bytes()
    assert (
        fetched[0].read_bytes()
        != (course / "feedback" / "ada" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_bytes()
    )


def test_the_class_report_from_nbgrader_shows_the_written_answer(lifecycle: dict[str, Path]) -> None:
    """``bpcourse report --nbgrader``: ada's answer to grade by hand until it is, then with the score
    given by hand, outside the totals either way."""
    from bpcourse.grading.nbgrader_gradebook import results

    before = REPORTED_AFTER_AUTOGRADE["ada"]
    assert (before["status"], before["score"], before["max_score"]) == ("to grade by hand", None, 2.0)

    _, found = results(lifecycle["course"])
    by_student = {r["student"]: r for r in found}
    (ada,) = [e for e in by_student["ada"]["exercises"] if e["exercise"] == WRITTEN]
    assert (ada["score"], ada["max_score"], ada["status"]) == (BY_HAND_SCORE, 2.0, "partial")
    scores = _gradebook_scores(lifecycle["course"])
    assert by_student["ada"]["score"] == pytest.approx(sum(s for s, _ in scores["ada"].values()))
