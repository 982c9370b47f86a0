"""SageMaker packages, tested as their consumers use them: the PyTorch serving container's
four hooks called in order on the extracted archive, and our own container's model folder."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile

import numpy as np
import pytest
from conftest import SEED_X, SEED_Y, article_network

import neurocloud as nc


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory):
    """The article's network, trained a little, saved with the article's input name ``x``."""
    model = article_network(seed=0)
    model.fit(SEED_X, SEED_Y, optimizer=nc.optim.Adam(lr=0.05), epochs=200)
    return nc.save(model, tmp_path_factory.mktemp("seed") / "seed")


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory):
    """Three named features, standardised, softmax over four classes, input name ``features``."""
    X = np.random.default_rng(0).normal(size=(40, 3)) * [1.0, 10.0, 100.0]
    model = nc.Sequential(
        [
            nc.layers.Normalization().adapt(X),
            nc.layers.Dense(8, activation="gelu"),
            nc.layers.Dense(4, activation="softmax"),
        ],
        input_dim=3,
        seed=2,
    )
    return nc.save(
        model,
        tmp_path_factory.mktemp("wide") / "wide",
        input_name="features",
        output_name="probabilities",
        feature_names=["a", "b", "c"],
    )


def extract(package, into):
    with tarfile.open(package) as tar:
        tar.extractall(into, filter="data")
    return into


def import_by_path(path, name):
    """What the PyTorch serving toolkit does with SAGEMAKER_PROGRAM: import code/inference.py."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pytorch_container(seed_dir, wide_dir, tmp_path_factory):
    """Each package extracted as SageMaker does, its hooks imported, its model loaded."""
    loaded = {}
    for name, model_dir in (("seed", seed_dir), ("wide", wide_dir)):
        root = tmp_path_factory.mktemp(f"opt-ml-{name}")
        package = nc.export.sagemaker_pytorch(model_dir, root / "model.tar.gz")
        model_root = extract(package, root / "model")
        hooks = import_by_path(model_root / "code" / "inference.py", f"inference_{name}")
        loaded[name] = (hooks, hooks.model_fn(str(model_root)), nc.load(model_dir), model_root)
    return loaded


def invoke(hooks, model, body, content_type, accept):
    """One request through the four hooks, in the order the container calls them."""
    data = hooks.input_fn(body, content_type)
    prediction = hooks.predict_fn(data, model)
    return hooks.output_fn(prediction, accept)


def decode(body, content_type):
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    if content_type == "text/csv":
        return np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
    return json.loads(body)


def test_pytorch_package_layout(pytorch_container):
    *_, model_root = pytorch_container["seed"]
    names = sorted(str(p.relative_to(model_root)) for p in model_root.rglob("*") if p.is_file())
    assert names == [
        "code/inference.py",
        "code/requirements.txt",
        "model.pt",
        "signature.json",
    ]
    # the container pip-installs this at start: it must hold only what its image already has
    assert (model_root / "code" / "requirements.txt").read_text().split() == ["numpy>=1.19"]
    # the hooks are standalone: the container has torch and NumPy, not neurocloud
    source = (model_root / "code" / "inference.py").read_text()
    assert "neurocloud" not in "".join(
        line for line in source.splitlines() if line.startswith(("import", "from"))
    )


def test_article_request_through_the_four_hooks(pytorch_container):
    hooks, model, reference, _ = pytorch_container["seed"]
    body, content_type = invoke(
        hooks, model, json.dumps({"x": [4.5]}), "application/json", "application/json"
    )
    assert content_type == "application/json"
    answer = json.loads(body)
    assert list(answer) == ["y"]
    assert abs(answer["y"][0][0] - float(reference.predict([[4.5]])[0, 0])) <= 1e-5


@pytest.mark.parametrize("accept", ["application/json", "text/csv", "application/x-npy", None])
@pytest.mark.parametrize("request_type", ["json", "instances", "inputs", "list", "npy", "csv"])
def test_every_content_type_both_ways(pytorch_container, request_type, accept):
    hooks, model, reference, _ = pytorch_container["wide"]
    X = np.random.default_rng(5).normal(size=(7, 3)) * [1.0, 10.0, 100.0]
    bodies = {
        "json": (json.dumps({"features": X.tolist()}), "application/json"),
        "instances": (json.dumps({"instances": X.tolist()}), "application/json; charset=utf-8"),
        "inputs": (json.dumps({"inputs": {"features": X.tolist()}}), "application/json"),
        "list": (json.dumps(X.tolist()).encode(), "application/json"),
        "csv": ("\n".join(",".join(str(v) for v in row) for row in X), "text/csv"),
    }
    if request_type == "npy":
        buffer = io.BytesIO()
        np.save(buffer, X.astype(np.float32))
        bodies["npy"] = (buffer.getvalue(), "application/x-npy")
    body, content_type = invoke(hooks, model, *bodies[request_type], accept)
    assert content_type == (accept or "application/json")
    decoded = decode(body, content_type)
    if content_type == "application/json":
        key = {
            "json": "probabilities",
            "instances": "predictions",
            "inputs": "outputs",
            "list": None,
        }.get(request_type, "predictions")
        decoded = decoded if key is None else decoded[key]
    assert np.max(np.abs(np.asarray(decoded) - reference.predict(X))) <= 1e-5


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ('{"x": [1, 2, 3]}', "application/json", "unknown key 'x'.*'features'"),
        ('{"features": [1, 2]}', "application/json", r"expected shape \(n, 3\).*\(2,\)"),
        ('{"a": 1, "b": 2}', "application/json", r"keys \['a', 'b'\]"),
        ("1,2,x", "text/csv", "text/csv body: expected rows of numbers"),
        ("1,2,3", "application/xml", "Unsupported type 'application/xml'"),
        ('{"features": [1, 2, NaN]}', "application/json", "finite numbers"),
    ],
)
def test_bad_requests_say_what_was_wrong(pytorch_container, body, content_type, message):
    hooks, model, *_ = pytorch_container["wide"]
    with pytest.raises(ValueError, match=message):
        invoke(hooks, model, body, content_type, "application/json")


def test_pytorch_package_is_reproducible(seed_dir, tmp_path):
    first = nc.export.sagemaker_pytorch(seed_dir, tmp_path / "a.tar.gz").read_bytes()
    second = nc.export.sagemaker_pytorch(seed_dir, tmp_path / "b.tar.gz").read_bytes()
    assert first == second


def test_our_container_package_is_the_artifact_at_top_level(wide_dir, tmp_path):
    package = nc.export.sagemaker(wide_dir, tmp_path)
    assert package == tmp_path / "model.tar.gz"
    with tarfile.open(package) as tar:
        assert sorted(tar.getnames()) == ["card.json", "model.json", "weights.safetensors"]
    opt_ml_model = extract(package, tmp_path / "opt" / "ml" / "model")
    X = np.random.default_rng(1).normal(size=(5, 3))
    assert np.array_equal(nc.load(opt_ml_model).predict(X), nc.load(wide_dir).predict(X))


def test_broken_model_directory_is_refused_before_packaging(tmp_path):
    broken = nc.save(article_network(), tmp_path / "broken")
    (broken / "weights.safetensors").write_bytes(b"\x00" * 10)
    for package in (nc.export.sagemaker, nc.export.sagemaker_pytorch):
        with pytest.raises(nc.artifact.ArtifactError, match=r"weights\.safetensors"):
            package(broken, tmp_path / "out.tar.gz")
    assert not (tmp_path / "out.tar.gz").exists()
