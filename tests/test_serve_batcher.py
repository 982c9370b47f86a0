"""The micro-batcher: concurrent requests share forward passes, bounded in rows and delay,
and every caller gets exactly its own rows back, directly and under both protocols."""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import time

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import app_for, running, wide_model

import neurocloud as nc
from neurocloud.serve.batcher import BatchTimeout, MicroBatcher


def tagged(counts: list[int]) -> list[np.ndarray]:
    """Request ``i`` has rows ``[i*1000 + j, -(i*1000 + j)]``: any mix-up shows."""
    return [
        np.array([[i * 1000 + j, -(i * 1000 + j)] for j in range(n)], dtype=np.float64)
        for i, n in enumerate(counts)
    ]


def greedy_batches(counts: list[int], limit: int) -> int:
    batches, rows = 0, None
    for n in counts:
        if rows is None or rows + n > limit:
            batches, rows = batches + 1, n
        else:
            rows += n
    return batches


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 12), min_size=1, max_size=30),
    max_rows=st.integers(1, 40),
    delay_ms=st.sampled_from([0.0, 2.0]),
    inline_us=st.sampled_from([0.0, 1e6, math.inf]),  # never, once timed, always
)
def test_each_caller_gets_its_own_rows(counts, max_rows, delay_ms, inline_us):
    passes: list[tuple[int, int]] = []

    def forward(X):
        return np.column_stack([X[:, 0] * 2, X[:, 1] + 1, X.sum(axis=1)])

    batcher = MicroBatcher(
        forward,
        max_batch_rows=max_rows,
        max_batch_delay_ms=delay_ms,
        on_batch=lambda rows, requests: passes.append((rows, requests)),
        inline_below_us=inline_us,
    )
    requests = tagged(counts)

    async def main():
        # Every request arrives at one instant of the loop's clock: on a loaded machine the
        # submits may take longer than the delay, and a pass would start before all queue.
        loop = asyncio.get_running_loop()
        instant = loop.time()
        loop.time = lambda: instant  # type: ignore[method-assign]
        try:
            calls = [asyncio.ensure_future(batcher.submit(r)) for r in requests]
            await asyncio.sleep(0)  # each submit runs up to its wait for the answer
        finally:
            del loop.time
        return await asyncio.gather(*calls)

    results = asyncio.run(main())
    for rows, out in zip(requests, results):
        np.testing.assert_array_equal(out, forward(rows))
    assert sum(r for r, _ in passes) == sum(counts)
    assert sum(q for _, q in passes) == len(counts)
    for rows, requests_in_pass in passes:
        assert rows <= max_rows or requests_in_pass == 1  # only a lone big request exceeds
    if delay_ms:  # everyone queued before the first pass: greedy packing in arrival order
        assert len(passes) == greedy_batches(counts, max_rows)


def test_forward_runs_off_the_event_loop():
    threads = []

    def forward(X):
        threads.append(threading.get_ident())
        return X

    async def main():
        batcher = MicroBatcher(forward)
        await batcher.submit(np.ones((1, 1)))
        await batcher.close()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads and loop_thread not in threads


def test_delay_counts_from_the_oldest_request():
    passes = []
    batcher = MicroBatcher(
        lambda X: X, max_batch_delay_ms=600, on_batch=lambda r, q: passes.append(q)
    )

    async def main():
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(batcher.submit(np.ones((1, 1))))
        await asyncio.sleep(0)  # the first request is queued and the batch timer set
        oldest = batcher._queue[0].arrival
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(batcher.submit(np.ones((1, 1))))
        await asyncio.sleep(0)
        newest = batcher._queue[-1].arrival
        due = batcher._timer.when()  # the pass's start, whatever the machine's load
        await asyncio.gather(first, second)
        return oldest, newest, due, loop.time()

    oldest, newest, due, finished = asyncio.run(main())
    assert newest > oldest
    assert due == oldest + 0.6  # not newest + 0.6: the delay did not restart
    assert finished >= due
    assert passes == [2]


def test_full_batch_does_not_wait_for_the_delay():
    batcher = MicroBatcher(lambda X: X, max_batch_rows=4, max_batch_delay_ms=5000)

    async def main():
        start = time.perf_counter()
        await asyncio.gather(*(batcher.submit(np.ones((2, 1))) for _ in range(2)))
        return time.perf_counter() - start

    assert asyncio.run(main()) < 2


def test_timeout_and_failure_do_not_stall_the_batcher():
    calls = []

    def forward(X):
        calls.append(len(X))
        if X[0, 0] < 0:
            raise ValueError("negative")
        time.sleep(0.3 if X[0, 0] == 9 else 0)
        return X

    async def main():
        batcher = MicroBatcher(forward, timeout_s=0.05)
        with pytest.raises(BatchTimeout):
            await batcher.submit(np.full((1, 1), 9.0))
        await asyncio.sleep(0.3)  # the slow pass ends
        with pytest.raises(ValueError, match="negative"):
            await batcher.submit(np.full((1, 1), -1.0))
        out = await batcher.submit(np.full((1, 1), 3.0))
        await batcher.close()
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.submit(np.ones((1, 1)))
        return out

    assert asyncio.run(main()).tolist() == [[3.0]]


def burn_cpu(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


def test_cheap_pass_runs_inline_once_timed():
    threads = []

    def forward(X):
        threads.append(threading.get_ident())
        return X * 3

    rows = np.arange(6.0).reshape(3, 2)

    async def main():
        batcher = MicroBatcher(forward, inline_below_us=1e6)
        first = await batcher.submit(rows)  # 3 rows never timed: the thread times them
        counts = [(batcher.thread_passes, batcher.inline_passes)]
        second = await batcher.submit(rows + 0)  # timed cheap: answered on the loop
        counts.append((batcher.thread_passes, batcher.inline_passes))
        other = await batcher.submit(np.ones((9, 2)))  # 8-15 rows: another bucket, untimed
        counts.append((batcher.thread_passes, batcher.inline_passes))
        await batcher.close()
        return first, second, other, counts, threading.get_ident()

    first, second, other, counts, loop_thread = asyncio.run(main())
    assert counts == [(1, 0), (1, 1), (2, 1)]
    assert threads[0] != loop_thread and threads[1] == loop_thread and threads[2] != loop_thread
    np.testing.assert_array_equal(first, rows * 3)
    np.testing.assert_array_equal(second, first)  # the same bits either way
    np.testing.assert_array_equal(other, np.full((9, 2), 3.0))


def test_requests_in_an_inline_pass_turn_share_the_next_pass():
    passes = []

    async def main():
        batcher = MicroBatcher(
            lambda X: X * 2, inline_below_us=math.inf, on_batch=lambda r, q: passes.append(q)
        )
        outs = await asyncio.gather(*(batcher.submit(np.full((1, 1), i)) for i in range(4)))
        counts = batcher.thread_passes, batcher.inline_passes
        await batcher.close()
        return outs, counts

    outs, counts = asyncio.run(main())
    assert passes == [1, 3]  # the first alone on arrival, the three from its turn together
    assert counts == (0, 2)
    assert [o.item() for o in outs] == [0.0, 2.0, 4.0, 6.0]


def test_costly_pass_stays_in_the_thread_and_batches():
    passes = []

    def forward(X):
        burn_cpu(0.002)  # 2 ms of CPU, far over the 50 us threshold
        return X + 1

    async def main():
        batcher = MicroBatcher(forward, inline_below_us=50, on_batch=lambda r, q: passes.append(q))
        await batcher.submit(np.ones((1, 1)))  # timed: costly
        # The first runs in the thread; the other two queue meanwhile and share a pass.
        outs = await asyncio.gather(*(batcher.submit(np.full((1, 1), i)) for i in range(3)))
        counts = batcher.thread_passes, batcher.inline_passes
        await batcher.close()
        return outs, counts

    outs, counts = asyncio.run(main())
    assert counts == (3, 0)
    assert passes == [1, 1, 2]
    assert [o.item() for o in outs] == [1.0, 2.0, 3.0]


def test_inline_pass_failure_reaches_its_caller():
    def forward(X):
        if X[0, 0] < 0:
            raise ValueError("negative")
        return X[:1] if X[0, 0] == 7 else X

    async def main():
        batcher = MicroBatcher(forward, inline_below_us=math.inf)
        with pytest.raises(ValueError, match="negative"):
            await batcher.submit(np.full((1, 1), -1.0))
        with pytest.raises(RuntimeError, match="returned 1 rows for 2"):
            await batcher.submit(np.full((2, 1), 7.0))
        out = await batcher.submit(np.full((1, 1), 3.0))
        return out, batcher.inline_passes, batcher.thread_passes

    out, inline, thread = asyncio.run(main())
    assert out.tolist() == [[3.0]] and (inline, thread) == (3, 0)


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_batch_rows"):
        MicroBatcher(lambda X: X, max_batch_rows=0)
    with pytest.raises(ValueError, match="max_batch_delay_ms"):
        MicroBatcher(lambda X: X, max_batch_delay_ms=-1)
    with pytest.raises(ValueError, match="inline_below_us"):
        MicroBatcher(lambda X: X, inline_below_us=-1)
    with pytest.raises(ValueError, match="inline_forward_us"):
        nc.serve.ServeConfig(inline_forward_us=math.nan)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = wide_model(seed=3)
    path = nc.save(model, tmp_path_factory.mktemp("batching") / "wide")
    return model, app_for(path, max_batch_rows=32)


def sagemaker_call(client, rows):
    return client.post("/invocations", json={"x": rows.tolist()})


def v2_json_call(client, rows):
    body = {
        "inputs": [
            {
                "name": "x",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    return client.post("/v2/models/wide/infer", json=body)


def v2_binary_call(client, rows):
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    return client.post(
        "/v2/models/wide/infer",
        content=header + rows.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def decoded(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    if "inference-header-content-length" in response.headers:
        size = int(response.headers["inference-header-content-length"])
        shape = orjson.loads(response.content[:size])["outputs"][0]["shape"]
        return np.frombuffer(response.content[size:], dtype="<f4").reshape(shape)
    data = response.json()
    if "outputs" in data:
        tensor = data["outputs"][0]
        return np.reshape(tensor["data"], tensor["shape"])
    return np.asarray(data["y"])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(counts=st.lists(st.integers(1, 9), min_size=2, max_size=16), seed=st.integers(0, 2**16))
def test_both_protocols_get_their_own_rows(served, counts, seed):
    """A first request holds the forward pass (on an event) until every other request is
    queued (counted by a hook on the batcher's submit), so they must share passes: no
    reliance on the batch delay, whatever the machine's load."""
    model, app = served
    rng = np.random.default_rng(seed)
    requests = [rng.normal(size=(n, 3)).astype(np.float32) for n in counts]
    calls = [sagemaker_call, v2_json_call, v2_binary_call]
    metrics = app.state.neurocloud.metrics

    async def main():
        async with running(app) as client:
            version = app.state.neurocloud.repository.resolve("wide")
            network, batcher = version.artifact.model, version.batcher
            entered, release = threading.Event(), threading.Event()
            queued, submitted = asyncio.Event(), []
            real_forward, real_submit = network.forward, batcher.submit

            def held_forward(rows, *args, **kwargs):
                if not release.is_set():
                    entered.set()
                    release.wait(timeout=20)  # a failure's bound, not a timing
                return real_forward(rows, *args, **kwargs)

            async def counted_submit(rows):
                submitted.append(len(rows))
                if len(submitted) == len(requests) + 1:
                    queued.set()
                return await real_submit(rows)

            network.forward, batcher.submit = held_forward, counted_submit
            try:
                plug = asyncio.ensure_future(sagemaker_call(client, requests[0]))
                await asyncio.to_thread(entered.wait, 20)  # the plug's pass is running
                before = batch_passes(metrics)
                responses = asyncio.gather(
                    *(calls[i % 3](client, rows) for i, rows in enumerate(requests))
                )
                await asyncio.wait_for(queued.wait(), 20)  # every request is queued
                release.set()
                answers = await responses
                await plug
            finally:
                release.set()
                del network.forward, batcher.submit
            return answers, batch_passes(metrics) - before - 1

    responses, passes = asyncio.run(main())
    for rows, response in zip(requests, responses):
        np.testing.assert_allclose(decoded(response), model.predict(rows), rtol=1e-5, atol=1e-6)
    # all queued at once, 9 rows at most each, 32 per pass: every pass merges requests
    assert 1 <= passes < len(requests)


def batch_passes(metrics) -> float:
    metrics.flush()  # the tallies since the last render
    return sum(
        sample.value
        for family in metrics.batch_requests.collect()
        for sample in family.samples
        if sample.name.endswith("_count")
    )


@pytest.fixture
def switch_interval():
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # the interpreter's default
    yield
    sys.setswitchinterval(saved)


def test_the_switch_interval_shortens_only_once_work_runs_beside_the_loop(switch_interval):
    from neurocloud.serve import body, switching

    async def main(inline_below_us):
        batcher = MicroBatcher(lambda X: X + 1, inline_below_us=inline_below_us)
        for _ in range(3):
            await batcher.submit(np.ones((1, 1)))
        interval = sys.getswitchinterval()
        await batcher.close()
        return interval

    assert asyncio.run(main(math.inf)) == 0.005  # every pass inline: no thread waits
    # a small body is decoded on the loop; a large one in a decoding thread
    assert asyncio.run(body.off_loop(100, len, b"x")) == 1 and sys.getswitchinterval() == 0.005
    assert asyncio.run(main(0)) == switching.THREAD_SWITCH_INTERVAL_S
    sys.setswitchinterval(0.005)
    assert asyncio.run(body.off_loop(body.INLINE_BYTES + 1, len, b"xy")) == 2
    assert sys.getswitchinterval() == switching.THREAD_SWITCH_INTERVAL_S
    sys.setswitchinterval(0.0001)  # shorter already (set by the user): left as it is
    assert asyncio.run(main(0)) == pytest.approx(0.0001)
