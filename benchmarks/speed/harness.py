"""The tasks, the worker processes that run their systems, and the interleaved timing.

Each worker is ``train_speed.py --worker TASK SYSTEMS``, a process of its own, driven over
its standard input and output (``warmup SYSTEM``, ``time SYSTEM K``).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cross_core import probe

from speed.inference import SWEEP_ROWS, batch_systems, row_runs, sweep_systems
from speed.training import SYSTEMS, WORKLOADS

#: the script each worker runs
SCRIPT = str(Path(__file__).resolve().parent.parent / "train_speed.py")

#: the cross-core round trips (ns) sampled before each timed sample of each task (before
#: its settling pause), where ``cross_core.py``'s probe can be built (a C compiler)
ROUND_TRIPS: dict[str, list[float]] = {}

_probe = functools.cache(probe)


def round_trip() -> float | None:
    """One cross-core round trip in nanoseconds, or ``None`` (no probe on this machine);
    the probe is built on the first call."""
    sample = _probe()
    return sample() if sample else None


#: systems that run with NumPy's BLAS on one thread (their worker is limited as a whole;
#: PyTorch's and onnxruntime's set their own threads)
NUMPY_ONE_THREAD = ("neurocloud-1t", "gemm-floor-1t", "calls-floor-1t", "passes-floor-1t")

#: suffix of the systems that run from the ``--against`` source tree
AGAINST = "+against"

#: the worker processes of each task, each with the systems it runs. neurocloud and its GEMM
#: floor share a process (the same NumPy and BLAS state); each peer has its own, so that no
#: library's idle threads spin while another library runs. A ``-1t`` neurocloud worker runs
#: with NumPy's BLAS limited to one thread (threadpoolctl), to compare with one-thread peers.
TASKS: dict[str, tuple[tuple[str, ...], ...]] = {
    **{
        name: (
            (
                "neurocloud",
                "gemm-floor",
                "adam-alone",
                "floor-adam",
                "floor-gather-adam",
                "floor-step",
            ),
            ("torch-1t", "torch-1t-adam"),
            ("torch-2t", "torch-2t-adam"),
            ("sklearn",),
        )
        for name in WORKLOADS
    },
    **{
        f"predict-row-{network}": (
            ("neurocloud-1t", "gemm-floor-1t", "calls-floor-1t"),
            ("neurocloud-2t", "gemm-floor-2t", "calls-floor-2t"),
            ("torch-1t",),
            ("torch-2t",),
            ("onnx-1t",),
            ("onnx-2t",),
        )
        for network in ("article", "mnist")
    },
    "predict-batch": (
        ("neurocloud-2t", "gemm-floor-2t", "input-check", "passes-floor"),
        ("neurocloud-1t", "gemm-floor-1t"),
        ("torch-1t",),
        ("torch-2t",),
        ("onnx-1t",),
        ("onnx-2t",),
    ),
    "predict-sweep": (
        tuple(
            f"{system}-1t@{rows}"
            for system in ("neurocloud", "gemm-floor", "passes-floor")
            for rows in SWEEP_ROWS
        ),
        tuple(
            f"{system}-2t@{rows}"
            for system in ("neurocloud", "gemm-floor", "passes-floor")
            for rows in SWEEP_ROWS
        ),
        tuple(f"onnx-1t@{rows}" for rows in SWEEP_ROWS),
        tuple(f"onnx-2t@{rows}" for rows in SWEEP_ROWS),
    ),
}


def make_runs(task: str, systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
    if task.startswith("predict-row-"):
        return row_runs(task.removeprefix("predict-row-"), systems)
    if task == "predict-batch":
        return batch_systems(systems)
    if task == "predict-sweep":
        return sweep_systems(systems)
    w = WORKLOADS[task]
    X, y = w.data()
    return {system: SYSTEMS[system](w, X, y) for system in systems}


# --- workers ----------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def worker(task: str, systems: str) -> None:
    """Serve the parent: ``warmup SYSTEM`` (one cold run, timed, with its peak memory) and
    ``time SYSTEM K`` (seconds per run over K runs)."""
    names = systems.split(",")
    if any(name.startswith(NUMPY_ONE_THREAD) for name in names):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # for the whole worker: NumPy's BLAS on one thread
    bases = [name.removesuffix(AGAINST) for name in names]
    made = make_runs(task, tuple(bases))
    runs = {name: made[base] for name, base in zip(names, bases)}
    print("ready", flush=True)
    for line in sys.stdin:
        command, system, *rest = line.split()
        run = runs[system]
        if command == "warmup":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the high-water mark VmHWM restarts from the current RSS
            before = _status_kib("VmRSS")
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            reply = {"seconds": seconds, "peak_mib": (_status_kib("VmHWM") - before) / 1024}
        else:
            calls = int(rest[0])
            start = time.perf_counter()
            for _ in range(calls):
                run()
            reply = {"seconds": (time.perf_counter() - start) / calls}
        print(json.dumps(reply), flush=True)


class Worker:
    def __init__(self, task: str, systems: tuple[str, ...], src: str | None = None) -> None:
        cmd = [sys.executable, SCRIPT, "--worker", task, ",".join(systems)]
        self.systems = systems
        env = None if src is None else {**os.environ, "PYTHONPATH": src}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def ask(self, command: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.systems} died (exit code {self.proc.wait()})")
        return json.loads(line)

    def wait_ready(self) -> None:
        assert self.proc.stdout
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"worker {self.systems} failed to start")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


#: pause before each sample: idle OpenBLAS and OpenMP threads of the system that ran before
#: keep spinning on a core for up to ~0.1 s, which would slow whichever system runs next
SETTLE_S = 0.2


def measure(
    task: str,
    rounds: int,
    min_sample_s: float,
    layout: list[tuple[tuple[str, ...], str | None]] | None = None,
) -> tuple[dict[str, float], dict]:
    """Median seconds per run of each system, and each one's peak memory during its first run.

    Every system warms up once (that run gives its memory), then each round times every
    system in turn, in an order that rotates; one sample repeats the run until it lasts
    about ``min_sample_s``. ``layout``: the workers' systems and the source tree each
    imports neurocloud from (``None``: this process's), instead of ``TASKS[task]``.
    Before each timed sample's pause, one cross-core round trip goes to :data:`ROUND_TRIPS`.
    """
    layout = layout or [(systems, None) for systems in TASKS[task]]
    round_trip()  # the probe built before any worker starts
    workers = [Worker(task, systems, src) for systems, src in layout]
    try:
        for w in workers:
            w.wait_ready()
        cells = [(w, system) for w in workers for system in w.systems]
        memory, calls = {}, {}
        for w, system in cells:
            time.sleep(SETTLE_S)
            memory[system] = w.ask(f"warmup {system}")["peak_mib"]
            # Sized from warm runs: the first one pays for imports and compilation (numba's
            # for the compiled Adam), which would leave the samples a single short run each;
            # a run of a few microseconds is timed over enough calls to last 10 ms.
            warm = w.ask(f"time {system} 1")["seconds"]
            if warm < 0.01:
                probe = round(0.01 / max(warm, 1e-7))
                warm = w.ask(f"time {system} {probe}")["seconds"]
            calls[system] = max(1, round(min_sample_s / max(warm, 1e-7)))
        samples: dict[str, list[float]] = {system: [] for _, system in cells}
        for r in range(rounds):
            for w, system in cells[r % len(cells) :] + cells[: r % len(cells)]:
                # The round trip spins both cores: taken before the pause, not just
                # before the sample.
                trip = round_trip()
                if trip is not None:
                    ROUND_TRIPS.setdefault(task, []).append(trip)
                time.sleep(SETTLE_S)
                samples[system].append(w.ask(f"time {system} {calls[system]}")["seconds"])
    finally:
        for w in workers:
            w.close()
    return {name: statistics.median(t) for name, t in samples.items()}, memory
