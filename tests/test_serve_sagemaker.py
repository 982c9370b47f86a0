"""SageMaker contract: /ping, /invocations with every content type both ways, the JSON
forms the article and the SDK send, and the Accept header's choice of response (the
negotiation itself: test_serve_codecs.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from serve_helpers import app_for, article_model, wide_model
from starlette.testclient import TestClient

import neurocloud as nc

X = np.array([[0.5], [1.5], [4.5]], dtype=np.float32)
W = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sagemaker")
    seed, wide = article_model(), wide_model()
    return {
        "seed": (seed, nc.save(seed, root / "seed")),
        "wide": (wide, nc.save(wide, root / "wide", input_name="features", output_name="scores")),
    }


@pytest.fixture(scope="module")
def client(models):
    with TestClient(app_for(models["seed"][1])) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def wide_client(models):
    with TestClient(app_for(models["wide"][1])) as test_client:
        yield test_client


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def test_ping_is_empty_200(client):
    response = client.get("/ping")
    assert response.status_code == 200 and response.content == b""


def test_article_body(client, models):
    response = client.post("/invocations", json={"x": [4.5]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = models["seed"][0].predict([[4.5]])
    np.testing.assert_allclose(response.json()["y"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"x": X.ravel().tolist()}, "y"),
        ({"x": X.tolist()}, "y"),
        ({"instances": X.tolist()}, "predictions"),
        ({"instances": [{"x": row} for row in X.tolist()]}, "predictions"),
        ({"inputs": X.tolist()}, "outputs"),
        ({"inputs": {"x": X.tolist()}}, "outputs"),
        (X.tolist(), None),
    ],
)
def test_json_forms(client, models, body, key):
    response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    values = data if key is None else data[key]
    np.testing.assert_allclose(values, models["seed"][0].predict(X), rtol=1e-5, atol=1e-6)


def decode(content_type: str, content: bytes) -> np.ndarray:
    if content_type.startswith("application/jsonlines"):
        return np.asarray([json.loads(line) for line in content.splitlines()])
    if content_type.startswith("application/json"):
        data = json.loads(content)
        return np.asarray(data["predictions"] if "predictions" in data else data["scores"])
    if content_type.startswith("text/csv"):
        return np.loadtxt(io.StringIO(content.decode()), delimiter=",", ndmin=2)
    if content_type.startswith("application/x-npy"):
        return np.load(io.BytesIO(content))
    raise AssertionError(content_type)


ENCODERS = {
    "text/csv": lambda a: "\n".join(",".join(repr(float(v)) for v in row) for row in a).encode(),
    "application/x-npy": npy,
    "application/jsonlines": lambda a: b"\n".join(json.dumps(r).encode() for r in a.tolist()),
    "application/json": lambda a: json.dumps({"instances": a.tolist()}).encode(),
}
TYPES = list(ENCODERS)


@pytest.mark.parametrize("accept", TYPES)
@pytest.mark.parametrize("content_type", TYPES)
def test_every_content_type_both_ways(wide_client, models, content_type, accept):
    model = models["wide"][0]
    response = wide_client.post(
        "/invocations",
        content=ENCODERS[content_type](W),
        headers={"Content-Type": content_type, "Accept": accept},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == accept
    got = decode(accept, response.content)
    if accept == "application/json":  # the instances envelope for JSON, the output's name else
        key = "predictions" if content_type == "application/json" else "scores"
        assert list(response.json()) == [key]
    np.testing.assert_allclose(got, model.predict(W), rtol=1e-5, atol=1e-6)
    if accept == "application/x-npy":
        assert got.dtype == np.float32 and got.shape == (2, 2)


def test_csv_header_must_match_feature_names(tmp_path):
    path = nc.save(wide_model(), tmp_path / "named", feature_names=["a", "b", "c"])
    with TestClient(app_for(path)) as client:
        ok = client.post(
            "/invocations", content=b"a,b,c\n1,2,3\n", headers={"content-type": "text/csv"}
        )
        bad = client.post(
            "/invocations", content=b"a,b,z\n1,2,3\n", headers={"content-type": "text/csv"}
        )
    assert ok.status_code == 200 and len(ok.json()["y"]) == 1
    assert bad.status_code == 400 and "['a', 'b', 'c']" in bad.json()["error"]


def test_one_row_as_flat_list_for_a_wide_model(wide_client, models):
    response = wide_client.post("/invocations", json={"features": W[0].tolist()})
    assert response.status_code == 200
    np.testing.assert_allclose(
        response.json()["scores"], models["wide"][0].predict(W[:1]), rtol=1e-5, atol=1e-6
    )


def test_charset_and_unknown_headers_are_ignored(client):
    response = client.post(
        "/invocations",
        content=b'{"x": [1.0]}',
        headers={"Content-Type": "application/json; charset=utf-8", "X-Custom-Attributes": "a=1"},
    )
    assert response.status_code == 200


def test_default_accept_from_environment(models, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    with TestClient(app_for(models["seed"][1])) as client:
        plain = client.post("/invocations", json={"x": [1.0, 2.0]})
        star = client.post("/invocations", json={"x": [1.0]}, headers={"Accept": "*/*"})
        asked = client.post(
            "/invocations", json={"x": [1.0]}, headers={"Accept": "application/json"}
        )
    assert plain.headers["content-type"].startswith("text/csv")
    assert len(plain.text.strip().splitlines()) == 2
    assert star.headers["content-type"].startswith("text/csv")
    assert asked.headers["content-type"] == "application/json"


def test_execution_parameters(client):
    data = client.get("/execution-parameters").json()
    assert data["MaxPayloadInMB"] == 6 and data["BatchStrategy"] == "MULTI_RECORD"


def test_target_model_header_picks_a_model(tmp_path):
    nc.save(article_model(0), tmp_path / "repo" / "a" / "1")
    nc.save(article_model(1), tmp_path / "repo" / "b" / "1")
    nc.save(article_model(2), tmp_path / "repo" / "b" / "2")
    with TestClient(app_for(tmp_path / "repo")) as client:
        none = client.post("/invocations", json={"x": [1.0]})
        a = client.post(
            "/invocations", json={"x": [1.0]}, headers={"X-Amzn-SageMaker-Target-Model": "a"}
        )
        b1 = client.post(
            "/invocations", json={"x": [1.0]}, headers={"X-Amzn-SageMaker-Target-Model": "b/1"}
        )
        b = client.post(
            "/invocations", json={"x": [1.0]}, headers={"X-Amzn-SageMaker-Target-Model": "b"}
        )
    assert none.status_code == 400 and "['a', 'b']" in none.json()["error"]
    expected = {seed: article_model(seed).predict([[1.0]]) for seed in (0, 1, 2)}
    np.testing.assert_allclose(a.json()["y"], expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1.json()["y"], expected[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.json()["y"], expected[2], rtol=1e-5, atol=1e-6)


def test_zip_looking_npy_body_is_a_400(wide_client):
    response = wide_client.post(
        "/invocations", content=b"PK\x03\x04junk", headers={"Content-Type": "application/x-npy"}
    )
    assert response.status_code == 400, response.text
    assert "application/x-npy" in response.json()["error"]
    assert wide_client.post("/invocations", json={"instances": [[1, 2, 3]]}).status_code == 200


def test_predictor_csv_sends_a_flat_list_as_one_row():
    from neurocloud.serve import Predictor

    predictor = Predictor("http://127.0.0.1:1", serializer="csv")
    assert predictor._serialize([1.0, 2.0, 3.0]) == b"1.0,2.0,3.0\n"
    assert predictor._serialize([[1.0, 2.0], [3.0, 4.0]]) == b"1.0,2.0\n3.0,4.0\n"
