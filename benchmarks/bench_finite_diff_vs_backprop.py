"""Why backpropagation: a full finite-difference gradient against one backward pass.

For one-hidden-layer tanh networks with P parameters (input 10, hidden h, output 1,
P = 12 h + 1, batch of 8 columns, float64, loss = (1/B) sum_k 1/2 ||a_k - y_k||^2):

  finite differences  the central difference (L(theta + eps e_i) - L(theta - eps e_i)) / (2 eps)
                      for every parameter i: 2P forward passes written in plain numpy
  backprop            one forward + backward of bpcourse.tensor (affine, tanh, mse, backward)

The finite-difference cost grows like P (times the cost of a forward pass, which
also grows with P), the backprop cost like one forward pass, so their ratio grows
roughly like P. The two gradients are compared first (they must agree to ~1e-7).

Run:  python benchmarks/bench_finite_diff_vs_backprop.py [--max-params P] [--pairs N]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import machine_info, median, process_summary, ratio_summary

from bpcourse.tensor import Tensor, affine, mse, zero_grad

N_IN, N_OUT, BATCH = 10, 1, 8
ALL_SIZES = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
EPS = 1e-6
MIN_PAIRS = 3

perf_counter = time.perf_counter


def hidden_for(target: int) -> int:
    """Hidden width h whose parameter count (N_IN + 1) h + (h + 1) N_OUT is closest to ``target``."""
    per_unit = N_IN + 1 + N_OUT
    return max(1, round((target - N_OUT) / per_unit))


class Problem:
    """A network whose parameters all live in one flat vector ``theta`` (views W1, b1, W2, b2)."""

    def __init__(self, hidden: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        shapes = [(hidden, N_IN), (hidden, 1), (N_OUT, hidden), (N_OUT, 1)]
        sizes = [r * c for r, c in shapes]
        self.P = sum(sizes)
        self.theta = rng.standard_normal(self.P) * 0.5
        views, start = [], 0
        for (r, c), n in zip(shapes, sizes, strict=True):
            views.append(self.theta[start : start + n].reshape(r, c))
            start += n
        self.W1, self.b1, self.W2, self.b2 = views
        self.X = rng.standard_normal((N_IN, BATCH))
        self.Y = rng.standard_normal((N_OUT, BATCH))
        # The engine's parameters share memory with theta, so both always see the same numbers.
        self.params = [Tensor(v) for v in views]
        self.Xc = Tensor(self.X, requires_grad=False)

    def loss_numpy(self) -> float:
        A = np.tanh(self.W1 @ self.X + self.b1)
        diff = self.W2 @ A + self.b2 - self.Y
        return 0.5 * float((diff * diff).sum()) / BATCH

    def grad_finite_diff(self) -> np.ndarray:
        theta, f = self.theta, self.loss_numpy
        g = np.empty_like(theta)
        for i in range(theta.size):
            old = theta[i]
            theta[i] = old + EPS
            up = f()
            theta[i] = old - EPS
            down = f()
            theta[i] = old
            g[i] = (up - down) / (2 * EPS)
        return g

    def grad_backprop(self) -> list[np.ndarray]:
        W1, b1, W2, b2 = self.params
        zero_grad(self.params)
        loss = mse(affine(W2, affine(W1, self.Xc, b1).tanh(), b2), self.Y)
        loss.backward()
        return [p.grad for p in self.params]


def time_backprop(problem: Problem, min_time: float = 0.01) -> float:
    """Seconds per forward + backward, averaged over enough calls to last ``min_time``."""
    n, elapsed = 1, 0.0
    while True:
        t0 = perf_counter()
        for _ in range(n):
            problem.grad_backprop()
        elapsed = perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / n
        n *= 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--max-params",
        type=int,
        default=10000,
        help=f"largest target P (sizes: {', '.join(map(str, ALL_SIZES))}; default 10000)",
    )
    parser.add_argument("--pairs", type=int, default=7, help="interleaved pairs per size (default 7)")
    parser.add_argument(
        "--budget",
        type=float,
        default=45.0,
        help="seconds for the whole run: sizes get fewer pairs (at least 3) or are skipped past it",
    )
    args = parser.parse_args(argv)
    wall_start = perf_counter()

    print("bench_finite_diff_vs_backprop: 2P forward passes (central differences) vs one backward pass")
    print(machine_info())
    print(
        f"networks    {N_IN} -> h (tanh) -> {N_OUT}, P = {N_IN + 1 + N_OUT} h + {N_OUT}, batch {BATCH}, "
        f"float64, eps {EPS:g}; {args.pairs} interleaved pairs per size"
    )
    print()
    header = (
        f"{'P':>6} {'h':>5} {'finite diff ms':>15} {'backprop ms':>12} {'ratio':>9} {'[p25-p75]':>17} "
        f"{'ratio/P':>8} {'fwd us':>7} {'max rel err':>12}"
    )
    print(header)
    print("-" * len(header))
    for target in (s for s in ALL_SIZES if s <= args.max_params):
        problem = Problem(hidden_for(target))
        # Same answer first: the two gradients must agree.
        t0 = perf_counter()
        fd = problem.grad_finite_diff()
        t_check = perf_counter() - t0
        bp = np.concatenate([g.ravel() for g in problem.grad_backprop()])
        rel_err = float(np.abs(fd - bp).max() / max(np.abs(bp).max(), 1e-30))
        if rel_err > 1e-5:
            print(f"P={problem.P}: finite differences and backprop disagree (relative error {rel_err:.1e})")
            return 1
        remaining = args.budget - (perf_counter() - wall_start)
        pairs = min(args.pairs, int(remaining / (1.1 * t_check)))
        if pairs < MIN_PAIRS:
            print(f"{problem.P:>6} {problem.W1.shape[0]:>5}  skipped: over the time budget (see --budget)")
            break
        t_fd, t_bp = [], []
        for i in range(pairs):
            for which in ("fd", "bp") if i % 2 == 0 else ("bp", "fd"):
                if which == "fd":
                    t0 = perf_counter()
                    problem.grad_finite_diff()
                    t_fd.append(perf_counter() - t0)
                else:
                    t_bp.append(time_backprop(problem))
        fwd_time = median(t_fd) / (2 * problem.P)
        m, lo, hi = ratio_summary(t_fd, t_bp)
        print(
            f"{problem.P:>6} {problem.W1.shape[0]:>5} {1e3 * median(t_fd):>15.2f} "
            f"{1e3 * median(t_bp):>12.4f} {m:>8.0f}x {f'[{lo:.0f}-{hi:.0f}]':>17} {m / problem.P:>8.3f} "
            f"{1e6 * fwd_time:>7.2f} {rel_err:>12.1e}" + (f"  ({pairs} pairs)" if pairs < args.pairs else "")
        )
    print(
        "\nnotes: ratio = median of per-pair ratios (finite-difference gradient time / backprop time);"
        "\n       fwd us = finite-difference time / 2P, the cost of one numpy forward pass;"
        "\n       max rel err = max |g_fd - g_bp| / max |g_bp|."
    )
    print(process_summary(wall_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
