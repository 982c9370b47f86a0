"""``nc.gradcheck`` gives a verdict with its tolerance, and tells float32 users to check in
float64."""

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import activations


def _net(dtype):
    return nc.Sequential([nc.layers.Dense(8, activation="tanh"), nc.layers.Dense(3)],
                         input_dim=4, seed=0, dtype=dtype)  # fmt: skip


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 4)), rng.normal(size=(16, 3))


def test_float64_verdict_passes_with_the_strict_tolerance():
    report = nc.gradcheck(_net("float64"), *_data())
    assert report.passed and report.tolerance == 1e-6 and report.dtype == "float64"
    assert str(report).startswith(
        f"gradcheck passed: relative error {report.relative_error:.2e} <= tolerance 1e-06 (float64"
    )


def test_float32_warns_to_check_in_float64_and_still_gives_a_verdict():
    with pytest.warns(UserWarning, match=r"float32 model.*dtype='float64'"):
        report = nc.gradcheck(_net("float32"), *_data())
    # a correct network passes the coarse float32 check (its default step is 1e-3) ...
    assert report.passed and report.tolerance == 1e-2 and report.relative_error < 1e-3
    assert "build the model with dtype='float64'" in str(report)


def test_wrong_derivative_fails_the_verdict(monkeypatch):
    monkeypatch.setattr(activations.Tanh, "backward", lambda self, grad, z, a: grad)
    report = nc.gradcheck(_net("float64"), *_data())
    assert not report.passed
    assert str(report).startswith("gradcheck FAILED: relative error ")
    assert "> tolerance 1e-06" in str(report)


def test_explicit_tolerance_wins():
    report = nc.gradcheck(_net("float64"), *_data(), tolerance=1e-20)
    assert report.tolerance == 1e-20 and not report.passed
