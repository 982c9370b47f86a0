"""The optimizers' base class: an update in place, block by block, and its state saved
and restored.

A subclass defines ``_update(p, g, state, tmp, scalars)`` for one block and names its
state ``slots``; ``step`` runs it over blocks of about :data:`BLOCK` elements, on several
threads for large updates (the same bits, ``nn.parallel``). The update rules themselves
are in :mod:`neurocloud.nn.optim`.

>>> import numpy as np
>>> from neurocloud.nn.optim import SGD
>>> w = np.array([1.0]); SGD(lr=0.1).step([w], [np.array([0.5])]); w
array([0.95])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from neurocloud.nn import memory
from neurocloud.nn.parallel import run_split
from neurocloud.nn.validation import check_number

__all__ = ["BLOCK", "COMPILED_PARALLEL_MIN", "PARALLEL_MIN", "Optimizer"]


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

#: Where in a page the state slots and the scratch start (``nn.memory``): an update reads
#: them at the same index as the parameters and gradients, which take lanes 0 and 1. The
#: scratch's lane 1.5 was the fastest or level for the NumPy paths of Adam, RMSprop and SGD
#: with momentum against lanes 0.5, 2.25 and 3.5 (235k float32 weights, one-off script:
#: RMSprop 281 us against 292-328 us, Adam 307 against 323-358 us).
SLOT_LANES = (2, 3, 2.5, 3.5)
SCRATCH_LANE = 1.5


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
        self._scratch = [memory.zeros_like(p, lane=SCRATCH_LANE) for p in like]
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
            lanes = [SLOT_LANES[k % len(SLOT_LANES)] for k in range(len(self.slots))]
            state = [
                {slot: memory.zeros_like(p, lane) for slot, lane in zip(self.slots, lanes)}
                for p in params
            ]
            self._adopt_state(state, params)
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
        if self._step_whole(params, grads, scalars):
            return
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

    def _step_whole(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], scalars
    ) -> bool:
        """Whether this step updated each parameter whole, in one call (a compiled kernel);
        by default it did not, and ``_update`` runs block by block."""
        return False

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
        >>> from neurocloud.nn.optim import Adam
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
            arrays.setdefault(int(index), {})[slot] = np.asarray(value)  # copied below
        if sorted(arrays) != list(range(len(arrays))) or any(
            set(slots) != set(self.slots) for slots in arrays.values()
        ):
            raise ValueError(
                f"Optimizer state for {type(self).__name__} needs every slot "
                f"{list(self.slots)} for parameters 0..n-1; received {sorted(state)}."
            )
        lanes = {slot: SLOT_LANES[k % len(SLOT_LANES)] for k, slot in enumerate(self.slots)}
        ordered = [
            {slot: memory.placed(a, lanes[slot]) for slot, a in arrays[i].items()}
            for i in range(len(arrays))
        ]
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
