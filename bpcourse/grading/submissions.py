"""Finding submissions and reading them.

``bpcourse grade`` takes notebooks, folders of notebooks, or nbgrader's
``submitted/<student>/<assignment>/<notebook>.ipynb`` layout. Each notebook is
one submission: a student, a course notebook (which set of exercises), a path.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpcourse.exercises import REGISTRY
from bpcourse.syntax import parse

COURSE_NOTEBOOKS = sorted({notebook for notebook, _ in REGISTRY})
_FOR_NOTEBOOK = re.compile(r"""for_notebook\(\s*["']([\w.-]+)["']\s*\)""")


@dataclass(frozen=True)
class Submission:
    student: str
    notebook: str  # course notebook id, e.g. "03_affine_and_activations"; "" when unknown
    path: Path

    @property
    def key(self) -> str:
        return f"{self.student}/{self.notebook or self.path.stem}"


class UnreadableNotebook(Exception):
    """The file is not a notebook that can be read."""


@dataclass
class Notebook:
    """What grading needs of a notebook: its cells (type, source, metadata), in order."""

    cells: list[dict[str, Any]]


def _text(source: Any) -> str:
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    return source if isinstance(source, str) else ""


def read_bytes(path: Path) -> bytes:
    """The bytes of the file at ``path``; UnreadableNotebook when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableNotebook(f"not a readable notebook ({type(exc).__name__}: {exc})") from None


def read_notebook(path: Path) -> Notebook:
    """The cells of the notebook at ``path`` (see ``parse_notebook``)."""
    return parse_notebook(read_bytes(path))


def parse_notebook(content: bytes) -> Notebook:
    """The cells of a notebook given as the bytes of its file, from nbformat 4 or the older format 3.

    Read as plain JSON on purpose: grading needs three fields of each cell, and
    importing nbformat's schema validation costs more than a second per process.
    """
    try:
        raw = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableNotebook(f"not a readable notebook ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise UnreadableNotebook("not a readable notebook (the file holds no JSON object)")
    major = raw.get("nbformat")
    if major == 4 and isinstance(raw.get("cells"), list):
        cells = raw["cells"]
    elif major == 3 and isinstance(raw.get("worksheets"), list):
        # Format 3: cells inside worksheets, code in "input" instead of "source".
        cells = [
            {**cell, "source": cell.get("input", cell.get("source", ""))}
            for sheet in raw["worksheets"]
            if isinstance(sheet, dict)
            for cell in sheet.get("cells", [])
        ]
    else:
        raise UnreadableNotebook(
            f"not a readable notebook (unsupported nbformat {major!r}, or no list of cells)"
        )
    clean = []
    for cell in cells:
        if not isinstance(cell, dict):
            raise UnreadableNotebook("not a readable notebook (a cell is not a JSON object)")
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        clean.append(
            {"cell_type": cell.get("cell_type"), "source": _text(cell.get("source")), "metadata": metadata}
        )
    return Notebook(clean)


# Top-level statements that only define things: a cell made of these is run.
_DEFINING = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
             ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Pass)  # fmt: skip


def defines_only(source: str) -> bool:
    """True for a cell that sets things up: it imports, or it only defines and assigns.

    Demonstrations (plots, printed checks, training loops, timings) are bare
    expressions or loops; the graded functions cannot depend on them, and
    skipping them makes grading fast and keeps a learner's scratch work from
    stalling it. A cell that imports anything is a set-up cell and always runs.
    """
    code = "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = parse(code)
    except SyntaxError:
        return True  # run it, so that the syntax error is reported against the cell
    if any(isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body):
        return True
    return all(isinstance(node, _DEFINING) for node in tree.body)


def cells_to_run(notebook: Notebook, run_all: bool = False) -> list[tuple[int, str]]:
    """(index, source) of the code cells a grading run executes.

    nbgrader's graded test cells are never run: their verdicts are computed
    by the grader. Solution cells always run. Other cells run when they only
    define things (see ``defines_only``), or always with ``run_all``.
    """
    chosen = []
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue
        meta = cell["metadata"].get("nbgrader")
        meta = meta if isinstance(meta, dict) else {}
        if meta.get("grade") and not meta.get("solution"):
            continue
        source = cell["source"]
        if run_all or meta.get("solution") or defines_only(source):
            chosen.append((index, source))
    return chosen


def identify_notebook(path: Path, notebook: Notebook | None) -> str:
    """Which course notebook a file is: by its name, else by its ``for_notebook`` call."""
    for candidate in (path.stem, path.parent.name):
        if candidate in COURSE_NOTEBOOKS:
            return candidate
    if notebook is not None:
        for cell in notebook.cells:
            found = _FOR_NOTEBOOK.search(cell["source"])
            if found and found.group(1) in COURSE_NOTEBOOKS:
                return found.group(1)
    return ""


def _student_of(path: Path) -> str:
    parts = path.parts
    if "submitted" in parts:
        at = len(parts) - 1 - parts[::-1].index("submitted")
        if at + 1 < len(parts) - 1:
            return parts[at + 1]
    if path.stem in COURSE_NOTEBOOKS or path.parent.name in COURSE_NOTEBOOKS:
        # <class>/<student>/<notebook>.ipynb or submitted-style <student>/<assignment>/<file>
        owner = path.parent.parent if path.parent.name in COURSE_NOTEBOOKS else path.parent
        return owner.name or "unknown"
    return path.stem


@dataclass
class Found:
    """What a list of paths holds: submissions, and the paths that give none."""

    submissions: list[Submission]
    missing: list[Path]  # named but not there
    skipped: list[Path]  # files named that are not notebooks (no .ipynb suffix)


def find(paths: Iterable[str | Path]) -> Found:
    """The submissions under the given notebooks and folders, and the paths that hold none.

    A path that does not exist is ``missing``; a file named explicitly that is
    not a notebook (its name does not end in .ipynb) is ``skipped``. In a
    folder only the notebooks are looked at.
    """
    paths = [Path(raw) for raw in paths]
    missing = [p for p in paths if not p.exists()]
    skipped = [p for p in paths if p.exists() and not p.is_dir() and p.suffix.lower() != ".ipynb"]
    rest = [p for p in paths if p not in missing and p not in skipped]
    return Found(discover(rest), missing, skipped)


def discover(paths: Iterable[str | Path]) -> list[Submission]:
    """Every submission under the given notebooks and folders, sorted, without duplicates."""
    found: dict[Path, Submission] = {}
    for raw in paths:
        path = Path(raw)
        files = sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
        for file in files:
            if ".ipynb_checkpoints" in file.parts:
                continue
            resolved = file.resolve()
            if resolved in found:
                continue
            try:
                notebook = read_notebook(file)
            except UnreadableNotebook:
                notebook = None
            found[resolved] = Submission(_student_of(file), identify_notebook(file, notebook), file)
    return sorted(found.values(), key=lambda s: (s.student, s.notebook, str(s.path)))
