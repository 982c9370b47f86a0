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
from neurocloud.nn import losses, memory, serialization, training
from neurocloud.nn.callbacks import Callback, History
from neurocloud.nn.inference import InferencePlan
from neurocloud.nn.layers import Layer
from neurocloud.nn.optim import LBFGS, Optimizer
from neurocloud.nn.summary import summary_table
from neurocloud.nn.tape import Tape
from neurocloud.nn.validation import (
    as_features,
    check_dtype,
    check_finite,
    check_number,
    positive_int,
)
from neurocloud.nn.weights import NamedWeights

__all__ = ["Sequential", "Tape"]

#: ``meta["format"]`` of a model's bytes (:meth:`Sequential.to_bytes`)
FORMAT = "neurocloud.sequential"

#: Bytes of the widest activation of one block of rows in ``predict``: small enough for the
#: block to stay in the last-level cache between layers, large enough for efficient GEMMs.
PREDICT_BLOCK_BYTES = 1 << 22


class Sequential(NamedWeights):
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
        self.seed = check_number(seed, "seed", low=0, integer=True)
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
        # Each in its own lane of a page, as the optimizer's state: an update reads all of
        # them at the same index (nn.memory).
        self._flat_params = memory.zeros(total, self.dtype, lane=0)
        self._flat_grads = memory.zeros(total, self.dtype, lane=1)
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
        act = self.layers[-1].activation
        self._fusable = act is not None and act.fuses_with_logits
        self._block_rows = max(64, PREDICT_BLOCK_BYTES // (max(dims) * self.dtype.itemsize))
        self._plan = InferencePlan(self.layers)
        self._logits_plan = InferencePlan(self.layers, logits=True) if self._fusable else self._plan
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
        """Forward propagation. ``logits=True`` stops before a final sigmoid/softmax.

        At inference (``training=False``) nothing is recorded: any number of threads may
        call it at once. With ``training=True`` the pass is recorded as the model's last
        :class:`Tape`, which a following :meth:`backward` without a tape uses; that pair is
        not thread-safe: concurrent code calls :meth:`record` and passes the tape along.
        """
        if not self.built:
            self.build(np.asarray(X).reshape(len(X), -1).shape[1])
        if training:
            tape = self.record(X, training=True, logits=logits)
            self._last_tape = tape
            return tape.output
        out = np.asarray(X, dtype=self.dtype)
        if out.ndim == 2:  # the planned pass: the layers' arithmetic in fewer NumPy calls
            return (self._logits_plan if logits else self._plan).run(out)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            out = layer.forward(out, activate=not (logits and self._fusable and i == last))
        return out

    def record(self, X: np.ndarray, training: bool = True, logits: bool = False) -> Tape:
        """Forward propagation that returns a :class:`Tape`: its ``output`` and what
        ``backward(grad, tape)`` needs. Each call has its own tape (reentrant).

        >>> import numpy as np, neurocloud as nc
        >>> m = nc.Sequential([nc.layers.Dense(2, activation="softmax")], input_dim=3, seed=0)
        >>> tape = m.record(np.ones((4, 3)), training=False, logits=True)
        >>> m.backward(np.ones((4, 2)), tape).shape
        (4, 3)
        """
        if not self.built:
            self.build(np.asarray(X).reshape(len(X), -1).shape[1])
        out = np.asarray(X, dtype=self.dtype)
        fused = bool(logits) and self._fusable
        last = len(self.layers) - 1
        records = []
        for i, layer in enumerate(self.layers):
            out, rec = layer.forward_record(out, training, not (fused and i == last))
            records.append(rec)
        return Tape(self.layers, out, records, bool(logits))

    def backward(
        self,
        grad: np.ndarray,
        tape: Tape | None = None,
        *,
        logits: bool | None = None,
        input_grad: bool = True,
        parameter_grads: bool = True,
    ) -> np.ndarray | None:
        """Backpropagation of ``dL/d output``: fills every gradient, returns ``dL/dX``.

        ``tape`` is what :meth:`record` returned; without it, the model's last
        ``forward(..., training=True)`` is used (not thread-safe). A tape recorded with
        ``logits=True`` takes ``grad`` as ``dL/d logits``; ``logits``, when given, must say
        the same. ``parameter_grads=False`` leaves the model's gradients untouched (input
        gradients only, safe beside training).
        """
        self._require_built()
        tape = Tape.check(getattr(self, "_last_tape", None) if tape is None else tape, logits)
        return tape.backward(tape.own_gradient(grad), input_grad, parameter_grads)

    # --- user-facing --------------------------------------------------------------------
    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Outputs for ``X`` of shape ``(n, input_dim)``; returns ``(n, output_dim)``.

        Large inputs run in blocks of rows (``batch_size`` rows when given), so that each
        block's activations stay in the cache and memory stays bounded; each block's
        finiteness is checked as it runs (``InferencePlan.run_blocks``).
        """
        if batch_size is not None:
            batch_size = positive_int(batch_size, "batch_size")
        X = as_features(X, self.input_dim, self.dtype, finite=False)
        if not self.built:
            self.build(X.shape[1])
        rows = batch_size or self._block_rows
        if rows >= len(X):
            check_finite(X, "X")
            out = self._plan.run(X)
            # A model without weights (dropout alone) would hand back the caller's array.
            return out if self._plan.fresh or not np.shares_memory(out, X) else out.copy()
        return self._plan.run_blocks(X, rows, self._dims[-1])

    def evaluate(self, X: Any, y: Any, loss: str | losses.Loss = "mse") -> float:
        """Mean ``loss`` of the model's predictions on ``(X, y)``."""
        return training.evaluate(self, X, y, loss)

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        loss: str | losses.Loss = "mse",
        optimizer: str | Optimizer | LBFGS = "adam",
        epochs: int = 1,
        batch_size: int | None = None,
        shuffle: bool = True,
        validation_split: float = 0.0,
        validation_data: Sequence[Any] | None = None,
        callbacks: Sequence[Callback] | None = None,
        verbose: int = 0,
        l2: float = 0.0,
        sample_weight: Any = None,
        initial_epoch: int = 0,
    ) -> History:
        """Train with mini-batch gradient methods (or L-BFGS on the full batch).

        ``batch_size=None`` is full-batch gradient descent as in the article. ``l2`` adds
        ``0.5 * l2 * ||kernel||^2`` to the loss. ``verbose=1`` shows a progress bar on a
        terminal. ``initial_epoch`` continues a run that stopped there: epochs are numbered
        from it and training ends at ``epochs`` (as in Keras). Returns a
        :class:`~neurocloud.nn.callbacks.History` whose ``stop_reason`` says why it ended.
        The loop itself is :class:`neurocloud.nn.training.Trainer`.

        >>> import numpy as np, neurocloud as nc
        >>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
        >>> h = m.fit([[0.0], [1.0]], [0.0, 2.0], optimizer=nc.optim.SGD(lr=0.1), epochs=200)
        >>> round(float(m.predict([[2.0]])[0, 0]), 1)
        4.0
        """
        trainer = training.Trainer(
            loss=loss,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            l2=l2,
            callbacks=tuple(callbacks or ()),
            verbose=verbose,
            initial_epoch=initial_epoch,
        )
        return trainer.fit(
            self,
            X,
            y,
            sample_weight=sample_weight,
            validation_data=validation_data,
            validation_split=validation_split,
        )

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts (returned as text)."""
        self._require_built()
        return summary_table(self)

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
