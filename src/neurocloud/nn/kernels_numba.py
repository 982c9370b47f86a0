"""The compiled kernels themselves; imported by ``nn.kernels`` only when one is needed
(importing this module imports numba). Each is the NumPy reference's operations, element by
element and in their order, without fast-math: the same bits."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["adam_update", "bias_relu", "relu_backward"]


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


@numba.njit(nogil=True, cache=True, error_model="numpy")
def bias_relu(z: np.ndarray, b: np.ndarray) -> None:
    """``np.add(z, b, out=z)`` then ``np.maximum(z, 0, out=z)`` in one pass over a 2-D
    ``z``. NumPy's maximum keeps a nan (its bits too) and makes -0.0 into +0.0; so does
    this. (That is NumPy 2's SIMD loop on x86; ``tests/test_kernels_passes.py`` compares
    with the NumPy installed.)"""
    rows, cols = z.shape
    for i in range(rows):
        for j in range(cols):
            v = z[i, j] + b[j]
            z[i, j] = v if (v > 0 or v != v) else 0.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def relu_backward(g: np.ndarray, a: np.ndarray, zero: float, one: float) -> None:
    """``np.multiply(g, a > 0, out=g)`` in one pass: ``g`` times 1 or 0 of its own dtype
    (``zero``, ``one``), NumPy's product exactly (a negative ``g`` gives -0.0, inf gives
    nan)."""
    gf, af = g.reshape(-1), a.reshape(-1)
    for i in range(gf.size):
        gf[i] = gf[i] * (one if af[i] > 0 else zero)
