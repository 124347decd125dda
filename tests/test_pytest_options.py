"""nbval's options apply when nbval is active, and only then (conftest.py at the root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
ONE_TEST = f"{ROOT / 'tests' / 'test_graph.py'}::test_scalar_engine_order_is_valid"


def _pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(ROOT),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def _notebook(path: Path) -> Path:
    """A notebook whose stored output differs from a fresh run's only by a memory address."""
    cell = new_code_cell("print('at', hex(0x10000000 + id(object()) % 0x1000))")
    cell.outputs = [new_output("stream", name="stdout", text="at 0x10000123\n")]
    cell.execution_count = 1
    nbformat.write(new_notebook(cells=[cell]), str(path))
    return path


def test_without_nbval_pytest_runs(tmp_path):
    done = _pytest("-p", "no:nbval", ONE_TEST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_with_nbval_notebooks_are_compared_sanitized(tmp_path):
    notebook = _notebook(tmp_path / "addresses.ipynb")
    done = _pytest(str(notebook), ONE_TEST)
    # the notebook's cell ran under nbval and passed only because 0x... was sanitized
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    (tmp_path / "none.cfg").write_text("")
    unsanitized = _pytest("--nbval-sanitize-with", str(tmp_path / "none.cfg"), str(notebook), ONE_TEST)
    assert unsanitized.returncode == 1  # an option given on the command line wins: nothing sanitized
    assert "1 failed, 1 passed" in unsanitized.stdout
    skipped = _pytest("-p", "no:nbval", str(tmp_path), ONE_TEST)
    assert skipped.returncode == 0 and "1 passed" in skipped.stdout  # the notebook is not collected
