"""``bpcourse report --nbgrader``: the class report from nbgrader's gradebook database.

Notebook 01 is released with nbgrader, and four students hand it back in
``submitted/``: amy with the solutions, bob with mul's inputs swapped, dan
with the worked example's merge forgotten, eve with mul_backward renamed (so
its test cell raises a NameError) and central_difference left as the stub.
``nbgrader autograde`` grades them for real. The report read from its
``gradebook.db`` and autograded notebooks must be the report of the same
class graded by ``bpcourse grade``: the same scores, outcomes and
misconceptions, and the misconception chart must hold the gradebook's counts.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from test_nbgrader_feedback import _nbgrader
from test_nbgrader_lifecycle import _answer, _environment, _nbgrader_cells, _without_markers

from bpcourse.cli import main
from bpcourse.grading.nbgrader_gradebook import verdict_of_text
from bpcourse.grading.report import OUTCOMES, build, misconception_figure
from bpcourse.grading.runner import grade_class
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import discover

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_scalar_graphs"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
WRONG_MUL = "def mul_backward(upstream, x, y):\n    return upstream * x, upstream * y\n"
NO_MERGE = (
    "def worked_example_grads(x, y):\n    u = x * y\n    v = u + y\n    dL_dv = 2 * v\n"
    "    return dL_dv * y, dL_dv * x\n"
)
RENAMED = "def mul_backwards(upstream, x, y):\n    return upstream * y, upstream * x\n"
STUB = "def central_difference(f, x, h=1e-5):\n    raise NotImplementedError()\n"
CHANGES = {
    "amy": {},
    "bob": {"mul_backward": WRONG_MUL},
    "dan": {"worked_example_grads": NO_MERGE},
    "eve": {"mul_backward": RENAMED, "central_difference": STUB},
}
SWAPPED = "dz/dx is the OTHER input"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An nbgrader course folder after ``nbgrader autograde`` of the four students."""
    top = tmp_path_factory.mktemp("nbgrader-report")
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
    for student, changes in CHANGES.items():
        path = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
        path.parent.mkdir(parents=True)
        shutil.copyfile(course / "release" / ASSIGNMENT / NOTEBOOK, path)
        _answer(path, {**solutions, **changes})
    _nbgrader(course, env, "autograde", ASSIGNMENT)
    return course


@pytest.fixture(scope="module")
def reported(course: Path) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["report", str(course), "--nbgrader"])
    return status, printed.getvalue()


def _nbgrader_scores(course: Path) -> dict[tuple[str, str], tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {
            (student, grade.name.removeprefix("check_")): (float(grade.score), float(grade.max_score))
            for student in CHANGES
            for grade in gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).grades
            if grade.name.startswith("check_")
        }


def test_the_report_is_written_from_the_database(course: Path, reported: tuple[int, str]) -> None:
    status, printed = reported
    assert status == 0, printed
    page = (course / "report.html").read_text(encoding="utf-8")
    assert "graded by nbgrader" in page
    assert "http://" not in page and "https://" not in page  # opens offline
    assert "Class report: 4 students, 1 notebook" in printed


def test_scores_outcomes_and_misconceptions_are_nbgraders(course: Path) -> None:
    from bpcourse.grading.nbgrader_gradebook import results

    grader, found = results(course)
    report = build(grader, found)
    scores = _nbgrader_scores(course)
    for student in CHANGES:
        assert report.scores[ASSIGNMENT][student] == pytest.approx(
            sum(s for (who, _), (s, _) in scores.items() if who == student)
        )
    by_name = {ex.exercise: ex for ex in report.exercises}
    assert by_name["mul_backward"].outcomes["wrong"] == ["bob"]
    assert by_name["mul_backward"].outcomes["missing"] == ["eve"]  # its test cell raised a NameError
    assert by_name["central_difference"].outcomes["missing"] == ["eve"]  # the stub
    assert by_name["worked_example_grads"].outcomes["partly"] == ["dan"]
    mul = by_name["mul_backward"]
    assert [n for text, n in mul.misconceptions.items() if SWAPPED in text] == [1]
    # The chart draws the gradebook's counts.
    ax = misconception_figure(list(mul.misconceptions.items()), "mul").axes[0]
    assert [p.get_width() for p in ax.patches] == [n for _, n in mul.misconceptions.most_common()]
    assert ax.get_title() and ax.get_xlabel() == "students"


def test_it_is_the_report_of_the_same_class_graded_by_bpcourse(course: Path, tmp_path: Path) -> None:
    from bpcourse.grading.nbgrader_gradebook import results

    by_nbgrader = build(*results(course))
    run = grade_class(discover([course / "submitted"]), tmp_path, limits=Limits(), seed=3, progress=None)
    assert not run.failed
    by_bpcourse = build({}, run.results)
    assert by_nbgrader.scores[ASSIGNMENT] == pytest.approx(by_bpcourse.scores[ASSIGNMENT])
    for ours, theirs in zip(by_nbgrader.exercises, by_bpcourse.exercises, strict=True):
        assert ours.exercise == theirs.exercise
        assert {k: sorted(ours.outcomes[k]) for k in OUTCOMES} == {
            k: sorted(theirs.outcomes[k]) for k in OUTCOMES
        }
        assert ours.misconceptions == theirs.misconceptions, ours.exercise
    assert [p.student for p in by_nbgrader.needing_help()] == [p.student for p in by_bpcourse.needing_help()]


def test_a_verdict_is_read_back_from_its_text() -> None:
    text = (
        "mul_backward: failed (0/1 points)\n  ✗ dx: has the wrong value — dz/dx is the OTHER input\n"
        "  ✓ dy\n  → revisit: the rules table"
    )
    assert verdict_of_text(text) == {
        "exercise": "mul_backward",
        "status": "failed",
        "lines": [
            {"what": "dx", "ok": False, "message": "has the wrong value — dz/dx is the OTHER input"},
            {"what": "dy", "ok": True, "message": ""},
        ],
    }
    assert verdict_of_text("<Figure size 608x240 with 3 Axes>") is None


def test_without_a_gradebook_database_it_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path), "--nbgrader"]) == 2
    assert "no gradebook.db here" in capsys.readouterr().err


def test_without_nbgrader_it_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nbgrader.api", None)  # import nbgrader.api now raises ImportError
    assert main(["report", str(tmp_path), "--nbgrader"]) == 2
    assert "pip install 'bpcourse[instructor]'" in capsys.readouterr().err


def test_the_nbgrader_report_renders_offline_in_a_browser(course: Path, reported: tuple[int, str]) -> None:
    """Headless Chromium, as in test_browser: every chart decodes, nothing is fetched, a screenshot kept."""
    from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _require_browser

    _require_browser()
    from playwright.sync_api import sync_playwright

    fetched: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: fetched.append(r.url))
            page.goto((course / "report.html").resolve().as_uri())
            page.wait_for_load_state("load")
            sizes = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "nbgrader-class-report.png"), full_page=True)
        finally:
            browser.close()
    # scores, the common misconceptions, the outcomes, and one chart per exercise with a misconception
    assert len(sizes) == 3 + 2 and all(done and w > 300 and h > 100 for done, w, h, _ in sizes), sizes
    assert [url.split(":")[0] for url in fetched if not url.startswith("data:")] == ["file"]


def test_a_wrong_answer_shows_its_error_map_in_the_autograded_notebook(course: Path) -> None:
    graded = nbformat.read(str(course / "autograded" / "dan" / ASSIGNMENT / NOTEBOOK), as_version=4)
    (cell,) = [
        c
        for c in graded.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == "check_worked_example_grads"
    ]
    kinds = [set(o.get("data", {})) for o in cell.outputs]
    assert any("image/png" in k for k in kinds), kinds  # the graph with dan's gradients, under the verdict
    amy = nbformat.read(str(course / "autograded" / "amy" / ASSIGNMENT / NOTEBOOK), as_version=4)
    tests = [c for c in amy.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert not any("image/png" in o.get("data", {}) for c in tests for o in c.outputs)  # all right: no map
