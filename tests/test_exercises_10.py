"""Tests of the exercises of notebook 10 (``bpcourse.exercises.rules_transformers_need``).

For every exercise: a correct answer earns every point, also written another
way; each classic mistake, written as a learner would write it, fails and the
verdict names it; a stub reads "not implemented"; no verdict shows a number of
the reference answer; a function that hands the exercise to the engine scores
nothing. Then a small notebook is graded through the real sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import (
    SEEDS,
    Mistake,
    assert_every_misconception_named,
    assert_full_marks,
    assert_full_points,
    assert_mistake_named,
    assert_no_number_shown,
    assert_not_implemented,
    by_exercise,
    coded,
    grade_notebook,
    judging,
    lines_text,
    stub,
)

from bpcourse.clipping import clip_by_global_norm as engine_clip
from bpcourse.exercises import get
from bpcourse.exercises.core import draw_checked_inputs
from bpcourse.exercises.rules_transformers_need import batchnorm_forward
from bpcourse.tensor import Tensor

NOTEBOOK = "10_rules_transformers_need"
judged = judging(NOTEBOOK)


# -- correct answers -------------------------------------------------------------------------------
def matmul_backward(G, A, B):
    return G @ B.T, A.T @ G


def attention_scores_backward(G, X, Wq, Wk):
    scale = 1 / np.sqrt(Wq.shape[0])
    Q, K = Wq @ X, Wk @ X
    dQ = K @ G.T * scale
    dK = Q @ G * scale
    return Wq.T @ dQ + Wk.T @ dK, dQ @ X.T, dK @ X.T


def batchnorm_backward(G, X, gamma, eps):
    mu = X.mean(axis=1, keepdims=True)
    var = X.var(axis=1, keepdims=True)
    s = np.sqrt(var + eps)
    xhat = (X - mu) / s
    dxhat = gamma * G
    dX = (dxhat - dxhat.mean(axis=1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)) / s
    return dX, (G * xhat).sum(axis=1, keepdims=True), G.sum(axis=1, keepdims=True)


def clip_by_global_norm(grads, max_norm):
    total = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * min(1.0, max_norm / total) for g in grads]


def unbroadcast(grad, shape):
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def channel_bias_backward(G):
    return G.sum(axis=(1, 2, 3), keepdims=True)


CORRECT: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        matmul_backward,
        attention_scores_backward,
        batchnorm_backward,
        clip_by_global_norm,
        unbroadcast,
        channel_bias_backward,
    )
}


# Right answers written another way: the step-by-step graph of batch norm, np.einsum, a loop.
def batchnorm_by_steps(G, X, gamma, eps):
    B = X.shape[1]
    mu = X.mean(axis=1, keepdims=True)
    xc = X - mu
    var = (xc**2).sum(axis=1, keepdims=True) / B
    inv = 1 / np.sqrt(var + eps)
    xhat = xc * inv
    dxhat = G * gamma
    dvar = (dxhat * xc).sum(axis=1, keepdims=True) * -0.5 * inv**3
    dxc = dxhat * inv + dvar * 2 * xc / B
    dmu = -dxc.sum(axis=1, keepdims=True)
    return dxc + dmu / B, (G * xhat).sum(axis=1, keepdims=True), G.sum(axis=1, keepdims=True)


def matmul_by_einsum(G, A, B):
    return np.einsum("ik,jk->ij", G, B), np.einsum("ij,ik->jk", A, G)


def unbroadcast_by_loop(grad, shape):
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def clip_in_place(grads, max_norm):
    norm = np.linalg.norm(np.concatenate([g.ravel() for g in grads]))
    if norm > max_norm:
        for g in grads:
            g *= max_norm / norm
    return grads


OTHER_WAYS = [
    ("batchnorm_backward", batchnorm_by_steps),
    ("matmul_backward", matmul_by_einsum),
    ("unbroadcast", unbroadcast_by_loop),
    ("clip_by_global_norm", clip_in_place),
]


# -- classic mistakes, as a learner writes them ---------------------------------------------------
def _attention(dq_g=lambda G: G.T, dk_g=lambda G: G, paths="both", scaled=True, by_d_k=False):
    def learner(G, X, Wq, Wk):
        scale = (1 / Wq.shape[0] if by_d_k else 1 / np.sqrt(Wq.shape[0])) if scaled else 1.0
        Q, K = Wq @ X, Wk @ X
        dQ = K @ dq_g(G) * scale
        dK = Q @ dk_g(G) * scale
        dX = {"both": Wq.T @ dQ + Wk.T @ dK, "q": Wq.T @ dQ, "k": Wk.T @ dK}[paths]
        return dX, dQ @ X.T, dK @ X.T

    return learner


def _batchnorm(mu_path=True, var_path=True, ddof_forward=0, ddof_backward=0, use_gamma=True, use_eps=True):
    def learner(G, X, gamma, eps):
        eps = eps if use_eps else 0.0
        B = X.shape[1]
        mu = X.mean(axis=1, keepdims=True)
        var = X.var(axis=1, ddof=ddof_forward, keepdims=True)
        xhat = (X - mu) / np.sqrt(var + eps)
        dxhat = (gamma if use_gamma else 1.0) * G
        dX = dxhat.copy()
        if mu_path:
            dX -= dxhat.mean(axis=1, keepdims=True)
        if var_path:
            dX -= xhat * (dxhat * xhat).sum(axis=1, keepdims=True) / (B - ddof_backward)
        dX /= np.sqrt(var + eps)
        return dX, (G * xhat).sum(axis=1, keepdims=True), G.sum(axis=1, keepdims=True)

    return learner


def _batchnorm_params(dgamma, dbeta):
    def learner(G, X, gamma, eps):
        dX, dg, db = batchnorm_backward(G, X, gamma, eps)
        xhat = (X - X.mean(axis=1, keepdims=True)) / np.sqrt(X.var(axis=1, keepdims=True) + eps)
        return dX, dg if dgamma is None else dgamma(G, X, xhat), db if dbeta is None else dbeta(G)

    return learner


def _row_sums(v):
    return v.sum(axis=1, keepdims=True)


def _clip(scales):
    def learner(grads, max_norm):
        return [g * s for g, s in zip(grads, scales(grads, max_norm), strict=True)]

    return learner


def _norm(g):
    return np.sqrt(np.sum(g**2))


def _unbroadcast_no_leading(grad, shape):
    extra = grad.ndim - len(shape)
    return grad.sum(axis=tuple(extra + i for i, n in enumerate(shape) if n == 1), keepdims=True)


def _unbroadcast_no_keepdims(grad, shape):
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1))


def _unbroadcast_from_the_left(grad, shape):
    grad = grad.sum(axis=tuple(range(len(shape), grad.ndim)))
    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def _unbroadcast_left_keeping_leading(grad, shape):
    for i, n in enumerate(shape):
        if n == 1:
            grad = grad.sum(axis=i, keepdims=True)
    return grad


def _unbroadcast_mean(grad, shape):
    grad = grad.mean(axis=tuple(range(grad.ndim - len(shape))))
    return grad.mean(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


SUM_AT_X = "the SUM of both contributions"
MISTAKES = [
    # matmul_backward
    Mistake("matmul_backward", lambda G, A, B: (B @ G.T, A.T @ G), ("(transposed?)", "the transpose of dA"),
            "partial", ("dA",)),
    Mistake("matmul_backward", lambda G, A, B: (G @ B.T, G.T @ A), ("(transposed?)", "the transpose of dB"),
            "partial", ("dB",)),
    Mistake("matmul_backward", lambda G, A, B: (A.T @ G, G @ B.T), ("in each other's place",)),
    Mistake("matmul_backward", lambda G, A, B: (np.ones_like(G) @ B.T, A.T @ np.ones_like(G)),
            ("only the local derivatives",)),
    Mistake("matmul_backward", lambda G, A, B: (G @ B, A.T @ G), ("Write the shape under each factor",),
            "error"),
    # attention_scores_backward
    Mistake("attention_scores_backward", _attention(paths="q"), (SUM_AT_X, "only the path through Q"),
            "partial", ("dX",)),
    Mistake("attention_scores_backward", _attention(paths="k"), (SUM_AT_X, "only the path through K"),
            "partial", ("dX",)),
    Mistake("attention_scores_backward", _attention(dq_g=lambda G: G), ("dQ uses G where Gᵀ belongs",),
            "partial", ("dX", "dWq")),
    Mistake("attention_scores_backward", _attention(dk_g=lambda G: G.T), ("dK uses Gᵀ where G belongs",),
            "partial", ("dX", "dWk")),
    Mistake("attention_scores_backward", _attention(scaled=False), ("the factor 1/√d_k",)),
    Mistake("attention_scores_backward", _attention(by_d_k=True), ("divides by d_k where",)),
    # batchnorm_backward
    Mistake("batchnorm_backward", _batchnorm(mu_path=False, var_path=False),
            ("as if μ and σ² were constants",), "partial", ("dX",)),
    Mistake("batchnorm_backward", _batchnorm(mu_path=False), ("missing the path through the mean μ",),
            "partial", ("dX",)),
    Mistake("batchnorm_backward", _batchnorm(var_path=False), ("missing the path through the variance σ²",),
            "partial", ("dX",)),
    Mistake("batchnorm_backward", _batchnorm(ddof_backward=1), ("this derivative of σ² divides by B - 1",),
            "partial", ("dX",)),
    Mistake("batchnorm_backward", _batchnorm(ddof_forward=1), ("recompute the forward pass with the biased",),
            "partial", ("dX", "dgamma")),
    Mistake("batchnorm_backward", _batchnorm(ddof_forward=1, ddof_backward=1),
            ("consistent but not the layer's",), "partial", ("dX", "dgamma")),
    Mistake("batchnorm_backward", _batchnorm(use_gamma=False), ("missing the factor γ",), "partial", ("dX",)),
    Mistake("batchnorm_backward", _batchnorm(use_eps=False), ("ε is missing",), "partial", ("dX", "dgamma")),
    Mistake("batchnorm_backward",
            _batchnorm_params(lambda G, X, xhat: _row_sums(G * (X - X.mean(axis=1, keepdims=True))), None),
            ("dγ uses X - μ",), "partial", ("dgamma",)),
    Mistake("batchnorm_backward", _batchnorm_params(lambda G, X, xhat: G * xhat, None),
            ("dγ still has one column per example",), "partial", ("dgamma",)),
    Mistake("batchnorm_backward", _batchnorm_params(None, lambda G: G),
            ("dβ still has one column per example",), "partial", ("dbeta",)),
    Mistake("batchnorm_backward", _batchnorm_params(None, lambda G: G.sum(axis=0, keepdims=True)),
            ("the sum runs over the wrong axis",), "partial", ("dbeta",)),
    Mistake("batchnorm_backward", _batchnorm_params(None, lambda G: G.mean(axis=1, keepdims=True)),
            ("dβ is the mean over the batch",), "partial", ("dbeta",)),
    # clip_by_global_norm
    Mistake("clip_by_global_norm", _clip(lambda grads, c: [min(1.0, c / _norm(g)) for g in grads]),
            ("clipped by its own norm",), None),
    Mistake("clip_by_global_norm",
            _clip(lambda grads, c: [c / np.sqrt(sum(_norm(g) ** 2 for g in grads))] * len(grads)),
            ("scaled up to it",)),
    Mistake("clip_by_global_norm", _clip(lambda grads, c: [min(1.0, c / sum(_norm(g) for g in grads))] * 3),
            ("not the sum of the arrays' norms",)),
    Mistake("clip_by_global_norm", _clip(lambda gs, c: [min(1.0, c / sum(_norm(g) ** 2 for g in gs))] * 3),
            ("divides by the squared norm",)),
    Mistake("clip_by_global_norm", lambda grads, c: [np.clip(g, -c, c) for g in grads],
            ("clipped to [-max_norm, max_norm]",), None),
    Mistake("clip_by_global_norm", lambda grads, c: list(grads), ("came back unchanged",), None),
    # unbroadcast
    Mistake("unbroadcast", _unbroadcast_no_leading, ("leading axes that broadcasting added are still",)),
    Mistake("unbroadcast", _unbroadcast_no_keepdims, ("the axes of size 1 are gone",)),
    Mistake("unbroadcast", _unbroadcast_from_the_left, ("lined up from the left",)),
    Mistake("unbroadcast", _unbroadcast_left_keeping_leading, ("still has every axis it came with",)),
    Mistake("unbroadcast", _unbroadcast_mean, ("averages over the broadcast axes",)),
    # channel_bias_backward
    Mistake("channel_bias_backward", lambda G: G.sum(axis=3, keepdims=True),
            ("only the batch axis was summed",)),
    Mistake("channel_bias_backward", lambda G: G.sum(axis=(1, 2), keepdims=True),
            ("only height and width were summed",)),
    Mistake("channel_bias_backward", lambda G: G.sum(axis=(1, 2, 3)), ("the right numbers, but flat",)),
    Mistake("channel_bias_backward", lambda G: G.sum(axis=(0, 1, 2), keepdims=True),
            ("the channel axis was summed",)),
    Mistake("channel_bias_backward", lambda G: G.mean(axis=(1, 2, 3), keepdims=True),
            ("averages where the SUM belongs",)),
]  # fmt: skip


def _id(mistake: Mistake) -> str:
    return f"{mistake.exercise}: {mistake.phrases[-1][:40]}"


# -- the registry ----------------------------------------------------------------------------------
def test_the_notebook_registers_its_six_exercises_in_order_with_their_points():
    exercises = coded(NOTEBOOK)  # the why-questions are tested in test_why_questions.py
    assert [e.name for e in exercises] == list(CORRECT)
    assert [e.points for e in exercises] == [2, 3, 4, 2, 3, 1]
    assert all(e.reference is not None and e.numeric is not None for e in exercises)


def test_the_clipping_exercise_refuses_the_engines_clipping_too():
    assert "bpcourse.clipping" in get("clip_by_global_norm", NOTEBOOK).refuses


# -- inputs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
def test_inputs_have_different_sizes_and_both_oracles_agree(name, rng):
    exercise = get(name, NOTEBOOK)
    for _ in range(12):
        inputs, expected = draw_checked_inputs(exercise, rng)
        for value in expected:
            assert isinstance(value, np.ndarray) and value.dtype == np.float64
        if name == "matmul_backward":
            assert len({*inputs["A"].shape, inputs["B"].shape[1]}) == 3
        if name == "attention_scores_backward":
            (d, T), (d_k, _) = inputs["X"].shape, inputs["Wq"].shape
            assert len({d, T, d_k}) == 3 and inputs["G"].shape == (T, T)
        if name == "batchnorm_backward":
            n, B = inputs["X"].shape
            assert n != B and B >= 3 and inputs["gamma"].shape == (n, 1) and inputs["eps"] >= 0.02
        if name == "unbroadcast":
            grad, shape = inputs["grad"], inputs["shape"]
            assert grad.ndim > len(shape) and 1 in shape and len(set(grad.shape)) == grad.ndim
        if name == "channel_bias_backward":
            assert len(set(inputs["G"].shape)) == 4


def test_clipping_trials_are_above_below_above_with_max_norm_between_the_norms():
    make = get("clip_by_global_norm", NOTEBOOK).judge.__globals__["_clip_schedule"]()
    rng = np.random.default_rng(3)
    for trial in range(6):
        inputs = make(rng)
        norms = [np.linalg.norm(g) for g in inputs["grads"]]
        total = np.sqrt(sum(v**2 for v in norms))
        if trial % 3 == 1:
            assert inputs["max_norm"] > total
        else:
            assert min(norms) < inputs["max_norm"] < max(norms)


def test_the_batchnorm_forward_gives_rows_of_mean_beta_and_spread_gamma(rng):
    inputs = get("batchnorm_backward", NOTEBOOK).make_inputs(rng)
    X, gamma, eps = inputs["X"], inputs["gamma"], inputs["eps"]
    beta = rng.standard_normal(gamma.shape)
    Y = batchnorm_forward(X, gamma, beta, eps)
    var = X.var(axis=1, keepdims=True)
    assert np.allclose(Y.mean(axis=1, keepdims=True), beta)
    assert np.allclose(Y.std(axis=1, keepdims=True), np.abs(gamma) * np.sqrt(var / (var + eps)))


def test_the_engines_clipping_keeps_short_gradients_and_shortens_long_ones(rng):
    grads = [rng.standard_normal((3, 2)), rng.standard_normal((3, 1))]
    total = np.sqrt(sum(np.sum(g**2) for g in grads))
    kept, norm = engine_clip(grads, 2 * total)
    assert norm == pytest.approx(total) and all(
        np.array_equal(a, b) for a, b in zip(kept, grads, strict=True)
    )
    short, _ = engine_clip(grads, total / 4)
    assert np.sqrt(sum(np.sum(g**2) for g in short)) == pytest.approx(total / 4)
    with pytest.raises(ValueError, match="max_norm must be a positive number"):
        engine_clip(grads, 0.0)
    with pytest.raises(ValueError, match="the list of gradients is empty"):
        engine_clip([], 1.0)
    zeros, norm = engine_clip([np.zeros((2, 2))], 1.0)
    assert norm == 0.0 and np.array_equal(zeros[0], np.zeros((2, 2)))


# -- correct answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(CORRECT))
def test_a_correct_answer_earns_every_point(name, seed):
    assert_full_points(judged(CORRECT[name], name, seed), get(name, NOTEBOOK).points)


@pytest.mark.parametrize(("name", "learner"), OTHER_WAYS, ids=[n for n, _ in OTHER_WAYS])
def test_right_answers_written_differently_pass_too(name, learner):
    for seed in SEEDS:
        assert_full_points(judged(learner, name, seed))


def test_a_clipping_that_returns_a_tuple_passes_and_one_returning_the_norm_too_is_told_so():
    assert judged(lambda grads, c: tuple(clip_by_global_norm(grads, c)), "clip_by_global_norm").passed
    text = str(judged(lambda grads, c: (clip_by_global_norm(grads, c), 1.0), "clip_by_global_norm"))
    assert "should return 3 values" in text


def test_engine_answers_score_nothing():
    def via_engine(grad, shape):
        from bpcourse.tensor import unbroadcast as engine_unbroadcast

        return engine_unbroadcast(grad, shape)

    def clip_via_engine(grads, max_norm):
        return engine_clip(grads, max_norm)[0]

    def matmul_via_tensor(G, A, B):
        a, b = Tensor(A), Tensor(B)
        (a @ b).backward(G)
        return a.grad, b.grad

    for name, learner in [("unbroadcast", via_engine), ("clip_by_global_norm", clip_via_engine),
                          ("matmul_backward", matmul_via_tensor)]:  # fmt: skip
        result = judged(learner, name)
        assert result.status == "delegated" and result.score == 0, str(result)


# -- classic mistakes ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", (0, 7))
@pytest.mark.parametrize("mistake", MISTAKES, ids=_id)
def test_each_classic_mistake_fails_and_is_named(mistake, seed):
    assert_mistake_named(judged(mistake.learner, mistake.exercise, seed), mistake)


def test_every_misconception_of_the_registry_is_exercised_by_a_learner_above():
    assert_every_misconception_named(NOTEBOOK, MISTAKES, judged)


@pytest.mark.parametrize("name", list(CORRECT))
def test_a_stub_reads_not_implemented(name):
    assert_not_implemented(judged(stub, name))


# -- nothing leaks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CORRECT))
@pytest.mark.parametrize("how", ["scaled", "misconception"])
def test_no_verdict_shows_a_number_of_the_reference(name, how):
    exercise = get(name, NOTEBOOK)
    seen: list[dict[str, Any]] = []
    mistake = next(m for m in MISTAKES if m.exercise == name and m.status != "error")
    names = list(exercise.make_inputs(np.random.default_rng(0)))

    def learner(*args):
        seen.append(dict(zip(names, args, strict=True)))
        if how == "misconception":
            return mistake.learner(*args)
        out = CORRECT[name](*args)
        if isinstance(out, list | tuple):
            return type(out)(1.5 * v + 0.25 for v in out)
        return 1.5 * out + 0.25

    result = judged(learner, name)
    assert not result.passed and seen
    shown = [output for inputs in seen for output in exercise.reference(**inputs)]
    assert_no_number_shown(result, shown + [inputs["max_norm"] for inputs in seen if "max_norm" in inputs])


# -- through the sandbox -----------------------------------------------------------------------------
SOURCES = {
    "matmul_backward": "def matmul_backward(G, A, B):\n    return G @ B.T, A.T @ G",
    "attention_scores_backward": (
        "def attention_scores_backward(G, X, Wq, Wk):\n"
        "    s = 1 / np.sqrt(Wq.shape[0])\n"
        "    dQ, dK = (Wk @ X) @ G.T * s, (Wq @ X) @ G * s\n"
        "    return Wq.T @ dQ + Wk.T @ dK, dQ @ X.T, dK @ X.T"
    ),
    "batchnorm_backward": (
        "def batchnorm_backward(G, X, gamma, eps):\n"
        "    s = np.sqrt(X.var(axis=1, keepdims=True) + eps)\n"
        "    xhat = (X - X.mean(axis=1, keepdims=True)) / s\n"
        "    d = gamma * G\n"
        "    dX = (d - d.mean(axis=1, keepdims=True) - xhat * (d * xhat).mean(axis=1, keepdims=True)) / s\n"
        "    return dX, (G * xhat).sum(axis=1, keepdims=True), G.sum(axis=1, keepdims=True)"
    ),
    "clip_by_global_norm": (
        "def clip_by_global_norm(grads, max_norm):\n"
        "    total = np.sqrt(sum((g**2).sum() for g in grads))\n"
        "    return [g * min(1, max_norm / total) for g in grads]"
    ),
    "unbroadcast": (
        "def unbroadcast(grad, shape):\n"
        "    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))\n"
        "    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)"
    ),
    "channel_bias_backward": "def channel_bias_backward(G):\n    return G.sum(axis=(1, 2, 3), keepdims=True)",
}
WRONG_SOURCES = {
    **SOURCES,
    "attention_scores_backward": SOURCES["attention_scores_backward"].replace("Wq.T @ dQ + Wk.T @ dK",
                                                                              "Wq.T @ dQ"),
    "batchnorm_backward": SOURCES["batchnorm_backward"].replace("X.var(axis=1, keepdims=True)",
                                                                "X.var(axis=1, ddof=1, keepdims=True)"),
    "clip_by_global_norm": SOURCES["clip_by_global_norm"].replace("min(1, max_norm / total)",
                                                                  "max_norm / total"),
    "unbroadcast": "from bpcourse.tensor import unbroadcast as engine_unbroadcast\n\n"
    "def unbroadcast(grad, shape):\n    return engine_unbroadcast(grad, shape)",
}  # fmt: skip


def test_a_correct_notebook_gets_full_marks_through_the_sandbox(tmp_path):
    assert_full_marks(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, SOURCES, seed=5), 15)


def test_mistakes_are_diagnosed_through_the_sandbox(tmp_path):
    result = by_exercise(grade_notebook(tmp_path / f"{NOTEBOOK}.ipynb", NOTEBOOK, WRONG_SOURCES, seed=5))
    text = {name: lines_text(entry) for name, entry in result.items()}
    assert result["matmul_backward"]["status"] == "passed"
    assert (
        result["attention_scores_backward"]["status"] == "partial"
        and SUM_AT_X in text["attention_scores_backward"]
    )
    assert result["batchnorm_backward"]["status"] == "partial" and "biased" in text["batchnorm_backward"]
    assert (
        result["clip_by_global_norm"]["status"] != "passed"
        and "scaled up to it" in text["clip_by_global_norm"]
    )
    assert result["unbroadcast"]["status"] == "delegated" and result["unbroadcast"]["score"] == 0
    assert "uses bpcourse.tensor.unbroadcast" in text["unbroadcast"]
