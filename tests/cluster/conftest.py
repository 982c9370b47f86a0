"""A two-node Ray cluster on 127.0.0.1 for the whole session, and the check that every port
Ray opened listens on loopback only."""

from __future__ import annotations

import os
import socket

import psutil
import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need the extra neurocloud[ray]")

from neurocloud.ray.cluster import LOOPBACK, local_cluster  # noqa: E402

LOOPBACK_FORMS = (LOOPBACK, "::ffff:127.0.0.1", "::1")


def ray_listening_addresses() -> list[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket that this test process or any
    process it started (Ray's nodes, workers, replicas) listens on."""
    own = [psutil.Process(os.getpid()), *psutil.Process(os.getpid()).children(recursive=True)]
    found = []
    for process in own:
        try:
            connections = process.net_connections(kind="tcp")
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [
            (c.laddr.ip, c.laddr.port, name)
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.family in (socket.AF_INET, socket.AF_INET6)
        ]
    return found


def assert_loopback_only() -> None:
    outside = [s for s in ray_listening_addresses() if s[0] not in LOOPBACK_FORMS]
    assert not outside, f"listening outside 127.0.0.1: {outside}"


@pytest.fixture(scope="session")
def ray_cluster():
    """Two 1-CPU Ray nodes on 127.0.0.1; on exit, checks that nothing listened elsewhere.

    Ray's HTTP proxy prefers replicas on its own node; the tests turn that off so that
    requests through the one proxy reach replicas on both nodes.
    """
    os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
    with local_cluster(num_nodes=2, num_cpus=1) as address:
        yield address
        assert_loopback_only()
