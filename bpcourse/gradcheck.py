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

``check_gradient`` and ``check_directional`` also look at the scale of what
they check, so that neither a large function nor a tiny gradient gives a
verdict the numbers cannot support:

* The step grows with |x| beyond the course's range: s = h · max(1, |x| / 10).
  The course's inputs lie within |x| <= 10, where the step is h = 1e-5 as
  stated; at |x| = 1e6 an absolute step would be below what x's own round-off
  resolves.
* Round-off: f(x ± s) each carry an error of about ε |f|, so the difference
  quotient carries about ε (|f(x+s)| + |f(x-s)|) / s. An entry for which that is
  larger than the tolerance is *not checkable (round-off)*: its numeric slope
  is noise, so agreeing or disagreeing with it means nothing.
* The floor: atol = 1e-8 absorbs the finite difference's own error near zero.
  When backprop's answer passes only thanks to the floor, and the difference
  is far larger than the finite difference's estimated error (round-off plus a
  truncation estimate from a second difference at 2s), the floor is hiding a
  real disagreement: the entry is *not checkable (below the floor)*.
* A candidate failure is confirmed the same way: it fails when the difference
  exceeds the tolerance plus that error estimate, and is not checkable
  (round-off or truncation) otherwise.

On the course's inputs none of this applies and the stated rule decides every
entry; only entries that would fail, or pass by the floor alone, cost two more
evaluations of f. ``numerical_gradient`` and ``central_differences`` keep the
plain fixed step h: they are the formula the course teaches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpcourse import kinks

ATOL = 1e-8
RTOL = 1e-5
STEP = 1e-5
# Inputs with |x| up to this get the step h itself; beyond it the step is h · |x| / IN_RANGE.
IN_RANGE = 10.0
# Units of round-off (ε |f|) trusted in each evaluation of f.
ROUNDOFF_UNITS = 2.0
EPS = float(np.finfo(np.float64).eps)

# Why an entry was neither passed nor failed.
KINK = "kink"
ROUND_OFF = "round-off"
TRUNCATION = "truncation"
BELOW_FLOOR = "below the floor"
REASONS = {
    KINK: "x ± h crosses a kink",
    ROUND_OFF: "round-off in f(x ± h) swamps the difference: |f| is too large for the step; "
    "subtract a constant from f or pass a larger h",
    TRUNCATION: "the slope changes too fast for the step: its truncation error swamps the difference; "
    "pass a smaller h",
    BELOW_FLOOR: "the gradient is below what the floor atol resolves, and the two differ by more than "
    "the finite difference's error; pass a smaller atol or scale f up",
}

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


def step_sizes(x: np.ndarray, h: float = STEP) -> np.ndarray:
    """The step ``check_gradient`` takes for each entry: h within the course's range, h·|x|/10 beyond."""
    return h * np.maximum(1.0, np.abs(np.asarray(x, dtype=np.float64)) / IN_RANGE)


Index = tuple[int, ...]


@dataclass
class GradCheckResult:
    """What a gradient check found. ``bool(result)`` is True when it passed.

    ``not_checkable`` lists every entry that was neither passed nor failed, and
    ``reasons`` says why for each (``KINK``, ``ROUND_OFF``, ``TRUNCATION``,
    ``BELOW_FLOOR``). An entry at a kink is not differentiable there, so it does
    not stop a check from passing; the other reasons mean the numbers could not
    tell a right gradient from a wrong one, so the check has not passed (nor
    failed: ``failed`` counts only entries shown to be wrong).
    """

    passed: bool
    checked: int
    failed: int
    max_abs_error: float
    max_rel_error: float
    worst_index: Index | None
    not_checkable: list[Index] = field(default_factory=list)
    atol: float = ATOL
    rtol: float = RTOL
    reasons: dict[Index, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for index in self.not_checkable:
            self.reasons.setdefault(index, KINK)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def inconclusive(self) -> list[Index]:
        """Entries whose scale kept the check from judging them (every reason but a kink)."""
        return [i for i in self.not_checkable if self.reasons.get(i, KINK) != KINK]

    def __str__(self) -> str:
        if self.passed:
            verdict = "passed"
        elif self.failed:
            verdict = "FAILED"
        else:
            verdict = "INCONCLUSIVE"
        lines = [
            f"gradient check {verdict}: {self.checked - self.failed}/{self.checked} entries agree "
            f"(|a-b| <= {self.atol:g} + {self.rtol:g}·max(|a|,|b|))",
        ]
        if self.checked or not self.not_checkable:
            lines.append(
                f"  max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}"
                + (f", worst at index {self.worst_index}" if self.worst_index is not None else "")
            )
        for reason, explanation in REASONS.items():
            entries = [i for i in self.not_checkable if self.reasons.get(i, KINK) == reason]
            if not entries:
                continue
            shown = ", ".join(str(i) for i in entries[:5])
            more = "" if len(entries) <= 5 else f" and {len(entries) - 5} more"
            lines.append(
                f"  {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
                f"not checkable ({explanation}): {shown}{more}"
            )
        return "\n".join(lines)


def compare(
    analytic: np.ndarray,
    numeric: np.ndarray,
    skip: np.ndarray | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> GradCheckResult:
    """Compare two gradients entrywise by the stated rule, ignoring entries where ``skip`` is True."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"gradient shapes differ: analytic {analytic.shape}, numeric {numeric.shape}")
    skip = np.zeros(analytic.shape, dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    bad = mismatch(analytic, numeric, atol, rtol) & ~skip
    reasons = {tuple(int(i) for i in idx): KINK for idx in np.argwhere(skip)}
    return _summarize(analytic, numeric, ~skip, bad, reasons, atol, rtol)


def _summarize(
    analytic: np.ndarray,
    numeric: np.ndarray,
    considered: np.ndarray,
    bad: np.ndarray,
    reasons: dict[Index, str],
    atol: float,
    rtol: float,
) -> GradCheckResult:
    """The result for the entries judged (``considered``), ``bad`` those failed; ``reasons`` for the rest."""
    abs_err = np.where(considered, np.abs(analytic - numeric), 0.0)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(considered & (scale > 0), abs_err / scale, 0.0)
    # Rank by how far past its own tolerance each entry is: that is the worst entry.
    excess = np.where(considered, abs_err - (atol + rtol * scale), -np.inf)
    excess = np.where(np.isnan(excess) & considered, np.inf, excess)
    worst = None
    if considered.any():
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), analytic.shape))
    not_checkable = sorted(reasons)
    return GradCheckResult(
        passed=not bad.any() and all(reasons[i] == KINK for i in not_checkable),
        checked=int(considered.sum()),
        failed=int(bad.sum()),
        # np.max, not nanmax: a NaN anywhere must show in the summary.
        max_abs_error=float(np.max(abs_err)) if abs_err.size else 0.0,
        max_rel_error=float(np.max(rel_err)) if rel_err.size else 0.0,
        worst_index=worst,
        not_checkable=not_checkable,
        atol=atol,
        rtol=rtol,
        reasons={i: reasons[i] for i in not_checkable},
    )


@dataclass
class _Slope:
    """A central difference along one direction, with a bound on its round-off."""

    value: float
    noise: float
    kinked: bool


class _Prober:
    """Central differences of f around a fixed point x, along a coordinate or a direction."""

    def __init__(self, f: ScalarFunction, x: np.ndarray) -> None:
        self.f = f
        self.x = x
        with kinks.recording() as at_x:
            _evaluate(f, x.copy())
        self.at_x = list(at_x)

    def along(self, direction: np.ndarray, step: float) -> _Slope:
        """(f(x + s d) - f(x - s d)) / 2s for a unit vector d (the caller's array is not kept)."""
        with kinks.recording() as plus_sides:
            f_plus = _evaluate(self.f, self.x + step * direction)
        with kinks.recording() as minus_sides:
            f_minus = _evaluate(self.f, self.x - step * direction)
        value = (f_plus - f_minus) / (2.0 * step)
        # Each value is trusted to ROUNDOFF_UNITS·ε|f|; x ± s itself is rounded too,
        # which changes the true step by up to ε|x| (relative ε|x|/s of the slope).
        spread = float(np.max(np.abs(self.x * direction))) if self.x.size else 0.0
        noise = ROUNDOFF_UNITS * EPS * (abs(f_plus) + abs(f_minus)) / (2.0 * step)
        noise += abs(value) * EPS * spread / step
        kinked = not (kinks.same_sides(plus_sides, self.at_x) and kinks.same_sides(minus_sides, self.at_x))
        return _Slope(value, noise if np.isfinite(noise) else np.inf, kinked)


def _judge(a: float, slope: _Slope, wider: Callable[[], _Slope], atol: float, rtol: float) -> str | None:
    """None when ``a`` passes against ``slope``, "failed" when shown wrong, else why it is not checkable.

    ``wider`` gives the slope at twice the step: |wider - slope| estimates the
    truncation error (about 3x it) and shows round-off the bound missed. It is
    called only for an entry that fails the stated rule or passes on the floor alone.
    """
    n = slope.value
    magnitude = max(abs(a), abs(n))
    tol = atol + rtol * magnitude
    difference = abs(a - n)
    if not difference <= tol:  # the stated rule fails it (NaN included)
        if not np.isfinite(difference):
            return "failed"
        second = wider()
        if second.kinked:
            return "failed"
        roundoff = slope.noise + second.noise
        truncation = abs(second.value - n)
        if difference > tol + roundoff + truncation:
            return "failed"
        return ROUND_OFF if roundoff >= truncation else TRUNCATION
    if slope.noise > tol:
        return ROUND_OFF  # agreement with noise means nothing
    if difference <= rtol * magnitude + 10.0 * slope.noise:
        return None  # agrees to within the relative part and round-off: the floor is not needed
    second = wider()
    if second.kinked:
        return None
    error = slope.noise + second.noise + abs(second.value - n)
    return None if difference <= rtol * magnitude + 2.0 * error else BELOW_FLOOR


def check_gradient(
    f: ScalarFunction,
    x: np.ndarray,
    analytic: np.ndarray,
    h: float = STEP,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> GradCheckResult:
    """Full check: every entry of ``analytic`` against a central difference of ``f`` at ``x``.

    Costs two evaluations of f per entry: for small inputs. The step is h for
    |x| <= 10 and grows as h·|x|/10 beyond (``step_sizes``). Entries whose
    probes cross a kink, or whose scale keeps the finite difference from
    judging them (round-off, truncation, a gradient below the floor: see the
    module's docstring), are listed in ``not_checkable`` with their reason
    and counted neither as passed nor failed.
    """
    x = _require_float64(x)
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"gradient shapes differ: analytic {analytic.shape}, numeric {x.shape}")
    prober = _Prober(f, x)
    steps = step_sizes(x, h).reshape(-1)
    numeric = np.zeros_like(x)
    flat_numeric, flat_analytic = numeric.reshape(-1), analytic.reshape(-1)
    considered = np.ones(x.shape, dtype=bool)
    bad = np.zeros(x.shape, dtype=bool)
    reasons: dict[Index, str] = {}
    for i in range(x.size):
        unit = np.zeros(x.shape)
        unit.reshape(-1)[i] = 1.0
        slope = prober.along(unit, steps[i])
        flat_numeric[i] = slope.value
        index = tuple(int(k) for k in np.unravel_index(i, x.shape))
        verdict = (
            KINK
            if slope.kinked
            else _judge(
                float(flat_analytic[i]),
                slope,
                lambda u=unit, s=steps[i]: prober.along(u, 2.0 * s),
                atol,
                rtol,
            )
        )
        if verdict == "failed":
            bad[index] = True
        elif verdict is not None:
            considered[index] = False
            reasons[index] = verdict
    return _summarize(analytic, numeric, considered, bad, reasons, atol, rtol)


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

    For a random unit direction d, (f(x + s d) - f(x - s d)) / 2s must equal
    <analytic, d>. Two evaluations of f per direction, whatever the size of x.
    A direction whose probes cross a kink is redrawn (up to 10 times). The step
    s is h, or h·max|x|/10 for inputs beyond the course's range, and each
    direction is judged with the same scale checks as ``check_gradient``.
    """
    x = _require_float64(x)
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"gradient has shape {analytic.shape}, input has {x.shape}")
    rng = np.random.default_rng() if rng is None else rng
    prober = _Prober(f, x)
    step = float(np.max(step_sizes(x, h))) if x.size else h
    numeric, projected = np.zeros(directions), np.zeros(directions)
    considered = np.ones(directions, dtype=bool)
    bad = np.zeros(directions, dtype=bool)
    reasons: dict[Index, str] = {}
    for k in range(directions):
        for _attempt in range(10):
            d = rng.standard_normal(x.shape)
            d /= np.linalg.norm(d)
            slope = prober.along(d, step)
            if not slope.kinked:
                break
        numeric[k] = slope.value
        projected[k] = float(np.sum(analytic * d))
        verdict = (
            KINK
            if slope.kinked
            else _judge(projected[k], slope, lambda d=d: prober.along(d, 2.0 * step), atol, rtol)
        )
        if verdict == "failed":
            bad[k] = True
        elif verdict is not None:
            considered[k] = False
            reasons[(k,)] = verdict
    return _summarize(projected, numeric, considered, bad, reasons, atol, rtol)
