"""How learners' code is isolated: which mode applies here, and what a sandbox may see.

Three modes, tried in this order:

* ``bubblewrap``: the fork server and every worker run under ``bwrap`` (the
  sandbox behind Flatpak), in new user, pid, network, ipc and uts
  namespaces, seeing read-only only the Python installation, its packages
  and the engine's modules, with a private tmpfs as the working folder. Works
  without root wherever user namespaces are enabled.
* ``user id``: without bubblewrap, as root: each worker runs under a user id
  of its own, in namespaces of its own where the kernel allows it, with the
  class, the results and the grader's files hidden from it.
* ``none``: only with ``--no-sandbox``: limits on time, memory and output, but
  the learner's code runs with the grader's own rights.

Anything else is refused with a message that names the fix.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

import bpcourse

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: sudo apt install bubblewrap; Fedora: sudo dnf install bubblewrap) "
    "and make sure user namespaces are enabled, or grade as root; "
    "--no-sandbox grades without isolation (only for code you trust)"
)

PACKAGE = Path(bpcourse.__file__).resolve().parent
# The only writable folder in a bubblewrap sandbox: each worker gets a private tmpfs there.
SANDBOX_HOME = "/home/learner"

# Of the package, a sandbox sees the engine and the worker's side of grading; never the
# exercise registry (it holds the reference answers), the self-checks built on it, the
# authoring tools or the rest of the grader.
HIDDEN_MODULES = ("check", "authoring", "cli", "sample_class", "__main__")
SANDBOX_SIDE_OF_GRADING = ("__init__", "worker", "wire", "wire_types", "forkserver")
# Subpackages a sandbox sees whole: the worker guards each call with ``bpcourse.delegation``.
SANDBOX_SUBPACKAGES = ("delegation",)


class SandboxUnavailable(Exception):
    """No way to isolate learners' code here; the message says how to get one."""


def bubblewrap() -> str | None:
    """The bwrap program, when installed."""
    return shutil.which("bwrap")


def python_readable_by_others() -> bool:
    """True when a user id other than ours can read Python and its packages (for ``user id``)."""
    return all(_readable_by_others(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.__file__)))


def _readable_by_others(path: str) -> bool:
    path = os.path.realpath(path)
    while True:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if mode & 0o005 != 0o005:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def candidate_modes(no_sandbox: bool) -> list[str]:
    """The modes to try, in order, on this machine."""
    if no_sandbox:
        return ["none"]
    modes = []
    if bubblewrap() is not None:
        modes.append("bubblewrap")
    if os.geteuid() == 0 and python_readable_by_others():
        modes.append("user id")
    return modes


# -- what a bubblewrap sandbox sees ---------------------------------------------------------------------
def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths, without any that lies inside another one."""
    chosen: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path == c or path.startswith(c.rstrip("/") + "/") for c in chosen):
            chosen.append(path)
    return chosen


def python_paths() -> list[str]:
    """The folders of the Python installation: prefixes and the standard library's places."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    found += [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    found += [os.path.dirname(sys.executable)]
    # Packages added by a .pth file of another environment (never a project folder: only site dirs).
    found += [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))]
    real = [os.path.realpath(p) for p in found if os.path.isdir(p)]
    return _outermost([*real, *(p for p in found if os.path.isdir(p))])


def _binds(source: Path, target: Path | None = None) -> list[str]:
    return ["--ro-bind", str(source), str(target or source)]


def package_view() -> list[str]:
    """bwrap arguments that show the engine's modules and nothing else of the package.

    An empty tmpfs goes over the package's folder (wherever it is installed,
    inside site-packages or in a source checkout), then the permitted modules
    are bound back into it one by one, with their compiled bytecode: the
    top-level modules but the hidden ones, the worker's side of grading, and
    every module of the subpackages the worker needs (``delegation``).
    """
    subpackages = [PACKAGE / name for name in SANDBOX_SUBPACKAGES]
    args = ["--tmpfs", str(PACKAGE)]
    for folder in (PACKAGE / "grading", *subpackages):
        args += ["--dir", str(folder)]

    def add(folder: Path, stem: str) -> None:
        args.extend(_binds(folder / f"{stem}.py"))
        for compiled in sorted((folder / "__pycache__").glob(f"{stem}.*.pyc")):
            args.extend(_binds(compiled))

    for module in sorted(PACKAGE.glob("*.py")):
        if module.stem not in HIDDEN_MODULES:
            add(PACKAGE, module.stem)
    for stem in SANDBOX_SIDE_OF_GRADING:
        add(PACKAGE / "grading", stem)
    for folder in subpackages:
        for module in sorted(folder.glob("*.py")):
            add(folder, module.stem)
    return [*args, "--remount-ro", str(PACKAGE)]


def _system_paths() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/fonts", "/etc/localtime", "/etc/alternatives"):
        args += ["--ro-bind-try", etc, etc]
    return args


def bubblewrap_command(argv: list[str], environment: dict[str, str]) -> list[str]:
    """``argv`` run in a fresh bubblewrap sandbox that sees only what a worker needs."""
    program = bubblewrap()
    if program is None:
        raise SandboxUnavailable(f"bubblewrap is not installed: {INSTALL_HINT}")
    args = [
        program,
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--hostname", "grading", "--uid", "65534", "--gid", "65534", "--clearenv",
    ]  # fmt: skip
    for key, value in environment.items():
        args += ["--setenv", key, value]
    args += _system_paths()
    for path in python_paths():
        args += ["--ro-bind", os.path.realpath(path), path]
    args += package_view()
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    args += ["--tmpfs", SANDBOX_HOME, "--chdir", SANDBOX_HOME]
    # Read-only everywhere but the home folder (each worker mounts a private one over it).
    return [*args, "--remount-ro", "/", "--", *argv]


def hidden_paths(extra: Iterable[Path]) -> list[str]:
    """What a ``user id`` worker must not see: the grader's side of the package and ``extra``.

    ``extra``: the class folders, the results folder, the instructor notebooks.
    The subpackages a sandbox sees whole (``SANDBOX_SUBPACKAGES``) stay visible.
    """
    paths = [PACKAGE / "exercises"]
    paths += [PACKAGE / f"{stem}.py" for stem in HIDDEN_MODULES]
    paths += [p for p in (PACKAGE / "grading").glob("*.py") if p.stem not in SANDBOX_SIDE_OF_GRADING]
    paths += [PACKAGE / "__pycache__", PACKAGE / "grading" / "__pycache__"]
    return [str(p) for p in [*paths, *extra] if os.path.exists(p)]


def instructor_paths() -> list[Path]:
    """Instructor material next to the package (in a source checkout): hidden from workers."""
    root = PACKAGE.parent
    names = ("solutions", "examples", "grader", "tests", ".git")
    return [root / name for name in names if (root / name).exists()]
