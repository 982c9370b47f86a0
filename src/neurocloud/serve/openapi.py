"""The OpenAPI 3.1 document of every route, with examples for the model being served.

>>> doc = openapi_document(None)
>>> "/invocations" in doc["paths"] and "/v2/models/{model_name}/infer" in doc["paths"]
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurocloud import __version__
from neurocloud.serve import aws_runtime
from neurocloud.serve.signature import Signature
from neurocloud.serve.wire import CONTENT_TYPES, CSV, JSON, JSONLINES, NPY, TARGET_MODEL_HEADER

__all__ = ["openapi_document"]

_STRING = {"schema": {"type": "string"}}
_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS = {
    "400": "Bad input: the message names the field, the expected and the received.",
    "404": "Unknown model or version.",
    "406": "No acceptable response type in Accept.",
    "413": "Body over the payload limit (SAGEMAKER_MAX_PAYLOAD_IN_MB).",
    "415": "Unsupported Content-Type or Content-Encoding.",
    "422": "The model produced NaN or infinity, which JSON cannot carry.",
    "501": "Explanations are not installed.",
    "503": "Not ready: models still loading.",
    "504": "No result within SAGEMAKER_MODEL_SERVER_TIMEOUT seconds.",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {
        code: {"description": _STATUS[code], "content": {"application/json": {"schema": _ERROR}}}
        for code in codes
    }


def _op(summary: str, tag: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": [tag], "responses": responses, **extra}


def _ok(description: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"200": {"description": description, **({"content": content} if content else {})}}


def _json_content(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {"application/json": body}


def _sagemaker_body(signatures: dict[str, Signature]) -> dict[str, Any]:
    examples: dict[str, Any] = {}
    several = len(signatures) > 1
    for name, sig in signatures.items():
        row = [0.5] * sig.input_width
        prefix = f"{name}: " if several else ""
        examples.update(
            {
                f"{prefix}named": {
                    "value": {sig.input_name: [row] if sig.input_width > 1 else [4.5]}
                },
                f"{prefix}instances": {"value": {"instances": [row]}},
                f"{prefix}inputs": {"value": {"inputs": [row]}},
                f"{prefix}list": {"value": [row]},
            }
        )
    row = [0.5] * next(iter(signatures.values())).input_width
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [{"type": "object"}, {"type": "array"}]},
                "examples": examples,
            },
            CSV: {"schema": {"type": "string"}, "example": ",".join(map(str, row))},
            NPY: {"schema": {"type": "string", "format": "binary"}},
            JSONLINES: {"schema": {"type": "string"}, "example": str(row)},
        },
    }


def _infer_example(sig: Signature) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": sig.input_name,
                "shape": [1, sig.input_width],
                "datatype": sig.datatype,
                "data": [0.5] * sig.input_width,
            }
        ]
    }


def openapi_document(
    signature: Signature | None,
    model_names: list[str] | None = None,
    models: dict[str, tuple[Signature, list[str]]] | None = None,
) -> dict:
    """The document; ``signature`` (of a served model) fills in the examples, or
    ``models`` (name -> signature and versions) gives every model its own examples and
    the values of the ``X-Amzn-SageMaker-Target-Model`` header."""
    sig = signature or Signature("x", 1, "y", 1, np.dtype("float32"))
    names = model_names or ["model"]
    if models:
        names = list(models)
        sig = models[names[0]][0]
    signatures = {name: models[name][0] for name in names} if models else {names[0]: sig}
    targets = [*names, *(f"{n}/{v}" for n in names for v in models[n][1])] if models else None
    response_types = {
        "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}},
        **{t: {"schema": {"type": "string"}} for t in CONTENT_TYPES if t != JSON},
    }
    target = {
        "name": TARGET_MODEL_HEADER,
        "in": "header",
        "required": len(names) > 1,
        "description": "Model name (or name/version); needed with several models.",
        "schema": {"type": "string", **({"enum": targets} if targets else {})},
    }
    accept = {
        "name": "Accept",
        "in": "header",
        "required": False,
        "description": "Response type, q-values honoured; default "
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT or application/json.",
        "schema": {"type": "string"},
    }
    infer_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/InferRequest"},
                "examples": {
                    name: {"value": _infer_example(model)} for name, model in signatures.items()
                },
            }
        },
    }
    infer_ok = _ok(
        "Outputs (JSON, or JSON header + binary tensors).",
        _json_content({"$ref": "#/components/schemas/InferResponse"}),
    )
    model_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": names},
    }
    version_param = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": "1",
    }
    paths: dict[str, Any] = {
        "/ping": {
            "get": _op(
                "SageMaker health: 200 once every model is loaded and warm.",
                "SageMaker",
                {**_ok("Ready."), **_errors("503")},
            )
        },
        "/invocations": {
            "post": _op(
                "SageMaker inference: JSON, CSV, NPY or JSON Lines in and out.",
                "SageMaker",
                {
                    **_ok("Predictions in the negotiated type.", response_types),
                    **_errors("400", "404", "406", "413", "415", "422", "503", "504"),
                },
                parameters=[target, accept],
                requestBody=_sagemaker_body(signatures),
            )
        },
        "/explain": {
            "post": _op(
                "SageMaker-style explanations: same input as /invocations, plus optional "
                '"parameters" in a JSON body; answers a JSON object of named arrays.',
                "SageMaker",
                {
                    **_ok("Named explanation arrays.", _json_content({"type": "object"})),
                    **_errors("400", "404", "406", "413", "415", "422", "501", "504"),
                },
                parameters=[target],
                requestBody=_sagemaker_body(signatures),
            )
        },
        "/execution-parameters": {
            "get": _op(
                "SageMaker batch transform settings.",
                "SageMaker",
                _ok("Settings.", _json_content({"type": "object"})),
            )
        },
        "/v2": {
            "get": _op(
                "Server metadata.",
                "Open Inference Protocol",
                _ok("Name, version, extensions.", _json_content({"type": "object"})),
            )
        },
        "/v2/health/live": {"get": _op("Liveness.", "Open Inference Protocol", _ok("Live."))},
        "/v2/health/ready": {
            "get": _op(
                "Readiness: every model loaded and warm.",
                "Open Inference Protocol",
                {**_ok("Ready."), **_errors("503")},
            )
        },
        "/v2/models": {
            "get": _op(
                "Every model, its versions and state.",
                "Open Inference Protocol",
                _ok("Models.", _json_content({"type": "object"})),
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics.", "Operations", _ok("Text format.", {"text/plain": _STRING})
            )
        },
        "/openapi.json": {
            "get": _op(
                "This document.", "Operations", _ok("OpenAPI.", _json_content({"type": "object"}))
            )
        },
        "/docs": {
            "get": _op(
                "Interactive documentation (works offline).",
                "Operations",
                _ok("HTML.", {"text/html": {"schema": {"type": "string"}}}),
            )
        },
    }
    invocations = paths["/invocations"]["post"]
    ok = {"200": invocations["responses"]["200"]}
    paths.update(aws_runtime.openapi_paths(invocations["requestBody"], ok))
    for prefix, params in (
        ("/v2/models/{model_name}", [model_param]),
        ("/v2/models/{model_name}/versions/{model_version}", [model_param, version_param]),
    ):
        tag = "Open Inference Protocol"
        paths[prefix] = {
            "get": _op(
                "Model metadata: inputs and outputs.",
                tag,
                {**_ok("Metadata.", _json_content({"type": "object"})), **_errors("404")},
                parameters=params,
            )
        }
        paths[prefix + "/ready"] = {
            "get": _op(
                "Model readiness.",
                tag,
                {**_ok("Ready."), **_errors("404", "503")},
                parameters=params,
            )
        }
        paths[prefix + "/infer"] = {
            "post": _op(
                "Inference (JSON or binary tensor extension; gzip/deflate accepted).",
                tag,
                {**infer_ok, **_errors("400", "404", "413", "415", "422", "503", "504")},
                parameters=params,
                requestBody=infer_body,
            )
        }
        paths[prefix + "/explain"] = {
            "post": _op(
                "Explanations as named output tensors; request as for infer, with optional "
                '"parameters".',
                tag,
                {**infer_ok, **_errors("400", "404", "413", "415", "422", "501", "504")},
                parameters=params,
                requestBody=infer_body,
            )
        }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "neurocloud inference server",
            "version": __version__,
            "description": "SageMaker container contract and Open Inference Protocol "
            "(KServe V2) for neurocloud models.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Tensor": tensor,
                "InferRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Tensor"},
                        },
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "InferResponse": {
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "outputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Tensor"},
                        },
                    },
                },
            }
        },
    }
