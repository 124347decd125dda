"""Written answers (``bpcourse.exercises.written``): graded by hand, never 0 and never full marks.

A class of two learners hands in notebook 02 as the course hands it out
(``notebooks/``): amy writes her answer in the written answer's cell, bob
leaves it as it came. ``bpcourse grade`` grades them in the sandbox; every
place that shows a grade must show the written answer as "to grade by hand"
with its points and no score: the results and their checks, gradebook.csv
and gradebook.json, the feedback files, the terminal table, ``bpcourse
report`` and Gradescope's results.json. The rubric in the instructor's
notebook reaches no learner.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from bpcourse.cli import main
from bpcourse.exercises import by_notebook
from bpcourse.exercises.written import BY_HAND, STUB, WRITTEN, answer_text, written_by_notebook
from bpcourse.grading.gradebook import read_gradebook
from bpcourse.grading.gradescope import results_json
from bpcourse.grading.report import build, summary_text
from bpcourse.grading.results import InvalidResult, check_result
from bpcourse.grading.submissions import Submission

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_merges_and_traversal"
ANSWER = "written_sum_at_merges"
POINTS = 2
ANSWERED = (
    "L depends on x along two paths, through u and through v. The multivariable chain rule adds one "
    "term per path, so the two contributions are summed; keeping only the last one drops a term."
)
AUTOMATIC = sum(e.points for e in by_notebook(NOTEBOOK))


def hand_in(folder: Path, student: str, answer: str | None) -> Path:
    """The student notebook of 02, ``answer`` in its written answer's cell (None: as handed out)."""
    notebook = json.loads((ROOT / "notebooks" / f"{NOTEBOOK}.ipynb").read_text(encoding="utf-8"))
    if answer is not None:
        for cell in notebook["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == ANSWER:
                cell["source"] = answer
    path = folder / student / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, str]:
    """(the --out folder, what the command printed) after grading amy and bob."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("written")
    hand_in(root / "class", "amy", ANSWERED)
    hand_in(root / "class", "bob", None)
    out = root / "grades"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["grade", str(root / "class"), "--out", str(out), "--workers", "1"]) == 0
    return out, printed.getvalue()


def _results(out: Path) -> dict[str, dict]:
    _, results = read_gradebook(out / "gradebook.json")
    return {r["student"]: r for r in results}


def _entry(result: dict) -> dict:
    (entry,) = [e for e in result["exercises"] if e["exercise"] == ANSWER]
    return entry


def test_the_course_has_written_answers_in_five_notebooks_each_handed_out_empty() -> None:
    notebooks = {NOTEBOOK, "03_affine_and_activations", "04_softmax_cross_entropy", "07_cost_of_backprop",
                 "10_rules_transformers_need"}  # fmt: skip
    assert {w.notebook for w in WRITTEN} == notebooks
    for answer in WRITTEN:
        student = json.loads((ROOT / "notebooks" / f"{answer.notebook}.ipynb").read_text(encoding="utf-8"))
        assert answer_text(student["cells"], answer.grade_id) == STUB  # handed out empty: no rubric


def test_a_written_answer_has_its_points_and_no_score_whatever_was_written(graded) -> None:
    out, _ = graded
    results = _results(out)
    for student, words in (("amy", True), ("bob", False)):
        result = results[student]
        entry = _entry(result)
        assert entry["status"] == BY_HAND and entry["max_score"] == POINTS
        assert entry["score"] is None  # neither 0 nor full marks
        (line,) = entry["lines"]
        assert line["ok"] is words
        assert ("an answer of" in line["message"]) is words
        assert ("no answer written yet" in line["message"]) is not words
        # the totals count what the grader scored: the written answer waits, outside them
        assert result["max_score"] == AUTOMATIC
        assert result["score"] < AUTOMATIC  # the functions are stubs
        submission = Submission(student, NOTEBOOK, Path(result["path"]))
        assert check_result(copy.deepcopy(result), submission) == result


def test_the_gradebook_csv_leaves_the_score_empty(graded) -> None:
    out, _ = graded
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    mine = [r for r in rows if r["exercise"] == ANSWER]
    assert [r["student"] for r in mine] == ["amy", "bob"]
    for row in mine:
        assert row["score"] == "" and float(row["max_score"]) == POINTS and row["status"] == BY_HAND


def test_feedback_and_the_terminal_say_how_many_points_wait_to_be_graded_by_hand(graded) -> None:
    out, printed = graded
    for student in ("amy", "bob"):
        text = (out / "feedback" / f"{student}.md").read_text(encoding="utf-8")
        assert f"/ {AUTOMATIC:g} points + {POINTS} points to grade by hand" in text
        assert f"✎ `{ANSWER}`: {BY_HAND} ({POINTS} points)" in text
        assert f"`{ANSWER}`: {BY_HAND} (0/" not in text
    assert "no answer written yet" in (out / "feedback" / "bob.md").read_text(encoding="utf-8")
    table = printed.split("What the grader found")[0]
    assert table.count(f"/{AUTOMATIC:g} + {POINTS} by hand") == 2, printed
    assert f"{ANSWER} (" not in table  # not listed among what to look at


def test_the_report_counts_them_by_hand_and_out_of_the_automatic_points(graded) -> None:
    out, _ = graded
    grader, results = read_gradebook(out / "gradebook.json")
    report = build(grader, results)
    (summary,) = [ex for ex in report.exercises if ex.exercise == ANSWER]
    assert summary.outcomes["by hand"] == ["amy", "bob"] and summary.count("wrong") == 0
    assert report.notebook_max[NOTEBOOK] == AUTOMATIC and report.notebook_by_hand[NOTEBOOK] == POINTS
    text = summary_text(report)
    assert "by hand" in text.splitlines()[3]  # the header of the outcome table
    assert f"{AUTOMATIC:g} + {POINTS} by hand" in text
    assert all(p.max_score == AUTOMATIC for p in report.people)


def test_gradescope_names_them_in_its_summary_and_scores_none(graded) -> None:
    out, _ = graded
    data = results_json(_results(out)["amy"])
    assert ANSWER not in json.dumps(data["tests"])
    assert f"+ {POINTS} points to grade by hand" in data["output"]
    assert data["score"] == _results(out)["amy"]["score"]


@pytest.mark.parametrize(
    "change",
    [
        {"score": 0.0},
        {"score": float(POINTS)},
        {"status": "passed"},
        {"status": "failed", "score": 0.0},
        {"max_score": 3},
    ],
    ids=["scored 0", "scored full", "marked passed", "marked failed", "other points"],
)
def test_a_result_that_scores_a_written_answer_is_refused(graded, change) -> None:
    out, _ = graded
    result = copy.deepcopy(_results(out)["amy"])
    _entry(result).update(change)
    scored = [e for e in result["exercises"] if e["score"] is not None]
    result["score"] = round(sum(e["score"] for e in scored), 4)
    result["max_score"] = sum(e["max_score"] for e in scored)
    with pytest.raises(InvalidResult):
        check_result(result, Submission("amy", NOTEBOOK, Path(result["path"])))


def test_a_function_without_a_score_is_refused(graded) -> None:
    out, _ = graded
    result = copy.deepcopy(_results(out)["amy"])
    first = result["exercises"][0]
    result["score"] -= first["score"]
    result["max_score"] -= first["max_score"]
    first.update(score=None, status=BY_HAND)
    with pytest.raises(InvalidResult, match="scored by the grader"):
        check_result(result, Submission("amy", NOTEBOOK, Path(result["path"])))


def test_a_deleted_answer_cell_or_an_unreadable_notebook_is_still_to_grade_by_hand(tmp_path) -> None:
    from bpcourse.grading.runner import grade_submission

    path = hand_in(tmp_path, "cy", None)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"] = [
        c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != ANSWER
    ]
    path.write_text(json.dumps(notebook), encoding="utf-8")
    broken = tmp_path / "dee" / f"{NOTEBOOK}.ipynb"
    broken.parent.mkdir()
    broken.write_text("{ not json", encoding="utf-8")
    for student, where, says in (("cy", path, "no answer cell"), ("dee", broken, "could not be read")):
        result = grade_submission(Submission(student, NOTEBOOK, where), seed=0)
        entry = _entry(result)
        assert entry["status"] == BY_HAND and entry["score"] is None and says in entry["lines"][0]["message"]
        check_result(result, Submission(student, NOTEBOOK, where))


def test_every_written_answer_of_the_registry_is_in_its_instructor_notebook_with_a_rubric() -> None:
    for answer in WRITTEN:
        solution = json.loads((ROOT / "solutions" / f"{answer.notebook}.ipynb").read_text(encoding="utf-8"))
        text = answer_text(solution["cells"], answer.grade_id)
        assert text is not None and text.startswith("**Rubric (instructor only)**"), answer.grade_id
    assert [w.grade_id for w in written_by_notebook(NOTEBOOK)] == [ANSWER]
