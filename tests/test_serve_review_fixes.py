"""Regression tests for serving defects found in review: each was a 500 or a wrong answer."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.serve import Predictor, create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "wide"
    nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=3, seed=0), path)
    with TestClient(create_app(path)) as client:
        yield client


@pytest.mark.parametrize(
    "tensor",
    [
        {"name": "x", "shape": [4294967296, 4294967296], "datatype": "FP32", "data": []},
        {"name": "x", "shape": [2**62, 4], "datatype": "FP32", "data": [1.0]},
    ],
)
def test_huge_v2_shapes_are_a_400(client, tensor):
    response = client.post("/v2/models/wide/infer", json={"inputs": [tensor]})
    assert response.status_code == 400, response.text
    assert "values for shape" in response.json()["error"]


def test_binary_data_size_must_be_an_integer(client):
    header = (
        b'{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":12.0}}]}'
    )
    response = client.post(
        "/v2/models/wide/infer",
        content=header + np.zeros(3, np.float32).tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400, response.text
    assert "binary_data_size" in response.json()["error"]


def test_zip_looking_npy_body_is_a_400(client):
    response = client.post(
        "/invocations", content=b"PK\x03\x04junk", headers={"Content-Type": "application/x-npy"}
    )
    assert response.status_code == 400, response.text
    assert "application/x-npy" in response.json()["error"]
    assert client.post("/invocations", json={"instances": [[1, 2, 3]]}).status_code == 200


def test_a_failing_model_is_a_500_not_a_503(client, monkeypatch):
    version = client.app.state.neurocloud.repository.resolve("wide")

    def explode(rows):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(version.artifact.model, "forward", explode)
    response = client.post("/invocations", json={"instances": [[1, 2, 3]]})
    assert response.status_code == 500
    assert "kernel exploded" in response.json()["error"]


def test_predictor_csv_sends_a_flat_list_as_one_row():
    predictor = Predictor("http://127.0.0.1:1", serializer="csv")
    assert predictor._serialize([1.0, 2.0, 3.0]) == b"1.0,2.0,3.0\n"
    assert predictor._serialize([[1.0, 2.0], [3.0, 4.0]]) == b"1.0,2.0\n3.0,4.0\n"
