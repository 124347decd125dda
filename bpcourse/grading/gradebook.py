"""The gradebook of a class run: gradebook.csv, gradebook.json and one feedback file per student.

``gradebook.json`` is ``{"grader": {...}, "submissions": [result, ...]}``: how
the class was graded (the grader's version, the result format, the seed
policy, the sandboxes used, the notebooks that changed under the run), then
every submission's result as ``grade_submission`` made it. Until result
version 2 the file was the bare list of results; ``read_gradebook`` reads both.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bpcourse.exercises.written import BY_HAND, by_hand_points
from bpcourse.grading.results import RESULT_VERSION, grader_version, safe_name, write_atomically

CONTENT_HASH_INPUTS = (
    "each exercise's inputs are drawn from a generator seeded by the sha256 of the submission's "
    "bytes and the exercise's name: the same notebook always gets the same inputs and verdicts"
)


def grading_record(
    seed: int | None, results: Sequence[dict[str, Any]], changed: Sequence[str]
) -> dict[str, Any]:
    """The "grader" part of gradebook.json: how this class was graded."""
    return {
        "program": "bpcourse",
        "version": grader_version(),
        "result_version": RESULT_VERSION,
        "seed_policy": "content hash" if seed is None else "fixed seed",
        "seed": seed,
        "inputs": CONTENT_HASH_INPUTS if seed is None else f"every submission's inputs come from seed {seed}",
        "sandboxes": dict(sorted(Counter(r["sandbox"] for r in results).items())),
        "changed_during_run": list(changed),
    }


# What a verdict says when the learner's code reaches for the grader's own modules (the exercise
# registry with its reference answers, the grader): refused by the reading of the notebook or by
# the guard of the call ("uses bpcourse.exercises.get: ..."), or by the worker's import system.
_TAMPERING = (
    "is not available while grading",
    "uses bpcourse.exercises",
    "uses bpcourse.grading",
    "uses bpcourse.check",
)
TAMPERING_LABEL = "tampering attempt"
TAMPERING_NOTE = (
    "tampering attempt: the code reaches for the grader's own modules (the exercise registry holds the "
    "reference answers), which are out of reach while grading; an answer taken from them earns nothing"
)
# IPython's name for the code of a cell, in a SyntaxError's text: <ipython-input-1-d9567b878bbf>.
_CELL_FILE = re.compile(r"\(<ipython-input-[\w-]+>, line (\d+)\)")


def tampering(exercise: dict[str, Any]) -> bool:
    """True when the grader caught this exercise's code importing its own hidden modules."""
    return any(
        not ln.get("ok") and any(mark in str(ln.get("message", "")) for mark in _TAMPERING)
        for ln in exercise["lines"]
    )


def label(exercise: dict[str, Any]) -> str:
    """How an exercise's outcome is named: its status, or "tampering attempt" when one was caught."""
    return TAMPERING_LABEL if tampering(exercise) else str(exercise["status"])


def readable(message: str) -> str:
    """A message as the learner should read it: a syntax error names the line of the cell, not
    IPython's internal file name."""
    return _CELL_FILE.sub(lambda m: f"(line {m.group(1)} of the cell)", message)


def diagnosis(exercise: dict[str, Any]) -> list[str]:
    """The lines of an exercise's verdict that say what is wrong, readable, the tampering note first."""
    lines = [f"{ln['what']}: {readable(ln['message'])}" for ln in exercise["lines"] if not ln["ok"]]
    return [TAMPERING_NOTE, *lines] if tampering(exercise) else lines


def total(result: dict[str, Any]) -> str:
    """A result's total, "12 / 15 points", with "+ 2 points to grade by hand" when it has written answers.

    The grader's score and its maximum count only what it scored: written answers wait for a person.
    """
    text = f"{result['score']:g} / {result['max_score']:g} points"
    pending = by_hand_points(result["exercises"])
    return f"{text} + {pending:g} points to grade by hand" if pending else text


def read_gradebook(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(how the class was graded, the results) from a gradebook.json, old or new.

    A gradebook written before result version 2 is a bare list of results:
    it comes back with an empty "grader" record.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, list):
        return {}, data
    if isinstance(data, dict) and isinstance(data.get("submissions"), list):
        return dict(data.get("grader") or {}), data["submissions"]
    raise ValueError(f"{path} is not a gradebook (neither a list of results nor grader and submissions)")


def _csv_rows(results: Sequence[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in results:
        for e in r["exercises"]:
            score = "" if e["score"] is None else e["score"]  # to grade by hand: no score, not 0
            rows.append([r["student"], r["notebook"], e["exercise"], score, e["max_score"], e["status"],
                         "; ".join(diagnosis(e))])  # fmt: skip
        if not r["exercises"]:
            rows.append([r["student"], r["notebook"] or Path(r["path"]).stem, "", 0.0, 0.0, "ungraded",
                         "; ".join(readable(p) for p in r["problems"])])  # fmt: skip
    return rows


def write_gradebook(
    out: Path, results: Iterable[dict[str, Any]], grader: dict[str, Any] | None = None
) -> None:
    """gradebook.csv (one row per exercise), gradebook.json and one feedback file per student."""
    results = sorted(results, key=lambda r: (r["student"], r["notebook"], r["path"]))
    with tempfile.NamedTemporaryFile(
        "w", newline="", encoding="utf-8", dir=out, delete=False, suffix=".csv"
    ) as f:
        writer = csv.writer(f)
        writer.writerow(["student", "notebook", "exercise", "score", "max_score", "status", "diagnosis"])
        writer.writerows(_csv_rows(results))
    os.replace(f.name, out / "gradebook.csv")
    gradebook = {"grader": grader if grader is not None else {}, "submissions": results}
    write_atomically(out / "gradebook.json", json.dumps(gradebook, indent=1))
    by_student: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_student.setdefault(r["student"], []).append(r)
    for student, theirs in by_student.items():
        write_atomically(out / "feedback" / f"{safe_name(student)}.md", feedback_text(student, theirs))


def feedback_text(student: str, results: Sequence[dict[str, Any]]) -> str:
    """A learner's feedback: their scores and, for each miss, what is wrong in words."""
    lines = [f"# Feedback for {student}", ""]
    for r in results:
        lines.append(f"## {r['notebook'] or Path(r['path']).name}: {total(r)}")
        lines.append("")
        for problem in r["problems"]:
            lines.append(f"- note: {readable(problem)}")
        for e in r["exercises"]:
            if e["status"] == BY_HAND:
                lines.append(f"- ✎ `{e['exercise']}`: {BY_HAND} ({e['max_score']:g} points)")
                lines += [f"  - {ln['message']}" for ln in e["lines"]]
                continue
            mark = "✓" if e["status"] == "passed" else "✗"
            lines.append(f"- {mark} `{e['exercise']}`: {label(e)} ({e['score']:g}/{e['max_score']:g})")
            lines += [f"  - {line}" for line in diagnosis(e)]
        lines.append("")
    return "\n".join(lines)
