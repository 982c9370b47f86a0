"""How long ``/ping`` and ``/v2/health/ready`` take while large gzip CSV bodies are being
inflated and parsed: a real ``neurocloud serve`` on 127.0.0.1, ``--bombs`` clients each
posting ``--rounds`` bodies of ``--rows`` rows (about 3 KB gzip, inflating to 4 bytes a
row; or JSON with ``--format``), and one probe asking the health routes in a loop meanwhile.
The bombs are posted from child processes, so the probe's process does nothing else.

Formats: ``csv`` (``1.5`` per line), ``json`` (``{"x": [[1.5], ...]}``, numbers only),
``instances`` (``{"instances": [{"x": [1.5]}, ...]}``, objects), ``pretty`` (the numbers
of ``json``, pretty-printed), ``v2`` (an Open Inference Protocol infer request, nested
``data``).

Prints the probes' median, 99th percentile and worst latency, how the bombs were answered,
and the load average before and after.

    .venv/bin/python benchmarks/serve_ping_under_load.py
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import neurocloud as nc
from neurocloud.serve.launcher import ServerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bombs", type=int, default=3, help="concurrent bomb clients")
    parser.add_argument("--rounds", type=int, default=3, help="bodies per bomb client")
    parser.add_argument("--rows", type=int, default=900_000, help="rows per body")
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="csv", help="body shape (see above)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    path = nc.save(model, folder / "seed")
    server = ServerProcess(path, "--reload-interval", "0")
    port = server.port
    try:
        server.wait_ready()
        raw, content_type, route = FORMATS[args.format](args.rows)
        body = gzip.compress(raw)
        load_before = os.getloadavg()
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.bombs) as pool:
            pending = pool.starmap_async(
                bomber, [(port, route, body, content_type, args.rounds)] * args.bombs
            )
            latencies = probe(port, pending)
            answers = [status for statuses in pending.get() for status in statuses]
        load_after = os.getloadavg()
        statuses = {s: answers.count(s) for s in sorted(set(answers))}
        print(
            f"{args.bombs} clients x {args.rounds} gzip {args.format} bodies of {args.rows} rows "
            f"to {route} ({len(body)} bytes gzip, {len(raw)} inflated): answers {statuses}"
        )
        ms = sorted(v * 1000 for v in latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(
            f"health probes during the load: {len(ms)}, p50 {statistics.median(ms):.1f} ms, "
            f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
        )
        print(
            "load average before " + " ".join(f"{v:.2f}" for v in load_before),
            "after " + " ".join(f"{v:.2f}" for v in load_after),
        )
    finally:
        server.stop(timeout_s=60)


def rows_json(rows: int, row: bytes, before: bytes, after: bytes, sep: bytes = b",") -> bytes:
    return before + sep.join([row] * rows) + after


FORMATS = {
    "csv": lambda rows: (b"1.5\n" * rows, "text/csv", "/invocations"),
    "json": lambda rows: (
        rows_json(rows, b"[1.5]", b'{"x": [', b"]}"),
        "application/json",
        "/invocations",
    ),
    "instances": lambda rows: (
        rows_json(rows, b'{"x": [1.5]}', b'{"instances": [', b"]}"),
        "application/json",
        "/invocations",
    ),
    "pretty": lambda rows: (
        rows_json(rows, b"[\n      1.5\n    ]", b'{\n  "x": [\n    ', b"\n  ]\n}", b",\n    "),
        "application/json",
        "/invocations",
    ),
    "v2": lambda rows: (
        rows_json(
            rows,
            b"[1.5]",
            b'{"inputs": [{"name": "x", "shape": [%d, 1], "datatype": "FP32", "data": [' % rows,
            b"]}]}",
        ),
        "application/json",
        "/v2/models/seed/infer",
    ),
}


def bomber(port: int, route: str, body: bytes, content_type: str, rounds: int) -> list[int]:
    """One client posting ``rounds`` bodies one after another (run in a child process)."""
    statuses = []
    for _ in range(rounds):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request(
            "POST", route, body, {"Content-Type": content_type, "Content-Encoding": "gzip"}
        )
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        connection.close()
    return statuses


def probe(port: int, pending: multiprocessing.pool.AsyncResult) -> list[float]:
    """Latencies of ``/ping`` and ``/v2/health/ready``, asked in turn until ``pending`` is done."""
    latencies: list[float] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while not pending.ready() and len(latencies) < 100_000:
        for route in ("/ping", "/v2/health/ready"):
            start = time.perf_counter()
            connection.request("GET", route)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - start)
            assert response.status == 200, response.status
    return latencies


if __name__ == "__main__":
    main()
