"""What a rerun does with the results already on disk, and what it checks at the end.

Before grading, ``sweep`` looks at every file under ``OUT/results/``. A result
is used again only if it passes ``check_result`` and names the same notebook
content (sha256) and the same seed as this run would grade. Anything else is
moved to ``OUT/results-set-aside/<time>/`` with its reason in ``reasons.txt``
(never deleted: an instructor may want to see what was there) and its
submission is graded again: a result cut short by a crash, edited by hand,
written in another format, graded with another seed, left by a notebook that
has changed since, or belonging to no submission of this run.

After grading, ``changed_inputs`` hashes every notebook again: one whose bytes
differ from what its result names (or that is gone) changed under the run, and
its gradebook row describes content that is no longer there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpcourse.grading.results import InvalidResult, file_hash, read_result, result_path, short
from bpcourse.grading.submissions import Submission

SET_ASIDE = "results-set-aside"


@dataclass(frozen=True)
class SetAside:
    """A file moved out of ``OUT/results/``: what it was, why, where it is now."""

    name: str  # its path under OUT/results/
    reason: str
    moved_to: Path
    submission: str | None  # the submission graded again in its place, if any


@dataclass
class Sweep:
    """What ``sweep`` decided about the files under ``OUT/results/``."""

    reusable: dict[Submission, dict[str, Any]] = field(default_factory=dict)  # results to keep
    set_aside: list[SetAside] = field(default_factory=list)
    folder: Path | None = None  # where this run set files aside (None: nothing was)
    # Files that could not be moved, and the submission each belongs to (None: a stray file).
    # Such a submission is not graded again: its new result would replace the file.
    blocked: list[tuple[Submission | None, str]] = field(default_factory=list)


def _reuse_problem(result: dict[str, Any], current: str | None, seed: int | None) -> str | None:
    """Why a well-formed result of this submission cannot stand for it in this run, or None."""
    if current is None:
        return "the notebook cannot be read now, so the result cannot be matched to it"
    if result["sha256"] != current:
        return (
            f"it names other notebook content (sha256 {short(result['sha256'])}; the notebook is "
            f"{short(current)}): the notebook changed since, or the result is not its own"
        )
    if result["seed"] != seed:
        return f"it was graded with {_policy(result['seed'])}, this run uses {_policy(seed)}"
    return None


def _policy(seed: int | None) -> str:
    return "inputs drawn from the notebook's content hash" if seed is None else f"--seed {seed}"


class _Mover:
    """Moves files into one folder of ``OUT/results-set-aside/``, created on first use."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder: Path | None = None

    def _make_folder(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for attempt in range(1000):  # two runs in the same second get two folders
            folder = self.out / SET_ASIDE / (stamp if attempt == 0 else f"{stamp}-{attempt}")
            try:
                folder.mkdir(parents=True)
                return folder
            except FileExistsError:
                continue
        raise FileExistsError(f"no free folder name under {self.out / SET_ASIDE}")

    def move(self, file: Path, reason: str) -> Path:
        """Move ``file`` (under OUT/results/) aside; its reason is written first, so none goes without."""
        if self.folder is None:
            self.folder = self._make_folder()
        name = file.relative_to(self.out / "results").as_posix()
        with open(self.folder / "reasons.txt", "a", encoding="utf-8") as reasons:
            reasons.write(f"{name}: {reason}\n")
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
        return target


def _stray_reason(file: Path) -> str:
    if file.name.startswith(".") and file.name.endswith(".part"):
        return "an unfinished write of a run that was interrupted"
    return "it is not the result of any submission in this run"


def sweep(out: Path, submissions: Sequence[Submission], seed: int | None) -> Sweep:
    """Keep the results this run can use; set every other file under OUT/results/ aside."""
    expected = {result_path(out, s): s for s in submissions}
    found = Sweep()
    mover = _Mover(out)
    files = sorted(p for p in (out / "results").rglob("*") if p.is_file() or p.is_symlink())
    for file in files:
        submission = expected.get(file)
        if submission is None:
            reason = _stray_reason(file)
        else:
            try:
                result = read_result(file, submission)
            except InvalidResult as exc:
                reason = f"not a result that can be used: {exc}"
            else:
                problem = _reuse_problem(result, file_hash(submission.path), seed)
                if problem is None:
                    found.reusable[submission] = result
                    continue
                reason = f"out of date: {problem}"
        try:
            moved_to = mover.move(file, reason)
        except OSError as exc:
            found.blocked.append((submission, f"{file} ({type(exc).__name__}: {exc})"))
            continue
        key = submission.key if submission is not None else None
        found.set_aside.append(SetAside(file.relative_to(out / "results").as_posix(), reason, moved_to, key))
    found.folder = mover.folder
    return found


# -- after the run --------------------------------------------------------------------------------------
def changed_inputs(results: dict[Submission, dict[str, Any]]) -> list[str]:
    """Each submission whose notebook is no longer what its result names: "<key>: what happened"."""
    changes = []
    for submission, result in results.items():
        now = file_hash(submission.path)
        if now == result["sha256"]:
            continue
        if now is None:
            what = f"the notebook disappeared or cannot be read any more ({submission.path})"
        elif result["sha256"] is None:
            what = f"the notebook could not be read when it was graded and can be now ({submission.path})"
        else:
            what = (
                f"the notebook changed while the class was graded (graded {short(result['sha256'])}, "
                f"now {short(now)}: {submission.path})"
            )
        changes.append(f"{submission.key}: {what}")
    return changes
