"""What every route shares: the repository, settings and metrics, and the wrapper that
turns any error into a JSON response and records the request's metrics.

A route is written as ``async def handler(request, call) -> Response``; it sets
``call.model`` once it knows the model, so metrics and errors are labelled by it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from neurocloud.serve.config import ServeConfig
from neurocloud.serve.errors import ServeError, error_response
from neurocloud.serve.metrics import ServeMetrics
from neurocloud.serve.repository import ModelRepository

__all__ = ["Call", "ServerState", "instrumented"]

logger = logging.getLogger("neurocloud.serve")


@dataclass
class ServerState:
    """One app's models, settings and metrics, and its shutdown signal."""

    repository: ModelRepository
    config: ServeConfig
    metrics: ServeMetrics
    #: set when this app begins to shut down: its explanations in flight stop with 503
    stopping: threading.Event = field(default_factory=threading.Event)


class Call:
    """One request's headers (lower-case names, read once) and the model label that its
    handler fills in."""

    __slots__ = ("headers", "model")

    def __init__(self, request: Request) -> None:
        self.headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in request.scope["headers"]
        }
        self.model = ""


Handler = Callable[[Request, Call], Awaitable[Response]]


def instrumented(
    state: ServerState, endpoint: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler``: errors become ``{"error": ...}`` responses, never a crash, and
    every request is counted and timed under ``endpoint``."""
    metrics = state.metrics

    async def route(request: Request) -> Response:
        start = time.perf_counter()
        call = Call(request)
        try:
            response = await handler(request, call)
        except ServeError as exc:
            response = exc.response()
        except Exception as exc:
            logger.exception("error in %s", endpoint)
            response = error_response(500, f"internal error: {type(exc).__name__}: {exc}")
        metrics.observe_request(
            call.model, endpoint, response.status_code, time.perf_counter() - start
        )
        return response

    route.__name__ = endpoint
    return route
