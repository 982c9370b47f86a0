"""What Ray costs and buys on this machine: serving, scoring, tuning, data-parallel training.

One run on a local two-node Ray cluster (two 1-CPU nodes on 127.0.0.1, every port on
loopback), each part bounded in time and count:

1. Serving: requests/s and p50/p99 of ``POST /invocations {"x": [4.5]}`` (the article's
   network) for plain ``neurocloud serve``, and through Ray's proxy for two no-op
   deployments (Ray Serve's floor: function-style, and behind ``serve.ingress``) and
   ``neurocloud.ray.deployment``, with 1 and 2 replicas, at each ``--concurrency``; the three
   run side by side and are measured in interleaved rounds, and the median ratio to each
   floor (with its range) is the cost our app adds inside Ray.
2. Ray Data: rows/s of ``predict_batches`` against one process's ``model.predict`` on the
   same rows, and the peak summed RSS of the processes involved.
3. Tune: trials per minute and the epochs that ASHA saved against running every trial to
   the end.
4. Data-parallel ``fit`` with 2 workers: time per step against one process, at three model
   sizes, for each way of exchanging gradients (the driver reducing, our actor all-reduce,
   ``ray.util.collective``'s gloo, Ray Train's ``TorchTrainer``), the exchange alone, and
   what each leaves listening outside 127.0.0.1.

    .venv/bin/python benchmarks/ray_scale.py --duration 3 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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

LOOPBACK_PREFIXES = ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]")
#: a run is bounded by its duration; this only keeps the request count bounded too
MAX_REQUESTS = 1_000_000


def machine() -> str:
    """The CPU model (lscpu), the BLAS NumPy calls (threadpoolctl) and the load average."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), cpu
        )
    from threadpoolctl import threadpool_info

    blas = ", ".join(
        f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} CPUs; BLAS {blas}; load average {load}"


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


def _no_op_deployments():
    """Ray Serve's floors: a function-style deployment that answers a fixed body, and the
    same behind ``serve.ingress`` (the ASGI path our deployment takes)."""
    from ray import serve
    from starlette.responses import Response

    from neurocloud.ray.serving import _internal_grpc_on_node_address

    answer = b'{"y":[[0.0]]}'

    @serve.deployment(ray_actor_options={"num_cpus": 0.25})
    class NoOp:
        def __init__(self) -> None:
            _internal_grpc_on_node_address()

        async def __call__(self, request):
            await request.body()
            return Response(answer, media_type="application/json")

    async def asgi(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"application/json"), (b"content-length", b"13")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    @serve.deployment(ray_actor_options={"num_cpus": 0.25})
    @serve.ingress()
    class NoOpAsgi:  # the way NeurocloudDeployment hands Ray its ASGI app
        def __init__(self) -> None:
            _internal_grpc_on_node_address()

        def __serve_build_asgi_app__(self):
            return asgi

    return NoOp, NoOpAsgi


def serving(model_dir: Path, levels: list[int], duration: float, rounds: int) -> None:
    """Requests/s through Ray's proxy: the two no-op floors and our deployment, deployed
    side by side under their own route prefixes and measured in interleaved runs (the
    order rotating every round), so that the machine's drift hits all three alike; the
    ratio to each floor is taken per round, and its median and range reported."""
    from ray import serve

    from neurocloud.ray import deployment

    print(
        f"\n1. Serving POST /invocations, closed loop, {duration:g} s per run, {rounds} "
        "interleaved rounds (median requests/s, p50 ms, p99 ms)"
    )
    port = free_port()
    command = [str(Path(sys.executable).parent / "neurocloud"), "serve", str(model_dir)]
    server = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        wait_ready(server, port, time.perf_counter())
        for c in levels:
            plain = asyncio.run(load(port, c, duration, MAX_REQUESTS))
            print(f"  neurocloud serve, 1 process, concurrency {c}: {plain['rps']:,.0f} req/s")
    finally:
        server.terminate()
        server.wait(30)
    no_op, no_op_asgi = _no_op_deployments()
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    names = ("no-op", "no-op ASGI", "neurocloud")
    for replicas in (1, 2):
        started = time.perf_counter()
        apps = {
            "no-op": no_op.options(num_replicas=replicas).bind(),
            "no-op ASGI": no_op_asgi.options(num_replicas=replicas).bind(),
            "neurocloud": deployment(
                model_dir, num_replicas=replicas, ray_actor_options={"num_cpus": 0.25}
            ),
        }
        for i, app in enumerate(apps.values()):
            serve.run(app, name=f"app{i}", route_prefix=f"/app{i}")
        paths = {name: f"/app{i}/invocations" for i, name in enumerate(names)}
        print(
            f" {replicas} replica(s) each, deployed in {time.perf_counter() - started:.0f} s; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        for c in levels:
            runs: dict[str, list[dict]] = {name: [] for name in names}
            for r in range(rounds):
                order = names[r % 3 :] + names[: r % 3]
                for name in order:
                    runs[name].append(
                        asyncio.run(load(port, c, duration, MAX_REQUESTS, paths[name]))
                    )
            print(f"  concurrency {c}:")
            for name in names:
                rps = np.array([run["rps"] for run in runs[name]])
                p50 = np.median([run["p50"] for run in runs[name]])
                p99 = np.median([run["p99"] for run in runs[name]])
                errors = sum(run["errors"] for run in runs[name])
                print(
                    f"    {name:<12} {np.median(rps):8.0f} req/s  p50 {p50:6.1f}  p99 {p99:6.1f}"
                    f"  errors {errors}  (runs {', '.join(f'{x:.0f}' for x in rps)})"
                )
            ours = np.array([run["rps"] for run in runs["neurocloud"]])
            for floor in ("no-op", "no-op ASGI"):
                ratio = ours / np.array([run["rps"] for run in runs[floor]])
                print(
                    f"    neurocloud / {floor:<10}: median {np.median(ratio):.2f}x, "
                    f"range {ratio.min():.2f}-{ratio.max():.2f}x over {rounds} rounds"
                )
        for i in range(len(names)):
            serve.delete(f"app{i}")
    serve.shutdown()


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


class DriverReduceWorker:
    """The mechanism ``neurocloud.ray.fit`` had before (kept here to compare): the driver
    sends the weights, each worker answers its shard's gradient, the driver averages."""

    def __init__(self, model, X, y) -> None:
        from neurocloud.nn.training import Trainer

        self.model, self.X, self.y, self.trainer = model, X, y, Trainer(loss="mse")

    def gradient(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        self.model.flat_parameters()[...] = weights
        self.trainer.step(self.model, self.X[rows], self.y[rows])
        return self.model.flat_gradients()


def _driver_reduce_steps(model, X, y, batch: int, epochs: int) -> float:
    """ms per step of the driver reduction with 2 workers (after a warm-up epoch)."""
    import ray

    worker = ray.remote(num_cpus=0.5)(DriverReduceWorker)
    data = [ray.put(a) for a in (X, y)]
    workers = [worker.remote(model, *data) for _ in range(2)]
    opt, params, grads = nc.optim.Adam(), [model.flat_parameters()], [model.flat_gradients()]
    steps = len(X) // batch
    for epoch in range(epochs + 1):
        if epoch == 1:
            started = time.perf_counter()
        for start in range(0, len(X), batch):
            weights = ray.put(model.flat_parameters())
            shards = np.array_split(np.arange(start, start + batch), 2)
            parts = ray.get([w.gradient.remote(s, weights) for w, s in zip(workers, shards)])
            grads[0][...] = (parts[0] + parts[1]) / 2
            opt.step(params, grads)
    elapsed = time.perf_counter() - started
    for w in workers:
        ray.kill(w)
    return elapsed / (epochs * steps) * 1e3


def _hook_steps(model, X, y, batch: int, epochs: int, allreduce: str, seen: set) -> float:
    """ms per step of ``neurocloud.ray.fit``'s workers (the Trainer's gradient hook);
    adds what this machine listens on while they run to ``seen``."""
    import ray

    from neurocloud.ray import allreduce as groups
    from neurocloud.ray.cluster import listening_sockets
    from neurocloud.ray.training import start_workers

    group = groups.create(allreduce, 2)
    settings = {"loss": "mse", "optimizer": "adam", "epochs": 1, "batch_size": batch}
    workers = start_workers(model, X, y, None, 2, 0.5, group, settings)
    ray.get([w.epoch.remote(0) for w in workers])  # warm: first transfers, gloo's rendezvous
    seen.update(listening_sockets())
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        ray.get([w.epoch.remote(epoch) for w in workers])
    elapsed = time.perf_counter() - started
    for w in workers:
        ray.kill(w)
    group.close()
    return elapsed / (epochs * (len(X) // batch)) * 1e3


def _ray_train_steps(model, X, y, batch: int, epochs: int) -> tuple[float, float]:
    """(ms per step, s to start and finish) of the same workers' loop under Ray Train's
    ``TorchTrainer`` (a ``DataParallelTrainer`` whose backend sets up torch.distributed's
    gloo), the all-reduce done with ``torch.distributed.all_reduce``."""
    import ray.train
    from ray.train.torch import TorchTrainer

    def loop(config: dict) -> None:
        import torch
        import torch.distributed as dist

        from neurocloud.ray.cluster import listening_sockets
        from neurocloud.ray.training import ShardTrainer

        def member(part: np.ndarray) -> np.ndarray:
            dist.all_reduce(torch.from_numpy(part))
            return part

        context = ray.train.get_context()
        rank, size = context.get_world_rank(), context.get_world_size()
        trainer = ShardTrainer(rank, size, member, loss="mse", optimizer="adam", batch_size=batch)
        net, times = config["model"], []
        for epoch in range(epochs + 1):
            trainer.initial_epoch, trainer.epochs = epoch, epoch + 1
            started = time.perf_counter()
            trainer.fit(net, config["X"], config["y"])
            times.append(time.perf_counter() - started)
        # Ray Train keeps reported metrics only with a checkpoint: a file says it instead.
        out = {"seconds": sum(times[1:]), "sockets": listening_sockets()}
        Path(config["out"], f"rank{rank}.json").write_text(json.dumps(out))

    storage = tempfile.mkdtemp(prefix="neurocloud-train-")
    started = time.perf_counter()
    result = TorchTrainer(
        loop,
        train_loop_config={"model": model, "X": X, "y": y, "out": storage},
        scaling_config=ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        run_config=ray.train.RunConfig(storage_path=storage, name="bench"),
    ).fit()
    total = time.perf_counter() - started
    if result.error is not None:
        raise result.error
    ranks = [json.loads(Path(storage, f"rank{r}.json").read_text()) for r in range(2)]
    seconds = max(r["seconds"] for r in ranks)
    per_step = seconds / (epochs * (len(X) // batch)) * 1e3
    return per_step, total - seconds * (epochs + 1) / epochs, {*ranks[0]["sockets"]}


def _exchange_only(size: int, repeats: int, allreduce: str) -> float:
    """ms per all-reduce of ``size`` float32 between 2 workers, with nothing computed."""
    import ray

    from neurocloud.ray import allreduce as groups

    @ray.remote(num_cpus=0.5)
    def rounds(member, n: int) -> float:
        part = np.zeros(size, np.float32)
        member(part)  # warm: gloo's rendezvous
        started = time.perf_counter()
        for _ in range(n):
            member(part)
        return time.perf_counter() - started

    group = groups.create(allreduce, 2)
    seconds = ray.get([rounds.remote(group.member(r), repeats) for r in range(2)])
    group.close()
    return max(seconds) / repeats * 1e3


def training(steps: int, epochs: int = 2) -> None:
    from neurocloud.nn.training import Trainer
    from neurocloud.ray.cluster import listening_sockets

    print(
        f"\n4. Data-parallel training, 2 workers x 0.5 CPU, batch 512, {steps} steps x "
        f"{epochs} epochs, float32, Adam (ms per step)"
    )
    print(
        f"  {'model':<16} {'params':>10} {'1 process':>9} {'driver':>8} {'actor':>8} "
        f"{'gloo':>8} {'RayTrain':>8}  {'exchange only: actor':>20} {'gloo':>6}"
    )
    batch = 512
    before = set(listening_sockets())
    gloo_seen: set[str] = set()
    train_seen: set[str] = set()
    for hidden in ((64,), (256, 256), (1024, 1024)):
        stack = [nc.layers.Dense(h, activation="relu") for h in hidden]
        model = nc.Sequential([*stack, nc.layers.Dense(1)], input_dim=64, seed=0)
        X = np.random.default_rng(0).normal(size=(batch * steps, 64)).astype(np.float32)
        y = X[:, :1] ** 2
        model.build(64)
        single = Trainer(loss="mse", optimizer="adam", epochs=1, batch_size=batch)
        single.fit(model, X, y)  # warm, as the workers are
        started = time.perf_counter()
        single.epochs = 1 + epochs
        single.initial_epoch = 1
        single.fit(model, X, y)
        one = (time.perf_counter() - started) / (epochs * steps) * 1e3
        driver = _driver_reduce_steps(model, X, y, batch, epochs)
        actor = _hook_steps(model, X, y, batch, epochs, "actor", set())
        gloo = _hook_steps(model, X, y, batch, epochs, "gloo", gloo_seen)
        train, train_fixed, sockets = _ray_train_steps(model, X, y, batch, epochs)
        train_seen |= sockets
        size = model.count_params()
        bare = [_exchange_only(size, 20, name) for name in ("actor", "gloo")]
        name = "64-" + "-".join(map(str, hidden)) + "-1"
        print(
            f"  {name:<16} {size:>10,} {one:>9.1f} {driver:>8.1f} {actor:>8.1f} {gloo:>8.1f} "
            f"{train:>8.1f}  {bare[0]:>20.2f} {bare[1]:>6.2f}"
        )
        print(f"  {'':<16} Ray Train: {train_fixed:.1f} s to start and stop the run")
    for name, seen in (("gloo", gloo_seen), ("Ray Train", train_seen)):
        outside = sorted(a for a in seen - before if not a.startswith(LOOPBACK_PREFIXES))
        print(f"  new sockets outside 127.0.0.1 while {name} ran: {outside or 'none'}")
    print(
        "  on real machines, per step: compute 6 x params x rows / FLOP/s; exchange "
        "2 x params x 32 bits / bandwidth (see the docs' model)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3, help="seconds per load run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved serving rounds")
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
        print(f"two-node local cluster up in {time.perf_counter() - started:.0f} s")
        print(f"machine: {machine()}")
        if "serve" not in args.skip:
            serving(model_dir, args.concurrency, args.duration, args.rounds)
        if "data" not in args.skip:
            scoring(args.rows)
        if "tune" not in args.skip:
            tuning(args.trials)
        if "fit" not in args.skip:
            training(args.steps)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()}")


if __name__ == "__main__":
    main()
