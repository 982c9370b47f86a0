"""Where the training step's arrays start in memory, and what it costs an update.

NumPy's large arrays fresh from ``mmap`` all start at the same offset within a 4 KiB page,
so an update that reads the parameters, gradients and optimizer state at the same index
hits the processor's 4 KiB aliasing between loads and stores. ``nn.memory`` places each kind of
array in its own 1 KiB lane of a page. This script builds the mnist-shape and wide
models of ``train_speed.py`` three times: every array 16 bytes into a page (where glibc's
``mmap`` puts a large one), wherever ``np.zeros`` puts it (the engine before the lanes),
and in the lanes (each by swapping ``nn.memory.zeros`` while the model and its optimizer
state are made). Interleaved in one process, it times one Adam step on the flat weights
(compiled where numba is installed, and the NumPy reference) and whole epochs of
mnist-shape's ``fit``. The three compute the same bits; the script checks that their
weights agree after the epochs.

    python benchmarks/update_alignment.py [--calls 300] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    import numpy as np

    import neurocloud as nc
    from neurocloud.nn import kernels, memory

    lanes = memory.zeros
    rng = np.random.default_rng(0)

    def one_offset(shape, dtype, lane: float = 0) -> np.ndarray:
        # every array 16 bytes into a page, where glibc's mmap puts a large one
        a = np.zeros(shape, dtype)
        if a.nbytes < memory.MIN_BYTES:
            return a
        block = np.zeros(a.nbytes + memory.PAGE, np.uint8)
        start = (16 - block.ctypes.data) % memory.PAGE
        return block[start : start + a.nbytes].view(a.dtype).reshape(a.shape)

    def numpys(shape, dtype, lane: float = 0) -> np.ndarray:
        return np.zeros(shape, dtype)  # wherever malloc puts it: the engine before the lanes

    PLACEMENTS = {"one offset": one_offset, "np.zeros": numpys, "lanes": lanes}

    def placed(placement: str, make: Callable[[], object]):
        memory.zeros = PLACEMENTS[placement]
        try:
            return make()
        finally:
            memory.zeros = lanes

    def new_model(sizes: tuple[int, ...]) -> nc.Sequential:
        return nc.Sequential(
            [nc.layers.Dense(u, activation="relu") for u in sizes[1:-1]]
            + [nc.layers.Dense(sizes[-1], activation="softmax")],
            input_dim=sizes[0],
            seed=0,
        )

    def build(sizes: tuple[int, ...], placement: str):
        def make():
            model = new_model(sizes)
            opt = nc.optim.Adam(lr=1e-3)
            params, grads = [model.flat_parameters()], [model.flat_gradients()]
            grads[0][:] = rng.standard_normal(grads[0].size).astype(np.float32) * 1e-3
            opt.step(params, grads)  # allocates the state, in this build's placement
            return model, opt, params, grads

        return placed(placement, make)

    def offsets(model, opt) -> str:
        arrays = [model.flat_parameters(), model.flat_gradients(), *opt.state[0].values()]
        return "/".join(str(a.ctypes.data % memory.PAGE) for a in arrays)

    def median_step(opt, params, grads, calls: int) -> float:
        times = []
        for _ in range(calls):
            begin = time.perf_counter()
            opt.step(params, grads)
            times.append(time.perf_counter() - begin)
        return sorted(times)[len(times) // 2]

    names = list(PLACEMENTS)
    print(f"load average at start: {os.getloadavg()}")
    print("One Adam step on the flat weights, best of 3 interleaved rounds' medians:")
    print(f"| model (weights) | update | {' | '.join(names)} | lanes / one offset |")
    print("|---|---|" + "---|" * (len(names) + 1))
    settings = {"compiled": "always", "NumPy reference": "0"}
    if kernels.adam(work=kernels.COMPILE_AFTER) is None:
        settings.pop("compiled")
    for name, sizes in (("mnist-shape", (784, 256, 128, 10)), ("wide", (1024, 2048, 2048, 10))):
        builds = {placement: build(sizes, placement) for placement in names}
        print(
            f"| {name}: offsets of parameters / gradients / m / v in a page | - | "
            + " | ".join(offsets(m, o) for m, o, *_ in builds.values())
            + " | - |"
        )
        for update, value in settings.items():
            os.environ["NEUROCLOUD_COMPILED"] = value
            calls = args.calls if name == "mnist-shape" else max(10, args.calls // 10)
            best: dict[str, list[float]] = {placement: [] for placement in names}
            for _ in range(3):
                for placement, (_, opt, params, grads) in builds.items():
                    best[placement].append(median_step(opt, params, grads, calls))
            cells = " | ".join(f"{min(best[p]) * 1e6:.0f} us" for p in names)
            ratio = min(best["lanes"]) / min(best["one offset"])
            size = builds["lanes"][0].count_params()
            print(f"| {name} ({size:,}) | {update} | {cells} | {ratio:.2f}x |")
    os.environ["NEUROCLOUD_COMPILED"] = "always"

    X = rng.standard_normal((60_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 60_000)
    fits: dict[str, Callable[[], None]] = {}
    models = {}
    for placement in names:
        model = placed(placement, lambda: new_model((784, 256, 128, 10)))  # seed 0: one start
        opt = nc.optim.Adam(lr=1e-3)

        def fit(rows: int = len(X), model=model, opt=opt) -> None:
            loss = "sparse_categorical_crossentropy"
            model.fit(X[:rows], y[:rows], loss=loss, optimizer=opt, batch_size=128)

        placed(placement, lambda fit=fit: fit(256))  # the first step allocates the state
        models[placement], fits[placement] = model, fit
    epochs: dict[str, list[float]] = {placement: [] for placement in names}
    for _ in range(args.epochs):
        for placement, fit in fits.items():
            begin = time.perf_counter()
            fit()
            epochs[placement].append(time.perf_counter() - begin)
    weights = [m.flat_parameters() for m in models.values()]
    same = all(np.array_equal(weights[0], w) for w in weights[1:])
    print(
        f"\nmnist-shape fit, seconds per epoch, {args.epochs} interleaved epochs (batch 128, "
        f"Adam, NEUROCLOUD_COMPILED=always); the same weights after them: {same}"
    )
    print("| placement | median | each epoch |")
    print("|---|---|---|")
    for placement, times in epochs.items():
        each = " ".join(f"{t:.3f}" for t in times)
        print(f"| {placement} | {float(np.median(times)):.4f} | {each} |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
