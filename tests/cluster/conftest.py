"""A two-node Ray cluster on 127.0.0.1 for the Ray tests (started once, stopped after
them), and the check that every port Ray opened listens on loopback only."""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need the extra neurocloud[ray]")

from neurocloud.ray.cluster import local_cluster  # noqa: E402

from .ray_helpers import assert_loopback_only  # noqa: E402


@pytest.fixture(scope="package")
def ray_cluster():
    """Two 1-CPU Ray nodes on 127.0.0.1; on exit, checks that nothing listened elsewhere.

    Ray's HTTP proxy prefers replicas on its own node; the tests turn that off so that
    requests through the one proxy reach replicas on both nodes.
    """
    os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
    with local_cluster(num_nodes=2, num_cpus=1) as address:
        yield address
        assert_loopback_only()
