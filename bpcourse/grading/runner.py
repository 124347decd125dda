"""Grading a class: every submission in its own sandbox, results kept safe on disk.

Each finished submission is written at once, atomically, to
``OUT/results/<student>/<notebook>.json``: a run that is interrupted (even by
kill -9) loses nothing already finished, and a rerun skips what is there
unless ``force`` is set. The gradebook (CSV and JSON) and the feedback files
are then rebuilt from all result files, so they never hold a submission twice.

The random inputs of a submission come from ``--seed`` when one is given, and
otherwise from the sha256 of the notebook's bytes: grading the same bytes
twice gives the same verdicts, byte for byte.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bpcourse.exercises import by_notebook
from bpcourse.exercises.core import Verdict, judge
from bpcourse.grading.results import RESULT_VERSION, content_hash, result_path, safe_name, write_atomically
from bpcourse.grading.sandbox import Limits, Sandbox
from bpcourse.grading.submissions import (
    Submission,
    UnreadableNotebook,
    cells_to_run,
    parse_notebook,
    read_bytes,
)


def _verdict_for_all(exercises: Sequence[Any], status: str, message: str) -> list[dict[str, Any]]:
    return [
        {
            "exercise": e.name,
            "score": 0.0,
            "max_score": e.points,
            "status": status,
            "lines": [{"what": "notebook", "ok": False, "message": message}],
        }  # fmt: skip
        for e in exercises
    ]


def grade_submission(
    submission: Submission, limits: Limits | None = None, seed: int | None = None, run_all_cells: bool = False
) -> dict[str, Any]:
    """Grade one notebook in a sandbox; the result is plain data (JSON-ready).

    Never raises for anything the notebook does: every problem becomes a
    message on the exercises it affects.
    """
    started = time.monotonic()
    exercises = by_notebook(submission.notebook) if submission.notebook else []
    result: dict[str, Any] = {
        "version": RESULT_VERSION,
        "student": submission.student,
        "notebook": submission.notebook,
        "path": str(submission.path),
        "sha256": None,  # of the bytes graded, once read
        "seed": seed,
        "sandbox": "process",
        "problems": [],
        "exercises": [],
    }
    if not submission.notebook:
        result["problems"].append(
            "could not tell which course notebook this is (file name or for_notebook call)"
        )
    try:
        content = read_bytes(submission.path)  # read once: the hash names exactly what is graded
        result["sha256"] = content_hash(content)
        notebook = parse_notebook(content)
    except UnreadableNotebook as exc:
        result["problems"].append(str(exc))
        result["exercises"] = _verdict_for_all(exercises, "unreadable", str(exc))
        return _totals(result, started)
    inputs_for = input_generators(seed, result["sha256"])
    with Sandbox(cells_to_run(notebook, run_all_cells), limits) as sandbox:
        report = sandbox.start()
        result["problems"].extend(f"cell {p.index + 1}: {p.message}" for p in report.cell_problems)
        for exercise in exercises:

            def call(inputs: dict[str, Any], name: str = exercise.name) -> Any:
                return sandbox.call(name, list(inputs.values()))

            verdict: Verdict = judge(exercise, call, inputs_for(exercise.name))
            result["exercises"].append(verdict.to_dict())
    return _totals(result, started)


def _totals(result: dict[str, Any], started: float) -> dict[str, Any]:
    result["score"] = round(sum(e["score"] for e in result["exercises"]), 4)
    result["max_score"] = sum(e["max_score"] for e in result["exercises"])
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def input_generators(seed: int | None, sha256: str) -> Callable[[str], np.random.Generator]:
    """The random generator that draws each exercise's inputs, by exercise name.

    With a seed, one generator seeded with it serves every exercise in turn (as
    ``--seed`` always did). Without one, each exercise gets a generator seeded
    by the notebook's content hash and its own name, so the verdicts depend on
    the submission alone: the same bytes get the same inputs on every run and
    every machine, and an exercise's inputs do not shift when another exercise
    draws more or fewer of them.
    """
    if seed is not None:
        shared = np.random.default_rng(seed)
        return lambda name: shared

    def for_exercise(name: str) -> np.random.Generator:
        digest = hashlib.sha256(bytes.fromhex(sha256) + b"\0" + name.encode("utf-8")).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "big"))

    return for_exercise


# -- on disk ------------------------------------------------------------------------------------
def load_results(out: Path) -> list[dict[str, Any]]:
    """Every finished submission's result under ``out`` (ignoring partial temporary files)."""
    results = []
    for file in sorted((out / "results").glob("*/*.json")):
        try:
            results.append(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return results


def write_gradebook(out: Path, results: Iterable[dict[str, Any]]) -> None:
    """gradebook.csv (one row per exercise), gradebook.json and one feedback file per student."""
    results = sorted(results, key=lambda r: (r["student"], r["notebook"], r["path"]))
    rows = []
    for r in results:
        for e in r["exercises"]:
            diagnosis = "; ".join(f"{ln['what']}: {ln['message']}" for ln in e["lines"] if not ln["ok"])
            rows.append(
                [
                    r["student"],
                    r["notebook"],
                    e["exercise"],
                    e["score"],
                    e["max_score"],
                    e["status"],
                    diagnosis,
                ]
            )
        if not r["exercises"]:
            rows.append([r["student"], r["notebook"] or Path(r["path"]).stem, "", 0.0, 0.0, "ungraded",
                         "; ".join(r["problems"])])  # fmt: skip
    buffer_path = out / "gradebook.csv"
    with tempfile.NamedTemporaryFile(
        "w", newline="", encoding="utf-8", dir=out, delete=False, suffix=".csv"
    ) as f:
        writer = csv.writer(f)
        writer.writerow(["student", "notebook", "exercise", "score", "max_score", "status", "diagnosis"])
        writer.writerows(rows)
    os.replace(f.name, buffer_path)
    write_atomically(out / "gradebook.json", json.dumps(results, indent=1))
    by_student: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_student.setdefault(r["student"], []).append(r)
    for student, theirs in by_student.items():
        write_atomically(out / "feedback" / f"{safe_name(student)}.md", feedback_text(student, theirs))


def feedback_text(student: str, results: Sequence[dict[str, Any]]) -> str:
    """A learner's feedback: their scores and, for each miss, what is wrong in words."""
    lines = [f"# Feedback for {student}", ""]
    for r in results:
        lines.append(
            f"## {r['notebook'] or Path(r['path']).name}: {r['score']:g} / {r['max_score']:g} points"
        )
        lines.append("")
        for problem in r["problems"]:
            lines.append(f"- note: {problem}")
        for e in r["exercises"]:
            mark = "✓" if e["status"] == "passed" else "✗"
            lines.append(f"- {mark} `{e['exercise']}`: {e['status']} ({e['score']:g}/{e['max_score']:g})")
            for ln in e["lines"]:
                if not ln["ok"]:
                    lines.append(f"  - {ln['what']}: {ln['message']}")
        lines.append("")
    return "\n".join(lines)


# -- the class run ----------------------------------------------------------------------------------
@dataclass
class ClassRun:
    graded: int  # submissions graded in this run
    skipped: int  # already finished earlier (resumed)
    failed: list[str]  # submissions that could not be graded at all (grader faults)
    results: list[dict[str, Any]]


def _progress(stream: TextIO) -> Callable[[int, int, float], None]:
    def show(done: int, total: int, started: float) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / max(time.monotonic() - started, 1e-9)
        stream.write(f"\rgrading [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {rate:.1f}/s")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def grade_class(
    submissions: Sequence[Submission],
    out: Path,
    workers: int | None = None,
    force: bool = False,
    limits: Limits | None = None,
    seed: int | None = None,
    executor: Executor | None = None,
    progress: TextIO | None = sys.stderr,
    run_all_cells: bool = False,
) -> ClassRun:
    """Grade every submission not finished yet, in parallel, then write the gradebook."""
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in submissions if force or not result_path(out, s).exists()]
    skipped = len(submissions) - len(todo)
    failed: list[str] = []
    show = _progress(progress) if progress is not None else None
    started = time.monotonic()
    own_executor = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        futures = {pool.submit(grade_submission, s, limits, seed, run_all_cells): s for s in todo}
        for done, future in enumerate(as_completed(futures), start=1):
            submission = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a fault of the grader itself: reported, never fatal to the class
                failed.append(f"{submission.key}: {type(exc).__name__}: {exc}")
            else:
                write_atomically(result_path(out, submission), json.dumps(result, indent=1))
            if show is not None:
                show(done, len(todo), started)
    finally:
        if own_executor:
            pool.shutdown(wait=True, cancel_futures=True)
    results = load_results(out)
    write_gradebook(out, results)
    return ClassRun(graded=len(todo) - len(failed), skipped=skipped, failed=failed, results=results)
