"""The AWS SageMaker runtime API, so boto3's ``sagemaker-runtime`` client and the SageMaker
SDK's ``Predictor`` reach a local server through ``endpoint_url``.

- ``POST /endpoints/{name}/invocations`` (``InvokeEndpoint``): the body, ``Content-Type``,
  ``Accept`` and the answer exactly as ``POST /invocations``. The endpoint name picks the
  model in a repository; with one model any name is accepted.
  ``X-Amzn-SageMaker-Target-Model`` (``TargetModel``: ``name``, ``name/version``, an
  optional ``.tar.gz`` suffix dropped) picks the model instead;
  ``X-Amzn-SageMaker-Custom-Attributes`` (at most 1024 ASCII characters) is echoed back,
  so ``CustomAttributes`` carries a trace id from request to response.
- ``POST /endpoints/{name}/invocations-response-stream``
  (``InvokeEndpointWithResponseStream``): the same answer in AWS event-stream
  ``PayloadPart`` events (one per line for CSV and JSON Lines, one in all otherwise), its
  type in ``X-Amzn-SageMaker-Content-Type``.
- ``POST /endpoints/{name}/async-invocations`` (``InvokeEndpointAsync``) reads its input
  from S3, which a local server does not: 404 ``UnknownOperationException`` naming the two
  operations above.

Errors take the runtime's shape, which botocore turns into a ``ClientError`` with our
message: the type in the ``x-amzn-ErrorType`` header and ``{"Message": ...}`` in the body.
What the runtime checks itself (the endpoint or target model, the custom attributes, the
payload limit) is 400 ``ValidationError``; models still loading are 429
``ModelNotReadyException``; the model's own refusal (a bad body, an unacceptable Accept,
outputs JSON cannot carry) is 424 ``ModelError`` with ``OriginalStatusCode`` and
``OriginalMessage``, as the runtime forwards a container's error.

>>> import tempfile, neurocloud as nc
>>> from starlette.testclient import TestClient
>>> from neurocloud.serve import create_app
>>> path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0),
...                tempfile.mkdtemp() + "/seed")
>>> with TestClient(create_app(path, reload_interval_s=0)) as client:
...     ok = client.post("/endpoints/seed/invocations", json={"x": [4.5]})
...     bad = client.post("/endpoints/seed/invocations", json={"z": [4.5]})
>>> ok.json().keys(), bad.status_code, bad.headers["x-amzn-ErrorType"]
(dict_keys(['y']), 424, 'ModelError')
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neurocloud.serve import wire
from neurocloud.serve.eventstream import payload_part
from neurocloud.serve.state import ServerState

__all__ = ["CUSTOM_ATTRIBUTES_HEADER", "AwsError", "openapi_paths", "routes"]

TARGET_MODEL_HEADER = wire.TARGET_MODEL_HEADER.lower()  # ASGI header names are lower case
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"
STREAM_ACCEPT_HEADER = "x-amzn-sagemaker-accept"
STREAM_CONTENT_TYPE_HEADER = "X-Amzn-SageMaker-Content-Type"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_MAX_CUSTOM_ATTRIBUTES = 1024
_SUPPORTED = (
    "supported: POST /endpoints/{EndpointName}/invocations (InvokeEndpoint) and "
    "POST /endpoints/{EndpointName}/invocations-response-stream "
    "(InvokeEndpointWithResponseStream)"
)

Endpoint = Callable[[Request], Awaitable[Response]]


class AwsError(Exception):
    """An error in the runtime's shape: ``x-amzn-ErrorType`` plus a JSON body."""

    def __init__(self, status: int, error_type: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message, self.fields = (
            status,
            error_type,
            message,
            fields,
        )

    def response(self) -> Response:
        return Response(
            orjson.dumps({"Message": self.message, **self.fields}),
            status_code=self.status,
            media_type="application/json",
            headers={"x-amzn-ErrorType": self.error_type},
        )


def _validation(message: str) -> AwsError:
    return AwsError(400, "ValidationError", message)


def _from_serve_error(status: int, body: bytes) -> AwsError:
    """The runtime's error for an error response of ``POST /invocations``."""
    try:
        message = str(orjson.loads(body)["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = body.decode("utf-8", "replace")
    if status in (404, 413):  # the target model, the payload limit: the runtime's checks
        return _validation(message)
    if status == 503:
        return AwsError(429, "ModelNotReadyException", message)
    kind = "client" if status < 500 else "server"
    return AwsError(
        424,
        "ModelError",
        f'Received {kind} error ({status}) from model with message "{message}"',
        OriginalStatusCode=status,
        OriginalMessage=body.decode("utf-8", "replace"),
        ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
    )


def _target(state: ServerState, endpoint: str, headers: dict[str, str]) -> str | None:
    """The ``name[/version]`` that ``POST /invocations`` should serve, or ``None`` for the
    one model."""
    repository = state.repository
    if not repository.ready:
        raise AwsError(
            429,
            "ModelNotReadyException",
            "the models are not loaded yet; retry once /ping returns 200",
        )
    names = repository.names
    target = headers.get(TARGET_MODEL_HEADER)
    if target is not None:
        target = target.strip().removesuffix(".tar.gz").strip("/")
        if target.partition("/")[0] not in names:
            raise _validation(
                f"{wire.TARGET_MODEL_HEADER} (TargetModel): expected one of {names} "
                f"(optionally name/version); received {headers[TARGET_MODEL_HEADER]!r}"
            )
        return target
    if endpoint in names:
        return endpoint
    if len(names) == 1:
        return None
    raise _validation(
        f"EndpointName: expected one of {names} (this server holds several models; or "
        f"name one in {wire.TARGET_MODEL_HEADER}); received {endpoint!r}"
    )


def _custom_attributes(headers: dict[str, str]) -> str | None:
    value = headers.get(CUSTOM_ATTRIBUTES_HEADER)
    if value is None:
        return None
    if len(value) > _MAX_CUSTOM_ATTRIBUTES or not value.isascii():
        raise _validation(
            "X-Amzn-SageMaker-Custom-Attributes (CustomAttributes): expected at most "
            f"{_MAX_CUSTOM_ATTRIBUTES} ASCII characters; received {len(value)} characters"
            + ("" if value.isascii() else " with non-ASCII ones")
        )
    return value


def _forwarded(request: Request, target: str | None, accept: str | None) -> Request:
    """``request`` as ``POST /invocations`` receives it: the target model resolved, and for
    the streaming operation its ``X-Amzn-SageMaker-Accept`` as ``Accept``."""
    drop = {TARGET_MODEL_HEADER.encode()}
    if accept is not None:
        drop.add(b"accept")
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in drop]
    if target is not None:
        headers.append((TARGET_MODEL_HEADER.encode(), target.encode("latin-1")))
    if accept is not None:
        headers.append((b"accept", accept.encode("latin-1")))
    scope = {**request.scope, "headers": headers, "path": "/invocations"}
    return Request(scope, request.receive)


def routes(state: ServerState, invocations: Endpoint) -> list[Route]:
    """The runtime routes, answering through ``invocations`` (the ``POST /invocations``
    endpoint, which records the request's metrics)."""

    async def invoke(request: Request, stream: bool) -> Response:
        start = time.perf_counter()
        endpoint = "aws_invocations_stream" if stream else "aws_invocations"
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]
        }
        try:
            attributes = _custom_attributes(headers)
            target = _target(state, request.path_params["endpoint_name"], headers)
        except AwsError as exc:  # answered here: POST /invocations never sees it
            error = exc.response()
            elapsed = time.perf_counter() - start
            state.metrics.observe_request("", endpoint, error.status_code, elapsed)
            return error
        accept = headers.get(STREAM_ACCEPT_HEADER, "") if stream else None
        response = await invocations(_forwarded(request, target, accept))
        if response.status_code >= 400:
            return _from_serve_error(response.status_code, bytes(response.body)).response()
        extra = {CUSTOM_ATTRIBUTES_HEADER: attributes} if attributes is not None else {}
        if not stream:
            response.headers.update(extra)
            return response
        body = bytes(response.body)
        content_type = response.headers.get("content-type", "")
        line_based = content_type.startswith(("text/csv", "application/jsonlines"))
        parts = body.splitlines(keepends=True) if line_based else [body]
        return Response(
            b"".join(payload_part(part) for part in parts),
            media_type=EVENT_STREAM,
            headers={STREAM_CONTENT_TYPE_HEADER: content_type, **extra},
        )

    async def invoke_endpoint(request: Request) -> Response:
        return await invoke(request, stream=False)

    async def invoke_stream(request: Request) -> Response:
        return await invoke(request, stream=True)

    async def invoke_async(request: Request) -> Response:
        return AwsError(
            404,
            "UnknownOperationException",
            "InvokeEndpointAsync reads its input from S3 (InputLocation), which this server "
            f"does not reach; {_SUPPORTED}",
        ).response()

    prefix = "/endpoints/{endpoint_name}"
    return [
        Route(prefix + "/invocations", invoke_endpoint, methods=["POST"]),
        Route(prefix + "/invocations-response-stream", invoke_stream, methods=["POST"]),
        Route(prefix + "/async-invocations", invoke_async, methods=["POST"]),
    ]


def openapi_paths(request_body: dict[str, Any], responses: dict[str, Any]) -> dict[str, Any]:
    """The runtime routes for the OpenAPI document; ``request_body`` and ``responses`` as
    for ``POST /invocations``."""
    aws_error = {
        "description": "The runtime's error: its type in the x-amzn-ErrorType header.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["Message"],
                    "properties": {
                        "Message": {"type": "string"},
                        "OriginalStatusCode": {"type": "integer"},
                        "OriginalMessage": {"type": "string"},
                        "ErrorCode": {"type": "string"},
                    },
                }
            }
        },
    }
    name = {"name": "endpoint_name", "in": "path", "required": True, "schema": {"type": "string"}}
    header = {"in": "header", "required": False, "schema": {"type": "string"}}
    parameters = [
        name,
        {**header, "name": wire.TARGET_MODEL_HEADER, "description": "name[/version]"},
        {**header, "name": "X-Amzn-SageMaker-Custom-Attributes", "description": "echoed back"},
        {**header, "name": "Accept"},
    ]
    tag = ["AWS SageMaker runtime"]
    errors = {
        "400": {**aws_error, "description": "ValidationError: endpoint, target model, limits."},
        "424": {**aws_error, "description": "ModelError: the model refused the request."},
        "429": {**aws_error, "description": "ModelNotReadyException: models still loading."},
    }
    stream_ok = {
        "200": {
            "description": "PayloadPart events (AWS event-stream encoding).",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        }
    }
    return {
        "/endpoints/{endpoint_name}/invocations": {
            "post": {
                "summary": "InvokeEndpoint: as POST /invocations, for boto3 and the SDK.",
                "tags": tag,
                "parameters": parameters,
                "requestBody": request_body,
                "responses": {**responses, **errors},
            }
        },
        "/endpoints/{endpoint_name}/invocations-response-stream": {
            "post": {
                "summary": "InvokeEndpointWithResponseStream: the answer as event-stream parts.",
                "tags": tag,
                "parameters": [
                    *parameters[:3],
                    {**header, "name": "X-Amzn-SageMaker-Accept"},
                ],
                "requestBody": request_body,
                "responses": {**stream_ok, **errors},
            }
        },
        "/endpoints/{endpoint_name}/async-invocations": {
            "post": {
                "summary": "InvokeEndpointAsync: not served (its input is in S3).",
                "tags": tag,
                "parameters": [name],
                "responses": {"404": {**aws_error, "description": "UnknownOperationException."}},
            }
        },
    }
