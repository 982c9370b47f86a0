"""serve/quiet.py: NumPy calls with floating-point warnings off, without np.errstate."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from neurocloud.serve.quiet import quiet_context, quietly
from neurocloud.serve.signature import Signature


def test_quietly_ignores_overflow_that_warns_outside():
    big = np.array([1e300, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert quietly(big.astype, np.float32).tolist() == [np.inf, 2.0]
        with pytest.raises(RuntimeWarning, match="overflow"):
            big.astype(np.float32)  # the caller's own state is untouched
    assert np.geterr()["over"] == "warn"


def test_quiet_context_ignores_every_floating_point_error():
    context = quiet_context()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = context.run(np.divide, np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    assert np.isinf(out[0]) and np.isnan(out[1])
    assert context.run(np.geterr) == {
        "divide": "ignore",
        "over": "ignore",
        "under": "ignore",
        "invalid": "ignore",
    }


def test_each_thread_has_its_own_quiet_context():
    barrier, errors = threading.Barrier(4), []

    def work():
        barrier.wait()
        try:
            for _ in range(2000):
                assert quietly(np.multiply, np.float32(3e38), np.float32(10)) == np.inf
        except Exception as exc:  # a shared context would raise "already entered"
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_value_too_large_for_float32_is_refused_without_a_warning():
    sig = Signature("x", 1, "y", 1, np.dtype("float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception, match=r"finite numbers representable as float32.*1e\+300"):
            sig.rows([1e300], "x")
        assert sig.rows([4.5], "x").tolist() == [[4.5]]
