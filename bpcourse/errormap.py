"""The error map under a self-check's verdict: where a wrong answer is wrong, as a picture.

``check(fn)`` watches the calls it makes (``Watch``); when the verdict is not a
pass, ``picture`` draws one small figure from the first call whose answer was
wrong:

* an array answer of the right shape: the answer itself and a heatmap of the
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
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from bpcourse.exercises.core import Exercise, Inputs, NotGradable, Verdict, as_outputs, problem_with
from bpcourse.gradcheck import mismatch
from bpcourse.graph import topological_order
from bpcourse.minigraph import Node
from bpcourse.scalarmaps import SCALAR_GRAPHS, backward_map, rule_map

__all__ = ["Watch", "can_show", "picture", "show"]

MAX_CALLS = 12  # the calls a Watch keeps: the judges' first trials are enough to find a wrong answer
WRONG_STATUSES = ("failed", "partial")
GRAPH_GRADIENTS = ("grads",)  # the outputs of an exercise that fills .grad on every node of a graph
YOURS_COLOUR, NEEDED_COLOUR = "#2563eb", "#9ca3af"


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
        if g.shape == e.shape:
            return error_figure(exercise.name, name, g, e, mismatch(g, e, exercise.atol, exercise.rtol))
        return shape_figure(exercise.name, name, g, e.shape)
    return None


# -- arrays ---------------------------------------------------------------------------------------
def _as_matrix(array: np.ndarray) -> np.ndarray:
    """A 1-D array as one row, so that it can be drawn as a matrix."""
    return np.asarray(array, dtype=np.float64).reshape(1, -1) if array.ndim == 1 else np.asarray(array, float)


def _shape_text(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else f"({shape[0]}, {shape[1]})"


def _matrix_axes(ax: Any, shape: tuple[int, ...], title: str) -> None:
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"column (of {cols})", fontsize=8)
    ax.set_ylabel(f"row (of {rows})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_xticks(range(0, cols, max(1, cols // 8)))
    ax.set_yticks(range(0, rows, max(1, rows // 8)))


def _draw_answer(fig: Figure, ax: Any, output: str, answer: np.ndarray) -> None:
    image = ax.imshow(_as_matrix(answer), cmap="viridis", aspect="auto")
    image.set_gid("errormap-answer")
    _matrix_axes(ax, answer.shape, f"your {output}, shape {_shape_text(answer.shape)}")
    _colourbar(fig, image, ax, "your value")


def _colourbar(fig: Figure, image: Any, ax: Any, label: str) -> None:
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _figure(width: float = 7.6, height: float = 3.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", dpi=80)


def error_figure(
    exercise: str, output: str, answer: np.ndarray, reference: np.ndarray, wrong: np.ndarray
) -> Figure:
    """The answer and the heatmap of answer − reference, the wrong entries marked.

    ``answer``, ``reference`` and ``wrong`` (where they disagree) have one shape, (m, n) or (n,);
    a 1-D array is drawn as one row.
    """
    error = _as_matrix(answer) - _as_matrix(reference)
    wrong = wrong.reshape(error.shape)
    fig = _figure()
    left, right = fig.subplots(1, 2)
    _draw_answer(fig, left, output, answer)
    finite = np.abs(error[np.isfinite(error)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0  # a symmetric scale around 0
    image = right.imshow(error, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    image.set_gid("errormap-error")
    _matrix_axes(right, answer.shape, f"where it is off: yours − right, shape {_shape_text(answer.shape)}")
    _colourbar(fig, image, right, "yours − right")
    rows, cols = np.nonzero(wrong)
    right.scatter(
        cols,
        rows,
        s=30,
        marker="s",
        facecolors="none",
        edgecolors="black",
        linewidths=0.8,
        gid="errormap-wrong",
    )
    fig.legend(
        handles=[Line2D([], [], marker="s", ls="", mfc="none", mec="black", label="wrong entry")],
        loc="outside lower right",
        fontsize=7,
        frameon=False,
    )
    fig.suptitle(f"{exercise}: {output}, {int(wrong.sum())} of {wrong.size} entries wrong", fontsize=10)
    return fig


def shape_note(got: tuple[int, ...], needed: tuple[int, ...]) -> str:
    """What a wrong shape says, in words: sides swapped, one column per example, a lost axis."""
    if len(got) == 2 and got == needed[::-1]:
        return "the sides are swapped: a transposed answer"
    if len(got) == 2 and len(needed) == 2 and got[0] == needed[0] and needed[1] == 1 and got[1] > 1:
        return f"{got[1]} columns where one belongs: one column per example, not summed over the batch"
    if len(got) == 1:
        return "a flat array: the second axis is lost"
    return "a different shape"


def shape_figure(exercise: str, output: str, answer: np.ndarray, needed: tuple[int, ...]) -> Figure:
    """The answer, and its shape beside the shape it should have, as rectangles drawn to scale.

    ``answer``: (m, n) or (n,), drawn as a matrix (a 1-D array as one row); ``needed``: the right shape.
    """
    fig = _figure()
    left, right = fig.subplots(1, 2)
    _draw_answer(fig, left, output, answer)
    (h_got, w_got), (h_need, w_need) = (_as_matrix(np.zeros(s)).shape for s in (answer.shape, needed))
    gap = 1.0
    right.add_patch(
        Rectangle(
            (0, 0),
            w_got,
            h_got,
            facecolor=YOURS_COLOUR,
            alpha=0.35,
            edgecolor=YOURS_COLOUR,
            lw=2,
            gid="errormap-yours",
        )
    )
    right.add_patch(
        Rectangle(
            (w_got + gap, 0),
            w_need,
            h_need,
            facecolor=NEEDED_COLOUR,
            alpha=0.35,
            edgecolor="black",
            lw=2,
            ls="--",
            gid="errormap-needed",
        )
    )
    right.text(w_got / 2, -0.3, _shape_text(answer.shape), ha="center", va="bottom", fontsize=9)
    right.text(w_got + gap + w_need / 2, -0.3, _shape_text(needed), ha="center", va="bottom", fontsize=9)
    right.set_xlim(-0.5, w_got + gap + w_need + 0.5)
    right.set_ylim(max(h_got, h_need) + 0.5, -1.5)
    right.set_yticks(range(0, max(h_got, h_need) + 1, max(1, max(h_got, h_need) // 6)))
    right.set_aspect("equal")
    right.set_xlabel("columns", fontsize=8)
    right.set_ylabel("rows", fontsize=8)
    right.tick_params(labelsize=7)
    right.set_title(shape_note(answer.shape, needed), fontsize=9, wrap=True)
    right.set_gid("errormap-shapes")
    right.legend(
        handles=[
            Patch(facecolor=YOURS_COLOUR, alpha=0.35, label=f"your {output}"),
            Patch(
                facecolor=NEEDED_COLOUR,
                alpha=0.35,
                ls="--",
                edgecolor="black",
                label="the shape it should have",
            ),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        fontsize=7,
        frameon=False,
        ncol=2,
    )
    fig.suptitle(
        f"{exercise}: {output} has shape {_shape_text(answer.shape)}, not {_shape_text(needed)}", fontsize=10
    )
    return fig


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
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
