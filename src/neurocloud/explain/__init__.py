"""Explanations: why did the network give this output?

One entry: ``nc.explain(model, X, method, **settings)`` (the package itself is callable,
see :func:`~neurocloud.explain.methods.explain`), or each method by its own function.
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
>>> np.array_equal(nc.explain(m, np.ones((2, 4)), "ig").attributions, e.attributions)
True
>>> nc.explain.available()
['expected_gradients', 'integrated_gradients', 'lime', 'saliency', 'shap', 'smoothgrad']
"""

import sys
import types
from typing import Any

from neurocloud.explain.agnostic import lime_explanation, shap_values
from neurocloud.explain.gradients import expected_gradients, saliency, smoothgrad
from neurocloud.explain.integrated import DEFAULT_STEPS, integrated_gradients
from neurocloud.explain.methods import DEFAULT_METHOD, Method, available, explain, register
from neurocloud.explain.result import Explanation

__all__ = [
    "DEFAULT_STEPS",
    "Explanation",
    "Method",
    "available",
    "expected_gradients",
    "explain",
    "integrated_gradients",
    "lime_explanation",
    "register",
    "saliency",
    "shap_values",
    "smoothgrad",
]


class _CallableModule(types.ModuleType):
    """This package, callable: ``nc.explain(model, X, method, **settings)`` is
    :func:`explain`, and ``nc.explain.saliency`` and the rest stay its attributes."""

    def __call__(
        self, model: Any, X: Any, method: str = DEFAULT_METHOD, **settings: Any
    ) -> Explanation:
        return explain(model, X, method, **settings)


sys.modules[__name__].__class__ = _CallableModule
