"""Optimizer state: saved with a model or an estimator, training resumes exactly."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.artifact import OPTIMIZER_FILE, ArtifactError, load_artifact

OPTIMIZERS = [
    lambda: nc.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: nc.optim.Adam(lr=0.01),
    lambda: nc.optim.AdamW(lr=0.01, weight_decay=0.1),
    lambda: nc.optim.RMSprop(lr=0.01),
    lambda: nc.optim.SGD(lr=0.05),
]


def _gradient(step: int, shape) -> np.ndarray:
    return np.random.default_rng(step).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_a_restored_optimizer_continues_bitwise(make):
    shape = (70_000,)  # more than one update block
    straight, first = make(), make()
    w_straight = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    w = w_straight.copy()
    for step in range(3):
        straight.step([w_straight], [_gradient(step, shape)])
        first.step([w], [_gradient(step, shape)])
    resumed = nc.optim.get(first.name, **first.get_config())
    resumed.load_state_dict(first.state_dict())
    assert resumed.t == 3
    for step in range(3, 6):
        straight.step([w_straight], [_gradient(step, shape)])
        resumed.step([w], [_gradient(step, shape)])
    assert np.array_equal(w, w_straight)


def test_state_dict_is_a_copy():
    opt = nc.optim.Adam()
    w = np.zeros(4, np.float32)
    opt.step([w], [np.ones(4, np.float32)])
    state = opt.state_dict()
    state["0.m"][:] = 123.0
    assert not np.any(opt.state[0]["m"] == 123.0)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, "needs 'step'"),
        ({"step": np.array([-1])}, "non-negative integer"),
        ({"step": np.array([1.5])}, "non-negative integer"),
        ({"step": np.array([1]), "0.m": np.zeros(3)}, r"every slot \['m', 'v'\]"),
        (
            {"step": np.array([1]), "0.velocity": np.zeros(3)},
            "Unexpected optimizer state '0.velocity'",
        ),
        (
            {"step": np.array([1]), "1.m": np.zeros(3), "1.v": np.zeros(3)},
            "parameters 0..n-1",
        ),
        ({"step": np.array([1]), "0.m": np.zeros(3), "0.v": np.zeros(4)}, "differ in shape"),
    ],
)
def test_bad_optimizer_state_is_refused_with_what_was_wrong(state, message):
    with pytest.raises(ValueError, match=message):
        nc.optim.Adam().load_state_dict(state)


def test_restored_state_refuses_parameters_it_was_not_saved_for():
    opt = nc.optim.Adam()
    opt.load_state_dict(
        {"step": np.array([2]), "0.m": np.zeros(3, np.float32), "0.v": np.zeros(3, np.float32)}
    )
    with pytest.raises(ValueError, match=r"shapes \[\(3,\)\]; received parameters of shapes"):
        opt.step([np.zeros(5, np.float32)], [np.zeros(5, np.float32)])
    opt.load_state_dict(
        {"step": np.array([2]), "0.m": np.zeros(3, np.float32), "0.v": np.zeros(3, np.float32)}
    )
    with pytest.raises(ValueError, match=r"float32.*dtype.*float64"):
        opt.step([np.zeros(3)], [np.zeros(3)])


def _network() -> nc.Sequential:
    return nc.Sequential(
        [nc.layers.Dense(8, activation="tanh"), nc.layers.Dense(1)], input_dim=3, seed=4
    )


def _data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    return X, (X @ np.array([1.0, -2.0, 0.5]) + 0.3 * X[:, 0] ** 2).astype(np.float32)


def test_training_resumes_from_a_saved_model_exactly(tmp_path):
    X, y = _data()
    straight = _network()
    straight.fit(X, y, optimizer=nc.optim.Adam(lr=0.01), epochs=40, batch_size=16, shuffle=False)

    first, opt = _network(), nc.optim.Adam(lr=0.01)
    first.fit(X, y, optimizer=opt, epochs=20, batch_size=16, shuffle=False)
    path = nc.save(first, tmp_path / "half", optimizer=opt)
    artifact = load_artifact(path)
    resumed_opt = artifact.load_optimizer()
    assert isinstance(resumed_opt, nc.optim.Adam) and resumed_opt.t == 20 * 4
    assert resumed_opt.get_config() == opt.get_config()
    artifact.model.fit(X, y, optimizer=resumed_opt, epochs=20, batch_size=16, shuffle=False)
    assert np.array_equal(artifact.model.flat_parameters(), straight.flat_parameters())

    # a fresh optimizer (what loading used to give) does not continue the same trajectory
    restarted = load_artifact(path).model
    restarted.fit(X, y, optimizer=nc.optim.Adam(lr=0.01), epochs=20, batch_size=16, shuffle=False)
    assert not np.array_equal(restarted.flat_parameters(), straight.flat_parameters())


def test_no_optimizer_saved_means_none_and_no_file(tmp_path):
    path = nc.save(_network(), tmp_path / "plain")
    assert not (path / OPTIMIZER_FILE).exists()
    assert load_artifact(path).load_optimizer() is None


def test_damaged_or_foreign_optimizer_state_names_the_file(tmp_path):
    X, y = _data()
    model, opt = _network(), nc.optim.Adam()
    model.fit(X, y, optimizer=opt, epochs=2)
    path = nc.save(model, tmp_path / "m", optimizer=opt)
    data = (path / OPTIMIZER_FILE).read_bytes()
    (path / OPTIMIZER_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=f"{OPTIMIZER_FILE}: not a readable"):
        load_artifact(path).load_optimizer()
    assert load_artifact(path).model.predict(X).shape == (64, 1)  # the model itself loads

    other, other_opt = nc.Sequential([nc.layers.Dense(2)], input_dim=3, seed=0), nc.optim.Adam()
    other.fit(X, np.c_[y, y], optimizer=other_opt, epochs=1)
    (path / OPTIMIZER_FILE).write_bytes(
        (nc.save(other, tmp_path / "o", optimizer=other_opt) / OPTIMIZER_FILE).read_bytes()
    )
    with pytest.raises(ArtifactError, match=r"has 41 float32 parameters"):
        load_artifact(path).load_optimizer()


def test_an_optimizer_stepped_by_hand_over_model_parameters_is_restored(tmp_path):
    X, y = _data()
    loss = nc.losses.get("mse")

    def by_hand(model, opt, steps):
        for _ in range(steps):
            grad = loss.gradient(y.reshape(-1, 1), model.forward(X, training=True))
            model.backward(grad)
            opt.step(model.parameters(), model.gradients())

    straight, first, opt = _network(), _network(), nc.optim.Adam(lr=0.01)
    by_hand(straight, nc.optim.Adam(lr=0.01), 6)
    by_hand(first, opt, 3)
    artifact = load_artifact(nc.save(first, tmp_path / "m", optimizer=opt))
    by_hand(artifact.model, artifact.load_optimizer(), 3)
    assert np.array_equal(artifact.model.flat_parameters(), straight.flat_parameters())


def test_save_refuses_something_that_is_not_an_optimizer(tmp_path):
    with pytest.raises(TypeError, match=r"Expected optimizer to be a neurocloud optimizer.*str"):
        nc.save(_network(), tmp_path / "m", optimizer="adam")
    assert not (tmp_path / "m").exists()


def test_serving_package_leaves_the_training_state_out(tmp_path):
    X, y = _data()
    model, opt = _network(), nc.optim.Adam()
    model.fit(X, y, optimizer=opt, epochs=1)
    path = nc.save(model, tmp_path / "m", optimizer=opt)
    with tarfile.open(nc.export.sagemaker(path, tmp_path / "model.tar.gz")) as tar:
        assert sorted(tar.getnames()) == ["card.json", "model.json", "weights.safetensors"]


@pytest.mark.parametrize("through", ["pickle", "nc.save"])
def test_estimator_partial_fit_continues_after_a_round_trip(tmp_path, through):
    from neurocloud.sklearn import NeuralNetRegressor

    X, y = _data()  # 64 rows: one batch, so no shuffling order to carry over
    original = NeuralNetRegressor((8,), learning_rate=0.01, random_state=0)
    for _ in range(5):
        original.partial_fit(X, y)
    if through == "pickle":
        copy = pickle.loads(pickle.dumps(original))
    else:
        copy = nc.load(nc.save(original, tmp_path / "reg"))
    assert copy._optimizer.t == original._optimizer.t == 5
    for _ in range(5):
        original.partial_fit(X, y)
        copy.partial_fit(X, y)
    assert np.array_equal(copy.predict(X), original.predict(X))
