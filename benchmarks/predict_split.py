"""Batch predicts with the rows split between threads (each running the BLAS on one
thread) and without, alternating in one process: where the split starts to pay.

``InferencePlan.run_blocks`` splits a predict's rows when its products take at least
``neurocloud.nn.inference.SPLIT_MIN_MACS`` multiply-adds. This script times the mnist-shape
network (784-256-128-10) at several row counts both ways, in alternating rounds, and
prints each count's medians (best round) and their ratio, with the machine's BLAS.

    python benchmarks/predict_split.py [--rows 1024,1337,1536,2048,4096,60000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time


def median_seconds(predict, X, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(X)
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1024,1337,1536,2048,4096,60000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    from threadpoolctl import threadpool_info

    import neurocloud as nc
    from neurocloud.nn import inference, parallel

    threshold = inference.SPLIT_MIN_MACS
    hidden = [nc.layers.Dense(u, activation="relu") for u in (256, 128)]
    model = nc.Sequential([*hidden, nc.layers.Dense(10, activation="softmax")], input_dim=784)
    blas = [
        f"{lib['internal_api']} {lib['version']} {lib.get('architecture', '')} "
        f"{lib['num_threads']} threads"
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    ]
    print(f"BLAS: {'; '.join(blas)}; engine threads {parallel.threads()}")
    print(f"load average at start: {os.getloadavg()}; SPLIT_MIN_MACS {threshold:,}")
    print("| rows | split (default threshold)? | not split | split | split / not split |")
    print("|---|---|---|---|---|")
    X = np.random.default_rng(4).standard_normal((max(map(int, args.rows.split(","))), 784))
    X = X.astype(np.float32)
    for rows in map(int, args.rows.split(",")):
        xb = X[:rows]
        repeats = max(7, min(200, 400_000 // rows))
        model.predict(xb)
        whole, split = [], []
        for _ in range(args.rounds):
            inference.SPLIT_MIN_MACS = 1 << 62
            whole.append(median_seconds(model.predict, xb, repeats))
            inference.SPLIT_MIN_MACS = 1
            split.append(median_seconds(model.predict, xb, repeats))
        inference.SPLIT_MIN_MACS = threshold
        a, b = min(whole), min(split)
        print(
            f"| {rows:,} | {'yes' if model._plan.splits(rows) else 'no'} | {a * 1e3:.3f} ms "
            f"| {b * 1e3:.3f} ms | {b / a:.2f}x |"
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
