"""Tests of the gradient checker (``bpcourse.gradcheck``) itself.

A checker is only useful if it passes correct gradients and catches wrong
ones; both directions are tested here, along with its two refinements: the
atol + rtol rule and kink awareness.
"""

from __future__ import annotations

import numpy as np
import pytest

from bpcourse.gradcheck import (
    ATOL,
    BELOW_FLOOR,
    ROUND_OFF,
    TRUNCATION,
    check_directional,
    check_gradient,
    compare,
    numerical_gradient,
    step_sizes,
)
from bpcourse.tensor import Tensor, affine


# -- central differences ---------------------------------------------------------------------
@pytest.mark.parametrize("h", [1e-5, 1e-2, 0.5])
def test_central_differences_are_exact_on_a_quadratic(h: float, rng: np.random.Generator) -> None:
    """f(x + h e) - f(x - h e) = 2h ∂f/∂x exactly when f is quadratic: no truncation error at any h."""
    a = rng.standard_normal((4, 4))
    b = rng.standard_normal(4)
    x = rng.standard_normal(4)

    def f(v: np.ndarray) -> float:
        return float(v @ a @ v + b @ v + 3.0)

    numeric = numerical_gradient(f, x, h=h)
    np.testing.assert_allclose(numeric, (a + a.T) @ x + b, rtol=0, atol=1e-9)


def test_central_differences_truncation_error_shrinks_as_h_squared() -> None:
    """For sin, the error is about h² |f'''| / 6: dividing h by 10 divides it by 100."""
    x = np.array([0.7])
    errors = [
        abs(numerical_gradient(lambda v: float(np.sin(v[0])), x, h=h)[0] - np.cos(0.7)) for h in (1e-2, 1e-3)
    ]
    assert errors[0] == pytest.approx(1e-4 * np.cos(0.7) / 6, rel=1e-2)
    assert errors[1] == pytest.approx(errors[0] / 100, rel=2e-2)


def test_input_is_not_modified(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2))
    before = x.copy()
    check_gradient(lambda v: float(np.sum(v**2)), x, 2 * x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_single_precision_input_is_refused(dtype: type) -> None:
    x = np.ones(3, dtype=dtype)

    def f(v: np.ndarray) -> float:
        return float(np.sum(v**2))

    for call in (
        lambda: numerical_gradient(f, x),
        lambda: check_gradient(f, x, 2 * x),
        lambda: check_directional(f, x, 2 * x),
    ):
        with pytest.raises(TypeError, match="float64"):
            call()


# -- catching wrong gradients -----------------------------------------------------------------
def test_correct_gradient_passes(rng: np.random.Generator) -> None:
    m = rng.standard_normal((4, 4))
    x = rng.standard_normal((4, 4))
    result = check_gradient(lambda v: float(np.sum(m * np.tanh(v))), x, m * (1 - np.tanh(x) ** 2))
    assert result.passed and bool(result)
    assert (result.checked, result.failed) == (16, 0)
    assert result.max_abs_error < 1e-9
    assert result.not_checkable == []
    assert "passed" in str(result)


def test_transposed_gradient_is_caught(rng: np.random.Generator) -> None:
    """f(X) = Σ M ⊙ X has gradient M; handing in Mᵀ (a classic slip) must fail."""
    n = 4
    m = rng.standard_normal((n, n))
    x = rng.standard_normal((n, n))
    result = check_gradient(lambda v: float(np.sum(m * v)), x, m.T)
    assert not result.passed and not bool(result)
    assert result.checked == n * n
    assert result.failed == n * n - n  # the diagonal of Mᵀ is right
    diff = np.abs(m - m.T)
    assert result.max_abs_error == pytest.approx(diff.max(), rel=1e-6)
    i, j = np.unravel_index(np.argmax(diff), diff.shape)
    assert result.worst_index in {(int(i), int(j)), (int(j), int(i))}
    text = str(result)
    assert "FAILED" in text and str(result.worst_index) in text


def test_scaled_gradient_is_caught(rng: np.random.Generator) -> None:
    """A gradient off by a factor of 2: relative error 1/2 everywhere, worst at the largest entry."""
    m = rng.standard_normal((3, 5))
    x = rng.standard_normal((3, 5))
    result = check_gradient(lambda v: float(np.sum(m * v)), x, 2 * m)
    assert not result.passed
    assert result.failed == m.size
    assert result.max_rel_error == pytest.approx(0.5, rel=1e-6)
    assert result.max_abs_error == pytest.approx(np.abs(m).max(), rel=1e-6)
    worst = np.unravel_index(np.argmax(np.abs(m)), m.shape)
    assert result.worst_index == tuple(int(k) for k in worst)


def test_one_wrong_entry_is_located(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 4))
    grad = 2 * x
    grad[1, 2, 0] += 1e-3
    result = check_gradient(lambda v: float(np.sum(v**2)), x, grad)
    assert not result.passed
    assert result.failed == 1
    assert result.worst_index == (1, 2, 0)
    assert result.max_abs_error == pytest.approx(1e-3, rel=1e-4)


# -- the atol + rtol rule ---------------------------------------------------------------------
def test_near_zero_entries_pass_on_the_absolute_tolerance() -> None:
    """f = Σ x³ at x = 0: the true slope is 0, the central difference gives h² = 1e-10.

    Relative to the larger of the two the error is 100 %, so a pure relative rule
    would fail a correct gradient; the error is far below atol, so the check passes.
    """
    x = np.array([0.0, 1e-7, 1.0, -2.0])

    def f(v: np.ndarray) -> float:
        return float(np.sum(v**3))

    analytic = 3 * x**2
    result = check_gradient(f, x, analytic)
    assert result.passed
    assert result.max_rel_error > 0.5
    assert result.max_abs_error < ATOL
    # The stated rule without its floor fails the correct slope at x = 0...
    numeric = numerical_gradient(f, x)
    assert compare(analytic, numeric, atol=0.0).failed >= 1
    # ...and the scale-aware check, seeing that 1e-10 is within the finite
    # difference's own error, says it cannot judge those entries either way.
    pure_relative = check_gradient(f, x, analytic, atol=0.0)
    assert not pure_relative.passed
    assert pure_relative.failed == 0
    assert (0,) in pure_relative.not_checkable and (0,) in pure_relative.inconclusive


def test_compare_rule_on_hand_picked_numbers() -> None:
    analytic = np.array([0.0, 1.0, 1e6, 1e-9])
    numeric = np.array([5e-9, 1.0 + 5e-6, 1e6 + 5.0, 3e-9])
    assert compare(analytic, numeric).passed
    assert not compare(analytic, numeric + np.array([0, 2e-5, 0, 0])).passed
    assert not compare(analytic, numeric + np.array([0, 0, 20.0, 0])).passed


def test_nan_gradient_entry_fails_and_is_located() -> None:
    analytic = np.array([1.0, np.nan, 3.0])
    result = compare(analytic, np.array([1.0, 2.0, 3.0]))
    assert not result.passed
    assert result.failed == 1
    assert result.worst_index == (1,)


# -- kinks -------------------------------------------------------------------------------------
def test_kinked_entries_are_not_checkable_rather_than_failed(rng: np.random.Generator) -> None:
    """A two-layer relu network, gradient w.r.t. the first bias b1.

    Unit 0's pre-activation is exactly 0 and unit 1's is 0.4 h: the probes
    b1 ± h e_i cross the kink for those two entries only.
    """
    h = 1e-5
    m, n, batch = 6, 3, 1
    w1, x = rng.standard_normal((m, n)), rng.standard_normal((n, batch))
    w2, b2 = rng.standard_normal((2, m)), rng.standard_normal((2, 1))
    weights = rng.standard_normal((2, batch))
    b1 = rng.uniform(0.5, 1.5, (m, 1)) * np.sign(rng.standard_normal((m, 1))) - w1 @ x
    b1[0, 0] = -(w1 @ x)[0, 0]
    b1[1, 0] = -(w1 @ x)[1, 0] + 0.4 * h

    def net(b: Tensor | np.ndarray) -> Tensor:
        return affine(w2, affine(w1, x, b).relu(), b2)

    z1 = affine(w1, x, b1).data
    assert z1[0, 0] == 0.0 and 0 < z1[1, 0] < h and np.all(np.abs(z1[2:]) > 100 * h)

    leaf = Tensor(b1)
    net(leaf).backward(weights)
    assert leaf.grad[0, 0] == 0.0  # relu'(0) = 0

    def f(b: np.ndarray) -> float:
        return float(np.sum(net(b).data * weights))

    result = check_gradient(f, b1, leaf.grad, h=h)
    assert result.passed, str(result)
    assert result.not_checkable == [(0, 0), (1, 0)]
    assert result.checked == m - 2 and result.failed == 0
    assert "not checkable" in str(result)

    # without kink awareness, the two entries would be reported as failures
    from bpcourse.gradcheck import central_differences

    numeric, kinked = central_differences(f, b1, h=h)
    assert kinked[:, 0].tolist() == [True, True] + [False] * (m - 2)
    naive = compare(leaf.grad, numeric)
    assert not naive.passed and naive.failed == 2


def test_scalar_relu_kink_is_not_checkable() -> None:
    from bpcourse.scalar import Value

    def f(v: np.ndarray) -> float:
        return (Value(float(v[0])).relu() + Value(float(v[1])).relu() * 2.0).data

    x = np.array([0.0, 1.0])
    result = check_gradient(f, x, np.array([0.0, 2.0]))
    assert result.passed
    assert result.not_checkable == [(0,)]
    assert result.checked == 1


# -- directional checks for large inputs --------------------------------------------------------
class Counted:
    """f(x) = Σ r ⊙ tanh(x) + ½ Σ x², counting its evaluations."""

    def __init__(self, r: np.ndarray) -> None:
        self.r = r
        self.calls = 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        return float(np.sum(self.r * np.tanh(x)) + 0.5 * np.sum(x * x))


def test_directional_check_on_a_large_input(rng: np.random.Generator) -> None:
    x = rng.standard_normal(10_000)
    f = Counted(rng.standard_normal(10_000))
    right = f.r * (1 - np.tanh(x) ** 2) + x
    result = check_directional(f, x, right, directions=4, rng=rng)
    assert result.passed, str(result)
    assert result.checked == 4
    assert f.calls == 1 + 2 * 4  # independent of the input size

    wrong = f.r * (1 - np.tanh(x)) + x  # forgot to square tanh
    result = check_directional(f, x, wrong, directions=4, rng=rng)
    assert not result.passed
    assert result.failed >= 1

    slightly_wrong = right.copy()
    slightly_wrong[rng.integers(0, 10_000, 50)] *= -1.0  # a few signs flipped
    assert not check_directional(f, x, slightly_wrong, directions=4, rng=rng).passed


def test_directional_check_rejects_a_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        check_directional(lambda v: float(np.sum(v)), np.ones(4), np.ones(5))


# -- scale: a step relative to |x|, round-off, the floor -----------------------------------------
def sum_of_squares(v: np.ndarray) -> float:
    return float(np.sum(v**2))


@pytest.mark.parametrize("scale", [1e5, 1e6])
def test_large_inputs_pass_with_a_step_that_grows_with_x(scale: float, rng: np.random.Generator) -> None:
    """Σx² at |x| ~ 1e5 and 1e6: a fixed step h = 1e-5 fails the right gradient (round-off in f)."""
    x = rng.standard_normal(9) * scale
    fixed_step = compare(2 * x, numerical_gradient(sum_of_squares, x))
    assert fixed_step.failed >= 1  # what an absolute step gives
    result = check_gradient(sum_of_squares, x, 2 * x)
    assert result.passed, str(result)
    assert (result.checked, result.failed, result.not_checkable) == (9, 0, [])
    wrong = 2 * x
    wrong[4] *= 1.001
    caught = check_gradient(sum_of_squares, x, wrong)
    assert caught.failed == 1 and caught.worst_index == (4,)


def test_the_step_is_h_within_the_course_range_and_grows_beyond() -> None:
    x = np.array([0.0, -1.0, 2.5, 10.0, -40.0, 1e6])
    np.testing.assert_array_equal(step_sizes(x), [1e-5, 1e-5, 1e-5, 1e-5, 4e-5, 1.0])
    seen: list[np.ndarray] = []

    def f(v: np.ndarray) -> float:
        seen.append(v.copy())
        return float(np.sum(v**3))

    check_gradient(f, x[:4], 3 * x[:4] ** 2)
    assert len(seen) == 1 + 2 * 4  # a passing check costs two evaluations per entry, as stated
    for i in range(4):
        plus, minus = seen[1 + 2 * i], seen[2 + 2 * i]
        assert plus[i] == x[i] + 1e-5 and minus[i] == x[i] - 1e-5


def test_an_offset_too_large_for_the_step_is_not_checkable_rather_than_failed(
    rng: np.random.Generator,
) -> None:
    """f = Σx² + 1e12: round-off in f(x ± h) (about 1e-4) swamps the difference 4h·x (about 4e-5)."""
    x = rng.standard_normal(9)

    def f(v: np.ndarray) -> float:
        return float(np.sum(v**2) + 1e12)

    assert compare(2 * x, numerical_gradient(f, x)).failed == 9  # the stated rule alone
    result = check_gradient(f, x, 2 * x)
    assert not result.passed and not bool(result)
    assert result.failed == 0 and result.checked == 0
    assert result.not_checkable == [(i,) for i in range(9)] == result.inconclusive
    assert set(result.reasons.values()) == {ROUND_OFF}
    text = str(result)
    assert "INCONCLUSIVE" in text and "round-off" in text and "FAILED" not in text
    # ...and an all-zero answer is not passed either, though f(x + h) == f(x - h) may agree with it
    assert not check_gradient(f, x, np.zeros(9)).passed
    # a gradient wrong by far more than the round-off still fails
    assert check_gradient(f, x, 2 * x + 1e3).failed == 9


def test_a_step_too_coarse_for_the_function_is_not_checkable_rather_than_failed() -> None:
    """sin at x ~ 1e5 with the step 1e-5·|x|/10 = 0.1: the truncation error swamps the difference."""
    x = np.array([1e5, 1.3e5, -2e5])

    def f(v: np.ndarray) -> float:
        return float(np.sum(np.sin(v)))

    result = check_gradient(f, x, np.cos(x))
    assert result.failed == 0 and not result.passed
    assert set(result.reasons.values()) == {TRUNCATION}
    assert "pass a smaller h" in str(result)
    assert check_gradient(f, x, np.cos(x), h=1e-8).passed
    assert check_gradient(f, x, -np.cos(x)).failed == 3


@pytest.mark.parametrize(
    ("size", "answer"),
    [(5e-9, "zero"), (1e-9, "zero"), (5e-10, "zero"), (5e-10, "wrong sign"), (5e-10, "3x")],
)
def test_wrong_tiny_gradients_are_not_passed(size: float, answer: str, rng: np.random.Generator) -> None:
    """f = c Σx² with a gradient of about ``size``: the floor 1e-8 lets every wrong answer through.

    The finite difference itself is exact to about 1e-20 here, so the check sees
    that the answer and the slope really differ and does not pass them.
    """
    x = rng.uniform(0.5, 1.5, 9)
    c = size / 2

    def f(v: np.ndarray) -> float:
        return c * float(np.sum(v**2))

    right = 2 * c * x
    wrong = {"zero": np.zeros(9), "wrong sign": -right, "3x": 3 * right}[answer]
    assert compare(wrong, numerical_gradient(f, x)).passed  # the stated rule alone passes it
    result = check_gradient(f, x, wrong)
    assert not result.passed
    assert result.failed + len(result.inconclusive) == 9
    assert result.failed == 0 or answer != "zero"
    if result.inconclusive:
        assert set(result.reasons.values()) == {BELOW_FLOOR}
        assert "below what the floor" in str(result)
    correct = check_gradient(f, x, right)
    assert correct.passed and correct.checked == 9, str(correct)


def test_tiny_gradients_of_a_function_of_ordinary_size_are_not_passed_by_the_floor(
    rng: np.random.Generator,
) -> None:
    """f = Σ x[:3]² + 3e-9 Σ x[3:]: an answer that leaves out the tiny term (slope 3e-9) is wrong."""
    x = rng.standard_normal(6)

    def f(v: np.ndarray) -> float:
        return float(np.sum(v[:3] ** 2) + 3e-9 * np.sum(v[3:]))

    right = np.concatenate([2 * x[:3], np.full(3, 3e-9)])
    assert check_gradient(f, x, right).passed
    left_out = np.concatenate([2 * x[:3], np.zeros(3)])
    assert compare(left_out, numerical_gradient(f, x)).passed  # the stated rule alone
    result = check_gradient(f, x, left_out)
    assert not result.passed and result.failed == 0
    assert result.checked == 3 and result.reasons == {(3,): BELOW_FLOOR, (4,): BELOW_FLOOR, (5,): BELOW_FLOOR}


def test_exact_zero_gradients_still_pass_on_the_floor(rng: np.random.Generator) -> None:
    """Dead ReLU units: 0 against a slope of round-off size passes on the floor, as the course states."""
    w = rng.standard_normal((4, 3))
    x = rng.standard_normal(3)
    b = np.array([-20.0, -20.0, 0.5, 0.7])  # units 0 and 1 are dead whatever the weights

    def f(v: np.ndarray) -> float:
        return float(np.sum(np.maximum(v.reshape(4, 3) @ x + b, 0.0) ** 2))

    z = w @ x + b
    analytic = (2 * np.maximum(z, 0.0))[:, None] * x[None, :]
    assert np.all(analytic[:2] == 0.0)
    result = check_gradient(f, w.ravel(), analytic.ravel())
    assert result.passed, str(result)
    assert result.checked == 12 and result.not_checkable == []


def test_directional_check_is_scale_aware_too(rng: np.random.Generator) -> None:
    x = rng.standard_normal(500) * 1e6
    assert check_directional(sum_of_squares, x, 2 * x, rng=rng).passed
    assert check_directional(sum_of_squares, x, 2.001 * x, rng=rng).failed == 3

    y = rng.standard_normal(500)

    def offset(v: np.ndarray) -> float:
        return float(np.sum(v**2) + 1e12)

    result = check_directional(offset, y, 2 * y, rng=rng)
    assert not result.passed and result.failed == 0
    assert result.reasons == {(0,): ROUND_OFF, (1,): ROUND_OFF, (2,): ROUND_OFF}
