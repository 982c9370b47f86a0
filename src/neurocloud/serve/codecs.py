"""SageMaker ``/invocations`` bodies: JSON, CSV, NPY and JSON Lines, both ways, and the
choice of response type from the Accept header (q-values honoured).

Requests decode to the model's rows plus the request's *form*, so the JSON answer mirrors
the question: ``{"x": ...}`` -> ``{"<output name>": ...}``, ``{"instances": ...}`` ->
``{"predictions": ...}``, ``{"inputs": ...}`` -> ``{"outputs": ...}``, a bare list -> a bare
list; CSV, NPY and JSON Lines requests get ``{"predictions": ...}`` in JSON.

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

from neurocloud.serve.errors import ServeError, bad_request, describe
from neurocloud.serve.signature import Signature

__all__ = ["CONTENT_TYPES", "decode_request", "encode_response", "media_type", "negotiate"]

JSON, CSV, NPY, JSONLINES = (
    "application/json",
    "text/csv",
    "application/x-npy",
    "application/jsonlines",
)
CONTENT_TYPES = (JSON, CSV, NPY, JSONLINES)
_ALIASES = {
    "application/json": JSON,
    "text/json": JSON,
    "text/csv": CSV,
    "application/csv": CSV,
    "application/x-npy": NPY,
    "application/npy": NPY,
    "application/jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/json-lines": JSONLINES,
}
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_SUPPORTED = ", ".join(CONTENT_TYPES)


def media_type(header: str | None) -> str | None:
    """The canonical media type of a Content-Type header (parameters dropped), or ``None``."""
    if not header:
        return None
    return _ALIASES.get(header.split(";", 1)[0].strip().lower())


# --- Accept negotiation -----------------------------------------------------------------
_accept_cache: dict[tuple[str, str], str | None] = {}


def negotiate(accept: str | None, default: str) -> str:
    """The response type for an Accept header: the supported type with the highest q-value
    (earliest first on ties); ``*/*`` and a missing header mean ``default``.

    Raises :class:`ServeError` (406) when no listed type is supported.
    """
    if not accept:
        return default
    key = (accept, default)
    chosen = _accept_cache.get(key)
    if chosen is None:
        chosen = _negotiate(accept, default)
        if len(_accept_cache) < 512:
            _accept_cache[key] = chosen
    if not chosen:
        raise bad_request("Accept", f"one of {_SUPPORTED} (or */*)", repr(accept), status=406)
    return chosen


def _negotiate(accept: str, default: str) -> str:
    offers: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for index, part in enumerate(accept.split(",")):
        pieces = part.split(";")
        media = pieces[0].strip().lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            refused.add(_ALIASES.get(media, media))
            continue
        if media:
            offers.append((-quality, index, media))
    for _, _, media in sorted(offers):
        if media in _ALIASES and _ALIASES[media] not in refused:
            return _ALIASES[media]
        if media.endswith("/*"):
            prefix = media[:-1]
            candidates = (
                [default, *CONTENT_TYPES]
                if media == "*/*"
                else [default, *(t for t in CONTENT_TYPES if t.startswith(prefix))]
            )
            for candidate in candidates:
                if (candidate.startswith(prefix) or media == "*/*") and candidate not in refused:
                    return candidate
    return ""


# --- requests -----------------------------------------------------------------------------
def decode_request(
    body: bytes, content_type: str, signature: Signature, max_rows: int | None = None
) -> tuple[np.ndarray, str]:
    """Decode ``body`` of ``content_type`` into ``(rows, form)``; 400 naming the problem,
    413 past ``max_rows`` rows (counted before parsing where the format allows)."""
    if not body:
        raise bad_request("body", f"{content_type} data", "an empty body")
    if content_type == JSON:
        rows, form = _decode_json(body, signature)
    elif content_type == CSV:
        _count_lines(body, max_rows, "text/csv", extra=1)  # a header line may come first
        rows, form = signature.rows(_decode_csv(body, signature), "body (text/csv)"), "csv"
    elif content_type == NPY:
        rows = signature.rows(_decode_npy(body, max_rows), "body (application/x-npy)")
        form = "npy"
    else:
        _count_lines(body, max_rows, "application/jsonlines")
        values = _decode_jsonlines(body, signature)
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


def parse_json(body: bytes, field: str = "body") -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(field, "valid JSON", f"malformed JSON ({exc})") from None


def _decode_json(body: bytes, signature: Signature) -> tuple[np.ndarray, str]:
    if len(body) > _FAST_CSV_CHARS:
        fast = _numeric_json(body, signature)
        if fast is not None:
            return fast
    data = parse_json(body)
    name = signature.input_name
    if isinstance(data, list):
        return signature.rows(data, "body"), "list"
    if not isinstance(data, dict):
        raise bad_request(
            "body", f'an object like {{"{name}": [...]}} or a nested list', describe(data)
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
    if len(text) > _FAST_CSV_CHARS:
        fast = _parse_csv_in_c(text, signature)
        if fast is not None:
            return fast
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise bad_request("body (text/csv)", "at least one row of numbers", "only blank lines")
    table = [line.split(",") for line in lines]
    if all(not _is_number(cell) for cell in table[0]):
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
        return in_chunks(table, lambda part: np.array(part, dtype=np.float64))
    except ValueError:
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                if not _is_number(cell):
                    raise bad_request(
                        "body (text/csv)", "numbers", f"{cell.strip()!r} at row {r}, column {c}"
                    ) from None
        raise


_FAST_CSV_CHARS = 64 * 1024
_CSV_PIECE_CHARS = 128 * 1024


def _parse_csv_in_c(text: str, signature: Signature) -> np.ndarray | None:
    """A large CSV body parsed by NumPy's C reader, a piece of lines at a time: no Python
    object per row (millions of them made the garbage collector stall every thread) and
    the GIL released between pieces. ``None`` when anything is unusual (a header that is
    not the model's, ragged rows, text): the exact parser then names the problem."""
    start = 0
    first_end = text.find("\n")
    first = text[: first_end if first_end >= 0 else len(text)]
    if first.strip() and all(not _is_number(cell) for cell in first.split(",")):
        names = signature.feature_names
        if names is None or [c.strip() for c in first.split(",")] != list(names):
            return None
        start = first_end + 1
    return _load_pieces(text, start)


_NUMBER_BYTES = b" \t\r\n0123456789[],.eE+-"
_JSON_PIECE_BYTES = 128 * 1024


def _numeric_json(body: bytes, signature: Signature) -> tuple[np.ndarray, str] | None:
    """A large JSON body that is only numbers (``[[1.5, 2], ...]``, ``[1.5, ...]``, or
    one of them under the input name, ``instances`` or ``inputs``) read as CSV by NumPy's C
    reader, a piece at a time: ``orjson.loads`` holds the GIL for seconds on a million
    rows and makes a list per row. ``None`` for anything else (the exact parser then
    decodes it, or names what is wrong)."""
    head = body[:256].lstrip()
    key, start, stop = "body", 0, len(body)
    if head.startswith(b"{"):
        colon = body.find(b":")
        end = body.rfind(b"}")
        name = body[:colon].strip()[1:].strip() if colon > 0 else b""
        if len(name) < 2 or name[:1] != b'"' or name[-1:] != b'"' or b"\\" in name:
            return None
        if end < colon or body[end + 1 :].strip():
            return None
        key, start, stop = name[1:-1].decode("utf-8", "replace"), colon + 1, end
    elif not head.startswith(b"["):
        return None
    form = {signature.input_name: "named", "instances": "instances", "inputs": "inputs"}
    form = {"body": "list"} if key == "body" and start == 0 else form
    first, last = body.find(b"[", start, stop), body.rfind(b"]", start, stop)
    if key not in form or first < 0 or body[start:first].strip() or body[last + 1 : stop].strip():
        return None
    flat = not body[first + 1 : first + 65].lstrip().startswith(b"[")
    if not flat:  # the rows: from after the first row's "[" to before the last row's "]"
        inner, close = body.find(b"[", first + 1, last) + 1, body.rfind(b"]", first, last)
        if close < inner or body[close + 1 : last].strip():
            return None
        first, last = inner - 1, close
    pieces, pos = [], first + 1
    while pos < last:
        cut = body.find(b"," if flat else b"]", min(pos + _JSON_PIECE_BYTES, last), last)
        cut = last if cut < 0 else cut
        piece = body[pos:cut]
        if flat:
            table = piece.replace(b",", b"\n")
            pos = cut + 1
        else:
            table = piece.replace(b"], [", b"],[").replace(b"],[", b"\n")
            following = body.find(b"[", cut, last) if cut < last else last
            if cut < last and (following < 0 or body[cut + 1 : following].strip() != b","):
                return None
            pos = following + 1 if cut < last else last
        if piece.translate(None, _NUMBER_BYTES) or b"[" in table or b"]" in table:
            return None
        if not _json_numbers(table):
            return None
        array = _load_table(table.decode("ascii"))
        if array is None:
            return None
        pieces.append(array)
    if not pieces or len({p.shape[1] for p in pieces}) > 1:
        return None
    array = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return signature.rows(array.ravel() if flat else array, key), form[key]


_STARTS = (b"\n", b",", b" ", b"\t", b"\r")


def _json_numbers(table: bytes) -> bool:
    """Whether the lines of ``table`` hold JSON numbers only: NumPy also reads ``+1``,
    ``.5``, ``1.``, ``01`` and blank fields, which JSON refuses. Many short scans, so the
    GIL is free between them (one regular expression over 6 MB held it for a second)."""
    if table[:1] in (b"\n", b"\r") or table[-1:] in (b"\n", b"\r", b","):
        return False
    if table.count(b"+") != table.count(b"e+") + table.count(b"E+"):
        return False
    ends = (*_STARTS, b"-", b"+", b"e", b"E")
    if table[:1] == b"." or table[-1:] == b"." or any(e + b"." in table for e in ends):
        return False
    if any(b"." + e in table for e in (*_STARTS, b"e", b"E")):
        return False
    if any(a + b in table for a in (b"\n", b",") for b in (b"\n", b",")):
        return False  # an empty row or value
    for digit in b"0123456789":  # a leading zero ("01", "-01"; "1e-05" is fine)
        zero = b"0" + bytes([digit])
        if table.startswith((zero, b"-" + zero)) or any(a + zero in table for a in _STARTS):
            return False
        exponents = table.count(b"e-" + zero) + table.count(b"E-" + zero)
        if table.count(b"-" + zero) != exponents:
            return False
    return True


def _load_pieces(text: str, start: int) -> np.ndarray | None:
    pieces = []
    while start < len(text):
        end = text.find("\n", start + _CSV_PIECE_CHARS)
        end = len(text) if end < 0 else end + 1
        piece = text[start:end]
        start = end
        if not piece.strip():
            continue
        array = _load_table(piece)
        if array is None:
            return None
        pieces.append(array)
    if not pieces or len({p.shape[1] for p in pieces}) > 1:
        return None
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _load_table(text: str) -> np.ndarray | None:
    """Comma-separated lines of numbers as a 2-D array (``None`` if they are not)."""
    try:
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        return None


#: rows converted per NumPy call: one call holds the GIL throughout, so a large body is
#: converted in pieces and the event loop gets its turn between them (a few ms each)
CHUNK_ROWS = 8192


def in_chunks(values: list, convert: Any) -> np.ndarray:
    """``convert(values)``, done :data:`CHUNK_ROWS` items at a time for a long list."""
    if len(values) <= CHUNK_ROWS:
        return convert(values)
    return np.concatenate(
        [convert(values[i : i + CHUNK_ROWS]) for i in range(0, len(values), CHUNK_ROWS)]
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


def _decode_jsonlines(body: bytes, signature: Signature) -> list[Any]:
    rows = []
    name = signature.input_name
    for number, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        value = parse_json(line, f"line {number + 1}")
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
    """Encode ``outputs`` (``(n, k)``) as ``accept``; JSON mirrors the request's ``form``."""
    if accept == NPY:
        buffer = io.BytesIO()
        np.save(buffer, outputs, allow_pickle=False)
        return buffer.getvalue()
    if accept == CSV:
        if np.isfinite(outputs).all():
            return dump_array(outputs)[2:-2].replace(b"],[", b"\n") + b"\n"
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
    }.get(form, "predictions")
    if key is None:
        return dump_array(outputs)
    return b"{" + orjson.dumps(key) + b":" + dump_array(outputs) + b"}"


def dump_array(array: np.ndarray) -> bytes:
    """``orjson.dumps(array)``, :data:`CHUNK_ROWS` rows per call for a long array: one
    call holds the GIL throughout (0.7 s for 900,000 float32 rows), so a large answer
    encoded in a thread would still stall the event loop."""
    if len(array) <= CHUNK_ROWS:
        return orjson.dumps(array, option=_NUMPY)
    parts = (
        orjson.dumps(np.ascontiguousarray(array[i : i + CHUNK_ROWS]), option=_NUMPY)[1:-1]
        for i in range(0, len(array), CHUNK_ROWS)
    )
    return b"[" + b",".join(parts) + b"]"


def check_finite(outputs: np.ndarray, name: str, encoding: str) -> None:
    """JSON cannot carry NaN or infinity: refuse with 422 instead of sending ``null``."""
    if outputs.dtype.kind == "f" and not np.isfinite(outputs).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(outputs))[0])
        raise ServeError(
            422,
            f"output {name!r}: the model produced {float(outputs[index])!r} at index "
            f"{list(index)}, "
            f"which {encoding} cannot carry; ask for application/x-npy or text/csv "
            "(or binary tensor data) to receive non-finite values.",
        )
