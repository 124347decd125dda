"""One submission's result on disk: its format, where it lives, and when it can be trusted.

A result is what ``grade_submission`` returns, written as
``OUT/results/<student>/<notebook>.json``. It names what was graded by the
sha256 of the notebook's bytes (``sha256``) and how (``version``, the format
of this file; ``seed``, the inputs' seed or None when they were drawn from
that hash; ``sandbox``, the isolation used). A result read back from disk is
used only after ``check_result`` found it well formed, consistent with the
exercise registry and filed where its submission's result belongs: a file
that is damaged, edited or left by someone else must never become a grade.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpcourse.exercises import by_notebook
from bpcourse.exercises.core import STATUSES
from bpcourse.exercises.written import BY_HAND, written_by_notebook
from bpcourse.grading.submissions import COURSE_NOTEBOOKS, Submission

# The format of a result file. Version 2 added sha256, seed and sandbox; a result
# of another version is graded again rather than read with the wrong meaning.
RESULT_VERSION = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TOLERANCE = 1e-9  # totals are sums of the same floats; this only absorbs a re-serialization


class InvalidResult(ValueError):
    """A stored result that cannot be used; the message says why, in words."""


def content_hash(content: bytes) -> str:
    """The sha256 of a notebook's bytes, in hex: the name of exactly what was graded."""
    return hashlib.sha256(content).hexdigest()


def file_hash(path: Path) -> str | None:
    """The content hash of the file at ``path`` as it is now; None when it cannot be read."""
    try:
        return content_hash(Path(path).read_bytes())
    except OSError:
        return None


def short(digest: str | None) -> str:
    """A hash as people read it in a message: its first 12 digits."""
    return "none (the notebook could not be read)" if digest is None else f"{digest[:12]}…"


def grader_version() -> str:
    """The installed version of this package (the grader's version), or "unknown"."""
    try:
        return importlib.metadata.version("bpcourse")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# -- where results live ------------------------------------------------------------------------------
def safe_name(name: str) -> str:
    """``name`` as one path component: letters, digits, "-", "_" and "." only."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def result_path(out: Path, submission: Submission) -> Path:
    """Where the result of ``submission`` is kept under the output folder ``out``."""
    return (
        out
        / "results"
        / safe_name(submission.student)
        / f"{safe_name(submission.notebook or submission.path.stem)}.json"
    )


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name does not end in .json, so readers of results never see a partial file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- checking a result ---------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    # bool is an int to Python, and json.loads accepts NaN and Infinity: neither is a score.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_sha256(value: Any) -> bool:
    return value is None or (isinstance(value, str) and _SHA256.fullmatch(value) is not None)


def _is_seed(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


# Every field of a result and the test its value must pass.
RESULT_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "version": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "student": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "notebook": ("a string", lambda v: isinstance(v, str)),
    "path": ("a string", lambda v: isinstance(v, str)),
    "sha256": ("64 lowercase hex digits or null", _is_sha256),
    "seed": ("an integer or null", _is_seed),
    "sandbox": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "problems": ("a list of strings", _is_str_list),
    "exercises": ("a list", lambda v: isinstance(v, list)),
    "score": ("a finite number", _is_number),
    "max_score": ("a finite number", _is_number),
    "seconds": ("a number of seconds", lambda v: _is_number(v) and v >= 0),
}
EXERCISE_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "exercise": ("a string", lambda v: isinstance(v, str)),
    # null: a written answer, to grade by hand (bpcourse.exercises.written)
    "score": ("a finite number or null", lambda v: v is None or _is_number(v)),
    "max_score": ("a finite number", _is_number),
    "status": (f"one of {', '.join(STATUSES)}", lambda v: v in STATUSES),
    "lines": ("a list", lambda v: isinstance(v, list)),
}
LINE_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "what": ("a string", lambda v: isinstance(v, str)),
    "ok": ("true or false", lambda v: isinstance(v, bool)),
    "message": ("a string", lambda v: isinstance(v, str)),
}


def _check_fields(value: Any, fields: dict[str, tuple[str, Callable[[Any], bool]]], where: str) -> None:
    """``value`` is an object with exactly ``fields``, each passing its test."""
    if not isinstance(value, dict):
        raise InvalidResult(f"{where} is not a JSON object")
    missing = [name for name in fields if name not in value]
    if missing:
        raise InvalidResult(f"{where} has no {', '.join(missing)}")
    unexpected = sorted(set(value) - set(fields))
    if unexpected:
        raise InvalidResult(f"{where} has fields a result does not have: {', '.join(unexpected)}")
    for name, (wanted, test) in fields.items():
        if not test(value[name]):
            raise InvalidResult(f"{where}: {name} is not {wanted} ({json.dumps(value[name])[:60]})")


def _check_exercise(entry: Any, points: float, written: bool = False) -> None:
    """One exercise's verdict: well formed, worth the registry's points, score within them.

    A ``written`` answer has no score and the status "to grade by hand"; nothing else may.
    """
    _check_fields(entry, EXERCISE_FIELDS, "an exercise")
    name = entry["exercise"]
    for line in entry["lines"]:
        _check_fields(line, LINE_FIELDS, f"a line of {name}")
    if entry["max_score"] != points:
        raise InvalidResult(f"{name} is worth {points:g} points, the result says {entry['max_score']:g}")
    if written != (entry["status"] == BY_HAND) or written != (entry["score"] is None):
        kind = "a written answer, graded by hand with no score" if written else "scored by the grader"
        said = f"{entry['status']} with score {entry['score']}"
        raise InvalidResult(f"{name} is {kind}; the result says {said}")
    if written:
        return
    if not 0 <= entry["score"] <= entry["max_score"]:
        raise InvalidResult(f"{name} scores {entry['score']:g}, outside 0 to {entry['max_score']:g}")
    if entry["status"] == "passed" and (
        abs(entry["score"] - entry["max_score"]) > _TOLERANCE
        or not all(line["ok"] for line in entry["lines"])
    ):
        raise InvalidResult(f"{name} is marked passed without all its points and all its checks")


def _check_exercises(result: dict[str, Any]) -> None:
    """Exactly the registry's exercises of the notebook, in its order, each consistent."""
    notebook = result["notebook"]
    if notebook and notebook not in COURSE_NOTEBOOKS:
        raise InvalidResult(f"the course has no notebook {notebook!r}")
    registry = {e.name: e.points for e in by_notebook(notebook)} if notebook else {}
    by_hand = {w.grade_id: w.points for w in written_by_notebook(notebook)} if notebook else {}
    registry.update(by_hand)
    names = [entry.get("exercise") if isinstance(entry, dict) else None for entry in result["exercises"]]
    if names != list(registry):
        raise InvalidResult(
            f"its exercises ({', '.join(map(str, names)) or 'none'}) are not those of "
            f"{notebook or 'an unidentified notebook'} ({', '.join(registry) or 'none'})"
        )
    for entry in result["exercises"]:
        _check_exercise(entry, registry[entry["exercise"]], entry["exercise"] in by_hand)


def _check_totals(result: dict[str, Any]) -> None:
    scored = [e for e in result["exercises"] if e["score"] is not None]  # not those to grade by hand
    score = round(sum(e["score"] for e in scored), 4)
    max_score = sum(e["max_score"] for e in scored)
    if abs(result["score"] - score) > _TOLERANCE or abs(result["max_score"] - max_score) > _TOLERANCE:
        raise InvalidResult(
            f"its total {result['score']:g}/{result['max_score']:g} is not the sum of its exercises "
            f"({score:g}/{max_score:g})"
        )


def check_result(data: Any, submission: Submission) -> dict[str, Any]:
    """``data`` as a result of ``submission``; InvalidResult, saying why, if it cannot be one.

    Checks the result's schema (every field, with its type), the exercises
    against the registry (exactly the notebook's, each worth the registry's
    points, each score between 0 and those points), the totals, and that it
    names the submission whose result file it was read from.
    """
    _check_fields(data, RESULT_FIELDS, "the result")
    if data["version"] != RESULT_VERSION:
        raise InvalidResult(
            f"it is in the format of version {data['version']}, this grader writes version {RESULT_VERSION}"
        )
    if (data["student"], data["notebook"]) != (submission.student, submission.notebook):
        raise InvalidResult(
            f"it is the result of {data['student']}/{data['notebook'] or '?'}, "
            f"filed where the result of {submission.key} belongs"
        )
    _check_exercises(data)
    _check_totals(data)
    return data


def read_result(path: Path, submission: Submission) -> dict[str, Any]:
    """The result stored at ``path`` for ``submission``, checked; InvalidResult if it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidResult(f"it cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidResult(f"it is not valid JSON ({exc}): damaged or cut short") from None
    return check_result(data, submission)
