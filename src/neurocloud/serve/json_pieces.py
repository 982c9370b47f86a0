"""Large JSON bodies parsed a piece at a time, so that no single parse holds the GIL for
long and no parse tree of millions of objects is ever alive at once.

``orjson.loads`` of a 6 MB body holds the GIL throughout (0.1-0.2 s), and the lists and
objects it makes trigger full garbage collections that take it for 0.7-0.8 s: ``/ping``
waits all that time. Here the body's one large array (the rows of a SageMaker body, the
``data`` of an Open Inference Protocol tensor) is cut at its items into pieces of about
:data:`PIECE_BYTES`, each piece parsed by orjson and converted to a NumPy array at once,
and the rest of the document is parsed with that array replaced by a placeholder. Every
piece and the rest are checked by orjson, so the result is what one ``orjson.loads``
would give; anything unusual returns ``None`` and the exact parser decides.

>>> body = b'{"x": [[1.5], [2.5]]}'
>>> document, array = parse_around(body, array_start(body, 5), numeric_rows())
>>> document == {"x": HOLE}, array.tolist()
(True, [[1.5], [2.5]])
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

__all__ = ["HOLE", "PIECE_BYTES", "array_start", "numeric_rows", "parse_around"]

#: bytes of a body's large array parsed in one call (a few milliseconds)
PIECE_BYTES = 32 * 1024
#: what stands in for the large array in the parsed document: unguessable, so a body
#: cannot hold it by chance or on purpose
HOLE = f"neurocloud-array-{uuid.uuid4().hex}"
_SPACE = b" \t\r\n"

Convert = Callable[[list], "np.ndarray | None"]


def numeric_rows(input_name: str | None = None) -> Convert:
    """A converter of pieces of numbers or rows of numbers to arrays; with ``input_name``,
    items that are all ``{"<input_name>": row}`` are unwrapped too (``{"instances": ...}``)."""
    mode: list[bool] = []  # whether the items are objects, set by the first piece

    def convert(items: list) -> np.ndarray | None:
        named = input_name is not None and bool(items) and isinstance(items[0], dict)
        if mode and mode[0] != named:
            return None
        mode[:] = [named]
        if named:
            if not all(isinstance(v, dict) and len(v) == 1 and input_name in v for v in items):
                return None
            items = [v[input_name] for v in items]
        try:
            array = np.asarray(items)
        except ValueError:  # ragged
            return None
        return array if array.dtype.kind in "biuf" else None

    return convert


def array_start(body: bytes, after: int) -> int | None:
    """Where the array that follows ``body[after:]`` (spaces allowed) begins, or ``None``."""
    start = after
    while start < len(body) and body[start] in _SPACE:
        start += 1
    return start if body[start : start + 1] == b"[" else None


def parse_around(
    body: bytes, start: int, convert: Convert, limit: int | None = None
) -> tuple[Any, np.ndarray] | None:
    """``(document, array)``: the array that begins at ``body[start]`` parsed in pieces, each
    converted by ``convert`` (``None`` refuses it), and the document around it with the array
    replaced by :data:`HOLE`. ``None`` when the body is not like that, or when the document
    around the array is over ``limit`` bytes."""
    found = _items(body, start, convert)
    if found is None:
        return None
    parts, end = found
    rest = body[:start] + orjson.dumps(HOLE) + body[end:]
    if limit is not None and len(rest) > limit:
        return None
    try:
        document = orjson.loads(rest)
    except orjson.JSONDecodeError:
        return None
    if len({part.shape[1:] for part in parts}) > 1:
        return None
    return document, parts[0] if len(parts) == 1 else np.concatenate(parts)


def _items(body: bytes, start: int, convert: Convert) -> tuple[list[np.ndarray], int] | None:
    """The converted pieces of the array at ``body[start]`` and the index after its ``]``.

    A piece ends at the first comma (or the closing bracket) at the array's own depth after
    a jump of :data:`PIECE_BYTES`, the depth counted from the brackets and braces in between.
    orjson then checks that the piece is whole values: a piece cut inside a string, or past
    the array's end (near its end, or fooled by brackets in strings), is not, and a shorter
    jump is tried, down to none.
    """
    parts: list[np.ndarray] = []
    pos = start + 1
    while True:
        for jump in _JUMPS:
            stop = _next_cut(body, pos, jump)
            if stop is None:
                continue
            piece = body[pos:stop]
            if not piece.strip(_SPACE) and (parts or body[stop : stop + 1] != b"]"):
                return None  # an empty value: "[1,,2]" or "[1,]"
            try:
                items = orjson.loads(b"[" + piece + b"]")
            except orjson.JSONDecodeError:
                continue
            break
        else:
            return None
        array = convert(items)
        if array is None:
            return None
        parts.append(array)
        if body[stop : stop + 1] == b"]":
            return parts, stop + 1
        pos = stop + 1


_JUMPS = (PIECE_BYTES, PIECE_BYTES // 8, PIECE_BYTES // 64, 0)


def _next_cut(body: bytes, pos: int, jump: int) -> int | None:
    """The first comma or closing bracket at depth 0 from ``pos`` after ``jump`` bytes."""
    cut = min(pos + jump, len(body))
    depth = _depth(body[pos:cut])
    while depth >= 0:
        comma, close = body.find(b",", cut), body.find(b"]", cut)
        if close < 0:
            return None
        stop = close if comma < 0 else min(comma, close)
        depth += _depth(body[cut:stop])
        if depth == 0:
            return stop
        if stop == close:
            depth -= 1
        cut = stop + 1
    return None


def _depth(segment: bytes) -> int:
    return segment.count(b"[") + segment.count(b"{") - segment.count(b"]") - segment.count(b"}")
