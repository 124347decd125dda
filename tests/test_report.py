"""``bpcourse report``: the class report, checked against a gradebook made by grading a small class.

Four students hand in notebook 01 (written as in ``test_grading``): amy gets
everything right; bob swaps mul's inputs; cam swaps them too, writes an endless
loop in exp_backward and leaves central_difference as the stub; dan forgets the
merge in the worked example. The class is graded once, in the sandbox, and
every test reads that gradebook.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from test_grading import CORRECT, NOTEBOOK, WRONG_MUL, write

from bpcourse.cli import main
from bpcourse.exercises import by_notebook, get
from bpcourse.grading.gradebook import read_gradebook
from bpcourse.grading.report import (
    TAMPERING_MISCONCEPTION,
    build,
    misconception_figure,
    outcome_figure,
    score_figure,
    summary_text,
)
from bpcourse.grading.runner import grade_class
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import discover

LIMITS = Limits(cell_seconds=6, call_seconds=2, memory_mb=1536)
SPIN = "def exp_backward(upstream, out):\n    while True:\n        pass"
STUB = "def central_difference(f, x, h=1e-5):\n    raise NotImplementedError"
NO_MERGE = (
    "def worked_example_grads(x, y):\n"
    "    u = x * y\n    v = u + y\n    dL_dv = 2 * v\n"
    "    return dL_dv * y, dL_dv * x"
)
CHANGES = {
    "amy": {},
    "bob": {"mul_backward": WRONG_MUL},
    "cam": {"mul_backward": WRONG_MUL, "exp_backward": SPIN, "central_difference": STUB},
    "dan": {"worked_example_grads": NO_MERGE},
}
SWAPPED = "dz/dx is the OTHER input"
MERGE = "its gradient is the SUM of both contributions"
PNG = "data:image/png;base64,"


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> Path:
    """The --out folder of a real grading of the four students."""
    root = tmp_path_factory.mktemp("report")
    for student, changes in CHANGES.items():
        cells = [changes.get(name, code) for name, code in CORRECT.items()]
        write(root / "class" / student / f"{NOTEBOOK}.ipynb", cells)
    run = grade_class(discover([root / "class"]), root / "grades", limits=LIMITS, seed=3, progress=None)
    assert run.graded == 4 and not run.failed
    return root / "grades"


@pytest.fixture(scope="module")
def reported(grades, tmp_path_factory) -> tuple[int, str, str]:
    """(exit status, stdout, report.html) of `bpcourse report` on the graded class."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["report", str(grades)])
    return status, out.getvalue(), (grades / "report.html").read_text(encoding="utf-8")


def _row(summary: str, exercise: str) -> list[int]:
    """The outcome counts the summary prints for an exercise of notebook 01."""
    (line,) = [ln for ln in summary.splitlines() if re.match(rf"01 {exercise}\s", ln)]
    return [int(n) for n in line.split()[2:]]


def test_the_gradebook_is_what_the_class_did(grades):
    """The premise of the other tests: the grader saw the mistakes written above."""
    rows = list(csv.DictReader((grades / "gradebook.csv").open(encoding="utf-8")))
    status = {(r["student"], r["exercise"]): r["status"] for r in rows}
    assert (
        status["cam", "exp_backward"] == "error" and status["cam", "central_difference"] == "not implemented"
    )
    assert status["bob", "mul_backward"] == "failed" and status["dan", "worked_example_grads"] == "partial"


def test_summary_counts_each_outcome(reported):
    status, summary, _ = reported
    assert status == 0
    # right, partly, wrong, error, timed out, missing
    assert _row(summary, "add_backward") == [4, 0, 0, 0, 0, 0]
    assert _row(summary, "mul_backward") == [2, 0, 2, 0, 0, 0]
    assert _row(summary, "exp_backward") == [3, 0, 0, 0, 1, 0]
    assert _row(summary, "central_difference") == [3, 0, 0, 0, 0, 1]
    assert _row(summary, "worked_example_grads") == [3, 1, 0, 0, 0, 0]
    assert "handed in" in summary and re.search(rf"{NOTEBOOK}\s+4/4\s", summary)


def test_summary_ranks_misconceptions_with_the_section_to_revisit(reported):
    _, summary, _ = reported
    section = summary.split("Most common misconceptions")[1].split("Students who may need help")[0]
    lines = [ln for ln in section.splitlines() if ln.strip()]
    assert lines[1].split()[0] == "2" and SWAPPED in lines[1]  # bob and cam, first
    assert get("mul_backward", NOTEBOOK).revisit in lines[2]
    assert any(ln.split()[0] == "1" and "y is used twice" in ln for ln in lines)


def test_summary_lists_the_students_who_may_need_help(reported):
    _, summary, _ = reported
    helped = summary.split("Students who may need help:")[1].splitlines()
    names = [ln.split(":")[0].strip() for ln in helped if ln.startswith("  ")]
    assert names == ["cam"]  # a timeout and a missing exercise; 7/10 is above 60%
    assert "1 missing, 1 timed out" in summary


def test_the_charts_hold_the_gradebooks_counts(grades):
    grader, results = read_gradebook(grades / "gradebook.json")
    report = build(grader, results)
    rows = list(csv.DictReader((grades / "gradebook.csv").open(encoding="utf-8")))
    mul = next(ex for ex in report.exercises if ex.exercise == "mul_backward")
    ax = misconception_figure(list(mul.misconceptions.items()), "mul").axes[0]
    widths = [p.get_width() for p in ax.patches]
    with_swap = {r["student"] for r in rows if r["exercise"] == "mul_backward" and SWAPPED in r["diagnosis"]}
    assert widths == [len(with_swap)] == [2]
    assert SWAPPED[:20] in ax.get_yticklabels()[0].get_text()
    # the stacked outcome bars: one bar per exercise and outcome, adding up to the class
    bars = outcome_figure(report).axes[0].patches
    assert len(bars) == 6 * len(report.exercises)
    assert sum(p.get_width() for p in bars) == 4 * len(report.exercises)
    wrong = bars[2 * len(report.exercises) : 3 * len(report.exercises)]
    assert [p.get_width() for p in wrong] == [
        2 if ex.exercise == "mul_backward" else 0 for ex in report.exercises
    ]
    # the histogram of notebook 01's scores counts the four students
    hist = score_figure(report).axes[0]
    heights = {round(p.get_x() + p.get_width() / 2): p.get_height() for p in hist.patches}
    assert {k: v for k, v in heights.items() if v} == {7: 1, 9: 2, 10: 1}  # cam; bob, dan; amy
    assert "points out of 10" in hist.get_xlabel()


def test_the_score_histograms_go_three_to_a_row_in_the_notebooks_order(grades):
    """A course of many notebooks keeps the score figure as wide as three histograms, none left empty."""
    grader, results = read_gradebook(grades / "gradebook.json")
    names = [f"{NOTEBOOK}_{i}" for i in range(5)]  # the same four students' notebook, five times
    fig = score_figure(build(grader, [{**r, "notebook": nb} for nb in names for r in results]))
    assert [ax.get_title() for ax in fig.axes] == names
    places = [(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in fig.axes]
    assert places == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert fig.get_figwidth() == pytest.approx(3 * score_figure(build(grader, results)).get_figwidth())


def test_the_html_embeds_its_figures_and_names_the_students(reported):
    _, _, page = reported
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', page)
    # scores, common misconceptions, outcomes, and one per exercise with a misconception
    assert [alt for _, alt in images] == [
        "score distribution",
        "most common misconceptions",
        "outcome of each exercise",
        "misconceptions in mul_backward",
        "misconceptions in worked_example_grads",
    ]
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data, _ in images)
    helped = page.split("Students who may need help")[1].split("<h2>")[0]
    assert "<td>cam</td>" in helped and "<td>bob</td>" not in helped
    assert "students concerned: bob, cam" in page
    assert "://" not in page.replace(PNG, "")  # nothing to fetch: it opens offline


def test_thresholds_change_who_is_listed(grades, tmp_path, capsys):
    shutil.copy(grades / "gradebook.json", tmp_path / "gradebook.json")  # the class's report stays as it is
    assert main(["report", str(tmp_path), "--low-score", "95", "--many-problems", "5"]) == 0
    helped = capsys.readouterr().out.split("Students who may need help:")[1]
    names = [ln.split(":")[0].strip() for ln in helped.splitlines() if ln.startswith("  ")]
    assert sorted(names) == ["bob", "cam", "dan"]  # 9/10, 7/10, 9/10 are below 95%; amy has 10/10


def test_a_missing_notebook_counts_as_missing_work(grades, tmp_path, capsys):
    grader, results = read_gradebook(grades / "gradebook.json")
    passed = {"status": "passed", "lines": []}
    done = [
        {"exercise": e.name, "score": float(e.points), "max_score": e.points, **passed}
        for e in by_notebook("03_affine_and_activations")
    ]
    other = {**results[0], "student": "amy", "notebook": "03_affine_and_activations", "exercises": done}
    other["score"] = other["max_score"] = sum(e["score"] for e in done)
    (tmp_path / "gradebook.json").write_text(json.dumps({"grader": grader, "submissions": [*results, other]}))
    assert main(["report", str(tmp_path)]) == 0
    summary = capsys.readouterr().out
    assert _row_03(summary, "affine_backward") == [1, 0, 0, 0, 0, 3]  # amy handed in nothing: missing
    assert re.search(r"03_affine_and_activations\s+1/4\s", summary)


def _row_03(summary: str, exercise: str) -> list[int]:
    (line,) = [ln for ln in summary.splitlines() if re.match(rf"03 {exercise}\s", ln)]
    return [int(n) for n in line.split()[2:]]


@pytest.mark.parametrize("case", ["no folder", "no gradebook", "old format", "not json", "no submissions"])
def test_bad_input_is_refused_with_a_message(grades, tmp_path, capsys, case):
    folder = tmp_path / "grades"
    if case != "no folder":
        folder.mkdir()
    _, results = read_gradebook(grades / "gradebook.json")
    content = {
        "old format": json.dumps(results),
        "not json": "{ not json",
        "no submissions": json.dumps({"grader": {"version": "0"}, "submissions": []}),
    }
    if case in content:
        (folder / "gradebook.json").write_text(content[case])
    assert main(["report", str(folder)]) == 2
    error = capsys.readouterr().err
    expected = {
        "no folder": "no such folder",
        "no gradebook": "no gradebook.json here",
        "old format": "old format",
        "not json": "cannot be read as a gradebook",
        "no submissions": "holds no submissions",
    }
    assert error.startswith("bpcourse report: ") and expected[case] in error
    assert not (folder / "report.html").exists()


def test_the_report_of_the_copied_gradebook_is_the_same(grades, tmp_path, reported):
    """The report reads only gradebook.json: a copy of it alone gives the same summary."""
    shutil.copy(grades / "gradebook.json", tmp_path / "gradebook.json")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", str(tmp_path)]) == 0
    assert out.getvalue().replace(str(tmp_path), "X") == reported[1].replace(str(grades), "X")


def test_a_tampering_attempt_is_named_and_its_student_listed(grades):
    """A verdict edited as the grader writes a caught attempt (the class above has none)."""
    grader, results = read_gradebook(grades / "gradebook.json")
    amy = next(r for r in results if r["student"] == "amy")
    mul = next(e for e in amy["exercises"] if e["exercise"] == "mul_backward")
    line = {
        "what": "own code",
        "ok": False,
        "message": "uses bpcourse.exercises.get: write the rule yourself",
    }
    mul.update(score=0.0, status="delegated", lines=[line])
    report = build(grader, results)
    counts = next(ex for ex in report.exercises if ex.exercise == "mul_backward").misconceptions
    assert counts[TAMPERING_MISCONCEPTION] == 1 and sum(counts.values()) == 3  # amy; bob and cam swapped
    assert [p.student for p in report.needing_help()] == ["cam", "amy"]
    assert "tampering attempt in mul_backward" in summary_text(report)


def test_the_report_renders_offline_in_a_browser(reported, tmp_path):
    """Headless Chromium, as in test_browser: every chart decodes, nothing is fetched, a screenshot kept."""
    from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _require_browser

    _require_browser()
    from playwright.sync_api import sync_playwright

    html = tmp_path / "report.html"
    html.write_text(reported[2], encoding="utf-8")
    fetched: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            sizes = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "class-report.png"), full_page=True)
        finally:
            browser.close()
    assert len(sizes) == 5 and all(done and w > 300 and h > 100 for done, w, h, _ in sizes), sizes
    assert [url.split(":")[0] for url in fetched if not url.startswith("data:")] == ["file"]


def test_the_png_stacks_the_main_charts_with_the_gradebooks_counts(grades, tmp_path):
    """--png: scores, outcomes and the common misconceptions in one image, drawn from the gradebook."""
    from matplotlib import image

    from bpcourse.grading.report import overview_figures

    report = build(*read_gradebook(grades / "gradebook.json"))
    figures = overview_figures(report)
    assert len(figures) == 3
    common = report.common_misconceptions()
    bars = figures[2].axes[0].patches
    assert [p.get_width() for p in bars] == [n for _, n, _ in common[:10]]
    assert figures[2].axes[0].get_title() and figures[2].axes[0].get_xlabel() == "students"
    out = tmp_path / "charts.png"
    assert main(["report", str(grades), "--png", str(out)]) == 0
    pixels = image.imread(out)
    sizes = [(round(f.get_figheight() * 72), round(f.get_figwidth() * 72)) for f in figures]
    assert pixels.shape[0] == pytest.approx(sum(h for h, _ in sizes) + 16 * (len(sizes) - 1), abs=3)
    assert pixels.shape[1] == pytest.approx(max(w for _, w in sizes), abs=3)
