"""Tests of bpcourse.plot.draw_graph: boxes, colours, merge labels, layout, files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from bpcourse import Tensor, Value  # noqa: E402
from bpcourse.graph import topological_order  # noqa: E402
from bpcourse.plot import MAX_NODES, MERGE_FACE, draw_graph  # noqa: E402
from bpcourse.tensor import affine, mse  # noqa: E402


# -- helpers ----------------------------------------------------------------------------------
def worked_example(x=2.0, y=-1.5, backward=True):
    xv, yv = Value(x, "x"), Value(y, "y")
    u = xv * yv
    u.label = "u"
    v = u + yv
    v.label = "v"
    loss = v**2
    loss.label = "L"
    if backward:
        loss.backward()
    return xv, yv, u, v, loss


def node_boxes(fig):
    """The node boxes, in the order of topological_order(root)."""
    (ax,) = fig.axes
    boxes = [
        p
        for p in ax.patches
        if isinstance(p, FancyBboxPatch) and (p.get_gid() or "").startswith("bpcourse-node-")
    ]
    return sorted(boxes, key=lambda p: int(p.get_gid().split("-")[2]))


def edges(fig):
    (ax,) = fig.axes
    return [
        p
        for p in ax.patches
        if isinstance(p, FancyArrowPatch) and (p.get_gid() or "").startswith("bpcourse-edge-")
    ]


def texts(fig, prefix):
    (ax,) = fig.axes
    return [t for t in ax.texts if (t.get_gid() or "").startswith(prefix)]


def box_rect(patch):
    """(left, bottom, right, top) of a box, its rounded padding included."""
    pad = patch.get_boxstyle().pad
    x, y, w, h = patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()
    return x - pad, y - pad, x + w + pad, y + h + pad


def small_mlp():
    """A scalar net with two tanh units: about 30 nodes and several merges."""
    rng = np.random.default_rng(3)
    xs = [Value(float(rng.uniform(-1, 1)), f"x{i}") for i in range(3)]
    hidden = []
    for j in range(2):
        acc = Value(0.1, f"b{j}")
        for i, x in enumerate(xs):
            acc = acc + Value(float(rng.uniform(-1, 1)), f"w{j}{i}") * x
        hidden.append(acc.tanh())
    out = hidden[0] * Value(0.7, "v0") + hidden[1] * Value(-0.4, "v1")
    loss = (out - 0.5) ** 2
    loss.backward()
    return loss


# -- the worked example -------------------------------------------------------------------------
def test_returns_a_figure_with_one_box_per_node():
    *_, loss = worked_example()
    fig = draw_graph(loss)
    assert isinstance(fig, Figure)
    assert len(node_boxes(fig)) == len(topological_order(loss)) == 5
    # one arrow per (parent, child) use: x->u, y->u, u->v, y->v, v->L
    assert len(edges(fig)) == 5


def test_boxes_show_label_op_value_and_grad():
    *_, loss = worked_example()
    fig = draw_graph(loss)
    shown = {t.get_text() for t in texts(fig, "bpcourse-text-")}
    assert {"x", "y", "u = x × y", "v = u + y", "L = v**2"} <= shown
    assert {"data 2", "data -1.5", "data -3", "data -4.5", "data 20.25"} <= shown
    assert {"grad 13.5", "grad -27", "grad -9", "grad 1"} <= shown


def test_merge_node_has_its_own_colour():
    x, y, u, v, loss = worked_example()
    order = topological_order(loss)
    fig = draw_graph(loss)
    boxes = node_boxes(fig)
    colour = {id(node): boxes[i].get_facecolor() for i, node in enumerate(order)}
    assert colour[id(y)] == pytest.approx(to_rgba(MERGE_FACE))
    assert colour[id(y)] != pytest.approx(colour[id(x)])  # y and x are both leaves
    assert colour[id(y)] != pytest.approx(colour[id(u)])
    assert colour[id(u)] == pytest.approx(colour[id(v)])  # plain op nodes share a colour


def test_merge_edges_are_labelled_with_the_contributions_sent_back():
    x, y, u, v, loss = worked_example()
    fig = draw_graph(loss)
    labels = sorted(t.get_text() for t in texts(fig, "bpcourse-edge-label-"))
    # via u: dL/du * du/dy = -9 * 2; via v: dL/dv * dv/dy = -9 * 1
    assert labels == ["-18", "-9"]
    assert sum(float(s) for s in labels) == pytest.approx(y.grad)
    shown = {t.get_text() for t in texts(fig, "bpcourse-text-")}
    assert "= -18 − 9" in shown


def test_no_merge_labels_when_turned_off_or_before_backward():
    *_, loss = worked_example()
    assert texts(draw_graph(loss, highlight_merges=False), "bpcourse-edge-label-") == []
    *_, fresh = worked_example(backward=False)
    fig = draw_graph(fresh)
    assert texts(fig, "bpcourse-edge-label-") == []
    grads = [t.get_text() for t in texts(fig, "bpcourse-text-") if t.get_text().startswith("grad")]
    assert grads and all(g == "grad ?" for g in grads)


def test_show_grad_false_leaves_out_the_grad_lines():
    *_, loss = worked_example()
    fig = draw_graph(loss, show_grad=False)
    assert not [t for t in texts(fig, "bpcourse-text-") if t.get_text().startswith("grad")]


def test_title_is_drawn():
    *_, loss = worked_example()
    fig = draw_graph(loss, title="the worked example")
    assert "the worked example" in [t.get_text() for t in fig.axes[0].texts]


def test_inputs_left_of_output_and_top_to_bottom():
    x, y, u, v, loss = worked_example()
    order = topological_order(loss)

    def centres(fig):
        return {id(n): box_rect(b) for n, b in zip(order, node_boxes(fig), strict=True)}

    lr = centres(draw_graph(loss))
    assert lr[id(x)][2] < lr[id(u)][0] < lr[id(u)][2] < lr[id(v)][0] < lr[id(v)][2] < lr[id(loss)][0]
    tb = centres(draw_graph(loss, rankdir="TB"))
    assert tb[id(x)][1] > tb[id(u)][3] and tb[id(v)][1] > tb[id(loss)][3]


def test_same_node_twice_draws_two_bent_edges():
    a = Value(3.0, "a")
    s = a * a
    s.backward()
    fig = draw_graph(s)
    arrows = edges(fig)
    assert len(arrows) == 2
    rads = sorted(arrow.get_connectionstyle().rad for arrow in arrows)
    assert rads[0] < 0 < rads[1]  # bent to opposite sides, so both are visible
    labels = [t.get_text() for t in texts(fig, "bpcourse-edge-label-")]
    assert labels == ["+3", "+3"]  # ds/da = a from each slot, summed: a.grad = 6
    assert a.grad == pytest.approx(6.0)
    assert node_boxes(fig)[0].get_facecolor() == pytest.approx(to_rgba(MERGE_FACE))


# -- layout quality -----------------------------------------------------------------------------
def test_boxes_do_not_overlap_and_text_stays_inside_its_box():
    loss = small_mlp()
    fig = draw_graph(loss, title="mlp")
    boxes = node_boxes(fig)
    rects = [box_rect(b) for b in boxes]
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for text in texts(fig, "bpcourse-text-"):
        box = boxes[int(text.get_gid().split("-")[2])].get_window_extent(renderer)
        inside = text.get_window_extent(renderer)
        assert box.x0 <= inside.x0 and inside.x1 <= box.x1, text.get_text()
        assert box.y0 <= inside.y0 and inside.y1 <= box.y1, text.get_text()


def test_edge_labels_do_not_overlap_each_other():
    loss = small_mlp()
    fig = draw_graph(loss)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    extents = [t.get_window_extent(renderer) for t in texts(fig, "bpcourse-edge-label-")]
    assert len(extents) >= 6
    for i, a in enumerate(extents):
        for b in extents[i + 1 :]:
            assert not a.overlaps(b)


def test_figure_grows_with_the_graph():
    *_, small = worked_example()
    big = small_mlp()
    w_small, h_small = draw_graph(small).get_size_inches()
    w_big, h_big = draw_graph(big).get_size_inches()
    assert w_big > w_small and h_big > h_small


# -- tensors, limits, axes, files ------------------------------------------------------------
def test_tensor_graph():
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((3, 2)), label="W")
    b = Tensor(np.zeros((3, 1)), label="b")
    x = Tensor(rng.standard_normal((2, 4)), requires_grad=False, label="X")
    h = affine(w, x, b).tanh()
    h.label = "h"
    z = h + h * h
    loss = mse(z, np.zeros((3, 4)))
    loss.label = "L"
    loss.backward()
    order = topological_order(loss)
    fig = draw_graph(loss)
    boxes = node_boxes(fig)
    assert len(boxes) == len(order) == 8
    assert boxes[order.index(h)].get_facecolor() == pytest.approx(to_rgba(MERGE_FACE))
    shown = {t.get_text() for t in texts(fig, "bpcourse-text-")}
    assert "Σ of 3 contributions" in shown  # h feeds h*h twice and the sum once
    assert "data [3×2]" in shown and "no grad" in shown  # X was made without gradient
    assert any(s.startswith("grad ‖·‖") for s in shown)
    assert "grad 1" in shown  # the loss, a single entry


def test_tensor_merge_edges_show_the_shares_and_the_box_their_sum():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 1)), label="x")
    w = Tensor(rng.standard_normal((3, 3)), requires_grad=False, label="W")
    h = x + (w @ x).tanh()
    h.label = "h"
    h.backward(rng.standard_normal((3, 1)))
    fig = draw_graph(h)
    labels = [t.get_text() for t in texts(fig, "bpcourse-edge-label-")]
    assert len(labels) == 2  # x is used twice: by W @ x and by the sum
    columns = [np.array([float(v) for v in label.split("\n")]) for label in labels]
    assert all(column.shape == (3,) for column in columns)  # a column: one entry a line
    np.testing.assert_allclose(sum(columns), x.grad.ravel(), atol=2e-2)  # 3 significant digits each
    shown = {t.get_text() for t in texts(fig, "bpcourse-text-")}
    grad_line = next(s for s in shown if s.startswith("grad ("))
    np.testing.assert_allclose(
        [float(v) for v in grad_line.removeprefix("grad (").removesuffix(")ᵀ").split(", ")],
        x.grad.ravel(),
        rtol=5e-3,
    )


def test_larger_tensor_merges_show_norms():
    x = Tensor(np.linspace(-1.0, 1.0, 12).reshape(6, 2), label="x")
    total = (x + x.tanh()).sum()
    total.backward()
    labels = [t.get_text() for t in texts(draw_graph(total), "bpcourse-edge-label-")]
    assert len(labels) == 2 and all(label.startswith("‖·‖ ") for label in labels)


def test_an_unlabelled_scalar_leaf_is_drawn_as_a_constant_without_gradient():
    x = Value(1.5, "x")
    z = 3 * x
    z.label = "z"
    z.backward()
    shown = [t.get_text() for t in texts(draw_graph(z), "bpcourse-text-")]
    assert "constant" in shown and "data 3" in shown
    assert shown.count("no grad") == 1  # the 3, and only the 3
    assert "grad 3" in shown  # dz/dx


def test_tensor_graph_before_backward():
    t = Tensor(np.ones((2, 2)), label="t")
    s = (t * t).sum()
    fig = draw_graph(s)
    assert len(node_boxes(fig)) == 3
    shown = {t.get_text() for t in texts(fig, "bpcourse-text-")}
    assert "grad ?" in shown


def test_single_leaf():
    fig = draw_graph(Value(1.0, "lonely"))
    assert len(node_boxes(fig)) == 1 and edges(fig) == []


def test_too_large_graph_raises():
    node = Value(0.5, "x")
    for _ in range(MAX_NODES):
        node = node.tanh()
    with pytest.raises(ValueError, match="smaller graph"):
        draw_graph(node)


def test_largest_allowed_graph_draws():
    node = Value(0.5, "x")
    for _ in range(MAX_NODES - 1):
        node = node.tanh()
    assert len(node_boxes(draw_graph(node))) == MAX_NODES


def test_unknown_rankdir_raises():
    *_, loss = worked_example()
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(loss, rankdir="sideways")


def test_draws_into_a_given_axes():
    *_, loss = worked_example()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
    try:
        assert draw_graph(loss, ax=left) is fig
        assert len([p for p in left.patches if (p.get_gid() or "").startswith("bpcourse-node-")]) == 5
        assert len(right.patches) == 0
    finally:
        plt.close(fig)


def test_pyplot_keeps_no_reference():
    before = plt.get_fignums()
    *_, loss = worked_example()
    draw_graph(loss)
    assert plt.get_fignums() == before


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_saves_png_and_svg(tmp_path, suffix):
    *_, loss = worked_example()
    path = tmp_path / f"g.{suffix}"
    draw_graph(loss).savefig(path)
    data = path.read_bytes()
    assert len(data) > 1000
    if suffix == "png":
        assert data.startswith(b"\x89PNG")
    else:
        assert b"<svg" in data[:2000]
