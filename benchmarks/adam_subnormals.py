"""Subnormal numbers in Adam's first moments, and what they cost an update.

A weight whose gradient is zero in most batches (a digits pixel that is rarely lit) has its
first moment ``m`` multiplied by beta1 at every step until it passes through the
subnormal range on its way to zero, where x86 processors take a slow path for operations
whose results or inputs are subnormal. This script trains the digits workload of
``train_speed.py`` (64-128-10, batch 64, Adam) for some epochs, counts the subnormal
moments, then times one update of the same state as it is and with those moments set to
zero: the NumPy reference's passes (``Adam._update``), and where numba is installed the
compiled kernel and the float32 one ``Adam`` runs while it finds such moments
(``kernels.adam_float32``: those moments in float64, rounded as float32 rounds, the same
bits), with the cost of the look that finds them (every ``kernels.NEAR_EVERY`` steps).
Flushing them to zero would change the results' bits, so the engine does not.

    python benchmarks/adam_subnormals.py [--epochs 50] [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    import numpy as np
    from sklearn.datasets import load_digits

    import neurocloud as nc
    from neurocloud.nn import kernels

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    model = nc.Sequential(
        [nc.layers.Dense(128, activation="relu"), nc.layers.Dense(10, activation="softmax")],
        input_dim=64,
        seed=0,
    )
    opt = nc.optim.Adam(lr=1e-3)
    loss = "sparse_categorical_crossentropy"
    print(f"load average at start: {os.getloadavg()}")
    start = time.perf_counter()
    model.fit(X, y, loss=loss, optimizer=opt, epochs=args.epochs, batch_size=64)
    seconds = time.perf_counter() - start
    tiny = np.finfo(np.float32).tiny
    m0, v0 = opt.state[0]["m"].ravel().copy(), opt.state[0]["v"].ravel().copy()
    p0, g0 = model.flat_parameters().copy(), model.flat_gradients().copy()
    subnormal = (np.abs(m0) < tiny) & (m0 != 0)
    flushed = np.where(subnormal, np.float32(0), m0).astype(np.float32)
    print(
        f"{args.epochs} epochs in {seconds:.2f} s; subnormal first moments: "
        f"{int(subnormal.sum())} of {m0.size}; in v: {int(((v0 < tiny) & (v0 != 0)).sum())}"
    )
    opt.t = max(opt.t, 1)
    scalars = opt._scalars()
    compiled = kernels.adam(work=kernels.COMPILE_AFTER)
    updates = {"NumPy reference": None}
    assert len(opt.state) == 1  # one flat buffer: every weight
    near = kernels.adam_float32()
    if compiled is not None and kernels.accepts(p0, g0, m0, v0):
        updates["compiled kernel (the call alone, as Adam makes it)"] = compiled
        if near is not None and p0.dtype == np.float32:
            updates["compiled float32 kernel, with the moments found"] = "near"
            updates["its look for them (every NEAR_EVERY steps)"] = "look"

    def one_call(kernel, m_start) -> float:
        times = []
        found = None if near is None else near[1](m_start)
        for _ in range(args.calls):
            p, g, m, v = p0.copy(), g0.copy(), m_start.copy(), v0.copy()
            tmp = np.empty_like(p)
            t = p.dtype.type
            constants = (t(opt.beta1), t(opt.beta2), t(scalars[0]), t(scalars[1]))
            begin = time.perf_counter()
            if kernel == "near":
                near[0](p, g, m, v, *constants, found)
            elif kernel == "look":
                near[1](m)
            elif kernel is None:
                opt._update(p, g, {"m": m, "v": v}, tmp, (*scalars[:2], kernel))
            else:
                kernel(p, g, m, v, *constants)
            times.append(time.perf_counter() - begin)
        return sorted(times)[args.calls // 2]

    print("| update | state as it is | subnormal moments set to zero | ratio |")
    print("|---|---|---|---|")
    for name, kernel in updates.items():
        as_is, zeroed = one_call(kernel, m0), one_call(kernel, flushed)
        print(f"| {name} | {as_is * 1e6:.1f} us | {zeroed * 1e6:.1f} us | {as_is / zeroed:.2f}x |")
    if near is not None:
        print(f"moments near the subnormals (below 2**-120) found: {near[1](m0).size}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
