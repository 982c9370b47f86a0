"""The model <-> bytes format behind pickling: JSON config plus safetensors weights.

Unpickling a model therefore never runs code from the payload: the weights are read by
safetensors and the architecture is rebuilt from its JSON config.

>>> import pickle, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)
>>> pickle.loads(pickle.dumps(m)).get_config() == m.get_config()
True
"""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import load, save

__all__ = ["from_bytes", "to_bytes"]

_FORMAT = "neurocloud.sequential"


def to_bytes(model) -> bytes:
    """Serialise a built ``Sequential`` to safetensors bytes with its config as metadata."""
    tensors = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    return save(tensors, metadata={"format": _FORMAT, "config": json.dumps(model.get_config())})


def _metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise ValueError("Not a neurocloud model: the data is shorter than a safetensors header.")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("Not a neurocloud model: the safetensors header is truncated.")
    header = json.loads(data[8 : 8 + size])
    return header.get("__metadata__") or {}


def from_bytes(data: bytes):
    """Rebuild a model from :func:`to_bytes`'s output."""
    from neurocloud.nn.sequential import Sequential

    meta = _metadata(data)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"Not a neurocloud model: format is {meta.get('format')!r}.")
    model = Sequential.from_config(json.loads(meta["config"]))
    model.load_state_dict(load(data))
    return model
