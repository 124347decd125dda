"""Student notebooks from the instructor notebooks, through nbgrader.

``solutions/NN_name.ipynb`` is the instructor version of a notebook (nbgrader's
source format, see ``solutions/AUTHORING.md``). ``notebooks/NN_name.ipynb`` is
what learners open: solutions replaced by stubs, hidden tests removed, outputs
cleared. The second is always generated from the first, never edited::

    python -m bpcourse.authoring generate              # writes notebooks/
    python -m bpcourse.authoring generate --out DIR    # writes DIR/ instead
    python -m bpcourse.authoring execute [NN ...]      # reruns solutions/ and stores their outputs

Each notebook is its own nbgrader assignment (assignment id = notebook stem).
The course directory ``grader/`` is copied to a temporary folder, every
solution notebook is placed at ``source/<id>/<id>.ipynb`` there, and nbgrader's
own ``generate_assignment`` produces ``release/<id>/<id>.ipynb``; nothing in
``grader/`` is touched. The released notebooks are then made deterministic
(volatile metadata such as execution timings and widget state dropped) so that
regenerating unchanged sources rewrites identical bytes, and lose the nbval-*
tags that only steer the test suite. nbgrader's cell metadata and checksums are
kept: autograding needs them.

nbgrader runs in a child process (one for all notebooks, since importing it is
slow), with the Jupyter configuration of the user's home ignored, so that only
``grader/nbgrader_config.py`` applies.

The outputs stored in the solution notebooks are what the test suite compares
a fresh run with (nbval). ``execute`` reruns solution notebooks top to bottom
in a kernel of this very Python, from ``solutions/``, and writes them back with
their new outputs: cell ids, nbgrader metadata and tags are kept, execution
timings are not recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

COURSE_DIR = "grader"
CONFIG_FILE = "nbgrader_config.py"
SOLUTIONS_DIR = "solutions"
STUDENT_DIR = "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

# Metadata that changes on every run of a notebook and means nothing to a learner.
VOLATILE_NOTEBOOK_METADATA = ("widgets", "toc", "varInspector", "execution")
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "trusted", "widgets")

# Cell tags that only steer the test suite (nbval-ignore-output, nbval-skip, ...).
TEST_ONLY_TAG_PREFIX = "nbval-"

# Text that must never reach a student notebook.
# "Rubric (instructor only)" heads the rubric of a written answer, which nbgrader clears with its cell.
LEAKS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
         "Rubric (instructor only)")  # fmt: skip


class AuthoringError(RuntimeError):
    """The student notebooks could not be generated."""


# -- where things are ----------------------------------------------------------------------------
def _is_root(path: Path) -> bool:
    return (path / SOLUTIONS_DIR).is_dir() and (path / COURSE_DIR / CONFIG_FILE).is_file()


def find_root(root: Path | str | None = None) -> Path:
    """The repository root: the folder holding ``solutions/`` and ``grader/nbgrader_config.py``.

    An explicit ``root`` must be such a folder. Otherwise the current working
    directory and its parents are tried, then the source tree this module was
    loaded from (an editable install).
    """
    if root is not None:
        path = Path(root).resolve()
        if not _is_root(path):
            raise AuthoringError(
                f"{path} is not the bpcourse repository root: it should hold {SOLUTIONS_DIR}/ "
                f"and {COURSE_DIR}/{CONFIG_FILE}"
            )
        return path
    cwd = Path.cwd().resolve()
    candidates = [cwd, *cwd.parents, Path(__file__).resolve().parents[1]]
    for path in candidates:
        if _is_root(path):
            return path
    raise AuthoringError(
        f"cannot find the bpcourse repository (a folder with {SOLUTIONS_DIR}/ and "
        f"{COURSE_DIR}/{CONFIG_FILE}) at or above {cwd}: run from the repository root or pass --root"
    )


def solution_notebooks(root: Path) -> list[Path]:
    """The instructor notebooks ``solutions/NN_*.ipynb``, in course order."""
    return sorted((root / SOLUTIONS_DIR).glob(NOTEBOOK_GLOB))


# -- making a released notebook deterministic ----------------------------------------------------
def normalize(student: nbformat.NotebookNode, source_cells: list[dict[str, Any]]) -> nbformat.NotebookNode:
    """``student`` without outputs, volatile metadata or nbval tags, with the cell ids of the source.

    nbgrader keeps cells one for one in ``generate_assignment``, so cell ``i`` of
    the student version is cell ``i`` of the source. ``source_cells`` are the
    source's cells as stored (plain JSON: ``nbformat.read`` would invent random
    ids for cells without one). Cells without an id get one derived from their
    position, so that two runs agree.
    """
    if len(student.cells) != len(source_cells):
        raise AuthoringError(
            f"nbgrader produced {len(student.cells)} cells from {len(source_cells)}: "
            "header/footer cells are not supported"
        )
    for key in VOLATILE_NOTEBOOK_METADATA:
        student.metadata.pop(key, None)
    language = student.metadata.get("language_info")
    if isinstance(language, dict):
        language.pop("version", None)  # the Python that last ran the source, not a requirement
    uses_ids = (student.nbformat, student.nbformat_minor) >= (4, 5)
    for index, (cell, original) in enumerate(zip(student.cells, source_cells, strict=True)):
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        tags = [tag for tag in cell.metadata.get("tags", []) if not tag.startswith(TEST_ONLY_TAG_PREFIX)]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if uses_ids:
            cell["id"] = original.get("id") or f"cell-{index:03d}"
        else:
            cell.pop("id", None)
    return student


def _check_no_leaks(notebook: nbformat.NotebookNode, name: str) -> None:
    for index, cell in enumerate(notebook.cells):
        for marker in LEAKS:
            if marker in cell.source:
                raise AuthoringError(
                    f"{name}, cell {index}: the student version still contains {marker!r}; "
                    "is the cell missing its nbgrader solution/grade metadata?"
                )


# -- running nbgrader ----------------------------------------------------------------------------
def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])  # for the `alembic` nbgrader may run
    env["JUPYTER_NO_CONFIG"] = "1"  # only the course's nbgrader_config.py applies
    env.pop("PYTHONSTARTUP", None)
    return env


def _release_with_nbgrader(course: Path, assignment_ids: Sequence[str]) -> None:
    """Run ``generate_assignment`` for each id in ``course``, in a child process."""
    command = [sys.executable, "-m", "bpcourse.authoring", "_nbgrader", str(course), *assignment_ids]
    done = subprocess.run(
        command, cwd=course, env=_child_environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AuthoringError(
            f"nbgrader generate_assignment failed (exit code {done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}".rstrip()
        )


def _read_alembic_head_in_process() -> None:
    """Let nbgrader stamp its new (throwaway) gradebook without starting ``alembic``.

    nbgrader learns the schema revision by running the ``alembic heads`` command,
    a second Python process that takes seconds to start. The same answer is read
    here from nbgrader's migration scripts. If this nbgrader is laid out
    differently, its own way is left in place (it works too, only slower).
    """
    try:
        import nbgrader.api
        from alembic.script import ScriptDirectory

        scripts = Path(nbgrader.api.__file__).parent / "alembic"
        heads = ScriptDirectory(str(scripts)).get_heads()
    except Exception:
        return
    if len(heads) == 1 and hasattr(nbgrader.api, "get_alembic_version"):
        nbgrader.api.get_alembic_version = lambda: heads[0]


def _nbgrader_child(course: Path, assignment_ids: Sequence[str]) -> int:
    """In the child process: nbgrader's own generate_assignment, through its Python API."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    _read_alembic_head_in_process()
    config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    failed = 0
    for assignment_id in assignment_ids:
        result = api.generate_assignment(assignment_id, force=True, create=True)
        if not result["success"]:
            failed += 1
            print(f"== {assignment_id}: generate_assignment failed", file=sys.stderr)
            print(result.get("log", ""), file=sys.stderr)
            print(result.get("error", ""), file=sys.stderr)
    return 1 if failed else 0


# -- storing fresh outputs in the solutions -----------------------------------------------------
def kernel_of_this_python() -> tuple[str, Any]:
    """A kernel name and manager class that start ipykernel in this very interpreter.

    The device of nbval's ``--nbval-current-env``: the kernel runs ``sys.executable -m
    ipykernel_launcher``, whatever kernels are installed.
    """
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    name = "bpcourse-this-python"

    class Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            if kernel_name == name:
                spec = ipykernel.kernelspec.get_kernel_dict()
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)
            return super().get_kernel_spec(kernel_name)

    class Manager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_kernel_spec_manager(self) -> KernelSpecManager:
            return Specs(data_dir=self.data_dir)

    return name, Manager


def execute(names: Sequence[str] = (), root: Path | str | None = None, timeout: int = 600) -> list[Path]:
    """Rerun solution notebooks and store their outputs in place; return the paths written.

    ``names`` selects notebooks by stem or by number (``"03"``); all of them by default.
    A cell that raises stops the run with an ``AuthoringError`` naming it, and
    nothing is written for that notebook.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    repo = find_root(root)
    chosen = [p for p in solution_notebooks(repo) if not names or p.stem in names or p.stem[:2] in names]
    if names and not chosen:
        raise AuthoringError(f"no solution notebook matches {list(names)}")
    kernel_name, manager = kernel_of_this_python()
    written = []
    for path in chosen:
        notebook = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        client = NotebookClient(
            notebook,
            kernel_name=kernel_name,
            kernel_manager_class=manager,
            timeout=timeout,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            client.execute()
        except CellExecutionError as exc:
            raise AuthoringError(f"{path.name}: a cell raised; nothing written\n{exc}") from exc
        for cell in notebook.cells:
            for key in VOLATILE_CELL_METADATA:
                cell.metadata.pop(key, None)
        nbformat.validate(notebook)
        nbformat.write(notebook, path)
        written.append(path)
    return written


# -- the command ---------------------------------------------------------------------------------
def generate(out_dir: Path | None = None, root: Path | str | None = None) -> list[Path]:
    """Write the student version of every ``solutions/NN_*.ipynb``; return the written paths.

    ``out_dir`` defaults to ``notebooks/`` of the repository. Student notebooks
    in ``out_dir`` whose solution no longer exists are removed.
    """
    repo = find_root(root)
    sources = solution_notebooks(repo)
    if not sources:
        raise AuthoringError(f"no solution notebooks ({NOTEBOOK_GLOB}) in {repo / SOLUTIONS_DIR}")
    out = Path(out_dir) if out_dir is not None else repo / STUDENT_DIR
    ids = [path.stem for path in sources]

    with tempfile.TemporaryDirectory(prefix="bpcourse-nbgrader-") as tmp:
        course = Path(tmp) / "course"
        (course / "source").mkdir(parents=True)
        shutil.copy2(repo / COURSE_DIR / CONFIG_FILE, course / CONFIG_FILE)
        for path in sources:
            target = course / "source" / path.stem
            target.mkdir()
            shutil.copyfile(path, target / path.name)
        _release_with_nbgrader(course, ids)

        students = []
        for path in sources:
            released = course / "release" / path.stem / path.name
            if not released.is_file():
                raise AuthoringError(f"nbgrader did not write {released.relative_to(course)}")
            stored = json.loads(path.read_text(encoding="utf-8"))
            student = normalize(nbformat.read(released, as_version=4), stored["cells"])
            _check_no_leaks(student, path.name)
            nbformat.validate(student)
            students.append((path.name, student))

    # Nothing is written unless every notebook made it through.
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, student in students:
        nbformat.write(student, out / name)
        written.append(out / name)

    for stale in sorted(set(out.glob(NOTEBOOK_GLOB)) - set(written)):
        stale.unlink()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bpcourse.authoring",
        description="Generate the student notebooks (notebooks/) from the instructor notebooks "
        "(solutions/) with nbgrader.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{generate,execute}")
    gen = commands.add_parser("generate", help="write the student notebooks")
    gen.add_argument("--out", type=Path, default=None, help="output folder (default: notebooks/)")
    gen.add_argument("--root", type=Path, default=None, help="repository root (default: found from here)")
    run = commands.add_parser("execute", help="rerun solution notebooks and store their outputs")
    run.add_argument("names", nargs="*", help="notebook stems or numbers (default: all)")
    run.add_argument("--root", type=Path, default=None, help="repository root (default: found from here)")
    child = commands.add_parser("_nbgrader")  # internal: the child process of generate
    child.add_argument("course", type=Path)
    child.add_argument("ids", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "_nbgrader":
        return _nbgrader_child(args.course, args.ids)
    try:
        if args.command == "execute":
            written = execute(args.names, args.root)
        else:
            written = generate(args.out, args.root)
    except AuthoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
