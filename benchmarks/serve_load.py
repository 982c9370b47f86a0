"""Load test: ``neurocloud serve`` against a plain FastAPI + PyTorch app serving the same
network (the article's 1-2-2-1 model), both started here as subprocesses on 127.0.0.1.

For each server: cold start (process start to the first 200 on ``/ping``), then at each
concurrency level a closed-loop load of ``POST /invocations {"x": [4.5]}`` over keep-alive
connections, bounded by ``--duration`` seconds and ``--max-requests`` requests; requests/s,
p50/p99 latency and errors; finally the server's peak RSS. Prints one table and the ratios.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/serve_load.py --duration 4 --concurrency 1,8,32,64

The client is a raw asyncio HTTP/1.1 loop, so the load generator itself stays cheap (it
shares the machine's cores with the server under test).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
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


# --- load generation -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


async def load(port: int, concurrency: int, duration: float, max_requests: int) -> dict:
    payload = request_bytes(port, "POST", "/invocations", BODY)
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


def bench_server(name: str, command: list[str], port: int, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        cold = wait_ready(process, port, started)
        status, body = asyncio.run(one_request(port, "POST", "/invocations", BODY))
        if status != 200:
            raise RuntimeError(f"{name}: first request answered {status}: {body[:200]!r}")
        result = {"name": name, "cold_start_s": cold, "answer": json.loads(body), "levels": {}}
        asyncio.run(load(port, max(args.concurrency), 1.0, 2000))  # warm-up, not reported
        for level in args.concurrency:
            result["levels"][level] = asyncio.run(
                load(port, level, args.duration, args.max_requests)
            )
        result["rss_mb"] = peak_rss_mb(process.pid)
        return result
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def article_model(directory: Path) -> Path:
    import neurocloud as nc

    model = nc.Sequential(
        [
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(1),
        ],
        input_dim=1,
        seed=0,
    )
    x = np.array([[0.5], [1.5], [2.5], [3.5]])
    y = np.array([[0.75], [1.25], [2.25], [3.75]])
    model.fit(x, y, loss="mse", optimizer=nc.optim.SGD(lr=0.01), epochs=1000)
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
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per level")
    parser.add_argument("--max-requests", type=int, default=50_000, help="requests per level")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[1, 8, 32, 64],
        help="comma-separated levels",
    )
    parser.add_argument("--fastapi-app", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fastapi_app:
        run_fastapi_app(args.fastapi_app, args.port)
        return
    workdir = Path(tempfile.mkdtemp(prefix="serve-load-"))
    try:
        model_dir = article_model(workdir)
        port = free_port()
        ours = bench_server("neurocloud", neurocloud_command(model_dir, port), port, args)
        port = free_port()
        theirs = bench_server(
            "fastapi+torch",
            [sys.executable, __file__, "--fastapi-app", str(model_dir), "--port", str(port)],
            port,
            args,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(ours, theirs, args)


def report(ours: dict, theirs: dict, args: argparse.Namespace) -> None:
    a, b = ours["answer"]["y"][0][0], theirs["answer"]["y"][0][0]
    print(
        f"same answer for x=4.5: neurocloud {a:.6f}, fastapi+torch {b:.6f} "
        f"({'ok' if abs(a - b) < 1e-5 else 'MISMATCH'})"
    )
    print(
        f"{'server':<15}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'requests':>10}"
    )
    for result in (ours, theirs):
        for level, row in result["levels"].items():
            print(
                f"{result['name']:<15}{level:>5}{row['rps']:>10.0f}{row['p50']:>9.2f}"
                f"{row['p99']:>9.2f}{row['errors']:>8}{row['requests']:>10}"
            )
    print(f"{'server':<15}{'cold start s':>13}{'peak RSS MB':>13}")
    for result in (ours, theirs):
        print(f"{result['name']:<15}{result['cold_start_s']:>13.3f}{result['rss_mb']:>13.1f}")
    print("ratios neurocloud / fastapi+torch:")
    for level in args.concurrency:
        x, y = ours["levels"][level], theirs["levels"][level]
        print(
            f"  concurrency {level:>3}: throughput {x['rps'] / y['rps']:.2f}x, "
            f"p99 {x['p99'] / y['p99']:.2f}x"
        )
    print(
        f"  cold start {ours['cold_start_s'] / theirs['cold_start_s']:.2f}x, "
        f"peak RSS {ours['rss_mb'] / theirs['rss_mb']:.2f}x"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
