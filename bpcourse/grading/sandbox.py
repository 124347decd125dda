"""The grader's side of a learner's process: start it, limit it, talk to it, end it.

A ``Sandbox`` runs one submission's code cells in a fresh worker process
(``bpcourse.grading.worker``) with limits on memory, CPU time and output, in a
temporary folder of its own, with a scrubbed environment and its own process
group (so anything it starts is ended with it). Each cell and each call has a
wall-clock limit. When a cell hangs or kills its process, the sandbox starts a
new process that skips that cell, so the rest of the notebook is still graded.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bpcourse.grading.wire_types  # noqa: F401  (course objects that travel as inputs)
from bpcourse.exercises.core import GradingStop, LearnerRaised, MissingFunction
from bpcourse.grading.wire import Decoder, Encoder, WireError, receive, send, write_back


@dataclass(frozen=True)
class Limits:
    """Per-submission limits for a learner's process."""

    cell_seconds: float = 30.0  # wall clock for one notebook cell
    call_seconds: float = 10.0  # wall clock for one call of a graded function
    cpu_seconds: int = 120  # CPU time for the whole process
    memory_mb: int = 2048  # address space
    output_mb: int = 8  # what the learner's code may print or write
    max_restarts: int = 4  # new processes after a hang or a crash

    def for_worker(self, uid: int | None = None) -> str:
        return json.dumps(
            {
                "memory_mb": self.memory_mb,
                "cpu_seconds": self.cpu_seconds,
                "output_mb": self.output_mb,
                "uid": uid,
            }
        )


# Sandboxes started as root each run under a user id of their own, unused by anyone
# else, so that everything a learner's code starts can be found and ended by it.
_UID_BASE = 200_000 + (os.getpid() % 20_000) * 32
_uid_counter = itertools.count()


def _sandbox_uid() -> int | None:
    """A fresh unprivileged user id for the next sandbox, or None when not root or unsafe.

    The worker reads Python and its packages after dropping root, so every
    folder on the way to them must be readable by others.
    """
    if (
        os.geteuid() != 0
        or not _readable_by_others(sys.prefix)
        or not _readable_by_others(os.path.dirname(os.__file__))
    ):
        return None
    return _UID_BASE + next(_uid_counter) % 32


def _readable_by_others(path: str) -> bool:
    path = os.path.realpath(path)
    while True:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if not mode & 0o005 == 0o005:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def kill_sandbox_processes(token: str, uid: int | None) -> None:
    """End every process a sandbox started, even in a session of its own.

    They are found by the sandbox's user id when it has one, and otherwise by
    the marker every process inherits in its environment from the worker.
    """
    marker = f"BPCOURSE_SANDBOX={token}".encode()
    for _ in range(20):  # a process may start another while we look: look again
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as status:
                    uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
                mine = uid is not None and str(uid) in uids
                if not mine:
                    with open(f"/proc/{entry}/environ", "rb") as environ:
                        mine = marker in environ.read().split(b"\0")
            except (OSError, StopIteration):
                continue
            if mine:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not found:
            return


@dataclass
class CellProblem:
    index: int
    message: str


@dataclass
class LoadReport:
    """What happened while the notebook's cells ran."""

    cell_problems: list[CellProblem] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)


# Only what a numerical Python process needs; nothing of the grader's own environment.
_KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT")


_matplotlib_cache: str | None = None
_matplotlib_cache_lock = threading.Lock()


def matplotlib_cache() -> str:
    """A matplotlib configuration folder with its font cache built, shared by the workers.

    Built once per grading process: without it every worker would rebuild the
    font list in its fresh home folder, about 0.2 s per submission.
    """
    global _matplotlib_cache
    with _matplotlib_cache_lock:
        if _matplotlib_cache is None:
            folder = tempfile.mkdtemp(prefix="bpcourse-matplotlib-")
            os.chmod(folder, 0o755)
            subprocess.run(
                [sys.executable, "-I", "-c", "import matplotlib.font_manager"],
                env={**_environment(folder, folder), "MPLCONFIGDIR": folder},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
                check=False,
            )
            _matplotlib_cache = folder
        return _matplotlib_cache


def _environment(home: str, matplotlib_config: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEPT_ENVIRONMENT if k in os.environ}
    env.update(
        HOME=home,
        TMPDIR=home,
        MPLBACKEND="Agg",
        MPLCONFIGDIR=matplotlib_config,
        IPYTHONDIR=os.path.join(home, ".ipython"),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


class Sandbox:
    """One submission's worker process (restarted as needed)."""

    def __init__(self, cells: Sequence[tuple[int, str]], limits: Limits | None = None) -> None:
        self.cells = list(cells)
        self.limits = limits or Limits()
        self.report = LoadReport()
        self.folder = tempfile.mkdtemp(prefix="bpcourse-grade-")
        self.uid = _sandbox_uid()
        self.token = secrets.token_hex(8)
        if self.uid is not None:
            os.chown(self.folder, self.uid, self.uid)
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._to_worker = self._from_worker = -1

    # -- process life ----------------------------------------------------------------------
    def _spawn(self) -> None:
        to_worker_r, self._to_worker = os.pipe()
        self._from_worker, from_worker_w = os.pipe()
        output = open(os.path.join(self.folder, "output.txt"), "ab")  # noqa: SIM115 (closed below)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-m",
                    "bpcourse.grading.worker",
                    str(to_worker_r),
                    str(from_worker_w),
                    self.limits.for_worker(self.uid),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                cwd=self.folder,
                env={**_environment(self.folder, matplotlib_cache()), "BPCOURSE_SANDBOX": self.token},
                pass_fds=(to_worker_r, from_worker_w),
                start_new_session=True,
            )
        finally:
            output.close()
            os.close(to_worker_r)
            os.close(from_worker_w)

    def _kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            self.process = None
        kill_sandbox_processes(self.token, self.uid)  # anything it started, even in a session of its own
        for fd in (self._to_worker, self._from_worker):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_worker = self._from_worker = -1

    def close(self) -> None:
        """End the worker and everything it started; remove the temporary folder."""
        self._kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _death_note(self) -> str:
        if self.process is None:
            return "the grading process is gone"
        try:
            code = self.process.wait(timeout=2)  # a process that closed its pipes is usually exiting
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "the grading process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed: memory or time limit?)"}.get(
                name, ""
            )
            return f"the grading process was ended by {name}{hint}"
        return f"the notebook's code ended the grading process (exit status {code}: sys.exit or os._exit?)"

    # -- running the notebook -------------------------------------------------------------
    def start(self) -> LoadReport:
        """Run the cells, restarting past any cell that hangs or kills the process."""
        skip_notes = [p for p in self.report.cell_problems if p.index in self.report.skipped]
        while True:
            self.report.cell_problems = list(skip_notes)
            self._kill()
            self._spawn()
            cells = [(i, src) for i, src in self.cells if i not in self.report.skipped]
            current: int | None = None
            try:
                send(self._to_worker, {"op": "run_cells", "cells": cells})
                while True:
                    event = receive(self._from_worker, self.limits.cell_seconds)
                    kind = event.get("event")
                    if kind == "cell":
                        current = int(event["index"])
                    elif kind == "cell_error":
                        self.report.cell_problems.append(
                            CellProblem(int(event["index"]), str(event["message"]))
                        )
                    elif kind == "ready":
                        self.report.functions = [str(f) for f in event.get("functions", [])]
                        return self.report
            except TimeoutError:
                why = f"did not finish within {self.limits.cell_seconds:g} s (an endless loop?)"
            except (WireError, OSError):
                why = self._death_note()
            if current is None or self.restarts >= self.limits.max_restarts:
                self.report.cell_problems.append(CellProblem(current if current is not None else -1, why))
                self.report.functions = []
                return self.report
            skip_notes.append(CellProblem(current, f"{why}; the cell was skipped"))
            self.report.skipped.append(current)
            self.restarts += 1

    def call(self, function: str, args: Sequence[Any]) -> Any:
        """Call the learner's ``function`` on ``args`` in the worker; return what it returned.

        Raises NotImplementedError for a stub, LearnerRaised for any other
        exception of the learner's code, MissingFunction when the notebook does
        not define it, and GradingStop when the call hangs or the process dies
        (the sandbox is then restarted for the next call).
        """
        if self.process is None:
            raise GradingStop("the notebook could not be run, so the function could not be called")
        encoder = Encoder()
        try:
            send(self._to_worker, {"op": "call", "function": function, "args": encoder.encode(list(args))})
            reply = receive(self._from_worker, self.limits.call_seconds)
        except TimeoutError:
            self._restart_after_failure()
            raise GradingStop(
                f"did not return within {self.limits.call_seconds:g} s (an endless loop?)"
            ) from None
        except (WireError, OSError):
            note = self._death_note()
            self._restart_after_failure()
            raise GradingStop(f"while running it, {note}") from None
        kind = reply.get("event")
        if kind == "missing":
            raise MissingFunction(
                f"no function called {function} in this notebook (deleted, renamed, or its cell failed?)"
            )
        if kind == "not_implemented":
            # Relayed, not a stub of ours: the learner's function still raises NotImplementedError,
            # and judge() reports that as "not implemented yet".
            raise NotImplementedError(f"{function} is still the notebook's stub")
        if kind == "raised":
            raise LearnerRaised(str(reply.get("message", "raised an exception")), str(reply.get("kind", "")))
        if kind != "returned":
            raise GradingStop("the grading process sent an unexpected reply")
        decoder = Decoder(encoder.objects)  # replies refer to, and update, the objects sent
        try:
            value = decoder.decode(reply.get("value"))
            write_back(encoder.objects, reply.get("state_after", {}))
        except (WireError, ValueError, TypeError) as exc:
            raise GradingStop(f"its result could not be read: {exc}") from None
        return value

    def _restart_after_failure(self) -> None:
        self._kill()
        if self.restarts < self.limits.max_restarts:
            self.restarts += 1
            self.start()
