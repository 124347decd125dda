"""The ``bpcourse`` command.

``bpcourse demo`` runs the course's worked example through the scalar engine:

    u = x y,   v = u + y,   L = v²

It prints the forward values, then dL/dx and dL/dy three ways (backprop,
central finite differences, the closed forms dL/dx = 2 v y and
dL/dy = 2 v (1 + x)), a gradient-check verdict, and saves a picture of the
graph. ``y`` feeds both ``u`` and ``v``, so its gradient is a sum of two
contributions: the merge rule the picture highlights.

``bpcourse grade PATH... --out DIR`` grades submitted notebooks (see
``bpcourse.grading``). ``bpcourse grade-sample`` grades the repository's sample
class (see ``bpcourse.sample_class``). ``bpcourse report GRADES_DIR`` writes
a class report from the gradebook (see ``bpcourse.grading.report``).
``bpcourse progress [FOLDER]`` shows where a learner stands (see
``bpcourse.grading.progress``). Running ``bpcourse`` with no arguments
lists the commands, then runs the demo. ``bpcourse --version`` prints the
installed version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bpcourse.gradcheck import check_gradient, mismatch, numerical_gradient
from bpcourse.scalar import Value

DEFAULT_X = 2.0
DEFAULT_Y = -1.5
DEFAULT_OUT = "demo-output"


def worked_example(x: float, y: float) -> dict[str, Value]:
    """The graph u = x*y, v = u + y, L = v**2, with every node labelled."""
    nodes = {"x": Value(x), "y": Value(y)}
    nodes["u"] = nodes["x"] * nodes["y"]
    nodes["v"] = nodes["u"] + nodes["y"]
    nodes["L"] = nodes["v"] ** 2
    for name, node in nodes.items():
        node.label = name
    return nodes


def _loss(point: np.ndarray) -> float:
    """L at point = [x, y], computed by the engine's forward pass."""
    return worked_example(float(point[0]), float(point[1]))["L"].data


def _row(name: str, values: Sequence[float]) -> str:
    return f"  {name:<22}" + "".join(f"{v:>16.8f}" for v in values)


def run_demo(x: float, y: float, out_dir: Path) -> int:
    """Print the worked example's report and save its graph; 0 when all gradients agree."""
    nodes = worked_example(x, y)
    loss = nodes["L"]
    loss.backward()

    engine = np.array([nodes["x"].grad, nodes["y"].grad])
    point = np.array([x, y], dtype=np.float64)
    numeric = numerical_gradient(_loss, point)
    v = nodes["v"].data
    closed = np.array([2.0 * v * y, 2.0 * v * (1.0 + x)])

    print("Worked example: u = x*y, v = u + y, L = v**2")
    print()
    print("Forward pass")
    print(f"  x = {x:.6g}")
    print(f"  y = {y:.6g}")
    print(f"  u = x*y    = {nodes['u'].data:.6g}")
    print(f"  v = u + y  = {v:.6g}")
    print(f"  L = v**2   = {loss.data:.6g}")
    print()
    print("Backward pass" + " " * 10 + f"{'dL/dx':>16}{'dL/dy':>16}")
    print(_row("engine (backward)", engine))
    print(_row("finite differences", numeric))
    print(_row("closed form", closed))
    print("  closed forms: dL/dx = 2 v y, dL/dy = 2 v (1 + x)")
    print(f"  max |engine - finite differences| = {np.max(np.abs(engine - numeric)):.3e}")
    print(f"  max |engine - closed form|        = {np.max(np.abs(engine - closed)):.3e}")
    print()

    u_node, v_node = nodes["u"], nodes["v"]
    via_u = u_node.grad * u_node.partials[1]
    via_v = v_node.grad * v_node.partials[1]
    print("y is used twice (by u and by v), so its gradient is the sum of two contributions:")
    print(f"  via u: dL/du * du/dy = {u_node.grad:.6g} * {u_node.partials[1]:.6g} = {via_u:.6g}")
    print(f"  via v: dL/dv * dv/dy = {v_node.grad:.6g} * {v_node.partials[1]:.6g} = {via_v:.6g}")
    print(f"  sum                  = {via_u + via_v:.6g}")
    print()

    result = check_gradient(_loss, point, engine)
    print(str(result))
    closed_agrees = not mismatch(engine, closed).any()
    if not closed_agrees:
        print("the engine's gradient does NOT match the closed forms")
    print()

    from bpcourse.plot import draw_graph

    fig = draw_graph(loss, title=f"u = x·y, v = u + y, L = v²  at x = {x:g}, y = {y:g}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in ("png", "svg"):
        path = out_dir / f"worked_example.{suffix}"
        fig.savefig(path, dpi=150 if suffix == "png" else None)
        written.append(path)
    print("Graph picture (y, used twice, is the merge node):")
    for path in written:
        print(f"  {path}")

    return 0 if result.passed and closed_agrees else 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bpcourse")
    except PackageNotFoundError:
        return "(not installed)"


def commands_overview(parser: argparse.ArgumentParser) -> str:
    """The commands and what each does, as ``bpcourse --help`` lists them."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    width = max(len(choice.dest) for choice in subparsers._choices_actions)
    lines = ["bpcourse COMMAND: backpropagation, taught and graded", "", "commands:"]
    lines += [f"  {c.dest:<{width}}  {c.help}" for c in subparsers._choices_actions]
    lines += ["", "`bpcourse COMMAND --help` says more; `bpcourse --version` gives the version."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpcourse",
        description="Backpropagation, taught and graded. With no command, runs the demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the worked example u = x*y, v = u + y, L = v**2 and draw its graph",
        description=(
            "Run the worked example u = x*y, v = u + y, L = v**2: compare backprop's "
            "gradients with finite differences and the closed forms, and save a picture "
            "of the graph. Exits with status 1 if the gradients disagree."
        ),
    )
    demo.add_argument("--x", type=float, default=DEFAULT_X, help=f"value of x (default {DEFAULT_X})")
    demo.add_argument("--y", type=float, default=DEFAULT_Y, help=f"value of y (default {DEFAULT_Y})")
    demo.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        metavar="DIR",
        help=f"directory for worked_example.png and .svg (default {DEFAULT_OUT})",
    )
    grade = commands.add_parser(
        "grade",
        help="grade submitted notebooks: gradebook, diagnoses, feedback",
        description=(
            "Grade notebooks (files, folders, or nbgrader's submitted/<student>/<assignment>/ layout). "
            "Each submission runs in its own limited process; results are written as each one "
            "finishes, so an interrupted run resumes where it stopped."
        ),
    )
    from bpcourse.grading.command import add_arguments

    add_arguments(grade)
    sample = commands.add_parser(
        "grade-sample",
        help="grade the repository's sample class (examples/class/), then say how to open the course",
        description=(
            "Grade the sample class examples/class/submitted/ (six made-up students, notebooks 01, 03 "
            "and 05) with a fixed seed: the gradebook, what the grader found, the feedback files. "
            "Run it from the repository's root."
        ),
    )
    report = commands.add_parser(
        "report",
        help="a class report for instructors from a gradebook: report.html and a summary",
        description=(
            "Read GRADES_DIR/gradebook.json (written by `bpcourse grade`) and write GRADES_DIR/report.html, "
            "one self-contained page: score distributions, each exercise's outcomes and misconceptions, "
            "the most common misconceptions with the section to revisit, and the students who may need "
            "help. Exits with status 2 when there is no gradebook to read."
        ),
    )
    from bpcourse.grading.report import add_arguments as report_arguments

    report_arguments(report)
    progress = commands.add_parser(
        "progress",
        help="where you stand: your notebooks graded, a picture of the course, the next exercise",
        description=(
            "Grade your own notebooks (default: the course's notebooks/) in the sandbox, print each "
            "exercise's status and the misconception found, write a picture of the course (each exercise "
            "a cell coloured by status) and say which exercise to do next."
        ),
    )
    from bpcourse.grading.progress import add_arguments as progress_arguments

    progress_arguments(progress)
    from bpcourse import sample_class

    sample_class.add_arguments(sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bpcourse`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command is None:
        print(commands_overview(parser))
        print()
        print("No command given: running `bpcourse demo`.")
        print()
        args = parser.parse_args(["demo"])
    if args.command == "demo":
        return run_demo(args.x, args.y, args.out)
    if args.command == "grade":
        from bpcourse.grading.command import run

        return run(args)
    if args.command == "grade-sample":
        from bpcourse.sample_class import run as grade_sample

        return grade_sample(args)
    if args.command == "report":
        from bpcourse.grading.report import run as write_report

        return write_report(args)
    if args.command == "progress":
        from bpcourse.grading.progress import run as show_progress

        return show_progress(args)
    parser.error(f"unknown command {args.command!r}")
    return 2
