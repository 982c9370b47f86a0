"""How far apart this machine's two cores are right now: the round trip of one cache line
between two threads pinned to two CPUs, sampled over time.

On a virtual machine the host decides where the vCPUs run, and may move them: on the AMD
EPYC machine of the eleventh pass at issue 17, the round trip read 60-200 ns in some
stretches and 600-800 ns in others, seconds to minutes each. Everything that hands data
from one core to the other (a two-thread matrix product's output read by the thread that
called it, the optimizer reading gradients the products just wrote) slows down with it,
while work on one core does not. ``train_speed.py`` samples it before every timed sample
and prints, per task, how much of the task ran with the cores far apart.

The probe is a few lines of C (``cross_core.c``), built on first use with the system's C
compiler into the temporary directory and loaded with ctypes; without a compiler, or with
fewer than two CPUs to run on, :func:`probe` returns ``None`` and callers go without.

    .venv/bin/python benchmarks/cross_core.py --seconds 30
    .venv/bin/python benchmarks/cross_core.py --seconds 120 --fit mnist-shape

``--fit`` alternates one epoch of ``fit`` with NumPy's BLAS on one thread and one on two,
with a round trip measured just before each, to show which setting each state favours.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: a round trip above this many nanoseconds counts as "far apart" (the two states measured
#: were 60-200 ns and 600-800 ns)
FAR_NS = 400.0

_SOURCE = Path(__file__).with_name("cross_core.c")


def probe(rounds: int = 20_000) -> Callable[[], float] | None:
    """A function returning one sample's round trip in nanoseconds (``rounds`` timed trips
    after as many untimed ones: about 4-32 ms), or ``None`` where the probe cannot be
    built or run."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return None
    compiler = shutil.which("cc") or shutil.which("gcc")
    if len(cpus) < 2 or compiler is None or not _SOURCE.exists():
        return None
    code = _SOURCE.read_bytes()
    digest = hashlib.sha256(code).hexdigest()[:12]
    lib_path = Path(tempfile.gettempdir()) / f"cross_core-{digest}.so"
    if not lib_path.exists():
        partial = lib_path.with_suffix(f".{os.getpid()}.tmp")
        built = subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", "-pthread", "-o", str(partial), str(_SOURCE)],
            capture_output=True,
            check=False,
        )
        if built.returncode != 0:
            partial.unlink(missing_ok=True)
            return None
        os.replace(partial, lib_path)  # another process building at once gets one whole file
    lib = ctypes.CDLL(str(lib_path))
    lib.round_trip_ns.restype = ctypes.c_double
    lib.round_trip_ns.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
    a, b = cpus[0], cpus[1]

    def sample() -> float:
        return float(lib.round_trip_ns(rounds, a, b))

    return sample if sample() > 0 else None


def summary(samples: list[float]) -> str:
    """``median N ns, K% of M samples far apart``."""
    if not samples:
        return "not measured"
    far = sum(s > FAR_NS for s in samples) / len(samples)
    median = statistics.median(samples)
    return f"median {median:.0f} ns, {far:.0%} of {len(samples)} samples far apart"


def _fit_epochs(name: str, seconds: float, sample: Callable[[], float]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from speed.training import WORKLOADS
    from threadpoolctl import threadpool_limits

    import neurocloud as nc

    w = WORKLOADS[name]
    X, y = w.data()
    loss = "sparse_categorical_crossentropy" if w.classify else "mse"

    def make() -> tuple[nc.Sequential, nc.optim.Adam]:
        out = "softmax" if w.classify else None
        hidden = [nc.layers.Dense(u, activation=w.activation) for u in w.sizes[1:-1]]
        layers = [*hidden, nc.layers.Dense(w.sizes[-1], activation=out)]
        return nc.Sequential(layers, input_dim=w.sizes[0], seed=0), nc.optim.Adam(lr=1e-3)

    models = {1: make(), 2: make()}
    print("| BLAS threads | epoch (s) | round trip before (ns) |\n|---|---|---|")
    start, turn = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for threads in (1, 2) if turn % 2 else (2, 1):
            model, opt = models[threads]
            before = sample()
            with threadpool_limits(threads, "blas"):
                began = time.perf_counter()
                model.fit(X, y, loss=loss, optimizer=opt, epochs=w.epochs, batch_size=w.batch)
                took = time.perf_counter() - began
            print(f"| {threads} | {took:.3f} | {before:.0f} |", flush=True)
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
        samples.append(sample())
        print(f"{time.perf_counter() - start:7.2f} s  {samples[-1]:6.0f} ns", flush=True)
        time.sleep(args.every)
    print(summary(samples))


if __name__ == "__main__":
    main()
