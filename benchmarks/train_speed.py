"""Training and inference speed: neurocloud vs PyTorch (CPU, eager) vs scikit-learn's MLP.

Every system trains the same architecture with Adam (lr 1e-3), the same batch size, float32
data and the same number of steps. The systems are interleaved (the order rotates every
round) and each cell is the median over the rounds, so a burst of load on a shared machine
hits every system alike. The GEMM floor is the time of the matrix products alone that one
training step needs (forward: one per layer; backward: two per layer, one for the first),
run with NumPy into preallocated arrays in neurocloud's process. Each peer runs in a worker
process of its own: in one process, PyTorch's OpenMP threads and OpenBLAS's threads spin
against each other between calls, which measures their interference, not their speed.
PyTorch gets its fastest CPU Adam (``fused=True``) and its better of 1 and 2 threads.

Lower bounds: each optimizer's update alone (neurocloud's Adam, compiled where numba is
installed, and PyTorch's compiled fused Adam) over the model's parameter count for an
epoch's steps, added to the GEMM floor, and the GEMM floor with neurocloud's update in the
same loop, without and with the gathering of each shuffled batch into a buffer (the work
every shuffled minibatch step must do before a bias, activation or loss pass); then a
whole step on NumPy without the engine, its gathering, bias, activation and
bias-gradient passes, and Adam updating the weights the next products read
(``speed.training.step_floor_system``); for batch inference, ``predict``'s input check
alone added to the forward GEMMs, and predict's own NumPy calls on its blocks without the
engine's Python (``speed.inference.passes_floor_run``); for a single row, the GEMMs and
one NumPy call for each element-wise pass (``speed.inference.calls_floor_run``). The
systems live in ``benchmarks/speed/``; this script times them and prints the tables.

Peak memory is the growth of the resident set (VmHWM minus VmRSS, after resetting the
high-water mark through /proc/self/clear_refs) during each system's first epoch, after its
data and model exist.

Full run (about eight minutes), the command behind benchmarks/README.md:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/train_speed.py

The ``env -u`` lets OpenBLAS pick its native kernel for this command alone; this machine's
environment pins OPENBLAS_CORETYPE=Haswell (keep it in tests and CI). Without it the same
command measures the pinned kernel. The header reports the kernel that ran.

Short run: ``--quick``. ``--against OTHER/src`` times neurocloud alone (and its GEMM floor,
as a control) from this checkout and from another, interleaved: the ratio per workload.
``NEUROCLOUD_COMPILED`` is ``always`` unless set (Adam's compiled kernel, where numba is
installed, from the warm-up on); ``0`` measures the NumPy path.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
from cross_core import FAR_NS, summary
from speed.harness import AGAINST, ROUND_TRIPS, TASKS, measure, worker
from speed.inference import SWEEP_ROWS
from speed.training import WORKLOADS

import neurocloud as nc


def _torch_blas(config: str) -> str:
    """PyTorch's BLAS from ``torch.__config__.show()`` (``BLAS_INFO=mkl``, ``=open``...)."""
    for item in config.replace("\n", ",").split(","):
        key, _, value = item.strip().partition("=")
        if key == "BLAS_INFO":
            return {"mkl": "MKL", "open": "OpenBLAS"}.get(value, value)
    return "MKL" if "Intel(R) oneAPI Math Kernel Library" in config else "unknown"


def describe_machine() -> list[str]:
    import onnxruntime
    import torch
    from threadpoolctl import threadpool_info

    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__}, sklearn {__import__('sklearn').__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    ]
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        keep = ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache")
        lines += [" ".join(ln.split()) for ln in cpu.splitlines() if ln.startswith(keep)]
    except OSError:
        lines.append(platform.processor())
    for lib in threadpool_info():
        if lib["user_api"] == "blas":
            lines.append(
                f"NumPy BLAS: internal_api {lib['internal_api']} {lib['version']}, "
                f"architecture {lib.get('architecture')}, num_threads {lib['num_threads']} "
                f"({os.path.basename(lib['filepath'])})"
            )
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    lines.append(
        f"OPENBLAS_CORETYPE={coretype or '(unset)'}; PyTorch BLAS: "
        f"{_torch_blas(torch.__config__.show())}, torch threads {torch.get_num_threads()}"
    )
    lines.append(f"NEUROCLOUD_COMPILED={os.environ['NEUROCLOUD_COMPILED']}")
    lines.append(f"load average at start: {os.getloadavg()}")
    return lines


def _inference(args: argparse.Namespace, rounds: int, min_sample: float) -> list[str]:
    rows = [
        "| inference | neurocloud | PyTorch (best threads) | onnxruntime 1t / 2t | "
        "GEMM floor | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for network, label in (("article", "article network"), ("mnist", "mnist-shape")):
        if f"predict-row-{network}" not in args.tasks:
            continue
        t, _ = measure(f"predict-row-{network}", max(rounds, 3), min_sample)
        one, two = t["neurocloud-1t"], t["neurocloud-2t"]
        torch_best = min(t["torch-1t"], t["torch-2t"])
        o1, o2 = t["onnx-1t"], t["onnx-2t"]
        f1, f2 = t["gemm-floor-1t"], t["gemm-floor-2t"]
        c1, c2 = t["calls-floor-1t"], t["calls-floor-2t"]
        rows.append(
            f"| single-row predict, {label}: 1t / 2t | {one * 1e6:.1f} / {two * 1e6:.1f} us | "
            f"{torch_best * 1e6:.1f} us | {o1 * 1e6:.1f} / {o2 * 1e6:.1f} us | "
            f"{f1 * 1e6:.1f} / {f2 * 1e6:.1f} us | {one / o1:.2f}x / {two / o2:.2f}x "
            f"onnxruntime (same threads), {min(one, two) / torch_best:.2f}x PyTorch; "
            f"calls floor {c1 * 1e6:.1f} / {c2 * 1e6:.1f} us = {c1 / o1:.2f}x / {c2 / o2:.2f}x "
            "onnxruntime |"
        )
        print(rows[-1], flush=True)
    if "predict-batch" in args.tasks:
        t, _ = measure("predict-batch", rounds, min_sample)
        torch_best = min(t["torch-1t"], t["torch-2t"])
        floor, nc_ = t["gemm-floor-2t"], t["neurocloud-2t"]
        rows.append(
            f"| mnist-shape predict, 60,000 rows (2t) | {nc_:.4f} s | {torch_best:.4f} s | "
            f"{t['onnx-1t']:.4f} / {t['onnx-2t']:.4f} s | {floor:.4f} s | "
            f"{nc_ / floor:.2f}x floor, {nc_ / torch_best:.2f}x PyTorch, "
            f"{nc_ / t['onnx-2t']:.2f}x onnxruntime 2t |"
        )
        rows.append(
            f"| same, NumPy's BLAS on 1 thread | {t['neurocloud-1t']:.4f} s | - | - | "
            f"{t['gemm-floor-1t']:.4f} s | {t['neurocloud-1t'] / t['gemm-floor-1t']:.2f}x floor, "
            f"{t['neurocloud-1t'] / t['onnx-1t']:.2f}x onnxruntime 1t |"
        )
        check = t["input-check"]
        rows.append(
            f"| lower bound: GEMM floor + input check alone ({check:.4f} s) | - | - | - | "
            f"{floor + check:.4f} s | {(floor + check) / floor:.2f}x floor |"
        )
        passes = t["passes-floor"]
        rows.append(
            "| lower bound: predict's NumPy calls on its blocks, without the engine | - | - | "
            f"- | {passes:.4f} s | {passes / floor:.2f}x floor; neurocloud {nc_ / passes:.2f}x it |"
        )
        print("\n".join(rows[-4:]), flush=True)
    if "predict-sweep" in args.tasks:
        t, _ = measure("predict-sweep", rounds, min_sample)
        for n in SWEEP_ROWS:
            one, two = t[f"neurocloud-1t@{n}"], t[f"neurocloud-2t@{n}"]
            o1, o2 = t[f"onnx-1t@{n}"], t[f"onnx-2t@{n}"]
            f1, f2 = t[f"gemm-floor-1t@{n}"], t[f"gemm-floor-2t@{n}"]
            p1, p2 = t[f"passes-floor-1t@{n}"], t[f"passes-floor-2t@{n}"]
            rows.append(
                f"| mnist-shape predict, {n} rows: 1t / 2t | {one * 1e3:.3f} / {two * 1e3:.3f} ms "
                f"| - | {o1 * 1e3:.3f} / {o2 * 1e3:.3f} ms | {f1 * 1e3:.3f} / {f2 * 1e3:.3f} ms | "
                f"{one / o1:.2f}x / {two / o2:.2f}x onnxruntime (same threads); floor "
                f"{f1 / o1:.2f}x / {f2 / o2:.2f}x onnxruntime, neurocloud {one / f1:.2f}x / "
                f"{two / f2:.2f}x floor; predict's NumPy calls without the engine "
                f"{p1 / o1:.2f}x / {p2 / o2:.2f}x onnxruntime, neurocloud {one / p1:.2f}x / "
                f"{two / p2:.2f}x them |"
            )
            print(rows[-1], flush=True)
    return rows if len(rows) > 2 else []


#: what ``--against`` compares in each task: neurocloud, and its GEMM floor as a control
#: (the same NumPy in both processes, so its ratio shows how fair the pairing was)
COMPARED = {
    **{name: ("neurocloud", "gemm-floor") for name in WORKLOADS},
    "predict-row-article": ("neurocloud-2t",),
    "predict-row-mnist": ("neurocloud-2t",),
    "predict-batch": ("neurocloud-2t", "gemm-floor-2t"),
    "predict-sweep": tuple(f"neurocloud-2t@{rows}" for rows in SWEEP_ROWS),
}


def compare(args: argparse.Namespace, rounds: int, min_sample: float) -> None:
    """This checkout's neurocloud against the one in ``args.against``, interleaved."""
    src = os.path.abspath(args.against)
    print(f"this checkout: {os.path.dirname(os.path.dirname(nc.__file__))}; against: {src}\n")
    print("| task | system | against (s) | this checkout (s) | this / against |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        systems = COMPARED[task]
        layout = [(systems, None), (tuple(name + AGAINST for name in systems), src)]
        t, _ = measure(task, rounds, min_sample, layout)
        for name in systems:
            before, now = t[name + AGAINST], t[name]
            print(
                f"| {task} | {name} | {before:.6f} | {now:.6f} | {now / before:.3f} |", flush=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, short samples")
    parser.add_argument("--rounds", type=int, help="timed rounds per system (default 5; quick 1)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument(
        "--against",
        metavar="SRC",
        help="compare neurocloud alone with the one imported from SRC (a checkout's src/)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "SYSTEMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    rounds = args.rounds or (1 if args.quick else 5)
    min_sample = 0.05 if args.quick else 0.25
    # Steady state: Adam's compiled kernel (where numba is installed) from the first update,
    # in the warm-up, instead of after about a second of NumPy updates.
    os.environ.setdefault("NEUROCLOUD_COMPILED", "always")
    started = time.perf_counter()
    print("\n".join(describe_machine()))
    print(f"rounds: {rounds}; command: {' '.join(sys.argv)}\n")
    if args.against:
        compare(args, rounds, min_sample)
    else:
        report(args, rounds, min_sample)
    print(
        "\nCross-core round trip before each timed sample (benchmarks/cross_core.py; "
        f"far apart: above {FAR_NS:.0f} ns):\n| task | round trip |\n|---|---|"
    )
    for task in args.tasks:
        print(f"| {task} | {summary(ROUND_TRIPS.get(task, []))} |")
    print(f"\nload average at end: {os.getloadavg()}; took {time.perf_counter() - started:.0f} s")


def report(args: argparse.Namespace, rounds: int, min_sample: float) -> None:
    """The tables: training against the peers and the bounds, then inference."""
    rows = [
        "| workload | neurocloud | PyTorch (best threads) | scikit-learn | GEMM floor | "
        "vs fastest peer | vs PyTorch | x GEMM floor | peak MiB: neurocloud / PyTorch / sklearn |",
        "|" + "---|" * 9,
    ]
    bounds = [
        "| workload | GEMM floor | Adam alone: neurocloud | Adam alone: PyTorch fused | "
        "floor + neurocloud Adam | floor + fused Adam | floor and Adam in one loop | "
        "floor, batch gathering and Adam in one loop (x floor; x PyTorch) | "
        "a step on NumPy without the engine (x floor; x PyTorch) | neurocloud |",
        "|" + "---|" * 10,
    ]
    for task in [t for t in args.tasks if t in WORKLOADS]:
        t, mem = measure(task, rounds, min_sample)
        floor, fused = t["gemm-floor"], min(t["torch-1t-adam"], t["torch-2t-adam"])
        threads = "1t" if t["torch-1t"] <= t["torch-2t"] else "2t"
        torch_best = t["torch-" + threads]
        gathered = t["floor-gather-adam"]
        bounds.append(
            f"| {task} | {floor:.4f} | {t['adam-alone']:.4f} | {fused:.4f} | "
            f"{(floor + t['adam-alone']) / floor:.2f}x | {(floor + fused) / floor:.2f}x | "
            f"{t['floor-adam']:.4f} s = {t['floor-adam'] / floor:.2f}x | "
            f"{gathered:.4f} s = {gathered / floor:.2f}x; {gathered / torch_best:.2f}x | "
            f"{t['floor-step']:.4f} s = {t['floor-step'] / floor:.2f}x; "
            f"{t['floor-step'] / torch_best:.2f}x | "
            f"{t['neurocloud'] / floor:.2f}x |"
        )
        peer = min(torch_best, t["sklearn"])
        peaks = " / ".join(f"{mem[s]:.0f}" for s in ("neurocloud", "torch-" + threads, "sklearn"))
        rows.append(
            f"| {task} | {t['neurocloud']:.4f} | {torch_best:.4f} ({threads}) | "
            f"{t['sklearn']:.4f} | {t['gemm-floor']:.4f} | "
            f"{t['neurocloud'] / peer:.2f}x | {t['neurocloud'] / torch_best:.2f}x | "
            f"{t['neurocloud'] / t['gemm-floor']:.2f}x | {peaks} |"
        )
        print(rows[-1], flush=True)
    if len(rows) > 2:
        print("\nTraining, median seconds per epoch (tiny: per 1000 full-batch steps):")
        print("\n".join(rows))
    if len(bounds) > 2:
        print(
            "\nLower bounds, seconds per epoch: the GEMMs plus the optimizer's update, timed "
            "apart and added, and run in one loop (x GEMM floor; no activations, loss or "
            "batch gathering); the same loop gathering each shuffled batch as fit does (x "
            "floor; x PyTorch's best); then a whole step on NumPy without the engine: gathering, "
            "products, bias, activation and bias-gradient passes, Adam updating the "
            "weights the products read (no loss; x floor; x PyTorch's best):"
        )
        print("\n".join(bounds))
    inference = _inference(args, rounds, min_sample)
    if inference:
        print("\nInference, median per call:")
        print("\n".join(inference))


if __name__ == "__main__":
    main()
