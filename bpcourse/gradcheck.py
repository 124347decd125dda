"""Gradient checking: backprop's answer against central finite differences.

Central difference: df/dx_i ≈ (f(x + h e_i) - f(x - h e_i)) / 2h. Its error has
two parts: truncation, about h² f'''/6, which shrinks with h, and round-off,
about ε |f| / h (ε the machine epsilon), which grows as h shrinks. In float64
(ε ≈ 2.2e-16) h = 1e-5 keeps both near 1e-10 for functions of moderate size.
In float32 (ε ≈ 1.2e-7) no h keeps both small, so float32 inputs are refused.

Two arrays agree entrywise when |a - b| <= atol + rtol · max(|a|, |b|)
(defaults atol = 1e-8, rtol = 1e-5): the relative part handles large entries,
the absolute part handles entries near zero, where a pure relative error
blows up on round-off alone.

An entry whose probes x ± h e_i land on different sides of a kink (ReLU at 0)
is reported as not checkable instead of failed: see ``bpcourse.kinks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpcourse import kinks

ATOL = 1e-8
RTOL = 1e-5
STEP = 1e-5

ScalarFunction = Callable[[np.ndarray], float]


def _require_float64(x: np.ndarray, what: str = "input") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.float32 or x.dtype == np.float16:
        raise TypeError(
            f"gradient checking needs float64 {what}s, got {x.dtype}: in single precision the "
            "round-off error of a finite difference is larger than its truncation error at "
            "every step size h, so the check cannot be trusted. Cast with .astype(np.float64)."
        )
    return x.astype(np.float64)


def _evaluate(f: ScalarFunction, x: np.ndarray) -> float:
    value = np.asarray(f(x), dtype=np.float64)
    if value.size != 1:
        raise ValueError(f"the function to check must return a scalar, it returned shape {value.shape}")
    return float(value.reshape(()))


def central_differences(f: ScalarFunction, x: np.ndarray, h: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient of scalar ``f`` at ``x``, and where it is not checkable.

    Returns ``(grad, kinked)``: ``grad`` has x's shape; ``kinked`` is a boolean
    array of the same shape, True where the probes x ± h e_i crossed a kink of
    an engine op (those entries of ``grad`` measure neither one-sided slope).
    ``x`` itself is not modified.
    """
    x = _require_float64(x)
    probe = x.copy()
    grad = np.zeros_like(x)
    kinked = np.zeros(x.shape, dtype=bool)
    with kinks.recording() as at_x:
        _evaluate(f, probe)
    at_x = list(at_x)
    flat_probe, flat_grad, flat_kinked = probe.reshape(-1), grad.reshape(-1), kinked.reshape(-1)
    for i in range(probe.size):
        original = flat_probe[i]
        flat_probe[i] = original + h
        with kinks.recording() as plus_sides:
            f_plus = _evaluate(f, probe)
        flat_probe[i] = original - h
        with kinks.recording() as minus_sides:
            f_minus = _evaluate(f, probe)
        flat_probe[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2.0 * h)
        flat_kinked[i] = not (kinks.same_sides(plus_sides, at_x) and kinks.same_sides(minus_sides, at_x))
    return grad, kinked


def numerical_gradient(f: ScalarFunction, x: np.ndarray, h: float = STEP) -> np.ndarray:
    """Central-difference gradient of scalar ``f`` at ``x`` (any shape, float64)."""
    return central_differences(f, x, h)[0]


def mismatch(a: np.ndarray, b: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> np.ndarray:
    """Boolean array, True where ``a`` and ``b`` disagree beyond atol + rtol·max(|a|, |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(a - b) <= atol + rtol * np.maximum(np.abs(a), np.abs(b)))
    return bad


@dataclass
class GradCheckResult:
    """What a gradient check found. ``bool(result)`` is True when it passed."""

    passed: bool
    checked: int
    failed: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...] | None
    not_checkable: list[tuple[int, ...]] = field(default_factory=list)
    atol: float = ATOL
    rtol: float = RTOL

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        lines = [
            f"gradient check {verdict}: {self.checked - self.failed}/{self.checked} entries agree "
            f"(|a-b| <= {self.atol:g} + {self.rtol:g}·max(|a|,|b|))",
            f"  max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}"
            + (f", worst at index {self.worst_index}" if self.worst_index is not None else ""),
        ]
        if self.not_checkable:
            shown = ", ".join(str(i) for i in self.not_checkable[:5])
            more = "" if len(self.not_checkable) <= 5 else f" and {len(self.not_checkable) - 5} more"
            lines.append(
                f"  {len(self.not_checkable)} entr{'y' if len(self.not_checkable) == 1 else 'ies'} "
                f"not checkable (x ± h crosses a kink): {shown}{more}"
            )
        return "\n".join(lines)


def compare(
    analytic: np.ndarray,
    numeric: np.ndarray,
    skip: np.ndarray | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> GradCheckResult:
    """Compare two gradients entrywise, ignoring entries where ``skip`` is True."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"gradient shapes differ: analytic {analytic.shape}, numeric {numeric.shape}")
    skip = np.zeros(analytic.shape, dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    considered = ~skip
    abs_err = np.where(considered, np.abs(analytic - numeric), 0.0)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(considered & (scale > 0), abs_err / scale, 0.0)
    bad = mismatch(analytic, numeric, atol, rtol) & considered
    # Rank by how far past its own tolerance each entry is: that is the worst entry.
    excess = np.where(considered, abs_err - (atol + rtol * scale), -np.inf)
    excess = np.where(np.isnan(excess) & considered, np.inf, excess)
    worst = None
    if considered.any():
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), analytic.shape))
    return GradCheckResult(
        passed=not bad.any(),
        checked=int(considered.sum()),
        failed=int(bad.sum()),
        # np.max, not nanmax: a NaN anywhere must show in the summary.
        max_abs_error=float(np.max(abs_err)) if abs_err.size else 0.0,
        max_rel_error=float(np.max(rel_err)) if rel_err.size else 0.0,
        worst_index=worst,
        not_checkable=[tuple(int(i) for i in idx) for idx in np.argwhere(skip)],
        atol=atol,
        rtol=rtol,
    )


def check_gradient(
    f: ScalarFunction,
    x: np.ndarray,
    analytic: np.ndarray,
    h: float = STEP,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> GradCheckResult:
    """Full check: every entry of ``analytic`` against a central difference of ``f`` at ``x``.

    Costs two evaluations of f per entry: for small inputs. Entries whose probes
    cross a kink are listed in ``not_checkable`` and not counted as failures.
    """
    numeric, kinked = central_differences(f, x, h)
    return compare(analytic, numeric, skip=kinked, atol=atol, rtol=rtol)


def check_directional(
    f: ScalarFunction,
    x: np.ndarray,
    analytic: np.ndarray,
    directions: int = 3,
    rng: np.random.Generator | None = None,
    h: float = STEP,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> GradCheckResult:
    """Cheap check for large inputs: compare directional derivatives along random directions.

    For a random unit direction d, (f(x + h d) - f(x - h d)) / 2h must equal
    <analytic, d>. Two evaluations of f per direction, whatever the size of x.
    A direction whose probes cross a kink is redrawn (up to 10 times).
    """
    x = _require_float64(x)
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"gradient has shape {analytic.shape}, input has {x.shape}")
    rng = np.random.default_rng() if rng is None else rng
    with kinks.recording() as at_x:
        _evaluate(f, x)
    at_x = list(at_x)
    numeric, projected, skipped = [], [], []
    for k in range(directions):
        for _attempt in range(10):
            d = rng.standard_normal(x.shape)
            d /= np.linalg.norm(d)
            with kinks.recording() as plus_sides:
                f_plus = _evaluate(f, x + h * d)
            with kinks.recording() as minus_sides:
                f_minus = _evaluate(f, x - h * d)
            if kinks.same_sides(plus_sides, at_x) and kinks.same_sides(minus_sides, at_x):
                break
        else:
            skipped.append(k)
        numeric.append((f_plus - f_minus) / (2.0 * h))
        projected.append(float(np.sum(analytic * d)))
    skip = np.zeros(directions, dtype=bool)
    skip[skipped] = True
    return compare(np.array(projected), np.array(numeric), skip=skip, atol=atol, rtol=rtol)
