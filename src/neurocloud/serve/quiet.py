"""NumPy calls with floating-point warnings off, for a request's hot path.

An overflow in a request (a value too large for float32, a forward pass that reaches inf)
is reported to that client, never as a warning in the server's log; ``np.errstate`` says so
but costs about 2 us a use, as much as the rest of a small request's decoding. NumPy keeps
its error state in a context variable, so a ``contextvars.Context`` in which it is set to
ignore, made once per thread, gives the same effect for the price of ``Context.run``.
The state seen inside is that of the context's thread when it was made, with every
floating-point error ignored; other context variables the caller set are not seen there.

>>> import numpy as np
>>> quietly(np.multiply, np.float32(3e38), np.float32(10))
np.float32(inf)
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np

__all__ = ["quiet_context", "quietly"]

T = TypeVar("T")

_local = threading.local()


def quiet_context() -> contextvars.Context:
    """A new context, copied from the current one, with NumPy's floating-point errors
    ignored. Only one thread at a time may run in a given context."""
    context = contextvars.copy_context()
    context.run(np.seterr, all="ignore")
    return context


def quietly(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` with NumPy's floating-point errors ignored (this thread's own
    quiet context; ``function`` must not call ``quietly`` itself)."""
    try:
        context = _local.context
    except AttributeError:
        context = _local.context = quiet_context()
    return context.run(function, *args)
