"""Connecting to a Ray cluster, or starting a local one that listens on 127.0.0.1 only.

Ray binds its node, worker and metrics ports on every interface unless told otherwise.
:func:`local_cluster` starts nodes on 127.0.0.1 with no dashboard and every metrics port on
loopback, which is what a laptop, a CI job and the tests want; :func:`listening_sockets`
lists what this machine's processes listen on, so a test can check that nothing escaped.

>>> sockets = listening_sockets()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import ray

__all__ = ["LOOPBACK", "connect", "listening_sockets", "local_cluster", "loopback_environment"]

LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def loopback_environment() -> dict[str, str]:
    """The environment variables that keep Ray's own side servers off other interfaces.

    The autoscaler's and the dashboard's metrics servers read their ports from the
    environment (default 44217 and 44227, on all interfaces); workers keep normal priority
    (Ray lowers it by default, which starves them on a busy machine).
    """
    return {
        "RAY_worker_niceness": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "AUTOSCALER_METRIC_PORT": str(_free_port()),
        "DASHBOARD_METRIC_PORT": str(_free_port()),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }


def _keep_on_loopback() -> None:
    """Set :func:`loopback_environment` for the Ray processes started from here on.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray use 127.0.0.1 as the node's address
    (its single-machine mode); Ray reads it when imported, so the already imported
    constant is set too.
    """
    from ray._private import ray_constants

    for name, value in loopback_environment().items():
        os.environ.setdefault(name, value)
    ray_constants.ENABLE_RAY_CLUSTER = False


def _node_args(num_cpus: float) -> dict[str, Any]:
    return {
        "num_cpus": num_cpus,
        "node_ip_address": LOOPBACK,
        "include_dashboard": False,
        "dashboard_host": LOOPBACK,
        "metrics_export_port": _free_port(),
    }


@contextlib.contextmanager
def local_cluster(num_nodes: int = 2, num_cpus: float = 1) -> Iterator[str]:
    """Start ``num_nodes`` Ray nodes on 127.0.0.1, connect this process, yield the address.

    Every node has ``num_cpus`` CPUs; the cluster is shut down on exit.
    """
    from ray.cluster_utils import Cluster

    _keep_on_loopback()
    cluster = Cluster(initialize_head=True, head_node_args=_node_args(num_cpus))
    try:
        for _ in range(num_nodes - 1):
            cluster.add_node(**_node_args(num_cpus))
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()


def connect(address: str | None = None, *, num_cpus: float | None = None) -> str:
    """Connect to the cluster at ``address`` (or ``$RAY_ADDRESS``); with neither, start a
    single local node on 127.0.0.1. Returns a sentence saying which happened."""
    if ray.is_initialized():
        return "Using the Ray cluster this process is already connected to."
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
        return f"Connected to the Ray cluster at {address}."
    _keep_on_loopback()
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        _metrics_export_port=_free_port(),
    )
    return "Started a local Ray cluster on 127.0.0.1 (no --address and no $RAY_ADDRESS given)."


def listening_sockets() -> list[str]:
    """Local addresses of the TCP sockets listening on this machine, from ``ss -ltn``."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]
