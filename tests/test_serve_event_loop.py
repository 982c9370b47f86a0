"""The event loop never waits for a large body or an explanation: ``/ping`` answers while
gzip bombs are being inflated and parsed, a timed-out explanation stops computing, and
small bodies are decoded inline (no thread hop).

These tests synchronise on events; the timeouts only bound how long a failure takes."""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading

import numpy as np
import pytest
from serve_helpers import app_for, article_model, running, wide_model

import neurocloud as nc
from neurocloud.explain import core
from neurocloud.serve import codecs


def test_ping_answers_while_gzip_bomb_csv_bodies_are_parsed(tmp_path, monkeypatch):
    path = nc.save(article_model(), tmp_path / "seed")
    release = threading.Event()
    started = threading.Semaphore(0)
    held = []  # one entry per decode in progress
    real = codecs._decode_csv

    def held_decode(body, signature):
        held.append(1)
        started.release()
        release.wait(timeout=20)  # held until /ping has answered (20 s: a failure's bound)
        held.pop()
        return real(body, signature)

    monkeypatch.setattr(codecs, "_decode_csv", held_decode)
    bomb = gzip.compress(b"1.5\n" * 200_000)  # ~2.5 KB inflating to 800 KB

    async def scenario() -> tuple[bool, list[int]]:
        async with running(app_for(path)) as client:
            headers = {"Content-Type": "text/csv", "Content-Encoding": "gzip"}
            bombs = [
                asyncio.create_task(client.post("/invocations", content=bomb, headers=headers))
                for _ in range(3)
            ]
            while not started.acquire(blocking=False):  # a decode is under way
                await asyncio.sleep(0.001)
            ping = await client.get("/ping")
            ready = await client.get("/v2/health/ready")
            answered_first = len(held) > 0  # a bomb was still being decoded
            release.set()
            done = await asyncio.gather(*bombs)
            return answered_first and ping.status_code == ready.status_code == 200, [
                r.status_code for r in done
            ]

    answered_first, statuses = asyncio.run(scenario())
    assert answered_first
    assert statuses == [200, 200, 200]


def test_small_bodies_are_decoded_on_the_event_loop_thread(tmp_path, monkeypatch):
    path = nc.save(article_model(), tmp_path / "seed")
    threads = []
    real = codecs._decode_json

    def spy(body, signature):
        threads.append(threading.current_thread())
        return real(body, signature)

    monkeypatch.setattr(codecs, "_decode_json", spy)

    async def scenario() -> int:
        async with running(app_for(path)) as client:
            return (await client.post("/invocations", json={"x": [4.5]})).status_code

    assert asyncio.run(scenario()) == 200
    assert threads == [threading.main_thread()]


def test_timed_out_explanation_stops_computing_after_its_504(tmp_path, monkeypatch, caplog):
    path = nc.save(wide_model(), tmp_path / "wide")
    monkeypatch.setattr(core, "CHUNK_ROWS", 256)
    entered = threading.Event()
    real = core.check_deadline

    def check() -> None:  # the first chunk waits until the request has timed out
        if not entered.is_set():
            entered.set()
            answered.wait(timeout=20)
        real()

    monkeypatch.setattr(core, "check_deadline", check)
    answered = threading.Event()
    X = np.random.default_rng(0).normal(size=(256, 3)).tolist()

    async def scenario() -> tuple[int, str]:
        async with running(app_for(path, timeout_s=0.2)) as client:
            response = await client.post(
                "/explain", json={"x": X, "parameters": {"method": "ig", "steps": 512}}
            )
            answered.set()
            for _ in range(2000):  # until the worker thread gives up (bounded)
                if any("stopped" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
            return response.status_code, response.json()["error"]

    with caplog.at_level(logging.INFO, logger="neurocloud.serve"):
        status, message = asyncio.run(scenario())
    assert status == 504 and "SAGEMAKER_MODEL_SERVER_TIMEOUT" in message
    assert any("ran past its deadline" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("rows", "parameters"),
    [  # one feature: within the evaluated-values bound, which alone let these through
        (64, {"method": "smoothgrad", "over": "ig", "samples": 1024, "steps": 128}),
        (2, {"method": "smoothgrad", "over": "ig", "samples": 1024, "steps": 1024}),
        (1024, {"method": "smoothgrad", "over": "ig", "samples": 64, "steps": 32}),
    ],
)
def test_explanation_work_is_bounded_by_rows_steps_and_samples(rows, parameters):
    from neurocloud.explain.serving import LimitExceeded, explain_batch

    with pytest.raises(LimitExceeded, match="MAX_POINTS"):
        explain_batch(article_model(), np.ones((rows, 1)), parameters)


def test_explanation_work_counts_the_network_size():
    from neurocloud.explain import serving

    big = nc.Sequential(
        [nc.layers.Dense(2048, activation="relu"), nc.layers.Dense(2048), nc.layers.Dense(1)],
        input_dim=8,
        seed=0,
    )
    with pytest.raises(serving.LimitExceeded, match="MAX_WORK"):
        serving.explain_batch(big, np.ones((16, 8)), {"method": "ig", "steps": 1024})
