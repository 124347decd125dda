"""Tests of notebook 08's exercises (``bpcourse.exercises.build_your_own_engine``): a learner's own class.

The answer is a class, ``Scalar``, exercised by the drivers of ``bpcourse.drive``:
in the notebook's self-check, and in the class grader's sandbox. A right class
earns every point; each classic mistake, written into the class as a learner
would write it, fails and its verdict names it; a class that hands the work to
``bpcourse.Value`` (as a subclass, or wrapping it) scores nothing; a stub reads
"not implemented"; and the sandbox grades a submitted notebook as the
self-check does.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    SEEDS,
    assert_full_marks,
    assert_full_points,
    by_exercise,
    coded,
    grade_notebook,
    lines_text,
)

from bpcourse import drive
from bpcourse.check import verdict
from bpcourse.delegation import DelegationRefused, call_refusing, namespace_of, refused_by
from bpcourse.exercises import build_your_own_engine as engine08
from bpcourse.exercises import get
from bpcourse.scalar import Value

NOTEBOOK = "08_build_your_own_engine"


# -- a learner's class, built from its methods ---------------------------------------------------------
def __init__(self, data, parents=(), local_grads=()):
    self.data = float(data)
    self.grad = 0.0
    self.parents = parents
    self.local_grads = local_grads


def _node(self, other):
    return other if isinstance(other, type(self)) else type(self)(other)


def __add__(self, other):
    other = self._node(other)
    return type(self)(self.data + other.data, (self, other), (1.0, 1.0))


def __mul__(self, other):
    other = self._node(other)
    return type(self)(self.data * other.data, (self, other), (other.data, self.data))


def __pow__(self, n):
    return type(self)(self.data**n, (self,), (n * self.data ** (n - 1),))


def __neg__(self):
    return self * -1.0


def __sub__(self, other):
    return self + (-other)


def __truediv__(self, other):
    return self * other**-1


def __radd__(self, other):
    return self + other


def __rmul__(self, other):
    return self * other


def exp(self):
    e = math.exp(self.data)
    return type(self)(e, (self,), (e,))


def tanh(self):
    t = math.tanh(self.data)
    return type(self)(t, (self,), (1.0 - t * t,))


def relu(self):
    return type(self)(max(self.data, 0.0), (self,), (1.0 if self.data > 0 else 0.0,))


def order(self):
    out, seen, stack = [], {id(self)}, [(self, 0)]
    while stack:
        node, i = stack.pop()
        if i < len(node.parents):
            stack.append((node, i + 1))
            parent = node.parents[i]
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, 0))
        else:
            out.append(node)
    return out


def backward(self):
    nodes = self.order()
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    self.grad += 1.0
    for node in reversed(nodes):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


RIGHT: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (__init__, _node, __add__, __mul__, __pow__, __neg__, __sub__, __truediv__, __radd__, __rmul__)
    + (exp, tanh, relu, order, backward)
}


def scalar_class(**changed: Callable[..., Any] | None) -> type:
    """The learner's class ``Scalar`` with some methods written differently (None: left out)."""
    methods = {**RIGHT, **changed}
    return type("Scalar", (), {name: m for name, m in methods.items() if m is not None})


def judged(cls: type, name: str, seed: int | None = 0):
    return verdict(cls, name=name, seed=seed, notebook=NOTEBOOK)


# -- the mistakes, as a learner writes them ------------------------------------------------------------
def backward_assigning(self):
    nodes = self.order()
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    self.grad += 1.0
    for node in reversed(nodes):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad = node.grad * local  # wrong on purpose: assigns at a merge


def order_recursive(self):
    out, seen = [], set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.parents:
            visit(parent)
        out.append(node)

    visit(self)
    return out


def backward_unseeded(self):
    nodes = self.order()
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    for node in reversed(nodes):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def backward_forward_order(self):
    nodes = self.order()
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    self.grad += 1.0
    for node in nodes:  # wrong on purpose: inputs first
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def backward_breadth_first(self):
    # wrong on purpose: nodes taken in the order they are reached from the root, not a topological one
    nodes, seen, queue = [], {id(self)}, [self]
    while queue:
        node = queue.pop(0)
        nodes.append(node)
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                queue.append(parent)
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    self.grad += 1.0
    for node in nodes:
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def backward_never_reset(self):
    self.grad = 1.0
    for node in reversed(self.order()):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def backward_resetting_leaves(self):
    nodes = self.order()
    for node in nodes:
        node.grad = 0.0
    self.grad = 1.0
    for node in reversed(nodes):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += node.grad * local


def mul_swapped(self, other):
    other = self._node(other)
    return type(self)(self.data * other.data, (self, other), (self.data, other.data))


def tanh_of_input(self):
    return type(self)(math.tanh(self.data), (self,), (1.0 - self.data**2,))


def pow_without_n(self, n):
    return type(self)(self.data**n, (self,), (self.data ** (n - 1),))


def div_of_its_own_sign_lost(self, other):
    other = self._node(other)
    q = self.data / other.data
    return type(self)(q, (self, other), (1.0 / other.data, q / other.data))


def backward_without_upstream(self):
    nodes = self.order()
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    self.grad = 1.0
    for node in reversed(nodes):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad += local


def relu_slope_one_at_zero(self):
    return type(self)(max(0.0, self.data), (self,), (1.0 if self.data >= 0 else 0.0,))


BACKWARD_MISTAKES = [
    ("assigning at a merge", {"backward": backward_assigning}, "equals just one of the contributions"),
    ("recursive order", {"order": order_recursive}, "RecursionError on a chain of 10,000 nodes"),
    ("no seed", {"backward": backward_unseeded}, engine08.NO_SEED),
    ("local derivative alone", {"backward": backward_without_upstream}, engine08.NO_UPSTREAM),
    ("forward order", {"backward": backward_forward_order}, engine08.WRONG_ORDER),
    ("breadth-first walk", {"backward": backward_breadth_first}, engine08.VISITED_EARLY),
    ("never reset", {"backward": backward_never_reset}, engine08.NOT_RESET),
    ("leaves reset", {"backward": backward_resetting_leaves}, engine08.LEAVES_RESET),
]
OP_MISTAKES = [
    ("no __radd__ or __rmul__", {"__radd__": None, "__rmul__": None}, engine08.NO_RADD),
    ("product's derivatives swapped", {"__mul__": mul_swapped}, engine08.MUL_SWAPPED),
    ("tanh's slope from its input", {"tanh": tanh_of_input}, engine08.TANH_OF_INPUT),
    ("power rule without n", {"__pow__": pow_without_n}, engine08.POW_WITHOUT_N),
    ("relu's slope 1 at 0", {"relu": relu_slope_one_at_zero}, engine08.RELU_AT_ZERO),
    (
        "division with a rule of its own, a sign lost",
        {"__truediv__": div_of_its_own_sign_lost},
        engine08.COMPOSED_LOCAL.format(name="b"),
    ),
]


# -- the registry --------------------------------------------------------------------------------------
def test_the_notebook_registers_the_class_twice_with_its_drivers_and_points():
    exercises = coded(NOTEBOOK)  # the why-questions are tested in test_why_questions.py
    assert [(e.name, e.answer_name, e.points) for e in exercises] == [
        ("Scalar", "Scalar", 4),
        ("order", "order", 2),
        ("backward", "Scalar", 5),
    ]
    assert [e.driver for e in exercises] == [drive.one_op, None, drive.run_program]
    assert all(e.driver.__module__ == "bpcourse.drive" for e in exercises if e.driver)


def test_the_drivers_hold_no_derivative():
    """The drivers are seen inside the sandbox: they build and read, and compute nothing themselves."""
    source = Path(drive.__file__).read_text(encoding="utf-8")
    for rule in ("math.exp", "math.tanh", "1.0 -", "** (", "local_grads ="):
        assert rule not in source, rule


def test_the_engine_driven_by_the_same_driver_agrees_with_finite_differences():
    rng = np.random.default_rng(5)
    for merges in (False, True):
        program = engine08._program(rng, merges)
        reference = engine08._reference(program)  # raises when the two oracles disagree
        n = len(program["leaves"])
        assert np.allclose(reference["one"]["grads"][:n], engine08._numeric_leaf_grads(program), rtol=1e-6)


# -- right answers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["Scalar", "backward"])
def test_a_right_class_earns_every_point(name, seed):
    assert_full_points(judged(scalar_class(), name, seed), get(name, NOTEBOOK).points)


def test_the_order_is_judged_on_its_own_on_the_course_s_bare_nodes():
    assert_full_points(verdict(order, seed=0, notebook=NOTEBOOK), 2)
    recursive = verdict(order_recursive, name="order", seed=0, notebook=NOTEBOOK)
    assert recursive.status == "partial" and "RecursionError on a chain of 5,000 nodes" in str(recursive)


def test_check_of_the_method_judges_the_class_beside_it():
    """``check(backward)``: the class the method completes is found in the notebook's globals."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(_class_source() + "\nScalar.order = order\nScalar.backward = backward\n", namespace)
    result = verdict(namespace["backward"], seed=0, notebook=NOTEBOOK)
    assert result.passed, str(result)


def test_subtraction_and_division_written_as_ops_of_their_own_pass_too():
    def sub(self, other):
        other = self._node(other)
        return type(self)(self.data - other.data, (self, other), (1.0, -1.0))

    def div(self, other):
        other = self._node(other)
        q = self.data / other.data
        return type(self)(q, (self, other), (1.0 / other.data, -q / other.data))

    cls = scalar_class(__sub__=sub, __truediv__=div)
    assert judged(cls, "Scalar").passed and judged(cls, "backward").passed


# -- mistakes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("what", "methods", "phrase"), BACKWARD_MISTAKES, ids=[m[0] for m in BACKWARD_MISTAKES]
)
def test_each_mistake_of_the_backward_pass_is_named(what, methods, phrase, seed):
    result = judged(scalar_class(**methods), "backward", seed)
    assert result.status in ("partial", "failed") and result.score < result.max_score, str(result)
    assert phrase in str(result), str(result)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("what", "methods", "phrase"), OP_MISTAKES, ids=[m[0] for m in OP_MISTAKES])
def test_each_mistake_of_an_op_is_named(what, methods, phrase, seed):
    result = judged(scalar_class(**methods), "Scalar", seed)
    assert result.status == "partial" and result.score < result.max_score, str(result)
    assert phrase in str(result), str(result)


def test_a_mistake_shows_on_its_own_lines_only():
    never_reset = judged(scalar_class(backward=backward_never_reset), "backward")
    assert [line.what for line in never_reset.lines if not line.ok] == ["backward() twice on the same graph"]
    recursive = judged(scalar_class(order=order_recursive), "backward")
    assert [line.what for line in recursive.lines if not line.ok] == ["a chain of 10,000 nodes"]
    no_radd = judged(scalar_class(__radd__=None, __rmul__=None), "Scalar")
    assert [line.what for line in no_radd.lines if not line.ok] == [
        "a number plus a node (2 + a)",
        "a number times a node (2 × a)",
    ]


def test_every_diagnosis_of_the_module_is_reached_by_a_mistake_above():
    named = {phrase for *_, phrase in BACKWARD_MISTAKES + OP_MISTAKES}
    assert {engine08.NO_SEED, engine08.WRONG_ORDER, engine08.NOT_RESET, engine08.LEAVES_RESET} <= named
    assert {engine08.NO_RADD, engine08.MUL_SWAPPED, engine08.TANH_OF_INPUT, engine08.POW_WITHOUT_N} <= named
    assert engine08.VISITED_EARLY in named
    assert {engine08.COMPOSED_LOCAL.format(name="b"), engine08.RELU_AT_ZERO, engine08.NO_UPSTREAM} <= named


def test_a_gradient_that_is_a_node_is_named():
    def backward_with_nodes(self):
        for node in self.order():
            node.grad = type(self)(0.0)
        self.grad = type(self)(1.0)
        for node in reversed(self.order()):
            for parent, local in zip(node.parents, node.local_grads, strict=True):
                parent.grad = parent.grad + node.grad * local

    result = judged(scalar_class(backward=backward_with_nodes), "backward")
    assert "a gradient is a Scalar, not a number" in str(result), str(result)


# -- stubs and delegation -------------------------------------------------------------------------------
def _stub(*args: Any) -> Any:
    raise NotImplementedError()


def test_a_class_still_as_handed_out_reads_not_implemented():
    cls = scalar_class(**{name: _stub for name in RIGHT if name != "_node"})
    for name in ("Scalar", "backward"):
        result = judged(cls, name)
        assert result.status == "not implemented" and result.score == 0, str(result)


def test_ops_written_but_backward_not_reads_not_implemented_for_backward_only():
    cls = scalar_class(order=_stub, backward=_stub)
    assert judged(cls, "Scalar").passed
    assert judged(cls, "backward").status == "not implemented"


class Subclassed(Value):
    """A class that is the engine under another name."""


def _wrapping_init(self, data, parents=(), local_grads=()):
    self.inner = data if isinstance(data, Value) else Value(data)
    self.data, self.grad, self.parents, self.local_grads = self.inner.data, 0.0, parents, local_grads


@pytest.mark.parametrize("name", ["Scalar", "backward"])
def test_a_class_that_is_or_wraps_the_engine_scores_nothing(name):
    for cls in (Subclassed, scalar_class(__init__=_wrapping_init)):
        result = judged(cls, name)
        assert (result.status, result.score) == ("delegated", 0), str(result)
        assert "uses bpcourse.scalar.Value" in str(result), str(result)


# -- through the sandbox ------------------------------------------------------------------------------
def _class_source() -> str:
    """The class as a learner writes it in the notebook (their own ``Scalar(...)`` calls)."""
    parts = []
    for name, method in RIGHT.items():
        if name not in ("order", "backward"):
            text = textwrap.dedent(inspect.getsource(method))
            parts.append(textwrap.indent(text.replace("type(self)", "Scalar"), "    "))
    methods = "\n".join(parts)
    order_and_backward = "\n".join(
        textwrap.dedent(inspect.getsource(f)).replace("type(self)", "Scalar") for f in (order, backward)
    )
    return f"import math\n\n\nclass Scalar:\n{methods}\n\n{order_and_backward}"


ASSIGNING = """def backward(self):
    nodes = self.order()
    for node in nodes:
        if node.parents:
            node.grad = 0.0
    self.grad += 1.0
    for node in reversed(nodes):
        for parent, local in zip(node.parents, node.local_grads, strict=True):
            parent.grad = node.grad * local
"""


def _sources(class_source: str, backward_source: str | None = None) -> dict[str, str]:
    attach = "Scalar.order = order\nScalar.backward = backward\n"
    cells = {"Scalar": class_source}
    if backward_source is not None:
        cells["backward"] = backward_source + "\n" + attach
    else:
        cells["attach"] = attach
    return cells


def test_the_sandbox_grades_a_class_as_the_self_check_does(tmp_path):
    right = grade_notebook(tmp_path / "right.ipynb", NOTEBOOK, _sources(_class_source()), seed=0)
    assert_full_marks(right, 11)  # the code's points; the why-questions, not answered here, read "missing"

    wrong = grade_notebook(
        tmp_path / "assigning.ipynb", NOTEBOOK, _sources(_class_source(), ASSIGNING), seed=0
    )
    entry = by_exercise(wrong)["backward"]
    assert entry["status"] == "partial" and "equals just one of the contributions" in lines_text(entry), entry
    assert by_exercise(wrong)["Scalar"]["status"] == "passed"


def test_the_sandbox_refuses_a_class_built_on_the_engine(tmp_path):
    cheat = "from bpcourse import Value\n\n\nclass Scalar(Value):\n    pass\n"
    result = grade_notebook(tmp_path / "cheat.ipynb", NOTEBOOK, {"Scalar": cheat}, seed=0)
    for entry in (by_exercise(result)["Scalar"], by_exercise(result)["backward"]):
        assert (entry["status"], entry["score"]) == ("delegated", 0), entry
        assert "bpcourse.scalar.Value" in lines_text(entry), entry


# -- reading a class for what it uses --------------------------------------------------------------------
def test_a_class_is_read_method_by_method_attached_methods_too():
    """``refused_by`` reads a class's own methods (with the notebook's globals), and ``call_refusing``
    refuses such a class before a driver exercises it, as the class grader's worker does."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(_class_source() + "\nScalar.order = order\n", namespace)
    exec(
        "import bpcourse as bp\n\n"
        "def backward(self):\n"
        "    twin = bp.scalar.Value(self.data)\n"
        "    twin.backward()\n\n"
        "Scalar.backward = backward\n",
        namespace,
    )
    cls = namespace["Scalar"]
    assert namespace_of(cls) is namespace
    assert refused_by(cls, get("backward", NOTEBOOK).refuses) == ["bpcourse.scalar.Value"]
    assert refused_by(scalar_class(), get("backward", NOTEBOOK).refuses) == []
    with pytest.raises(DelegationRefused):
        call_refusing(cls, ([1.0, 2.0], [["mul", 0, 1]], 1), ["bpcourse.scalar"], through=drive.run_program)


@pytest.mark.parametrize(
    ("what", "methods", "phrase"),
    BACKWARD_MISTAKES + OP_MISTAKES,
    ids=[m[0] for m in BACKWARD_MISTAKES + OP_MISTAKES],
)
def test_each_mistake_scores_the_same_whatever_the_seed(what, methods, phrase):
    name = "Scalar" if (what, methods, phrase) in OP_MISTAKES else "backward"
    cls = scalar_class(**methods)
    assert len({judged(cls, name, seed).score for seed in range(12)}) == 1


# -- nbgrader -------------------------------------------------------------------------------------------
def test_nbgrader_autograde_and_bpcourse_grade_agree_on_the_class(tmp_path):
    """The hidden ``grade(...)`` cells judge the class inside nbgrader's kernel as the sandbox does:
    a right engine, one that assigns at a merge, and the notebook as handed out.

    nbgrader is the instructor's extra: CI's run of the grader alone, at the lowest supported
    versions, has no nbgrader and skips this test; every other run has it."""
    pytest.importorskip("nbgrader")
    import nbformat
    import test_nbgrader_agreement as agreement
    from nbgrader.api import Gradebook

    from bpcourse.grading.runner import grade_class
    from bpcourse.grading.submissions import discover

    course = tmp_path / "course"
    (course / "source" / NOTEBOOK).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text((agreement.ROOT / "grader" / "nbgrader_config.py").read_text())
    solution = agreement.ROOT / "solutions" / f"{NOTEBOOK}.ipynb"
    (course / "source" / NOTEBOOK / f"{NOTEBOOK}.ipynb").write_bytes(solution.read_bytes())
    agreement._nbgrader(course, "generate_assignment", NOTEBOOK, "--force")
    release = nbformat.read(str(course / "release" / NOTEBOOK / f"{NOTEBOOK}.ipynb"), as_version=4)
    answers = agreement._solution_sources(nbformat.read(str(solution), as_version=4))
    assigning = answers["backward"].replace(
        "parent.grad += node.grad * local", "parent.grad = node.grad * local"
    )
    for student, sources in (
        ("right", answers),
        ("assigning", {**answers, "backward": assigning}),
        ("none", {}),
    ):
        notebook = nbformat.from_dict(release)
        for cell in notebook.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            cell.source = sources.get(grade_id, cell.source)
        (course / "submitted" / student / NOTEBOOK).mkdir(parents=True)
        nbformat.write(notebook, str(course / "submitted" / student / NOTEBOOK / f"{NOTEBOOK}.ipynb"))
    agreement._nbgrader(course, "autograde", NOTEBOOK, "--force")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        by_nbgrader = {
            student: {
                grade.name.removeprefix("check_"): float(grade.score)
                for grade in gradebook.find_submission_notebook(NOTEBOOK, NOTEBOOK, student).grades
            }
            for student in ("right", "assigning", "none")
        }
    run = grade_class(discover([course / "submitted"]), tmp_path / "out", seed=3, progress=None)
    by_bpcourse = {r["student"]: {e["exercise"]: e["score"] for e in r["exercises"]} for r in run.results}
    assert by_bpcourse == by_nbgrader
    code = {"Scalar": 4.0, "order": 2.0, "backward": 5.0}
    assert by_nbgrader["right"] == {**code, "assign_at_merge": 1.0, "why_leaves_accumulate": 1.0}
    assert by_nbgrader["assigning"]["backward"] == 1.0
    assert sum(by_nbgrader["none"].values()) == 0


def test_a_driver_rebound_by_the_notebook_changes_nothing_in_the_sandbox(tmp_path):
    """The worker keeps the drivers it imported before the learner's code ran."""
    fake = (
        "import bpcourse.drive as drive\n\n\n"
        "def run_program(cls, leaves, steps, passes):\n"
        "    return {'values': [0.0] * (len(leaves) + len(steps)), 'grads': [0.0] * 9, 'kind': ''}\n\n\n"
        "run_program.__module__ = 'bpcourse.drive'\n"
        "drive.run_program = run_program\n"
    )
    sources = {**_sources(_class_source(), ASSIGNING), "fake": fake}
    result = grade_notebook(tmp_path / "fake.ipynb", NOTEBOOK, sources, seed=0)
    entry = by_exercise(result)["backward"]
    assert entry["status"] == "partial" and "equals just one of the contributions" in lines_text(entry), entry


def test_the_drivers_are_in_the_sandbox_and_the_registry_is_not():
    from bpcourse.grading.isolation import PACKAGE, hidden_paths, package_view

    view = package_view()
    assert str(PACKAGE / "drive.py") in view
    assert str(PACKAGE / "drive.py") not in hidden_paths([])
    assert not any(path.startswith(str(PACKAGE / "exercises")) for path in view)
