"""Grading throughput: ``bpcourse grade`` against ``nbgrader autograde`` on the same class.

A synthetic class is built in a temporary nbgrader course: every course
notebook is generated with nbgrader, and each student submits every notebook,
in one of three states that cycle over the students:

* correct: the instructor's solution cells;
* partly done: every other exercise left as the stub;
* broken: solutions with a syntax error cell and a cell that raises at the top.

Both graders then grade all submissions; the two are run in turn (A B A B ...)
and each run is timed as a whole process with ``time.perf_counter``. nbgrader
autogrades one assignment at a time, serially, as it does; ``bpcourse grade``
uses ``--workers`` processes (default: the core count). Printed: submissions
per second for each and the ratio. Whole-process figures can be cross-checked
with ``/usr/bin/time -v``.

    python benchmarks/bench_grading.py                 # 3 students x 7 notebooks, 1 round
    python benchmarks/bench_grading.py --students 6 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine_info  # noqa: E402


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _nbgrader(course: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}", "--log-level=ERROR"],
        cwd=course,
        env=_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:  # its warnings are noise; its errors are not
        raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def _solution_cells(notebook: nbformat.NotebookNode) -> dict[str, str]:
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in notebook.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def build_class(course: Path, students: int) -> tuple[list[str], int]:
    """The nbgrader course with released notebooks and every student's submissions."""
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", course / "nbgrader_config.py")
    assignments = sorted(
        p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb") if p.stem != "00_start_here"
    )
    for name in assignments:
        (course / "source" / name).mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / f"{name}.ipynb", course / "source" / name / f"{name}.ipynb")
        _nbgrader(course, "generate_assignment", name, "--force")
    count = 0
    for s in range(students):
        state = ("correct", "partly done", "broken")[s % 3]
        student = f"student{s:02d}"
        for name in assignments:
            release = nbformat.read(str(course / "release" / name / f"{name}.ipynb"), as_version=4)
            solutions = _solution_cells(
                nbformat.read(str(ROOT / "solutions" / f"{name}.ipynb"), as_version=4)
            )
            for k, cell in enumerate(
                c for c in release.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")
            ):
                if state != "partly done" or k % 2 == 0:
                    cell.source = solutions[cell.metadata["nbgrader"]["grade_id"]]
            if state == "broken":
                release.cells.insert(2, nbformat.v4.new_code_cell("def oops(:\n    pass"))
                release.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('a cell that fails')"))
            folder = course / "submitted" / student / name
            folder.mkdir(parents=True)
            nbformat.write(release, str(folder / f"{name}.ipynb"))
            count += 1
    return assignments, count


def time_bpcourse(course: Path, out: Path, workers: int, *options: str) -> float:
    """One whole ``bpcourse grade`` process on the class, in seconds."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "bpcourse", "grade", str(course / "submitted"), "--out", str(out),
               "--workers", str(workers), "--quiet", *options]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, env=_env(), check=True)
    return time.perf_counter() - started


def sandbox_mode(out: Path) -> str:
    """How the last bpcourse run isolated the learners' code, from its gradebook."""
    results = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    results = results["submissions"] if isinstance(results, dict) else results
    return ", ".join(sorted({str(r.get("sandbox", "?")) for r in results}))


def time_nbgrader(course: Path, assignments: list[str]) -> float:
    started = time.perf_counter()
    for name in assignments:
        _nbgrader(course, "autograde", name, "--force")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="A B pairs to time (default 1)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        course = Path(folder) / "course"
        course.mkdir()
        print("building the class with nbgrader generate_assignment ...", flush=True)
        assignments, count = build_class(course, args.students)
        print(f"{count} submissions: {args.students} students x {len(assignments)} notebooks "
              "(correct, partly done, broken in turn)\n", flush=True)  # fmt: skip
        out = Path(folder) / "out"
        times: dict[str, list[float]] = {"sandboxed": [], "no sandbox": [], "nbgrader": []}
        ratios: dict[str, list[float]] = {"sandboxed": [], "no sandbox": []}
        mode = "?"
        for round_ in range(args.rounds):  # A B C, then C B A, ...: neighbours share the machine's state
            order = ["sandboxed", "no sandbox", "nbgrader"][:: 1 if round_ % 2 == 0 else -1]
            now = {}
            for contender in order:
                if contender == "nbgrader":
                    now[contender] = time_nbgrader(course, assignments)
                else:
                    options = ["--no-sandbox"] if contender == "no sandbox" else []
                    now[contender] = time_bpcourse(course, out, args.workers, *options)
                    if contender == "sandboxed":
                        mode = sandbox_mode(out)
                times[contender].append(now[contender])
            for contender in ratios:
                ratios[contender].append(now["nbgrader"] / now[contender])
            print(f"round {round_ + 1}: " + "   ".join(f"{c} {now[c]:6.1f} s" for c in now), flush=True)
    print()
    print(f"{'grader':<40}{'median s':>10}{'s/submission':>14}{'submissions/s':>15}")
    names = {
        "sandboxed": f"bpcourse grade, {mode} ({args.workers} workers)",
        "no sandbox": f"bpcourse grade --no-sandbox ({args.workers} workers)",
        "nbgrader": "nbgrader autograde",
    }
    for contender, label in names.items():
        t = statistics.median(times[contender])
        print(f"{label:<40}{t:>10.2f}{t / count:>14.3f}{count / t:>15.2f}")
    print()
    for contender in ratios:
        ratio = statistics.median(ratios[contender])
        print(f"throughput ratio bpcourse ({contender}) / nbgrader, median per round: {ratio:.1f}x "
              "(target >= 10x sandboxed, aim 30x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
