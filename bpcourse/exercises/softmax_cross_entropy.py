"""Exercises of notebook 04_softmax_cross_entropy: softmax, its loss, and its Jacobian.

Conventions: logits z of shape (K, 1) for one example, Z of shape (K, B) for a
batch (one example per column); softmax acts down each column (axis 0). A label
y has z's shape and holds a distribution over the K classes (one-hot or soft:
each column sums to 1).

* ``softmax`` is judged by a judge of its own: values on ordinary logits, then
  stability on logits near ±1000, then on a batch whose columns sit at very
  different heights (see ``_judge_softmax`` for why that last case exists).
* ``softmax_ce`` is judged against the engine's fused ``softmax_cross_entropy``
  node (loss and backward), checked against central differences of a
  log-sum-exp loss in float64, on one-hot and soft labels, and then on one
  example with huge logits, where the loss must stay finite; the label of that
  example sits on a logit whose probability underflows, whatever the seed. A
  loss or gradient that only handles one-hot labels is named, and so is a
  mistake of the exercise softmax made inside it (``CE_STEPS``).
* ``softmax_jacobian`` is judged against the Jacobian the engine builds in
  reverse mode, one vector-Jacobian product per row, through a softmax written
  with engine ops; the oracle is central differences, column by column.

Messages name the idea to revisit; they never show reference values or inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from bpcourse.exercises.composite import Composite, Part, Step
from bpcourse.exercises.core import (
    NOT_YOURS,
    Call,
    Exercise,
    Inputs,
    Line,
    Outputs,
    Verdict,
    all_finite,
    diagnose,
    draw_checked_inputs,
    explained,
    learner_outputs,
    problem_with,
    weighted_verdict,
)
from bpcourse.exercises.core import Misconception as M
from bpcourse.exercises.inputs import distinct_sizes
from bpcourse.forward import jacobian_by_vjp
from bpcourse.gradcheck import numerical_gradient
from bpcourse.tensor import Tensor, softmax, softmax_cross_entropy

NOTEBOOK = "04_softmax_cross_entropy"

LARGE = 1000.0  # logits of this size overflow exp() in float64 (exp(709.8) is the largest finite)
SMOOTHING = 0.1  # label smoothing used for soft labels


# -- numpy helpers (for oracles and for the wrong variants) ---------------------------------------
def _quiet(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with numpy's overflow / invalid-value warnings silenced (the variants overflow)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)

    return run


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log p down each column through log-sum-exp: finite for any finite logits."""
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def _lse_loss(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.sum(y * _log_softmax(z)))


def _naive_softmax(z: np.ndarray, axis: int | None = 0) -> np.ndarray:
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=axis is not None)


def _tensor_softmax(z: Tensor) -> Tensor:
    """Softmax down the columns with engine ops; the column max is a constant (no gradient)."""
    e = (z - z.data.max(axis=0, keepdims=True)).exp()
    return e / e.sum(axis=0, keepdims=True)


# -- diagnoses that see NaN and Inf ------------------------------------------------------------------
def _diagnosis(exercise: Exercise, index: int, inputs: Inputs, got: Any, expected: Any) -> str | None:
    """The classic mistake behind ``got``, including mistakes that break down into NaN or Inf.

    ``diagnose`` compares values, and NaN equals nothing; an answer that is not
    finite is matched instead with a mistake whose variant is non-finite in
    exactly the same entries (NaN where it has NaN, ±Inf where it has ±Inf).
    """
    found = diagnose(exercise, index, inputs, got, expected)
    if found or all_finite(got):
        return found
    try:
        g = np.asarray(got, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    for mistake in exercise.misconceptions:
        try:
            variant = mistake.variant(**inputs)[index]
        except Exception:
            continue
        if variant is None:
            continue
        v = np.asarray(variant, dtype=np.float64).ravel()
        if v.size != g.size or all_finite(v):
            continue
        if np.array_equal(np.isnan(v), np.isnan(g)) and np.array_equal(np.isposinf(v), np.isposinf(g)) \
                and np.array_equal(np.isneginf(v), np.isneginf(g)):  # fmt: skip
            return mistake.message
    return None


# -- softmax ----------------------------------------------------------------------------------------
def _softmax_inputs(rng: np.random.Generator) -> Inputs:
    k, b = distinct_sizes(rng, 2, 3, 6)
    return {"z": rng.normal(0.0, 2.0, (k, b))}


def _same_height(rng: np.random.Generator, shape: tuple[int, int], height: float) -> Inputs:
    """Logits near ``height`` in every column (within ±20): large, but alike from column to column."""
    return {"z": height + rng.uniform(-20.0, 20.0, shape)}


def _mixed_heights(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[Inputs, int]:
    """Ordinary columns and one column near +LARGE; returns the inputs and that column's index."""
    k, b = shape
    z = rng.normal(0.0, 2.0, (k, b))
    tall = int(rng.integers(b))
    z[:, tall] += LARGE
    return {"z": z}, tall


OVERFLOW = (
    "exp overflows for large logits (exp(1000) is inf in float64, and inf/inf is NaN) and underflows "
    "to 0/0 for very negative ones: subtract each column's max before exp. Softmax does not change "
    "when the same constant is added to every logit of a column, and after the shift the largest "
    "exponent is exp(0) = 1"
)
GLOBAL_MAX = (
    "the max was taken over the whole array: a column whose logits sit far below the largest logit "
    "of the batch underflows to 0/0 = NaN. The shift must be a constant per column, so subtract each "
    "column's own max, taken down axis 0 and kept as a row of shape (1, B), lined up with the columns"
)

# Order matters for answers that break down into NaN: the global max and the row max leave the same
# NaN pattern on a batch whose columns differ by 1000, and the global max is the likelier cause there.
SOFTMAX_MISCONCEPTIONS = (
    M("no_max_subtraction", OVERFLOW, _quiet(lambda z: (_naive_softmax(z),))),
    M("global_max", GLOBAL_MAX, _quiet(lambda z: (_naive_softmax(z - z.max()),))),
    M(
        "rows",
        "normalised along the wrong axis: these rows sum to 1, but each COLUMN is one example and must "
        "sum to 1 (sum down axis 0, keeping one sum per column)",
        _quiet(lambda z: (_naive_softmax(z - z.max(axis=1, keepdims=True), axis=1),)),
    ),
    M(
        "whole_array",
        "the whole batch sums to 1 here: normalise each column on its own (sum down axis 0, keeping "
        "one sum per column), one example per column",
        _quiet(lambda z: (_naive_softmax(z - z.max(), axis=None),)),
    ),
    M(
        "row_max",
        "the shift subtracted from the logits must be ONE number per column (the column max, down axis 0): "
        "subtracting different numbers from the entries of a column changes its softmax",
        _quiet(lambda z: (_naive_softmax(z - z.max(axis=1, keepdims=True)),)),
    ),
    M(
        "not_normalised",
        "exp(z) must be divided by its column sum, so that each column adds up to 1",
        _quiet(lambda z: (np.exp(z - z.max(axis=0, keepdims=True)),)),
    ),
)


def _judge_softmax(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """Three lines: ordinary values, logits near ±1000, and a batch with columns of very different heights.

    Why the third line. Subtracting the max over the WHOLE array instead of
    each column's max is mathematically fine (the shift is still a constant
    within each column) and stable whenever the columns have similar heights,
    so it passes the first two lines. It fails when one example's logits sit
    far above another's: the lower column then becomes exp(-huge) = 0 in every
    entry, and 0/0 = NaN. That batch (one column lifted by 1000) is realistic
    enough (a saturated example next to ordinary ones) and is the only place
    the global max loses points, with a message saying why.

    A learner whose values are already wrong on ordinary logits is only asked
    for finite answers on the other two lines, so one mistake costs once.
    """
    k, b = distinct_sizes(rng, 2, 3, 6)
    ordinary = [{"z": rng.normal(0.0, 2.0, (k, 1))}, {"z": rng.normal(0.0, 2.0, (k, b))},
                _softmax_inputs(rng)]  # fmt: skip
    large = [_same_height(rng, (k, b), LARGE), _same_height(rng, (k, 1), -LARGE)]
    mixed, tall = _mixed_heights(rng, (k, b))
    found: list[str | None] = []
    # What to say about a NaN or an Inf that no classic mistake explains, case by case.
    hints: list[Callable[[Any], str | None]] = [
        lambda p: None,
        lambda p: OVERFLOW,
        lambda p: _which_column_broke(p, tall, mixed["z"].shape),
    ]
    for cases, hint in zip((ordinary, large, [mixed]), hints, strict=True):
        only_finite = bool(found) and found[0] is not None
        problem = None
        for inputs in cases:
            (expected,) = exercise.reference(**inputs)
            got, stop = learner_outputs(exercise, call, inputs)
            if stop is not None:
                return stop
            (p,) = got
            problem = problem_with("probabilities", p, expected, exercise.rtol, exercise.atol)
            if problem is None or (only_finite and all_finite(p)):
                problem = None
                continue
            diagnosis = _diagnosis(exercise, 0, inputs, p, expected)
            if diagnosis is None and not all_finite(p):
                diagnosis = hint(p)
            problem = explained(problem, diagnosis)
            break
        found.append(problem)
    names = ("probabilities", "large logits (±1000)", "a batch whose columns differ by 1000")
    lines = [Line(name, problem is None, problem or "") for name, problem in zip(names, found, strict=True)]
    return weighted_verdict(exercise, lines, [2.0, 1.0, 1.0])


def _which_column_broke(p: Any, tall: int, shape: tuple[int, ...]) -> str:
    """Overflow in the lifted column, or underflow in the others (a max over the whole array)."""
    try:
        bad = ~np.isfinite(np.asarray(p, dtype=np.float64))
    except (TypeError, ValueError):
        return OVERFLOW
    if bad.shape == shape and bad.any() and not bad[:, tall].any():
        return GLOBAL_MAX
    return OVERFLOW


SOFTMAX = Exercise(
    name="softmax",
    notebook=NOTEBOOK,
    signature="softmax(z) -> p",
    summary="p = exp(z - max) / Σ exp(z - max) down each column; z of shape (K, 1) or (K, B)",
    outputs=("p",),
    points=2,
    make_inputs=_softmax_inputs,
    reference=lambda z: (softmax(z),),
    misconceptions=SOFTMAX_MISCONCEPTIONS,
    revisit="softmax and overflow: subtract each column's max before exp",
    judge=_judge_softmax,
    refuses=NOT_YOURS,
    instead="write softmax yourself with numpy",
)


# -- softmax + cross-entropy for one example ------------------------------------------------------------
def _one_hot(k: int, target: int) -> np.ndarray:
    y = np.zeros((k, 1))
    y[target, 0] = 1.0
    return y


def _smoothed(k: int, target: int, eps: float = SMOOTHING) -> np.ndarray:
    """Label smoothing: 1 - eps on the target, eps spread evenly over all K classes."""
    return (1.0 - eps) * _one_hot(k, target) + eps / k


def _ce_inputs(rng: np.random.Generator, kind: str | None = None) -> Inputs:
    (k,) = distinct_sizes(rng, 1, 3, 7)
    kind = kind or str(rng.choice(["one-hot", "smoothed", "distribution"]))
    z = rng.normal(0.0, 1.5, (k, 1))
    target = int(rng.integers(k))
    if kind == "one-hot":
        y = _one_hot(k, target)
    elif kind == "smoothed":
        y = _smoothed(k, target)
    else:
        y = rng.dirichlet(np.ones(k)).reshape(k, 1)
    return {"z": z, "y": y}


def _ce_large_inputs(rng: np.random.Generator) -> Inputs:
    """Logits spread over ±1000 (exp overflows; some probabilities underflow to 0), soft labels.

    Every case the line tests is in every draw, whatever the seed: one logit
    above 800 (exp overflows), one below -800, at least 1600 under the top (its
    probability underflows to 0), and the label's own class is that one. The
    labels put some mass on every class, so a loss computed as the log of an
    underflowed probability is -inf, not merely inaccurate, and a loss that
    keeps only the label's log-probability takes the log of 0.
    """
    (k,) = distinct_sizes(rng, 1, 3, 7)
    top, bottom = rng.choice(k, size=2, replace=False)
    z = rng.uniform(-LARGE, LARGE, (k, 1))
    z[top, 0] = rng.uniform(0.8 * LARGE, LARGE)
    z[bottom, 0] = rng.uniform(-LARGE, -0.8 * LARGE)
    return {"z": z, "y": _smoothed(k, int(bottom))}


def _ce_reference(z: np.ndarray, y: np.ndarray) -> Outputs:
    logits = Tensor(z)
    loss = softmax_cross_entropy(logits, y)
    loss.backward()
    return float(loss.item()), logits.grad


def _ce_numeric(z: np.ndarray, y: np.ndarray) -> Outputs:
    return _lse_loss(z, y), numerical_gradient(lambda v: _lse_loss(v, y), z)


def _p(z: np.ndarray) -> np.ndarray:
    return softmax(z)


@_quiet
def _naive_ce(z: np.ndarray, y: np.ndarray) -> Outputs:
    p = _naive_softmax(z)
    return float(-np.sum(y * np.log(p))), p - y


CE_OVERFLOW = (
    "at large logits exp(z) overflows (exp(1000) is inf in float64) and the answer turns into NaN: "
    "subtract max(z) from every logit before exp; neither softmax nor the loss changes"
)
LOG_OF_ZERO = (
    "log of a probability that underflowed to 0 is -inf: compute log p_i = (z_i - m) - log Σ_j exp(z_j - m), "
    "with m = max(z), directly (log-sum-exp), instead of taking the log of softmax(z)"
)
LARGE_LOSS_HINT = (
    "at large logits the loss must come from log-sum-exp: log p_i = (z_i - m) - log Σ_j exp(z_j - m) "
    "with m = max(z); taking log(p), even with a small epsilon added, cannot give it"
)


def _label(y: np.ndarray) -> int:
    """The class a label puts the most weight on."""
    return int(np.argmax(y[:, 0]))


def _one_hot_loss(z: np.ndarray, y: np.ndarray) -> Outputs:
    return float(-_log_softmax(z)[_label(y), 0]), None


def _one_hot_gradient(z: np.ndarray, y: np.ndarray) -> Outputs:
    return None, _p(z) - _one_hot(z.shape[0], _label(y))


CE_MISCONCEPTIONS = (
    M(
        "sign_flip",
        "the sign is flipped: ∂L/∂z = p - y (prediction minus label). y - p points uphill: gradient "
        "descent with it makes the loss grow",
        lambda z, y: (None, y - _p(z)),
    ),
    M(
        "forgot_y",
        "this is p alone: differentiating the term -Σ y_i z_i of the loss gives -y, so ∂L/∂z = p - y",
        lambda z, y: (None, _p(z)),
    ),
    M(
        "dL_dp",
        "this is ∂L/∂p = -y/p, the gradient at the probabilities; the gradient at the logits goes "
        "through the softmax as well, and the two together give ∂L/∂z = p - y",
        _quiet(lambda z, y: (None, -y / _p(z))),
    ),
    M(
        "dz_flat",
        "dz holds the right numbers but lost its second axis: return it with the shape of z, a column (K, 1)",
        lambda z, y: (None, (_p(z) - y).ravel()),
    ),
    M("no_max_subtraction", CE_OVERFLOW, _naive_ce),
    M(
        "log_of_underflowed_p",
        LOG_OF_ZERO,
        _quiet(lambda z, y: (float(-np.sum(y * np.log(_p(z)))), None)),
    ),
    M(
        "unnormalised",
        "the log was taken of exp(z) rather than of the probabilities: log p_i = z_i - log Σ_j exp(z_j), "
        "so the loss has the extra log-sum-exp term",
        lambda z, y: (float(-np.sum(y * z)), None),
    ),
    M(
        "swapped",
        "labels and probabilities are swapped: L = -Σ_i y_i log p_i, the log of the model's "
        "probabilities weighted by the labels",
        _quiet(lambda z, y: (float(-np.sum(_p(z) * np.log(y))), None)),
    ),
    M(
        "log_outside",
        "for a label distribution the log goes inside the sum: L = -Σ_i y_i log p_i, not -log Σ_i y_i p_i "
        "(the two agree only for one-hot labels)",
        lambda z, y: (float(-np.log(np.sum(y * _p(z)))), None),
    ),
    M(
        "missing_minus",
        "the minus sign is missing: log p ≤ 0, so L = -Σ_i y_i log p_i is ≥ 0",
        lambda z, y: (float(np.sum(y * _log_softmax(z))), None),
    ),
    M(
        "mean_over_classes",
        "the cross-entropy sums over the K classes: L = -Σ_i y_i log p_i; a mean divides it by K",
        lambda z, y: (float(-np.mean(y * _log_softmax(z))), None),
    ),
    M(
        "one_hot_loss",
        "this loss only handles one-hot labels: it keeps the log-probability of one class, the label's. A "
        "soft label spreads its weight over the K classes, and the loss weighs the log-probability of every "
        "class by it: L = -Σ_i y_i log p_i (for a one-hot y the sum has a single term)",
        _one_hot_loss,
    ),
    M(
        "one_hot_gradient",
        "this gradient only handles one-hot labels: it subtracts 1 at the label's class alone. With a soft "
        "label the whole distribution is subtracted, one y_i per class: ∂L/∂z = p - y",
        _one_hot_gradient,
    ),
)


# softmax_ce is softmax followed by the loss: a mistake of the exercise softmax made inside it reads as
# that exercise says it. On one column the max over the whole array, or a sum over it, is the column's
# own: those two mistakes change nothing here, and no_max_subtraction has a message of its own above.
def _softmax_step(z: np.ndarray) -> Outputs:
    return (np.exp(_log_softmax(z)),)


def _ce_from_steps(steps: Mapping[str, Step], z: np.ndarray, y: np.ndarray) -> Outputs:
    (p,) = steps["softmax"](z=z)
    return float(-np.sum(y * np.log(p))), p - y


CE_STEPS = Composite(_ce_from_steps, {"softmax": _softmax_step})
CE_PARTS = (
    Part("softmax", SOFTMAX, "in the softmax step, p = softmax(z) (the rule of the exercise softmax, on one "
         "column)", ("rows", "row_max", "not_normalised")),
)  # fmt: skip


def _judge_softmax_ce(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """loss and dz on one-hot and soft labels, then one example with logits spread over ±1000.

    On the large example an output that was already wrong on ordinary inputs
    is only asked to be finite, so one mistake costs once.
    """
    names = exercise.outputs
    problems: dict[int, str] = {}
    for kind in ("one-hot", "smoothed", "distribution", "one-hot"):
        inputs, expected = draw_checked_inputs(replace(exercise, make_inputs=partial(_ce_inputs, kind=kind)),
                                               rng)  # fmt: skip
        got, stop = learner_outputs(exercise, call, inputs)
        if stop is not None:
            return stop
        for i, name in enumerate(names):
            if i in problems:
                continue
            problem = problem_with(name, got[i], expected[i], exercise.rtol, exercise.atol)
            if problem is not None:
                problems[i] = explained(problem, _diagnosis(exercise, i, inputs, got[i], expected[i]))
    inputs, expected = draw_checked_inputs(replace(exercise, make_inputs=_ce_large_inputs), rng)
    got, stop = learner_outputs(exercise, call, inputs)
    if stop is not None:
        return stop
    large = None
    for i, name in enumerate(names):
        problem = problem_with(name, got[i], expected[i], exercise.rtol, exercise.atol)
        if problem is None or (i in problems and all_finite(got[i])):
            continue
        diagnosis = _diagnosis(exercise, i, inputs, got[i], expected[i])
        if diagnosis is None:
            diagnosis = _large_logit_hint(i, got[i])
        large = f"{name} {explained(problem, diagnosis)}"
        break
    lines = [Line(name, i not in problems, problems.get(i, "")) for i, name in enumerate(names)]
    lines.append(Line("large logits (±1000)", large is None, large or ""))
    return weighted_verdict(exercise, lines, [1.0, 1.0, 1.0])


def _large_logit_hint(index: int, got: Any) -> str:
    """What to say about a wrong answer on huge logits that no classic mistake explains."""
    if index == 1:
        return CE_OVERFLOW
    try:
        loss = float(np.asarray(got, dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return LARGE_LOSS_HINT
    if np.isnan(loss):
        return CE_OVERFLOW
    return LOG_OF_ZERO if np.isinf(loss) else LARGE_LOSS_HINT


SOFTMAX_CE = Exercise(
    name="softmax_ce",
    notebook=NOTEBOOK,
    signature="softmax_ce(z, y) -> (loss, dz)",
    summary="L = -Σ y_i log softmax(z)_i for one example (K, 1), through log-sum-exp; dz = p - y",
    outputs=("loss", "dz"),
    points=3,
    make_inputs=_ce_inputs,
    reference=_ce_reference,
    numeric=_ce_numeric,
    misconceptions=(*CE_MISCONCEPTIONS, *CE_STEPS.inserted(CE_PARTS)),
    revisit="the log-sum-exp derivation of ∂L/∂z = p - y",
    judge=_judge_softmax_ce,
    refuses=NOT_YOURS,
    instead="write the loss and its gradient yourself",
)


# -- the softmax Jacobian ------------------------------------------------------------------------------
def _jacobian_inputs(rng: np.random.Generator) -> Inputs:
    (k,) = distinct_sizes(rng, 1, 3, 7)
    return {"z": rng.normal(0.0, 1.5, (k, 1))}


def _jacobian_reference(z: np.ndarray) -> Outputs:
    return (jacobian_by_vjp(_tensor_softmax, z),)


def _jacobian_numeric(z: np.ndarray) -> Outputs:
    """Central differences, one column per logit: column j is ∂p/∂z_j."""
    columns = []
    for j in range(z.shape[0]):
        step = np.zeros_like(z)
        step[j, 0] = 1e-5
        columns.append(((softmax(z + step) - softmax(z - step)) / 2e-5).ravel())
    return (np.stack(columns, axis=1),)


def _jac_variant(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], Outputs]:
    return lambda z: (f(softmax(z).ravel()),)


JACOBIAN = Exercise(
    name="softmax_jacobian",
    notebook=NOTEBOOK,
    signature="softmax_jacobian(z) -> J",
    summary="J_ij = ∂p_i/∂z_j = p_i (δ_ij - p_j): J = diag(p) - p pᵀ, shape (K, K)",
    outputs=("J",),
    points=2,
    make_inputs=_jacobian_inputs,
    reference=_jacobian_reference,
    numeric=_jacobian_numeric,
    misconceptions=(
        M(
            "diagonal_only",
            "only the diagonal p_i (1 - p_i) is here: every p_i depends on EVERY logit through the "
            "shared denominator, so the off-diagonal entries are -p_i p_j",
            _jac_variant(lambda p: np.diag(p * (1 - p))),
        ),
        M(
            "missing_diagonal",
            "this is -p pᵀ alone: the diagonal term diag(p) is missing (z_i appears in the numerator of "
            "p_i too, which adds p_i where j = i): J = diag(p) - p pᵀ",
            _jac_variant(lambda p: -np.outer(p, p)),
        ),
        M(
            "sign_flip",
            "the sign is flipped: raising z_i raises p_i, so the diagonal p_i (1 - p_i) is positive; "
            "J = diag(p) - p pᵀ",
            _jac_variant(lambda p: np.outer(p, p) - np.diag(p)),
        ),
        M(
            "log_softmax",
            "this is the Jacobian of log p (δ_ij - p_j): ∂p_i/∂z_j = p_i (δ_ij - p_j) carries the factor "
            "p_i in every row i",
            _jac_variant(lambda p: np.eye(p.size) - np.outer(np.ones_like(p), p)),
        ),
        M(
            "logits_for_p",
            "the formula was applied to the logits z: J = diag(p) - p pᵀ needs the probabilities "
            "p = softmax(z)",
            lambda z: (np.diag(z.ravel()) - np.outer(z.ravel(), z.ravel()),),
        ),
    ),
    revisit="the Jacobian route: J = diag(p) - p pᵀ",
    refuses=NOT_YOURS,
    instead="build the Jacobian yourself",
)

EXERCISES = (SOFTMAX, SOFTMAX_CE, JACOBIAN)
