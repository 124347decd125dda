"""The grader's side of a learner's process: start it, limit it, talk to it, end it.

A ``Sandbox`` runs one submission's code cells in a worker forked by this
process's fork server (``bpcourse.grading.server``), isolated as the chosen
mode allows (``bpcourse.grading.isolation``) and limited in memory, CPU time
and output. Each cell and each call has a wall-clock limit. When a cell hangs
or kills its worker, the sandbox forks a new one that skips that cell, so the
rest of the notebook is still graded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bpcourse.grading.wire_types  # noqa: F401  (course objects that travel as inputs)
from bpcourse.exercises.core import GradingStop, LearnerRaised, MissingFunction
from bpcourse.grading.server import ForkServer, Worker, shared_server
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

    def for_worker(self) -> dict[str, int]:
        return {"memory_mb": self.memory_mb, "cpu_seconds": self.cpu_seconds, "output_mb": self.output_mb}


class WorkerEnded(Exception):
    """The worker process ended; the message says how."""


_HINTS = {
    "SIGXCPU": " (CPU time limit)",
    "SIGKILL": " (killed: memory or time limit?)",
    "SIGSEGV": " (a crash: recursion too deep?)",
}


def _ending(event: dict[str, Any]) -> str:
    if event.get("event") == "broken":
        return str(event.get("message", "the grading process could not start"))
    name = event.get("signal")
    if name:
        return f"the grading process was ended by {name}{_HINTS.get(str(name), '')}"
    code = event.get("code")
    return f"the notebook's code ended the grading process (exit status {code}: sys.exit or os._exit?)"


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


class Sandbox:
    """One submission's worker (forked again as needed)."""

    def __init__(
        self, cells: Sequence[tuple[int, str]], limits: Limits | None = None, server: ForkServer | None = None
    ) -> None:
        self.cells = list(cells)
        self.limits = limits or Limits()
        self.report = LoadReport()
        self.server = server or shared_server()
        self.worker: Worker | None = None
        self.restarts = 0

    @property
    def mode(self) -> str:
        """How this submission's code is isolated: "bubblewrap", "user id" (with or without namespaces)
        or "none"."""
        return self.server.mode

    # -- process life ----------------------------------------------------------------------
    def _spawn(self) -> None:
        self.worker = self.server.spawn(self.limits.for_worker())

    def _kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def close(self) -> None:
        """End the worker and everything it started."""
        self._kill()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, message: dict[str, Any]) -> None:
        if self.worker is None:
            raise WorkerEnded("the grading process is gone")
        try:
            send(self.worker.to_worker, message)
        except OSError:  # it closed its end: read how it ended
            try:
                self._receive(5.0)
            except TimeoutError:
                pass
            raise WorkerEnded("the grading process stopped answering") from None

    def _receive(self, timeout: float) -> dict[str, Any]:
        """The worker's next message; WorkerEnded when it ended instead."""
        if self.worker is None:
            raise WorkerEnded("the grading process is gone")
        try:
            event = receive(self.worker.from_worker, timeout)
        except TimeoutError:
            raise
        except (WireError, OSError):
            raise WorkerEnded("the grading process stopped answering") from None
        if event.get("event") in ("exited", "broken"):
            raise WorkerEnded(_ending(event))
        return event

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
                self._send({"op": "run_cells", "cells": cells})
                while True:
                    event = self._receive(self.limits.cell_seconds)
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
            except WorkerEnded as exc:
                why = str(exc)
            if current is None or self.restarts >= self.limits.max_restarts:
                self.report.cell_problems.append(CellProblem(current if current is not None else -1, why))
                self.report.functions = []
                return self.report
            skip_notes.append(CellProblem(current, f"{why}; the cell was skipped"))
            self.report.skipped.append(current)
            self.restarts += 1

    def call(
        self,
        function: str,
        args: Sequence[Any],
        refuses: Sequence[str] = (),
        instead: str = "",
        driver: str = "",
    ) -> Any:
        """Call the learner's ``function`` on ``args`` in the worker; return what it returned.

        ``driver``: the name of a function of ``bpcourse.drive`` that exercises the learner's
        answer (a class) there, called as ``driver(answer, *args)``.

        Raises NotImplementedError for a stub, LearnerRaised for any other
        exception of the learner's code (a ``DelegationRefused`` among them when
        it reached for one of ``refuses``), MissingFunction when the notebook does
        not define it, and GradingStop when the call hangs or the process dies
        (the sandbox is then restarted for the next call).
        """
        if self.worker is None:
            raise GradingStop("the notebook could not be run, so the function could not be called")
        encoder = Encoder()
        try:
            message = {"op": "call", "function": function, "args": encoder.encode(list(args))}
            self._send({**message, "refuses": list(refuses), "instead": instead, "driver": driver})
            reply = self._receive(self.limits.call_seconds)
        except TimeoutError:
            self._restart_after_failure()
            raise GradingStop(
                f"did not return within {self.limits.call_seconds:g} s (an endless loop?)"
            ) from None
        except WorkerEnded as exc:
            self._restart_after_failure()
            raise GradingStop(f"while running it, {exc}") from None
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
