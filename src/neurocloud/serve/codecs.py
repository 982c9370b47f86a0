"""SageMaker ``/invocations`` bodies: JSON, CSV, NPY and JSON Lines, both ways, and the
choice of response type from the Accept header (q-values honoured).

Requests decode to the model's rows plus the request's *form*. A JSON answer is
``{"<output name>": ...}`` whatever the request's content type (CSV, NPY, JSON Lines or the
article's ``{"x": ...}``); only a JSON request in another envelope gets that envelope back:
``{"instances": ...}`` -> ``{"predictions": ...}``, ``{"inputs": ...}`` -> ``{"outputs": ...}``,
a bare list -> a bare list.

>>> import numpy as np
>>> from neurocloud.serve.signature import Signature
>>> sig = Signature("x", 1, "y", 1, np.dtype("float32"))
>>> rows, form = decode_request(b'{"x": [4.5]}', "application/json", sig)
>>> rows.tolist(), form
([[4.5]], 'named')
>>> encode_response(np.array([[1.5]], "float32"), "application/json", form, sig)
b'{"y":[[1.5]]}'
>>> negotiate("text/csv;q=0.5, application/x-npy", "application/json")
'application/x-npy'
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import orjson

from neurocloud.nn.validation import all_finite
from neurocloud.serve import json_pieces, large_bodies, wire
from neurocloud.serve.errors import ServeError, bad_request, describe_value
from neurocloud.serve.large_bodies import is_number
from neurocloud.serve.signature import Signature
from neurocloud.serve.wire import CONTENT_TYPES, CSV, JSON, JSONLINES, NPY, media_type

__all__ = ["CONTENT_TYPES", "decode_request", "encode_response", "media_type", "negotiate"]

_SUPPORTED = ", ".join(CONTENT_TYPES)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY

# --- Accept negotiation -----------------------------------------------------------------
_accept_cache: dict[tuple[str, str], str | None] = {}


def negotiate(accept: str | None, default: str) -> str:
    """The response type for an Accept header (:func:`neurocloud.serve.wire.negotiate`).

    Raises :class:`ServeError` (406) when no listed type is supported.
    """
    if not accept:
        return default
    key = (accept, default)
    chosen = _accept_cache.get(key)
    if chosen is None:
        chosen = wire.negotiate(accept, default)
        if len(_accept_cache) < 512:
            _accept_cache[key] = chosen
    if not chosen:
        raise bad_request("Accept", f"one of {_SUPPORTED} (or */*)", repr(accept), status=406)
    return chosen


# --- requests -----------------------------------------------------------------------------
def decode_request(
    body: bytes,
    content_type: str,
    signature: Signature,
    max_rows: int | None = None,
    max_json_bytes: int | None = None,
) -> tuple[np.ndarray, str]:
    """Decode ``body`` of ``content_type`` into ``(rows, form)``; 400 naming the problem,
    413 past ``max_rows`` rows (counted before parsing where the format allows) or for a
    JSON document over ``max_json_bytes`` that cannot be read in pieces."""
    if not body:
        raise bad_request("body", f"{content_type} data", "an empty body")
    if content_type == JSON:
        rows, form = _decode_json(body, signature, max_json_bytes)
    elif content_type == CSV:
        _count_lines(body, max_rows, "text/csv", extra=1)  # a header line may come first
        rows, form = signature.rows(_decode_csv(body, signature), "body (text/csv)"), "csv"
    elif content_type == NPY:
        rows = signature.rows(_decode_npy(body, max_rows), "body (application/x-npy)")
        form = "npy"
    else:
        _count_lines(body, max_rows, "application/jsonlines")
        values = _decode_jsonlines(body, signature, max_json_bytes)
        rows, form = signature.rows(values, "body (application/jsonlines)"), "jsonlines"
    check_rows(len(rows), max_rows, "body")
    return rows, form


def check_rows(count: int, max_rows: int | None, field: str, unit: str = "rows") -> None:
    """413 when a request holds more than ``max_rows`` rows."""
    if max_rows is not None and count > max_rows:
        raise bad_request(
            field,
            f"at most {max_rows} rows per request (max_request_rows, set by "
            f"NEUROCLOUD_MAX_REQUEST_ROWS or --max-request-rows)",
            f"{count} {unit}",
            status=413,
        )


def _count_lines(body: bytes, max_rows: int | None, kind: str, extra: int = 0) -> None:
    """Refuse before parsing when the body has more lines than rows allowed (one C pass)."""
    if max_rows is None:
        return
    lines = max(body.count(b"\n"), body.count(b"\r")) + 1
    if lines > max_rows + extra + 1:  # + 1: a final line break
        check_rows(lines - extra - 1, max_rows, f"body ({kind})", "lines")


def parse_json(body: bytes, field: str = "body", limit: int | None = None) -> Any:
    """``orjson.loads(body)``; 400 naming ``field`` for malformed JSON, 413 past ``limit``
    bytes (one call holds the event loop for the whole parse).

    >>> parse_json(b'{"x": [4.5]}')
    {'x': [4.5]}
    """
    if limit is not None and len(body) > limit:
        raise bad_request(
            field,
            f"at most {limit} bytes of JSON parsed in one piece ({limit / 1048576:g} MB, "
            "max_json_mb, set by NEUROCLOUD_MAX_JSON_MB); larger JSON is read in pieces "
            'only as rows of numbers ([...], {"<input name>": [...]}, {"instances": [...]}, '
            "a V2 tensor's data)",
            f"{len(body)} bytes in another shape",
            status=413,
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(field, "valid JSON", f"malformed JSON ({exc})") from None


def _decode_json(
    body: bytes, signature: Signature, max_json_bytes: int | None = None
) -> tuple[np.ndarray, str]:
    if len(body) > large_bodies.FAST_CHARS:
        fast = large_bodies.read_numeric_json(body, signature) or _json_in_pieces(
            body, signature, max_json_bytes
        )
        if fast is not None:
            return fast
    data = parse_json(body, limit=max_json_bytes)
    name = signature.input_name
    if isinstance(data, list):
        return signature.rows(data, "body"), "list"
    if not isinstance(data, dict):
        raise bad_request(
            "body", f'an object like {{"{name}": [...]}} or a nested list', describe_value(data)
        )
    keys = [k for k in data if k != "parameters"]
    if len(keys) == 1 and keys[0] in (name, "instances", "inputs"):
        key = keys[0]
        values = data[key]
        if (
            key == "instances"
            and isinstance(values, list)
            and values
            and all(isinstance(v, dict) for v in values)
        ):
            values = [_named(v, name, f"instances[{i}]") for i, v in enumerate(values)]
        elif key == "inputs" and isinstance(values, dict):
            values = _named(values, name, "inputs")
        form = {name: "named", "instances": "instances", "inputs": "inputs"}[key]
        return signature.rows(values, key), form
    raise bad_request(
        "body",
        f"one key: the input name {name!r}, 'instances' or 'inputs'",
        f"keys {keys}",
    )


_FORMS = {"instances": "instances", "inputs": "inputs"}


def _json_in_pieces(
    body: bytes, signature: Signature, limit: int | None
) -> tuple[np.ndarray, str] | None:
    """A large body of rows (a list, or the one value of the input name, ``instances`` or
    ``inputs``) read a piece at a time (:mod:`~neurocloud.serve.json_pieces`); ``None``
    for any other shape."""
    name = signature.input_name
    start, key = 0, None
    while start < len(body) and body[start] in b" \t\r\n":
        start += 1
    if body[start : start + 1] == b"{":
        colon = body.find(b":", start)
        try:
            key = orjson.loads(body[start + 1 : colon]) if colon > 0 else None
        except orjson.JSONDecodeError:
            return None
        if key not in (name, "instances", "inputs"):
            return None
        start = colon + 1
        while start < len(body) and body[start] in b" \t\r\n":
            start += 1
        if key == "inputs" and body[start : start + 1] == b"{":  # {"inputs": {"x": [...]}}
            colon = body.find(b":", start)
            try:
                inner = orjson.loads(body[start + 1 : colon]) if colon > 0 else None
            except orjson.JSONDecodeError:
                return None
            if inner != name:
                return None
            key, start = "inputs/named", colon + 1
    begin = json_pieces.array_start(body, start)
    if begin is None:
        return None
    convert = json_pieces.numeric_rows(name if key == "instances" else None)
    found = json_pieces.parse_around(body, begin, convert, limit)
    if found is None:
        return None
    document, array = found
    if key is None:
        return (signature.rows(array, "body"), "list") if document == json_pieces.HOLE else None
    if key == "inputs/named":
        if [k for k in document if k != "parameters"] != ["inputs"]:
            return None
        if document["inputs"] != {name: json_pieces.HOLE}:
            return None
        return signature.rows(array, "inputs"), "inputs"
    if [k for k in document if k != "parameters"] != [key] or document[key] != json_pieces.HOLE:
        return None
    return signature.rows(array, key), _FORMS.get(key, "named")


def _named(obj: dict, name: str, field: str) -> Any:
    if list(obj) != [name]:
        raise bad_request(field, f"an object with the one input {name!r}", f"keys {list(obj)}")
    return obj[name]


def _text(body: bytes, content_type: str) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request(
            "body", f"UTF-8 text ({content_type})", f"undecodable bytes ({exc})"
        ) from None


def _decode_csv(body: bytes, signature: Signature) -> np.ndarray:
    text = _text(body, CSV)
    if len(text) > large_bodies.FAST_CHARS:
        fast = large_bodies.read_csv(text, signature)
        if fast is not None:
            return fast
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise bad_request("body (text/csv)", "at least one row of numbers", "only blank lines")
    table = [line.split(",") for line in lines]
    if all(not is_number(cell) for cell in table[0]):
        header = [cell.strip() for cell in table.pop(0)]
        names = signature.feature_names
        if names is not None and header != list(names):
            raise bad_request(
                "body (text/csv) header", f"the model's features {list(names)}", f"{header}"
            )
        if not table:
            raise bad_request(
                "body (text/csv)", "rows of numbers after the header", "only a header"
            )
    widths = {len(row) for row in table}
    if len(widths) > 1:
        first = next(i for i, row in enumerate(table) if len(row) != len(table[0]))
        raise bad_request(
            "body (text/csv)",
            f"{len(table[0])} values per row as in row 0",
            f"{len(table[first])} values in row {first}",
        )
    try:
        return large_bodies.in_chunks(table, lambda part: np.array(part, dtype=np.float64))
    except ValueError:
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                if not is_number(cell):
                    raise bad_request(
                        "body (text/csv)", "numbers", f"{cell.strip()!r} at row {r}, column {c}"
                    ) from None
        raise


_NPY_FIELD = "body (application/x-npy)"


def _decode_npy(body: bytes, max_rows: int | None = None) -> np.ndarray:
    """The array of an ``.npy`` body, its header checked against the bytes that follow
    before anything is allocated (a header may claim any shape)."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise bad_request(
            _NPY_FIELD, "a NumPy .npy array of numbers", f"unreadable data ({exc})"
        ) from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise bad_request(_NPY_FIELD, "an array of numbers", f"dtype {dtype}")
    if len(shape) > 64:
        raise bad_request(_NPY_FIELD, "at most 64 dimensions", f"{len(shape)} dimensions")
    offset = stream.tell()
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    if len(body) - offset != expected:
        raise bad_request(
            _NPY_FIELD,
            f"{expected} bytes of data for shape {shape} of {dtype}",
            f"{len(body) - offset} bytes",
        )
    if shape:
        check_rows(shape[0], max_rows, _NPY_FIELD)
    array = np.frombuffer(body, dtype=dtype, offset=offset, count=math.prod(shape))
    return array.reshape(shape, order="F" if fortran else "C")


def _decode_jsonlines(
    body: bytes, signature: Signature, max_json_bytes: int | None = None
) -> list[Any]:
    rows = []
    name = signature.input_name
    for number, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        value = parse_json(line, f"line {number + 1}", max_json_bytes)
        if isinstance(value, dict):
            value = _named(value, name, f"line {number + 1}")
        rows.append(value)
    if not rows:
        raise bad_request(
            "body (application/jsonlines)", "one JSON row per line", "only blank lines"
        )
    if signature.input_width == 1:
        rows = [r[0] if isinstance(r, list) and len(r) == 1 else r for r in rows]
    return rows


# --- responses ----------------------------------------------------------------------------
def encode_response(outputs: np.ndarray, accept: str, form: str, signature: Signature) -> bytes:
    """Encode ``outputs`` (``(n, k)``) as ``accept``; JSON mirrors the request's ``form``
    and, for a model with named output columns, adds them as ``"labels"``."""
    if accept == NPY:
        buffer = io.BytesIO()
        np.save(buffer, outputs, allow_pickle=False)
        return buffer.getvalue()
    if accept == CSV:
        if np.isfinite(outputs).all():
            return large_bodies.dump_array(outputs)[2:-2].replace(b"],[", b"\n") + b"\n"
        lines = (",".join(repr(v) for v in row) for row in outputs.tolist())
        return ("\n".join(lines) + "\n").encode()
    check_finite(outputs, signature.output_name, accept)
    if accept == JSONLINES:
        return b"\n".join(orjson.dumps(row, option=_NUMPY) for row in outputs) + b"\n"
    key = {
        "named": signature.output_name,
        "instances": "predictions",
        "inputs": "outputs",
        "list": None,
    }.get(form, signature.output_name)
    if key is None:
        return large_bodies.dump_array(outputs)
    # A classifier's columns are its classes: a JSON object names them, as V2's
    # ``parameters.labels`` does (CSV, NPY, JSON Lines and a bare list carry numbers only).
    labels = (
        b""
        if not signature.output_names
        else b',"labels":' + orjson.dumps(list(signature.output_names))
    )
    return b"{" + orjson.dumps(key) + b":" + large_bodies.dump_array(outputs) + labels + b"}"


def check_finite(outputs: np.ndarray, name: str, encoding: str) -> None:
    """JSON cannot carry NaN or infinity: refuse with 422 instead of sending ``null``."""
    if outputs.dtype.kind == "f" and not all_finite(outputs):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(outputs))[0])
        raise ServeError(
            422,
            f"output {name!r}: the model produced {float(outputs[index])!r} at index "
            f"{list(index)}, "
            f"which {encoding} cannot carry; ask for application/x-npy or text/csv "
            "(or binary tensor data) to receive non-finite values.",
        )
