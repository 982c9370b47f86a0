"""Where the training step's large arrays start in memory: staggered within a page.

An update reads and writes the flat parameters, the flat gradients and each optimizer
state slot element by element, all at the same index. A large NumPy array fresh from
``mmap`` starts 16 bytes into a page (glibc), so four of them keep the loop hitting the
processor's 4 KiB aliasing between loads and stores, with every vector load split over
two cache lines; where ``malloc`` reuses freed memory they land anywhere, and the cost
changes from one process to the next. Placing each kind of array at its own 1 KiB lane of
the page (a cache-line multiple) removes both. On a 2-core AMD EPYC (Zen 4, AVX-512),
the compiled Adam step on 235,146 float32 weights took 130 us with the four arrays at one
offset and 73 us in lanes (``benchmarks/update_alignment.py``); where ``np.zeros``
happens to put them, anywhere between the two. Placement changes no result: the same
operations on the same values.

>>> import numpy as np
>>> a = zeros(10_000, np.float32, lane=2)
>>> a.ctypes.data % PAGE == 2 * LANE, a.dtype.name, float(a.sum())
(True, 'float32', 0.0)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["LANE", "LANES", "MIN_BYTES", "PAGE", "placed", "zeros", "zeros_like"]

#: the span within which starts are staggered
PAGE = 4096
#: the distance between two lanes (a multiple of every cache line's size)
LANE = 1024
#: the lanes of a page (the model's parameters take lane 0, its gradients lane 1, an
#: optimizer's state slots lanes 2 and 3, its scratch lane 1.5)
LANES = PAGE // LANE
#: arrays smaller than this are left where NumPy puts them (a page would cost more)
MIN_BYTES = 1 << 14


def zeros(shape: int | Sequence[int], dtype: DTypeLike, lane: float = 0) -> np.ndarray:
    """A new C-contiguous array of zeros that starts ``lane * LANE`` bytes into a page
    (``0 <= lane < LANES``; fractional lanes are allowed where they keep the dtype
    aligned); below :data:`MIN_BYTES`, or for dtypes a byte block cannot hold (objects,
    subarrays), plain ``np.zeros``. The array is a view of a slightly larger block.

    >>> zeros((64, 64), "float64", lane=1).ctypes.data % PAGE
    1024
    """
    dtype = np.dtype(dtype)
    dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    shape = tuple(operator.index(n) for n in dims)
    if any(n < 0 for n in shape):
        raise ValueError(f"shape must have no negative dimension; received {shape}.")
    if not 0 <= lane < LANES:
        raise ValueError(f"lane must be in [0, {LANES}); received {lane!r}.")
    offset = int(lane * LANE)
    if offset % dtype.alignment:
        raise ValueError(
            f"lane {lane!r} starts {offset} bytes into a page, not a multiple of "
            f"{dtype.name}'s alignment ({dtype.alignment} bytes)."
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or dtype.hasobject or dtype.subdtype is not None:
        return np.zeros(shape, dtype)
    block = np.zeros(nbytes + PAGE, np.uint8)
    start = (offset - block.ctypes.data) % PAGE
    return block[start : start + nbytes].view(dtype).reshape(shape)


def zeros_like(array: np.ndarray, lane: float = 0) -> np.ndarray:
    """:func:`zeros` of ``array``'s shape and dtype.

    >>> zeros_like(np.ones((100, 50), np.float32), lane=3).ctypes.data % PAGE
    3072
    """
    return zeros(array.shape, array.dtype, lane)


def placed(array: np.ndarray, lane: float = 0) -> np.ndarray:
    """A C-contiguous copy of ``array`` in ``lane`` (:func:`zeros_like`'s placement).

    >>> b = placed(np.ones((100, 50), np.float32), lane=2)
    >>> b.ctypes.data % PAGE, float(b.sum())
    (2048, 5000.0)
    """
    out = zeros_like(array, lane)
    out[...] = array
    return out
