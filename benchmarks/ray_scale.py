"""What Ray costs and buys on this machine: serving, scoring, tuning, data-parallel training.

One run on a local two-node Ray cluster (two 1-CPU nodes on 127.0.0.1, every port on
loopback), each part bounded in time and count:

1. Serving: requests/s and p50/p99 of ``POST /invocations {"x": [4.5]}`` (the article's
   network) for plain ``neurocloud serve``, Ray Serve's own no-op deployment (the floor that
   Ray's proxy allows) and ``neurocloud.ray.deployment``, with 1 and 2 replicas, at each
   ``--concurrency``; the ratio to the no-op floor is the cost our app adds inside Ray.
2. Ray Data: rows/s of ``predict_batches`` against one process's ``model.predict`` on the
   same rows, and the peak summed RSS of the processes involved.
3. Tune: trials per minute and the epochs that ASHA saved against running every trial to
   the end.
4. Data-parallel ``fit`` with 2 workers: time per step against one process, at three model
   sizes, and a paper model of where it pays off on real machines.

    .venv/bin/python benchmarks/ray_scale.py --duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from serve_load import load, wait_ready

import neurocloud as nc
from neurocloud.demo import article_network
from neurocloud.serve.launcher import free_port


class PeakRSS:
    """Samples the summed RSS of this process (and, with ``children``, of every process it
    started: the local Ray nodes and their workers) every 0.1 s."""

    def __init__(self, children: bool = True) -> None:
        self.children = children
        self.peak = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(0.1):
            total = 0
            family = me.children(recursive=True) if self.children else []
            for process in [me, *family]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total / 2**20)

    def __enter__(self) -> PeakRSS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def row(name: str, result: dict, floor: dict | None = None) -> str:
    ratio = f"{result['rps'] / floor['rps']:6.2f}x" if floor else "       "
    return (
        f"  {name:<34} {result['rps']:8.0f} {result['p50']:8.1f} {result['p99']:8.1f} "
        f"{result['errors']:6d}  {ratio}"
    )


def serving(model_dir: Path, levels: list[int], duration: float) -> None:
    from ray import serve
    from starlette.responses import Response

    from neurocloud.ray import deployment
    from neurocloud.ray.serving import _internal_grpc_on_node_address

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    class NoOp:
        def __init__(self) -> None:
            _internal_grpc_on_node_address()

        async def __call__(self, request):
            await request.body()
            return Response(b'{"y":[[0.0]]}', media_type="application/json")

    def measure(port: int) -> dict[int, dict]:
        return {c: asyncio.run(load(port, c, duration, 100_000)) for c in levels}

    print("\n1. Serving POST /invocations (requests/s, p50 ms, p99 ms, errors, x no-op floor)")
    port = free_port()
    command = [str(Path(sys.executable).parent / "neurocloud"), "serve", str(model_dir)]
    server = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        wait_ready(server, port, time.perf_counter())
        plain = measure(port)
    finally:
        server.terminate()
        server.wait(30)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    results: dict[str, dict[int, dict]] = {"neurocloud serve (1 process)": plain}
    for replicas in (1, 2):
        started = time.perf_counter()
        serve.run(NoOp.options(num_replicas=replicas).bind(), name="noop", route_prefix="/")
        noop = measure(port)
        serve.delete("noop")
        app = deployment(model_dir, num_replicas=replicas, ray_actor_options={"num_cpus": 0.5})
        serve.run(app, name="neurocloud", route_prefix="/")
        ours = measure(port)
        serve.delete("neurocloud")
        results[f"Ray no-op, {replicas} replica(s)"] = noop
        results[f"neurocloud on Ray, {replicas} replica(s)"] = ours
        print(
            f"  ({replicas} replica(s): both deployments and runs took "
            f"{time.perf_counter() - started:.0f} s)"
        )
    serve.shutdown()
    for c in levels:
        print(f" concurrency {c}:")
        for name, by_level in results.items():
            floor = None
            if name.startswith("neurocloud on Ray"):
                floor = results[name.replace("neurocloud on Ray", "Ray no-op")][c]
            print(row(name, by_level[c], floor))


def scoring(rows: int) -> None:
    import ray

    from neurocloud.ray import predict_batches

    print(f"\n2. Scoring {rows:,} rows x 64 features (64 -> 256 -> 10)")
    model = nc.Sequential(
        [nc.layers.Dense(256, activation="relu"), nc.layers.Dense(10)], input_dim=64, seed=0
    )
    path = nc.save(model, Path(tempfile.mkdtemp()) / "wide")
    X = np.random.default_rng(0).normal(size=(rows, 64)).astype(np.float32)
    with PeakRSS(children=False) as single:
        started = time.perf_counter()
        for start in range(0, rows, 4096):
            model.predict(X[start : start + 4096])
        one = time.perf_counter() - started
    print(
        f"  one process, model.predict:      {rows / one:10,.0f} rows/s  peak RSS "
        f"{single.peak:6.0f} MB"
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_numpy(np.array_split(X, 8))
    with PeakRSS() as distributed:
        started = time.perf_counter()
        # materialize, not count(): count() adds a task that needs a CPU of its own, and the
        # two actors hold both nodes' CPUs between them (0.5 each) plus the reading tasks.
        scored = predict_batches(ds, path, concurrency=2).materialize()
        elapsed = time.perf_counter() - started
    assert scored.count() == rows
    print(
        f"  Ray Data, 2 actors x 0.5 CPU:    {rows / elapsed:10,.0f} rows/s  peak RSS "
        f"{distributed.peak:6.0f} MB (this process and all of the cluster's processes)"
    )


def tuning(num_samples: int) -> None:
    from ray import tune as ray_tune

    from neurocloud.ray import tune
    from neurocloud.sklearn import NeuralNetClassifier

    print(f"\n3. Tune on digits: {num_samples} trials, ASHA, up to 20 epochs each")
    data = nc.datasets.load("digits")
    estimator = NeuralNetClassifier(hidden_layer_sizes=(32,), max_epochs=20, random_state=0)
    space = {
        "learning_rate": ray_tune.loguniform(1e-4, 3e-2),
        "hidden_layer_sizes": ray_tune.choice([(16,), (32,), (64,)]),
    }
    started = time.perf_counter()
    search = tune(estimator, space, data.X, data.y, num_samples=num_samples, grace_period=2)
    minutes = (time.perf_counter() - started) / 60
    print(
        f"  {len(search.results_)} trials in {minutes * 60:.0f} s: "
        f"{len(search.results_) / minutes:.1f} trials/minute"
    )
    print(
        f"  epochs run {search.epochs_run_} of {search.epochs_budget_} for the full "
        f"search ({1 - search.epochs_run_ / search.epochs_budget_:.0%} saved by ASHA)"
    )
    print(f"  best {search.best_params_}: validation accuracy {search.best_score_:.3f}")


def training(steps: int) -> None:
    import ray

    from neurocloud.nn import losses
    from neurocloud.ray.training import start_workers, step

    print("\n4. Data-parallel training, 2 workers, batch 512, float32 (ms per step)")
    print(
        f"  {'model':<16} {'params':>10} {'1 process':>10} {'2 workers':>10}  "
        f"{'compute at 1 TFLOP/s':>20} {'exchange at 10 Gb/s':>20}"
    )
    batch, loss = 512, losses.get("mse")
    for hidden in ((64,), (256, 256), (1024, 1024)):
        stack = [nc.layers.Dense(h, activation="relu") for h in hidden]
        model = nc.Sequential([*stack, nc.layers.Dense(1)], input_dim=64, seed=0)
        X = np.random.default_rng(0).normal(size=(batch * steps, 64)).astype(np.float32)
        y = X[:, :1] ** 2
        model.build(64)
        opt, params, grads = nc.optim.Adam(), [model.flat_parameters()], [model.flat_gradients()]
        model.train_step(X[:batch], y[:batch], loss, False)  # warm, as the workers are
        started = time.perf_counter()
        for start in range(0, len(X), batch):
            model.train_step(X[start : start + batch], y[start : start + batch], loss, False)
            opt.step(params, grads)
        one = (time.perf_counter() - started) / steps
        workers = start_workers(model, X, y, None, 2, num_cpus=0.5)
        step(workers, np.arange(batch), model, loss, 0.0)  # warm: first transfers
        started = time.perf_counter()
        for start in range(0, len(X), batch):
            step(workers, np.arange(start, start + batch), model, loss, 0.0)
            opt.step(params, grads)
        two = (time.perf_counter() - started) / steps
        for worker in workers:
            ray.kill(worker)
        size = model.count_params()
        flops = 6 * size * batch  # forward and backward: about 3 x 2 flops per weight and row
        exchange = 2 * size * 4 * 8  # bits: each worker's gradient in, the weights out
        name = "64-" + "-".join(map(str, hidden)) + "-1"
        print(
            f"  {name:<16} {size:>10,} {one * 1e3:>10.2f} {two * 1e3:>10.2f}  "
            f"{flops / 1e12 * 1e3:>17.2f} ms {exchange / 10e9 * 1e3:>17.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3, help="seconds per load run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--skip", nargs="*", default=[], choices=["serve", "data", "tune", "fit"])
    args = parser.parse_args()
    os.environ.setdefault("RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING", "0")

    from neurocloud.ray import local_cluster

    workdir = Path(tempfile.mkdtemp())
    model_dir = nc.save(article_network(seed=0), workdir / "seed")
    started = time.perf_counter()
    with local_cluster(num_nodes=2, num_cpus=1):
        print(
            f"two-node local cluster up in {time.perf_counter() - started:.0f} s; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        if "serve" not in args.skip:
            serving(model_dir, args.concurrency, args.duration)
        if "data" not in args.skip:
            scoring(args.rows)
        if "tune" not in args.skip:
            tuning(args.trials)
        if "fit" not in args.skip:
            training(args.steps)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
