"""Gradient explanations checked by the axioms that define them (float64 networks)."""

from __future__ import annotations

import numpy as np
import pytest
from explain_networks import ACTIVATIONS, linear_network, random_network

import neurocloud as nc
from neurocloud.explain import (
    DEFAULT_STEPS,
    expected_gradients,
    integrated_gradients,
    saliency,
    smoothgrad,
)
from neurocloud.explain.core import resolve_targets
from neurocloud.explain.kinks import path_breakpoints

# --- integrated gradients ------------------------------------------------------------------


@pytest.mark.parametrize("activation", [*ACTIVATIONS, None])
def test_ig_completeness_at_default_steps_on_random_networks(activation):
    for seed in range(40):
        model = random_network(seed, activation)
        rng = np.random.default_rng(100 + seed)
        X = rng.normal(0.0, 2.0, size=(6, model.input_dim))
        baseline = rng.normal(0.0, 0.5, size=X.shape)
        e = integrated_gradients(model, X, baseline=baseline)
        change = np.abs(e.prediction - e.base_value)
        assert e.settings["steps"] == DEFAULT_STEPS
        # The 1e-9 floor is for rows whose output does not change (a ReLU output that is 0
        # at both ends): there is nothing to be relative to.
        assert np.all(np.abs(e.completeness_error) <= 1e-3 * change + 1e-9), (seed, change)


def test_a_plain_riemann_sum_would_fail_the_completeness_bound():
    # Why the quadrature cuts the path at the kinks: as many midpoints over a ReLU
    # network's path miss the bound, so the test above can fail.
    model, worst = random_network(3, "relu"), 0.0
    rng = np.random.default_rng(7)
    X = rng.normal(0.0, 2.0, size=(6, model.input_dim))
    f = model.predict(X).max(axis=1)
    t = model.predict(X).argmax(axis=1)
    base = model.predict(np.zeros_like(X))[np.arange(6), t]
    for row in range(6):
        alphas = (np.arange(DEFAULT_STEPS) + 0.5) / DEFAULT_STEPS
        out = model.forward(alphas[:, None] * X[row], training=True)
        seed = np.zeros_like(out)
        seed[:, t[row]] = 1.0
        total = (model.backward(seed).mean(axis=0) * X[row]).sum()
        worst = max(worst, abs(total - (f[row] - base[row])) / abs(f[row] - base[row]))
    assert worst > 1e-3
    ig = integrated_gradients(model, X)
    assert np.all(np.abs(ig.completeness_error) <= 1e-3 * np.abs(f - base))


def test_kinks_are_where_relu_inputs_change_sign():
    model = random_network(5, "relu")
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(3, model.input_dim)), rng.normal(0, 3, (3, model.input_dim))
    alphas, rows = path_breakpoints(model, start, end)
    for row in range(3):
        cuts = alphas[rows == row][1:-1]
        assert len(cuts) > 0
        # at each cut some ReLU input in some layer is zero
        points = start[row] + cuts[:, None] * (end[row] - start[row])
        smallest = np.full(len(cuts), np.inf)
        x = points
        for layer in model.layers:
            z = layer.forward(x, activate=False).copy()
            smallest = np.minimum(smallest, np.abs(z).min(axis=1))
            x = layer.activation.forward(z)
        assert np.all(smallest < 1e-9)
        # and a fine grid finds no sign change the cuts missed in the first layer
        grid = np.linspace(0, 1, 4001)
        z = (start[row] + grid[:, None] * (end[row] - start[row])) @ model.layers[0].params[
            "kernel"
        ] + model.layers[0].params["bias"]
        changes = np.nonzero(np.diff(np.sign(z), axis=0))[0]
        for index in changes:
            assert np.any((cuts >= grid[index]) & (cuts <= grid[index + 1]))


@pytest.mark.parametrize("outputs", [1, 3])
def test_ig_of_a_linear_model_is_exactly_w_times_x_minus_baseline(outputs):
    model = linear_network(5, outputs, seed=outputs)
    rng = np.random.default_rng(1)
    X, baseline = rng.normal(size=(4, 5)), rng.normal(size=5)
    kernel = model.layers[0].params["kernel"]
    for target in range(outputs):
        e = integrated_gradients(model, X, baseline=baseline, target=target)
        expected = kernel[:, target] * (X - baseline)
        assert np.max(np.abs(e.attributions - expected)) < 1e-12


def test_ig_through_normalization_is_linear_in_raw_units():
    rng = np.random.default_rng(2)
    data = rng.normal(5.0, 3.0, size=(50, 3))
    norm = nc.layers.Normalization().adapt(data)
    model = nc.Sequential([norm, nc.layers.Dense(1)], input_dim=3, seed=0, dtype="float64")
    w = model.layers[1].params["kernel"][:, 0] / norm.scale
    e = integrated_gradients(model, data[:4], baseline=data.mean(axis=0))
    assert np.max(np.abs(e.attributions - w * (data[:4] - data.mean(axis=0)))) < 1e-12


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_a_feature_the_network_ignores_gets_zero(activation):
    model = random_network(11, activation)
    model.layers[0].params["kernel"][1] = 0.0
    X = np.random.default_rng(3).normal(0.0, 5.0, size=(5, model.input_dim))
    for method in (integrated_gradients, saliency, smoothgrad):
        assert np.all(method(model, X).attributions[:, 1] == 0.0)
    others = integrated_gradients(model, X).attributions
    assert np.all(np.abs(np.delete(others, 1, axis=1)).sum(axis=1) > 0)


def _permuted_copy(model: nc.Sequential, seed: int) -> nc.Sequential:
    """The same function with the first hidden layer's units in another order."""
    twin = nc.Sequential.from_config(model.get_config())
    twin.load_state_dict(model.state_dict())
    order = np.random.default_rng(seed).permutation(model.layers[0].units)
    first, second = twin.layers[0].params, twin.layers[1].params
    first["kernel"][...] = first["kernel"][:, order]
    first["bias"][...] = first["bias"][order]
    second["kernel"][...] = second["kernel"][order]
    return twin


def _split_copy(model: nc.Sequential) -> nc.Sequential:
    """The same function with one more hidden unit: unit 0 duplicated, half weight each."""
    config = model.get_config()
    config["layers"][0]["config"]["units"] += 1
    twin = nc.Sequential.from_config(config)
    first, second = model.layers[0].params, model.layers[1].params
    twin.layers[0].params["kernel"][...] = np.c_[first["kernel"], first["kernel"][:, :1]]
    twin.layers[0].params["bias"][...] = np.r_[first["bias"], first["bias"][:1]]
    out = second["kernel"].copy()
    out[0] /= 2
    twin.layers[1].params["kernel"][...] = np.r_[out, out[:1]]
    twin.layers[1].params["bias"][...] = second["bias"]
    for own, theirs in zip(twin.layers[2:], model.layers[2:]):
        for key in own.params:
            own.params[key][...] = theirs.params[key]
    return twin


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu"])
def test_networks_computing_the_same_function_get_the_same_attributions(activation):
    model = nc.Sequential(
        [nc.layers.Dense(12, activation), nc.layers.Dense(6, activation), nc.layers.Dense(3)],
        input_dim=4,
        seed=21,
        dtype="float64",
    )
    for layer in model.layers:
        layer.params["bias"][...] = np.random.default_rng(1).normal(0, 0.5, layer.units)
    X = np.random.default_rng(4).normal(0.0, 2.0, size=(6, 4))
    reference = integrated_gradients(model, X).attributions
    for twin in (_permuted_copy(model, 0), _split_copy(model)):
        assert np.max(np.abs(twin.predict(X) - model.predict(X))) < 1e-12
        assert np.max(np.abs(integrated_gradients(twin, X).attributions - reference)) < 1e-9


def test_ig_default_target_is_the_predicted_class_and_logits_are_explainable():
    model = nc.Sequential(
        [nc.layers.Dense(8, "tanh"), nc.layers.Dense(4, "softmax")],
        input_dim=3,
        seed=0,
        dtype="float64",
    )
    X = np.random.default_rng(5).normal(size=(8, 3))
    e = integrated_gradients(model, X)
    assert np.array_equal(e.target, model.predict(X).argmax(axis=1))
    assert np.allclose(e.prediction, model.predict(X).max(axis=1))
    logits = integrated_gradients(model, X, logits=True, target=2)
    z = model.forward(X, logits=True)[:, 2]
    z0 = model.forward(np.zeros((1, 3)), logits=True)[0, 2]
    assert np.max(np.abs(logits.attributions.sum(axis=1) - (z - z0))) < 1e-9


def test_float32_models_meet_the_completeness_bound_too():
    model = nc.Sequential(
        [nc.layers.Dense(32, "relu"), nc.layers.Dense(32, "relu"), nc.layers.Dense(10, "softmax")],
        input_dim=64,
        seed=3,
    )
    X = np.random.default_rng(6).uniform(0, 4, size=(5, 64))
    e = integrated_gradients(model, X)
    assert np.all(np.abs(e.completeness_error) <= 1e-3 * np.abs(e.prediction - e.base_value))


# --- saliency and smoothgrad ------------------------------------------------------------


def test_saliency_matches_central_finite_differences():
    model = random_network(8, "tanh")
    X = np.random.default_rng(9).normal(size=(4, model.input_dim))
    e = saliency(model, X)
    h = 1e-6
    for row in range(4):
        for j in range(model.input_dim):
            up, down = X[row].copy(), X[row].copy()
            up[j] += h
            down[j] -= h
            t = e.target[row]
            numeric = (model.predict(up[None])[0, t] - model.predict(down[None])[0, t]) / (2 * h)
            assert abs(e.attributions[row, j] - numeric) < 1e-7
    assert np.array_equal(saliency(model, X, absolute=True).attributions, np.abs(e.attributions))


def test_smoothgrad_without_noise_is_the_wrapped_method():
    model = random_network(10, "relu")
    X = np.random.default_rng(11).normal(size=(3, model.input_dim))
    plain = smoothgrad(model, X, noise=0.0, samples=3).attributions
    assert np.allclose(plain, saliency(model, X).attributions, rtol=0, atol=1e-15)
    over_ig = smoothgrad(model, X, over="ig", noise=0.0, samples=2, steps=32).attributions
    assert np.allclose(over_ig, integrated_gradients(model, X, steps=32).attributions, atol=1e-14)


def test_smoothgrad_is_seeded_and_averages_noise_away_on_a_linear_model():
    model = random_network(12, "tanh")
    X = np.random.default_rng(12).normal(size=(3, model.input_dim))
    a = smoothgrad(model, X, samples=20, seed=1).attributions
    assert np.array_equal(a, smoothgrad(model, X, samples=20, seed=1).attributions)
    assert not np.allclose(a, smoothgrad(model, X, samples=20, seed=2).attributions)
    assert not np.allclose(a, saliency(model, X).attributions)
    linear = linear_network(4, 2, seed=0)
    Xl = np.random.default_rng(13).normal(size=(3, 4))
    e = smoothgrad(linear, Xl, samples=16, noise=0.5, target=1)
    assert np.max(np.abs(e.attributions - linear.layers[0].params["kernel"][:, 1])) < 1e-12


def test_smoothgrad_keeps_the_clean_rows_target():
    model = random_network(14, None)
    X = np.random.default_rng(14).normal(size=(5, model.input_dim))
    e = smoothgrad(model, X, samples=8, noise=1.0)
    assert np.array_equal(e.target, resolve_targets(model.predict(X), None))


# --- expected gradients ---------------------------------------------------------------------


def test_expected_gradients_of_a_linear_model_is_w_times_x_minus_mean_background():
    model = linear_network(6, 3, seed=5)
    rng = np.random.default_rng(15)
    X, background = rng.normal(size=(4, 6)), rng.normal(2.0, 1.0, size=(25, 6))
    # 100 samples visit each of the 25 background rows exactly 4 times
    e = expected_gradients(model, X, background, samples=100, seed=3)
    expected = model.layers[0].params["kernel"][:, e.target].T * (X - background.mean(axis=0))
    assert np.max(np.abs(e.attributions - expected)) < 1e-12
    assert np.max(np.abs(e.completeness_error)) < 1e-12
    assert np.allclose(e.base_value, model.predict(background).mean(axis=0)[e.target])


def test_expected_gradients_is_seeded_and_reports_its_standard_error():
    model = random_network(16, "relu")
    rng = np.random.default_rng(16)
    X, background = rng.normal(size=(2, model.input_dim)), rng.normal(size=(10, model.input_dim))
    a = expected_gradients(model, X, background, samples=64, seed=0)
    assert np.array_equal(
        a.attributions, expected_gradients(model, X, background, 64, 0).attributions
    )
    assert a.standard_error.shape == a.attributions.shape
    assert np.all(a.standard_error >= 0) and np.any(a.standard_error > 0)
    more = expected_gradients(model, X, background, samples=1024, seed=0)
    assert np.mean(more.standard_error) < np.mean(a.standard_error)


# --- arguments ----------------------------------------------------------------------------


def test_targets_and_settings_are_checked_with_clear_errors():
    model = random_network(17, "tanh")
    X = np.zeros((2, model.input_dim))
    outputs = model.predict(X).shape[1]
    with pytest.raises(ValueError, match=rf"target in \[0, {outputs}\).*target={outputs}"):
        saliency(model, X, target=outputs)
    with pytest.raises(ValueError, match="one target per row"):
        saliency(model, X, target=[0, 0, 0])
    with pytest.raises(ValueError, match=r"target=1\.5"):
        saliency(model, X, target=1.5)
    with pytest.raises(ValueError, match="steps=0"):
        integrated_gradients(model, X, steps=0)
    with pytest.raises(ValueError, match="baseline of shape"):
        integrated_gradients(model, X, baseline=np.zeros(model.input_dim + 1))
    with pytest.raises(ValueError, match="features per row but the model expects"):
        saliency(model, np.zeros((2, model.input_dim + 1)))
    with pytest.raises(ValueError, match="Unknown method 'lime' for over"):
        smoothgrad(model, X, over="lime")
    with pytest.raises(ValueError, match="noise=-1"):
        smoothgrad(model, X, noise=-1)
    with pytest.raises(TypeError, match="record/backward"):
        saliency(object(), X)


def test_values_infinite_in_a_float32_model_are_refused_naming_the_setting():
    from neurocloud.serve.explanation_requests import explain_batch

    m = nc.Sequential([nc.layers.Dense(3, "tanh"), nc.layers.Dense(1)], input_dim=1, seed=0)
    x = [[4.5], [1.0]]
    with pytest.raises(ValueError, match=r"baseline must be finite in the model's float32"):
        explain_batch(m, x, {"baseline": 1e308})
    with pytest.raises(ValueError, match=r"baseline must be finite in the model's float32"):
        smoothgrad(m, x, over="ig", baseline=[1e39])
    with pytest.raises(ValueError, match=r"background must be finite in the model's float32"):
        expected_gradients(m, x, background=[[0.0], [-1e300]])
    with pytest.raises(ValueError, match=r"X must be finite in the model's float32.*1e\+40"):
        saliency(m, [[1e40]])
    with pytest.raises(ValueError, match=r"noisy copies"):
        smoothgrad(m, x, noise=1e300, scale=1e300)
    # the largest float32 is accepted, and a float64 model takes what float64 holds
    integrated_gradients(m, x, baseline=float(np.finfo(np.float32).max), steps=4)
    m64 = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0, dtype="float64")
    assert np.isfinite(integrated_gradients(m64, x, baseline=1e300).attributions).all()


def test_smoothgrad_adds_noise_to_rows_without_range():
    from neurocloud.demo import article_network

    m = article_network(seed=0)
    x = [[4.5], [0.5]]  # one feature: each row's max - min is 0
    plain = saliency(m, x).attributions
    smooth = smoothgrad(m, x, samples=32, noise=0.5, seed=1)
    assert not np.allclose(smooth.attributions, plain)
    assert smooth.settings["scale"] == "row range (1 for 2 row(s) without range)"
    # the fallback is an absolute scale of 1, the same as scale=1 given explicitly
    given = smoothgrad(m, x, samples=32, noise=0.5, seed=1, scale=1.0)
    assert np.array_equal(smooth.attributions, given.attributions)
    # noise 0 is still exactly saliency
    assert np.allclose(smoothgrad(m, x, noise=0.0).attributions, plain)
    # rows with a range keep the paper's rule
    wide = random_network(1, "tanh")
    rows = np.arange(2.0 * wide.input_dim).reshape(2, -1)
    assert smoothgrad(wide, rows, samples=2).settings["scale"] == "row range"
