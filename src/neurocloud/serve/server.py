"""Running the app with uvicorn: one or several worker processes, graceful SIGTERM, and a
message with ready-to-paste queries once the server answers ``/ping``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neurocloud.serve.config import ServeConfig
from neurocloud.serve.protocol import GuardedHttpToolsProtocol

__all__ = ["GRACEFUL_SHUTDOWN_S", "THREAD_VARIABLES", "serve", "worker_threads"]

GRACEFUL_SHUTDOWN_S = 25  # SageMaker sends SIGKILL 30 s after SIGTERM
#: a user who sets any of these chooses the workers' thread pools; ``serve`` leaves them be
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serve(
    path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int | None = None,
    *,
    config: ServeConfig | None = None,
    log_level: str = "info",
    access_log: bool = False,
    announce: bool = True,
    **overrides: Any,
) -> None:
    """Serve ``path`` on ``host:port`` until SIGINT/SIGTERM (which drain in-flight requests).

    ``workers`` defaults to ``$SAGEMAKER_MODEL_SERVER_WORKERS`` or 1. With ``announce``,
    prints a curl command and the ``Predictor`` call once ``/ping`` answers 200.

    Example: ``serve("models/seed", port=8080)``, then
    ``Predictor("http://127.0.0.1:8080").predict({"x": [4.5]})``.
    """
    import uvicorn

    config = (config or ServeConfig.from_env()).with_overrides(workers=workers, **overrides)
    options: dict[str, Any] = {
        "log_config": _log_config(log_level),
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "server_header": False,
        "http": GuardedHttpToolsProtocol,
    }
    if announce:
        threading.Thread(target=_announce, args=(path, host, port), daemon=True).start()
    if threading.current_thread() is threading.main_thread():
        # uvicorn drains, then re-raises SIGTERM to the handler it found: exit cleanly.
        signal.signal(signal.SIGTERM, _exit_cleanly)
    if config.workers == 1:
        from neurocloud.serve.app import create_app

        uvicorn.run(create_app(path, config), **options)
        return
    from neurocloud.serve.app import SPEC_VARIABLE

    spec = {"path": str(Path(path).resolve()), "config": dataclasses.asdict(config)}
    os.environ[SPEC_VARIABLE] = json.dumps(spec)
    with tempfile.TemporaryDirectory(prefix="neurocloud-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run(
            "neurocloud.serve.server:_worker_app",
            factory=True,
            workers=config.workers,
            **options,
        )


def worker_threads(
    workers: int, cores: int | None = None, environ: Mapping[str, str] | None = None
) -> int | None:
    """Threads for each worker's BLAS and OpenMP pools: ``max(1, cores // workers)``, so
    the workers together do not oversubscribe the cores; ``None`` (leave them) when the
    user set any of :data:`THREAD_VARIABLES`.

    >>> worker_threads(2, cores=8, environ={}), worker_threads(4, cores=2, environ={})
    (4, 1)
    >>> worker_threads(2, cores=8, environ={"OPENBLAS_NUM_THREADS": "3"}) is None
    True
    """
    env = os.environ if environ is None else environ
    if any(env.get(name, "").strip() for name in THREAD_VARIABLES):
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or 1
    return max(1, cores // workers)


def _worker_app() -> Any:
    """One worker's app, its thread pools limited first (see :func:`worker_threads`)."""
    import logging

    import numpy  # noqa: F401 - threadpoolctl limits the BLAS of the libraries loaded
    from threadpoolctl import threadpool_info, threadpool_limits

    from neurocloud.serve.app import SPEC_VARIABLE, create_app_from_env

    workers = int(json.loads(os.environ[SPEC_VARIABLE])["config"]["workers"])
    limit = worker_threads(workers)
    if limit is not None:
        threadpool_limits(limits=limit)
        how = f"limited to {limit} per worker ({workers} workers)"
    else:
        chosen = [f"{n}={os.environ[n]}" for n in THREAD_VARIABLES if os.environ.get(n)]
        how = f"as set by {', '.join(chosen)}"
    pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    logging.getLogger("neurocloud.serve").info(
        "worker %d: thread pools %s: %s", os.getpid(), how, pools or "none loaded"
    )
    return create_app_from_env()


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup, plus the server's own messages (loads, reloads)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["neurocloud"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _announce(path: str | os.PathLike[str], host: str, port: int, wait_s: float = 600) -> None:
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{local}:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    else:
        return
    name, example = _example(path)
    python = os.path.relpath(sys.executable)
    if python.startswith(".."):
        python = sys.executable
    print(
        f"\nneurocloud is serving {path} at {url} (Ctrl+C to stop). Query it with:\n"
        f"  curl -s -X POST {url}/invocations -H 'Content-Type: application/json' "
        f"-d '{json.dumps(example)}'\n"
        f'  {python} -c "from neurocloud.serve import Predictor; '
        f"print(Predictor('{url}').predict({example!r}))\"\n"
        f"  Open Inference Protocol: {url}/v2/models/{name}   docs: {url}/docs\n",
        file=sys.stdout,
        flush=True,
    )


def _example(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """The first model's name and a request body for it (the article's for its model)."""
    from neurocloud.serve.repository import discover

    try:
        name, versions = next(iter(discover(path).items()))
        folder = versions[max(versions, key=int)]
        metadata = json.loads((folder / "model.json").read_text())
        signature = metadata["inputs"][0]
        width = int(signature["shape"][-1])
        values: list[Any] = [4.5] if width == 1 else [[0.5] * width]
        return name, {signature["name"]: values}
    except (OSError, ValueError, KeyError, StopIteration):
        return "model", {"x": [4.5]}
