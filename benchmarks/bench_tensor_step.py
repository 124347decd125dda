"""One training step of an MLP 784-256-256-10: the tensor engine against plain numpy.

A step is forward + backward (no optimizer update) of

    Z1 = W1 X + b1, A1 = relu(Z1), Z2 = W2 A1 + b2, A2 = relu(Z2), Z3 = W3 A2 + b3,
    L  = mean over the batch of the softmax cross-entropy of Z3 against one-hot labels Y,

with X of shape (784, 128) (one example per column). Contenders, run side by side
in this process and interleaved round by round:

  engine       bpcourse.tensor: affine / relu / softmax_cross_entropy, loss.backward(),
               zero_grad(params) at the start of each step (leaf gradient buffers are reused)
  numpy        the same step written out by hand with the textbook formulas
  matmul-only  just the 8 matrix products of that step (3 forward, 5 backward): a floor
  torch        PyTorch CPU autograd on the same model, only if ``import torch`` works

Before timing, the engine's loss and gradients are checked against the hand-written
numpy step (np.allclose), so both do the same work.

Run:  python benchmarks/bench_tensor_step.py [--dtype float64|float32|both] [--rounds N] [--inner K]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable

import numpy as np
from _common import machine_info, median, process_summary, quartiles, ratio_summary, verdict

from bpcourse.tensor import Tensor, affine, softmax_cross_entropy, zero_grad

SIZES = (784, 256, 256, 10)
BATCH = 128
TARGET_VS_NUMPY = 1.10
TARGET_VS_MATMUL = 1.20
TARGET_BWD_FWD = 1.25
MIN_ROUNDS = 10

perf_counter = time.perf_counter


def minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def make_problem(dtype: np.dtype, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights (He init), small random biases, a batch X and one-hot labels Y, all of ``dtype``."""
    rng = np.random.default_rng(seed)
    p: dict[str, np.ndarray] = {}
    for i, (n, m) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True), start=1):
        p[f"W{i}"] = (rng.standard_normal((m, n)) * np.sqrt(2.0 / n)).astype(dtype)
        p[f"b{i}"] = (0.01 * rng.standard_normal((m, 1))).astype(dtype)
    p["X"] = rng.standard_normal((SIZES[0], BATCH)).astype(dtype)
    labels = rng.integers(0, SIZES[-1], size=BATCH)
    Y = np.zeros((SIZES[-1], BATCH), dtype=dtype)
    Y[labels, np.arange(BATCH)] = 1
    p["Y"] = Y
    p["labels"] = labels
    return p


# -- (a) the engine -----------------------------------------------------------------------
class EngineStep:
    """Parameters created once; each step zeroes the leaf gradients, runs forward, then backward."""

    def __init__(self, p: dict[str, np.ndarray]) -> None:
        self.W1, self.b1 = Tensor(p["W1"]), Tensor(p["b1"])
        self.W2, self.b2 = Tensor(p["W2"]), Tensor(p["b2"])
        self.W3, self.b3 = Tensor(p["W3"]), Tensor(p["b3"])
        self.params = [self.W1, self.b1, self.W2, self.b2, self.W3, self.b3]
        self.X = Tensor(p["X"], requires_grad=False)
        self.Y = p["Y"]
        self.loss: Tensor | None = None

    def forward(self) -> Tensor:
        A1 = affine(self.W1, self.X, self.b1).relu()
        A2 = affine(self.W2, A1, self.b2).relu()
        Z3 = affine(self.W3, A2, self.b3)
        return softmax_cross_entropy(Z3, self.Y)

    def timed_step(self) -> tuple[float, float, float]:
        """(zero_grad, forward, backward) seconds of one step."""
        t0 = perf_counter()
        zero_grad(self.params)
        t1 = perf_counter()
        loss = self.forward()
        t2 = perf_counter()
        loss.backward()
        t3 = perf_counter()
        self.loss = loss
        return t1 - t0, t2 - t1, t3 - t2

    def grads(self) -> dict[str, np.ndarray]:
        names = ("W1", "b1", "W2", "b2", "W3", "b3")
        return {n: t.grad for n, t in zip(names, self.params, strict=True)}


# -- (b) hand-written numpy -------------------------------------------------------------------
class NumpyStep:
    """The textbook forward and backward formulas, no autodiff."""

    def __init__(self, p: dict[str, np.ndarray]) -> None:
        self.p = p
        self.loss = 0.0
        self.g: dict[str, np.ndarray] = {}
        self._cache: tuple = ()

    def forward(self) -> float:
        p = self.p
        W1, b1, W2, b2, W3, b3, X, Y = (p[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3", "X", "Y"))
        B = X.shape[1]
        Z1 = W1 @ X + b1
        A1 = np.maximum(Z1, 0)
        Z2 = W2 @ A1 + b2
        A2 = np.maximum(Z2, 0)
        Z3 = W3 @ A2 + b3
        S = Z3 - Z3.max(axis=0, keepdims=True)  # stable softmax
        E = np.exp(S)
        total = E.sum(axis=0, keepdims=True)
        P = E / total
        loss = -(Y * (S - np.log(total))).sum() / B
        self._cache = (Z1, A1, Z2, A2, P)
        return loss

    def backward(self) -> None:
        p = self.p
        W2, W3, X, Y = p["W2"], p["W3"], p["X"], p["Y"]
        Z1, A1, Z2, A2, P = self._cache
        B = X.shape[1]
        dZ3 = (P - Y) / B
        dW3 = dZ3 @ A2.T
        db3 = dZ3.sum(axis=1, keepdims=True)
        dA2 = W3.T @ dZ3
        dZ2 = dA2 * (Z2 > 0)
        dW2 = dZ2 @ A1.T
        db2 = dZ2.sum(axis=1, keepdims=True)
        dA1 = W2.T @ dZ2
        dZ1 = dA1 * (Z1 > 0)
        dW1 = dZ1 @ X.T
        db1 = dZ1.sum(axis=1, keepdims=True)
        self.g = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}

    def timed_step(self) -> tuple[float, float, float]:
        t1 = perf_counter()
        self.loss = self.forward()
        t2 = perf_counter()
        self.backward()
        t3 = perf_counter()
        return 0.0, t2 - t1, t3 - t2


# -- (c) the matrix products alone ------------------------------------------------------------
class MatmulStep:
    """The 3 forward and 5 backward products of the step, on fixed inputs of the right shapes."""

    def __init__(self, p: dict[str, np.ndarray], ref: NumpyStep) -> None:
        self.W1, self.W2, self.W3, self.X = p["W1"], p["W2"], p["W3"], p["X"]
        _, self.A1, _, self.A2, P = ref._cache
        B = self.X.shape[1]
        self.G3 = (P - p["Y"]) / B
        self.G2 = self.W3.T @ self.G3
        self.G1 = self.W2.T @ self.G2

    def timed_step(self) -> tuple[float, float, float]:
        t1 = perf_counter()
        self.W1 @ self.X
        self.W2 @ self.A1
        self.W3 @ self.A2
        t2 = perf_counter()
        self.G3 @ self.A2.T  # dW3
        self.W3.T @ self.G3  # dA2
        self.G2 @ self.A1.T  # dW2
        self.W2.T @ self.G2  # dA1
        self.G1 @ self.X.T  # dW1
        t3 = perf_counter()
        return 0.0, t2 - t1, t3 - t2


# -- (d) PyTorch, when installed ----------------------------------------------------------------
def make_torch_step(p: dict[str, np.ndarray]) -> Callable[[], tuple[float, float, float]] | None:
    try:
        import torch
        import torch.nn.functional as F
    except Exception:
        return None

    dtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[p["X"].dtype]
    params = []
    for i in (1, 2, 3):
        W = torch.tensor(p[f"W{i}"], dtype=dtype, requires_grad=True)
        b = torch.tensor(p[f"b{i}"][:, 0], dtype=dtype, requires_grad=True)
        params += [W, b]
    W1, b1, W2, b2, W3, b3 = params
    X = torch.tensor(np.ascontiguousarray(p["X"].T), dtype=dtype)  # (B, 784): row layout
    labels = torch.tensor(p["labels"], dtype=torch.long)

    def timed_step() -> tuple[float, float, float]:
        t0 = perf_counter()
        for q in params:
            q.grad = None
        t1 = perf_counter()
        A1 = torch.relu(F.linear(X, W1, b1))
        A2 = torch.relu(F.linear(A1, W2, b2))
        loss = F.cross_entropy(F.linear(A2, W3, b3), labels)
        t2 = perf_counter()
        loss.backward()
        t3 = perf_counter()
        timed_step.loss = float(loss)
        return t1 - t0, t2 - t1, t3 - t2

    timed_step.loss = float("nan")
    timed_step.threads = torch.get_num_threads()
    timed_step.version = torch.__version__
    return timed_step


# -- checking and timing ---------------------------------------------------------------------------
def check_same_work(engine: EngineStep, ref: NumpyStep, dtype: np.dtype) -> str:
    tol = {"rtol": 1e-9, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-4, "atol": 1e-6}
    zero_grad(engine.params)
    engine.timed_step()
    ref.timed_step()
    eng_loss = float(engine.loss.data)
    if not np.allclose(eng_loss, ref.loss, **tol):
        raise SystemExit(f"loss differs: engine {eng_loss!r} vs numpy {ref.loss!r}")
    worst = 0.0
    for name, g in engine.grads().items():
        if g.dtype != dtype:
            raise SystemExit(f"gradient of {name} has dtype {g.dtype}, expected {dtype}")
        if not np.allclose(g, ref.g[name], **tol):
            raise SystemExit(f"gradient of {name} differs between the engine and numpy")
        scale = max(float(np.abs(ref.g[name]).max()), 1e-30)
        worst = max(worst, float(np.abs(g - ref.g[name]).max()) / scale)
    return f"loss {eng_loss:.6f} (numpy {float(ref.loss):.6f}); max |grad diff| / max |grad| = {worst:.1e}"


def bench_dtype(dtype: np.dtype, rounds: int, inner: int, warmup: int, budget: float) -> None:
    p = make_problem(dtype)
    engine, ref = EngineStep(p), NumpyStep(p)
    print(f"\n=== dtype {dtype.name}: MLP {'-'.join(map(str, SIZES))}, ReLU, softmax CE, batch {BATCH} ===")
    print("check  engine vs numpy:", check_same_work(engine, ref, dtype))
    contenders: dict[str, Callable[[], tuple[float, float, float]]] = {
        "engine": engine.timed_step,
        "numpy": ref.timed_step,
        "matmul-only": MatmulStep(p, ref).timed_step,
    }
    torch_step = make_torch_step(p)
    if torch_step is not None:
        contenders["torch"] = torch_step

    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    if torch_step is not None:
        print(
            f"check  torch {torch_step.version} ({torch_step.threads} threads) loss {torch_step.loss:.6f} "
            f"vs numpy {float(ref.loss):.6f} "
            f"({'same' if np.isclose(torch_step.loss, float(ref.loss), rtol=1e-4) else 'DIFFERENT'})"
        )

    # per round and contender: mean seconds per step of each segment, and page faults
    step: dict[str, list[float]] = {n: [] for n in names}
    fwd: dict[str, list[float]] = {n: [] for n in names}
    bwd: dict[str, list[float]] = {n: [] for n in names}
    zero: dict[str, list[float]] = {n: [] for n in names}
    faults = dict.fromkeys(names, 0)
    start = perf_counter()
    done = 0
    for r in range(rounds):
        if r >= MIN_ROUNDS and perf_counter() - start > budget:
            break  # a busy machine: stop at the time budget rather than at the round count
        done += 1
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        for name in order:
            run = contenders[name]
            z = f = b = 0.0
            f0 = minflt()
            t0 = perf_counter()
            for _ in range(inner):
                dz, df, db = run()
                z += dz
                f += df
                b += db
            t1 = perf_counter()
            faults[name] += minflt() - f0
            step[name].append((t1 - t0) / inner)
            zero[name].append(z / inner)
            fwd[name].append(f / inner)
            bwd[name].append(b / inner)

    steps_each = done * inner
    print(
        f"timing {done} rounds x {inner} steps per contender, interleaved (order rotated every round), "
        f"{perf_counter() - start:.1f} s"
    )
    print()
    header = (
        f"{'contender':<12} {'ms/step':>9} {'[p25-p75]':>15} {'fwd ms':>8} {'bwd ms':>8} "
        f"{'zero ms':>8} {'bwd/fwd':>8} {'minflt/step':>12}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        lo, hi = quartiles(step[name])
        bf = median([b / f for b, f in zip(bwd[name], fwd[name], strict=True)])
        print(
            f"{name:<12} {1e3 * median(step[name]):>9.3f} {f'[{1e3 * lo:.2f}-{1e3 * hi:.2f}]':>15} "
            f"{1e3 * median(fwd[name]):>8.3f} {1e3 * median(bwd[name]):>8.3f} "
            f"{1e3 * median(zero[name]):>8.3f} {bf:>8.2f} {faults[name] / steps_each:>12.1f}"
        )

    print()
    header = (
        f"{'ratio (median of per-round ratios)':<36} {'median':>8} {'[p25-p75]':>15} {'target':>9}  result"
    )
    print(header)
    print("-" * len(header))

    def row(label: str, num: list[float], den: list[float], target: float | None) -> None:
        m, lo, hi = ratio_summary(num, den)
        tgt = f"<= {target:.2f}" if target is not None else ""
        res = verdict(m <= target) if target is not None else "(reference)"
        print(f"{label:<36} {m:>7.3f}x {f'[{lo:.3f}-{hi:.3f}]':>15} {tgt:>9}  {res}")

    row("engine / numpy", step["engine"], step["numpy"], TARGET_VS_NUMPY)
    row("engine / matmul-only", step["engine"], step["matmul-only"], TARGET_VS_MATMUL)
    row("engine backward / forward", bwd["engine"], fwd["engine"], TARGET_BWD_FWD)
    row("numpy backward / forward", bwd["numpy"], fwd["numpy"], None)
    row("matmul-only backward / forward", bwd["matmul-only"], fwd["matmul-only"], None)
    row("numpy / matmul-only", step["numpy"], step["matmul-only"], None)
    if "torch" in names:
        row("torch / numpy", step["torch"], step["numpy"], None)
        row("engine / torch", step["engine"], step["torch"], None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=150, help="interleaved rounds (default 150)")
    parser.add_argument("--inner", type=int, default=5, help="steps per contender per round (default 5)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per contender first")
    parser.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help=f"seconds of timing per dtype after which no new round starts (at least {MIN_ROUNDS} rounds)",
    )
    args = parser.parse_args(argv)
    wall_start = perf_counter()

    print("bench_tensor_step: one forward + backward step, bpcourse tensor engine vs numpy")
    print(machine_info())
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    for name in dtypes:
        bench_dtype(np.dtype(name), args.rounds, args.inner, args.warmup, args.budget)
    print(
        "\nnotes: ms/step is the median over rounds of the mean step time in a round; ratios are medians"
        "\n       of the per-round ratios; 'zero' is the engine's zero_grad(params); minflt/step is the"
        "\n       getrusage ru_minflt delta over all timed steps divided by their number."
    )
    print(process_summary(wall_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
