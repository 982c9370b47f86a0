"""Hot reload under load, over real HTTP on 127.0.0.1: concurrent clients while versions are
added (by ``nc.save`` and by a slow file-by-file copy), replaced and removed. No answer may be
wrong, and no request may fail except a 404 for a version being removed."""

from __future__ import annotations

import asyncio
import random
import shutil
import time

import httpx
import numpy as np
import pytest
from serve_helpers import server

import neurocloud as nc

CLIENTS, TIME_LIMIT_S = 6, 60.0


def constant(value: float) -> nc.Sequential:
    """A model that answers ``value`` for every input."""
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    model.set_weights([np.zeros((1, 1)), np.array([value])])
    return model


def slow_copy(source, target) -> None:
    """A non-atomic copy, file by file, card last, with pauses the watcher can see."""
    target.mkdir()
    for name in ("model.json", "weights.safetensors", "card.json"):
        time.sleep(0.15)
        shutil.copy(source / name, target / name)


@pytest.mark.timeout(180)
def test_versions_added_replaced_and_removed_under_load_give_no_wrong_answer(tmp_path):
    root = tmp_path / "repo"
    nc.save(constant(1.0), root / "m" / "1")
    nc.save(constant(2.0), root / "m" / "2")
    staged = nc.save(constant(4.0), tmp_path / "staged")
    allowed = {"1": {1.0}, "2": {2.0, 20.0}, "3": {3.0}, "4": {4.0}}
    announced = ["1", "2"]  # versions known to be served; clients pick among these
    removing: set[str] = set()
    counts = {"ok": 0, "404": 0}
    seen: set[tuple[str, float]] = set()
    wrong: list[str] = []
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [0.5]}]}

    async def client(http: httpx.AsyncClient, stop: asyncio.Event, rng: random.Random):
        while not stop.is_set():
            version = rng.choice([None, *announced])
            url = (
                "/v2/models/m/infer"
                if version is None
                else f"/v2/models/m/versions/{version}/infer"
            )
            response = await http.post(url, json=body)
            if response.status_code == 404 and version in removing:
                counts["404"] += 1
                continue
            if response.status_code != 200:
                wrong.append(f"{url}: {response.status_code} {response.text[:200]}")
                continue
            answer = response.json()
            served, value = answer["model_version"], answer["outputs"][0]["data"][0]
            if (version is not None and served != version) or value not in allowed[served]:
                wrong.append(f"{url}: version {served} answered {value}")
            seen.add((served, value))
            counts["ok"] += 1

    async def until(http: httpx.AsyncClient, check) -> None:
        deadline = time.monotonic() + TIME_LIMIT_S
        while not await check(http):
            assert time.monotonic() < deadline, "the server did not pick up the change"
            await asyncio.sleep(0.02)

    async def more_requests(n: int = 40) -> None:  # keep each phase under load
        target = counts["ok"] + n
        await until(None, lambda h: _true(counts["ok"] >= target))

    async def versions(http):
        return (await http.get("/v2/models/m")).json()["versions"]

    async def answers(http, version, value):
        response = await http.post(f"/v2/models/m/versions/{version}/infer", json=body)
        return response.status_code == 200 and response.json()["outputs"][0]["data"][0] == value

    async def main(url: str) -> None:
        limits = httpx.Limits(max_connections=CLIENTS + 2)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            stop = asyncio.Event()
            workers = [
                asyncio.ensure_future(client(http, stop, random.Random(i))) for i in range(CLIENTS)
            ]
            try:
                await more_requests()
                await asyncio.to_thread(nc.save, constant(3.0), root / "m" / "3")  # atomic
                await until(http, lambda h: _has(versions(h), "3"))
                announced.append("3")
                await more_requests()
                await asyncio.to_thread(slow_copy, staged, root / "m" / "4")  # not atomic
                await until(http, lambda h: _has(versions(h), "4"))
                announced.append("4")
                await more_requests()
                await asyncio.to_thread(nc.save, constant(20.0), root / "m" / "2")  # replaced
                await until(http, lambda h: answers(h, "2", 20.0))
                allowed["2"] = {20.0}  # from now on only the new one may answer
                await more_requests()
                removing.add("1")
                await asyncio.to_thread(shutil.rmtree, root / "m" / "1")  # removed
                await until(http, lambda h: _lacks(versions(h), "1"))
                await more_requests()
            finally:
                stop.set()
                await asyncio.gather(*workers)

    with server(root, "--reload-interval", "0.05", "--max-batch-delay-ms", "1") as process:
        asyncio.run(main(process.url))
    assert wrong == []
    assert {("1", 1.0), ("2", 2.0), ("2", 20.0), ("3", 3.0), ("4", 4.0)} <= seen
    assert counts["ok"] >= 200, counts


async def _true(value: bool) -> bool:
    return value


async def _has(versions, version: str) -> bool:
    return version in await versions


async def _lacks(versions, version: str) -> bool:
    return version not in await versions
