"""The PyTorch side of the export: an ``nn.Sequential`` equal to a neurocloud ``Sequential``.

This module imports torch at the top, so only the export functions import it, on demand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from neurocloud.nn.layers import Activation, Dense, Dropout, Layer, Normalization
from neurocloud.nn.sequential import Sequential

__all__ = ["Standardize", "to_torch_module"]


class Standardize(nn.Module):
    """``(x - mean) * inv_scale``: neurocloud's ``Normalization`` with the same arithmetic."""

    def __init__(self, mean: torch.Tensor, inv_scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("inv_scale", inv_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_scale


def _activation(act: Any) -> nn.Module:
    factories = {
        "identity": nn.Identity,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(act.negative_slope),
        "elu": lambda: nn.ELU(act.alpha),
        # Above the threshold (20) torch returns x; log(1 + e^x) - x < 3e-9 there.
        "softplus": nn.Softplus,
        "gelu": lambda: nn.GELU(approximate="none"),
        "softmax": lambda: nn.Softmax(dim=-1),
    }
    if act.name not in factories:
        raise ValueError(
            f"Activation {act.name!r} has no PyTorch export; exportable: {', '.join(factories)}."
        )
    return factories[act.name]()


def _modules(layer: Layer, index: int, dtype: torch.dtype) -> list[nn.Module]:
    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(array)).to(dtype)

    if isinstance(layer, Dense):
        kernel = layer.params["kernel"]
        linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=layer.use_bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(tensor(kernel.T))
            if layer.use_bias:
                linear.bias.copy_(tensor(layer.params["bias"]))
        act = _activation(layer.activation)
        return [linear] if isinstance(act, nn.Identity) else [linear, act]
    if isinstance(layer, Activation):
        return [_activation(layer.activation)]
    if isinstance(layer, Normalization):
        inv_scale = (1.0 / layer.scale).astype(layer.dtype)
        return [Standardize(tensor(layer.mean.astype(layer.dtype)), tensor(inv_scale))]
    if isinstance(layer, Dropout):
        return [nn.Dropout(layer.rate)]
    raise TypeError(
        f"Layer {type(layer).__name__} (layers.{index}) has no PyTorch export; exportable: "
        "Dense, Activation, Normalization, Dropout."
    )


def to_torch_module(model: Sequential) -> nn.Sequential:
    """An ``nn.Sequential`` (in eval mode) computing what ``model.predict`` computes."""
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    modules = [m for i, layer in enumerate(model.layers) for m in _modules(layer, i, dtype)]
    return nn.Sequential(*modules).eval()
