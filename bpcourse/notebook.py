"""Helpers for the demonstrations of the course notebooks.

A demonstration that uses one of the learner's functions runs inside
``once_written``. While that function is still the stub the notebook hands
out (its body raises ``NotImplementedError``), the block stops there, one line
says what the cell will show once the exercise is done, and the notebook goes
on: "Run All" on a fresh notebook reaches the end, figures included::

    with once_written("compares your norms with the engine's, layer by layer"):
        mine = layer_grad_norms(Ws, bs, X, Y, "tanh")
        print(np.allclose(mine, engine_grad_norms(model, X, Y)))

Any other error is raised as usual: only an exercise not written yet is
waited for. This module imports nothing from the grader, so a set-up cell that
imports it also runs while a notebook is graded.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["once_written"]


def _stub_name(exc: NotImplementedError) -> str:
    """The function that raised: the learner's stub, the innermost frame of the traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].name if frames else ""


def _open_figures() -> set[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


@contextmanager
def once_written(shows: str) -> Iterator[None]:
    """Run a demonstration that calls an exercise; if the exercise is still a stub, say what it will show.

    Args:
        shows: what the cell shows once the exercise is done, completing the sentence
            "once it is written, this cell ...", e.g. "compares your norms with the engine's".
    """
    before = _open_figures()
    try:
        yield
    except NotImplementedError as exc:
        pyplot = sys.modules.get("matplotlib.pyplot")
        for number in _open_figures() - before:  # a half-drawn figure is not shown
            pyplot.close(number)
        name = _stub_name(exc)
        what = (
            f"{name} is not written yet" if name and name != "<module>" else "an exercise is not written yet"
        )
        print(f"({what}: once it is written, this cell {shows}.)")
