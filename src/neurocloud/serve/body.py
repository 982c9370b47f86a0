"""Reading a request body within the payload limit, undoing gzip/deflate encoding.

The limit applies to the bytes received and again to the decompressed bytes, so neither a
large upload nor a small "zip bomb" can exhaust memory; both get 413 with the limit named.
A gzip body of several members (``cat a.gz b.gz``) decodes to all of them, as ``gunzip``
does. Inflating runs on the event loop only for the first :data:`INLINE_BYTES` of output;
a body that inflates to more is finished in a worker thread, so ``/ping`` never waits for
it, and a small body costs no thread hop.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

from neurocloud.serve.errors import ServeError, bad_request
from neurocloud.serve.switching import share_the_gil

__all__ = ["INLINE_BYTES", "decompress", "off_loop", "read_body"]

#: bodies up to this size (after decompression) are decoded on the event loop
INLINE_BYTES = 64 * 1024
#: large bodies are inflated and parsed by these threads, two at a time: more would only
#: take turns on the GIL with the event loop, and each holds its body's parsed copy
_DECODERS = ThreadPoolExecutor(2, thread_name_prefix="neurocloud-decode")
T = TypeVar("T")


async def off_loop(size: int, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``: inline for a body of at most :data:`INLINE_BYTES` (``size``),
    else in a decoding thread while the event loop goes on serving."""
    if size <= INLINE_BYTES:
        return function(*args)
    share_the_gil()
    return await asyncio.get_running_loop().run_in_executor(_DECODERS, function, *args)


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _too_large(limit: int, received: str) -> ServeError:
    return ServeError(
        413,
        f"body: expected at most {limit} bytes ({limit / 1048576:g} MB, set by "
        f"SAGEMAKER_MAX_PAYLOAD_IN_MB); received {received}",
    )


async def read_body(request: Request, headers: dict[str, str], limit: int) -> bytes:
    """The request's body, decompressed per Content-Encoding; 413 past ``limit`` bytes.

    ``headers`` maps lower-case header names to values.
    """
    length = headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
        raise _too_large(limit, f"Content-Length {length}")
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise bad_request("body", "the whole body", "a disconnect before its end")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, f"more than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = headers.get("content-encoding")
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    inflater = Inflater(body, encoding.strip().lower(), limit)
    if not inflater.run(INLINE_BYTES):
        share_the_gil()
        await asyncio.get_running_loop().run_in_executor(_DECODERS, inflater.run)
    return inflater.result()


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``gzip`` (every member) or ``deflate`` (zlib, or raw deflate as some clients
    send it); 413 past ``limit`` bytes of output, 400 for corrupt or truncated data."""
    inflater = Inflater(body, encoding, limit)
    inflater.run()
    return inflater.result()


class Inflater:
    """Decompresses ``body`` in slices of bounded output (see :meth:`run`)."""

    def __init__(self, body: bytes, encoding: str, limit: int) -> None:
        if encoding not in _WBITS:
            raise bad_request(
                "Content-Encoding", "gzip, deflate or identity", repr(encoding), status=415
            )
        self.encoding, self.limit = encoding, limit
        self.pending = body
        self.parts: list[bytes] = []
        self.size = 0
        self.members = 0
        self.decoder = None
        self.done = False

    def _start(self) -> None:
        wbits = _WBITS[self.encoding]
        decoder = zlib.decompressobj(wbits)
        if self.encoding == "deflate" and self.members == 0:
            try:  # zlib-wrapped (RFC 1950) as the standard says, else raw deflate
                zlib.decompressobj(wbits).decompress(self.pending[:64], 1)
            except zlib.error:
                decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        self.decoder = decoder
        self.members += 1

    def run(self, budget: int | None = None) -> bool:
        """Inflate up to ``budget`` more bytes (all with ``None``); ``True`` once finished."""
        produced = 0
        while not self.done:
            if budget is not None and produced >= budget:
                return False
            if self.decoder is None:
                self._start()
            step = self.limit + 1 - self.size
            if budget is not None:
                step = min(step, budget - produced)
            try:
                data = self.decoder.decompress(self.pending, max(step, 1))
            except zlib.error as exc:
                raise bad_request(
                    "body", f"{self.encoding}-compressed data", f"invalid data ({exc})"
                ) from None
            produced += len(data)
            self.size += len(data)
            if self.size > self.limit:
                raise _too_large(self.limit, "more than that after decompression")
            self.parts.append(data)
            self.pending = self.decoder.unconsumed_tail
            if self.decoder.eof:
                rest = self.decoder.unused_data
                self.decoder = None
                if not rest.strip(b"\0"):  # trailing zero padding, as gunzip allows
                    self.done = True
                elif self.encoding == "deflate":
                    raise bad_request(
                        "body",
                        "one deflate stream",
                        f"{len(rest)} bytes after the end of the stream",
                    )
                else:
                    self.pending = rest  # the next gzip member
            elif not self.pending and not data:
                raise bad_request(
                    "body", f"complete {self.encoding} data", "truncated compressed data"
                )
        return True

    def result(self) -> bytes:
        return b"".join(self.parts)
