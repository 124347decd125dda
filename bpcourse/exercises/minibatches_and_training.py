"""Exercises of notebook 05_minibatches_and_training: batched gradients, mean losses, a whole model.

Conventions: a batch X has shape (n, B), one example per column;
Z = W X + b with W (m, n) and b (m, 1) broadcast across the B columns;
G = dL/dZ has Z's shape (m, B); labels Y are one-hot columns (K, B). Every
input is drawn with all sizes different (m, n, B; K, B; n, h, K, B), so a
transposed answer, a bias left unsummed or a sum over the wrong axis always has
the wrong shape. ReLU pre-activations stay at least 0.1 away from the kink.

Reference answers come from the tensor engine (``affine`` on a batch, the fused
softmax-cross-entropy node, an affine-ReLU-affine network); the oracle is a
central difference of the same quantity written in plain numpy, in float64.

``softmax_ce_batch`` has one more trial than the others: logits in the hundreds,
where exp overflows unless each column is shifted by its maximum first.
``mlp_loss_and_grads`` returns ``(loss, grads)`` with ``grads`` a dict; its judge
unpacks that into one output per parameter, with a message of its own for each
way the structure can be wrong.

Both are also written from steps that are exercises of their own
(``bpcourse.exercises.composite``): the softmax of notebook 04 inside
``softmax_ce_batch``; ``softmax_ce_batch``, ``affine_backward_batch`` and
``relu_backward`` (notebook 03) inside the model. A classic mistake of one step
is named as that exercise names it, after where it happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bpcourse.datasets import one_hot
from bpcourse.exercises.affine_and_activations import RELU_BACKWARD
from bpcourse.exercises.composite import Composite, Part, Step
from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    Inputs,
    Line,
    NotGradable,
    Outputs,
    Verdict,
    all_finite,
    judge_by_reference,
    judged_every_output,
    learner_outputs,
    problem_with,
    type_name,
    weighted_verdict,
    with_hints,
)
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import KINK_MARGIN, away_from_zero, distinct_sizes
from bpcourse.exercises.softmax_cross_entropy import SOFTMAX
from bpcourse.gradcheck import numerical_gradient
from bpcourse.tensor import Tensor, affine, softmax_cross_entropy

NOTEBOOK = "05_minibatches_and_training"

SUM_OVER_BATCH = "the columns of G added up (along axis 1) into one column"


# -- affine backward on a batch ------------------------------------------------------------------
def _affine_inputs(rng: np.random.Generator) -> Inputs:
    m, n, batch = distinct_sizes(rng, 3, 2, 7)
    return {
        "G": away_from_zero(rng, (m, batch), 0.3, 2.0),
        "X": away_from_zero(rng, (n, batch), 0.3, 2.0),
        "W": rng.standard_normal((m, n)),
    }


def _affine_reference(G: np.ndarray, X: np.ndarray, W: np.ndarray) -> Outputs:
    w, x, b = Tensor(W), Tensor(X), Tensor(np.zeros((W.shape[0], 1)))
    affine(w, x, b).backward(G)
    return w.grad, b.grad, x.grad


def _affine_numeric(G: np.ndarray, X: np.ndarray, W: np.ndarray) -> Outputs:
    b = np.zeros((W.shape[0], 1))
    return (
        numerical_gradient(lambda v: np.sum(G * (v @ X + b)), W),
        numerical_gradient(lambda v: np.sum(G * (W @ X + v)), b),
        numerical_gradient(lambda v: np.sum(G * (W @ v + b)), X),
    )


BIAS_NOT_SUMMED = (
    "db has one column per example: b is added to every column of Z, so b is used B times and its "
    f"gradient is the SUM of the B per-example gradients (the merge rule): db = {SUM_OVER_BATCH}, "
    "shape (m, 1) like b"
)
BIAS_AVERAGED = (
    "db is the mean of G's columns: a parameter used by every column gets the SUM of their "
    f"contributions, db = {SUM_OVER_BATCH}. If the loss is a mean over the batch, its 1/B is "
    "already inside G: dividing again makes db B times too small"
)
WRONG_AXIS = (
    "this sums over the wrong axis: axis 0 adds up the m units of each example; the batch runs along "
    f"axis 1 (one example per column), so db = {SUM_OVER_BATCH}, shape (m, 1)"
)
LAST_EXAMPLE_ONLY = (
    "this is the contribution of the last example alone: W and b are used by every column, so the B "
    "per-example contributions ADD UP (a loop over the columns must add each one to the total, not "
    "replace it); the product G Xᵀ and the sum over G's columns do the adding for you"
)
EXTRA_ONE_OVER_B = (
    "this is B times too small: the 1/B of a mean loss belongs to the loss, and it is already inside G "
    "(G = dL/dZ of the mean). The affine rules only carry G back: dW = G Xᵀ, dX = Wᵀ G"
)
AFFINE_SHAPE_HINT = (
    "Write the shape under each factor: W is (m, n), X is (n, B), G is (m, B). The gradient of X is "
    "Wᵀ G, shape (n, B) (W G does not fit unless m = n); the gradient of W is G Xᵀ, shape (m, n), a "
    f"product that sums over the batch; db is {SUM_OVER_BATCH}, shape (m, 1)"
)

AFFINE_BACKWARD_BATCH = Exercise(
    name="affine_backward_batch",
    notebook=NOTEBOOK,
    signature="affine_backward_batch(G, X, W) -> (dW, db, dX)",
    summary="Z = W X + b on a batch: dW = G Xᵀ (m, n), db = Σ over columns of G (m, 1), dX = Wᵀ G (n, B)",
    outputs=("dW", "db", "dX"),
    points=3,
    make_inputs=_affine_inputs,
    reference=_affine_reference,
    numeric=_affine_numeric,
    misconceptions=(
        M(
            "dW_transposed",
            "this is X Gᵀ, the transpose of dW: ∂L/∂W_ij = Σ_k G_ik X_jk, so dW = G Xᵀ, with the shape "
            "(m, n) of W",
            lambda G, X, W: (X @ G.T, None, None),
        ),
        M("db_not_summed", BIAS_NOT_SUMMED, lambda G, X, W: (None, G, None)),
        M("db_averaged", BIAS_AVERAGED, lambda G, X, W: (None, G.mean(axis=1, keepdims=True), None)),
        M("db_averaged_flat", BIAS_AVERAGED, lambda G, X, W: (None, G.mean(axis=1), None)),
        M(
            "db_flat",
            "db lost its second axis: the sum over G's columns must stay a column of shape (m, 1) like b, "
            "not a flat (m,) array",
            lambda G, X, W: (None, G.sum(axis=1), None),
        ),
        M("db_wrong_axis", WRONG_AXIS, lambda G, X, W: (None, G.sum(axis=0, keepdims=True), None)),
        M("db_wrong_axis_flat", WRONG_AXIS, lambda G, X, W: (None, G.sum(axis=0), None)),
        M(
            "last_example_only",
            LAST_EXAMPLE_ONLY,
            lambda G, X, W: (G[:, -1:] @ X[:, -1:].T, G[:, -1:], None),
        ),
        M(
            "extra_one_over_B",
            EXTRA_ONE_OVER_B,
            lambda G, X, W: (G @ X.T / G.shape[1], None, W.T @ G / G.shape[1]),
        ),
        M(
            "dX_rows",
            "Gᵀ W holds the right numbers with one example per ROW; keep one example per column like X: "
            "dX = Wᵀ G, shape (n, B)",
            lambda G, X, W: (None, None, G.T @ W),
        ),
    ),
    revisit="the batched affine rules: sum the per-example contributions g_k x_kᵀ and g_k over the batch",
    judge=with_hints(AFFINE_SHAPE_HINT),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- softmax + cross-entropy, mean over a batch ------------------------------------------------------
def _labels(rng: np.random.Generator, k: int, batch: int) -> np.ndarray:
    """Random labels in 0..k-1 with at least two different classes present."""
    while True:
        labels = rng.integers(0, k, size=batch)
        if np.unique(labels).size > 1:
            return labels


def _softmax_inputs(rng: np.random.Generator) -> Inputs:
    k, batch = distinct_sizes(rng, 2, 3, 8)
    return {"Z": 2.0 * rng.standard_normal((k, batch)), "Y": one_hot(_labels(rng, k, batch), k)}


def _log_softmax(Z: np.ndarray, axis: int = 0) -> np.ndarray:
    shifted = Z - Z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _softmax(Z: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.exp(_log_softmax(Z, axis))


def _mean_ce(Z: np.ndarray, Y: np.ndarray) -> float:
    return float(-np.sum(Y * _log_softmax(Z)) / Z.shape[1])


def _softmax_reference(Z: np.ndarray, Y: np.ndarray) -> Outputs:
    z = Tensor(Z)
    loss = softmax_cross_entropy(z, Y)
    loss.backward()
    return float(loss.data), z.grad


def _softmax_numeric(Z: np.ndarray, Y: np.ndarray) -> Outputs:
    return _mean_ce(Z, Y), numerical_gradient(lambda v: _mean_ce(v, Y), Z)


# softmax_ce_batch is the exercise softmax (notebook 04) followed by the mean loss: a mistake of the softmax
# made inside it reads as that exercise says it. Its mistakes of stability (no shift, or one shift for the
# whole batch) only show at large logits, whose line has a message of its own.
def _softmax_step(z: np.ndarray) -> Outputs:
    return (_softmax(z),)


def _softmax_ce_batch_from_steps(steps: Mapping[str, Step], Z: np.ndarray, Y: np.ndarray) -> Outputs:
    (P,) = steps["softmax"](z=Z)
    return float(-np.sum(Y * np.log(P)) / Z.shape[1]), (P - Y) / Z.shape[1]


SOFTMAX_CE_BATCH_STEPS = Composite(_softmax_ce_batch_from_steps, {"softmax": _softmax_step})
SOFTMAX_PARTS = (
    Part("softmax", SOFTMAX, "in the softmax step, P = softmax(Z) (the rule of the exercise softmax, one "
         "example per column)", ("rows", "whole_array", "row_max", "not_normalised")),
)  # fmt: skip


STABILITY = (
    "exp overflows for large logits (exp(1000) is inf, and inf/inf is NaN) and underflows to 0 for very "
    "negative ones (0/0): subtract each column's OWN maximum from it before exp. Softmax does not change "
    "when a whole column is shifted, every exponent is then at most 0, and the largest is exactly 0"
)


def _large_logit_inputs(rng: np.random.Generator) -> Inputs:
    """Ordinary inputs with each column shifted by 800 to 1000, up for some columns, down for others."""
    inputs = _softmax_inputs(rng)
    batch = inputs["Z"].shape[1]
    signs = np.resize([1.0, -1.0], batch)
    rng.shuffle(signs)
    inputs["Z"] = inputs["Z"] + signs * rng.uniform(800.0, 1000.0, batch)
    return inputs


def _large_logits_line(exercise: Exercise, call: Call, rng: np.random.Generator, right: list[str]) -> Line:
    """One trial on logits in the hundreds.

    Any NaN or inf fails it. Otherwise only the outputs that were right on ordinary
    logits (``right``) are compared: a mistake seen there is not counted twice.
    """
    what = "large logits"
    if not right:
        return Line(what, False, "not tried yet: the results must first be right on ordinary logits")
    inputs = _large_logit_inputs(rng)
    expected = exercise.reference(**inputs)
    got, stop = learner_outputs(exercise, call, inputs)
    if stop is not None:  # it raised (an error), or what it returned cannot be judged
        prefix = "with very large logits the function " if stop.status == "error" else ""
        return Line(what, False, prefix + stop.lines[0].message)
    if not all(all_finite(g) for g in got):
        return Line(what, False, f"with very large logits the result is NaN or inf: {STABILITY}")
    problems = [
        f"{name} {problem}"
        for name, g, e in zip(exercise.outputs, got, expected, strict=True)
        if name in right and (problem := problem_with(name, g, e, exercise.rtol, exercise.atol)) is not None
    ]
    if problems:
        return Line(what, False, f"with very large logits {'; '.join(problems)}. {STABILITY}")
    return Line(what, True)


def _judge_softmax(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """The default judge on ordinary logits, then one more line: does it hold at large logits?"""
    verdict = judge_by_reference(exercise, call, rng)
    if not judged_every_output(verdict, exercise):
        return verdict  # not implemented, raised, or returned something unusable: nothing to add
    right = [line.what for line in verdict.lines if line.ok]
    return weighted_verdict(exercise, [*verdict.lines, _large_logits_line(exercise, call, rng, right)])


SOFTMAX_CE_BATCH = Exercise(
    name="softmax_ce_batch",
    notebook=NOTEBOOK,
    signature="softmax_ce_batch(Z, Y) -> (mean_loss, dZ)",
    summary="mean cross-entropy of softmax over the B columns, and dZ = (P - Y) / B",
    outputs=("mean_loss", "dZ"),
    points=2,
    make_inputs=_softmax_inputs,
    reference=_softmax_reference,
    numeric=_softmax_numeric,
    misconceptions=(
        M(
            "missing_one_over_B",
            "dZ is B times too large: the loss is the MEAN of the B per-example losses, so each column's "
            "p - y is multiplied by 1/B: dZ = (P - Y) / B",
            lambda Z, Y: (None, _softmax(Z) - Y),
        ),
        M(
            "sum_loss",
            "this is the SUM of the per-example losses, B times the mean: divide by B (the number of "
            "columns)",
            lambda Z, Y: (_mean_ce(Z, Y) * Z.shape[1], None),
        ),
        M(
            "mean_over_all_entries",
            "a mean over the whole (K, B) array divides by K·B; the mean is over the B examples only: "
            "sum the cross-entropies of the B columns, then divide by B",
            lambda Z, Y: (_mean_ce(Z, Y) / Z.shape[0], None),
        ),
        M(
            "loss_sign",
            "the loss has the wrong sign: cross-entropy is -Σ y log p, never negative (log p <= 0)",
            lambda Z, Y: (-_mean_ce(Z, Y), None),
        ),
        M(
            "dZ_sign",
            "the sign of dZ is flipped: it is prediction minus label, (P - Y) / B, not (Y - P) / B",
            lambda Z, Y: (None, (Y - _softmax(Z)) / Z.shape[1]),
        ),
        *SOFTMAX_CE_BATCH_STEPS.inserted(SOFTMAX_PARTS),
    ),
    revisit="the mean loss over a batch: L = (1/B) Σ_k ℓ_k, so dL/dZ = (P - Y) / B",
    judge=_judge_softmax,
    refuses=NOT_YOURS,
    instead="write the loss and its gradient yourself",
)


# -- a whole model: affine, ReLU, affine, softmax-CE (mean) ------------------------------------------
PARAMETERS = ("W1", "b1", "W2", "b2")


def _mlp_inputs(rng: np.random.Generator) -> Inputs:
    n, h, k, batch = distinct_sizes(rng, 4, 2, 7)
    while True:
        X = rng.standard_normal((n, batch))
        params = {
            "W1": 1.5 * rng.standard_normal((h, n)) / np.sqrt(n),
            "b1": 0.5 * rng.standard_normal((h, 1)),
            "W2": rng.standard_normal((k, h)) / np.sqrt(h),
            "b2": 0.5 * rng.standard_normal((k, 1)),
        }
        Z1 = params["W1"] @ X + params["b1"]
        # Away from the kink, and the mask must switch some entries off and leave some on.
        if np.all(np.abs(Z1) > KINK_MARGIN) and (Z1 > 0).any() and (Z1 < 0).any():
            return {"params": params, "X": X, "Y": one_hot(_labels(rng, k, batch), k)}


def _mlp_reference(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> Outputs:
    tensors = {name: Tensor(params[name], label=name) for name in PARAMETERS}
    x = Tensor(X, requires_grad=False, label="X")
    a1 = affine(tensors["W1"], x, tensors["b1"]).relu()
    loss = softmax_cross_entropy(affine(tensors["W2"], a1, tensors["b2"]), Y)
    loss.backward()
    return (float(loss.data), *(tensors[name].grad for name in PARAMETERS))


def _mlp_loss(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    A1 = np.maximum(params["W1"] @ X + params["b1"], 0.0)
    return _mean_ce(params["W2"] @ A1 + params["b2"], Y)


def _mlp_numeric(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> Outputs:
    grads = []
    for name in PARAMETERS:

        def loss(v: np.ndarray, name: str = name) -> float:
            return _mlp_loss({**params, name: v}, X, Y)

        grads.append(numerical_gradient(loss, params[name]))
    return (_mlp_loss(params, X, Y), *grads)


# The backward pass written from its steps, each the rule of an exercise: softmax_ce_batch for the loss
# and δ2, affine_backward_batch for layer 2, relu_backward (notebook 03), affine_backward_batch for layer 1.
def _affine_step(G: np.ndarray, X: np.ndarray, W: np.ndarray) -> Outputs:
    return G @ X.T, G.sum(axis=1, keepdims=True), W.T @ G


def _relu_step(upstream: np.ndarray, z: np.ndarray) -> Outputs:
    return (upstream * (z > 0),)


def _loss_step(Z: np.ndarray, Y: np.ndarray) -> Outputs:
    return _mean_ce(Z, Y), (_softmax(Z) - Y) / Z.shape[1]


def _mlp_backward(
    steps: Mapping[str, Step], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray
) -> Outputs:
    W1, b1, W2, b2 = (params[name] for name in PARAMETERS)
    Z1 = W1 @ X + b1
    A1 = np.maximum(Z1, 0.0)
    loss, D2 = steps["loss"](Z=W2 @ A1 + b2, Y=Y)
    dW2, db2, dA1 = steps["layer2"](G=D2, X=A1, W=W2)
    (D1,) = steps["relu"](upstream=dA1, z=Z1)
    dW1, db1, _ = steps["layer1"](G=D1, X=X, W=W1)
    return loss, dW1, db1, dW2, db2


MLP_STEPS = Composite(
    _mlp_backward, {"loss": _loss_step, "layer2": _affine_step, "relu": _relu_step, "layer1": _affine_step}
)


def _dW2_from_Z1(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> Outputs:
    """Layer 2's weight gradient taken with Z1, the pre-activation, where its input is A1."""
    Z1 = params["W1"] @ X + params["b1"]
    _, D2 = _loss_step(params["W2"] @ np.maximum(Z1, 0.0) + params["b2"], Y)
    return (None, None, None, D2 @ Z1.T, None)


# A mistake of softmax_ce_batch, affine_backward_batch or relu_backward made inside the model reads as
# the exercise says it, after where it happened. Left out: dX with one example per row (the ReLU step
# cannot run on it; the shape hint speaks), and layer 1's dX, which the model does not return.
AFFINE_KEYS = (
    *("dW_transposed", "db_not_summed", "db_averaged", "db_averaged_flat", "db_flat", "db_wrong_axis"),
    *("db_wrong_axis_flat", "last_example_only", "extra_one_over_B"),
)
MLP_PARTS = (
    Part("loss", SOFTMAX_CE_BATCH,
         "in the loss, the mean softmax cross-entropy of Z2 = W2 A1 + b2 (the rule of softmax_ce_batch, "
         "with Z = Z2)",
         ("missing_one_over_B", "sum_loss", "mean_over_all_entries", "loss_sign", "dZ_sign",
          *(f"softmax.{key}" for key in ("rows", "whole_array", "row_max", "not_normalised")))),
    Part("layer2", AFFINE_BACKWARD_BATCH,
         "in layer 2's affine step, Z2 = W2 A1 + b2 (the rule of affine_backward_batch, with "
         "G = δ2 = dL/dZ2, X = A1 and W = W2)", AFFINE_KEYS),
    Part("relu", RELU_BACKWARD,
         "in the ReLU step, A1 = relu(Z1) (the rule of relu_backward, with upstream = W2ᵀ δ2 = dL/dA1 and "
         "z = Z1)", ("mask_from_upstream", "forgot_upstream", "relu_values")),
    Part("layer1", AFFINE_BACKWARD_BATCH,
         "in layer 1's affine step, Z1 = W1 X + b1 (the rule of affine_backward_batch, with "
         "G = δ1 = dL/dZ1, X = X and W = W1)", AFFINE_KEYS),
)  # fmt: skip


def _as_loss_and_grads(raw: Any) -> Outputs:
    """The learner's ``(loss, grads)`` as (loss, dW1, db1, dW2, db2), or NotGradable saying what is off."""
    keys = ", ".join(repr(p) for p in PARAMETERS)
    if isinstance(raw, dict):
        if all(p in raw for p in PARAMETERS):
            raise NotGradable("returned the gradients alone: return two values, the loss and then the dict")
        raise NotGradable(
            "should return two values, (loss, grads), with grads a dict; it returned one dict "
            f"(keys {', '.join(repr(k) for k in raw) or 'none'})"
        )
    if not isinstance(raw, tuple | list):
        raise NotGradable(f"should return two values, (loss, grads), but returned a single {type_name(raw)}")
    if len(raw) != 2:
        raise NotGradable(f"should return two values, (loss, grads), but returned {len(raw)}")
    loss, grads = raw
    if isinstance(loss, dict) and not isinstance(grads, dict):
        raise NotGradable("the two values are swapped: return (loss, grads), the loss first")
    if not isinstance(grads, dict):
        raise NotGradable(f"grads should be a dict with the keys {keys}, but it is a {type_name(grads)}")
    missing = [p for p in PARAMETERS if p not in grads]
    if missing:
        inner = [k for k, v in grads.items() if isinstance(v, dict)]
        if inner:
            raise NotGradable(
                f"grads is nested one level too deep (dicts under {', '.join(repr(k) for k in inner)}): "
                f"it must map each parameter's name straight to its gradient array, grads['W1'] and so on"
            )
        shown = ", ".join(repr(k) for k in grads) or "none"
        raise NotGradable(
            f"grads has no {', '.join(repr(p) for p in missing)}: it must hold one gradient per parameter, "
            f"under the parameter's own name ({keys}); its keys are {shown}"
        )
    return (loss, *(grads[p] for p in PARAMETERS))


MLP_SHAPE_HINT = (
    "Write the shape under each factor: W2 is (K, h) and δ2 = dL/dZ2 is (K, B), so the gradient sent "
    "back to A1 is W2ᵀ δ2, shape (h, B) (W2 δ2 does not fit); a weight gradient is δ times the layer's "
    "input transposed, with the shape of the weights; a bias gradient sums δ over the batch (axis 1)"
)


def _judge_mlp(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """The default judge, one line per output: loss, then each parameter's gradient.

    The learner gets a copy of the parameter dict, so a function that updates the
    parameters in place cannot change what its answer is compared with.
    """

    def with_fresh_params(inputs: Inputs) -> Any:
        params = {name: np.array(value, copy=True) for name, value in inputs["params"].items()}
        return call({**inputs, "params": params})

    return with_hints(MLP_SHAPE_HINT, convert=_as_loss_and_grads)(exercise, with_fresh_params, rng)


MLP_LOSS_AND_GRADS = Exercise(
    name="mlp_loss_and_grads",
    notebook=NOTEBOOK,
    signature="mlp_loss_and_grads(params, X, Y) -> (loss, {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2})",
    summary="Z1 = W1 X + b1, A1 = relu(Z1), Z2 = W2 A1 + b2, L = mean softmax cross-entropy",
    outputs=("loss", *PARAMETERS),
    points=4,
    make_inputs=_mlp_inputs,
    reference=_mlp_reference,
    numeric=_mlp_numeric,
    misconceptions=(
        M(
            "forgot_mask",
            "the ReLU mask is missing: δ1 = dL/dZ1 = (W2ᵀ δ2) ⊙ 1[Z1 > 0]; W2ᵀ δ2 alone is the gradient at "
            "A1, after the ReLU",
            MLP_STEPS.variant(relu=lambda upstream, z: (upstream,)),
        ),
        M(
            "dW2_from_Z1",
            "dW2 used Z1: the input of the second layer is A1 = relu(Z1), so dW2 = δ2 A1ᵀ",
            _dW2_from_Z1,
        ),
        *MLP_STEPS.inserted(MLP_PARTS),
    ),
    revisit="the whole model: δ2 = (P - Y) / B, δ1 = (W2ᵀ δ2) ⊙ 1[Z1 > 0], then the batched affine rules",
    judge=_judge_mlp,
    refuses=NOT_YOURS,
    instead="write the forward and backward passes yourself",
)

EXERCISES = (AFFINE_BACKWARD_BATCH, SOFTMAX_CE_BATCH, MLP_LOSS_AND_GRADS)
