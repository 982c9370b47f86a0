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
    # One thread is inside quietly() while another calls it: a shared Context would raise
    # "cannot enter context: ... is already entered" in the second.
    inside, release, errors = threading.Event(), threading.Event(), []

    def hold():
        inside.set()
        release.wait(timeout=20)  # a failure's bound, not a timing
        return np.float32(3e38) * np.float32(10)

    def first():
        try:
            assert quietly(hold) == np.inf
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(timeout=20)
        assert quietly(np.multiply, np.float32(3e38), np.float32(10)) == np.inf
    finally:
        release.set()
        thread.join()
    assert errors == []


def test_a_value_too_large_for_float32_is_refused_without_a_warning():
    sig = Signature("x", 1, "y", 1, np.dtype("float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception, match=r"finite numbers representable as float32.*1e\+300"):
            sig.rows([1e300], "x")
        assert sig.rows([4.5], "x").tolist() == [[4.5]]
