"""grader/README.md as an instructor follows it: its scripts, its local trial, what git ignores."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "grader" / "README.md").read_text(encoding="utf-8")
SCRIPTS = ROOT / "grader" / "gradescope"


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", GUIDE, re.S)


def test_the_guide_shows_the_gradescope_scripts_as_they_are():
    shown = {block for block in _blocks() if block.startswith("#!/usr/bin/env bash\n")}
    assert shown == {(SCRIPTS / name).read_text(encoding="utf-8") for name in ("setup.sh", "run_autograder")}


def test_the_local_trial_runs_as_written(tmp_path):
    """The "try it on your own machine" commands; /tmp/ag and .venv/bin/bpcourse are this test's."""
    (trial,) = [block for block in _blocks() if "AUTOGRADER_ROOT=/tmp/ag" in block]
    assert "submitted/alice" not in trial
    command = tmp_path / "bpcourse"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bpcourse "$@"\n')
    command.chmod(0o755)
    script = trial.replace("/tmp/ag", str(tmp_path / "ag")).replace(".venv/bin/bpcourse", str(command))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,  # the guide says: from the repository root
        env=dict(os.environ, TMPDIR=str(scratch)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "ag" / "results" / "results.json").read_text(encoding="utf-8")
    assert json.loads(text)["score"] == 10  # ada: full marks on notebook 01
    assert done.stdout.endswith(text)  # what the last command shows
    assert list(scratch.iterdir()) == []  # run_autograder removed its temporary folder


def test_run_autograder_removes_its_temporary_folder_when_grading_fails(tmp_path):
    root = tmp_path / "ag"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "answers.py").write_text("x = 1")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = tmp_path / "bpcourse"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bpcourse "$@"\n')
    command.chmod(0o755)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), BPCOURSE=str(command), TMPDIR=str(scratch))
    done = subprocess.run(
        [str(SCRIPTS / "run_autograder")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2  # no notebook: the learner is told so in results.json
    assert list(scratch.iterdir()) == []


def test_the_zip_recipe_leaves_nothing_for_git():
    assert "mkdir -p autograder" in GUIDE and "zip ../autograder.zip" in GUIDE
    done = subprocess.run(
        ["git", "check-ignore", "autograder/setup.sh", "autograder.zip"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["autograder/setup.sh", "autograder.zip"], done.stderr
