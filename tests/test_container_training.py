"""SageMaker's training contract, run in-process against a temporary /opt/ml: hyperparameters
parsed from strings with clear errors, channels, model and failure outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.cloud import container_training
from neurocloud.cloud.hyperparameters import HyperparameterError, parse


def write_csv(path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def layout(root, hyperparameters, channels=("train",), config=None):
    """``root`` laid out as SageMaker lays out /opt/ml; returns the environment to run in."""
    config_dir = root / "input" / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    if config is None:
        config = {
            name: {
                "ContentType": "text/csv",
                "TrainingInputMode": "File",
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None",
            }
            for name in channels
        }
    (config_dir / "inputdataconfig.json").write_text(json.dumps(config))
    return {container_training.ROOT_VARIABLE: str(root)}


@pytest.fixture(scope="module")
def iris_rows():
    from sklearn.datasets import load_iris

    data = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = np.array(["setosa", "versicolor", "virginica"])[data.target]
    order = np.random.default_rng(0).permutation(len(labels))
    return names, [[*data.data[i].round(2), labels[i]] for i in order]


def test_classification_job_with_two_files_and_a_validation_channel(tmp_path, iris_rows, capsys):
    names, rows = iris_rows
    header = [*names, "species"]
    write_csv(tmp_path / "input/data/train/part-0.csv", header, rows[:60])
    write_csv(tmp_path / "input/data/train/part-1.csv", header, rows[60:120])
    write_csv(tmp_path / "input/data/validation/valid.csv", header, rows[120:])
    env = layout(
        tmp_path,
        # as the SageMaker SDK's framework estimators send them: JSON-encoded strings
        {
            "target": '"species"',
            "hidden": "16",
            "epochs": "150",
            "lr": "0.01",
            "activation": '"tanh"',
            "sagemaker_program": '"train.py"',
            "sagemaker_region": '"eu-west-1"',
        },
        channels=("train", "validation"),
    )
    assert container_training.main(env) == 0
    out = capsys.readouterr().out
    assert "train: 120 rows, 4 features, classification; validation: 30 rows" in out
    model_dir = tmp_path / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "card.json",
        "model.json",
        "optimizer.safetensors",
        "weights.safetensors",
    ]
    estimator = nc.load(model_dir)
    X = np.array([row[:4] for row in rows[120:]], dtype=float)
    y = np.array([row[4] for row in rows[120:]])
    metrics = json.loads((tmp_path / "output/data/metrics.json").read_text())
    assert metrics["validation_accuracy"] == pytest.approx(estimator.score(X, y))
    assert metrics["validation_accuracy"] >= 0.8
    assert f"validation_accuracy={metrics['validation_accuracy']:.6g}" in out
    metadata = json.loads((model_dir / "model.json").read_text())
    assert metadata["feature_names"] == names
    assert metadata["inputs"][0]["name"] == "x"
    card = json.loads((model_dir / "card.json").read_text())
    assert card["hyperparameters"]["target"] == '"species"'
    assert not (tmp_path / "output" / "failure").exists()


def test_regression_job_holds_out_rows_without_a_validation_channel(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 4, size=200)
    write_csv(
        tmp_path / "input/data/train/data.csv",
        ["x", "y"],
        [[round(v, 4), round(0.25 * v * v + 0.5, 4)] for v in x],
    )
    env = layout(
        tmp_path,
        {
            "epochs": "300",
            "hidden": "16,16",
            "lr": "0.01",
            "validation_fraction": "0.25",
            "seed": "3",
        },
    )
    assert container_training.main(env) == 0
    metrics = json.loads((tmp_path / "output/data/metrics.json").read_text())
    assert metrics["n_validation"] == 50 and metrics["n_train"] == 150
    assert metrics["r2"] > 0.9
    model = nc.load(tmp_path / "model")
    assert abs(float(model.predict([[2.0]])[0]) - 1.5) < 0.3


def run_failing(tmp_path, env) -> str:
    assert container_training.main(env) == 1
    return (tmp_path / "output" / "failure").read_text()


def test_bad_hyperparameters_are_all_reported(tmp_path):
    write_csv(tmp_path / "input/data/train/d.csv", ["a", "y"], [[1, 2], [2, 3]])
    env = layout(
        tmp_path,
        {
            "epochs": "ten",
            "hiden": "8",
            "activation": "swish",
            "lr": "-1",
            "early_stopping": "maybe",
        },
    )
    failure = run_failing(tmp_path, env)
    assert failure.startswith("Training failed: Invalid hyperparameters:")
    for expected in (
        "'epochs': Expected epochs to be an integer >= 1. Received: epochs='ten'",
        "unknown hyperparameter 'hiden'; expected one of",
        "'activation': Expected activation to be one of elu, gelu,",
        "'lr': Expected lr to be a number > 0. Received: lr=-1",
        "'early_stopping': Expected early_stopping to be true or false. Received: "
        "early_stopping='maybe'",
    ):
        assert expected in failure
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("config", "files", "message"),
    [
        ({"training": {}}, {}, "no 'train' channel; declared channels: ['training']"),
        (
            {"train": {"ContentType": "application/x-parquet"}},
            {},
            "ContentType 'application/x-parquet' is not supported; expected text/csv",
        ),
        ({"train": {"TrainingInputMode": "Pipe"}}, {}, "TrainingInputMode 'Pipe'"),
        ({"train": {}}, {}, "channel 'train': no data files in"),
        (
            {"train": {}},
            {"train/a.csv": "a,y\n1,2\n3\n"},
            "a.csv, line 3: expected 2 values (one per header column), received 1",
        ),
        (
            {"train": {}},
            {"train/a.csv": "a,y\n1,2\nx,3\n"},
            "a.csv, line 3, column 'a': 'x' is not a finite number",
        ),
        (
            {"train": {}},
            {"train/a.csv": "a,y\n1,2\n", "train/b.csv": "b,y\n1,2\n"},
            "b.csv: columns ['b'] differ from a.csv's ['a']",
        ),
        (
            {"train": {}, "validation": {}},
            {"train/a.csv": "a,y\n1,2\n2,3\n", "validation/v.csv": "z,y\n1,2\n"},
            "channel 'validation' has columns ['z']; the 'train' channel has ['a']",
        ),
    ],
)
def test_channel_problems_are_explained(tmp_path, config, files, message):
    for name, text in files.items():
        (tmp_path / "input/data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "input/data" / name).write_text(text)
    env = layout(tmp_path, {"epochs": "1"}, config=config)
    assert message in run_failing(tmp_path, env)


def test_missing_configuration_names_the_file(tmp_path):
    failure = run_failing(tmp_path, {container_training.ROOT_VARIABLE: str(tmp_path)})
    assert "input/config/inputdataconfig.json: missing" in failure
    (tmp_path / "input/config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "input/config/inputdataconfig.json").write_text("[1, 2")
    env = {container_training.ROOT_VARIABLE: str(tmp_path)}
    assert "not valid JSON" in run_failing(tmp_path, env)


def test_default_root_is_opt_ml():
    assert str(container_training.SageMakerPaths.from_env({}).model) == "/opt/ml/model"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"hidden": "64,32", "epochs": "5"}, {"hidden_layer_sizes": (64, 32), "max_epochs": 5}),
        (
            {"hidden_layer_sizes": "(8,)", "max_epochs": 3},
            {"hidden_layer_sizes": (8,), "max_epochs": 3},
        ),
        (
            {"learning_rate": '"0.05"', "random_state": "7"},
            {"learning_rate": 0.05, "random_state": 7},
        ),
        (
            {"early_stopping": "True", "standardize": "0"},
            {"early_stopping": True, "standardize": False},
        ),
        ({"batch_size": "auto", "dtype": "FLOAT64"}, {"batch_size": "auto", "dtype": "float64"}),
        (
            {"batch_size": "32", "task": "classification"},
            {"batch_size": 32, "task": "classification"},
        ),
        ({"sagemaker_job_name": '"x"', "sagemaker_submit_directory": "s3://b/k"}, {}),
    ],
)
def test_hyperparameters_parse_from_strings(raw, expected):
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"epochs": "0"}, "'epochs': Expected epochs to be an integer >= 1. Received: epochs=0"),
        ({"hidden": "8,-1"}, "Expected hidden to be positive integers separated by commas"),
        ({"validation_fraction": "1"}, "a number >= 0 and < 1. Received: validation_fraction=1"),
        ({"lr": "inf"}, "'lr': Expected lr to be a number > 0. Received: lr=inf"),
        ({"epochs": "3", "max_epochs": "4"}, "hyperparameter 'max_epochs' repeats 'epochs'"),
        ({"target": ""}, "'target': Expected target to be a column name. Received: target=''"),
        ({"epochs": [3]}, "Expected epochs to be an integer >= 1. Received: epochs=[3]"),
        ({"optimizer": "magic"}, "Expected optimizer to be one of adam, adamw, lbfgs"),
    ],
)
def test_bad_hyperparameters_say_what_was_expected(raw, message):
    with pytest.raises(HyperparameterError) as info:
        parse(raw)
    assert message in str(info.value)
