"""No exercise's answer is shown to a learner: not in a student notebook, not in a diagnosis.

The answers are the bodies of the solution cells of ``solutions/`` (between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, the instructor-only regions).
Their *key expressions* are the right-hand sides, returned values and added
terms of those bodies, and every sub-expression of them, normalized: ``x.data`` is read as ``x``, integers as
floats, ``numpy`` as ``np``, an augmented assignment as the operation it
performs. A key expression made of three operations or more, or of two with a
constant or a comparison, is matched up to the names of its variables
(``residual + J.T @ residual`` is ``u + J_F.T @ u``); a shorter one, such as
``W.T @ g``, only with the same names. Expressions too small to be an answer
(``upstream * y``) are not keys at all.

Every code cell of every student notebook, and every code span of its Markdown,
is parsed and each of its sub-expressions compared with the key expressions of
every exercise of the course. A few keys are forward computations or facts the
exercise itself states; ``ALLOWED`` lists them, each with its reason (what they
contain is allowed with them).

Diagnoses (the misconception messages and the messages of the custom judges)
explain a mistake in words and shapes: none may contain a line of Python.
"""

from __future__ import annotations

import ast
import copy
import importlib
import json
import pkgutil
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

import bpcourse.exercises
from bpcourse.authoring import NOTEBOOK_GLOB
from bpcourse.exercises import REGISTRY
from bpcourse.exercises.prediction import Prediction

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob(NOTEBOOK_GLOB))
STUDENTS = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))

REGIONS = re.compile(
    r"### BEGIN SOLUTION.*?### END SOLUTION|### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", flags=re.DOTALL
)
KEPT_NAMES = {
    *("np", "numpy", "math", "float", "int", "len", "sum", "range", "abs", "min", "max", "zip"),
    *("enumerate", "list", "dict", "tuple", "print", "sorted", "reversed", "round", "set", "isinstance"),
}
PLUMBING_CALLS = KEPT_NAMES - {"np", "numpy", "math"}  # builtins: indexing and looping, not arithmetic

# Keys that are not answers, as source text: forward passes and what the exercises state themselves.
ALLOWED = {
    "1 / (1 + np.exp(-z))": "sigmoid's forward pass",
    "W @ x + b": "an affine forward pass",
    "np.tanh(W @ x + b)": "the forward pass of a tanh layer",
    "1 - np.tanh(z) ** 2": "tanh's slope at z, the table of notebook 03 (the rules use the cached a)",
    "phi(z) * (1 - phi(z))": "sigmoid's slope at z, the table of notebook 03",
    "(z > 0) * 1.0": "ReLU's slope at z, the table of notebook 03",
    "2.0 / (fan_in + fan_out)": "Xavier's variance, given by the exercise's statement",
    "e / e.sum(axis=0, keepdims=True)": "softmax's definition; the exercise is its shift",
    "inputs.append(layer.forward(inputs[-1]))": "layers run forward, keeping their outputs",
    "dL_dL * 2 * v": "2v as a product: a form too common to be an answer",
    "X - X.mean(axis=1, keepdims=True)": "centering over the batch: notebook 00's prerequisite, "
    "a forward step of batch normalization in notebook 10",
    "X.mean(axis=1, keepdims=True)": "batch norm's mean over the batch: the forward pass the exercise states",
}

# Answers in another form than the solution's: closed forms and spellings a demonstration might use.
EXTRA_KEYS = {
    "worked_example_grads": ["2 * v * (1 + x)", "dL_du * x + dL_dv * 1.0"],
    "practice_grads": ["2 * x * (x + y) * (2 * x + y)", "2 * x ** 2 * (x + y)", "2 * b * (a + x)"],
    "relu_backward": ["np.where(z > 0, upstream, 0)"],
    "relu_layer": ["upstream * (Z > 0)", "np.where(Z > 0, upstream, 0)"],
    "softmax_jacobian": ["np.diag(p.ravel()) - p @ p.T"],
    "residual_block_backward": ["u + W.T @ (u * (1 - a ** 2))"],
}


# -- normalized expressions --------------------------------------------------------------------------
class _Normalize(ast.NodeTransformer):
    """``x.data`` as ``x``, numbers as floats, ``numpy`` as ``np``; with ``alpha``, names as _0, _1, ..."""

    def __init__(self, alpha: bool) -> None:
        self.alpha = alpha
        self.names: dict[str, str] = {}

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr == "data":
            return node.value
        if isinstance(node.value, ast.Name) and node.value.id == "numpy":
            node.value.id = "np"
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        operand = node.operand
        if isinstance(node.op, ast.USub) and isinstance(operand, ast.Constant) and _is_number(operand.value):
            return ast.Constant(-operand.value)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant(float(node.value)) if _is_number(node.value) else node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name):  # a function's own name is kept: softmax(z) is not f(z)
            node.args = [self.visit(arg) for arg in node.args]
            node.keywords = [self.visit(keyword) for keyword in node.keywords]
            return node
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if not self.alpha or node.id in KEPT_NAMES:
            return node
        return ast.Name(self.names.setdefault(node.id, f"_{len(self.names)}"), node.ctx)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalized(node: ast.AST, alpha: bool) -> str:
    return ast.unparse(_Normalize(alpha).visit(copy.deepcopy(node)))


def operations(node: ast.AST) -> tuple[int, bool]:
    """(how many operations ``node`` makes, whether it holds a constant or a comparison)."""
    count, anchored = 0, False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in PLUMBING_CALLS:
            continue
        if isinstance(sub, ast.BinOp | ast.Compare | ast.Call | ast.BoolOp | ast.IfExp):
            count += 1 + (isinstance(sub, ast.Call) and bool(sub.keywords))
        elif isinstance(sub, ast.UnaryOp) and not isinstance(sub.operand, ast.Constant):
            count += 1
        elif isinstance(sub, ast.Attribute) and sub.attr == "T":
            count += 1
        anchored = anchored or isinstance(sub, ast.Constant | ast.Compare)
    return count, anchored


def tier(node: ast.AST) -> str | None:
    """ "alpha" (matched up to names), "exact" (same names) or None (too small to be an answer)."""
    count, anchored = operations(node)
    if count >= 3 or (count == 2 and anchored):
        return "alpha"
    return "exact" if count == 2 else None


def _split(node: ast.expr) -> Iterator[ast.expr]:
    if isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _split(element)
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _split(value)
    elif not isinstance(node, ast.Lambda):
        yield node


def answer_expressions(tree: ast.AST) -> Iterator[ast.expr]:
    """What a solution computes: assigned and returned values, added terms, lambda bodies."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Return | ast.Expr | ast.AnnAssign) and node.value is not None:
            yield from _split(node.value)
        elif isinstance(node, ast.AugAssign):
            yield ast.BinOp(node.target, node.op, node.value)
        elif isinstance(node, ast.Lambda):
            yield from _split(node.body)


def every_expression(tree: ast.AST) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.AugAssign):
            yield ast.BinOp(node.target, node.op, node.value)
        elif isinstance(node, ast.expr):
            yield node


# -- the keys ------------------------------------------------------------------------------------------
Keys = dict[tuple[str, str], set[str]]  # (tier, normalized text) -> the exercises it answers


def _add(keys: Keys, node: ast.expr, exercise: str, allowed: set[str]) -> None:
    """``node`` and each of its sub-expressions as keys, except allowed ones and what they contain."""
    if normalized(node, alpha=True) in allowed:
        return
    kind = tier(node)
    if kind is not None:
        keys.setdefault((kind, normalized(node, alpha=kind == "alpha")), set()).add(exercise)
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr) and not isinstance(child, ast.Lambda):
            _add(keys, child, exercise, allowed)


def key_expressions() -> Keys:
    allowed = {normalized(ast.parse(text, mode="eval").body, alpha=True) for text in ALLOWED}
    keys: Keys = {}
    for path in SOLUTIONS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("solution"):
                continue
            source = "".join(cell["source"])
            for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", source, flags=re.DOTALL):
                for node in answer_expressions(ast.parse(textwrap.dedent(region))):
                    _add(keys, node, meta["grade_id"], allowed)
    for exercise, texts in EXTRA_KEYS.items():
        for text in texts:
            _add(keys, ast.parse(text, mode="eval").body, exercise, set())
    return keys


# -- scanning ----------------------------------------------------------------------------------------------
def _trees(cell: dict) -> Iterator[ast.AST]:
    source = REGIONS.sub("", "".join(cell["source"]))  # instructor-only regions, should any be left
    if cell["cell_type"] == "code":
        yield ast.parse(TransformerManager().transform_cell(source))
        return
    for span in re.findall(r"```(?:python)?\n(.*?)```|`([^`\n]+)`", source, flags=re.DOTALL):
        try:
            yield ast.parse(textwrap.dedent(span[0] or span[1]).strip())
        except SyntaxError:
            continue


def answers_shown(path: Path, keys: Keys) -> list[str]:
    """One line per sub-expression of the notebook that is a key expression of some exercise."""
    found = []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        for tree in _trees(cell):
            for node in every_expression(tree):
                for kind in ("alpha", "exact"):
                    exercises = keys.get((kind, normalized(node, alpha=kind == "alpha")))
                    if exercises:
                        found.append(
                            f"{path.parent.name}/{path.name}, cell {index} ({cell['cell_type']}): "
                            f"`{ast.unparse(node)}` answers {', '.join(sorted(exercises))}"
                        )
    return found


@pytest.fixture(scope="module")
def keys() -> Keys:
    return key_expressions()


@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_student_notebook_shows_no_answer(path: Path, keys: Keys) -> None:
    found = answers_shown(path, keys)
    assert not found, "a demonstration shows what an exercise asks for:\n" + "\n".join(found)


def test_every_exercise_has_key_expressions(keys: Keys) -> None:
    """The scan has something to look for in nearly every exercise (a few answers are one operation)."""
    covered = {exercise for exercises in keys.values() for exercise in exercises}
    graded = {name for _, name in REGISTRY}
    too_small = {"add_backward", "mul_backward", "exp_backward", "sub_backward", "jacobian_forward_mode"}
    too_small |= {"jacobian_reverse_mode", "backward", "topological_order"}
    # A prediction's answer is a constant ("b", 21, (3, 5)): see the tests of predictions below.
    # center_features' answer is allowed (ALLOWED): notebook 10 centers a batch in a demonstration.
    too_small |= {"center_features"}
    too_small |= {name for (_, name), exercise in REGISTRY.items() if isinstance(exercise.judge, Prediction)}
    assert graded - covered <= too_small, sorted(graded - covered - too_small)


def test_the_scan_finds_answers_under_other_names(tmp_path: Path, keys: Keys) -> None:
    """A test of the test: the leaks the notebooks once had are found, forward passes are not."""
    leaks = {
        "residual = residual + J.T @ residual": "residual_backward",
        "by_hand = u_block + W_block.T @ (u_block * (1 - a_block**2))": "residual_block_backward",
        "J_formula = np.diagflat(p_j) - p_j @ p_j.T": "softmax_jacobian",
        "rule = upstream * (z_values.data > 0)": "relu_backward",
        "delta = (Ws[l].T @ delta) * slope_from_a[activation](acts[l])": "layer_grad_norms",
        "delta1 = (W2.data.T @ delta2) * (1 - a1.data**2)": "two_layer_mse_grads",
        "x.grad == W.data.T @ g": "affine_backward",
        "log_p = (v - m) - np.log(np.sum(np.exp(v - m)))": "softmax_ce",
        "closed = 2 * xv * (xv + yv) * (2 * xv + yv)": "practice_grads",
    }
    harmless = ["z = W @ x + b", "a = np.tanh(W1 @ x + b1)", "print(W.grad.shape)", "g = upstream * y"]
    cells = [{"cell_type": "code", "source": source} for source in [*leaks, *harmless]]
    cells.append({"cell_type": "markdown", "source": "Subtract the max: `Z - Z.max(axis=0, keepdims=True)`."})
    path = tmp_path / "99_sample.ipynb"
    path.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    found = answers_shown(path, keys)
    for index, exercise in enumerate(leaks.values()):
        assert any(f"cell {index} " in line and exercise in line for line in found), (exercise, found)
    assert not any(f"cell {len(leaks) + k} " in line for k in range(len(harmless)) for line in found), found
    assert any(f"cell {len(cells) - 1} (markdown)" in line and "softmax" in line for line in found), found


# -- diagnoses ---------------------------------------------------------------------------------------------
CODE = {
    "a numpy call": r"\bnp\.\w",
    "a generator's method": r"\brng\.\w",
    "a keyword argument": r"\b(?:axis|keepdims)\s*=",
    "a transpose in Python": r"\w\.T\b",
    "a matrix product in Python": r"\w \@ \w",
    "a power in Python": r"\*\*",
    "an augmented assignment": r"[+\-*/]=\s",
    "an array method": r"\.(?:sum|mean|max|copy|reshape|astype)\(",
    "an attribute assignment": r"\.\w+\s*=\s",
}


def diagnoses() -> dict[str, str]:
    """Every text a verdict can show: misconception messages and the judges' own messages."""
    texts = {}
    for (notebook, name), exercise in REGISTRY.items():
        for mistake in exercise.misconceptions:
            texts[f"{notebook} {name} [{mistake.key}]"] = mistake.message
        texts[f"{notebook} {name} (revisit)"] = exercise.revisit
    for module in pkgutil.iter_modules(bpcourse.exercises.__path__):
        loaded = importlib.import_module(f"bpcourse.exercises.{module.name}")
        for constant, value in vars(loaded).items():
            if constant.isupper() and isinstance(value, str) and " " in value:
                texts[f"bpcourse.exercises.{module.name}.{constant}"] = value
    return texts


def test_diagnoses_explain_in_words_and_give_no_code() -> None:
    texts = diagnoses()
    assert len(texts) > 150
    found = [
        f"{where}: {what} in {text!r}"
        for where, text in texts.items()
        for what, pattern in CODE.items()
        if re.search(pattern, text)
    ]
    assert not found, "a diagnosis gives a line of code:\n" + "\n".join(found)


def test_the_code_patterns_catch_the_lines_diagnoses_once_gave() -> None:
    once = [
        "db = G.sum(axis=1, keepdims=True), shape (m, 1) like b",
        "rng.standard_normal(shape) * np.sqrt(variance)",
        "at a merge the contributions must be added (parent.grad += ...)",
        "start with root.grad = 1.0",
        "with the cached output a = tanh(z) it is simply 1 - a**2",
        "stack them one under the other, np.stack(rows, axis=0)",
        "Use theta.copy() for each probe",
    ]
    for text in once:
        assert any(re.search(pattern, text) for pattern in CODE.values()), text
    assert not any(
        re.search(pattern, "dW = g xᵀ, shape (m, n); ∂L/∂b = Σ_k g_k") for pattern in CODE.values()
    )


# -- predictions: the answer is a constant, its explanation is shown only after it -----------------------
PREDICTIONS = {key: e.judge for key, e in REGISTRY.items() if isinstance(e.judge, Prediction)}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    """A cell's source and every text it shows (outputs included)."""
    parts = ["".join(cell["source"])]
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        parts += ["".join(v) for v in output.get("data", {}).values() if isinstance(v, str | list)]
    return "\n".join(parts)


def test_the_predictions_are_found() -> None:
    assert len(PREDICTIONS) >= 20
    assert {notebook[:2] for notebook, _ in PREDICTIONS} == {f"{i:02d}" for i in range(11)}


@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_no_explanation_of_a_prediction_in_a_student_notebook(path: Path) -> None:
    """The sentence a right prediction earns is in no cell, source or output, of any student notebook."""
    texts = [_text(cell) for cell in _cells(path)]
    found = [
        f"{path.name}, cell {index}: the explanation of {name}"
        for (_, name), prediction in PREDICTIONS.items()
        for index, text in enumerate(texts)
        if prediction.explanation in text
    ]
    assert not found, found


@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_no_demonstration_shows_the_answer_of_a_prediction(path: Path) -> None:
    """Outside its own solution and self-check cells, no cell calls a prediction's function (a demo
    printing it would print the right choice), and the student's function body is the stub."""
    names = {name for notebook, name in PREDICTIONS if notebook == path.stem}
    found = []
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        source = "".join(cell["source"])
        if grade_id in names:
            if "raise NotImplementedError()" not in source or "return" in source:
                found.append(f"cell {index}: {grade_id} is not a stub")
            continue
        for call in ast.walk(ast.parse(TransformerManager().transform_cell(source))):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in names:
                if grade_id != f"check_{call.func.id}" or "grade(" in source:
                    found.append(f"cell {index}: calls {call.func.id}")
            if isinstance(call, ast.Name) and call.id in names and grade_id != f"check_{call.id}":
                found.append(f"cell {index}: uses {call.id}")
    assert not found, found


def test_the_scan_for_explanations_finds_one(tmp_path: Path) -> None:
    """A test of the tests: a stored check output holding an explanation, and a demo printing a
    prediction, are both found."""
    (notebook, name), prediction = next(iter(PREDICTIONS.items()))
    cells = [
        {"cell_type": "code", "source": f"print({name}())", "metadata": {}, "outputs": []},
        {"cell_type": "code", "source": "x = 1", "metadata": {},
         "outputs": [{"output_type": "stream", "text": ["answer: " + prediction.explanation]}]},
    ]  # fmt: skip
    path = tmp_path / f"{notebook}.ipynb"
    path.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    with pytest.raises(AssertionError, match="explanation"):
        test_no_explanation_of_a_prediction_in_a_student_notebook(path)
    with pytest.raises(AssertionError, match=f"calls {name}"):
        test_no_demonstration_shows_the_answer_of_a_prediction(path)


@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_no_rubric_of_a_written_answer_in_a_student_notebook(path: Path) -> None:
    solutions = {p.stem: p for p in SOLUTIONS}
    rubrics = [
        "".join(cell["source"])
        for cell in _cells(solutions[path.stem])
        if cell["cell_type"] == "markdown" and cell["metadata"].get("nbgrader", {}).get("grade")
    ]
    student = "\n".join(_text(cell) for cell in _cells(path))
    assert "Rubric" not in student
    for rubric in rubrics:
        for line in rubric.splitlines():
            if len(line) > 40:
                assert line not in student, line
