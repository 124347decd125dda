"""Exercises of notebook 10_rules_transformers_need: the rules beyond the MLP.

Conventions: column vectors; a batch X has shape (n, B), one example per
column; a sequence of T tokens is stored the same way, one token per column,
so queries and keys Q = W_q X, K = W_k X are (d_k, T) and the attention scores
S = Qᵀ K / √d_k are (T, T), S_ij = q_i · k_j / √d_k (the S = Q Kᵀ of papers
that store tokens as rows). Feature maps are (C, H, W, B): channel, height,
width, example.

Every input is drawn with different sizes along every axis, so a transposed
answer or a sum over the wrong axis has the wrong shape and cannot pass by
accident. Reference answers come from the tensor engine (build tensors, run
the forward pass, backward with the given upstream gradient, read ``.grad``);
the oracle is a central difference of Σ upstream ⊙ f(...) in float64. Clipping
is not a derivative: its reference is written with the engine's ops and its
second oracle is ``bpcourse.clipping``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bpcourse.clipping import clip_by_global_norm
from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    Inputs,
    Outputs,
    Verdict,
    judge_by_reference,
    with_hints,
)
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import away_from_zero, distinct_sizes
from bpcourse.gradcheck import numerical_gradient
from bpcourse.tensor import Tensor

NOTEBOOK = "10_rules_transformers_need"


def _weighted_numeric(
    f: Callable[..., np.ndarray], upstream: str, wrt: tuple[str, ...]
) -> Callable[..., Outputs]:
    """The central-difference gradient of Σ upstream ⊙ f(**inputs) with respect to each of ``wrt``."""

    def numeric(**inputs: np.ndarray) -> Outputs:
        g = inputs[upstream]
        return tuple(
            numerical_gradient(lambda v, name=name: float(np.sum(g * f(**{**inputs, name: v}))), inputs[name])
            for name in wrt
        )

    return numeric


# -- the product of two activations: C = A B --------------------------------------------------------
def _matmul_inputs(rng: np.random.Generator) -> Inputs:
    p, q, r = distinct_sizes(rng, 3)
    return {
        "G": rng.standard_normal((p, r)),
        "A": rng.standard_normal((p, q)),
        "B": rng.standard_normal((q, r)),
    }


def _matmul_reference(G: np.ndarray, A: np.ndarray, B: np.ndarray) -> Outputs:
    a, b = Tensor(A), Tensor(B)
    (a @ b).backward(G)
    return a.grad, b.grad


PRODUCT_SHAPE_HINT = (
    "Write the shape under each factor: A is (p, q), B is (q, r) and G = dL/dC is (p, r). "
    "dA has the shape of A, (p, q), and dB the shape of B, (q, r): find the product of G with B or A, "
    "transposed where needed, whose shape fits"
)

MATMUL_BACKWARD = Exercise(
    name="matmul_backward",
    notebook=NOTEBOOK,
    signature="matmul_backward(G, A, B) -> (dA, dB)",
    summary="C = A B with A (p, q), B (q, r): dA = G Bᵀ (p, q), dB = Aᵀ G (q, r)",
    outputs=("dA", "dB"),
    points=2,
    make_inputs=_matmul_inputs,
    reference=_matmul_reference,
    numeric=_weighted_numeric(lambda G, A, B: A @ B, "G", ("A", "B")),
    misconceptions=(
        M(
            "dA_transposed",
            "this is the transpose of dA: from C_ik = Σ_j A_ij B_jk, ∂L/∂A_ij = Σ_k G_ik B_jk, "
            "row i of G against row j of B, which is G Bᵀ, with the shape (p, q) of A",
            lambda G, A, B: (B @ G.T, None),
        ),
        M(
            "dB_transposed",
            "this is the transpose of dB: ∂L/∂B_jk = Σ_i A_ij G_ik, column j of A against column k of G, "
            "which is Aᵀ G, with the shape (q, r) of B",
            lambda G, A, B: (None, G.T @ A),
        ),
        M(
            "swapped",
            "the two gradients are in each other's place: return dA first (the shape (p, q) of A), "
            "then dB (the shape (q, r) of B)",
            lambda G, A, B: (A.T @ G, G @ B.T),
        ),
        M(
            "forgot_upstream",
            "only the local derivatives are here: each term of ∂L/∂A_ij = Σ_k G_ik B_jk carries the "
            "upstream gradient G_ik (chain rule), and so does each term of ∂L/∂B_jk",
            lambda G, A, B: (np.ones_like(G) @ B.T, A.T @ np.ones_like(G)),
        ),
    ),
    revisit="section 1, the product of two activations: dA = G Bᵀ, dB = Aᵀ G",
    judge=with_hints(PRODUCT_SHAPE_HINT),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- attention scores: S = Qᵀ K / √d_k with Q = W_q X, K = W_k X ---------------------------------------
def _attention_inputs(rng: np.random.Generator) -> Inputs:
    d, d_k, T = distinct_sizes(rng, 3)
    return {
        "G": rng.standard_normal((T, T)),
        "X": rng.standard_normal((d, T)),
        "Wq": rng.standard_normal((d_k, d)) / np.sqrt(d),
        "Wk": rng.standard_normal((d_k, d)) / np.sqrt(d),
    }


def _scores(G: np.ndarray, X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray) -> np.ndarray:
    return (Wq @ X).T @ (Wk @ X) / np.sqrt(Wq.shape[0])


def _attention_reference(G: np.ndarray, X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray) -> Outputs:
    x, wq, wk = Tensor(X), Tensor(Wq), Tensor(Wk)
    q, k = wq @ x, wk @ x
    ((q.T @ k) * (1.0 / np.sqrt(Wq.shape[0]))).backward(G)
    return x.grad, wq.grad, wk.grad


def _attention_variant(
    dq_upstream: Callable[[np.ndarray], np.ndarray] = lambda G: G.T,
    dk_upstream: Callable[[np.ndarray], np.ndarray] = lambda G: G,
    paths: str = "both",
    scaled: bool = True,
    power: float = 0.5,
) -> Callable[..., Outputs]:
    """The scores' backward pass with one thing changed: which G each factor receives, which paths
    into X are summed, whether the 1/√d_k is applied (or 1/d_k**power in its place)."""

    def variant(G: np.ndarray, X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray) -> Outputs:
        scale = Wq.shape[0] ** -power if scaled else 1.0
        dQ = (Wk @ X) @ dq_upstream(G) * scale
        dK = (Wq @ X) @ dk_upstream(G) * scale
        dX = {"both": Wq.T @ dQ + Wk.T @ dK, "q": Wq.T @ dQ, "k": Wk.T @ dK}[paths]
        return dX, dQ @ X.T, dK @ X.T

    return variant


ONE_PATH = (
    "X reaches the scores along two paths, through Q = W_q X and through K = W_k X: its gradient is "
    "the SUM of both contributions, W_qᵀ dQ + W_kᵀ dK (here only the path through {} is counted)"
)

ATTENTION_SCORES_BACKWARD = Exercise(
    name="attention_scores_backward",
    notebook=NOTEBOOK,
    signature="attention_scores_backward(G, X, Wq, Wk) -> (dX, dWq, dWk)",
    summary="S = Qᵀ K / √d_k, Q = W_q X, K = W_k X: dQ = K Gᵀ/√d_k, dK = Q G/√d_k, dX sums both paths",
    outputs=("dX", "dWq", "dWk"),
    points=3,
    make_inputs=_attention_inputs,
    reference=_attention_reference,
    numeric=_weighted_numeric(_scores, "G", ("X", "Wq", "Wk")),
    misconceptions=(
        M("only_q_path", ONE_PATH.format("Q"), _attention_variant(paths="q")),
        M("only_k_path", ONE_PATH.format("K"), _attention_variant(paths="k")),
        M(
            "dq_without_transpose",
            "dQ uses G where Gᵀ belongs: Qᵀ is the left factor of S, so the product rule gives "
            "d(Qᵀ) = G Kᵀ/√d_k, and dQ is its transpose, K Gᵀ/√d_k (the scores are not symmetric, "
            "so G and Gᵀ differ)",
            _attention_variant(dq_upstream=lambda G: G),
        ),
        M(
            "dk_transposed",
            "dK uses Gᵀ where G belongs: K is the right factor of S = Qᵀ K/√d_k, so the product rule gives "
            "dK = (Qᵀ)ᵀ G/√d_k = Q G/√d_k",
            _attention_variant(dk_upstream=lambda G: G.T),
        ),
        M(
            "forgot_scale",
            "the factor 1/√d_k of the scores is missing: it multiplies S, so it multiplies every gradient "
            "that comes back from S",
            _attention_variant(scaled=False),
        ),
        M(
            "scaled_by_d_k",
            "this divides by d_k where the scores divide by its square root, √d_k: the factor that comes "
            "back from S is the one that multiplied it going forward",
            _attention_variant(power=1.0),
        ),
    ),
    revisit="section 1, attention scores: the product rule twice, and the merge at X",
    judge=with_hints(
        "Write the shape under each factor: X is (d, T), W_q and W_k are (d_k, d), Q and K are (d_k, T), "
        "G = dL/dS is (T, T). dQ and dK have the shape (d_k, T) of Q and K; dW = (its gradient) Xᵀ "
        "has the shape of W; dX has the shape of X"
    ),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- batch normalization (training mode) ------------------------------------------------------------
def _batchnorm_inputs(rng: np.random.Generator) -> Inputs:
    n, B = distinct_sizes(rng, 2, 3, 7)
    offsets, scales = rng.normal(0.0, 2.0, (n, 1)), rng.uniform(0.5, 3.0, (n, 1))
    return {
        "G": rng.standard_normal((n, B)),
        "X": offsets + scales * rng.standard_normal((n, B)),
        "gamma": away_from_zero(rng, (n, 1), 0.5, 2.0),
        # Larger than the 1e-5 of practice, so that an ε left out changes the answer by far more than
        # the tolerance whatever the draw: with σ² of order one, 1e-5 would change it by about 1e-6.
        "eps": float(rng.uniform(0.02, 0.1)),
    }


def batchnorm_forward(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """Y = γ ⊙ (X - μ)/√(σ² + ε) + β, μ and σ² (biased) over the batch axis 1; X (n, B), γ, β (n, 1)."""
    mu = X.mean(axis=1, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=1, keepdims=True)
    return gamma * (X - mu) / np.sqrt(var + eps) + beta


def _batchnorm_reference(G: np.ndarray, X: np.ndarray, gamma: np.ndarray, eps: float) -> Outputs:
    x, g, b = Tensor(X), Tensor(gamma), Tensor(np.zeros_like(gamma))
    centred = x - x.mean(axis=1, keepdims=True)
    var = (centred * centred).mean(axis=1, keepdims=True)
    (g * (centred * (var + eps) ** -0.5) + b).backward(G)
    return x.grad, g.grad, b.grad


def _batchnorm_numeric(G: np.ndarray, X: np.ndarray, gamma: np.ndarray, eps: float) -> Outputs:
    beta = np.zeros_like(gamma)
    return _weighted_numeric(
        lambda G, X, gamma, beta: batchnorm_forward(X, gamma, beta, eps), "G", ("X", "gamma", "beta")
    )(G=G, X=X, gamma=gamma, beta=beta)


def _normalized(X: np.ndarray, eps: float, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """x̂ and s = √(σ² + ε), with σ² divided by B - ddof."""
    centred = X - X.mean(axis=1, keepdims=True)
    s = np.sqrt((centred**2).sum(axis=1, keepdims=True) / (X.shape[1] - ddof) + eps)
    return centred / s, s


def _bn_variant(
    mu_path: bool = True, var_path: bool = True, forward_ddof: int = 0, backward_ddof: int = 0
) -> Callable[..., Outputs]:
    """dX and dγ with the path through μ or σ² dropped, or the variance divided by B - 1 in the
    forward pass (which changes x̂, s and dγ) or in its derivative (the backward pass)."""

    def variant(G: np.ndarray, X: np.ndarray, gamma: np.ndarray, eps: float) -> Outputs:
        xhat, s = _normalized(X, eps, forward_ddof)
        B = X.shape[1]
        through_mu = G.mean(axis=1, keepdims=True) if mu_path else 0.0
        through_var = xhat * (G * xhat).sum(axis=1, keepdims=True) / (B - backward_ddof) if var_path else 0.0
        dX = gamma / s * (G - through_mu - through_var)
        dgamma = (G * xhat).sum(axis=1, keepdims=True) if forward_ddof else None
        return dX, dgamma, None

    return variant


def _bn_outputs(
    dgamma: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    dbeta: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Callable[..., Outputs]:
    """dγ (from G and x̂) or dβ (from G) written another way; dX left alone."""

    def variant(G: np.ndarray, X: np.ndarray, gamma: np.ndarray, eps: float) -> Outputs:
        xhat, _ = _normalized(X, eps, 0)
        return None, None if dgamma is None else dgamma(G, xhat), None if dbeta is None else dbeta(G)

    return variant


def _bn_no_eps(G: np.ndarray, X: np.ndarray, gamma: np.ndarray, eps: float) -> Outputs:
    """The right rules with ε = 0: x̂ = (X - μ)/σ, which changes dX and dγ."""
    dX, _, _ = _bn_variant()(G, X, gamma, 0.0)
    xhat, _ = _normalized(X, 0.0, 0)
    return dX, (G * xhat).sum(axis=1, keepdims=True), None


def _bn_no_gamma(G: np.ndarray, X: np.ndarray, gamma: np.ndarray, eps: float) -> Outputs:
    dX, _, _ = _bn_variant()(G, X, np.ones_like(gamma), eps)
    return dX, None, None


UNBIASED = "the variance of batch normalization's training forward pass divides by B (the biased variance)"

BATCHNORM_BACKWARD = Exercise(
    name="batchnorm_backward",
    notebook=NOTEBOOK,
    signature="batchnorm_backward(G, X, gamma, eps) -> (dX, dgamma, dbeta)",
    summary="Y = γ ⊙ x̂ + β, x̂ = (X - μ)/√(σ² + ε) over the batch axis: dX sums the paths through x̂, μ and σ²",
    outputs=("dX", "dgamma", "dbeta"),
    points=4,
    make_inputs=_batchnorm_inputs,
    reference=_batchnorm_reference,
    numeric=_batchnorm_numeric,
    misconceptions=(
        M(
            "no_paths",
            "dX only follows the direct path through x̂, as if μ and σ² were constants: both are computed "
            "from every example of the batch, so each x_k also moves every x̂ of its row through μ and "
            "through σ², and those two contributions are summed in (the merge rule)",
            _bn_variant(mu_path=False, var_path=False),
        ),
        M(
            "no_mu_path",
            "dX is missing the path through the mean μ: μ depends on every x_k of the row (∂μ/∂x_k = 1/B), "
            "so its contribution, the row mean of the upstream gradient scaled by γ/√(σ² + ε), "
            "is subtracted from every entry",
            _bn_variant(mu_path=False),
        ),
        M(
            "no_var_path",
            "dX is missing the path through the variance σ²: σ² depends on every x_k of the row "
            "(∂σ²/∂x_k = 2(x_k - μ)/B), and its contribution, x̂ times the row mean of G ⊙ x̂, scaled "
            "by γ/√(σ² + ε), is subtracted from every entry",
            _bn_variant(var_path=False),
        ),
        M(
            "backward_unbiased",
            "the forward pass divides the variance by B but this derivative of σ² divides by B - 1: "
            "with σ² = (1/B) Σ (x_k - μ)², ∂σ²/∂x_k = 2(x_k - μ)/B; use the same B in both passes",
            _bn_variant(backward_ddof=1),
        ),
        M(
            "forward_unbiased",
            f"{UNBIASED}, not by B - 1 (an unbiased estimate such as ddof=1 gives another x̂ and "
            "another √(σ² + ε)); recompute the forward pass with the biased variance",
            _bn_variant(forward_ddof=1),
        ),
        M(
            "both_unbiased",
            f"{UNBIASED}: with B - 1 in both passes this is the gradient of another function, "
            "consistent but not the layer's; divide by B",
            _bn_variant(forward_ddof=1, backward_ddof=1),
        ),
        M(
            "no_eps",
            "ε is missing: the forward pass divides by √(σ² + ε), not by √σ², so every x̂ and every factor "
            "1/√(σ² + ε) of the backward pass includes it",
            _bn_no_eps,
        ),
        M(
            "no_gamma",
            "dX is missing the factor γ: Y = γ ⊙ x̂ + β, so the gradient reaching x̂ is γ ⊙ G",
            _bn_no_gamma,
        ),
        M(
            "dgamma_centred",
            "dγ uses X - μ where the normalized x̂ = (X - μ)/√(σ² + ε) belongs: γ multiplies x̂",
            lambda G, X, gamma, eps: (
                None,
                (G * (X - X.mean(axis=1, keepdims=True))).sum(axis=1, keepdims=True),
                None,
            ),
        ),
        M(
            "dgamma_per_example",
            "dγ still has one column per example: γ (n, 1) is used by all B examples, so its gradient is the "
            "SUM over the batch axis of G ⊙ x̂, shape (n, 1)",
            _bn_outputs(dgamma=lambda G, xhat: G * xhat),
        ),
        M(
            "dbeta_per_example",
            "dβ still has one column per example: β (n, 1) is added to all B examples, so its gradient is "
            "the SUM of G over the batch axis, shape (n, 1)",
            _bn_outputs(dbeta=lambda G: G),
        ),
        M(
            "dbeta_wrong_axis",
            "the sum runs over the wrong axis: the batch axis is axis 1 (one example per column); "
            "summing down the features gives one number per example",
            _bn_outputs(dbeta=lambda G: G.sum(axis=0, keepdims=True)),
        ),
        M(
            "dbeta_mean",
            "dβ is the mean over the batch where the SUM belongs: each of the B examples adds its own "
            "contribution (divide by B only if the loss itself is a mean, and then G already carries it)",
            _bn_outputs(dbeta=lambda G: G.mean(axis=1, keepdims=True)),
        ),
    ),
    revisit="section 2, batch normalization: the three paths into each x_k, and the merge",
    judge=with_hints(
        "X and G are (n, B), one example per column, and γ, β are (n, 1): the statistics μ and σ² are "
        "taken along axis 1 (keep that axis so they stay (n, 1)); dX has the shape of X, dγ and dβ of γ"
    ),
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- gradient clipping by global norm ------------------------------------------------------------------
GRAD_NAMES = ("grads[0]", "grads[1]", "grads[2]")


def _gradients(rng: np.random.Generator) -> list[np.ndarray]:
    """Three gradients of different shapes and sizes: a weight (m, n), a bias (m, 1), a weight (k, m)."""
    m, n, k = distinct_sizes(rng, 3)
    return [rng.uniform(0.5, 4.0) * rng.standard_normal(shape) for shape in ((m, n), (m, 1), (k, m))]


def _clip_schedule() -> Callable[[np.random.Generator], Inputs]:
    """Inputs for the trials: above the threshold, below it, above again.

    Above: max_norm sits between the smallest and the largest of the three norms, so clipping each
    array by its own norm changes some arrays and leaves others, and differs from the global rule.
    """
    counter = itertools.count()

    def make(rng: np.random.Generator) -> Inputs:
        grads = _gradients(rng)
        norms = sorted(float(np.linalg.norm(g)) for g in grads)
        total = float(np.sqrt(sum(v * v for v in norms)))
        if next(counter) % 3 == 1:
            return {"grads": grads, "max_norm": total * float(rng.uniform(1.5, 3.0))}
        return {"grads": grads, "max_norm": float(rng.uniform(norms[0], norms[-1]))}

    return make


def _clip_reference(grads: list[np.ndarray], max_norm: float) -> Outputs:
    # The engine's ops on the flattened gradients: ‖g‖ = (Σ g²)^½, then the common scale.
    total = sum(((Tensor(g) ** 2).sum() for g in grads), Tensor(0.0)) ** 0.5
    scale = min(1.0, max_norm / total.item())
    return tuple(g * scale for g in grads)


def _clip_numeric(grads: list[np.ndarray], max_norm: float) -> Outputs:
    return tuple(clip_by_global_norm(grads, max_norm)[0])


def _scaled_each(scale: Callable[[list[np.ndarray], float], list[float]]) -> Callable[..., Outputs]:
    def variant(grads: list[np.ndarray], max_norm: float) -> Outputs:
        return tuple(g * f for g, f in zip(grads, scale(grads, max_norm), strict=True))

    return variant


def _norms(grads: list[np.ndarray]) -> list[float]:
    return [float(np.linalg.norm(g)) for g in grads]


def _global(grads: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(v * v for v in _norms(grads))))


def _judge_clip(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """The default judge on the schedule above; the learner gets copies of the list and its arrays."""

    def fresh(inputs: Inputs) -> object:
        return call({**inputs, "grads": [g.copy() for g in inputs["grads"]]})

    return judge_by_reference(replace(exercise, make_inputs=_clip_schedule(), trials=3), fresh, rng)


CLIP_BY_GLOBAL_NORM = Exercise(
    name="clip_by_global_norm",
    notebook=NOTEBOOK,
    signature="clip_by_global_norm(grads, max_norm) -> [clipped gradients]",
    summary="‖g‖ = (Σ_i ‖g_i‖²)^½ over every array; each g_i times min(1, max_norm/‖g‖)",
    outputs=GRAD_NAMES,
    points=2,
    make_inputs=_clip_schedule(),
    reference=_clip_reference,
    numeric=_clip_numeric,
    misconceptions=(
        M(
            "per_array",
            "each array was clipped by its own norm: global-norm clipping scales every array by the SAME "
            "factor, min(1, max_norm/‖g‖) with ‖g‖ the norm of all the entries together, so the update "
            "keeps its direction",
            _scaled_each(lambda grads, c: [min(1.0, c / v) for v in _norms(grads)]),
        ),
        M(
            "always_scaled",
            "a gradient already shorter than max_norm was scaled up to it: clipping only ever shrinks "
            "(the factor is min(1, max_norm/‖g‖)), and leaves a short gradient as it is",
            _scaled_each(lambda grads, c: [c / _global(grads)] * len(grads)),
        ),
        M(
            "sum_of_norms",
            "the global norm is not the sum of the arrays' norms: it is the norm of all their entries "
            "together, the square root of the sum of the squared norms",
            _scaled_each(lambda grads, c: [min(1.0, c / sum(_norms(grads)))] * len(grads)),
        ),
        M(
            "no_square_root",
            "this divides by the squared norm: ‖g‖ is the square root of the sum of the squares",
            _scaled_each(lambda grads, c: [min(1.0, c / _global(grads) ** 2)] * len(grads)),
        ),
        M(
            "unchanged",
            "the gradients came back unchanged: their global norm ‖g‖ is above max_norm here, so every array "
            "is multiplied by the same factor max_norm/‖g‖, smaller than 1",
            lambda grads, max_norm: tuple(g.copy() for g in grads),
        ),
        M(
            "clipped_entries",
            "each entry was clipped to [-max_norm, max_norm] on its own: that changes the direction of "
            "the update; clipping by norm scales all the entries by one common factor",
            lambda grads, max_norm: tuple(np.clip(g, -max_norm, max_norm) for g in grads),
        ),
    ),
    revisit="section 3, gradient clipping: one factor for every array",
    judge=_judge_clip,
    refuses=(*NOT_YOURS, "bpcourse.clipping"),
    instead="write the clipping yourself",
)


# -- the general unbroadcast rule ----------------------------------------------------------------------
def _unbroadcast_inputs(rng: np.random.Generator) -> Inputs:
    """An input shape with axes of size 1, and a gradient with 1 or 2 leading axes added in front.

    Every size-1 axis of the input is stretched in the gradient, and all sizes differ, so each
    wrong set of summed axes gives a wrong shape.
    """
    lead, rank = int(rng.integers(1, 3)), int(rng.integers(2, 4))
    sizes = distinct_sizes(rng, lead + rank, 2, 7)
    ones = rng.choice(rank, size=int(rng.integers(1, rank)), replace=False)
    shape = tuple(1 if i in ones else sizes[lead + i] for i in range(rank))
    return {"grad": rng.standard_normal(tuple(sizes)), "shape": shape}


def _unbroadcast_reference(grad: np.ndarray, shape: tuple[int, ...]) -> Outputs:
    x = Tensor(np.zeros(shape))
    (x + np.zeros(grad.shape)).backward(grad)  # the engine's add broadcasts x to grad's shape
    return (x.grad,)


def _unbroadcast_numeric(grad: np.ndarray, shape: tuple[int, ...]) -> Outputs:
    return (
        numerical_gradient(lambda v: float(np.sum(grad * np.broadcast_to(v, grad.shape))), np.zeros(shape)),
    )


def _stretched(grad: np.ndarray, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``grad`` (counted from its end, as numpy lines shapes up) where ``shape`` has a 1."""
    extra = grad.ndim - len(shape)
    return tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)


def _unbroadcast_variant(
    leading: bool = True, keepdims: bool = True, reduce: str = "sum"
) -> Callable[..., Outputs]:
    def variant(grad: np.ndarray, shape: tuple[int, ...]) -> Outputs:
        extra = grad.ndim - len(shape)
        out = getattr(grad, reduce)(axis=_stretched(grad, shape), keepdims=keepdims)
        if leading:
            out = getattr(out, reduce)(axis=tuple(range(extra)))
        return (out,)

    return variant


def _from_the_left(grad: np.ndarray, shape: tuple[int, ...]) -> Outputs:
    """Shapes lined up from the left: the extra axes taken to be the last ones."""
    out = grad.sum(axis=tuple(range(len(shape), grad.ndim)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1)
    return (out.sum(axis=ones, keepdims=True),)


def _from_the_left_keeping_leading(grad: np.ndarray, shape: tuple[int, ...]) -> Outputs:
    """The added axes left in place, and ``shape``'s axes of size 1 matched with ``grad``'s from the left."""
    out = grad
    for i, n in enumerate(shape):
        if n == 1 and grad.shape[i] != 1:
            out = out.sum(axis=i, keepdims=True)
    return (out,)


UNBROADCAST = Exercise(
    name="unbroadcast",
    notebook=NOTEBOOK,
    signature="unbroadcast(grad, shape) -> array of shape `shape`",
    summary="sum grad over the leading axes broadcasting added, and over every axis where shape has a 1",
    outputs=("dx",),
    points=3,
    make_inputs=_unbroadcast_inputs,
    reference=_unbroadcast_reference,
    numeric=_unbroadcast_numeric,
    misconceptions=(
        M(
            "no_leading_sum",
            "the leading axes that broadcasting added are still there: the input was copied along each of "
            "them too, so sum over them as well (numpy lines shapes up from the right, and the added axes "
            "are the first ones)",
            _unbroadcast_variant(leading=False),
        ),
        M(
            "left_and_leading_kept",
            "grad still has every axis it came with, and the input's axes of size 1 were matched with "
            "grad's axes counted from the left: numpy lines shapes up from the RIGHT, so the axes "
            "broadcasting added are grad's first axes (sum them away), and the input's last axis meets "
            "grad's last axis",
            _from_the_left_keeping_leading,
        ),
        M(
            "no_keepdims",
            "the right numbers, but the axes of size 1 are gone: keep them (keepdims, or reshape to "
            "`shape`), so that the gradient has exactly the shape of the input",
            _unbroadcast_variant(keepdims=False),
        ),
        M(
            "from_the_left",
            "the shapes were lined up from the left: numpy lines them up from the right, so the axes "
            "broadcasting added are the FIRST axes of grad, and the input's last axis meets grad's last axis",
            _from_the_left,
        ),
        M(
            "mean",
            "this averages over the broadcast axes: every copy of an entry adds its own contribution to the "
            "loss, so its gradient is the SUM over the copies (the merge rule), not their mean",
            _unbroadcast_variant(reduce="mean"),
        ),
    ),
    revisit="section 4, the general unbroadcast rule: sum over every axis that was broadcast",
    judge=with_hints(
        "numpy lines shapes up from the right: the axes broadcasting added are the first axes of grad, "
        "and the input's axes of size 1 match grad's axes at the same place counted from the end"
    ),
    refuses=NOT_YOURS,
    instead="write the sum yourself",
)


def _channel_inputs(rng: np.random.Generator) -> Inputs:
    C, H, W, B = distinct_sizes(rng, 4, 2, 7)
    return {"G": rng.standard_normal((C, H, W, B))}


def _channel_reference(G: np.ndarray) -> Outputs:
    b = Tensor(np.zeros((G.shape[0], 1, 1, 1)))
    (np.zeros(G.shape) + b).backward(G)
    return (b.grad,)


def _channel_numeric(G: np.ndarray) -> Outputs:
    bias = np.zeros((G.shape[0], 1, 1, 1))
    return (numerical_gradient(lambda v: float(np.sum(G * (np.zeros(G.shape) + v))), bias),)


CHANNEL_BIAS_BACKWARD = Exercise(
    name="channel_bias_backward",
    notebook=NOTEBOOK,
    signature="channel_bias_backward(G) -> db",
    summary="Z = F + b, F (C, H, W, B), b (C, 1, 1, 1): db = G summed over height, width and batch",
    outputs=("db",),
    points=1,
    make_inputs=_channel_inputs,
    reference=_channel_reference,
    numeric=_channel_numeric,
    misconceptions=(
        M(
            "batch_only",
            "only the batch axis was summed: one bias per channel is added at every position (i, j) of "
            "the map too, so sum over height and width as well",
            lambda G: (G.sum(axis=3, keepdims=True),),
        ),
        M(
            "spatial_only",
            "only height and width were summed: the same bias is used by every example of the batch too, "
            "so sum over the batch axis as well",
            lambda G: (G.sum(axis=(1, 2), keepdims=True),),
        ),
        M(
            "flat",
            "the right numbers, but flat: keep the bias's shape (C, 1, 1, 1) (keepdims, or a reshape)",
            lambda G: (G.sum(axis=(1, 2, 3)),),
        ),
        M(
            "channels_summed",
            "the channel axis was summed: each channel has a bias of its own, so the channel axis stays; "
            "the sum runs over height, width and batch",
            lambda G: (G.sum(axis=(0, 1, 2), keepdims=True),),
        ),
        M(
            "mean",
            "this averages where the SUM belongs: the bias is used at every position of every example, and "
            "each use adds its own contribution (the merge rule)",
            lambda G: (G.mean(axis=(1, 2, 3), keepdims=True),),
        ),
    ),
    revisit="section 4, a per-channel bias: the spatial-and-batch sum",
    judge=with_hints("G is (C, H, W, B) and the bias (C, 1, 1, 1): its gradient has the bias's shape"),
    refuses=NOT_YOURS,
    instead="write the sum yourself",
)

EXERCISES = (
    MATMUL_BACKWARD,
    ATTENTION_SCORES_BACKWARD,
    BATCHNORM_BACKWARD,
    CLIP_BY_GLOBAL_NORM,
    UNBROADCAST,
    CHANNEL_BIAS_BACKWARD,
)
