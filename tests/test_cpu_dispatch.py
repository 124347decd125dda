"""The outputs stored in the solution notebooks hold on other CPUs too.

numpy picks a code path for ``exp``, ``tanh`` and friends by what the CPU
offers (AVX-512, AVX2, or the baseline), and OpenBLAS picks its matrix-product
kernels the same way. Different paths round differently in the last bits, so a
notebook that prints round-off passes its nbval comparison on one machine and
fails on another. This test reruns every solution notebook through nbval with
numpy's AVX-512 and AVX2 dispatch targets turned off (``NPY_DISABLE_CPU_FEATURES``)
and, on x86-64, OpenBLAS held to its plainest kernels (``OPENBLAS_CORETYPE``):
the stored outputs must still match.

The names given to numpy are the ones this numpy build dispatches to (they
differ between numpy 1 and 2, and numpy refuses unknown or baseline ones); an
arm64 build has none of them, and the test is skipped there.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"X86_V4", "X86_V3", "AVX2", "FMA3"}  # AVX-512 (every AVX512* name too) and AVX2
OPENBLAS_PLAINEST = "Prescott"  # OpenBLAS's SSE3 kernels, which every x86-64 CPU runs

_PROBE = """
import json
try:
    from numpy._core import _multiarray_umath as umath
except ImportError:  # numpy 1
    from numpy.core import _multiarray_umath as umath
print(json.dumps({"dispatch": list(umath.__cpu_dispatch__), "baseline": list(umath.__cpu_baseline__),
                  "features": umath.__cpu_features__}))
"""


def _numpy_cpu(env: dict[str, str] | None = None) -> dict:
    """numpy's dispatch targets, baseline and detected features, as a child Python sees them."""
    done = subprocess.run(
        [sys.executable, "-W", "error::ImportWarning", "-c", _PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"numpy refused the environment:\n{done.stderr}"
    return json.loads(done.stdout)


def restricted_features(cpu: dict) -> list[str]:
    """The dispatch targets of the AVX-512 and AVX2 groups in this numpy build (none on arm64)."""
    baseline = set(cpu["baseline"])
    return [
        name
        for name in cpu["dispatch"]
        if (name.startswith("AVX512") or name in GROUPS) and name not in baseline
    ]


def test_the_restricted_names_are_numpy_s_own() -> None:
    """Every name comes from numpy's own list: no name numpy would reject or warn about."""
    cpu = {"dispatch": ["X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"], "baseline": ["X86_V2"]}
    assert restricted_features(cpu) == ["X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"]
    numpy1 = {"dispatch": ["SSSE3", "SSE41", "AVX", "F16C", "FMA3", "AVX2", "AVX512F", "AVX512_SKX"],
              "baseline": ["SSE", "SSE2", "SSE3"]}  # fmt: skip
    assert restricted_features(numpy1) == ["FMA3", "AVX2", "AVX512F", "AVX512_SKX"]
    arm = {"dispatch": ["ASIMDHP", "ASIMDDP", "ASIMDFHM"], "baseline": ["NEON", "ASIMD"]}
    assert restricted_features(arm) == []


def test_solution_outputs_hold_without_avx512_and_avx2() -> None:
    names = restricted_features(_numpy_cpu())
    if not names:
        pytest.skip("this numpy build dispatches to no AVX-512 or AVX2 code (not an x86-64 build)")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(names)}
    if platform.machine().lower() in ("x86_64", "amd64"):
        env["OPENBLAS_CORETYPE"] = OPENBLAS_PLAINEST
    features = _numpy_cpu(env)["features"]
    still_on = [name for name in names if features.get(name)]
    assert not still_on, (
        f"numpy still uses {still_on} with NPY_DISABLE_CPU_FEATURES={env['NPY_DISABLE_CPU_FEATURES']}"
    )

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "solutions", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    tail = "\n".join(done.stdout.splitlines()[-60:])
    assert done.returncode == 0, f"nbval with {' '.join(names)} turned off:\n{tail}\n{done.stderr[-2000:]}"
