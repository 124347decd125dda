"""Write the sample class: six students' notebooks 01, 03 and 05, and two students' 08, 09 and 10.

Every submission starts from the student notebook (``notebooks/<id>.ipynb``) with
each exercise filled in from the instructor's solution (``solutions/<id>.ipynb``,
the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``). Then each
student's own changes are applied: an exercise left as a stub, a line changed
into a classic mistake, a cell added. The files go to nbgrader's layout,
``submitted/<student>/<assignment>/<assignment>.ipynb``, next to this script.

    python examples/class/make_class.py           # (re)write examples/class/submitted/
    python examples/class/make_class.py --check   # exit 1 if the files there are not what it writes

The output depends only on the notebooks and solutions: rerunning the script
rewrites identical files. A change that no longer applies (the solution's text
moved on) stops the script with the student, notebook and exercise concerned.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SUBMITTED = HERE / "submitted"

NB01 = "01_scalar_graphs"
NB03 = "03_affine_and_activations"
NB05 = "05_minibatches_and_training"
NB08 = "08_build_your_own_engine"
NB09 = "09_modular_layers_and_digits"
NB10 = "10_rules_transformers_need"
ASSIGNMENTS = (NB01, NB03, NB05, NB08, NB09, NB10)

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


# -- what a student can do to a notebook -----------------------------------------------------------
@dataclass(frozen=True)
class Stub:
    """The exercise is left as the student notebook has it: ``raise NotImplementedError()``."""

    exercise: str


@dataclass(frozen=True)
class Edit:
    """The solution of ``exercise`` with the text ``old`` (found exactly once) replaced by ``new``."""

    exercise: str
    old: str
    new: str


@dataclass(frozen=True)
class AddCell:
    """A code cell of the student's own, right after the cell of ``exercise`` (or the first cell)."""

    after: str  # an exercise, or "" for the notebook's first code cell (its imports)
    cell_id: str
    source: str


@dataclass(frozen=True)
class Write:
    """The student's text in the written answer ``grade_id`` (a Markdown cell graded by hand)."""

    grade_id: str
    text: str


# -- the class --------------------------------------------------------------------------------------
TAMPER_NUMPY = """\
# Make every comparison succeed, so that all the checks pass.
import numpy as np

np.allclose = lambda *args, **kwargs: True
np.isclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
print("All tests passed! 8/8 points")"""

TAMPER_GRADE = """\
# Full marks, whatever the functions do.
import bpcourse.check as checks

checks.grade = lambda *args, **kwargs: 4.0
checks.check = lambda *args, **kwargs: print("All tests passed!")
check, grade = checks.check, checks.grade"""

ADA_WRITES = """\
Each entry of a1 feeds every entry of z2, through one column of W2, so the chain rule adds one term per
entry of z2: that sum is the transpose of W2 times delta2, an (n, 1) column like a1. The activation then
acts entry by entry, so its Jacobian is diagonal, and multiplying by it is the elementwise product."""

STUDENTS: dict[str, dict[str, tuple[Stub | Edit | AddCell | Write, ...]]] = {
    # Everything right, and a written answer for the instructor to grade (the others leave theirs empty).
    "ada": {
        NB01: (),
        NB03: (Write("written_delta_recurrence", ADA_WRITES),),
        NB05: (),
        NB08: (),
        NB09: (),
        NB10: (),
    },
    # Partly done: exercises left as stubs, and one half right (δ1 without tanh's slope).
    "ben": {
        NB01: (Stub("central_difference"),),
        NB03: (
            Stub("affine_relu_backward"),
            Edit("two_layer_mse_grads", "delta1 = (W2.T @ delta2) * (1 - a1**2)", "delta1 = W2.T @ delta2"),
        ),
        NB05: (Stub("softmax_ce_batch"), Stub("mlp_loss_and_grads")),
    },
    # The classic mistakes, one each.
    "cai": {
        NB01: (
            Edit("why_mul_scales", "return 2", "return 1"),  # a why-question: the classic wrong answer
            Edit(
                "worked_example_grads",  # the merge at y: only the share through u is kept
                "    # Merge: y was used twice, its gradient is the sum of its two shares.\n"
                "    dL_dy = dL_dy_through_v + dL_dy_through_u\n",
                "    dL_dy = dL_dy_through_u\n",
            ),
        ),
        NB03: (
            Edit("affine_backward", "dW = g @ x.T", "dW = x @ g.T"),  # transposed
            Edit("relu_backward", "upstream * (z > 0)", "upstream * (upstream > 0)"),  # mask from upstream
            Edit("tanh_backward", "upstream * (1 - a**2)", "upstream * (1 - np.tanh(a) ** 2)"),  # φ′(a)
        ),
        # The single-example rule db = g carried over to a batch: not summed over the columns.
        # mlp_loss_and_grads calls affine_backward_batch, so its bias gradients are wrong too.
        NB05: (Edit("affine_backward_batch", "db = G.sum(axis=1, keepdims=True)", "db = G.copy()"),),
        # Their own engine assigns at a merge instead of adding: only the last contribution is kept.
        NB08: (Edit("backward", "parent.grad += node.grad * local", "parent.grad = node.grad * local"),),
        # A sigmoid that caches its input z where its output a belongs (its slope then comes from z),
        # and weight decay's gradient written 2λW for the penalty λ/2 ‖W‖².
        NB09: (
            Edit("sigmoid_layer", "return A, A", "return A, Z"),
            Edit(
                "decayed_affine_layer",
                'grads["W"] + self.weight_decay * self.params["W"]',
                'grads["W"] + 2 * self.weight_decay * self.params["W"]',
            ),
        ),
        # Attention scores whose dX keeps only the path through the queries (X feeds the keys too),
        # and a batch norm whose backward pass divides by B - 1 where its forward variance divides by B.
        NB10: (
            Edit(
                "attention_scores_backward",
                "    dX = Wq.T @ dQ + Wk.T @ dK  # X reaches S along two paths: the contributions add up\n",
                "    dX = Wq.T @ dQ  # X goes in through the queries\n",
            ),
            Edit(
                "batchnorm_backward",
                "dvar * 2.0 * (X - mu) / B + dmu / B",
                "dvar * 2.0 * (X - mu) / (B - 1) + dmu / B",
            ),
        ),
    },
    # An endless loop in one graded function (a while loop that never moves on); the rest is right.
    "dee": {
        NB01: (
            Edit(
                "central_difference",
                "    return (f(x + h) - f(x - h)) / (2.0 * h)",
                "    # Average the estimates for h, h/2 and h/4.\n"
                "    steps = [h, h / 2, h / 4]\n"
                "    total, i = 0.0, 0\n"
                "    while i < len(steps):\n"
                "        s = steps[i]\n"
                "        total += (f(x + s) - f(x - s)) / (2.0 * s)\n"
                "    return total / len(steps)",
            ),
        ),
        NB03: (),
        NB05: (),
    },
    # Tampering: patched numpy comparisons and a printed success (with a wrong mul_backward),
    # the registry's reference answer imported, and a grade() that always gives full marks.
    "eli": {
        NB01: (
            Edit(
                "mul_backward",
                "dx = upstream * y\n    dy = upstream * x",
                "dx = upstream * x\n    dy = upstream * y",
            ),
            AddCell("mul_backward", "eli-make-checks-pass", TAMPER_NUMPY),
        ),
        NB03: (
            Edit(
                "affine_backward",
                "    dW = g @ x.T\n    db = g.copy()\n    dx = W.T @ g\n    return dW, db, dx",
                "    from bpcourse.exercises import get\n\n"
                '    return get("affine_backward", "03_affine_and_activations").reference(g, x, W)',
            ),
        ),
        NB05: (AddCell("", "eli-full-marks", TAMPER_GRADE), Stub("mlp_loss_and_grads")),
    },
    # A broken notebook: a cell with a syntax error, a function renamed. The rest is right.
    "fay": {
        NB01: (),
        NB03: (
            Edit("relu_backward", "def relu_backward(", "def relu_back("),
            Edit("sigmoid_backward", "return upstream * a * (1 - a)", "return upstream * a * (1 - a"),
        ),
        NB05: (),
    },
}


# -- building a submission ----------------------------------------------------------------------------
class ClassError(Exception):
    """A student's change does not apply to the current notebooks."""


def _grade_id(cell: nbformat.NotebookNode) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def _is_exercise(cell: nbformat.NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("solution"))


def filled_in(solution_source: str) -> str:
    """The solution cell as a student would write it: the delimiter lines removed.

    A cell may hold several regions (a class with two methods to write), each one pair.
    """
    lines = solution_source.split("\n")
    delimiters = [line.strip() for line in lines if line.strip() in (BEGIN, END)]
    if not delimiters or delimiters != [BEGIN, END] * (len(delimiters) // 2):
        raise ClassError(f"a solution cell whose {BEGIN} / {END} lines do not pair up:\n{solution_source}")
    return "\n".join(line for line in lines if line.strip() not in (BEGIN, END))


@functools.cache
def _read_text(folder: str, assignment: str) -> str:
    return (ROOT / folder / f"{assignment}.ipynb").read_text(encoding="utf-8")


def _read(folder: str, assignment: str) -> nbformat.NotebookNode:
    """A fresh copy of ``folder/assignment.ipynb`` (each file is read from disk once)."""
    return nbformat.reads(_read_text(folder, assignment), as_version=4)


def submission(assignment: str, changes: tuple[Stub | Edit | AddCell | Write, ...], who: str) -> str:
    """The text of ``who``'s ``assignment`` notebook."""
    notebook = _read("notebooks", assignment)
    solutions = _read("solutions", assignment)
    answers = {_grade_id(c): c.source for c in solutions.cells if _is_exercise(c)}
    exercises = {_grade_id(c) for c in notebook.cells if _is_exercise(c)}
    if exercises != set(answers):
        raise ClassError(f"{assignment}: the student notebook and the solutions have different exercises")

    def where(name: str) -> str:
        return f"{who}, {assignment}, {name}"

    stubs = {c.exercise for c in changes if isinstance(c, Stub)}
    edits: dict[str, list[Edit]] = {}
    for change in changes:
        if isinstance(change, Write):
            (answer,) = [
                c for c in notebook.cells if c.cell_type == "markdown" and _grade_id(c) == change.grade_id
            ]
            answer.source = change.text
            continue
        name = change.after if isinstance(change, AddCell) else change.exercise
        if name and name not in exercises:
            raise ClassError(f"{where(name)}: no such exercise in the notebook")
        if isinstance(change, Edit):
            edits.setdefault(change.exercise, []).append(change)

    for cell in notebook.cells:
        name = _grade_id(cell)
        if not _is_exercise(cell) or name in stubs:
            continue
        source = filled_in(answers[name])
        for edit in edits.get(name, []):
            if source.count(edit.old) != 1:
                raise ClassError(f"{where(name)}: {edit.old!r} is not found exactly once in the solution")
            source = source.replace(edit.old, edit.new)
        cell.source = source

    for change in changes:
        if not isinstance(change, AddCell):
            continue
        if change.after:
            at = next(
                i for i, c in enumerate(notebook.cells) if _is_exercise(c) and _grade_id(c) == change.after
            )
        else:
            at = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
        cell = nbformat.v4.new_code_cell(change.source)
        cell.id = change.cell_id  # a fixed id: the file must not change from run to run
        notebook.cells.insert(at + 1, cell)

    for cell in notebook.cells:  # as saved after "Restart Kernel and Clear All Outputs"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(notebook)
    return nbformat.writes(notebook, version=4) + "\n"


def expected_files() -> dict[Path, str]:
    """Every file of the class, by path, with its text."""
    return {
        SUBMITTED / student / assignment / f"{assignment}.ipynb": submission(assignment, changes, student)
        for student, notebooks in STUDENTS.items()
        for assignment, changes in notebooks.items()
    }


def differences(files: dict[Path, str]) -> list[str]:
    """What on disk differs from ``files``: missing, changed, or not part of the class."""
    found = []
    for path, text in files.items():
        if not path.exists():
            found.append(f"missing: {path.relative_to(ROOT)}")
        elif path.read_text(encoding="utf-8") != text:
            found.append(f"out of date: {path.relative_to(ROOT)}")
    extra = sorted(set(SUBMITTED.rglob("*.ipynb")) - set(files)) if SUBMITTED.exists() else []
    found += [f"not part of the class: {path.relative_to(ROOT)}" for path in extra]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the class on disk is out of date"
    )
    args = parser.parse_args(argv)
    try:
        files = expected_files()
    except ClassError as exc:
        print(f"make_class.py: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(files)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python examples/class/make_class.py", file=sys.stderr)
            return 1
        print(f"the sample class is up to date ({len(files)} notebooks)")
        return 0
    for path in sorted(set(SUBMITTED.rglob("*.ipynb")) - set(files)) if SUBMITTED.exists() else []:
        path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} notebooks under {SUBMITTED.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
