"""``neurocloud train`` and the reusable training job behind it."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import neurocloud as nc
from neurocloud.artifact import load_artifact
from neurocloud.cli import main
from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor
from neurocloud.train_and_save import train_job


def _train(*args: str):
    return CliRunner().invoke(main, ["train", *args])


def test_train_iris_writes_artifact_plot_and_card(tmp_path):
    out = tmp_path / "models" / "iris"
    result = _train(
        "--data", "iris", "--hidden", "16", "--epochs", "60", "--lr", "0.02", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "iris (150 rows, 4 features, classification with 3 classes)" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("validation (30 rows)"))
    accuracy = float(line.split("accuracy ")[1].split(",")[0])
    assert accuracy > 0.8
    # the model directory holds only the artifact (with the optimizer's state, to resume
    # training); the loss curve lies beside it
    assert sorted(p.name for p in out.iterdir()) == [
        "card.json",
        "model.json",
        "optimizer.safetensors",
        "weights.safetensors",
    ]
    assert (tmp_path / "models" / "iris-loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((out / "card.json").read_text())
    assert card["dataset"] == "iris" and card["task"] == "classification"
    assert card["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert card["metrics"]["n_validation"] == 30 and card["training"]["hidden_layer_sizes"] == [16]
    # the whole curves, which the model page draws, not only their first/last/best
    epochs = card["history"]["epochs"]
    assert len(card["curves"]["loss"]) == epochs and epochs > 1
    assert len(card["curves"]["validation_accuracy"]) == epochs
    assert card["curves"]["validation_accuracy"][-1] == pytest.approx(accuracy, abs=1e-4)
    artifact = load_artifact(out)
    assert artifact.metadata["model"]["layers"][0]["class_name"] == "Normalization"
    assert artifact.metadata["feature_names"][0] == "sepal length (cm)"
    assert artifact.metadata["output_names"] == ["setosa", "versicolor", "virginica"]
    # served raw inputs are standardised by the saved layer: probabilities come out
    proba = artifact.model.predict([[5.1, 3.5, 1.4, 0.2]])
    assert proba.shape == (1, 3) and abs(proba.sum() - 1) < 1e-5 and proba.argmax() == 0
    assert isinstance(nc.load(out), NeuralNetClassifier)


def test_train_seed_regression_prints_r2_and_rmse(tmp_path):
    out = tmp_path / "seed"
    result = _train(
        "--data",
        "seed",
        "--hidden",
        "8",
        "--epochs",
        "200",
        "--lr",
        "0.05",
        "--validation-fraction",
        "0",
        "--plot",
        str(tmp_path / "curve.png"),
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "training (4 rows): train_r2 " in result.output and "train_rmse" in result.output
    assert (tmp_path / "curve.png").is_file()
    assert isinstance(nc.load(out), NeuralNetRegressor)


def test_train_csv_with_target_column(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    rows = "\n".join(f"{a:.4f},{'yes' if a + b > 0 else 'no'},{b:.4f}" for a, b in X)
    data = tmp_path / "points.csv"
    data.write_text("a,label,b\n" + rows + "\n")
    out = tmp_path / "points"
    result = _train(
        "--data",
        str(data),
        "--target",
        "label",
        "--hidden",
        "8,4",
        "--epochs",
        "80",
        "--lr",
        "0.02",
        "--batch-size",
        "16",
        "--optimizer",
        "rmsprop",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "points (60 rows, 2 features, classification with 2 classes)" in result.output
    loaded = nc.load(out)
    assert loaded.classes_.tolist() == ["no", "yes"] and loaded.hidden_layer_sizes == (8, 4)
    assert load_artifact(out).metadata["feature_names"] == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "mnist"], "neither a built-in data set"),
        (["--data", "iris", "--target", "species"], "--target and --task apply to CSV files"),
        (["--data", "iris", "--hidden", "0,4"], "positive integers separated by commas"),
        (["--data", "iris", "--batch-size", "-3"], "positive integer or 'auto'"),
        (["--data", "iris", "--optimizer", "magic"], "'magic' is not one of"),
    ],
)
def test_train_usage_errors(tmp_path, args, message):
    result = _train(*args, "-o", str(tmp_path / "m"))
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "m").exists()


def test_train_csv_errors_are_reported_without_traceback(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("a,b,y\n1,2,3\n4,x,6\n")
    result = _train("--data", str(data), "--target", "y", "-o", str(tmp_path / "m"))
    assert (
        result.exit_code == 1 and "line 3, column 'b': 'x' is not a finite number" in result.output
    )
    result = _train("--data", str(data), "--target", "z", "-o", str(tmp_path / "m"))
    assert "no column named 'z' for target; the columns are: a, b, y" in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an uncaught error


def test_train_job_returns_model_metrics_and_history():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    y = X @ [2.0, -1.0, 0.5] + 10
    model, metrics, history = train_job(X, y, "regression", hidden=(16,), epochs=150, lr=0.02)
    assert isinstance(model, NeuralNetRegressor) and model.hidden_layer_sizes == (16,)
    assert metrics["n_train"] == 80 and metrics["n_validation"] == 20
    assert metrics["r2"] > 0.9 and metrics["rmse"] > 0 and metrics["epochs"] == len(history["loss"])
    result = train_job(X, y > 10, "classification", hidden=(8,), epochs=20, early_stopping=True)
    assert len(result.history["validation_score"]) == result.metrics["epochs"]
    assert result.model.classes_.tolist() == [False, True]


def test_train_job_rejects_bad_arguments():
    with pytest.raises(ValueError, match="task='clustering'"):
        train_job(np.zeros((4, 1)), np.zeros(4), "clustering")
    with pytest.raises(ValueError, match=r"validation_fraction=1\.5"):
        train_job(np.zeros((4, 1)), np.zeros(4), "regression", validation_fraction=1.5)
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        train_job(np.zeros((4, 1)), np.zeros(3), "regression")


def test_train_job_clears_its_callbacks_when_fit_raises(monkeypatch):
    # The progress reporter (and the stream it holds) must not stay on the estimator.
    seen = []

    def failing_fit(self, X, y, sample_weight=None, **kwargs):
        seen.append(self)
        assert self.callbacks  # the reporter is set while fitting
        raise ValueError("Training diverged")

    monkeypatch.setattr(NeuralNetRegressor, "_fit", failing_fit)
    with pytest.raises(ValueError, match="Training diverged"):
        train_job(np.zeros((8, 1)), np.arange(8.0), "regression", epochs=2)
    assert seen and seen[0].callbacks is None
