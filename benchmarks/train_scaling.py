"""How training time per epoch grows with the rows and with the width of the network.

Two sweeps, each a full epoch of ``model.fit`` (Adam, batch 128, float32, shuffled), best of
``--repeat`` epochs, in this process:

- rows 1,000-100,000 on the mnist-shape network (784 -> 256 -> 128 -> 10, ReLU, softmax);
- width 64-4,096 units on 784 -> W -> W -> 10 over ``--width-rows`` rows (default 2,048).

Each row also gives the time per multiply-add of the step's GEMMs (6 x rows x weights per
epoch: forward, and the two backward products), which is flat while the cost is linear and
moves where it stops being linear. ``--plot PATH`` saves both curves (needs matplotlib).

    .venv/bin/python benchmarks/train_scaling.py [--quick] [--plot scaling.png]

Bounded: the largest cells (100,000 rows; width 4,096) take a few seconds an epoch on
2 cores; ``--quick`` drops the two largest cells of each sweep.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import numpy as np

import neurocloud as nc

ROWS = (1_000, 3_000, 10_000, 30_000, 100_000)
WIDTHS = (64, 256, 1024, 2048, 4096)
BATCH = 128


def epoch_seconds(sizes: tuple[int, ...], rows: int, repeat: int) -> float:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], rows)
    hidden = [nc.layers.Dense(u, activation="relu") for u in sizes[1:-1]]
    model = nc.Sequential(
        [*hidden, nc.layers.Dense(sizes[-1], activation="softmax")], input_dim=sizes[0], seed=0
    )
    opt = nc.optim.Adam(lr=1e-3)
    best = float("inf")
    for _ in range(repeat + 1):  # the first epoch warms up (allocations, page faults)
        start = time.perf_counter()
        model.fit(
            X, y, loss="sparse_categorical_crossentropy", optimizer=opt, epochs=1, batch_size=BATCH
        )
        best = min(best, time.perf_counter() - start)
    return best


def macs(sizes: tuple[int, ...], rows: int) -> float:
    return 3.0 * rows * sum(a * b for a, b in itertools.pairwise(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the two largest cells")
    parser.add_argument("--repeat", type=int, default=2, help="timed epochs per cell (best)")
    parser.add_argument("--width-rows", type=int, default=2048)
    parser.add_argument("--plot", metavar="PATH", help="save the two curves as an image")
    args = parser.parse_args()
    rows_sweep = ROWS[:-2] if args.quick else ROWS
    width_sweep = WIDTHS[:-2] if args.quick else WIDTHS
    print(f"load average at start: {os.getloadavg()}")
    print("\n| rows (mnist-shape) | s per epoch | s per 1k rows | ns per GEMM multiply-add |")
    print("|---|---|---|---|")
    by_rows = []
    for rows in rows_sweep:
        sizes = (784, 256, 128, 10)
        s = epoch_seconds(sizes, rows, args.repeat)
        by_rows.append(s)
        print(f"| {rows:,} | {s:.4f} | {s / rows * 1e3:.4f} | {s / macs(sizes, rows) * 1e9:.3f} |")
    print(
        f"\n| width W (784 -> W -> W -> 10, {args.width_rows:,} rows) | weights | s per epoch | "
        "ns per GEMM multiply-add |"
    )
    print("|---|---|---|---|")
    by_width = []
    for width in width_sweep:
        sizes = (784, width, width, 10)
        s = epoch_seconds(sizes, args.width_rows, args.repeat)
        by_width.append(s)
        weights = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
        print(
            f"| {width:,} | {weights:,} | {s:.4f} | {s / macs(sizes, args.width_rows) * 1e9:.3f} |"
        )
    print(f"\nload average at end: {os.getloadavg()}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        left.loglog(rows_sweep, by_rows, "o-")
        left.set(xlabel="rows", ylabel="seconds per epoch", title="mnist-shape network")
        right.loglog(width_sweep, by_width, "o-")
        right.set(xlabel="units per hidden layer", title=f"{args.width_rows:,} rows")
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
