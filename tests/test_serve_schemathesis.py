"""Property-based testing of the whole HTTP surface with schemathesis, from our own
``/openapi.json``, against a real server on 127.0.0.1 holding a regressor and a classifier:
no response is a 5xx, every response conforms to our document, every Open Inference
Protocol response validates against the official REST spec's schemas (below), and the
server still answers correctly afterwards."""

from __future__ import annotations

import collections

import jsonschema
import numpy as np
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_helpers import article_model, server

import neurocloud as nc

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# The component schemas of the Open Inference Protocol REST spec (KServe's
# specification/protocol/open_inference_rest.yaml), as JSON Schema.
_TENSOR_DATA = {
    "type": "array",
    "items": {
        "anyOf": [{"$ref": "#/$defs/tensor_data"}, {"type": ["number", "string", "boolean"]}]
    },
}
_DEFS = {
    "tensor_data": _TENSOR_DATA,
    "parameters": {"type": "object"},
    "metadata_tensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "response_output": {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": {"$ref": "#/$defs/parameters"},
            "data": {"$ref": "#/$defs/tensor_data"},
        },
    },
}


def _schema(body: dict) -> dict:
    return {"$defs": _DEFS, **body}


OIP = {
    "metadata_server_response": _schema(
        {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        }
    ),
    "metadata_model_response": _schema(
        {
            "type": "object",
            "required": ["name", "platform"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"$ref": "#/$defs/metadata_tensor"}},
                "outputs": {"type": "array", "items": {"$ref": "#/$defs/metadata_tensor"}},
            },
        }
    ),
    "inference_response": _schema(
        {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": {"$ref": "#/$defs/parameters"},
                "outputs": {"type": "array", "items": {"$ref": "#/$defs/response_output"}},
            },
        }
    ),
    "error_response": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
}
# The binary tensor extension sends an output's bytes after the JSON instead of "data".
_BINARY = dict(OIP["inference_response"])
_BINARY["$defs"] = {
    **_DEFS,
    "response_output": {
        **_DEFS["response_output"],
        "required": ["name", "shape", "datatype", "parameters"],
        "properties": {
            **_DEFS["response_output"]["properties"],
            "parameters": {"type": "object", "required": ["binary_data_size"]},
        },
    },
}


def oip_schema(method: str, path: str, status: int) -> dict | None:
    """The spec's schema for a V2 response, or ``None`` for a route without a body."""
    if not path.startswith("/v2"):
        return None
    if status >= 400:
        return OIP["error_response"]
    if method == "GET" and path.rstrip("/") == "/v2":
        return OIP["metadata_server_response"]
    if path.endswith(("/infer", "/explain")):
        return OIP["inference_response"]
    if method == "GET" and path.startswith("/v2/models/") and not path.endswith("/ready"):
        return OIP["metadata_model_response"]
    return None


def validate_oip(method: str, path: str, response: requests.Response) -> bool:
    schema = oip_schema(method, path, response.status_code)
    if schema is None or not response.content:
        return False
    header = response.headers.get("inference-header-content-length")
    if header is not None:
        document = orjson.loads(response.content[: int(header)])
        schema = _BINARY
    else:
        document = orjson.loads(response.content)
    jsonschema.validate(document, schema)
    return True


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemathesis") / "repo"
    regressor = article_model()
    classifier = nc.Sequential([nc.layers.Dense(3, activation="softmax")], input_dim=2, seed=0)
    nc.save(regressor, root / "regressor" / "1")
    nc.save(classifier, root / "classifier" / "1")
    return root, regressor, classifier


def test_schemathesis_finds_no_5xx_and_every_response_conforms(repository):
    root, regressor, classifier = repository
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    validated = 0
    with server(root, "--reload-interval", "0") as running:
        schema = schemathesis.openapi.from_url(running.url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 21  # every route of the document
        for operation in operations:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case):
                nonlocal validated
                response = case.call(base_url=running.url, timeout=30)
                statuses[response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                    validated += validate_oip(case.method, case.formatted_path, response)
                except Exception as exc:  # collect every failure, report them together
                    failures.append(f"{case.method} {case.formatted_path}: {exc}"[:500])

            check()
        # still serving, and correctly
        x = np.array([[4.5]])
        got = requests.post(
            running.url + "/invocations",
            json={"x": [4.5]},
            timeout=30,
            headers={"X-Amzn-SageMaker-Target-Model": "regressor"},
        )
        assert got.status_code == 200
        np.testing.assert_allclose(got.json()["y"], regressor.predict(x), rtol=1e-5)
        rows = np.array([[0.5, -1.0]])
        body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0.5, -1.0]}]}
        got = requests.post(running.url + "/v2/models/classifier/infer", json=body, timeout=30)
        assert got.status_code == 200
        np.testing.assert_allclose(
            got.json()["outputs"][0]["data"], classifier.predict(rows).ravel(), rtol=1e-5
        )
    total = sum(statuses.values())
    print(
        f"schemathesis: {total} requests, statuses {dict(sorted(statuses.items()))}, "
        f"{validated} V2 responses validated against the Open Inference Protocol spec"
    )
    assert not failures, "\n".join(failures[:20])
    assert not any(status >= 500 for status in statuses)
    assert statuses[200] > 0 and validated > 0
