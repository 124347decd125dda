"""The sandbox holds: attackers in a class earn nothing and change nothing, as root and as an ordinary user.

A class of honest students is graded with ``bpcourse grade``, once alone and
once with attackers among them. Each attacker's ``mul_backward`` returns the
right answer only when its attack worked (it found the answers, reached the
network, wrote outside its sandbox...) and a wrong one otherwise, so an attack
that worked shows up as a mark. The honest students' gradebook rows must be
byte-identical in both runs. Every run is made twice: by root (as in CI and on
Gradescope) and by an ordinary user with a virtual environment of its own.
Control runs with ``--no-sandbox`` show that the attacks do work where nothing
stops them, so these tests can fail.
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook, writes

import bpcourse
from bpcourse.grading.isolation import (
    bubblewrap,
    hidden_paths,
    package_view,
    python_readable_by_others,
)


def grader_package(python: str = sys.executable) -> Path:
    """The package that ``python -m bpcourse`` runs, as the grader under test imports it.

    Asked from a neutral folder: ``python -m pytest`` puts the checkout first on the
    tests' own path, which may be another copy than the installed one the grader uses.
    """
    where = "import bpcourse, os; print(os.path.dirname(os.path.realpath(bpcourse.__file__)))"
    return Path(subprocess.check_output([python, "-c", where], cwd="/", text=True).strip())


PACKAGE = grader_package()
NOTEBOOK = "01_scalar_graphs"
MARKER = "271.828"  # an unusual sleep length, to find escaped processes again
USER = "bpcourse-learner-test"
IN_CI = os.environ.get("CI") == "true"

HONEST = {
    "add_backward": "def add_backward(upstream, x, y):\n    return upstream, upstream",
    "mul_backward": "def mul_backward(upstream, x, y):\n    return upstream * y, upstream * x",
    "exp_backward": "def exp_backward(upstream, out):\n    return upstream * out",
}
WRONG_MUL = "def mul_backward(upstream, x, y):\n    return upstream * x, upstream * y"

# Each attack sets `worked` to True when it got what it was after.
ATTACKS = {
    "rewrites others": """
import os
worked = False
for top in ("/", os.path.expanduser("~"), os.getcwd()):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
        for name in files:
            if name.endswith((".ipynb", ".json", ".csv")):
                try:
                    with open(os.path.join(folder, name), "w") as handle:
                        handle.write('{"score": 100}')
                    worked = True
                except OSError:
                    pass
""",
    "reads the answers": f"""
import os
worked = False
package = {str(PACKAGE)!r}
tops = [os.path.dirname(package), package, os.getcwd(), "/tmp", "/work", "/home", "/root", "/"]
for top in tops:
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
        for name in files:
            path = os.path.join(folder, name)
            if not (name.endswith(".ipynb") or "solutions" in path or "exercises" in path):
                continue
            try:
                text = open(path, errors="ignore").read()
            except OSError:
                continue
            if "mul_backward" in text and ("BEGIN SOLUTION" in text or "EXERCISES" in text):
                worked = True
                break
        if worked:
            break
    if worked:
        break
""",
    "reads the registry and the class": f"""
import glob, os
worked = False
package = {str(PACKAGE)!r}
places = [os.path.join(package, "exercises", "scalar_graphs.py"),
          os.path.join(os.path.dirname(package), "solutions", "01_scalar_graphs.ipynb"),
          *glob.glob("CLASS/submitted/*/*/*.ipynb"), *glob.glob("CLASS/out/results/*/*.json")]
for path in places:
    try:
        worked = worked or "mul_backward" in open(path).read()
    except OSError:
        pass
""",
    "escapes: new session, empty environment": f"""
import subprocess
subprocess.Popen(["sleep", "{MARKER}"], start_new_session=True, env={{}})
worked = False
""",
    "escapes: double fork": f"""
import subprocess
subprocess.Popen(["sh", "-c", "(sleep {MARKER} &) &"])
worked = False
""",
    "escapes: setsid": f"""
import subprocess
subprocess.Popen(["setsid", "sleep", "{MARKER}"])
worked = False
""",
    "escapes: nohup": f"""
import subprocess
subprocess.Popen(["nohup", "sleep", "{MARKER}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
worked = False
""",
    "reaches the network": """
import socket
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).sendall(b"answers please")
    worked = True
except OSError:
    worked = False
""",
    "writes into the installed package": f"""
worked = False
for target in ("/dev/shared-with-others", "/pwned.txt",
               {str(PACKAGE / "grading" / "pwned.txt")!r},
               {str(PACKAGE / "pwned.txt")!r},
               {str(Path(sysconfig.get_paths()["purelib"]) / "pwned.txt")!r}):
    try:
        open(target, "w").write("pwned")
        worked = True
    except OSError:
        pass
""",
}


def attack_source(attack: str, port: int, root: Path) -> str:
    body = ATTACKS[attack].replace("PORT", str(port)).replace("CLASS", str(root)).strip("\n")
    indented = "\n".join("    " + line for line in body.splitlines())
    return (
        "def mul_backward(upstream, x, y):\n"
        f"{indented}\n"
        "    if worked:\n        return upstream * y, upstream * x\n"
        "    return upstream * x, upstream * y\n"
    )


def _notebook(cells: list[str]) -> str:
    setup = f"from bpcourse.check import for_notebook\ncheck, grade = for_notebook({NOTEBOOK!r})"
    return writes(new_notebook(cells=[new_code_cell(setup), *(new_code_cell(c) for c in cells)]))


def _slug(attack: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in attack)


def write_class(root: Path, attacks: list[str], port: int) -> None:
    students = {"ann": dict(HONEST), "bob": {**HONEST, "mul_backward": WRONG_MUL}}
    for attack in attacks:
        students[f"z-{_slug(attack)}"] = {**HONEST, "mul_backward": attack_source(attack, port, root)}
    for student, cells in students.items():
        path = root / "submitted" / student / NOTEBOOK / f"{NOTEBOOK}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_notebook(list(cells.values())), encoding="utf-8")


# -- who grades: root, or an ordinary user with an environment it can read --------------------------
def _readable_by_others(path: Path) -> bool:
    for part in [path, *path.parents]:
        if part.stat().st_mode & 0o005 != 0o005:
            return False
    return True


def _base_python() -> str | None:
    """A Python of this version that other users can run: this one's base, or Debian's."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.base_prefix) / "bin" / version, Path("/usr/bin") / version):
        if candidate.exists() and _readable_by_others(candidate.resolve().parent):
            return str(candidate)
    return None


def _grant_traverse(paths: list[Path]) -> list[tuple[Path, int]]:
    """Let other users pass through the folders above ``paths`` (x only, no listing); the old modes."""
    changed = []
    for path in paths:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if mode & 0o001 == 0:
                changed.append((folder, mode))
                folder.chmod(mode | 0o001)
    return changed


@pytest.fixture(scope="module")
def ordinary_user():
    """(user name, python) for an unprivileged user whose venv sees this environment's packages.

    The user's venv is made from a Python that everyone can run (this one's base, or
    Debian's of the same version) and reaches this environment's packages through a .pth
    file. When this environment lies below a private folder (a home folder), others are
    let through that folder for the tests' duration (traverse only) and it is restored.
    """
    site_packages = Path(sysconfig.get_paths()["purelib"])
    package = PACKAGE
    base = _base_python()
    problem = None
    if os.geteuid() != 0:
        problem = "creating an ordinary user needs root"
    elif base is None:
        problem = "no Python of this version that other users can run"
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True)  # fmt: skip
    changed = _grant_traverse([site_packages, package])
    folder = open_folder()
    try:
        python = folder / "venv" / "bin" / "python"
        subprocess.run([base, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        venv_site = Path(subprocess.check_output([str(python), "-c", where], text=True).strip())
        (venv_site / "bpcourse-test-environment.pth").write_text(
            f"import site; site.addsitedir({str(site_packages)!r})\n"
        )
        yield USER, str(python)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for path, mode in reversed(changed):
            path.chmod(mode)


def open_folder() -> Path:
    """A scratch folder every user can reach (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    folder.chmod(0o755)
    return folder


@pytest.fixture
def scratch(tmp_path):
    folder = open_folder()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_grade(
    root: Path,
    user: tuple[str, str] | None,
    *options: str,
    path: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``bpcourse grade`` on ``root/submitted`` into ``root/out``, as root or as ``user``."""
    python = sys.executable if user is None else user[1]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    if path is not None:
        env["PATH"] = path
    env.update(extra_env or {})
    if user is not None:
        shutil.chown(root, user[0])
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                shutil.chown(os.path.join(folder, name), user[0])
        env["HOME"] = str(root)
    command = [python, "-m", "bpcourse", "grade", "submitted", "--out", "out", "--seed", "3",
               "--workers", "2", "--call-timeout", "5", "--quiet", *options]  # fmt: skip
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600,
                          user=None if user is None else user[0])  # fmt: skip


def gradebook_rows(root: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((root / "out" / "gradebook.csv").read_text(encoding="utf-8"))))


def survivors() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if MARKER.encode() in cmdline.read():
                    found.append(entry)
        except OSError:
            continue
    return found


def _kill_survivors() -> None:
    for pid in survivors():
        try:
            os.kill(int(pid), 9)
        except OSError:
            pass


@pytest.fixture
def listening_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server
    server.close()


def _who(request) -> tuple[str, str] | None:
    return request.getfixturevalue("ordinary_user") if request.param == "ordinary user" else None


needs_bubblewrap = pytest.mark.skipif(
    bubblewrap() is None and not IN_CI, reason="bubblewrap is not installed"
)


@needs_bubblewrap
@pytest.mark.parametrize("grader", ["root", "ordinary user"])
def test_attackers_earn_nothing_and_change_nothing(scratch, grader, request, listening_port):
    if grader == "root" and os.geteuid() != 0:
        pytest.skip("needs root")
    user = request.getfixturevalue("ordinary_user") if grader == "ordinary user" else None
    port = listening_port.getsockname()[1]
    alone, together = scratch / "alone", scratch / "together"
    write_class(alone, [], port)
    write_class(together, sorted(ATTACKS), port)
    before = {p: p.read_bytes() for p in (together / "submitted").rglob("*.ipynb")}
    package_before = sorted(p.name for p in PACKAGE.iterdir())
    try:
        done_alone = run_grade(alone, user)
        done_together = run_grade(together, user)
        assert done_alone.returncode == 0, done_alone.stderr
        assert done_together.returncode == 0, done_together.stderr
        assert survivors() == [], "a process started by a learner outlived grading"
    finally:
        _kill_survivors()
    with pytest.raises(TimeoutError):
        listening_port.accept()
    rows = gradebook_rows(together)
    attackers = {
        r["student"]: r for r in rows if r["student"].startswith("z-") and r["exercise"] == "mul_backward"
    }
    assert len(attackers) == len(ATTACKS)
    worked = {student: r["diagnosis"] for student, r in attackers.items() if float(r["score"]) != 0.0}
    assert worked == {}, f"attacks that earned marks: {worked}"
    honest = [r for r in rows if not r["student"].startswith("z-")]
    assert honest == gradebook_rows(alone)
    assert {p: p.read_bytes() for p in (together / "submitted").rglob("*.ipynb")} == before
    assert sorted(p.name for p in PACKAGE.iterdir()) == package_before
    assert not (Path(sysconfig.get_paths()["purelib"]) / "pwned.txt").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the control run writes as root into a scratch copy only")
@pytest.mark.parametrize("attack", ["reads the answers", "reaches the network", "escapes: setsid"])
def test_without_a_sandbox_the_same_attacks_work(tmp_path, attack, listening_port):
    """The control: --no-sandbox lets these attacks through, so the test above can fail."""
    port = listening_port.getsockname()[1]
    write_class(tmp_path, [attack], port)
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "answers.py").write_text("# BEGIN SOLUTION\ndef mul_backward(): pass\n")
    try:
        done = run_grade(tmp_path, None, "--no-sandbox")
        assert done.returncode == 0, done.stderr
        escaped = survivors()
    finally:
        _kill_survivors()
    row = next(
        r
        for r in gradebook_rows(tmp_path)
        if r["student"].startswith("z-") and r["exercise"] == "mul_backward"
    )
    if attack.startswith("escapes"):
        assert escaped, "without a sandbox the process started by the learner should have outlived grading"
    else:
        assert float(row["score"]) == 1.0, row


@pytest.mark.parametrize("grader", ["root", "ordinary user"])
def test_no_sandbox_means_no_grading_unless_asked(scratch, grader, request):
    tmp_path = scratch
    if grader == "root" and os.geteuid() != 0:
        pytest.skip("needs root")
    user = request.getfixturevalue("ordinary_user") if grader == "ordinary user" else None
    write_class(tmp_path, [], 0)
    no_bwrap = "/nonexistent"  # bwrap is looked up on PATH
    refused = run_grade(tmp_path, user, path=no_bwrap)
    python_private = user is None and not python_readable_by_others()
    if user is not None or python_private:
        assert refused.returncode == 2
        assert "install bubblewrap" in refused.stderr and "--no-sandbox" in refused.stderr
        assert not (tmp_path / "out" / "gradebook.csv").exists()
    else:  # root with a Python that others can read: the user id switch
        assert refused.returncode == 0, refused.stderr
        assert {r["student"] for r in gradebook_rows(tmp_path)} == {"ann", "bob"}
    allowed = run_grade(tmp_path, user, "--no-sandbox", path=no_bwrap)
    assert allowed.returncode == 0, allowed.stderr
    assert float(next(r for r in gradebook_rows(tmp_path) if r["student"] == "ann")["score"]) == 1.0
    import json

    results = json.loads((tmp_path / "out" / "gradebook.json").read_text())
    modes = {r["sandbox"] for r in (results["submissions"] if isinstance(results, dict) else results)}
    assert modes == {"none"}


@pytest.mark.skipif(os.geteuid() != 0, reason="the user id switch needs root")
def test_user_id_switch_as_root_without_bubblewrap(scratch, ordinary_user, listening_port):
    tmp_path = scratch
    """Root with a Python others can read and no bubblewrap: workers run under user ids of their own."""
    port = listening_port.getsockname()[1]
    # Unlike bubblewrap, this mode hides only what it knows of (the class, the results, the registry
    # and the instructor's folders next to the package): files elsewhere that every user may read
    # stay readable, as grader/README.md says.
    attacks = [
        "rewrites others",
        "reads the registry and the class",
        "escapes: setsid",
        "reaches the network",
    ]
    write_class(tmp_path, attacks, port)
    before = {p: p.read_bytes() for p in (tmp_path / "submitted").rglob("*.ipynb")}
    try:
        done = run_grade(tmp_path, (("root", ordinary_user[1])), path="/nonexistent")
        assert done.returncode == 0, done.stderr
        assert survivors() == []
    finally:
        _kill_survivors()
    rows = gradebook_rows(tmp_path)
    earned = {
        r["student"]: r["score"]
        for r in rows
        if r["student"].startswith("z-") and r["exercise"] == "mul_backward"
    }
    assert set(earned.values()) == {"0.0"}, earned
    assert {p: p.read_bytes() for p in (tmp_path / "submitted").rglob("*.ipynb")} == before


def test_nothing_is_left_in_the_temporary_folder(scratch):
    """No folder stays behind in the temporary folder, and a run removes what a killed run left."""
    temporary = scratch / "tmp"
    temporary.mkdir()
    stale = temporary / "bpcourse-grade-999999999-left"  # the folder of a run that was killed
    (stale / "worker-x").mkdir(parents=True)
    write_class(scratch / "class", ["escapes: nohup"], 0)
    env_tmp = {"TMPDIR": str(temporary)}
    done = run_grade(scratch / "class", None, *([] if bubblewrap() else ["--no-sandbox"]), extra_env=env_tmp)
    assert done.returncode == 0, done.stderr
    assert list(temporary.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("capsh") is None, reason="needs root and capsh")
def test_user_id_switch_in_a_container_without_namespaces(scratch, ordinary_user):
    """As in Docker's default profile (root without CAP_SYS_ADMIN): own user id and limits, said plainly."""
    attacks = ["rewrites others", "escapes: setsid", "escapes: double fork"]
    write_class(scratch, attacks, 0)
    before = {p: p.read_bytes() for p in (scratch / "submitted").rglob("*.ipynb")}
    grade = "-m bpcourse grade submitted --out out --seed 3 --call-timeout 5"
    command = f"PATH=/nonexistent {ordinary_user[1]} {grade}"
    try:
        done = subprocess.run(
            ["capsh", "--drop=cap_sys_admin", "--", "-c", command],
            cwd=scratch, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert survivors() == []
    finally:
        _kill_survivors()
    assert "user id without namespaces (WARNING" in done.stdout
    earned = {r["student"]: r["score"] for r in gradebook_rows(scratch) if r["exercise"] == "mul_backward"}
    assert {s: v for s, v in earned.items() if s.startswith("z-")} == {
        f"z-{_slug(a)}": "0.0" for a in attacks
    }
    assert {p: p.read_bytes() for p in (scratch / "submitted").rglob("*.ipynb")} == before


@needs_bubblewrap
def test_concurrent_learners_cannot_see_each_other(scratch):
    """Two workers at once: neither sees the other's files, shared memory or processes."""
    leave = """
import os, time
for folder in (os.path.expanduser("~"), "/dev/shm", "/tmp"):
    try:
        open(os.path.join(folder, "note-from-a"), "w").write("here")
    except OSError:
        pass
time.sleep(3)
worked = False
"""
    look = """
import os, time
worked = False
for _ in range(30):
    for folder in (os.path.expanduser("~"), "/dev/shm", "/tmp"):
        try:
            worked = worked or "note-from-a" in os.listdir(folder)
        except OSError:
            pass
    try:
        worked = worked or len([p for p in os.listdir("/proc") if p.isdigit()]) > 1
    except OSError:
        pass
    time.sleep(0.1)
"""
    ATTACKS["leaves a note"], ATTACKS["looks for the note"] = leave, look
    try:
        write_class(scratch, ["leaves a note", "looks for the note"], 0)
    finally:
        del ATTACKS["leaves a note"], ATTACKS["looks for the note"]
    for honest in ("ann", "bob"):  # just the two learners, so that both run at once
        shutil.rmtree(scratch / "submitted" / honest)
    done = run_grade(scratch, None)
    assert done.returncode == 0, done.stderr
    earned = {r["student"]: r["score"] for r in gradebook_rows(scratch) if r["exercise"] == "mul_backward"}
    assert earned == {"z-leaves-a-note": "0.0", "z-looks-for-the-note": "0.0"}


@needs_bubblewrap
def test_a_worker_sees_only_python_its_packages_and_the_engine(scratch):
    """What the sandbox shows, reported by a learner's function in what it raises."""
    package = PACKAGE
    candidates = {
        "the exercise registry": package / "exercises",
        "the self-checks": package / "check.py",
        "the grader's runner": package / "grading" / "runner.py",
        "the grader's sandbox": package / "grading" / "sandbox.py",
        "the instructor notebooks": package.parent / "solutions",
        "the class": scratch / "submitted",
        "the results": scratch / "out",
        "a home folder": Path("/home") / "someone",
        "the grader's home": Path(os.path.expanduser("~")) / ".bashrc",
        "the engine": package / "tensor.py",
        "the delegation guard": package / "delegation" / "guard.py",
        "numpy": Path(sysconfig.get_paths()["purelib"]) / "numpy",
    }
    made_home = not (Path("/home") / "someone").exists()
    try:
        (Path("/home") / "someone").mkdir(parents=True, exist_ok=True)
    except PermissionError:  # not root: the grader's own home folder stands for everyone's
        made_home = False
    places = {name: str(path) for name, path in candidates.items()}
    probe = (
        "def exp_backward(upstream, out):\n    import os\n"
        f"    seen = sorted(name for name, path in {places!r}.items() if os.path.exists(path))\n"
        "    raise ValueError('SEEN=' + ';'.join(seen))\n"
    )
    path = scratch / "submitted" / "ann" / NOTEBOOK / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(_notebook([HONEST["add_backward"], probe]), encoding="utf-8")
    done = run_grade(scratch, None)
    assert done.returncode == 0, done.stderr
    row = next(r for r in gradebook_rows(scratch) if r["exercise"] == "exp_backward")
    if made_home:
        (Path("/home") / "someone").rmdir()
    seen = row["diagnosis"].split("SEEN=")[1].split(" (at line")[0].split(";")
    assert seen == ["numpy", "the delegation guard", "the engine"]


def test_the_sandbox_binds_the_delegation_package_and_no_more():
    """The worker imports ``bpcourse.delegation``: all of it is bound read-only, and never hidden."""
    package = Path(bpcourse.__file__).resolve().parent
    view = package_view()
    bound = {view[i + 1] for i, arg in enumerate(view) if arg == "--ro-bind"}
    made = {view[i + 1] for i, arg in enumerate(view) if arg == "--dir"}
    modules = sorted((package / "delegation").glob("*.py"))
    assert {"__init__.py", "guard.py"} <= {m.name for m in modules}
    assert {str(m) for m in modules} <= bound
    compiled = sorted((package / "delegation" / "__pycache__").glob("*.pyc"))
    assert {str(c) for c in compiled} <= bound
    assert str(package / "delegation") in made
    assert view[-2:] == ["--remount-ro", str(package)]
    assert not any(path.startswith(str(package / "exercises")) for path in bound)
    assert str(package / "check.py") not in bound
    assert str(package / "grading" / "runner.py") not in bound
    hidden = hidden_paths([])
    assert str(package / "exercises") in hidden and str(package / "check.py") in hidden
    assert not any(path.startswith(str(package / "delegation")) for path in hidden)


@needs_bubblewrap
@pytest.mark.parametrize("way", ["imported", "hidden", "stashed"])
def test_delegating_to_the_engine_earns_nothing_in_the_class_grader(scratch, way):
    """Every exercise's engine cheat (tests/test_delegation.py), in the sandbox: 0 and one line.

    "imported" is read in the notebook's source before anything runs; "hidden" and
    "stashed" name no engine module there and are refused by the guard in the worker.
    """
    from test_delegation import CHEATS, cell_source

    from bpcourse.exercises import by_notebook

    for notebook in sorted({cheat.notebook for cheat in CHEATS}):
        setup = f"from bpcourse.check import for_notebook\ncheck, grade = for_notebook({notebook!r})"
        cells = [setup, *(cell_source(c, way) for c in CHEATS if c.notebook == notebook)]
        path = scratch / "submitted" / "cheat" / notebook / f"{notebook}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(writes(new_notebook(cells=[new_code_cell(c) for c in cells])), encoding="utf-8")
    done = run_grade(scratch, None, "--call-timeout", "20")
    assert done.returncode == 0, done.stderr
    rows = [row for row in gradebook_rows(scratch) if row["status"] != "to grade by hand"]  # written answers
    assert len(rows) == sum(len(by_notebook(nb)) for nb in {c.notebook for c in CHEATS})
    used = {(c.notebook, c.name): c.used for c in CHEATS}
    modules = {(c.notebook, c.name): c.module for c in CHEATS}
    for row in rows:
        if (row["notebook"], row["exercise"]) not in used:
            continue  # an answer that is a class (notebook 08): tests/test_exercises_08.py refuses those
        uses = used[(row["notebook"], row["exercise"])]
        if uses.startswith("bpcourse.exercises.") and way != "imported":
            # The registry is not even in the sandbox: the guard refuses it at call time, or importing
            # it fails, in the function (an error) or in the cell that stashes it (the function is missing).
            assert row["score"] == "0.0" and row["status"] in ("delegated", "error", "missing"), row
            if row["status"] != "missing":
                said = row["diagnosis"]
                assert "uses bpcourse.exercises" in said or "bpcourse.exercises is not available" in said
            continue
        assert (row["score"], row["status"]) == ("0.0", "delegated"), row
        # A module the worker has not imported (bpcourse.clipping) is refused when the hidden import
        # runs, before any of its objects is reached: the line names the module.
        named = {f"uses {uses}", f"uses {modules[(row['notebook'], row['exercise'])]}:"}
        assert any(name in row["diagnosis"] for name in named), row
