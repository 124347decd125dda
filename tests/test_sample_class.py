"""The sample class (examples/class/): its files are current, and grading it tells each student apart.

ada is right everywhere, ben partly done, cai makes the classic mistakes, dee's
central_difference never returns, eli tampers, fay's notebook 03 is broken
(see examples/class/README.md). ada and cai also hand in notebooks 08 (their own
engine: ada's works, cai's assigns at a merge), 09 and 10. The class is graded once,
with a seed, for the whole module.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpcourse import sample_class
from bpcourse.cli import main
from bpcourse.exercises import by_notebook
from bpcourse.exercises.written import BY_HAND, written_by_notebook
from bpcourse.grading.gradebook import read_gradebook
from bpcourse.grading.runner import grade_class
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import discover

ROOT = Path(__file__).resolve().parent.parent
CLASS = ROOT / "examples" / "class"
NOTEBOOKS = ("01_scalar_graphs", "03_affine_and_activations", "05_minibatches_and_training")
STUDENTS = ("ada", "ben", "cai", "dee", "eli", "fay")
NB08 = "08_build_your_own_engine"  # handed in by ada and cai only
NB09 = "09_modular_layers_and_digits"  # handed in by two students only: ada, and cai with two mistakes
NB10 = "10_rules_transformers_need"  # the same two: ada, and cai with two mistakes
LATER = (NB08, NB09, NB10)  # handed in by ada and cai only
SUBMISSIONS = [(s, nb) for s in STUDENTS for nb in NOTEBOOKS] + [
    (s, nb) for s in ("ada", "cai") for nb in LATER
]
FULL = {nb: sum(e.points for e in by_notebook(nb)) for nb in (*NOTEBOOKS, *LATER)}
ROWS = {nb: len(by_notebook(nb)) + len(written_by_notebook(nb)) for nb in (*NOTEBOOKS, *LATER)}  # written too
LIMITS = Limits(cell_seconds=20, call_seconds=3)


def test_the_committed_class_is_what_make_class_writes():
    done = subprocess.run(
        [sys.executable, str(CLASS / "make_class.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_class_check_notices_changed_missing_and_extra_files(monkeypatch):
    spec = importlib.util.spec_from_file_location("make_class", CLASS / "make_class.py")
    make_class = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_class", make_class)  # its dataclasses look themselves up there
    spec.loader.exec_module(make_class)
    files = make_class.expected_files()
    assert len(files) == len(SUBMISSIONS)
    assert make_class.differences(files) == []
    changed, dropped = sorted(files)[:2]
    files[changed] += " "
    del files[dropped]
    files[CLASS / "submitted" / "zoe" / NOTEBOOKS[0] / f"{NOTEBOOKS[0]}.ipynb"] = "{}"
    found = "\n".join(make_class.differences(files))
    assert f"out of date: {changed.relative_to(ROOT)}" in found
    assert f"not part of the class: {dropped.relative_to(ROOT)}" in found
    assert "missing: examples/class/submitted/zoe/" in found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    run = grade_class(discover([CLASS / "submitted"]), out, limits=LIMITS, seed=0, progress=None)
    assert run.graded == len(SUBMISSIONS) and not run.failed
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    results = {(r["student"], r["notebook"]): r for r in run.results}
    return out, rows, results


def row(rows, student, notebook, exercise):
    (found,) = [
        r for r in rows if (r["student"], r["notebook"], r["exercise"]) == (student, notebook, exercise)
    ]
    return found


def others_pass(rows, student, but):
    """Every exercise of ``student`` not in ``but`` has full marks (written answers wait, graded by hand)."""
    rest = [
        r for r in rows if r["student"] == student and r["exercise"] not in but and r["status"] != BY_HAND
    ]
    return all(float(r["score"]) == float(r["max_score"]) for r in rest) and rest


def test_one_gradebook_row_per_student_and_exercise(graded):
    out, rows, _ = graded
    assert len(rows) == sum(ROWS[nb] for _, nb in SUBMISSIONS)
    assert sorted({r["student"] for r in rows}) == list(STUDENTS)
    for student in STUDENTS:
        assert (out / "feedback" / f"{student}.md").stat().st_size > 0


def test_ada_has_full_marks(graded):
    _, _, results = graded
    for nb in (*NOTEBOOKS, *LATER):
        assert results[("ada", nb)]["score"] == FULL[nb]
        assert results[("ada", nb)]["problems"] == []


def test_the_readmes_give_each_notebooks_points_as_the_registry_counts_them():
    """The points typed in README.md (ada's row) and examples/class/README.md are the registry's."""
    expected = {nb[:2]: points for nb, points in FULL.items()}
    (ada,) = [
        line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if "| `ada` |" in line
    ]
    assert {nb: int(n) for n, nb in re.findall(r"(\d+)/\1 in (\d\d)\b", ada)} == expected, ada
    points = re.search(r"Points: (.*?)\.\n", (CLASS / "README.md").read_text(encoding="utf-8"), re.S)
    assert points, "examples/class/README.md no longer says each notebook's points"
    assert {nb: int(n) for nb, n in re.findall(r"notebook (\d\d) has (\d+)", points.group(1))} == expected


def test_ben_is_partly_done(graded):
    _, rows, results = graded
    for nb in NOTEBOOKS:
        assert 0 < results[("ben", nb)]["score"] < FULL[nb]
    for nb, name in [(NOTEBOOKS[0], "central_difference"), (NOTEBOOKS[1], "affine_relu_backward"),
                     (NOTEBOOKS[2], "softmax_ce_batch"), (NOTEBOOKS[2], "mlp_loss_and_grads")]:  # fmt: skip
        assert row(rows, "ben", nb, name)["status"] == "not implemented"
    half = row(rows, "ben", NOTEBOOKS[1], "two_layer_mse_grads")
    assert half["status"] == "partial" and float(half["score"]) == 2.0
    assert "missing the activation's factor" in half["diagnosis"]


CAI = {
    (NOTEBOOKS[0], "why_mul_scales"): ["answer:", "it depends on the other factor"],
    (NOTEBOOKS[0], "worked_example_grads"): ["dL_dy:", "its gradient is the SUM of both contributions"],
    (NOTEBOOKS[1], "affine_backward"): ["dW:", "(transposed?)", "the transpose of dW"],
    (NOTEBOOKS[1], "relu_backward"): ["the mask comes from the wrong array"],
    (NOTEBOOKS[1], "tanh_backward"): ["φ′(a) used where φ′(z) belongs"],
    (NOTEBOOKS[2], "affine_backward_batch"): ["db:", "SUM of the B per-example gradients"],
    (NOTEBOOKS[2], "mlp_loss_and_grads"): [
        *("b1:", "b2:", "in layer 1's affine step", "in layer 2's affine step"),
        "SUM of the B per-example gradients",
    ],
    (NB09, "sigmoid_layer"): ["dZ:", "the sigmoid's slope was computed from z instead of a"],
    (NB09, "decayed_affine_layer"): ["dW:", "this is 2λ W, the gradient of λ‖W‖²"],
    (NB08, "backward"): ["graphs with merges", "equals just one of the contributions"],
    (NB10, "attention_scores_backward"): ["dX:", "its gradient is the SUM of both contributions",
                                          "only the path through Q is counted"],
    (NB10, "batchnorm_backward"): ["dX:", "this derivative of σ² divides by B - 1",
                                   "use the same B in both passes"],
}  # fmt: skip


def test_cai_classic_mistakes_are_diagnosed_by_name(graded):
    _, rows, _ = graded
    for (nb, name), phrases in CAI.items():
        found = row(rows, "cai", nb, name)
        assert float(found["score"]) < float(found["max_score"])
        for phrase in phrases:
            assert phrase in found["diagnosis"], (name, found["diagnosis"])
    assert others_pass(rows, "cai", {name for _, name in CAI})


def test_written_answers_wait_to_be_graded_by_hand_with_their_points(graded):
    """ada wrote notebook 03's written answer, the others left it empty: none is scored 0 or full."""
    out, rows, _ = graded
    for student in STUDENTS:
        found = row(rows, student, NOTEBOOKS[1], "written_delta_recurrence")
        assert (found["status"], found["score"], float(found["max_score"])) == (BY_HAND, "", 2.0)
        wrote = "an answer of" in found["diagnosis"] or "no answer written yet" not in found["diagnosis"]
        assert wrote == (student == "ada"), found
        feedback = (out / "feedback" / f"{student}.md").read_text(encoding="utf-8")
        assert "+ 2 points to grade by hand" in feedback


def test_dee_endless_loop_costs_that_function_only(graded):
    _, rows, _ = graded
    looping = row(rows, "dee", NOTEBOOKS[0], "central_difference")
    assert float(looping["score"]) == 0 and looping["status"] == "error"
    assert "endless loop" in looping["diagnosis"]
    assert others_pass(rows, "dee", {"central_difference"})


def test_eli_tampering_earns_nothing(graded):
    out, rows, results = graded
    # numpy's comparisons patched and "All tests passed!" printed: the swapped answer still scores 0.
    assert float(row(rows, "eli", NOTEBOOKS[0], "mul_backward")["score"]) == 0
    assert "swapped" in row(rows, "eli", NOTEBOOKS[0], "mul_backward")["diagnosis"]
    cheat = row(rows, "eli", NOTEBOOKS[1], "affine_backward")
    assert float(cheat["score"]) == 0 and "uses bpcourse.exercises.get" in cheat["diagnosis"]
    # grade() replaced by one that gives full marks: the stub still scores 0.
    assert float(row(rows, "eli", NOTEBOOKS[2], "mlp_loss_and_grads")["score"]) == 0
    assert others_pass(rows, "eli", {"mul_backward", "affine_backward", "mlp_loss_and_grads"})
    assert "All tests passed" not in (out / "gradebook.csv").read_text(encoding="utf-8")


def test_fay_broken_notebook_is_reported_and_the_rest_graded(graded):
    _, rows, results = graded
    problems = " ".join(results[("fay", NOTEBOOKS[1])]["problems"])
    assert "SyntaxError" in problems
    for name in ("relu_backward", "sigmoid_backward"):
        found = row(rows, "fay", NOTEBOOKS[1], name)
        assert found["status"] == "missing" and "no function called" in found["diagnosis"]
    assert others_pass(rows, "fay", {"relu_backward", "sigmoid_backward"})
    assert results[("fay", NOTEBOOKS[0])]["score"] == FULL[NOTEBOOKS[0]]
    assert results[("fay", NOTEBOOKS[2])]["score"] == FULL[NOTEBOOKS[2]]


# -- the command --------------------------------------------------------------------------------------
def test_grade_sample_prints_the_gradebook_diagnoses_and_the_way_into_the_course(tmp_path, capsys):
    # ada's six notebooks only, so that the command runs in a few seconds.
    folder = tmp_path / "submitted"
    shutil.copytree(CLASS / "submitted" / "ada", folder / "ada")
    assert main(["grade-sample", str(folder), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "1 student, 6 notebooks" in text
    assert re.search(r"ada +03_affine_and_activations +15/15 \+ 2 by hand  all passed", text), (
        text
    )  # widths vary
    assert "jupyter lab notebooks/" in text and "bpcourse demo" in text
    rows = list(csv.DictReader((tmp_path / "grades" / "gradebook.csv").open(encoding="utf-8")))
    assert len(rows) == sum(ROWS[nb] for nb in (*NOTEBOOKS, *LATER))
    assert all(r["status"] in ("passed", BY_HAND) for r in rows)
    grader, results = read_gradebook(tmp_path / "grades" / "gradebook.json")
    assert (grader["seed_policy"], grader["seed"]) == ("fixed seed", sample_class.SEED)
    assert sample_class.diagnoses(results).count("\n") == 1  # the heading alone: nothing was wrong


def test_grade_sample_lists_the_notebooks_in_order_from_the_repository(monkeypatch):
    monkeypatch.chdir(ROOT)
    folder, root = sample_class.locate()
    assert folder == sample_class.SAMPLE and root == ROOT
    hint = sample_class.course_hint(root)
    assert "lab notebooks/" in hint
    assert hint.index("00_start_here") < hint.index("01_scalar_graphs") < hint.index("07_cost_of_backprop")


def test_grade_sample_outside_the_repository_says_where_to_run_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sample_class, "_source_root", lambda: tmp_path)
    assert main(["grade-sample"]) == 2
    assert "from the root of the bpcourse repository" in capsys.readouterr().err
