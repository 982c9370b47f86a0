"""uvicorn's httptools protocol with limits on the request head, as nginx and Node set them.

- at most :data:`MAX_HEADER_BYTES` of request line and headers (nginx: 4 x 8 KB; Node:
  16 KB) and :data:`MAX_HEADERS` header fields (Apache: 100): past either, 431;
- the head must arrive within :data:`HEADER_TIMEOUT_S` of the connection (or of the
  request's first byte on a kept-alive connection): past it, 408 and the connection closes
  (nginx's ``client_header_timeout``; Node's ``headersTimeout``; the environment variable
  ``NEUROCLOUD_HEADER_TIMEOUT_S`` sets it). A client that opens connections and trickles
  headers cannot hold them.

``serve`` runs uvicorn with ``http=GuardedHttpToolsProtocol``.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "HEADER_TIMEOUT_S",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "GuardedHttpToolsProtocol",
    "header_timeout_s",
]

MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
HEADER_TIMEOUT_S = 10.0

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def header_timeout_s(env: Mapping[str, str] | None = None) -> float:
    """The head timeout: ``NEUROCLOUD_HEADER_TIMEOUT_S`` if set, else :data:`HEADER_TIMEOUT_S`.

    >>> header_timeout_s({"NEUROCLOUD_HEADER_TIMEOUT_S": "2.5"}), header_timeout_s({})
    (2.5, 10.0)
    """
    raw = (os.environ if env is None else env).get("NEUROCLOUD_HEADER_TIMEOUT_S", "").strip()
    if not raw:
        return HEADER_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"NEUROCLOUD_HEADER_TIMEOUT_S: expected a number of seconds > 0; received {raw!r}"
        )
    return value


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a request head over the limits."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that refuses oversized or slow request heads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # bytes received while the head is incomplete
        self._field_bytes = 0  # bytes of the head's complete header fields
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_deadline = 0.0  # loop time by which the current head must be complete
        self._timer_deadline = 0.0  # the deadline the pending timer was set for
        self._refused = False
        self._head_timeout_s = header_timeout_s()

    # --- timers -------------------------------------------------------------------------
    # One timer per connection, not one per request: each head moves the deadline, and the
    # timer, when it fires early (it was set for an earlier head), waits for the new one.
    # Arming and cancelling a timer per request cost a few microseconds of every request.
    def _arm(self) -> None:
        self._head_deadline = self.loop.time() + self._head_timeout_s
        if self._head_timer is None:
            self._set_timer()

    def _set_timer(self) -> None:
        self._timer_deadline = self._head_deadline
        self._head_timer = self.loop.call_at(self._head_deadline, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return  # between heads: the next one arms the timer again
        if self._head_deadline > self._timer_deadline:  # set for an earlier head
            # (not loop.time() < deadline: uvloop's millisecond clock can fire a timer a
            # hair early, and re-arming for the same deadline would spin)
            self._set_timer()
            return
        self._refuse(408, f"request head not received within {self._head_timeout_s:g} s")

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        self._disarm()
        body = b'{"error": "' + message.encode("ascii", "replace").replace(b'"', b"'") + b'"}'
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        self.transport.write(
            head + b"content-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
        )
        self.transport.close()

    # --- protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        try:
            super().data_received(data)
        except _HeadRefused:  # raised by a callback, answered there
            return
        if self._in_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._refuse(431, f"request head: expected at most {MAX_HEADER_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._refused:  # the head was refused by a callback; the answer is sent
            return
        super().send_400_response(msg)

    # --- parser callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # a kept-alive connection's next request: its own deadline
            self._in_head = True
            self._arm()
        self._head_bytes = self._field_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._field_bytes += len(name) + len(value) + 4
        if len(self.headers) > MAX_HEADERS:
            self._refuse(431, f"headers: expected at most {MAX_HEADERS}; received more than that")
            raise _HeadRefused
        if self._field_bytes > MAX_HEADER_BYTES:
            self._refuse(431, f"request head: expected at most {MAX_HEADER_BYTES} bytes")
            raise _HeadRefused

    def on_headers_complete(self) -> None:
        self._in_head = False  # the timer stays: when it fires between heads, it stops
        super().on_headers_complete()
