"""explain/kinks.py: the kink search of integrated gradients goes in chunks that check the
explanation's deadline and count their work, and chunking changes no cut."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from explain_networks import kinked_network

from neurocloud.explain import core, integrated, kinks
from neurocloud.explain.core import DeadlineExceeded, WorkLimitExceeded, deadline

X = np.random.default_rng(1).normal(size=(96, 6)) * 2.0


def test_a_stopped_explanation_does_no_more_kink_search(monkeypatch):
    """Before the chunks, the search ran all its passes after the deadline had passed and
    the explanation gave up only at the gradients."""
    monkeypatch.setattr(core, "CHUNK_ROWS", 256)
    model = kinked_network()
    stop = threading.Event()
    after_stop: list[int] = []  # rows through the first layer once stopped
    forward = model.layers[0].forward

    def counting_forward(x, *args, **kwargs):
        if stop.is_set():
            after_stop.append(len(x))
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(model.layers[0], "forward", counting_forward)
    search = integrated.path_breakpoints

    def stopped_search(*args, **kwargs):
        stop.set()  # the deadline passes as the kink search begins
        return search(*args, **kwargs)

    monkeypatch.setattr(integrated, "path_breakpoints", stopped_search)
    with deadline(math.inf, stop), pytest.raises(DeadlineExceeded):
        integrated.integrated_gradients(model, X, steps=8)
    assert after_stop == []


def test_kink_search_work_is_counted_and_a_tiny_deadline_stops_it_early(monkeypatch):
    monkeypatch.setattr(core, "CHUNK_ROWS", 256)
    model = kinked_network()
    with deadline() as whole:
        integrated.integrated_gradients(model, X, steps=8)
    with deadline() as search:
        kinks.path_breakpoints(model, np.zeros_like(X), X)
    assert 0 < search.work < whole.work
    # the search alone costs more than the gradients here: a heavy search, few steps
    gradients = whole.work - search.work
    assert search.work > gradients

    stop = threading.Event()
    chunks = 0
    spend = core.spend

    def stop_at_the_third_chunk(units: int) -> None:  # the deadline passes mid-search
        nonlocal chunks
        chunks += 1
        if chunks == 3:
            stop.set()
        spend(units)

    monkeypatch.setattr(core, "spend", stop_at_the_third_chunk)
    with deadline(math.inf, stop) as stopped, pytest.raises(DeadlineExceeded):
        integrated.integrated_gradients(model, X, steps=8)
    assert stopped.work < search.work < whole.work  # it stopped inside the search


def test_the_work_bound_counts_the_kink_search():
    model = kinked_network()
    with deadline() as whole:
        expected = integrated.integrated_gradients(model, X, steps=8)
    with deadline(max_work=whole.work):  # exactly enough
        same = integrated.integrated_gradients(model, X, steps=8)
    assert np.array_equal(same.attributions, expected.attributions)
    with deadline() as search:
        kinks.path_breakpoints(model, np.zeros_like(X), X)
    # enough for everything but the search: refused, and before the gradients' passes
    with deadline(max_work=whole.work - 1) as short, pytest.raises(WorkLimitExceeded):
        integrated.integrated_gradients(model, X, steps=8)
    assert short.work <= search.work + 2 * len(X) * (model.count_params() + X.shape[1])


def test_nested_bounds_count_in_both_and_both_apply():
    with deadline(max_work=10) as outer, deadline(max_work=100) as inner:
        core.spend(6)
        with pytest.raises(WorkLimitExceeded, match="more than 10 work units"):
            core.spend(6)
    assert outer.work == inner.work == 6


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunks_and_row_groups_change_no_cut(monkeypatch, chunk):
    model = kinked_network(3)
    start, end = np.zeros((9, 6)), X[:9]
    expected = kinks.path_breakpoints(model, start, end)
    assert len(expected[0]) > 9 * 4  # several cuts per row
    monkeypatch.setattr(core, "CHUNK_ROWS", chunk)
    alphas, rows = kinks.path_breakpoints(model, start, end)
    assert np.array_equal(rows, expected[1])
    assert np.allclose(alphas, expected[0], rtol=0, atol=1e-12)
