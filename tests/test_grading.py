"""Class grading: sandboxed, never fooled, every bad input answered, resumable.

The submissions are notebook 01 files written here: a correct one, broken ones
and tampering attempts. Limits are short so the endless loops end quickly.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bpcourse.cli import main
from bpcourse.exercises import by_notebook
from bpcourse.grading.gradebook import read_gradebook
from bpcourse.grading.results import RESULT_VERSION, InvalidResult, check_result
from bpcourse.grading.runner import grade_class, grade_submission, load_results
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import Submission, discover

NOTEBOOK = "01_scalar_graphs"
FULL_MARKS = sum(e.points for e in by_notebook(NOTEBOOK))
LIMITS = Limits(cell_seconds=6, call_seconds=4, memory_mb=1536)

SETUP = "from bpcourse.check import for_notebook\ncheck, grade = for_notebook('01_scalar_graphs')"
CORRECT = {
    "add_backward": "def add_backward(upstream, x, y):\n    return upstream, upstream",
    "mul_backward": "def mul_backward(upstream, x, y):\n    return upstream * y, upstream * x",
    "pow_backward": "def pow_backward(upstream, x, n):\n    return upstream * n * x ** (n - 1)",
    "exp_backward": "def exp_backward(upstream, out):\n    return upstream * out",
    "tanh_backward": "def tanh_backward(upstream, out):\n    return upstream * (1 - out * out)",
    "worked_example_grads": (
        "def worked_example_grads(x, y):\n"
        "    u = x * y\n    v = u + y\n    dL_dv = 2 * v\n"
        "    return dL_dv * y, dL_dv * 1 + dL_dv * x"
    ),
    "central_difference": "def central_difference(f, x, h=1e-5):\n    return (f(x + h) - f(x - h)) / (2 * h)",
    "why_mul_scales": "def why_mul_scales():\n    return 2",
    "why_step_not_tiny": 'def why_step_not_tiny():\n    return "d"',
}


def write(path: Path, cells: list[str], nbformat_version: int = 4) -> Path:
    notebook = new_notebook(cells=[new_markdown_cell("# Notebook 01"), new_code_cell(SETUP)])
    notebook.cells += [new_code_cell(source) for source in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    if nbformat_version == 3:
        notebook = nbformat.convert(notebook, 3)
        nbformat.write(notebook, str(path), version=3)
    else:
        nbformat.write(notebook, str(path))
    return path


def with_replaced(name: str, source: str) -> list[str]:
    return [source if key == name else code for key, code in CORRECT.items()]


def grade(path: Path, limits: Limits = LIMITS) -> dict:
    return grade_submission(Submission("learner", NOTEBOOK, path), limits, seed=7)


def scores(result: dict) -> dict[str, float]:
    return {e["exercise"]: e["score"] for e in result["exercises"]}


def messages(result: dict, exercise: str) -> str:
    entry = next(e for e in result["exercises"] if e["exercise"] == exercise)
    return " ".join(f"{ln['what']}: {ln['message']}" for ln in entry["lines"]) + " " + entry["status"]


def test_correct_submission_gets_full_marks(tmp_path):
    result = grade(write(tmp_path / "nb.ipynb", list(CORRECT.values())))
    assert result["score"] == FULL_MARKS, result
    assert result["problems"] == []


def test_stubs_get_zero_and_read_not_implemented(tmp_path):
    stubs = [
        code.split(":\n")[0] + ":\n    # YOUR CODE HERE\n    raise NotImplementedError()"
        for code in CORRECT.values()
    ]
    result = grade(write(tmp_path / "nb.ipynb", stubs))
    assert result["score"] == 0
    assert all(e["status"] == "not implemented" for e in result["exercises"])


# -- tampering never turns into points -------------------------------------------------------------
WRONG_MUL = "def mul_backward(upstream, x, y):\n    return upstream * x, upstream * y"

TAMPERING = {
    "prints success": "_ = print('All tests passed! 100/100')",
    "patches numpy comparisons": (
        "import numpy as np\nnp.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\nnp.isclose = lambda *a, **k: True"
    ),
    "patches the checks": (
        "import bpcourse.check as c\nc.grade = lambda *a, **k: 100.0\nc.check = lambda *a, **k: None\n"
        "grade = c.grade"
    ),
    "replaces numpy in sys.modules": "import sys, types\nsys.modules['numpy'] = types.ModuleType('numpy')",
    "exits with status 0": "import sys\n_ = sys.exit(0)",
    "kills its own process": "import os\n_ = os._exit(0)",
    "raises SystemExit at import": "raise SystemExit(0)",
}


@pytest.mark.parametrize("attempt", sorted(TAMPERING))
def test_tampering_earns_nothing(tmp_path, attempt):
    cells = with_replaced("mul_backward", WRONG_MUL) + [TAMPERING[attempt]]
    result = grade(write(tmp_path / "nb.ipynb", cells))
    assert scores(result)["mul_backward"] == 0
    # ...and the honest work around it is still graded.
    assert scores(result)["add_backward"] == 1


def test_reference_implementation_cannot_be_called(tmp_path):
    cheat = (
        "def mul_backward(upstream, x, y):\n"
        "    from bpcourse.exercises import get\n"
        "    return get('mul_backward', '01_scalar_graphs').reference(upstream, x, y)"
    )
    result = grade(write(tmp_path / "nb.ipynb", with_replaced("mul_backward", cheat)))
    assert scores(result)["mul_backward"] == 0
    assert "uses bpcourse.exercises" in messages(result, "mul_backward")


def test_a_fake_array_object_is_not_accepted(tmp_path):
    fake = (
        "class Anything:\n    def __eq__(self, other): return True\n"
        "    def __float__(self): return 0.0\n"
        "def mul_backward(upstream, x, y):\n    return Anything(), Anything()"
    )
    result = grade(write(tmp_path / "nb.ipynb", with_replaced("mul_backward", fake)))
    assert scores(result)["mul_backward"] == 0
    assert "Anything" in messages(result, "mul_backward")


# -- bad input: a clear message for that item, zero for it, the rest goes on ------------------------
BROKEN = {
    "syntax error": ("mul_backward", "def mul_backward(upstream, x, y)\n    return 1", "missing"),
    "renamed": (
        "mul_backward",
        "def mul_backwards(upstream, x, y):\n    return upstream * y, upstream * x",
        "missing",
    ),
    "deleted": ("mul_backward", "", "missing"),
    "exception at import": (
        "mul_backward",
        "import no_such_module_here\n" + CORRECT["mul_backward"],
        "missing",
    ),
    "returns a list of three": (
        "mul_backward",
        "def mul_backward(upstream, x, y):\n    return [1, 2, 3]",
        "3",
    ),
    "returns a scalar": (
        "mul_backward",
        "def mul_backward(upstream, x, y):\n    return upstream * y",
        "tuple",
    ),
    "returns NaN": ("exp_backward", "def exp_backward(upstream, out):\n    return float('nan')", "nan"),
    "raises": (
        "exp_backward",
        "def exp_backward(upstream, out):\n    return upstream / 0",
        "ZeroDivisionError",
    ),
    "endless loop": (
        "exp_backward",
        "def exp_backward(upstream, out):\n    while True:\n        pass",
        "within",
    ),
    "memory bomb": (
        "exp_backward",
        "def exp_backward(upstream, out):\n    import numpy as np\n    return np.ones(10**10)",
        "MemoryError",
    ),
    "output flood": (
        "exp_backward",
        "def exp_backward(upstream, out):\n    while True:\n        print('x' * 100000)",
        "error",
    ),
    "fork": (
        "exp_backward",
        "def exp_backward(upstream, out):\n    import os\n    os.fork()\n    return upstream",
        "not allowed",
    ),
    "exit in the function": (
        "exp_backward",
        "def exp_backward(upstream, out):\n    import os\n    os._exit(3)",
        "ended",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_item_gets_a_message_and_the_rest_is_graded(tmp_path, case):
    name, source, expected_words = BROKEN[case]
    result = grade(write(tmp_path / "nb.ipynb", with_replaced(name, source)))
    assert scores(result)[name] == 0
    assert expected_words.lower() in (messages(result, name) + " ".join(result["problems"])).lower(), result
    others = {k: v for k, v in scores(result).items() if k != name}
    assert sum(others.values()) == FULL_MARKS - next(
        e.points for e in by_notebook(NOTEBOOK) if e.name == name
    )


def test_endless_loop_in_a_cell_is_skipped_and_reported(tmp_path):
    cells = ["def spin():\n    while True:\n        pass\n\nstate = spin()", *CORRECT.values()]
    result = grade(write(tmp_path / "nb.ipynb", cells))
    assert result["score"] == FULL_MARKS
    assert any("endless loop" in p and "skipped" in p for p in result["problems"])


def test_demonstration_cells_are_not_run_unless_asked(tmp_path):
    cells = [*CORRECT.values(), "print('demo')\nwhile True:\n    pass"]
    path = write(tmp_path / "nb.ipynb", cells)
    assert grade(path)["score"] == FULL_MARKS
    everything = grade_submission(Submission("learner", NOTEBOOK, path), LIMITS, seed=7, run_all_cells=True)
    assert everything["score"] == FULL_MARKS
    assert any("endless loop" in p for p in everything["problems"])


def test_old_nbformat_and_duplicated_cells_are_graded(tmp_path):
    cells = [*CORRECT.values(), CORRECT["add_backward"]]
    result = grade(write(tmp_path / "nb.ipynb", cells, nbformat_version=3))
    assert result["score"] == FULL_MARKS


def test_invalid_json_is_reported_and_the_class_goes_on(tmp_path):
    (tmp_path / "class" / "zed").mkdir(parents=True)
    (tmp_path / "class" / "zed" / f"{NOTEBOOK}.ipynb").write_text("{ not json")
    write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    run = grade_class(
        discover([tmp_path / "class"]), tmp_path / "out", workers=2, limits=LIMITS, seed=1, progress=None
    )
    by_student = {r["student"]: r for r in run.results}
    assert by_student["amy"]["score"] == FULL_MARKS
    assert by_student["zed"]["score"] == 0
    assert "not a readable notebook" in " ".join(by_student["zed"]["problems"])
    assert all(e["status"] == "unreadable" for e in by_student["zed"]["exercises"])


def test_nbgrader_layout_names_the_students(tmp_path):
    for student in ("ann", "ben"):
        write(tmp_path / "submitted" / student / NOTEBOOK / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    found = discover([tmp_path / "submitted"])
    assert [(s.student, s.notebook) for s in found] == [("ann", NOTEBOOK), ("ben", NOTEBOOK)]


def test_gradebook_and_feedback_files(tmp_path):
    write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    run = grade_class(discover([tmp_path / "class"]), tmp_path / "out", limits=LIMITS, seed=1, progress=None)
    assert run.graded == 1 and not run.failed
    csv_text = (tmp_path / "out" / "gradebook.csv").read_text()
    assert "amy,01_scalar_graphs,mul_backward,0.0,1,failed" in csv_text
    assert "swapped" in csv_text
    feedback = (tmp_path / "out" / "feedback" / "amy.md").read_text()
    assert "mul_backward" in feedback and "swapped" in feedback
    gradebook = json.loads((tmp_path / "out" / "gradebook.json").read_text())
    (amy,) = gradebook["submissions"]
    assert amy["student"] == "amy" and amy["sandbox"] in ("bubblewrap", "user id") and amy["seed"] == 1
    notebook = tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb"
    assert amy["sha256"] == hashlib.sha256(notebook.read_bytes()).hexdigest()
    grader = gradebook["grader"]
    assert grader["version"] == importlib.metadata.version("bpcourse")
    assert grader["result_version"] == RESULT_VERSION
    assert (grader["seed_policy"], grader["seed"]) == ("fixed seed", 1)
    assert grader["sandboxes"] == {amy["sandbox"]: 1} and grader["changed_during_run"] == []
    assert read_gradebook(tmp_path / "out" / "gradebook.json") == (grader, [amy])


# -- resumable ---------------------------------------------------------------------------------------
def _make_class(root: Path, size: int) -> None:
    for i in range(size):
        cells = list(CORRECT.values()) if i % 2 else with_replaced("mul_backward", WRONG_MUL)
        write(root / f"s{i:02d}" / f"{NOTEBOOK}.ipynb", cells)


def _grade_in_subprocess(root: Path, out: Path) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path\n"
        "from bpcourse.grading.runner import grade_class\n"
        "from bpcourse.grading.submissions import discover\n"
        f"grade_class(discover([{str(root)!r}]), Path({str(out)!r}), workers=1, seed=3, progress=None)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def test_a_run_killed_midway_resumes_to_the_same_gradebook(tmp_path):
    _make_class(tmp_path / "class", 4)
    reference = grade_class(
        discover([tmp_path / "class"]), tmp_path / "ref", workers=2, seed=3, progress=None
    )

    process = _grade_in_subprocess(tmp_path / "class", tmp_path / "out")
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out" / "results").glob("*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(load_results(tmp_path / "out", discover([tmp_path / "class"])))
    assert 1 <= finished < 4, "the run should have been killed part-way"

    resumed = grade_class(discover([tmp_path / "class"]), tmp_path / "out", workers=2, seed=3, progress=None)
    assert resumed.skipped == finished
    assert resumed.graded == 4 - finished

    def table(results):
        return sorted((r["student"], r["score"], tuple(scores(r).items())) for r in results)

    assert table(resumed.results) == table(reference.results)
    assert (tmp_path / "out" / "gradebook.csv").read_text() == (
        tmp_path / "ref" / "gradebook.csv"
    ).read_text()


# -- stored results are trusted only when sound and matching -----------------------------------------
LIMIT_OPTIONS = ["--cell-timeout", str(LIMITS.cell_seconds), "--call-timeout", str(LIMITS.call_seconds),
                 "--memory", str(LIMITS.memory_mb)]  # fmt: skip


def _valid_result(student: str = "amy", notebook: str = NOTEBOOK) -> dict:
    """A well-formed result of a notebook whose every exercise failed (no grading needed)."""
    exercises = [
        {
            "exercise": e.name,
            "score": 0.0,
            "max_score": e.points,
            "status": "failed",
            "lines": [{"what": "out", "ok": False, "message": "wrong"}],
        }
        for e in by_notebook(notebook)
    ]
    return {
        "version": RESULT_VERSION, "student": student, "notebook": notebook, "path": "x.ipynb",
        "sha256": "ab" * 32, "seed": None, "sandbox": "bubblewrap", "problems": [], "exercises": exercises,
        "score": 0.0, "max_score": sum(e.points for e in by_notebook(notebook)), "seconds": 1.5,
    }  # fmt: skip


def _totals_follow(result: dict) -> dict:
    """The totals recomputed, so that only the change made before is wrong."""
    result["score"] = round(sum(e["score"] for e in result["exercises"]), 4)
    result["max_score"] = sum(e["max_score"] for e in result["exercises"])
    return result


def _set(**fields):
    return lambda result: result.update(fields)


def _set_first(**fields):
    return lambda result: result["exercises"][0].update(fields)


def _totals_too(change):
    return lambda result: _totals_follow(change(result) or result)


def _exercises(pick):
    return _totals_too(lambda result: result.update(exercises=pick(result["exercises"])))


CORRUPTIONS = {
    "a field missing": (lambda result: result.pop("sha256"), "has no sha256"),
    "a field added": (_set(bonus=10), "fields a result does not have: bonus"),
    "a score as text": (_set_first(score="1"), "score is not a finite number"),
    "a score that is true": (_set_first(score=True), "score is not a finite number"),
    "a NaN score": (_set_first(score=float("nan")), "score is not a finite number"),
    "an unknown status": (_set_first(status="excellent"), "status is not one of"),
    "a line without ok": (lambda result: result["exercises"][0]["lines"][0].pop("ok"), "has no ok"),
    "another version": (_set(version=1), "version 1"),
    "a hash that is no sha256": (_set(sha256="forged"), "sha256 is not 64"),
    "another student": (_set(student="ben"), "result of ben/"),
    "another notebook": (_set(notebook="03_affine_and_activations"), "result of amy/03"),
    "an exercise dropped": (_exercises(lambda exercises: exercises[1:]), "are not those of"),
    "an exercise twice": (_exercises(lambda exercises: exercises * 2), "are not those of"),
    "more points than the registry's": (_totals_too(_set_first(max_score=50)), "worth 1 points"),
    "a score above max_score": (_totals_too(_set_first(score=2.0)), "scores 2, outside 0 to 1"),
    "a negative score": (_totals_too(_set_first(score=-1.0)), "outside 0 to 1"),
    "a total that is not the sum": (_set(score=3.0), "not the sum of its exercises"),
    "passed without its points": (_set_first(status="passed"), "marked passed"),
}


def test_a_sound_result_passes_the_check():
    result = _valid_result()
    assert check_result(result, Submission("amy", NOTEBOOK, Path("x.ipynb"))) is result


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupted_result_is_refused_with_its_reason(corruption):
    corrupt, reason = CORRUPTIONS[corruption]
    result = _valid_result()
    corrupt(result)
    with pytest.raises(InvalidResult, match=re.escape(reason)):
        check_result(result, Submission("amy", NOTEBOOK, Path("x.ipynb")))


def _claim_full_marks(result: dict) -> dict:
    """The forger's edit: every exercise passed with all its points."""
    for e in result["exercises"]:
        e.update(score=e["max_score"], status="passed", lines=[{"what": "out", "ok": True, "message": ""}])
    return _totals_follow(result)


def _csv_rows(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}


def test_forged_and_damaged_results_are_set_aside_reported_and_regraded(tmp_path, capsys):
    for student in ("amy", "ben", "cem"):
        write(tmp_path / "class" / student / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    out = tmp_path / "out"
    options = [str(tmp_path / "class"), "--out", str(out), "--workers", "2", *LIMIT_OPTIONS]
    assert main(["grade", *options, "--quiet"]) == 0
    stored = {s: out / "results" / s / f"{NOTEBOOK}.json" for s in ("amy", "ben", "cem", "zoe")}
    amy = json.loads(stored["amy"].read_text())
    ben = json.loads(stored["ben"].read_text())
    ben["exercises"][0]["score"] = 5.0  # add_backward, worth 1 point
    # Full marks claimed, with the hash of other content; a score above its points, totals made to fit;
    # a file cut short; a result filed for a student not in this run; a stray file.
    forged = {
        "amy": json.dumps(_claim_full_marks({**amy, "sha256": hashlib.sha256(b"other").hexdigest()})),
        "ben": json.dumps(_totals_follow(ben)),
        "cem": stored["cem"].read_text()[:200],
        "zoe": json.dumps({**_claim_full_marks(amy), "student": "zoe"}),
    }
    stored["zoe"].parent.mkdir()
    for student, text in forged.items():
        stored[student].write_text(text)
    (out / "results" / "notes.txt").write_text("not a result")
    capsys.readouterr()

    assert main(["grade", *options]) == 0
    printed, warned = capsys.readouterr()
    assert "graded 3, already done 0, could not grade 0" in printed
    assert "regraded 3 damaged, foreign or out-of-date results:" in warned
    assert f"amy/{NOTEBOOK}: out of date: it names other notebook content" in warned
    assert f"ben/{NOTEBOOK}: not a result that can be used: add_backward scores 5, outside 0 to 1" in warned
    assert f"cem/{NOTEBOOK}: not a result that can be used: it is not valid JSON" in warned
    assert "set aside 2 files that are no result of this run's submissions:" in warned
    assert f"zoe/{NOTEBOOK}.json: it is not the result of any submission in this run" in warned
    # The gradebook holds what the notebooks earn, for this run's students only.
    rows = _csv_rows(out)
    assert {student for student, _ in rows} == {"amy", "ben", "cem"}
    assert all(rows[(s, "mul_backward")]["score"] == "0.0" for s in ("amy", "ben", "cem"))
    assert all(rows[(s, "add_backward")]["score"] == "1.0" for s in ("amy", "ben", "cem"))
    # Nothing was lost: every file is kept, as it was, with its reason.
    (folder,) = (out / "results-set-aside").iterdir()
    assert f"they are kept in {folder}/" in warned
    for student, text in forged.items():
        assert (folder / student / f"{NOTEBOOK}.json").read_text() == text
    assert (folder / "notes.txt").read_text() == "not a result"
    reasons = (folder / "reasons.txt").read_text()
    assert len(reasons.splitlines()) == 5 and "notes.txt: it is not the result" in reasons


def test_a_result_that_cannot_be_set_aside_is_kept_and_its_submission_not_graded(tmp_path):
    notebook = write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    damaged = tmp_path / "out" / "results" / "amy" / f"{NOTEBOOK}.json"
    damaged.parent.mkdir(parents=True)
    damaged.write_text("{ cut short")
    (tmp_path / "out" / "results-set-aside").write_text("a file where the folder goes")
    run = grade_class([Submission("amy", NOTEBOOK, notebook)], tmp_path / "out", limits=LIMITS, progress=None)
    assert (run.graded, run.skipped, run.results) == (0, 0, [])
    (failure,) = run.failed
    assert failure.startswith(f"amy/{NOTEBOOK}: its stored result could not be set aside")
    assert damaged.read_text() == "{ cut short"  # a regrade would have replaced it


def test_a_changed_notebook_or_another_seed_is_graded_again_on_resume(tmp_path):
    for student in ("amy", "ben"):
        write(tmp_path / "class" / student / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    out = tmp_path / "out"

    def grade_again(seed=None):
        return grade_class(discover([tmp_path / "class"]), out, workers=2, limits=LIMITS, seed=seed,
                           progress=None)  # fmt: skip

    first = grade_again()
    assert first.graded == 2 and first.set_aside == []
    before = (out / "results" / "amy" / f"{NOTEBOOK}.json").read_text()
    write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))

    second = grade_again()
    assert (second.graded, second.skipped) == (1, 1)
    (moved,) = second.set_aside
    assert moved.submission == f"amy/{NOTEBOOK}" and "the notebook changed since" in moved.reason
    assert moved.moved_to.read_text() == before
    assert {r["student"]: r["score"] for r in second.results} == {"amy": FULL_MARKS - 1, "ben": FULL_MARKS}

    third = grade_again()
    assert (third.graded, third.skipped, third.set_aside) == (0, 2, [])
    # Results drawn from other inputs do not stand for a run with a seed (nor the other way round).
    seeded = grade_again(seed=3)
    assert (seeded.graded, seeded.skipped) == (2, 0)
    assert all("this run uses --seed 3" in s.reason for s in seeded.set_aside)


def test_the_same_notebook_gets_the_same_verdicts_without_a_seed(tmp_path):
    # The learner's function shows its inputs in what it raises: every draw is in the gradebook.
    shows_inputs = "def exp_backward(upstream, out):\n    raise ValueError(f'{upstream!r} {out!r}')"
    amy = write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", with_replaced("exp_backward", shows_inputs))
    (tmp_path / "class" / "ben").mkdir()
    shutil.copy(amy, tmp_path / "class" / "ben" / amy.name)  # the same bytes, another student
    cells = [*with_replaced("exp_backward", shows_inputs), "# the same code, another file"]
    write(tmp_path / "class" / "cem" / f"{NOTEBOOK}.ipynb", cells)
    for out in ("one", "two"):
        run = grade_class(discover([tmp_path / "class"]), tmp_path / out, workers=2, limits=LIMITS,
                          progress=None)  # fmt: skip
        assert run.graded == 3 and not run.failed
    one, two = (tmp_path / out / "gradebook.csv" for out in ("one", "two"))
    assert one.read_bytes() == two.read_bytes()
    rows = _csv_rows(tmp_path / "one")
    shown = {student: rows[(student, "exp_backward")]["diagnosis"] for student in ("amy", "ben", "cem")}
    assert re.search(r"raised ValueError: -?\d+\.\d+", shown["amy"]), shown["amy"]
    assert shown["amy"] == shown["ben"]  # the inputs follow the content...
    assert shown["amy"] != shown["cem"]  # ...and only the content
    grader = read_gradebook(tmp_path / "one" / "gradebook.json")[0]
    assert (grader["seed_policy"], grader["seed"]) == ("content hash", None)


def test_a_notebook_that_changes_during_the_run_fails_the_command(tmp_path, capsys):
    folder = tmp_path / "class"
    amy = write(folder / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    cem = write(folder / "cem" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    # zed is graded last (one worker, in order) and slowly: amy's and cem's files change meanwhile.
    write(folder / "zed" / f"{NOTEBOOK}.ipynb", ["import time\ntime.sleep(4)", *CORRECT.values()])
    out = tmp_path / "out"
    done = [out / "results" / s / f"{NOTEBOOK}.json" for s in ("amy", "cem")]

    def change_files() -> None:
        deadline = time.monotonic() + 120
        while not all(p.exists() for p in done) and time.monotonic() < deadline:
            time.sleep(0.02)
        write(amy, with_replaced("mul_backward", WRONG_MUL))
        cem.unlink()

    changer = threading.Thread(target=change_files)
    changer.start()
    status = main(["grade", str(folder), "--out", str(out), "--workers", "1", "--quiet",
                   *LIMIT_OPTIONS[2:], "--cell-timeout", "30"])  # fmt: skip
    changer.join()
    warned = capsys.readouterr().err
    assert status == 1
    assert "2 submissions changed while the class was graded" in warned
    assert f"amy/{NOTEBOOK}: the notebook changed while the class was graded" in warned
    assert f"cem/{NOTEBOOK}: the notebook disappeared" in warned
    assert "zed" not in warned
    grader, results = read_gradebook(out / "gradebook.json")
    assert [c.split(":")[0] for c in grader["changed_during_run"]] == [f"amy/{NOTEBOOK}", f"cem/{NOTEBOOK}"]
    assert all(r["score"] == FULL_MARKS for r in results)  # the rows say what was graded


def test_two_files_of_the_same_student_and_notebook_are_not_merged(tmp_path):
    first = write(tmp_path / "a" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    second = write(tmp_path / "b" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    run = grade_class([Submission("amy", NOTEBOOK, first), Submission("amy", NOTEBOOK, second)],
                      tmp_path / "out", limits=LIMITS, progress=None)  # fmt: skip
    assert run.graded == 1 and [r["path"] for r in run.results] == [str(first)]
    (refused,) = run.failed
    assert str(second) in refused and f"same student and notebook as {first}" in refused


def test_a_gradebook_of_the_earlier_format_is_still_read(tmp_path):
    # Until result version 2, gradebook.json was the bare list of results.
    (tmp_path / "gradebook.json").write_text(json.dumps([{"student": "amy"}]))
    assert read_gradebook(tmp_path / "gradebook.json") == ({}, [{"student": "amy"}])
    (tmp_path / "gradebook.json").write_text(json.dumps({"students": []}))
    with pytest.raises(ValueError, match="is not a gradebook"):
        read_gradebook(tmp_path / "gradebook.json")
