"""Load test: ``neurocloud serve`` against a plain FastAPI + PyTorch app serving the same
network (the article's 1-2-2-1 model), both started here as subprocesses on 127.0.0.1.

Cold start (process start to the first 200 on ``/ping``, median of ``--cold-starts``), then
closed-loop load of ``POST /invocations {"x": [4.5]}`` over keep-alive connections at each
concurrency level, each run bounded by ``--duration`` seconds and ``--max-requests``
requests: requests/s, p50/p99 latency and errors; finally each server's peak RSS. The
servers' runs alternate, ``--rounds`` times, so that other activity on the machine hits
them alike; the table shows each server's best run per level and the ratios.

A third server, ``lean-starlette``, is a reference rather than a competitor: a bare
Starlette + NumPy handler that runs the forward pass inline on the event loop with no
validation, negotiation, metrics or batching. Its throughput is the ceiling that the HTTP
stack allows on the machine; ``--no-lean`` leaves it out.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/serve_load.py --duration 3 --rounds 3

The default client is a raw asyncio HTTP/1.1 loop, so the load generator itself stays cheap
(it shares the machine's cores with the server under test). ``--client wrk`` drives the load
with wrk (``apt-get install wrk``; one thread, a Lua script for the POST body, bounded by
``--duration`` only), a native client that measures the server's capacity rather than the
Python client's: at low concurrency the asyncio client itself is the bottleneck. Without wrk
on the PATH the Python client is used, and the table says which one ran.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BODY = b'{"x": [4.5]}'


# --- the competitor: what a user would write with FastAPI and PyTorch -------------------
def run_fastapi_app(model_dir: str, port: int) -> None:
    """A plain FastAPI app with the same weights in ``torch.nn`` (run in a subprocess)."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel
    from safetensors.torch import load_file

    config = json.loads((Path(model_dir) / "model.json").read_text())["model"]
    weights = load_file(str(Path(model_dir) / "weights.safetensors"))
    activations = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    modules, width = [], config["input_dim"]
    for i, layer in enumerate(config["layers"]):
        units = layer["config"]["units"]
        linear = torch.nn.Linear(width, units)
        with torch.no_grad():
            linear.weight.copy_(weights[f"layers.{i}.kernel"].T)
            linear.bias.copy_(weights[f"layers.{i}.bias"])
        modules.append(linear)
        if layer["config"]["activation"] in activations:
            modules.append(activations[layer["config"]["activation"]]())
        width = units
    net = torch.nn.Sequential(*modules).eval()
    app = FastAPI()

    class Query(BaseModel):
        x: list[float]

    @app.get("/ping")
    def ping() -> dict:
        return {}

    @app.post("/invocations")
    def invocations(query: Query) -> dict:
        with torch.no_grad():
            y = net(torch.tensor(query.x, dtype=torch.float32).reshape(-1, 1))
        return {"y": y.tolist()}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the ceiling: the leanest server one could write (a reference, not a product) -------
def run_lean_app(model_dir: str, port: int) -> None:
    """A bare Starlette + NumPy handler: the forward pass inline on the event loop, and no
    validation, content negotiation, metrics, batching or error handling. It shows what the
    HTTP stack alone allows on this machine (run in a subprocess)."""
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    import neurocloud as nc

    model = nc.load(model_dir)

    async def ping(request) -> Response:
        return Response(b"{}", media_type="application/json")

    async def invocations(request) -> Response:
        x = np.asarray(orjson.loads(await request.body())["x"], dtype=np.float32)
        y = model.forward(x.reshape(-1, 1))
        return Response(orjson.dumps({"y": y.tolist()}), media_type="application/json")

    app = Starlette(
        routes=[Route("/ping", ping), Route("/invocations", invocations, methods=["POST"])]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load generation -------------------------------------------------------------------
def request_bytes(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


async def one_request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(port, method, path, body))
        return await read_response(reader)
    finally:
        writer.close()


async def load(
    port: int, concurrency: int, duration: float, max_requests: int, path: str = "/invocations"
) -> dict:
    """Closed-loop POSTs of the article's body to ``path`` on ``concurrency`` keep-alive
    connections, for ``duration`` seconds or ``max_requests`` requests."""
    payload = request_bytes(port, "POST", path, BODY)
    latencies: list[float] = []
    errors = 0
    budget = max_requests
    deadline = time.perf_counter() + duration

    async def connection() -> None:
        nonlocal errors, budget
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while budget > 0 and time.perf_counter() < deadline:
                budget -= 1
                start = time.perf_counter()
                writer.write(payload)
                try:
                    status, _ = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    return
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "errors": errors,
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '@BODY@'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""".replace("@BODY@", BODY.decode())


def wrk_load(port: int, concurrency: int, duration: float, script: str) -> dict:
    """One wrk run (one thread, ``concurrency`` keep-alive connections) on 127.0.0.1."""
    seconds = max(1, round(duration))
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            script,
            f"http://127.0.0.1:{port}/invocations",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("WRK_RESULT"))
    requests, micros, errors, p50, p99 = (int(v) for v in line.split()[1:])
    return {
        "requests": requests,
        "rps": requests / (micros / 1e6),
        "p50": p50 / 1000,
        "p99": p99 / 1000,
        "errors": errors,
    }


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of ``pid`` and its children (VmHWM, Linux)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def wait_ready(process: subprocess.Popen, port: int, started: float, limit: float = 60) -> float:
    while time.perf_counter() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before /ping answered")
        try:
            status, _ = asyncio.run(one_request(port, "GET", "/ping"))
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"no 200 on /ping within {limit} s")


class Server:
    """A server under test: its command, process, port and measurements."""

    def __init__(self, name: str, command, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = command  # port -> argv
        self.env = env  # the environment of its process (None: this one's)
        self.cold_starts: list[float] = []
        self.runs: dict[int, list[dict]] = {}
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.answer = None

    def start(self) -> float:
        # imported here, not at the top: the competitor's process runs this script too
        from neurocloud.serve.launcher import free_port

        self.port = free_port()
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        cold = wait_ready(self.process, self.port, started)
        self.cold_starts.append(cold)
        return cold

    def stop(self) -> None:
        from neurocloud.serve.launcher import stop_process

        if self.process is not None:
            stop_process(self.process)

    def best(self, level: int) -> dict:
        """The run with the highest throughput at ``level`` (the least disturbed one)."""
        return max(self.runs[level], key=lambda run: run["rps"])


def measure(servers: list[Server], args: argparse.Namespace) -> None:
    """Cold starts one server at a time, then load rounds that alternate the servers at
    each level, so that other activity on the machine hits both alike."""
    for _ in range(args.cold_starts):
        for server in servers:
            server.start()
            server.stop()
    for server in servers:
        server.start()
        status, body = asyncio.run(one_request(server.port, "POST", "/invocations", BODY))
        if status != 200:
            raise RuntimeError(f"{server.name}: first request answered {status}: {body[:200]!r}")
        server.answer = json.loads(body)
        asyncio.run(load(server.port, max(args.concurrency), 1.0, 2000))  # warm-up, not reported
    script = None
    if args.client == "wrk":
        handle, script = tempfile.mkstemp(prefix="serve-load-", suffix=".lua")
        with os.fdopen(handle, "w") as file:
            file.write(WRK_SCRIPT)
    try:
        for _ in range(args.rounds):
            for level in args.concurrency:
                for server in servers:
                    if script is None:
                        run = asyncio.run(
                            load(server.port, level, args.duration, args.max_requests)
                        )
                    else:
                        run = wrk_load(server.port, level, args.duration, script)
                    server.runs.setdefault(level, []).append(run)
    finally:
        if script is not None:
            os.unlink(script)
    for server in servers:
        server.rss_mb = peak_rss_mb(server.process.pid)


def article_model(directory: Path) -> Path:
    import neurocloud as nc
    from neurocloud.demo import X, Y, article_network

    model = article_network(seed=0)
    model.fit(X, Y, loss="mse", optimizer=nc.optim.SGD(lr=0.01), epochs=1000)
    return nc.save(model, directory / "seed")


def neurocloud_command(model_dir: Path, port: int) -> list[str]:
    script = Path(sys.executable).parent / "neurocloud"
    prefix = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from neurocloud.cli import run; run()"]
    )
    return [*prefix, "serve", str(model_dir), "--port", str(port), "--log-level", "warning"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--max-requests", type=int, default=50_000, help="requests per run")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[1, 8, 32, 64],
        help="comma-separated levels",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and level")
    parser.add_argument("--cold-starts", type=int, default=3, help="starts per server")
    parser.add_argument(
        "--client",
        choices=["python", "wrk"],
        default="python",
        help="load generator: the asyncio client, or wrk (native; falls back to python "
        "when wrk is not installed)",
    )
    parser.add_argument(
        "--no-lean",
        action="store_true",
        help="skip the reference bare Starlette + NumPy handler (the HTTP stack's ceiling)",
    )
    parser.add_argument(
        "--baseline-src",
        metavar="SRC",
        help="also run neurocloud from this source folder (e.g. another checkout's src/), "
        "interleaved with the others, and print this version's throughput against it",
    )
    parser.add_argument("--fastapi-app", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--lean-app", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fastapi_app:
        run_fastapi_app(args.fastapi_app, args.port)
        return
    if args.lean_app:
        run_lean_app(args.lean_app, args.port)
        return
    if args.client == "wrk" and shutil.which("wrk") is None:
        print("wrk is not on the PATH (apt-get install wrk): using the Python client")
        args.client = "python"
    workdir = Path(tempfile.mkdtemp(prefix="serve-load-"))
    model_dir = article_model(workdir)

    def this_script(flag: str):
        return lambda port: [sys.executable, __file__, flag, str(model_dir), "--port", str(port)]

    servers = [
        Server("neurocloud", lambda port: neurocloud_command(model_dir, port)),
        Server("fastapi+torch", this_script("--fastapi-app")),
    ]
    if not args.no_lean:
        servers.append(Server("lean-starlette", this_script("--lean-app")))
    if args.baseline_src:
        env = {**os.environ, "PYTHONPATH": args.baseline_src}
        command = [sys.executable, "-c", "from neurocloud.cli import run; run()", "serve"]
        servers.append(
            Server(
                "neurocloud-base",
                lambda port: [
                    *command,
                    str(model_dir),
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env,
            )
        )
    try:
        measure(servers, args)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(*servers, args=args)


def report(ours: Server, theirs: Server, *references: Server, args: argparse.Namespace) -> None:
    servers = (ours, theirs, *references)
    a = ours.answer["y"][0][0]
    for other in servers[1:]:
        b = other.answer["y"][0][0]
        print(
            f"same answer for x=4.5: neurocloud {a:.6f}, {other.name} {b:.6f} "
            f"({'ok' if abs(a - b) < 1e-5 else 'MISMATCH'})"
        )
    print(
        f"client {args.client}: best of {args.rounds} interleaved runs of "
        f"{max(1, round(args.duration)) if args.client == 'wrk' else args.duration:g} s "
        f"per server and level"
        + (f" (at most {args.max_requests} requests each):" if args.client == "python" else ":")
    )
    print(
        f"{'server':<15}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'requests':>10}"
    )
    for server in servers:
        for level in args.concurrency:
            row = server.best(level)
            errors = sum(run["errors"] for run in server.runs[level])
            print(
                f"{server.name:<15}{level:>5}{row['rps']:>10.0f}{row['p50']:>9.2f}"
                f"{row['p99']:>9.2f}{errors:>8}{row['requests']:>10}"
            )
    print(f"{'server':<15}{'cold start s (median)':>22}{'peak RSS MB':>13}")
    for server in servers:
        cold = float(np.median(server.cold_starts))
        print(f"{server.name:<15}{cold:>22.3f}{server.rss_mb:>13.1f}")
    for base in (r for r in references if r.name == "neurocloud-base"):
        print(f"ratios {ours.name} / {base.name} (same runs, interleaved):")
        for level in args.concurrency:
            x, y = ours.best(level), base.best(level)
            print(f"  concurrency {level:>3}: throughput {x['rps'] / y['rps']:.3f}x")
    for server in (ours, *references):
        print(f"ratios {server.name} / {theirs.name}:")
        for level in args.concurrency:
            x, y = server.best(level), theirs.best(level)
            print(
                f"  concurrency {level:>3}: throughput {x['rps'] / y['rps']:.2f}x, "
                f"p99 {x['p99'] / y['p99']:.2f}x"
            )
        cold = np.median(server.cold_starts) / np.median(theirs.cold_starts)
        print(f"  cold start {cold:.2f}x, peak RSS {server.rss_mb / theirs.rss_mb:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
