"""fit: learns, reproduces bit for bit, keeps the dtype, stops early, validates input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED_X, SEED_Y, article_network

import neurocloud as nc

OPTIMIZERS = [
    lambda: nc.optim.SGD(lr=0.05),
    lambda: nc.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: nc.optim.Adam(lr=0.05),
    lambda: nc.optim.AdamW(lr=0.05),
    lambda: nc.optim.RMSprop(lr=0.01),
    lambda: nc.optim.LBFGS(),
]


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_reduces_loss_and_keeps_dtype(make_opt, dtype):
    model = article_network(dtype=dtype)
    history = model.fit(SEED_X, SEED_Y, optimizer=make_opt(), epochs=200)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == np.dtype(dtype) for p in model.parameters())
    assert model.predict(SEED_X).dtype == np.dtype(dtype)


def classification_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, labels


def test_same_seed_gives_bitwise_identical_weights():
    X, labels = classification_data()

    def train(seed):
        model = nc.Sequential(
            [
                nc.layers.Dense(8, activation="relu"),
                nc.layers.Dropout(0.2),
                nc.layers.Dense(3, activation="softmax"),
            ],
            input_dim=4,
            seed=seed,
        )
        model.fit(
            X,
            labels,
            loss="sparse_categorical_crossentropy",
            epochs=5,
            batch_size=16,
            validation_split=0.2,
        )
        return model.flat_parameters().copy()

    a, b = train(42), train(42)
    assert a.tobytes() == b.tobytes()
    assert train(43).tobytes() != a.tobytes()


def test_classifier_learns_with_minibatches():
    X, labels = classification_data(400)
    model = nc.Sequential(
        [nc.layers.Dense(16, activation="relu"), nc.layers.Dense(3, activation="softmax")],
        input_dim=4,
        seed=0,
    )
    model.fit(
        X,
        labels,
        loss="sparse_categorical_crossentropy",
        epochs=60,
        batch_size=32,
        optimizer=nc.optim.Adam(lr=0.01),
    )
    accuracy = (model.predict(X).argmax(axis=1) == labels).mean()
    assert accuracy > 0.9
    assert np.allclose(model.predict(X).sum(axis=1), 1, atol=1e-5)


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)
    Xv, yv = rng.normal(size=(20, 3)), rng.normal(size=20)  # unrelated: val loss soon rises

    model = nc.Sequential(
        [nc.layers.Dense(32, activation="tanh"), nc.layers.Dense(1)], input_dim=3, seed=0
    )
    stopper = nc.callbacks.EarlyStopping(patience=3)
    history = model.fit(
        X,
        y,
        validation_data=(Xv, yv),
        epochs=500,
        callbacks=[stopper],
        optimizer=nc.optim.Adam(lr=0.05),
    )
    val = history.history["val_loss"]
    assert len(val) < 500 and stopper.stopped_epoch == len(val) - 1
    assert model.evaluate(Xv, yv) == pytest.approx(min(val), rel=1e-5)


def test_validation_split_and_l2():
    X, y = SEED_X.repeat(5, axis=0), SEED_Y.repeat(5, axis=0)
    plain, decayed = article_network(), article_network()
    h = plain.fit(X, y, validation_split=0.25, epochs=50)
    assert len(h.history["val_loss"]) == 50
    decayed.fit(X, y, validation_split=0.25, epochs=50, l2=1.0)
    assert np.linalg.norm(decayed.flat_parameters()) < np.linalg.norm(plain.flat_parameters())


def test_sample_weight_zero_rows_are_ignored():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = X @ np.array([1.0, 2.0])
    y_corrupt = y.copy()
    y_corrupt[10:] = 100.0
    w = np.r_[np.ones(10), np.zeros(10)]
    a = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0, dtype="float64")
    b = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0, dtype="float64")
    a.fit(X[:10], y[:10], optimizer="lbfgs", epochs=100)
    b.fit(X, y_corrupt, optimizer="lbfgs", epochs=100, sample_weight=w)
    np.testing.assert_allclose(a.flat_parameters(), b.flat_parameters(), atol=1e-6)


def test_article_steps_by_hand_equal_fit():
    """forward, loss gradient, backward, optimizer step: the documented manual loop."""
    by_hand, fitted = article_network(dtype="float64"), article_network(dtype="float64")
    opt = nc.optim.SGD(lr=0.01)
    mse = nc.losses.get("mse")
    for _ in range(20):
        out = by_hand.forward(SEED_X, training=True)
        by_hand.backward(mse.gradient(SEED_Y, out))
        opt.step(by_hand.parameters(), by_hand.gradients())
    fitted.fit(SEED_X, SEED_Y, optimizer=nc.optim.SGD(lr=0.01), epochs=20)
    np.testing.assert_allclose(by_hand.flat_parameters(), fitted.flat_parameters(), rtol=1e-12)


def test_summary_lists_layers_and_counts():
    text = article_network().summary()
    assert "Dense (sigmoid)" in text and "Total params: 13" in text


BAD_FIT_INPUTS = [
    (dict(X=np.ones((4, 2)), y=SEED_Y), r"X has 2 features per row but the model expects 1"),
    (dict(X=SEED_X, y=SEED_Y[:3]), r"y has 3 rows but X has 4"),
    (dict(X=np.array([[np.nan], [1], [2], [3]]), y=SEED_Y), r"X must be finite; received nan"),
    (dict(X=SEED_X, y=np.array([[np.inf], [1], [2], [3]])), r"y must be finite; received inf"),
    (dict(X=np.empty((0, 1)), y=np.empty((0, 1))), r"X is empty"),
    (dict(X=SEED_X, y=SEED_Y, loss="l4"), r"Unknown loss 'l4'.*Expected one of: .*mse"),
    (dict(X=SEED_X, y=SEED_Y, optimizer="adagrad"), r"Unknown optimizer 'adagrad'"),
    (dict(X=SEED_X, y=SEED_Y, epochs=0), r"Expected epochs to be a positive integer"),
    (dict(X=SEED_X, y=SEED_Y, batch_size=-2), r"batch_size=-2"),
    (dict(X=SEED_X, y=SEED_Y, validation_split=1.5), r"validation_split to be a number >= 0"),
    (dict(X=[["a"], ["b"], ["c"], ["d"]], y=SEED_Y), r"X must hold numbers"),
    (dict(X=SEED_X, y=SEED_Y, sample_weight=[1, 2]), r"sample_weight must have shape \(4,\)"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_FIT_INPUTS)
def test_bad_fit_input_is_named(kwargs, message):
    model = article_network()
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(**kwargs)


def test_bad_model_arguments_are_named():
    with pytest.raises(ValueError, match=r"Received: units=0"):
        nc.layers.Dense(0)
    with pytest.raises(ValueError, match=r"Unknown activation 'sigmoidal'.*sigmoid"):
        nc.layers.Dense(2, activation="sigmoidal")
    with pytest.raises(ValueError, match=r"Unknown initializer 'random'.*he_normal"):
        nc.layers.Dense(2, kernel_initializer="random")
    with pytest.raises(ValueError, match=r"dtype 'float32' or 'float64'. Received: dtype='int8'"):
        nc.Sequential([nc.layers.Dense(1)], dtype="int8")
    with pytest.raises(TypeError, match=r"Expected a layer"):
        nc.Sequential(["dense"])
    with pytest.raises(ValueError, match=r"Expected rate to be a number >= 0 and < 1"):
        nc.layers.Dropout(1.0)
    with pytest.raises(ValueError, match=r"has 3 features per row but the model expects 1"):
        article_network().predict(np.ones((2, 3)))


def test_lbfgs_at_the_optimum_still_records_its_loss():
    X, y = np.zeros((10, 2)), np.zeros(10)
    model = nc.Sequential(
        [nc.layers.Dense(4, activation="tanh"), nc.layers.Dense(1)], input_dim=2, seed=0
    )
    model.layers[-1].params["kernel"][...] = 0  # output is exactly 0 = y: already optimal
    history = model.fit(X, y, optimizer="lbfgs", epochs=20)
    assert history.history["loss"] == [0.0]
    with pytest.raises(ValueError, match=r"history_size=0"):
        nc.optim.LBFGS(history_size=0)


def test_small_argument_checks():
    # NumPy scalars are numbers too.
    nc.layers.Dropout(np.float32(0.5))
    nc.optim.SGD(lr=np.int64(1))
    with pytest.raises(ValueError, match=r"2 means and 1 scales"):
        nc.layers.Normalization(mean=[0, 0], scale=[1])
    with pytest.raises(
        ValueError, match=r"EarlyStopping monitors 'val_los'.*\['loss', 'val_loss'\]"
    ):
        article_network().fit(
            SEED_X,
            SEED_Y,
            validation_data=(SEED_X, SEED_Y),
            epochs=3,
            callbacks=[nc.callbacks.EarlyStopping(monitor="val_los")],
        )


def test_predict_never_returns_the_callers_array():
    X = np.ones((3, 2), dtype=np.float32)
    out = nc.Sequential([nc.layers.Dropout(0.5)], input_dim=2, seed=0).predict(X)
    out[...] = 7
    assert (X == 1).all()
