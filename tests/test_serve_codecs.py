"""SageMaker body codecs (serve/codecs.py, with the wire table of serve/wire.py): content
types and their aliases, Accept negotiation by q-value, every request form both ways, and
the row limit."""

from __future__ import annotations

import io

import numpy as np
import pytest

from neurocloud.serve import codecs, wire
from neurocloud.serve.errors import ServeError
from neurocloud.serve.signature import Signature

SIG = Signature("x", 2, "y", 1, np.dtype("float32"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", wire.JSON),
        ("Text/JSON; charset=utf-8", wire.JSON),
        ("application/csv", wire.CSV),
        ("application/npy", wire.NPY),
        ("application/x-jsonlines", wire.JSONLINES),
        ("application/xml", None),
        ("", None),
    ],
)
def test_media_type_aliases(header, expected):
    assert codecs.media_type(header) == expected


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/csv;q=0.5, application/x-npy", "application/x-npy"),
        ("application/x-npy;q=0.2, text/csv;q=0.9", "text/csv"),
        ("image/png, application/jsonlines", "application/jsonlines"),
        ("text/*", "text/csv"),
        ("application/json;q=0, */*", "text/csv"),
        ("application/jsonl", "application/jsonlines"),
    ],
)
def test_accept_negotiation(accept, chosen):
    assert codecs.negotiate(accept, "application/json") == chosen


def test_accept_negotiation_refuses_unsupported():
    with pytest.raises(ServeError) as info:
        codecs.negotiate("image/png, text/html;q=0.5", "application/json")
    assert info.value.status == 406 and "image/png" in info.value.message


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, wire.CSV),  # the default
        ("text/csv;q=0, */*", wire.JSON),  # q=0 refuses the default too
        ("application/*", wire.JSON),
        ("text/html, application/json;q=0.1", wire.JSON),
    ],
)
def test_negotiate_falls_back_to_the_default_and_refuses_q0(accept, expected):
    assert codecs.negotiate(accept, wire.CSV) == expected


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "content_type", "form"),
    [
        (b'{"x": [[1, 2], [3, 4]]}', wire.JSON, "named"),
        (b'{"instances": [{"x": [1, 2]}, {"x": [3, 4]}]}', wire.JSON, "instances"),
        (b'{"inputs": [[1, 2], [3, 4]]}', wire.JSON, "inputs"),
        (b"[[1, 2], [3, 4]]", wire.JSON, "list"),
        (b"1,2\n3,4\n", wire.CSV, "csv"),
        (b'[1, 2]\n{"x": [3, 4]}\n', wire.JSONLINES, "jsonlines"),
        (npy(np.array([[1, 2], [3, 4]], np.float64)), wire.NPY, "npy"),
    ],
)
def test_every_request_form_decodes_to_the_same_rows(body, content_type, form):
    rows, got = codecs.decode_request(body, content_type, SIG)
    assert got == form
    assert rows.dtype == np.float32 and rows.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("form", "accept", "expected"),
    [
        ("named", wire.JSON, b'{"y":[[0.5],[1.5]]}'),
        ("instances", wire.JSON, b'{"predictions":[[0.5],[1.5]]}'),
        ("inputs", wire.JSON, b'{"outputs":[[0.5],[1.5]]}'),
        ("list", wire.JSON, b"[[0.5],[1.5]]"),
        ("csv", wire.JSON, b'{"y":[[0.5],[1.5]]}'),
        ("named", wire.CSV, b"0.5\n1.5\n"),
        ("named", wire.JSONLINES, b"[0.5]\n[1.5]\n"),
    ],
)
def test_responses_mirror_the_request_form(form, accept, expected):
    outputs = np.array([[0.5], [1.5]], np.float32)
    assert codecs.encode_response(outputs, accept, form, SIG) == expected


def test_npy_response_round_trips():
    outputs = np.array([[0.5], [np.nan]], np.float32)
    body = codecs.encode_response(outputs, wire.NPY, "named", SIG)
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), outputs)


def test_non_finite_outputs_are_a_422_in_json():
    with pytest.raises(ServeError) as error:
        codecs.encode_response(np.array([[np.inf]], np.float32), wire.JSON, "named", SIG)
    assert error.value.status == 422 and "application/x-npy" in error.value.message


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"1,2\n" * 5, wire.CSV), (b"[1, 2]\n" * 5, wire.JSONLINES), (b"[[1, 2]]" * 1, wire.JSON)],
)
def test_rows_past_max_request_rows_are_a_413_naming_it(body, content_type):
    if content_type == wire.JSON:
        body = b"[" + b",".join([b"[1, 2]"] * 5) + b"]"
    with pytest.raises(ServeError) as error:
        codecs.decode_request(body, content_type, SIG, max_rows=4)
    assert error.value.status == 413 and "max_request_rows" in error.value.message


def test_a_csv_header_must_name_the_models_features():
    named = Signature("x", 2, "y", 1, np.dtype("float32"), feature_names=("a", "b"))
    rows, _ = codecs.decode_request(b"a,b\n1,2\n", wire.CSV, named)
    assert rows.tolist() == [[1, 2]]
    with pytest.raises(ServeError, match=r"header: expected the model's features \['a', 'b'\]"):
        codecs.decode_request(b"b,a\n1,2\n", wire.CSV, named)
