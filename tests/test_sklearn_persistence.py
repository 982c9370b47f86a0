"""Estimators as artifacts: pickle, nc.save/nc.load, Sequential conversion, sklearn tooling."""

import copy
import json
import pickle
import pickletools

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import neurocloud as nc
from neurocloud.artifact import ArtifactError, load_artifact
from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor, from_artifact

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {"hidden_layer_sizes": (16,), "learning_rate": 0.02, "random_state": 0}


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def labelled_classifier(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return NeuralNetClassifier(**FAST, max_epochs=60).fit(X, names), X


@pytest.fixture(scope="module")
def regressor():
    X, Y = make_regression(n_samples=80, n_features=4, n_targets=2, random_state=0)
    return NeuralNetRegressor(**FAST, max_epochs=60).fit(X, Y + 500), X


def _pickled_globals(data: bytes) -> set[str]:
    """The module.name of every class or function a pickle refers to."""
    found, strings = set(), []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
        elif opcode.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
    return found


@pytest.mark.parametrize("name", ["labelled_classifier", "regressor"])
def test_pickle_round_trip_delegates_to_safetensors(request, name):
    estimator, X = request.getfixturevalue(name)
    data = pickle.dumps(estimator)
    refs = _pickled_globals(data)
    # Nothing from NumPy is pickled: the weights travel as safetensors bytes, the rest as JSON.
    assert not any(ref.startswith("numpy") for ref in refs), refs
    module = type(estimator).__module__
    assert refs == {"neurocloud.sklearn._persist.unpickle", f"{module}.{type(estimator).__name__}"}
    assert b'"format":"neurocloud.estimator"' in data
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.predict(X), estimator.predict(X))
    assert restored.get_params() == estimator.get_params()
    assert restored.loss_curve_ == estimator.loss_curve_ and restored.n_iter_ == estimator.n_iter_
    clone = copy.deepcopy(estimator)
    np.testing.assert_array_equal(clone.predict(X), estimator.predict(X))


def test_unfitted_estimator_pickles_as_its_parameters():
    clf = NeuralNetClassifier((3, 2), class_weight={"a": 2.0})
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.get_params() == clf.get_params() and not hasattr(restored, "model_")


def test_pickled_estimator_keeps_training(iris):
    X, y = iris
    clf = NeuralNetClassifier(**FAST, max_epochs=5, warm_start=True).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    restored.fit(X, y)
    assert len(restored.loss_curve_) == 10 and restored.loss_curve_[5] < restored.loss_curve_[0]


def test_save_and_load_a_classifier(tmp_path, labelled_classifier):
    clf, X = labelled_classifier
    path = nc.save(clf, tmp_path / "iris", feature_names=["sl", "sw", "pl", "pw"])
    assert sorted(p.name for p in path.iterdir()) == [
        "card.json",
        "model.json",
        "optimizer.safetensors",
        "weights.safetensors",
    ]
    loaded = nc.load(path)
    assert isinstance(loaded, NeuralNetClassifier)
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params() == clf.get_params()
    # What a server loads: the plain network, whose outputs are the class probabilities.
    artifact = load_artifact(path)
    assert artifact.metadata["output_names"] == ["setosa", "versicolor", "virginica"]
    assert artifact.metadata["feature_names"] == ["sl", "sw", "pl", "pw"]
    assert artifact.metadata["model"]["layers"][0]["class_name"] == "Normalization"
    np.testing.assert_allclose(artifact.model.predict(X), clf.predict_proba(X), atol=1e-6)
    estimator = artifact.metadata["extra"]["estimator"]
    assert estimator["class"] == "NeuralNetClassifier"
    assert estimator["params"]["hidden_layer_sizes"] == {"tuple": [16]}


def test_save_and_load_a_multi_output_regressor(tmp_path, regressor):
    reg, X = regressor
    loaded = nc.load(nc.save(reg, tmp_path / "reg"))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    np.testing.assert_array_equal(loaded.target_scale_, reg.target_scale_)
    served = load_artifact(tmp_path / "reg").model.predict(X)
    np.testing.assert_allclose(served, reg.predict(X), rtol=1e-6)  # in the target's units
    assert json.loads((tmp_path / "reg" / "card.json").read_text())["history"]["epochs"] > 0


def test_save_and_load_multilabel_and_dict_class_weight(tmp_path):
    X, Y = make_multilabel_classification(n_samples=60, n_classes=3, random_state=0)
    ml = nc.load(nc.save(NeuralNetClassifier(**FAST, max_epochs=5).fit(X, Y), tmp_path / "ml"))
    assert ml.predict(X).shape == Y.shape and ml.classes_.tolist() == [0, 1, 2]
    clf = NeuralNetClassifier(**FAST, max_epochs=5, class_weight={0: 2.0, 1: 0.5})
    clf.fit(X[:, :3], Y[:, 0])
    loaded = nc.load(nc.save(clf, tmp_path / "cw"))
    assert loaded.class_weight == {0: 2.0, 1: 0.5}


def test_from_artifact_rejects_a_foreign_description(tmp_path, regressor):
    reg, _ = regressor
    path = nc.save(reg, tmp_path / "reg")
    artifact = load_artifact(path)
    artifact.metadata["extra"]["estimator"]["class"] = "SVC"
    with pytest.raises(ArtifactError, match=r"model\.json.*Unknown estimator class 'SVC'"):
        from_artifact(artifact)
    artifact.metadata["extra"]["estimator"]["class"] = "NeuralNetRegressor"
    artifact.metadata["extra"]["estimator"]["fitted"]["predict"] = "not a method"
    with pytest.raises(ArtifactError, match=r"fitted state has keys .*'predict'"):
        from_artifact(artifact)
    artifact.metadata["extra"]["estimator"] = {"class": "NeuralNetRegressor"}
    with pytest.raises(ArtifactError, match="not an estimator description"):
        from_artifact(artifact)


def test_to_sequential_and_back(labelled_classifier, regressor):
    clf, X = labelled_classifier
    net = clf.to_sequential()
    assert net is not clf.model_ and net.layers[-1].activation.name == "softmax"
    np.testing.assert_allclose(net.predict(X), clf.predict_proba(X), atol=1e-6)
    back = NeuralNetClassifier.from_sequential(net, classes=clf.classes_)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert back.hidden_layer_sizes == (16,) and back.standardize
    reg, Xr = regressor
    again = NeuralNetRegressor.from_sequential(reg.to_sequential())
    np.testing.assert_allclose(again.predict(Xr), reg.predict(Xr), rtol=1e-6)


def test_from_sequential_wraps_a_hand_built_network_and_keeps_training():
    net = nc.Sequential(
        [nc.layers.Dense(4, activation="tanh"), nc.layers.Dense(1, "sigmoid")], input_dim=2, seed=0
    )
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]] * 10)
    y = np.array(["no", "yes", "no", "yes"] * 10)
    clf = NeuralNetClassifier.from_sequential(
        net, classes=["no", "yes"], warm_start=True, learning_rate=0.05, max_epochs=100
    )
    before = net.flat_parameters().copy()
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba[:, 1], net.predict(X)[:, 0], rtol=1e-6)
    clf.fit(X, y)  # binary with one sigmoid unit, trained further in place of a new network
    assert clf.score(X, y) == 1.0 and clf.model_.output_dim == 1
    np.testing.assert_array_equal(net.flat_parameters(), before)  # the original is untouched


@pytest.mark.parametrize(
    ("classes", "message"),
    [(["a", "b", "c"], "gives 2 class probabilities but classes has 3"), (None, None)],
)
def test_from_sequential_checks_classes(classes, message):
    net = nc.Sequential([nc.layers.Dense(1, activation="sigmoid")], input_dim=1, seed=0)
    if message is None:
        assert NeuralNetClassifier.from_sequential(net).classes_.tolist() == [0, 1]
    else:
        with pytest.raises(ValueError, match=message):
            NeuralNetClassifier.from_sequential(net, classes=classes)


def test_from_sequential_needs_a_probability_output():
    net = nc.Sequential([nc.layers.Dense(3)], input_dim=1, seed=0)
    with pytest.raises(ValueError, match=r"ending in softmax .* ends in 'identity'"):
        NeuralNetClassifier.from_sequential(net)
    with pytest.raises(TypeError, match=r"Expected a neurocloud\.Sequential"):
        NeuralNetRegressor.from_sequential("model")


def test_pipeline_grid_search_and_parallel_cross_validation(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier(**FAST, max_epochs=30))
    search = GridSearchCV(pipe, {"neuralnetclassifier__hidden_layer_sizes": [(4,), (16,)]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["neuralnetclassifier__hidden_layer_sizes"] in [(4,), (16,)]
    assert search.score(X, y) > 0.9
    serial = cross_val_score(NeuralNetClassifier(**FAST, max_epochs=30), X, y, cv=3)
    parallel = cross_val_score(NeuralNetClassifier(**FAST, max_epochs=30), X, y, cv=3, n_jobs=2)
    np.testing.assert_array_equal(serial, parallel)  # worker processes get pickled estimators
    assert serial.mean() > 0.9


def test_joblib_dump_and_parallel_prediction(tmp_path, labelled_classifier):
    clf, X = labelled_classifier
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict(X), clf.predict(X))
    parts = joblib.Parallel(n_jobs=2)(joblib.delayed(clf.predict)(X[i::2]) for i in range(2))
    np.testing.assert_array_equal(parts[0], clf.predict(X[0::2]))


def test_from_sequential_refuses_unsorted_classes():
    net = nc.Sequential([nc.layers.Dense(2, activation="softmax")], input_dim=1, seed=0)
    with pytest.raises(ValueError, match=r"classes must be sorted and unique.*\['dog', 'cat'\]"):
        NeuralNetClassifier.from_sequential(net, classes=["dog", "cat"])
    assert list(NeuralNetClassifier.from_sequential(net, classes=["cat", "dog"]).classes_) == [
        "cat",
        "dog",
    ]
