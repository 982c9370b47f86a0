"""Model-agnostic explanations through the well-kept libraries: SHAP and LIME.

Both need the optional extra ``pip install neurocloud[explain]`` and are imported only
when called, so ``import neurocloud`` never loads them. They see the model as a black box
(``predict`` on masked or perturbed rows) and return the same :class:`Explanation` as the
gradient methods.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=3, seed=0, dtype="float64")
>>> X, background = np.ones((2, 3)), np.zeros((4, 3))
>>> e = shap_values(m, X, background)
>>> np.allclose(e.attributions, m.layers[0].params["kernel"][:, 0])
True
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from neurocloud.explain.core import (
    as_network,
    check_feature_names,
    check_inputs,
    model_outputs,
    output_names,
    resolve_targets,
)
from neurocloud.explain.result import Explanation
from neurocloud.nn.validation import check_number, positive_int

__all__ = ["EXACT_MAX_FEATURES", "SHAP_METHODS", "lime_explanation", "shap_values"]

#: exact Shapley values cost 2**features model calls per row and background row
EXACT_MAX_FEATURES = 10
SHAP_METHODS = ("auto", "exact", "permutation", "kernel")


def _missing_extra(package: str) -> ImportError:
    return ImportError(
        f"This explanation needs the {package!r} package: pip install 'neurocloud[explain]'"
    )


def _import_shap() -> Any:
    try:
        with warnings.catch_warnings():
            # shap 0.51 calls colormap setters that matplotlib 3.11 marks for deprecation
            # when it is imported; nothing a caller can act on.
            warnings.filterwarnings(
                "ignore",
                message=r"The set_(bad|over|under) function will be deprecated",
                category=PendingDeprecationWarning,
            )
            import shap
    except ImportError:
        raise _missing_extra("shap") from None
    return shap


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """shap's Permutation and Kernel explainers draw from NumPy's global generator: seed it
    for reproducibility and put the caller's global state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _per_target(values: Any, targets: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each row's target from shap's values, reshaped to ``shape``: ``(n, features,
    outputs)`` or ``(n, outputs)`` (shap drops or keeps a single output axis by explainer)."""
    values = np.broadcast_to(np.asarray(values, dtype=np.float64).reshape(-1, *shape[1:]), shape)
    rows = np.arange(len(targets))
    return values[rows, :, targets] if len(shape) == 3 else values[rows, targets]


def shap_values(
    model: Any,
    X: Any,
    background: Any,
    target: Any = None,
    *,
    method: str = "auto",
    max_evals: int | None = None,
    seed: int = 0,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """SHAP values of output ``target`` with the ``shap`` package, features missing from a
    coalition taken from ``background`` rows (interventional Shapley values).

    ``method``: ``"exact"`` (all coalitions; the default up to ``EXACT_MAX_FEATURES``
    features), ``"permutation"`` (antithetic permutations, exactly additive; the default
    above), or ``"kernel"`` (Kernel SHAP with ``l1_reg=False``, so no feature is dropped).
    ``max_evals`` bounds the sampled methods' model calls per row (default
    ``10 * (2 * features + 1)`` for permutation, shap's ``"auto"`` for kernel). Every
    background row is used (no subsampling): pass a small, representative background.
    ``base_value`` is ``E[f(background)]``; the values add up to ``f(x) - base_value``.

    >>> import numpy as np, neurocloud as nc
    >>> m = nc.Sequential([nc.layers.Dense(2, activation="softmax")], input_dim=2, seed=0)
    >>> e = shap_values(m, np.ones((1, 2)), np.zeros((3, 2)), target=1)
    >>> bool(abs(e.completeness_error[0]) < 1e-6)
    True
    """
    if method not in SHAP_METHODS:
        raise ValueError(
            f"Unknown SHAP method {method!r} for method. Expected one of: "
            f"{', '.join(SHAP_METHODS)}."
        )
    net = as_network(model)
    X = check_inputs(net, X)
    background = check_inputs(net, background, name="background")
    (n, d), m = X.shape, len(background)
    if max_evals is not None:
        max_evals = positive_int(max_evals, "max_evals")
    seed = check_number(seed, "seed", low=0, integer=True)
    if method == "auto":
        method = "exact" if d <= EXACT_MAX_FEATURES else "permutation"
    outputs = model_outputs(net, X, logits)
    targets, k = resolve_targets(outputs, target), outputs.shape[1]
    shap = _import_shap()

    def predict(Z: Any) -> np.ndarray:
        return model_outputs(net, np.asarray(Z, dtype=np.float64), logits)

    masker = shap.maskers.Independent(background, max_samples=m)
    with _seeded_global_numpy(seed):
        if method == "exact":
            result = shap.explainers.Exact(predict, masker)(X, max_evals=2**d + 1, silent=True)
            values, base = result.values, result.base_values
        elif method == "permutation":
            evals = max_evals or 10 * (2 * d + 1)
            explainer = shap.explainers.Permutation(predict, masker, seed=seed)
            result = explainer(X, max_evals=evals, silent=True)
            values, base = result.values, result.base_values
        else:
            explainer = shap.KernelExplainer(predict, background)
            values = explainer.shap_values(
                X, nsamples=max_evals or "auto", l1_reg=False, silent=True
            )
            base = explainer.expected_value
    settings = {
        "shap_method": method,
        "background_rows": m,
        "seed": seed,
        "max_evals": max_evals,
        "logits": bool(logits),
    }
    return Explanation(
        attributions=_per_target(values, targets, (n, d, k)),
        inputs=X,
        feature_names=check_feature_names(feature_names, d, net),
        output_names=output_names(net),
        prediction=outputs[np.arange(n), targets],
        target=targets,
        method="shap",
        settings=settings,
        base_value=_per_target(base, targets, (n, k)),
    )


def lime_explanation(
    model: Any,
    x: Any,
    training_data: Any,
    target: Any = None,
    *,
    num_samples: int = 5000,
    seed: int = 0,
    discretize: bool = True,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """LIME: a weighted linear model fitted to the network around each row of ``x``, with
    ``lime``'s tabular explainer (samples drawn like ``training_data``, seeded by ``seed``).

    LIME explains the real-valued output ``f_target`` (its regression mode, which for a
    classifier is the same fit as its classification mode on that class's probability).
    With ``discretize`` (LIME's default) each attribution is the weight of "this feature
    is in x's quartile"; ``base_value`` is the local model's intercept, so
    ``completeness_error`` is the local model's miss at ``x``. The fit's R^2 per row is in
    ``settings["scores"]``.

    >>> import numpy as np, neurocloud as nc
    >>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)
    >>> data = np.random.default_rng(0).normal(size=(100, 2))
    >>> lime_explanation(m, data[0], data, num_samples=500).attributions.shape
    (1, 2)
    """
    try:
        from lime.lime_tabular import LimeTabularExplainer
    except ImportError:
        raise _missing_extra("lime") from None
    net = as_network(model)
    X = check_inputs(net, x, name="x")
    training = check_inputs(net, training_data, name="training_data")
    num_samples = positive_int(num_samples, "num_samples")
    seed = check_number(seed, "seed", low=0, integer=True)
    n, d = X.shape
    names = check_feature_names(feature_names, d, net)
    outputs = model_outputs(net, X, logits)
    targets = resolve_targets(outputs, target)
    explainer = LimeTabularExplainer(
        training,
        mode="regression",
        feature_names=names,
        discretize_continuous=bool(discretize),
        random_state=seed,
    )
    attributions, intercepts, scores = np.zeros((n, d)), np.zeros(n), []
    for row in range(n):
        chosen = int(targets[row])
        found = explainer.explain_instance(
            X[row],
            lambda Z, t=chosen: model_outputs(net, Z, logits)[:, t],
            num_features=d,
            num_samples=num_samples,
        )
        for feature, weight in found.local_exp[1]:
            attributions[row, feature] = weight
        intercepts[row] = found.intercept[1]
        scores.append(float(found.score))
    settings = {
        "num_samples": num_samples,
        "seed": seed,
        "discretize": bool(discretize),
        "scores": scores,
        "logits": bool(logits),
    }
    return Explanation(
        attributions=attributions,
        inputs=X,
        feature_names=names,
        output_names=output_names(net),
        prediction=outputs[np.arange(n), targets],
        target=targets,
        method="lime",
        settings=settings,
        base_value=intercepts if discretize else None,
    )
