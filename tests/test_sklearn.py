"""NeuralNetClassifier / NeuralNetRegressor: fitting, targets, weights, curves, errors."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score

import neurocloud as nc
from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor
from neurocloud.sklearn._monitor import Monitor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {"hidden_layer_sizes": (16,), "learning_rate": 0.02, "random_state": 0}


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_classifier_learns_iris_and_probabilities_are_consistent(iris):
    X, y = iris
    clf = NeuralNetClassifier(**FAST, max_epochs=100).fit(X, y)
    assert clf.score(X, y) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    assert clf.n_features_in_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"


def test_string_labels_keep_their_type_and_order():
    X = np.linspace(0, 3, 40).reshape(-1, 1)
    y = np.where(X[:, 0] > 1.5, "high", "low")
    clf = NeuralNetClassifier(**FAST, max_epochs=100).fit(X, y)
    assert clf.classes_.tolist() == ["high", "low"]
    assert clf.predict([[0.1], [2.9]]).tolist() == ["low", "high"]


def test_log_proba_is_finite_where_proba_underflows():
    X = np.array([[-1.0], [1.0]] * 20)
    y = np.array([0, 1] * 20)
    clf = NeuralNetClassifier((8,), learning_rate=0.1, max_epochs=200, tol=0, random_state=0)
    clf.fit(X, y)
    far = np.array([[-1e4], [1e4]])
    assert np.isfinite(clf.predict_log_proba(far)).all()


def test_multilabel_classification():
    X, Y = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    clf = NeuralNetClassifier(**FAST, max_epochs=150).fit(X, Y)
    pred = clf.predict(X)
    assert pred.shape == Y.shape and pred.dtype.kind == "i"
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert (pred == Y).mean() > 0.85
    assert clf.out_activation_ == "sigmoid"


def test_multiclass_multioutput_is_rejected_with_a_clear_message():
    y = np.array([[0, 1], [2, 0], [1, 2], [0, 0]])
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        NeuralNetClassifier().fit(np.zeros((4, 2)), y)


def test_multi_output_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5], 100 * X[:, 0] + 50, np.sin(X[:, 1])])
    reg = NeuralNetRegressor((32,), learning_rate=0.01, max_epochs=300, random_state=0)
    reg.fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == (200, 3) and pred.dtype == np.float64
    assert reg.score(X, Y) > 0.9
    # the targets' scales differ by 100x; standardising them keeps each one learned
    for j in range(3):
        assert np.corrcoef(pred[:, j], Y[:, j])[0, 1] > 0.9


def test_regressor_target_scaling_is_folded_into_the_network():
    X = np.linspace(-1, 1, 50).reshape(-1, 1)
    y = 1000 + 300 * X[:, 0]
    reg = NeuralNetRegressor((8,), learning_rate=0.01, max_epochs=300, tol=0, random_state=0)
    reg.fit(X, y)
    assert reg.target_mean_ == pytest.approx([1000.0]) and reg.target_scale_[0] > 100
    np.testing.assert_allclose(reg.to_sequential().predict(X)[:, 0], reg.predict(X), rtol=1e-6)
    assert abs(reg.predict([[0.0]])[0] - 1000) < 30
    raw = NeuralNetRegressor((8,), standardize=False, max_epochs=5, random_state=0).fit(X, y)
    assert raw.target_mean_ is None
    assert not isinstance(raw.model_.layers[0], nc.layers.Normalization)


def test_standardization_layer_holds_the_weighted_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[5.0, -3.0], scale=[100.0, 0.01], size=(60, 2))
    w = rng.uniform(0.5, 2.0, size=60)
    clf = NeuralNetClassifier(**FAST, max_epochs=2, dtype="float64")
    clf.fit(X, (X[:, 0] > 5).astype(int), sample_weight=w)
    norm = clf.model_.layers[0]
    assert isinstance(norm, nc.layers.Normalization)
    mean = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(norm.mean, mean)
    np.testing.assert_allclose(norm.scale, np.sqrt(np.average((X - mean) ** 2, 0, weights=w)))


def test_zero_sample_weight_equals_dropping_rows_and_integer_weight_equals_repeating():
    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    w = np.random.default_rng(0).integers(0, 3, size=40)
    params = dict(FAST, batch_size=200, max_epochs=20, dtype="float64", shuffle=False)
    weighted = NeuralNetClassifier(**params).fit(X, y, sample_weight=w)
    repeated = NeuralNetClassifier(**params).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9)


def test_class_weight_dict_equals_the_matching_sample_weight():
    X, y = make_classification(n_samples=80, n_features=4, random_state=1)
    a = NeuralNetClassifier(**FAST, max_epochs=20, class_weight={0: 3.0}).fit(X, y)
    b = NeuralNetClassifier(**FAST, max_epochs=20).fit(X, y, sample_weight=np.where(y == 0, 3, 1))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_class_weight_balanced_raises_minority_recall():
    X, y = make_classification(
        n_samples=600, n_features=5, weights=[0.93], class_sep=0.5, flip_y=0, random_state=3
    )
    plain = NeuralNetClassifier(**FAST, max_epochs=60).fit(X, y)
    balanced = NeuralNetClassifier(**FAST, max_epochs=60, class_weight="balanced").fit(X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X)) + 0.1


@pytest.mark.parametrize(
    ("class_weight", "message"),
    [({7: 2.0}, r"labels \[7\] that are not in classes_"), ("heavy", "'balanced' or a dict")],
)
def test_class_weight_errors(class_weight, message):
    with pytest.raises(ValueError, match=message):
        NeuralNetClassifier(class_weight=class_weight).fit([[0.0], [1.0]], [0, 1])


def test_partial_fit_needs_classes_then_learns_over_calls(iris):
    X, y = iris
    clf = NeuralNetClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be given on the first call"):
        clf.partial_fit(X, y)
    rng = np.random.default_rng(0)
    for epoch in range(40):
        order = rng.permutation(150)
        clf.partial_fit(X[order[:75]], y[order[:75]], classes=[0, 1, 2] if epoch == 0 else None)
    assert clf.n_iter_ == 40 and clf.t_ == 40 * 75
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 3
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"labels \[5\] that are not in classes_"):
        clf.partial_fit(X[:2], [0, 5])
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        clf.partial_fit(X[:2], [0, 1], classes=[0, 1])
    with pytest.raises(ValueError, match="partial_fit"):
        NeuralNetClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_partial_fit_on_a_label_subset_and_regression():
    clf = NeuralNetClassifier(**FAST).partial_fit([[0.0], [1.0]], [0, 0], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.predict_proba([[0.5]]).shape == (1, 3)
    reg = NeuralNetRegressor(**FAST)
    for _ in range(3):
        reg.partial_fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    assert reg.n_iter_ == 3 and len(reg.loss_curve_) == 3


def test_lbfgs_has_no_partial_fit():
    assert not hasattr(NeuralNetClassifier(optimizer="lbfgs"), "partial_fit")
    assert not hasattr(NeuralNetRegressor(optimizer="lbfgs"), "partial_fit")
    assert hasattr(NeuralNetRegressor(optimizer="sgd"), "partial_fit")


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop", "lbfgs"])
def test_every_optimizer_trains(iris, optimizer):
    X, y = iris
    clf = NeuralNetClassifier(**dict(FAST, optimizer=optimizer), max_epochs=60).fit(X, y)
    assert clf.score(X, y) > 0.85


def test_warm_start_continues_from_the_current_weights(iris):
    X, y = iris
    clf = NeuralNetClassifier(**FAST, max_epochs=20, warm_start=True, tol=0).fit(X, y)
    first = list(clf.loss_curve_)
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 40 and clf.n_iter_ == 20
    assert clf.loss_curve_[20] < first[0] / 2  # the second fit starts where the first ended
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y < 2], y[y < 2])
    cold = NeuralNetClassifier(**FAST, max_epochs=20, tol=0).fit(X, y)
    cold.fit(X, y)
    assert cold.loss_curve_ == first  # without warm_start, fit starts over


def test_early_stopping_records_scores_and_stops(iris):
    X, y = iris
    clf = NeuralNetClassifier(
        **FAST, max_epochs=500, early_stopping=True, n_iter_no_change=5, validation_fraction=0.2
    ).fit(X, y)
    assert clf.n_iter_ < 500
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    plain = NeuralNetClassifier(**FAST, max_epochs=30).fit(X, y)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None
    assert plain.best_loss_ == min(plain.loss_curve_) and plain.loss_ == plain.loss_curve_[-1]
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        NeuralNetClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_early_stopping_restores_the_best_epoch():
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    est = NeuralNetRegressor(tol=0.0, n_iter_no_change=1)
    est.n_iter_, est.t_, est.loss_curve_ = 0, 0, []
    est.validation_scores_, est.best_validation_score_ = [], -np.inf
    scores = iter([0.1, 0.5, 0.3, 0.2])
    est._validation_score = lambda *args: next(scores)
    monitor = Monitor(est, 10, validation=("X", "Y", None))
    for epoch in range(4):
        model.flat_parameters()[...] = epoch
        monitor.on_epoch_end(model, epoch, {"loss": 1.0})
        if model.stop_training:
            break
    assert epoch == 3 and monitor.stopped  # two epochs without improvement > n_iter_no_change
    monitor.on_train_end(model)
    assert (model.flat_parameters() == 1).all()  # the weights of the best epoch (score 0.5)


def test_convergence_warning_only_when_the_budget_ends_training():
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_epochs=3"):
        NeuralNetClassifier(**FAST, max_epochs=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = NeuralNetClassifier(**FAST, max_epochs=500, tol=1e-2).fit(X, y)
    assert clf.n_iter_ < 500


def test_verbose_prints_each_epoch(capsys):
    NeuralNetRegressor(**FAST, max_epochs=3, verbose=1).fit([[0.0], [1.0]], [0.0, 1.0])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 1, loss = ")


def test_network_structure_follows_the_hyperparameters():
    clf = NeuralNetClassifier(
        (8, 4), activation="logistic", dropout=0.25, max_epochs=2, random_state=0
    ).fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert kinds == ["Normalization", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert clf.model_.layers[1].activation.name == "sigmoid"
    assert clf.model_.layers[1].kernel_initializer == "glorot_uniform"


@pytest.mark.parametrize("cls", [NeuralNetClassifier, NeuralNetRegressor])
def test_dtype_auto_follows_the_precision_of_X_and_an_explicit_dtype_wins(cls):
    X = np.linspace(0, 1, 20).reshape(-1, 2)
    y = np.arange(10) % 2
    assert cls().dtype == "auto"
    fitted = {
        (dtype, X_dtype): cls((4,), max_epochs=2, dtype=dtype, random_state=0)
        .fit(X.astype(X_dtype), y)
        .model_.dtype
        for dtype in ("auto", "float32", "float64")
        for X_dtype in (np.float32, np.float64, np.int64)
    }
    assert fitted == {
        ("auto", np.float32): np.float32,
        ("auto", np.float64): np.float64,
        ("auto", np.int64): np.float64,
        **{("float32", t): np.float32 for t in (np.float32, np.float64, np.int64)},
        **{("float64", t): np.float64 for t in (np.float32, np.float64, np.int64)},
    }


class _Counter(nc.callbacks.Callback):
    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.epochs = []

    def on_epoch_end(self, model, epoch, logs):
        self.epochs.append((epoch, logs["loss"]))
        if self.stop_after is not None and len(self.epochs) >= self.stop_after:
            model.stop_training = True


def test_callbacks_parameter_reaches_fit_and_is_cloned_with_the_estimator(iris):
    from sklearn.base import clone

    X, y = iris
    given = _Counter(stop_after=3)
    clf = NeuralNetClassifier(**FAST, max_epochs=50, callbacks=[given])
    assert clf.get_params()["callbacks"] == [given]
    copy = clone(clf)
    assert copy.callbacks[0] is not given and isinstance(copy.callbacks[0], _Counter)
    copy.fit(X, y)
    # the callback saw every epoch with the same loss the estimator recorded, and stopped it
    assert [loss for _, loss in copy.callbacks[0].epochs] == copy.loss_curve_
    assert copy.n_iter_ == 3 and given.epochs == []
    assert "callbacks" in repr(copy)


def test_callbacks_parameter_rejects_what_is_not_a_callback():
    with pytest.raises(ValueError, match=r"callbacks to be None or a list.*Received: callbacks="):
        NeuralNetRegressor(callbacks=[print]).fit([[0.0], [1.0]], [0.0, 1.0])


def test_saved_estimator_does_not_store_its_callbacks(tmp_path, iris):
    X, y = iris
    clf = NeuralNetClassifier(**FAST, max_epochs=2, callbacks=[_Counter()]).fit(X, y)
    assert nc.load(nc.save(clf, tmp_path / "m")).callbacks is None


def test_random_state_makes_fits_reproducible(iris):
    X, y = iris
    a = NeuralNetClassifier(**FAST, max_epochs=10).fit(X, y).predict_proba(X)
    b = NeuralNetClassifier(**FAST, max_epochs=10).fit(X, y).predict_proba(X)
    c = NeuralNetClassifier(**dict(FAST, random_state=1), max_epochs=10).fit(X, y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c.predict_proba(X))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hidden_layer_sizes": (0,)}, r"hidden_layer_sizes.*Received: hidden_layer_sizes=\(0,\)"),
        ({"activation": "wiggle"}, "Unknown activation 'wiggle'"),
        ({"optimizer": "magic"}, "Expected optimizer to be one of adam.*optimizer='magic'"),
        ({"dropout": 1.5}, r"dropout to be a number >= 0 and < 1. Received: dropout=1.5"),
        ({"max_epochs": 0}, "max_epochs to be an integer >= 1"),
        ({"batch_size": "big"}, "batch_size"),
        ({"learning_rate": -1}, "learning_rate to be a number > 0"),
        ({"dtype": "float16"}, "dtype 'auto', 'float32' or 'float64'"),
        ({"kernel_initializer": "nope"}, "kernel_initializer"),
    ],
)
def test_bad_hyperparameters_are_named_in_the_error(params, message):
    with pytest.raises(ValueError, match=message):
        NeuralNetRegressor(**params).fit([[0.0], [1.0]], [0.0, 1.0])


def test_divergence_is_an_error_not_nan_predictions():
    X = np.array([[0.0], [1.0], [2.0]])
    reg = NeuralNetRegressor(
        (4,), optimizer="sgd", learning_rate=1e6, momentum=0.0, standardize=False, random_state=0
    )
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="Training diverged"):
        reg.fit(X, [0.0, 1e6, 2e6])
