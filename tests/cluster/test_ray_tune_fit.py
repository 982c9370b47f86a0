"""Ray Tune with ASHA over an estimator, and data-parallel training on Ray workers."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import neurocloud as nc
from neurocloud.ray import fit, tune
from neurocloud.sklearn import NeuralNetClassifier

ray_tune = pytest.importorskip("ray.tune")


def test_tune_with_asha_beats_the_default_and_stops_a_trial_early(ray_cluster):
    data = nc.datasets.load("digits")
    estimator = NeuralNetClassifier(
        hidden_layer_sizes=(16,), learning_rate=1e-4, max_epochs=12, random_state=0
    )
    space = {"learning_rate": ray_tune.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2])}
    default = NeuralNetClassifier(**estimator.get_params()).set_params(
        early_stopping=True, validation_fraction=0.2, n_iter_no_change=12
    )
    with warnings.catch_warnings():  # 12 epochs: still improving, and told so
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = tune(estimator, space, data.X, data.y, num_samples=6, grace_period=2)
        default.fit(data.X, data.y)
    assert search.best_score_ >= default.best_validation_score_
    assert (search.results_["training_iteration"] < 12).any(), search.results_
    assert search.epochs_run_ < search.epochs_budget_
    assert search.best_estimator_.score(data.X, data.y) > 0.5


def test_tune_prints_no_table_with_the_default_verbosity(ray_cluster, capfd):
    """Ray Tune's new output engine prints its configuration table even at verbose=0."""
    estimator = NeuralNetClassifier(hidden_layer_sizes=(4,), max_epochs=2, random_state=0)
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tune(estimator, {"learning_rate": ray_tune.choice([1e-3, 1e-2])}, X, y, num_samples=2)
    out = capfd.readouterr().out
    for table in ("Configuration for experiment", "Trial status", "Search algorithm", "╭", "+--"):
        assert table not in out, out
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ


def test_tune_names_an_unknown_parameter(ray_cluster):
    with pytest.raises(ValueError, match="param_space: expected parameters"):
        tune(NeuralNetClassifier(), {"learnin_rate": 0.1}, [[0.0]], [0])


@pytest.mark.parametrize("fraction", [0, 1, float("nan"), "0.2"])
def test_tune_names_a_bad_validation_fraction(fraction):
    with pytest.raises(ValueError, match=r"validation_fraction to be a number > 0 and < 1\."):
        tune(NeuralNetClassifier(), {}, [[0.0]], [0], validation_fraction=fraction)


@pytest.mark.parametrize("sample_weight", [False, True])
def test_data_parallel_fit_equals_single_process_float64(ray_cluster, sample_weight):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = np.sin(X.sum(axis=1, keepdims=True))
    sw = rng.uniform(0.5, 2.0, size=200) if sample_weight else None

    def network():
        return nc.Sequential(
            [nc.layers.Dense(16, activation="tanh"), nc.layers.Dense(1)],
            input_dim=5,
            seed=1,
            dtype="float64",
        )

    kwargs = dict(loss="mse", epochs=3, batch_size=48, l2=1e-3, sample_weight=sw)
    single, parallel = network(), network()
    expected = single.fit(X, y, optimizer=nc.optim.Adam(lr=0.01), **kwargs)
    got = fit(parallel, X, y, num_workers=2, optimizer=nc.optim.Adam(lr=0.01), **kwargs)
    np.testing.assert_allclose(parallel.flat_parameters(), single.flat_parameters(), atol=1e-10)
    np.testing.assert_allclose(got.history["loss"], expected.history["loss"], atol=1e-10)
    assert not np.array_equal(parallel.flat_parameters(), network().flat_parameters())


def test_data_parallel_fit_float32_labels_and_an_empty_shard(ray_cluster):
    """Softmax with integer labels, 3 workers and a last batch of 2 rows (one worker's
    shard is empty): equal to one process to float32 rounding; the optimizer's state
    afterwards is the workers' (its step count as after model.fit)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    labels = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)

    def network():
        layers = [nc.layers.Dense(8, activation="relu"), nc.layers.Dense(3, activation="softmax")]
        return nc.Sequential(layers, input_dim=4, seed=3)

    kwargs = dict(loss="sparse_categorical_crossentropy", epochs=2, batch_size=66)
    single, parallel = network(), network()
    single_opt, parallel_opt = (
        nc.optim.SGD(lr=0.1, momentum=0.9),
        nc.optim.SGD(lr=0.1, momentum=0.9),
    )
    expected = single.fit(X, labels, optimizer=single_opt, **kwargs)
    got = fit(parallel, X, labels, num_workers=3, num_cpus=0.5, optimizer=parallel_opt, **kwargs)
    np.testing.assert_allclose(parallel.flat_parameters(), single.flat_parameters(), atol=2e-6)
    np.testing.assert_allclose(got.history["loss"], expected.history["loss"], rtol=1e-5)
    assert parallel_opt.t == single_opt.t == 8
    np.testing.assert_array_equal(parallel.rng.random(3), single.rng.random(3))


def test_data_parallel_fit_names_an_unknown_allreduce():
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    with pytest.raises(ValueError, match=r"allreduce: expected one of \['actor', 'gloo'\]"):
        fit(model, [[0.0], [1.0]], [0.0, 1.0], allreduce="mpi")
