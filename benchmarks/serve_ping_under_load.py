"""How long ``/ping`` and ``/v2/health/ready`` take while large gzip CSV bodies are being
inflated and parsed: a real ``neurocloud serve`` on 127.0.0.1, ``--bombs`` clients each
posting ``--rounds`` bodies of ``--rows`` rows (about 3 KB gzip, inflating to 4 bytes a
row; or JSON with ``--format json``), and one probe asking the health routes in a loop meanwhile.

Prints the probes' median and worst latency, and how the bombs were answered.

    .venv/bin/python benchmarks/serve_ping_under_load.py
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import statistics
import tempfile
import threading
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
        "--format", choices=["csv", "json"], default="csv", help='CSV, or JSON {"x": [[1.5], ...]}'
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    path = nc.save(model, folder / "seed")
    server = ServerProcess(path, "--reload-interval", "0")
    port = server.port
    try:
        server.wait_ready()
        if args.format == "csv":
            raw, content_type = b"1.5\n" * args.rows, "text/csv"
        else:
            raw = b'{"x": [' + b",".join([b"[1.5]"] * args.rows) + b"]}"
            content_type = "application/json"
        body = gzip.compress(raw)
        answers: list[int] = []
        done = threading.Event()

        def bomber() -> None:
            for _ in range(args.rounds):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                connection.request(
                    "POST",
                    "/invocations",
                    body,
                    {"Content-Type": content_type, "Content-Encoding": "gzip"},
                )
                response = connection.getresponse()
                response.read()
                answers.append(response.status)
                connection.close()

        threads = [threading.Thread(target=bomber) for _ in range(args.bombs)]
        for thread in threads:
            thread.start()
        latencies: list[float] = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        waiter = threading.Thread(target=lambda: [t.join() for t in threads] and done.set())
        waiter.start()
        while not done.is_set() and len(latencies) < 100_000:
            for route in ("/ping", "/v2/health/ready"):
                start = time.perf_counter()
                connection.request("GET", route)
                response = connection.getresponse()
                response.read()
                latencies.append(time.perf_counter() - start)
                assert response.status == 200, response.status
        waiter.join()
        statuses = {s: answers.count(s) for s in sorted(set(answers))}
        print(
            f"{args.bombs} clients x {args.rounds} gzip {args.format} bodies of {args.rows} rows "
            f"({len(body)} bytes gzip, {len(raw)} inflated): answers {statuses}"
        )
        print(
            f"health probes during the load: {len(latencies)}, median "
            f"{statistics.median(latencies) * 1000:.1f} ms, worst {max(latencies) * 1000:.1f} ms"
        )
    finally:
        server.stop(timeout_s=60)


if __name__ == "__main__":
    main()
