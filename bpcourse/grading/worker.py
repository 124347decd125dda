"""The learner's side of grading: one submission's code, run with limits.

A worker executes a submitted notebook's code cells with IPython's own shell,
then answers calls: "run function F on these inputs" -> what F returned, or
what it raised. It never judges anything: verdicts are computed by the grader
from the returned values. Workers are forked, already isolated and limited,
by the fork server (``bpcourse.grading.forkserver``), which has imported
numpy, matplotlib and IPython once for all of them.

Inside the sandbox the exercise registry and the grader's own modules are not
there at all; ``bpcourse.check`` is replaced by a version whose
``check``/``grade`` do nothing (the graded cells are not run anyway).
"""

from __future__ import annotations

import importlib.abc
import linecache
import os
import resource
import signal
import sys
import types
import warnings
from typing import Any

import numpy as np

from bpcourse import drive
from bpcourse.delegation import call_refusing
from bpcourse.grading.wire import Decoder, Encoder, receive, send, state_after_call

# Out of the learner's reach once their code runs (imported here before it does).
_HIDDEN = ("bpcourse.exercises", "bpcourse.grading", "bpcourse.check", "bpcourse.delegation")


class _HiddenPackages(importlib.abc.MetaPathFinder):
    """Refuses to import the grader and the registry from the learner's code.

    Under bubblewrap their files are not in the sandbox anyway; this also
    covers modules the fork server imported before the learner's code ran.
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "bpcourse.check":
            return None  # served from sys.modules by the stand-in below
        if any(fullname == h or fullname.startswith(h + ".") for h in _HIDDEN):
            raise ImportError(f"{fullname} is not available while grading")
        return None


def _stand_in_check_module() -> types.ModuleType:
    module = types.ModuleType("bpcourse.check", "Self-checks are skipped while grading.")

    def check(*args: Any, **kwargs: Any) -> None:
        return None

    def grade(*args: Any, **kwargs: Any) -> None:
        return None

    def for_notebook(notebook: str) -> tuple[Any, Any]:
        return check, grade

    module.check, module.grade, module.for_notebook = check, grade, for_notebook
    return module


def apply_limits(limits: dict[str, int]) -> None:
    """Lower this process's own resource limits (it cannot raise them again)."""
    pairs = [
        (resource.RLIMIT_AS, limits["memory_mb"] * 1024 * 1024),
        (resource.RLIMIT_CPU, limits["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, limits["output_mb"] * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, limits.get("processes", 64)),
    ]
    for which, value in pairs:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 5))
    # Past the output limit a write fails with an error instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _no_fork(*args: Any, **kwargs: Any) -> None:
    raise PermissionError("starting new processes is not allowed while grading")


def _hide_grader() -> None:
    for name in list(sys.modules):
        if any(name == h or name.startswith(h + ".") for h in _HIDDEN):
            del sys.modules[name]
    sys.modules["bpcourse.check"] = _stand_in_check_module()
    sys.meta_path.insert(0, _HiddenPackages())
    # A forked copy of the worker would read the grader's messages too.
    os.fork = _no_fork  # type: ignore[assignment]
    os.forkpty = _no_fork  # type: ignore[assignment]


# The deepest recursion a learner's function may reach, whatever limit its notebook sets: deep
# enough for any honest answer, and reached (and reported) well within a call's time limit.
MAX_RECURSION = 20_000


def _learner_frames(exc: BaseException) -> tuple[types.TracebackType | None, int]:
    """The innermost frame of the learner's code in ``exc``'s traceback, and how many there are.

    Walks the traceback without formatting it: after a runaway recursion it holds
    one frame per call, and formatting them all takes longer than a call may.
    """
    last, count = None, 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<"):
            last, count = tb, count + 1
        tb = tb.tb_next
    return last, count


def _where(exc: BaseException) -> str:
    last, _ = _learner_frames(exc)
    if last is None:
        return ""
    line = linecache.getline(last.tb_frame.f_code.co_filename, last.tb_lineno).strip()
    return f" (at line {last.tb_lineno}: {line})" if line else ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        # str(exc) names IPython's internal file (<ipython-input-1-d9567b878bbf>): say the cell's line.
        code = (exc.text or "").strip()
        shown = f": {code}" if code else ""
        return f"raised {type(exc).__name__}: {exc.msg} (line {exc.lineno} of the cell{shown})"
    text = str(exc)
    if len(text) > 300:
        text = text[:300] + "..."
    return f"raised {type(exc).__name__}: {text}{_where(exc)}"


def _recursion_message(exc: RecursionError) -> str:
    _, depth = _learner_frames(exc)
    return f"{_describe(exc)}: recursion too deep ({depth:,} nested calls of the notebook's code)"


def _cap_recursion() -> None:
    """Let the notebook's code raise the recursion limit up to MAX_RECURSION only."""
    set_limit = sys.setrecursionlimit

    def capped(limit: int) -> None:
        set_limit(min(int(limit), MAX_RECURSION))

    sys.setrecursionlimit = capped  # type: ignore[assignment]


def serve(read_fd: int, write_fd: int, limits: dict[str, int]) -> int:
    """Run the notebook's cells and answer calls until the grader says stop."""
    from IPython.core.interactiveshell import InteractiveShell

    apply_limits(limits)
    _hide_grader()
    _cap_recursion()
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    # IPython would format a runaway recursion's traceback, one entry per call: longer than a cell may take.
    shell.set_custom_exc((RecursionError,), lambda *args, **kwargs: [])
    while True:
        message = receive(read_fd)
        op = message.get("op")
        if op == "run_cells":
            for index, source in message["cells"]:
                send(write_fd, {"event": "cell", "index": index})
                result = shell.run_cell(source, store_history=False)
                error = result.error_before_exec or result.error_in_exec
                if error is not None:
                    deep = isinstance(error, RecursionError)
                    message = _recursion_message(error) if deep else _describe(error)
                    send(write_fd, {"event": "cell_error", "index": index, "message": message})
            functions = sorted(k for k, v in shell.user_ns.items() if callable(v) and not k.startswith("_"))
            send(write_fd, {"event": "ready", "functions": functions})
        elif op == "call":
            send(write_fd, _call(shell.user_ns, message))
        else:
            return 0


# The drivers: course functions that exercise a learner's answer that is a class. Taken here,
# before any learner's code runs, so that rebinding them in bpcourse.drive changes nothing.
DRIVERS = {
    name: value
    for name, value in vars(drive).items()
    if isinstance(value, types.FunctionType)
    and value.__module__ == drive.__name__
    and not name.startswith("_")
}


def _driver(name: Any) -> Any:
    """The driver called ``name`` (None for none): a public function of ``bpcourse.drive``, nothing else."""
    if not name:
        return None
    if str(name) not in DRIVERS:
        raise ValueError(f"no driver called {name!r}")
    return DRIVERS[str(name)]


def _call(namespace: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    name = message["function"]
    function = namespace.get(name)
    if not callable(function):
        return {"event": "missing"}
    decoder = Decoder()
    args = decoder.decode(message["args"])
    driver = _driver(message.get("driver"))
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            # What the exercise refuses (the engine's pieces that would answer it) is out of reach.
            refused, instead = message.get("refuses", ()), str(message.get("instead", ""))
            value = call_refusing(function, args, refused, instead, namespace=namespace, through=driver)
    except NotImplementedError:
        return {"event": "not_implemented"}
    except RecursionError as exc:
        return {"event": "raised", "message": _recursion_message(exc), "kind": "RecursionError"}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: all are the learner's
        return {"event": "raised", "message": _describe(exc), "kind": type(exc).__name__}
    # Objects that came in keep their numbers on the way back.
    encoder = Encoder()
    for index, obj in decoder.objects.items():
        encoder.memo[id(obj)] = index
        encoder.objects[index] = obj
    return {
        "event": "returned",
        "value": encoder.encode(value),
        "state_after": state_after_call(decoder.objects),
    }


def exit_quietly(code: int) -> None:
    """Leave at once: nothing inherited from the fork server may run at exit."""
    sys.stdout.flush()
    os._exit(code)
