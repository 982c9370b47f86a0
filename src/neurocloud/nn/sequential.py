"""``Sequential``: a stack of layers with the article's three algorithm steps.

Forward propagation (``forward``), backpropagation (``backward``) and gradient descent
(an optimizer's ``step`` over ``parameters()`` and ``gradients()``) are public, so they
can be run by hand; ``fit`` runs them in a loop with batches, validation and callbacks.

All weights live in one flat array (and all gradients in another); each layer's kernel and
bias are views into it. Optimizers then update every weight in a few vectorised calls.

>>> import numpy as np, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(2, activation="sigmoid"), nc.layers.Dense(1)],
...                       input_dim=1, seed=0)
>>> model.predict(np.array([[0.5]])).shape
(1, 1)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from neurocloud.nn import layers as layers_module
from neurocloud.nn import losses, serialization
from neurocloud.nn.callbacks import Callback, History
from neurocloud.nn.layers import Dense, Layer
from neurocloud.nn.optim import Optimizer
from neurocloud.nn.validation import (
    all_finite,
    as_features,
    check_dtype,
    check_finite,
    positive_int,
)

__all__ = ["Sequential"]

#: ``meta["format"]`` of a model's bytes (:meth:`Sequential.to_bytes`)
FORMAT = "neurocloud.sequential"

#: Bytes of the widest activation of one block of rows in ``predict``: small enough for the
#: block to stay in the last-level cache between layers, large enough for efficient GEMMs.
PREDICT_BLOCK_BYTES = 1 << 22


class Sequential:
    """A feed-forward network: each layer's output is the next layer's input.

    Args:
        layers: the layers, first to last.
        input_dim: number of input features; if ``None`` the model is built on first use.
        seed: seeds the model's own random generator (initialisation, dropout, shuffling).
        dtype: ``"float32"`` (default) or ``"float64"``, kept end to end.
        name: a name used in summaries and saved artifacts.
    """

    def __init__(
        self,
        layers: Iterable[Layer] | None = None,
        input_dim: int | None = None,
        seed: int | None = None,
        dtype: str = "float32",
        name: str = "sequential",
    ) -> None:
        self.layers: list[Layer] = []
        self.dtype = check_dtype(dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Expected seed to be a non-negative integer. Received: seed={seed!r}")
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.name = name
        self.input_dim: int | None = None
        self.built = False
        self.history: History | None = None
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)
        if input_dim is not None:
            self.build(input_dim)

    # --- structure ----------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer (before the model is built)."""
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Expected a layer (e.g. nc.layers.Dense). Received: {layer!r} "
                f"of type {type(layer).__name__}"
            )
        if self.built:
            raise RuntimeError("Cannot add layers to a built model; create a new Sequential.")
        self.layers.append(layer)

    def build(self, input_dim: int) -> None:
        """Create every weight for inputs of ``input_dim`` features."""
        input_dim = positive_int(input_dim, "input_dim")
        if not self.layers:
            raise ValueError("The model has no layers: add at least one before building it.")
        dims, shapes = [int(input_dim)], []
        for layer in self.layers:
            shapes.append(layer.parameter_shapes(dims[-1]))
            dims.append(layer.output_dim(dims[-1]))
        total = sum(int(np.prod(s)) for layer_shapes in shapes for s in layer_shapes.values())
        self._flat_params = np.zeros(total, dtype=self.dtype)
        self._flat_grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer, layer_shapes, dim in zip(self.layers, shapes, dims):
            params, grads = {}, {}
            for key, shape in layer_shapes.items():
                size = int(np.prod(shape))
                params[key] = self._flat_params[offset : offset + size].reshape(shape)
                grads[key] = self._flat_grads[offset : offset + size].reshape(shape)
                offset += size
            layer.build(dim, self.dtype, self.rng, params, grads)
        self._dims = dims
        self._fusable = self._last_is_fusable()
        self._block_rows = max(64, PREDICT_BLOCK_BYTES // (max(dims) * self.dtype.itemsize))
        self._body = self.layers[:-1]
        self._kernels = [
            (layer.params["kernel"], layer.grads["kernel"])
            for layer in self.layers
            if "kernel" in layer.params
        ]
        self.input_dim = int(input_dim)
        self.built = True

    def _require_built(self) -> None:
        if not self.built:
            raise RuntimeError("The model is not built: give input_dim or call fit/build first.")

    @property
    def output_dim(self) -> int:
        self._require_built()
        return self._dims[-1]

    def parameters(self) -> list[np.ndarray]:
        """Every trainable array (views: updating them updates the model)."""
        self._require_built()
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        """The gradient arrays matching :meth:`parameters`, filled by :meth:`backward`."""
        self._require_built()
        return [g for layer in self.layers for g in layer.gradients()]

    def flat_parameters(self) -> np.ndarray:
        """All weights as one flat array (a view shared with the layers)."""
        self._require_built()
        return self._flat_params

    def flat_gradients(self) -> np.ndarray:
        self._require_built()
        return self._flat_grads

    def count_params(self) -> int:
        return int(self.flat_parameters().size)

    # --- the article's algorithm --------------------------------------------------------
    def forward(self, X: np.ndarray, training: bool = False, logits: bool = False) -> np.ndarray:
        """Forward propagation. ``logits=True`` stops before a final sigmoid/softmax."""
        if not self.built:
            self.build(np.asarray(X).reshape(len(X), -1).shape[1])
        out = np.asarray(X, dtype=self.dtype)
        if logits and self._fusable:
            for layer in self._body:
                out = layer.forward(out, training)
            last = self.layers[-1]
            return last.forward(out, training, activate=False) if isinstance(last, Dense) else out
        for layer in self.layers:
            out = layer.forward(out, training)
        return out

    def backward(
        self, grad: np.ndarray, logits: bool = False, input_grad: bool = True
    ) -> np.ndarray | None:
        """Backpropagation of ``dL/d output``: fills every gradient, returns ``dL/dX``.

        With ``logits=True``, ``grad`` is ``dL/d logits`` from a fused loss.
        """
        self._require_built()
        # A copy: layers work in place on the gradient they receive.
        return self._backward(np.array(grad, dtype=self.dtype), logits, input_grad)

    def _backward(self, grad: np.ndarray, logits: bool, input_grad: bool) -> np.ndarray | None:
        """``backward`` on a gradient array of the model's dtype that it may overwrite."""
        layers = self.layers
        i = len(layers) - 1
        if logits and self._fusable:
            if isinstance(layers[i], Dense):
                grad = layers[i].backward_linear(grad, input_grad or i > 0)
            i -= 1
        while i >= 0:
            grad = layers[i].backward(grad, input_grad or i > 0)
            i -= 1
        return grad

    def _last_is_fusable(self) -> bool:
        act = getattr(self.layers[-1], "activation", None)
        return act is not None and act.name in ("sigmoid", "softmax")

    def fused_output(self, loss: losses.Loss) -> bool:
        """Whether ``loss`` can be computed from logits of this model's last activation."""
        act = getattr(self.layers[-1], "activation", None)
        return act is not None and loss.logits_activation == act.name

    def train_step(
        self, X, y, loss: losses.Loss, fused: bool, l2: float = 0.0, sample_weight=None
    ) -> float:
        """One forward and backward pass on a batch; returns the loss, fills gradients."""
        out = self.forward(X, training=True, logits=fused)
        if fused:
            value, grad = loss.value_and_gradient_from_logits(y, out, sample_weight)
        else:
            value, grad = loss.value_and_gradient(y, out, sample_weight)
        shared = np.may_share_memory(grad, out) or np.may_share_memory(grad, y)
        if shared or grad.dtype != self.dtype:  # backward overwrites it
            grad = np.array(grad, dtype=self.dtype)
        self._backward(grad, fused, input_grad=False)
        if l2:
            for kernel, kernel_grad in self._kernels:
                kernel_grad += l2 * kernel
        return value

    def l2_penalty(self, l2: float) -> float:
        """``0.5 * l2 * sum(kernel ** 2)``, the term whose gradient ``train_step`` adds."""
        if not l2:
            return 0.0
        return 0.5 * l2 * sum(float(np.vdot(k, k)) for k, _ in self._kernels)

    def evaluate_loss(self, X, y, loss: losses.Loss, fused: bool, sample_weight=None) -> float:
        out = self.forward(X, training=False, logits=fused)
        if fused:
            return loss.value_from_logits(y, out, sample_weight)
        return loss.value(y, out, sample_weight)

    # --- user-facing --------------------------------------------------------------------
    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Outputs for ``X`` of shape ``(n, input_dim)``; returns ``(n, output_dim)``.

        Large inputs run in blocks of rows (``batch_size`` rows when given), so that each
        block's activations stay in the cache and memory stays bounded; each block's
        finiteness is checked just before it runs, while its rows are in the cache.
        """
        if batch_size is not None:
            batch_size = positive_int(batch_size, "batch_size")
        X = as_features(X, self.input_dim, self.dtype, finite=False)
        if not self.built:
            self.build(X.shape[1])
        rows = batch_size or self._block_rows
        if rows >= len(X):
            check_finite(X, "X")
            out = self.forward(X)
            # A model without weights (dropout alone) would hand back the caller's array.
            return out.copy() if np.shares_memory(out, X) else out
        out = np.empty((len(X), self._dims[-1]), self.dtype)
        for start in range(0, len(X), rows):
            block = X[start : start + rows]
            if not all_finite(block):
                check_finite(X, "X")  # the error names the index within X
            out[start : start + rows] = self.forward(block)
        return out

    def evaluate(self, X: Any, y: Any, loss: str | losses.Loss = "mse") -> float:
        """Mean ``loss`` of the model's predictions on ``(X, y)``."""
        from neurocloud.nn.training import _targets

        loss_fn = losses.get(loss)
        X = as_features(X, self.input_dim, self.dtype)
        y = _targets(self, y, len(X), loss_fn, "y")
        return self.evaluate_loss(X, y, loss_fn, self.fused_output(loss_fn))

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        loss: str | losses.Loss = "mse",
        optimizer: str | Optimizer = "adam",
        epochs: int = 1,
        batch_size: int | None = None,
        shuffle: bool = True,
        validation_split: float = 0.0,
        validation_data: Sequence[Any] | None = None,
        callbacks: Sequence[Callback] | None = None,
        verbose: int = 0,
        l2: float = 0.0,
        sample_weight: Any = None,
    ) -> History:
        """Train with mini-batch gradient methods (or L-BFGS on the full batch).

        ``batch_size=None`` is full-batch gradient descent as in the article. ``l2`` adds
        ``0.5 * l2 * ||kernel||^2`` to the loss. ``verbose=1`` shows a progress bar on a
        terminal. Returns a :class:`~neurocloud.nn.callbacks.History`.

        >>> import numpy as np, neurocloud as nc
        >>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
        >>> h = m.fit([[0.0], [1.0]], [0.0, 2.0], optimizer=nc.optim.SGD(lr=0.1), epochs=200)
        >>> round(float(m.predict([[2.0]])[0, 0]), 1)
        4.0
        """
        from neurocloud.nn.training import fit

        return fit(
            self,
            X,
            y,
            loss=loss,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            validation_split=validation_split,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
            l2=l2,
            sample_weight=sample_weight,
        )

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts (returned as text)."""
        self._require_built()
        rows = [("Layer (type)", "Output shape", "Params")]
        for i, layer in enumerate(self.layers):
            count = sum(p.size for p in layer.parameters())
            label = type(layer).__name__
            act = getattr(layer, "activation", None)
            if isinstance(layer, Dense) and act is not None and act.name != "identity":
                label += f" ({act.name})"
            rows.append((f"{i}: {label}", f"(None, {self._dims[i + 1]})", f"{count:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        line = "-" * (sum(widths) + 4)
        text = [f'Model "{self.name}" (input_dim={self.input_dim}, dtype={self.dtype.name})', line]
        for j, row in enumerate(rows):
            text.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
            if j == 0:
                text.append(line)
        text += [line, f"Total params: {self.count_params():,}"]
        return "\n".join(text)

    # --- state and configuration ---------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_dim": self.input_dim,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """Rebuild an (untrained) model from :meth:`get_config`'s output."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            keys = sorted(config) if isinstance(config, dict) else []
            raise ValueError(
                "A Sequential config needs a 'layers' list; received "
                f"{type(config).__name__} with keys {keys}."
            )
        layers = [layers_module.from_config(entry) for entry in config["layers"]]
        return cls(
            layers,
            input_dim=config.get("input_dim"),
            seed=config.get("seed", 0),
            dtype=config.get("dtype", "float32"),
            name=config.get("name", "sequential"),
        )

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

    def to_bytes(self) -> bytes:
        """The built model as safe bytes: its config and weights (see ``nn.serialization``).

        >>> import neurocloud as nc
        >>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)
        >>> nc.Sequential.from_bytes(m.to_bytes()).get_config() == m.get_config()
        True
        """
        meta = {"format": FORMAT, "config": self.get_config()}
        return serialization.pack(self.state_dict(), meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> Sequential:
        """Rebuild a model from :meth:`to_bytes`'s output; never runs code from ``data``."""
        tensors, meta = serialization.unpack(data)
        return cls._from_packed(tensors, meta)

    @classmethod
    def _from_packed(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Sequential:
        if meta.get("format") != FORMAT:
            raise ValueError(f"Not a neurocloud model: format is {meta.get('format')!r}.")
        config = meta.get("config")
        if isinstance(config, str):  # bytes written by neurocloud 0.1
            config = json.loads(config)
        model = cls.from_config(config)
        model.load_state_dict(tensors)
        return model

    def __reduce__(self):
        # Pickling goes through the safe format: config plus safetensors bytes.
        return (type(self).from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], input_dim={self.input_dim}, dtype='{self.dtype.name}')"


serialization.register(FORMAT, Sequential._from_packed)
