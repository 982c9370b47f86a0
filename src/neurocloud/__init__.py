"""neurocloud: neural networks on NumPy, from ``fit`` to a cloud inference endpoint.

>>> import numpy as np, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(4, activation="relu"), nc.layers.Dense(1)],
...                       input_dim=2, seed=0)
>>> model.predict(np.zeros((3, 2))).shape
(3, 1)
"""

from importlib import import_module
from typing import Any

from neurocloud import callbacks
from neurocloud._version import __version__
from neurocloud.artifact import load, register_kind, save
from neurocloud.nn import activations, gradcheck, initializers, layers, losses, optim
from neurocloud.nn.sequential import Sequential

__all__ = [
    "Sequential",
    "__version__",
    "activations",
    "callbacks",
    "gradcheck",
    "import_onnx",
    "initializers",
    "layers",
    "load",
    "losses",
    "optim",
    "save",
]

# Heavier parts load on first use, so `import neurocloud` stays light for serving.
_LAZY = {
    "datasets": "neurocloud.datasets",
    "sklearn": "neurocloud.sklearn",
    "serve": "neurocloud.serve",
    "export": "neurocloud.export",
    "explain": "neurocloud.explain",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'neurocloud' has no attribute {name!r}")


def _load_estimator(artifact: Any) -> Any:
    # The scikit-learn front end registers its loader when imported; import it on first use.
    from neurocloud.sklearn import from_artifact

    return from_artifact(artifact)


register_kind("estimator", _load_estimator)


def import_onnx(path: Any, output: str | None = None, name: str | None = None) -> Sequential:
    """Load a dense ONNX network as a ``Sequential`` (onnx is imported only now); see
    :func:`neurocloud.export.import_onnx`."""
    from neurocloud.export.onnx_import import import_onnx as read

    return read(path, output=output, name=name)
