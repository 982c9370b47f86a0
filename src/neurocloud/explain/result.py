"""``Explanation``: the one result type of every explanation method.

>>> import numpy as np
>>> e = Explanation(attributions=np.array([[0.5, -2.0]]), inputs=np.array([[1.0, 2.0]]),
...                 feature_names=["a", "b"], prediction=np.array([0.0]),
...                 target=np.array([0]), method="saliency", settings={})
>>> e.top_features(0, k=1)
[('b', 2.0, -2.0)]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Explanation"]


@dataclass
class Explanation:
    """Attributions of one output per row to each input feature.

    Attributes:
        attributions: ``(n, features)``, how much each feature moved the output.
        inputs: ``(n, features)``, the explained rows.
        feature_names: one name per feature.
        prediction: ``(n,)``, the explained output ``f_target(x)`` of each row.
        target: ``(n,)``, the index of the explained output of each row.
        method: the method's name, e.g. ``"integrated_gradients"``.
        settings: the method's settings (JSON-able), e.g. ``{"steps": 64}``.
        base_value: ``(n,)``, the reference output the attributions start from, for the
            additive methods (``f(baseline)``, ``E[f(background)]``); ``None`` otherwise.
        standard_error: ``(n, features)``, the Monte Carlo standard error of sampled
            attributions (expected gradients); ``None`` for deterministic methods.
        output_names: the model's output names (a classifier's class labels), when it
            stores them; :meth:`target_name` names each row's explained output with them.
    """

    attributions: np.ndarray
    inputs: np.ndarray
    feature_names: list[str]
    prediction: np.ndarray
    target: np.ndarray
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    base_value: np.ndarray | None = None
    standard_error: np.ndarray | None = None
    output_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.attributions)

    @property
    def completeness_error(self) -> np.ndarray | None:
        """``sum(attributions) - (prediction - base_value)`` per row (``None`` without a
        base value): how far the attributions are from adding up to the output's change."""
        if self.base_value is None:
            return None
        return self.attributions.sum(axis=1) - (self.prediction - self.base_value)

    def target_name(self, row: int = 0) -> str:
        """The explained output of ``row``: its stored name (``'setosa'``), else its index."""
        index = int(self.target[row])
        names = self.output_names
        return str(names[index]) if names is not None and index < len(names) else str(index)

    def top_features(self, row: int = 0, k: int = 10) -> list[tuple[str, float, float]]:
        """The ``k`` largest attributions of ``row`` by magnitude: ``(name, value, attr)``."""
        if not -len(self) <= row < len(self):
            raise IndexError(f"row {row} is out of range for an explanation of {len(self)} rows.")
        attributions = self.attributions[row]
        order = np.argsort(-np.abs(attributions), kind="stable")[:k]
        return [
            (self.feature_names[i], float(self.inputs[row, i]), float(attributions[i]))
            for i in order
        ]

    def plot(
        self,
        path: str | os.PathLike[str] | None = None,
        rows: Any = None,
        image_shape: tuple[int, int] | None = None,
        max_features: int = 10,
    ) -> Any:
        """Draw the attributions with matplotlib; save to ``path`` or show a window.

        Images (``image_shape``, or 64 features read as 8x8 digits) get a heat map over
        the image, other data a bar chart of the ``max_features`` largest attributions.
        ``rows`` picks rows (default: the first few). Returns the matplotlib figure.
        """
        from neurocloud.explain.plot import plot_explanation

        return plot_explanation(self, path, rows, image_shape, max_features)
