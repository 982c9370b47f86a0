"""NumPy calls with floating-point warnings off, for a request's hot path.

An overflow in a request (a value too large for float32, a forward pass that reaches inf)
is reported to that client, never as a warning in the server's log; ``np.errstate`` says so
but costs about 2 us a use, as much as the rest of a small request's decoding. NumPy 2
keeps its error state in a context variable, so a ``contextvars.Context`` in which it is
set to ignore, made once per thread, gives the same effect for the price of
``Context.run``. The context is a fresh, empty one: inside, NumPy ignores every
floating-point error and no other context variable of the caller is seen. (On NumPy 1.x,
whose error state belongs to the thread, each call takes ``np.errstate`` instead.)

>>> import numpy as np
>>> quietly(np.multiply, np.float32(3e38), np.float32(10))
np.float32(inf)
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

__all__ = ["QuietContext", "quiet_context", "quietly"]

T = TypeVar("T")

#: NumPy 2 keeps the floating-point error state in a context variable
_CONTEXT_STATE = np.lib.NumpyVersion(np.__version__) >= "2.0.0"

_local = threading.local()


class QuietContext(Protocol):
    def run(self, function: Callable[..., T], /, *args: Any) -> T: ...


class _Errstate:
    """NumPy 1.x: ``np.errstate`` around each call."""

    @staticmethod
    def run(function: Callable[..., T], /, *args: Any) -> T:
        with np.errstate(all="ignore"):
            return function(*args)


def quiet_context() -> QuietContext:
    """Something whose ``run(function, *args)`` calls ``function`` with NumPy's
    floating-point errors ignored. Only one thread at a time may run in a given one.

    >>> import numpy as np
    >>> float(quiet_context().run(np.divide, 1.0, 0.0))
    inf
    """
    if not _CONTEXT_STATE:
        return _Errstate()
    context = contextvars.Context()
    context.run(np.seterr, all="ignore")
    return context


def quietly(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` with NumPy's floating-point errors ignored (this thread's own
    quiet context; ``function`` must not call ``quietly`` itself)."""
    try:
        context = _local.context
    except AttributeError:
        context = _local.context = quiet_context()
    return context.run(function, *args)
