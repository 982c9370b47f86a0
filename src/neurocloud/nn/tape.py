"""``Tape``: one forward pass recorded for its backward pass.

``Sequential.record(X)`` returns a tape; ``Sequential.backward(grad, tape)`` goes back
through it. Each call has its own tape, so passes on one model may run in several threads
at once; the layers themselves keep nothing between ``forward`` and ``backward``.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(2, activation="relu")], input_dim=3, seed=0)
>>> tape = m.record(np.ones((4, 3)))
>>> tape.output.shape, len(tape.records)
((4, 2), 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Tape"]


class Tape:
    """The output of a forward pass and, per layer, what its ``backward`` needs (inputs,
    activations, dropout masks); ``logits`` says whether it stopped before a final
    sigmoid/softmax, so that ``backward`` takes ``dL/d logits``."""

    __slots__ = ("layers", "logits", "output", "records")

    def __init__(self, layers: list, output: np.ndarray, records: list[Any], logits: bool) -> None:
        self.layers = layers
        self.output = output
        self.records = records
        self.logits = logits

    @staticmethod
    def check(tape: Any, logits: bool | None) -> Tape:
        """``tape`` if it is one (and was recorded as ``logits`` says, when given)."""
        if tape is None:
            raise RuntimeError(
                "backward needs a recorded forward pass: call model.forward(X, "
                "training=True) first (inference, training=False, records nothing), or "
                "pass the tape that model.record(X) returns."
            )
        if not isinstance(tape, Tape):
            raise TypeError(
                f"Expected tape to be what model.record(X) returned. Received: {tape!r}"
            )
        if logits is not None and bool(logits) != tape.logits:
            raise ValueError(
                f"Expected logits={tape.logits}, as the forward pass was recorded. "
                f"Received: logits={logits}"
            )
        return tape

    def own_gradient(self, grad: Any) -> np.ndarray:
        """A copy of ``grad`` in the output's dtype (layers work in place on it), checked
        against the recorded output's shape."""
        grad = np.array(grad, dtype=self.output.dtype)
        if grad.shape != self.output.shape:
            raise ValueError(
                f"Expected grad of shape {self.output.shape}, the recorded output's. "
                f"Received: grad.shape={grad.shape}"
            )
        return grad

    def backward(
        self, grad: np.ndarray, input_grad: bool = True, parameter_grads: bool = True
    ) -> np.ndarray | None:
        """``Sequential.backward`` on a gradient of the model's dtype that it may overwrite."""
        layers, records = self.layers, self.records
        for i in range(len(layers) - 1, -1, -1):
            grad = layers[i].backward(grad, records[i], input_grad or i > 0, parameter_grads)
        return grad
