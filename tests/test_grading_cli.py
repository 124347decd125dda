"""The class grader's command line as an instructor meets it: paths, progress, labels, messages."""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import subprocess
import sys

import pytest
from test_grading import CORRECT, NOTEBOOK, WRONG_MUL, with_replaced, write

from bpcourse.cli import main
from bpcourse.grading import gradescope
from bpcourse.grading.command import _table
from bpcourse.grading.gradebook import feedback_text, label, readable
from bpcourse.grading.runner import _progress
from bpcourse.grading.submissions import find

CHEAT = (
    "def mul_backward(upstream, x, y):\n"
    "    from bpcourse.exercises import get\n"
    "    return get('mul_backward', '01_scalar_graphs').reference(upstream, x, y)"
)
SYNTAX_ERROR = "x = 1\ndef mul_backward(upstream, x, y)\n    return upstream * y, upstream * x"


# -- paths: missing ones refused, non-notebooks skipped ------------------------------------------------
def test_a_missing_path_is_refused_before_anything_is_graded(tmp_path, capsys):
    good = write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    out = tmp_path / "out"
    assert main(["grade", str(good), str(tmp_path / "no-such-folder"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no-such-folder: no such file or folder" in err
    assert not out.exists()  # refused before grading began


def test_find_tells_missing_and_non_notebook_paths_apart(tmp_path):
    notebook = write(tmp_path / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    (tmp_path / "amy" / "notes.txt").write_text("not a notebook")
    text = tmp_path / "README.md"
    text.write_text("# hello")
    found = find([tmp_path / "amy", text, tmp_path / "gone.ipynb", notebook])
    assert [s.path for s in found.submissions] == [notebook]  # in a folder only notebooks count
    assert found.skipped == [text]
    assert found.missing == [tmp_path / "gone.ipynb"]


def test_only_non_notebooks_grades_nothing(tmp_path, capsys):
    text = tmp_path / "answers.py"
    text.write_text("print('hi')")
    assert main(["grade", str(text), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"skipped {text}: not a notebook" in err and "no notebooks found" in err


# -- the command without a command, and --version ---------------------------------------------------
def test_no_command_lists_the_commands_first_then_runs_the_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    text = capsys.readouterr().out
    for command in ("demo", "grade", "grade-sample"):
        assert f"\n  {command} " in text
    assert text.index("grade-sample") < text.index("running `bpcourse demo`") < text.index("Worked example")
    assert (tmp_path / "demo-output" / "worked_example.png").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"bpcourse {importlib.metadata.version('bpcourse')}"


# -- progress ----------------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_plain_lines_in_a_log(tmp_path):
    log = io.StringIO()
    show = _progress(log)
    for done in range(1, 41):
        show(done, 40, 0.0)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 11  # the first notebook, then each tenth of the class
    assert lines[0].startswith("grading: 1/40 notebooks done")
    assert lines[-1].startswith("grading: 40/40 notebooks done")


def test_progress_redraws_a_bar_on_a_terminal():
    screen = Terminal()
    show = _progress(screen)
    for done in range(1, 6):
        show(done, 5, 0.0)
    text = screen.getvalue()
    assert "\r" in text and "grading" in text and "5/5" in text and "100%" in text
    assert text.endswith("\n")  # the bar is closed when the class is done


def test_the_command_logs_progress_without_carriage_returns(tmp_path):
    write(tmp_path / "class" / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    done = subprocess.run(
        [sys.executable, "-m", "bpcourse", "grade", str(tmp_path / "class"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "grading: 1/1 notebooks done" in done.stderr


# -- labels and messages in the table, the feedback, the CSV and Gradescope ------------------------------
def _exercise(name: str, status: str, message: str = "") -> dict:
    lines = [{"what": "runs", "ok": status == "passed", "message": message}]
    return {"exercise": name, "score": 0.0, "max_score": 1, "status": status, "lines": lines}


def test_the_table_labels_every_item_that_lost_points():
    exercises = [
        _exercise("a", "passed"),
        _exercise("b", "failed", "wrong"),
        _exercise("c", "partial", "half"),
        _exercise("d", "error", "raised ZeroDivisionError"),
        _exercise("e", "missing", "no function called e"),
        _exercise("f", "error", "raised ImportError: bpcourse.exercises is not available while grading"),
    ]
    result = {"student": "amy", "notebook": NOTEBOOK, "path": "x", "score": 0, "max_score": 6}
    table = _table([{**result, "exercises": exercises, "problems": []}])
    assert "b (failed), c (partial), d (error), e (missing), f (tampering attempt)" in table
    assert "a (" not in table
    assert [label(e) for e in exercises[4:]] == ["missing", "tampering attempt"]


def test_syntax_errors_name_the_line_of_the_cell():
    raw = "cell 35: raised SyntaxError: incomplete input (<ipython-input-1-d9567b878bbf>, line 11)"
    assert readable(raw) == "cell 35: raised SyntaxError: incomplete input (line 11 of the cell)"
    assert (
        readable("raised ValueError: bad (at line 3: x = 1)") == "raised ValueError: bad (at line 3: x = 1)"
    )


def test_a_class_with_every_kind_of_miss(tmp_path, capsys):
    """A wrong answer, a tampering attempt, a syntax error, and a text file named by mistake."""
    class_dir = tmp_path / "class"
    write(class_dir / "amy" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    write(class_dir / "bob" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", CHEAT))
    write(class_dir / "cat" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", SYNTAX_ERROR))
    notes = tmp_path / "notes.txt"
    notes.write_text("grading notes")
    out = tmp_path / "out"
    arguments = ["grade", str(class_dir), str(notes), "--out", str(out), "--seed", "1", "--call-timeout", "4"]
    assert main(arguments) == 0
    captured = capsys.readouterr()
    assert f"skipped {notes}: not a notebook" in captured.err
    assert "notes" not in captured.out  # no student row for it
    assert "\r" not in captured.err
    rows = {line.split()[0]: line for line in captured.out.splitlines() if NOTEBOOK in line}
    assert rows.keys() == {"amy", "bob", "cat"}
    assert rows["amy"].endswith("mul_backward (failed)")
    assert rows["bob"].endswith("mul_backward (tampering attempt)")
    assert rows["cat"].endswith("mul_backward (missing)")

    bob = (out / "feedback" / "bob.md").read_text(encoding="utf-8")
    assert "✗ `mul_backward`: tampering attempt (0/1)" in bob
    assert "reaches for the grader's own modules" in bob
    cat = (out / "feedback" / "cat.md").read_text(encoding="utf-8")
    assert "raised SyntaxError" in cat and "(line 2 of the cell" in cat and "ipython-input" not in cat
    csv_rows = {(r["student"], r["exercise"]): r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert csv_rows[("bob", "mul_backward")]["diagnosis"].startswith("tampering attempt: ")
    assert csv_rows[("bob", "mul_backward")]["status"] == "delegated"  # the status field keeps its values

    results = {r["student"]: r for r in json.loads((out / "gradebook.json").read_text())["submissions"]}
    cheat_case = next(
        t for t in gradescope.results_json(results["bob"])["tests"] if "mul_backward" in t["name"]
    )
    assert cheat_case["output"].startswith("✗ tampering attempt")
    summary = gradescope.results_json(results["cat"])["output"]
    assert "(line 2 of the cell" in summary and "ipython-input" not in summary
    assert "ipython-input" not in feedback_text("cat", [results["cat"]])


# A function that raises the recursion limit and recurses without end: formatting its traceback
# would outlast the call's limit ("an endless loop?"); the worker walks it and says what it is.
RECURSION_BOMB = (
    "import sys\nsys.setrecursionlimit(10**6)\n"
    "def mul_backward(upstream, x, y):\n    return mul_backward(upstream, x, y)"
)


def test_a_recursion_bomb_says_recursion_too_deep(tmp_path):
    from test_grading import grade, messages

    result = grade(write(tmp_path / "nb.ipynb", with_replaced("mul_backward", RECURSION_BOMB)))
    text = messages(result, "mul_backward")
    assert "recursion too deep" in text and "endless loop" not in text
