"""What every gradient method shares: the network, checked inputs, targets, input gradients.

The gradient of one chosen output with respect to the inputs comes from the engine's own
backpropagation: ``model.record(X)`` then ``model.backward(one_hot(target), tape)``, which
returns ``d output[target] / d X`` for every row at once.

>>> import numpy as np, neurocloud as nc
>>> from neurocloud.explain.core import target_gradients
>>> m = nc.Sequential([nc.layers.Dense(1, use_bias=False)], input_dim=2, seed=0)
>>> values, grads = target_gradients(m, np.ones((3, 2)), np.zeros(3, dtype=int))
>>> np.allclose(grads, m.layers[0].params["kernel"][:, 0])
True
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from neurocloud.nn.validation import as_features

__all__ = [
    "DeadlineExceeded",
    "as_network",
    "check_deadline",
    "check_feature_names",
    "check_inputs",
    "check_positive_int",
    "check_representable",
    "deadline",
    "model_outputs",
    "output_names",
    "resolve_targets",
    "target_gradients",
]

#: rows per forward/backward pass; bounds memory when steps x samples x rows is large
CHUNK_ROWS = 16384

_DEADLINE: ContextVar[tuple[float, threading.Event | None] | None] = ContextVar(
    "neurocloud_explain_deadline", default=None
)


class DeadlineExceeded(RuntimeError):
    """An explanation ran past its deadline (or was stopped) and gave up between chunks."""


@contextlib.contextmanager
def deadline(at: float, stop: threading.Event | None = None) -> Iterator[None]:
    """Make explanations computed in this context give up, between chunks of rows, once
    ``time.monotonic()`` passes ``at`` or ``stop`` is set (:class:`DeadlineExceeded`).

    >>> import time
    >>> with deadline(time.monotonic() - 1):
    ...     check_deadline()
    Traceback (most recent call last):
    neurocloud.explain.core.DeadlineExceeded: the explanation ran past its deadline
    """
    token = _DEADLINE.set((at, stop))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raise :class:`DeadlineExceeded` when the current :func:`deadline` has passed."""
    current = _DEADLINE.get()
    if current is None:
        return
    at, stop = current
    if stop is not None and stop.is_set():
        raise DeadlineExceeded("the explanation was stopped (the server is shutting down)")
    if time.monotonic() > at:
        raise DeadlineExceeded("the explanation ran past its deadline")


def as_network(model: Any) -> Any:
    """The network behind ``model``: a ``Sequential``, a fitted estimator's ``model_``, or
    a loaded artifact's ``model``. Raises ``TypeError`` for anything without backward."""
    for candidate in (model, getattr(model, "model_", None), getattr(model, "model", None)):
        if all(hasattr(candidate, name) for name in ("record", "backward", "input_dim")):
            return candidate
    raise TypeError(
        "Expected a neurocloud model with record/backward (a Sequential, a fitted "
        f"estimator or a loaded artifact); received {type(model).__name__}."
    )


def check_representable(net: Any, array: np.ndarray, name: str) -> np.ndarray:
    """Raise a ``ValueError`` naming ``name`` if a finite float64 value of ``array`` becomes
    infinite in the network's own dtype (``1e308`` in a float32 model); else ``array``."""
    dtype = np.dtype(getattr(net, "dtype", np.float64))
    if dtype.kind != "f" or dtype.itemsize >= 8:
        return array
    limit = float(np.finfo(dtype).max)
    too_large = np.abs(array) > limit
    if np.any(too_large):
        bad = np.argwhere(too_large)[0]
        where = f" at index [{', '.join(map(str, bad))}]" if array.ndim else ""
        raise ValueError(
            f"{name} must be finite in the model's {dtype.name}; received "
            f"{float(array[tuple(bad)])!r}{where}, which {dtype.name} "
            f"(largest magnitude {limit:.4g}) holds as infinity."
        )
    return array


def check_inputs(net: Any, X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a float64 array of shape ``(n, input_dim)`` whose values are finite also in
    the network's dtype; one row may be 1-D."""
    array = np.asarray(X)
    if array.ndim == 1 and net.input_dim not in (None, 1):
        array = array.reshape(1, -1)
    array = as_features(array, net.input_dim, np.dtype(np.float64), name=name)
    return check_representable(net, array, name)


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    return int(value)


def check_feature_names(names: Any, n_features: int, net: Any = None) -> list[str]:
    """``names`` as a list of ``n_features`` strings; ``None`` gives the names stored with
    ``net`` (``model.json``'s ``feature_names``, kept by ``nc.load``), else ``x0, x1, ...``."""
    if names is None:
        names = getattr(net, "feature_names", None)
        if names is None or len(names) != n_features:
            return [f"x{i}" for i in range(n_features)]
    names = [str(name) for name in names]
    if len(names) != n_features:
        raise ValueError(
            f"Expected {n_features} feature_names (one per input); received {len(names)}."
        )
    return names


def output_names(net: Any) -> list[str] | None:
    """The names of the network's outputs stored with it (a classifier's class labels)."""
    names = getattr(net, "output_names", None)
    return None if names is None else [str(name) for name in names]


def model_outputs(net: Any, X: np.ndarray, logits: bool = False) -> np.ndarray:
    """The network's outputs (or logits) for ``X`` as float64, in chunks."""
    parts = []
    for i in range(0, len(X), CHUNK_ROWS):
        check_deadline()
        parts.append(np.array(net.forward(X[i : i + CHUNK_ROWS], logits=logits), np.float64))
    return np.concatenate(parts)


def resolve_targets(outputs: np.ndarray, target: Any) -> np.ndarray:
    """One output index per row: ``target`` (an int, or one per row), or by default the
    predicted class (the largest output), or output 0 for a single output."""
    n, k = outputs.shape
    if target is None:
        return np.zeros(n, dtype=np.int64) if k == 1 else outputs.argmax(axis=1)
    array = np.asarray(target)
    integral = array.dtype.kind in "iu" or (
        array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array))
    )
    if array.dtype.kind == "b" or not integral or array.ndim > 1:
        raise ValueError(
            f"Expected target to be an output index (an int, or one per row). Received: "
            f"target={target!r}"
        )
    array = np.broadcast_to(array.astype(np.int64), (n,)) if array.ndim == 0 else array
    if array.shape != (n,):
        raise ValueError(f"Expected one target per row ({n}); received {array.shape[0]} targets.")
    if np.any((array < 0) | (array >= k)):
        bad = int(array[(array < 0) | (array >= k)][0])
        raise ValueError(
            f"Expected target in [0, {k}) for a model with {k} outputs. Received: target={bad}"
        )
    return np.array(array, dtype=np.int64)


def target_gradients(
    net: Any, points: np.ndarray, targets: np.ndarray, logits: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``f_t(points)`` and ``d f_t / d points`` for each row's target ``t`` (float64).

    One forward and one backward pass per chunk of rows: the seed gradient is the one-hot
    of each row's target, so backpropagation returns exactly that output's input gradient.
    """
    values = np.empty(len(points), dtype=np.float64)
    grads = np.empty(points.shape, dtype=np.float64)
    for start in range(0, len(points), CHUNK_ROWS):
        check_deadline()
        stop = start + CHUNK_ROWS
        rows = np.arange(len(points[start:stop]))
        # A tape of its own, and no parameter gradients: safe beside predict and training.
        tape = net.record(points[start:stop], training=False, logits=logits)
        out = tape.output
        chosen = targets[start:stop]
        values[start:stop] = out[rows, chosen]
        seed = np.zeros_like(out)
        seed[rows, chosen] = 1.0
        grads[start:stop] = net.backward(seed, tape, parameter_grads=False)
    return values, grads
