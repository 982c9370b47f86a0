"""Open Inference Protocol: metadata, health, infer in JSON and with the binary tensor
extension both ways, gzip/deflate bodies, ids, versions."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import orjson
import pytest
from serve_helpers import app_for, article_model, wide_model
from starlette.testclient import TestClient

import neurocloud as nc

W = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0], [5.0, 0.0, 1.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2") / "repo"
    models = {"seed/1": article_model(0), "seed/2": article_model(1), "wide/1": wide_model()}
    nc.save(models["seed/1"], root / "seed" / "1")
    nc.save(models["seed/2"], root / "seed" / "2")
    nc.save(models["wide/1"], root / "wide", input_name="features", output_name="scores")
    return root, models


@pytest.fixture(scope="module")
def client(repo):
    with TestClient(app_for(repo[0])) as test_client:
        yield test_client


def binary_request(name: str, array: np.ndarray, datatype: str, **extra) -> tuple[bytes, dict]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": array.nbytes},
                }
            ],
            **extra,
        }
    )
    headers = {"Inference-Header-Content-Length": str(len(header))}
    return header + array.astype(array.dtype.newbyteorder("<")).tobytes(), headers


def test_server_metadata_and_health(client):
    meta = client.get("/v2").json()
    assert meta["name"] == "neurocloud" and "binary_tensor_data" in meta["extensions"]
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200


def test_model_metadata(client):
    meta = client.get("/v2/models/wide").json()
    assert meta["name"] == "wide" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 2]}]
    assert client.get("/v2/models/seed").json()["versions"] == ["1", "2"]
    assert client.get("/v2/models/seed/versions/1").json()["inputs"][0]["name"] == "x"


def test_model_list(client):
    models = {m["name"]: m for m in client.get("/v2/models").json()["models"]}
    assert models["seed"]["versions"] == ["1", "2"] and models["seed"]["latest"] == "2"
    assert models["wide"]["state"] == "READY"


def test_model_ready(client):
    assert client.get("/v2/models/seed/ready").status_code == 200
    assert client.get("/v2/models/seed/versions/1/ready").status_code == 200
    assert client.get("/v2/models/seed/versions/9/ready").status_code == 404


@pytest.mark.parametrize("data", ["flat", "nested"])
def test_infer_json(client, repo, data):
    values = W.ravel().tolist() if data == "flat" else W.tolist()
    body = {
        "id": "req-7",
        "inputs": [{"name": "features", "shape": [3, 3], "datatype": "FP32", "data": values}],
    }
    response = client.post("/v2/models/wide/infer", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["id"] == "req-7" and out["model_name"] == "wide" and out["model_version"] == "1"
    (tensor,) = out["outputs"]
    assert tensor["name"] == "scores" and tensor["shape"] == [3, 2] and tensor["datatype"] == "FP32"
    expected = repo[1]["wide/1"].predict(W)
    np.testing.assert_allclose(np.reshape(tensor["data"], (3, 2)), expected, rtol=1e-5, atol=1e-6)


def test_default_version_is_the_latest(client, repo):
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]}
    latest = client.post("/v2/models/seed/infer", json=body).json()
    first = client.post("/v2/models/seed/versions/1/infer", json=body).json()
    assert latest["model_version"] == "2" and first["model_version"] == "1"
    np.testing.assert_allclose(
        latest["outputs"][0]["data"],
        repo[1]["seed/2"].predict([[2.0]]).ravel(),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        first["outputs"][0]["data"],
        repo[1]["seed/1"].predict([[2.0]]).ravel(),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT32"])
def test_infer_binary_in_and_out(client, repo, datatype):
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32}[datatype]
    array = (W * 10).astype(dtype)
    body, headers = binary_request(
        "features", array, datatype, parameters={"binary_data_output": True}
    )
    response = client.post("/v2/models/wide/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    size = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:size])
    (tensor,) = header["outputs"]
    assert tensor["parameters"]["binary_data_size"] == 3 * 2 * 4
    got = np.frombuffer(response.content[size:], dtype="<f4").reshape(tensor["shape"])
    np.testing.assert_allclose(
        got, repo[1]["wide/1"].predict(array.astype(np.float32)), rtol=1e-5, atol=1e-6
    )


def test_binary_output_asked_per_output(client):
    body = {
        "inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [1.0, 2.0]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
    }
    response = client.post("/v2/models/seed/infer", json=body)
    size = int(response.headers["inference-header-content-length"])
    assert len(response.content) == size + 2 * 4
    json_only = dict(body, outputs=[{"name": "y"}])
    assert "data" in client.post("/v2/models/seed/infer", json=json_only).json()["outputs"][0]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_request_and_response(client, repo, encoding):
    rows = np.linspace(0, 5, 400, dtype=np.float32).reshape(-1, 1)
    raw = orjson.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [400, 1], "datatype": "FP32", "data": rows.ravel().tolist()}
            ]
        }
    )
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    response = client.post(
        "/v2/models/seed/versions/1/infer",
        content=body,
        headers={"Content-Encoding": encoding, "Accept-Encoding": encoding},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == encoding  # decoded by the client
    data = response.json()["outputs"][0]["data"]
    np.testing.assert_allclose(
        np.reshape(data, (-1, 1)), repo[1]["seed/1"].predict(rows), rtol=1e-5, atol=1e-6
    )


def test_no_content_type_needed(client):
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    )
    response = client.post("/v2/models/seed/infer", content=body, headers={"Content-Type": ""})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "tensor",
    [
        {"name": "features", "shape": [4294967296, 4294967296], "datatype": "FP32", "data": []},
        {"name": "features", "shape": [2**62, 4], "datatype": "FP32", "data": [1.0]},
    ],
)
def test_huge_v2_shapes_are_a_400(client, tensor):
    response = client.post("/v2/models/wide/infer", json={"inputs": [tensor]})
    assert response.status_code == 400, response.text
    assert "values for shape" in response.json()["error"]


def test_binary_data_size_must_be_an_integer(client):
    header = (
        b'{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":12.0}}]}'
    )
    response = client.post(
        "/v2/models/wide/infer",
        content=header + np.zeros(3, np.float32).tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400, response.text
    assert "binary_data_size" in response.json()["error"]
