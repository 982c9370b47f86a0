"""Large JSON bodies are parsed a piece at a time (serve/json_pieces.py): the same rows as
one ``orjson.loads``, no parse call over a bounded size, and a 413 naming ``max_json_mb``
for a large document in a shape that cannot be read in pieces."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.serve import codecs, create_app, json_pieces, v2_codec
from neurocloud.serve.config import ServeConfig
from neurocloud.serve.errors import ServeError
from neurocloud.serve.signature import Signature

SIG = Signature("x", 2, "y", 1, np.dtype("float64"))
LIMIT = 64 * 1024


def rows_body(shape: str, rows: np.ndarray, space: str) -> bytes:
    """``rows`` as a JSON body of ``shape``, items separated by ``space``."""
    items = [orjson.dumps(r.tolist()) for r in rows]
    if shape == "instances":
        items = [b'{"x": ' + item + b"}" for item in items]
    joined = ("," + space).encode().join(items)
    array = b"[" + space.encode() + joined + space.encode() + b"]"
    return {
        "list": array,
        "named": b'{"x":' + array.replace(b"[", b"[ ", 1) + b"}",
        "instances": b'{ "instances" : ' + array + b"}",
        "inputs": b'{"inputs": ' + array + b', "parameters": {"a": "[,]"}}',
        "inputs-named": b'{"inputs": {' + space.encode() + b'"x": ' + array + b"}}",
    }[shape]


def exact(body: bytes, signature: Signature = SIG):
    """What the exact parser gives (one orjson.loads, no pieces)."""
    limit = codecs.large_bodies.FAST_CHARS
    try:
        codecs.large_bodies.FAST_CHARS = 1 << 40  # every body through orjson.loads
        return codecs._decode_json(body, signature)
    finally:
        codecs.large_bodies.FAST_CHARS = limit


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shape=st.sampled_from(["list", "named", "instances", "inputs", "inputs-named"]),
    count=st.integers(1, 40),
    space=st.sampled_from(["", " ", "\n  ", "\t"]),
    ints=st.booleans(),
)
def test_pieces_give_the_rows_of_one_parse(shape, count, space, ints, monkeypatch):
    monkeypatch.setattr(json_pieces, "_JUMPS", (64, 8, 0))  # many pieces in a small body
    rng = np.random.default_rng(count)
    rows = rng.integers(-9, 9, (count, 2)) if ints else rng.normal(size=(count, 2))
    body = rows_body(shape, rows, space)
    found = codecs._json_in_pieces(body, SIG, None)
    assert found is not None
    np.testing.assert_array_equal(found[0], exact(body)[0])
    assert found[1] == exact(body)[1]


@pytest.mark.parametrize(
    "body",
    [
        b"[[1, 2],, [3, 4]]",  # an empty value
        b"[[1, 2], [3, 4],]",  # a trailing comma
        b'[[1, 2], ["a", 4]]',  # not numbers
        b"[[1, 2], [3]]",  # ragged
        b'{"instances": [{"x": [1, 2]}, [3, 4]]}',  # objects and rows mixed
        b'{"x": [[1, 2]], "x": [[3, 4]]}',  # the key twice: the last one counts
        b'{"other": [[1, 2]]}',
        b'{"inputs": {"y": [[1, 2]]}}',  # not the input's name
        b'{"inputs": {"x": [[1, 2]], "z": 1}}',  # more than the one input
    ],
)
def test_anything_unusual_is_left_to_the_exact_parser(body, monkeypatch):
    monkeypatch.setattr(json_pieces, "_JUMPS", (4, 0))
    assert codecs._json_in_pieces(body, SIG, None) is None


def test_no_parse_call_holds_the_whole_large_body(monkeypatch):
    rows = np.random.default_rng(0).normal(size=(20_000, 2))
    real, sizes = orjson.loads, []

    def recording(data):
        sizes.append(len(data))
        return real(data)

    monkeypatch.setattr(orjson, "loads", recording)
    for shape in ("list", "named", "instances", "inputs-named"):
        body = rows_body(shape, rows, "\n  ")  # not the numbers-only text reader's shape
        assert len(body) > 4 * json_pieces.PIECE_BYTES
        sizes.clear()
        decoded, _ = codecs.decode_request(body, "application/json", SIG, None, LIMIT)
        np.testing.assert_array_equal(decoded, rows)
        assert max(sizes) < 2 * json_pieces.PIECE_BYTES, shape
    tensor = {"name": "x", "shape": [20_000, 2], "datatype": "FP64", "data": rows.tolist()}
    body = orjson.dumps({"id": "a", "inputs": [tensor], "outputs": [{"name": "y"}]})
    sizes.clear()
    request = v2_codec.decode_infer(body, None, SIG, None, LIMIT)
    np.testing.assert_array_equal(request.rows, rows)
    assert request.id == "a" and request.outputs == ["y"]
    assert max(sizes) < 2 * json_pieces.PIECE_BYTES


def test_a_large_document_in_another_shape_is_a_413_naming_the_setting():
    body = orjson.dumps({"x": [[1.0, 2.0]] * 10, "parameters": {"pad": "a" * LIMIT}})
    with pytest.raises(ServeError) as error:
        codecs.decode_request(body, "application/json", SIG, None, LIMIT)
    assert error.value.status == 413
    assert "max_json_mb" in error.value.message and "NEUROCLOUD_MAX_JSON_MB" in error.value.message


def test_max_json_mb_is_a_setting_and_answers_over_http(tmp_path):
    assert ServeConfig.from_env({"NEUROCLOUD_MAX_JSON_MB": "0.5"}).max_json_bytes == 1 << 19
    with pytest.raises(ValueError, match="max_json_mb"):
        ServeConfig(max_json_mb=0)
    path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0), tmp_path / "m")
    with TestClient(create_app(path, max_json_mb=0.1)) as client:
        pretty = rows_body("named", np.ones((30_000, 2)), "\n ")
        assert client.post("/invocations", content=pretty).status_code == 200
        odd = orjson.dumps({"x": [[1.0, 2.0]], "parameters": {"pad": "a" * 200_000}})
        response = client.post("/invocations", content=odd)
        assert response.status_code == 413 and "max_json_mb" in response.json()["error"]
        assert client.get("/ping").status_code == 200


def test_envelopes_and_explain_parameters_over_the_json_limit_are_still_read(tmp_path):
    # {"inputs": {"x": rows}} is read in pieces; an explanation's parameters beside large
    # rows are read from the whole (payload-bounded) body, not refused by max_json_mb.
    path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0), tmp_path / "m")
    rows = np.random.default_rng(1).normal(size=(30_000, 2))
    with TestClient(create_app(path, max_json_mb=0.1)) as client:
        envelope = rows_body("inputs-named", rows, "\n ")
        assert len(envelope) > 2 * 100_000
        answer = client.post("/invocations", content=envelope)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["outputs"]) == len(rows)  # the same form as one parse
    wide = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=64, seed=0), tmp_path / "w")
    many = np.random.default_rng(2).normal(size=(1000, 64))
    with TestClient(create_app(wide, max_json_mb=0.1)) as client:
        explain = orjson.dumps({"x": many.tolist(), "parameters": {"method": "saliency"}})
        assert len(explain) > 0.1 * 2**20
        answer = client.post("/explain", content=explain)
        assert answer.status_code == 200, answer.text
        assert np.asarray(answer.json()["attributions"]).shape == (1000, 64)
