"""Model repository: layouts, readiness only after load and warm-up, hot reload of new,
rewritten and removed versions with requests in flight."""

from __future__ import annotations

import asyncio
import gc
import shutil
import weakref

import numpy as np
import pytest
from serve_helpers import app_for, article_model, running
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.artifact import ArtifactError
from neurocloud.serve.repository import discover


def test_layouts(tmp_path):
    single = nc.save(article_model(), tmp_path / "single")
    assert {k: sorted(v) for k, v in discover(single).items()} == {"single": ["1"]}
    nc.save(article_model(), tmp_path / "versioned" / "1")
    nc.save(article_model(), tmp_path / "versioned" / "10")
    assert sorted(discover(tmp_path / "versioned")["versioned"]) == ["1", "10"]
    nc.save(article_model(), tmp_path / "repo" / "a")
    nc.save(article_model(), tmp_path / "repo" / "b" / "3")
    (tmp_path / "repo" / ".b.tmp-123").mkdir()
    (tmp_path / "repo" / "notes").mkdir()
    assert {k: sorted(v) for k, v in discover(tmp_path / "repo").items()} == {
        "a": ["1"],
        "b": ["3"],
    }


def test_nothing_to_serve_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no model found"):
        discover(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        discover(tmp_path / "missing")


def test_ready_only_after_load_and_warm_up(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    app = app_for(path)
    with TestClient(app) as client:  # lifespan started: loaded and warmed
        assert client.get("/ping").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
    for fresh_or_stopped in (app_for(path), app):  # no lifespan running: nothing loaded
        outside = TestClient(fresh_or_stopped)
        assert outside.get("/v2/health/live").status_code == 200
        assert outside.get("/ping").status_code == 503
        assert outside.get("/v2/health/ready").status_code == 503
        response = outside.post("/invocations", json={"x": [1.0]})
        assert response.status_code == 503 and "/ping" in response.json()["error"]


def test_broken_model_fails_startup_naming_the_file(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    (path / "weights.safetensors").write_bytes(b"truncated")
    with pytest.raises(ArtifactError, match=r"weights\.safetensors"), TestClient(app_for(path)):
        pass


def test_warm_up_checks_outputs_against_metadata(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    meta = (
        (path / "model.json")
        .read_text()
        .replace('"shape": [\n        -1,\n        1\n      ]', "X")
    )
    assert meta.count("X") == 2  # inputs and outputs
    broken = meta.replace("X", '"shape": [-1, 1]', 1).replace("X", '"shape": [-1, 5]', 1)
    (path / "model.json").write_text(broken)
    with pytest.raises(ValueError, match="width 5"), TestClient(app_for(path)):
        pass


async def hammer(client, stop: asyncio.Event, statuses: list[int], versions: list[str]):
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}
    while not stop.is_set():
        response = await client.post("/v2/models/seed/infer", json=body)
        statuses.append(response.status_code)
        if response.status_code == 200:
            versions.append(response.json()["model_version"])
        sagemaker = await client.post("/invocations", json={"x": [1.0]})
        statuses.append(sagemaker.status_code)


async def wait_for(predicate, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_hot_reload_with_requests_in_flight(tmp_path):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    app = app_for(root, reload_interval_s=0.05, max_batch_delay_ms=2)
    statuses: list[int] = []
    versions: list[str] = []

    async def main():
        async with running(app) as client:
            stop = asyncio.Event()
            workers = [
                asyncio.ensure_future(hammer(client, stop, statuses, versions)) for _ in range(8)
            ]

            async def version_list():
                return (await client.get("/v2/models/seed")).json()["versions"]

            async def default_version():
                return versions and versions[-1]

            await wait_for(lambda: default_version())
            # a new version appears: served once loaded, the old one keeps answering
            await asyncio.to_thread(nc.save, article_model(1), root / "seed" / "2")
            await wait_for(lambda: _eq(version_list(), ["1", "2"]))
            await wait_for(lambda: _true(versions[-1] == "2"))
            one = await client.post("/v2/models/seed/versions/1/infer", json=_body(2.0))
            two = await client.post("/v2/models/seed/infer", json=_body(2.0))
            # a version rewritten in place (nc.save replaces the folder atomically)
            await asyncio.to_thread(nc.save, article_model(5), root / "seed" / "2")
            await wait_for(lambda: _close(client, "2", article_model(5).predict([[2.0]])))
            # a version removed: unloaded after two checks, in-flight requests finish
            await asyncio.to_thread(shutil.rmtree, root / "seed" / "1")
            await wait_for(lambda: _eq(version_list(), ["2"]))
            gone = await client.post("/v2/models/seed/versions/1/infer", json=_body(2.0))
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*workers)
            return one, two, gone

    one, two, gone = asyncio.run(main())
    assert len(statuses) > 50 and set(statuses) == {200}, sorted(set(statuses))
    assert {"1", "2"} <= set(versions)
    np.testing.assert_allclose(
        one.json()["outputs"][0]["data"],
        article_model(0).predict([[2.0]]).ravel(),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        two.json()["outputs"][0]["data"],
        article_model(1).predict([[2.0]]).ravel(),
        rtol=1e-5,
        atol=1e-6,
    )
    assert gone.status_code == 404


def test_a_broken_new_version_is_reported_and_the_rest_keeps_serving(tmp_path):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    app = app_for(root, reload_interval_s=0.05)

    async def main():
        async with running(app) as client:
            broken = nc.save(article_model(1), root / "seed" / "2")
            (broken / "weights.safetensors").write_bytes(b"oops")

            async def listed():
                models = (await client.get("/v2/models")).json()["models"]
                return any(m["state"] == "UNAVAILABLE" for m in models)

            await wait_for(listed)
            ready = await client.get("/v2/models/seed/versions/2/ready")
            default = await client.post("/invocations", json={"x": [1.0]})
            models = (await client.get("/v2/models")).json()["models"]
            metrics = (await client.get("/metrics")).text
            return ready, default, models, metrics

    ready, default, models, metrics = asyncio.run(main())
    assert ready.status_code == 503 and "weights.safetensors" in ready.json()["error"]
    assert default.status_code == 200
    np.testing.assert_allclose(
        default.json()["y"], article_model(0).predict([[1.0]]), rtol=1e-5, atol=1e-6
    )
    unavailable = [m for m in models if m["state"] == "UNAVAILABLE"]
    assert unavailable[0]["versions"] == ["2"] and "weights.safetensors" in unavailable[0]["reason"]
    assert 'neurocloud_model_loads_total{model="seed",outcome="failure"} 1.0' in metrics


def test_the_heap_is_frozen_while_serving_and_a_retired_version_is_still_collected(tmp_path):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    app = app_for(root, reload_interval_s=0.05)
    repository = app.state.neurocloud.repository

    async def main():
        async with running(app) as client:
            frozen = gc.get_freeze_count()
            old = weakref.ref(repository.resolve("seed", "1"))
            # rewrite version 1 in place: the new one is served, the old one retired
            await asyncio.to_thread(nc.save, article_model(5), root / "seed" / "1")
            await wait_for(lambda: _close(client, "1", article_model(5).predict([[2.0]])))

            async def collected():
                gc.collect()
                return old() is None

            await wait_for(collected)
            return frozen

    frozen = asyncio.run(main())
    assert frozen > 1000  # the framework and NumPy, frozen before the models load
    assert gc.get_freeze_count() == 0  # and given back to the collector at shutdown


def _body(value: float) -> dict:
    return {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [value]}]}


async def _eq(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def _true(value: bool) -> bool:
    return value


async def _close(client, version: str, expected) -> bool:
    response = await client.post(f"/v2/models/seed/versions/{version}/infer", json=_body(2.0))
    return np.allclose(
        response.json()["outputs"][0]["data"], np.ravel(expected), rtol=1e-5, atol=1e-6
    )
