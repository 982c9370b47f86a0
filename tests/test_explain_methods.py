"""explain/methods.py: one entry, ``nc.explain(model, X, method, **settings)``, backed by
the method registry that the command line and the server dispatch through as well."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from explain_networks import random_network

import neurocloud as nc
from neurocloud import explain
from neurocloud.cli import main
from neurocloud.explain import methods
from neurocloud.explain.result import Explanation
from neurocloud.nn.registry import Registry
from neurocloud.serve import explanation_requests

MODEL = random_network(2, "relu")
X = np.random.default_rng(0).normal(size=(3, MODEL.input_dim))
BACKGROUND = np.random.default_rng(1).normal(size=(6, MODEL.input_dim))


@pytest.mark.parametrize(
    ("name", "settings", "reference"),
    [
        ("saliency", {"absolute": True}, lambda: explain.saliency(MODEL, X, absolute=True)),
        ("ig", {"steps": 16}, lambda: explain.integrated_gradients(MODEL, X, steps=16)),
        (
            "smoothgrad",
            {"samples": 4, "over": "ig", "steps": 8},
            lambda: explain.smoothgrad(MODEL, X, samples=4, over="ig", steps=8),
        ),
        (
            "expected",
            {"background": BACKGROUND, "samples": 20},
            lambda: explain.expected_gradients(MODEL, X, BACKGROUND, samples=20),
        ),
        (
            "shap",
            {"background": BACKGROUND, "shap_method": "exact"},
            lambda: explain.shap_values(MODEL, X, BACKGROUND, method="exact"),
        ),
        (
            "lime",
            {"background": BACKGROUND, "num_samples": 200},
            lambda: explain.lime_explanation(MODEL, X[:1], BACKGROUND, num_samples=200),
        ),
    ],
)
def test_one_entry_gives_each_methods_own_result(name, settings, reference):
    rows = X[:1] if name == "lime" else X
    got = nc.explain(MODEL, rows, name, **settings)
    expected = reference()
    assert got.method == expected.method
    assert np.array_equal(got.attributions, expected.attributions)
    assert explain.explain(MODEL, rows, name, **settings).settings == expected.settings


def test_the_default_method_is_integrated_gradients():
    assert nc.explain(MODEL, X).method == "integrated_gradients"


def test_unknown_methods_and_settings_list_the_available_ones():
    with pytest.raises(ValueError, match=r"Unknown explanation method 'magic'.*saliency, shap"):
        nc.explain(MODEL, X, "magic")
    with pytest.raises(ValueError, match=r"method=None.*Valid names: expected_gradients"):
        nc.explain(MODEL, X, None)
    with pytest.raises(
        ValueError,
        match=r"Unknown setting 'stepz' for method 'integrated_gradients'\. "
        r"Valid settings: baseline, steps, target, logits, feature_names\.",
    ):
        nc.explain(MODEL, X, "ig", stepz=3)
    with pytest.raises(ValueError, match=r"Unknown settings 'a', 'b' for method 'saliency'"):
        nc.explain(MODEL, X, "saliency", a=1, b=2)
    with pytest.raises(ValueError, match=r"'expected_gradients' needs background \(rows"):
        nc.explain(MODEL, X, "expected")
    assert explain.available() == [
        "expected_gradients",
        "integrated_gradients",
        "lime",
        "saliency",
        "shap",
        "smoothgrad",
    ]


def test_each_method_declares_the_settings_of_its_function():
    ig = methods.get("IG")  # names are case-insensitive, aliases resolve
    assert ig.name == "integrated_gradients" and ig.required == ()
    assert ig.settings == ("baseline", "steps", "target", "logits", "feature_names")
    assert methods.get("gradient_shap").required == ("background",)
    assert [m.name for m in explanation_requests.served_methods()] == [
        "expected_gradients",
        "integrated_gradients",
        "saliency",
        "smoothgrad",
    ]


def _doubled_saliency(model, X, target=None, *, factor: float = 2.0) -> Explanation:
    base = explain.saliency(model, X, target)
    return Explanation(
        attributions=factor * base.attributions,
        inputs=base.inputs,
        feature_names=base.feature_names,
        output_names=base.output_names,
        prediction=base.prediction,
        target=base.target,
        method="doubled",
        settings={"factor": factor},
    )


def test_a_registered_method_is_served_and_explained_by_name(monkeypatch):
    monkeypatch.setattr(methods, "METHODS", Registry("explanation method"))
    methods.register("saliency", explain.saliency)
    methods.register("doubled", _doubled_saliency, aliases=("twice",))
    reference = explain.saliency(MODEL, X).attributions
    assert np.array_equal(nc.explain(MODEL, X, "twice", factor=3.0).attributions, 3 * reference)
    served = explanation_requests.explain_batch(MODEL, X, {"method": "doubled", "factor": 2.0})
    assert np.array_equal(served["attributions"], 2 * reference)
    with pytest.raises(ValueError, match=r"Valid parameters: method, target, factor\."):
        explanation_requests.explain_batch(MODEL, X, {"method": "doubled", "feature_names": []})


def test_the_command_line_takes_every_name_and_alias(tmp_path):
    path = nc.save(MODEL, tmp_path / "m")
    np.save(tmp_path / "bg.npy", BACKGROUND)
    row = ",".join(map(str, X[0]))
    args = ["explain", str(path), "--row", row, "--background", str(tmp_path / "bg.npy")]
    result = CliRunner().invoke(main, [*args, "--method", "gradient_shap", "--samples", "20"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("row 0: expected_gradients of output")
    wrong = CliRunner().invoke(main, [*args, "--method", "magic"])
    assert wrong.exit_code == 2 and "'shap_values'" in wrong.output
