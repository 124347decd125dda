"""The scalar engine against PyPI ``micrograd`` 0.1.0 on the same small training step.

Task: MLP(2, [16, 16, 1]) (ReLU on the hidden layers, linear output) on 100 fixed
random 2-D points with targets +-1, loss = sum over the points of (model(x) - y)**2,
and one step = forward + zero the parameter gradients + loss.backward().

Both models run the same sequence of scalar ops: each neuron computes
``sum((wi * xi for wi, xi in zip(w, x)), b)`` and hidden neurons apply relu, exactly
as ``micrograd.nn`` does; the bpcourse model is written out below with
``bpcourse.scalar.Value``. micrograd's weights are copied into the bpcourse model,
and the script checks that both give the same loss and the same gradients (to 1e-9)
before timing.

Python's garbage collector stays on. Time spent in collections is measured with
``gc.callbacks`` and charged to whichever contender was running. By default each
timed step ends with a ``gc.collect()`` (timed, part of the step) so that a
contender's leftover cyclic garbage is reclaimed in its own step and not in the
other contender's; objects made during set-up are moved out of the collector's
way with ``gc.freeze()`` so that this collection only sees what the step left behind.
``--no-step-collect`` drops that final collection (collections then only happen when
the interpreter's thresholds trigger them).

Run:  python benchmarks/bench_scalar_vs_micrograd.py [--pairs N] [--warmup N] [--solo N]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable, Sequence

from _common import machine_info, median, process_summary, quartiles, ratio_summary, verdict

import bpcourse.scalar as bs

try:
    import micrograd
    from micrograd.engine import Value as MGValue
    from micrograd.nn import MLP as MGMLP
except ImportError:  # pragma: no cover - reported to the user below
    micrograd = None

N_POINTS = 100
ARCH = (2, [16, 16, 1])
TARGET_RATIO = 8.0
MIN_PAIRS = 3

perf_counter = time.perf_counter


# -- the same architecture as micrograd.nn, built from bpcourse.scalar.Value ----------------------
class Neuron:
    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [bs.Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = bs.Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence) -> bs.Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[bs.Value]:
        return self.w + [self.b]


class Layer:
    def __init__(self, nin: int, nout: int, nonlin: bool = True) -> None:
        self.neurons = [Neuron(nin, nonlin) for _ in range(nout)]

    def __call__(self, x: Sequence) -> bs.Value | list[bs.Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[bs.Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))]

    def __call__(self, x: Sequence) -> bs.Value:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[bs.Value]:
        return [p for layer in self.layers for p in layer.parameters()]


# -- the data and the two training steps ---------------------------------------------------------
def make_data(seed: int = 0) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(seed)
    xs = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(N_POINTS)]
    ys = [1.0 if x0 * x1 > 0 else -1.0 for x0, x1 in xs]  # an XOR-like sign pattern
    return xs, ys


def copy_weights(src, dst: MLP) -> None:
    for ls, ld in zip(src.layers, dst.layers, strict=True):
        for ns, nd in zip(ls.neurons, ld.neurons, strict=True):
            for ws, wd in zip(ns.w, nd.w, strict=True):
                wd.data = float(ws.data)
            nd.b.data = float(ns.b.data)


class Clock:
    """Per-contender GC time, collected through gc.callbacks."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.gc_time: dict[str, float] = {}
        self.gc_count: dict[str, list[int]] = {}
        self._start = 0.0

    def callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = perf_counter()
        elif self.current is not None:
            self.gc_time[self.current] = self.gc_time.get(self.current, 0.0) + perf_counter() - self._start
            counts = self.gc_count.setdefault(self.current, [0, 0, 0])
            counts[info["generation"]] += 1


def make_step(
    model, xs, ys, zero: Callable[[], None], clock: Clock, name: str, step_collect: bool
) -> Callable[[], tuple[float, float, float, float]]:
    """One step: forward, zero grads, backward, drop the graph (and collect).

    Returns the seconds of (forward, zero_grad + backward, dropping the graph, step-end collection).
    """

    def step() -> tuple[float, float, float, float]:
        clock.current = name
        t0 = perf_counter()
        loss = sum((model(x) - y) ** 2 for x, y in zip(xs, ys, strict=True))
        t1 = perf_counter()
        zero()
        loss.backward()
        t2 = perf_counter()
        step.loss = loss.data
        del loss  # an acyclic graph is freed here, by reference counting
        t3 = perf_counter()
        if step_collect:
            gc.collect()  # cyclic garbage is freed here (or by a later automatic collection)
        t4 = perf_counter()
        clock.current = None
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3

    step.loss = float("nan")
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="timed pairs of steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed pairs first (default 2)")
    parser.add_argument(
        "--solo", type=int, default=3, help="steps of each engine run alone afterwards, as a cross-check"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=35.0,
        help=f"seconds of timed pairs after which no new pair starts (at least {MIN_PAIRS} pairs)",
    )
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument(
        "--no-step-collect", action="store_true", help="do not end each timed step with gc.collect()"
    )
    args = parser.parse_args(argv)
    wall_start = perf_counter()

    print("bench_scalar_vs_micrograd: scalar engine vs micrograd, MLP(2, [16, 16, 1]) on 100 points")
    print(machine_info())
    if micrograd is None:
        print("micrograd is not installed: pip install 'micrograd==0.1.0' (or pip install -e '.[bench]')")
        return 1
    version = getattr(micrograd, "__version__", None)
    if version is None:
        from importlib.metadata import version as _version

        version = _version("micrograd")
    print(f"micrograd   {version}; gc enabled={gc.isenabled()}, thresholds={gc.get_threshold()}")

    random.seed(args.seed)
    mg_model = MGMLP(*ARCH)
    bp_model = MLP(*ARCH)  # same init distribution (uniform(-1, 1) weights, zero biases) ...
    copy_weights(mg_model, bp_model)  # ... and then the very same weights
    mg_params, bp_params = mg_model.parameters(), bp_model.parameters()
    xs, ys = make_data()
    print(f"model       {len(bp_params)} parameters, {N_POINTS} points, loss = sum (model(x) - y)^2")

    # -- same work: same loss, same gradients ---------------------------------------------------------
    mg_loss = sum((mg_model(x) - y) ** 2 for x, y in zip(xs, ys, strict=True))
    mg_model.zero_grad()
    mg_loss.backward()
    assert isinstance(mg_loss, MGValue) and all(isinstance(p, MGValue) for p in mg_params)
    bp_loss = sum((bp_model(x) - y) ** 2 for x, y in zip(xs, ys, strict=True))
    bs.zero_grad(bp_params)
    bp_loss.backward()
    nodes = len(bs.topological_order(bp_loss))
    loss_diff = abs(mg_loss.data - bp_loss.data)
    grad_diff = max(abs(a.grad - b.grad) for a, b in zip(mg_params, bp_params, strict=True))
    print(
        f"check       loss micrograd {mg_loss.data:.12f}, bpcourse {bp_loss.data:.12f} "
        f"(|diff| {loss_diff:.1e}); max |grad diff| over {len(bp_params)} parameters {grad_diff:.1e}"
    )
    if loss_diff > 1e-9 * max(1.0, abs(mg_loss.data)) or grad_diff > 1e-9:
        print("FAILED: the two engines disagree; timings would not compare equal work")
        return 1
    print(f"graph       {nodes} bpcourse nodes per step (topological_order of the loss)")
    del mg_loss, bp_loss

    # -- timing -----------------------------------------------------------------------------------
    clock = Clock()
    step_collect = not args.no_step_collect
    setups = {
        "micrograd": (mg_model, mg_model.zero_grad),
        "bpcourse": (bp_model, lambda: bs.zero_grad(bp_params)),
    }
    steps = {name: make_step(m, xs, ys, z, clock, name, step_collect) for name, (m, z) in setups.items()}
    names = list(steps)
    parts = ("fwd", "bwd", "free", "endgc")
    times = {n: {k: [] for k in parts} for n in names}
    totals = {n: [] for n in names}
    solo = {n: [] for n in names}
    pairs = 0
    gc.collect()
    gc.freeze()  # set-up objects (models, data, modules) are left out of later collections
    gc.callbacks.append(clock.callback)
    try:
        for _ in range(args.warmup):
            for name in names:
                steps[name]()
        clock.gc_time.clear()
        clock.gc_count.clear()
        t_start = perf_counter()
        for i in range(args.pairs):
            if i >= MIN_PAIRS and perf_counter() - t_start > args.budget:
                break  # a busy machine: stop at the time budget
            pairs += 1
            for name in names if i % 2 == 0 else names[::-1]:  # A B, B A, A B, ...
                seg = steps[name]()
                for k, t in zip(parts, seg, strict=True):
                    times[name][k].append(t)
                totals[name].append(sum(seg))
        gc_time, gc_count = dict(clock.gc_time), {k: list(v) for k, v in clock.gc_count.items()}
        # Cross-check, not interleaved: a few steps of each alone, automatic collections only.
        if perf_counter() - t_start <= args.budget:
            for name, (model, zero) in setups.items():
                alone = make_step(model, xs, ys, zero, clock, name, step_collect=False)
                gc.collect()
                for _ in range(args.solo):
                    solo[name].append(sum(alone()))
                gc.collect()
    finally:
        gc.callbacks.remove(clock.callback)
        gc.unfreeze()

    print(
        f"timing      {pairs} interleaved pairs after {args.warmup} warm-up pairs; "
        f"step-end gc.collect() {'on' if step_collect else 'off'}"
    )
    print()
    header = (
        f"{'engine':<10} {'ms/step':>8} {'[p25-p75]':>15} {'fwd':>7} {'bwd':>6} {'free':>6} {'end gc':>7} "
        f"{'gc ms/step':>10} {'gc runs/step g0/g1/g2':>22} {'us/node':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        lo, hi = quartiles(totals[name])
        counts = gc_count.get(name, [0, 0, 0])
        runs = "/".join(f"{c / pairs:.1f}" for c in counts)
        seg = " ".join(
            f"{1e3 * median(times[name][k]):>{w}.1f}" for k, w in zip(parts, (7, 6, 6, 7), strict=True)
        )
        print(
            f"{name:<10} {1e3 * median(totals[name]):>8.1f} {f'[{1e3 * lo:.1f}-{1e3 * hi:.1f}]':>15} {seg} "
            f"{1e3 * gc_time.get(name, 0.0) / pairs:>10.1f} {runs:>22} "
            f"{1e6 * median(totals[name]) / nodes:>8.3f}"
        )
    print()
    m, lo, hi = ratio_summary(totals["micrograd"], totals["bpcourse"])
    mf = ratio_summary(times["micrograd"]["fwd"], times["bpcourse"]["fwd"])[0]
    mb = ratio_summary(times["micrograd"]["bwd"], times["bpcourse"]["bwd"])[0]
    print(f"micrograd / bpcourse per step (median of per-pair ratios): {m:.2f}x  [p25-p75 {lo:.2f}-{hi:.2f}]")
    print(f"   forward only {mf:.2f}x; zero_grad + backward only {mb:.2f}x")
    print(f"target >= {TARGET_RATIO:.0f}x: {verdict(m >= TARGET_RATIO)}")
    if not solo["bpcourse"]:
        print("cross-check skipped: the time budget was used up by the interleaved pairs")
    else:
        ms, mm = median(solo["bpcourse"]), median(solo["micrograd"])
        print(
            f"cross-check, {args.solo} steps of each run alone (automatic collections only, no step-end "
            f"collect):\n   micrograd {1e3 * mm:.1f} ms, bpcourse {1e3 * ms:.1f} ms, "
            f"ratio of medians {mm / ms:.2f}x"
        )
    print(
        "\nnotes: times are medians in ms; fwd = building the loss, bwd = zero_grad + backward,"
        "\n       free = dropping the graph (reference counting), end gc = the step-end gc.collect();"
        "\n       'gc ms/step' is all collector time in a step (automatic collections and the step-end one),"
        "\n       measured with gc.callbacks; us/node = step time / bpcourse node count."
    )
    print(process_summary(wall_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
