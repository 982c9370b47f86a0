"""Every activation: derivative equals central differences, stable, keeps dtype."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from neurocloud.nn import activations

NAMES = activations.available()


def numeric_grad(act, z, upstream, eps=1e-6):
    """d/dz of sum(upstream * f(z)) by central differences, one entry at a time."""
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        grad[idx] = (np.sum(upstream * act.forward(zp)) - np.sum(upstream * act.forward(zm))) / (
            2 * eps
        )
    return grad


def shapes():
    return st.tuples(st.integers(1, 5), st.integers(1, 6))


# Keep inputs away from ReLU-family kinks, where the derivative is not defined.
finite = st.floats(-4, 4).filter(lambda v: abs(v) > 1e-3)


def rounding_noise(act, z, upstream, eps=1e-6):
    """How far numeric_grad can be off from rounding alone: each entry divides the
    difference of two sums of about sum|upstream * f(z)| by 2 * eps, and each sum is
    exact to a few machine epsilons of itself (a factor 10 for margin)."""
    magnitude = float(np.sum(np.abs(upstream * act.forward(z.copy()))))
    return 10 * np.finfo(np.float64).eps * magnitude / (2 * eps)


@st.composite
def inputs_and_upstream(draw):
    shape = draw(shapes())
    z = draw(arrays(np.float64, shape, elements=finite))
    upstream = draw(
        arrays(np.float64, shape, elements=st.floats(-2, 2).filter(lambda v: abs(v) > 0.1))
    )
    return z, upstream


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None)
@given(case=inputs_and_upstream())
# The same upstream gradient on every softmax output: the true derivative is exactly 0 and
# central differences give ~5e-11 of rounding, which a purely relative check calls 100%.
@example(case=(np.array([[1.0, 0.75]]), np.array([[0.75, 0.75]])))
def test_derivative_matches_central_differences(name, case):
    z, upstream = case
    act = activations.get(name)
    a = act.forward(z.copy())
    analytic = act.backward(upstream.copy(), z, a)
    numeric = numeric_grad(act, z, upstream)
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)))
    error = np.max(np.abs(analytic - numeric))
    assert error <= 1e-6 * scale + rounding_noise(act, z, upstream), (error, scale)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_are_finite_without_warnings(name, dtype):
    z = np.array([[-1e4, -80.0, 0.0, 80.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        act = activations.get(name)
        a = act.forward(z.copy())
        g = act.backward(np.ones_like(z), z, a)
    assert a.dtype == dtype and g.dtype == dtype
    assert np.isfinite(a).all() and np.isfinite(g).all()


def test_reference_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    assert np.allclose(activations.get("sigmoid").forward(z), 1 / (1 + np.exp(-z)))
    assert np.allclose(activations.get("relu").forward(z), [[0, 0, 3]])
    assert np.allclose(activations.get("leaky_relu").forward(z), [[-0.02, 0, 3]])
    assert np.allclose(activations.get("elu").forward(z), [[np.expm1(-2.0), 0, 3]])
    assert np.allclose(activations.get("softplus").forward(z), np.log1p(np.exp(z)))
    soft = activations.get("softmax").forward(z)
    assert np.allclose(soft, np.exp(z) / np.exp(z).sum())
    gelu = activations.get("gelu").forward(np.array([[1.0]]))
    assert gelu[0, 0] == pytest.approx(0.8413447460685429)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown activation 'swishy'.*relu.*sigmoid"):
        activations.get("swishy")
    with pytest.raises(TypeError, match="Expected activation to be a name"):
        activations.get(3)


@pytest.mark.parametrize(("name", "setting"), [("leaky_relu", "negative_slope"), ("elu", "alpha")])
def test_a_negative_slope_or_alpha_is_refused(name, setting):
    # Both backward rules test a > 0, true of the positive branch only when the setting >= 0.
    with pytest.raises(ValueError, match=rf"Expected {setting} to be a number >= 0\. Received"):
        activations.get({"name": name, "config": {setting: -0.5}})
    assert activations.get({"name": name, "config": {setting: 0.0}}).get_config() == {setting: 0.0}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5,), (1, 7), (33, 64), (3, 4, 5), (300, 300)])
def test_relu_against_a_zero_block_gives_maximums_bits(shape, dtype, monkeypatch):
    # ReLU compares with zeros of z's own shape up to ZERO_BLOCK_MAX elements, a row past it
    monkeypatch.setattr(activations, "ZERO_BLOCK_MAX", 10_000)
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3, size=shape).astype(dtype)
    flat = z.reshape(-1)
    flat[: min(6, flat.size)] = [np.nan, -np.nan, -0.0, np.inf, -np.inf, 0.0][: flat.size]
    want = np.maximum(z, np.zeros(shape[-1:], dtype))  # the row that ReLU used before
    relu = activations.get("relu")
    for got in (relu.forward(z), relu.forward(z.copy(), out=np.empty_like(z))):
        assert got.dtype == z.dtype and got.shape == z.shape
        assert np.array_equal(got.view(f"u{z.itemsize}"), want.view(f"u{z.itemsize}"))
    block = activations.zeros_like(z)
    assert not block.flags.writeable and not block.any()
    assert block.shape == (shape if z.size <= 10_000 else shape[-1:])
