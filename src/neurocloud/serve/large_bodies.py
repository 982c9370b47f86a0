"""Reading large bodies without stalling the event loop: CSV and numeric JSON through
NumPy's C reader a piece at a time, lists converted and arrays encoded in chunks.

One call into C holds the GIL throughout, and millions of Python objects (a list per row)
make the garbage collector stall every thread; so a large body is handled in pieces of a
few milliseconds each, in a decoding thread, and the event loop gets its turn between them.
Each reader returns ``None`` for anything unusual, and the exact parser in
:mod:`neurocloud.serve.codecs` then decodes the body or names what is wrong in it.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson

from neurocloud.serve.signature import Signature

__all__ = [
    "CHUNK_ROWS",
    "FAST_CHARS",
    "dump_array",
    "in_chunks",
    "is_number",
    "read_csv",
    "read_numeric_json",
]

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
#: bodies larger than this go through the readers here
FAST_CHARS = 64 * 1024
_CSV_PIECE_CHARS = 128 * 1024


def read_csv(text: str, signature: Signature) -> np.ndarray | None:
    """A large CSV body parsed by NumPy's C reader, a piece of lines at a time: no Python
    object per row (millions of them made the garbage collector stall every thread) and
    the GIL released between pieces. ``None`` when anything is unusual (a header that is
    not the model's, ragged rows, text): the exact parser then names the problem."""
    start = 0
    first_end = text.find("\n")
    first = text[: first_end if first_end >= 0 else len(text)]
    if first.strip() and all(not is_number(cell) for cell in first.split(",")):
        names = signature.feature_names
        if names is None or [c.strip() for c in first.split(",")] != list(names):
            return None
        start = first_end + 1
    return _load_pieces(text, start)


_NUMBER_BYTES = b" \t\r\n0123456789[],.eE+-"
_JSON_PIECE_BYTES = 128 * 1024


def read_numeric_json(body: bytes, signature: Signature) -> tuple[np.ndarray, str] | None:
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
    """Comma-separated lines of numbers as a 2-D array (``None`` if they are not).
    ``comments=None``: NumPy would otherwise drop whatever follows a ``#``."""
    try:
        return np.loadtxt(
            io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None
        )
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


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (as ``float`` reads it: spaces, ``nan`` and
    ``inf`` allowed), e.g. to tell a CSV header from a row.

    >>> is_number(" 1.5e3 "), is_number("x1")
    (True, False)
    """
    try:
        float(text)
    except ValueError:
        return False
    return True


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
