"""Optimizers: the article's gradient descent and the adaptive methods users expect.

``step(params, grads)`` updates each parameter array in place from its gradient. State
(momentum, moment estimates) lives in arrays of the parameters' own dtype, so float32 stays
float32. ``Sequential.fit`` passes one flat buffer holding every weight, so an update is a
handful of vectorised operations whatever the number of layers.

>>> import numpy as np
>>> w, g = np.array([1.0]), np.array([0.5])
>>> SGD(lr=0.1).step([w], [g]); w
array([0.95])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from neurocloud.nn import kernels
from neurocloud.nn.lbfgs import LBFGS
from neurocloud.nn.parallel import run_split
from neurocloud.nn.registry import Registry
from neurocloud.nn.validation import check_number

__all__ = ["LBFGS", "METHODS", "SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "available", "get"]


#: Elements per block of an update: the few float32 arrays an update touches (parameter,
#: gradient, state, scratch) then stay in the L2 cache between its operations, instead of
#: streaming from memory once per operation on large models.
BLOCK = 1 << 16

#: Elements from which an update runs its blocks on several threads (``nn.parallel``): the
#: same operations on disjoint blocks, so the same bits; below it a thread's hand-off costs
#: more than it saves.
PARALLEL_MIN = 2 * BLOCK

#: The same for the compiled one-pass update, ten times cheaper per element: threads pay
#: off on larger updates only.
COMPILED_PARALLEL_MIN = 1 << 20


def _blocks(shape: tuple[int, ...]) -> list[Any]:
    """Slices along the first axis covering about ``BLOCK`` elements each (views, never copies)."""
    if not shape:  # a 0-d parameter is one block: its own view
        return [Ellipsis]
    row = math.prod(shape[1:]) or 1
    step = max(1, BLOCK // row)
    return [slice(lo, lo + step) for lo in range(0, shape[0], step)] or [slice(None)]


class Optimizer:
    """Base class: subclasses define ``_update(p, g, state, tmp, scalars)`` and their state slots.

    ``step`` calls ``_update`` once per block of each parameter, with views of the block's
    parameter, gradient, state arrays and a scratch array, and the per-step ``scalars``
    (from ``_scalars``, e.g. bias corrections).
    """

    name = ""
    #: state arrays kept per parameter, created as zeros on the first step
    slots: tuple[str, ...] = ()
    #: whether the method needs the whole data set at once (only the L-BFGS minimizer)
    full_batch = False
    #: whether weight decay is applied to the weights directly rather than via the gradient
    decoupled = False

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = check_number(lr, "lr", low=0, low_open=True)
        self.weight_decay = check_number(weight_decay, "weight_decay", low=0)
        self.reset()

    def reset(self) -> None:
        """Forget all state (moments, step count)."""
        self.t = 0
        self.state: list[dict[str, np.ndarray]] = []
        self._scratch: list[np.ndarray] = []
        self._shapes: list[tuple[int, ...]] = []
        self._block_views: list[list[tuple[Any, dict[str, np.ndarray], np.ndarray]]] = []
        self._size = 0
        self._work = 0  # element updates done, to decide when a compiled kernel pays off
        self._restored = False  # state came from load_state_dict: parameters must match it

    def _adopt_state(self, state: list[dict[str, np.ndarray]], like: Sequence[np.ndarray]) -> None:
        self.state = state
        self._shapes = [p.shape for p in like]
        self._scratch = [np.empty_like(p) for p in like]
        self._block_views = [
            [(b, {k: a[b] for k, a in slots.items()}, tmp[b]) for b in _blocks(p.shape)]
            for p, slots, tmp in zip(like, state, self._scratch)
        ]
        self._size = sum(p.size for p in like)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Update ``params`` in place from ``grads`` (``grads`` may be overwritten)."""
        shapes = [p.shape for p in params]
        if shapes != self._shapes:
            if self._restored and self.slots:
                raise ValueError(
                    f"This optimizer's restored state is for parameters of shapes "
                    f"{self._shapes}; received parameters of shapes {shapes}."
                )
            self._adopt_state(
                [{slot: np.zeros_like(p) for slot in self.slots} for p in params], params
            )
        elif self._restored and self.state and self.state[0]:
            dtypes = {a.dtype for slots in self.state for a in slots.values()}
            if dtypes != {p.dtype for p in params}:
                raise ValueError(
                    f"This optimizer's restored state is {sorted(d.name for d in dtypes)}; "
                    f"received parameters of dtype {sorted({p.dtype.name for p in params})}."
                )
        self._restored = False
        self.t += 1
        scalars = self._scalars()
        coupled_decay = self.weight_decay if not self.decoupled else 0.0
        parts = [
            (p[block], g[block], state, tmp)
            for p, g, views in zip(params, grads, self._block_views)
            for block, state, tmp in views
        ]

        def update(part: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]):
            p, g, state, tmp = part
            if coupled_decay:
                g += coupled_decay * p
            self._update(p, g, state, tmp, scalars)

        if self._size >= self._parallel_min(scalars):
            run_split(update, parts)
        else:
            for part in parts:
                update(part)

    def _scalars(self) -> Any:
        """Per-step constants shared by every block (none by default)."""
        return None

    def _parallel_min(self, scalars: Any) -> int:
        """Elements from which this step's blocks are spread over threads."""
        return PARALLEL_MIN

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], tmp: np.ndarray, scalars
    ) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The step count and every state array (copies), to save and resume training.

        Keys: ``"step"`` and ``"<parameter index>.<slot>"``, e.g. ``"0.m"`` and ``"0.v"``
        for Adam over ``fit``'s one flat parameter buffer.

        >>> import numpy as np
        >>> opt = Adam()
        >>> opt.step([np.zeros(3)], [np.ones(3)])
        >>> sorted(opt.state_dict())
        ['0.m', '0.v', 'step']
        """
        state = {"step": np.array([self.t], dtype=np.int64)}
        for i, slots in enumerate(self.state):
            for slot, array in slots.items():
                state[f"{i}.{slot}"] = array.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict`'s output; the next ``step`` continues from it and
        must receive parameters of the shapes and dtype the state was saved for."""
        step = np.asarray(state.get("step", -1))
        if step.size != 1 or step.dtype.kind not in "iu" or int(step.ravel()[0]) < 0:
            raise ValueError(
                f"Optimizer state needs 'step', a non-negative integer; received "
                f"{state.get('step')!r}."
            )
        arrays: dict[int, dict[str, np.ndarray]] = {}
        for key, value in state.items():
            if key == "step":
                continue
            index, _, slot = key.partition(".")
            if not index.isdigit() or slot not in self.slots:
                raise ValueError(
                    f"Unexpected optimizer state {key!r} for {type(self).__name__}: expected "
                    f"'<index>.<slot>' with slot in {list(self.slots)}."
                )
            arrays.setdefault(int(index), {})[slot] = np.array(value)
        if sorted(arrays) != list(range(len(arrays))) or any(
            set(slots) != set(self.slots) for slots in arrays.values()
        ):
            raise ValueError(
                f"Optimizer state for {type(self).__name__} needs every slot "
                f"{list(self.slots)} for parameters 0..n-1; received {sorted(state)}."
            )
        ordered = [arrays[i] for i in range(len(arrays))]
        for i, slots in enumerate(ordered):
            if len({(a.shape, a.dtype) for a in slots.values()}) != 1:
                raise ValueError(f"Optimizer state of parameter {i}: slots differ in shape/dtype.")
        self.reset()
        self.t = int(step.ravel()[0])
        if ordered:
            self._adopt_state(ordered, [next(iter(slots.values())) for slots in ordered])
        self._restored = True

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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

    def _update(self, p, g, state, tmp, scalars):
        m, v = state["m"], state["v"]
        kernel = scalars[2]
        if kernel is not None and kernels.accepts(p, g, m, v):
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
