"""Activation functions and their derivatives, looked up by name.

Each activation maps the pre-activation ``z`` to ``a = f(z)`` and, for backpropagation,
turns ``dL/da`` into ``dL/dz``. ``backward`` receives both ``z`` and ``a`` so that each
rule can use whichever is cheaper (sigmoid and tanh reuse ``a``). Every function is
numerically stable: no overflow warnings for large inputs, dtype kept.

>>> import numpy as np
>>> from neurocloud.nn import activations
>>> act = activations.get("sigmoid")
>>> act.forward(np.array([0.0], dtype=np.float32))
array([0.5], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from neurocloud.nn import kernels
from neurocloud.nn.registry import Registry
from neurocloud.nn.validation import check_number

__all__ = ["Activation", "available", "get", "serialize", "sigmoid", "zeros_like"]


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-z))`` as ``0.5 * tanh(z / 2) + 0.5``: never overflows, keeps dtype.

    (NumPy alone, so that serving a model does not import SciPy.)
    """
    out = np.multiply(z, _HALF, out=out)
    np.tanh(out, out=out)
    out *= _HALF
    out += _HALF
    return out


#: 0.5 as a NumPy scalar: exact in every float dtype, and cheaper per call than a Python float
_HALF = np.float32(0.5)


class Activation:
    """Base class: ``forward(z)`` and ``backward(grad_a, z, a)``."""

    name = "identity"
    #: whether a loss may take this activation's input (logits) instead of its output, as
    #: the cross-entropies do for sigmoid and softmax (stable, and cheaper)
    fuses_with_logits = False
    #: whether ``backward`` reads ``z``; when False ``forward`` may overwrite ``z`` in place
    backward_uses_input = False

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return ``f(z)``, written into ``out`` when given (``out`` may be ``z``)."""
        if out is None:
            return z.copy()
        if out is not z:
            out[...] = z
        return out

    def forward_biased(self, z: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """``f(z + bias)``, written into ``z`` (a layer's fresh pre-activation)."""
        z += bias
        return self.forward(z, out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Return ``dL/dz`` from ``dL/da``; may overwrite ``grad`` in place."""
        return grad

    def get_config(self) -> dict[str, float]:
        """Settings beyond the name (empty for most activations)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Identity(Activation):
    name = "identity"


class Sigmoid(Activation):
    name = "sigmoid"
    fuses_with_logits = True

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return sigmoid(z, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # dσ/dz = σ(1 - σ); grad * a - grad * a * a, in place to spare temporaries.
        t = grad * a
        t -= t * a
        return t


class Tanh(Activation):
    name = "tanh"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.tanh(z, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return grad - grad * (a * a)


#: the most elements for which :func:`zeros_like` gives a block of ``z``'s own shape
ZERO_BLOCK_MAX = 1 << 20
_zero_blocks: dict[np.dtype, np.ndarray] = {}


def zeros_like(z: np.ndarray) -> np.ndarray:
    """Read-only zeros to compare ``z`` with, for ``np.maximum(z, zeros)``: of ``z``'s own
    shape (a view of one shared block) up to :data:`ZERO_BLOCK_MAX` elements, else a row.

    NumPy's loop over two operands of one shape ran 1.7-2.2x as fast as against a
    broadcast row of zeros (a 1,337x256 block: 27 against 47 us), which is itself several
    times as fast as a scalar 0; the result is the same. The block is never written, so
    where malloc maps it fresh (past its mmap threshold) it costs no memory.

    >>> zeros_like(np.ones((2, 3), np.float32)).shape
    (2, 3)
    """
    if z.size > ZERO_BLOCK_MAX or z.ndim == 0:
        row = np.zeros(z.shape[-1:], z.dtype)
        row.flags.writeable = False
        return row
    block = _zero_blocks.get(z.dtype)
    if block is None or block.size < z.size:
        block = np.zeros(max(z.size, 1 << 16), z.dtype)
        block.flags.writeable = False
        _zero_blocks[z.dtype] = block
    return block[: z.size].reshape(z.shape)


class ReLU(Activation):
    name = "relu"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(z, zeros_like(z), out=out)

    def forward_biased(self, z: np.ndarray, bias: np.ndarray) -> np.ndarray:
        # Where the compiled passes are loaded, one pass instead of two (the same bits);
        # ReLU itself only: a subclass's own forward must run.
        if type(self) is ReLU and kernels.bias_relu(z, bias):
            return z
        z += bias
        return self.forward(z, out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # The subgradient at 0 is 0, as in PyTorch and Keras.
        if type(self) is ReLU and kernels.relu_backward(grad, a):
            return grad
        return np.multiply(grad, a > 0, out=grad)


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        # A negative slope makes f non-monotonic, and backward's test on a > 0 wrong.
        self.negative_slope = check_number(negative_slope, "negative_slope", low=0)

    def get_config(self) -> dict[str, float]:
        return {"negative_slope": self.negative_slope}

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return _into(np.where(z > 0, z, z * self.negative_slope), out)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(a > 0, grad, grad * self.negative_slope)


class ELU(Activation):
    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        # A negative alpha makes f(z) > 0 for z < 0, and backward's test on a > 0 wrong.
        self.alpha = check_number(alpha, "alpha", low=0)

    def get_config(self) -> dict[str, float]:
        return {"alpha": self.alpha}

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # expm1 of min(z, 0) never overflows; the positive branch is z itself.
        neg = np.expm1(np.minimum(z, 0)) * self.alpha
        return _into(np.where(z > 0, z, neg), out)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # For z <= 0: d/dz alpha*(e^z - 1) = a + alpha.
        return np.where(a > 0, grad, grad * (a + self.alpha))


class Softplus(Activation):
    name = "softplus"
    backward_uses_input = True

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.logaddexp(0, z, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return grad * sigmoid(z)


class GELU(Activation):
    """Exact GELU, ``z * Φ(z)`` with the normal CDF (PyTorch's default).

    The normal CDF comes from SciPy, imported only when a GELU model runs.
    """

    name = "gelu"
    backward_uses_input = True
    _inv_sqrt2pi = 1.0 / math.sqrt(2.0 * math.pi)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        from scipy import special

        cdf = special.ndtr(z)
        return np.multiply(z, cdf, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        from scipy import special

        pdf = np.exp(-0.5 * z * z) * self._inv_sqrt2pi
        return grad * (special.ndtr(z) + z * pdf)


class Softmax(Activation):
    """Softmax over the last axis, shifted by the row maximum so it never overflows."""

    name = "softmax"
    fuses_with_logits = True

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        shifted = np.subtract(z, row_max(z), out=out)
        np.exp(shifted, out=shifted)
        shifted /= row_sum(shifted)
        return shifted

    def backward(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        # Jacobian-vector product: a * (g - <g, a>) row by row.
        dot = np.einsum("ij,ij->i", grad, a)[:, None]
        return a * (grad - dot)


def row_max(z: np.ndarray) -> np.ndarray:
    """``z.max(axis=-1, keepdims=True)``, fast for a few columns (class scores).

    NumPy reduces a short last axis one row at a time; a transposed copy is reduced
    across the rows instead, several times faster for ten columns.
    """
    if z.ndim == 2 and z.shape[1] <= 32:
        return np.maximum.reduce(np.ascontiguousarray(z.T), axis=0)[:, None]
    return z.max(axis=-1, keepdims=True)


def row_sum(z: np.ndarray) -> np.ndarray:
    """``z.sum(axis=-1, keepdims=True)`` as a matrix-vector product (BLAS), which beats
    NumPy's reduction over a short last axis."""
    return z.dot(np.ones(z.shape[-1], z.dtype))[..., None]


def _into(value: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return value
    out[...] = value
    return out


_REGISTRY: Registry[type[Activation]] = Registry("activation")
for _cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, GELU, Softmax):
    _REGISTRY.register(_cls.name, _cls)
_REGISTRY.alias("linear", "identity")


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return _REGISTRY.names()


def get(name: str | dict | Activation | None) -> Activation:
    """Return the activation called ``name`` (``None`` means identity).

    A dict ``{"name": ..., "config": {...}}`` (what :func:`serialize` writes) restores
    settings such as the leaky ReLU's slope.

    >>> get("relu").name
    'relu'
    >>> get({"name": "leaky_relu", "config": {"negative_slope": 0.2}})
    LeakyReLU(negative_slope=0.2)
    """
    if name is None:
        return Identity()
    if isinstance(name, Activation):
        return name
    if isinstance(name, dict):
        cls = _REGISTRY.get(name.get("name"), argument="activation")
        try:
            return cls(**dict(name.get("config") or {}))
        except TypeError as exc:
            raise ValueError(f"Invalid settings for activation {name!r}: {exc}") from None
    return _REGISTRY.get(name, argument="activation")()


def serialize(activation: Activation) -> str | dict:
    """The activation's name, or ``{"name", "config"}`` when its settings are not defaults.

    >>> serialize(get("relu")), serialize(LeakyReLU(0.2))
    ('relu', {'name': 'leaky_relu', 'config': {'negative_slope': 0.2}})
    """
    config = activation.get_config()
    if config == type(activation)().get_config():
        return activation.name
    return {"name": activation.name, "config": config}
