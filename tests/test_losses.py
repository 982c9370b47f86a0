"""Every loss: gradient equals central differences; fused logits forms are stable and agree."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocloud.nn import activations, losses
from neurocloud.nn.gradcheck import relative_error

PLAIN = ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy"]


def targets_for(name, rng, n, k):
    if name == "binary_crossentropy":
        return (rng.random((n, k)) > 0.5).astype(float)
    if name.startswith("categorical"):
        return np.eye(k)[rng.integers(0, k, n)]
    return rng.normal(size=(n, k))


def predictions_for(name, rng, n, k):
    if name == "binary_crossentropy":
        return rng.uniform(0.05, 0.95, (n, k))
    if name.startswith("categorical"):
        p = rng.uniform(0.1, 1, (n, k))
        return p / p.sum(axis=1, keepdims=True)
    # Keep |residual| away from mae's and huber's kinks.
    return rng.normal(size=(n, k)) + 3.0


def numeric(f, p, eps=1e-6):
    grad = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[idx] += eps
        pm[idx] -= eps
        grad[idx] = (f(pp) - f(pm)) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", PLAIN)
@pytest.mark.parametrize("weighted", [False, True])
@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_gradient_matches_central_differences(name, weighted, n, k, seed):
    rng = np.random.default_rng(seed)
    loss = losses.get(name)
    k = max(k, 2) if name.startswith("categorical") else k  # one class is no distribution
    y, p = targets_for(name, rng, n, k), predictions_for(name, rng, n, k)
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    analytic = loss.gradient(y, p.copy(), w)
    assert relative_error(analytic, numeric(lambda q: loss.value(y, q, w), p)) < 1e-6


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_logits_forms_match_composition(name, n, k, seed):
    rng = np.random.default_rng(seed)
    loss = losses.get(name)
    act = activations.get(loss.logits_activation)
    y, z = targets_for(name, rng, n, k), rng.normal(size=(n, k)) * 2
    assert loss.value_from_logits(y, z) == pytest.approx(loss.value(y, act.forward(z.copy())))
    analytic = loss.gradient_from_logits(y, z.copy())
    assert relative_error(analytic, numeric(lambda q: loss.value_from_logits(y, q), z)) < 1e-6


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
def test_logits_forms_are_stable_for_huge_logits(name):
    loss = losses.get(name)
    z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=np.float32)
    y = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = loss.value_from_logits(y, z)
        grad = loss.gradient_from_logits(y, z)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert grad.dtype == np.float32
    # The first row is right with certainty (loss 0), the second wrong by 2e4 (loss ~ 1e4).
    assert value == pytest.approx(1e4 / (2 if name.startswith("binary") else 1), rel=1e-3)


def test_sparse_equals_categorical_on_one_hot():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 5)
    z = rng.normal(size=(5, 3))
    sparse, dense = losses.get("sparse_categorical_crossentropy"), losses.get("cross_entropy")
    onehot = losses.one_hot(labels, 3, np.float64)
    assert sparse.value_from_logits(onehot, z) == dense.value_from_logits(np.eye(3)[labels], z)
    with pytest.raises(ValueError, match=r"integer class labels in \[0, 3\).*\[3\]"):
        losses.one_hot(np.array([0, 3]), 3, np.float64)


def test_article_mse_value():
    y_true, y_pred = np.array([[0.75], [1.25]]), np.array([[1.0], [1.0]])
    assert losses.get("mse").value(y_true, y_pred) == pytest.approx(0.0625)


def test_unknown_loss_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown loss 'l3'.*binary_crossentropy.*mse"):
        losses.get("l3")


def test_sparse_loss_called_directly_takes_integer_labels():
    from sklearn.metrics import log_loss

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([0, 1, 2])
    sparse = losses.get("sparse_categorical_crossentropy")
    assert sparse.value(labels, p) == pytest.approx(log_loss(labels, p))
    np.testing.assert_allclose(
        sparse.gradient(labels, p), losses.get("categorical_crossentropy").gradient(np.eye(3), p)
    )
    z = np.log(p)
    assert sparse.value_from_logits(labels, z) == pytest.approx(log_loss(labels, p))


def test_one_dimensional_target_is_a_column_and_keeps_the_prediction_dtype():
    y = np.array([1.0, 2.0, 3.0])  # float64
    out = np.array([[1.5], [2.0], [2.0]], dtype=np.float32)
    mse = losses.get("mse")
    assert mse.value(y, out) == pytest.approx((0.25 + 0 + 1) / 3)
    grad = mse.gradient(y, out)
    assert grad.shape == (3, 1) and grad.dtype == np.float32
    with pytest.raises(
        ValueError, match=r"y_true has shape \(3, 2\) but y_pred has shape \(3, 1\)"
    ):
        mse.value(np.ones((3, 2)), out)
