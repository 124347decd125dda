"""Exercises of notebook 06_vanishing_and_exploding: gradient sizes layer by layer, init, residual blocks.

Conventions: column vectors; z^l = W^l a^{l-1} + b^l with W^l (n_l, n_{l-1}) and
b^l (n_l, 1); a^l = φ(z^l) for the hidden layers and a^L = z^L (a linear output);
a batch x has shape (n_0, B), one example per column; δ^l = dL/dz^l has z^l's
shape (n_l, B). The loss is the engine's ``mse``: L = (1/B) Σ_k ½‖a^L_k − y_k‖².

``layer_grad_norms`` is judged against the engine (an ``MLP`` given the same
weights, measured by ``bpcourse.diagnostics.layer_grad_norms``) on four networks:
one with a single example (B = 1), then one per activation with B > 1. The
finite-difference oracle nudges an additive shift of each z^l; with B = 1 that
shift is the bias itself, so ‖δ^l‖ = ‖dL/db^l‖ there. Consecutive widths differ,
so a transposed product cannot run.

``init_weights`` draws random matrices, so it is judged by the statistics of its
draws (see ``_judge_init`` for the tolerances and their false-failure odds), and
by whether it draws from the generator it is given.

``residual_block_backward`` is judged against the engine's ``ResidualBlock``;
W is square (the block maps R^n to R^n), so the inputs keep W far from symmetric:
a W where Wᵀ belongs then has the right shape and the wrong values. Its backward
pass is also written from the steps of notebook 03 (tanh_backward, then
affine_backward, then the merge): a classic mistake of one of those exercises made
at its step is named as that exercise names it (``bpcourse.exercises.composite``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bpcourse.diagnostics import layer_grad_norms as engine_layer_grad_norms
from bpcourse.exercises.affine_and_activations import AFFINE_BACKWARD, TANH_BACKWARD
from bpcourse.exercises.composite import Composite, Part, Step
from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    GradingStop,
    Inputs,
    Line,
    NotGradable,
    Outputs,
    Verdict,
    explained,
    judge_by_reference,
    learner_error,
    non_finite,
    type_name,
    verdict_of,
    weighted_verdict,
)
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import KINK_MARGIN, away_from_zero
from bpcourse.gradcheck import numerical_gradient
from bpcourse.nn import MLP, ResidualBlock, init_weight
from bpcourse.tensor import Tensor

NOTEBOOK = "06_vanishing_and_exploding"

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")


# -- a plain-numpy network, with switches for the classic mistakes ----------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow


FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}

# φ′ written as a function of z, the pre-activation.
SLOPE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(float),
}

# φ′ written as a function of the activation a = φ(z): a(1 − a), 1 − a², 1[a > 0].
SLOPE_FROM_OUTPUT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a * a,
    "relu": lambda a: (a > 0).astype(float),
}


def forward_pass(
    Ws: Sequence[np.ndarray], bs: Sequence[np.ndarray], x: np.ndarray, activation: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(zs, activations): z^1 … z^L and a^0 = x, a^1 … a^L (the last layer linear)."""
    zs, acts = [], [x]
    for index, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        z = W @ acts[-1] + b
        zs.append(z)
        acts.append(z if index == len(Ws) - 1 else FORWARD[activation](z))
    return zs, acts


def mean_half_squared_error(a: np.ndarray, y: np.ndarray) -> float:
    """L = (1/B) Σ_k ½‖a_k − y_k‖², as ``bpcourse.tensor.mse``."""
    return float(0.5 * np.sum((a - y) ** 2) / a.shape[1])


def _norms(
    Ws: Sequence[np.ndarray],
    bs: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    activation: str,
    slope: str = "z",
    one_over_batch: bool = True,
    measure: str = "delta",
    reverse: bool = False,
) -> Outputs:
    """‖δ^l‖ per layer, with one step of the computation replaced (a classic mistake).

    slope: "z" (right), "a" (φ′ applied to a), "formula_on_z" (a(1 − a) or 1 − a² fed with z),
    "none" (no φ′ at all). measure: "delta" (right), "weight" (‖dL/dW^l‖), "bias" (‖dL/db^l‖,
    columns summed first), "upstream" (‖dL/da^l‖ for the hidden layers), "squared" (‖δ^l‖²).
    """
    zs, acts = forward_pass(Ws, bs, x, activation)
    batch = x.shape[1]
    delta = (acts[-1] - y) / (batch if one_over_batch else 1)
    deltas, upstreams = [delta], [delta]
    for index in range(len(Ws) - 1, 0, -1):
        z, a = zs[index - 1], acts[index]
        upstream = Ws[index].T @ delta
        if slope == "z":
            local = SLOPE[activation](z)
        elif slope == "a":
            local = SLOPE[activation](a)
        elif slope == "formula_on_z":
            local = SLOPE_FROM_OUTPUT[activation](z)
        else:
            local = np.ones_like(z)
        delta = upstream * local
        deltas.insert(0, delta)
        upstreams.insert(0, upstream)
    if measure == "delta":
        norms = [np.linalg.norm(d) for d in deltas]
    elif measure == "weight":
        norms = [np.linalg.norm(d @ a.T) for d, a in zip(deltas, acts[:-1], strict=True)]
    elif measure == "bias":
        norms = [np.linalg.norm(d.sum(axis=1)) for d in deltas]
    elif measure == "upstream":
        norms = [np.linalg.norm(g) for g in upstreams]
    elif measure == "squared":
        norms = [np.sum(d * d) for d in deltas]
    else:
        raise ValueError(measure)
    result = np.array(norms, dtype=float)
    return (result[::-1].copy() if reverse else result,)


# -- layer_grad_norms ---------------------------------------------------------------------------------
def _network_sizes(rng: np.random.Generator) -> list[int]:
    """n_0, …, n_L with 3 to 5 layers, widths 2..7, no two consecutive widths equal."""
    depth = int(rng.integers(3, 6))
    sizes = [int(rng.integers(2, 8))]
    while len(sizes) < depth + 1:
        n = int(rng.integers(2, 8))
        if n != sizes[-1]:
            sizes.append(n)
    return sizes


def network_inputs(rng: np.random.Generator, batch: int, activation: str) -> Inputs:
    """A small network, a batch and targets, on which every mistake shows.

    Weights have standard deviation 1.5/√fan_in, so pre-activations are of order one
    (slopes far from both 0 and their maximum). ReLU pre-activations stay KINK_MARGIN
    away from 0, and every layer's δ is clearly non-zero (no layer entirely dead).
    """
    while True:
        sizes = _network_sizes(rng)
        Ws = [1.5 * rng.standard_normal((m, n)) / math.sqrt(n) for n, m in itertools.pairwise(sizes)]
        bs = [0.5 * rng.standard_normal((m, 1)) for m in sizes[1:]]
        x = rng.standard_normal((sizes[0], batch))
        y = rng.standard_normal((sizes[-1], batch))
        zs, _ = forward_pass(Ws, bs, x, activation)
        if activation == "relu" and any(np.any(np.abs(z) < KINK_MARGIN) for z in zs[:-1]):
            continue
        if np.min(_norms(Ws, bs, x, y, activation)[0]) > 1e-2:
            return {"Ws": Ws, "bs": bs, "x": x, "y": y, "activation": activation}


def engine_network(Ws: Sequence[np.ndarray], bs: Sequence[np.ndarray], activation: str) -> MLP:
    """The engine's MLP with the given weights and biases (hidden ``activation``, linear output)."""
    sizes = [Ws[0].shape[1], *(W.shape[0] for W in Ws)]
    model = MLP(sizes, activation=activation, rng=np.random.default_rng(0))
    for layer, W, b in zip(model.layers, Ws, bs, strict=True):
        layer.W.data = np.array(W, dtype=float)
        layer.b.data = np.array(b, dtype=float)
    return model


def _norms_reference(
    Ws: Sequence[np.ndarray], bs: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, activation: str
) -> Outputs:
    model = engine_network(Ws, bs, activation)
    return (np.array(engine_layer_grad_norms(model, x, y, loss="mse")),)


def _norms_numeric(
    Ws: Sequence[np.ndarray], bs: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, activation: str
) -> Outputs:
    """‖δ^l‖ from central differences of the loss.

    δ^l is the gradient of L with respect to an additive shift E added to z^l (at
    E = 0). With a single example (B = 1) that shift is exactly the bias b^l, so the
    oracle simply nudges the biases: dL/db^l = Σ_k δ^l_k, which for one column IS δ^l,
    hence ‖δ^l‖ = ‖dL/db^l‖. With B > 1 the bias gradient adds the columns up, so
    there the oracle nudges a full (n_l, B) shift instead.
    """
    batch = x.shape[1]
    norms = []
    for layer in range(len(Ws)):

        def loss(shift: np.ndarray, layer: int = layer) -> float:
            if batch == 1:
                shifted = [shift if i == layer else b for i, b in enumerate(bs)]
                _, acts = forward_pass(Ws, shifted, x, activation)
            else:
                acts = [x]
                for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
                    z = W @ acts[-1] + b + (shift if i == layer else 0.0)
                    acts.append(z if i == len(Ws) - 1 else FORWARD[activation](z))
            return mean_half_squared_error(acts[-1], y)

        start = bs[layer] if batch == 1 else np.zeros((Ws[layer].shape[0], batch))
        norms.append(np.linalg.norm(numerical_gradient(loss, np.array(start, dtype=float))))
    return (np.array(norms),)


def _as_norm_array(raw: Any, layers: int) -> np.ndarray:
    """The learner's list of norms as a float array of length ``layers``, or NotGradable saying why."""
    expected = f"a list of {layers} numbers, one norm per layer, first layer first"
    if isinstance(raw, np.ndarray) and raw.ndim == 1:
        raw = list(raw)
    elif isinstance(raw, np.ndarray) and raw.ndim == 2 and 1 in raw.shape:
        raw = list(raw.ravel())
    if not isinstance(raw, list | tuple):
        raise NotGradable(f"should return {expected}, but returned a single {type_name(raw)}")
    values = []
    for index, entry in enumerate(raw):
        if isinstance(entry, np.ndarray) and entry.size == 1 and entry.dtype.kind in "iuf":
            entry = entry.reshape(())[()]
        if isinstance(entry, np.ndarray):
            raise NotGradable(
                f"entry {index} is an array of shape {entry.shape}, not a number: return the NORM of each "
                "δ^l, one number per layer (np.linalg.norm of the whole (n_l, B) array), not δ^l itself"
            )
        if isinstance(entry, bool) or not isinstance(entry, int | float | np.integer | np.floating):
            raise NotGradable(f"entry {index} is a {type_name(entry)}: each entry should be a number, ‖δ^l‖")
        values.append(float(entry))
    if len(values) != layers:
        extra = ""
        if len(values) == layers + 1:
            extra = " (the input x has no δ: the list starts at layer 1)"
        elif len(values) == layers - 1:
            extra = " (the output layer counts too: δ^L = (a^L − y)/B)"
        raise NotGradable(
            f"returned {len(values)} norms for a network of {layers} layers: one norm per layer, "
            f"first layer first{extra}"
        )
    return np.array(values)


def _norm_schedule() -> Callable[[np.random.Generator], Inputs]:
    """Inputs for the trials: one example of a random activation, then each activation with B > 1."""
    counter = itertools.count()

    def make(rng: np.random.Generator) -> Inputs:
        trial = next(counter) % 4
        if trial == 0:
            return network_inputs(rng, 1, str(rng.choice(ACTIVATION_NAMES)))
        return network_inputs(rng, int(rng.integers(2, 6)), ACTIVATION_NAMES[trial - 1])

    return make


def _judge_norms(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """The default judge on the trial schedule, the learner's list read as an array of floats.

    The learner gets copies of the lists of weights and biases, so that a function that
    reorders or changes them in place cannot change what the classic mistakes are
    computed from.
    """

    def as_array(inputs: Inputs) -> Any:
        fresh = {**inputs, "Ws": [W.copy() for W in inputs["Ws"]], "bs": [b.copy() for b in inputs["bs"]]}
        return _as_norm_array(call(fresh), len(inputs["Ws"]))

    scheduled = replace(exercise, make_inputs=_norm_schedule(), trials=4)
    return judge_by_reference(scheduled, as_array, rng)


SLOPE_AT_A = (
    "the slope was taken at the activation a = φ(z) instead of at the pre-activation z: δ^{l-1} = "
    "((W^l)ᵀ δ^l) ⊙ φ′(z^{l-1}). From the cached a, φ′(z) is a(1 − a) for sigmoid and 1 − a² for tanh, "
    "which is not σ(a)(1 − σ(a)) or 1 − tanh²(a)"
)

LAYER_GRAD_NORMS = Exercise(
    name="layer_grad_norms",
    notebook=NOTEBOOK,
    signature="layer_grad_norms(Ws, bs, x, y, activation) -> [‖δ¹‖, …, ‖δᴸ‖]",
    summary="one backward pass of an MLP with mean ½‖a − y‖² loss; the Frobenius norm of each δ^l",
    outputs=("norms",),
    points=3,
    make_inputs=lambda rng: network_inputs(rng, 3, "tanh"),
    reference=_norms_reference,
    numeric=_norms_numeric,
    misconceptions=(
        M(
            "reversed",
            "the norms are in reverse order: the backward pass reaches the last layer first, but the list "
            "must start with the FIRST layer, [‖δ¹‖, …, ‖δᴸ‖] (reverse what you collected on the way back)",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, reverse=True),
        ),
        M(
            "weight_gradients",
            "these are the norms of the weight gradients dL/dW^l = δ^l (a^{l-1})ᵀ; measure δ^l = dL/dz^l "
            "itself",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, measure="weight"),
        ),
        M(
            "slope_at_a",
            SLOPE_AT_A,
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, slope="a"),
        ),
        M(
            "slope_formula_on_z",
            "a(1 − a) (sigmoid) and 1 − a² (tanh) are φ′(z) written with the ACTIVATION a; here they were "
            "fed the pre-activation z. Use φ′(z) = σ(z)(1 − σ(z)), 1 − tanh²(z), or the formulas with a",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, slope="formula_on_z"),
        ),
        M(
            "missing_one_over_B",
            "every norm is B times too large: the loss is the MEAN over the batch, "
            "L = (1/B) Σ_k ½‖a^L_k − y_k‖², so δ^L = (a^L − y)/B, and that 1/B travels back into every layer",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, one_over_batch=False),
        ),
        M(
            "no_slope",
            "φ′ is missing between the layers: δ^{l-1} = ((W^l)ᵀ δ^l) ⊙ φ′(z^{l-1}); without the ⊙ φ′(z) "
            "the gradient never feels the activations (and cannot vanish through them)",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, slope="none"),
        ),
        M(
            "measured_before_slope",
            "for the hidden layers this measures (W^{l+1})ᵀ δ^{l+1} = dL/da^l, the gradient at the "
            "activation; δ^l = dL/dz^l is one step further back, after ⊙ φ′(z^l)",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, measure="upstream"),
        ),
        M(
            "bias_gradient",
            "these are the norms of dL/db^l, which adds δ^l's columns up first; measure the whole (n_l, B) "
            "array δ^l, the Frobenius norm √(Σ_ik δ_ik²), one number for the whole matrix",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, measure="bias"),
        ),
        M(
            "squared",
            "these are squared norms: ‖δ‖ = √(Σ δ²), the square root of the sum of squares",
            lambda Ws, bs, x, y, activation: _norms(Ws, bs, x, y, activation, measure="squared"),
        ),
    ),
    revisit="the δ recurrence: δ^L = (a^L − y)/B, δ^{l-1} = ((W^l)ᵀ δ^l) ⊙ φ′(z^{l-1})",
    judge=_judge_norms,
    refuses=NOT_YOURS,
    instead="write the backward pass yourself",
)


# -- init_weights -------------------------------------------------------------------------------------
SCHEMES = ("xavier", "he")
VARIANCE_TEXT = {"xavier": "2/(fan_in + fan_out)", "he": "2/fan_in"}


def target_variance(fan_out: int, fan_in: int, scheme: str) -> float:
    """The variance of W's entries: Xavier 2/(fan_in + fan_out), He 2/fan_in."""
    return 2.0 / (fan_in + fan_out) if scheme == "xavier" else 2.0 / fan_in


def _init_reference(fan_out: int, fan_in: int, scheme: str, rng: np.random.Generator) -> Outputs:
    return (init_weight(fan_out, fan_in, scheme, rng),)


def _normal(
    variance: Callable[[int, int], float], schemes: Sequence[str] = SCHEMES
) -> Callable[..., Outputs]:
    """A mistake: a zero-mean normal with the wrong variance (None for the schemes it does not touch)."""

    def variant(fan_out: int, fan_in: int, scheme: str, rng: np.random.Generator) -> Outputs:
        if scheme not in schemes:
            return (None,)
        return (rng.standard_normal((fan_out, fan_in)) * math.sqrt(variance(fan_out, fan_in)),)

    return variant


def _std_set_to_variance(fan_out: int, fan_in: int, scheme: str, rng: np.random.Generator) -> Outputs:
    return (rng.standard_normal((fan_out, fan_in)) * target_variance(fan_out, fan_in, scheme),)


def _uniform_bound_std(fan_out: int, fan_in: int, scheme: str, rng: np.random.Generator) -> Outputs:
    bound = math.sqrt(target_variance(fan_out, fan_in, scheme))
    return (rng.uniform(-bound, bound, (fan_out, fan_in)),)


def _global_state(fan_out: int, fan_in: int, scheme: str, rng: np.random.Generator) -> Outputs:
    fresh = np.random.default_rng()  # not the caller's rng: a new stream on every call
    return (fresh.standard_normal((fan_out, fan_in)) * math.sqrt(target_variance(fan_out, fan_in, scheme)),)


def _fixed_seed(fan_out: int, fan_in: int, scheme: str, rng: np.random.Generator) -> Outputs:
    fixed = np.random.default_rng(0)
    return (fixed.standard_normal((fan_out, fan_in)) * math.sqrt(target_variance(fan_out, fan_in, scheme)),)


IGNORES_RNG = (
    "two generators in the same state gave different matrices: the draws do not come from rng. Draw from "
    "the generator you are given, not from numpy's global random functions or a generator made inside "
    "the function: the caller's rng is what makes an initialisation reproducible"
)
FIXED_SEED = (
    "the matrix is the same whatever rng is: draw from the rng you are given; a generator seeded inside "
    "the function, with a seed of its own, ignores it"
)

INIT_MISCONCEPTIONS = (
    M(
        "std_set_to_variance",
        "the spread is far too small: the scheme gives the VARIANCE, and a standard normal draw is "
        "multiplied by the standard deviation, its square root (a normal's scale parameter is the "
        "standard deviation too, not the variance)",
        _std_set_to_variance,
    ),
    M(
        "standard_normal",
        "these are plain standard-normal draws (variance 1) whatever the layer's width: the naive "
        "initialisation whose signals and gradients blow up with depth. Multiply by the scheme's standard "
        "deviation",
        _normal(lambda fo, fi: 1.0),
    ),
    M(
        "uniform_bound_is_std",
        "a uniform U(−r, r) has variance r²/3, not r²: with r = σ the variance is 3 times too small. Draw "
        "a standard normal scaled by σ (or, for a uniform, take r = √3 σ)",
        _uniform_bound_std,
    ),
    M(
        "xavier_fan_in_only",
        "this is 1/fan_in (LeCun's variance): the forward pass wants 1/fan_in, the backward pass 1/fan_out, "
        "and Xavier takes the compromise 2/(fan_in + fan_out)",
        _normal(lambda fo, fi: 1.0 / fi, ("xavier",)),
    ),
    M(
        "xavier_fan_out_only",
        "this is 1/fan_out, which only balances the backward pass: Xavier uses 2/(fan_in + fan_out)",
        _normal(lambda fo, fi: 1.0 / fo, ("xavier",)),
    ),
    M(
        "xavier_as_he",
        "this is He's variance, 2/fan_in; Xavier's is 2/(fan_in + fan_out)",
        _normal(lambda fo, fi: 2.0 / fi, ("xavier",)),
    ),
    M(
        "xavier_forgot_two",
        "this is half the Xavier variance: 2/(fan_in + fan_out), one over the MEAN of the two fans",
        _normal(lambda fo, fi: 1.0 / (fi + fo), ("xavier",)),
    ),
    M(
        "he_lecun",
        "this is 1/fan_in (LeCun's variance): a ReLU zeroes about half of its inputs, which halves E[a²], "
        "and He doubles the variance to make up for it: 2/fan_in",
        _normal(lambda fo, fi: 1.0 / fi, ("he",)),
    ),
    M(
        "he_fan_out",
        "fan_in and fan_out are swapped: He's variance is 2/fan_in, with fan_in the number of INPUTS of the "
        "layer (W.shape[1])",
        _normal(lambda fo, fi: 2.0 / fo, ("he",)),
    ),
    M(
        "he_as_xavier",
        "this is Xavier's variance, 2/(fan_in + fan_out); He's, for ReLU layers, is 2/fan_in",
        _normal(lambda fo, fi: 2.0 / (fi + fo), ("he",)),
    ),
    M("ignores_rng", IGNORES_RNG, _global_state),
    M("fixed_seed", FIXED_SEED, _fixed_seed),
)

# Tolerances of the statistics, from their sampling distributions. Each scheme is
# judged on DRAWS = 3 matrices of 40,000 to 100,000 entries each (so N >= 120,000
# entries in all), every entry divided by the target standard deviation of its
# matrix: for a correct answer these are independent N(0, 1) draws.
#  * variance, per matrix: the sample variance of n >= 40,000 standard normals has
#    mean 1 and standard deviation √(2/n) <= 0.71%. Accepting 1 ± 5% is 7.1
#    standard deviations: P(a correct matrix fails) = 2·Φ(−7.07) ≈ 1.6e-12, so
#    ≈ 1e-11 for the six matrices of a verdict. Judging each matrix on its own
#    (rather than all entries pooled) keeps a fan_in/fan_out mix-up from averaging
#    out between a wide and a tall matrix. Every classic mistake is off by a factor
#    of 1.5 or more on some matrix (2, 3, fan ratios >= 8, ...).
#  * mean, pooled: the mean of N >= 120,000 standard normals has standard deviation
#    1/√N <= 0.0029; accepting |mean| <= 0.02 (in units of the entries' own
#    standard deviation, so that it tests "zero mean" whatever the spread) is 6.9
#    standard deviations: P ≈ 5e-12 per scheme.
#  * distinct values: a continuous draw of 100,000 float64 entries repeats a value
#    with probability ~1e-6; a matrix needs 99% of its entries distinct, which
#    only a copied row or column, or a few fixed values, can miss.
#  * a uniform draw has a smaller spread of its sample variance (0.8/n instead of
#    2/n), so the same tolerances hold for it.
# All the checks of one verdict together: a correct answer fails with probability
# below 3e-11.
DRAWS = 3
VARIANCE_RTOL = 0.05
MEAN_ATOL = 0.02
MATCH_RTOL = 0.08  # a wrong answer "is" a classic mistake when, matrix by matrix, its variance is within 8%
SMALL, LARGE = (50, 100), (800, 1000)  # the two fans of a draw: one small, one large (ratio >= 8)
NORMAL_KURTOSIS, UNIFORM_KURTOSIS, KURTOSIS_ATOL = 0.0, -1.2, 0.25  # excess kurtosis: SE √(24/N) <= 0.015


def _init_shapes(rng: np.random.Generator) -> list[tuple[int, int]]:
    """DRAWS (fan_out, fan_in) pairs, one fan small and the other large, both orientations present."""
    shapes = []
    for wide in (True, False, bool(rng.integers(2))):
        small, large = int(rng.integers(*SMALL, endpoint=True)), int(rng.integers(*LARGE, endpoint=True))
        shapes.append((small, large) if wide else (large, small))
    return shapes


def _fresh(rng: np.random.Generator) -> np.random.Generator:
    return np.random.default_rng(int(rng.integers(2**63)))


def _matrix_problem(W: Any, fan_out: int, fan_in: int) -> str | None:
    """What is wrong with one returned matrix as a matrix (not its statistics), or None."""
    if not isinstance(W, np.ndarray):
        return f"should be a numpy array of shape (fan_out, fan_in) = {(fan_out, fan_in)}, got {type_name(W)}"
    if W.dtype.kind != "f":
        return f"has dtype {W.dtype}: weights are real numbers (float64)"
    if W.shape != (fan_out, fan_in):
        hint = ""
        if W.shape == (fan_in, fan_out):
            hint = " (transposed: W^l maps n_{l-1} inputs to n_l outputs, so it has one ROW per output)"
        return f"has shape {W.shape} but should have shape (fan_out, fan_in) = {(fan_out, fan_in)}{hint}"
    broken = non_finite(W)
    if broken is not None:
        return broken
    distinct = np.unique(W).size
    if distinct < 0.99 * W.size:
        return (
            f"has only {distinct} different values among its {W.size} entries: each entry must be its own "
            "draw from a continuous distribution (not a row or a column repeated, nor a few fixed values)"
        )
    return None


def _standardized(
    matrices: Sequence[np.ndarray], shapes: Sequence[tuple[int, int]], scheme: str
) -> list[np.ndarray]:
    """Each matrix's entries divided by its target standard deviation (N(0, 1) when right)."""
    return [np.asarray(W, dtype=float).ravel() / math.sqrt(target_variance(fo, fi, scheme))
            for W, (fo, fi) in zip(matrices, shapes, strict=True)]  # fmt: skip


def _times(ratio: float) -> str:
    if ratio >= 1:
        return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"
    return f"1/{_times(1 / ratio)}" if ratio > 0 else "0"


def _ratio_text(ratios: Sequence[float], formula: str) -> str:
    """How far the variances are from the target, in words ("about 3 times the target 2/fan_in")."""
    low, high = min(ratios), max(ratios)
    if low > 0 and high / low < 1.25:
        middle = math.sqrt(low * high)
        return f"about {_times(middle)} {'times' if middle >= 1 else 'of'} the target {formula}"
    spread = f"between {_times(low)} and {_times(high)} times the target {formula}"
    return f"{spread} (it depends on the matrix's shape)"


def _diagnose_variance(
    exercise: Exercise,
    scheme: str,
    shapes: Sequence[tuple[int, int]],
    ratios: Sequence[float],
    rng: np.random.Generator,
) -> str | None:
    """The message of the first classic mistake whose own draws have the learner's variances."""
    for mistake in exercise.misconceptions:
        drawn = [mistake.variant(fo, fi, scheme, _fresh(rng))[0] for fo, fi in shapes]
        if any(W is None for W in drawn):
            continue
        theirs = [float(np.var(z)) for z in _standardized(drawn, shapes, scheme)]
        if all(abs(t - 1.0) <= VARIANCE_RTOL for t in theirs):
            continue  # this mistake does not change the variance (it is about the generator)
        if all(abs(r - t) <= MATCH_RTOL * t for r, t in zip(ratios, theirs, strict=True)):
            return mistake.message
    return None


def _scheme_line(exercise: Exercise, call: Call, rng: np.random.Generator, scheme: str) -> Line:
    """One line per scheme: DRAWS matrices, each a proper matrix, then their statistics."""
    what = scheme
    shapes = _init_shapes(rng)
    matrices = []
    for fan_out, fan_in in shapes:
        W = call({"fan_out": fan_out, "fan_in": fan_in, "scheme": scheme, "rng": _fresh(rng)})
        problem = _matrix_problem(W, fan_out, fan_in)
        if problem is not None:
            return Line(what, False, f"init_weights({fan_out}, {fan_in}, {scheme!r}, rng) {problem}")
        matrices.append(W)
    per_matrix = _standardized(matrices, shapes, scheme)
    z = np.concatenate(per_matrix)
    mean, spread = float(np.mean(z)), float(np.std(z))
    if abs(mean) > MEAN_ATOL * spread:
        return Line(what, False, (
            f"the entries do not average 0 (their mean is {mean / spread:+.2g} times their standard "
            "deviation): draw from a ZERO-mean distribution, a standard normal scaled by σ"
        ))  # fmt: skip
    ratios = [float(np.var(w)) for w in per_matrix]
    if any(abs(r - 1.0) > VARIANCE_RTOL for r in ratios):
        diagnosis = _diagnose_variance(exercise, scheme, shapes, ratios, rng)
        message = f"the variance of the entries is {_ratio_text(ratios, VARIANCE_TEXT[scheme])}"
        return Line(what, False, explained(message, diagnosis))
    standardized = np.concatenate([(w - w.mean()) / w.std() for w in per_matrix])
    kurtosis = float(np.mean(standardized**4) - 3.0)
    if abs(kurtosis - NORMAL_KURTOSIS) <= KURTOSIS_ATOL:
        return Line(what, True)
    if abs(kurtosis - UNIFORM_KURTOSIS) <= KURTOSIS_ATOL:
        return Line(what, True, (
            "accepted: a uniform draw with the right variance (the uniform form of the scheme). The exercise "
            "asks for a normal, a standard normal scaled by σ; both give the variance the argument needs"
        ))  # fmt: skip
    return Line(what, True, (
        "accepted: the mean and the variance are right, but the entries are not normally distributed "
        "(their tails are off); the exercise asks for a normal: a standard normal scaled by σ"
    ))  # fmt: skip


def _rng_line(exercise: Exercise, call: Call, rng: np.random.Generator) -> Line:
    """Two generators in the same state must give the same matrix; another state, another matrix."""
    what = "uses rng"
    messages = {m.key: m.message for m in exercise.misconceptions}
    fan_out, fan_in = int(rng.integers(20, 40)), int(rng.integers(50, 80))
    seed = int(rng.integers(2**31))
    other = seed + 1 + int(rng.integers(2**30))
    first, again, different = (
        call({"fan_out": fan_out, "fan_in": fan_in, "scheme": "he", "rng": np.random.default_rng(s)})
        for s in (seed, seed, other)
    )
    if any(_matrix_problem(W, fan_out, fan_in) for W in (first, again, different)):
        return Line(what, False, "not tried yet: init_weights must first return proper matrices (see above)")
    if not np.array_equal(first, again):
        return Line(what, False, messages["ignores_rng"])
    if np.array_equal(first, different):
        return Line(what, False, messages["fixed_seed"])
    return Line(what, True)


def _judge_init(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """Lines "xavier", "he" (shapes and statistics of DRAWS matrices each) and "uses rng".

    Score: the points times the fraction of lines that pass.
    """
    try:
        lines = [_scheme_line(exercise, call, rng, scheme) for scheme in SCHEMES]
        lines.append(_rng_line(exercise, call, rng))
    except (NotImplementedError, GradingStop):
        raise
    except Exception as exc:
        return verdict_of(exercise, "error", [Line("runs", False, learner_error(exc))])
    return weighted_verdict(exercise, lines)


INIT_WEIGHTS = Exercise(
    name="init_weights",
    notebook=NOTEBOOK,
    signature="init_weights(fan_out, fan_in, scheme, rng) -> W",
    summary="W (fan_out, fan_in) from a zero-mean normal: Xavier variance 2/(fan_in + fan_out), He 2/fan_in",
    outputs=("W",),
    points=2,
    make_inputs=lambda rng: {"fan_out": 60, "fan_in": 900, "scheme": "he", "rng": _fresh(rng)},
    reference=_init_reference,
    misconceptions=INIT_MISCONCEPTIONS,
    revisit="the variance argument: Var(z) = n_in Var(W) Var(a), and what each scheme keeps constant",
    judge=_judge_init,
    refuses=NOT_YOURS,
    instead="draw the weights yourself from rng",
)


# -- residual_block_backward --------------------------------------------------------------------------
def _residual_inputs(rng: np.random.Generator) -> Inputs:
    """n in 3..6; W far from symmetric; pre-activations of order one (tanh slopes well inside (0, 1))."""
    while True:
        n = int(rng.integers(3, 7))
        W = 1.2 * rng.standard_normal((n, n)) / math.sqrt(n)
        x = rng.standard_normal((n, 1))
        b = 0.5 * rng.standard_normal((n, 1))
        z = W @ x + b
        asymmetric = np.linalg.norm(W - W.T) > 0.5 * np.linalg.norm(W)
        if asymmetric and np.all(np.abs(z) < 2.0) and np.any(np.abs(z) > 0.3):
            return {"u": away_from_zero(rng, (n, 1), 0.3, 2.0), "x": x, "W": W, "b": b}


def _residual_reference(u: np.ndarray, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> Outputs:
    block = ResidualBlock(W.shape[0], activation="tanh", rng=np.random.default_rng(0))
    block.layer.W.data = np.array(W, dtype=float)
    block.layer.b.data = np.array(b, dtype=float)
    xt = Tensor(x, label="x")
    block(xt).backward(u)
    return xt.grad, block.layer.W.grad, block.layer.b.grad


def _residual_numeric(u: np.ndarray, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> Outputs:
    def h(x_: np.ndarray, W_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        return x_ + np.tanh(W_ @ x_ + b_)

    return (
        numerical_gradient(lambda v: np.sum(u * h(v, W, b)), x),
        numerical_gradient(lambda v: np.sum(u * h(x, v, b)), W),
        numerical_gradient(lambda v: np.sum(u * h(x, W, v)), b),
    )


def _residual_variant(
    slope: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = lambda z, a, h: 1.0 - a * a,
    dx: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = lambda u, W, d: u + W.T @ d,
    dW: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda d, x: d @ x.T,
    affects: tuple[str, ...] = ("dx", "dW", "db"),
) -> Callable[..., Outputs]:
    """The block's backward pass with one step replaced; outputs outside ``affects`` are None."""

    def variant(u: np.ndarray, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> Outputs:
        z = W @ x + b
        a = np.tanh(z)
        d = u * slope(z, a, x + a)
        grads = {"dx": dx(u, W, d), "dW": dW(d, x), "db": d}
        return tuple(grads[k] if k in affects else None for k in ("dx", "dW", "db"))

    return variant


# The block's backward pass from its steps: tanh_backward (notebook 03) with the upstream gradient u, then
# affine_backward with g = δ, then the merge dx = u + (the affine step's dx). A mistake of tanh_backward or
# affine_backward made at its step reads as that exercise says it.
def _tanh_step(upstream: np.ndarray, a: np.ndarray) -> Outputs:
    return (upstream * (1.0 - a * a),)


def _affine_step(g: np.ndarray, x: np.ndarray, W: np.ndarray) -> Outputs:
    return g @ x.T, g, W.T @ g


def _residual_backward(steps: Mapping[str, Step], u, x, W, b) -> Outputs:
    (d,) = steps["tanh"](upstream=u, a=np.tanh(W @ x + b))
    dW, db, through_F = steps["affine"](g=d, x=x, W=W)
    return u + through_F, dW, db


RESIDUAL_STEPS = Composite(_residual_backward, {"tanh": _tanh_step, "affine": _affine_step})
RESIDUAL_PARTS = (
    Part("tanh", TANH_BACKWARD, "in the tanh step, a = tanh(W x + b) (the rule of tanh_backward, with "
         "upstream = u)", ("tanh_of_a", "not_squared", "forgot_upstream")),
    Part("affine", AFFINE_BACKWARD, "in the affine step, z = W x + b (the rule of affine_backward, with "
         "g = δ = u ⊙ (1 − a²); its dx is F's share of the merge)",
         ("dW_transposed", "forgot_upstream", "db_row", "db_flat", "db_summed", "dx_row")),
)  # fmt: skip

MISSING_MERGE_SUM = (
    "dx is missing the identity path: x reaches h twice, straight through the skip and through F, and the "
    "two contributions ADD at the merge; the skip hands u back unchanged, and it is not in this dx. Without "
    "it the sum lacks a term, so its value is off (too small or too large, depending on the signs), and "
    "in a deep stack the gradient vanishes as in a plain network"
)

RESIDUAL_BLOCK_BACKWARD = Exercise(
    name="residual_block_backward",
    notebook=NOTEBOOK,
    signature="residual_block_backward(u, x, W, b) -> (dx, dW, db)",
    summary="h = x + tanh(W x + b): δ = u ⊙ (1 − a²); dx = u + Wᵀ δ, dW = δ xᵀ, db = δ",
    outputs=("dx", "dW", "db"),
    points=3,
    make_inputs=_residual_inputs,
    reference=_residual_reference,
    numeric=_residual_numeric,
    misconceptions=(
        M(
            "no_identity_path",
            MISSING_MERGE_SUM,
            _residual_variant(dx=lambda u, W, d: W.T @ d, affects=("dx",)),
        ),
        M(
            "no_F_path",
            "dx is only the skip's contribution u: the path through F adds Wᵀ (u ⊙ (1 − a²)), and the two "
            "contributions ADD at the merge",
            _residual_variant(dx=lambda u, W, d: u, affects=("dx",)),
        ),
        M(
            "W_not_transposed",
            "the gradient goes back through W x via the TRANSPOSE: dx = u + Wᵀ δ. W is square here, so "
            "W δ has the right shape and the wrong values",
            _residual_variant(dx=lambda u, W, d: u + W @ d, affects=("dx",)),
        ),
        M(
            "slope_formula_on_z",
            "1 − a² is tanh′(z) written with the ACTIVATION a = tanh(W x + b); here it was fed the "
            "pre-activation z",
            _residual_variant(slope=lambda z, a, h: 1.0 - z * z),
        ),
        M(
            "slope_from_block_output",
            "the slope used h = x + tanh(z), the output of the whole block; tanh's slope needs tanh's own "
            "output a = tanh(W x + b): 1 − a²",
            _residual_variant(slope=lambda z, a, h: 1.0 - h * h),
        ),
        M(
            "no_slope",
            "tanh's slope is missing: before going through W, the gradient is δ = u ⊙ (1 − a²)",
            _residual_variant(slope=lambda z, a, h: np.ones_like(z)),
        ),
        *RESIDUAL_STEPS.inserted(RESIDUAL_PARTS),
    ),
    revisit="the merge rule for h = x + F(x): dL/dx = u + J_Fᵀ u",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)

EXERCISES = (LAYER_GRAD_NORMS, INIT_WEIGHTS, RESIDUAL_BLOCK_BACKWARD)
