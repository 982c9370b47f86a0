"""A large predict's rows split between threads, each running the BLAS on one thread: the
bits of a run on one BLAS thread, the BLAS's thread count put back, errors as before."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import neurocloud as nc
from neurocloud.nn import inference, parallel


def blas_threads():
    return sorted(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


@pytest.fixture
def two_threads():
    """Two engine threads and two BLAS threads, whatever the machine's defaults."""
    parallel.set_threads(2)
    with threadpool_limits(2, user_api="blas"):
        yield blas_threads()
    parallel.set_threads(None)


@pytest.fixture
def parts(monkeypatch):
    """The parts each run_split call got."""
    seen = []
    original = parallel.run_split

    def recording(work, split):
        seen.append(list(split))
        original(work, split)

    monkeypatch.setattr(parallel, "run_split", recording)
    return seen


def mnist_shape(seed=0):
    layers = [nc.layers.Dense(256, activation="relu"), nc.layers.Dense(128, activation="relu")]
    return nc.Sequential(
        [*layers, nc.layers.Dense(10, activation="softmax")], input_dim=784, seed=seed
    )


def one_blas_thread_reference(model, X, rows):
    """The plan's blocks on one thread with the BLAS on one thread."""
    with threadpool_limits(1, user_api="blas"):
        return np.concatenate([model._plan.run(X[i : i + rows]) for i in range(0, len(X), rows)])


def test_mnist_shape_rows_past_the_threshold_split_and_give_one_blas_threads_bits(
    two_threads, parts
):
    model = mnist_shape()
    rows = model._block_rows
    # 1,800 rows are past SPLIT_MIN_MACS, 1,600 are not (and fit one block)
    assert model._plan.splits(1800) and not model._plan.splits(1600)
    X = np.random.default_rng(1).normal(size=(1800, 784)).astype(np.float32)
    got = model.predict(X)
    assert parts == [[(0, 900), (900, 1800)]]
    want = np.concatenate([one_blas_thread_reference(model, X[a:b], rows) for a, b in parts[0]])
    assert np.array_equal(got, want)
    assert blas_threads() == two_threads  # put back
    model.predict(X[:1600])
    assert len(parts) == 1  # no split below the threshold


@pytest.mark.parametrize("batch_size", [None, 97])
def test_blocks_within_each_part_and_the_bits_of_one_blas_thread(
    two_threads, parts, monkeypatch, batch_size
):
    monkeypatch.setattr(inference, "SPLIT_MIN_MACS", 1)
    model = nc.Sequential(
        [nc.layers.Dense(64, activation="relu"), nc.layers.Dense(3, activation="sigmoid")],
        input_dim=40,
        seed=2,
    )
    X = np.random.default_rng(3).normal(size=(1001, 40)).astype(np.float32)
    got = model.predict(X, batch_size=batch_size)
    rows = batch_size or model._block_rows
    assert parts == [[(0, 500), (500, 1001)]]
    want = np.concatenate([one_blas_thread_reference(model, X[a:b], rows) for a, b in parts[0]])
    assert np.array_equal(got, want)
    assert got.shape == (1001, 3) and got.dtype == np.float32


def test_a_non_finite_value_in_the_second_part_is_named_and_the_limit_put_back(
    two_threads, monkeypatch
):
    monkeypatch.setattr(inference, "SPLIT_MIN_MACS", 1)
    model = nc.Sequential([nc.layers.Dense(4)], input_dim=3, seed=0)
    X = np.ones((900, 3), np.float32)
    X[777, 2] = np.inf
    with pytest.raises(ValueError, match=r"X must be finite; received inf at index \[777, 2\]"):
        model.predict(X)
    assert blas_threads() == two_threads


def test_one_engine_thread_or_one_blas_thread_means_no_split_and_no_limit(parts, monkeypatch):
    monkeypatch.setattr(inference, "SPLIT_MIN_MACS", 1)
    model = nc.Sequential([nc.layers.Dense(8, activation="relu")], input_dim=5, seed=0)
    X = np.random.default_rng(0).normal(size=(600, 5)).astype(np.float32)
    want = model._plan.run(X)
    try:
        parallel.set_threads(1)
        with threadpool_limits(2, user_api="blas"):
            with parallel.one_blas_thread() as count:
                assert count == 1
                assert all(n == 2 for n in blas_threads())  # the BLAS keeps its threads
            assert np.array_equal(model.predict(X), want)
        parallel.set_threads(2)
        with threadpool_limits(1, user_api="blas"):
            with parallel.one_blas_thread() as count:
                assert count == 1
            assert np.array_equal(model.predict(X), want)
    finally:
        parallel.set_threads(None)
    assert all(len(p) == 1 for p in parts)


def test_nested_and_overlapping_callers_keep_the_limit_until_the_last_leaves(two_threads):
    with parallel.one_blas_thread() as outer:
        assert outer == 2 and all(n == 1 for n in blas_threads())
        with parallel.one_blas_thread() as inner:
            assert inner == 2 and all(n == 1 for n in blas_threads())
        assert all(n == 1 for n in blas_threads())  # the outer caller is still inside
    assert blas_threads() == two_threads


def test_many_threads_predicting_large_inputs_at_once_get_the_same_bits(two_threads, monkeypatch):
    monkeypatch.setattr(inference, "SPLIT_MIN_MACS", 1)
    model = nc.Sequential(
        [nc.layers.Dense(32, activation="relu"), nc.layers.Dense(4, activation="softmax")],
        input_dim=20,
        seed=4,
    )
    rng = np.random.default_rng(5)
    inputs = [rng.normal(size=(400 + 37 * i, 20)).astype(np.float32) for i in range(6)]
    want = [model.predict(X) for X in inputs]
    start, wrong, errors = threading.Barrier(6), [], []

    def worker(i):
        start.wait()
        try:
            for _ in range(40):
                if not np.array_equal(model.predict(inputs[i]), want[i]):
                    wrong.append(i)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wrong == []
    assert blas_threads() == two_threads
