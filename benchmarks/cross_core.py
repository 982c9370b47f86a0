"""How far apart this machine's two cores are right now: the round trip of one cache line
between two threads pinned to two CPUs, sampled over time.

On a virtual machine the host decides where the vCPUs run, and may move them: on the AMD
EPYC machine of the eleventh pass at issue 17, the round trip read 51-72 ns in some
stretches and 300-1,000 ns in others, seconds to minutes each. Whatever one core hands to
the other (a two-thread matrix product's output read by the thread that called it, the
optimizer reading gradients the products just wrote) costs more with the cores far apart,
while work on one core does not. ``train_speed.py`` samples it before every timed sample
and prints, per task, how many of its samples began with the cores far apart.

The probe is a few lines of C (``cross_core.c``), built each time with the system's C
compiler in a private temporary directory and loaded with ctypes; without a compiler, or
with fewer than two CPUs to run on, :func:`probe` returns ``None`` and callers go without.

    .venv/bin/python benchmarks/cross_core.py --seconds 30
    .venv/bin/python benchmarks/cross_core.py --seconds 120 --fit mnist-shape

``--fit`` alternates one epoch of ``fit`` with one thread (NumPy's BLAS and the engine's
own passes) and one with two, with a round trip measured just before each.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: a round trip above this many nanoseconds counts as "far apart": the near state read
#: 51-72 ns, the others 300-1,000 ns
FAR_NS = 200.0

_SOURCE = Path(__file__).with_name("cross_core.c")


def probe(rounds: int = 20_000) -> Callable[[], float | None] | None:
    """A function returning one sample's round trip in nanoseconds (``rounds`` timed trips
    after as many untimed ones: about 2-40 ms), or ``None`` where it failed; ``None``
    instead of the function where the probe cannot be built or loaded."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return None
    compiler = shutil.which("cc") or shutil.which("gcc")
    if len(cpus) < 2 or compiler is None or not _SOURCE.exists():
        return None
    try:
        # Built where no one else can write, loaded, then removed (the mapping stays).
        with tempfile.TemporaryDirectory(prefix="cross_core-") as tmp:
            lib_path = Path(tmp) / "cross_core.so"
            flags = ["-O2", "-shared", "-fPIC", "-pthread"]
            built = subprocess.run(
                [compiler, *flags, "-o", str(lib_path), str(_SOURCE)],
                capture_output=True,
                check=False,
            )
            if built.returncode != 0:
                return None
            lib = ctypes.CDLL(str(lib_path))
    except OSError:  # no room, a noexec temporary directory, a compiler that will not run
        return None
    lib.round_trip_ns.restype = ctypes.c_double
    lib.round_trip_ns.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
    a, b = cpus[0], cpus[1]

    def sample() -> float | None:
        trip = float(lib.round_trip_ns(rounds, a, b))
        return trip if trip > 0 else None

    return sample if sample() is not None else None


def summary(samples: list[float]) -> str:
    """``median N ns, K% of M samples far apart`` (above :data:`FAR_NS`)."""
    if not samples:
        return "not measured"
    far = sum(s > FAR_NS for s in samples) / len(samples)
    median = statistics.median(samples)
    return f"median {median:.0f} ns, {far:.0%} of {len(samples)} samples far apart"


def _fit_epochs(name: str, seconds: float, sample: Callable[[], float | None]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from speed.training import WORKLOADS, neurocloud_system
    from threadpoolctl import threadpool_limits

    from neurocloud.nn import parallel

    w = WORKLOADS[name]
    X, y = w.data()
    # train_speed's own neurocloud system: one model and optimizer each, an epoch a call
    epochs = {1: neurocloud_system(w, X, y), 2: neurocloud_system(w, X, y)}
    print("| threads | epoch (s) | round trip before (ns) |\n|---|---|---|")
    start, turn = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for threads in (1, 2) if turn % 2 else (2, 1):
            before = sample()
            # NumPy's BLAS and the engine's own threads for element-wise passes alike
            with threadpool_limits(threads, "blas"):
                parallel.set_threads(threads)
                began = time.perf_counter()
                epochs[threads]()
                took = time.perf_counter() - began
            parallel.set_threads(None)
            shown = "failed" if before is None else f"{before:.0f}"
            print(f"| {threads} | {took:.3f} | {shown} |", flush=True)
        turn += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    parser.add_argument("--fit", metavar="WORKLOAD", help="alternate fit epochs at 1 and 2 threads")
    args = parser.parse_args()
    sample = probe()
    if sample is None:
        sys.exit("cross_core: no C compiler (cc), or fewer than two CPUs to run on")
    if args.fit:
        _fit_epochs(args.fit, args.seconds, sample)
        return
    samples: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        trip = sample()
        if trip is not None:
            samples.append(trip)
        shown = "failed" if trip is None else f"{trip:6.0f} ns"
        print(f"{time.perf_counter() - start:7.2f} s  {shown}", flush=True)
        time.sleep(args.every)
    print(summary(samples))


if __name__ == "__main__":
    main()
