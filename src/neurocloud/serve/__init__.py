"""Serving neurocloud models over the SageMaker container contract and the Open Inference
Protocol (KServe V2), and calling them with :class:`Predictor`.

>>> from neurocloud.serve import Predictor
>>> Predictor("http://127.0.0.1:8080").content_type
'application/json'

``create_app(path)`` builds the ASGI app; ``serve(path, host, port, workers)`` runs it.
The client imports only the standard library; the server parts load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from neurocloud.serve.client import Predictor, PredictorError

__all__ = [
    "MicroBatcher",
    "ModelRepository",
    "Predictor",
    "PredictorError",
    "ServeConfig",
    "create_app",
    "serve",
]

_LAZY = {
    "create_app": "neurocloud.serve.app",
    "serve": "neurocloud.serve.server",
    "ServeConfig": "neurocloud.serve.config",
    "MicroBatcher": "neurocloud.serve.batcher",
    "ModelRepository": "neurocloud.serve.repository",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neurocloud.serve' has no attribute {name!r}")
