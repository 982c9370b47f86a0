"""The interpreter's switch interval in a server: shortened once work runs beside the loop.

A thread that holds the GIL keeps it for the switch interval (5 ms by default) before a
waiting thread gets it. Once the server hands work to a thread (a costly forward pass, a
large body's decoding, an explanation, a model reload), the event loop and that thread
take turns within :data:`THREAD_SWITCH_INTERVAL_S` instead, so ``/ping`` and the loop's
requests never wait 5 ms behind it. A server that answers everything on the loop keeps the
default: no thread waits for the GIL there, and the shorter interval cost about 4% of its
requests a second at 1 and 8 connections (``serve_load.py``'s article model, paired runs).

>>> import sys
>>> saved = sys.getswitchinterval()
>>> share_the_gil(); sys.getswitchinterval() <= THREAD_SWITCH_INTERVAL_S
True
>>> sys.setswitchinterval(saved)
"""

from __future__ import annotations

import sys

__all__ = ["THREAD_SWITCH_INTERVAL_S", "share_the_gil"]

#: the switch interval once a server's work runs in threads beside the event loop
THREAD_SWITCH_INTERVAL_S = 0.0005


def share_the_gil() -> None:
    """Shorten the switch interval to :data:`THREAD_SWITCH_INTERVAL_S`; a shorter one (set
    by the user) is left as it is. Called before work goes to a thread."""
    if sys.getswitchinterval() > THREAD_SWITCH_INTERVAL_S:
        sys.setswitchinterval(THREAD_SWITCH_INTERVAL_S)
