"""SageMaker packages, tested as their consumers use them: the PyTorch serving container's
four hooks called in order on the extracted archive, and our own container's model folder."""

from __future__ import annotations

import importlib.util
import io
import json
import re
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
        }.get(request_type, "probabilities")  # CSV and NPY: the output's name, as JSON
        decoded = decoded if key is None else decoded[key]
    assert np.max(np.abs(np.asarray(decoded) - reference.predict(X))) <= 1e-5


BAD_REQUESTS = [
    (
        '{"x": [1, 2, 3]}',
        "application/json",
        "application/json",
        400,
        "unknown key 'x'.*'features'",
    ),
    ('{"features": [1, 2]}', "application/json", "application/json", 400, r"\(n, 3\).*\(2,\)"),
    ('{"a": 1, "b": 2}', "application/json", "application/json", 400, r"keys \['a', 'b'\]"),
    ("1,2,x", "text/csv", "application/json", 400, "text/csv body: expected rows of numbers"),
    (
        "1,2,3",
        "application/xml",
        "application/json",
        415,
        "Unsupported Content-Type 'application/xml'",
    ),
    ("1,2,3", "text/csv", "image/png", 406, "Unsupported Accept 'image/png'"),
    ('{"features": [1, 2, NaN]}', "application/json", "application/json", 400, "finite numbers"),
    ('{"features": [1, 2', "application/json", "application/json", 400, "malformed JSON"),
    ('{"features": [[1, 2, 3], [4]]}', "application/json", "application/json", 400, "rectangular"),
    (
        '{"instances": [{"a": [1, 2, 3]}]}',
        "application/json",
        "application/json",
        400,
        r"instances\[0\] must be an object with the one input 'features'",
    ),
    (
        '{"inputs": {"b": [1, 2, 3]}}',
        "application/json",
        "application/json",
        400,
        r"inputs must be an object with the one input 'features'; received keys \['b'\]",
    ),
    (b"\xff\xfe", "text/csv", "application/json", 400, "expected UTF-8 text"),
    (b"PK\x03\x04", "application/x-npy", "application/json", 400, "expected an NPY array"),
]


@pytest.mark.parametrize(("body", "content_type", "accept", "status", "message"), BAD_REQUESTS)
def test_bad_requests_say_what_was_wrong(
    pytorch_container, body, content_type, accept, status, message
):
    hooks, model, *_ = pytorch_container["wide"]
    with pytest.raises(ValueError, match=message) as caught:
        invoke(hooks, model, body, content_type, accept)
    assert caught.value.status_code == status


def test_non_finite_outputs_are_422_for_json_and_carried_by_npy(pytorch_container):
    hooks, *_ = pytorch_container["seed"]
    prediction = {
        "outputs": np.array([[np.inf]], dtype=np.float32),
        "form": "x",
        "input_name": "x",
        "output_name": "y",
    }
    with pytest.raises(ValueError, match="NaN or infinity") as caught:
        hooks.output_fn(prediction, "application/json")
    assert caught.value.status_code == 422
    body, content_type = hooks.output_fn(prediction, "application/x-npy")
    assert np.isinf(decode(body, content_type)).all()


class ServingContext:
    """The parts of the model server's request context that SageMaker's toolkit uses."""

    def __init__(self, model_dir, headers):
        self.system_properties = {"model_dir": str(model_dir)}
        self.request_processor = [self]
        self.headers = headers
        self.status = (200, "OK")
        self.content_type = None

    def get_request_properties(self):
        return self.headers

    def set_response_status(self, code, phrase):
        self.status = (code, phrase)

    def set_response_content_type(self, index, content_type):
        self.content_type = content_type


@pytest.fixture
def toolkit(pytorch_container, monkeypatch):
    """SageMaker's inference toolkit (the Transformer its serving containers run) with the
    wide package's code/inference.py as the user module, imported the way it does."""
    from sagemaker_inference.transformer import Transformer

    *_, model_root = pytorch_container["wide"]
    monkeypatch.syspath_prepend(str(model_root / "code"))
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "inference.py")
    monkeypatch.delitem(sys.modules, "inference", raising=False)
    yield Transformer(), model_root
    sys.modules.pop("inference", None)


def test_sagemaker_toolkit_answers_a_request_and_a_client_error(toolkit):
    transformer, model_root = toolkit
    good = ServingContext(model_root, {"Content-Type": "text/csv", "Accept": "application/json"})
    [body] = transformer.transform([{"body": b"1,2,3\n"}], good)
    assert good.status == (200, "OK") and good.content_type == "application/json"
    assert len(json.loads(body)["probabilities"][0]) == 4

    checked = 0
    for request, content_type, accept, status, message in BAD_REQUESTS:
        raw = request.encode() if isinstance(request, str) else request
        if content_type in ("application/json", "text/csv"):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # the toolkit decodes text bodies itself, before our hooks run
        context = ServingContext(model_root, {"Content-Type": content_type, "Accept": accept})
        [answer] = transformer.transform([{"body": raw}], context)
        assert context.status[0] == status, (request, context.status)
        assert re.search(message, answer), answer
        checked += 1
    assert checked == len(BAD_REQUESTS) - 1


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


# One table of codec cases, run against our server and against the exported handler: the
# same request must get the same type of answer from both (q-values, JSON Lines, aliases).
def _csv(X):
    return "\n".join(",".join(repr(v) for v in row) for row in X.tolist()).encode()


def _npy(X):
    buffer = io.BytesIO()
    np.save(buffer, X.astype(np.float32))
    return buffer.getvalue()


CODEC_CASES = [
    # (content type, Accept, body of X, expected status, response type, JSON key)
    (
        "application/json",
        None,
        lambda X: json.dumps({"features": X.tolist()}).encode(),
        200,
        "application/json",
        "probabilities",
    ),
    (
        "application/json",
        "*/*",
        lambda X: json.dumps({"instances": X.tolist()}).encode(),
        200,
        "application/json",
        "predictions",
    ),
    (
        "application/json",
        "text/csv;q=0.5, application/x-npy",
        lambda X: json.dumps({"inputs": {"features": X.tolist()}}).encode(),
        200,
        "application/x-npy",
        None,
    ),
    (
        "application/json",
        "application/json;q=0.1, text/csv",
        lambda X: json.dumps(X.tolist()).encode(),
        200,
        "text/csv",
        None,
    ),
    (
        "application/json",
        "text/csv;q=0, */*",
        lambda X: json.dumps(X.tolist()).encode(),
        200,
        "application/json",
        "list",
    ),
    ("text/csv", "application/jsonlines", _csv, 200, "application/jsonlines", None),
    (
        "application/jsonlines",
        None,
        lambda X: "\n".join(json.dumps(r) for r in X.tolist()).encode(),
        200,
        "application/json",
        "probabilities",
    ),
    (
        "application/x-jsonlines",
        "text/csv;q=0.9, application/jsonl",
        lambda X: "\n".join(json.dumps({"features": r}) for r in X.tolist()).encode(),
        200,
        "application/jsonlines",
        None,
    ),
    (
        "application/x-npy",
        "application/json;q=0.9, text/html",
        _npy,
        200,
        "application/json",
        "probabilities",
    ),
    ("text/csv; charset=utf-8", "text/*", _csv, 200, "text/csv", None),
    ("application/json", "text/html", lambda X: json.dumps(X.tolist()).encode(), 406, None, None),
    ("text/plain", None, _csv, 415, None, None),
]


def _decoded(body, content_type, key):
    if content_type == "application/jsonlines":
        return np.array([json.loads(line) for line in body.decode().splitlines()])
    value = decode(body, content_type)
    if content_type == "application/json" and key != "list":
        value = value[key]
    return np.asarray(value)


@pytest.fixture(scope="module")
def served_wide(wide_dir):
    from starlette.testclient import TestClient

    from neurocloud.serve import create_app

    with TestClient(create_app(wide_dir)) as client:
        yield client


@pytest.mark.parametrize("target", ["server", "package"])
@pytest.mark.parametrize("case", range(len(CODEC_CASES)))
def test_one_table_of_codec_cases_for_server_and_package(
    pytorch_container, served_wide, target, case
):
    content_type, accept, body_of, status, expected_type, key = CODEC_CASES[case]
    hooks, model, reference, _ = pytorch_container["wide"]
    X = np.random.default_rng(case).normal(size=(5, 3)) * [1.0, 10.0, 100.0]
    body = body_of(X)
    if target == "server":
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        response = served_wide.post("/invocations", content=body, headers=headers)
        got_status, got_type = response.status_code, response.headers["content-type"]
        got_body = response.content
    else:
        try:
            got_body, got_type = invoke(hooks, model, body, content_type, accept)
            got_status = 200
        except hooks.RequestError as exc:
            got_status, got_type = exc.status_code, None
    assert got_status == status
    if status != 200:
        return
    assert got_type.split(";")[0] == expected_type
    answer = _decoded(got_body, expected_type, key)
    np.testing.assert_allclose(answer, reference.predict(X), rtol=1e-5, atol=1e-6)


def test_the_handler_holds_the_wire_module_as_packaged():
    """The handler in the repository and the one packaged carry neurocloud.serve.wire."""
    from neurocloud.export import sagemaker_package
    from neurocloud.serve import wire

    assert sagemaker_package.inference_script() == sagemaker_package.INFERENCE_SCRIPT.read_text()
    hooks = import_by_path(sagemaker_package.INFERENCE_SCRIPT, "inference_in_repo")
    assert hooks.MEDIA_TYPES == wire.MEDIA_TYPES and hooks.CONTENT_TYPES == wire.CONTENT_TYPES
    assert hooks.TARGET_MODEL_HEADER == wire.TARGET_MODEL_HEADER
