"""The compiled kernels themselves; imported by ``nn.kernels`` only when one is needed
(importing this module imports numba). Each gives the NumPy reference's bits: its operations,
element by element and in their order, without fast-math (and in :func:`adam_float32`, where
a subnormal number would be slow, operations proven to round to the same bits)."""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["adam_float32", "adam_update", "bias_relu", "near_subnormal", "relu_backward"]

_NEAR = (127 - 120) << 23  # the bits of 2**-120: a first moment below it nears the subnormals
_UP, _DOWN, _HALF_DOWN = 2.0**200, 2.0**-200, 2.0**-100


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


@numba.njit(inline="always")
def _round(y):
    # A float64 rounded to float32 and back: one rounding, half to even, subnormals too
    # (conversions take no slow path for them: products, quotients and roots do).
    return np.float64(np.float32(y))


# LLVM turns a float64 product, quotient or root of two widened float32 numbers, rounded to
# float32, back into the float32 operation (the same bits, and the slow path again). These
# scale an operand by 2**200, which no float32 holds, and the result back: exact in float64.
@numba.njit(inline="always")
def _times(a, b):
    return a * _UP * b * _DOWN


@numba.njit(inline="always")
def _over(a, b):
    return a * _UP / b * _DOWN


@numba.njit(inline="always")
def _root(a):
    return math.sqrt(a * _UP) * _HALF_DOWN


@numba.njit(nogil=True, cache=True, error_model="numpy")
def near_subnormal(m: np.ndarray) -> np.ndarray:
    """The indices of a float32 array's numbers near the subnormal range (nonzero, of
    magnitude below 2**-120): the first moments :func:`adam_float32` keeps off the slow
    path."""
    bits = m.view(np.uint32)
    count = 0
    for i in range(bits.size):  # integers only: no float operation sees a subnormal
        count += np.uint32((bits[i] & 0x7FFFFFFF) - 1) < np.uint32(_NEAR - 1)
    found = np.empty(count + 1, np.int64)
    if count:
        k = 0
        for i in range(bits.size):  # without a branch: each index written, kept if near
            found[k] = i
            k += np.uint32((bits[i] & 0x7FFFFFFF) - 1) < np.uint32(_NEAR - 1)
            if k == count:  # the last one (and m changed by another thread cannot overrun)
                break
    return found[:count]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def adam_float32(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    b1: float,
    b2: float,
    scale: float,
    shift: float,
    near: np.ndarray,
) -> None:
    """:func:`adam_update` on float32 arrays and float32 scalars, the same bits, with the
    elements at the increasing indices ``near`` (from :func:`near_subnormal`) kept off the
    slow path x86 processors take for a product or quotient of a subnormal number: a
    weight whose gradient stays zero has its first moment decay through them."""
    n, k = p.size, near.size
    if g.size != n or m.size != n or v.size != n:
        raise ValueError("adam_float32: p, g, m and v must have one size")
    for j in range(k):  # checked before anything is written
        if near[j] < (near[j - 1] + 1 if j else 0) or near[j] >= n:
            raise IndexError("adam_float32: near must be increasing indices into the arrays")
    saved = np.empty((4, k), np.float32)
    for j in range(k):  # set aside, and zeroed for the pass below: no subnormal in it
        i = near[j]
        saved[0, j], saved[1, j], saved[2, j], saved[3, j] = m[i], g[i], v[i], p[i]
        m[i], g[i], v[i] = 0, 0, 0
    adam_update(p, g, m, v, b1, b2, scale, shift)
    # Then each of them with every operation in float64, rounded to float32 as the
    # reference rounds: +, -, *, / and sqrt of float32 numbers done in float64 and rounded
    # to float32 give the float32 result (53 >= 2 * 24 + 2 bits; where the result is
    # subnormal the grid is coarser and the argument holds). An element with a number
    # that is not finite runs the reference's own operations.
    w1, w2, ws, wt = np.float64(b1), np.float64(b2), np.float64(scale), np.float64(shift)
    for j in range(k):
        i = near[j]
        mo, go, vo, po = saved[0, j], saved[1, j], saved[2, j], saved[3, j]
        mf, gf, vf, pf = np.float64(mo), np.float64(go), np.float64(vo), np.float64(po)
        if abs(mf) < math.inf and abs(gf) < math.inf and abs(vf) < math.inf:
            mi = _round(_round(_times(mf, w1)) + gf)
            gi = _round(_times(gf, gf))
            vi = _round(_round(_times(vf, w2)) + gi)
            d = _round(_round(_times(_round(_root(vi)), ws)) + wt)
            pi = _round(pf - _round(_over(mi, d))) if d != 0 else math.inf
            if abs(mi) < math.inf and abs(vi) < math.inf and abs(pi) < math.inf:
                m[i], g[i], v[i], p[i] = mi, gi, vi, pi
                continue
        m[i], g[i], v[i], p[i] = mo, go, vo, po  # the reference's own operations, here
        j1 = i + 1
        adam_update(p[i:j1], g[i:j1], m[i:j1], v[i:j1], b1, b2, scale, shift)


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
