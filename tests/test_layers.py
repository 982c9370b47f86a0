"""One harness for every layer: gradients by central differences, config round trip."""

from __future__ import annotations

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn.gradcheck import relative_error

LAYERS = {
    **{
        f"dense-{a}": (
            lambda a=a: nc.layers.Dense(3, activation=a, bias_initializer="glorot_normal")
        )
        for a in nc.activations.available()
    },
    "dense-no-bias": lambda: nc.layers.Dense(3, use_bias=False),
    "activation-softmax": lambda: nc.layers.Activation("softmax"),
    "activation-elu": lambda: nc.layers.Activation("elu"),
    "dropout": lambda: nc.layers.Dropout(0.4),
    "normalization": lambda: nc.layers.Normalization(
        mean=[0.1, -0.2, 0.3, 0.0], scale=[1.5, 0.5, 2.0, 1.0]
    ),
}


def test_the_harness_covers_every_registered_layer():
    assert {type(make()).__name__ for make in LAYERS.values()} == set(nc.layers.available())


def test_normalization_with_mean_or_scale_alone():
    x = np.array([[1.0, 4.0], [3.0, 8.0]])
    centred = nc.Sequential([nc.layers.Normalization(mean=[2.0, 6.0])], input_dim=2)
    scaled = nc.Sequential([nc.layers.Normalization(scale=[2.0, 4.0])], input_dim=2)
    np.testing.assert_array_equal(centred.predict(x), [[-1.0, -2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(scaled.predict(x), [[0.5, 1.0], [1.5, 2.0]])


def run(model, layer, x, upstream, seed=0):
    """sum(upstream * layer(x)) in training mode, with the same dropout mask every call."""
    layer.rng = np.random.default_rng(seed)
    return float(np.sum(upstream * model.forward(x, training=True)))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_match_central_differences(name):
    rng = np.random.default_rng(5)
    layer = LAYERS[name]()
    model = nc.Sequential([layer], input_dim=4, seed=1, dtype="float64")
    x = rng.normal(size=(3, 4)) + 0.05
    upstream = rng.normal(size=(3, model.output_dim))
    run(model, layer, x, upstream)
    grad_x = model.backward(upstream)
    analytic = [grad_x] + [g.copy() for g in model.gradients()]
    targets = [x, *model.parameters()]
    for array, exact in zip(targets, analytic):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            keep = array[idx]
            array[idx] = keep + 1e-5
            plus = run(model, layer, x, upstream)
            array[idx] = keep - 1e-5
            minus = run(model, layer, x, upstream)
            array[idx] = keep
            numeric[idx] = (plus - minus) / 2e-5
        assert relative_error(exact, numeric) < 1e-6, name


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_config_round_trip(name):
    layer = LAYERS[name]()
    model = nc.Sequential([layer], input_dim=4, seed=1)
    rebuilt = nc.Sequential.from_config(model.get_config())
    rebuilt.load_state_dict(model.state_dict())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))


def test_dropout_is_identity_at_inference_and_scaled_in_training():
    model = nc.Sequential([nc.layers.Dropout(0.5)], input_dim=1000, seed=0)
    x = np.ones((4, 1000), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x), x)
    out = model.forward(x, training=True)
    assert set(np.unique(out)) == {0.0, 2.0}
    assert 0.4 < (out == 0).mean() < 0.6


def test_normalization_adapt_standardises():
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 2))
    norm = nc.layers.Normalization().adapt(X)
    out = nc.Sequential([norm], input_dim=2, dtype="float64").predict(X)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-12)


@pytest.mark.parametrize(
    "activation",
    [
        nc.activations.get({"name": "leaky_relu", "config": {"negative_slope": 0.3}}),
        nc.activations.get({"name": "elu", "config": {"alpha": 0.5}}),
    ],
)
def test_activation_settings_survive_save_load_and_pickle(activation, tmp_path):
    import pickle

    model = nc.Sequential(
        [
            nc.layers.Dense(3, activation=activation),
            nc.layers.Activation(activation),
            nc.layers.Dense(1),
        ],
        input_dim=2,
        seed=0,
    )
    x = np.array([[-3.0, 1.0], [2.0, -4.0]])
    for copy in (nc.load(nc.save(model, tmp_path / "m")), pickle.loads(pickle.dumps(model))):
        assert copy.layers[0].activation.get_config() == activation.get_config()
        np.testing.assert_array_equal(copy.predict(x), model.predict(x))
    assert nc.layers.Dense(2, activation="elu").get_config()["activation"] == "elu"
