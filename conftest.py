"""nbval's options, applied only when nbval is active.

``python -m pytest`` runs the tests and, through nbval, every solution
notebook: each is re-run in this environment and its outputs compared with the
stored ones (sanitized by tests/nbval_sanitize.cfg; PNG images are not
compared). The options live here rather than in ``addopts`` so that a run
without nbval (``pytest -p no:nbval``, or an environment without it) does not
fail on options nobody registered. An option given on the command line wins.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
NBVAL_OPTIONS = {
    # flag: (the attribute nbval reads, the value python -m pytest uses)
    "--nbval": ("nbval", True),
    "--nbval-current-env": ("nbval_current_env", True),
    "--nbval-sanitize-with": ("nbval_sanitize_with", str(ROOT / "tests" / "nbval_sanitize.cfg")),
    "--nbval-cell-timeout": ("nbval_cell_timeout", 120.0),
}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("nbval"):
        return
    given = [str(arg).split("=", 1)[0] for arg in config.invocation_params.args]
    if "--nbval-lax" in given:  # the lax mode asked for instead
        given.append("--nbval")
    for flag, (attribute, value) in NBVAL_OPTIONS.items():
        if flag not in given:
            setattr(config.option, attribute, value)


# Solutions whose stored outputs come from a run with PyTorch installed (the optional extra
# "torch"): without it their PyTorch cells print how to install it instead, so nbval would
# report a difference that is not a bug. Outside CI they are skipped then, with the reason;
# CI installs PyTorch, and there a missing PyTorch fails the run as any other difference.
NEEDS_TORCH = ("09_modular_layers_and_digits.ipynb",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if importlib.util.find_spec("torch") is not None or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="its stored outputs need PyTorch: pip install '.[torch]'")
    for item in items:
        path = Path(str(item.path))
        if path.parent.name == "solutions" and path.name in NEEDS_TORCH:
            item.add_marker(skip)
