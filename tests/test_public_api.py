"""The public API in DESIGN.md is a contract: its example runs verbatim and its names exist."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

import neurocloud as nc
from neurocloud.cli import main


def test_design_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X = np.array([[0.5], [1.5], [2.5], [3.5]])
    y = np.array([[0.75], [1.25], [2.25], [3.75]])
    opt = nc.optim.SGD(lr=0.01)

    model = nc.Sequential(
        [nc.layers.Dense(2, activation="sigmoid"),
         nc.layers.Dense(2, activation="sigmoid"),
         nc.layers.Dense(1)],                 # linear output for regression
        input_dim=1, seed=0)                   # dtype="float32" by default, "float64" allowed
    history = model.fit(X, y, loss="mse", optimizer=nc.optim.SGD(lr=0.01), epochs=1000,
                        batch_size=None)       # None = full batch; history.history["loss"]
    assert len(history.history["loss"]) == 1000
    assert model.predict(X).shape == (4, 1)

    out = model.forward(X, training=True)
    grad = nc.losses.get("mse").gradient(y, out)
    grad_x = model.backward(grad)               # fills gradients, returns d loss / d X
    assert grad_x.shape == X.shape
    before = [p.copy() for p in model.parameters()]
    opt.step(model.parameters(), model.gradients())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.parameters()))

    nc.save(model, "models/seed")
    model = nc.load("models/seed")
    assert model.predict(X).dtype == np.float32


def test_named_components_exist():
    assert {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu",
            "softmax"} <= set(nc.activations.available())
    assert {"mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
            "sparse_categorical_crossentropy"} <= set(nc.losses.available())
    nc.layers.Dense(3, activation="relu", kernel_initializer="he_normal", use_bias=False)
    nc.layers.Dropout(0.5)
    nc.layers.Activation("tanh")
    nc.optim.SGD(lr=0.1, momentum=0.9, nesterov=True)
    for cls in (nc.optim.Adam, nc.optim.AdamW, nc.optim.RMSprop, nc.optim.LBFGS):
        cls()
    assert nc.sklearn.NeuralNetRegressor and nc.sklearn.NeuralNetClassifier
    for name in ("seed", "digits", "iris", "wine", "breast_cancer", "diabetes"):
        data = nc.datasets.load(name)
        assert len(data.X) == len(data.y) > 0


def test_command_line_commands_exist():
    commands = set(main.list_commands(None))
    assert {"train", "predict", "serve", "export", "demo", "explain"} <= commands
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
