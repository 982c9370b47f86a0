"""Serving a model saved from the playground: ``neurocloud serve`` in its own process on a
free 127.0.0.1 port, exactly as a user would run it, stopped with its session.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["START_TIMEOUT_S", "ServedModel"]

START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedModel:
    process: subprocess.Popen[bytes]
    url: str
    log: Any

    @classmethod
    def start(cls, path: Path) -> ServedModel:
        """Start the server for ``path`` and wait until its ``/ping`` answers 200."""
        port = _free_port()
        command = [
            sys.executable,
            "-c",
            "from neurocloud.cli import run; run()",
            "serve",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        # a file, not a pipe: a full pipe would block the server; closed in stop()
        log = tempfile.TemporaryFile()  # noqa: SIM115
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL
        )
        served = cls(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                reason = log.read().decode(errors="replace")[-600:]
                log.close()
                raise RuntimeError(f"neurocloud serve exited with {process.returncode}: {reason}")
            try:
                with urllib.request.urlopen(served.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        return served
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        served.stop()
        raise RuntimeError(f"neurocloud serve did not answer /ping within {START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
