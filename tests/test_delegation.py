"""No marks for calling the course's engine (``bpcourse.delegation``, ``Exercise.refuses``).

For every exercise of the registry, a learner's function that hands its work
to the engine (``CHEATS``) is written as source and run from a namespace dict,
as a notebook runs a cell: that dict is the function's ``__globals__``, and
the source is in ``linecache`` as IPython keeps it. Each cheat is first shown
to earn full marks when nothing refuses it (so each test below can fail),
then ``grade()`` must give it 0, with one line saying what it used, however it
reaches the engine: imported in the function, through an alias, hidden from
any reading of the source (the module name built at call time), or stashed
under an innocent name in the namespace.

The honest solutions of ``solutions/*.ipynb`` still earn full marks, run in a
namespace holding what their notebook imports (the engine among it). The
guard puts back the namespace and ``sys.modules`` exactly, and leaves the
inputs made of engine pieces working.
"""

from __future__ import annotations

import importlib
import linecache
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

import bpcourse
import bpcourse.minigraph
from bpcourse.check import grade, verdict
from bpcourse.delegation import (
    DelegationRefused,
    call_refusing,
    refusal_line,
    refused_by,
    refused_name,
    refused_uses,
    refusing,
)
from bpcourse.exercises import REGISTRY, get
from bpcourse.exercises.core import (
    ENGINE,
    NOT_YOURS,
    LearnerRaised,
    call_directly,
    delegation_verdict,
    judge,
)
from bpcourse.exercises.prediction import Prediction
from bpcourse.grading.submissions import defines_only
from bpcourse.testfunctions import JvpFunction, TanhLayer, VjpFunction

ROOT = Path(__file__).resolve().parents[1]


# -- one cheat per exercise ---------------------------------------------------------------------
@dataclass(frozen=True)
class Cheat:
    """A function that has the engine do the exercise: ``piece`` is an engine module in ``body``."""

    notebook: str
    name: str
    parameters: str
    module: str
    body: str
    used: str  # the refused name its verdict must report

    @property
    def exercise_id(self) -> str:
        return f"{self.notebook[:2]}-{self.name}"


def _value(notebook: str, name: str, parameters: str, body: str) -> Cheat:
    return Cheat(notebook, name, parameters, "bpcourse.scalar", body, "bpcourse.scalar.Value")


def _tensor(notebook: str, name: str, parameters: str, body: str, used: str = "Tensor") -> Cheat:
    return Cheat(notebook, name, parameters, "bpcourse.tensor", body, f"bpcourse.tensor.{used}")


N00, N01, N02, N03 = (
    "00_start_here",
    "01_scalar_graphs",
    "02_merges_and_traversal",
    "03_affine_and_activations",
)
N04, N05, N06, N07 = (
    "04_softmax_cross_entropy",
    "05_minibatches_and_training",
    "06_vanishing_and_exploding",
    "07_cost_of_backprop",
)
N09 = "09_modular_layers_and_digits"
N10 = "10_rules_transformers_need"

CHEATS = [
    _value(N00, "sub_backward", "upstream, x, y", """
    a, b = piece.Value(x), piece.Value(y)
    (a - b).backward(upstream)
    return a.grad, b.grad"""),
    _value(N01, "add_backward", "upstream, x, y", """
    a, b = piece.Value(x), piece.Value(y)
    (a + b).backward(upstream)
    return a.grad, b.grad"""),
    _value(N01, "mul_backward", "upstream, x, y", """
    a, b = piece.Value(x), piece.Value(y)
    (a * b).backward(upstream)
    return a.grad, b.grad"""),
    _value(N01, "pow_backward", "upstream, x, n", """
    v = piece.Value(x)
    (v**n).backward(upstream)
    return v.grad"""),
    _value(N01, "exp_backward", "upstream, out", """
    v = piece.Value(np.log(out))
    v.exp().backward(upstream)
    return v.grad"""),
    _value(N01, "tanh_backward", "upstream, out", """
    v = piece.Value(np.arctanh(out))
    v.tanh().backward(upstream)
    return v.grad"""),
    _value(N01, "worked_example_grads", "x, y", """
    a, b = piece.Value(x), piece.Value(y)
    ((a * b + b) ** 2).backward()
    return a.grad, b.grad"""),
    Cheat(N01, "central_difference", "f, x, h=1e-5", "bpcourse.gradcheck", """
    return float(piece.numerical_gradient(lambda v: f(float(v[0])), np.array([x]), h)[0])""",
          "bpcourse.gradcheck.numerical_gradient"),
    _value(N02, "practice_grads", "x, y", """
    a, b = piece.Value(x), piece.Value(y)
    ((a * (a + b)) ** 2).backward()
    return a.grad, b.grad"""),
    Cheat(N02, "topological_order", "root", "bpcourse.graph", """
    return piece.topological_order(root)""", "bpcourse.graph.topological_order"),
    Cheat("08_build_your_own_engine", "order", "self", "bpcourse.graph", """
    return piece.topological_order(self)""", "bpcourse.graph.topological_order"),
    Cheat(N02, "backward", "root", "bpcourse.minigraph", """
    values = piece.to_values(root)
    values[id(root)].backward()
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            node.grad = values[id(node)].grad
            stack.extend(node.parents)""", "bpcourse.minigraph.to_values"),
    _tensor(N02, "residual_backward", "u, J_F", """
    x = piece.Tensor(np.zeros((u.shape[0], 1)))
    (x + piece.Tensor(J_F, requires_grad=False) @ x).backward(u)
    return x.grad"""),
    _tensor(N03, "affine_backward", "g, x, W", """
    w, xx, b = piece.Tensor(W), piece.Tensor(x), piece.Tensor(np.zeros((W.shape[0], 1)))
    (w @ xx + b).backward(g)
    return w.grad, b.grad, xx.grad"""),
    _tensor(N03, "relu_backward", "upstream, z", """
    t = piece.Tensor(z)
    t.relu().backward(upstream)
    return t.grad"""),
    _tensor(N03, "sigmoid_backward", "upstream, a", """
    t = piece.Tensor(np.log(a) - np.log1p(-a))
    t.sigmoid().backward(upstream)
    return t.grad"""),
    _tensor(N03, "tanh_backward", "upstream, a", """
    t = piece.Tensor(np.arctanh(a))
    t.tanh().backward(upstream)
    return t.grad"""),
    _tensor(N03, "affine_relu_backward", "upstream, x, W, z", """
    w, xx, b = piece.Tensor(W), piece.Tensor(x), piece.Tensor(z - W @ x)
    (w @ xx + b).relu().backward(upstream)
    return w.grad, b.grad, xx.grad"""),
    _tensor(N03, "two_layer_mse_grads", "x, y, W1, b1, W2, b2", """
    p = {k: piece.Tensor(v) for k, v in {"W1": W1, "b1": b1, "W2": W2, "b2": b2}.items()}
    d = p["W2"] @ (p["W1"] @ x + p["b1"]).tanh() + p["b2"] - y
    ((d * d).sum() * 0.5).backward()
    return {k: t.grad for k, t in p.items()}"""),
    _tensor(N04, "softmax", "z", """
    return piece.softmax(z)""", "softmax"),
    _tensor(N04, "softmax_ce", "z, y", """
    t = piece.Tensor(z)
    loss = piece.softmax_cross_entropy(t, y)
    loss.backward()
    return loss.item(), t.grad"""),
    _tensor(N04, "softmax_jacobian", "z", """
    p = piece.softmax(z)
    return np.diagflat(p) - p @ p.T""", "softmax"),
    _tensor(N05, "affine_backward_batch", "G, X, W", """
    w, xx, b = piece.Tensor(W), piece.Tensor(X), piece.Tensor(np.zeros((W.shape[0], 1)))
    (w @ xx + b).backward(G)
    return w.grad, b.grad, xx.grad"""),
    _tensor(N05, "softmax_ce_batch", "Z, Y", """
    t = piece.Tensor(Z)
    loss = piece.softmax_cross_entropy(t, Y)
    loss.backward()
    return loss.item(), t.grad"""),
    _tensor(N05, "mlp_loss_and_grads", "params, X, Y", """
    p = {k: piece.Tensor(v) for k, v in params.items()}
    hidden = (p["W1"] @ X + p["b1"]).relu()
    loss = piece.softmax_cross_entropy(p["W2"] @ hidden + p["b2"], Y)
    loss.backward()
    return loss.item(), {k: t.grad for k, t in p.items()}"""),
    _tensor(N06, "layer_grad_norms", "Ws, bs, x, y, activation", """
    a, zs = x, []
    for index, (W, b) in enumerate(zip(Ws, bs)):
        z = piece.Tensor(W) @ a + piece.Tensor(b)
        zs.append(z)
        a = z if index == len(Ws) - 1 else getattr(z, activation)()
    d = a - y
    ((d * d).sum() * (0.5 / x.shape[1])).backward()
    return [float(np.linalg.norm(z.grad)) for z in zs]"""),
    Cheat(N06, "init_weights", "fan_out, fan_in, scheme, rng", "bpcourse.nn", """
    return piece.init_weight(fan_out, fan_in, scheme, rng)""", "bpcourse.nn.init_weight"),
    Cheat(N06, "residual_block_backward", "u, x, W, b", "bpcourse.nn", """
    block = piece.ResidualBlock(W.shape[0])
    block.layer.W.data[...] = W
    block.layer.b.data[...] = b
    xt = type(block.layer.W)(x)
    block(xt).backward(u)
    return xt.grad, block.layer.W.grad, block.layer.b.grad""", "bpcourse.nn.ResidualBlock"),
    Cheat(N07, "numerical_gradient", "f, theta, h=1e-5", "bpcourse.gradcheck", """
    return piece.numerical_gradient(f, theta, h)""", "bpcourse.gradcheck.numerical_gradient"),
    # The passes are made, so only the engine's Jacobian is wrong about them.
    Cheat(N07, "jacobian_forward_mode", "f_jvp, x, m", "bpcourse.forward", """
    for e in np.eye(x.size):
        f_jvp(x, e)
    return piece.jacobian_by_jvp(f_jvp.tensor_function(), x)""", "bpcourse.forward.jacobian_by_jvp"),
    Cheat(N07, "jacobian_reverse_mode", "f_vjp, x, m", "bpcourse.forward", """
    for e in np.eye(m):
        f_vjp(x, e)
    return piece.jacobian_by_vjp(lambda t: f_vjp.tensor_function()(t), x)""",
          "bpcourse.forward.jacobian_by_vjp"),
    Cheat(N07, "checkpointed_backward", "layers, x, upstream, every", "bpcourse.checkpoint", """
    for layer in layers:  # the forward calls a recomputing learner makes
        layer.forward(x)
        layer.forward(x)
    steps = [lambda t, W=layer.W, b=layer.b: (W @ t + b).tanh() for layer in layers]
    return piece.checkpointed_backward(steps, x, upstream, every)""",
          "bpcourse.checkpoint.checkpointed_backward"),
    # Notebook 09: each layer's handle, the network, and the two trainings, handed to the engine.
    _tensor(N09, "affine_layer", "W, b, X, G", """
    w, c, x = piece.Tensor(W), piece.Tensor(b), piece.Tensor(X)
    z = piece.affine(w, x, c)
    z.backward(G)
    return z.data.copy(), x.grad, w.grad, c.grad"""),
    *(_tensor(N09, f"{kind}_layer", "Z, upstream", f"""
    z = piece.Tensor(Z)
    a = z.{kind}()
    a.backward(upstream)
    return a.data.copy(), z.grad""") for kind in ("relu", "tanh", "sigmoid")),
    _tensor(N09, "softmax_ce_layer", "Z, Y, upstream", """
    z = piece.Tensor(Z)
    loss = piece.softmax_cross_entropy(z, Y)
    loss.backward(upstream)
    return float(loss.data), z.grad"""),
    _tensor(N09, "decayed_affine_layer", "W, b, X, G, weight_decay", """
    w, c, x = piece.Tensor(W), piece.Tensor(b), piece.Tensor(X)
    piece.affine(w, x, c).backward(G)
    penalty = (w * w).sum() * (0.5 * weight_decay)
    penalty.backward()
    return float(penalty.data), x.grad, w.grad, c.grad"""),
    _tensor(N09, "network_gradients", "params, X, Y", """
    ts = [piece.Tensor(p) for p in params]
    a = piece.Tensor(X, requires_grad=False)
    for i in range(0, len(ts) - 2, 2):
        a = piece.affine(ts[i], a, ts[i + 1]).tanh()
    loss = piece.softmax_cross_entropy(piece.affine(ts[-2], a, ts[-1]), Y)
    loss.backward()
    return float(loss.data), [t.grad for t in ts]"""),
    *(_tensor(N09, name, parameters, f"""
    rng = np.random.default_rng(seed)
    n, k = X.shape[0], {classes}
    ts = [piece.Tensor(rng.standard_normal((32, n)) / np.sqrt(n)), piece.Tensor(np.zeros((32, 1))),
          piece.Tensor(rng.standard_normal((k, 32)) / np.sqrt(32)), piece.Tensor(np.zeros((k, 1)))]
    for _ in range({epochs}):
        order = rng.permutation(X.shape[1])
        for start in range(0, X.shape[1], {batch}):
            cols = order[start:start + {batch}]
            for t in ts:
                t.zero_grad()
            hidden = piece.affine(ts[0], piece.Tensor(X[:, cols], requires_grad=False), ts[1]).tanh()
            piece.softmax_cross_entropy(piece.affine(ts[2], hidden, ts[3]), {labels}[:, cols]).backward()
            for t in ts:
                t.data = t.data - {rate} * t.grad
    return [t.data.copy() for t in ts]""")
      for name, parameters, classes, epochs, batch, labels, rate in (
          ("overfit_tiny_batch", "X, Y, seed", "Y.shape[0]", 200, 20, "Y", 1.0),
          ("train_digits", "X, labels, seed", 10, 20, 64, "np.eye(10)[:, labels]", 0.3))),
    _tensor(N10, "matmul_backward", "G, A, B", """
    a, b = piece.Tensor(A), piece.Tensor(B)
    (a @ b).backward(G)
    return a.grad, b.grad"""),
    _tensor(N10, "attention_scores_backward", "G, X, Wq, Wk", """
    x, wq, wk = piece.Tensor(X), piece.Tensor(Wq), piece.Tensor(Wk)
    ((wq @ x).T @ (wk @ x) * (1 / np.sqrt(Wq.shape[0]))).backward(G)
    return x.grad, wq.grad, wk.grad"""),
    _tensor(N10, "batchnorm_backward", "G, X, gamma, eps", """
    x, g, b = piece.Tensor(X), piece.Tensor(gamma), piece.Tensor(np.zeros_like(gamma))
    c = x - x.mean(axis=1, keepdims=True)
    (g * c * ((c * c).mean(axis=1, keepdims=True) + eps) ** -0.5 + b).backward(G)
    return x.grad, g.grad, b.grad"""),
    Cheat(N10, "clip_by_global_norm", "grads, max_norm", "bpcourse.clipping", """
    return piece.clip_by_global_norm(grads, max_norm)[0]""", "bpcourse.clipping.clip_by_global_norm"),
    _tensor(N10, "unbroadcast", "grad, shape", """
    return piece.unbroadcast(grad, shape)""", "unbroadcast"),
    _tensor(N10, "channel_bias_backward", "G", """
    b = piece.Tensor(np.zeros((G.shape[0], 1, 1, 1)))
    (b + np.zeros(G.shape)).backward(G)
    return b.grad"""),
]  # fmt: skip


def _from_registry(notebook: str, name: str, parameters: str) -> Cheat:
    """A cheat that takes the answer from the registry's reference (the class grader hides it)."""
    body = f"""
    return piece.get({name!r}, {notebook!r}).reference({parameters})[0]"""
    return Cheat(notebook, name, parameters, "bpcourse.exercises", body, "bpcourse.exercises.get")


# The predictions (why-questions, the prerequisites check) and the prerequisites' one function:
# the engine does not answer them, the registry does.
CHEATS += [
    _from_registry(e.notebook, e.name, "") for e in REGISTRY.values() if isinstance(e.judge, Prediction)
]
CHEATS.append(_from_registry(N00, "center_features", "X"))

CHEAT_IDS = [cheat.exercise_id for cheat in CHEATS]


def test_every_exercise_has_a_cheat():
    # An answer that is a class (notebook 08) is not a function these cheats can stand for:
    # classes built on the engine are refused in tests/test_exercises_08.py.
    functions = {key for key, exercise in REGISTRY.items() if exercise.driver is None}
    assert {(c.notebook, c.name) for c in CHEATS} == functions


# -- the ways a cheat reaches the engine ------------------------------------------------------------
def _rest(module: str) -> str:
    return module.removeprefix("bpcourse.")


def _fromlist(module: str) -> str:
    """What ``__import__`` is asked for: an attribute a package has, so that it imports no submodule
    (the registry, ``bpcourse.exercises``, is a package); a name a module lacks, otherwise."""
    return "__name__" if module == "bpcourse.exercises" else "x"


def _stashed(cheat: Cheat) -> tuple[str, str]:
    """Each engine object the body uses bound at the top of the cell, under an innocent name."""
    attrs = sorted(set(re.findall(r"piece\.(\w+)", cheat.body)))
    top = f"_m = __import__('bpco' + 'urse.{_rest(cheat.module)}', fromlist=[{_fromlist(cheat.module)!r}])\n"
    top += "".join(f"tool_{attr} = getattr(_m, '{attr}')\n" for attr in attrs) + "del _m\n"
    return top, re.sub(r"piece\.(\w+)", r"tool_\1", cheat.body)


WAYS = {
    # The import is in the function: read in its source and in its instructions.
    "imported": lambda c: ("", f"\n    import {c.module} as piece{c.body}"),
    # A chain from a module the cell imports: bp.tensor.Tensor(...).
    "aliased": lambda c: ("import bpcourse as bp\n", c.body.replace("piece.", f"bp.{_rest(c.module)}.")),
    # Nothing in the source names the engine: the module is found at call time.
    "hidden": lambda c: (
        "",
        f"\n    piece = __import__('bpco' + 'urse.{_rest(c.module)}', fromlist=[{_fromlist(c.module)!r}])"
        + c.body,
    ),
    "stashed": _stashed,
}


def cell_source(cheat: Cheat, way: str) -> str:
    top, body = WAYS[way](cheat)
    return f"import numpy as np\n{top}\n\ndef {cheat.name}({cheat.parameters}):{body}\n"


_cells = iter(range(10**9))


def run_cell(
    source: str, namespace: dict[str, Any] | None = None, keep_source: bool = True
) -> dict[str, Any]:
    """Run ``source`` as a notebook cell: in ``namespace``, its text kept where ``inspect`` finds it."""
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    filename = f"<cell-{next(_cells)}>"
    if keep_source:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def learner(cheat: Cheat, way: str, keep_source: bool = True) -> Any:
    return run_cell(cell_source(cheat, way), keep_source=keep_source)[cheat.name]


@pytest.mark.parametrize("cheat", CHEATS, ids=CHEAT_IDS)
def test_each_cheat_earns_full_marks_when_nothing_refuses_it(cheat):
    exercise = get(cheat.name, cheat.notebook)
    function = learner(cheat, "hidden")
    result = judge(exercise, call_directly(function), np.random.default_rng(0))
    assert result.passed, str(result)


def assert_refused(result: Any, cheat: Cheat) -> None:
    exercise = get(cheat.name, cheat.notebook)
    line = refusal_line(cheat.used, exercise.instead)
    assert (result.status, result.score) == ("delegated", 0), str(result)
    assert [(ln.ok, ln.message) for ln in result.lines] == [(False, line)], str(result)
    assert line == f"uses {cheat.used}: {exercise.instead}"


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("cheat", CHEATS, ids=CHEAT_IDS)
def test_a_cheat_scores_nothing_and_says_what_it_used(cheat, way):
    function = learner(cheat, way)
    assert grade(function, notebook=cheat.notebook, seed=0) == 0
    assert_refused(verdict(function, notebook=cheat.notebook, seed=0), cheat)


@pytest.mark.parametrize("cheat", CHEATS, ids=CHEAT_IDS)
def test_a_cheat_without_source_is_read_from_its_instructions(cheat):
    function = learner(cheat, "imported", keep_source=False)
    with pytest.raises(OSError):
        importlib.import_module("inspect").getsource(function)
    assert_refused(verdict(function, notebook=cheat.notebook, seed=0), cheat)


@pytest.mark.parametrize("cheat", CHEATS, ids=CHEAT_IDS)
def test_the_run_time_guard_alone_refuses_a_hidden_cheat(cheat):
    """Judged through refusals_stop and refusing only (no reading first): the guard catches it."""
    exercise = get(cheat.name, cheat.notebook)
    function = learner(cheat, "hidden")
    assert refused_by(function, exercise.refuses) == []  # nothing to read: the name is built at call time

    def guarded(*args: Any) -> Any:
        with refusing(function.__globals__, exercise.refuses, exercise.instead):
            return function(*args)

    assert_refused(judge(exercise, call_directly(guarded), np.random.default_rng(0)), cheat)


# -- the grader's reading of the solution cell ----------------------------------------------------
@pytest.mark.parametrize("cheat", CHEATS, ids=CHEAT_IDS)
def test_the_cell_source_of_a_visible_cheat_is_refused(cheat):
    exercise = get(cheat.name, cheat.notebook)
    for way in ("imported", "aliased"):
        result = delegation_verdict(exercise, cell_source(cheat, way))
        assert result is not None, way
        assert_refused(result, cheat)
    assert delegation_verdict(exercise, cell_source(cheat, "hidden")) is None


def test_a_cell_that_uses_the_engine_beside_an_honest_function_is_not_refused():
    cell = (
        "from bpcourse.graph import topological_order\n"
        "import bpcourse as bp\n"
        "print(topological_order(bp.minigraph.chain(3)[0]))  # a demonstration, outside the function\n\n"
        "def topological_order(root):\n"
        "    order, seen, stack = [], {id(root)}, [(root, iter(root.parents))]\n"
        "    while stack:\n"
        "        node, parents = stack[-1]\n"
        "        parent = next(parents, None)\n"
        "        if parent is None:\n"
        "            order.append(stack.pop()[0])\n"
        "        elif id(parent) not in seen:\n"
        "            seen.add(id(parent))\n"
        "            stack.append((parent, iter(parent.parents)))\n"
        "    return order\n"
    )
    exercise = get("topological_order")
    assert delegation_verdict(exercise, cell) is None
    namespace = run_cell(cell)
    assert grade(namespace["topological_order"]) == exercise.points


def test_a_helper_of_the_cell_that_delegates_is_followed():
    cell = (
        "from bpcourse import softmax as engine_softmax\n\n"
        "def _normalised(z):\n    return engine_softmax(z)\n\n"
        "def softmax(z):\n    return _normalised(z)\n"
    )
    result = delegation_verdict(get("softmax"), cell)
    assert result is not None and result.lines[0].message.startswith("uses bpcourse.tensor.softmax: ")


# -- the honest solutions keep every point ---------------------------------------------------------
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_the_solutions_earn_full_marks_beside_the_engine(path, monkeypatch):
    """Each solution cell, run after its notebook's first cell (which imports the engine), with the
    cells that only define things (notebook 09's layers build on a given base class)."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    namespace = run_cell(cells[0].source)
    # What demonstration cells leave behind: an engine Tensor under a plain name.
    namespace["x"] = bpcourse.Tensor(np.ones((2, 1)))
    exercises = [
        c.metadata["nbgrader"]["grade_id"] for c in cells if c.metadata.get("nbgrader", {}).get("solution")
    ]
    for cell in cells[1:]:  # as the grader runs them: the solutions and the cells that only define
        if cell.metadata.get("nbgrader", {}).get("solution") or defines_only(cell.source):
            run_cell(cell.source, namespace)
    before = dict(namespace)
    for name in exercises:
        exercise = get(name, path.stem)
        assert refused_by(namespace[name], exercise.refuses) == [], name
        source = next(c.source for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == name)
        assert delegation_verdict(exercise, source) is None, name
        result = verdict(namespace[name], notebook=path.stem, seed=0)
        assert result.passed and result.score == exercise.points, str(result)
    assert namespace.keys() == before.keys() and all(namespace[k] is before[k] for k in before)


# -- the guard -------------------------------------------------------------------------------------
def _snapshot() -> tuple[dict[str, Any], list[Any]]:
    return dict(sys.modules), list(sys.meta_path)


def assert_restored(namespace: dict[str, Any], before_namespace: dict[str, Any], before: Any) -> None:
    modules, meta_path = before
    assert namespace.keys() == before_namespace.keys()
    assert all(namespace[k] is before_namespace[k] for k in namespace)
    assert sys.modules.keys() == modules.keys()
    assert all(sys.modules[k] is modules[k] for k in modules)
    assert sys.meta_path == meta_path


def notebook_namespace() -> dict[str, Any]:
    return run_cell(
        "import sys\nimport numpy as np\nimport bpcourse as bp\nfrom bpcourse import minigraph\n"
        "from bpcourse.graph import topological_order\nfrom bpcourse.tensor import Tensor, softmax\n"
        "from bpcourse.scalar import SCALAR_OPS\nt = Tensor(np.ones((2, 1)))\n"
        "kit = {'order': topological_order}\n"
    )


def test_the_guard_refuses_what_the_learner_reaches_and_puts_everything_back():
    namespace = notebook_namespace()
    before_namespace, before = dict(namespace), _snapshot()
    with refusing(namespace, ENGINE, "write it yourself"):
        assert namespace["np"] is np and namespace["sys"] is sys
        for expression, name in [
            ("topological_order(None)", "bpcourse.graph.topological_order"),
            ("bp.graph.topological_order", "bpcourse.graph.topological_order"),
            ("minigraph.topological_order", "bpcourse.graph.topological_order"),
            ("bp.softmax", "bpcourse.tensor.softmax"),
            ("softmax(np.ones((2, 1)))", "bpcourse.tensor.softmax"),
            ("Tensor(1.0)", "bpcourse.tensor.Tensor"),
            ("t + 1", "bpcourse.tensor.Tensor"),
            ("SCALAR_OPS['tanh']", "bpcourse.scalar.SCALAR_OPS"),
            ("kit['order']", "bpcourse.graph.topological_order"),
            (
                "__import__('bpcourse.graph', fromlist=['x']).topological_order",
                "bpcourse.graph.topological_order",
            ),
            ("__import__('importlib').import_module('bpcourse.tensor').Tensor", "bpcourse.tensor.Tensor"),
            ("sys.modules['bpcourse.scalar'].Value", "bpcourse.scalar.Value"),
        ]:
            with pytest.raises(DelegationRefused) as refused:
                eval(expression, namespace)
            assert str(refused.value) == f"uses {name}: write it yourself", expression
        # What is not refused stays usable, through the same modules.
        assert eval("minigraph.chain(3)[0].value", namespace) == pytest.approx(np.tanh(np.tanh(0.8)))
        assert eval("bp.datasets.one_hot(np.array([1, 0]), 2)", namespace).shape == (2, 2)
        assert eval("isinstance(minigraph.leaf(1.0), minigraph.Node)", namespace)
    assert_restored(namespace, before_namespace, before)


def test_the_guard_puts_everything_back_when_the_call_raises():
    namespace = notebook_namespace()
    before_namespace, before = dict(namespace), _snapshot()
    with pytest.raises(ZeroDivisionError), refusing(namespace, NOT_YOURS):
        namespace["topological_order"] = "rebound by the learner's code"  # kept: the learner did it
        raise ZeroDivisionError
    assert namespace.pop("topological_order") == "rebound by the learner's code"
    before_namespace.pop("topological_order")
    assert_restored(namespace, before_namespace, before)


def test_importing_a_refused_module_not_loaded_yet_is_refused(monkeypatch):
    monkeypatch.delitem(sys.modules, "bpcourse.sample_class", raising=False)
    monkeypatch.delattr(bpcourse, "sample_class", raising=False)
    namespace = run_cell("def load():\n    import bpcourse.sample_class\n")
    before_namespace, before = dict(namespace), _snapshot()
    with refusing(namespace, ("bpcourse.sample_class",), "not this one"):
        with pytest.raises(DelegationRefused, match="^uses bpcourse.sample_class: not this one$"):
            namespace["load"]()
    assert_restored(namespace, before_namespace, before)
    namespace["load"]()  # outside the guard nothing is refused
    assert "bpcourse.sample_class" in sys.modules


def test_inputs_made_of_engine_pieces_keep_working_inside_the_guard():
    """f_jvp runs bpcourse.forward and bpcourse.tensor, both refused: its own code gets the real ones."""
    rng = np.random.default_rng(0)
    A, c = rng.standard_normal((3, 2)), rng.standard_normal((3, 1))
    f_jvp, f_vjp, layer = (
        JvpFunction("tanh(Ax + c)", A, c),
        VjpFunction("tanh(Ax + c)", A, c),
        TanhLayer(A, c),
    )
    x, u, w = rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(3)
    expected = (f_jvp(x, u), f_vjp(x, w), layer.backward(x[:, None], w[:, None]))
    root, _ = bpcourse.minigraph.random_graph(rng)
    namespace = run_cell(
        "def use(f_jvp, f_vjp, layer, root, x, u, w):\n"
        "    return f_jvp(x, u), f_vjp(x, w), layer.backward(x[:, None], w[:, None]), root.parents\n"
    )
    with refusing(namespace, get("jacobian_forward_mode").refuses + ("bpcourse.testfunctions",)):
        got = namespace["use"](f_jvp, f_vjp, layer, root, x, u, w)
    for g, e in zip(got, expected, strict=False):
        np.testing.assert_allclose(g, e)
    assert got[3] is root.parents


def test_a_reference_kept_by_the_learner_works_again_after_the_guard():
    namespace = run_cell("kept = []\ndef keep():\n    kept.append(topological_order)\n", notebook_namespace())
    with refusing(namespace, ENGINE):
        namespace["keep"]()
        with pytest.raises(DelegationRefused):
            namespace["kept"][0](None)
    root, nodes = bpcourse.minigraph.chain(4)
    assert namespace["kept"][0](root) == nodes


def test_a_guard_inside_a_guard_puts_back_the_outer_one():
    namespace = notebook_namespace()
    before_namespace, before = dict(namespace), _snapshot()
    with refusing(namespace, ("bpcourse.graph",)):
        outer = dict(namespace), dict(sys.modules)
        with refusing(namespace, ("bpcourse.tensor",)):
            with pytest.raises(DelegationRefused, match="bpcourse.tensor.Tensor"):
                eval("Tensor(1.0)", namespace)
            with pytest.raises(DelegationRefused, match="bpcourse.graph.topological_order"):
                eval("topological_order(None)", namespace)
        assert all(namespace[k] is outer[0][k] for k in namespace)
        assert all(sys.modules[k] is outer[1][k] for k in outer[1])
    assert_restored(namespace, before_namespace, before)


def test_the_engine_itself_under_the_exercise_name_is_refused():
    result = verdict(bpcourse.graph.topological_order, name="topological_order")
    assert result.status == "delegated"
    assert result.lines[0].message == "uses bpcourse.graph.topological_order: write the order yourself"


def test_default_arguments_and_closures_are_read_by_identity():
    make = run_cell(
        "def make():\n"
        "    engine = getattr(__import__('bpco' + 'urse.graph', fromlist=['x']), 'topological_order')\n"
        "    def topological_order(root, order=engine):\n        return order(root)\n"
        "    def closure(root):\n        return engine(root)\n"
        "    return topological_order, closure\n"
    )["make"]
    for function in make():
        assert refused_by(function, NOT_YOURS) == ["bpcourse.graph.topological_order"]


def test_a_callable_object_and_a_cached_function_are_read_through():
    namespace = run_cell(
        "import functools\nimport bpcourse as bp\n\n"
        "class Order:\n    def __call__(self, root):\n        return bp.graph.topological_order(root)\n\n"
        "topological_order = Order()\n\n"
        "@functools.lru_cache\ndef softmax(z):\n    return bp.softmax(z)\n"
    )
    order = verdict(namespace["topological_order"], name="topological_order")
    assert order.lines[0].message == "uses bpcourse.graph.topological_order: write the order yourself"
    assert verdict(namespace["softmax"]).lines[0].message.startswith("uses bpcourse.tensor.softmax: ")


def test_a_rebound_sys_modules_is_guarded_as_well(monkeypatch):
    rebound = dict(sys.modules)
    monkeypatch.setattr(sys, "modules", rebound)
    before = dict(rebound)
    namespace = run_cell(
        "import sys\ndef reach():\n    return sys.modules['bpcourse.graph'].topological_order\n"
    )
    with (
        refusing(namespace, ENGINE),
        pytest.raises(DelegationRefused, match="bpcourse.graph.topological_order"),
    ):
        namespace["reach"]()
    assert rebound.keys() == before.keys() and all(rebound[k] is before[k] for k in before)


# -- reading source ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import bpcourse as bp\nbp.graph.topological_order(r)", ["bpcourse.graph.topological_order"]),
        ("from bpcourse.graph import topological_order as t\nt(r)", ["bpcourse.graph.topological_order"]),
        ("from bpcourse import softmax\nsoftmax(z)", ["bpcourse.tensor.softmax"]),
        ("import bpcourse.tensor\nbpcourse.tensor.Tensor(z).backward()", ["bpcourse.tensor.Tensor"]),
        ("import bpcourse.tensor as T\nT.affine", ["bpcourse.tensor.affine"]),
        ("from bpcourse import minigraph\nminigraph.to_values(r)", ["bpcourse.minigraph.to_values"]),
        ("from bpcourse import minigraph\nminigraph.topological_order", ["bpcourse.graph.topological_order"]),
        ("getattr(__import__('bpcourse.graph', fromlist=['x']), 'topological_order')",
         ["bpcourse.graph.topological_order"]),
        ("import importlib\nimportlib.import_module('bpcourse.forward')", ["bpcourse.forward"]),
        ("from bpcourse.exercises import get", ["bpcourse.exercises.get"]),
        ("from bpcourse import minigraph, datasets\nminigraph.Node\ndatasets.one_hot", []),
        ("import numpy as np\nnp.exp(z)", []),
        ("def f(bp):\n    return bp.graph.topological_order", []),  # bp is a parameter here
    ],
)  # fmt: skip
def test_refused_uses_resolves_aliases_and_re_exports(source, found):
    # As for the traversal exercises: the engine, minigraph's conversion to it, the registry.
    assert refused_uses(source, get("topological_order").refuses) == found


def test_refused_uses_reads_only_the_named_function_and_its_helpers():
    source = (
        "from bpcourse import softmax\n"
        "import bpcourse as bp\n"
        "def softmax(z):\n    return z\n"  # rebinds the name: the cell's own softmax is used below
        "def helper(z):\n    return bp.Tensor(z)\n"
        "def softmax_ce(z, y):\n    return softmax(z)\n"
        "def softmax_jacobian(z):\n    return helper(z)\n"
    )
    assert refused_uses(source, NOT_YOURS, function="softmax_ce") == []
    assert refused_uses(source, NOT_YOURS, function="softmax_jacobian") == ["bpcourse.tensor.Tensor"]
    assert refused_uses(source, NOT_YOURS, function="missing") == []
    # A function bound without a def: by an assignment, or by an import.
    bound = (
        "import bpcourse as bp\nsoftmax = lambda z: bp.softmax(z)\n"
        "from bpcourse.graph import topological_order\n"
    )
    assert refused_uses(bound, NOT_YOURS, function="softmax") == ["bpcourse.tensor.softmax"]
    order = refused_uses(bound, NOT_YOURS, function="topological_order")
    assert order == ["bpcourse.graph.topological_order"]
    assert refused_uses("def f(:\n", NOT_YOURS) == []
    magics = (
        "%matplotlib inline\nimport bpcourse as bp\nbp.softmax?\ndef softmax(z):\n    return bp.softmax(z)\n"
    )
    assert refused_uses(magics, NOT_YOURS, function="softmax") == ["bpcourse.tensor.softmax"]


# -- the line, here and in the class grader ---------------------------------------------------------
def test_a_refusal_relayed_from_a_learners_process_reads_the_same():
    """The worker reports exceptions as text; the judge writes the same line from it."""
    exercise = get("topological_order")
    relayed = (
        "raised DelegationRefused: uses bpcourse.graph.topological_order: write the order yourself "
        "(at line 3: return engine(root))"
    )
    assert refused_name(relayed) == "bpcourse.graph.topological_order"

    def call(inputs: dict[str, Any]) -> Any:
        raise LearnerRaised(relayed, "DelegationRefused")

    result = judge(exercise, call, np.random.default_rng(0))
    assert (result.status, result.score) == ("delegated", 0)
    assert result.lines[0].message == "uses bpcourse.graph.topological_order: write the order yourself"
    assert result.to_dict()["lines"][0]["message"] == result.lines[0].message


def test_call_refusing_is_the_whole_guard_for_a_process_running_the_learners_code():
    """As the grader's worker runs it: the function from an IPython shell's namespace."""
    shell = InteractiveShell()
    try:
        shell.run_cell("import bpcourse as bp\nhelper = bp.graph.topological_order", store_history=False)
        shell.run_cell("def topological_order(root):\n    return helper(root)", store_history=False)
        shell.run_cell(
            "def hidden(root):\n"
            "    graph = __import__('bpco' + 'urse.graph', fromlist=['x'])\n"
            "    return graph.topological_order(root)",
            store_history=False,
        )
        refuses = get("topological_order").refuses
        root, nodes = bpcourse.minigraph.chain(3)
        for name in ("topological_order", "hidden"):
            with pytest.raises(DelegationRefused, match="^uses bpcourse.graph.topological_order: do it$"):
                call_refusing(shell.user_ns[name], [root], refuses, "do it", namespace=shell.user_ns)
        assert shell.user_ns["hidden"](root) == nodes  # outside the guard, as before
    finally:
        InteractiveShell.clear_instance()
