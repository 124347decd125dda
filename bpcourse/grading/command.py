"""``bpcourse grade PATH... --out DIR``: grade a class from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bpcourse.exercises.written import BY_HAND, by_hand_points
from bpcourse.grading.distributed import ClusterProblem, dask_executor
from bpcourse.grading.gradebook import label, readable
from bpcourse.grading.gradescope import (
    VISIBILITIES,
    not_one_notebook_message,
    problem_results,
    results_json,
    write_results,
)
from bpcourse.grading.isolation import SandboxUnavailable
from bpcourse.grading.runner import ClassRun, grade_class
from bpcourse.grading.sandbox import Limits
from bpcourse.grading.submissions import Submission, find


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="notebooks, folders of notebooks, or nbgrader's submitted/ folder",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        metavar="DIR",
        help="where results, gradebook.csv/.json and feedback/ go (default: grades)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at once (default: the number of cores)",
    )
    parser.add_argument("--force", action="store_true", help="grade again what an earlier run finished")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="draw every submission's random inputs from this seed (default: from each notebook's "
        "content hash, so the same notebook always gets the same verdicts)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=Limits.cell_seconds,
        metavar="S",
        help=f"wall-clock limit per notebook cell (default {Limits.cell_seconds:g} s)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=Limits.call_seconds,
        metavar="S",
        help=f"wall-clock limit per graded call (default {Limits.call_seconds:g} s)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=Limits.memory_mb,
        metavar="MB",
        help=f"memory limit per submission (default {Limits.memory_mb} MB)",
    )
    parser.add_argument(
        "--run-all-cells",
        action="store_true",
        help="also run demonstration cells (by default only cells that define things, and solutions)",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="grade without isolating the learners' code (only for code you trust): by default it runs "
        "under bubblewrap, or as root under a user id of its own, and grading stops if neither is possible",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    parser.add_argument(
        "--gradescope",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write Gradescope's results.json for the one submission graded "
        "(an error if PATH... holds no notebook or several); grades it afresh, as --force",
    )
    parser.add_argument(
        "--gradescope-visibility",
        choices=VISIBILITIES,
        default="visible",
        help="when learners see the Gradescope results (default: visible)",
    )
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="grade on the dask.distributed cluster whose scheduler is at ADDRESS "
        "(e.g. tcp://10.0.0.5:8786) instead of on this machine; --workers does not apply",
    )


def _table(results: list[dict[str, Any]]) -> str:
    rows = [("student", "notebook", "score", "what to look at")]
    for r in results:
        misses = [f"{e['exercise']} ({label(e)})" for e in r["exercises"]
                  if e["status"] not in ("passed", BY_HAND)]  # fmt: skip
        note = ", ".join(misses) if misses else "all passed"
        if not r["exercises"]:
            note = "; ".join(readable(p) for p in r["problems"])[:80]
        score = f"{r['score']:g}/{r['max_score']:g}"
        pending = by_hand_points(r["exercises"])  # written answers: no score yet, never 0
        score += f" + {pending:g} by hand" if pending else ""
        rows.append((r["student"], r["notebook"] or Path(r["path"]).name, score, note))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in rows]
    lines.insert(1, "-" * min(100, max(len(line) for line in lines)))
    return "\n".join(lines)


def _sandbox_summary(results: list[dict[str, Any]]) -> str:
    modes = sorted({str(r.get("sandbox", "not run")) for r in results})
    text = ", ".join(modes) or "nothing was run"
    if "none" in modes:
        text += " (WARNING: --no-sandbox: learners' code ran with your rights)"
    elif "user id without namespaces" in modes:
        text += (
            " (WARNING: no namespaces here: learners' code could use the network and read files"
            " that every user may read; see grader/README.md)"
        )
    return text


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _set_aside_report(run: ClassRun) -> list[str]:
    """What was moved out of the results folder, and why (empty when nothing was)."""
    regraded = [f"  {s.submission}: {s.reason}" for s in run.set_aside if s.submission is not None]
    strays = [f"  {s.name}: {s.reason}" for s in run.set_aside if s.submission is None]
    lines = []
    if regraded:
        what = _count(
            len(regraded), "damaged, foreign or out-of-date result", "damaged, foreign or out-of-date results"
        )
        lines += [f"regraded {what}:", *regraded]
    if strays:
        what = _count(len(strays), "file that is", "files that are")
        lines += [f"set aside {what} no result of this run's submissions:", *strays]
    if run.set_aside_folder is not None:
        lines.append(f"they are kept in {run.set_aside_folder}/ (reasons.txt says why)")
    lines += [f"could not set aside {message}; it was left as it is" for message in run.left_in_place]
    return lines


def _changed_report(run: ClassRun) -> list[str]:
    """The notebooks that changed under the run (empty when none did)."""
    if not run.changed:
        return []
    return [
        f"{_count(len(run.changed), 'submission', 'submissions')} changed while the class was graded; "
        "the gradebook has what was graded, not what is there now (grade again):",
        *(f"  {change}" for change in run.changed),
    ]


def _summary(run: ClassRun, out: Path) -> str:
    return "\n".join(
        [
            _table(run.results),
            "",
            f"graded {run.graded}, already done {run.skipped}, could not grade {len(run.failed)}",
            f"sandbox:   {_sandbox_summary(run.results)}",
            f"gradebook: {out / 'gradebook.csv'} and {out / 'gradebook.json'}",
            f"feedback:  {out / 'feedback'}/<student>.md",
        ]
    )


def _write_gradescope(args: argparse.Namespace, run: ClassRun, submission: Submission) -> bool:
    """results.json for the one submission; False (nothing written) when it has no sound result."""
    result = next((r for r in run.results if (r["student"], r["notebook"]) ==
                   (submission.student, submission.notebook)), None)  # fmt: skip
    if result is None:
        return False
    write_results(args.gradescope, results_json(result, args.gradescope_visibility))
    if not args.quiet:
        print(f"gradescope: {args.gradescope}")
    return True


def run(args: argparse.Namespace) -> int:
    found = find(args.paths)
    if args.gradescope is not None:
        args.gradescope.unlink(missing_ok=True)  # never leave an earlier run's results behind
    if found.missing:  # refused before anything is graded
        for path in found.missing:
            print(f"bpcourse grade: {path}: no such file or folder", file=sys.stderr)
        return 2
    for path in found.skipped:
        print(f"skipped {path}: not a notebook (.ipynb)", file=sys.stderr)
    submissions = found.submissions
    if args.gradescope is not None and len(submissions) != 1:
        message = not_one_notebook_message([s.path for s in submissions])
        write_results(args.gradescope, problem_results(message, args.gradescope_visibility))
        print(
            f"--gradescope grades exactly one submission, found {len(submissions)} under: "
            + " ".join(args.paths),
            file=sys.stderr,
        )
        return 2
    if not submissions:
        print("no notebooks found under: " + " ".join(args.paths), file=sys.stderr)
        return 2
    limits = Limits(cell_seconds=args.cell_timeout, call_seconds=args.call_timeout, memory_mb=args.memory)
    cluster = (
        dask_executor(args.dask, report=None if args.quiet else sys.stderr) if args.dask else nullcontext()
    )
    try:
        with cluster as executor:
            run = grade_class(
                submissions,
                args.out,
                workers=max(1, args.workers),
                force=args.force or args.gradescope is not None,
                limits=limits,
                seed=args.seed,
                executor=executor,
                progress=None if args.quiet else sys.stderr,
                run_all_cells=args.run_all_cells,
                no_sandbox=args.no_sandbox,
            )
    except ClusterProblem as exc:
        print(f"cannot grade on the cluster: {exc}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:
        print(f"not grading: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(_summary(run, args.out))
    # What could not be trusted or graded goes to stderr, with --quiet too.
    for line in _set_aside_report(run) + _changed_report(run):
        print(line, file=sys.stderr)
    for failure in run.failed:
        print(f"could not grade {failure}", file=sys.stderr)
    if run.failed or run.changed:
        # No results.json then: Gradescope reports a failed autograder rather than a doubtful score.
        return 1
    if args.gradescope is not None and not _write_gradescope(args, run, submissions[0]):
        print(f"no result for {submissions[0].key} to write to {args.gradescope}", file=sys.stderr)
        return 1
    return 0
