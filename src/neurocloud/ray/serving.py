"""Ray Serve: the same app as ``neurocloud serve``, in replicas spread over a cluster.

Each replica runs :func:`neurocloud.serve.create_app` unchanged (both protocols, explain,
the model repository and its hot reload). Two things differ from one machine:

* ``/metrics`` answers for the whole deployment: every replica sends its counters to one
  small hub deployment (at once when scraped, otherwise within a second of a change), and
  the hub sums them, so one scrape counts every replica's requests.
* the model path must be one that every node sees: a shared file system, or a URI
  (``s3://bucket/models``, any ``pyarrow.fs`` URI) that each replica copies to its node
  (:mod:`neurocloud.ray.uri`) and copies again every ``reload_interval_s``, so that a new
  version reaches every replica.

>>> from ray import serve  # doctest: +SKIP
>>> serve.run(deployment("models/seed", num_replicas=2), route_prefix="/")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Metric, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MetricsHub", "deployment", "merge_samples"]

PUSH_INTERVAL_S = 1.0

# (family name, help, type, [(sample name, labels, value), ...]) for each metric family.
Families = list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]


def snapshot(registry: CollectorRegistry) -> Families:
    """The samples of every metric in ``registry``, as plain data that Ray can send."""
    return [
        (m.name, m.documentation, m.type, [(s.name, dict(s.labels), s.value) for s in m.samples])
        for m in registry.collect()
    ]


def merge_samples(snapshots: list[Families]) -> CollectorRegistry:
    """A registry whose metrics are the sums of ``snapshots``' samples (label by label).

    Counters, histogram buckets, sums and counts add up across replicas; a ``_created``
    timestamp takes the earliest.

    >>> a = [("r", "Requests.", "counter", [("r_total", {"s": "200"}, 2.0)])]
    >>> b = [("r", "Requests.", "counter", [("r_total", {"s": "200"}, 3.0)])]
    >>> b"5.0" in generate_latest(merge_samples([a, b]))
    True
    """
    families: dict[str, tuple[str, str, dict[tuple[str, tuple], float]]] = {}
    for families_of_one in snapshots:
        for name, documentation, kind, samples in families_of_one:
            _, _, merged = families.setdefault(name, (documentation, kind, {}))
            for sample_name, labels, value in samples:
                key = (sample_name, tuple(sorted(labels.items())))
                if key not in merged:
                    merged[key] = value
                elif sample_name.endswith("_created"):
                    merged[key] = min(merged[key], value)
                else:
                    merged[key] += value

    class Merged:
        def collect(self) -> Iterator[Metric]:
            for name, (documentation, kind, merged) in families.items():
                metric = Metric(name, documentation, kind)
                for (sample_name, labels), value in merged.items():
                    metric.add_sample(sample_name, dict(labels), value)
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Merged())
    return registry


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class MetricsHub:
    """Holds the latest metrics of every replica and answers their sum."""

    def __init__(self) -> None:
        _internal_grpc_on_node_address()
        self.latest: dict[str, Families] = {}

    def push(self, replica: str, families: Families) -> None:
        self.latest[replica] = families

    def merged(self, replica: str, families: Families) -> tuple[bytes, int]:
        """Store ``replica``'s metrics, then return everyone's sum and how many replicas
        it covers."""
        self.latest[replica] = families
        return generate_latest(merge_samples(list(self.latest.values()))), len(self.latest)

    def replicas(self) -> dict[str, Families]:
        """The latest metrics of each replica, by replica id."""
        return self.latest

    def forget(self, replica: str) -> None:
        self.latest.pop(replica, None)


class _ReplicaApp:
    """The app as a replica runs it: ``/metrics`` merged through the hub, the route
    prefix taken off the path (so the app's fast path sees ``/invocations``)."""

    def __init__(self, app: Any, hub: DeploymentHandle, replica: str) -> None:
        self.app = app
        self.hub = hub
        self.replica = replica
        self.registry: CollectorRegistry = app.state.neurocloud.metrics.registry
        self.pusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            prefix = scope.get("root_path", "")
            if prefix and scope["path"].startswith(prefix):
                scope = {**scope, "path": scope["path"][len(prefix) :] or "/", "root_path": ""}
            if self.pusher is None:
                self.pusher = asyncio.get_running_loop().create_task(self._push_changes())
            if scope["path"] == "/metrics" and scope["method"] == "GET":
                await self._merged_metrics(send)
                return
        await self.app(scope, receive, send)

    async def _merged_metrics(self, send: Send) -> None:
        body, replicas = await self.hub.merged.remote(self.replica, snapshot(self.registry))
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-neurocloud-replicas", str(replicas).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _push_changes(self) -> None:
        last: Families | None = None
        while True:
            await asyncio.sleep(PUSH_INTERVAL_S)
            current = snapshot(self.registry)
            if current != last:
                with contextlib.suppress(Exception):  # the hub is back on the next change
                    await self.hub.push.remote(self.replica, current)
                    last = current


def _internal_grpc_on_node_address() -> None:
    """Bind this replica's inter-deployment gRPC server to the node's address, when that is
    a loopback address, instead of Ray's hard-coded ``[::]:0`` (every interface).

    On a node started on 127.0.0.1 nothing else can reach the replica anyway; on a real
    cluster node Ray's binding is kept.
    """
    import ray
    from ray.serve._private import replica as ray_replica

    node_address = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(node_address).is_loopback:
        return
    bind = ray_replica.add_port_to_grpc_server

    def bind_on_node(server: Any, address: str) -> int:
        return bind(server, address.replace("[::]", node_address))

    ray_replica.add_port_to_grpc_server = bind_on_node


def _log_like_ray() -> None:
    """Send the server's own log lines (model loads, reloads) where Ray Serve's go."""
    ours, theirs = logging.getLogger("neurocloud"), logging.getLogger("ray.serve")
    if theirs.handlers and not ours.handlers:
        for handler in theirs.handlers:
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False


@serve.ingress()
class NeurocloudDeployment:
    """One replica: the ASGI app of ``neurocloud serve`` for the model(s) at ``path``."""

    def __init__(self, path: str, config: dict[str, Any], hub: DeploymentHandle) -> None:
        from neurocloud.ray.uri import Mirror, is_uri
        from neurocloud.serve import ServeConfig

        _internal_grpc_on_node_address()
        _log_like_ray()
        # A cheap forward pass runs on the replica's event loop (ServeConfig.inline_forward_us):
        # there the loop shares the GIL with Ray's own busy threads, and the hand-off to the
        # batcher's thread and back cost more than the article's pass (through Ray's proxy at
        # 16 connections, 0.86x of a no-op ASGI deployment with the hand-off, 0.97x without;
        # benchmarks/ray_scale.py). Costly passes still go to the thread, batched.
        self.path, self.config, self.hub = path, ServeConfig.from_env(**config), hub
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.stop = threading.Event()
        if is_uri(path):  # a copy on this node, brought up to date as often as it is checked
            mirror = Mirror(path)
            self.path = str(mirror.sync())
            if self.config.reload_interval_s > 0:
                threading.Thread(target=self._follow, args=(mirror,), daemon=True).start()

    def _follow(self, mirror: Any) -> None:
        while not self.stop.wait(self.config.reload_interval_s):
            try:
                mirror.sync()
            except Exception as exc:  # unreachable for a while: keep serving the copy
                logging.getLogger("neurocloud.serve").warning("model copy not updated: %s", exc)

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from neurocloud.serve import create_app

        app = create_app(self.path, self.config)
        return _ReplicaApp(app, self.hub, self.replica)

    def __del__(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            self.hub.forget.remote(self.replica)


def deployment(
    path: str | os.PathLike[str],
    *,
    num_replicas: int | str = 1,
    autoscaling_config: dict[str, Any] | None = None,
    ray_actor_options: dict[str, Any] | None = None,
    **config: Any,
) -> serve.Application:
    """A Ray Serve application serving the model directory or repository at ``path``.

    Every replica runs the app of ``neurocloud serve`` (SageMaker and Open Inference
    Protocol routes, explain, ``/metrics`` summed over replicas, hot reload). ``path`` must
    be visible at the same place on every node (a shared file system), or be a URI
    (``s3://bucket/models``; see :mod:`neurocloud.ray.uri`) that each replica copies to its
    node, for replicas on other machines to load it and see new versions. ``config`` takes
    the settings of :class:`neurocloud.serve.ServeConfig` (e.g. ``max_batch_rows=64``);
    ``autoscaling_config`` (e.g. ``{"min_replicas": 1, "max_replicas": 4}``) replaces
    ``num_replicas``. Run it with ``serve.run(app, route_prefix="/")``.

    >>> app = deployment("models/seed", num_replicas=2)  # doctest: +SKIP
    """
    from neurocloud.ray.uri import local_path
    from neurocloud.serve import ServeConfig

    ServeConfig().with_overrides(**config)  # a wrong setting fails here, not in a replica
    local_path(path)  # so does a URI that cannot be read or holds no model
    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": 1, **(ray_actor_options or {})}}
    if autoscaling_config is not None:
        options["autoscaling_config"] = autoscaling_config
    else:
        options["num_replicas"] = num_replicas
    replicas = serve.deployment(NeurocloudDeployment, name="neurocloud").options(**options)
    return replicas.bind(os.fspath(path), config, MetricsHub.bind())
