"""``neurocloud serve`` on a port another process holds: one line saying so, exit status 1,
never the "is serving" message (the other process would answer its ``/ping`` probe)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

from click.testing import CliRunner
from serve_helpers import article_model

import neurocloud as nc
from neurocloud.cli import main

CLI = [sys.executable, "-c", "from neurocloud.cli import run; run()"]


class _Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # answers /ping 200, as a neurocloud server started earlier would
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_serve_on_a_taken_port_says_so_and_exits_non_zero(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    port = other.server_address[1]
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        done = subprocess.run(
            [*CLI, "serve", str(path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        other.shutdown()
        other.server_close()
    assert done.returncode == 1
    assert "is serving" not in done.stdout
    assert done.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is already in use (another server?); stop it, or "
        "pick another port with --port (with make run: make run PORT=8081)."
    )


def test_serve_checks_the_bind_before_starting(tmp_path, monkeypatch):
    import socket

    import neurocloud.serve.server as server

    started = []
    monkeypatch.setattr(server, "serve", lambda *a, **k: started.append(a))
    path = nc.save(article_model(), tmp_path / "seed")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", str(path), "--port", str(port)])
    assert result.exit_code == 1 and "already in use" in result.output and started == []
    # a free port goes on to start the server
    result = CliRunner().invoke(main, ["serve", str(path), "--port", str(port)])
    assert result.exit_code == 0 and started and started[0][2] == port
