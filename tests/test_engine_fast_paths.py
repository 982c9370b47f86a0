"""The engine's fast paths compute what the plain definitions do.

Blocked predict, gathered minibatches, blocked optimizer updates and the one-pass finiteness
check each have a simple reference: the same computation written the obvious way.
"""

import warnings

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import optimizer
from neurocloud.nn.training import Trainer
from neurocloud.nn.validation import all_finite


def classifier(seed=0, dtype="float32"):
    return nc.Sequential(
        [nc.layers.Dense(16, activation="relu"), nc.layers.Dense(3, activation="softmax")],
        input_dim=5,
        seed=seed,
        dtype=dtype,
    )


def test_blocked_predict_equals_one_forward():
    model = classifier()
    X = np.random.default_rng(0).normal(size=(1000, 5)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X, batch_size=128), model.forward(X), rtol=1e-6)
    assert np.array_equal(model.predict(X[:10]), model.forward(X[:10]))


def test_predict_returns_arrays_later_calls_leave_alone():
    model = classifier()
    rng = np.random.default_rng(1)
    first = model.predict(rng.normal(size=(300, 5)), batch_size=64)
    kept = first.copy()
    model.predict(rng.normal(size=(300, 5)), batch_size=64)
    model.forward(rng.normal(size=(300, 5)), training=True)
    assert np.array_equal(first, kept)


@pytest.mark.parametrize("batch_size", [0, -5, 2.5, True])
def test_predict_refuses_a_batch_size_that_is_not_a_positive_integer(batch_size):
    with pytest.raises(ValueError, match=r"Expected batch_size to be a positive integer"):
        classifier().predict(np.ones((10, 5)), batch_size=batch_size)


def test_non_finite_row_in_a_later_block_is_named_by_its_index_in_X():
    X = np.ones((1000, 5))
    X[900, 2] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite; received nan at index \[900, 2\]"):
        classifier().predict(X, batch_size=128)


def test_fit_shuffles_with_one_permutation_per_epoch_from_the_model_generator():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 5)).astype(np.float32)
    labels = rng.integers(0, 3, 100)
    fitted, by_hand = classifier(seed=3), classifier(seed=3)
    fitted.fit(
        X, labels, loss="sparse_categorical_crossentropy", optimizer="sgd", epochs=2, batch_size=32
    )
    opt = nc.optim.SGD()
    trainer = Trainer(loss="sparse_categorical_crossentropy", optimizer=opt)
    Y = nc.losses.one_hot(labels, 3, np.float32)
    for _ in range(2):
        perm = by_hand.rng.permutation(100)
        Xe, Ye = X[perm], Y[perm]
        for start in range(0, 100, 32):
            trainer.step(by_hand, Xe[start : start + 32], Ye[start : start + 32], fused_loss=True)
            opt.step([by_hand.flat_parameters()], [by_hand.flat_gradients()])
    assert np.array_equal(fitted.flat_parameters(), by_hand.flat_parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda: nc.optim.Adam(lr=0.01),
        lambda: nc.optim.RMSprop(),
        lambda: nc.optim.SGD(momentum=0.9, nesterov=True),
    ],
)
def test_blocked_updates_equal_one_block(make, monkeypatch):
    rng = np.random.default_rng(4)
    start = rng.normal(size=(300, 400)).astype(np.float32)
    grads = [rng.normal(size=start.shape).astype(np.float32) for _ in range(3)]
    assert len(optimizer._blocks(start.shape)) > 1  # the default splits this array
    results = []
    for block in (optimizer.BLOCK, start.size):
        monkeypatch.setattr(optimizer, "BLOCK", block)
        w, opt = start.copy(), make()
        for g in grads:
            opt.step([w], [g.copy()])
        results.append(w)
    assert np.array_equal(*results)


def test_large_finiteness_check_is_exact_and_silent():
    X = np.full((300, 100), 3e38, dtype=np.float32)  # finite, but the sum overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all_finite(X)
        X[123, 45] = -np.inf
        assert not all_finite(X)
        X[0, 0] = np.inf  # inf + -inf would be nan in a sum
        assert not all_finite(X)
