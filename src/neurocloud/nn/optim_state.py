"""Training state as bytes: an optimizer's settings, step count and moments, and the model's
random generator state, so that a resumed ``fit`` (shuffling and Dropout included) continues
bit for bit. Goes through :func:`neurocloud.nn.serialization.pack`.

>>> import numpy as np, neurocloud as nc
>>> opt = nc.optim.Adam(lr=0.01)
>>> opt.step([np.zeros(2)], [np.ones(2)])
>>> rng = np.random.default_rng(0)
>>> again, state = from_bytes(to_bytes(opt, rng))
>>> again.t, state == rng.bit_generator.state
(1, True)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from neurocloud.nn import optim, serialization

__all__ = ["FORMAT", "from_bytes", "restore_rng", "to_bytes"]

FORMAT = "neurocloud.optimizer"
_LEGACY_FORMAT = "neurocloud.model"  # optimizer state written by neurocloud 0.1


def to_bytes(optimizer: optim.Optimizer, rng: np.random.Generator | None = None) -> bytes:
    """``optimizer``'s settings and state, and ``rng``'s state when given."""
    meta = {
        "format": FORMAT,
        "optimizer": optimizer.name,
        "config": optimizer.get_config(),
        "rng": None if rng is None else rng.bit_generator.state,
    }
    return serialization.pack(optimizer.state_dict(), meta)


def from_bytes(data: bytes) -> tuple[optim.Optimizer, dict[str, Any] | None]:
    """``(optimizer, generator state or None)`` from :func:`to_bytes`; ``ValueError`` if not."""
    tensors, meta = serialization.unpack(data)
    if meta.get("format") not in (FORMAT, _LEGACY_FORMAT) or "optimizer" not in meta:
        raise ValueError(f"not an optimizer state (format {meta.get('format')!r})")
    config = meta.get("config", {})
    if isinstance(config, str):
        config = json.loads(config)
    if not isinstance(config, dict):
        raise ValueError(f"the optimizer config is a {type(config).__name__}, expected an object")
    if meta["format"] == _LEGACY_FORMAT and meta["optimizer"] == "lbfgs":
        # 0.1's L-BFGS was an optimizer with a learning rate and a step count it never used
        config.pop("lr", None)
        tensors.pop("step", None)
    opt = optim.get(str(meta["optimizer"]), **config)
    opt.load_state_dict(tensors)
    rng = meta.get("rng")
    if rng is not None and not isinstance(rng, dict):
        raise ValueError(f"the generator state is a {type(rng).__name__}, expected an object")
    return opt, rng


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Set ``rng`` (in place, so layers sharing it follow) to a saved ``state``."""
    expected = type(rng.bit_generator).__name__
    if state.get("bit_generator") != expected:
        raise ValueError(
            f"the generator state is for {state.get('bit_generator')!r}; the model uses {expected}"
        )
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"the generator state is not valid ({exc})") from None
