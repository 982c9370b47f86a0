"""Batch predicts in a fresh process: time and page faults per call, with the inference
plan's reused buffers and without them.

A hidden product of a predict is a large array; allocated anew at each call, it is often
fresh pages from the kernel (malloc returns freed ones), and each page's first write is a
fault. The plan writes those products into two buffers per thread instead
(``neurocloud.nn.inference.SCRATCH_MIN_BYTES``). Each setting runs in its own process, so
both start from the same fresh allocator; the row counts run in the order given, as a
script's successive predicts would.

    python benchmarks/predict_pages.py [--rows 256,700,1024,1337,4096,60000] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def worker(rows: list[int], calls: int, buffers: bool) -> None:
    import numpy as np

    import neurocloud as nc
    from neurocloud.nn import inference

    if not buffers:
        inference.SCRATCH_MIN_BYTES = 1 << 62
    hidden = [nc.layers.Dense(u, activation="relu") for u in (256, 128)]
    model = nc.Sequential([*hidden, nc.layers.Dense(10, activation="softmax")], input_dim=784)
    X = np.random.default_rng(4).standard_normal((max(rows), 784), dtype=np.float32)
    results = []
    for n in rows:
        xb, times = X[:n], []
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(calls):
            start = time.perf_counter()
            model.predict(xb)
            times.append(time.perf_counter() - start)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls
        results.append({"rows": n, "median": sorted(times)[calls // 2], "faults": faults})
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="256,700,1024,1337,4096,60000")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--worker", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    if args.worker:
        worker(rows, args.calls, args.worker == "on")
        return
    runs = {}
    for setting in ("on", "off"):
        command = [sys.executable, __file__, "--rows", args.rows, "--calls", str(args.calls)]
        done = subprocess.run([*command, "--worker", setting], capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr)
        runs[setting] = json.loads(done.stdout)
    print(f"load average at end: {os.getloadavg()}; mnist-shape model, {args.calls} calls each")
    print("| rows | with buffers: median, faults per call | without | time ratio |")
    print("|---|---|---|---|")
    for on, off in zip(runs["on"], runs["off"]):
        print(
            f"| {on['rows']} | {on['median'] * 1e3:.3f} ms, {on['faults']:.0f} | "
            f"{off['median'] * 1e3:.3f} ms, {off['faults']:.0f} | "
            f"{on['median'] / off['median']:.2f}x |"
        )


if __name__ == "__main__":
    main()
