"""Client errors as ``{"error": ...}`` JSON responses that name the field, the expected and
the received, so a caller can fix the request without reading server logs.

>>> err = bad_request("inputs[0].shape", "[n, 1]", "[2, 3]")
>>> err.status, err.message
(400, 'inputs[0].shape: expected [n, 1]; received [2, 3]')
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["ServeError", "bad_request", "describe_value", "error_response"]


class ServeError(Exception):
    """An HTTP error with a status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return error_response(self.status, self.message)


def bad_request(field: str, expected: str, received: str, status: int = 400) -> ServeError:
    """A :class:`ServeError` worded ``"<field>: expected <expected>; received <received>"``."""
    return ServeError(status, f"{field}: expected {expected}; received {received}")


def describe_value(value: Any, limit: int = 60) -> str:
    """A short description of a received value for an error message."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON ``{"error": message}`` response with ``status`` (and extra ``headers``).

    >>> response = error_response(404, "model: expected a or b; received c")
    >>> response.status_code, response.body
    (404, b'{"error":"model: expected a or b; received c"}')
    """
    return Response(
        orjson.dumps({"error": message}),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )
