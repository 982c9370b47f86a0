"""Operations: the OpenAPI document and offline docs, the explain routes' contract, the
CLI's container defaults, and a serving path that imports neither scikit-learn, SciPy nor
PyTorch. (Metrics: test_serve_metrics.py; settings: test_serve_config.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from serve_helpers import app_for, article_model
from starlette.routing import Route
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.serve.docs import DOCS_HTML


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return nc.save(article_model(), tmp_path_factory.mktemp("ops") / "seed")


def test_openapi_lists_every_route(model_path):
    app = app_for(model_path)
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    routes = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in r.methods}
    listed = {(p, m) for p, item in document["paths"].items() for m in item}
    missing = {(p, m) for p, m in routes if m != "head" and p != "/"} - listed
    assert not missing, missing
    for path in ("/v2/models/{model_name}/explain", "/explain", "/invocations"):
        assert path in document["paths"]
    example = document["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert example["application/json"]["examples"]["named"]["value"] == {"x": [4.5]}


def test_docs_work_offline(model_path):
    with TestClient(app_for(model_path)) as client:
        page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert not re.search(r"(src|href)=\"?https?:", DOCS_HTML)
    assert "cdn" not in DOCS_HTML.lower()


@pytest.fixture
def fake_explainer(monkeypatch):
    """Stands in for the explainer (tested elsewhere) to test the routes."""
    from neurocloud.serve import explanation_requests
    from neurocloud.serve.explanation_requests import LimitExceeded

    def explain_batch(model, X, parameters):
        if parameters.get("method") == "bad":
            raise ValueError("method: expected 'gradient'; received 'bad'")
        if len(X) > 3:
            raise LimitExceeded("rows: expected at most 3; received 4")
        grads = np.ones_like(X) * float(parameters.get("scale", 1))
        return {"attributions": grads, "baseline": model.predict(np.zeros((1, X.shape[1])))}

    monkeypatch.setattr(explanation_requests, "explain_batch", explain_batch)


def test_explain_routes(model_path, fake_explainer):
    v2_body = {
        "inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [1.0, 2.0]}],
        "parameters": {"scale": 3},
    }
    with TestClient(app_for(model_path)) as client:
        sm = client.post("/explain", json={"x": [1.0, 2.0], "parameters": {"scale": 2}})
        v2 = client.post("/v2/models/seed/explain", json=v2_body)
        versioned = client.post("/v2/models/seed/versions/1/explain", json=v2_body)
        bad = client.post("/explain", json={"x": [1.0], "parameters": {"method": "bad"}})
        big = client.post("/explain", json={"x": [1.0, 2.0, 3.0, 4.0]})
        csv = client.post("/explain?scale=5", content=b"1\n", headers={"Content-Type": "text/csv"})
        not_json = client.post("/explain", json={"x": [1.0]}, headers={"Accept": "text/csv"})
    assert sm.status_code == 200 and sm.json()["attributions"] == [[2.0], [2.0]]
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["attributions"]["shape"] == [2, 1] and outputs["attributions"]["data"] == [
        3.0,
        3.0,
    ]
    assert versioned.json()["model_version"] == "1"
    assert bad.status_code == 400 and "'bad'" in bad.json()["error"]
    assert big.status_code == 413 and "at most 3" in big.json()["error"]
    assert csv.json()["attributions"] == [[5.0]]
    assert not_json.status_code == 406


def test_cli_container_defaults(tmp_path, monkeypatch, model_path):
    calls = []
    monkeypatch.setattr("neurocloud.serve.server.serve", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setenv("SM_MODEL_DIR", str(model_path))
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9123")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "2")
    from neurocloud.cli import main

    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 0, result.output
    ((args, kwargs),) = calls
    assert args == (str(model_path), "0.0.0.0", 9123) and kwargs["config"].workers == 2
    calls.clear()
    result = CliRunner().invoke(main, ["serve", str(model_path), "--max-batch-rows", "8"])
    ((args, kwargs),) = calls
    assert args == (str(model_path), "127.0.0.1", 9123) and kwargs["config"].max_batch_rows == 8
    missing = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert missing.exit_code != 0 and "no model found" in missing.output


def test_serving_path_stays_light(tmp_path):
    model = nc.Sequential(
        [nc.layers.Dense(3, activation="relu"), nc.layers.Dense(1, activation="sigmoid")],
        input_dim=2,
        seed=0,
    )
    path = nc.save(model, tmp_path / "light")
    code = f"""
import asyncio, json, sys
import neurocloud.serve
from neurocloud.serve import create_app
app = create_app({str(path)!r}, reload_interval_s=0)

async def main():
    sent = []
    async def receive():
        return {{"type": "http.request", "body": b'{{"x": [[1.0, 2.0]]}}', "more_body": False}}
    async def send(message):
        sent.append(message)
    scope = {{"type": "http", "method": "POST", "path": "/invocations", "headers": [],
             "query_string": b"", "root_path": "", "app": app}}
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    return sent

sent = asyncio.run(main())
heavy = sorted(m for m in ("sklearn", "scipy", "torch") if m in sys.modules)
print(json.dumps({{"status": sent[0]["status"], "heavy": heavy}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "heavy": []}


def test_predictor_arguments_are_checked():
    from neurocloud.serve import Predictor

    with pytest.raises(ValueError, match="url"):
        Predictor("127.0.0.1:8080")
    with pytest.raises(ValueError, match="serializer"):
        Predictor("http://127.0.0.1:8080", serializer="xml")
    with pytest.raises(ValueError, match="content_type"):
        Predictor("http://127.0.0.1:8080", content_type="text/html")
    assert Predictor("http://h:1", content_type="text/csv").content_type == "text/csv"
