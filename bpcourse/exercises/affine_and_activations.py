"""Exercises of notebook 03_affine_and_activations: affine and activation backward, a two-layer network.

Conventions: column vectors, z = W x + b with W (m, n), x (n, 1), b (m, 1);
g = dL/dz and δ = dL/dz have z's shape (m, 1). Every input is drawn with
m != n (and, for the network, n, h, k all different), so a transposed answer
always has the wrong shape and can never pass by accident. Pre-activations of a
ReLU stay at least 0.1 away from its kink; sigmoid and tanh inputs stay in a
range where their slopes are of order one.

Reference answers come from the tensor engine (build tensors, apply the op,
backward with the given upstream gradient, read ``.grad``); the oracle is a
central difference of Σ upstream ⊙ f(...) in float64.

``affine_relu_backward`` and ``two_layer_mse_grads`` are also written from the
rules of the exercises before them, as steps (``bpcourse.exercises.composite``):
a classic mistake of affine_backward, relu_backward or tanh_backward made at one
of their steps is named as that exercise names it, after where it happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bpcourse.exercises.composite import Composite, Part, Step
from bpcourse.exercises.core import NOT_YOURS, Exercise, Inputs, NotGradable, Outputs, with_hints
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import KINK_MARGIN, away_from_zero, distinct_sizes
from bpcourse.gradcheck import numerical_gradient
from bpcourse.tensor import Tensor, affine, mse

NOTEBOOK = "03_affine_and_activations"


# -- drawing inputs ------------------------------------------------------------------------------
def mixed_signs(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    """Like ``away_from_zero``, with at least one positive and one negative entry."""
    while True:
        x = away_from_zero(rng, shape, low, high)
        if (x > 0).any() and (x < 0).any():
            return x


def logit(a: np.ndarray) -> np.ndarray:
    """The z with σ(z) = a."""
    return np.log(a) - np.log1p(-a)


# -- affine backward -------------------------------------------------------------------------------
def _affine_inputs(rng: np.random.Generator) -> Inputs:
    m, n = distinct_sizes(rng, 2)
    return {
        "g": away_from_zero(rng, (m, 1), 0.3, 2.0),
        "x": away_from_zero(rng, (n, 1), 0.3, 2.0),
        "W": rng.standard_normal((m, n)),
    }


def _affine_reference(g: np.ndarray, x: np.ndarray, W: np.ndarray) -> Outputs:
    w, xx, b = Tensor(W), Tensor(x), Tensor(np.zeros((W.shape[0], 1)))
    affine(w, xx, b).backward(g)
    return w.grad, b.grad, xx.grad


def _affine_numeric(g: np.ndarray, x: np.ndarray, W: np.ndarray) -> Outputs:
    b = np.zeros((W.shape[0], 1))
    return (
        numerical_gradient(lambda v: np.sum(g * (v @ x + b)), W),
        numerical_gradient(lambda v: np.sum(g * (W @ x + v)), b),
        numerical_gradient(lambda v: np.sum(g * (W @ v + b)), x),
    )


DW_TRANSPOSED = (
    "this is x gᵀ, the transpose of dW. From z_i = Σ_j W_ij x_j + b_i, ∂L/∂W_ij = g_i x_j: "
    "row i of dW is g_i times xᵀ, so dW = g xᵀ, with the shape (m, n) of W"
)
AFFINE_SHAPE_HINT = (
    "Write the shape under each factor: W is (m, n), x is (n, 1), g is (m, 1). "
    "From ∂L/∂x_j = Σ_i W_ij g_i the gradient of x is Wᵀ g, shape (n, 1) (W g does not fit unless m = n); "
    "the gradient of W is g xᵀ, shape (m, n)"
)

AFFINE_BACKWARD = Exercise(
    name="affine_backward",
    notebook=NOTEBOOK,
    signature="affine_backward(g, x, W) -> (dW, db, dx)",
    summary="z = W x + b: dW = g xᵀ (m, n), db = g (m, 1), dx = Wᵀ g (n, 1)",
    outputs=("dW", "db", "dx"),
    points=3,
    make_inputs=_affine_inputs,
    reference=_affine_reference,
    numeric=_affine_numeric,
    misconceptions=(
        M("dW_transposed", DW_TRANSPOSED, lambda g, x, W: (x @ g.T, None, None)),
        M(
            "forgot_upstream",
            "only the local derivative is here (∂z_i/∂W_ij = x_j, ∂z_i/∂b_i = 1, ∂z_i/∂x_j = W_ij): "
            "multiply by the upstream gradient g_i of each row before adding (chain rule)",
            lambda g, x, W: (np.ones_like(g) @ x.T, np.ones_like(g), W.T @ np.ones_like(g)),
        ),
        M(
            "db_row",
            "db is a row: ∂L/∂b_i = g_i, so db is g itself, a column of shape (m, 1) like b",
            lambda g, x, W: (None, g.T, None),
        ),
        M(
            "db_flat",
            "db lost its second axis: keep db = g as a column of shape (m, 1) like b",
            lambda g, x, W: (None, g.ravel(), None),
        ),
        M(
            "db_summed",
            "∂L/∂b_i = g_i for each i on its own: for one example there is nothing to add up "
            "(the sum over columns is the batch rule), so db = g, shape (m, 1)",
            lambda g, x, W: (None, g.sum(), None),
        ),
        M(
            "dx_row",
            "gᵀ W holds the right numbers as a row; the gradient of x has the shape of x, (n, 1): dx = Wᵀ g",
            lambda g, x, W: (None, None, g.T @ W),
        ),
    ),
    revisit="the componentwise derivation of the affine rules: ∂L/∂W_ij = g_i x_j",
    judge=with_hints(AFFINE_SHAPE_HINT),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- activations -------------------------------------------------------------------------------------
def _relu_inputs(rng: np.random.Generator) -> Inputs:
    while True:
        (m,) = distinct_sizes(rng, 1, 3, 7)
        z = mixed_signs(rng, (m, 1), 0.2, 2.5)
        upstream = away_from_zero(rng, (m, 1), 0.3, 2.0)
        # Make every mistake visible: the upstream sign disagrees with z's somewhere,
        # and no positive z sits near 1 (where relu(z) would look like the mask).
        disagree = (upstream > 0) != (z > 0)
        if disagree.any() and not np.any(np.abs(z - 1.0) < 0.1):
            return {"upstream": upstream, "z": z}


def _relu_reference(upstream: np.ndarray, z: np.ndarray) -> Outputs:
    zt = Tensor(z)
    zt.relu().backward(upstream)
    return (zt.grad,)


def _unary_numeric(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray], Outputs]:
    def numeric(upstream: np.ndarray, z: np.ndarray) -> Outputs:
        return (numerical_gradient(lambda v: np.sum(upstream * f(v)), z),)

    return numeric


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


FORGOT_UPSTREAM = (
    "this is the local derivative alone: multiply it entrywise by the upstream gradient "
    "(chain rule: upstream ⊙ local)"
)
ELEMENTWISE_HINT = (
    "An activation acts entry by entry: its gradient is upstream ⊙ (local derivative), shape (m, 1)"
)

RELU_BACKWARD = Exercise(
    name="relu_backward",
    notebook=NOTEBOOK,
    signature="relu_backward(upstream, z) -> dz",
    summary="a = max(0, z): dL/dz = upstream ⊙ 1[z > 0], the mask taken from the pre-activation z",
    outputs=("dz",),
    points=1,
    make_inputs=_relu_inputs,
    reference=_relu_reference,
    numeric=_unary_numeric(lambda v: np.maximum(v, 0.0)),
    misconceptions=(
        M(
            "mask_from_upstream",
            "the mask comes from the wrong array: it is 1[z > 0], where the ReLU let its input z through; "
            "the sign of the upstream gradient plays no part",
            lambda upstream, z: (upstream * (upstream > 0),),
        ),
        M("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, z: ((z > 0).astype(float),)),
        M(
            "relu_values",
            "this multiplies by relu(z), the forward values; the local derivative of max(0, z) is "
            "1 where z > 0 and 0 elsewhere: multiply by the mask 1[z > 0], not by z",
            lambda upstream, z: (upstream * np.maximum(z, 0.0),),
        ),
    ),
    revisit="the rules table: ReLU (the mask comes from z)",
    judge=with_hints(ELEMENTWISE_HINT),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


def _cached_inputs(activation: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.random.Generator], Inputs]:
    def make(rng: np.random.Generator) -> Inputs:
        (m,) = distinct_sizes(rng, 1, 3, 7)
        z = away_from_zero(rng, (m, 1), 0.2, 2.5)
        return {"upstream": away_from_zero(rng, (m, 1), 0.3, 2.0), "a": activation(z)}

    return make


def _cached_reference(method: str, inverse: Callable[[np.ndarray], np.ndarray]) -> Callable[..., Outputs]:
    def reference(upstream: np.ndarray, a: np.ndarray) -> Outputs:
        z = Tensor(inverse(a))
        getattr(z, method)().backward(upstream)
        return (z.grad,)

    return reference


def _cached_numeric(
    f: Callable[[np.ndarray], np.ndarray], inverse: Callable[[np.ndarray], np.ndarray]
) -> Callable[..., Outputs]:
    def numeric(upstream: np.ndarray, a: np.ndarray) -> Outputs:
        return (numerical_gradient(lambda v: np.sum(upstream * f(v)), inverse(a)),)

    return numeric


SIGMOID_BACKWARD = Exercise(
    name="sigmoid_backward",
    notebook=NOTEBOOK,
    signature="sigmoid_backward(upstream, a) -> dz",
    summary="a = σ(z), cached: dL/dz = upstream ⊙ a ⊙ (1 - a)",
    outputs=("dz",),
    points=1,
    make_inputs=_cached_inputs(_sigmoid),
    reference=_cached_reference("sigmoid", logit),
    numeric=_cached_numeric(_sigmoid, logit),
    misconceptions=(
        M(
            "sigmoid_of_a",
            "φ′(a) used where φ′(z) belongs: a is already σ(z), so σ′(z) = σ(z)(1 - σ(z)) = a(1 - a); "
            "σ(a)(1 - σ(a)) is the slope at the wrong point",
            lambda upstream, a: (upstream * _sigmoid(a) * (1.0 - _sigmoid(a)),),
        ),
        M("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, a: (a * (1.0 - a),)),
        M(
            "wrong_sign",
            "a sign is off: σ′(z) = a(1 - a), not a(1 + a)",
            lambda upstream, a: (upstream * a * (1.0 + a),),
        ),
    ),
    revisit="the rules table: Sigmoid (written with the cached activation a)",
    judge=with_hints(ELEMENTWISE_HINT),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)

# The same function name as the scalar exercise of notebook 01: the registry tells
# them apart by notebook.
TANH_BACKWARD = Exercise(
    name="tanh_backward",
    notebook=NOTEBOOK,
    signature="tanh_backward(upstream, a) -> dz",
    summary="a = tanh(z), cached: dL/dz = upstream ⊙ (1 - a²)",
    outputs=("dz",),
    points=1,
    make_inputs=_cached_inputs(np.tanh),
    reference=_cached_reference("tanh", np.arctanh),
    numeric=_cached_numeric(np.tanh, np.arctanh),
    misconceptions=(
        M(
            "tanh_of_a",
            "φ′(a) used where φ′(z) belongs: 1 - tanh(a)² applies tanh again to a, which is already "
            "tanh(z); with the cached activation, tanh′(z) = 1 - a²",
            lambda upstream, a: (upstream * (1.0 - np.tanh(a) ** 2),),
        ),
        M(
            "not_squared",
            "tanh′(z) = 1 - tanh(z)² = 1 - a², with a squared (here it is 1 - a)",
            lambda upstream, a: (upstream * (1.0 - a),),
        ),
        M("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, a: (1.0 - a * a,)),
    ),
    revisit="the rules table: Tanh (written with the cached activation a)",
    judge=with_hints(ELEMENTWISE_HINT),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- the rules above as steps of the exercises below (plain numpy, the outputs in the same order) ----------
def _affine_step(g: np.ndarray, x: np.ndarray, W: np.ndarray) -> Outputs:
    return g @ x.T, g, W.T @ g


def _relu_step(upstream: np.ndarray, z: np.ndarray) -> Outputs:
    return (upstream * (z > 0),)


def _tanh_step(upstream: np.ndarray, a: np.ndarray) -> Outputs:
    return (upstream * (1.0 - a * a),)


# -- affine + ReLU -------------------------------------------------------------------------------------
def _affine_relu_inputs(rng: np.random.Generator) -> Inputs:
    m, n = distinct_sizes(rng, 2, 3, 6)
    while True:
        x = mixed_signs(rng, (n, 1), 0.3, 2.0)  # so that a mask taken from x differs from none
        W = rng.standard_normal((m, n)) / np.sqrt(n)
        b = 0.5 * rng.standard_normal((m, 1))
        z = W @ x + b
        upstream = away_from_zero(rng, (m, 1), 0.3, 2.0)
        # Away from the kink, and the mask must switch some entries off and leave some on.
        if np.all(np.abs(z) > KINK_MARGIN) and (z > 0).any() and (z < 0).any():
            return {"upstream": upstream, "x": x, "W": W, "z": z}


def _affine_relu_reference(upstream: np.ndarray, x: np.ndarray, W: np.ndarray, z: np.ndarray) -> Outputs:
    w, xx, b = Tensor(W), Tensor(x), Tensor(z - W @ x)
    affine(w, xx, b).relu().backward(upstream)
    return w.grad, b.grad, xx.grad


def _affine_relu_numeric(upstream: np.ndarray, x: np.ndarray, W: np.ndarray, z: np.ndarray) -> Outputs:
    b = z - W @ x

    def loss(w: np.ndarray, xx: np.ndarray, bb: np.ndarray) -> float:
        return float(np.sum(upstream * np.maximum(w @ xx + bb, 0.0)))

    return (
        numerical_gradient(lambda v: loss(v, x, b), W),
        numerical_gradient(lambda v: loss(W, x, v), b),
        numerical_gradient(lambda v: loss(W, v, b), x),
    )


# The ReLU's rule (relu_backward), then the affine rules (affine_backward) with δ as the upstream gradient.
def _affine_relu_backward(steps: Mapping[str, Step], upstream, x, W, z) -> Outputs:
    (delta,) = steps["relu"](upstream=upstream, z=z)
    return steps["affine"](g=delta, x=x, W=W)


AFFINE_RELU_STEPS = Composite(_affine_relu_backward, {"relu": _relu_step, "affine": _affine_step})
AFFINE_RELU_PARTS = (
    Part("relu", RELU_BACKWARD, "in the ReLU step, a = relu(z) (the rule of relu_backward)",
         ("mask_from_upstream", "forgot_upstream", "relu_values")),
    Part("affine", AFFINE_BACKWARD, "in the affine step, z = W x + b (the rule of affine_backward, with "
         "g = δ = dL/dz)", ("dW_transposed", "forgot_upstream", "db_row", "db_flat", "db_summed", "dx_row")),
)  # fmt: skip


AFFINE_RELU_BACKWARD = Exercise(
    name="affine_relu_backward",
    notebook=NOTEBOOK,
    signature="affine_relu_backward(upstream, x, W, z) -> (dW, db, dx)",
    summary="a = relu(W x + b): δ = upstream ⊙ 1[z > 0], then dW = δ xᵀ, db = δ, dx = Wᵀ δ",
    outputs=("dW", "db", "dx"),
    points=3,
    make_inputs=_affine_relu_inputs,
    reference=_affine_relu_reference,
    numeric=_affine_relu_numeric,
    misconceptions=(
        M(
            "forgot_mask",
            "the ReLU mask is missing: the affine rules need δ = dL/dz = upstream ⊙ 1[z > 0], "
            "not the upstream gradient dL/da",
            lambda upstream, x, W, z: (upstream @ x.T, upstream, None),
        ),
        M(
            "dx_unmasked",
            "dx = Wᵀ upstream skips the ReLU: the mask acts on the upstream gradient BEFORE the affine "
            "step (δ = upstream ⊙ 1[z > 0], then dx = Wᵀ δ); masking dW and db afterwards cannot fix dx, "
            "whose entries mix every row",
            lambda upstream, x, W, z: (None, None, W.T @ upstream),
        ),
        M(
            "mask_on_dx",
            "this masks dx with 1[x > 0]: the mask of this layer comes from z and acts on the upstream "
            "gradient before the affine step: δ = upstream ⊙ 1[z > 0], then dx = Wᵀ δ",
            lambda upstream, x, W, z: (None, None, (W.T @ upstream) * (x > 0)),
        ),
        *AFFINE_RELU_STEPS.inserted(AFFINE_RELU_PARTS),
    ),
    revisit="the affine + ReLU practice problem: first the mask, then the affine rules with δ",
    judge=with_hints(
        "Write the shape under each factor: W is (m, n), x is (n, 1), δ = upstream ⊙ 1[z > 0] is (m, 1). "
        "The gradient of x is Wᵀ δ, shape (n, 1) (W δ does not fit unless m = n); "
        "the gradient of W is δ xᵀ, shape (m, n)"
    ),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- a two-layer network -------------------------------------------------------------------------------
PARAMETERS = ("W1", "b1", "W2", "b2")


def _two_layer_inputs(rng: np.random.Generator) -> Inputs:
    n, h, k = distinct_sizes(rng, 3)
    return {
        "x": rng.standard_normal((n, 1)),
        "y": rng.standard_normal((k, 1)),
        "W1": rng.standard_normal((h, n)) / np.sqrt(n),
        "b1": 0.3 * rng.standard_normal((h, 1)),
        "W2": rng.standard_normal((k, h)) / np.sqrt(h),
        "b2": 0.3 * rng.standard_normal((k, 1)),
    }


def _two_layer_reference(x: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                         W2: np.ndarray, b2: np.ndarray) -> Outputs:  # fmt: skip
    params = [Tensor(p) for p in (W1, b1, W2, b2)]
    w1, c1, w2, c2 = params
    a1 = affine(w1, x, c1).tanh()
    mse(affine(w2, a1, c2), y).backward()
    return tuple(p.grad for p in params)


def _two_layer_loss(x: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                    W2: np.ndarray, b2: np.ndarray) -> float:  # fmt: skip
    a2 = W2 @ np.tanh(W1 @ x + b1) + b2
    return float(0.5 * np.sum((a2 - y) ** 2))


def _two_layer_numeric(**inputs: np.ndarray) -> Outputs:
    grads = []
    for name in PARAMETERS:

        def loss(v: np.ndarray, name: str = name) -> float:
            return _two_layer_loss(**{**inputs, name: v})

        grads.append(numerical_gradient(loss, inputs[name]))
    return tuple(grads)


# The backward pass written from its steps, each the rule of an exercise above: the loss's gradient
# δ2 = a2 - y, then affine_backward for layer 2, tanh_backward, affine_backward for layer 1.
def _mse_step(a2: np.ndarray, y: np.ndarray) -> Outputs:
    return (a2 - y,)


def _two_layer_backward(steps: Mapping[str, Step], x, y, W1, b1, W2, b2) -> Outputs:
    a1 = np.tanh(W1 @ x + b1)
    (d2,) = steps["loss"](a2=W2 @ a1 + b2, y=y)
    dW2, db2, da1 = steps["layer2"](g=d2, x=a1, W=W2)
    (d1,) = steps["tanh"](upstream=da1, a=a1)
    dW1, db1, _ = steps["layer1"](g=d1, x=x, W=W1)
    return dW1, db1, dW2, db2


TWO_LAYER_STEPS = Composite(
    _two_layer_backward,
    {"loss": _mse_step, "layer2": _affine_step, "tanh": _tanh_step, "layer1": _affine_step},
)
# A mistake of affine_backward or tanh_backward made inside the network reads as the exercise says it,
# after where it happened. Left out: dx as a row (the steps after it cannot run on it; the shape hint
# speaks), and layer 1's dx, which the network does not return.
AFFINE_KEYS = ("dW_transposed", "forgot_upstream", "db_row", "db_flat", "db_summed")
TWO_LAYER_PARTS = (
    Part("layer2", AFFINE_BACKWARD,
         "in layer 2's affine step, a2 = W2 a1 + b2 (the rule of affine_backward, with g = δ2 = a2 - y, "
         "x = a1 and W = W2)", AFFINE_KEYS),
    Part("tanh", TANH_BACKWARD,
         "in the tanh step, a1 = tanh(z1) (the rule of tanh_backward, with upstream = W2ᵀ δ2 = dL/da1 and "
         "a = a1)", ("tanh_of_a", "not_squared", "forgot_upstream")),
    Part("layer1", AFFINE_BACKWARD,
         "in layer 1's affine step, z1 = W1 x + b1 (the rule of affine_backward, with g = δ1 = dL/dz1, x = x "
         "and W = W1)", AFFINE_KEYS),
)  # fmt: skip


def _as_parameter_tuple(raw: Any) -> Outputs:
    """The learner's dict of gradients as (W1, b1, W2, b2)."""
    keys = ", ".join(repr(p) for p in PARAMETERS)
    if not isinstance(raw, dict):
        raise NotGradable(f"should return a dict with the keys {keys}, but returned a {type(raw).__name__}")
    missing = [p for p in PARAMETERS if p not in raw]
    if missing:
        shown = ", ".join(repr(k) for k in raw) or "none"
        raise NotGradable(
            f"the dict has no {', '.join(repr(p) for p in missing)}: it must hold one gradient per "
            f"parameter under the parameter's own name ({keys}); its keys are {shown}"
        )
    return tuple(raw[p] for p in PARAMETERS)


TWO_LAYER_MSE_GRADS = Exercise(
    name="two_layer_mse_grads",
    notebook=NOTEBOOK,
    signature="two_layer_mse_grads(x, y, W1, b1, W2, b2) -> {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2}",
    summary="z1 = W1 x + b1, a1 = tanh(z1), a2 = W2 a1 + b2, L = ½‖a2 - y‖²: the δ recurrence",
    outputs=PARAMETERS,
    points=4,
    make_inputs=_two_layer_inputs,
    reference=_two_layer_reference,
    numeric=_two_layer_numeric,
    misconceptions=(
        M(
            "sign_flip",
            "the sign is flipped: with L = ½‖a2 - y‖², δ2 = a2 - y (prediction minus target), not y - a2",
            TWO_LAYER_STEPS.variant(loss=lambda a2, y: (y - a2,)),
        ),
        M(
            "forgot_slope",
            "δ1 is missing the activation's factor: δ1 = (W2ᵀ δ2) ⊙ (1 - a1²), the gradient at z1, not at a1",
            TWO_LAYER_STEPS.variant(tanh=lambda upstream, a: (upstream,)),
        ),
        *TWO_LAYER_STEPS.inserted(TWO_LAYER_PARTS),
    ),
    revisit="the two-layer network: δ2 = a2 - y, δ1 = (W2ᵀ δ2) ⊙ (1 - a1²), then the affine rules",
    judge=with_hints(
        "Write the shape under each factor: W2 is (k, h) and δ2 is (k, 1), so the gradient sent back "
        "to a1 is W2ᵀ δ2, shape (h, 1) (W2 δ2 does not fit); dW = δ (input)ᵀ has the shape of W",
        convert=_as_parameter_tuple,
    ),
    refuses=NOT_YOURS,
    instead="write the backward pass yourself",
)

EXERCISES = (
    AFFINE_BACKWARD,
    RELU_BACKWARD,
    SIGMOID_BACKWARD,
    TANH_BACKWARD,
    AFFINE_RELU_BACKWARD,
    TWO_LAYER_MSE_GRADS,
)
