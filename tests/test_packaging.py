"""What the wheel and the sdist carry: the package, never the answers.

The instructor notebooks (``solutions/``) hold every exercise solved, and the
sample class (``examples/class/submitted/``) holds learners' work: neither
may ship in a distribution a learner can ``pip download``. Both archives are
built here offline, from a copy of the project (so the working tree gets no
build folders), and every member is checked by its path and by its content,
which also catches a notebook copied into the package under another name.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRIVATE = ("solutions", "examples/class/submitted")
# Left out of the copy the archives are built from: what a build or a run leaves behind.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".ruff_cache", ".hypothesis", "grades", "demo-output", "test-artifacts",
)  # fmt: skip


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def private_files() -> dict[str, str]:
    """path -> sha256 of every instructor notebook, instructor file and submission."""
    return {
        path.relative_to(ROOT).as_posix(): _digest(path.read_bytes())
        for folder in PRIVATE
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.stat().st_size > 0
    }


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """{"wheel": {member: bytes}, "sdist": {member relative to its top folder: bytes}}."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = work / "dist"
    # The wheel as grader/README.md builds it for Gradescope; the sdist with `build`.
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(out)],
         source)  # fmt: skip
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), "."], source)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_members = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    with tarfile.open(sdist) as archive:
        sdist_members = {
            member.name.split("/", 1)[1]: archive.extractfile(member).read()
            for member in archive.getmembers()
            if member.isfile() and "/" in member.name
        }
    return {"wheel": wheel_members, "sdist": sdist_members}


def test_the_private_files_are_found():
    # Guards the test itself: with nothing to look for, it would pass for any archive.
    paths = private_files()
    assert "solutions/01_scalar_graphs.ipynb" in paths
    assert "examples/class/submitted/ada/01_scalar_graphs/01_scalar_graphs.ipynb" in paths


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_no_instructor_notebook_or_submission_ships(distributions, kind):
    members = distributions[kind]
    assert "bpcourse/grading/runner.py" in members, sorted(members)[:20]  # it is the package
    private = {digest: path for path, digest in private_files().items()}
    by_path = [name for name in members if name.startswith(tuple(f"{folder}/" for folder in PRIVATE))]
    by_content = [f"{name} (a copy of {private[_digest(data)]})" for name, data in members.items()
                  if _digest(data) in private]  # fmt: skip
    assert by_path == [] and by_content == [], f"the {kind} ships private files: {by_path + by_content}"


def test_the_wheel_holds_no_notebook_at_all(distributions):
    assert [name for name in distributions["wheel"] if name.endswith(".ipynb")] == []
