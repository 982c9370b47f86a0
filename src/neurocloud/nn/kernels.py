"""Optional compiled kernels: Adam's update in one pass instead of NumPy's ten.

Used only where numba is installed (it comes with the ``explain`` extra, through shap) and
only for updates of at least ``optim.PARALLEL_MIN`` elements, so ``import neurocloud``,
serving and small models never import numba. The kernel does the NumPy reference's
operations in the same order, element by element, in the array's own dtype, without
fast-math (no fused multiply-add, no reassociation): its results are bitwise the
reference's, which ``tests/test_kernels.py`` checks. ``NEUROCLOUD_COMPILED=0`` turns it off.

Cost: numba and llvmlite (about 170 MB installed), and on the first large update in a
process numba's import and the compilation, about a second (``cache=True`` keeps the
compiled code on disk for later processes).

>>> kernel = adam()
>>> kernel is None or callable(kernel)
True
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DTYPES", "accepts", "adam", "enabled"]

#: dtypes the kernels take; other arrays run the NumPy reference
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_lock = threading.Lock()
_adam: Callable[..., None] | None = None
_tried = False


def enabled() -> bool:
    """Whether compiled kernels may be used (``NEUROCLOUD_COMPILED`` is not ``0``)."""
    return os.environ.get("NEUROCLOUD_COMPILED", "1").strip().lower() not in ("0", "false", "no")


def _compile() -> Callable[..., None] | None:
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def adam_update(p: Any, g: Any, m: Any, v: Any, b1, b2, scale, shift) -> None:
        # Adam._update's ten NumPy passes, per element and in their order.
        for i in range(p.size):
            mi = m[i] * b1 + g[i]
            m[i] = mi
            gi = g[i] * g[i]
            g[i] = gi
            vi = v[i] * b2 + gi
            v[i] = vi
            p[i] = p[i] - mi / (np.sqrt(vi) * scale + shift)

    return adam_update


def accepts(*arrays: np.ndarray) -> bool:
    """Whether the kernels take these arrays: C-contiguous, of one dtype in :data:`DTYPES`."""
    dtype = arrays[0].dtype
    return dtype in DTYPES and all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def adam() -> Callable[..., None] | None:
    """The compiled update ``adam_update(p, g, m, v, beta1, beta2, scale, shift)`` on 1-D
    contiguous arrays of one dtype (scalars of that dtype), or ``None`` without numba."""
    global _adam, _tried
    if not enabled():
        return None
    if not _tried:
        with _lock:
            if not _tried:
                _adam = _compile()
                _tried = True
    return _adam
