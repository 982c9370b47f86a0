"""Whether NumPy's BLAS gives the same bits with one thread and with two.

Every float32 product ``A @ B`` of a grid of shapes (rows and inner sizes from 1 to 2,048,
seven column counts, up to 2**28 multiply-adds) in three layouts (both C-ordered, ``A``
Fortran-ordered, ``B`` Fortran-ordered), once under ``threadpool_limits(1)`` and once
under ``threadpool_limits(2)``; prints how many differ and the first few. Where some do,
a thread count chosen at run time (by timing, say) would make a training run's weights
depend on that choice, which is why neurocloud never switches by itself
(``docs/guides/performance.md``, "When two threads are slower than one").

    .venv/bin/python benchmarks/blas_threads_bits.py

About 20 s on a 2-core machine. Needs two CPUs to mean anything.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

SIZES = (1, 2, 3, 7, 10, 16, 31, 64, 100, 128, 129, 256, 500, 512, 784, 1024, 2048)
COLUMNS = (1, 2, 10, 64, 128, 256, 2048)
MAX_WORK = 1 << 28


def main() -> None:
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    for lib in blas:
        print(f"{lib['internal_api']} {lib['version']} ({lib.get('architecture')})")
    print(f"CPUs this process may use: {len(os.sched_getaffinity(0))}")
    rng = np.random.default_rng(0)
    tried, differ = 0, []
    for m, k, n in itertools.product(SIZES, SIZES, COLUMNS):
        if m * k * n > MAX_WORK:
            continue
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        layouts = {"C, C": (a, b), "F, C": (np.asfortranarray(a), b)}
        layouts["C, F"] = (a, np.asfortranarray(b))
        for layout, (left, right) in layouts.items():
            with threadpool_limits(1, "blas"):
                one = left @ right
            with threadpool_limits(2, "blas"):
                two = left @ right
            tried += 1
            if not np.array_equal(one, two):
                differ.append(f"{m}x{k} by {k}x{n} ({layout})")
    print(f"{len(differ)} of {tried} products differ between 1 and 2 threads")
    for line in differ[:10]:
        print("  " + line)


if __name__ == "__main__":
    main()
