"""The ASGI app: SageMaker and Open Inference Protocol routes over one model repository,
plus ``/metrics``, ``/openapi.json``, ``/docs`` and the model pages (``/``, ``/models/...``).

Models are loaded and warmed during startup (the lifespan), before the first request;
a background task then watches the folder for new versions.

>>> import tempfile, neurocloud as nc
>>> from starlette.testclient import TestClient
>>> path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0),
...                tempfile.mkdtemp() + "/seed")
>>> with TestClient(create_app(path)) as client:
...     client.post("/invocations", json={"x": [4.5]}).json().keys()
dict_keys(['y'])
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from neurocloud.serve import aws_runtime, sagemaker, v2
from neurocloud.serve.config import ServeConfig
from neurocloud.serve.docs import DOCS_HTML
from neurocloud.serve.errors import error_response
from neurocloud.serve.metrics import ServeMetrics
from neurocloud.serve.openapi import openapi_document
from neurocloud.serve.pages import page_routes
from neurocloud.serve.repository import ModelRepository
from neurocloud.serve.state import ServerState

__all__ = ["SPEC_VARIABLE", "create_app", "create_app_from_env"]

SPEC_VARIABLE = "NEUROCLOUD_SERVE_SPEC"


def create_app(
    path: str | os.PathLike[str], config: ServeConfig | None = None, **overrides: Any
) -> Starlette:
    """An ASGI app serving the model directory or repository at ``path``.

    ``config`` defaults to :meth:`ServeConfig.from_env`; ``overrides`` (e.g.
    ``max_batch_rows=64``) replace single settings.
    """
    config = (config or ServeConfig.from_env()).with_overrides(**overrides)
    metrics = ServeMetrics()
    repository = ModelRepository(path, config, metrics)
    state = ServerState(repository, config, metrics)

    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def openapi_route(request: Request) -> Response:
        models: dict[str, Any] = {}
        for model in repository:
            models.setdefault(model.name, (model.signature, repository.versions(model.name)))
        document = openapi_document(None, None, dict(sorted(models.items())) or None)
        return Response(orjson.dumps(document), media_type="application/json")

    async def docs_route(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with _frozen_heap(), _stop_explanations_on_signal(state.stopping):
            await repository.start()
            watcher = None
            if config.reload_interval_s > 0:
                watcher = asyncio.get_running_loop().create_task(repository.watch())
            try:
                yield
            finally:
                state.stopping.set()
                if watcher is not None:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
                await repository.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(
                404,
                f"path: expected a route listed in /openapi.json; "
                f"received {request.method} {request.url.path}",
            )
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            return error_response(
                405,
                f"method: expected {allow} for {request.url.path}; received {request.method}",
                headers={"Allow": allow},
            )
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    sagemaker_routes = sagemaker.routes(state)
    invocations = next(r.endpoint for r in sagemaker_routes if r.path == _INVOCATIONS)
    routes = [
        *sagemaker_routes,
        *aws_runtime.routes(state, invocations),
        *v2.routes(state),
        Route("/metrics", metrics_route, methods=["GET"]),
        Route("/openapi.json", openapi_route, methods=["GET"]),
        Route("/docs", docs_route, methods=["GET"]),
        *page_routes(state),
    ]
    app = _ServeApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.neurocloud = state
    app.hot = {
        route.path: route.endpoint
        for route in routes
        if route.path in _HOT_PATHS and route.methods and "POST" in route.methods
    }
    return app


@contextlib.contextmanager
def _stop_explanations_on_signal(stopping: threading.Event) -> Iterator[None]:
    """While the app runs, SIGTERM and SIGINT also set its ``stopping`` event, which stops
    its explanations in flight (they answer 503 at their next chunk of rows) before the
    server's own handler drains the other requests: a heavy explanation must not hold the
    shutdown past SageMaker's 30 s. The app's shutdown sets it too, and each app has its
    own: one app stopping never stops another's explanations.
    """
    stopping.clear()
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread (e.g. under a test client)
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        stopping.set()
        chained = previous[signum]
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL:
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, chained in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, chained)


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Exempt every object that exists now from the garbage collector's passes, until exit.

    At startup these are the framework's and NumPy's ~38k objects, which live as long as the
    server; re-scanning them in each full collection paused the event loop for ~10 ms under
    load (p99 at 64 connections: 10-14 ms, 4 ms frozen). Models load after the freeze, so a
    version retired by a hot reload is still collected. Frozen objects are still freed when
    nothing refers to them; only reference cycles among them wait for the unfreeze. (No
    collection first: it would cost more, in a large process, than the few cycles it frees.)
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


_INVOCATIONS = "/invocations"
_INFER = "/v2/models/{model_name}/infer"
_INFER_VERSION = "/v2/models/{model_name}/versions/{model_version}/infer"
_HOT_PATHS = (_INVOCATIONS, _INFER, _INFER_VERSION)


class _HotPaths:
    """The outermost layer of the app's own stack: ``POST /invocations`` and ``POST
    .../infer`` straight to their ``Route``'s endpoint, everything else to ``app``.

    Those endpoints already turn every error into a JSON response and record metrics, so
    the exception middlewares and the router's scan of every route would only add cost
    (about a quarter of the server's time per request). Middleware a user adds with
    ``add_middleware`` sits outside this layer, so it sees these requests too.
    """

    def __init__(self, app: ASGIApp, hot: dict[str, Callable[[Request], Awaitable[Response]]]):
        self.app = app
        self.invocations = hot.get(_INVOCATIONS)
        self.infer = hot.get(_INFER)
        self.infer_version = hot.get(_INFER_VERSION)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            handler = None
            if path == _INVOCATIONS:
                handler = self.invocations
            elif path.startswith("/v2/models/") and path.endswith("/infer"):
                parts = path.split("/")  # "", "v2", "models", name, ["versions", v,] "infer"
                if len(parts) == 5 and parts[3]:
                    handler = self.infer
                    scope["path_params"] = {"model_name": parts[3]}
                elif len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5]:
                    handler = self.infer_version
                    scope["path_params"] = {"model_name": parts[3], "model_version": parts[5]}
            if handler is not None:
                scope["endpoint"] = handler  # as the router sets it
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _ServeApp(Starlette):
    """Starlette, with the inference routes handed straight to their endpoints by
    :class:`_HotPaths`: outermost when no middleware was added, else just inside the
    user's middleware (and Starlette's error middleware around it)."""

    hot: dict[str, Callable[[Request], Awaitable[Response]]]  # set by create_app

    def build_middleware_stack(self) -> ASGIApp:
        if not self.user_middleware:
            return _HotPaths(super().build_middleware_stack(), self.hot)
        self.user_middleware.append(Middleware(_HotPaths, hot=self.hot))
        try:
            return super().build_middleware_stack()
        finally:
            self.user_middleware.pop()


def create_app_from_env() -> Starlette:
    """The app described by ``$NEUROCLOUD_SERVE_SPEC`` (how ``serve`` starts workers)."""
    spec = os.environ.get(SPEC_VARIABLE)
    if not spec:
        raise RuntimeError(
            f"{SPEC_VARIABLE} is not set; start the server with "
            "neurocloud.serve.serve() or `neurocloud serve`."
        )
    data = json.loads(spec)
    return create_app(data["path"], ServeConfig(**data["config"]))
