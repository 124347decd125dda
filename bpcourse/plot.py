"""Pictures of computation graphs, drawn with matplotlib alone.

``draw_graph(root)`` draws every node the root depends on as a rounded box
holding the node's name and the op that made it (``u = x × y``), its forward
value and, after ``root.backward()``, its gradient. Arrows run from each
parent to the child computed from it, so with the default ``rankdir="LR"``
the inputs sit on the left and the loss on the right.

A node used more than once (a fan-out in the forward graph) is a *merge* in
the backward graph: its gradient is the sum of one contribution per use. Such
nodes get their own colour. For scalar graphs each of their outgoing arrows
is labelled with the contribution sent back along it,
``child.grad * d(child)/d(node)``, and the box spells out the sum.

The layout is a small layered drawing, computed here:

1. layers: an op node sits one layer after its deepest parent, so the inputs
   of the first ops are in layer 0. Every other leaf (a weight, a constant)
   sits just before the first op that uses it: the ``2`` of ``x * 2`` deep in
   a graph, or the weights of the last layer of a network, then stand next to
   where they are used instead of pulling long arrows across the picture;
2. an arrow that skips layers gets an invisible waypoint in each layer it
   crosses, so it bends around the boxes in between;
3. within a layer, boxes are sorted by the mean position of their neighbours
   in the previous (then next) layer, a few sweeps, keeping the order with the
   fewest crossings;
4. each box is then moved as close as it can get to the mean position of its
   neighbours while keeping boxes apart (a least-squares fit under ordering
   constraints).

Positions are worked out in inches at the nominal font size; a figure that
would be too large, or an axes supplied by the caller, scales everything
(fonts included) down uniformly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path
from matplotlib.textpath import text_to_path

from bpcourse.graph import share, topological_order
from bpcourse.scalar import SCALAR_OPS, Value

__all__ = ["MAX_NODES", "draw_graph"]

MAX_NODES = 150
"""Largest graph ``draw_graph`` accepts; beyond this the boxes become unreadable."""

# -- colours ------------------------------------------------------------------------------
LEAF_FACE, LEAF_EDGE = "#dbeafe", "#2563eb"
OP_FACE, OP_EDGE = "#f3f4f6", "#4b5563"
MERGE_FACE, MERGE_EDGE = "#fed7aa", "#c2410c"
ROOT_EDGE = "#111827"
ARROW_COLOUR = "#6b7280"
TITLE_COLOUR, DATA_COLOUR, GRAD_COLOUR = "#111827", "#374151", "#9f1239"

# -- sizes, in points (fonts) and inches (layout) at scale 1 ------------------------------
TITLE_SIZE, BODY_SIZE, NOTE_SIZE, EDGE_LABEL_SIZE, LEGEND_SIZE = 10.5, 9.0, 8.0, 8.5, 8.0
LINE_SPACING = 1.45  # line height as a multiple of the font size
BOX_PAD_X, BOX_PAD_Y = 0.14, 0.08  # inside a box, around its text
LAYER_GAP = {"LR": 1.05, "TB": 0.75}  # between the boxes of consecutive layers
BOX_GAP = 0.28  # between neighbouring boxes of one layer
WAYPOINT_SIZE, WAYPOINT_GAP = 0.18, 0.12  # room taken by an arrow crossing a layer
MARGIN = 0.3
MAX_FIGURE_INCHES = 40.0
MIN_FIGURE_WIDTH = 5.0
MAX_ENTRIES_SHOWN = 4  # a merge node's gradient and shares show their entries up to this size

_DIRECTIONS = ("LR", "RL", "TB", "BT")


# -- reading a node, whichever engine made it ---------------------------------------------
def _is_scalar(node: Any) -> bool:
    """True for a node of the scalar engine (it keeps its local partials)."""
    return isinstance(node, Value)


def _symbol(node: Any) -> str:
    """The op's symbol: ``Value`` stores the op's name, ``Tensor`` the op class."""
    op = node.op
    if not op:
        return ""
    if isinstance(op, str):
        row = SCALAR_OPS.get(op)
        return row.symbol if row is not None else op
    return getattr(op, "symbol", None) or getattr(op, "name", None) or str(op)


def _number(value: float) -> str:
    return f"{value + 0.0:.4g}"  # + 0.0 turns -0.0 into 0.0


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape) if shape else "scalar"


def _describe(array_or_number: Any) -> str:
    """4 significant digits for a number; for an array its shape, and its value if it has one entry."""
    if isinstance(array_or_number, int | float):
        return _number(array_or_number)
    array = np.asarray(array_or_number)
    if array.size == 1:
        value = _number(float(array.reshape(())))
        return value if array.ndim == 0 else f"{value}  [{_shape(array.shape)}]"
    return f"[{_shape(array.shape)}]"


def _entries(array: np.ndarray) -> str:
    """The entries of a small array, 3 significant digits each: ``(0.745, -0.116, 1)ᵀ`` for a column."""
    text = ", ".join(f"{float(v) + 0.0:.3g}" for v in array.ravel())
    if array.ndim == 2 and array.shape[1] == 1:
        return f"({text})ᵀ"
    return f"[{text}]"


def _grad_text(node: Any, grad: Any, entries: bool = False) -> str:
    """The grad line of a box: a number, an array's entries (``entries``, small arrays) or its norm."""
    if getattr(node, "requires_grad", True) is False or _is_constant(node):
        return "no grad"
    if grad is None:
        return "grad ?"
    if isinstance(grad, int | float):
        return f"grad {_number(grad)}"
    array = np.asarray(grad)
    if array.size == 1:
        return f"grad {_number(float(array.reshape(())))}"
    if entries and array.size <= MAX_ENTRIES_SHOWN:
        return f"grad {_entries(array)}"
    return f"grad ‖·‖ {_number(float(np.linalg.norm(array)))}"


def _share_text(contribution: Any) -> str:
    """The label of an edge leaving a merge node: the share it sends back (a column: one entry a line)."""
    array = np.asarray(contribution)
    if array.size == 1:
        return f"{float(array.reshape(())) + 0.0:+.4g}"
    if array.size <= MAX_ENTRIES_SHOWN and array.ndim == 2 and array.shape[1] == 1:
        return "\n".join(f"{float(v) + 0.0:.3g}" for v in array.ravel())
    if array.size <= MAX_ENTRIES_SHOWN:
        return _entries(array)
    return f"‖·‖ {_number(float(np.linalg.norm(array)))}"


def _is_constant(node: Any) -> bool:
    """A scalar leaf without a name: a number the formula used, like the 3 of ``3 * x``."""
    return _is_scalar(node) and not node.parents and not node.label


def _operand(parent: Any) -> str:
    """How a parent is named inside its child's formula."""
    if parent.label:
        return parent.label
    if not parent.parents and np.size(parent.data) == 1:
        value = float(np.asarray(parent.data).reshape(()))
        return f"({_number(value)})" if value < 0 else _number(value)
    return "·"


def _formula(node: Any) -> str:
    """``x × y``, ``v**2``, ``tanh(z)``: the op applied to its parents' names."""
    symbol = _symbol(node)
    args = [_operand(p) for p in node.parents]
    if symbol == "**" and len(args) == 1 and _is_scalar(node):
        # Value does not keep the exponent n, but z = x**n and dz/dx = n x**(n-1) give it back.
        x, z = node.parents[0].data, node.data
        if x != 0.0 and z != 0.0:
            return f"{args[0]}**{_number(node.partials[0] * x / z)}"
        return f"{args[0]}**n"
    if len(args) == 2 and symbol in ("+", "-", "×", "÷", "@", "*", "/"):
        return f"{args[0]} {symbol} {args[1]}"
    if symbol in ("neg", "-") and len(args) == 1:
        return f"-{args[0]}"
    if symbol == "ᵀ" and len(args) == 1:
        return f"{args[0]}ᵀ"
    if not (symbol.isalnum() or len(symbol) == 1):
        # A symbol that is a formula of its own ("Wx+b", "½‖a-y‖²"): call the op by name.
        symbol = getattr(node.op, "name", None) or symbol
    return f"{symbol}({', '.join(args)})"


def _title(node: Any) -> str:
    label = str(node.label) if node.label else ""
    if _is_constant(node):
        return "constant"
    if not node.parents:
        return label
    formula = _formula(node)
    if len(formula) > 22:
        formula = _symbol(node)
    return f"{label} = {formula}" if label else formula


# -- the graph as plain indices -----------------------------------------------------------
@dataclass
class _Edge:
    parent: int
    child: int
    slot: int  # which of the child's parents this edge is
    contribution: Any = None  # what the child sends back along this edge (edges leaving a merge)
    items: list[int] = field(default_factory=list)  # layout items from parent to child


@dataclass
class _Line:
    text: str
    size: float
    colour: str
    weight: str = "normal"
    style: str = "normal"


@dataclass
class _Box:
    node: Any
    lines: list[_Line]
    width: float
    height: float
    kind: str  # "leaf", "op" or "merge"
    is_root: bool


def _text_width(line: _Line) -> float:
    prop = FontProperties(size=line.size, weight=line.weight, style=line.style)
    width, _, _ = text_to_path.get_text_width_height_descent(line.text, prop, ismath=False)
    return width / 72.0


def _sum_text(contributions: Sequence[float]) -> str:
    text = f"= {_number(contributions[0])}"
    for c in contributions[1:]:
        text += f" + {_number(c)}" if c >= 0 else f" − {_number(-c)}"
    return text


def _build_boxes(
    nodes: list[Any],
    edges: list[_Edge],
    root: Any,
    show_grad: bool,
    grads_known: bool,
    highlight: bool,
    notes: Mapping[int, tuple[str, str]] | None = None,
) -> list[_Box]:
    uses = [0] * len(nodes)
    sent: list[list[Any]] = [[] for _ in nodes]
    for edge in edges:
        uses[edge.parent] += 1
        if edge.contribution is not None:
            sent[edge.parent].append(edge.contribution)
    boxes = []
    for i, node in enumerate(nodes):
        merge = uses[i] > 1
        lines = []
        title = _title(node)
        if title:
            lines.append(_Line(title, TITLE_SIZE, TITLE_COLOUR, weight="bold"))
        lines.append(_Line(f"data {_describe(node.data)}", BODY_SIZE, DATA_COLOUR))
        if show_grad:
            grad = node.grad if grads_known else None
            lines.append(_Line(_grad_text(node, grad, entries=merge and highlight), BODY_SIZE, GRAD_COLOUR))
        if merge and highlight:
            scalars = all(np.size(c) == 1 for c in sent[i])
            if show_grad and grads_known and sent[i] and len(sent[i]) <= 3 and scalars:
                note = _sum_text([float(np.asarray(c).reshape(())) for c in sent[i]])
            else:
                note = f"Σ of {uses[i]} contributions"
            lines.append(_Line(note, NOTE_SIZE, MERGE_EDGE, style="italic"))
        if notes and id(node) in notes:
            text, colour = notes[id(node)]
            lines += [_Line(part, NOTE_SIZE, colour) for part in text.split("\n")]
        width = max(_text_width(line) for line in lines) + 2 * BOX_PAD_X
        height = sum(line.size * LINE_SPACING for line in lines) / 72.0 + 2 * BOX_PAD_Y
        kind = "merge" if merge else ("leaf" if not node.parents else "op")
        boxes.append(_Box(node, lines, max(width, 0.55), height, kind, node is root))
    return boxes


# -- layout ---------------------------------------------------------------------------------
def _layers(nodes: list[Any], index: dict[int, int], children: list[list[int]]) -> list[int]:
    """One layer after the deepest parent; a leaf goes just before its first consumer."""
    layer = [0] * len(nodes)
    for i, node in enumerate(nodes):
        if node.parents:
            layer[i] = 1 + max(layer[index[id(p)]] for p in node.parents)
    for i, node in enumerate(nodes):
        if not node.parents and children[i]:
            layer[i] = max(0, min(layer[c] for c in children[i]) - 1)
    return layer


def _fit_in_order(desired: Sequence[float], gaps: Sequence[float]) -> list[float]:
    """Positions p closest (least squares) to ``desired`` with p[i+1] - p[i] >= gaps[i].

    Subtracting the running sum of the gaps turns this into fitting a
    non-decreasing sequence, which pool-adjacent-violators solves exactly.
    """
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [sum, count] of pooled entries
    for d, o in zip(desired, offsets, strict=True):
        blocks.append([d - o, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted: list[float] = []
    for total, count in blocks:
        fitted.extend([total / count] * int(count))
    return [q + o for q, o in zip(fitted, offsets, strict=True)]


def _crossings(ranks: list[list[int]], down: list[list[int]]) -> int:
    total = 0
    for upper, lower in zip(ranks, ranks[1:], strict=False):
        where = {item: k for k, item in enumerate(lower)}
        pairs = [(a, where[b]) for a, item in enumerate(upper) for b in down[item]]
        for k, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[k + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


@dataclass
class _Layout:
    major: list[float]  # centre of each item along the layer axis
    minor: list[float]  # centre of each item across it


def _waypoints(
    edges: list[_Edge], layer: list[int], n: int
) -> tuple[list[int], list[list[int]], list[list[int]]]:
    """Items to lay out: the n boxes, then a waypoint per layer an edge crosses; their layers and links."""
    item_layer = list(layer)
    up: list[list[int]] = [[] for _ in range(n)]
    down: list[list[int]] = [[] for _ in range(n)]
    for edge in edges:
        chain = [edge.parent]
        for lay in range(layer[edge.parent] + 1, layer[edge.child]):
            item_layer.append(lay)
            up.append([])
            down.append([])
            chain.append(len(item_layer) - 1)
        chain.append(edge.child)
        for a, b in zip(chain, chain[1:], strict=False):
            down[a].append(b)
            up[b].append(a)
        edge.items = chain
    return item_layer, up, down


def _order_layers(ranks: list[list[int]], up: list[list[int]], down: list[list[int]]) -> list[list[int]]:
    """Ordering within layers: barycentre sweeps, keeping the order with the fewest crossings seen."""

    def reorder(lay: int, neighbours: list[list[int]], ref: list[int]) -> None:
        where = {item: k for k, item in enumerate(ref)}
        current = {item: k for k, item in enumerate(ranks[lay])}

        def key(item: int) -> tuple[float, int]:
            near = [where[j] for j in neighbours[item]]
            return (sum(near) / len(near) if near else current[item], current[item])

        ranks[lay].sort(key=key)

    best = [list(r) for r in ranks]
    best_crossings = _crossings(ranks, down)
    for sweep in range(6):
        if best_crossings == 0:
            break
        if sweep % 2 == 0:
            for lay in range(1, len(ranks)):
                reorder(lay, up, ranks[lay - 1])
        else:
            for lay in range(len(ranks) - 2, -1, -1):
                reorder(lay, down, ranks[lay + 1])
        count = _crossings(ranks, down)
        if count < best_crossings:
            best, best_crossings = [list(r) for r in ranks], count
    return best


def _layout(boxes: list[_Box], edges: list[_Edge], layer: list[int], horizontal: bool) -> _Layout:
    n = len(boxes)
    item_layer, up, down = _waypoints(edges, layer, n)
    ranks: list[list[int]] = [[] for _ in range(max(layer) + 1)]
    for item, lay in enumerate(item_layer):
        ranks[lay].append(item)
    ranks = _order_layers(ranks, up, down)

    # Sizes: along the layer axis (major) and across it (minor).
    def extent(item: int, across: bool) -> float:
        if item >= n:
            return WAYPOINT_SIZE if across else 0.0
        box = boxes[item]
        return (box.height if across else box.width) if horizontal else (box.width if across else box.height)

    def gap(a: int, b: int) -> float:
        space = BOX_GAP if a < n and b < n else WAYPOINT_GAP
        return (extent(a, True) + extent(b, True)) / 2 + space

    minor = [0.0] * len(item_layer)
    for rank in ranks:
        position = 0.0
        for k, item in enumerate(rank):
            if k:
                position += gap(rank[k - 1], item)
            minor[item] = position
        shift = position / 2
        for item in rank:
            minor[item] -= shift

    def place(lay: int, neighbours: list[list[int]]) -> None:
        rank = ranks[lay]
        desired = []
        for item in rank:
            near = neighbours[item]
            desired.append(sum(minor[j] for j in near) / len(near) if near else minor[item])
        gaps = [gap(a, b) for a, b in zip(rank, rank[1:], strict=False)]
        for item, value in zip(rank, _fit_in_order(desired, gaps), strict=True):
            minor[item] = value

    both = [u + d for u, d in zip(up, down, strict=True)]
    for _ in range(3):
        for lay in range(1, len(ranks)):
            place(lay, up)
        for lay in range(len(ranks) - 2, -1, -1):
            place(lay, down)
    for lay in range(len(ranks)):
        place(lay, both)

    layer_extent = [max((extent(i, False) for i in rank), default=0.0) for rank in ranks]
    centres, position = [], 0.0
    gap_between = LAYER_GAP["LR" if horizontal else "TB"]
    for lay, size in enumerate(layer_extent):
        if lay:
            position += (layer_extent[lay - 1] + size) / 2 + gap_between
        centres.append(position)
    major = [centres[lay] for lay in item_layer]
    return _Layout(major, minor)


# -- drawing ----------------------------------------------------------------------------------
Rect = tuple[float, float, float, float]  # left, bottom, right, top


def _overlap(rect: Rect, others: Sequence[Rect]) -> float:
    """Total area ``rect`` shares with ``others``."""
    left, bottom, right, top = rect
    area = 0.0
    for l2, b2, r2, t2 in others:
        w = min(right, r2) - max(left, l2)
        h = min(top, t2) - max(bottom, b2)
        if w > 0 and h > 0:
            area += w * h
    return area


def _bezier_point(p0: np.ndarray, c1: np.ndarray, c2: np.ndarray, p3: np.ndarray, t: float) -> np.ndarray:
    s = 1.0 - t
    return s**3 * p0 + 3 * s * s * t * c1 + 3 * s * t * t * c2 + t**3 * p3


@dataclass
class _Canvas:
    """Where the drawing goes: layout inches to the axes, and the factor fonts are scaled by."""

    ax: Axes
    scale: float
    forward: np.ndarray  # unit vector from the inputs towards the output
    across: np.ndarray  # unit vector along a layer
    centre: list[np.ndarray]  # the centre of each box

    def pts(self, size: float) -> float:
        return size * self.scale


def _graph_edges(nodes: list[Any], label_shares: bool) -> tuple[list[_Edge], list[list[int]]]:
    """One edge per use of a parent (with the share it sends back, leaving a merge); each node's children."""
    index = {id(node): i for i, node in enumerate(nodes)}
    edges: list[_Edge] = []
    children: list[list[int]] = [[] for _ in nodes]
    for c, node in enumerate(nodes):
        for slot, parent in enumerate(node.parents):
            edges.append(_Edge(index[id(parent)], c, slot))
            children[index[id(parent)]].append(c)
    if label_shares:
        for edge in edges:
            if len(children[edge.parent]) > 1:
                edge.contribution = share(nodes[edge.child], edge.slot)
    return edges, children


def _legend_entries(kinds: set[str], label_shares: bool, highlight: bool) -> list[tuple[Any, str]]:
    entries: list[tuple[Any, str]] = [
        (Patch(facecolor=LEAF_FACE, edgecolor=LEAF_EDGE), "leaf: input or constant"),
        (Patch(facecolor=OP_FACE, edgecolor=OP_EDGE), "op node"),
    ]
    if "merge" not in kinds:
        return entries
    merge_box = Patch(facecolor=MERGE_FACE, edgecolor=MERGE_EDGE)
    entries.append((merge_box, "merge node: used more than once, grads summed"))
    if label_shares:
        edge = "merge edge, labelled with the share it sends back: child.grad × ∂child/∂node"
        entries.append((Line2D([], [], color=MERGE_EDGE, lw=1.6), edge))
    elif highlight:
        entries.append((Line2D([], [], color=MERGE_EDGE, lw=1.6), "edge leaving a merge node"))
    return entries


Extent = tuple[float, float, float, float]  # x0, x1, y0, y1 of the drawing, in layout inches


def _frame(
    boxes: list[_Box],
    centre: list[np.ndarray],
    arc_room: float,
    legend: list[tuple[Any, str]],
    title: str | None,
) -> tuple[Extent, int, float]:
    """The drawing's extent (x0, x1, y0, y1) in layout inches, the legend's columns, the title's height."""
    corners = []
    for i, box in enumerate(boxes):
        corners.append(centre[i] - [box.width / 2, box.height / 2])
        corners.append(centre[i] + [box.width / 2, box.height / 2])
    low, high = np.min(corners, axis=0), np.max(corners, axis=0)
    low, high = low - MARGIN - arc_room, high + MARGIN + arc_room
    low[1] += MARGIN / 2  # the legend below brings its own space
    entry_widths = [0.55 + _text_width(_Line(text, LEGEND_SIZE, TITLE_COLOUR)) for _, text in legend]
    width = max(high[0] - low[0], MIN_FIGURE_WIDTH)
    columns = len(entry_widths)
    while columns > 1 and sum(sorted(entry_widths)[-columns:]) + 0.3 > width:
        columns -= 1
    rows = math.ceil(len(entry_widths) / columns)
    legend_height = 0.2 + rows * LEGEND_SIZE * 1.9 / 72
    title_height = 0.45 if title else 0.0
    centre_x = (low[0] + high[0]) / 2
    extent = (centre_x - width / 2, centre_x + width / 2, low[1] - legend_height, high[1] + title_height)
    return extent, columns, title_height


def _axes(ax: Axes | None, extent: Extent) -> tuple[Figure, Axes, float]:
    """A new figure sized to the drawing, or the caller's axes; and the factor everything is scaled by."""
    x0, x1, y0, y1 = extent
    natural = (x1 - x0, y1 - y0)
    if ax is None:
        import matplotlib.pyplot as plt

        scale = min(1.0, MAX_FIGURE_INCHES / natural[0], MAX_FIGURE_INCHES / natural[1])
        # Made by pyplot, so that in Jupyter the inline backend is set up and shows the
        # returned figure; then released by pyplot, so that it is shown once and not
        # kept alive. Closing leaves a bare canvas: give it an Agg one (headless, can draw).
        fig = plt.figure(figsize=(natural[0] * scale, natural[1] * scale))
        plt.close(fig)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    else:
        fig = ax.figure
        position = ax.get_position()
        fig_width, fig_height = fig.get_size_inches()
        scale = min(position.width * fig_width / natural[0], position.height * fig_height / natural[1])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    return fig, ax, scale


def _draw_boxes(canvas: _Canvas, boxes: list[_Box]) -> None:
    colours = {"leaf": (LEAF_FACE, LEAF_EDGE), "op": (OP_FACE, OP_EDGE), "merge": (MERGE_FACE, MERGE_EDGE)}
    for i, box in enumerate(boxes):
        face, edge_colour = colours[box.kind]
        pad = min(0.07, box.height / 4)
        (cx, cy) = canvas.centre[i]
        patch = FancyBboxPatch(
            (cx - box.width / 2 + pad, cy - box.height / 2 + pad),
            box.width - 2 * pad,
            box.height - 2 * pad,
            boxstyle=f"round,pad={pad}",
            facecolor=face,
            edgecolor=ROOT_EDGE if box.is_root else edge_colour,
            linewidth=canvas.pts(2.2 if box.is_root else 1.2),
            zorder=3,
            gid=f"bpcourse-node-{i}-{box.kind}",
        )
        canvas.ax.add_patch(patch)
        top = cy + box.height / 2 - BOX_PAD_Y
        for line in box.lines:
            step = line.size * LINE_SPACING / 72.0
            canvas.ax.text(
                cx,
                top - step / 2,
                line.text,
                ha="center",
                va="center",
                fontsize=canvas.pts(line.size),
                color=line.colour,
                fontweight=line.weight,
                fontstyle=line.style,
                zorder=4,
                parse_math=False,
                gid=f"bpcourse-text-{i}",
            )
            top -= step


def _ports(canvas: _Canvas, boxes: list[_Box], edges: list[_Edge], minor: list[float], horizontal: bool):
    """Where each edge leaves its parent and enters its child, spread across the box's side."""
    exit_offset: dict[int, float] = {}
    entry_offset: dict[int, float] = {}
    for i, box in enumerate(boxes):
        half_side = (box.height if horizontal else box.width) / 2
        outgoing = sorted(
            (k for k, e in enumerate(edges) if e.parent == i),
            key=lambda k: (minor[edges[k].items[1]], edges[k].slot),
        )
        incoming = sorted(
            (k for k, e in enumerate(edges) if e.child == i),
            key=lambda k: (minor[edges[k].items[-2]], edges[k].slot),
        )
        for group, offsets in ((outgoing, exit_offset), (incoming, entry_offset)):
            spread = min(1.2 * half_side, 0.16 * (len(group) - 1))
            for rank, k in enumerate(group):
                offsets[k] = 0.0 if len(group) < 2 else spread * (rank / (len(group) - 1) - 0.5)
    return exit_offset, entry_offset


Segment = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # a cubic Bézier: start, controls, end


def _draw_arrows(
    canvas: _Canvas,
    boxes: list[_Box],
    edges: list[_Edge],
    minor: list[float],
    horizontal: bool,
    highlight: bool,
) -> list[list[Segment]]:
    """Each edge as a chain of cubic Bézier segments; returns the segments, for placing labels."""

    def half(i: int) -> float:
        return (boxes[i].width if horizontal else boxes[i].height) / 2

    exit_offset, entry_offset = _ports(canvas, boxes, edges, minor, horizontal)
    pair_count: dict[tuple[int, int], int] = {}
    for edge in edges:
        pair_count[edge.parent, edge.child] = pair_count.get((edge.parent, edge.child), 0) + 1
    forward, across, centre = canvas.forward, canvas.across, canvas.centre
    shapes: list[list[Segment]] = []
    for k, edge in enumerate(edges):
        start = centre[edge.parent] + forward * half(edge.parent) + across * exit_offset[k]
        end = centre[edge.child] - forward * half(edge.child) + across * entry_offset[k]
        emphasis = highlight and boxes[edge.parent].kind == "merge"
        style = {
            "arrowstyle": "-|>,head_length=0.55,head_width=0.28",
            "mutation_scale": canvas.pts(11),
            "color": MERGE_EDGE if emphasis else ARROW_COLOUR,
            "linewidth": canvas.pts(1.5 if emphasis else 1.1),
            "zorder": 2,
            "shrinkA": 0,
            "shrinkB": 0,
            "gid": f"bpcourse-edge-{k}",
        }
        if pair_count[edge.parent, edge.child] > 1 and len(edge.items) == 2:
            # The same node twice as parents of one child (x * x): bend each copy
            # outwards, towards the side its ports were moved to.
            chord = end - start
            normal = np.array([chord[1], -chord[0]])
            side = float(np.dot(across * (exit_offset[k] + entry_offset[k]), normal))
            rad = 0.0 if abs(side) < 1e-12 else math.copysign(0.35, side)
            arrow = FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad:.3f}", **style)
            control = (start + end) / 2 + rad * normal  # the quadratic curve arc3 draws
            segments = [(start, start + (control - start) * 2 / 3, end + (control - end) * 2 / 3, end)]
        else:
            points = [start] + [centre[item] for item in edge.items[1:-1]] + [end]
            segments = []
            for p0, p3 in zip(points, points[1:], strict=False):
                reach = float(np.dot(p3 - p0, forward)) / 2
                segments.append((p0, p0 + forward * reach, p3 - forward * reach, p3))
            verts = [points[0]] + [v for seg in segments for v in seg[1:]]
            codes = [Path.MOVETO] + [Path.CURVE4] * (3 * len(segments))
            arrow = FancyArrowPatch(path=Path(np.array(verts), codes), **style)
        canvas.ax.add_patch(arrow)
        shapes.append(segments)
    return shapes


def _label_edges(canvas: _Canvas, boxes: list[_Box], edges: list[_Edge], shapes: list[list[Segment]]) -> None:
    """Each share on its edge: the first spot along it (nearest the merge first) that covers nothing."""
    taken = [
        (c[0] - b.width / 2, c[1] - b.height / 2, c[0] + b.width / 2, c[1] + b.height / 2)
        for c, b in zip(canvas.centre[: len(boxes)], boxes, strict=True)
    ]
    for k, edge in enumerate(edges):
        if edge.contribution is None:
            continue
        text = _share_text(edge.contribution)
        rows = text.split("\n")
        widest = max(_text_width(_Line(row, EDGE_LABEL_SIZE, MERGE_EDGE, weight="bold")) for row in rows)
        half_w = (widest + 0.14) / 2
        half_h = (len(rows) * EDGE_LABEL_SIZE * 1.25 / 72 + 0.1) / 2
        segments = shapes[k]
        spots = [(0, t) for t in (0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85, 0.1, 0.9)]
        spots += [(j, t) for j in range(1, len(segments)) for t in (0.5, 0.3, 0.7)]
        best_spot, best_area = None, math.inf
        for j, t in spots:
            x, y = _bezier_point(*segments[j], t)
            area = _overlap((x - half_w, y - half_h, x + half_w, y + half_h), taken)
            if area < best_area:
                best_spot, best_area = (x, y), area
            if area == 0.0:
                break
        x, y = best_spot
        taken.append((x - half_w, y - half_h, x + half_w, y + half_h))
        frame = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": MERGE_EDGE}
        canvas.ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=canvas.pts(EDGE_LABEL_SIZE),
            fontweight="bold",
            color=MERGE_EDGE,
            zorder=5,
            parse_math=False,
            gid=f"bpcourse-edge-label-{k}",
            bbox={**frame, "linewidth": canvas.pts(0.8)},
        )


def _directions(rankdir: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from the inputs towards the output, and along a layer, for ``rankdir``."""
    forward = {"LR": (1.0, 0.0), "RL": (-1.0, 0.0), "TB": (0.0, -1.0), "BT": (0.0, 1.0)}[rankdir]
    across = {"LR": (0.0, -1.0), "RL": (0.0, -1.0), "TB": (1.0, 0.0), "BT": (1.0, 0.0)}[rankdir]
    return np.array(forward), np.array(across)


def draw_graph(
    root: Any,
    ax: Axes | None = None,
    *,
    highlight_merges: bool = True,
    title: str | None = None,
    show_grad: bool = True,
    rankdir: str = "LR",
    notes: Mapping[int, tuple[str, str]] | None = None,
) -> Figure:
    """Draw the computation graph under ``root`` (a ``Value`` or a ``Tensor``).

    Each node is a box with its name and op, its value and its gradient; an
    arrow runs from each parent to each child. Leaves, op nodes and merge
    nodes (used more than once, so their gradient is a sum) have their own
    colours, explained by a legend. A scalar leaf without a label is drawn as
    a constant (a number the formula used, like the 3 of ``3 * x``), without a
    gradient.

    Args:
        root: the output node, usually a loss after ``root.backward()``.
        ax: draw into this axes; by default a new figure sized to the graph.
        highlight_merges: when gradients are known, label each arrow leaving a
            merge node with the share it sends back, and show the merge node's
            gradient so that the sum can be read: numbers for scalars (the box
            spells out the sum), the entries of arrays of up to
            ``MAX_ENTRIES_SHOWN`` entries, the norm of larger ones.
        title: text above the graph.
        show_grad: add a ``grad`` line to each box. Gradients count as unknown
            ("grad ?") before the first ``backward()``; a scalar graph whose
            root has gradient 0 is taken to be in that state.
        rankdir: where the inputs go: "LR" (inputs left, output right), "RL",
            "TB" (inputs on top) or "BT".
        notes: extra lines at the bottom of some boxes, ``id(node) -> (text, colour)``
            (a text may hold several lines).

    Returns:
        The matplotlib ``Figure``: it displays in Jupyter, and
        ``fig.savefig("graph.png")`` or ``"graph.svg"`` writes it to a file.

    Raises:
        ValueError: for a graph of more than ``MAX_NODES`` nodes, or an unknown ``rankdir``.
    """
    if rankdir not in _DIRECTIONS:
        raise ValueError(f"rankdir must be one of {', '.join(_DIRECTIONS)}, not {rankdir!r}")
    nodes = topological_order(root)
    if len(nodes) > MAX_NODES:
        raise ValueError(
            f"this graph has {len(nodes)} nodes, more than draw_graph can show legibly ({MAX_NODES}). "
            "Draw a smaller graph: fewer layers or units, a batch of one, or a sub-expression "
            "(draw_graph(node) shows only what node depends on)."
        )
    horizontal = rankdir in ("LR", "RL")
    grads_known = root.grad is not None and not (_is_scalar(root) and root.grad == 0.0)
    label_shares = highlight_merges and grads_known
    edges, children = _graph_edges(nodes, label_shares)
    boxes = _build_boxes(nodes, edges, root, show_grad, grads_known, highlight_merges, notes)
    index = {id(node): i for i, node in enumerate(nodes)}
    lay = _layout(boxes, edges, _layers(nodes, index, children), horizontal)

    forward, across = _directions(rankdir)
    centre = [forward * major + across * minor for major, minor in zip(lay.major, lay.minor, strict=True)]
    arc_room = 0.25 if any(len(n.parents) == 2 and n.parents[0] is n.parents[1] for n in nodes) else 0.0
    legend = _legend_entries({box.kind for box in boxes}, label_shares, highlight_merges)
    extent, columns, title_height = _frame(boxes, centre, arc_room, legend, title)
    fig, ax, scale = _axes(ax, extent)
    canvas = _Canvas(ax, scale, forward, across, centre)

    _draw_boxes(canvas, boxes)
    shapes = _draw_arrows(canvas, boxes, edges, lay.minor, horizontal, highlight_merges)
    _label_edges(canvas, boxes, edges, shapes)
    if title:
        x0, x1, _, y1 = extent
        ax.text((x0 + x1) / 2, y1 - title_height / 2 - 0.05, title, ha="center", va="center",
                fontsize=canvas.pts(12), fontweight="bold", color=TITLE_COLOUR, parse_math=False)  # fmt: skip
    ax.legend(
        [handle for handle, _ in legend],
        [text for _, text in legend],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=columns,
        fontsize=canvas.pts(LEGEND_SIZE),
        frameon=False,
        handlelength=1.6,
        columnspacing=1.2,
    )
    return fig
