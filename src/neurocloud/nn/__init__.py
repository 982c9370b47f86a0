"""The engine: layers, activations, losses, optimizers, training. NumPy only, no I/O.

Nothing here imports from the rest of ``neurocloud``.
"""

from neurocloud.nn import activations, callbacks, initializers, layers, losses, optim
from neurocloud.nn.gradcheck import gradcheck
from neurocloud.nn.sequential import Sequential

__all__ = [
    "Sequential",
    "activations",
    "callbacks",
    "gradcheck",
    "initializers",
    "layers",
    "losses",
    "optim",
]
