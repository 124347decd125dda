"""``bpcourse progress``: one learner's notebooks graded in the sandbox, a table, a picture, what is next.

The learner is ``cai`` of the sample class (nbgrader's layout, notebooks 01, 03,
05, 08, 09 and 10, with the classic mistakes), graded for real. The picture is checked
from its data: each exercise's cell has the colour of the status the grader
wrote in the gradebook, notebooks the folder lacks are not started, the legend
counts the cells, and the next exercise is framed.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from matplotlib.colors import to_hex

from bpcourse.cli import main
from bpcourse.exercises import by_notebook
from bpcourse.grading import progress
from bpcourse.grading.gradebook import read_gradebook
from bpcourse.grading.submissions import COURSE_NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
CAI = ROOT / "examples" / "class" / "submitted" / "cai"


@pytest.fixture(scope="module")
def cai(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("progress")
    folder = out / "submitted" / "cai"
    shutil.copytree(CAI, folder)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["progress", str(folder), "--out", str(out / "progress")])
    _, results = read_gradebook(out / "progress" / "gradebook.json")
    return {"status": status, "printed": printed.getvalue(), "results": results, "out": out / "progress"}


def test_the_table_lists_every_exercise_of_the_course_with_its_status(cai: dict[str, object]) -> None:
    assert cai["status"] == 0
    printed = str(cai["printed"])
    graded = {(r["notebook"], e["exercise"]): e for r in cai["results"] for e in r["exercises"]}
    assert {nb for nb, _ in graded} == {
        "01_scalar_graphs",
        "03_affine_and_activations",
        "05_minibatches_and_training",
        "08_build_your_own_engine",
        "09_modular_layers_and_digits",
        "10_rules_transformers_need",
    }
    table = printed.split("\n\n")[0].splitlines()[2:]
    course = [(nb, e.name) for nb in COURSE_NOTEBOOKS for e in by_notebook(nb)]
    assert [tuple(line.split()[:2]) for line in table] == course
    for line in table:
        notebook, exercise, status = line.split()[:3]
        expected = graded[(notebook, exercise)]["status"] if (notebook, exercise) in graded else "no notebook"
        assert line.split()[2:2 + len(expected.split())] == expected.split(), line  # fmt: skip
    relu = next(line for line in table if " relu_backward " in line)
    assert "the mask comes from the wrong array" in relu


def test_it_ends_with_the_first_exercise_not_right_in_the_notebooks_handed_in(cai: dict[str, object]) -> None:
    rows = progress.course_rows(cai["results"])  # type: ignore[arg-type]
    first = next(r for r in rows if r.state != "right" and r.status != "no notebook")
    assert (first.notebook, first.exercise) == ("01_scalar_graphs", "worked_example_grads")
    last = str(cai["printed"]).strip().splitlines()
    assert "Next: worked_example_grads in 01_scalar_graphs (partial)." in last
    assert "its gradient is the SUM of" in "\n".join(last)  # the misconception, whole
    assert last[-1].startswith("  revisit: ")
    assert (Path(str(cai["out"])) / "progress.png").stat().st_size > 10_000


def test_the_picture_colours_each_exercise_by_the_gradebook_status(cai: dict[str, object]) -> None:
    results = cai["results"]
    rows = progress.course_rows(results)  # type: ignore[arg-type]
    fig = progress.progress_figure(rows, "Progress of cai")
    ax = fig.axes[0]
    cells = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("progress-")}
    assert len(cells) == len(rows)
    graded = {(r["notebook"], e["exercise"]): e["status"] for r in results for e in r["exercises"]}  # type: ignore[index]
    expected_states = {
        "passed": "right",
        "partial": "partly",
        "failed": "wrong",
        "not implemented": "not started",
    }
    for nb in COURSE_NOTEBOOKS:
        for exercise in by_notebook(nb):
            cell = cells[f"progress-{nb}-{exercise.name}"]
            status = graded.get((nb, exercise.name))
            state = "not started" if status is None else expected_states.get(status, "error")
            assert to_hex(cell.get_facecolor()) == progress.COLOURS[state], (nb, exercise.name, status)
    framed = [gid for gid, p in cells.items() if to_hex(p.get_edgecolor()) == progress.NEXT_EDGE]
    assert framed == ["progress-01_scalar_graphs-worked_example_grads"]
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    counts = {s: sum(r.state == s for r in rows) for s in progress.STATES}
    assert legend == {f"{s} ({n})" for s, n in counts.items()} | {"next to do"}
    assert ax.get_title().startswith(f"Progress of cai: {counts['right']} of {len(rows)} exercises right")
    earned, total = sum(r.score for r in rows), sum(r.max_score for r in rows)
    assert ax.get_title().endswith(f", {round(earned, 1):g} of {total:g} points")  # cai's thirds: 1 decimal
    assert 0 < earned < total and earned != round(earned, 1)
    assert ax.get_xlabel() and ax.get_ylabel()


def test_a_folder_of_several_students_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["progress", str(CAI.parent), "--out", str(tmp_path)]) == 2
    assert "give one student's folder" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_missing_folder_or_one_without_course_notebooks_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["progress", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "scratch.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                                 "nbformat_minor": 5}))  # fmt: skip
    assert main(["progress", str(tmp_path / "mine"), "--out", str(tmp_path / "out")]) == 2
    assert "no notebook of the course" in capsys.readouterr().err


def test_the_course_notebooks_as_handed_out_are_all_not_started(tmp_path: Path, capsys) -> None:
    assert main(["progress", str(ROOT / "notebooks"), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    first = by_notebook(COURSE_NOTEBOOKS[0])[0].name
    assert printed.strip().endswith(f"Next: {first} in {COURSE_NOTEBOOKS[0]} (not implemented).")
    total = sum(len(by_notebook(nb)) for nb in COURSE_NOTEBOOKS)
    assert f"0 right, 0 partly, 0 wrong, 0 error, {total} not started" in printed
