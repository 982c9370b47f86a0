"""The compiled kernels themselves; imported by ``nn.kernels`` only when one is needed
(importing this module imports numba). Each is the NumPy reference's operations, element by
element and in their order, without fast-math: the same bits."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["adam_update"]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def adam_update(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    b1: float,
    b2: float,
    scale: float,
    shift: float,
) -> None:
    """``Adam._update``'s ten NumPy passes in one: ``m = m b1 + g``, ``g = g g``,
    ``v = v b2 + g``, ``p = p - m / (sqrt(v) scale + shift)``."""
    for i in range(p.size):
        mi = m[i] * b1 + g[i]
        m[i] = mi
        gi = g[i] * g[i]
        g[i] = gi
        vi = v[i] * b2 + gi
        v[i] = vi
        p[i] = p[i] - mi / (np.sqrt(vi) * scale + shift)
