"""Explanations: why did the network give this output?

Gradient methods use the engine's own backpropagation (exact input gradients, no torch):
:func:`saliency`, :func:`integrated_gradients`, :func:`smoothgrad` and
:func:`expected_gradients`. Model-agnostic methods go through the ``shap`` and ``lime``
packages (``pip install neurocloud[explain]``), imported only when called:
:func:`shap_values` and :func:`lime_explanation`. Every method returns an
:class:`Explanation` (attributions, feature names, base value, prediction, target,
method and settings) with ``.plot()``.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(8, activation="tanh"), nc.layers.Dense(3, "softmax")],
...                   input_dim=4, seed=0, dtype="float64")
>>> e = nc.explain.integrated_gradients(m, np.ones((2, 4)))
>>> e.attributions.shape, bool(np.all(np.abs(e.completeness_error) < 1e-9))
((2, 4), True)
"""

from neurocloud.explain.agnostic import lime_explanation, shap_values
from neurocloud.explain.gradients import expected_gradients, saliency, smoothgrad
from neurocloud.explain.integrated import DEFAULT_STEPS, integrated_gradients
from neurocloud.explain.result import Explanation

__all__ = [
    "DEFAULT_STEPS",
    "Explanation",
    "expected_gradients",
    "integrated_gradients",
    "lime_explanation",
    "saliency",
    "shap_values",
    "smoothgrad",
]
