"""Micro-batching: concurrent requests to one model share one forward pass.

Requests queue while the model is busy; the next forward pass takes queued requests in
arrival order up to ``max_batch_rows`` rows, after waiting at most ``max_batch_delay_ms``
(counted from the arrival of the oldest queued request) for more to join. The merged output
is split at the same row offsets, so each caller gets exactly its own rows. The forward pass
runs in the batcher's own thread (a dedicated thread fed by a ``SimpleQueue`` hands work
over in about half the time of an executor), except a cheap one: with ``inline_below_us``
set, a pass whose measured time for that many rows is below it runs on the event loop, where
the hand-off to the thread and back would cost more than the pass itself. A request that
finds the queue empty (and no delay set) is then answered within :meth:`MicroBatcher.submit`.
Passes are timed per row-count bucket (1, 2-3, 4-7, ... rows): in the thread in its CPU
time, so waits for the GIL or for a core do not count, and on the loop by the wall clock
(cheaper to read; a wait there makes a pass look costly once, and the thread's next timing
corrects it). A bucket never timed goes to the thread, so a costly pass never blocks the
loop.

>>> import asyncio, numpy as np
>>> batcher = MicroBatcher(lambda X: X * 2, max_batch_rows=8)
>>> async def two_callers():
...     return await asyncio.gather(batcher.submit(np.ones((1, 1))),
...                                 batcher.submit(np.zeros((2, 1))))
>>> [out.ravel().tolist() for out in asyncio.run(two_callers())]
[[2.0], [0.0, 0.0]]
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from neurocloud.nn.validation import check_number, positive_int
from neurocloud.serve.quiet import quiet_context
from neurocloud.serve.switching import share_the_gil

__all__ = ["BatchTimeout", "BatcherClosed", "MicroBatcher"]


class BatcherClosed(RuntimeError):
    """The batcher was closed (its model unloaded) before a request reached it."""


class BatchTimeout(TimeoutError):
    """A request waited longer than its timeout for its rows."""


#: the clock of the passes run on the event loop. The forward thread times its passes in
#: its own CPU time (``time.thread_time``), so that waiting for the GIL never makes a cheap
#: pass look costly. A pass on the loop is cheap by choice, so wall time serves there and
#: costs 0.05 us a reading against thread_time's 0.47 us (a system call on this VM). A
#: pass that the machine preempted, or that waited for the GIL, reads costly once; the
#: thread's next timing of that size brings it back.
_clock = time.perf_counter


class _Request(NamedTuple):
    rows: np.ndarray
    future: asyncio.Future
    arrival: float


class MicroBatcher:
    """Merge concurrent :meth:`submit` calls into batched calls of ``forward``.

    Args:
        forward: maps ``(n, d)`` rows to ``(n, k)`` outputs; called in the batcher's thread.
        max_batch_rows: most rows per forward pass; a larger request runs alone.
        max_batch_delay_ms: longest wait of the oldest request for others to join.
        on_batch: called with ``(rows, requests)`` after each forward pass (metrics).
        timeout_s: a request without its rows this long after :meth:`submit` gets
            :class:`BatchTimeout` (``None``: wait as long as it takes).
        name: the forward thread's name.
        inline_below_us: run a pass on the event loop when its measured time for that many
            rows is below this many microseconds (0: never; ``math.inf``: every pass).

    ``inline_passes`` and ``thread_passes`` count the passes run on the loop and in the thread.
    A batcher serves one event loop: its futures and its inline passes belong to it.
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_rows: int = 1024,
        max_batch_delay_ms: float = 0.0,
        on_batch: Callable[[int, int], None] | None = None,
        timeout_s: float | None = None,
        name: str = "neurocloud-forward",
        inline_below_us: float = 0.0,
    ) -> None:
        max_batch_rows = positive_int(max_batch_rows, "max_batch_rows")
        max_batch_delay_ms = check_number(max_batch_delay_ms, "max_batch_delay_ms", low=0)
        if inline_below_us != math.inf:
            inline_below_us = check_number(inline_below_us, "inline_below_us", low=0)
        self._forward = forward
        self._inline_below = inline_below_us / 1e6
        self._quiet = quiet_context()  # the event loop's inline passes run in it
        self._seconds: dict[int, float] = {}  # row-count bucket -> latest pass time
        self.inline_passes = 0
        self.thread_passes = 0
        self._thread = _ForwardThread(forward, name, self._seconds)
        self.max_batch_rows = max_batch_rows
        self.max_batch_delay = max_batch_delay_ms / 1000.0
        self._on_batch = on_batch
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._busy = False  # a forward pass is running
        self._timer: asyncio.TimerHandle | None = None
        self._idle: list[asyncio.Future] = []
        self._closed = False
        # Requests not yet answered, oldest first: one timer for the oldest deadline
        # replaces a timer per request (deadlines come in arrival order).
        self.timeout_s = timeout_s
        self._unanswered: deque[_Request] = deque()
        self._expiry: asyncio.TimerHandle | None = None

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        """Queue ``rows`` for the next forward pass and return their outputs.

        Raises :class:`BatcherClosed` if the model was unloaded, :class:`BatchTimeout`
        after ``timeout_s`` seconds, and whatever ``forward``
        raised if the pass failed.
        """
        if self._closed:
            raise BatcherClosed("The batcher is closed: the model was unloaded.")
        ready = not self._busy and not self._queue and self.max_batch_delay == 0
        if ready and self._cheap(len(rows)):
            return self._run_inline(rows, asyncio.get_running_loop())
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request = _Request(rows, future, loop.time())
        self._queue.append(request)
        self._queued_rows += len(rows)
        if self.timeout_s is not None:
            self._unanswered.append(request)
            if self._expiry is None:
                self._expiry = loop.call_at(request.arrival + self.timeout_s, self._expire, loop)
        if not self._busy:
            self._schedule(loop)
        return await future

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def _cheap(self, rows: int) -> bool:
        """Whether a pass over ``rows`` rows is measured to take under ``inline_below_us``."""
        if self._inline_below == math.inf:
            return True
        seconds = self._seconds.get(rows.bit_length())
        return seconds is not None and seconds < self._inline_below

    def _run_inline(self, rows: np.ndarray, loop: asyncio.AbstractEventLoop) -> np.ndarray:
        """One pass on the event loop; its outputs, or the error ``forward`` raised.

        The batcher counts as busy until the loop's next turn: requests that arrive in this
        turn (under load, many) queue and share the next pass instead of one pass each.
        """
        self.inline_passes += 1
        self._busy = True
        loop.call_soon(self._finish, loop, [], None, None)
        start = _clock()
        # Overflow is reported per request, as by the thread: no warnings on the loop either.
        outputs = self._quiet.run(self._forward, rows)
        self._seconds[len(rows).bit_length()] = _clock() - start
        if len(outputs) != len(rows):
            raise RuntimeError(f"the model returned {len(outputs)} rows for {len(rows)} input rows")
        if self._on_batch is not None:
            self._on_batch(len(rows), 1)
        return outputs

    async def close(self) -> None:
        """Refuse new requests, wait until every queued one has its answer, stop the thread."""
        self._closed = True
        if self._busy or self._queue:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            await waiter
        # Every request is answered: a pending timeout timer would only keep this batcher
        # (and its model) alive until it fires.
        for handle in (self._expiry, self._timer):
            if handle is not None:
                handle.cancel()
        self._expiry = self._timer = None
        self._thread.stop()

    # --- scheduling: runs on the event loop, driven by submits and finished passes ---------
    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """With no pass running: start one now, or when the oldest request's delay ends."""
        if not self._queue:
            for waiter in self._idle:
                if not waiter.done():
                    waiter.set_result(None)
            self._idle.clear()
            return
        if self.max_batch_delay > 0 and self._queued_rows < self.max_batch_rows:
            due = self._queue[0].arrival + self.max_batch_delay
            if due > loop.time():
                if self._timer is None:
                    self._timer = loop.call_at(due, self._on_timer, loop)
                return
        self._dispatch(loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the requests past their deadline; wait for the next oldest one."""
        self._expiry = None
        assert self.timeout_s is not None
        now = loop.time()
        while self._unanswered:
            request = self._unanswered[0]
            if not request.future.done():
                if request.arrival + self.timeout_s > now:
                    self._expiry = loop.call_at(
                        request.arrival + self.timeout_s, self._expire, loop
                    )
                    return
                request.future.set_exception(BatchTimeout(f"no result within {self.timeout_s:g} s"))
            self._unanswered.popleft()

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if not self._busy:
            self._dispatch(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self._take_batch()
        if not batch:
            self._schedule(loop)
            return
        inputs = batch[0].rows if len(batch) == 1 else np.concatenate([r.rows for r in batch])
        self._busy = True
        if self._cheap(len(inputs)):
            try:
                start = _clock()
                result, error = self._quiet.run(self._forward, inputs), None
                self._seconds[len(inputs).bit_length()] = _clock() - start
            except Exception as exc:
                result, error = None, exc
            self.inline_passes += 1
            loop.call_soon(self._finish, loop, batch, result, error)  # as from the thread
            return
        self.thread_passes += 1
        self._thread.run(loop, inputs, self._finish, batch)

    def _take_batch(self) -> list[_Request]:
        batch: list[_Request] = []
        rows = 0
        while self._queue:
            request = self._queue[0]
            size = len(request.rows)
            if batch and rows + size > self.max_batch_rows:
                break
            self._queue.popleft()
            self._queued_rows -= size
            if request.future.done():  # the caller timed out or went away
                continue
            batch.append(request)
            rows += size
        return batch

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Request],
        outputs: Any,
        error: BaseException | None,
    ) -> None:
        self._busy = False
        if not batch:  # the turn of an inline pass from submit has ended
            self._schedule(loop)
            return
        rows = sum(len(r.rows) for r in batch)
        if error is None and len(outputs) != rows:
            error = RuntimeError(f"the model returned {len(outputs)} rows for {rows} input rows")
        if error is not None:
            _fail(batch, error)
        else:
            start = 0
            for request in batch:
                stop = start + len(request.rows)
                if not request.future.done():
                    request.future.set_result(outputs[start:stop])
                start = stop
            if self._on_batch is not None:
                self._on_batch(rows, len(batch))
        unanswered = self._unanswered
        while unanswered and unanswered[0].future.done():
            unanswered.popleft()
        self._schedule(loop)


class _ForwardThread:
    """A daemon thread that runs ``forward`` on jobs from a queue, one at a time."""

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        name: str,
        seconds: dict[int, float],
    ) -> None:
        self._forward = forward
        self._seconds = seconds  # row-count bucket -> the latest pass's time, for the loop
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def run(
        self,
        loop: asyncio.AbstractEventLoop,
        rows: np.ndarray,
        done: Callable[..., None],
        batch: list[_Request],
    ) -> None:
        """Run ``forward(rows)``, then ``done(loop, batch, outputs, error)`` on ``loop``."""
        if not self._started:
            with self._lock:
                if not self._started:
                    share_the_gil()
                    self._thread.start()
                    self._started = True
        self._jobs.put((loop, rows, done, batch))

    def stop(self) -> None:
        if self._started:
            self._jobs.put(None)

    def _work(self) -> None:
        # Overflow to inf or NaN is reported per request by the protocols (an error, or the
        # value itself where the encoding can carry it), not as warnings in the server log.
        with np.errstate(all="ignore"):
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                loop, rows, done, batch = job
                try:
                    start = time.thread_time()
                    result, error = self._forward(rows), None
                    # One dict store (atomic under the GIL); the loop reads the latest value.
                    self._seconds[len(rows).bit_length()] = time.thread_time() - start
                except Exception as exc:
                    result, error = None, exc
                # RuntimeError: the event loop has closed, so nobody is waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(done, loop, batch, result, error)


def _fail(requests: list[_Request], error: BaseException) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(error)
