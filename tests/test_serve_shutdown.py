"""SIGTERM under load, with one and two workers and heavy explanations in flight: every
request in flight is answered (200, or a clean 503 for an explanation cut short), none
gets a 500, and the server exits within SageMaker's 30 s."""

from __future__ import annotations

import signal
import socket
import threading
import time

import numpy as np
import orjson
import pytest

import neurocloud as nc
from neurocloud.serve.launcher import ServerProcess

EXPLANATIONS = 8
INFER_CLIENTS = 4
INFER_PER_CLIENT = 200  # bounded: each client stops at this count or at the shutdown


def heavy_model() -> nc.Sequential:
    """68k parameters: one explanation of 64 rows x 960 steps takes seconds."""
    return nc.Sequential(
        [
            nc.layers.Dense(256, activation="tanh"),
            nc.layers.Dense(256, activation="tanh"),
            nc.layers.Dense(1),
        ],
        input_dim=8,
        seed=0,
    )


def request(path: str, body: bytes, keep_alive: bool = False) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: %s\r\nContent-Length: %d\r\n\r\n"
        % (path.encode(), connection, len(body))
        + body
    )


def read_response(sock: socket.socket) -> int | None:
    """The status of one response on ``sock`` (``None``: closed before any byte)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head.split()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_answers_every_request_and_exits_within_30_s(tmp_path, workers):
    path = nc.save(heavy_model(), tmp_path / "heavy")
    X = np.random.default_rng(0).normal(size=(64, 8)).round(3).tolist()
    explain = orjson.dumps({"x": X, "parameters": {"method": "ig", "steps": 960}})
    process = ServerProcess(path, "--workers", str(workers), "--reload-interval", "0")
    sockets: list[socket.socket] = []
    try:
        process.wait_ready(timeout=60)
        # heavy explanations, each on its own connection, sent before the signal
        sockets += [
            socket.create_connection(("127.0.0.1", process.port), timeout=60)
            for _ in range(EXPLANATIONS)
        ]
        for sock in sockets:
            sock.sendall(request("/explain", explain))
        statuses: list[int | None] = [None] * EXPLANATIONS

        def wait_explanation(i: int) -> None:
            statuses[i] = read_response(sockets[i])

        readers = [
            threading.Thread(target=wait_explanation, args=(i,)) for i in range(EXPLANATIONS)
        ]
        for reader in readers:
            reader.start()

        infer_statuses: list[int] = []
        started = threading.Barrier(INFER_CLIENTS + 1)

        def infer_client() -> None:
            sock = socket.create_connection(("127.0.0.1", process.port), timeout=60)
            first = True
            try:
                for _ in range(INFER_PER_CLIENT):
                    sock.sendall(
                        request("/invocations", b'{"x": [[0.5, 0, 0, 0, 0, 0, 0, 1]]}', True)
                    )
                    status = read_response(sock)
                    if status is None:
                        return  # closed by the shutdown between two requests
                    infer_statuses.append(status)
                    if first:
                        first = False
                        started.wait()
            except OSError:
                return  # the server closed the connection between requests
            finally:
                sock.close()

        clients = [threading.Thread(target=infer_client) for _ in range(INFER_CLIENTS)]
        for client in clients:
            client.start()
        started.wait(timeout=60)  # every infer client has had an answer: all are served
        signalled = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        code = process.process.wait(timeout=60)
        exit_s = time.monotonic() - signalled
        for thread in [*readers, *clients]:
            thread.join(timeout=60)
    finally:
        for sock in sockets:
            sock.close()
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()
        try:
            output = process.output()
        finally:
            process.stop()
    print(
        f"workers={workers}: exit {code} after {exit_s:.1f} s; explanations {statuses}; "
        f"{len(infer_statuses)} predictions answered"
    )
    assert exit_s < 30, output[-3000:]
    assert code == 0, output[-3000:]
    assert all(status in (200, 503) for status in statuses), (statuses, output[-3000:])
    assert infer_statuses and set(infer_statuses) <= {200, 503}, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
