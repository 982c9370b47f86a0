"""Running ``neurocloud.explain.serving.explain_batch`` for the ``explain`` routes.

The explanation runs in a worker thread, on the private copy of the network that
``explain_batch`` keeps; a client mistake (``ValueError``) is a 400, a request over the
explainer's limits (``LimitExceeded``) a 413, and an installation without
``neurocloud.explain`` answers 501.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from neurocloud.serve.errors import ServeError, describe
from neurocloud.serve.repository import ModelVersion

__all__ = ["explain"]


async def explain(
    model: ModelVersion, rows: np.ndarray, parameters: dict[str, Any], timeout: float
) -> dict[str, np.ndarray]:
    """Named explanation arrays for ``rows`` (see the module docstring for errors)."""
    try:
        from neurocloud.explain.serving import LimitExceeded
    except ImportError as exc:
        raise ServeError(
            501, f"explanations are not available in this installation ({exc})"
        ) from None
    try:
        result = await asyncio.wait_for(asyncio.to_thread(model.explain, rows, parameters), timeout)
    except LimitExceeded as exc:
        raise ServeError(413, f"explanation: {exc}") from None
    except ValueError as exc:
        raise ServeError(400, f"explanation: {exc}") from None
    except asyncio.TimeoutError:
        raise ServeError(
            504,
            f"model {model.name!r}: no explanation within {timeout:g} s "
            "(SAGEMAKER_MODEL_SERVER_TIMEOUT)",
        ) from None
    if not isinstance(result, dict):
        raise TypeError(f"explain_batch must return a dict of arrays; returned {describe(result)}")
    return {str(name): np.asarray(value) for name, value in result.items()}
