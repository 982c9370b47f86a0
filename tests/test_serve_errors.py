"""Every client mistake gets a 4xx JSON error naming the field, the expected and the
received; the server keeps serving afterwards."""

from __future__ import annotations

import gzip
import io
import time

import numpy as np
import orjson
import pytest
from serve_helpers import app_for, article_model
from starlette.testclient import TestClient

import neurocloud as nc

GOOD = {"x": [4.5]}


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def v2(tensor: dict, **extra) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", **tensor}], **extra}
    )


def binary(declared: int, payload: bytes) -> tuple[bytes, dict]:
    header = v2({"parameters": {"binary_data_size": declared}})
    return header + payload, {"Inference-Header-Content-Length": str(len(header))}


CSV = {"Content-Type": "text/csv"}
INFER = "/v2/models/seed/infer"
CASES = [
    # (id, method, path, body bytes, headers, status, words in the message)
    ("malformed-json", "/invocations", b'{"x": [4.5', {}, 400, ["body", "malformed JSON"]),
    ("wrong-shape", "/invocations", b'{"x": [[1, 2]]}', {}, 400, ["x", "(n, 1)", "(1, 2)"]),
    ("ragged", "/invocations", b'{"x": [[1], [2, 3]]}', {}, 400, ["rectangular"]),
    ("not-numbers", "/invocations", b'{"x": ["a"]}', {}, 400, ["numbers", "'a'"]),
    ("null", "/invocations", b'{"x": [null]}', {}, 400, ["numbers", "None"]),
    ("unknown-input", "/invocations", b'{"z": [1]}', {}, 400, ["'x'", "['z']"]),
    ("empty-rows", "/invocations", b'{"x": []}', {}, 400, ["at least one row"]),
    ("empty-body", "/invocations", b"", {}, 400, ["empty body"]),
    ("overflow", "/invocations", b'{"x": [1e300]}', {}, 400, ["finite", "float32"]),
    ("nan-csv", "/invocations", b"1.0\nnan\n", CSV, 400, ["finite", "nan", "row 1"]),
    ("text-csv", "/invocations", b"1.0\nabc\n", CSV, 400, ["'abc'", "row 1, column 0"]),
    ("ragged-csv", "/invocations", b"1,2\n3\n", CSV, 400, ["values per row"]),
    (
        "nan-npy",
        "/invocations",
        npy([[np.nan]]),
        {"Content-Type": "application/x-npy"},
        400,
        ["finite"],
    ),
    (
        "strings-npy",
        "/invocations",
        npy(["a"]),
        {"Content-Type": "application/x-npy"},
        400,
        ["numbers"],
    ),
    (
        "bad-npy",
        "/invocations",
        b"\x93NUMPY garbage",
        {"Content-Type": "application/x-npy"},
        400,
        ["npy"],
    ),
    (
        "bad-jsonl",
        "/invocations",
        b"[1]\n[2",
        {"Content-Type": "application/jsonlines"},
        400,
        ["line 2"],
    ),
    (
        "content-type",
        "/invocations",
        b"1",
        {"Content-Type": "image/png"},
        415,
        ["Content-Type", "'image/png'"],
    ),
    (
        "accept",
        "/invocations",
        b'{"x": [1]}',
        {"Accept": "image/png"},
        406,
        ["Accept", "'image/png'"],
    ),
    ("encoding", "/invocations", b'{"x": [1]}', {"Content-Encoding": "br"}, 415, ["gzip", "'br'"]),
    ("bad-gzip", "/invocations", b"not gzip", {"Content-Encoding": "gzip"}, 400, ["gzip"]),
    ("v2-malformed", INFER, b"{", {}, 400, ["malformed JSON"]),
    ("v2-no-inputs", INFER, b"{}", {}, 400, ["inputs", "list"]),
    ("v2-name", INFER, v2({"name": "q", "data": [1]}), {}, 400, ["inputs[0].name", "'x'", "'q'"]),
    (
        "v2-datatype",
        INFER,
        v2({"datatype": "BYTES", "data": ["a"]}),
        {},
        400,
        ["inputs[0].datatype", "BYTES"],
    ),
    ("v2-unknown-type", INFER, v2({"datatype": "FP99", "data": [1]}), {}, 400, ["FP99"]),
    ("v2-int-data", INFER, v2({"datatype": "INT32", "data": [1.5]}), {}, 400, ["INT32", "1.5"]),
    ("v2-count", INFER, v2({"shape": [2, 1], "data": [1]}), {}, 400, ["2 values", "1 values"]),
    ("v2-shape", INFER, v2({"shape": [1, 2], "data": [1, 2]}), {}, 400, ["inputs[0]", "(1, 2)"]),
    ("v2-bad-shape", INFER, v2({"shape": "1x1", "data": [1]}), {}, 400, ["shape", "non-negative"]),
    ("v2-no-data", INFER, v2({}), {}, 400, ["data"]),
    (
        "v2-output",
        INFER,
        v2({"data": [1]}, outputs=[{"name": "z"}]),
        {},
        400,
        ["outputs[0].name", "'y'"],
    ),
    ("v2-bin-size", INFER, *binary(8, b"\0" * 8), 400, ["binary_data_size", "4 bytes"]),
    ("v2-bin-nan", INFER, *binary(4, np.float32(np.nan).tobytes()), 400, ["finite", "nan"]),
    (
        "v2-bin-extra",
        INFER,
        binary(4, b"\0" * 8)[0],
        binary(4, b"")[1],
        400,
        ["4 bytes", "8 bytes"],
    ),
    (
        "v2-header-len",
        INFER,
        b"{}",
        {"Inference-Header-Content-Length": "99"},
        400,
        ["Inference-Header"],
    ),
    ("unknown-model", "/v2/models/nope/infer", v2({"data": [1]}), {}, 404, ["['seed']", "'nope'"]),
    (
        "unknown-version",
        "/v2/models/seed/versions/7/infer",
        v2({"data": [1]}),
        {},
        404,
        ["['1']", "'7'"],
    ),
    (
        "unknown-target",
        "/invocations",
        b'{"x": [1]}',
        {"X-Amzn-SageMaker-Target-Model": "nope"},
        404,
        ["'nope'"],
    ),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = nc.save(article_model(), tmp_path_factory.mktemp("errors") / "seed")
    with TestClient(app_for(path, max_payload_mb=0.01)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input(client, path, body, headers, status, words):
    headers = {"Content-Type": "application/json", **headers} if path == "/invocations" else headers
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    assert client.post("/invocations", json=GOOD).status_code == 200  # still serving


def test_payload_limit(client):
    big = orjson.dumps({"x": [1.0] * 5000})  # > 0.01 MB
    response = client.post(
        "/invocations", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB" in response.json()["error"]
    bomb = gzip.compress(b"[" + b"1.0," * 100_000 + b"1.0]")  # small compressed, large inflated
    assert len(bomb) < 10_000
    response = client.post("/invocations", content=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413 and "decompression" in response.json()["error"]
    assert client.post("/invocations", json=GOOD).status_code == 200


def test_unknown_path_and_method(client):
    missing = client.get("/nope")
    assert missing.status_code == 404 and "/nope" in missing.json()["error"]
    wrong = client.get("/invocations")
    assert wrong.status_code == 405 and "POST" in wrong.json()["error"]


def test_non_finite_output(tmp_path):
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    model.set_weights([np.full((1, 1), 3e38, np.float32), np.zeros(1, np.float32)])
    path = nc.save(model, tmp_path / "overflow")
    with TestClient(app_for(path)) as client:
        as_json = client.post("/invocations", json={"x": [10.0]})
        assert as_json.status_code == 422
        assert "inf" in as_json.json()["error"] and "application/x-npy" in as_json.json()["error"]
        as_npy = client.post(
            "/invocations", json={"x": [10.0]}, headers={"Accept": "application/x-npy"}
        )
        assert as_npy.status_code == 200
        assert np.isposinf(np.load(io.BytesIO(as_npy.content))).all()
        as_csv = client.post("/invocations", json={"x": [10.0]}, headers={"Accept": "text/csv"})
        assert as_csv.status_code == 200 and as_csv.text.strip() == "inf"
        infer = client.post("/v2/models/overflow/infer", content=v2({"data": [10.0]}))
        assert infer.status_code == 422
        binary_out = client.post(
            "/v2/models/overflow/infer",
            content=v2({"data": [10.0]}, parameters={"binary_data_output": True}),
        )
        assert binary_out.status_code == 200
        assert client.post("/invocations", json={"x": [0.0]}).status_code == 200


def test_model_fault_is_a_500_and_the_server_survives(tmp_path, monkeypatch):
    path = nc.save(article_model(), tmp_path / "seed")
    with TestClient(app_for(path)) as client:
        model = next(iter(client.app.state.neurocloud.repository))
        original = model.artifact.model.forward

        def broken(rows):
            raise FloatingPointError("simulated fault")

        monkeypatch.setattr(model.artifact.model, "forward", broken)
        response = client.post("/invocations", json=GOOD)
        assert response.status_code == 500 and "simulated fault" in response.json()["error"]
        monkeypatch.setattr(model.artifact.model, "forward", original)
        assert client.post("/invocations", json=GOOD).status_code == 200


def test_request_timeout_is_a_504_naming_the_setting(tmp_path, monkeypatch):
    path = nc.save(article_model(), tmp_path / "seed")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0.2")
    with TestClient(app_for(path)) as client:
        model = next(iter(client.app.state.neurocloud.repository))
        original = model.artifact.model.forward

        def slow(rows):
            time.sleep(0.6)
            return original(rows)

        monkeypatch.setattr(model.artifact.model, "forward", slow)
        response = client.post("/invocations", json=GOOD)
        assert response.status_code == 504
        assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in response.json()["error"]
        monkeypatch.setattr(model.artifact.model, "forward", original)
        time.sleep(0.6)  # the slow pass still holds the model until it ends
        assert client.post("/invocations", json=GOOD).status_code == 200


def test_a_failing_model_is_a_500_not_a_503(client, monkeypatch):
    version = client.app.state.neurocloud.repository.resolve("seed")

    def explode(rows):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(version.artifact.model, "forward", explode)
    response = client.post("/invocations", json={"x": [1.0]})
    assert response.status_code == 500
    assert "kernel exploded" in response.json()["error"]
