"""SHAP and LIME through their packages: SHAP's axioms, closed forms, and the agreement of
expected gradients with exact Shapley values."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from explain_networks import additive_network, linear_network, random_network

import neurocloud as nc
from neurocloud.explain import expected_gradients, lime_explanation, shap_values


@pytest.mark.parametrize(
    ("n_features", "method"), [(5, "auto"), (12, "permutation"), (12, "kernel")]
)
def test_shap_of_a_linear_model_is_w_times_x_minus_mean_background(n_features, method):
    # 12 features: more than recent KernelExplainer keeps by default (l1_reg keeps 10)
    model = linear_network(n_features, 3, seed=n_features)
    rng = np.random.default_rng(0)
    X, background = rng.normal(size=(3, n_features)), rng.normal(1.0, 2.0, size=(15, n_features))
    kernel = model.layers[0].params["kernel"]
    for target in (0, 2):
        e = shap_values(model, X, background, target=target, method=method)
        expected = kernel[:, target] * (X - background.mean(axis=0))
        assert np.max(np.abs(e.attributions - expected)) < 1e-8
        assert np.allclose(e.base_value, model.predict(background)[:, target].mean())
    if method == "auto":
        assert e.settings["shap_method"] == "exact"


@pytest.mark.parametrize("method", ["exact", "permutation"])
def test_shap_values_add_up_to_the_output_minus_the_mean_over_the_background(method):
    model = random_network(2, "relu")
    rng = np.random.default_rng(1)
    X, background = rng.normal(size=(4, model.input_dim)), rng.normal(size=(20, model.input_dim))
    e = shap_values(model, X, background, method=method)
    mean_background = model.predict(background).mean(axis=0)[e.target]
    assert np.max(np.abs(e.base_value - mean_background)) < 1e-12
    assert np.max(np.abs(e.attributions.sum(axis=1) - (e.prediction - mean_background))) < 1e-10


def test_a_null_model_gets_zero_shap_values():
    model = nc.Sequential(
        [nc.layers.Dense(6, "relu"), nc.layers.Dense(2)], input_dim=4, seed=0, dtype="float64"
    )
    model.layers[1].params["kernel"][...] = 0.0
    model.layers[1].params["bias"][...] = [0.3, -1.0]
    rng = np.random.default_rng(2)
    e = shap_values(model, rng.normal(size=(3, 4)), rng.normal(size=(10, 4)), target=1)
    assert np.max(np.abs(e.attributions)) < 1e-12
    assert np.allclose(e.base_value, -1.0)


def test_symmetric_features_get_equal_shap_values():
    model = random_network(4, "tanh")
    kernel = model.layers[0].params["kernel"]
    kernel[1] = kernel[0]  # the network treats features 0 and 1 alike
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, model.input_dim))
    X[:, 1] = X[:, 0]
    half = rng.normal(size=(10, model.input_dim))
    background = np.concatenate([half, half[:, [1, 0, *range(2, model.input_dim)]]])
    e = shap_values(model, X, background)
    assert np.max(np.abs(e.attributions[:, 0] - e.attributions[:, 1])) < 1e-10
    assert np.max(np.abs(e.attributions[:, 0] - e.attributions[:, 2])) > 1e-3


def test_expected_gradients_agrees_with_exact_shapley_values_up_to_sampling_error():
    # On a network without feature interactions, f = sum_i g_i(x_i), both are exactly
    # g_i(x_i) - E[g_i(b_i)] in expectation; elsewhere expected gradients (an average of
    # Aumann-Shapley values) and Shapley values split interactions differently, which no
    # number of samples removes.
    model = additive_network(n_features=4, units=3, seed=5)
    rng = np.random.default_rng(5)
    X, background = rng.normal(0, 1.5, size=(5, 4)), rng.normal(size=(30, 4))
    exact = shap_values(model, X, background, method="exact").attributions
    e = expected_gradients(model, X, background, samples=3000, seed=0)
    # Tolerance: 4 standard errors of the Monte Carlo mean (the i.i.d. estimate, an upper
    # bound under the balanced sampling used), per value; the chance that any of the 20
    # values misses is about 20 * 6e-5 if the estimate were normal and the error that large.
    gap = np.abs(e.attributions - exact)
    assert np.all(gap <= 4 * e.standard_error + 1e-12), gap / e.standard_error
    # and the check has teeth: the error bars are small next to the values
    assert np.max(e.standard_error) < 0.05 * np.max(np.abs(exact))


def test_lime_recovers_a_linear_models_weights_in_standardised_units():
    # Without discretisation LIME fits on (x - mean) / std of the training data, so a
    # linear model's local weights are w * std.
    model = linear_network(4, 1, seed=6)
    rng = np.random.default_rng(6)
    training = rng.normal(0.0, [1.0, 2.0, 0.5, 3.0], size=(500, 4))
    e = lime_explanation(model, training[:2], training, discretize=False, num_samples=2000)
    expected = model.layers[0].params["kernel"][:, 0] * training.std(axis=0)
    assert np.allclose(e.attributions, expected, rtol=1e-2, atol=1e-3)
    assert e.base_value is None


def test_lime_is_seeded_and_its_local_model_nearly_adds_up():
    model = random_network(7, "tanh")
    rng = np.random.default_rng(7)
    training = rng.normal(size=(200, model.input_dim))
    a = lime_explanation(model, training[:2], training, num_samples=1000, seed=1)
    again = lime_explanation(model, training[:2], training, num_samples=1000, seed=1)
    other = lime_explanation(model, training[:2], training, num_samples=1000, seed=2)
    assert np.array_equal(a.attributions, again.attributions)
    assert not np.array_equal(a.attributions, other.attributions)
    assert a.method == "lime" and len(a.settings["scores"]) == 2
    # with discretisation the local model's value at x is intercept + sum of weights
    assert np.all(np.abs(a.completeness_error) < 0.5 * np.ptp(model.predict(training)))


def test_shap_method_and_missing_extra_errors(monkeypatch):
    model = linear_network(3, 1, seed=0)
    with pytest.raises(ValueError, match=r"Unknown SHAP method 'tree'.*exact, permutation"):
        shap_values(model, np.zeros((1, 3)), np.zeros((2, 3)), method="tree")
    monkeypatch.setitem(sys.modules, "shap", None)
    with pytest.raises(ImportError, match=r"neurocloud\[explain\]"):
        shap_values(model, np.zeros((1, 3)), np.zeros((2, 3)))
    monkeypatch.setitem(sys.modules, "lime.lime_tabular", None)
    with pytest.raises(ImportError, match=r"neurocloud\[explain\]"):
        lime_explanation(model, np.zeros((1, 3)), np.zeros((2, 3)))


def test_shap_leaves_numpys_global_random_state_alone():
    model = random_network(8, "relu")
    rng = np.random.default_rng(8)
    X, background = rng.normal(size=(1, model.input_dim)), rng.normal(size=(5, model.input_dim))
    state = np.random.get_state()[1].copy()
    first = shap_values(model, X, background, method="permutation", seed=3).attributions
    assert np.array_equal(np.random.get_state()[1], state)
    again = shap_values(model, X, background, method="permutation", seed=3).attributions
    assert np.array_equal(first, again)


def test_importing_neurocloud_and_explain_does_not_import_shap_lime_or_matplotlib():
    code = (
        "import sys, numpy as np, neurocloud as nc, neurocloud.explain\n"
        "import neurocloud.serve.explanation_requests\n"
        "m = nc.Sequential([nc.layers.Dense(2)], input_dim=2, seed=0)\n"
        "nc.explain.integrated_gradients(m, np.ones((1, 2)))\n"
        "print(sorted(n for n in ('shap', 'lime', 'matplotlib') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
