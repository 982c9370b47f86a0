"""Optional compiled kernels: Adam's update in one pass instead of NumPy's ten.

Used only where numba is installed (it comes with the ``explain`` extra, through shap), and
only once an optimizer has done enough work for numba's import to pay off
(:data:`COMPILE_AFTER` element updates, about a second of NumPy updates): ``import
neurocloud``, serving and short runs never import numba. Once loaded it runs updates of
every size (one call instead of ten NumPy passes: 6 against 12 us for 13 weights).
The kernel does the NumPy reference's operations in the same order, element
by element, in the array's own dtype, without fast-math (no fused multiply-add, no
reassociation), so its results are bitwise the reference's (``tests/test_kernels.py``;
of two NaNs added, which one is passed on is the compiler's choice); switching to it in
the middle of a run changes nothing but the time.

A float32 weight whose gradient stays zero (a digits pixel that is rarely lit) has its
first moment decay through the subnormal numbers, where x86 processors take a slow path
for products and quotients: on digits, 163 such moments of 9,610 made an update 11.9
instead of 3.9 us. Every :data:`NEAR_EVERY` steps ``Adam`` looks for them; while there are
some, :func:`adam_float32` does those elements in float64, rounded as float32 rounds (the
same bits, ``tests/test_kernels_subnormal.py``): 6.1 us
(``benchmarks/adam_subnormals.py``).

The same module holds fused element-wise passes for the training step and batch
predicts (:func:`bias_relu`, :func:`relu_backward`: bias and ReLU in one pass, ReLU's
backward mask in one). They run only where an optimizer has already loaded the kernels
(with ``always``, from its first update), so serving and ``import neurocloud`` never load
numba for them.

``NEUROCLOUD_COMPILED``: ``0`` never, ``always`` from the first update, anything
else (the default) after :data:`COMPILE_AFTER`.

Cost: numba and llvmlite (about 210 MB installed), and once per process numba's import
(4.8 s measured on a heavily loaded 2-core machine) plus, the first time on a machine, the
compilation (``cache=True`` keeps it on disk for later processes).

>>> kernel = adam(work=COMPILE_AFTER)
>>> kernel is None or callable(kernel)
True
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np

__all__ = [
    "COMPILE_AFTER",
    "DTYPES",
    "NEAR_EVERY",
    "NEAR_MIN",
    "PASSES_MIN",
    "accepts",
    "adam",
    "adam_float32",
    "bias_relu",
    "mode",
    "passes",
    "relu_backward",
]

#: dtypes the kernels take; other arrays run the NumPy reference
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: element updates an optimizer does with NumPy before it loads the kernel
COMPILE_AFTER = 1 << 30

#: elements from which the fused passes run: a training batch or a predict block (a
#: 128x128 block 13.0 -> 2.7 us), while a request's row never looks for numba at all
PASSES_MIN = 1024

#: steps between looks for first moments near the subnormals (:func:`adam_float32`): a look
#: costs up to a plain update; until the next one, those found take the exact path
NEAR_EVERY = 16
#: the smallest float32 parameter whose first moments are looked at: below it the slow
#: path costs less than the looks
NEAR_MIN = 1024

_lock = threading.Lock()
_adam: Callable[..., None] | None = None
_passes: ModuleType | None = None
_tried = False


def mode() -> str:
    """``"off"``, ``"always"`` or ``"auto"``, from ``NEUROCLOUD_COMPILED``."""
    value = os.environ.get("NEUROCLOUD_COMPILED", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return "off"
    return "always" if value == "always" else "auto"


def accepts(*arrays: np.ndarray) -> bool:
    """Whether the kernels take these arrays: C-contiguous, writeable, of one dtype in
    :data:`DTYPES` (others run the NumPy reference, which names what is wrong)."""
    dtype = arrays[0].dtype
    return dtype in DTYPES and all(
        a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable for a in arrays
    )


def adam(work: int) -> Callable[..., None] | None:
    """The compiled ``adam_update(p, g, m, v, beta1, beta2, scale, shift)`` (1-D contiguous
    arrays of one dtype, scalars of that dtype) for an optimizer that has done ``work``
    element updates so far, or ``None`` (numba missing, turned off, or not yet worth it)."""
    global _adam, _passes, _tried
    setting = mode()
    if setting == "off" or (setting == "auto" and work < COMPILE_AFTER and not _tried):
        return None
    if not _tried:
        with _lock:
            if not _tried:
                try:
                    import neurocloud.nn.kernels_numba as compiled
                except Exception as error:  # missing, or numba failing (no cache locator)
                    if not isinstance(error, ImportError):
                        warnings.warn(
                            f"the compiled Adam update is off ({error!r}); NumPy runs it",
                            RuntimeWarning,
                            stacklevel=3,
                        )
                    compiled = None
                _adam = None if compiled is None else compiled.adam_update
                _passes, _tried = compiled, True
    return _adam


def adam_float32() -> tuple[Callable[..., None], Callable[[np.ndarray], np.ndarray]] | None:
    """``(update, near)``: the compiled float32 update that keeps the first moments at the
    indices it is given off the processor's slow path for subnormal numbers (:func:`adam`'s
    bits, ``update(p, g, m, v, beta1, beta2, scale, shift, indices)``), and ``near(m)``,
    which finds them; ``None`` where :func:`adam` has not loaded the kernels. For a step
    that :func:`adam` gave a kernel: it does not read ``NEUROCLOUD_COMPILED`` again (0.65 us
    by ``timeit``, about 1% of a digits step)."""
    compiled = _passes
    return None if compiled is None else (compiled.adam_float32, compiled.near_subnormal)


def passes() -> ModuleType | None:
    """The compiled element-wise passes (``bias_relu``, ``relu_backward``), or ``None``
    where numba is missing, turned off, or not loaded yet by an optimizer: unlike
    :func:`adam` this never loads it, so a process that only predicts never imports numba."""
    return None if _passes is None or mode() == "off" else _passes


def bias_relu(z: np.ndarray, bias: np.ndarray) -> bool:
    """``z = max(z + bias, 0)`` in place in one compiled pass, where :func:`passes` are
    loaded and take these arrays (2-D ``z`` of at least :data:`PASSES_MIN` elements, a
    bias per column, one dtype, C-contiguous); ``False``: nothing done, NumPy's turn.

    >>> bias_relu(np.ones((2, 2)), np.ones(2))  # too small to look for numba
    False
    """
    fused = passes() if z.size >= PASSES_MIN else None
    if fused is None or z.ndim != 2 or bias.shape != z.shape[1:] or not accepts(z, bias):
        return False
    fused.bias_relu(z, bias)
    return True


def relu_backward(grad: np.ndarray, a: np.ndarray) -> bool:
    """``grad *= a > 0`` in place in one compiled pass (the same conditions as
    :func:`bias_relu`, ``a`` of ``grad``'s shape); ``False``: nothing done."""
    fused = passes() if grad.size >= PASSES_MIN else None
    if fused is None or grad.shape != a.shape or not accepts(grad, a):
        return False
    t = grad.dtype.type
    fused.relu_backward(grad, a, t(0), t(1))
    return True


def _new_lock_after_fork() -> None:
    # A fork while another thread held the lock (importing numba) must not deadlock the child.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)
