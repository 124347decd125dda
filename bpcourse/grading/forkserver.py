"""The fork server: imports what notebooks use once, then forks one isolated worker per submission.

Most of a fresh worker's time went into imports (matplotlib, IPython, numpy),
so the grader starts this process once per run. It imports them, then waits
on its control socket. For each submission the grader sends two pipe ends;
the server forks a child that isolates itself and forks the worker proper,
and sends the grader back a pidfd of that child, through which the grader can
end it and, with it, everything the learner's code started.

How a child isolates itself depends on the mode the grader chose:

* ``bubblewrap``: this server already runs in a bubblewrap sandbox that sees
  only Python, its packages and the engine. Each child enters namespaces of
  its own (user, mount, pid, network, ipc, uts), so concurrent learners
  cannot see each other; it gets a private tmpfs as its working folder, an
  empty /proc and /dev/shm, and its worker is process 1 of its pid namespace:
  when the worker ends, so does everything it started.
* ``user id``: the server runs as root outside any sandbox. Each child enters
  the same namespaces where the kernel allows it, hides the paths the grader
  names, and its worker drops root for a user id of its own.
* ``none`` (``--no-sandbox``): no isolation; limits only.

Started as ``python -I -m bpcourse.grading.forkserver CONTROL_FD SETUP_JSON``.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

from bpcourse.grading import worker
from bpcourse.grading.wire import send

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
_CAPABILITY_VERSION_3 = 0x20080522
_NOBODY = 65534

# What notebooks import: loaded once here, shared by every worker forked after.
PRELOADED = (
    "numpy",
    "matplotlib.pyplot",
    "IPython.core.interactiveshell",
    "bpcourse",
    "bpcourse.plot",
    "bpcourse.nn",
    "bpcourse.minigraph",
    "bpcourse.datasets",
    "bpcourse.checkpoint",
    "bpcourse.diagnostics",
    "bpcourse.grading.wire_types",
)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(encode(source), target.encode(), encode(kind), flags, encode(data)), f"mount {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def _drop_capabilities() -> None:
    """No capabilities left, now or after an exec (the bounding set is emptied too)."""
    for capability in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset")


def _private_tmpfs(target: str, size_mb: int, mode: str = "1777", flags: int = 0) -> None:
    if os.path.isdir(target):
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | flags, f"size={size_mb}m,mode={mode}")


def _hide(paths: list[str]) -> None:
    """Cover each path with something empty: a read-only tmpfs on a folder, /dev/null on a file."""
    for path in paths:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
        elif os.path.exists(path):
            _mount("/dev/null", path, None, MS_BIND)


# -- the two halves of a child's isolation: in the child, then in the worker it forks ------------------
def _enter_bubblewrap(setup: dict[str, Any], limits: dict[str, Any]) -> tuple[str, bool]:
    uid, gid = os.getuid(), os.getgid()
    everything = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(everything), "unshare")
    maps = (("setgroups", "deny"), ("uid_map", f"{_NOBODY} {uid} 1"), ("gid_map", f"{_NOBODY} {gid} 1"))
    for name, text in maps:
        with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
            handle.write(text)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    home = os.environ["HOME"]
    _private_tmpfs(home, 4 * limits["output_mb"])
    if os.path.isdir("/tmp") and not os.listdir("/tmp"):  # (Python may be installed under /tmp)
        _private_tmpfs("/tmp", 4 * limits["output_mb"])
    _private_tmpfs("/dev/shm", limits["output_mb"])
    # The sandbox's /proc shows the fork server and the other learners: an empty one instead.
    _private_tmpfs("/proc", 1, "0555", MS_RDONLY | MS_NOEXEC)
    return home, False


def _enter_user_id(setup: dict[str, Any], limits: dict[str, Any]) -> tuple[str, bool]:
    # Each namespace where the kernel allows it (a container may refuse some); the grader
    # also ends every process of the worker's user id when the submission is done.
    for flag in (CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS):
        _libc.unshare(flag)
    try:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _private_tmpfs("/dev/shm", limits["output_mb"])
        _hide(list(setup.get("hide", [])))
        _private_tmpfs("/tmp", 4 * limits["output_mb"])
        return "/tmp", False
    except OSError:  # no mount namespace: a folder of its own in the server's folder
        folder = tempfile.mkdtemp(prefix="worker-", dir=os.getcwd())
        os.chown(folder, limits["uid"], limits["uid"])
        return folder, True


def _enter_none(setup: dict[str, Any], limits: dict[str, Any]) -> tuple[str, bool]:
    return tempfile.mkdtemp(prefix="worker-", dir=os.getcwd()), True


def _inside(mode: str, limits: dict[str, Any], home: str) -> None:
    """In the worker, before any learner code: die with the child, no privileges left."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if mode == "user id":
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass  # no pid namespace of its own here: its processes are ended by user id
        os.setgroups([])
        os.setgid(limits["uid"])
        os.setuid(limits["uid"])
    elif mode == "bubblewrap":
        _drop_capabilities()
    if mode != "none":
        _prctl(PR_SET_DUMPABLE, 0)  # no other process of the same user may read its memory
    os.chdir(home)
    for key in ("HOME", "TMPDIR"):
        os.environ[key] = home
    os.environ["MPLCONFIGDIR"] = os.path.join(home, ".matplotlib")
    os.environ["IPYTHONDIR"] = os.path.join(home, ".ipython")
    os.makedirs(os.environ["MPLCONFIGDIR"], exist_ok=True)


_ENTER = {"bubblewrap": _enter_bubblewrap, "user id": _enter_user_id, "none": _enter_none}


def _exit_event(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        return {"event": "exited", "signal": signal.Signals(os.WTERMSIG(status)).name}
    return {"event": "exited", "code": os.waitstatus_to_exitcode(status)}


def _child(setup: dict[str, Any], limits: dict[str, Any], read_fd: int, write_fd: int) -> None:
    """The forked child: isolate, fork the worker, report how it ended. Never returns."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a server that ends takes its workers with it
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, min(read_fd, write_fd))
        os.closerange(min(read_fd, write_fd) + 1, max(read_fd, write_fd))
        os.closerange(max(read_fd, write_fd) + 1, 1 << 16)
        mode = setup["mode"]
        home, made_folder = _ENTER[mode](setup, limits)
        pid = os.fork()
        if pid == 0:
            try:
                _inside(mode, limits, home)
            except BaseException as exc:
                send(write_fd, {"event": "broken", "message": f"could not isolate the worker: {exc}"})
                worker.exit_quietly(71)
            worker.exit_quietly(worker.serve(read_fd, write_fd, limits))
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        send(write_fd, _exit_event(status))
        if made_folder:
            shutil.rmtree(home, ignore_errors=True)
    except BaseException as exc:
        try:
            send(write_fd, {"event": "broken", "message": f"could not start the worker: {exc}"})
        except BaseException:
            pass
    worker.exit_quietly(0)


def _spawn(control: socket.socket, setup: dict[str, Any], request: dict[str, Any], fds: list[int]) -> None:
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        socket.send_fds(control, [json.dumps({"ok": False, "error": "expected two pipe ends"}).encode()], [])
        return
    read_fd, write_fd = fds
    pid = os.fork()
    if pid == 0:
        control.close()
        _child(setup, request["limits"], read_fd, write_fd)
    os.close(read_fd)
    os.close(write_fd)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:  # already gone (reaped by the kernel): the grader reads its report
        socket.send_fds(control, [json.dumps({"ok": False, "error": str(exc)}).encode()], [])
        return
    try:
        socket.send_fds(control, [json.dumps({"ok": True}).encode()], [pidfd])
    finally:
        os.close(pidfd)


def _warm_up() -> None:
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOADED:
        importlib.import_module(name)
    import matplotlib.font_manager  # noqa: F401  (builds the font list once, for every worker)

    gc.collect()
    gc.freeze()  # objects made so far stay put, so forked workers share their pages


def _namespaces_allowed() -> bool:
    """Whether a child may enter mount and network namespaces here (a container may forbid it)."""
    pid = os.fork()
    if pid == 0:
        entered = _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) == 0
        os._exit(0 if entered else 1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    setup = json.loads(argv[2])
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # ends with the grader, even one killed by SIGKILL
    namespaces = setup["mode"] == "bubblewrap" or _namespaces_allowed()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    os.makedirs(os.environ.get("MPLCONFIGDIR", os.getcwd()), exist_ok=True)
    _warm_up()
    ready = {"ok": True, "python": sys.version.split()[0], "namespaces": namespaces}
    socket.send_fds(control, [json.dumps(ready).encode()], [])
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 4)
        if not message:
            return 0  # the grader is done (or gone)
        request = json.loads(message)
        if request.get("op") != "spawn":
            for fd in fds:
                os.close(fd)
            return 0
        _spawn(control, setup, request, list(fds))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
