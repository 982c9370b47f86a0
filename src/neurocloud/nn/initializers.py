"""Weight initialisers, looked up by name.

Each takes ``(rng, shape, dtype)`` for a kernel of shape ``(fan_in, fan_out)`` and draws
from the model's own ``np.random.Generator`` (never NumPy's global state).

>>> import numpy as np
>>> w = get("glorot_uniform")(np.random.default_rng(0), (3, 2), np.float32)
>>> w.shape, w.dtype
((3, 2), dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike

from neurocloud.nn.registry import Registry

__all__ = ["Initializer", "available", "default_for", "get"]

Initializer = Callable[[np.random.Generator, tuple[int, ...], np.dtype], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _uniform(rng: np.random.Generator, shape, dtype, limit: float) -> np.ndarray:
    values = rng.random(shape, dtype=np.dtype(dtype).type)
    values *= 2 * limit
    values -= limit
    return values


def _normal(rng: np.random.Generator, shape, dtype, std: float) -> np.ndarray:
    values = rng.standard_normal(shape, dtype=np.dtype(dtype).type)
    values *= std
    return values


def standard_normal(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike
) -> np.ndarray:
    """The article's ``np.random.randn(input_dim, output_dim)``: N(0, 1)."""
    return _normal(rng, shape, dtype, 1.0)


def glorot_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike
) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    return _uniform(rng, shape, dtype, np.sqrt(6.0 / (fan_in + fan_out)))


def glorot_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    return _normal(rng, shape, dtype, np.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    fan_in, _ = _fans(shape)
    return _uniform(rng, shape, dtype, np.sqrt(6.0 / fan_in))


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    fan_in, _ = _fans(shape)
    return _normal(rng, shape, dtype, np.sqrt(2.0 / fan_in))


def zeros(rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def ones(rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


_REGISTRY: Registry[Initializer] = Registry("initializer")
for _fn in (standard_normal, glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones):
    _REGISTRY.register(_fn.__name__, _fn)
_REGISTRY.alias("xavier_uniform", "glorot_uniform")
_REGISTRY.alias("xavier_normal", "glorot_normal")
_REGISTRY.alias("kaiming_uniform", "he_uniform")
_REGISTRY.alias("kaiming_normal", "he_normal")
_REGISTRY.alias("randn", "standard_normal")

_RELU_FAMILY = {"relu", "leaky_relu", "elu", "gelu"}


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return _REGISTRY.names()


def canonical(name: str) -> str:
    """The registered name for ``name`` (aliases resolved), or a ValueError listing them."""
    return _REGISTRY.canonical(name, argument="kernel_initializer")


def get(name: str) -> Initializer:
    """Return the initialiser called ``name``."""
    return _REGISTRY.get(name, argument="kernel_initializer")


def default_for(activation: str) -> str:
    """He initialisation for the ReLU family, Glorot otherwise (as in Keras and PyTorch)."""
    return "he_uniform" if activation in _RELU_FAMILY else "glorot_uniform"
