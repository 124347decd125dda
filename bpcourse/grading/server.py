"""The grader's handle on a fork server (``bpcourse.grading.forkserver``).

One fork server per grading process and mode: it is started on first use,
shared by every submission graded there (threads of ``bpcourse grade``,
tasks of a dask worker), and ended when the process exits or
``close_servers`` is called. ``start_server`` tries the modes in order
(bubblewrap, then the user id switch as root) and refuses to go on without
isolation unless ``--no-sandbox`` was given.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpcourse.grading.isolation import (
    INSTALL_HINT,
    SANDBOX_HOME,
    SandboxUnavailable,
    bubblewrap_command,
    candidate_modes,
    hidden_paths,
    instructor_paths,
    python_readable_by_others,
)

STARTUP_SECONDS = 120.0  # importing matplotlib and building its font list on a cold, busy machine
_FOLDER_PREFIX = "bpcourse-grade-"

# Only what a numerical Python process needs; nothing of the grader's own environment.
_KEPT_ENVIRONMENT = ("LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def environment(home: str) -> dict[str, str]:
    """The environment of the fork server and its workers: scrubbed, one thread per BLAS."""
    env = {k: os.environ[k] for k in _KEPT_ENVIRONMENT if k in os.environ}
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=home,
        TMPDIR=home,
        MPLBACKEND="Agg",
        MPLCONFIGDIR=os.path.join(home, ".matplotlib"),
        IPYTHONDIR=os.path.join(home, ".ipython"),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@dataclass
class Worker:
    """One submission's worker: the pipes to it and a pidfd of the process that holds it."""

    to_worker: int
    from_worker: int
    pidfd: int
    uid: int | None

    def kill(self) -> None:
        """End the worker and everything it started; close the pipes."""
        if self.pidfd >= 0:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(self.pidfd)
            self.pidfd = -1
        if self.uid is not None:
            kill_user_processes(self.uid)
        for fd in (self.to_worker, self.from_worker):
            if fd >= 0:
                os.close(fd)
        self.to_worker = self.from_worker = -1


def kill_user_processes(uid: int) -> None:
    """End every process of ``uid`` (a worker's own user id), even those in sessions of their own."""
    for _ in range(20):  # a process may start another while we look: look again
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as status:
                    uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
            except (OSError, StopIteration):
                continue
            if str(uid) in uids:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not found:
            return


# Workers started as root each run under a user id of their own, unused by anyone else.
_UID_BASE = 200_000 + (os.getpid() % 20_000) * 32
_uid_counter = itertools.count()


class ForkServer:
    """A running fork server in one isolation mode."""

    def __init__(self, mode: str, hide: list[str] | None = None) -> None:
        self.mode = mode
        self.lock = threading.Lock()
        remove_stale_folders()
        self.folder = tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-")
        os.chmod(self.folder, 0o755)
        home = SANDBOX_HOME if mode == "bubblewrap" else self.folder
        setup = json.dumps({"mode": mode, "hide": hide or []})
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-I", "-m", "bpcourse.grading.forkserver", str(theirs.fileno()), setup]
        env = environment(home)
        if mode == "bubblewrap":
            argv = bubblewrap_command(argv, env)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                cwd=self.folder,
                env=env,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.control = ours
        self._await_ready()

    def _await_ready(self) -> None:
        self.control.settimeout(STARTUP_SECONDS)
        try:
            message, _, _, _ = socket.recv_fds(self.control, 1 << 16, 1)
        except (OSError, TimeoutError):
            message = b""
        self.control.settimeout(None)
        ready = json.loads(message) if message else {}
        if not ready.get("ok"):
            self._errors.seek(0)
            errors = self._errors.read().decode(errors="replace").strip().splitlines()
            self.close()
            why = errors[-1] if errors else "it exited at once"
            raise SandboxUnavailable(f"the {self.mode} sandbox could not start: {why}")
        if self.mode == "user id" and not ready.get("namespaces"):
            # In a container that forbids namespaces (Docker's default): own user id and limits only.
            self.mode = "user id without namespaces"

    def spawn(self, limits: dict[str, Any]) -> Worker:
        """A fresh, isolated worker for one submission."""
        uid = None
        if self.mode.startswith("user id"):
            uid = _UID_BASE + next(_uid_counter) % 32
            limits = {**limits, "uid": uid}
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            with self.lock:
                request = json.dumps({"op": "spawn", "limits": limits}).encode()
                socket.send_fds(self.control, [request], [to_worker_r, from_worker_w])
                reply, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 1)
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        if not reply:
            os.close(to_worker_w)
            os.close(from_worker_r)
            raise SandboxUnavailable("the fork server has stopped")
        return Worker(to_worker_w, from_worker_r, fds[0] if fds else -1, uid)

    def close(self) -> None:
        """Stop the server (its workers end with it) and remove its folder."""
        try:
            self.control.close()
        except (AttributeError, OSError):
            pass
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            try:
                process.wait(timeout=5)  # it leaves on its own once the socket is closed
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._errors.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_stale_folders() -> None:
    """Remove the folders that grading runs of this user left when they were killed."""
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{_FOLDER_PREFIX}*"):
        pid = folder.name[len(_FOLDER_PREFIX) :].split("-")[0]
        try:
            # Only folders named by a run (its process id) that has ended: never another's live run.
            if folder.stat().st_uid != os.getuid() or not pid.isdigit() or _alive(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- one shared server per process and mode --------------------------------------------------------------
_servers: dict[bool, ForkServer] = {}
_servers_lock = threading.Lock()


def start_server(no_sandbox: bool = False, hide: list[Path] | None = None) -> ForkServer:
    """The first mode that works here, started; SandboxUnavailable when none does."""
    modes = candidate_modes(no_sandbox)
    failures = []
    for mode in modes:
        try:
            hidden = hidden_paths([*instructor_paths(), *(hide or [])]) if mode == "user id" else []
            return ForkServer(mode, hidden)
        except SandboxUnavailable as exc:
            failures.append(str(exc))
    if not failures:
        failures.append("bubblewrap is not installed")
    if os.geteuid() != 0:
        failures.append("the user id switch needs root")
    elif not python_readable_by_others():
        failures.append("the user id switch needs Python's files to be readable by other users")
    tried = "; ".join(failures)
    raise SandboxUnavailable(f"cannot isolate the learners' code ({tried}): {INSTALL_HINT}")


def can_isolate() -> bool:
    """True when learners' code can be sandboxed here (the sandbox is then started and kept)."""
    try:
        shared_server()
    except SandboxUnavailable:
        return False
    return True


def shared_server(no_sandbox: bool = False, hide: list[Path] | None = None) -> ForkServer:
    """This process's fork server for the mode asked for, started on first use."""
    with _servers_lock:
        server = _servers.get(no_sandbox)
        if server is None or server.process.poll() is not None:
            server = _servers[no_sandbox] = start_server(no_sandbox, hide)
        return server


def close_servers() -> None:
    """Stop this process's fork servers."""
    with _servers_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


atexit.register(close_servers)
