"""The browser pages of ``neurocloud serve``: ``GET /`` lists the served models,
``GET /models/{m}[/versions/{v}]`` is a model's page, and ``.../card`` its card as JSON.

The pages are static files from the package (``neurocloud/web``); their script calls the
public routes only (``/v2/models``, ``.../card``, ``.../infer``, ``.../explain``), so what a
page shows is what any client gets.

>>> import tempfile, neurocloud as nc
>>> from starlette.testclient import TestClient
>>> from neurocloud.serve import create_app
>>> path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0),
...                tempfile.mkdtemp() + "/seed")
>>> with TestClient(create_app(path)) as client:
...     card = client.get("/models/seed/card").json()
>>> card["name"], card["version"], card["architecture"]["input_dim"]
('seed', '1', 1)
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from neurocloud.serve.state import Call, ServerState, instrumented

__all__ = ["STATIC_DIR", "page_routes", "static_file"]

STATIC_DIR = resources.files("neurocloud") / "web"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def static_file(name: str) -> Response:
    """One file of the package's ``web`` folder (404 for anything else, never a path
    outside it)."""
    target = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not target.is_file():
        return Response(
            orjson.dumps({"error": f"static file: no {name!r} in the page assets"}),
            status_code=404,
            media_type="application/json",
        )
    suffix = "." + name.rsplit(".", 1)[-1]
    return FileResponse(str(target), media_type=_TYPES.get(suffix, "application/octet-stream"))


def page_routes(state: ServerState) -> list[BaseRoute]:
    """The page routes; those under ``/models`` and ``/static`` are mounted, outside the
    API that ``/openapi.json`` lists."""
    repository = state.repository

    async def index(request: Request) -> Response:
        return static_file("index.html")

    async def model_page(request: Request) -> Response:
        return static_file("model.html")

    async def asset(request: Request) -> Response:
        return static_file(request.path_params["name"])

    async def card(request: Request, call: Call) -> Response:
        params = request.path_params
        model = repository.resolve(params["model_name"], params.get("model_version"))
        call.model = model.name
        artifact = model.artifact
        body: dict[str, Any] = {
            **model.metadata(repository.versions(model.name)),
            "version": model.version,
            "architecture": artifact.metadata.get("model"),
            "feature_names": artifact.metadata.get("feature_names"),
            "output_names": artifact.metadata.get("output_names"),
            "card": artifact.card,
        }
        body.pop("platform", None)
        return Response(orjson.dumps(body), media_type="application/json")

    card_route = instrumented(state, "model_card", card)
    models = [
        Route("/{model_name}", model_page, methods=["GET"]),
        Route("/{model_name}/versions/{model_version}", model_page, methods=["GET"]),
        Route("/{model_name}/card", card_route, methods=["GET"]),
        Route("/{model_name}/versions/{model_version}/card", card_route, methods=["GET"]),
    ]
    return [
        Route("/", index, methods=["GET"]),
        Mount("/models", routes=models),
        Mount("/static", routes=[Route("/{name}", asset, methods=["GET"])]),
    ]
