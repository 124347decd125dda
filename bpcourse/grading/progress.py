"""``bpcourse progress [FOLDER]``: where a learner stands in the course.

The learner's own notebooks are graded as the class grader grades a
submission (``grade_class``: in the sandbox, each notebook's random inputs
drawn from its content, so the same notebook always gets the same verdicts),
and the command prints one row per exercise of the course, in the course's
order: notebook, exercise, status, and the misconception the grader named, if
any. It writes a one-page picture of the course, each exercise a cell
coloured by its status, and ends with the next exercise to do: the first one,
in the course's order, that is not right yet.

FOLDER is one learner's notebooks: the course's ``notebooks/`` (the default,
looked for in the current folder, then next to the package's source), a
folder of notebooks named as the course names them
(``03_affine_and_activations.ipynb``), or one student's folder in nbgrader's
layout (``submitted/ada/``, holding ``<assignment>/<assignment>.ipynb``). A
notebook the folder lacks counts as not started. A folder with several
students' notebooks (a whole ``submitted/``) is refused: the class report
(``bpcourse report``) is the view of a class.

Results are kept in OUT (``progress/`` by default; ``results/`` there, as
``bpcourse grade`` writes them), so a second run grades only the notebooks
that changed since the first.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from bpcourse.exercises import by_notebook
from bpcourse.grading.gradebook import readable
from bpcourse.grading.isolation import SandboxUnavailable
from bpcourse.grading.report import misconceptions, short
from bpcourse.grading.runner import grade_class
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import COURSE_NOTEBOOKS, Submission, find

STATES = ("right", "partly", "wrong", "error", "not started")
COLOURS = {
    "right": "#4c9a2a",
    "partly": "#e0b040",
    "wrong": "#c8423b",
    "error": "#8e44ad",
    "not started": "#d9d9d9",
}
NEXT_EDGE = "#111111"
NOTEBOOKS = Path("notebooks")


class ProgressInputError(Exception):
    """The folder cannot be read as one learner's notebooks; the message says why and what to do."""


@dataclass
class Row:
    """One exercise of the course, as this learner stands on it."""

    notebook: str
    exercise: str
    state: str  # one of STATES
    status: str  # the grader's status ("no notebook" when the folder lacks the notebook)
    score: float
    max_score: float
    misconception: str = ""
    revisit: str = ""


def state_of(status: str) -> str:
    """The picture's name for a grader's status."""
    if status == "passed":
        return "right"
    if status == "partial":
        return "partly"
    if status in ("failed", "delegated"):
        return "wrong"
    if status in ("error", "unreadable"):
        return "error"
    return "not started"  # not implemented, missing, no notebook


# -- the rows -----------------------------------------------------------------------------------------
def course_rows(results: list[dict[str, Any]]) -> list[Row]:
    """A row for every exercise of the course, in its order, from one learner's graded results."""
    graded = {r["notebook"]: {e["exercise"]: e for e in r["exercises"]} for r in results}
    rows = []
    for notebook in COURSE_NOTEBOOKS:
        for exercise in by_notebook(notebook):
            found = graded.get(notebook, {}).get(exercise.name)
            if found is None:
                status = "no notebook" if notebook not in graded else "missing"
                rows.append(Row(notebook, exercise.name, state_of(status), status, 0.0, exercise.points))
                continue
            state = state_of(found["status"])
            # what the grader found: a misconception, an error, a function the notebook lacks (renamed?)
            named = misconceptions(found) if found["status"] not in ("passed", "not implemented") else []
            rows.append(
                Row(
                    notebook,
                    exercise.name,
                    state,
                    str(found["status"]),
                    float(found["score"]),
                    float(found["max_score"]),
                    readable(named[0]) if named else "",
                    exercise.revisit if state != "right" else "",
                )
            )
    return rows


def next_to_do(rows: list[Row]) -> Row | None:
    """The first exercise, in the course's order, that is not right yet; None when all are.

    The notebooks in the folder come first: a student handed the notebooks 01, 03
    and 05 finishes those before one the folder does not hold.
    """
    todo = [row for row in rows if row.state != "right"]
    return next((row for row in todo if row.status != "no notebook"), todo[0] if todo else None)


# -- what is printed ----------------------------------------------------------------------------------
def table_text(rows: list[Row], width: int = 70) -> str:
    """The table: notebook, exercise, status (with points), misconception."""
    head = ("notebook", "exercise", "status", "misconception")
    body = [
        (r.notebook, r.exercise, f"{r.status} ({r.score:g}/{r.max_score:g})", short(r.misconception, width))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(3)]
    lines = [
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in [head, *body]
    ]
    lines.insert(1, "-" * min(110, max(len(line) for line in lines)))
    return "\n".join(lines)


def totals(rows: list[Row]) -> tuple[Counter[str], float, float]:
    """(how many exercises in each state, points earned, points in all)."""
    return Counter(r.state for r in rows), sum(r.score for r in rows), sum(r.max_score for r in rows)


def next_text(rows: list[Row]) -> str:
    """The closing lines: what to do next, and where to read up on it."""
    row = next_to_do(rows)
    if row is None:
        return "Every exercise of the course is right. Well done."
    lines = [f"Next: {row.exercise} in {row.notebook} ({row.status})."]
    if row.misconception:
        found = textwrap.fill(f"what the grader found: {row.misconception}", 100, subsequent_indent="    ")
        lines.append(f"  {found}")
    if row.revisit and row.state != "not started":
        lines.append(f"  revisit: {row.revisit}")
    return "\n".join(lines)


# -- the picture --------------------------------------------------------------------------------------
def _label(name: str, width: int = 14) -> str:
    """An exercise's name on lines of about ``width`` characters, broken after its underscores."""
    lines = [""]
    for part in (p + "_" for p in name.split("_")):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)[:-1]  # the last part's added underscore


def progress_figure(rows: list[Row], title: str = "Your progress") -> Figure:
    """The course on one page: a row of cells per notebook, each exercise coloured by its state."""
    notebooks = list(dict.fromkeys(r.notebook for r in rows))
    columns = max(sum(r.notebook == nb for r in rows) for nb in notebooks)
    fig = Figure(figsize=(1.25 * columns + 2.6, 0.62 * len(notebooks) + 1.6), layout="constrained")
    ax = fig.subplots()
    upcoming = next_to_do(rows)
    for y, notebook in enumerate(notebooks):
        for x, row in enumerate(r for r in rows if r.notebook == notebook):
            is_next = row is upcoming
            ax.add_patch(
                Rectangle(
                    (x + 0.04, y + 0.06),
                    0.92,
                    0.88,
                    facecolor=COLOURS[row.state],
                    edgecolor=NEXT_EDGE if is_next else "white",
                    linewidth=2.5 if is_next else 0.5,
                    gid=f"progress-{row.notebook}-{row.exercise}",
                )
            )
            dark = row.state in ("right", "wrong", "error")
            ax.text(x + 0.5, y + 0.5, _label(row.exercise), ha="center", va="center", fontsize=7.5,
                    color="white" if dark else "#222222")  # fmt: skip
    ax.set_xlim(0, columns)
    ax.set_ylim(len(notebooks), 0)
    ax.set_yticks([y + 0.5 for y in range(len(notebooks))], notebooks, fontsize=8)
    ax.set_xticks([x + 0.5 for x in range(columns)], [str(x + 1) for x in range(columns)], fontsize=8)
    ax.set_xlabel("exercise, in the notebook's order")
    ax.set_ylabel("notebook")
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    counts, earned, total = totals(rows)
    handles = [Patch(facecolor=COLOURS[s], label=f"{s} ({counts[s]})") for s in STATES]
    if upcoming is not None:
        handles.append(Patch(facecolor="white", edgecolor=NEXT_EDGE, linewidth=2, label="next to do"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=8)
    earned = round(earned, 1)  # partial credit comes in thirds and quarters: 66.0667 reads as 66.1
    ax.set_title(
        f"{title}: {counts['right']} of {len(rows)} exercises right, {earned:g} of {total:g} points",
        fontsize=11,
    )
    return fig


# -- the command --------------------------------------------------------------------------------------
def default_folder() -> Path:
    """The course's notebooks/: in the current folder, else next to the package's source."""
    if NOTEBOOKS.is_dir():
        return NOTEBOOKS
    beside = Path(__file__).resolve().parents[2] / NOTEBOOKS
    if beside.is_dir():
        return beside
    raise ProgressInputError(
        "no notebooks/ folder here: run `bpcourse progress` from the course's root, or name your folder"
    )


def one_learner(folder: Path) -> list[Submission]:
    """The course notebooks under ``folder``, checked to be one learner's, one of each."""
    found = find([folder])
    if found.missing:
        raise ProgressInputError(f"{folder}: no such folder")
    ours = [s for s in found.submissions if s.notebook in COURSE_NOTEBOOKS]
    if not ours:
        raise ProgressInputError(
            f"{folder}: no notebook of the course here (named like 01_scalar_graphs.ipynb)"
        )
    students = sorted({s.student for s in ours})
    if len(students) > 1:
        raise ProgressInputError(
            f"{folder} holds the notebooks of {len(students)} students ({', '.join(students[:5])}"
            f"{', ...' if len(students) > 5 else ''}): give one student's folder, or use `bpcourse report` "
            "on a graded class"
        )
    seen: dict[str, Path] = {}
    for s in ours:
        if s.notebook in seen:
            raise ProgressInputError(f"two copies of {s.notebook}: {seen[s.notebook]} and {s.path}; keep one")
        seen[s.notebook] = s.path
    return ours


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bpcourse progress``."""
    parser.add_argument(
        "folder", type=Path, nargs="?", default=None, metavar="FOLDER",
        help="your notebooks (default: the course's notebooks/), or a student's folder in nbgrader's layout",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=Path("progress"), metavar="DIR",
        help="where the results and progress.png go (default: progress)",
    )  # fmt: skip
    parser.add_argument(
        "--png", type=Path, default=None, metavar="PATH", help="the picture (default: OUT/progress.png)"
    )
    parser.add_argument(
        "--no-sandbox", action="store_true",
        help="grade without isolating the notebooks' code (only for code you trust)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Grade, print the table and the next exercise, write the picture; 2 when nothing can be graded."""
    try:
        folder = args.folder if args.folder is not None else default_folder()
        submissions = one_learner(folder)
        graded = grade_class(
            submissions,
            args.out,
            workers=min(len(submissions), os.cpu_count() or 1),
            limits=Limits(),
            progress=None,
            no_sandbox=args.no_sandbox,
        )
    except ProgressInputError as exc:
        print(f"bpcourse progress: {exc}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:
        print(f"not grading: {exc}", file=sys.stderr)
        return 2
    rows = course_rows(graded.results)
    print(table_text(rows))
    counts, earned, total = totals(rows)
    print()
    print(", ".join(f"{counts[s]} {s}" for s in STATES) + f": {round(earned, 1):g} of {total:g} points")
    png = args.png or args.out / "progress.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    title = "Your progress" if args.folder is None else f"Progress of {submissions[0].student}"
    fig = progress_figure(rows, title)
    FigureCanvasAgg(fig)
    fig.savefig(png, dpi=80)
    print(f"picture: {png}")
    for failure in graded.failed:
        print(f"could not grade {failure}", file=sys.stderr)
    print()
    print(next_text(rows))
    return 1 if graded.failed else 0
