"""The prerequisites check of notebook 00_start_here: what the course assumes, checked.

Six predictions (the chain rule for one and for several variables, a partial
derivative, the shape of a product, of a gradient and of a broadcast) and one
function (``center_features``: a mean over the right axis, kept as a column).
Each says where to go back when it fails: the section of notebook 00 that
recalls the idea, and the outside topic to review when that is not enough.
"""

from __future__ import annotations

import numpy as np

from bpcourse.exercises.core import NOT_YOURS, Exercise, Inputs, Misconception
from bpcourse.exercises.prediction import Prediction, predict

NOTEBOOK = "00_start_here"
SECTION = "Check your prerequisites"

CHAIN_RULE_ONE = predict(
    "chain_rule_one_variable",
    NOTEBOOK,
    "f(x) = (3x + 1)²: the slope f′(2), by the chain rule",
    Prediction(
        kind="number",
        answer=42,
        explanation="the outer derivative 2(3x + 1) = 14 at x = 2, times the inner derivative 3",
        hint="write f as an outer function of an inner one, u = 3x + 1: the slope is the outer "
        "derivative at u times the inner derivative",
        wrong={
            14: "that is the outer derivative alone: the chain rule multiplies it by the derivative "
            "of the inside",
            49: "that is the value f(2); the question asks for the slope f′(2)",
            6: "the inner derivative is there, but the outer derivative of u² is 2u, not 2: "
            "it depends on where u is",
        },
    ),
    revisit=f"{SECTION}: the chain rule for one variable (review: derivative of a composite function)",
)

CHAIN_RULE_PATHS = predict(
    "chain_rule_two_paths",
    NOTEBOOK,
    "u = x + y, v = x·y, L = u·v: ∂L/∂x at (2, 3), one term per path",
    Prediction(
        kind="number",
        answer=21,
        explanation="∂L/∂u · ∂u/∂x + ∂L/∂v · ∂v/∂x = v · 1 + u · y = 6 + 15: "
        "one term for each path from x to L",
        hint="x reaches L along two paths, through u and through v: the chain rule for several variables "
        "has one term per path, each a product of the local derivatives along it",
        wrong={
            6: "that is the path through u alone: x reaches L through v as well, and that path adds a term",
            15: "that is the path through v alone: x reaches L through u as well, and that path adds a term",
            90: "the two paths' contributions add; they do not multiply",
        },
    ),
    revisit=f"{SECTION}: the chain rule for several variables (review: multivariable chain rule, "
    "total derivative along every path)",
)

PARTIAL = predict(
    "partial_derivative",
    NOTEBOOK,
    "f(x, y) = x²y + 3y: the partial ∂f/∂y at (2, 5)",
    Prediction(
        kind="number",
        answer=7,
        explanation="with x held fixed, x²y + 3y is (x² + 3) times y, so ∂f/∂y = x² + 3 = 4 + 3",
        hint="hold x fixed, as if it were a constant, and differentiate in y alone",
        wrong={
            20: "that is ∂f/∂x, the partial in x: for ∂f/∂y hold x fixed and let y move",
            4: "the term 3y depends on y as well: it adds its own slope",
            3: "x²y depends on y: with x held fixed, x² is a constant factor of y",
        },
    ),
    revisit=f"{SECTION}: partial derivatives (review: partial derivatives of a function of two variables)",
)

PRODUCT_SHAPE = predict(
    "product_shape",
    NOTEBOOK,
    "W of shape (3, 4) times X of shape (4, 5): the shape of the product",
    Prediction(
        kind="shape",
        answer=(3, 5),
        explanation="a product (m, n)(n, p) has the rows of the left factor and the columns of the right one",
        hint="entry (i, k) of the product pairs row i of the left factor with column k of the right one: "
        "count the rows and the columns that can be paired",
        wrong={
            (5, 3): "that is the shape of the transpose of the product",
            (4, 4): "the inner sizes must agree, and they do; they are summed over, so they disappear",
            (3, 4, 5): "a matrix product sums over the shared size; it does not keep it as an axis",
        },
    ),
    revisit=f"{SECTION}: reading and checking shapes (review: matrix multiplication)",
)

GRADIENT_SHAPE = predict(
    "gradient_shape",
    NOTEBOOK,
    "a scalar L of W with shape (3, 4): the shape of ∂L/∂W",
    Prediction(
        kind="shape",
        answer=(3, 4),
        explanation="there is one partial ∂L/∂W_ij per entry of W, and the course stores them as W is stored",
        hint="L is one number, and it has one partial derivative for each entry of W: arrange them the way "
        "the entries of W are arranged",
        wrong={
            (4, 3): "that is W transposed: the partial ∂L/∂W_ij sits at row i, column j, where W_ij sits",
            (): "L is a scalar, but it has one partial derivative for each entry of W",
            (1, 1): "L is a scalar, but it has one partial derivative for each entry of W",
            (12,): "the course keeps a gradient in the shape of what it differentiates, not flattened",
        },
    ),
    revisit=f"{SECTION}: reading and checking shapes (review: the gradient of a scalar function of a matrix)",
)

BROADCAST_SHAPE = predict(
    "broadcast_shape",
    NOTEBOOK,
    "x of shape (3, 1) minus y of shape (3,): the shape numpy gives",
    Prediction(
        kind="shape",
        answer=(3, 3),
        explanation="numpy lines shapes up from the last axis, so y acts as a row (1, 3): "
        "a column minus a row stretches both, and the result is a silent grid rather than an error",
        hint="numpy compares shapes starting from the last axis: write (3, 1) above (3,), right-aligned, "
        "and apply the broadcasting rule axis by axis",
        wrong={
            (3, 1): "numpy does not line a flat array up with the rows of a column: "
            "it compares the last axes first",
            (3,): "numpy does not line a flat array up with the rows of a column: "
            "it compares the last axes first",
            (1, 3): "a size-1 axis stretches to the other array's size on that axis: "
            "both arrays stretch here",
        },
    ),
    revisit=f"{SECTION}: numpy axes, keepdims and broadcasting (review: numpy's broadcasting rules)",
)


# -- center_features: a mean over the right axis, kept as a column --------------------------------------
def _square_batch(rng: np.random.Generator) -> Inputs:
    # As many features as examples: a mean that lost its axis still broadcasts, silently wrong,
    # and a mean over the wrong axis has the right shape. Only the values tell them apart.
    n = int(rng.integers(3, 7))
    return {"X": rng.normal(size=(n, n)) * 2.0 + rng.normal(size=(n, 1)) * 3.0}


def _centered(X: np.ndarray) -> tuple[np.ndarray]:
    return (X - X.mean(axis=1, keepdims=True),)


def _wrong_axis(X: np.ndarray) -> tuple[np.ndarray]:
    return (X - X.mean(axis=0, keepdims=True),)


def _flat_mean(X: np.ndarray) -> tuple[np.ndarray]:
    return (X - X.mean(axis=1)[np.newaxis, :],)


def _one_mean(X: np.ndarray) -> tuple[np.ndarray]:
    return (X - X.mean(),)


CENTER_FEATURES = Exercise(
    name="center_features",
    notebook=NOTEBOOK,
    signature="center_features(X) -> X_centered",
    summary="X of shape (n, B): subtract from each feature (row) its mean over the batch",
    outputs=("X_centered",),
    points=1,
    make_inputs=_square_batch,
    reference=_centered,
    misconceptions=(
        Misconception(
            "wrong_axis",
            "each example (column) lost its own mean: the mean of a feature runs along its row, "
            "across the examples of the batch",
            _wrong_axis,
        ),
        Misconception(
            "flat_mean",
            "the means lost their axis: a flat array of n means lines up with the columns, not the rows, "
            "so column j was shifted by the mean of feature j; keep the axis (keepdims) so that the means "
            "stand as a column (n, 1)",
            _flat_mean,
        ),
        Misconception(
            "one_mean",
            "that subtracts one number, the mean of every entry: each feature needs its own mean",
            _one_mean,
        ),
    ),
    revisit=f"{SECTION}: numpy axes, keepdims and broadcasting (review: numpy reductions along an axis)",
    refuses=NOT_YOURS,
)

EXERCISES = (CHAIN_RULE_ONE, CHAIN_RULE_PATHS, PARTIAL, PRODUCT_SHAPE, GRADIENT_SHAPE, BROADCAST_SHAPE,
             CENTER_FEATURES)  # fmt: skip
