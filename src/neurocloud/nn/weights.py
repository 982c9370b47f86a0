"""A model's weights by name and as a list: ``state_dict``, ``get_weights`` and their inverses.

``Sequential`` inherits them; they work on its layers' ``params`` and ``buffers()``.

>>> import neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(2)], input_dim=3, seed=0)
>>> sorted(m.state_dict())
['layers.0.bias', 'layers.0.kernel']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["NamedWeights"]


class NamedWeights:
    """Named weights and buffers of a model with ``layers`` and ``parameters()``."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Named weights and buffers, e.g. ``layers.0.kernel`` (views, not copies)."""
        self._require_built()
        state = {}
        for i, layer in enumerate(self.layers):
            for key, value in {**layer.params, **layer.buffers()}.items():
                state[f"layers.{i}.{key}"] = value
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy weights in from :meth:`state_dict`'s format; names and shapes must match."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"Weights do not match the architecture: missing {missing}, "
                f"unexpected {unexpected}."
            )
        for key, target in own.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ValueError(
                    f"Weight {key} has shape {value.shape}; the architecture "
                    f"expects {target.shape}."
                )
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                layer.params[key][...] = state[f"layers.{i}.{key}"]
            if layer.buffers():
                layer.load_buffers({k: state[f"layers.{i}.{k}"] for k in layer.buffers()})

    def get_weights(self) -> list[np.ndarray]:
        return [p.copy() for p in self.parameters()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        params = self.parameters()
        if len(weights) != len(params):
            raise ValueError(f"Expected {len(params)} weight arrays; received {len(weights)}.")
        for i, (p, w) in enumerate(zip(params, weights)):
            if np.shape(w) != p.shape:
                raise ValueError(f"Weight {i} must have shape {p.shape}; received {np.shape(w)}.")
            p[...] = w
