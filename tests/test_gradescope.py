"""Gradescope's results.json: the documented format, from a real grading run and from the scripts.

The schema below is Gradescope's autograder output format (top level: score,
execution_time, output, visibility, stdout_visibility, tests; each test: name,
score, max_score, output, visibility, status, number, tags), with one extra
rule JSON Schema cannot say by itself: a test's score never exceeds its
max_score (the keyword ``scoreAtMostMaxScore``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from test_grading import CORRECT, FULL_MARKS, LIMITS, NOTEBOOK, WRONG_MUL, with_replaced, write

from bpcourse.cli import main
from bpcourse.exercises import by_notebook
from bpcourse.grading import gradescope
from bpcourse.grading.runner import grade_submission
from bpcourse.grading.submissions import Submission

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "grader" / "gradescope"
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
NUMBER = {"type": "number", "minimum": 0}
TEST_CASE = {
    "type": "object",
    "required": ["name", "score", "max_score", "output", "visibility"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "score": NUMBER,
        "max_score": NUMBER,
        "output": {"type": "string"},
        "visibility": VISIBILITY,
        "status": {"enum": ["passed", "failed"]},
        "number": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "name_format": {"type": "string"},
        "output_format": {"type": "string"},
        "extra_data": {"type": "object"},
    },
    "additionalProperties": False,
    "scoreAtMostMaxScore": True,
}
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["score", "tests"],
    "properties": {
        "score": NUMBER,
        "execution_time": NUMBER,
        "output": {"type": "string"},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST_CASE},
    },
    "additionalProperties": False,
}


def _score_at_most_max_score(validator, wanted, instance, schema):
    if wanted and isinstance(instance, dict) and "max_score" in instance:
        if instance.get("score", 0) > instance["max_score"]:
            yield jsonschema.ValidationError(
                f"score {instance['score']} is above max_score {instance['max_score']}"
            )


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"scoreAtMostMaxScore": _score_at_most_max_score}
)


def validate(results: dict) -> dict:
    Validator.check_schema(RESULTS_SCHEMA)
    Validator(RESULTS_SCHEMA).validate(results)
    return results


def test_the_schema_rejects_what_gradescope_would():
    test = {"name": "a", "score": 1, "max_score": 1, "output": "", "visibility": "visible"}
    good = {"score": 1.0, "tests": [test]}
    validate(good)
    for bad in (
        {**good["tests"][0], "score": 2},  # above max_score
        {**good["tests"][0], "visibility": "sometimes"},
        {k: v for k, v in good["tests"][0].items() if k != "name"},
        {**good["tests"][0], "status": "partial"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate({"score": 1.0, "tests": [bad]})


# -- from a real grading run ---------------------------------------------------------------------------
def graded(path: Path) -> dict:
    return grade_submission(Submission("learner", NOTEBOOK, path), LIMITS, seed=7)


def test_one_test_per_exercise_with_its_diagnosis(tmp_path):
    cells = [*with_replaced("mul_backward", WRONG_MUL), "x = 1 / 0"]
    result = graded(write(tmp_path / "nb.ipynb", cells))
    results = validate(gradescope.results_json(result))

    exercises = by_notebook(NOTEBOOK)
    assert [t["name"] for t in results["tests"]] == [f"{NOTEBOOK}: {e.name}" for e in exercises]
    assert results["score"] == pytest.approx(result["score"]) == FULL_MARKS - 1
    assert all(t["visibility"] == "visible" for t in results["tests"])
    mul = next(t for t in results["tests"] if t["name"].endswith(": mul_backward"))
    assert (mul["score"], mul["max_score"], mul["status"]) == (0.0, 1.0, "failed")
    assert "swapped" in mul["output"] and mul["output"].startswith("✗")
    add = next(t for t in results["tests"] if t["name"].endswith(": add_backward"))
    assert add["status"] == "passed" and "✗" not in add["output"]
    # A test's output is the verdict's lines and nothing else (no reference values).
    for test, entry in zip(results["tests"], result["exercises"], strict=True):
        for line in test["output"].splitlines():
            what, _, message = line[2:].partition(": ")
            assert any(ln["what"] == what and ln["message"] == message for ln in entry["lines"]), line
    # The notebook-level problem (a cell that raised) is in the top-level output.
    assert "ZeroDivisionError" in results["output"]
    assert f"{NOTEBOOK}: {FULL_MARKS - 1:g} / {FULL_MARKS:g} points" in results["output"]
    assert isinstance(results["execution_time"], int) and results["stdout_visibility"] == "hidden"


def test_an_unreadable_notebook_is_reported_on_every_test(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text("{ not json")
    results = validate(gradescope.results_json(graded(path)))
    assert results["score"] == 0
    assert results["tests"] and all("not a readable notebook" in t["output"] for t in results["tests"])
    assert "not a readable notebook" in results["output"]


def test_an_unknown_notebook_has_no_tests_and_says_why(tmp_path):
    path = write(tmp_path / "homework.ipynb", ["x = 1"])
    result = grade_submission(Submission("learner", "", path), LIMITS, seed=1)
    results = validate(gradescope.results_json(result))
    assert results["tests"] == [] and results["score"] == 0
    assert "could not tell which course notebook" in results["output"]


def test_scores_are_finite_and_within_bounds():
    result = {
        "notebook": NOTEBOOK,
        "path": "nb.ipynb",
        "score": 1.0,
        "max_score": 2.0,
        "seconds": 0.4,
        "problems": [],
        "exercises": [
            {"exercise": "a", "score": float("nan"), "max_score": 1, "status": "error", "lines": []},
            {"exercise": "b", "score": 1.5, "max_score": 1, "status": "passed", "lines": []},
        ],
    }
    results = validate(gradescope.results_json(result, visibility="after_due_date"))
    assert [t["score"] for t in results["tests"]] == [0.0, 1.0]
    assert results["tests"][0]["output"] == "error"
    assert results["visibility"] == "after_due_date"
    assert {t["visibility"] for t in results["tests"]} == {"after_due_date"}
    json.dumps(results, allow_nan=False)
    with pytest.raises(ValueError, match="visibility"):
        gradescope.results_json(result, visibility="later")


# -- the command -----------------------------------------------------------------------------------------
def test_grade_writes_results_json_for_one_submission(tmp_path, capsys):
    notebook = write(tmp_path / "submission" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    target = tmp_path / "results" / "results.json"
    status = main(["grade", str(notebook.parent), "--gradescope", str(target), "--out",
                   str(tmp_path / "grades"), "--seed", "3", "--quiet",
                   "--gradescope-visibility", "after_published"])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    results = validate(json.loads(target.read_text(encoding="utf-8")))
    assert results["score"] == FULL_MARKS
    assert all(t["status"] == "passed" for t in results["tests"])
    assert results["visibility"] == "after_published"
    assert (tmp_path / "grades" / "gradebook.csv").exists()


def test_gradescope_refuses_several_submissions_and_says_so(tmp_path, capsys):
    for student in ("amy", "ben"):
        write(tmp_path / "class" / student / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    target = tmp_path / "results.json"
    status = main(["grade", str(tmp_path / "class"), "--gradescope", str(target), "--out",
                   str(tmp_path / "grades"), "--quiet"])  # fmt: skip
    assert status == 2
    assert "exactly one submission, found 2" in capsys.readouterr().err
    results = validate(json.loads(target.read_text(encoding="utf-8")))
    assert results["score"] == 0 and results["tests"] == []
    assert "2 notebooks" in results["output"]
    assert not (tmp_path / "grades").exists(), "nothing is graded"


# -- the two Gradescope files ----------------------------------------------------------------------------
def test_the_scripts_are_executable_bash():
    for name in ("setup.sh", "run_autograder"):
        script = SCRIPTS / name
        assert script.stat().st_mode & stat.S_IXUSR, f"{name} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        subprocess.run(["bash", "-n", str(script)], check=True)


def _run_autograder(root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    command = tmp_path / "bin" / "bpcourse"
    command.parent.mkdir(exist_ok=True)
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bpcourse "$@"\n')
    command.chmod(0o755)
    scratch = tmp_path / "scratch"  # where run_autograder's mktemp puts the grades folder
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), BPCOURSE=str(command), BPCOURSE_OPTIONS="--seed 2",
               TMPDIR=str(scratch))  # fmt: skip
    return subprocess.run(
        [str(SCRIPTS / "run_autograder")], env=env, cwd=root, capture_output=True, text=True, timeout=120
    )


def test_run_autograder_grades_the_submitted_notebook(tmp_path):
    root = tmp_path / "autograder"
    submission = root / "submission"
    write(submission / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    # What a zip from a Mac and a Jupyter session leave next to it is not a second notebook.
    (submission / "__MACOSX").mkdir()
    (submission / "__MACOSX" / f"._{NOTEBOOK}.ipynb").write_bytes(b"\x00\x05\x16\x07")
    write(submission / ".ipynb_checkpoints" / f"{NOTEBOOK}-checkpoint.ipynb", list(CORRECT.values()))
    (submission / "notes.txt").write_text("my notes")

    done = _run_autograder(root, tmp_path)
    assert done.returncode == 0, done.stderr
    results = validate(json.loads((root / "results" / "results.json").read_text(encoding="utf-8")))
    assert results["score"] == FULL_MARKS - 1
    assert "swapped" in next(t["output"] for t in results["tests"] if t["name"].endswith("mul_backward"))


def test_run_autograder_without_a_notebook_tells_the_learner(tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "answers.py").write_text("x = 1")
    done = _run_autograder(root, tmp_path)
    assert done.returncode == 2
    results = validate(json.loads((root / "results" / "results.json").read_text(encoding="utf-8")))
    assert results["score"] == 0 and "No notebook" in results["output"]
