"""The error map under a wrong self-check: its figures checked from their data, not their pixels.

Each learner below makes a classic mistake; the figure must show exactly that
mistake: the answer as returned, the signed error answer − reference with the
answer's shape, the two shapes of a transposed or unsummed gradient, and, on a
scalar graph, the learner's gradients with the first node where they part from
the right ones coloured apart. No figure may write a reference value. In a
Jupyter kernel ``check`` displays the figure under the verdict; elsewhere, and
with ``picture=False``, it does not.
"""

from __future__ import annotations

import math
from typing import Any

import nbformat
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from nbclient import NotebookClient

from bpcourse import arraymap, errormap, graphmap, scalarmaps
from bpcourse.authoring import kernel_of_this_python
from bpcourse.check import check, verdict
from bpcourse.exercises import get
from bpcourse.exercises.core import Verdict, as_outputs
from bpcourse.gradcheck import mismatch
from bpcourse.graph import topological_order
from bpcourse.minigraph import add, leaf, mul, reference_grads, square, to_values

NB01, NB02, NB03 = "01_scalar_graphs", "02_merges_and_traversal", "03_affine_and_activations"
NB05, NB06 = "05_minibatches_and_training", "06_vanishing_and_exploding"


def mapped(function: Any, name: str, notebook: str, seed: int = 0) -> tuple[Verdict, Figure | None, Any]:
    """The verdict, the error map and the watched calls of ``function`` as exercise ``name``."""
    watch = errormap.Watch()
    result = verdict(function, name=name, seed=seed, notebook=notebook, watch=watch)
    return result, errormap.picture(get(name, notebook), result, watch.calls), watch.calls


def by_gid(fig: Figure, gid: str) -> list[Any]:
    return [a for ax in fig.axes for a in [*ax.images, *ax.patches, *ax.collections] if a.get_gid() == gid]


def shapes_title(fig: Figure) -> str:
    (ax,) = [ax for ax in fig.axes if ax.get_gid() == "errormap-shapes"]
    return ax.get_title()


def texts(fig: Figure) -> str:
    found = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return "\n".join(found)


def assert_labelled(fig: Figure) -> None:
    """A title over the figure, and axis labels on every plotting axes (colour bars aside)."""
    assert fig.get_suptitle() or any(ax.get_title() for ax in fig.axes)
    for ax in fig.axes:
        if ax.images or ax.patches:
            assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()


# -- arrays of the right shape: the signed error --------------------------------------------------
def tanh_at_a(upstream: np.ndarray, a: np.ndarray) -> np.ndarray:
    return upstream * (1 - np.tanh(a) ** 2)  # the slope taken at a, not at z


def test_the_error_heatmap_is_the_answer_minus_the_reference() -> None:
    result, fig, calls = mapped(tanh_at_a, "tanh_backward", NB03)
    assert result.status == "failed" and fig is not None
    first = calls[0]
    (answer,) = as_outputs(first.returned, ("dz",))
    (reference,) = get("tanh_backward", NB03).reference(**first.inputs)
    (shown,) = by_gid(fig, "errormap-answer")
    (error,) = by_gid(fig, "errormap-error")
    assert np.array_equal(shown.get_array(), answer)
    assert error.get_array().shape == answer.shape
    assert np.array_equal(error.get_array(), answer - reference)
    (marks,) = by_gid(fig, "errormap-wrong")
    assert len(marks.get_offsets()) == int(mismatch(answer, reference).sum())
    lo, hi = error.get_clim()
    assert hi == -lo > 0  # a diverging scale centred on 0: a sign reads as a colour
    assert_labelled(fig)


def residual_without_skip(u: np.ndarray, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[Any, ...]:
    a = np.tanh(W @ x + b)
    d = u * (1 - a * a)
    return W.T @ d, d @ x.T, d  # dx lost the identity path's u


def test_a_missing_merge_term_is_an_error_of_exactly_that_path() -> None:
    result, fig, calls = mapped(residual_without_skip, "residual_block_backward", NB06)
    assert result.status == "partial" and fig is not None
    assert "dx" in fig.get_suptitle()
    (error,) = by_gid(fig, "errormap-error")
    # The error is the identity path's contribution, minus u, on every entry of dx and nowhere else.
    assert np.allclose(error.get_array(), -calls[0].inputs["u"], rtol=1e-12, atol=1e-12)


# -- arrays of the wrong shape: the two shapes ----------------------------------------------------
def rectangles(fig: Figure) -> tuple[tuple[float, float], tuple[float, float]]:
    (yours,) = by_gid(fig, "errormap-yours")
    (needed,) = by_gid(fig, "errormap-needed")
    return (yours.get_height(), yours.get_width()), (needed.get_height(), needed.get_width())


def affine_transposed(g: np.ndarray, x: np.ndarray, W: np.ndarray) -> tuple[Any, ...]:
    return x @ g.T, g, W.T @ g


def test_a_transposed_dW_is_two_rectangles_with_swapped_sides() -> None:
    result, fig, calls = mapped(affine_transposed, "affine_backward", NB03)
    assert fig is not None and "transposed" in shapes_title(fig)
    dW = calls[0].returned[0]
    yours, needed = rectangles(fig)
    assert yours == dW.shape and needed == dW.shape[::-1] and yours != needed
    (shown,) = by_gid(fig, "errormap-answer")
    assert np.array_equal(shown.get_array(), dW)
    assert_labelled(fig)


def batch_db_unsummed(G: np.ndarray, X: np.ndarray, W: np.ndarray) -> tuple[Any, ...]:
    return G @ X.T, G, W.T @ G


def test_a_bias_gradient_not_summed_has_one_column_per_example() -> None:
    _, fig, calls = mapped(batch_db_unsummed, "affine_backward_batch", NB05)
    assert fig is not None
    m, batch = calls[0].inputs["G"].shape
    yours, needed = rectangles(fig)
    assert yours == (m, batch) and needed == (m, 1)
    assert "one column per example" in shapes_title(fig)
    (shown,) = by_gid(fig, "errormap-answer")
    assert shown.get_array().shape == (m, batch)


# -- scalar graphs --------------------------------------------------------------------------------
def box_colours(fig: Figure) -> dict[int, str]:
    """The face colour of each node box, by the node's index in the drawn graph's topological order."""
    return {
        int(p.get_gid().split("-")[2]): to_hex(p.get_facecolor())
        for p in fig.axes[0].patches
        if (p.get_gid() or "").startswith("bpcourse-node-")
    }


def worked_only_via_u(x: float, y: float) -> tuple[float, float]:
    v = x * y + y
    return 2 * v * y, 2 * v * x  # dL/dy forgot the direct path through v


def test_worked_example_marks_the_merge_it_missed_and_never_writes_the_right_gradient() -> None:
    result, fig, calls = mapped(worked_only_via_u, "worked_example_grads", NB01)
    assert result.status == "partial" and fig is not None
    x, y = calls[0].inputs["x"], calls[0].inputs["y"]
    root, _ = scalarmaps.SCALAR_GRAPHS["worked_example_grads"]({"x": x, "y": y})
    order = topological_order(root)
    colours = box_colours(fig)
    at = {node.label: i for i, node in enumerate(order)}
    assert colours[at["y"]] == graphmap.FIRST_FACE  # the merge node, where the missing term belonged
    assert colours[at["x"]] == graphmap.RIGHT_FACE
    right = get("worked_example_grads", NB01).reference(x=x, y=y)
    shown = texts(fig)
    assert f"{calls[0].returned[1]:.3g}" in shown  # the learner's dL/dy is written
    for digits in (2, 3, 4):
        assert f"{right[1]:.{digits}g}" not in shown  # the right one never is
    assert fig.axes[0].get_legend() is not None


def mul_local_only(upstream: float, x: float, y: float) -> tuple[float, float]:
    return y, x  # the local derivatives alone, not times the upstream gradient


def test_a_rule_is_drawn_as_its_node_with_the_upstream_gradient_given() -> None:
    result, fig, calls = mapped(mul_local_only, "mul_backward", NB01)
    assert result.status == "failed" and fig is not None
    inputs = calls[0].inputs
    root, leaves = scalarmaps.SCALAR_GRAPHS["mul_backward"](inputs)
    order = topological_order(root)
    colours = box_colours(fig)
    at = {node.label: i for i, node in enumerate(order)}
    assert {colours[at["x"]], colours[at["y"]]} == {graphmap.OFF_FACE, graphmap.FIRST_FACE}
    assert (
        colours[at["y"]] == graphmap.FIRST_FACE
    )  # y comes after x in the order: the walk back meets it first
    shown = texts(fig)
    assert f"upstream {inputs['upstream']:.3g} (given)" in shown
    for value in get("mul_backward", NB01).reference(**inputs):
        assert f"{value:.3g}" not in shown
    assert f"yours {calls[0].returned[0]:.3g}" in shown


def test_tanh_backward_of_notebook_03_is_an_array_map_not_a_graph() -> None:
    _, fig, _ = mapped(tanh_at_a, "tanh_backward", NB03)
    assert fig is not None and by_gid(fig, "errormap-error")


def overwriting_backward(root: Any) -> None:
    order: list[Any] = []
    seen: set[int] = set()

    def visit(node: Any) -> None:
        if id(node) not in seen:
            seen.add(id(node))
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    root.grad = 1.0
    for node in reversed(order):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad = node.grad * local  # assigns where it must add: merges keep one share


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_colours_each_node_and_the_first_where_the_gradients_part(seed: int) -> None:
    result, fig, calls = mapped(overwriting_backward, "backward", NB02, seed)
    assert result.status == "partial" and fig is not None
    called = next(c for c in calls if c.graph_grads is not None and
                  mismatch(np.array(c.graph_grads), reference_grads(c.inputs["root"],
                           topological_order(c.inputs["root"]))).any())  # fmt: skip
    nodes = topological_order(called.inputs["root"])
    wrong = mismatch(np.array(called.graph_grads), reference_grads(called.inputs["root"], nodes))
    values = to_values(called.inputs["root"])
    drawn = topological_order(values[id(called.inputs["root"])])
    at = {id(v): i for i, v in enumerate(drawn)}
    # The first wrong node walking back layer by layer: all its children are right.
    depth: dict[int, int] = {}
    for node in nodes:
        depth[id(node)] = 1 + max((depth[id(p)] for p in node.parents), default=-1)
    walk = sorted(range(len(nodes)), key=lambda i: depth[id(nodes[i])], reverse=True)
    first = next(i for i in walk if wrong[i])
    colours = box_colours(fig)
    for i, node in enumerate(nodes):
        expected = (
            graphmap.FIRST_FACE if i == first else (graphmap.OFF_FACE if wrong[i] else graphmap.RIGHT_FACE)
        )
        assert colours[at[id(values[id(node)])]] == expected, node
    children = [n for n in nodes if any(p is nodes[first] for p in n.parents)]
    assert children and not any(wrong[nodes.index(c)] for c in children)


def test_first_parting_walks_back_from_the_loss() -> None:
    x, y = leaf(0.5, "x"), leaf(-1.2, "y")
    a = add(x, y, "a")
    b = mul(x, a, "b")
    loss = square(b, "L")
    values = to_values(loss)
    order = topological_order(values[id(loss)])
    right = graphmap.NodeMark(1.0, 0.0, True)
    off = graphmap.NodeMark(1.0, 0.5, False)
    marks = {id(values[id(n)]): (off if n in (x, a) else right) for n in (x, y, a, b, loss)}
    assert graphmap.first_parting(order, marks) is values[id(a)]
    assert graphmap.first_parting(order, {k: right for k in marks}) is None


# -- when it is shown -----------------------------------------------------------------------------
def test_no_picture_for_a_right_answer() -> None:
    def tanh_backward(upstream: np.ndarray, a: np.ndarray) -> np.ndarray:
        return upstream * (1 - a * a)

    result, fig, _ = mapped(tanh_backward, "tanh_backward", NB03)
    assert result.passed and fig is None


def test_outside_jupyter_check_prints_the_verdict_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert not errormap.can_show()
    result = check(tanh_at_a, name="tanh_backward", seed=0, notebook=NB03)
    assert capsys.readouterr().out == f"{result}\n"


def test_in_a_kernel_the_map_is_shown_under_a_wrong_answer_unless_turned_off() -> None:
    cells = [
        "import matplotlib\nmatplotlib.use('agg')  # shown whatever the backend\n"
        "import numpy as np\nfrom bpcourse.check import for_notebook\n"
        f"check, grade = for_notebook({NB03!r})\n"
        "def tanh_backward(upstream, a):\n    return upstream * (1 - np.tanh(a) ** 2)\n",
        "check(tanh_backward)",
        "check(tanh_backward, picture=False)",
        "def tanh_backward(upstream, a):\n    return upstream * (1 - a * a)\ncheck(tanh_backward)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    kernel_name, manager = kernel_of_this_python()
    NotebookClient(notebook, kernel_name=kernel_name, kernel_manager_class=manager, timeout=120).execute()

    def images(cell: Any) -> int:
        return sum("image/png" in o.get("data", {}) for o in cell.outputs)

    shown = [images(cell) for cell in notebook.cells[1:]]
    assert shown == [1, 0, 0]
    assert "failed" in notebook.cells[2].outputs[0]["data"]["text/plain"]


def test_shape_notes() -> None:
    assert "transposed" in arraymap.shape_note((6, 5), (5, 6))
    assert "one column per example" in arraymap.shape_note((6, 8), (6, 1))
    assert "flat" in arraymap.shape_note((6,), (6, 1))
    assert math.isclose(1.0, 1.0)
