"""TorchScript export: the file runs in plain PyTorch with our outputs; the state dict loads
into an ``nn.Sequential`` written by hand."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import article_network

import neurocloud as nc
from neurocloud.cli import main


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(3).normal(scale=4.0, size=(25, 3))


def network(activation: str, X: np.ndarray, dtype: str = "float32") -> nc.Sequential:
    return nc.Sequential(
        [
            nc.layers.Normalization().adapt(X),
            nc.layers.Dense(5, activation=activation),
            nc.layers.Dropout(0.5),
            nc.layers.Activation(activation),
            nc.layers.Dense(2, activation=activation, use_bias=False),
        ],
        input_dim=X.shape[1],
        seed=11,
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", nc.activations.available())
def test_torchscript_matches_predict(activation, dtype, data, tmp_path):
    model = network(activation, data, dtype)
    path = nc.export.torch(model, tmp_path / "model.pt")
    scripted = nc.export.load_torchscript(path)
    with torch.no_grad():
        out = scripted(torch.from_numpy(data.astype(dtype))).numpy()
    assert out.dtype == model.dtype
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    assert np.max(np.abs(out - model.predict(data))) <= tolerance
    # eval mode: Dropout is the identity, so two calls agree exactly
    with torch.no_grad():
        again = scripted(torch.from_numpy(data.astype(dtype))).numpy()
    assert np.array_equal(out, again)


def test_state_dict_loads_into_a_hand_written_sequential(tmp_path):
    model = article_network(seed=5)
    path = nc.export.torch(model, tmp_path / "seed.pt")
    nn = torch.nn
    by_hand = nn.Sequential(
        nn.Linear(1, 2), nn.Sigmoid(), nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1)
    )
    state = torch.load(nc.export.state_dict_path(path), weights_only=True)
    by_hand.load_state_dict(state, strict=True)
    x = np.array([[0.5], [1.5], [4.5]], dtype=np.float32)
    with torch.no_grad():
        out = by_hand(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(out - model.predict(x))) <= 1e-6


def test_torch_module_keeps_normalization_as_buffers(data):
    module = nc.export.torch_module(network("relu", data))
    state = module.state_dict()
    assert {"0.mean", "0.inv_scale", "1.weight", "1.bias", "5.weight"} <= set(state)
    assert not module.training


def test_cli_export_writes_every_format(tmp_path, data):
    model_dir = nc.save(network("tanh", data), tmp_path / "model")
    runner = CliRunner()
    outputs = {
        "onnx": tmp_path / "m.onnx",
        "torch": tmp_path / "m.pt",
        "sagemaker-pytorch": tmp_path / "pt.tar.gz",
        "sagemaker": tmp_path / "nc.tar.gz",
    }
    for fmt, out in outputs.items():
        result = runner.invoke(main, ["export", str(model_dir), "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert f"wrote {out}" in result.output
        assert out.stat().st_size > 0
    assert (tmp_path / "m.state_dict.pt").is_file()
    # a directory as -o gets the usual name inside
    result = runner.invoke(
        main, ["export", str(model_dir), "--format", "onnx", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0 and (tmp_path / "model.onnx").is_file()


def test_cli_export_errors_are_clear(tmp_path):
    runner = CliRunner()
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    result = runner.invoke(main, ["export", str(not_a_model), "--format", "onnx", "-o", "x"])
    assert result.exit_code == 1
    assert "model.json: file is missing" in result.output
    assert "Traceback" not in result.output
    model_dir = nc.save(article_network(), tmp_path / "m")
    result = runner.invoke(
        main, ["export", str(model_dir), "--format", "torch", "--opset", "17", "-o", "x"]
    )
    assert result.exit_code == 2 and "--opset" in result.output
    result = runner.invoke(main, ["export", str(model_dir), "--format", "keras"])
    assert result.exit_code == 2 and "'keras' is not one of" in result.output


@pytest.mark.parametrize(("fmt", "module"), [("onnx", "onnx"), ("torch", "torch")])
def test_cli_export_names_the_missing_extra(fmt, module, tmp_path, monkeypatch):
    model_dir = nc.save(article_network(), tmp_path / "m")
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    result = CliRunner().invoke(
        main, ["export", str(model_dir), "--format", fmt, "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert f"pip install 'neurocloud[{module}]'" in result.output
