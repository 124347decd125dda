"""``bpcourse report GRADES_DIR``: a class report for instructors, from the gradebook.

It reads ``GRADES_DIR/gradebook.json`` as ``bpcourse grade`` wrote it (or,
with ``--nbgrader``, nbgrader's ``gradebook.db`` and the diagnoses its
autograded notebooks show: ``bpcourse.grading.nbgrader_gradebook``) and
writes ``GRADES_DIR/report.html`` (one self-contained file, its figures
embedded as PNG images, no external URL) and prints a summary:

- the score distribution of each notebook;
- for each exercise, how many students got it right, partly, wrong, ran into
  an error, timed out or handed in nothing (missing), and which misconceptions
  the grader diagnosed, how often;
- the misconceptions most common across the class, with the notebook section
  to revisit (the exercise's ``revisit`` text in the registry);
- the students who may need help: a low score, or many errors, timeouts and
  missing exercises.

Written answers (``bpcourse.exercises.written``) are counted as "by hand":
they have no score until a person grades them, so a notebook's scores are out
of its automatically graded points, and its "out of" says how many more wait
to be graded by hand.

A misconception is the diagnosis after " — " in a failing line of a verdict
(``bpcourse.exercises.core.explained``), or the whole failing line when it has
none. It is counted once per student and exercise, for exercises the student
got partly right, wrong or that raised an error: a missing exercise or one
that timed out has no misconception to show, and a tampering attempt is
counted as that.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import re
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import image as plt_image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bpcourse.exercises import by_notebook, get
from bpcourse.exercises.written import BY_HAND, written_by_notebook
from bpcourse.grading.gradebook import TAMPERING_LABEL, label, read_gradebook, readable

OUTCOMES = ("right", "partly", "wrong", "error", "timed out", "missing", "by hand")
COLOURS = {
    "by hand": "#7fb3b0",
    "right": "#4c9a2a",
    "partly": "#e0b040",
    "wrong": "#c8423b",
    "error": "#8e44ad",
    "timed out": "#2c6fbb",
    "missing": "#a0a0a0",
}
_TIMEOUT = re.compile(r"did not (return|finish) within")
TAMPERING_MISCONCEPTION = "tampering attempt: the code reaches for the grader's own modules"
DEFAULT_LOW_SCORE = 60.0
DEFAULT_MANY_PROBLEMS = 2
SCORE_COLUMNS = 3  # histograms to a row in the score figure


class ReportInputError(Exception):
    """The folder holds no gradebook this report can read; the message says why and what to do."""


@dataclass
class ExerciseSummary:
    """One exercise across the class: the students in each outcome and the misconceptions seen."""

    notebook: str
    exercise: str
    max_score: float
    revisit: str
    outcomes: dict[str, list[str]] = field(default_factory=lambda: {o: [] for o in OUTCOMES})
    misconceptions: Counter[str] = field(default_factory=Counter)

    def count(self, outcome: str) -> int:
        """How many students had ``outcome`` on this exercise."""
        return len(self.outcomes[outcome])


@dataclass
class StudentSummary:
    """One student's totals over the notebooks the class was graded on."""

    student: str
    score: float
    max_score: float
    outcomes: Counter[str] = field(default_factory=Counter)
    tampering: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


@dataclass
class ClassReport:
    """Everything the report shows, computed from the gradebook alone."""

    grader: dict[str, Any]
    students: list[str]
    notebooks: list[str]
    notebook_max: dict[str, float]
    scores: dict[str, dict[str, float | None]]  # notebook -> student -> score (None: not handed in)
    exercises: list[ExerciseSummary]
    people: list[StudentSummary]
    low_score: float
    many_problems: int
    notebook_by_hand: dict[str, float] = field(default_factory=dict)  # points to grade by hand

    @property
    def outcomes(self) -> tuple[str, ...]:
        """The outcomes the report shows: "by hand" only for a class with written answers."""
        by_hand = any(ex.count("by hand") for ex in self.exercises)
        return OUTCOMES if by_hand else tuple(o for o in OUTCOMES if o != "by hand")

    def common_misconceptions(self) -> list[tuple[str, int, list[ExerciseSummary]]]:
        """(misconception, students, the exercises it was seen in), the most frequent first."""
        total: Counter[str] = Counter()
        where: dict[str, list[ExerciseSummary]] = {}
        for ex in self.exercises:
            for text, n in ex.misconceptions.items():
                total[text] += n
                where.setdefault(text, []).append(ex)
        ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))
        return [(text, n, where[text]) for text, n in ranked]

    def needing_help(self) -> list[StudentSummary]:
        """The students with a reason to be looked at, the lowest score first."""
        return sorted((p for p in self.people if p.reasons), key=lambda p: (p.percent, p.student))


# -- reading the gradebook ----------------------------------------------------------------------------
def load(grades_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(grader record, results) of the gradebook in ``grades_dir``; ReportInputError when there is none."""
    grades_dir = Path(grades_dir)
    if not grades_dir.is_dir():
        raise ReportInputError(f"{grades_dir}: no such folder (give the --out folder of `bpcourse grade`)")
    path = grades_dir / "gradebook.json"
    if not path.is_file():
        raise ReportInputError(
            f"{grades_dir}: no gradebook.json here; grade the class first: "
            f"bpcourse grade SUBMISSIONS --out {grades_dir}"
        )
    try:
        grader, results = read_gradebook(path)
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        raise ReportInputError(f"{path}: cannot be read as a gradebook: {exc}") from None
    if path.read_text(encoding="utf-8").lstrip().startswith("["):  # before version 2: a bare list
        raise ReportInputError(
            f"{path} is in the old format (a bare list of results, written before "
            "result version 2): grade the class again with --force to report on it"
        )
    if not results:
        raise ReportInputError(f"{path} holds no submissions: nothing to report on")
    if not all(isinstance(r, dict) and {"student", "notebook", "exercises"} <= r.keys() for r in results):
        raise ReportInputError(f"{path}: a submission lacks student, notebook or exercises")
    return grader, results


def _load_nbgrader(course: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(grader record, results) of a class graded by nbgrader (``bpcourse.grading.nbgrader_gradebook``)."""
    from bpcourse.grading.nbgrader_gradebook import NbgraderMissing, NoGradebook, results

    if not Path(course).is_dir():
        raise ReportInputError(f"{course}: no such folder (give the nbgrader course folder)")
    try:
        grader, found = results(course)
    except (NbgraderMissing, NoGradebook) as exc:
        raise ReportInputError(str(exc)) from None
    if not found:
        raise ReportInputError(
            f"{course}/gradebook.db holds no graded submission: run nbgrader autograde first"
        )
    return grader, found


def outcome(exercise: dict[str, Any]) -> str:
    """The report's name for an exercise's status: right, partly, wrong, error, timed out or missing."""
    status = exercise["status"]
    if status == BY_HAND:
        return "by hand"
    if status == "passed":
        return "right"
    if status == "partial":
        return "partly"
    if status in ("missing", "not implemented", "unreadable"):
        return "missing"
    if status == "error":
        failing = [str(ln.get("message", "")) for ln in exercise["lines"] if not ln.get("ok")]
        return "timed out" if any(_TIMEOUT.search(m) for m in failing) else "error"
    return "wrong"  # failed, delegated


def misconceptions(exercise: dict[str, Any]) -> list[str]:
    """The misconceptions behind an exercise's failing lines, each once, in the verdict's order."""
    found: list[str] = []
    for line in exercise["lines"]:
        if line.get("ok"):
            continue
        message = readable(str(line.get("message", "")))
        _, dash, after = message.partition(" — ")
        text = after.strip() if dash else f"{line.get('what', '')}: {message}"
        if text not in found:
            found.append(text)
    return found


def _notebook(result: dict[str, Any]) -> str:
    """The notebook a result grades, as the gradebook names it (a file outside the course: its stem)."""
    return str(result["notebook"] or Path(str(result.get("path", ""))).stem)


def _revisit(name: str, notebook: str) -> str:
    """The section of the notebook to revisit for this exercise ("" for one the registry lacks)."""
    try:
        return get(name, notebook).revisit
    except KeyError:
        return ""


def _course_order(notebook: str, seen: list[str]) -> list[tuple[str, float]]:
    """The exercises of a notebook, in the registry's order, then any others the gradebook names."""
    known = [(e.name, float(e.points)) for e in by_notebook(notebook)]
    known += [(w.grade_id, float(w.points)) for w in written_by_notebook(notebook)]
    names = {n for n, _ in known}
    return known + [(n, 0.0) for n in seen if n not in names]


def build(
    grader: dict[str, Any],
    results: list[dict[str, Any]],
    low_score: float = DEFAULT_LOW_SCORE,
    many_problems: int = DEFAULT_MANY_PROBLEMS,
) -> ClassReport:
    """The class report of a gradebook's results.

    A student with no submission of a notebook that others handed in has every
    exercise of it as missing, and scores 0 out of the notebook's points.
    """
    students = sorted({r["student"] for r in results})
    notebooks = sorted({_notebook(r) for r in results})
    by_key = {(r["student"], _notebook(r)): r for r in results}
    exercises: list[ExerciseSummary] = []
    notebook_max: dict[str, float] = {}
    notebook_by_hand: dict[str, float] = {}
    scores: dict[str, dict[str, float | None]] = {nb: {} for nb in notebooks}
    people = {s: StudentSummary(s, 0.0, 0.0) for s in students}
    for nb in notebooks:
        seen = [e["exercise"] for r in results if _notebook(r) == nb for e in r["exercises"]]
        order = _course_order(nb, list(dict.fromkeys(seen)))
        summaries = {name: ExerciseSummary(nb, name, points, _revisit(name, nb)) for name, points in order}
        for s in students:
            r = by_key.get((s, nb))
            got = {e["exercise"]: e for e in r["exercises"]} if r else {}
            for name, summary in summaries.items():
                e = got.get(name)
                if e is not None:
                    summary.max_score = max(summary.max_score, float(e["max_score"]))
                kind = outcome(e) if e is not None else "missing"
                summary.outcomes[kind].append(s)
                people[s].outcomes[kind] += 1
                caught = e is not None and label(e) == TAMPERING_LABEL
                if caught:
                    people[s].tampering.append(name)
                    summary.misconceptions[TAMPERING_MISCONCEPTION] += 1
                elif e is not None and kind in ("partly", "wrong", "error"):
                    summary.misconceptions.update(misconceptions(e))
            scores[nb][s] = float(r["score"]) if r else None
        by_hand = {w.grade_id for w in written_by_notebook(nb)}
        notebook_max[nb] = sum(x.max_score for x in summaries.values() if x.exercise not in by_hand)
        notebook_by_hand[nb] = sum(x.max_score for x in summaries.values() if x.exercise in by_hand)
        for s in students:
            people[s].score += scores[nb][s] or 0.0
            people[s].max_score += notebook_max[nb]
        exercises += summaries.values()
    for p in people.values():
        p.reasons = _reasons(p, low_score, many_problems)
    return ClassReport(
        grader,
        students,
        notebooks,
        notebook_max,
        scores,
        exercises,
        list(people.values()),
        low_score,
        many_problems,
        notebook_by_hand,
    )


def _reasons(p: StudentSummary, low_score: float, many_problems: int) -> list[str]:
    """Why a student may need help (empty: no reason)."""
    reasons = []
    if p.percent < low_score:
        reasons.append(f"score {p.percent:.0f}% (below {low_score:g}%)")
    troubles = p.outcomes["error"] + p.outcomes["timed out"] + p.outcomes["missing"]
    if troubles >= many_problems:
        parts = [f"{p.outcomes[k]} {k}" for k in ("missing", "error", "timed out") if p.outcomes[k]]
        reasons.append(f"{troubles} exercises with errors, timeouts or missing work ({', '.join(parts)})")
    if p.tampering:
        reasons.append("tampering attempt in " + ", ".join(p.tampering))
    return reasons


# -- figures ------------------------------------------------------------------------------------------
def short(text: str, width: int = 60) -> str:
    """A misconception as a chart label: its first clause, at most ``width`` characters."""
    head = re.split(r": |\. |; ", text, maxsplit=1)[0] if " " in text else text
    if len(head) < 12:  # "runs: raised ...": the clause alone says nothing
        head = text
    return head if len(head) <= width else head[: width - 1].rstrip() + "…"


def score_figure(report: ClassReport) -> Figure:
    """One histogram per notebook: how many students scored how many points (missing work: 0).

    Up to 20 points, one bar per point; beyond, ten bars. At most three histograms to a row, so that
    a course of many notebooks stays as wide as the other charts, and its labels readable.
    """
    n = len(report.notebooks)
    columns = min(n, SCORE_COLUMNS)
    rows = -(-n // columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    grid = fig.subplots(rows, columns, squeeze=False).ravel()
    for spare in grid[n:]:  # the last row's empty places
        spare.remove()
    for ax, nb in zip(grid[:n], report.notebooks, strict=True):
        values = [v or 0.0 for v in report.scores[nb].values()]
        top = report.notebook_max[nb]
        if 0 < top <= 20:  # one bar per point, centred on it (a fractional score goes to the nearest)
            ax.hist(values, bins=int(top) + 1, range=(-0.5, top + 0.5), color="#2c6fbb", edgecolor="white")
        else:
            ax.hist(values, bins=10, range=(0, top or 1), color="#2c6fbb", edgecolor="white")
        ax.set_title(nb, fontsize=10)
        ax.set_xlabel(f"score (points out of {top:g})")
        ax.set_ylabel("students")
        ax.yaxis.get_major_locator().set_params(integer=True)
    fig.suptitle("Score distribution per notebook")
    return fig


def outcome_figure(report: ClassReport) -> Figure:
    """A stacked bar per exercise: the students right, partly right, wrong, ... missing."""
    rows = report.exercises
    fig = Figure(figsize=(9, 0.38 * len(rows) + 1.6), layout="constrained")
    ax = fig.subplots()
    names = [f"{ex.notebook[:2]} {ex.exercise}" for ex in rows]
    y = list(range(len(rows)))
    left = [0] * len(rows)
    for kind in report.outcomes:
        counts = [ex.count(kind) for ex in rows]
        ax.barh(y, counts, left=left, color=COLOURS[kind], label=kind, edgecolor="white")
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_yticks(y, names)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first exercise on top, no empty band above or below
    ax.set_xlabel("students")
    ax.set_title("Outcome of each exercise")
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(loc="outside lower center", ncols=len(report.outcomes), frameon=False)
    return fig


def misconception_figure(counts: list[tuple[str, int]], title: str) -> Figure:
    """A horizontal bar chart of misconceptions, the most frequent on top."""
    counts = sorted(counts, key=lambda item: (-item[1], item[0]))
    fig = Figure(figsize=(8, 0.45 * len(counts) + 1.3), layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(counts)), [n for _, n in counts], color="#c8423b")
    ax.set_yticks(range(len(counts)), [textwrap.fill(short(t), 40) for t, _ in counts], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.set_title(title, fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def png_data_uri(fig: Figure) -> str:
    """The figure as a base64 PNG data URI, ready for an <img> tag."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def overview_figures(report: ClassReport) -> list[Figure]:
    """The report's main charts, top to bottom: scores, outcomes, the most common misconceptions."""
    figures = [score_figure(report), outcome_figure(report)]
    common = report.common_misconceptions()[:10]
    if common:
        title = "Most common misconceptions across the class"
        figures.append(misconception_figure([(t, n) for t, n, _ in common], title))
    return figures


def _pixels(fig: Figure, dpi: int) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def write_overview_png(report: ClassReport, path: Path, dpi: int = 72) -> tuple[int, int]:
    """The overview figures stacked into one PNG, each centred on the widest; its (height, width)."""
    images = [_pixels(fig, dpi) for fig in overview_figures(report)]
    width = max(image.shape[1] for image in images)
    sides = [((width - image.shape[1]) // 2, (width - image.shape[1] + 1) // 2) for image in images]
    padded = [
        np.pad(image, ((0, 0), side, (0, 0)), constant_values=255)
        for image, side in zip(images, sides, strict=True)
    ]
    gap = np.full((16, width, 3), 255, dtype=padded[0].dtype)  # white between two charts
    stacked = np.concatenate([part for image in padded for part in (image, gap)][:-1], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt_image.imsave(path, stacked)
    return stacked.shape[0], stacked.shape[1]


# -- the HTML file ------------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
.muted { color: #666; } .revisit { color: #2c6fbb; }
"""


def _count(n: int, what: str) -> str:
    """``n`` followed by ``what``, in the plural unless n is 1."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _class_size(report: ClassReport) -> str:
    """ "6 students, 3 notebooks"."""
    return f"{_count(len(report.students), 'student')}, {_count(len(report.notebooks), 'notebook')}"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(head: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    cells = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{_esc(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{cells}</tr>{body}</table>"


def _img(fig: Figure, alt: str) -> str:
    return f'<img src="{png_data_uri(fig)}" alt="{_esc(alt)}">'


def score_rows(report: ClassReport) -> list[list[Any]]:
    """Per notebook: handed in, mean, median, lowest, highest score, out of its points."""
    rows = []
    for nb in report.notebooks:
        handed = sorted(v for v in report.scores[nb].values() if v is not None)
        values = sorted(v or 0.0 for v in report.scores[nb].values())
        mid = len(values) // 2
        median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        mean = sum(values) / len(values)
        rows.append(
            [
                nb,
                f"{len(handed)}/{len(values)}",
                f"{mean:.1f}",
                f"{median:g}",
                f"{values[0]:g}",
                f"{values[-1]:g}",
                _out_of(report, nb),
            ]
        )
    return rows


def _out_of(report: ClassReport, nb: str) -> str:
    """A notebook's automatically graded points, and those to grade by hand when it has any."""
    pending = report.notebook_by_hand.get(nb, 0.0)
    text = f"{report.notebook_max[nb]:g}"
    return f"{text} + {pending:g} by hand" if pending else text


def _graded_by(g: dict[str, Any]) -> str:
    """How the class was graded, as the report's header says it (escaped)."""
    if "described" in g:  # a gradebook read from elsewhere (nbgrader's) says it in its own words
        return _esc(g["described"])
    version, seeds = _esc(g.get("version", "?")), _esc(g.get("seed_policy", "?"))
    return f"bpcourse {version}, {seeds}, sandbox {_esc(', '.join(g.get('sandboxes', {})) or '?')}"


def render_html(report: ClassReport, title: str) -> str:
    """The report as one HTML page with its figures embedded (no external URL)."""
    g = report.grader
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p class=muted>{_class_size(report)}; graded by {_graded_by(g)}.</p>",
        "<h2>Students who may need help</h2>",
    ]
    helped = report.needing_help()
    if helped:
        parts.append(
            _table(
                ["student", "score", "why"],
                [
                    [p.student, f"{p.score:g}/{p.max_score:g} ({p.percent:.0f}%)", "; ".join(p.reasons)]
                    for p in helped
                ],
            )
        )
    else:
        parts.append(
            "<p>Nobody: every student scored at least "
            f"{report.low_score:g}% with fewer than {report.many_problems} problems.</p>"
        )
    parts.append(
        f"<p class=muted>Listed: a score below {report.low_score:g}%, or {report.many_problems} "
        "or more exercises with errors, timeouts or missing work, or a tampering attempt.</p>"
    )
    parts += ["<h2>Score distribution per notebook</h2>", _img(score_figure(report), "score distribution")]
    parts.append(
        _table(
            ["notebook", "handed in", "mean", "median", "lowest", "highest", "out of"],
            score_rows(report),
            numeric={2, 3, 4, 5, 6},
        )
    )
    parts.append("<h2>Misconceptions most common across the class</h2>")
    common = report.common_misconceptions()
    if common:
        top = common[:10]
        parts.append(
            _img(
                misconception_figure([(t, n) for t, n, _ in top], "Most common misconceptions"),
                "most common misconceptions",
            )
        )
        rows = [
            [
                n,
                text,
                ", ".join(f"{ex.notebook} {ex.exercise}" for ex in where),
                " / ".join(dict.fromkeys(f"{ex.notebook}: {ex.revisit}" for ex in where if ex.revisit)),
            ]
            for text, n, where in top
        ]
        parts.append(_table(["students", "misconception", "exercise", "revisit in class"], rows, {0}))
    else:
        parts.append("<p>No misconception was diagnosed.</p>")
    parts += ["<h2>Exercises</h2>", _img(outcome_figure(report), "outcome of each exercise")]
    parts.append(
        _table(
            ["notebook", "exercise", *report.outcomes],
            [[ex.notebook, ex.exercise, *(ex.count(k) for k in report.outcomes)] for ex in report.exercises],
            numeric=set(range(2, 2 + len(report.outcomes))),
        )
    )
    for ex in report.exercises:
        if not ex.misconceptions:
            continue
        parts.append(f"<h3>{_esc(ex.notebook)} · {_esc(ex.exercise)}</h3>")
        counts = ", ".join(f"{ex.count(k)} {k}" for k in report.outcomes if ex.count(k))
        parts.append(f"<p>{_esc(counts)}. <span class=revisit>Revisit: {_esc(ex.revisit or '?')}</span></p>")
        parts.append(
            _img(
                misconception_figure(list(ex.misconceptions.items()), f"{ex.exercise}: misconceptions"),
                f"misconceptions in {ex.exercise}",
            )
        )
        students = {s for k in ("partly", "wrong", "error") for s in ex.outcomes[k]}
        parts.append(
            _table(["students", "misconception"], [[n, t] for t, n in ex.misconceptions.most_common()], {0})
        )
        parts.append(f"<p class=muted>students concerned: {_esc(', '.join(sorted(students)))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# -- the terminal summary -----------------------------------------------------------------------------
def summary_text(report: ClassReport) -> str:
    """What the command prints: scores per notebook, outcomes per exercise, misconceptions, students."""
    lines = [
        f"Class report: {_class_size(report)}",
        "",
    ]
    head = ["notebook", "handed in", "mean", "median", "lowest", "highest", "out of"]
    rows = [head, *score_rows(report)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines += [
        "  ".join(
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.append("")
    width = max(len(ex.exercise) for ex in report.exercises) + 3 if report.exercises else 10
    lines.append(f"{'exercise':<{width}}" + "".join(f"{k:>10}" for k in report.outcomes))
    for ex in report.exercises:
        lines.append(
            f"{ex.notebook[:2] + ' ' + ex.exercise:<{width}}"
            + "".join(f"{ex.count(k):>10}" for k in report.outcomes)
        )
    lines += ["", "Most common misconceptions (students, exercise, revisit):"]
    common = report.common_misconceptions()
    for text, n, where in common[:10]:
        lines.append(f"  {n}  {short(text, 70)}  [{', '.join(ex.exercise for ex in where)}]")
        for revisit in dict.fromkeys(f"{ex.notebook}: {ex.revisit}" for ex in where if ex.revisit):
            lines.append(f"       → revisit {revisit}")
    if not common:
        lines.append("  none diagnosed")
    lines += ["", "Students who may need help:"]
    for p in report.needing_help():
        lines.append(f"  {p.student}: {p.score:g}/{p.max_score:g} ({p.percent:.0f}%): {'; '.join(p.reasons)}")
    if not report.needing_help():
        lines.append("  nobody")
    return "\n".join(lines)


# -- the command --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bpcourse report``."""
    parser.add_argument(
        "grades_dir",
        type=Path,
        metavar="GRADES_DIR",
        help="the --out folder of `bpcourse grade` (with --nbgrader: the nbgrader course folder)",
    )
    parser.add_argument(
        "--png",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the main charts (scores, outcomes, common misconceptions) as one PNG image",
    )
    parser.add_argument(
        "--nbgrader",
        action="store_true",
        help="read nbgrader's gradebook.db in GRADES_DIR, and the diagnoses in its autograded/ notebooks",
    )
    parser.add_argument(
        "--low-score",
        type=float,
        default=DEFAULT_LOW_SCORE,
        metavar="PERCENT",
        help=f"list a student scoring below this (default {DEFAULT_LOW_SCORE:g}%%)",
    )
    parser.add_argument(
        "--many-problems",
        type=int,
        default=DEFAULT_MANY_PROBLEMS,
        metavar="N",
        help="list a student with N or more exercises in error, timed out or missing "
        f"(default {DEFAULT_MANY_PROBLEMS})",
    )


def run(args: argparse.Namespace) -> int:
    """Write GRADES_DIR/report.html and print the summary; 2 when there is no gradebook to read."""
    try:
        grader, results = _load_nbgrader(args.grades_dir) if args.nbgrader else load(args.grades_dir)
    except ReportInputError as exc:
        print(f"bpcourse report: {exc}", file=sys.stderr)
        return 2
    report = build(grader, results, args.low_score, args.many_problems)
    out = Path(args.grades_dir) / "report.html"
    where = Path(args.grades_dir).resolve()
    try:
        out.write_text(
            render_html(report, f"Class report: {where.parent.name}/{where.name}"), encoding="utf-8"
        )
    except OSError as exc:
        print(f"bpcourse report: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    print(summary_text(report))
    print()
    print(f"report: {out}")
    if args.png is not None:
        write_overview_png(report, args.png)
        print(f"charts: {args.png}")
    return 0
