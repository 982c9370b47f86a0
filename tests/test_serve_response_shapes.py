"""One response shape per Accept type, whatever the request's content type: a JSON answer
is ``{"<output name>": rows}`` for the article's JSON, CSV, NPY and JSON Lines requests alike
(it was ``{"predictions": ...}`` for CSV), and CSV, NPY and JSON Lines answers are the same
bytes for every request type."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from serve_helpers import app_for, wide_model
from starlette.testclient import TestClient

import neurocloud as nc

X = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


REQUESTS = {
    "application/json": json.dumps({"features": X.tolist()}).encode(),
    "text/csv": b"1,2,3\n0.5,0,-1\n",
    "application/x-npy": npy(X),
    "application/jsonlines": b"[1, 2, 3]\n[0.5, 0, -1]\n",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model = wide_model(2)
    path = nc.save(
        model,
        tmp_path_factory.mktemp("shapes") / "wide",
        input_name="features",
        output_name="scores",
    )
    with TestClient(app_for(path)) as test_client:
        yield test_client, model


@pytest.mark.parametrize(
    "accept", ["application/json", "text/csv", "application/x-npy", "application/jsonlines"]
)
def test_one_response_shape_per_accept_type(client, accept):
    test_client, model = client
    answers = {}
    for content_type, body in REQUESTS.items():
        response = test_client.post(
            "/invocations", content=body, headers={"Content-Type": content_type, "Accept": accept}
        )
        assert response.status_code == 200, response.text
        answers[content_type] = response.content
    assert len(set(answers.values())) == 1, answers
    if accept == "application/json":
        data = json.loads(answers["text/csv"])
        assert list(data) == ["scores"]
        np.testing.assert_allclose(data["scores"], model.predict(X), rtol=1e-5, atol=1e-6)


def test_aws_route_answers_the_same_bytes(client):
    test_client, _ = client
    for content_type, body in REQUESTS.items():
        headers = {"Content-Type": content_type}
        direct = test_client.post("/invocations", content=body, headers=headers)
        aws = test_client.post("/endpoints/wide/invocations", content=body, headers=headers)
        assert aws.status_code == 200 and aws.content == direct.content
        assert aws.headers["content-type"] == direct.headers["content-type"]
