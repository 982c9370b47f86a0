"""ONNX export checked by onnxruntime, and ONNX import of what torch and skl2onnx write."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import neurocloud as nc
from neurocloud.export.onnx_export import ACTIVATIONS
from neurocloud.export.onnx_import import UnsupportedOnnxError

ACTIVATION_NAMES = nc.activations.available()
# onnxruntime's CPU provider has no float64 kernel for these (the graph is valid ONNX).
NO_FLOAT64_KERNEL = {"elu", "gelu", "softplus"}


def run(path, x: np.ndarray, name: str = "x") -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: x})[0]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    # wide range: large inputs exercise the stable forms (softplus, sigmoid, softmax)
    return rng.normal(scale=4.0, size=(33, 3))


def every_layer_network(activation: str, X: np.ndarray, dtype: str = "float32") -> nc.Sequential:
    """Normalization, Dense with the activation, Dropout, Activation layer, Dense without bias."""
    return nc.Sequential(
        [
            nc.layers.Normalization().adapt(X),
            nc.layers.Dense(6, activation=activation),
            nc.layers.Dropout(0.4),
            nc.layers.Activation(activation),
            nc.layers.Dense(2, use_bias=False),
            nc.layers.Dense(3, activation=activation),
        ],
        input_dim=X.shape[1],
        seed=3,
        dtype=dtype,
    )


def test_every_engine_activation_has_an_onnx_emitter():
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_onnxruntime_matches_predict_for_every_layer_and_activation(activation, data, tmp_path):
    model = every_layer_network(activation, data)
    path = nc.export.onnx(model, tmp_path / "m.onnx")
    x = data.astype(np.float32)
    out = run(path, x)
    assert out.dtype == np.float32
    assert out.shape == (len(x), 3)
    assert np.max(np.abs(out - model.predict(x))) <= 1e-5
    # the batch dimension is symbolic: one row works as well as 33
    assert np.max(np.abs(run(path, x[:1]) - model.predict(x[:1]))) <= 1e-5


@pytest.mark.parametrize("activation", sorted(set(ACTIVATION_NAMES) - NO_FLOAT64_KERNEL))
def test_float64_models_export_double_tensors(activation, data, tmp_path):
    model = every_layer_network(activation, data, dtype="float64")
    out = run(nc.export.onnx(model, tmp_path / "m.onnx"), data)
    assert out.dtype == np.float64
    # LeakyRelu's alpha is a float32 attribute in ONNX, hence not 1e-12
    assert np.max(np.abs(out - model.predict(data))) <= 1e-9


def test_graph_records_opset_names_batch_dimension_and_signature(data, tmp_path):
    model = every_layer_network("relu", data)
    model_dir = nc.save(
        model,
        tmp_path / "model",
        input_name="features",
        output_name="scores",
        feature_names=["a", "b", "c"],
    )
    path = nc.export.onnx(model_dir, tmp_path / "m.onnx", opset=13)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 13)]
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert (graph_input.name, graph_output.name) == ("features", "scores")
    dims = graph_input.type.tensor_type.shape.dim
    assert (dims[0].dim_param, dims[1].dim_value) == ("batch", 3)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["neurocloud.signature"])["feature_names"] == ["a", "b", "c"]
    assert {n.op_type for n in proto.graph.node} >= {"Sub", "Mul", "Gemm", "MatMul", "Relu"}
    x = data.astype(np.float32)
    assert np.max(np.abs(run(path, x, "features") - model.predict(x))) <= 1e-5


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opsets_that_onnxruntime_reads(opset, data, tmp_path):
    model = every_layer_network("gelu", data)
    path = nc.export.onnx(model, tmp_path / "m.onnx", opset=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset
    x = data.astype(np.float32)
    assert np.max(np.abs(run(path, x) - model.predict(x))) <= 1e-5


@pytest.mark.parametrize("opset", [12, 10_000, "17", True])
def test_bad_opset_is_named(opset, tmp_path):
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    with pytest.raises(
        ValueError,
        match=r"opset to be an integer >= 13 and <= \d+\. Received: opset=.*newest opset",
    ):
        nc.export.onnx(model, tmp_path / "m.onnx", opset=opset)


def test_unbuilt_model_and_foreign_object_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unbuilt"):
        nc.export.onnx(nc.Sequential([nc.layers.Dense(1)]), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="received dict"):
        nc.export.onnx({}, tmp_path / "m.onnx")


# --- import ------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_import_reads_back_our_export(activation, data, tmp_path):
    model = every_layer_network(activation, data)
    again = nc.import_onnx(nc.export.onnx(model, tmp_path / "m.onnx"))
    assert again.dtype == np.float32
    assert np.max(np.abs(again.predict(data) - model.predict(data))) <= 1e-6


def torch_to_onnx(module, path, **options) -> None:
    """``torch.onnx.export`` with ``dynamo=False``: the TorchScript exporter needs no
    onnxscript and works offline. It is deprecated in torch 2.13 and says so several times;
    those notices are torch's business, so they are silenced for this call only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (torch.zeros(2, 3),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            **options,
        )


def torch_network(kind: str) -> torch.nn.Sequential:
    nn = torch.nn
    torch.manual_seed(0)
    hidden = {
        "relu": nn.ReLU(),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
        "leaky_relu": nn.LeakyReLU(),
        "elu": nn.ELU(),
        "softplus": nn.Softplus(),
        "gelu": nn.GELU(),
    }[kind]
    return nn.Sequential(
        nn.Linear(3, 8), hidden, nn.Dropout(0.2), nn.Linear(8, 4), nn.Softmax(dim=-1)
    ).eval()


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize(
    "kind", ["relu", "sigmoid", "tanh", "leaky_relu", "elu", "softplus", "gelu"]
)
def test_import_torch_onnx_export(kind, opset, data, tmp_path):
    module = torch_network(kind)
    path = tmp_path / "torch.onnx"
    torch_to_onnx(module, path, opset_version=opset, dynamic_axes={"x": {0: "batch"}})
    model = nc.import_onnx(path)
    with torch.no_grad():
        expected = module(torch.from_numpy(data.astype(np.float32))).numpy()
    assert np.max(np.abs(model.predict(data) - expected)) <= 1e-5
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Gemm" in ops
    if kind == "gelu":  # opset 20 has a Gelu operator; before it, torch writes the Erf form
        assert ("Gelu" in ops) == (opset >= 20) and ("Erf" in ops) == (opset < 20)


@pytest.fixture(scope="module")
def sklearn_data():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


def fit_quietly(estimator, X, y):
    """Fit a scikit-learn estimator, ignoring its convergence warnings and spurious FP flags.

    Some OpenBLAS kernels leave the "invalid" floating-point flag raised after a product of
    finite inputs, which NumPy then reports as ``RuntimeWarning: invalid value encountered in
    matmul`` (numpy/numpy#24067); under warnings-as-errors it fails a fit now and then. The
    callers check the fitted estimator's predictions are finite, so a real NaN still fails.
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return estimator.fit(X, y)


def sklearn_output(method, X) -> np.ndarray:
    """A scikit-learn prediction, computed past the same spurious flags, checked finite."""
    with np.errstate(all="ignore"):
        out = method(X)
    assert np.all(np.isfinite(out)), f"scikit-learn's {method.__name__} gave non-finite values"
    return out


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_import_skl2onnx_mlp_regressor(activation, sklearn_data):
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    X, y = sklearn_data
    est = fit_quietly(
        MLPRegressor(hidden_layer_sizes=(7, 5), activation=activation, max_iter=30, random_state=0),
        X,
        y,
    )
    proto = to_onnx(est, X[:1])
    assert {"MatMul", "Add"} <= {n.op_type for n in proto.graph.node}
    model = nc.import_onnx(proto.SerializeToString())
    assert np.max(np.abs(model.predict(X)[:, 0] - sklearn_output(est.predict, X))) <= 1e-4


@pytest.mark.parametrize("zipmap", [False, True])
def test_import_skl2onnx_mlp_classifier_probabilities(zipmap, sklearn_data):
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    X, y = sklearn_data
    est = fit_quietly(MLPClassifier(hidden_layer_sizes=(6,), max_iter=50, random_state=0), X, y)
    proto = to_onnx(est, X[:1], options={"zipmap": zipmap})
    if zipmap:  # ZipMap turns probabilities into dictionaries: not a tensor we can compute
        with pytest.raises(UnsupportedOnnxError, match=r"'ZipMap' \(domain ai.onnx.ml\)"):
            nc.import_onnx(proto)
        return
    model = nc.import_onnx(proto)  # picks "probabilities" among the outputs
    assert model.layers[-1].activation.name == "softmax"
    assert np.max(np.abs(model.predict(X) - sklearn_output(est.predict_proba, X))) <= 1e-5
    with pytest.raises(UnsupportedOnnxError, match="'ArgMax'"):
        nc.import_onnx(proto, output="label")
    with pytest.raises(ValueError, match=r"output to be one of \['label', 'probabilities'\]"):
        nc.import_onnx(proto, output="nope")


def single_op_model(node, initializers=(), opset=17) -> bytes:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (single_op_model(helper.make_node("Exp", ["x"], ["y"])), r"operator 'Exp'"),
        (
            single_op_model(helper.make_node("Gelu", ["x"], ["y"], approximate="tanh"), opset=20),
            r"'Gelu'.*tanh approximation",
        ),
        (
            single_op_model(helper.make_node("Softmax", ["x"], ["y"], axis=0)),
            r"'Softmax'.*axis=0",
        ),
        (
            single_op_model(helper.make_node("MatMul", ["x", "x"], ["y"])),
            r"'MatMul'.*computed, expected a constant weight",
        ),
        (
            single_op_model(
                helper.make_node("Gemm", ["w", "x"], ["y"]),
                [numpy_helper.from_array(np.ones((4, 4), np.float32), "w")],
            ),
            r"'Gemm'.*expected x @ B \+ C",
        ),
    ],
)
def test_unsupported_graphs_are_refused_naming_the_operator(model, message):
    with pytest.raises(UnsupportedOnnxError, match=message):
        nc.import_onnx(model)


def test_torch_batchnorm_and_branches_are_refused(tmp_path):
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3)

        def forward(self, x):
            return x + self.linear(x)

    cases = [
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()), "'BatchNormalization'"),
        (Residual(), "feeds operator 'Gemm'.*, operator 'Add'"),
    ]
    for module, message in cases:
        path = tmp_path / "m.onnx"
        torch_to_onnx(module.eval(), path)
        with pytest.raises(UnsupportedOnnxError, match=message):
            nc.import_onnx(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.onnx"):
        nc.import_onnx(tmp_path / "nothing.onnx")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_default_leaky_relu_and_elu_round_trip(dtype, data, tmp_path):
    leaky = {"name": "leaky_relu", "config": {"negative_slope": 0.2}}
    elu = {"name": "elu", "config": {"alpha": 0.5}}
    model = nc.Sequential(
        [nc.layers.Dense(5, leaky), nc.layers.Activation(elu), nc.layers.Dense(2, elu)],
        input_dim=3,
        seed=1,
        dtype=dtype,
    )
    again = nc.import_onnx(nc.export.onnx(model, tmp_path / "m.onnx"))
    assert again.get_config()["layers"] == model.get_config()["layers"]
    assert np.array_equal(again.predict(data), model.predict(data))
    # a slope written by another exporter as float32 is read as its shortest decimal
    node = helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.3)
    layer = nc.import_onnx(single_op_model(node)).layers[0]
    assert layer.activation.negative_slope == 0.3
