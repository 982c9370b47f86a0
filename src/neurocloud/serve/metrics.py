"""Prometheus metrics per model: requests and errors by status, latency, batch sizes.

Each app has its own registry, so several apps (tests, workers) never collide. With
several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set), ``/metrics`` sums all workers.
Labelled children are cached, so recording a request costs a dict lookup and two updates.

>>> m = ServeMetrics()
>>> m.observe_request("seed", "invocations", 200, 0.002)
>>> b"neurocloud_requests_total" in m.render()[0]
True
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["ServeMetrics"]

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
ROW_BUCKETS = tuple(float(2**i) for i in range(13))


class ServeMetrics:
    """The server's metrics; ``model`` is ``""`` for requests naming no known model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "neurocloud_requests_total",
            "Requests answered, by model, endpoint and status.",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "neurocloud_request_errors_total",
            "Requests answered with a 4xx or 5xx status.",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "neurocloud_request_duration_seconds",
            "Time from request to response.",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "neurocloud_batch_rows",
            "Rows per forward pass.",
            ["model"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "neurocloud_batch_requests",
            "Requests merged into one forward pass.",
            ["model"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self.model_loads = Counter(
            "neurocloud_model_loads_total",
            "Model version loads, by outcome.",
            ["model", "outcome"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._batch_children: dict[str, tuple[Any, Any]] = {}

    def observe_request(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        key = (model, endpoint, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (
                self.requests.labels(model, endpoint, code),
                self.errors.labels(model, endpoint, code) if status >= 400 else None,
                self.latency.labels(model, endpoint),
            )
            self._request_children[key] = children
        count, errors, latency = children
        count.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def observe_batch(self, model: str, rows: int, requests: int) -> None:
        children = self._batch_children.get(model)
        if children is None:
            children = (self.batch_rows.labels(model), self.batch_requests.labels(model))
            self._batch_children[model] = children
        children[0].observe(rows)
        children[1].observe(requests)

    def observe_load(self, model: str, ok: bool) -> None:
        self.model_loads.labels(model, "success" if ok else "failure").inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text format and its content type."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
