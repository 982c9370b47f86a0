"""The network a playground session trains: its layers from the settings, and the loss and
output activation that the data's task calls for.

>>> from neurocloud.playground.data import load
>>> from neurocloud.playground.settings import ARTICLE
>>> loss_for(ARTICLE, load("seed"))
('mse', 'identity')
"""

from __future__ import annotations

from typing import Any

import numpy as np

import neurocloud as nc
from neurocloud.playground.data import PlayData
from neurocloud.playground.settings import SettingError, Settings

__all__ = ["build_model", "loss_for"]

_REGRESSION = ("mse", "mae", "huber")


def loss_for(settings: Settings, data: PlayData) -> tuple[str, str]:
    """The loss and the output activation for ``data``'s task (``loss="auto"`` picks)."""
    if data.task == "regression":
        valid, output, auto = _REGRESSION, "identity", "mse"
    elif data.classes == 2:
        valid, output, auto = ("binary_crossentropy", "mse"), "sigmoid", "binary_crossentropy"
    else:
        valid, output = ("sparse_categorical_crossentropy",), "softmax"
        auto = valid[0]
    loss = auto if settings.loss == "auto" else settings.loss
    if loss not in valid:
        raise SettingError(
            "loss", f"expected one of auto, {', '.join(valid)} for {data.name}; received {loss!r}"
        )
    return loss, output


def build_model(
    settings: Settings,
    data: PlayData,
    X_train: np.ndarray,
    dtype: str = "float32",
    dropout: bool = True,
) -> nc.Sequential:
    """The network the settings describe (same seed: same initial weights)."""
    _, output = loss_for(settings, data)
    stack: list[Any] = []
    if settings.standardize:
        stack.append(nc.layers.Normalization().adapt(X_train))
    for units, activation in zip(settings.layers, settings.activations):
        stack.append(
            nc.layers.Dense(units, activation=activation, kernel_initializer=settings.initializer)
        )
        if settings.dropout and dropout:
            stack.append(nc.layers.Dropout(settings.dropout))
    outputs = 1 if data.task == "regression" or data.classes == 2 else data.classes
    stack.append(
        nc.layers.Dense(outputs, activation=output, kernel_initializer=settings.initializer)
    )
    return nc.Sequential(stack, input_dim=data.X.shape[1], seed=settings.seed, dtype=dtype)
