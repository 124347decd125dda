"""Who installs what: the learner, the grader alone, the instructor, the developer (pyproject.toml)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
SELF = re.compile(r"^bpcourse\[([\w,\s]+)\]$")


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _brought(requirement: str) -> set[str]:
    """The distribution named, and those its extras name after themselves: dask[distributed]."""
    extras = re.search(r"\[([\w,\s-]+)\]", requirement)
    return {_name(requirement), *(e.strip() for e in (extras.group(1).split(",") if extras else []))}


def resolved(requirements: list[str]) -> set[str]:
    """The distributions a list of requirements brings, following bpcourse[extra] references."""
    names: set[str] = set()
    for requirement in requirements:
        found = SELF.match(requirement)
        if found:
            for extra in found.group(1).split(","):
                names |= resolved(EXTRAS[extra.strip()])
        else:
            names |= _brought(requirement)
    return names


def test_the_learner_gets_jupyterlab_and_no_nbgrader():
    base = resolved(PROJECT["dependencies"])
    assert {"jupyterlab", "numpy", "ipython"} <= base
    assert "nbgrader" not in base  # so none of nbgrader's menus show in the learner's JupyterLab


def test_the_grader_alone_needs_no_jupyterlab_and_the_instructor_gets_nbgrader():
    grader = resolved(EXTRAS["grader"])
    assert {"numpy", "matplotlib", "ipython", "tqdm"} <= grader
    assert not grader & {"jupyterlab", "notebook", "nbgrader"}
    assert "nbgrader" in resolved(EXTRAS["instructor"])
    assert {"nbgrader", "pytest", "nbval"} <= resolved(EXTRAS["test"])
    assert "ruff" in resolved(EXTRAS["dev"]) and "ruff" not in resolved(EXTRAS["test"])


def test_no_requirement_is_listed_twice():
    """Each distribution is named in one place; extras reuse one another as bpcourse[extra]."""
    lists = {"dependencies": PROJECT["dependencies"], **EXTRAS}
    owners: dict[str, list[str]] = {}
    for where, requirements in lists.items():
        for requirement in requirements:
            if not SELF.match(requirement):
                owners.setdefault(_name(requirement), []).append(where)
    assert {name: where for name, where in owners.items() if len(where) > 1} == {}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_the_package_imports_is_declared():
    """IPython (the grader's worker, the self-checks) and nbformat (authoring) included."""
    declared = resolved(PROJECT["dependencies"]) | resolved(EXTRAS["instructor"]) | resolved(EXTRAS["dask"])
    distributions = packages_distributions()
    undeclared = {}
    for path in sorted((ROOT / "bpcourse").rglob("*.py")):
        for module in _imports(path) - set(sys.stdlib_module_names) - {"bpcourse", "__future__"}:
            names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
            if not names & declared:
                undeclared[module] = path.relative_to(ROOT).as_posix()
    assert undeclared == {}


def test_the_license_is_an_spdx_string_and_the_classifiers_match():
    assert PROJECT["license"] == "MIT"
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]  # PEP 639: not both
    low = PROJECT["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {low}" in PROJECT["classifiers"]
    assert "urls" not in PROJECT  # no public address to name (see the comment in pyproject.toml)


def test_setup_sh_installs_the_grader_requirements_only():
    """grader/gradescope/setup.sh reads the "grader" extra from the installed package's metadata."""
    script = (ROOT / "grader" / "gradescope" / "setup.sh").read_text(encoding="utf-8")
    assert re.search(r'pip install --no-deps "\$package"', script)
    snippet = re.search(r"<<'PY'\n(from importlib.metadata import requires\n.*?)\nPY\n", script, re.S)
    assert snippet, "setup.sh no longer reads the grader's requirements from the metadata"
    done = subprocess.run(
        [sys.executable, "-c", snippet.group(1)], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == EXTRAS["grader"]
