"""``bpcourse grade-sample``: grade the repository's sample class, then point to the course.

``examples/class/submitted/`` holds six made-up students' submissions of notebooks
01, 03 and 05 (and 08, 09 and 10 for two of them) in nbgrader's layout (written by
``examples/class/make_class.py``; ``examples/class/README.md`` says what each student did).
This command grades them exactly as ``bpcourse grade`` would grade a real class, with a fixed seed
and a short time limit per call, prints the gradebook and what the grader
found wrong, and ends with how to open the course in JupyterLab.

The class is not part of the installed package: it is found in the current
folder (the repository's root) or, for an editable install, next to the
package's source; or it is given as an argument.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

SAMPLE = Path("examples") / "class" / "submitted"
SEED = 0
CALL_SECONDS = 3.0  # every correct answer returns in milliseconds; the endless loop stops after this


class SampleClassNotFound(Exception):
    """No sample class where it was looked for; the message says what to do."""


def _source_root() -> Path:
    """The folder above the package: the repository, when the package is installed in editable mode."""
    return Path(__file__).resolve().parent.parent


def locate(explicit: Path | None = None) -> tuple[Path, Path | None]:
    """(the sample class's submitted/ folder, the repository root holding it, or None if unknown).

    Looked for in the current folder, then next to the package's source (an editable install).
    """
    if explicit is not None:
        if not explicit.is_dir():
            raise SampleClassNotFound(f"{explicit} is not a folder")
        root = explicit.resolve().parent.parent.parent  # <root>/examples/class/submitted
        return explicit, root if (root / "notebooks").is_dir() else None
    if SAMPLE.is_dir():
        return SAMPLE, Path.cwd()
    source_root = _source_root()
    if (source_root / SAMPLE).is_dir():
        return source_root / SAMPLE, source_root
    raise SampleClassNotFound(
        f"there is no sample class here ({Path.cwd()} has no {SAMPLE.as_posix()}/ folder).\n"
        "Run `bpcourse grade-sample` from the root of the bpcourse repository (where README.md is), "
        f"or give the folder: bpcourse grade-sample path/to/{SAMPLE.as_posix()}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        metavar="CLASS",
        help=f"the sample class's submitted/ folder (default: ./{SAMPLE.as_posix()})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where results, gradebook.csv/.json and feedback/ go (default: grades/ next to submitted/)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the random inputs (default {SEED})")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at once (default: the number of cores)",
    )


def run(args: argparse.Namespace) -> int:
    """Grade the sample class afresh; print the gradebook, the diagnoses and the way into the course."""
    try:
        folder, root = locate(args.folder)
    except SampleClassNotFound as exc:
        print(f"bpcourse grade-sample: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else folder.parent / "grades"
    from bpcourse.grading import command
    from bpcourse.grading.gradebook import read_gradebook
    from bpcourse.grading.isolation import INSTALL_HINT
    from bpcourse.grading.server import can_isolate
    from bpcourse.grading.submissions import discover

    found = discover([folder])
    if not found:
        print(f"bpcourse grade-sample: no notebooks under {folder}", file=sys.stderr)
        return 2
    students = len({s.student for s in found})
    who = f"{students} student{'s' if students != 1 else ''}"
    print(f"Grading the sample class in {folder}/: {who}, {len(found)} notebooks.")
    if (folder.parent / "README.md").exists():
        print(f"What each student did: {folder.parent / 'README.md'}")
    print()

    grade = argparse.ArgumentParser(prog="bpcourse grade")
    command.add_arguments(grade)
    options = [str(folder), "--out", str(out), "--seed", str(args.seed), "--force"]
    options += ["--workers", str(max(1, args.workers)), "--call-timeout", f"{CALL_SECONDS:g}"]
    if not can_isolate():
        # The sample class is the course's own made-up code, so it may run without a sandbox;
        # a real class may not (bpcourse grade refuses).
        print("No sandbox here (bubblewrap is not installed, or user namespaces are off, and this is")
        print("not root): the sample class is graded with --no-sandbox. To grade a real class,")
        print(f"{INSTALL_HINT.split(', or grade as root')[0]}.")
        print()
        options.append("--no-sandbox")
    status = command.run(grade.parse_args(options))

    gradebook = out / "gradebook.json"
    if gradebook.exists():
        print()
        print(diagnoses(read_gradebook(gradebook)[1]))
    print()
    print(course_hint(root))
    return status


def _short(notebook: str) -> str:
    return notebook.split("_", 1)[0] if notebook else "?"


def diagnoses(results: list[dict[str, Any]], width: int = 100) -> str:
    """What the grader found: each exercise that lost points other than as a stub, and notebook problems.

    A classic mistake is shown by its diagnosis alone (what is wrong with the numbers
    is in the gradebook); outputs with the same message share a line.
    """
    from bpcourse.exercises.written import BY_HAND
    from bpcourse.grading.gradebook import TAMPERING_LABEL, readable, tampering

    lines = [
        "What the grader found (stubs are only in the table; the full text of every message is in",
        "gradebook.csv and in each student's feedback file):",
    ]
    for r in sorted(results, key=lambda r: (r["student"], r["notebook"])):
        where = f"  {r['student']} {_short(r['notebook'])}"
        for problem in r["problems"]:
            lines += _wrapped(f"{where} notebook: {readable(problem)}", width)
        for e in r["exercises"]:
            if e["status"] in ("passed", "not implemented", BY_HAND):
                continue
            by_message: dict[str, list[str]] = {}
            for line in e["lines"]:
                if not line["ok"]:
                    message = readable(
                        line["message"].split(" — ", 1)[-1]
                    )  # the diagnosis, when there is one
                    by_message.setdefault(message, []).append(line["what"])
            caught = f", {TAMPERING_LABEL}" if tampering(e) else ""
            head = f"{where} {e['exercise']} ({e['score']:g}/{e['max_score']:g}{caught}):"
            for message, whats in by_message.items():
                lines += _wrapped(f"{head} {', '.join(whats)}: {message}", width)
                head = " " * 6
    return "\n".join(lines)


def _wrapped(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=" " * 8, drop_whitespace=True)


def _command(name: str) -> str:
    """How to run ``name`` from here: .venv/bin/name for the venv this runs in, when it is not on PATH."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        return name
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        pass
    on_path = shutil.which(name)
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return name
    return str(script)


def course_hint(root: Path | None) -> str:
    """How to open the course in JupyterLab, and in which order to work through it."""
    notebooks = sorted(p.stem for p in (root / "notebooks").glob("[0-9]*.ipynb")) if root else []
    folder = "notebooks/"
    if root is not None and root.resolve() != Path.cwd().resolve():
        folder = f"{root / 'notebooks'}/"
    lines = ["Open the course in JupyterLab:", "", f"  {_command('jupyter')} lab {folder}", ""]
    if notebooks:
        lines.append("and work through the notebooks in order (each one's exercises check themselves):")
        lines += textwrap.wrap(" → ".join(notebooks), 96, initial_indent="  ", subsequent_indent="  ")
    lines += ["", f"`{_command('bpcourse')} demo` runs the course's worked example from the command line."]
    return "\n".join(lines)
