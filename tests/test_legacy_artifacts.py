"""Artifacts and pickles written by neurocloud 0.1 (``tests/data/legacy_v1``, see its README)
still load, to the same predictions, with their optimizer state."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.artifact import load_artifact

DATA = Path(__file__).parent / "data" / "legacy_v1"
EXPECTED = json.loads((DATA / "expected.json").read_text())
X = np.array(EXPECTED["X"])


def assert_same(actual, expected) -> None:
    """The same predictions up to float32 rounding: another BLAS or CPU may sum the matrix
    products in another order (a few ulp), which says nothing about the artifact."""
    np.testing.assert_allclose(actual, np.array(expected), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "name",
    ["sequential", "sequential_optimizer", "regressor", "sequential_lbfgs", "regressor_lbfgs"],
)
def test_a_legacy_artifact_loads_to_the_same_predictions(name):
    assert_same(nc.load(DATA / name).predict(X), EXPECTED[name])


def test_a_legacy_classifier_loads_to_the_same_probabilities_and_labels():
    clf = nc.load(DATA / "classifier")
    assert_same(clf.predict_proba(X), EXPECTED["classifier"])
    assert clf.predict(X).tolist() == EXPECTED["classifier_labels"]
    assert type(clf._optimizer).__name__ == "Adam" and clf._optimizer.t > 0


def test_a_legacy_optimizer_state_loads_and_resumes():
    artifact = load_artifact(DATA / "sequential_optimizer")
    opt = artifact.load_optimizer()
    assert opt.t == 9  # 3 epochs of 3 batches
    artifact.model.fit(X, X[:, 0], optimizer=opt, epochs=1, batch_size=4)
    assert opt.t == 12


def test_a_legacy_lbfgs_state_loads_although_lbfgs_no_longer_takes_lr():
    """0.1 saved L-BFGS as an optimizer with an unused ``lr``; it is a minimizer now."""
    artifact = load_artifact(DATA / "sequential_lbfgs")
    opt = artifact.load_optimizer()
    assert isinstance(opt, nc.optim.LBFGS)
    artifact.model.fit(X, X[:, 0], optimizer=opt, epochs=2)
    reg = nc.load(DATA / "regressor_lbfgs")
    assert type(reg._optimizer).__name__ == "LBFGS"


def test_an_lbfgs_estimator_saved_now_loads_with_its_optimizer(tmp_path):
    from neurocloud.sklearn import NeuralNetRegressor

    reg = NeuralNetRegressor((4,), optimizer="lbfgs", max_epochs=3, tol=0, random_state=0)
    with pytest.warns(UserWarning):  # stopped at max_epochs while still improving
        reg.fit(X, X[:, 1])
    loaded = nc.load(nc.save(reg, tmp_path / "r"))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert isinstance(load_artifact(tmp_path / "r").load_optimizer(), nc.optim.LBFGS)


def test_legacy_pickles_load_to_the_same_predictions():
    model = pickle.loads((DATA / "sequential.pickle").read_bytes())
    assert_same(model.predict(X), EXPECTED["sequential_optimizer"])
    clf = pickle.loads((DATA / "classifier.pickle").read_bytes())
    assert_same(clf.predict_proba(X), EXPECTED["classifier"])
    assert clf._optimizer.t > 0


def test_an_artifact_saved_now_records_its_kind(tmp_path):
    meta = json.loads(
        (nc.save(nc.load(DATA / "regressor"), tmp_path / "r") / "model.json").read_text()
    )
    assert meta["kind"] == "estimator"
    meta = json.loads(
        (nc.save(nc.load(DATA / "sequential"), tmp_path / "s") / "model.json").read_text()
    )
    assert meta["kind"] == "sequential"
