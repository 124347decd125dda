"""Small network pieces: initialisation statistics, layers, MLP, residual block, SGD."""

import numpy as np
import pytest

from bpcourse.gradcheck import check_gradient
from bpcourse.nn import MLP, SGD, Affine, ResidualBlock, init_weight
from bpcourse.tensor import Tensor, affine, mse, no_grad, softmax_cross_entropy


@pytest.mark.parametrize(
    ("scheme", "variance"),
    [("xavier", 2.0 / (300 + 200)), ("he", 2.0 / 300), ("normal", 0.5**2)],
)
def test_init_variance_matches_the_scheme(scheme, variance):
    W = init_weight(200, 300, scheme, np.random.default_rng(0), scale=0.5)
    assert W.shape == (200, 300)
    # 60,000 draws: the sample variance is within 2% of the target with overwhelming probability.
    assert W.var() == pytest.approx(variance, rel=0.02)
    assert abs(W.mean()) < 5 * np.sqrt(variance / W.size)


def test_unknown_init_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown init scheme"):
        init_weight(2, 3, "uniformish")


def test_affine_layer_shapes_and_gradients(rng):
    layer = Affine(4, 3, "xavier", rng)
    X = Tensor(rng.normal(size=(4, 5)), requires_grad=False)
    Z = layer(X)
    assert Z.shape == (3, 5)
    G = rng.normal(size=(3, 5))
    Z.backward(G)
    np.testing.assert_allclose(layer.W.grad, G @ X.data.T, rtol=1e-12)
    np.testing.assert_allclose(layer.b.grad, G.sum(axis=1, keepdims=True), rtol=1e-12)


def _mlp_loss_of_first_weight(model, X, Y):
    W = model.layers[0].W

    def f(w):
        saved = W.data.copy()
        W.data[...] = w
        try:
            return softmax_cross_entropy(model(X), Y).item()
        finally:
            W.data[...] = saved

    return f


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("residual", [False, True])
def test_mlp_gradients_agree_with_finite_differences(rng, activation, residual):
    model = MLP([3, 5, 5, 4], activation, "xavier", rng, residual=residual)
    X = rng.normal(size=(3, 6))
    Y = np.eye(4)[:, rng.integers(0, 4, 6)]
    loss = softmax_cross_entropy(model(X), Y)
    loss.backward()
    W = model.layers[0].W
    result = check_gradient(_mlp_loss_of_first_weight(model, X, Y), W.data.copy(), W.grad)
    assert result.passed, str(result)


def test_residual_flag_adds_identity_paths_only_where_widths_agree(rng):
    model = MLP([3, 5, 5, 5, 2], "tanh", rng=rng, residual=True)
    assert model.residual == [False, True, True, False]


def test_residual_block_gradient_is_u_plus_jacobian_transpose_u(rng):
    block = ResidualBlock(4, "tanh", "xavier", rng)
    x = Tensor(rng.normal(size=(4, 1)))
    h = block(x)
    u = rng.normal(size=(4, 1))
    h.backward(u)
    W = block.layer.W.data
    a = np.tanh(block.preactivation.data)
    J_F = (1 - a**2) * W  # d tanh(Wx + b)/dx, row i scaled by tanh'(z_i)
    np.testing.assert_allclose(x.grad, u + J_F.T @ u, rtol=1e-12)


def test_sgd_lowers_the_loss_and_zero_grad_clears(rng):
    model = MLP([2, 8, 1], "tanh", rng=rng)
    X = rng.normal(size=(2, 32))
    Y = np.sin(X[:1] + X[1:])
    opt = SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = mse(model(X), Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    opt.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_mlp_records_preactivations_for_diagnostics(rng):
    model = MLP([3, 4, 2], rng=rng)
    model(rng.normal(size=(3, 2)))
    assert [z.shape for z in model.preactivations] == [(4, 2), (2, 2)]


def test_sgd_step_refuses_parameters_without_a_gradient(rng):
    model = MLP([2, 3, 1], "tanh", rng=rng)
    opt = SGD(model.parameters(), lr=0.1)
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=r"SGD.step: parameters 0 .* no gradient"):
        opt.step()  # backward() never ran
    X, Y = rng.normal(size=(2, 4)), rng.normal(size=(1, 4))
    with no_grad():
        loss = mse(model(X), Y)
    with pytest.raises(RuntimeError, match="no graph"):
        loss.backward()
    with pytest.raises(RuntimeError, match="SGD.step"):
        opt.step()
    unused = Tensor(np.ones((2, 2)), label="unused")
    mse(model(X), Y).backward()
    with pytest.raises(RuntimeError, match=r"parameter 4 \(Tensor\(unused: leaf"):
        SGD([*model.parameters(), unused]).step()
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)  # no parameter moved
    opt.step()
    assert any(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before, strict=True))


def test_sgd_leaves_the_callers_arrays_alone_and_stale_graphs_are_refused(rng):
    W0, b0 = rng.normal(size=(1, 2)), np.zeros((1, 1))
    kept = W0.copy(), b0.copy()
    W, b = Tensor(W0), Tensor(b0)
    X, Y = rng.normal(size=(2, 4)), rng.normal(size=(1, 4))
    opt = SGD([W, b], lr=0.1)
    loss = mse(affine(W, X, b), Y)
    loss.backward()
    opt.step()
    assert not np.array_equal(W.data, W0)
    np.testing.assert_array_equal(W0, kept[0])
    np.testing.assert_array_equal(b0, kept[1])
    with pytest.raises(RuntimeError, match="updated in place"):
        loss.backward()  # the graph of the step before
    opt.zero_grad()
    mse(affine(W, X, b), Y).backward()  # a graph built after the step is fine
    opt.step()


def test_mlp_does_not_copy_a_plain_batch(rng):
    model = MLP([2, 3, 1], rng=rng)
    X = rng.normal(size=(2, 4))
    model(X)
    first = model.preactivations[0]
    assert any(np.shares_memory(p.data, X) for p in first.parents)
