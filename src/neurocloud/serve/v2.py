"""Open Inference Protocol (KServe V2) REST routes: server and model metadata, health,
readiness, ``infer`` and ``explain``, with the binary tensor extension and gzip/deflate
bodies both ways (what ``tritonclient.http`` sends and reads by default).
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neurocloud import __version__
from neurocloud.serve.body import off_loop, read_body
from neurocloud.serve.explanations import explain
from neurocloud.serve.repository import ModelVersion
from neurocloud.serve.state import Call, ServerState, instrumented
from neurocloud.serve.v2_codec import HEADER_LENGTH, InferRequest, decode_infer, encode_outputs

__all__ = ["routes"]

JSON = "application/json"
COMPRESS_ABOVE = 1024  # bytes; smaller responses are cheaper to send as they are


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def _compressed(call: Call, payload: bytes, headers: dict[str, str]) -> Response:
    accepted = call.headers.get("accept-encoding", "")
    if len(payload) >= COMPRESS_ABOVE and accepted:
        tokens = {t.split(";")[0].strip().lower() for t in accepted.split(",")}
        if "gzip" in tokens:
            payload, headers["content-encoding"] = gzip.compress(payload, 5), "gzip"
        elif "deflate" in tokens:
            payload, headers["content-encoding"] = zlib.compress(payload, 5), "deflate"
    return Response(payload, headers=headers)


def routes(state: ServerState) -> list[Route]:
    """The Open Inference Protocol routes bound to ``state``."""
    repository, config = state.repository, state.config

    def model_of(request: Request, call: Call) -> ModelVersion:
        params = request.path_params
        model = repository.resolve(params["model_name"], params.get("model_version"))
        call.model = model.name
        return model

    async def decoded(request: Request, call: Call) -> tuple[ModelVersion, InferRequest]:
        body = await read_body(request, call.headers, config.max_payload_bytes)
        model = model_of(request, call)
        return model, await off_loop(
            len(body),
            decode_infer,
            body,
            call.headers.get(HEADER_LENGTH),
            model.signature,
            config.max_request_rows,
            config.max_json_bytes,
        )

    def header(model: ModelVersion, infer: InferRequest) -> dict[str, Any]:
        head: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
        if infer.id is not None:
            head["id"] = infer.id
        return head

    async def infer(request: Request, call: Call) -> Response:
        model, req = await decoded(request, call)
        outputs = await model.predict(req.rows)
        name = model.signature.output_name
        payload, headers = await off_loop(
            outputs.nbytes,
            encode_outputs,
            header(model, req),
            {name: outputs},
            {name: req.binary_outputs.get(name, req.binary_output)},
            {name: labels["parameters"]}
            if (labels := model.signature.output_parameters())
            else None,
        )
        return _compressed(call, payload, headers)

    async def explain_route(request: Request, call: Call) -> Response:
        model, req = await decoded(request, call)
        result = await explain(
            model, req.rows, dict(req.parameters), config.timeout_s, state.stopping
        )
        binary = {n: req.binary_outputs.get(n, req.binary_output) for n in result}
        payload, headers = encode_outputs(header(model, req), result, binary)
        return _compressed(call, payload, headers)

    async def server_metadata(request: Request, call: Call) -> Response:
        return _json(
            {"name": "neurocloud", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def live(request: Request, call: Call) -> Response:
        return _json({"live": True})

    async def ready(request: Request, call: Call) -> Response:
        # kserve's InferenceRESTClient reads these bodies; tritonclient reads the status.
        if repository.ready:
            return _json({"ready": True})
        return _json({"ready": False, "error": "the models are still loading"}, 503)

    async def models(request: Request, call: Call) -> Response:
        return _json({"models": repository.model_list()})

    async def model_metadata(request: Request, call: Call) -> Response:
        model = model_of(request, call)
        return _json(model.metadata(repository.versions(model.name)))

    async def model_ready(request: Request, call: Call) -> Response:
        model = model_of(request, call)
        return _json({"name": model.name, "ready": True})

    one = "/v2/models/{model_name}"
    versioned = "/v2/models/{model_name}/versions/{model_version}"
    table = [
        ("/infer", infer, "infer", "POST"),
        ("/explain", explain_route, "explain", "POST"),
        ("/ready", model_ready, "model_ready", "GET"),
        ("", model_metadata, "model_metadata", "GET"),
    ]
    result = []
    for prefix in (one, versioned):
        for suffix, handler, endpoint, method in table:
            result.append(
                Route(
                    prefix + suffix,
                    instrumented(state, f"v2_{endpoint}", handler),
                    methods=[method],
                )
            )
    result += [
        Route("/v2", instrumented(state, "v2_server_metadata", server_metadata), methods=["GET"]),
        Route("/v2/health/live", instrumented(state, "v2_live", live), methods=["GET"]),
        Route("/v2/health/ready", instrumented(state, "v2_ready", ready), methods=["GET"]),
        Route("/v2/models", instrumented(state, "v2_models", models), methods=["GET"]),
    ]
    return result
