"""One bytes format for everything the package saves in memory: named arrays plus JSON.

:func:`pack` turns a dict of arrays and a JSON-able ``meta`` dict into safetensors bytes,
:func:`unpack` turns them back; models (``Sequential.to_bytes``), optimizer state and the
scikit-learn estimators all go through this pair, so unpickling or loading never runs code
from the payload. ``meta`` travels as one more (uint8) tensor, so reading it needs nothing
but the safetensors library. Objects register a builder for their ``meta["format"]`` with
:func:`register`; :func:`from_bytes` rebuilds whatever a blob holds.

>>> import numpy as np
>>> data = pack({"w": np.arange(3.0)}, {"format": "example", "n": 3})
>>> tensors, meta = unpack(data)
>>> tensors["w"].tolist(), meta
([0.0, 1.0, 2.0], {'format': 'example', 'n': 3})
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

__all__ = ["from_bytes", "pack", "register", "unpack"]

#: The tensor name that carries ``meta``; no model, optimizer or estimator tensor uses it.
META_KEY = "__neurocloud_meta__"
_BUILDERS: dict[str, Callable[[dict[str, np.ndarray], dict[str, Any]], Any]] = {}


def pack(tensors: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    """``tensors`` (name -> array) and ``meta`` (JSON-able) as safetensors bytes."""
    if META_KEY in tensors:
        raise ValueError(f"{META_KEY!r} is reserved for the metadata; rename that tensor.")
    encoded = json.dumps(dict(meta), separators=(",", ":")).encode()
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    arrays[META_KEY] = np.frombuffer(encoded, dtype=np.uint8)
    header = {"format": str(meta.get("format", ""))}  # for tools that list the header
    return save(arrays, metadata=header)


def unpack(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What :func:`pack` wrote: ``(tensors, meta)``; a ``ValueError`` for anything else.

    Bytes written before ``meta`` became a tensor carry it in the safetensors header
    instead (string values); their ``meta`` is that header's metadata.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"Expected bytes to unpack; received {type(data).__name__}.")
    try:
        tensors = load(bytes(data))
    except (SafetensorError, ValueError, OSError) as exc:
        raise ValueError(f"not safetensors bytes, or truncated ({exc})") from None
    encoded = tensors.pop(META_KEY, None)
    if encoded is None:
        return tensors, _legacy_header(bytes(data))
    try:
        meta = json.loads(encoded.tobytes())
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the metadata is not JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"the metadata is a {type(meta).__name__}, expected an object")
    return tensors, meta


def _legacy_header(data: bytes) -> dict[str, Any]:
    # Bytes from neurocloud 0.1 kept their metadata in the header's "__metadata__" entry;
    # safetensors has already validated this header when it loaded the tensors.
    size = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
    return dict(meta)


def register(kind: str, builder: Callable[[dict[str, np.ndarray], dict[str, Any]], Any]) -> None:
    """Make :func:`from_bytes` rebuild blobs whose ``meta["format"]`` is ``kind``."""
    _BUILDERS[kind] = builder


def from_bytes(data: bytes) -> Any:
    """Rebuild the object that ``data`` holds (a model, ...), by its registered format.

    Pickles of models written by neurocloud 0.1 name this function.
    """
    try:
        tensors, meta = unpack(data)
    except ValueError as exc:
        raise ValueError(f"Not a neurocloud model: {exc}.") from None
    kind = meta.get("format")
    if kind not in _BUILDERS:
        raise ValueError(
            f"Not a neurocloud object: format is {kind!r}; expected one of {sorted(_BUILDERS)}."
        )
    return _BUILDERS[kind](tensors, meta)
