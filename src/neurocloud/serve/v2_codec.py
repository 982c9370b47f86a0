"""Open Inference Protocol (KServe V2) infer requests and responses, in JSON or with the
binary tensor extension (raw little-endian tensors after the JSON header, whose length is
given in the ``Inference-Header-Content-Length`` header).

>>> import numpy as np
>>> from neurocloud.serve.signature import Signature
>>> sig = Signature("x", 1, "y", 1, np.dtype("float32"))
>>> req = decode_infer(b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32",'
...                    b' "data": [4.5]}]}', None, sig)
>>> req.rows.tolist(), req.binary_output
([[4.5]], False)
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from neurocloud.serve import json_pieces
from neurocloud.serve.codecs import check_finite, check_rows, parse_json
from neurocloud.serve.errors import bad_request, describe_value
from neurocloud.serve.large_bodies import CHUNK_ROWS, FAST_CHARS, dump_array
from neurocloud.serve.signature import DATATYPES, Signature, v2_datatype

__all__ = ["InferRequest", "decode_infer", "encode_outputs"]

HEADER_LENGTH = "inference-header-content-length"
MAX_DIMS = 64  # NumPy's limit, and far above any model's
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_NUMERIC = ", ".join(DATATYPES)


@dataclass
class InferRequest:
    """A decoded infer request: the model's rows, how to answer, and the raw header."""

    rows: np.ndarray
    id: Any
    outputs: list[str] | None
    binary_output: bool
    binary_outputs: dict[str, bool]
    parameters: dict[str, Any]


def _header(
    body: bytes, header_length: str | None, limit: int | None = None
) -> tuple[dict[str, Any], memoryview]:
    if header_length is None:
        data = _in_pieces(body, limit) if len(body) > FAST_CHARS else None
        if data is None:
            data = parse_json(body, limit=limit)
        binary = memoryview(b"")
    else:
        text = header_length.strip()
        if not (text.isascii() and text.isdigit()) or int(text) > len(body):
            raise bad_request(
                "Inference-Header-Content-Length",
                f"a byte count of at most the body's {len(body)} bytes",
                repr(header_length),
            )
        size = int(text)
        data = parse_json(body[:size], "body (JSON header)", limit)
        binary = memoryview(body)[size:]
    if not isinstance(data, dict):
        raise bad_request("body", 'a JSON object {"inputs": [...]}', describe_value(data))
    return data, binary


def _in_pieces(body: bytes, limit: int | None) -> dict[str, Any] | None:
    """A large request whose one input tensor's ``data`` is read a piece at a time
    (:mod:`~neurocloud.serve.json_pieces`); ``None`` for any other shape."""
    key = body.find(b'"data"')
    while key >= 0:
        colon = key + 6
        while body[colon : colon + 1] in (b" ", b"\t", b"\r", b"\n"):
            colon += 1
        if body[colon : colon + 1] == b":":
            break
        key = body.find(b'"data"', key + 1)
    start = json_pieces.array_start(body, colon + 1) if key >= 0 else None
    if start is None:
        return None
    found = json_pieces.parse_around(body, start, json_pieces.numeric_rows(), limit)
    if found is None:
        return None
    data, array = found
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not (isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], dict)):
        return None
    if inputs[0].get("data") != json_pieces.HOLE:
        return None
    inputs[0]["data"] = array
    return data


def _object_list(value: Any, field: str, item: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise bad_request(field, f"a list of {item} objects", describe_value(value))
    return value


def _parameters(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(field, "an object", describe_value(value))
    return value


def decode_infer(
    body: bytes,
    header_length: str | None,
    signature: Signature,
    max_rows: int | None = None,
    max_json_bytes: int | None = None,
) -> InferRequest:
    """Decode an infer (or explain) request for a model with ``signature``; 400 on errors,
    413 past ``max_rows`` rows or for JSON over ``max_json_bytes`` that is not read in
    pieces."""
    data, binary = _header(body, header_length, max_json_bytes)
    inputs = _object_list(data.get("inputs"), "inputs", "tensor")
    if len(inputs) != 1:
        raise bad_request(
            "inputs", f"1 input tensor ({signature.input_name!r})", f"{len(inputs)} tensors"
        )
    tensor = inputs[0]
    name = tensor.get("name")
    if name != signature.input_name:
        raise bad_request("inputs[0].name", repr(signature.input_name), describe_value(name))
    array, used = _tensor(tensor, binary, "inputs[0]")
    if used != len(binary):
        raise bad_request(
            "body",
            f"{used} bytes of binary tensor data after the JSON header",
            f"{len(binary)} bytes",
        )
    rows = signature.rows(array, "inputs[0]")
    check_rows(len(rows), max_rows, "inputs[0]")
    parameters = _parameters(data.get("parameters"), "parameters")
    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("id", "a string (Open Inference Protocol)", describe_value(request_id))
    requested = data.get("outputs")
    names, flags = None, {}
    if requested is not None:
        names = []
        for i, output in enumerate(_object_list(requested, "outputs", "output")):
            if output.get("name") != signature.output_name:
                raise bad_request(
                    f"outputs[{i}].name",
                    repr(signature.output_name),
                    describe_value(output.get("name")),
                )
            names.append(output["name"])
            flag = _parameters(output.get("parameters"), f"outputs[{i}].parameters").get(
                "binary_data"
            )
            if flag is not None:
                flags[output["name"]] = _flag(flag, f"outputs[{i}].parameters.binary_data")
    return InferRequest(
        rows,
        request_id,
        names,
        _flag(parameters.get("binary_data_output", False), "parameters.binary_data_output"),
        flags,
        parameters,
    )


def _flag(value: Any, field: str) -> bool:
    """A boolean parameter: ``true`` or ``false`` only (``"false"`` is not false)."""
    if not isinstance(value, bool):
        raise bad_request(field, "true or false (a JSON boolean)", describe_value(value))
    return value


def _tensor(tensor: dict[str, Any], binary: memoryview, field: str) -> tuple[np.ndarray, int]:
    """The tensor's array, and how many bytes of ``binary`` it used."""
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise bad_request(
            f"{field}.shape", "a list of non-negative integers", describe_value(shape)
        )
    if len(shape) > MAX_DIMS:
        raise bad_request(
            f"{field}.shape", f"at most {MAX_DIMS} dimensions", f"{len(shape)} dimensions"
        )
    datatype = tensor.get("datatype")
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise bad_request(
            f"{field}.datatype", f"a numeric datatype ({_NUMERIC})", describe_value(datatype)
        )
    count = math.prod(shape)  # Python integers: a huge shape cannot wrap around to 0
    size = _parameters(tensor.get("parameters"), f"{field}.parameters").get("binary_data_size")
    if size is not None:
        expected = count * dtype.itemsize
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or size != expected
            or (len(binary) < size)
        ):
            raise bad_request(
                f"{field}.parameters.binary_data_size",
                f"{expected} bytes for shape {shape} of {datatype} "
                f"({len(binary)} binary bytes follow the JSON header)",
                describe_value(size),
            )
        return np.frombuffer(binary[:size], dtype=dtype).reshape(shape), size
    if "data" not in tensor:
        raise bad_request(field, "'data' or parameters.binary_data_size", "neither")
    try:
        array = np.asarray(tensor["data"])
    except ValueError:
        raise bad_request(
            f"{field}.data", "a rectangular array of numbers", "nested lists of different lengths"
        ) from None
    if array.size != count:
        raise bad_request(
            f"{field}.data", f"{count} values for shape {shape}", f"{array.size} values"
        )
    # JSON true/false are BOOL's alone: the protocol has no implicit bool-to-number cast
    kinds = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}[dtype.kind]
    if array.dtype.kind not in kinds:
        sample = array.ravel()[:1].tolist()
        raise bad_request(
            f"{field}.data",
            f"{datatype} values",
            describe_value(sample[0]) if sample else f"dtype {array.dtype}",
        )
    _check_range(array, dtype, datatype, f"{field}.data")
    return array.reshape(shape), 0


def _check_range(array: np.ndarray, dtype: np.dtype, datatype: str, field: str) -> None:
    """Values of a JSON tensor must fit its declared datatype (UINT8 -1 and FP16 70000
    do not), as they would in the binary encoding."""
    if array.size == 0 or dtype.kind == "b":
        return
    if dtype.kind in "iu":
        info: Any = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise bad_request(field, f"{datatype} values in [{info.min}, {info.max}]", repr(bad))
        return
    limit = float(np.finfo(dtype).max)
    with np.errstate(over="ignore", invalid="ignore"):
        over = np.abs(array.astype(np.float64)) > limit
    if over.any():
        bad = array.ravel()[int(np.argmax(over.ravel()))].item()
        raise bad_request(field, f"{datatype} values of magnitude at most {limit:g}", repr(bad))


def encode_outputs(
    header: dict[str, Any],
    outputs: dict[str, np.ndarray],
    binary: dict[str, bool],
    parameters: dict[str, dict[str, Any]] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers; ``binary[name]`` sends that output as raw bytes;
    ``parameters[name]`` adds to that output's parameters (e.g. its column ``labels``)."""
    chunks = []
    entries = []
    large: dict[bytes, np.ndarray] = {}
    for name, array in outputs.items():
        entry: dict[str, Any] = {
            "name": name,
            "datatype": v2_datatype(array.dtype),
            "shape": list(array.shape),
        }
        if parameters and name in parameters:
            entry["parameters"] = dict(parameters[name])
        if binary.get(name):
            raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            entry.setdefault("parameters", {})["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            check_finite(array, name, "JSON")
            flat = np.ascontiguousarray(array).ravel()
            if len(flat) > CHUNK_ROWS:  # spliced in below, encoded in pieces
                entry["data"] = marker = f"neurocloud-data-{uuid.uuid4().hex}"
                large[orjson.dumps(marker)] = flat
            else:
                entry["data"] = flat
        entries.append(entry)
    payload = orjson.dumps({**header, "outputs": entries}, option=_NUMPY)
    for marker, flat in large.items():
        payload = payload.replace(marker, dump_array(flat), 1)
    if not chunks:
        return payload, {"content-type": "application/json"}
    return payload + b"".join(chunks), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(payload)),
    }
