"""Layers: ``Dense`` (the article's neurons), ``Activation``, ``Dropout`` and ``Normalization``.

Every layer follows one protocol, with each ``forward`` next to its ``backward``:

- ``parameter_shapes(input_dim)`` and ``output_dim(input_dim)`` before weights exist;
- ``build(input_dim, dtype, rng, params, grads)`` receives views into the model's flat
  parameter and gradient buffers and initialises its weights in place;
- ``forward(x, training, activate)`` computes the output and records nothing, so any
  number of threads may run it at once (inference);
- ``forward_record(x, training, activate)`` returns the output and a record of what
  ``backward(grad, record)`` needs; ``backward`` fills the parameter gradients (unless
  ``parameter_grads=False``) and returns ``dL/dx``. ``activate=False`` stops before the
  layer's activation (logits for a fused loss); layers without one ignore it;
- ``get_config()`` returns JSON-able settings; ``from_config`` rebuilds the layer.

>>> import numpy as np, neurocloud as nc
>>> layer = nc.layers.Dense(3, activation="relu")
>>> layer.output_dim(2)
3
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurocloud.nn import activations, initializers
from neurocloud.nn.registry import Registry
from neurocloud.nn.validation import check_number, positive_int

__all__ = ["Activation", "Dense", "Dropout", "Layer", "Normalization", "available", "from_config"]


class Layer:
    """Base class for layers; the defaults describe a layer without parameters."""

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}
        self.built = False

    # --- shapes and weights -------------------------------------------------------------
    def parameter_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        return {}

    def output_dim(self, input_dim: int) -> int:
        return input_dim

    def build(
        self,
        input_dim: int,
        dtype: np.dtype,
        rng: np.random.Generator,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
    ) -> None:
        self.input_dim = input_dim
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.params = params
        self.grads = grads
        self.built = True

    def parameters(self) -> list[np.ndarray]:
        return list(self.params.values())

    def gradients(self) -> list[np.ndarray]:
        return list(self.grads.values())

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state saved with the weights (none by default)."""
        return {}

    def load_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`buffers` returned."""

    # --- computation ----------------------------------------------------------------------
    #: the activation applied last (``None`` for layers without one); when it is fusable
    #: with a loss, ``activate=False`` returns its input
    activation: activations.Activation | None = None

    def forward(self, x: np.ndarray, training: bool = False, activate: bool = True) -> np.ndarray:
        """The output for ``x``; records nothing."""
        return self.forward_record(x, training, activate)[0]

    def forward_record(
        self, x: np.ndarray, training: bool = False, activate: bool = True
    ) -> tuple[np.ndarray, Any]:
        """The output for ``x`` and what :meth:`backward` needs to go back through it."""
        raise NotImplementedError

    def backward(
        self, grad: np.ndarray, record: Any, input_grad: bool = True, parameter_grads: bool = True
    ) -> np.ndarray | None:
        """Fill this layer's gradients from ``dL/d output`` (``grad`` may be overwritten)
        and the ``record`` of its forward pass; return ``dL/d input``."""
        raise NotImplementedError

    # --- configuration --------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """A fully connected layer: ``a = activation(x @ kernel + bias)``.

    Each of the ``units`` outputs is one of the article's neurons: a weighted sum of the
    inputs (a column of ``kernel``) plus a bias, then the activation.

    >>> import neurocloud as nc
    >>> nc.layers.Dense(2, activation="sigmoid").get_config()["kernel_initializer"]
    'glorot_uniform'
    """

    _ones = np.ones(0)

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        kernel_initializer: str | None = None,
        use_bias: bool = True,
        bias_initializer: str = "zeros",
    ) -> None:
        super().__init__()
        self.units = positive_int(units, "units")
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.canonical(
            kernel_initializer or initializers.default_for(self.activation.name)
        )
        self.bias_initializer = initializers.canonical(bias_initializer)
        self.use_bias = bool(use_bias)

    def parameter_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"kernel": (input_dim, self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def output_dim(self, input_dim: int) -> int:
        return self.units

    def build(
        self,
        input_dim: int,
        dtype: np.dtype,
        rng: np.random.Generator,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
    ) -> None:
        super().build(input_dim, dtype, rng, params, grads)
        kernel = params["kernel"]
        kernel[...] = initializers.get(self.kernel_initializer)(rng, kernel.shape, kernel.dtype)
        if self.use_bias:
            bias = params["bias"]
            bias[...] = initializers.get(self.bias_initializer)(rng, bias.shape, bias.dtype)

    def forward(self, x: np.ndarray, training: bool = False, activate: bool = True) -> np.ndarray:
        """``activate=False`` returns the pre-activation (logits) for fused losses."""
        z = x.dot(self.params["kernel"])
        if activate and self.use_bias:  # nothing is kept for a backward pass: z is overwritten
            return self.activation.forward_biased(z, self.params["bias"])
        if self.use_bias:
            z += self.params["bias"]
        return self.activation.forward(z, out=z) if activate else z

    def forward_record(
        self, x: np.ndarray, training: bool = False, activate: bool = True
    ) -> tuple[np.ndarray, Any]:
        z, act = x.dot(self.params["kernel"]), self.activation
        if activate and not act.backward_uses_input:
            # The derivative needs only the output, so the activation overwrites z.
            bias = self.params["bias"] if self.use_bias else None
            a = act.forward(z, out=z) if bias is None else act.forward_biased(z, bias)
            return a, (x, a, a)
        if self.use_bias:
            z += self.params["bias"]
        if not activate:
            return z, (x, None, None)
        a = act.forward(z)
        return a, (x, z, a)

    def backward(
        self, grad: np.ndarray, record: Any, input_grad: bool = True, parameter_grads: bool = True
    ) -> np.ndarray | None:
        x, z, a = record
        if z is not None:  # None: recorded with activate=False, grad is dL/dz already
            grad = self.activation.backward(grad, z, a)
        if parameter_grads:
            np.matmul(x.T, grad, out=self.grads["kernel"])
            if self.use_bias:
                # Summing the rows as ones @ grad (BLAS) is 2-3x faster than np.add.reduce.
                ones = self._ones
                if ones.shape[0] != grad.shape[0] or ones.dtype != grad.dtype:
                    ones = self._ones = np.ones(grad.shape[0], grad.dtype)
                np.matmul(ones, grad, out=self.grads["bias"])
        if not input_grad:
            return None
        return grad.dot(self.params["kernel"].T)

    def get_config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "kernel_initializer": self.kernel_initializer,
            "use_bias": self.use_bias,
            "bias_initializer": self.bias_initializer,
        }


class Activation(Layer):
    """An activation applied as a layer of its own.

    >>> import numpy as np, neurocloud as nc
    >>> nc.layers.Activation("relu").forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = activations.get(activation)

    def forward(self, x: np.ndarray, training: bool = False, activate: bool = True) -> np.ndarray:
        return self.activation.forward(x) if activate else x

    def forward_record(
        self, x: np.ndarray, training: bool = False, activate: bool = True
    ) -> tuple[np.ndarray, Any]:
        if not activate:
            return x, None
        a = self.activation.forward(x)
        return a, (x, a)

    def backward(
        self, grad: np.ndarray, record: Any, input_grad: bool = True, parameter_grads: bool = True
    ) -> np.ndarray | None:
        if record is None:
            return grad
        return self.activation.backward(grad.copy(), *record)

    def get_config(self) -> dict[str, Any]:
        return {"activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Inverted dropout: zeroes a fraction ``rate`` of inputs while training, scales the rest.

    The mask comes from the model's own random generator, so runs are reproducible.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = check_number(rate, "rate", low=0, high=1, high_open=True)

    def forward_record(
        self, x: np.ndarray, training: bool = False, activate: bool = True
    ) -> tuple[np.ndarray, Any]:
        if not training or self.rate == 0:
            return x, None
        keep = 1.0 - self.rate
        mask = (self.rng.random(x.shape, dtype=x.dtype.type) < keep).astype(x.dtype)
        mask *= x.dtype.type(1.0 / keep)
        return x * mask, mask

    def backward(
        self, grad: np.ndarray, record: Any, input_grad: bool = True, parameter_grads: bool = True
    ) -> np.ndarray | None:
        return grad if record is None else grad * record

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate}


class Normalization(Layer):
    """Standardises features: ``(x - mean) / scale``, with statistics fixed before training.

    The statistics are saved with the model, so a served model applies the same
    preprocessing as training did.

    >>> import numpy as np, neurocloud as nc
    >>> norm = nc.layers.Normalization().adapt(np.array([[0.0], [2.0]]))
    >>> norm.mean, norm.scale
    (array([1.]), array([1.]))
    """

    def __init__(self, mean: list[float] | None = None, scale: list[float] | None = None) -> None:
        super().__init__()
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        # One without the other: centre only (scale 1), or scale only (mean 0).
        if self.mean is not None and self.scale is None:
            self.scale = np.ones_like(self.mean)
        elif self.scale is not None and self.mean is None:
            self.mean = np.zeros_like(self.scale)
        if self.mean is not None and self.scale is not None and self.mean.shape != self.scale.shape:
            raise ValueError(
                f"Normalization mean and scale must have one value per feature each; received "
                f"{self.mean.shape[0] if self.mean.ndim else 1} means and "
                f"{self.scale.shape[0] if self.scale.ndim else 1} scales."
            )
        if self.scale is not None and np.any(self.scale <= 0):
            raise ValueError(f"Normalization scale must be > 0; received scale={scale!r}")

    def adapt(self, X: np.ndarray) -> Normalization:
        """Take the mean and standard deviation of ``X`` (constant columns get scale 1)."""
        X = np.asarray(X, dtype=np.float64)
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        if self.built:
            self._cast()
        return self

    def build(
        self,
        input_dim: int,
        dtype: np.dtype,
        rng: np.random.Generator,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
    ) -> None:
        super().build(input_dim, dtype, rng, params, grads)
        if self.mean is None:
            self.mean, self.scale = np.zeros(input_dim), np.ones(input_dim)
        if self.mean.shape != (input_dim,):
            raise ValueError(
                f"Normalization was adapted to {self.mean.shape[0]} features but its input "
                f"has {input_dim}."
            )
        self._cast()

    def _cast(self) -> None:
        # 1/scale is taken from the scale rounded to the model's dtype, as saved, so a
        # reloaded model computes bit for bit what this one does.
        self._mean = self.mean.astype(self.dtype)
        self._scale = self.scale.astype(self.dtype)
        self._inv_scale = (1.0 / self._scale.astype(np.float64)).astype(self.dtype)

    def buffers(self) -> dict[str, np.ndarray]:
        return {"mean": self._mean, "scale": self._scale}

    def load_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(buffers["mean"], dtype=np.float64)
        self.scale = np.asarray(buffers["scale"], dtype=np.float64)
        self._cast()

    def forward_record(
        self, x: np.ndarray, training: bool = False, activate: bool = True
    ) -> tuple[np.ndarray, Any]:
        return (x - self._mean) * self._inv_scale, None

    def backward(
        self, grad: np.ndarray, record: Any, input_grad: bool = True, parameter_grads: bool = True
    ) -> np.ndarray | None:
        return grad * self._inv_scale

    def get_config(self) -> dict[str, Any]:
        return {}


_REGISTRY: Registry[type[Layer]] = Registry("layer")
for _cls in (Dense, Activation, Dropout, Normalization):
    _REGISTRY.register(_cls.__name__.lower(), _cls)


def available() -> list[str]:
    """Class names of the registered layers (what saved configs may name)."""
    return [_REGISTRY.get(n).__name__ for n in _REGISTRY.names()]


def register(cls: type[Layer]) -> type[Layer]:
    """Make a custom layer class loadable from saved configs (usable as a decorator)."""
    _REGISTRY.register(cls.__name__.lower(), cls)
    return cls


def from_config(entry: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"class_name": ..., "config": {...}}``."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(
            f"Expected a layer entry with 'class_name' and 'config'; received {entry!r}"
        )
    cls = _REGISTRY.get(str(entry["class_name"]), argument="class_name")
    return cls.from_config(dict(entry.get("config", {})))
