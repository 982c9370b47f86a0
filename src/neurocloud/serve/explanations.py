"""Running an explain request (:mod:`neurocloud.serve.explanation_requests`) for the
``explain`` routes.

The explanation runs in a worker thread on the served network itself (inference and
explanations record nothing on it, so they never race predictions); a client mistake
(``ValueError``) is a 400, a request over the explanation limits (``LimitExceeded``) a
413, and an installation without ``neurocloud.explain`` answers 501.

Explanations of one model run one at a time (each already uses every core through BLAS):
the others wait their turn on the event loop, where a timeout or a shutdown answers them at
once, instead of running side by side and each reaching its next deadline check later.

The request's timeout is also the explanation's deadline: past it the client gets 504 and
the computation gives up at its next chunk of rows, so it burns no more CPU and no longer
holds up later explanations of that model. The server's ``stopping`` event (one per app,
:attr:`ServerState.stopping`) makes every explanation in flight give up the same way (503)
when that server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import numpy as np

from neurocloud.serve.errors import ServeError, bad_request, describe_value
from neurocloud.serve.repository import ModelVersion
from neurocloud.serve.switching import share_the_gil

__all__ = ["MAX_PARAMETER_DEPTH", "STOPPING", "explain"]

logger = logging.getLogger("neurocloud.serve")

#: the stop event of explanations given none (each app passes its own)
STOPPING = threading.Event()
#: deepest nesting of lists/objects in an explanation parameter (a row of a baseline or
#: background is two levels deep)
MAX_PARAMETER_DEPTH = 32


def _check_depth(parameters: dict[str, Any]) -> None:
    for name, value in parameters.items():
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, (list, dict)):
                if depth > MAX_PARAMETER_DEPTH:
                    raise bad_request(
                        f"parameters.{name}",
                        f"values nested at most {MAX_PARAMETER_DEPTH} levels deep",
                        f"more than {MAX_PARAMETER_DEPTH} levels",
                    )
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)


async def explain(
    model: ModelVersion,
    rows: np.ndarray,
    parameters: dict[str, Any],
    timeout: float,
    stopping: threading.Event | None = None,
) -> dict[str, np.ndarray]:
    """Named explanation arrays for ``rows`` (see the module docstring for errors);
    ``stopping``, once set, stops the explanation with 503 (the server shuts down)."""
    stopping = STOPPING if stopping is None else stopping
    try:
        from neurocloud.explain.core import DeadlineExceeded, deadline
        from neurocloud.serve.explanation_requests import LimitExceeded
    except ImportError as exc:
        raise ServeError(
            501, f"explanations are not available in this installation ({exc})"
        ) from None
    _check_depth(parameters)
    at = time.monotonic() + timeout

    def run() -> dict[str, np.ndarray]:
        with deadline(at, stopping):
            try:
                return model.explain(rows, parameters)
            except DeadlineExceeded as exc:
                logger.info("explanation of model %s stopped: %s", model.name, exc)
                raise

    async def run_in_turn() -> dict[str, np.ndarray]:
        slot = model.explain_slot
        await slot.acquire()
        try:
            if stopping.is_set():
                raise DeadlineExceeded("the server is shutting down")
            share_the_gil()
            future = asyncio.ensure_future(asyncio.to_thread(run))
        except BaseException:
            slot.release()
            raise
        # The slot is held until the computation itself ends, not only until this request
        # gives up on it: an explanation past its deadline stops at its next chunk of rows.
        future.add_done_callback(
            lambda done: (slot.release(), done.cancelled() or done.exception())
        )
        return await asyncio.shield(future)

    try:
        result = await asyncio.wait_for(run_in_turn(), timeout)
    except LimitExceeded as exc:
        raise ServeError(413, f"explanation: {exc}") from None
    except ValueError as exc:
        raise ServeError(400, f"explanation: {exc}") from None
    except (asyncio.TimeoutError, DeadlineExceeded):
        if stopping.is_set():
            raise ServeError(
                503, f"model {model.name!r}: the server is shutting down; retry elsewhere"
            ) from None
        raise ServeError(
            504,
            f"model {model.name!r}: no explanation within {timeout:g} s "
            "(SAGEMAKER_MODEL_SERVER_TIMEOUT)",
        ) from None
    if not isinstance(result, dict):
        raise TypeError(
            f"explain_batch must return a dict of arrays; returned {describe_value(result)}"
        )
    return {str(name): np.asarray(value) for name, value in result.items()}
