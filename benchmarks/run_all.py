"""Run the three benchmarks one after the other (never at the same time) and print their output.

Run:  python benchmarks/run_all.py [--only NAME ...]

Each script runs in its own Python process with the same interpreter, so its
output, page-fault counts and garbage-collector state are its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_tensor_step.py",
    "bench_scalar_vs_micrograd.py",
    "bench_finite_diff_vs_backprop.py",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only the scripts whose file name contains NAME"
    )
    args = parser.parse_args(argv)
    scripts = [s for s in SCRIPTS if not args.only or any(n in s for n in args.only)]

    failed = []
    for script in scripts:
        print(f"\n{'#' * 100}\n# {script}\n{'#' * 100}", flush=True)
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / script)], check=False)
        print(f"# {script}: exit code {result.returncode}, {time.perf_counter() - t0:.1f} s wall", flush=True)
        if result.returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
