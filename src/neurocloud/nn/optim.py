"""Optimizers: the article's gradient descent and the adaptive methods users expect.

``step(params, grads)`` updates each parameter array in place from its gradient. State
(momentum, moment estimates) lives in arrays of the parameters' own dtype, so float32 stays
float32. ``Sequential.fit`` passes one flat buffer holding every weight, so an update is a
handful of vectorised operations whatever the number of layers. The base class, its blocks
and its saved state are in :mod:`neurocloud.nn.optimizer`.

>>> import numpy as np
>>> w, g = np.array([1.0]), np.array([0.5])
>>> SGD(lr=0.1).step([w], [g]); w
array([0.95])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurocloud.nn import kernels
from neurocloud.nn.lbfgs import LBFGS
from neurocloud.nn.optimizer import BLOCK, COMPILED_PARALLEL_MIN, PARALLEL_MIN, Optimizer
from neurocloud.nn.registry import Registry
from neurocloud.nn.validation import check_number

__all__ = [
    "BLOCK",
    "COMPILED_PARALLEL_MIN",
    "LBFGS",
    "METHODS",
    "PARALLEL_MIN",
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "available",
    "get",
]


class SGD(Optimizer):
    """Gradient descent, ``w -= lr * grad`` (the article's step), with optional momentum.

    ``nesterov=True`` uses Nesterov momentum in the PyTorch formulation.
    """

    name = "sgd"

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.momentum = check_number(momentum, "momentum", low=0, high=1, high_open=True)
        if nesterov and self.momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0. Received: momentum=0")
        self.nesterov = bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()
        super().__init__(lr, weight_decay)

    def _update(self, p, g, state, tmp, scalars):
        if self.momentum:
            # The velocity starts at zero, so the first step sets it to g (as PyTorch does).
            v = state["velocity"]
            v *= self.momentum
            v += g
            if self.nesterov:
                np.multiply(v, self.momentum, out=tmp)
                g += tmp
            else:
                g = v
        np.multiply(g, self.lr, out=tmp)
        p -= tmp

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


def _compiled_takes(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray) -> bool:
    # The kernels index all four arrays alike: a gradient of another shape gets NumPy's error.
    return kernels.accepts(p, g, m, v) and p.shape == g.shape == m.shape == v.shape


class Adam(Optimizer):
    """Adam (Kingma and Ba); ``weight_decay`` adds an L2 term to the gradient.

    The moments are kept without their ``(1 - beta)`` factors, ``state["m"] = m / (1 - beta1)``
    and ``state["v"] = v / (1 - beta2)``, so that each is one multiply and one add per step;
    the factors fold into the per-step constants. The update is PyTorch's,
    ``p -= lr / bias1 * m / (sqrt(v / bias2) + eps)``, up to rounding.

    >>> import numpy as np
    >>> w = np.array([1.0], dtype=np.float32)
    >>> Adam(lr=0.1).step([w], [np.array([3.0], dtype=np.float32)]); w
    array([0.9], dtype=float32)
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.beta1 = check_number(beta1, "beta1", low=0, high=1, high_open=True)
        self.beta2 = check_number(beta2, "beta2", low=0, high=1, high_open=True)
        self.eps = check_number(eps, "eps", low=0)
        super().__init__(lr, weight_decay)

    def _scalars(self) -> tuple[float, float, Any]:
        # With step = lr (1 - beta1) / bias1 the update is step * m~ / (sqrt(v~ (1 - beta2)
        # / bias2) + eps); dividing numerator and denominator by step leaves
        # m~ / (sqrt(v~) * scale + shift).
        step = self.lr * (1.0 - self.beta1) / (1.0 - self.beta1**self.t)
        scale = math.sqrt((1.0 - self.beta2) / (1.0 - self.beta2**self.t)) / step
        # Where numba is installed and the kernel pays off (kernels.adam), the update is one
        # compiled pass: the same operations in the same order, so the same bits
        # (tests/test_kernels.py). Once loaded it is cheaper at every size, even 13 weights.
        kernel = kernels.adam(self._work)
        self._work += self._size
        return scale, self.eps / step, kernel

    def _parallel_min(self, scalars) -> int:
        return PARALLEL_MIN if scalars[2] is None else COMPILED_PARALLEL_MIN

    #: _step_whole's arrays (the key, kept alive, compared by identity) and their flat views
    _whole_key: tuple[np.ndarray, ...] | None = None
    _whole: list[tuple[np.ndarray, ...]] | None = None
    #: per flat view: steps to the next look for first moments near the subnormals
    #: (kernels.adam_float32) and the indices the last look found, or None: never looked
    #: for (not float32, or under kernels.NEAR_MIN elements). Kept while new arrays of the
    #: same kinds come back (a loop with fresh gradients); indices out of date cost time.
    _near: list[tuple[int, np.ndarray | None] | None] | None = None
    _near_sizes: list[int] | None = None

    def _adopt_state(self, state, like) -> None:
        super()._adopt_state(state, like)
        self._whole_key = self._whole = None  # views of the old state

    def _step_whole(self, params, grads, scalars) -> bool:
        # The compiled pass reads each element once, so blocks sized for the cache buy it
        # nothing: one call per parameter, up to the size where threads share the blocks.
        # The flat views are kept while the same arrays come back (fit's buffers): a step
        # of 13 weights 8.9-11.2 -> 5.2 us, most of it the call and the constants.
        kernel = scalars[2]
        if kernel is None or self._size >= COMPILED_PARALLEL_MIN:
            return False
        # The key holds the arrays themselves (compared by identity), so none can be freed
        # and another take its place; a fresh view each step rebuilds the flat views.
        key = self._whole_key
        if (
            key is None
            or len(key) != len(params) + len(grads)
            or any(a is not b for a, b in zip(key, (*params, *grads)))
        ):
            key = (*params, *grads)
            arrays = [(p, g, s["m"], s["v"]) for p, g, s in zip(params, grads, self.state)]
            ok = all(_compiled_takes(*a) for a in arrays)
            flats = [tuple(a.reshape(-1) for a in group) for group in arrays] if ok else None
            self._whole_key, self._whole = key, flats
            sizes = [
                p.size if p.dtype == np.float32 and p.size >= kernels.NEAR_MIN else 0
                for p, *_ in arrays
            ]
            if sizes != self._near_sizes:  # indices found are indices into these sizes
                self._near_sizes = sizes
                self._near = [(0, None) if size else None for size in sizes]
        if self._whole is None:
            return False
        decay, lr, coupled = self.weight_decay, self.lr, not self.decoupled
        near = kernels.adam_float32() if any(self._near) else None
        for k, (p, g, m, v) in enumerate(self._whole):
            if decay and coupled:
                g += decay * p
            elif decay:
                p *= 1.0 - lr * decay
            t = p.dtype.type
            args = (p, g, m, v, t(self.beta1), t(self.beta2), t(scalars[0]), t(scalars[1]))
            looked = self._near[k] if near is not None else None
            if looked is None:
                kernel(*args)
                continue
            # First moments decaying through the subnormals (weights whose gradient stays
            # zero) are looked for every few steps and kept off the slow path until the
            # next look; a list out of date costs time, not bits.
            wait, found = looked
            if wait <= 0:
                found = near[1](m)
                wait, found = kernels.NEAR_EVERY, found if found.size else None
            self._near[k] = (wait - 1, found)
            if found is None:
                kernel(*args)
            else:
                near[0](*args, found)
        return True

    def _update(self, p, g, state, tmp, scalars):
        m, v = state["m"], state["v"]
        kernel = scalars[2]
        if kernel is not None and _compiled_takes(p, g, m, v):
            if self.decoupled and self.weight_decay:  # decayed before the step, as below
                p *= 1.0 - self.lr * self.weight_decay
            t = p.dtype.type
            flat = (a.reshape(-1) for a in (p, g, m, v))
            kernel(*flat, t(self.beta1), t(self.beta2), t(scalars[0]), t(scalars[1]))
            return
        m *= self.beta1
        m += g
        np.multiply(g, g, out=g)
        v *= self.beta2
        v += g
        np.sqrt(v, out=tmp)
        tmp *= scalars[0]
        tmp += scalars[1]
        np.divide(m, tmp, out=tmp)
        if self.decoupled and self.weight_decay:
            p *= 1.0 - self.lr * self.weight_decay
        p -= tmp

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter)."""

    name = "adamw"
    decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop: divide the step by a running root mean square of the gradient."""

    name = "rmsprop"
    slots = ("square_avg",)

    def __init__(
        self, lr: float = 1e-3, rho: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        self.rho = check_number(rho, "rho", low=0, high=1, high_open=True)
        self.eps = check_number(eps, "eps", low=0)
        super().__init__(lr, weight_decay)

    def _update(self, p, g, state, tmp, scalars):
        sq = state["square_avg"]
        sq *= self.rho
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.rho
        sq += tmp
        np.sqrt(sq, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


_REGISTRY: Registry[type[Optimizer] | type[LBFGS]] = Registry("optimizer")
for _cls in (SGD, Adam, AdamW, RMSprop, LBFGS):
    _REGISTRY.register(_cls.name, _cls)

#: what ``fit``'s ``optimizer=`` accepts: a step rule, or the full-batch minimizer
METHODS = (Optimizer, LBFGS)


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return _REGISTRY.names()


def get(name: str | Optimizer | LBFGS, **kwargs: Any) -> Optimizer | LBFGS:
    """Return a new optimizer called ``name`` (an instance passes through).

    >>> get("adam", lr=0.01)
    Adam(lr=0.01, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-08)
    """
    if isinstance(name, METHODS):
        return name
    return _REGISTRY.get(name, argument="optimizer")(**kwargs)
