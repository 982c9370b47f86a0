"""``neurocloud serve`` in a child process on a free 127.0.0.1 port, exactly as a user runs
it: what the playground's "serve this model" button, the serving tests and the benchmarks
start. Standard library only.

>>> with ServerProcess("models/seed") as server:  # doctest: +SKIP
...     urllib.request.urlopen(server.url + "/ping").status
200
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from types import TracebackType

__all__ = ["START_TIMEOUT_S", "ServerProcess", "free_port", "stop_process"]

#: how long :meth:`ServerProcess.wait_ready` waits for ``/ping`` by default
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGTERM (the server drains and exits), then SIGKILL after ``timeout_s``; the exit code.

    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    >>> stop_process(child)  # ended by the SIGTERM
    -15
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class ServerProcess:
    """``neurocloud serve PATH ARGS --host 127.0.0.1 --port <free>``, started at once.

    Its stdout and stderr go to an anonymous file (not a pipe: a full pipe would block the
    server), read with :meth:`output`, also after :meth:`stop`. As a context manager it
    waits for ``/ping`` on entry and stops the server on exit.
    """

    def __init__(
        self, path: str | os.PathLike[str], *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._final_output: str | None = None
        command = [sys.executable, "-c", "from neurocloud.cli import run; run()", "serve"]
        command += [os.fspath(path), "--host", "127.0.0.1", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> ServerProcess:
        """Return once ``/ping`` answers 200; if the server exits or stays silent for
        ``timeout`` seconds, stop it and raise a RuntimeError with the end of its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.stop()
                raise RuntimeError(
                    f"neurocloud serve exited with {code} before /ping answered:\n"
                    f"{self.output()[-1000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)  # a poll interval: the child gives no other sign of readiness
        self.stop()
        raise RuntimeError(
            f"neurocloud serve did not answer /ping within {timeout:g} s:\n{self.output()[-1000:]}"
        )

    def output(self) -> str:
        """What the server has written to stdout and stderr so far."""
        if self._final_output is not None:
            return self._final_output
        # pread, not seek + read: the child shares the file offset it writes at
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int:
        """Stop the server (see :func:`stop_process`) and return its exit code."""
        code = stop_process(self.process, timeout_s)
        if self._final_output is None:
            self._final_output = self.output()
            self._log.close()
        return code

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
