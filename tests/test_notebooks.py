"""The course notebooks: instructor versions in solutions/, student versions in notebooks/.

- the committed student notebooks are exactly what ``python -m bpcourse.authoring
  generate`` makes from the solutions (nobody edits them by hand);
- every student notebook runs top to bottom without a single error: "Run All"
  on a fresh copy reaches the end, each demonstration that needs an exercise
  saying in one line what it will show once the exercise is done;
- every solution notebook has the exercises of the registry, with the nbgrader
  metadata the autograder relies on (solutions/AUTHORING.md);
- the stored outputs of every solution notebook show its self-checks passing.

Re-running the solution notebooks and comparing their outputs is nbval's job:
``--nbval`` is in the pytest options (pyproject.toml), with ``solutions`` among
the test paths.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

from bpcourse.authoring import NOTEBOOK_GLOB, generate, kernel_of_this_python, normalize
from bpcourse.exercises import by_notebook
from bpcourse.exercises.written import written_by_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob(NOTEBOOK_GLOB))
STUDENTS = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
REGENERATE = "regenerate them with `python -m bpcourse.authoring generate` (from the repository root)"

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CELL_TIMEOUT = 120  # seconds; a guard against a hung kernel, not a speed requirement


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _nbgrader(cell: Any) -> dict[str, Any]:
    return dict(cell.metadata.get("nbgrader", {}))


def _where(path: Path, index: int, cell: Any) -> str:
    grade_id = _nbgrader(cell).get("grade_id")
    label = f" ({grade_id})" if grade_id else ""
    first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
    return f"{path.parent.name}/{path.name}, cell {index}{label} [{first!r}]"


# -- 1. the student notebooks are generated ---------------------------------------------------------
def _essence(cell: Any) -> dict[str, Any]:
    """What must not differ between a committed and a regenerated student cell."""
    return {
        "cell_type": cell.cell_type,
        "source": cell.source,
        "nbgrader": _nbgrader(cell),
        "deletable": cell.metadata.get("deletable"),
        "editable": cell.metadata.get("editable"),
        "outputs": cell.get("outputs", []),
    }


def first_difference(committed: Path, fresh: Path) -> str | None:
    """A sentence naming the first difference between two student notebooks, or None."""
    old, new = _read(committed), _read(fresh)
    for index, (a, b) in enumerate(zip(old.cells, new.cells, strict=False)):
        ea, eb = _essence(a), _essence(b)
        for key in ea:
            if ea[key] != eb[key]:
                return f"{_where(committed, index, a)}: {key} differs from the regenerated notebook"
    if len(old.cells) != len(new.cells):
        return f"notebooks/{committed.name} has {len(old.cells)} cells, the regenerated one {len(new.cells)}"
    if old.metadata.get("kernelspec") != new.metadata.get("kernelspec"):
        return f"notebooks/{committed.name}: the kernelspec differs from the regenerated notebook"
    return None


def test_student_notebooks_are_generated_from_the_solutions(tmp_path: Path) -> None:
    if not SOLUTIONS:
        assert not STUDENTS, f"student notebooks without any solution notebook: {REGENERATE}"
        return
    fresh = generate(tmp_path / "notebooks", root=ROOT)
    expected = {path.name for path in fresh}
    committed = {path.name for path in STUDENTS}
    missing, extra = sorted(expected - committed), sorted(committed - expected)
    assert not missing, f"notebooks/ lacks {missing}: {REGENERATE}"
    assert not extra, f"notebooks/ has {extra}, which no solution notebook gives: {REGENERATE}"
    for path in fresh:
        difference = first_difference(ROOT / "notebooks" / path.name, path)
        assert difference is None, f"{difference}: {REGENERATE}"


def test_a_changed_student_notebook_is_noticed(tmp_path: Path) -> None:
    """The comparison above does see an edit (a test of the test)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")]
    original, edited = tmp_path / "00_a.ipynb", tmp_path / "00_b.ipynb"
    nbformat.write(notebook, original)
    notebook.cells[1].source = "x = 2"
    nbformat.write(notebook, edited)
    assert first_difference(original, original) is None
    difference = first_difference(original, edited)
    assert difference is not None and "cell 1" in difference and "source" in difference


def test_normalize_gives_the_same_bytes_for_the_same_source() -> None:
    """Outputs, timings and widget state go; nbgrader metadata stays; ids never come out random."""

    def released() -> nbformat.NotebookNode:
        notebook = nbformat.v4.new_notebook()  # new cells get random ids, as nbformat.read gives them
        notebook.metadata["widgets"] = {"state": {}}
        notebook.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
        code = nbformat.v4.new_code_cell("check(f)", execution_count=3)
        code.outputs = [nbformat.v4.new_output("stream", text="f: passed")]
        code.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
        code.metadata["nbgrader"] = {"grade": True, "grade_id": "check_f", "checksum": "abc", "points": 1}
        code.metadata["tags"] = ["nbval-ignore-output", "keep-me"]
        notebook.cells = [nbformat.v4.new_markdown_cell("# T"), code]
        return notebook

    stored_cells = [{"id": "title"}, {}]  # the second source cell has no id
    first = nbformat.writes(normalize(released(), stored_cells))
    assert first == nbformat.writes(normalize(released(), stored_cells))
    again = nbformat.reads(first, as_version=4)
    assert [cell.id for cell in again.cells] == ["title", "cell-001"]
    assert again.cells[1].outputs == [] and again.cells[1].execution_count is None
    assert "execution" not in again.cells[1].metadata and "widgets" not in again.metadata
    assert again.cells[1].metadata["nbgrader"]["checksum"] == "abc"
    assert "version" not in again.metadata["language_info"]
    assert again.cells[1].metadata["tags"] == ["keep-me"]


# -- 2. the student notebooks run ---------------------------------------------------------------------
def execute(path: Path) -> nbformat.NotebookNode:
    """``path`` run top to bottom in a kernel of the current environment, errors kept as outputs."""
    notebook = _read(path)
    kernel_name, manager = kernel_of_this_python()
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        kernel_manager_class=manager,
        allow_errors=True,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def _text_of(outputs: list[Any]) -> str:
    """Everything a reader sees of ``outputs``, as text (HTML tags left in)."""
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        data = output.get("data", {})
        for mime in ("text/html", "text/plain", "text/markdown"):
            value = data.get(mime, "")
            parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def errors(path: Path, notebook: nbformat.NotebookNode) -> list[str]:
    """One line per error output, whatever the error (an exercise's NotImplementedError too)."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"{_where(path, index, cell)}: {output.get('ename')}: {output.get('evalue')}")
    return found


@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_student_notebook_runs_top_to_bottom(path: Path) -> None:
    notebook = execute(path)
    found = errors(path, notebook)
    assert not found, "Run All stops on a fresh student notebook:\n" + "\n".join(found)
    for index, cell in enumerate(notebook.cells):
        if _nbgrader(cell).get("grade"):
            statuses = verdict_statuses(_text_of(cell.get("outputs", [])))
            assert "passed" not in statuses, (
                f"{_where(path, index, cell)}: the self-check passes on the student's stub; "
                "is the solution in the student version?"
            )


def test_every_error_is_reported(tmp_path: Path) -> None:
    """A test of the test: a bare stub stops Run All as surely as a missing import; a waiting one does not."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("def f():\n    raise NotImplementedError()\n\nf()"),
        nbformat.v4.new_code_cell("np.zeros(3)"),
        nbformat.v4.new_code_cell(
            "from bpcourse.notebook import once_written\n\nwith once_written('shows f'):\n    f()"
        ),
    ]
    path = tmp_path / "00_sample.ipynb"
    nbformat.write(notebook, path)
    ran = execute(path)
    found = errors(path, ran)
    assert len(found) == 2, found
    assert "cell 0" in found[0] and "NotImplementedError" in found[0]
    assert "cell 1" in found[1] and "NameError" in found[1]
    assert "f is not written yet: once it is written, this cell shows f." in _text_of(ran.cells[2].outputs)


# -- 3. the solution notebooks have the registry's exercises -------------------------------------------
def _parse(source: str) -> ast.Module:
    """A cell's code as Python (IPython magics such as ``%matplotlib`` turned into calls)."""
    return ast.parse(TransformerManager().transform_cell(source))


def _calls(source: str, function: str) -> list[ast.Call]:
    """The calls ``function(...)`` in ``source`` (bare name or attribute)."""
    found = []
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == function:
                found.append(node)
    return found


def _calls_with(source: str, function: str, argument: str) -> bool:
    return any(
        call.args and isinstance(call.args[0], ast.Name) and call.args[0].id == argument
        for call in _calls(source, function)
    )


def _split_hidden(source: str) -> tuple[str, str]:
    """(visible part, hidden part) of a test cell."""
    visible, hidden, inside = [], [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible), textwrap.dedent("\n".join(hidden))


def _defines(source: str) -> set[str]:
    return {
        node.name
        for node in _parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)  # a class: notebook 08
    }


def _is_written(cell: Any) -> bool:
    """A manually graded answer: a Markdown cell that is both a solution and a grade cell."""
    meta = _nbgrader(cell)
    return cell.cell_type == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def written_problems(notebook: Any, path: Path) -> list[str]:
    """The written answers of the notebook are exactly those of the registry, each with its points,
    unlocked, and with a rubric that nbgrader clears from the student version."""
    problems = []
    found = {_nbgrader(c)["grade_id"]: (i, c) for i, c in enumerate(notebook.cells) if _is_written(c)}
    expected = {answer.grade_id: answer for answer in written_by_notebook(path.stem)}
    if set(found) != set(expected):
        problems.append(f"{path.stem}: written answers {sorted(found)}, the registry says {sorted(expected)}")
    for grade_id, (index, cell) in found.items():
        where = _where(path, index, cell)
        points = _nbgrader(cell).get("points")
        if grade_id in expected and (points is None or float(points) != float(expected[grade_id].points)):
            problems.append(f"{where}: points {points}, the registry says {expected[grade_id].points}")
        if _nbgrader(cell).get("locked"):
            problems.append(f"{where}: a written answer must be unlocked, the learner writes in it")
        if "Rubric (instructor only)" not in cell.source:
            problems.append(f"{where}: no rubric (a paragraph headed 'Rubric (instructor only)')")
    return problems


def structure_problems(path: Path) -> list[str]:
    """Everything in ``path`` that breaks solutions/AUTHORING.md or disagrees with the registry."""
    notebook = _read(path)
    stem = path.stem
    exercises = {exercise.name: exercise for exercise in by_notebook(stem)}
    problems = written_problems(notebook, path)

    grade_ids = [_nbgrader(cell).get("grade_id") for cell in notebook.cells if _nbgrader(cell)]
    duplicates = sorted({gid for gid in grade_ids if grade_ids.count(gid) > 1})
    if duplicates:
        problems.append(f"grade_id used more than once: {duplicates}")

    for index, cell in enumerate(notebook.cells):
        meta = _nbgrader(cell)
        if meta and meta.get("schema_version") != 3:
            problems.append(f"{_where(path, index, cell)}: nbgrader schema_version should be 3")
        if cell.cell_type == "markdown" and not meta.get("locked") and not _is_written(cell):
            problems.append(f"{_where(path, index, cell)}: markdown cell is not locked")

    cells = [(i, c) for i, c in enumerate(notebook.cells) if not _is_written(c)]
    solutions = [(i, c) for i, c in cells if _nbgrader(c).get("solution")]
    tests = [(i, c) for i, c in cells if _nbgrader(c).get("grade")]
    for index, cell in solutions:
        name = _nbgrader(cell)["grade_id"]
        if name not in exercises:
            problems.append(f"{_where(path, index, cell)}: solution cell of an exercise not in the registry")
    for index, cell in tests:
        name = _nbgrader(cell)["grade_id"].removeprefix("check_")
        if name not in exercises:
            problems.append(f"{_where(path, index, cell)}: grade cell of an exercise not in the registry")

    for name, exercise in exercises.items():
        mine = [(i, c) for i, c in solutions if _nbgrader(c)["grade_id"] == name]
        if len(mine) != 1:
            problems.append(f"{name}: {len(mine)} solution cells with grade_id {name!r}, expected 1")
        for index, cell in mine:
            if cell.cell_type != "code" or name not in _defines(cell.source):
                problems.append(f"{_where(path, index, cell)}: does not define a function {name}")
            if BEGIN_SOLUTION not in cell.source or END_SOLUTION not in cell.source:
                problems.append(f"{_where(path, index, cell)}: no {BEGIN_SOLUTION} / {END_SOLUTION}")
        checks = [(i, c) for i, c in tests if _nbgrader(c)["grade_id"] == f"check_{name}"]
        if len(checks) != 1:
            problems.append(f"{name}: {len(checks)} grade cells with grade_id 'check_{name}', expected 1")
        for index, cell in checks:
            where = _where(path, index, cell)
            points = _nbgrader(cell).get("points")
            if points is None or float(points) != float(exercise.points):
                problems.append(f"{where}: points {points}, the registry says {exercise.points}")
            visible, hidden = _split_hidden(cell.source)
            if not _calls_with(visible, "check", name):
                problems.append(f"{where}: does not call check({name}) where the learner sees it")
            if not _calls_with(hidden, "grade", name):
                problems.append(f"{where}: no grade({name}) between {BEGIN_HIDDEN} / {END_HIDDEN}")

    if exercises:
        code = [c for c in notebook.cells if c.cell_type == "code"]
        first = code[0].source if code else ""
        bound = any(
            call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value == stem
            for call in _calls(first, "for_notebook")
        )
        if not bound:
            problems.append(f"{stem}: the first code cell does not call for_notebook({stem!r})")
    return problems


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebook_matches_the_registry(path: Path) -> None:
    problems = structure_problems(path)
    assert not problems, "\n".join(problems)


def test_a_written_answer_without_its_rubric_points_or_registry_entry_is_found(tmp_path: Path) -> None:
    """A test of the structure test: each way a written answer can go wrong is reported."""
    source = json.loads((ROOT / "solutions" / "02_merges_and_traversal.ipynb").read_text(encoding="utf-8"))
    (index,) = [i for i, c in enumerate(source["cells"]) if c["id"] == "written-sum-at-merges"]
    cell = source["cells"][index]
    cell["source"] = ["An answer, but no rubric."]
    cell["metadata"]["nbgrader"].update(points=3, locked=True)
    extra = json.loads(json.dumps(cell))
    extra["metadata"]["nbgrader"]["grade_id"] = "written_not_registered"
    extra["id"] = "written-not-registered"
    source["cells"].insert(index + 1, extra)
    path = tmp_path / "02_merges_and_traversal.ipynb"
    path.write_text(json.dumps(source), encoding="utf-8")
    found = "\n".join(structure_problems(path))
    assert "the registry says ['written_sum_at_merges']" in found
    assert "points 3, the registry says 2" in found
    assert "must be unlocked" in found and "no rubric" in found


# -- 4. the stored outputs of the solutions show the checks passing -----------------------------------
STATUSES = ("passed", "partial", "failed", "not implemented", "error", "missing", "delegated")


def verdict_statuses(text: str) -> list[str]:
    """The statuses that verdicts shown in ``text`` report: ``name: status`` or ``status='...'``."""
    either = "|".join(STATUSES)
    return re.findall(rf"\b\w+: ({either})\b", text) + re.findall(rf"\bstatus='({either})'", text)


def test_verdict_statuses_are_read_from_every_rendering() -> None:
    html = "<b style='color:#b00020'>relu_backward: not implemented</b> (0/1 points)"
    assert verdict_statuses(html) == ["not implemented"]
    assert verdict_statuses("add_backward: passed (1/1 points)\n  ✓ dx") == ["passed"]
    assert verdict_statuses("Verdict(exercise='f', score=0.0, status='error', lines=[])") == ["error"]
    assert verdict_statuses("1.0") == []


def output_problems(path: Path) -> list[str]:
    notebook = _read(path)
    exercises = {exercise.name: exercise for exercise in by_notebook(path.stem)}
    problems = []
    for index, cell in enumerate(notebook.cells):
        outputs = cell.get("outputs", [])
        for output in outputs:
            if output.get("output_type") == "error":
                problems.append(
                    f"{_where(path, index, cell)}: stored error {output.get('ename')}: {output.get('evalue')}"
                )
        meta = _nbgrader(cell)
        if not meta.get("grade") or _is_written(cell):
            continue
        if not outputs:
            problems.append(f"{_where(path, index, cell)}: no stored output (run the notebook and save it)")
            continue
        statuses = verdict_statuses(_text_of(outputs))
        if not statuses or set(statuses) != {"passed"}:
            problems.append(f"{_where(path, index, cell)}: the self-check says {statuses or 'nothing'}")
        exercise = exercises.get(meta["grade_id"].removeprefix("check_"))
        for output in outputs:
            if exercise is not None and output.get("output_type") == "execute_result":
                shown = output.get("data", {}).get("text/plain", "")
                if re.fullmatch(r"[-+0-9.e]+", shown) and float(shown) != float(exercise.points):
                    problems.append(f"{_where(path, index, cell)}: grade gave {shown} of {exercise.points}")
    return problems


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebook_outputs_show_the_checks_passing(path: Path) -> None:
    problems = output_problems(path)
    assert not problems, "\n".join(problems)


def test_nbval_runs_the_solutions_and_only_them(pytestconfig: pytest.Config) -> None:
    """pytest's configuration sends ``solutions/`` (and not ``notebooks/``) through nbval."""
    testpaths = pytestconfig.getini("testpaths")
    assert "solutions" in testpaths and "notebooks" not in testpaths
    assert {"notebooks", "grader"} <= set(pytestconfig.getini("norecursedirs"))
    # nbval's options come from conftest.py when nbval is active, never from addopts (so that
    # `pytest -p no:nbval` runs).
    assert not [flag for flag in pytestconfig.getini("addopts") if flag.startswith("--nbval")]
    if not pytestconfig.pluginmanager.hasplugin("nbval"):
        pytest.skip("nbval is not active in this run (-p no:nbval)")
    option = pytestconfig.option
    assert option.nbval and option.nbval_current_env
    sanitize = Path(option.nbval_sanitize_with)
    assert sanitize.is_file(), f"{sanitize} (the nbval sanitize file) does not exist"


def test_sanitize_patterns_hide_what_changes_from_run_to_run() -> None:
    text = (ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    patterns = re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)
    assert patterns, "no regex/replace pairs in tests/nbval_sanitize.cfg"

    def clean(s: str) -> str:
        for regex, replace in patterns:
            s = re.sub(regex, replace, s)
        return s

    pairs = [
        ("<bpcourse.scalar.Value object at 0x7f3a2c1d9e50>", "<bpcourse.scalar.Value object at 0x10a2b3c4d>"),
        ("<Figure size 640x480 with 1 Axes>", "<Figure size 800x600 with 1 Axes>"),
        ("took 0.0123 s", "took 1.5 s"),
        (
            "CPU times: user 3.2 ms, sys: 12 µs, total: 3.21 ms",
            "CPU times: user 5 ms, sys: 0 ns, total: 5 ms",
        ),
        (
            "1.23 ms ± 4.5 µs per loop (mean ± std. dev. of 7 runs, 1,000 loops each)",
            "980 µs ± 12.1 µs per loop (mean ± std. dev. of 7 runs, 100 loops each)",
        ),
    ]
    pairs += [
        (
            "gradient check passed: 9/9 entries agree (|a-b| <= 1e-08 + 1e-05·max(|a|,|b|))\n"
            "  max abs error 1.964e-11, max rel error 1.142e-10, worst at index (0, 1)",
            "gradient check passed: 9/9 entries agree (|a-b| <= 1e-08 + 1e-05·max(|a|,|b|))\n"
            "  max abs error 1.315e-11, max rel error 9.876e-11, worst at index (2, 2)",
        ),
        (
            "gradient check FAILED: 3/9 entries agree (|a-b| <= 1e-08 + 1e-05·max(|a|,|b|))\n"
            "  max abs error 6.618e-01, max rel error 1.561e+00, worst at index (2, 1)",
            "gradient check FAILED: 3/9 entries agree (|a-b| <= 1e-08 + 1e-05·max(|a|,|b|))\n"
            "  max abs error 6.618e-01, max rel error 1.561e+00, worst at index (1, 2)",
        ),
    ]
    for first, second in pairs:
        assert clean(first) == clean(second), (first, second)
    failed = "gradient check FAILED: 1/2 entries agree\n  max abs error 9.000e+00, max rel error 3.333e-01"
    assert clean(failed) == failed  # the errors of a failing check are its message: never hidden
    assert clean("<Figure size 640x480 with 1 Axes>") != clean("<Figure size 640x480 with 2 Axes>")
    assert clean("dx has shape (3, 1)") == "dx has shape (3, 1)"
    assert clean("add_backward: passed (1/1 points)") == "add_backward: passed (1/1 points)"


def test_student_notebooks_are_written_as_generate_writes_them() -> None:
    """Not re-saved from Jupyter or an editor: byte for byte nbformat's canonical JSON."""
    for path in STUDENTS:
        text = path.read_text(encoding="utf-8")
        canonical = nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"
        assert text == canonical, f"notebooks/{path.name} is not as generate writes it: {REGENERATE}"
        assert json.loads(text)["nbformat"] == 4
