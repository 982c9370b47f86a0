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
    before = os.environ.get("RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING")
    os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
    try:
        with local_cluster(num_nodes=2, num_cpus=1) as address:
            yield address
            assert_loopback_only()
    finally:  # later tests see the environment they started with
        if before is None:
            os.environ.pop("RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING", None)
        else:
            os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = before


@pytest.fixture(scope="package")
def s3():
    """moto's S3 on 127.0.0.1 with one bucket: (boto3 client, ``uri(prefix)`` that
    ``pyarrow.fs`` reads, credentials and endpoint in the URI so every Ray worker can)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from .ray_helpers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="models")

    def uri(prefix: str) -> str:
        query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        return f"s3://testing:testing@models/{prefix}?{query}"

    yield client, uri
    server.stop()
