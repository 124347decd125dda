"""Grading a class: every submission in its own sandbox, results kept safe on disk.

Each finished submission is written at once, atomically, to
``OUT/results/<student>/<notebook>.json``: a run that is interrupted (even by
kill -9) loses nothing already finished. A rerun uses a stored result again
only when it is sound and names the notebook's current content (see
``resume``), and grades everything else (all of it with ``force``). The
gradebook (CSV and JSON) and the feedback files are then rebuilt from the
checked results of this run's submissions, so they never hold a submission
twice, nor one that is not part of the run.

The random inputs of a submission come from ``--seed`` when one is given, and
otherwise from the sha256 of the notebook's bytes: grading the same bytes
twice gives the same verdicts, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bpcourse.exercises import by_notebook
from bpcourse.exercises.core import Exercise, Verdict, delegation_verdict, judge
from bpcourse.exercises.written import written_by_notebook, written_entry
from bpcourse.grading.gradebook import grading_record, write_gradebook
from bpcourse.grading.results import (
    RESULT_VERSION,
    InvalidResult,
    content_hash,
    read_result,
    result_path,
    write_atomically,
)
from bpcourse.grading.resume import SetAside, changed_inputs, sweep
from bpcourse.grading.sandbox import Limits, Sandbox
from bpcourse.grading.server import shared_server
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
    submission: Submission,
    limits: Limits | None = None,
    seed: int | None = None,
    run_all_cells: bool = False,
    no_sandbox: bool = False,
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
        "sandbox": "not run",  # until a sandbox is started: the mode it ran in
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
        result["exercises"] += [written_entry(a, None) for a in written_by_notebook(submission.notebook)]
        return _totals(result, started)
    inputs_for = input_generators(seed, result["sha256"])
    cells = cells_to_run(notebook, run_all_cells)
    source = "\n\n".join(code for _, code in cells)  # read for uses of the engine before any call
    with Sandbox(cells, limits, shared_server(no_sandbox)) as sandbox:
        result["sandbox"] = sandbox.mode
        report = sandbox.start()
        result["problems"].extend(f"cell {p.index + 1}: {p.message}" for p in report.cell_problems)
        for exercise in exercises:

            def call(inputs: dict[str, Any], e: Exercise = exercise) -> Any:
                driver = e.driver.__name__ if e.driver is not None else ""
                return sandbox.call(e.answer_name, list(inputs.values()), e.refuses, e.instead, driver)

            verdict: Verdict = delegation_verdict(exercise, source) or judge(
                exercise, call, inputs_for(exercise.name)
            )
            result["exercises"].append(verdict.to_dict())
    # Written answers: read from their Markdown cells, never scored here (graded by hand).
    written = written_by_notebook(submission.notebook)
    result["exercises"] += [written_entry(answer, notebook.cells) for answer in written]
    return _totals(result, started)


def _totals(result: dict[str, Any], started: float) -> dict[str, Any]:
    """The scored total and its maximum: answers to grade by hand (score None) count in neither."""
    scored = [e for e in result["exercises"] if e["score"] is not None]
    result["score"] = round(sum(e["score"] for e in scored), 4)
    result["max_score"] = sum(e["max_score"] for e in scored)
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


# -- the class run ----------------------------------------------------------------------------------
@dataclass
class ClassRun:
    graded: int  # submissions graded in this run
    skipped: int  # already finished earlier (resumed)
    failed: list[str]  # submissions that could not be graded at all (grader faults), and why
    results: list[dict[str, Any]]  # the checked results of this run's submissions
    set_aside: list[SetAside] = field(default_factory=list)  # files moved out of OUT/results/
    set_aside_folder: Path | None = None  # where they went
    left_in_place: list[str] = field(default_factory=list)  # stray files that could not be moved
    changed: list[str] = field(default_factory=list)  # notebooks (or results) that changed under the run


def _progress(stream: TextIO) -> Callable[[int, int, float], None]:
    """Progress of a class run: a bar redrawn in place on a terminal (tqdm), plain lines elsewhere.

    A log, CI or Gradescope's output gets one line per tenth of the class (and
    the last), never a carriage return.
    """
    from tqdm import tqdm

    is_terminal = getattr(stream, "isatty", lambda: False)()
    state: dict[str, Any] = {"bar": None, "shown": -1}

    def show(done: int, total: int, started: float) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        if is_terminal:
            bar = state["bar"]
            if bar is None:
                bar = state["bar"] = tqdm(total=total, desc="grading", unit="notebook", file=stream)
                bar.start_t -= elapsed  # count from the start of the run, not from the first result
            bar.update(done - bar.n)
            if done == total:
                bar.close()
            return
        tenth = done * 10 // total if total else 10
        if tenth > state["shown"] or done == total:
            state["shown"] = tenth
            stream.write(f"grading: {done}/{total} notebooks done, {elapsed:.0f} s, {done / elapsed:.1f}/s\n")
            stream.flush()

    return show


def class_folders(submissions: Sequence[Submission]) -> list[Path]:
    """The folders that hold the class: for nbgrader's layout, the whole course (its source/
    folder holds the instructor's notebooks); otherwise each notebook's folder."""
    folders = set()
    for submission in submissions:
        path = submission.path.resolve()
        if "submitted" in path.parts[:-1]:
            at = len(path.parts) - 1 - path.parts[::-1].index("submitted")
            folders.add(Path(*path.parts[:at]))
        else:
            folders.add(path.parent)
    return sorted(folders)


def _one_per_result_file(out: Path, submissions: Sequence[Submission]) -> tuple[list[Submission], list[str]]:
    """The submissions that each have a result file of their own, and why the others are not graded.

    Two notebooks of the same student and course notebook (found under two
    folders) would share one result file, and the second would replace the first.
    """
    owners: dict[Path, Submission] = {}
    refused = []
    for s in submissions:
        first = owners.setdefault(result_path(out, s), s)
        if first is not s:
            refused.append(f"{s.key} ({s.path}): same student and notebook as {first.path}; grade it apart")
    return list(owners.values()), refused


def _grade_all(
    todo: Sequence[Submission],
    out: Path,
    pool: Executor,
    options: tuple[Any, ...],
    show: Callable[[int, int, float], None] | None,
) -> list[str]:
    """Grade ``todo`` on ``pool``, writing each result as it finishes; the submissions that failed."""
    failed: list[str] = []
    started = time.monotonic()
    futures = {pool.submit(grade_submission, s, *options): s for s in todo}
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
    return failed


def _checked_results(
    out: Path, submissions: Sequence[Submission]
) -> tuple[dict[Submission, dict[str, Any]], list[str]]:
    """The stored result of each submission that has a sound one, and what is wrong with the others."""
    results: dict[Submission, dict[str, Any]] = {}
    problems = []
    for s in submissions:
        path = result_path(out, s)
        if not path.exists():
            continue
        try:
            results[s] = read_result(path, s)
        except InvalidResult as exc:
            problems.append(f"{s.key}: its result {path} was left out of the gradebook: {exc}")
    return results, problems


def load_results(out: Path, submissions: Sequence[Submission]) -> list[dict[str, Any]]:
    """The sound stored results of ``submissions`` under ``out``: nothing else goes into a gradebook."""
    return list(_checked_results(out, submissions)[0].values())


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
    no_sandbox: bool = False,
) -> ClassRun:
    """Grade every submission without a usable result (every one with ``force``), then write the gradebook.

    Learners' code runs isolated (``bpcourse.grading.isolation``); without a way
    to isolate it, SandboxUnavailable is raised before anything is graded,
    unless ``no_sandbox`` says to grade without isolation.
    """
    out.mkdir(parents=True, exist_ok=True)
    if executor is None:  # graded here: start the sandbox now, hiding the class and the results
        shared_server(no_sandbox, hide=[out.resolve(), *class_folders(submissions)])
    submissions, failed = _one_per_result_file(out, submissions)
    stored = sweep(out, submissions, seed)
    held = {s for s, _ in stored.blocked if s is not None}
    failed += [
        f"{s.key}: its stored result could not be set aside, so it was left as it is: {message}"
        for s, message in stored.blocked
        if s is not None
    ]
    todo = [s for s in submissions if s not in held and (force or s not in stored.reusable)]
    own_executor = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        show = _progress(progress) if progress is not None else None
        grading_failed = _grade_all(todo, out, pool, (limits, seed, run_all_cells, no_sandbox), show)
    finally:
        if own_executor:
            pool.shutdown(wait=True, cancel_futures=True)
    # Unsound: a result written in this run that no longer checks (changed under the run, or a fault).
    results, unsound = _checked_results(out, [s for s in submissions if s not in held])
    changed = changed_inputs(results)
    write_gradebook(out, results.values(), grading_record(seed, list(results.values()), changed + unsound))
    return ClassRun(
        graded=len(todo) - len(grading_failed),
        skipped=len(submissions) - len(todo) - len(held),
        failed=failed + grading_failed + unsound,
        results=list(results.values()),
        set_aside=stored.set_aside,
        set_aside_folder=stored.folder,
        left_in_place=[message for s, message in stored.blocked if s is None],
        changed=changed,
    )
