"""The error map of an array answer: where it is off, or its shape beside the right one.

Drawn by ``bpcourse.errormap`` under a wrong self-check. ``error_figure``: the
answer and a heatmap of the signed error, answer − reference, on a scale
symmetric around 0, the wrong entries marked. ``shape_figure``: the answer and
two rectangles drawn to scale, its shape and the shape it should have. The
reference values themselves are never drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

YOURS_COLOUR, NEEDED_COLOUR = "#2563eb", "#9ca3af"


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
