"""``nn.parallel``: several threads over disjoint blocks give the bits of one thread."""

import multiprocessing
import threading

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import optim, parallel


@pytest.fixture
def two_threads():
    parallel.set_threads(2)
    yield
    parallel.set_threads(None)


def test_every_part_runs_once_and_some_run_in_another_thread(two_threads):
    seen, names = [], set()

    def work(part):
        seen.append(part)
        names.add(threading.current_thread().name)

    parallel.run_split(work, list(range(7)))
    assert sorted(seen) == list(range(7))
    assert len(names) == 2


def test_an_error_in_a_worker_reaches_the_caller(two_threads):
    def work(part):
        if part == 3:
            raise ValueError("part 3")

    with pytest.raises(ValueError, match="part 3"):
        parallel.run_split(work, [0, 1, 2, 3])


def test_threads_never_exceed_the_cores_or_the_blas_threads():
    from threadpoolctl import threadpool_limits

    parallel.set_threads(None)
    try:
        with threadpool_limits(1):
            assert parallel.threads() == 1
        parallel.set_threads(None)
        assert 1 <= parallel.threads() <= parallel._cores()
    finally:
        parallel.set_threads(None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nc.optim.Adam(lr=0.01, weight_decay=0.1),
        lambda: nc.optim.AdamW(lr=0.01),
        lambda: nc.optim.RMSprop(weight_decay=0.01),
        lambda: nc.optim.SGD(momentum=0.9, nesterov=True, weight_decay=0.01),
    ],
)
def test_threaded_updates_equal_one_thread(make):
    rng = np.random.default_rng(5)
    start = rng.normal(size=(700, 400)).astype(np.float32)  # above PARALLEL_MIN
    assert start.size >= optim.PARALLEL_MIN
    grads = [rng.normal(size=start.shape).astype(np.float32) for _ in range(3)]
    results = []
    for count in (1, 2):
        parallel.set_threads(count)
        try:
            w, opt = start.copy(), make()
            for g in grads:
                opt.step([w], [g.copy()])
            results.append(w)
        finally:
            parallel.set_threads(None)
    assert np.array_equal(*results)


def _double_in_child(queue):
    a = np.ones(8)
    parallel.run_split(lambda part: np.multiply(part, 2, out=part), [a[:4], a[4:]])
    queue.put(a.tolist())


def test_a_forked_child_gets_a_pool_of_its_own(two_threads):
    parallel.run_split(lambda part: None, [0, 1])  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_double_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == [2.0] * 8
    child.join(timeout=60)
    assert child.exitcode == 0


def test_callers_of_different_sizes_share_the_pool_without_breaking_each_other():
    # Two threads splitting into 2 and 3 parts at once: a pool sized for one must never be
    # shut down under the other ("cannot schedule new futures after shutdown").
    parallel.set_threads(4)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def loop(parts: int) -> None:
        start.wait()
        try:
            for _ in range(300):
                parallel.run_split(lambda part: None, list(range(parts)))
        except BaseException as error:  # reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=loop, args=(n,)) for n in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        parallel.set_threads(None)
    assert errors == []
