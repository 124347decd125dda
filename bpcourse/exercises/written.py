"""Written answers: nbgrader "manually graded answer" cells, graded by a person.

A written answer is a Markdown cell with ``solution: true, grade: true``, its
``points`` and a ``grade_id`` (``WrittenAnswer.grade_id``). In the
instructor's notebook the cell holds a short rubric; nbgrader's
``ClearSolutions`` replaces the whole source of a Markdown solution cell with
"YOUR ANSWER HERE" in the student version, so the rubric never reaches a
learner. nbgrader's autograde leaves such a cell ungraded ("needs manual
grading"), and the instructor scores it in formgrader.

``bpcourse grade`` cannot judge prose, and it never pretends to: each written
answer appears in the results with status ``BY_HAND`` ("to grade by hand"),
its points, and a score of ``None``, never 0 and never full marks. The totals
of a result count only what the grader scored; ``by_hand_points`` gives the
points still to be graded by hand, which every report shows beside the total
("12 / 15 points + 2 points to grade by hand").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BY_HAND = "to grade by hand"
# What nbgrader writes into a cleared Markdown solution cell (ClearSolutions.text_stub).
STUB = "YOUR ANSWER HERE"


@dataclass(frozen=True)
class WrittenAnswer:
    """One manually graded answer cell: where it is, what it is worth, what it asks."""

    grade_id: str
    notebook: str
    points: float
    question: str


WRITTEN: tuple[WrittenAnswer, ...] = (
    WrittenAnswer(
        "written_sum_at_merges",
        "02_merges_and_traversal",
        2,
        "why a value used twice receives the sum of two contributions (the multivariable chain rule)",
    ),
    WrittenAnswer(
        "written_delta_recurrence",
        "03_affine_and_activations",
        2,
        "why the step from δ² to δ¹ multiplies by the transpose of W² and then elementwise by φ′(z¹)",
    ),
    WrittenAnswer(
        "written_softmax_shift",
        "04_softmax_cross_entropy",
        2,
        "why subtracting each column's max before exp changes no probability and removes the overflow",
    ),
    WrittenAnswer(
        "written_forward_or_reverse",
        "07_cost_of_backprop",
        2,
        "which mode to pick for a given Jacobian, counting passes, and what reverse mode costs in memory",
    ),
    WrittenAnswer(
        "written_layernorm_sums",
        "10_rules_transformers_need",
        2,
        "which sums of layer normalization's ∂L/∂X are zero for every loss, and why (a shift it cannot see)",
    ),
)


def written_by_notebook(notebook: str) -> list[WrittenAnswer]:
    """The written answers of one notebook, in the order they appear."""
    return [answer for answer in WRITTEN if answer.notebook == notebook]


def by_hand_points(exercises: Iterable[Mapping[str, Any]]) -> float:
    """The points of a result's exercises that wait to be graded by hand."""
    return sum(float(e["max_score"]) for e in exercises if e.get("status") == BY_HAND)


def answer_text(cells: Sequence[Mapping[str, Any]], grade_id: str) -> str | None:
    """The text of the Markdown cell with this ``grade_id``; None when the notebook has no such cell."""
    for cell in cells:
        metadata = cell.get("metadata")
        nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
        if isinstance(nbgrader, dict) and nbgrader.get("grade_id") == grade_id:
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return None


def words_written(text: str) -> int:
    """How many words the learner wrote: the stub nbgrader left in the cell does not count."""
    return len(text.replace(STUB, " ").split())


def written_entry(answer: WrittenAnswer, cells: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """The result entry of a written answer: no score, its points, and what the grader found in the cell.

    ``cells``: the notebook's cells (``None`` when the notebook could not be read).
    """
    text = answer_text(cells, answer.grade_id) if cells is not None else None
    if cells is None:
        ok, message = False, "the notebook could not be read: an instructor grades this answer by hand"
    elif text is None:
        ok, message = False, "no answer cell with this grade_id in the notebook (deleted or replaced?)"
    elif words_written(text) == 0:
        ok, message = False, "no answer written yet: the cell still reads as it was handed out"
    else:
        count = words_written(text)
        ok, message = True, f"an answer of {count} word{'s' if count != 1 else ''}, graded by an instructor"
    return {
        "exercise": answer.grade_id,
        "score": None,
        "max_score": answer.points,
        "status": BY_HAND,
        "lines": [{"what": "written answer", "ok": ok, "message": message}],
    }
