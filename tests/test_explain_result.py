"""The Explanation result: its table helpers and its plots (bar charts and heat maps)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import neurocloud as nc
from neurocloud.explain import Explanation, integrated_gradients, saliency

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _explanation(n_features: int, rows: int = 2, base: bool = True) -> Explanation:
    rng = np.random.default_rng(n_features)
    return Explanation(
        attributions=rng.normal(size=(rows, n_features)),
        inputs=rng.uniform(0, 16, size=(rows, n_features)),
        feature_names=[f"f{i}" for i in range(n_features)],
        prediction=rng.uniform(size=rows),
        target=np.arange(rows),
        method="integrated_gradients",
        settings={"steps": 64},
        base_value=rng.uniform(size=rows) if base else None,
    )


def test_top_features_orders_by_magnitude_and_completeness_needs_a_base_value():
    e = _explanation(5)
    top = e.top_features(1, k=3)
    assert [abs(a) for _, _, a in top] == sorted(np.abs(e.attributions[1]))[::-1][:3]
    name, value, attribution = top[0]
    j = e.feature_names.index(name)
    assert value == e.inputs[1, j] and attribution == e.attributions[1, j]
    expected = e.attributions.sum(axis=1) - (e.prediction - e.base_value)
    assert np.array_equal(e.completeness_error, expected)
    assert _explanation(5, base=False).completeness_error is None
    with pytest.raises(IndexError, match="row 2 is out of range"):
        e.top_features(2)


def test_a_tabular_explanation_plots_bars_to_a_png(tmp_path):
    e = _explanation(13, rows=3)
    figure = e.plot(tmp_path / "bars.png", max_features=5)
    assert (tmp_path / "bars.png").read_bytes()[:8] == PNG_MAGIC
    drawn = [ax for ax in figure.axes if ax.patches]
    assert len(drawn) == 3 and all(len(ax.patches) == 5 for ax in drawn)
    labels = [t.get_text() for t in drawn[0].get_yticklabels()]
    top = e.top_features(0, 5)
    assert labels[-1].startswith(top[0][0] + " =")  # largest bar on top


def test_a_digit_explanation_plots_a_heat_map_over_the_image(tmp_path):
    e = _explanation(64, rows=4)
    figure = e.plot(tmp_path / "digits.png", rows=[0, 3])
    assert (tmp_path / "digits.png").read_bytes()[:8] == PNG_MAGIC
    images = [ax for ax in figure.axes if ax.images]
    assert len(images) == 2
    heat = images[1].images[0].get_array()
    assert heat.shape == (8, 8) and np.allclose(heat, e.attributions[3].reshape(8, 8))
    assert images[1].collections  # the digit's outline
    with pytest.raises(ValueError, match="image_shape"):
        e.plot(tmp_path / "bad.png", image_shape=(4, 4))
    other = _explanation(16, rows=1).plot(tmp_path / "square.png", image_shape=(4, 4))
    assert [ax for ax in other.axes if ax.images]


def test_plot_without_a_path_shows_a_window(monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    figure = _explanation(3).plot()
    assert shown == [True]
    plt.close(figure)


def test_real_explanations_carry_method_settings_and_names():
    model = nc.Sequential([nc.layers.Dense(3, "softmax")], input_dim=2, seed=0)
    e = integrated_gradients(model, [[1.0, 2.0]], steps=8, feature_names=["a", "b"])
    assert e.method == "integrated_gradients" and e.settings["steps"] == 8
    assert e.feature_names == ["a", "b"] and e.attributions.dtype == np.float64
    with pytest.raises(ValueError, match="Expected 2 feature_names"):
        saliency(model, [[1.0, 2.0]], feature_names=["a"])
