"""Request bodies (serve/body.py): the payload limit before and after decompression, every
gzip member, zlib-wrapped and raw deflate, bounded slices of inflation, and errors that
name what was wrong."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from neurocloud.serve.body import INLINE_BYTES, Inflater, decompress, off_loop, read_body
from neurocloud.serve.errors import ServeError


def test_every_gzip_member_is_decoded_and_zero_padding_is_allowed():
    body = gzip.compress(b"0.5\n1.5\n") + gzip.compress(b"2.5\n") + b"\0" * 8
    assert decompress(body, "gzip", 1000) == b"0.5\n1.5\n2.5\n"


@pytest.mark.parametrize("wrap", [zlib.compress, lambda data: zlib.compress(data)[2:-4]])
def test_deflate_zlib_wrapped_or_raw(wrap):
    assert decompress(wrap(b"1,2\n" * 100), "deflate", 1000) == b"1,2\n" * 100


def test_a_bomb_is_refused_past_the_limit_naming_the_setting():
    with pytest.raises(ServeError) as error:
        decompress(gzip.compress(b"0" * 1_000_000), "gzip", 10_000)
    assert error.value.status == 413
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB" in error.value.message
    assert "after decompression" in error.value.message


@pytest.mark.parametrize(
    ("body", "encoding", "status", "words"),
    [
        (gzip.compress(b"1.5\n")[:-6], "gzip", 400, "truncated"),
        (b"not gzip at all", "gzip", 400, "invalid data"),
        (zlib.compress(b"1") + b"junk", "deflate", 400, "after the end of the stream"),
        (b"x", "br", 415, "gzip, deflate or identity"),
    ],
)
def test_bad_compressed_bodies_say_what_was_wrong(body, encoding, status, words):
    with pytest.raises(ServeError) as error:
        decompress(body, encoding, 1000)
    assert error.value.status == status and words in error.value.message


def test_inflation_runs_in_bounded_slices():
    inflater = Inflater(gzip.compress(b"7" * 300_000), "gzip", 10**6)
    slices = 0
    while not inflater.run(50_000):
        slices += 1
        assert sum(map(len, inflater.parts)) <= 50_000 * slices
    assert inflater.result() == b"7" * 300_000 and slices >= 5


class FakeRequest:
    """The part of a Starlette request that read_body uses: ``receive``."""

    def __init__(self, chunks: list[bytes], disconnect: bool = False) -> None:
        self.messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        if disconnect:
            self.messages[-1] = {"type": "http.disconnect"}

    async def receive(self) -> dict:
        return self.messages.pop(0)


def test_read_body_joins_chunks_and_undoes_the_encoding():
    packed = gzip.compress(b"1.5\n2.5\n")
    request = FakeRequest([packed[:5], packed[5:]])
    body = asyncio.run(read_body(request, {"content-encoding": " GZIP "}, 1000))
    assert body == b"1.5\n2.5\n"


@pytest.mark.parametrize(
    ("request_", "headers", "words"),
    [
        (FakeRequest([b"x"]), {"content-length": "5000"}, "Content-Length 5000"),
        (FakeRequest([b"x" * 600, b"x" * 600]), {}, "more than 1000 bytes"),
    ],
)
def test_read_body_refuses_past_the_limit(request_, headers, words):
    with pytest.raises(ServeError) as error:
        asyncio.run(read_body(request_, headers, 1000))
    assert error.value.status == 413 and words in error.value.message


def test_a_disconnect_before_the_end_is_a_400():
    with pytest.raises(ServeError, match="disconnect"):
        asyncio.run(read_body(FakeRequest([b"a", b"b"], disconnect=True), {}, 1000))


def test_small_bodies_are_handled_inline_and_large_ones_in_a_thread():
    import threading

    async def where(size):
        return await off_loop(size, lambda: threading.current_thread())

    main = threading.main_thread()
    assert asyncio.run(where(INLINE_BYTES)) is main
    assert asyncio.run(where(INLINE_BYTES + 1)) is not main
