"""A hostile client's corpus against a real server on 127.0.0.1: every case gets a 4xx
naming what was wrong (never a 500, never a silent wrong answer), and after every case the
server still answers ``/ping`` and a correct prediction."""

from __future__ import annotations

import gzip
import io
import socket
import time

import numpy as np
import orjson
import pytest
from serve_helpers import article_model, server

import neurocloud as nc

GOOD = b'{"x": [4.5]}'
INFER = "/v2/models/seed/infer"


def raw(port: int, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def post(path: str, body: bytes, *headers: bytes, method: bytes = b"POST") -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return (
        method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


def v2(tensor: dict, **extra) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", **tensor}], **extra}
    )


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def huge_npy() -> bytes:
    body = npy(np.zeros((2, 1)))
    return body.replace(b"(2, 1)", b"(10000000000000, 1)")


JSON = b"Content-Type: application/json"
CSV = b"Content-Type: text/csv"
GZIP = b"Content-Encoding: gzip"
BOMB = gzip.compress(b"1\n" * 3_000_000)  # 5.9 KB that inflates to 6 MB, 3M rows
DIMS_65 = [1] * 65
CASES = [
    # (id, request, status, words in the answer)
    (
        "json-tensor-over-64-dims",
        post(INFER, v2({"shape": DIMS_65, "data": [1.0]}), JSON),
        400,
        ["inputs[0].shape", "64 dimensions", "65"],
    ),
    (
        "binary-tensor-over-64-dims",
        post(
            INFER,
            (h := v2({"shape": DIMS_65, "parameters": {"binary_data_size": 4}}))
            + np.float32(1).tobytes(),
            b"Inference-Header-Content-Length: %d" % len(h),
        ),
        400,
        ["inputs[0].shape", "64 dimensions"],
    ),
    (
        "header-length-non-ascii-digit",
        post(INFER, v2({"data": [1.0]}), "Inference-Header-Content-Length: ²".encode("latin-1")),
        400,
        ["Inference-Header-Content-Length", "byte count"],
    ),
    (
        "npy-header-claims-huge-shape",
        post("/invocations", huge_npy(), b"Content-Type: application/x-npy"),
        400,
        ["application/x-npy", "(10000000000000, 1)", "bytes"],
    ),
    (
        "explain-baseline-nested-1000-deep",
        post(
            "/explain",
            b'{"x": [4.5], "parameters": {"method": "ig", "baseline": '
            + b"[" * 1000
            + b"1"
            + b"]" * 1000
            + b"}}",
            JSON,
        ),
        400,
        ["parameters.baseline", "nested at most"],
    ),
    (
        "binary-data-output-string-false",
        post(INFER, v2({"data": [1.0]}, parameters={"binary_data_output": "false"}), JSON),
        400,
        ["binary_data_output", "true or false", "'false'"],
    ),
    (
        "binary-data-string-no",
        post(
            INFER,
            v2({"data": [1.0]}, outputs=[{"name": "y", "parameters": {"binary_data": "no"}}]),
            JSON,
        ),
        400,
        ["outputs[0].parameters.binary_data", "true or false", "'no'"],
    ),
    (
        "fp16-out-of-range",
        post(INFER, v2({"datatype": "FP16", "data": [70000]}), JSON),
        400,
        ["inputs[0].data", "FP16", "70000"],
    ),
    (
        "fp32-given-json-booleans",
        post(INFER, v2({"data": [True]}), JSON),
        400,
        ["inputs[0].data", "FP32 values", "bool"],
    ),
    (
        "csv-in-utf-16",
        post(
            "/invocations",
            "4.5\n".encode("utf-16"),
            b"Content-Type: text/csv; charset=utf-16",
        ),
        415,
        ["charset", "utf-8", "'utf-16'"],
    ),
    (
        "uint8-negative",
        post(INFER, v2({"datatype": "UINT8", "data": [-1]}), JSON),
        400,
        ["inputs[0].data", "UINT8", "[0, 255]", "-1"],
    ),
    ("id-number", post(INFER, v2({"data": [1.0]}, id=7), JSON), 400, ["id", "a string", "7"]),
    (
        "id-object",
        post(INFER, v2({"data": [1.0]}, id={"a": 1}), JSON),
        400,
        ["id", "a string", "dict"],
    ),
    (
        "gzip-bomb-csv-over-the-row-cap",
        post("/invocations", BOMB, CSV, GZIP),
        413,
        ["max_request_rows", "NEUROCLOUD_MAX_REQUEST_ROWS", "1000000"],
    ),
    (
        "deflate-with-trailing-stream",
        post(
            "/invocations",
            __import__("zlib").compress(b"1\n") * 2,
            CSV,
            b"Content-Encoding: deflate",
        ),
        400,
        ["one deflate stream", "bytes after the end"],
    ),
    (
        "explanation-over-the-work-bound",
        post(
            "/explain",
            orjson.dumps(
                {
                    "x": [[4.5]] * 64,
                    "parameters": {
                        "method": "smoothgrad",
                        "over": "ig",
                        "samples": 1024,
                        "steps": 128,
                    },
                }
            ),
            JSON,
        ),
        413,
        ["MAX_POINTS", "rows x steps x samples"],
    ),
    (
        "header-value-of-64-kb",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
        431,
        ["request head", "32768 bytes"],
    ),
    (
        "header-value-of-64-kb-in-one-field-read-at-once",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 40000
        + b"\r\nConnection: close\r\n\r\n",
        431,
        ["32768 bytes"],
    ),
    (
        "300-headers",
        b"GET /ping HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: 1\r\n" % i for i in range(300))
        + b"Connection: close\r\n\r\n",
        431,
        ["headers", "at most 100"],
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = nc.save(article_model(), tmp_path_factory.mktemp("hostile") / "seed")
    with server(path, "--reload-interval", "0", env={"NEUROCLOUD_HEADER_TIMEOUT_S": "1"}) as s:
        yield s


def assert_healthy(port: int) -> None:
    status, _, _ = raw(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200
    status, _, body = raw(port, post("/invocations", GOOD, JSON))
    assert status == 200 and len(orjson.loads(body)["y"]) == 1


@pytest.mark.parametrize(
    ("request_bytes", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_hostile_case_is_a_4xx_naming_the_problem(served, request_bytes, status, words):
    got, _, body = raw(served.port, request_bytes)
    assert got == status, body[:300]
    message = orjson.loads(body)["error"]
    for word in words:
        assert word in message, message
    assert_healthy(served.port)


def test_gzip_body_of_several_members_decodes_every_member(served):
    body = gzip.compress(b"0.5\n1.5\n") + gzip.compress(b"2.5\n")
    status, _, answer = raw(served.port, post("/invocations", body, CSV, GZIP))
    assert status == 200
    assert len(orjson.loads(answer)["y"]) == 3
    assert_healthy(served.port)


def test_405_answer_carries_an_allow_header(served):
    status, headers, body = raw(
        served.port, b"GET /invocations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 405 and headers["allow"] == "POST"
    assert "POST" in orjson.loads(body)["error"]
    assert_healthy(served.port)


def test_half_sent_headers_get_408_after_the_header_timeout(served):
    # the server runs with NEUROCLOUD_HEADER_TIMEOUT_S=1; the socket waits up to 30 s
    status, _, body = raw(served.port, b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert status == 408
    assert "within 1 s" in orjson.loads(body)["error"]
    assert_healthy(served.port)


def test_each_kept_alive_request_gets_the_whole_header_timeout(served):
    # One timer per connection: set for the first head, it must not cut the second one
    # short. The second head starts 0.6 s into the 1 s timeout of the first and trickles.
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(0.6)  # the scenario: the second head begins late in the first's window
        started = time.monotonic()
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        waited = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert waited >= 0.95, f"408 after {waited:.2f} s of a 1 s timeout"
    assert_healthy(served.port)


def test_a_connection_idle_past_the_header_timeout_still_serves_its_next_request(served):
    # The connection's timer fires between heads (1 s timeout, 1.3 s idle): it must stop
    # there, not refuse the next head, which arms a timer of its own.
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(1.3)  # the scenario: idle past the timeout (uvicorn keeps it 5 s)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_many_half_sent_heads_are_all_released(served):
    socks = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(50)]
    try:
        for sock in socks:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        for sock in socks:  # each is answered 408 and closed, none held
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 408")
    finally:
        for sock in socks:
            sock.close()
    assert_healthy(served.port)
