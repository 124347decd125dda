"""Exercises of notebook 09_modular_layers_and_digits, part 1: layers with one interface, weight decay,
a network made of layers.

In the notebook every layer has the same two methods, ``forward(X) -> (out, cache)`` and
``backward(upstream, cache) -> (dX, grads)``; a graded *handle* (given, not written by the
learner) builds the learner's layer, runs its forward pass and then its backward pass, and
returns what the grader compares: ``affine_layer(W, b, X, G) -> (Z, dX, dW, db)`` and so on.
What a layer keeps in its cache is the learner's choice; the handles only see what comes out.

Conventions: a batch X has shape (n, B), one example per column; Z = W X + b with W (m, n)
and b (m, 1); G = dL/dZ has Z's shape; labels Y are one-hot columns (K, B). Sizes are drawn
all different, so a transposed answer or a sum over the wrong axis has the wrong shape. ReLU
inputs stay at least 0.1 from the kink; tanh and sigmoid inputs where their slopes are of
order one. Weight decay follows one convention everywhere: the penalty is λ/2 ‖W‖² (biases
are not decayed), so its gradient is λ W.

Reference answers come from the tensor engine; the oracle is a central difference of the
same quantity in plain numpy, in float64. The network's exercise adds a line: the course's
gradient checker (``bpcourse.gradcheck.check_gradient``) on the learner's gradients of a
small network, reported as the checker reports it (its verdict line).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bpcourse.datasets import one_hot
from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    Inputs,
    Line,
    NotGradable,
    Outputs,
    Verdict,
    judged_every_output,
    learner_outputs,
    type_name,
    weighted_verdict,
    with_hints,
)
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import KINK_MARGIN, away_from_zero, distinct_sizes
from bpcourse.exercises.minibatches_and_training import (
    AFFINE_SHAPE_HINT,
    BIAS_AVERAGED,
    BIAS_NOT_SUMMED,
    EXTRA_ONE_OVER_B,
    WRONG_AXIS,
)
from bpcourse.gradcheck import check_gradient, numerical_gradient
from bpcourse.tensor import Tensor, affine, softmax_cross_entropy

NOTEBOOK = "09_modular_layers_and_digits"


# -- plain numpy pieces shared by the oracles and the misconceptions ------------------------------------
def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(-z)), entrywise."""
    return 1.0 / (1.0 + np.exp(-z))


def softmax_columns(Z: np.ndarray) -> np.ndarray:
    """Softmax of each column of Z (K, B), shifted by the column's maximum."""
    e = np.exp(Z - Z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def mean_cross_entropy(Z: np.ndarray, Y: np.ndarray) -> float:
    """(1/B) Σ_k -Σ_i Y_ik log softmax(Z)_ik for logits Z and labels Y of shape (K, B)."""
    shifted = Z - Z.max(axis=0, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return float(-(Y * log_p).sum() / Z.shape[1])


# -- the affine layer ------------------------------------------------------------------------------------
def _affine_inputs(rng: np.random.Generator) -> Inputs:
    m, n, batch = distinct_sizes(rng, 3, 2, 7)
    return {
        "W": rng.standard_normal((m, n)),
        "b": rng.standard_normal((m, 1)),
        "X": away_from_zero(rng, (n, batch), 0.3, 2.0),
        "G": away_from_zero(rng, (m, batch), 0.3, 2.0),
    }


def _affine_reference(W: np.ndarray, b: np.ndarray, X: np.ndarray, G: np.ndarray) -> Outputs:
    w, c, x = Tensor(W), Tensor(b), Tensor(X)
    z = affine(w, x, c)
    z.backward(G)
    return z.data.copy(), x.grad, w.grad, c.grad


def _affine_numeric(W: np.ndarray, b: np.ndarray, X: np.ndarray, G: np.ndarray) -> Outputs:
    return (
        W @ X + b,
        numerical_gradient(lambda v: np.sum(G * (W @ v + b)), X),
        numerical_gradient(lambda v: np.sum(G * (v @ X + b)), W),
        numerical_gradient(lambda v: np.sum(G * (W @ X + v)), b),
    )


LAYER_HANDLE = "the handle runs your layer's forward, then its backward on the same cache"

AFFINE_LAYER = Exercise(
    name="affine_layer",
    notebook=NOTEBOOK,
    signature="affine_layer(W, b, X, G) -> (Z, dX, dW, db)",
    summary="Affine: forward Z = W X + b; backward dX = Wᵀ G (n, B), dW = G Xᵀ (m, n), db = Σ columns of G",
    outputs=("Z", "dX", "dW", "db"),
    points=3,
    make_inputs=_affine_inputs,
    reference=_affine_reference,
    numeric=_affine_numeric,
    misconceptions=(
        M(
            "dW_transposed",
            "this is X Gᵀ, the transpose of dW: ∂L/∂W_ij = Σ_k G_ik X_jk, so dW = G Xᵀ, with the shape "
            "(m, n) of W",
            lambda W, b, X, G: (None, None, X @ G.T, None),
        ),
        M("db_not_summed", BIAS_NOT_SUMMED, lambda W, b, X, G: (None, None, None, G)),
        M("db_wrong_axis", WRONG_AXIS, lambda W, b, X, G: (None, None, None, G.sum(axis=0, keepdims=True))),
        M("db_averaged", BIAS_AVERAGED, lambda W, b, X, G: (None, None, None, G.mean(axis=1, keepdims=True))),
        M(
            "db_flat",
            "db lost its second axis: the sum over G's columns must stay a column of shape (m, 1) like b, "
            "not a flat (m,) array",
            lambda W, b, X, G: (None, None, None, G.sum(axis=1)),
        ),
        M(
            "extra_one_over_B",
            EXTRA_ONE_OVER_B,
            lambda W, b, X, G: (None, W.T @ G / G.shape[1], G @ X.T / G.shape[1], None),
        ),
        M(
            "dX_rows",
            "Gᵀ W holds the right numbers with one example per ROW; keep one example per column like X: "
            "dX = Wᵀ G, shape (n, B)",
            lambda W, b, X, G: (None, G.T @ W, None, None),
        ),
        M(
            "forward_no_bias",
            "the forward pass left out the bias: Z = W X + b, with b (m, 1) added to every column",
            lambda W, b, X, G: (W @ X, None, None, None),
        ),
    ),
    revisit="the Affine layer: its cache keeps what backward needs (X and W), and db sums G over the batch",
    judge=with_hints(AFFINE_SHAPE_HINT),
    refuses=NOT_YOURS,
    instead="write the layer yourself",
)


# -- activation layers -------------------------------------------------------------------------------------
def _activation_inputs(kink: bool) -> Callable[[np.random.Generator], Inputs]:
    def make(rng: np.random.Generator) -> Inputs:
        m, batch = distinct_sizes(rng, 2, 2, 7)
        while True:
            Z = away_from_zero(rng, (m, batch), KINK_MARGIN + 0.1 if kink else 0.2, 2.5)
            upstream = away_from_zero(rng, (m, batch), 0.3, 2.0)
            # Every mistake visible: the signs of Z and of the upstream gradient disagree somewhere,
            # both signs of Z occur, and no Z sits near 1 (where relu(z) would look like the mask).
            disagree = (upstream > 0) != (Z > 0)
            if disagree.any() and (Z > 0).any() and (Z < 0).any() and not np.any(np.abs(Z - 1.0) < 0.1):
                return {"Z": Z, "upstream": upstream}

    return make


def _activation_reference(method: str) -> Callable[..., Outputs]:
    def reference(Z: np.ndarray, upstream: np.ndarray) -> Outputs:
        z = Tensor(Z)
        a = getattr(z, method)()
        a.backward(upstream)
        return a.data.copy(), z.grad

    return reference


def _activation_numeric(f: Callable[[np.ndarray], np.ndarray]) -> Callable[..., Outputs]:
    def numeric(Z: np.ndarray, upstream: np.ndarray) -> Outputs:
        return f(Z), numerical_gradient(lambda v: np.sum(upstream * f(v)), Z)

    return numeric


FORGOT_UPSTREAM = (
    "this is the local derivative alone: multiply it entrywise by the upstream gradient "
    "(chain rule: upstream ⊙ local)"
)
ELEMENTWISE_HINT = (
    "An activation acts entry by entry: its backward is upstream ⊙ (local derivative), with the shape "
    "(m, B) of its input"
)
ACTIVATION_OUTPUTS = ("A", "dZ")


def _relu(Z: np.ndarray) -> np.ndarray:
    return np.maximum(Z, 0.0)


RELU_LAYER = Exercise(
    name="relu_layer",
    notebook=NOTEBOOK,
    signature="relu_layer(Z, upstream) -> (A, dZ)",
    summary="ReLU: forward A = max(0, Z); backward dZ = upstream ⊙ 1[Z > 0]",
    outputs=ACTIVATION_OUTPUTS,
    points=1,
    make_inputs=_activation_inputs(kink=True),
    reference=_activation_reference("relu"),
    numeric=_activation_numeric(_relu),
    misconceptions=(
        M(
            "mask_from_upstream",
            "the mask comes from the wrong array: it is 1[Z > 0], where the ReLU let its input through; "
            "the sign of the upstream gradient plays no part",
            lambda Z, upstream: (None, upstream * (upstream > 0)),
        ),
        M("forgot_upstream", FORGOT_UPSTREAM, lambda Z, upstream: (None, (Z > 0).astype(float))),
        M(
            "relu_values",
            "this multiplies by relu(Z), the forward values; the local derivative of max(0, z) is 1 where "
            "z > 0 and 0 elsewhere: multiply by the mask 1[Z > 0]",
            lambda Z, upstream: (None, upstream * _relu(Z)),
        ),
    ),
    revisit="the ReLU layer: its cache keeps the mask (or Z), and backward multiplies the upstream by it",
    judge=with_hints(ELEMENTWISE_HINT),
    refuses=NOT_YOURS,
    instead="write the layer yourself",
)

TANH_LAYER = Exercise(
    name="tanh_layer",
    notebook=NOTEBOOK,
    signature="tanh_layer(Z, upstream) -> (A, dZ)",
    summary="Tanh: forward A = tanh(Z); backward dZ = upstream ⊙ (1 - A²), from the cached output",
    outputs=ACTIVATION_OUTPUTS,
    points=1,
    make_inputs=_activation_inputs(kink=False),
    reference=_activation_reference("tanh"),
    numeric=_activation_numeric(np.tanh),
    misconceptions=(
        M(
            "slope_from_z",
            "the slope was computed from the layer's input Z as if it were the output: tanh′(z) = "
            "1 - tanh(z)² = 1 - a², with a = tanh(z) the output the cache should keep",
            lambda Z, upstream: (None, upstream * (1.0 - Z * Z)),
        ),
        M(
            "tanh_of_a",
            "φ′(a) used where φ′(z) belongs: 1 - tanh(a)² applies tanh again to a, which is already "
            "tanh(z); with the cached output, tanh′(z) = 1 - a²",
            lambda Z, upstream: (None, upstream * (1.0 - np.tanh(np.tanh(Z)) ** 2)),
        ),
        M(
            "not_squared",
            "tanh′(z) = 1 - tanh(z)² = 1 - a², with a squared (here it is 1 - a)",
            lambda Z, upstream: (None, upstream * (1.0 - np.tanh(Z))),
        ),
        M("forgot_upstream", FORGOT_UPSTREAM, lambda Z, upstream: (None, 1.0 - np.tanh(Z) ** 2)),
    ),
    revisit="the Tanh layer: cache the output a, and the slope is 1 - a²",
    judge=with_hints(ELEMENTWISE_HINT),
    refuses=NOT_YOURS,
    instead="write the layer yourself",
)

SIGMOID_LAYER = Exercise(
    name="sigmoid_layer",
    notebook=NOTEBOOK,
    signature="sigmoid_layer(Z, upstream) -> (A, dZ)",
    summary="Sigmoid: forward A = σ(Z); backward dZ = upstream ⊙ A ⊙ (1 - A), from the cached output",
    outputs=ACTIVATION_OUTPUTS,
    points=1,
    make_inputs=_activation_inputs(kink=False),
    reference=_activation_reference("sigmoid"),
    numeric=_activation_numeric(sigmoid),
    misconceptions=(
        M(
            "slope_from_z",
            "the sigmoid's slope was computed from z instead of a: σ′(z) = σ(z)(1 - σ(z)) = a(1 - a), "
            "with a = σ(z) the output the cache should keep; z(1 - z) is not a slope of anything here",
            lambda Z, upstream: (None, upstream * Z * (1.0 - Z)),
        ),
        M(
            "sigmoid_of_a",
            "φ′(a) used where φ′(z) belongs: a is already σ(z), so σ′(z) = a(1 - a); σ(a)(1 - σ(a)) is the "
            "slope at the wrong point",
            lambda Z, upstream: (None, upstream * sigmoid(sigmoid(Z)) * (1.0 - sigmoid(sigmoid(Z)))),
        ),
        M("forgot_upstream", FORGOT_UPSTREAM, lambda Z, upstream: (None, sigmoid(Z) * (1.0 - sigmoid(Z)))),
        M(
            "wrong_sign",
            "a sign is off: σ′(z) = a(1 - a), not a(1 + a)",
            lambda Z, upstream: (None, upstream * sigmoid(Z) * (1.0 + sigmoid(Z))),
        ),
        M(
            "tanh_slope",
            "this is tanh's slope, 1 - a², on the sigmoid's output: each activation has its own slope, and "
            "the sigmoid's, written with its output a = σ(z), is a(1 - a)",
            lambda Z, upstream: (None, upstream * (1.0 - sigmoid(Z) ** 2)),
        ),
    ),
    revisit="the Sigmoid layer: cache the output a, and the slope is a(1 - a)",
    judge=with_hints(ELEMENTWISE_HINT),
    refuses=NOT_YOURS,
    instead="write the layer yourself",
)


# -- the softmax cross-entropy layer ------------------------------------------------------------------------
def _loss_inputs(rng: np.random.Generator) -> Inputs:
    k, batch = distinct_sizes(rng, 2, 2, 7)
    return {
        "Z": 1.5 * rng.standard_normal((k, batch)),
        "Y": one_hot(rng.integers(0, k, batch), k),
        "upstream": float(rng.uniform(0.5, 0.8) * rng.choice([-1.0, 1.0]) * rng.choice([1.0, 2.5])),
    }


def _loss_reference(Z: np.ndarray, Y: np.ndarray, upstream: float) -> Outputs:
    z = Tensor(Z)
    loss = softmax_cross_entropy(z, Y)
    loss.backward(upstream)
    return float(loss.data), z.grad


def _loss_numeric(Z: np.ndarray, Y: np.ndarray, upstream: float) -> Outputs:
    return mean_cross_entropy(Z, Y), numerical_gradient(lambda v: upstream * mean_cross_entropy(v, Y), Z)


def _batch(Z: np.ndarray) -> int:
    return Z.shape[1]


SOFTMAX_CE_LAYER = Exercise(
    name="softmax_ce_layer",
    notebook=NOTEBOOK,
    signature="softmax_ce_layer(Z, Y, upstream) -> (loss, dZ)",
    summary="SoftmaxCrossEntropy: the mean loss over the B columns; backward dZ = upstream · (P - Y) / B",
    outputs=("loss", "dZ"),
    points=2,
    make_inputs=_loss_inputs,
    reference=_loss_reference,
    numeric=_loss_numeric,
    misconceptions=(
        M(
            "missing_one_over_B",
            "dZ is B times too large: the loss is the MEAN of the B per-example losses, so each column's "
            "p - y is multiplied by 1/B",
            lambda Z, Y, upstream: (None, upstream * (softmax_columns(Z) - Y)),
        ),
        M(
            "sum_loss",
            "the loss is the SUM of the per-example losses, B times the mean: divide by B (the number of "
            "columns)",
            lambda Z, Y, upstream: (
                mean_cross_entropy(Z, Y) * _batch(Z),
                upstream * (softmax_columns(Z) - Y),
            ),
        ),
        M(
            "forgot_upstream",
            "the upstream gradient is missing: the loss layer's backward receives dTotal/dloss (1 when the "
            "loss is the end of the graph, another number when the loss is scaled or added to other terms) "
            "and multiplies its local gradient (P - Y) / B by it",
            lambda Z, Y, upstream: (None, (softmax_columns(Z) - Y) / _batch(Z)),
        ),
        M(
            "dZ_sign",
            "the sign of dZ is flipped: it is prediction minus label, P - Y, not Y - P",
            lambda Z, Y, upstream: (None, upstream * (Y - softmax_columns(Z)) / _batch(Z)),
        ),
        M(
            "softmax_over_rows",
            "the softmax runs along the wrong axis: each COLUMN is one example, so normalise each column "
            "(over the K classes, axis 0), not each row",
            lambda Z, Y, upstream: (None, upstream * (softmax_columns(Z.T).T - Y) / _batch(Z)),
        ),
    ),
    revisit="the loss layer: the mean over the batch gives dZ = (P - Y) / B, times the upstream number",
    judge=with_hints("The logits Z are (K, B), one example per column; dZ has the shape of Z"),
    refuses=NOT_YOURS,
    instead="write the layer yourself",
)


# -- weight decay: a second path into W ---------------------------------------------------------------------
def _decay_inputs(rng: np.random.Generator) -> Inputs:
    return {**_affine_inputs(rng), "weight_decay": float(rng.uniform(0.2, 0.9))}


def _decay_reference(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, G: np.ndarray, weight_decay: float
) -> Outputs:
    w, c, x = Tensor(W), Tensor(b), Tensor(X)
    affine(w, x, c).backward(G)
    penalty = (w * w).sum() * (0.5 * weight_decay)
    penalty.backward()  # the second path: its gradient ADDS to what the first one left in w.grad
    return float(penalty.data), x.grad, w.grad, c.grad


def _decay_numeric(
    W: np.ndarray, b: np.ndarray, X: np.ndarray, G: np.ndarray, weight_decay: float
) -> Outputs:
    def total(w: np.ndarray, c: np.ndarray, x: np.ndarray) -> float:
        return float(np.sum(G * (w @ x + c)) + 0.5 * weight_decay * np.sum(w * w))

    return (
        0.5 * weight_decay * float(np.sum(W * W)),
        numerical_gradient(lambda v: total(W, b, v), X),
        numerical_gradient(lambda v: total(v, b, X), W),
        numerical_gradient(lambda v: total(W, v, X), b),
    )


TWICE_LAMBDA = (
    "this is 2λ W, the gradient of λ‖W‖²; the course's penalty is λ/2 ‖W‖² (the 1/2 is there so that "
    "its gradient is λ W). Write the penalty and its gradient with the same convention"
)

DECAYED_AFFINE_LAYER = Exercise(
    name="decayed_affine_layer",
    notebook=NOTEBOOK,
    signature="decayed_affine_layer(W, b, X, G, weight_decay) -> (penalty, dX, dW, db)",
    summary="Affine with weight decay: penalty λ/2 ‖W‖²; dW = G Xᵀ + λ W (two paths into W)",
    outputs=("penalty", "dX", "dW", "db"),
    points=2,
    make_inputs=_decay_inputs,
    reference=_decay_reference,
    numeric=_decay_numeric,
    misconceptions=(
        M(
            "forgot_decay",
            "dW has only the data path, G Xᵀ: W also reaches the loss through the penalty λ/2 ‖W‖², and at a "
            "merge the contributions ADD: dW = G Xᵀ + λ W",
            lambda W, b, X, G, weight_decay: (None, None, G @ X.T, None),
        ),
        M(
            "twice_lambda",
            TWICE_LAMBDA,
            lambda W, b, X, G, weight_decay: (None, None, G @ X.T + 2.0 * weight_decay * W, None),
        ),
        M(
            "half_lambda",
            "the decay term is half of what it should be: differentiating λ/2 · W_ij² brings down the 2 of "
            "the square, which cancels the 1/2, so the term is λ W_ij, not λ/2 · W_ij",
            lambda W, b, X, G, weight_decay: (None, None, G @ X.T + 0.5 * weight_decay * W, None),
        ),
        M(
            "penalty_without_half",
            "the penalty is λ‖W‖², twice the course's λ/2 ‖W‖² (whose gradient is λ W)",
            lambda W, b, X, G, weight_decay: (weight_decay * float(np.sum(W * W)), None, None, None),
        ),
        M(
            "penalty_not_squared",
            "the penalty is λ/2 times the SUM OF SQUARES of W's entries (the squared Frobenius norm), not "
            "of the norm itself",
            lambda W, b, X, G, weight_decay: (
                0.5 * weight_decay * float(np.sqrt(np.sum(W * W))),
                None,
                None,
                None,
            ),
        ),
        M(
            "decay_replaces_data",
            "dW is the decay path alone: the data path G Xᵀ is still there, and the two paths ADD",
            lambda W, b, X, G, weight_decay: (None, None, weight_decay * W, None),
        ),
        M(
            "bias_decayed",
            "the bias was decayed too: the penalty holds W only (biases are not decayed), so db is the sum "
            "of G's columns, as without decay",
            lambda W, b, X, G, weight_decay: (
                None,
                None,
                None,
                G.sum(axis=1, keepdims=True) + weight_decay * b,
            ),
        ),
        M(
            "decay_over_B",
            "the decay term was divided by B: the penalty is added once to the mean loss, not once per "
            "example, so its gradient is λ W whatever the batch size",
            lambda W, b, X, G, weight_decay: (None, None, G @ X.T + weight_decay * W / G.shape[1], None),
        ),
    ),
    revisit="weight decay: two paths into W (the data and the penalty λ/2 ‖W‖²), so dW = G Xᵀ + λ W",
    judge=with_hints(AFFINE_SHAPE_HINT),
    refuses=NOT_YOURS,
    instead="write the layer yourself",
)


# -- a network of layers: affine, tanh, affine, tanh, affine, softmax-CE ------------------------------------
def network_loss(params: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    """Mean softmax cross-entropy of the network [W1, b1, ..., WL, bL] with tanh between affine layers."""
    A = X
    for i in range(0, len(params) - 2, 2):
        A = np.tanh(params[i] @ A + params[i + 1])
    return mean_cross_entropy(params[-2] @ A + params[-1], Y)


def network_outputs_names(layers: int) -> tuple[str, ...]:
    return ("loss", *(f"d{p}{i}" for i in range(1, layers + 1) for p in ("W", "b")))


NETWORK_LAYERS = 3
NETWORK_OUTPUTS = network_outputs_names(NETWORK_LAYERS)


def _network_inputs(rng: np.random.Generator) -> Inputs:
    n, h1, h2, k, batch = distinct_sizes(rng, 5, 2, 7)
    sizes = [n, h1, h2, k]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        params += [
            1.2 * rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in),
            0.3 * rng.standard_normal((fan_out, 1)),
        ]
    return {
        "params": params,
        "X": rng.standard_normal((n, batch)),
        "Y": one_hot(rng.integers(0, k, batch), k),
    }


def _network_reference(params: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> Outputs:
    tensors = [Tensor(p) for p in params]
    A: Any = Tensor(X, requires_grad=False)
    for i in range(0, len(tensors) - 2, 2):
        A = affine(tensors[i], A, tensors[i + 1]).tanh()
    loss = softmax_cross_entropy(affine(tensors[-2], A, tensors[-1]), Y)
    loss.backward()
    return (float(loss.data), *(t.grad for t in tensors))


def _network_numeric(params: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> Outputs:
    grads = []
    for index in range(len(params)):

        def loss(v: np.ndarray, index: int = index) -> float:
            return network_loss([v if i == index else p for i, p in enumerate(params)], X, Y)

        grads.append(numerical_gradient(loss, params[index]))
    return (network_loss(params, X, Y), *grads)


def _walk_back(
    params: list[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    slope: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda A, Z: 1.0 - A * A,
    one_over_B: bool = True,
    dW_of: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda G, A: G @ A.T,
) -> Outputs:
    """The backward walk in plain numpy, with one rule swappable: the misconceptions' variants."""
    inputs, pre = [X], []
    for i in range(0, len(params) - 2, 2):
        pre.append(params[i] @ inputs[-1] + params[i + 1])
        inputs.append(np.tanh(pre[-1]))
    Z = params[-2] @ inputs[-1] + params[-1]
    G = softmax_columns(Z) - Y
    if one_over_B:
        G = G / Z.shape[1]
    grads: list[np.ndarray] = []
    for layer in reversed(range(len(params) // 2)):
        W = params[2 * layer]
        grads[:0] = [dW_of(G, inputs[layer]), G.sum(axis=1, keepdims=True)]
        if layer:
            G = slope(inputs[layer], pre[layer - 1]) * (W.T @ G)
    return (mean_cross_entropy(Z, Y), *grads)


def _as_loss_and_list(raw: Any, count: int) -> Outputs:
    """The learner's ``(loss, grads)``, grads a list [dW1, db1, ...], as one output per entry."""
    if not isinstance(raw, tuple | list) or len(raw) != 2:
        what = f"{len(raw)} values" if isinstance(raw, tuple | list) else f"a single {type_name(raw)}"
        raise NotGradable(f"should return two values, (loss, grads), but returned {what}")
    loss, grads = raw
    if not isinstance(grads, list | tuple):
        raise NotGradable(f"grads should be a list [dW1, db1, dW2, db2, ...], but it is a {type_name(grads)}")
    if len(grads) != count:
        raise NotGradable(
            f"grads should hold {count} arrays, one per parameter in the order of params "
            f"(dW1, db1, dW2, db2, ...); it holds {len(grads)}"
        )
    return (loss, *grads)


# The checker's network is always the same one, so that its verdict line (entries checked) reads the
# same in every run; the engine comparison before it draws fresh networks.
CHECKER_SEED = 9


def _checker_line(exercise: Exercise, call: Call) -> Line:
    """The course's gradient checker on the learner's gradients of one small network, as it reports."""
    inputs = exercise.make_inputs(np.random.default_rng(CHECKER_SEED))
    got, stop = learner_outputs(exercise, call, inputs)
    if stop is not None:
        return Line("gradient check", False, stop.lines[0].message if stop.lines else stop.status)
    params = inputs["params"]
    shapes = [p.shape for p in params]
    try:
        analytic = np.concatenate([np.asarray(g, dtype=np.float64).reshape(-1) for g in got[1:]])
    except (TypeError, ValueError):
        return Line("gradient check", False, "the gradients are not arrays of numbers")
    sizes = [int(np.prod(s)) for s in shapes]
    if analytic.size != sum(sizes) or any(np.shape(g) != s for g, s in zip(got[1:], shapes, strict=True)):
        return Line("gradient check", False, "not run: each gradient must have the shape of its parameter")

    def loss_of(flat: np.ndarray) -> float:
        pieces = np.split(flat, np.cumsum(sizes)[:-1])
        return network_loss(
            [v.reshape(s) for v, s in zip(pieces, shapes, strict=True)], inputs["X"], inputs["Y"]
        )

    start = np.concatenate([p.reshape(-1) for p in params])
    result = check_gradient(loss_of, start, analytic)
    return Line("gradient check", bool(result), str(result).splitlines()[0])


NETWORK_SHAPE_HINT = (
    "Write the shape under each factor: a layer's W is (m, n) and the gradient G reaching its output is "
    "(m, B), so the gradient sent back to its input is Wᵀ G, shape (n, B); dW has the shape of W and db "
    "the shape of b, (m, 1)"
)


def _judge_network(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """One line per output against the engine, then the gradient checker's line on a fixed small network."""

    def convert(raw: Any) -> Outputs:
        return _as_loss_and_list(raw, len(NETWORK_OUTPUTS) - 1)

    def converted(inputs: Inputs) -> Outputs:
        return convert(call(inputs))

    first = with_hints(NETWORK_SHAPE_HINT, convert=convert)(exercise, call, rng)
    if not judged_every_output(first, exercise):
        return first
    return weighted_verdict(exercise, [*first.lines, _checker_line(exercise, converted)])


NETWORK_GRADIENTS = Exercise(
    name="network_gradients",
    notebook=NOTEBOOK,
    signature="network_gradients(params, X, Y) -> (loss, [dW1, db1, dW2, db2, dW3, db3])",
    summary="Network: affine, tanh, affine, tanh, affine, softmax-CE; a walk forward, a walk back",
    outputs=NETWORK_OUTPUTS,
    points=4,
    make_inputs=_network_inputs,
    reference=_network_reference,
    numeric=_network_numeric,
    misconceptions=(
        M(
            "forgot_slope",
            "the gradient passed through a tanh layer unchanged: going back through each activation "
            "multiplies the upstream gradient by its slope 1 - a² (its backward, with its own cache)",
            lambda params, X, Y: _walk_back(params, X, Y, slope=lambda A, Z: np.ones_like(A)),
        ),
        M(
            "slope_from_wrong_cache",
            "a tanh layer used the slope of its input instead of its output: each layer's backward must "
            "get the cache its own forward made (keep one cache per layer, in order)",
            lambda params, X, Y: _walk_back(params, X, Y, slope=lambda A, Z: 1.0 - Z * Z),
        ),
        M(
            "missing_one_over_B",
            "every gradient is B times too large: the loss is the MEAN over the B examples, so the loss "
            "layer's backward divides P - Y by B",
            lambda params, X, Y: _walk_back(params, X, Y, one_over_B=False),
        ),
        M(
            "dW_transposed",
            "the weight gradients are transposed: each layer's dW = G Xᵀ, with that layer's own input X, "
            "the shape of its W",
            lambda params, X, Y: _walk_back(params, X, Y, dW_of=lambda G, A: A @ G.T),
        ),
    ),
    revisit="the Network class: forward keeps one cache per layer, backward walks the layers in reverse",
    judge=_judge_network,
    refuses=NOT_YOURS,
    instead="write the forward and backward walks yourself",
)

EXERCISES = (
    AFFINE_LAYER,
    RELU_LAYER,
    TANH_LAYER,
    SIGMOID_LAYER,
    SOFTMAX_CE_LAYER,
    DECAYED_AFFINE_LAYER,
    NETWORK_GRADIENTS,
)
