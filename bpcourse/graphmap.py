"""A scalar graph with the learner's gradients on it: where they part from the right ones.

Used by the self-check's error map (``bpcourse.errormap``) for the exercises of
notebooks 01 and 02 whose answers are gradients on a graph of scalars. The
graph is drawn by ``bpcourse.plot.draw_graph`` (without its gradient lines);
each node the learner gave a gradient for is then coloured right or off, and
its box ends with the learner's gradient and a tick, or how far it is off.

The first node, in reverse topological order, whose gradient is off is
coloured apart: every node before it in that order (its children among them)
has the right gradient, so its own gradient is where the mistake was made. The
order walks back from the loss layer by layer (a node's layer is one more than
its deepest parent's), so of two such nodes the one farther from the inputs
comes first.
The right gradients themselves are never written, only the learner's and the
signed difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from bpcourse.graph import topological_order
from bpcourse.plot import draw_graph
from bpcourse.scalar import Value

RIGHT_FACE, RIGHT_EDGE = "#d1fae5", "#059669"
OFF_FACE, OFF_EDGE = "#fee2e2", "#dc2626"
FIRST_FACE, FIRST_EDGE = "#f87171", "#7f1d1d"
DATA_NOTE = "#374151"  # a note on what the exercise gave, not on the learner's answer


@dataclass(frozen=True)
class NodeMark:
    """The learner's gradient of one node and its signed error (learner − right)."""

    given: float
    error: float
    right: bool


def layered(order: list[Value]) -> list[Value]:
    """A topological order sorted by layer: a node's layer is one more than its deepest parent's."""
    depth: dict[int, int] = {}
    for node in order:
        depth[id(node)] = 1 + max((depth[id(p)] for p in node.parents), default=-1)
    return sorted(order, key=lambda node: depth[id(node)])


def first_parting(order: list[Value], marks: Mapping[int, NodeMark]) -> Value | None:
    """The first node, walking back layer by layer from the loss, whose mark is off; None if none.

    ``order``: a topological order of the graph; ``marks`` are keyed by ``id(node)``.
    """
    for node in reversed(layered(order)):
        mark = marks.get(id(node))
        if mark is not None and not mark.right:
            return node
    return None


def _signed(x: float) -> str:
    text = f"{abs(x):.2g}"
    return f"+{text}" if x >= 0 else f"−{text}"


def _note(mark: NodeMark) -> str:
    if mark.right:
        return f"yours {mark.given + 0.0:.3g} ✓"
    return f"yours {mark.given + 0.0:.3g}\noff by {_signed(mark.error)}"


def _boxes(fig: Figure) -> dict[int, FancyBboxPatch]:
    """The node boxes ``draw_graph`` drew, by their index in the graph's topological order."""
    found = {}
    for patch in fig.axes[0].patches:
        gid = patch.get_gid() or ""
        if gid.startswith("bpcourse-node-") and isinstance(patch, FancyBboxPatch):
            found[int(gid.split("-")[2])] = patch
    return found


def graph_map(
    root: Value, marks: Mapping[int, NodeMark], title: str, given: Mapping[int, tuple[str, str]] | None = None
) -> Figure:
    """Draw the graph under ``root`` with each marked node coloured right, off, or first off.

    ``marks`` maps ``id(node)`` to the learner's gradient of that node; nodes
    without a mark (the inner nodes of an exercise that returns the inputs'
    gradients only) keep the plain colours of ``draw_graph``. ``given``: more
    notes, ``id(node) -> (text, colour)``, for what the exercise gave (an upstream gradient).
    """
    order = topological_order(root)
    first = first_parting(order, marks)
    notes = {key: (_note(mark), RIGHT_EDGE if mark.right else FIRST_EDGE) for key, mark in marks.items()}
    notes.update(given or {})
    fig = draw_graph(root, title=title, show_grad=False, highlight_merges=False, notes=notes)
    ax = fig.axes[0]
    boxes = _boxes(fig)
    for i, node in enumerate(order):
        mark = marks.get(id(node))
        if mark is None or i not in boxes:
            continue
        box = boxes[i]
        face, edge = (RIGHT_FACE, RIGHT_EDGE) if mark.right else (OFF_FACE, OFF_EDGE)
        if node is first:
            face, edge = FIRST_FACE, FIRST_EDGE
            box.set_linewidth(box.get_linewidth() * 2)
        box.set_facecolor(face)
        box.set_edgecolor(edge)
    ax.get_legend().remove()
    ax.legend(
        handles=[
            Patch(facecolor=RIGHT_FACE, edgecolor=RIGHT_EDGE, label="yours is right"),
            Patch(facecolor=OFF_FACE, edgecolor=OFF_EDGE, label="yours is off"),
            Patch(facecolor=FIRST_FACE, edgecolor=FIRST_EDGE, label="first off, walking back"),
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    return fig


def marks_of(
    nodes: list[Value], given: np.ndarray, right_grads: np.ndarray, wrong: np.ndarray
) -> dict[int, NodeMark]:
    """Marks for ``nodes`` from the learner's gradients, the right ones and where they disagree."""
    return {
        id(node): NodeMark(float(g), float(g - r), not bool(w))
        for node, g, r, w in zip(nodes, given, right_grads, wrong, strict=True)
    }
