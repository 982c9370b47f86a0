"""Why ``predict`` does not split a large input's rows between threads: the split, timed
with the BLAS's idle workers asleep and awake.

The experiment: the rows in two halves, each on its own thread with the BLAS limited to one
thread per call (threadpoolctl), so that the bias and activation passes run on both cores
as well as the products. Against ``predict`` (the BLAS's own threads for each product),
with the mnist-shape network (784-256-128-10), alternating in rounds:

- "asleep": each group of calls starts 0.3 s after the last, and nothing else calls the
  BLAS, so its workers have gone to sleep;
- "awake": a multi-threaded 512x512 product runs just before each predict. OpenBLAS's
  workers then spin for a while (its ``OPENBLAS_THREAD_TIMEOUT``) before they sleep, and
  compete with the split's second thread for the cores.

    python benchmarks/predict_split.py [--rows 2048,4096,60000] [--rounds 3]

Run it with ``OPENBLAS_THREAD_TIMEOUT=4`` to see the split without the spinning.
"""

from __future__ import annotations

import argparse
import os
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2048,4096,60000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    from threadpoolctl import ThreadpoolController, threadpool_info

    import neurocloud as nc

    hidden = [nc.layers.Dense(u, activation="relu") for u in (256, 128)]
    model = nc.Sequential([*hidden, nc.layers.Dense(10, activation="softmax")], input_dim=784)
    rng = np.random.default_rng(4)
    square = rng.standard_normal((512, 512)).astype(np.float32)
    blas_libraries = ThreadpoolController().select(user_api="blas")

    def split_predict(X: np.ndarray) -> np.ndarray:
        half, out = len(X) // 2, np.empty((len(X), 10), np.float32)

        def part(a: int, b: int) -> None:
            out[a:b] = model.predict(X[a:b])

        with blas_libraries.limit(limits=1):
            other = threading.Thread(target=part, args=(half, len(X)))
            other.start()
            part(0, half)
            other.join()
        return out

    blas = [
        f"{lib['internal_api']} {lib['version']} {lib.get('architecture', '')}, "
        f"{lib['num_threads']} threads"
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    ]
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "(unset)")
    print(f"BLAS: {'; '.join(blas)}; OPENBLAS_THREAD_TIMEOUT={timeout}")
    print(f"load average at start: {os.getloadavg()}")
    print("| rows | workers | predict | split | split / predict |")
    print("|---|---|---|---|---|")
    for rows in map(int, args.rows.split(",")):
        X = rng.standard_normal((rows, 784)).astype(np.float32)
        repeats = max(5, min(60, 200_000 // rows))
        if not np.allclose(split_predict(X), model.predict(X), rtol=1e-5, atol=1e-6):
            raise AssertionError("the split's outputs differ from predict's")
        for workers in ("asleep", "awake"):

            def timed(run, X=X, workers=workers) -> float:
                if workers == "awake":
                    square @ square
                start = time.perf_counter()
                run(X)
                return time.perf_counter() - start

            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, run in (("predict", model.predict), ("split", split_predict)):
                    if workers == "asleep":
                        time.sleep(0.3)  # past OpenBLAS's spin after the last group
                    median = sorted(timed(run) for _ in range(repeats))[repeats // 2]
                    best[name] = min(best.get(name, median), median)
            a, b = best["predict"], best["split"]
            print(f"| {rows:,} | {workers} | {a * 1e3:.2f} ms | {b * 1e3:.2f} ms | {b / a:.2f}x |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
