"""The event loop never waits for a large body or an explanation: ``/ping`` answers while
gzip bombs are being inflated and parsed, a timed-out explanation stops computing, and
small bodies are decoded inline (no thread hop).

These tests synchronise on events; the timeouts only bound how long a failure takes."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import threading

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import app_for, article_model, running, wide_model

import neurocloud as nc
from neurocloud.explain import core
from neurocloud.serve import codecs, large_bodies


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

    def spy(body, signature, *limits):
        threads.append(threading.current_thread())
        return real(body, signature, *limits)

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
    from neurocloud.serve.explanation_requests import LimitExceeded, explain_batch

    with pytest.raises(LimitExceeded, match="MAX_POINTS"):
        explain_batch(article_model(), np.ones((rows, 1)), parameters)


def test_explanation_work_counts_the_network_size():
    from neurocloud.serve import explanation_requests as serving

    big = nc.Sequential(
        [nc.layers.Dense(2048, activation="relu"), nc.layers.Dense(2048), nc.layers.Dense(1)],
        input_dim=8,
        seed=0,
    )
    with pytest.raises(serving.LimitExceeded, match="MAX_WORK"):
        serving.explain_batch(big, np.ones((16, 8)), {"method": "ig", "steps": 1024})


def _decode_both(body: bytes, signature, monkeypatch):
    """``decode_request`` with the large-body fast path, and with the exact parser only."""
    from neurocloud.serve.errors import ServeError

    results = []
    for limit in (large_bodies.FAST_CHARS, 10**12):
        with monkeypatch.context() as patch:
            patch.setattr(large_bodies, "FAST_CHARS", limit)
            try:
                rows, form = codecs.decode_request(body, "application/json", signature)
                results.append((rows.tolist(), form))
            except ServeError as exc:
                results.append(exc.status)
    return results


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    width=st.integers(1, 3),
    key=st.sampled_from(["x", "instances", "inputs", None]),
    flat=st.booleans(),
    spaced=st.booleans(),
    seed=st.integers(0, 2**16),
    mutation=st.one_of(st.none(), st.tuples(st.floats(0, 1), st.sampled_from(list(b"[],.+-e0 1")))),
)
def test_large_json_bodies_decode_exactly_as_the_exact_parser_does(
    monkeypatch, width, key, flat, spaced, seed, mutation
):
    from neurocloud.serve.signature import Signature

    signature = Signature("x", width, "y", 1, np.dtype("float32"))
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(30000, width)) * 10.0 ** rng.integers(-8, 8, size=(30000, 1))
    data = values.ravel().tolist() if flat and width == 1 else values.tolist()
    if rng.random() < 0.3:
        data = rng.integers(-50, 50, size=np.shape(data)).tolist()
    document = data if key is None else {key: data}
    body = (json.dumps(document) if spaced else orjson.dumps(document).decode()).encode()
    if mutation is not None:  # one byte changed: the same answer or the same refusal
        where = int(mutation[0] * (len(body) - 1))
        body = body[:where] + bytes([mutation[1]]) + body[where + 1 :]
    assert len(body) > large_bodies.FAST_CHARS
    fast, exact = _decode_both(body, signature, monkeypatch)
    assert fast == exact
