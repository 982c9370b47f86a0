"""Helpers for the serving tests: saved models, an in-process async client with the app's
lifespan, and a real ``neurocloud serve`` subprocess on 127.0.0.1 with a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np

import neurocloud as nc
from neurocloud.serve import create_app


def article_model(seed: int = 0) -> nc.Sequential:
    """The article's 1-2-2-1 network, lightly trained so outputs differ between seeds."""
    model = nc.Sequential(
        [
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(1),
        ],
        input_dim=1,
        seed=seed,
    )
    x = np.array([[0.5], [1.5], [2.5], [3.5]])
    y = np.array([[0.75], [1.25], [2.25], [3.75]])
    model.fit(x, y, loss="mse", optimizer=nc.optim.SGD(lr=0.05), epochs=20)
    return model


def wide_model(seed: int = 0) -> nc.Sequential:
    """Three inputs, two outputs, ReLU: exercises widths other than one."""
    return nc.Sequential(
        [nc.layers.Dense(4, activation="relu"), nc.layers.Dense(2)], input_dim=3, seed=seed
    )


@contextlib.asynccontextmanager
async def running(app) -> AsyncIterator[httpx.AsyncClient]:
    """An async client talking to ``app`` in this event loop, inside the app's lifespan."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def app_for(path: Path, **settings):
    settings.setdefault("reload_interval_s", 0)
    return create_app(path, **settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``neurocloud serve PATH`` in a subprocess, with its stdout collected."""

    def __init__(self, path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(path).parent / f"server-{self.port}.log"
        command = [
            sys.executable,
            "-c",
            "from neurocloud.cli import run; run()",
            "serve",
            str(path),
            "--port",
            str(self.port),
            *args,
        ]
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def server(path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    process = ServerProcess(path, *args, env=env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
