"""Shared helpers for the benchmark scripts: machine description and summary statistics.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported
from the scripts' own folder (it is not part of the ``bpcourse`` package).
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

THREAD_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _openblas_call(stem: str, restype: type) -> object | None:
    """Call ``openblas_<stem>()`` in the OpenBLAS that numpy loaded (None when not possible)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    names = (f"scipy_openblas_{stem}64_", f"scipy_openblas_{stem}", f"openblas_{stem}64_", f"openblas_{stem}")
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            func = getattr(lib, name, None)
            if func is not None:
                func.restype = restype
                return func()
    return None


def blas_summary() -> list[str]:
    """One line per BLAS library: threadpoolctl's view if installed, else numpy's build config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        lines = []
        for info in threadpool_info():
            lines.append(
                f"{info.get('internal_api')} {info.get('version')} ({info.get('user_api')}), "
                f"threads={info.get('num_threads')}, arch={info.get('architecture')}"
            )
        if lines:
            return lines
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        blas = deps["blas"]
        line = f"{blas.get('name')} {blas.get('version')}"
        config = blas.get("openblas configuration")
        if config:
            line += f" [{config}]"
    except Exception:  # older numpy: no dict mode
        line = "numpy BLAS: see numpy.show_config()"
    threads = _openblas_call("get_num_threads", ctypes.c_int)
    if threads is not None:
        line += f", threads={threads}"
    core = _openblas_call("get_corename", ctypes.c_char_p)
    if core:
        line += f", core={core.decode()}"
    return [line + " (threadpoolctl not installed; from numpy.show_config)"]


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info() -> str:
    """A few lines describing the machine and the libraries, printed at the top of every script."""
    usable = _usable_cpus()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    env = "  ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in THREAD_VARS)
    lines = [
        f"date        {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"machine     {_cpu_model()}; os.cpu_count()={os.cpu_count()}, usable cpus={usable}; "
        f"load average {load}",
        f"python      {sys.version.split()[0]} ({platform.python_implementation()}), numpy {np.__version__}",
    ]
    lines += [f"blas        {line}" for line in blas_summary()]
    lines.append(f"env         {env}")
    return "\n".join(lines)


def process_summary(wall_start: float) -> str:
    """Whole-process numbers from getrusage (the same counters /usr/bin/time -v reports).

    Many involuntary context switches, or a 1-minute load average above the number of
    usable CPUs, mean other programs competed for the CPUs during the run: compare the
    ratios only, and rerun on a quieter machine before trusting absolute times.
    """
    ru = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall_start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    line = (
        f"process     wall {wall:.1f} s, cpu {ru.ru_utime + ru.ru_stime:.1f} s (user {ru.ru_utime:.1f}, "
        f"sys {ru.ru_stime:.1f}), max RSS {ru.ru_maxrss / 1024:.0f} MiB, minor faults {ru.ru_minflt}, "
        f"involuntary context switches {ru.ru_nivcsw}; load average now {load:.2f}"
    )
    if load > _usable_cpus():
        line += (
            f"\nWARNING     the 1-minute load average ({load:.1f}) exceeds the {_usable_cpus()} usable CPUs: "
            "other programs competed for the CPUs, absolute times are inflated"
        )
    return line


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def quartiles(xs: Sequence[float]) -> tuple[float, float]:
    """25th and 75th percentiles (the spread shown next to a median)."""
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def ratio_summary(num: Sequence[float], den: Sequence[float]) -> tuple[float, float, float]:
    """Median and quartiles of the per-pair ratios num[i] / den[i]."""
    ratios = [a / b for a, b in zip(num, den, strict=True)]
    lo, hi = quartiles(ratios)
    return median(ratios), lo, hi


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
