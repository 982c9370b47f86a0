"""neurocloud.serve.launcher: a real ``neurocloud serve`` child on 127.0.0.1, ready on
entry, stopped on exit, its output readable before and after."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest
from serve_helpers import article_model

import neurocloud as nc
from neurocloud.serve.launcher import ServerProcess, stop_process


def test_serves_on_loopback_and_stops_on_exit(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    with ServerProcess(path, "--reload-interval", "0") as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(server.url + "/ping", timeout=5) as response:
            assert response.status == 200
    assert server.process.returncode is not None
    assert "serving seed" in server.output()  # still readable once stopped


def test_a_server_that_exits_is_an_error_with_its_output(tmp_path):
    server = ServerProcess(tmp_path / "missing")
    with pytest.raises(RuntimeError, match=r"exited with [1-9]\d* before /ping answered") as err:
        server.wait_ready()
    assert "missing" in str(err.value)  # the server's own message names the path
    assert server.process.returncode not in (None, 0)


def test_stop_process_kills_what_ignores_sigterm():
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"ready\n"  # the handler is installed
    assert stop_process(child, timeout_s=0.5) == -9
    child.stdout.close()
