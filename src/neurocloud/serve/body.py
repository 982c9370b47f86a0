"""Reading a request body within the payload limit, undoing gzip/deflate encoding.

The limit applies to the bytes received and again to the decompressed bytes, so neither a
large upload nor a small "zip bomb" can exhaust memory; both get 413 with the limit named.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from neurocloud.serve.errors import ServeError, bad_request

__all__ = ["read_body"]

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
    if length is not None and length.isdigit() and int(length) > limit:
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
    return decompress(body, encoding.strip().lower(), limit)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``gzip`` or ``deflate`` (zlib, or raw deflate as some clients send it)."""
    if encoding not in _WBITS:
        raise bad_request(
            "Content-Encoding", "gzip, deflate or identity", repr(encoding), status=415
        )
    attempts = [_WBITS[encoding]] + ([-zlib.MAX_WBITS] if encoding == "deflate" else [])
    for wbits in attempts:
        decoder = zlib.decompressobj(wbits)
        try:
            data = decoder.decompress(body, limit + 1)
        except zlib.error as exc:
            error = exc
            continue
        if len(data) > limit or decoder.unconsumed_tail:
            raise _too_large(limit, "more than that after decompression")
        if not decoder.eof:
            raise bad_request("body", f"complete {encoding} data", "truncated compressed data")
        return data
    raise bad_request("body", f"{encoding}-compressed data", f"invalid data ({error})")
