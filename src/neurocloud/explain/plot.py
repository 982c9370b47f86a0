"""Drawing explanations with matplotlib: heat maps over images, bar charts for tables.

Saving to a file draws on a bare ``Figure`` (rendered by Agg), so it neither needs a
display nor changes pyplot's backend; only showing a window goes through pyplot.

>>> import numpy as np, tempfile
>>> from neurocloud.explain.result import Explanation
>>> e = Explanation(np.array([[1.0, -0.5]]), np.array([[0.2, 0.4]]), ["a", "b"],
...                 np.array([0.7]), np.array([0]), "saliency")
>>> fig = plot_explanation(e, tempfile.mkdtemp() + "/bars.png")
>>> len(fig.axes)
1
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = ["plot_explanation"]

MAX_DEFAULT_ROWS = 6
_DIGIT_FEATURES = 64


def _image_shape(n_features: int, image_shape: Any) -> tuple[int, int] | None:
    if image_shape is None:
        return (8, 8) if n_features == _DIGIT_FEATURES else None
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 2 or shape[0] * shape[1] != n_features:
        raise ValueError(
            f"Expected image_shape (height, width) with height * width = {n_features} "
            f"features. Received: image_shape={image_shape!r}"
        )
    return shape  # type: ignore[return-value]


def _title(explanation: Any, row: int) -> str:
    title = f"row {row}: output {explanation.target_name(row)} = {explanation.prediction[row]:.4g}"
    if explanation.base_value is not None:
        title += f"\nbase {explanation.base_value[row]:.4g}"
    return title


def _draw_image(ax: Any, explanation: Any, row: int, shape: tuple[int, int]) -> Any:
    """The attributions as a heat map with the image's strokes outlined on top."""
    attributions = explanation.attributions[row].reshape(shape)
    image = explanation.inputs[row].reshape(shape)
    limit = float(np.max(np.abs(attributions))) or 1.0
    heat = ax.imshow(attributions, cmap="RdBu_r", vmin=-limit, vmax=limit)
    low, high = float(image.min()), float(image.max())
    if high > low:
        # outline the stroke pixels: contouring the image blown up into 8x8 blocks puts
        # the line on pixel edges
        fine = np.kron(image, np.ones((8, 8)))
        ys = (np.arange(fine.shape[0]) + 0.5) / 8 - 0.5
        xs = (np.arange(fine.shape[1]) + 0.5) / 8 - 0.5
        ax.contour(xs, ys, fine, levels=[(low + high) / 2], colors="black", linewidths=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(_title(explanation, row), fontsize=9)
    return heat


def _draw_bars(ax: Any, explanation: Any, row: int, max_features: int) -> None:
    top = explanation.top_features(row, max_features)[::-1]
    values = [attribution for _, _, attribution in top]
    labels = [f"{name} = {value:.3g}" for name, value, _ in top]
    colors = ["tab:red" if v > 0 else "tab:blue" for v in values]
    ax.barh(range(len(top)), values, color=colors)
    ax.set_yticks(range(len(top)), labels, fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"attribution ({explanation.method})")
    ax.set_title(_title(explanation, row), fontsize=9)


def plot_explanation(
    explanation: Any,
    path: str | os.PathLike[str] | None = None,
    rows: Any = None,
    image_shape: Any = None,
    max_features: int = 10,
) -> Any:
    """Draw ``explanation`` (see :meth:`Explanation.plot`); return the figure."""
    selected = (
        list(range(min(len(explanation), MAX_DEFAULT_ROWS)))
        if rows is None
        else [int(r) for r in np.atleast_1d(rows)]
    )
    for row in selected:
        if not -len(explanation) <= row < len(explanation):
            raise IndexError(f"row {row} is out of range for {len(explanation)} explained rows.")
    shape = _image_shape(explanation.attributions.shape[1], image_shape)
    columns = min(len(selected), 3 if shape else 2)
    lines = math.ceil(len(selected) / columns)
    size = (
        (3.2 * columns, 3.4 * lines)
        if shape
        else (5.5 * columns, 0.45 * max_features * lines + 1.2 * lines)
    )
    from neurocloud.extras import require

    require("matplotlib")  # without it: one line naming neurocloud[plot]
    if path is None:
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=size)
    else:
        from matplotlib.figure import Figure

        figure = Figure(figsize=size)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, row in zip(axes, selected):
        if shape:
            heat = _draw_image(ax, explanation, row, shape)
            figure.colorbar(heat, ax=ax, fraction=0.046, pad=0.04)
        else:
            _draw_bars(ax, explanation, row, max_features)
    for ax in axes[len(selected) :]:
        ax.set_axis_off()
    figure.suptitle(f"{explanation.method} attributions (red raises the output)", fontsize=10)
    figure.tight_layout()
    if path is None:
        plt.show()
    else:
        figure.savefig(path, dpi=110)
    return figure
