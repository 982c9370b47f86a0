"""Prometheus metrics (serve/metrics.py): what each observation records, and the counts a
server's /metrics shows after real requests."""

from __future__ import annotations

import math
import re
import threading

import pytest
from serve_helpers import app_for, article_model
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.serve.metrics import ServeMetrics


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return nc.save(article_model(), tmp_path_factory.mktemp("metrics") / "seed")


def metric(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics(model_path):
    with TestClient(app_for(model_path)) as client:
        for _ in range(3):
            client.post("/invocations", json={"x": [1.0, 2.0]})
        client.post("/invocations", content=b"{", headers={"Content-Type": "application/json"})
        client.post("/v2/models/seed/infer", json={"inputs": []})
        client.post("/v2/models/nope/infer", json={})
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    ok = {"model": "seed", "endpoint": "invocations", "status": "200"}
    assert metric(text, "neurocloud_requests_total", **ok) == 3
    assert metric(text, "neurocloud_request_errors_total", model="seed", status="400") == 1
    assert metric(text, "neurocloud_request_errors_total", endpoint="v2_infer", status="400") == 1
    assert metric(text, "neurocloud_request_errors_total", model="", status="404") == 1
    count = "neurocloud_request_duration_seconds_count"
    assert metric(text, count, model="seed", endpoint="invocations") == 4
    assert metric(text, "neurocloud_batch_rows_sum", model="seed") == 6
    assert metric(text, "neurocloud_batch_rows_count", model="seed") == 3
    assert metric(text, "neurocloud_model_loads_total", model="seed", outcome="success") == 1


def test_each_observation_is_counted_under_its_labels():
    metrics = ServeMetrics()
    metrics.observe_request("m", "invocations", 200, 0.002)
    metrics.observe_request("m", "invocations", 200, 0.004)
    metrics.observe_request("m", "invocations", 413, 0.001)
    metrics.observe_batch("m", rows=5, requests=2)
    metrics.observe_load("m", ok=False)
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    ok = {"model": "m", "endpoint": "invocations"}
    assert metric(text, "neurocloud_requests_total", **ok, status="200") == 2
    assert metric(text, "neurocloud_request_errors_total", **ok, status="413") == 1
    assert metric(text, "neurocloud_request_errors_total", **ok, status="200") == 0  # no errors
    assert metric(text, "neurocloud_request_duration_seconds_count", **ok) == 3
    assert metric(text, "neurocloud_request_duration_seconds_sum", **ok) == pytest.approx(0.007)
    assert metric(text, "neurocloud_batch_rows_sum", model="m") == 5
    assert metric(text, "neurocloud_batch_requests_sum", model="m") == 2
    assert metric(text, "neurocloud_model_loads_total", model="m", outcome="failure") == 1


def test_two_servers_in_one_process_keep_their_own_counts():
    first, second = ServeMetrics(), ServeMetrics()
    first.observe_request("m", "ping", 200, 0.0)
    text = second.render()[0].decode()
    assert metric(text, "neurocloud_requests_total", model="m", endpoint="ping") == 0
    assert re.search(r"^neurocloud_requests_total", first.render()[0].decode(), re.M)


def samples(metrics: ServeMetrics) -> list[str]:
    """The rendered samples, without the ``_created`` timestamps that differ per object."""
    text = metrics.render()[0].decode()
    return [line for line in text.splitlines() if "_created" not in line]


def observe_all(metrics: ServeMetrics) -> None:
    # on a bucket bound, between bounds, past the last one, zero; several labels and statuses
    for seconds in (0.0, 0.0005, 0.0007, 0.001, 0.3, 60.0, 75.0, -1.0, math.inf):
        metrics.observe_request("m", "invocations", 200, seconds)
    metrics.observe_request("m", "invocations", 503, 0.002)
    metrics.observe_request("n", "v2_infer", 400, 0.0001)
    for rows, requests in ((1, 1), (3, 2), (4096, 7), (5000, 9)):
        metrics.observe_batch("m", rows, requests)
    metrics.observe_request("n", "nan", 200, math.nan)  # no bucket; the sum becomes nan


def test_tallied_observations_render_as_if_written_through(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unused")
    through = ServeMetrics()  # several workers: every observation is written through
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    tallied = ServeMetrics()
    assert not through._tallies
    observe_all(through)
    observe_all(tallied)
    # 4 (model, endpoint, status) keys: a count and a latency each; 2 error counts; 2 batch
    assert len(tallied._tallies) == 12
    assert samples(tallied) == samples(through)
    observe_all(tallied)  # a second render adds to what the first wrote, once
    observe_all(through)
    assert samples(tallied) == samples(through)
    text = "\n".join(samples(tallied))
    assert metric(text, "neurocloud_requests_total", model="m", status="200") == 18
    assert metric(text, "neurocloud_request_duration_seconds_bucket", model="m", le="0.0005") == 6
    assert metric(text, "neurocloud_batch_rows_bucket", model="m", le="4096.0") == 6


def test_tallies_count_every_observation_from_several_threads():
    metrics = ServeMetrics()
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        for _ in range(5000):
            metrics.observe_request("m", "invocations", 200, 0.001)
            metrics.observe_batch("m", 2, 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = metrics.render()[0].decode()
    assert metric(text, "neurocloud_requests_total", model="m") == 20000
    labels = {"model": "m", "endpoint": "invocations", "status": "200"}
    metrics.observe_request("m", "invocations", 200, 0.001)  # collecting flushes too
    assert metrics.registry.get_sample_value("neurocloud_requests_total", labels) == 20001
    assert metric(text, "neurocloud_request_duration_seconds_count", model="m") == 20000
    assert metric(text, "neurocloud_batch_rows_sum", model="m") == 40000
