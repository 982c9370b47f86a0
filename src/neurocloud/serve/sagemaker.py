"""The SageMaker container contract: ``GET /ping``, ``POST /invocations``, ``POST /explain``
and ``GET /execution-parameters`` (batch transform).

With several models, the ``X-Amzn-SageMaker-Target-Model`` header names one (``name`` or
``name/version``); with one model it may be left out.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neurocloud.serve import wire
from neurocloud.serve.body import off_loop, read_body
from neurocloud.serve.codecs import (
    CONTENT_TYPES,
    JSON,
    check_finite,
    decode_request,
    encode_response,
    media_type,
    negotiate,
    parse_json,
)
from neurocloud.serve.errors import bad_request
from neurocloud.serve.explanations import explain
from neurocloud.serve.repository import ModelVersion
from neurocloud.serve.state import Call, ServerState, instrumented

__all__ = ["TARGET_MODEL_HEADER", "routes"]

TARGET_MODEL_HEADER = wire.TARGET_MODEL_HEADER.lower()  # ASGI header names are lower case


def _content_type(call: Call) -> str:
    header = call.headers.get("content-type")
    if not header:
        return JSON
    canonical = media_type(header)
    if canonical is None:
        raise bad_request(
            "Content-Type", f"one of {', '.join(CONTENT_TYPES)}", repr(header), status=415
        )
    charset = _charset(header)
    if charset not in (None, "utf-8", "utf8", "us-ascii"):
        raise bad_request("Content-Type charset", "utf-8", repr(charset), status=415)
    return canonical


def _charset(header: str) -> str | None:
    """The ``charset`` parameter of a Content-Type header, lower-cased, if there is one."""
    for parameter in header.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _target(state: ServerState, call: Call) -> ModelVersion:
    target = call.headers.get(TARGET_MODEL_HEADER)
    if target is None:
        return state.repository.resolve(None)
    name, _, version = target.partition("/")
    return state.repository.resolve(name, version or None)


def routes(state: ServerState) -> list[Route]:
    """The SageMaker routes bound to ``state``."""
    config = state.config
    max_rows = config.max_request_rows

    async def rows_of(body: bytes, content_type: str, model: ModelVersion) -> tuple[Any, str]:
        return await off_loop(
            len(body),
            decode_request,
            body,
            content_type,
            model.signature,
            max_rows,
            config.max_json_bytes,
        )

    async def ping(request: Request, call: Call) -> Response:
        if not state.repository.ready:
            return Response(
                b'{"error": "the models are still loading"}',
                status_code=503,
                media_type="application/json",
            )
        return Response(status_code=200)

    async def invocations(request: Request, call: Call) -> Response:
        content_type = _content_type(call)
        accept = negotiate(call.headers.get("accept"), config.default_accept)
        body = await read_body(request, call.headers, config.max_payload_bytes)
        model = _target(state, call)
        call.model = model.name
        rows, form = await rows_of(body, content_type, model)
        outputs = await model.predict(rows)
        payload = await off_loop(
            outputs.nbytes, encode_response, outputs, accept, form, model.signature
        )
        return Response(payload, media_type=accept)

    async def explain_route(request: Request, call: Call) -> Response:
        content_type = _content_type(call)
        if negotiate(call.headers.get("accept"), JSON) != JSON:
            raise bad_request(
                "Accept",
                "application/json (explanations are JSON)",
                repr(call.headers.get("accept")),
                status=406,
            )
        body = await read_body(request, call.headers, config.max_payload_bytes)
        model = _target(state, call)
        call.model = model.name
        rows, _ = await rows_of(body, content_type, model)
        parameters: dict[str, Any] = dict(request.query_params)
        if content_type == JSON and b'"parameters"' in body:
            # the rows were read above, in pieces when large; an explanation's body is bounded
            # by its row limit, so its parameters are read from the whole document
            data = await off_loop(len(body), parse_json, body, "body", config.max_payload_bytes)
            if isinstance(data, dict) and "parameters" in data:
                if not isinstance(data["parameters"], dict):
                    raise bad_request("parameters", "an object", repr(data["parameters"]))
                parameters.update(data["parameters"])
        result = await explain(model, rows, parameters, config.timeout_s, state.stopping)
        for name, array in result.items():
            check_finite(array, name, "JSON")
        return Response(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)

    async def execution_parameters(request: Request, call: Call) -> Response:
        return Response(
            orjson.dumps(
                {
                    "MaxConcurrentTransforms": config.workers,
                    "BatchStrategy": "MULTI_RECORD",
                    "MaxPayloadInMB": max(1, int(config.max_payload_mb)),
                }
            ),
            media_type=JSON,
        )

    return [
        Route("/invocations", instrumented(state, "invocations", invocations), methods=["POST"]),
        Route("/ping", instrumented(state, "ping", ping), methods=["GET"]),
        Route("/explain", instrumented(state, "explain", explain_route), methods=["POST"]),
        Route(
            "/execution-parameters",
            instrumented(state, "execution-parameters", execution_parameters),
            methods=["GET"],
        ),
    ]
