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
import math
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocloud.nn.validation import as_features

__all__ = [
    "Bounds",
    "DeadlineExceeded",
    "WorkLimitExceeded",
    "as_network",
    "check_deadline",
    "check_feature_names",
    "check_inputs",
    "check_representable",
    "check_work",
    "deadline",
    "model_outputs",
    "network_size",
    "output_names",
    "resolve_targets",
    "spend",
    "target_gradients",
]

#: rows per forward/backward pass; bounds memory when steps x samples x rows is large
CHUNK_ROWS = 16384


class DeadlineExceeded(RuntimeError):
    """An explanation ran past its deadline (or was stopped) and gave up between chunks."""


class WorkLimitExceeded(ValueError):
    """An explanation needed more work than its :func:`deadline` context allows; it gave
    up between chunks (a request that asks too much: a 4xx, not a 500)."""


@dataclass
class Bounds:
    """What an explanation may still do: a deadline (``time.monotonic()``), a stop event,
    and at most ``max_work`` work units; ``work`` counts the units done so far.

    A work unit is one point through one network parameter (or feature): a chunk of
    ``rows`` points through a network of ``p`` parameters and ``d`` features counts
    ``rows x (p + d)``, whether it is a forward pass or a forward and backward pass.
    Bounds nest: work is counted in the enclosing bounds too, and theirs still apply.
    """

    at: float = math.inf
    stop: threading.Event | None = None
    max_work: float = math.inf
    work: int = 0
    parent: Bounds | None = field(default=None, repr=False)

    def chain(self) -> Iterator[Bounds]:
        bounds: Bounds | None = self
        while bounds is not None:
            yield bounds
            bounds = bounds.parent


_BOUNDS: ContextVar[Bounds | None] = ContextVar("neurocloud_explain_bounds", default=None)


@contextlib.contextmanager
def deadline(
    at: float = math.inf, stop: threading.Event | None = None, *, max_work: float = math.inf
) -> Iterator[Bounds]:
    """Make explanations computed in this context give up, between chunks of rows, once
    ``time.monotonic()`` passes ``at`` or ``stop`` is set (:class:`DeadlineExceeded`), or
    once their work would pass ``max_work`` units (:class:`WorkLimitExceeded`). Yields
    the :class:`Bounds`, whose ``work`` says how much was done.

    >>> import time
    >>> with deadline(time.monotonic() - 1):
    ...     check_deadline()
    Traceback (most recent call last):
    neurocloud.explain.core.DeadlineExceeded: the explanation ran past its deadline
    """
    bounds = Bounds(at, stop, max_work, parent=_BOUNDS.get())
    token = _BOUNDS.set(bounds)
    try:
        yield bounds
    finally:
        _BOUNDS.reset(token)


def check_deadline() -> None:
    """Raise :class:`DeadlineExceeded` when a current :func:`deadline` has passed."""
    current = _BOUNDS.get()
    if current is None:
        return
    now = time.monotonic()
    for bounds in current.chain():
        if bounds.stop is not None and bounds.stop.is_set():
            raise DeadlineExceeded("the explanation was stopped")
        if now > bounds.at:
            raise DeadlineExceeded("the explanation ran past its deadline")


def check_work(units: int) -> None:
    """Raise :class:`WorkLimitExceeded` if ``units`` more work would pass a current bound
    (without counting them): lets a method refuse before a large pass, not midway."""
    current = _BOUNDS.get()
    if current is None:
        return
    for bounds in current.chain():
        if bounds.work + units > bounds.max_work:
            raise WorkLimitExceeded(
                f"the explanation needs more than {bounds.max_work:.0f} work units (points x "
                f"(parameters + features)): {bounds.work} were done and {units} more were "
                "needed"
            )


def spend(units: int) -> None:
    """Count ``units`` of work about to be done (see :class:`Bounds`), after checking the
    deadline and the work bound (:func:`check_deadline`, :func:`check_work`). Called
    before every chunk of an explanation's passes through the network.

    >>> with deadline(max_work=100) as bounds:
    ...     spend(60)
    ...     spend(60)
    Traceback (most recent call last):
    neurocloud.explain.core.WorkLimitExceeded: the explanation needs more than 100 work units ...
    """
    check_deadline()
    check_work(units)
    current = _BOUNDS.get()
    if current is not None:
        for bounds in current.chain():
            bounds.work += units


def network_size(net: Any) -> int:
    """The network's parameter count (0 for an unbuilt or foreign network)."""
    count = getattr(net, "count_params", None)
    try:
        return int(count()) if callable(count) else 0
    except Exception:  # an unbuilt or foreign network: counted by its features only
        return 0


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
    cost = network_size(net) + X.shape[1]
    for i in range(0, len(X), CHUNK_ROWS):
        spend(len(X[i : i + CHUNK_ROWS]) * cost)
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
    cost = network_size(net) + points.shape[1]
    check_work(len(points) * cost)  # refuse now rather than after most of the passes
    for start in range(0, len(points), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        spend(len(points[start:stop]) * cost)
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
