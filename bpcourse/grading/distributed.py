"""Grading across machines: a class sent to a dask.distributed cluster.

``grade_class`` fans submissions out through any ``concurrent.futures.Executor``;
``dask_executor(address)`` gives one whose work runs on the workers of the
dask scheduler at ``address`` (``client.get_executor(pure=False)``: every
submission is graded, even two identical ones). Nothing else changes:

- each task is ``grade_submission``, which starts the learner's code in a
  sandbox subprocess with its limits, on the worker's machine;
- the notebook travels with the task (its bytes, not its path), so workers
  need no shared folder; the worker writes it to a temporary folder of its
  own and grades it there;
- the result, plain data, comes back to the caller, whose ``grade_class``
  writes it atomically as each one finishes (so an interrupted run resumes).

Every worker needs this package installed (the same version as the caller).
dask itself is optional: ``pip install 'bpcourse[dask]'``.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bpcourse.grading.submissions import Submission

INSTALL_HINT = "pip install 'bpcourse[dask]'"


class ClusterProblem(RuntimeError):
    """The cluster cannot grade: dask is missing, the scheduler is unreachable, no usable worker."""


# -- the notebook travels with the task --------------------------------------------------------------
@dataclass(frozen=True)
class ShippedSubmission:
    """A submission and its notebook's bytes (None when the file could not be read here)."""

    submission: Submission
    content: bytes | None


def ship(submission: Submission) -> ShippedSubmission:
    try:
        content: bytes | None = submission.path.read_bytes()
    except OSError:
        content = None  # graded from its path, which then reports why it cannot be read
    return ShippedSubmission(submission, content)


def _replace_text(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replace_text(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_text(v, old, new) for v in value]
    return value


def grade_shipped(
    grade: Callable[..., dict[str, Any]], shipped: ShippedSubmission, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """Run on a worker: write the notebook to a temporary folder and grade it from there.

    The result names the submission's original path, as a local run would.
    """
    original = shipped.submission
    if shipped.content is None:
        return grade(original, *args, **kwargs)
    with tempfile.TemporaryDirectory(prefix="bpcourse-shipped-") as folder:
        local = Path(folder) / (original.path.name or "submission.ipynb")
        local.write_bytes(shipped.content)
        result = grade(Submission(original.student, original.notebook, local), *args, **kwargs)
    result = _replace_text(result, str(local), str(original.path))
    result["path"] = str(original.path)
    return result


class ShippingExecutor(Executor):
    """Wraps an executor so that a task on a ``Submission`` carries the notebook's bytes.

    ``submit(fn, submission, *rest)`` runs ``grade_shipped(fn, ship(submission), *rest)``
    on the wrapped executor; other tasks pass through unchanged.
    """

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if args and isinstance(args[0], Submission):
            return self.inner.submit(grade_shipped, fn, ship(args[0]), *args[1:], **kwargs)
        return self.inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait)


# -- the cluster ---------------------------------------------------------------------------------------
def _local_version() -> str | None:
    try:
        return importlib.metadata.version("bpcourse")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_workers(client: Any, wait_seconds: float = 60.0) -> list[str]:
    """Wait for a worker; refuse workers without this package. Returns warnings to show.

    The check runs ``importlib.metadata.version("bpcourse")`` on each worker
    (a function every Python has, so it runs where this package is missing).
    """
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=wait_seconds)
    except TimeoutError:
        raise ClusterProblem(
            f"no dask worker joined the scheduler at {address} within {wait_seconds:g} s "
            f"(start one with: dask worker {address})"
        ) from None
    versions = client.run(importlib.metadata.version, "bpcourse", on_error="return")
    missing = sorted(worker for worker, v in versions.items() if not isinstance(v, str))
    if missing:
        raise ClusterProblem(
            f"bpcourse is not installed on {len(missing)} dask worker(s): {', '.join(missing)} "
            "(install it in the environment the workers run in, then restart them)"
        )
    warnings = []
    here = _local_version()
    different = sorted(f"{worker} has {v}" for worker, v in versions.items() if here and v != here)
    if different:
        warnings.append(
            f"bpcourse {here} here, but {'; '.join(different)}: grades may differ from a local run"
        )
    return warnings


@contextmanager
def dask_executor(
    address: str,
    connect_timeout: float = 10.0,
    wait_seconds: float = 60.0,
    report: TextIO | None = None,
) -> Iterator[Executor]:
    """An executor that grades on the dask cluster whose scheduler is at ``address``.

    The client is closed on exit (the cluster itself keeps running). Raises
    ``ClusterProblem`` when dask is not installed, the scheduler cannot be
    reached, or no worker with this package joins within ``wait_seconds``.
    """
    try:
        from distributed import Client
        from distributed.comm import parse_address
        from distributed.comm.registry import get_backend
    except ImportError:
        raise ClusterProblem(f"grading on a dask cluster needs dask.distributed: {INSTALL_HINT}") from None
    try:
        get_backend(parse_address(address)[0])  # before Client, which hangs on closing after a bad one
    except (ValueError, TypeError) as exc:
        raise ClusterProblem(
            f"{address!r} is not a dask scheduler address (such as tcp://10.0.0.5:8786): {exc}"
        ) from None
    try:
        client = Client(address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterProblem(f"could not reach the dask scheduler at {address}: {exc}") from None
    try:
        for warning in check_workers(client, wait_seconds):
            if report is not None:
                print(f"warning: {warning}", file=report)
        if report is not None:
            threads = client.nthreads()
            summary = f"{len(threads)} workers, {sum(threads.values())} threads"
            print(f"grading on {address}: {summary}", file=report)
        yield ShippingExecutor(client.get_executor(pure=False))
    finally:
        client.close()
