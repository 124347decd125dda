"""The error map under a self-check's verdict: where a wrong answer is wrong, as a picture.

``check(fn)`` watches the calls it makes (``Watch``); when the verdict is not a
pass, ``picture`` draws one small figure from the first call whose answer was
wrong:

* an array answer of the right shape (``bpcourse.arraymap``): the answer itself and a heatmap of the
  signed error, answer − reference, with the wrong entries marked. A mistake
  made along one path of the graph shows as an error on exactly the entries
  that path reaches, and nowhere else;
* an array answer of the wrong shape: the answer, and its shape beside the
  shape it should have, drawn to scale (a transposed ``dW`` is two rectangles
  with their sides swapped; a bias gradient not summed over the batch has one
  column per example where one column belongs);
* gradients on a scalar graph (notebooks 00 to 02): the graph, with the
  learner's gradient on each node, right or off by how much, and the first
  node, walking back from the loss, where they part (``bpcourse.scalarmaps``).

The reference values are never drawn or written; the error is, since "where
and by how much" is what the learner needs to find the mistake. The inputs of
a self-check are fresh random draws each time, so an answer read off a picture
fits that one draw only, and the next check draws new inputs.

The figure is shown only in a Jupyter kernel (``can_show``): a script or a
terminal prints the verdict alone. ``check(fn, picture=False)`` turns it off,
and the class grader's feedback files never carry it (they are text, and the
grader does not run ``check``). A figure that cannot be drawn is left out: the
verdict above it already says what is wrong in words.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bpcourse.exercises.core import Exercise, Inputs, NotGradable, Verdict, as_outputs, problem_with
from bpcourse.gradcheck import mismatch
from bpcourse.graph import topological_order
from bpcourse.minigraph import Node

if TYPE_CHECKING:  # the drawing modules (matplotlib) are imported when a picture is drawn
    from matplotlib.figure import Figure

__all__ = ["Watch", "can_show", "picture", "show"]

MAX_CALLS = 12  # the calls a Watch keeps: the judges' first trials are enough to find a wrong answer
WRONG_STATUSES = ("failed", "partial")
GRAPH_GRADIENTS = ("grads",)  # the outputs of an exercise that fills .grad on every node of a graph


@dataclass
class Called:
    """One call of the learner's function: its inputs, what it returned, and, on a graph, the gradients."""

    inputs: Inputs
    returned: Any
    graph_grads: list[Any] | None = None  # each node's .grad right after the call, in topological order


class Watch:
    """Keeps the first calls of a self-check: what the learner's function got and gave back."""

    def __init__(self) -> None:
        self.calls: list[Called] = []

    def around(self, call: Callable[[Inputs], Any]) -> Callable[[Inputs], Any]:
        """``call``, keeping each of its inputs and results (an exception passes through, unkept)."""

        def watched(inputs: Inputs) -> Any:
            returned = call(inputs)
            if len(self.calls) < MAX_CALLS:
                root = inputs.get("root") if len(inputs) == 1 else None
                grads = [node.grad for node in topological_order(root)] if isinstance(root, Node) else None
                self.calls.append(Called(inputs, returned, grads))
            return returned

        return watched


# -- choosing what to draw ------------------------------------------------------------------------
def picture(exercise: Exercise, verdict: Verdict, calls: list[Called]) -> Figure | None:
    """The error map of the first watched call whose answer is wrong; None when there is nothing to draw."""
    if verdict.status not in WRONG_STATUSES:
        return None
    from bpcourse.scalarmaps import SCALAR_GRAPHS, backward_map, rule_map

    failing = {line.what for line in verdict.lines if not line.ok}
    for called in calls:
        fig = None
        if called.graph_grads is not None and exercise.outputs == GRAPH_GRADIENTS:
            fig = backward_map(exercise, called.inputs["root"], called.graph_grads)
        elif exercise.name in SCALAR_GRAPHS:
            fig = rule_map(exercise, called.inputs, called.returned)
        if fig is None:
            fig = _array_map(exercise, called, failing)
        if fig is not None:
            return fig
    return None


def _array_map(exercise: Exercise, called: Called, failing: set[str]) -> Figure | None:
    """The map of the first output the verdict fails (a line named after it) that is wrong in this call.

    An exercise judged on other lines (statistics of random draws, an extreme input) gets none:
    its reference is not the one answer there is.
    """
    if exercise.reference is None:
        return None
    try:
        got = as_outputs(called.returned, exercise.outputs)
    except NotGradable:
        return None
    expected = exercise.reference(**called.inputs)
    for name, g, e in zip(exercise.outputs, got, expected, strict=True):
        arrays = isinstance(e, np.ndarray) and e.ndim >= 1 and isinstance(g, np.ndarray)
        if name not in failing or not arrays:
            continue
        if g.ndim not in (1, 2) or e.ndim not in (1, 2) or g.dtype.kind not in "fiu" or g.size == 0:
            continue
        if problem_with(name, g, e, exercise.rtol, exercise.atol) is None:
            continue
        from bpcourse.arraymap import error_figure, shape_figure

        if g.shape == e.shape:
            return error_figure(exercise.name, name, g, e, mismatch(g, e, exercise.atol, exercise.rtol))
        return shape_figure(exercise.name, name, g, e.shape)
    return None


# -- showing it -----------------------------------------------------------------------------------
def can_show() -> bool:
    """True inside a Jupyter kernel, where a figure under the verdict can be displayed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(exercise: Exercise, verdict: Verdict, watch: Watch) -> None:
    """Display the error map under the verdict, in a Jupyter kernel, when there is one to draw."""
    if verdict.status not in WRONG_STATUSES or not can_show():
        return
    try:
        fig = picture(exercise, verdict, watch.calls)
    except Exception:  # the verdict above already says what is wrong; a picture is a bonus
        return
    if fig is not None:
        from IPython.display import Image, display

        display(Image(data=png_bytes(fig), format="png"))


def png_bytes(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes: displayed as an image whatever matplotlib backend the kernel uses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
