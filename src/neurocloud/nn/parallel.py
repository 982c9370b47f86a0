"""A few threads over disjoint blocks of an array: the engine's element-wise passes on more
than one core, with the same bits as on one.

NumPy releases the GIL inside its loops, so NumPy operations on disjoint blocks run on
several cores at once. Each element still goes through the same operations in the same
order, so the result is bitwise the one a single thread computes. The number of threads is
NumPy's BLAS thread count (which follows ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` and
threadpoolctl limits set before the first call), at most the cores this process may run
on: the pool never oversubscribes what the BLAS is allowed.

>>> import numpy as np
>>> a = np.arange(8.0)
>>> run_split(lambda part: np.multiply(part, 2, out=part), [a[:4], a[4:]])
>>> a
array([ 0.,  2.,  4.,  6.,  8., 10., 12., 14.])
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_split", "set_threads", "threads"]

T = TypeVar("T")

_lock = threading.Lock()
_threads: int | None = None
_pool: ThreadPoolExecutor | None = None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return min(counts) if counts else None


def threads() -> int:
    """Threads the engine's passes may use (worked out once, on first use).

    >>> threads() >= 1
    True
    """
    global _threads
    if _threads is None:
        with _lock:
            if _threads is None:
                _threads = max(1, min(_cores(), _blas_threads() or _cores()))
    return _threads


def set_threads(count: int | None) -> None:
    """Use ``count`` threads from now on (``None``: work it out again on next use).

    >>> set_threads(1); threads()
    1
    >>> set_threads(None)
    """
    global _threads
    with _lock:
        _threads = None if count is None else max(1, int(count))


def _executor(workers: int) -> ThreadPoolExecutor:
    # One pool, only ever grown, never shut down while in use: a caller holding it (another
    # thread's fit) keeps submitting to it; a larger one replaces it for later callers and
    # the old one's threads end once their work is done.
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="neurocloud-pass")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child has none of the parent's threads: a new pool is made on next use.
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def run_split(work: Callable[[T], Any], parts: Sequence[T]) -> None:
    """``work(part)`` for every part, the parts spread over :func:`threads` threads in
    contiguous groups (the calling thread takes the first). Parts must not overlap."""
    count = min(threads(), len(parts))
    if count <= 1:
        for part in parts:
            work(part)
        return
    bounds = [len(parts) * i // count for i in range(count + 1)]

    def group(index: int) -> None:
        for part in parts[bounds[index] : bounds[index + 1]]:
            work(part)

    pool = _executor(count - 1)
    futures = [pool.submit(group, i) for i in range(1, count)]
    try:
        group(0)
    finally:
        for future in futures:
            future.result()
