"""Saliency, SmoothGrad and expected gradients (GradientSHAP), from our own backpropagation.

Every method stacks all the points it needs (noisy copies, background samples) into one
batch and runs one forward and one backward pass over it.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(1, use_bias=False)], input_dim=2, seed=0)
>>> e = saliency(m, [[3.0, 4.0]])
>>> np.allclose(e.attributions[0], m.layers[0].params["kernel"][:, 0])
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurocloud.explain.core import (
    as_network,
    check_feature_names,
    check_inputs,
    check_representable,
    model_outputs,
    output_names,
    resolve_targets,
    target_gradients,
)
from neurocloud.explain.integrated import DEFAULT_STEPS, check_baseline, integrate_paths
from neurocloud.explain.result import Explanation
from neurocloud.nn.validation import check_number, positive_int

__all__ = ["SMOOTHGRAD_METHODS", "expected_gradients", "saliency", "smoothgrad"]

#: the methods SmoothGrad can average, with the name aliases it accepts
SMOOTHGRAD_METHODS = {
    "saliency": "saliency",
    "integrated_gradients": "integrated_gradients",
    "ig": "integrated_gradients",
}


def _explanation(net, X, outputs, targets, attributions, method, settings, feature_names, **extra):
    return Explanation(
        attributions=attributions,
        inputs=X,
        feature_names=check_feature_names(feature_names, X.shape[1], net),
        output_names=output_names(net),
        prediction=outputs[np.arange(len(X)), targets],
        target=targets,
        method=method,
        settings=settings,
        **extra,
    )


def saliency(
    model: Any,
    X: Any,
    target: Any = None,
    *,
    absolute: bool = False,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """Input gradients ``d f_target / d x`` of each row (their magnitude if ``absolute``).

    ``target`` is an output index (an int or one per row); by default the predicted class,
    or output 0 for a single output. ``logits=True`` explains the pre-softmax output.

    >>> import numpy as np, neurocloud as nc
    >>> m = nc.Sequential([nc.layers.Dense(3, activation="softmax")], input_dim=4, seed=0)
    >>> saliency(m, np.ones((2, 4)), target=1, absolute=True).attributions.shape
    (2, 4)
    """
    net = as_network(model)
    X = check_inputs(net, X)
    outputs = model_outputs(net, X, logits)
    targets = resolve_targets(outputs, target)
    _, grads = target_gradients(net, X, targets, logits)
    settings = {"absolute": bool(absolute), "logits": bool(logits)}
    attributions = np.abs(grads) if absolute else grads
    return _explanation(net, X, outputs, targets, attributions, "saliency", settings, feature_names)


def _check_scale(scale: Any, n_features: int) -> np.ndarray:
    array = np.asarray(scale, dtype=np.float64)
    if array.shape not in ((), (n_features,)) or not np.all(np.isfinite(array) & (array >= 0)):
        raise ValueError(
            f"Expected scale to be one finite number >= 0 per feature ({n_features}). "
            f"Received: scale of shape {array.shape}"
        )
    return np.broadcast_to(array, (n_features,))


def smoothgrad(
    model: Any,
    X: Any,
    over: str = "saliency",
    samples: int = 50,
    noise: float = 0.15,
    seed: int = 0,
    target: Any = None,
    *,
    scale: Any = None,
    steps: int = DEFAULT_STEPS,
    baseline: Any = None,
    absolute: bool = False,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """SmoothGrad: the average of ``over`` (saliency or integrated gradients) on ``samples``
    noisy copies of each row, ``x + N(0, sigma^2)``.

    ``sigma = noise * (max(x) - min(x))`` per row, as in the SmoothGrad paper; a row with
    no range (one feature, or all features equal) uses an absolute scale of 1 instead,
    ``sigma = noise``, so SmoothGrad never silently reduces to saliency (``settings["scale"]``
    says how many rows did). Give ``scale`` (one number per feature, e.g. the training
    data's standard deviations) for ``sigma = noise * scale`` instead, better for features
    of different units or far from unit size. The target
    is chosen on the clean row and kept for its noisy copies. ``steps`` and ``baseline``
    apply to integrated gradients, ``absolute`` to saliency.

    >>> import numpy as np, neurocloud as nc
    >>> m = nc.Sequential([nc.layers.Dense(4, activation="tanh"), nc.layers.Dense(1)],
    ...                   input_dim=3, seed=0)
    >>> smoothgrad(m, np.ones((2, 3)), samples=8, seed=1).settings["samples"]
    8
    """
    if over not in SMOOTHGRAD_METHODS:
        raise ValueError(
            f"Unknown method {over!r} for over. Expected one of: {', '.join(SMOOTHGRAD_METHODS)}."
        )
    over = SMOOTHGRAD_METHODS[over]
    net = as_network(model)
    X = check_inputs(net, X)
    samples = positive_int(samples, "samples")
    noise = check_number(noise, "noise", low=0)
    seed = check_number(seed, "seed", low=0, integer=True)
    n, d = X.shape
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        if scale is None:
            ranges = X.max(axis=1) - X.min(axis=1)
            flat = int(np.count_nonzero(ranges == 0))
            sigma = noise * np.where(ranges > 0, ranges, 1.0)[:, None]
            scale_used = "row range" + (f" (1 for {flat} row(s) without range)" if flat else "")
        else:
            sigma = noise * _check_scale(scale, d)
            scale_used = "given"
        rng = np.random.default_rng(seed)
        noisy = (X + rng.standard_normal((samples, n, d)) * sigma).reshape(-1, d)
    if not np.all(np.isfinite(noisy)):
        raise ValueError(
            f"Expected noise x scale small enough for finite noisy copies; they overflow. "
            f"Received: noise={noise!r}"
        )
    check_representable(net, noisy, "the noisy copies (X + noise x scale)")
    outputs = model_outputs(net, X, logits)
    targets = resolve_targets(outputs, target)
    tiled = np.tile(targets, samples)
    settings: dict[str, Any] = {
        "over": over,
        "samples": samples,
        "noise": noise,
        "seed": seed,
        "scale": scale_used,
        "logits": bool(logits),
    }
    if over == "saliency":
        _, grads = target_gradients(net, noisy, tiled, logits)
        per_sample = np.abs(grads) if absolute else grads
        settings["absolute"] = bool(absolute)
    else:
        baselines = np.tile(check_baseline(baseline, X, net), (samples, 1))
        steps = positive_int(steps, "steps")
        per_sample, evaluations = integrate_paths(net, noisy, baselines, tiled, steps, logits)
        settings.update(
            steps=steps,
            baseline="zeros" if baseline is None else "given",
            gradient_evaluations=evaluations,
        )
    attributions = per_sample.reshape(samples, n, d).mean(axis=0)
    return _explanation(
        net, X, outputs, targets, attributions, "smoothgrad", settings, feature_names
    )


def expected_gradients(
    model: Any,
    X: Any,
    background: Any,
    samples: int = 200,
    seed: int = 0,
    target: Any = None,
    *,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """Expected gradients (GradientSHAP): integrated gradients averaged over baselines drawn
    from ``background``, estimated with one random point per drawn baseline:
    ``mean_s (x - b_s) * grad f(b_s + a_s (x - b_s))``.

    The attributions approximate SHAP values: in expectation they add up to
    ``f(x) - E[f(background)]`` (``base_value``), and equal exact (interventional) Shapley
    values for models without feature interactions, ``f(x) = sum_i g_i(x_i)``. Baselines
    cycle through shuffled copies of the background (each row used equally often) and
    ``a_s`` is stratified over ``[0, 1]``, which lowers the variance. ``standard_error``
    is the i.i.d. estimate ``std / sqrt(samples)``, an upper bound under this balanced
    sampling (``None`` for a single sample).

    >>> import numpy as np, neurocloud as nc
    >>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0, dtype="float64")
    >>> e = expected_gradients(m, [[1.0, 1.0]], background=[[0.0, 0.0], [2.0, 0.0]],
    ...                        samples=10)
    >>> w = m.layers[0].params["kernel"][:, 0]
    >>> np.allclose(e.attributions[0], w * np.array([0.0, 1.0]))
    True
    """
    net = as_network(model)
    X = check_inputs(net, X)
    background = check_inputs(net, background, name="background")
    samples = positive_int(samples, "samples")
    seed = check_number(seed, "seed", low=0, integer=True)
    (n, d), m = X.shape, len(background)
    rng = np.random.default_rng(seed)
    rounds = -(-samples // m)
    chosen = np.argsort(rng.random((n, rounds, m)), axis=2).reshape(n, -1)[:, :samples]
    alphas = (np.argsort(rng.random((n, samples)), axis=1) + rng.random((n, samples))) / samples
    baselines = background[chosen]  # (n, samples, d)
    delta = X[:, None, :] - baselines
    points = (baselines + alphas[..., None] * delta).reshape(-1, d)
    outputs = model_outputs(net, np.concatenate([X, background]), logits)
    targets = resolve_targets(outputs[:n], target)
    _, grads = target_gradients(net, points, np.repeat(targets, samples), logits)
    per_sample = delta * grads.reshape(n, samples, d)
    # one sample has no spread to estimate its error from
    error = per_sample.std(axis=1, ddof=1) / np.sqrt(samples) if samples > 1 else None
    settings = {"samples": samples, "seed": seed, "background_rows": m, "logits": bool(logits)}
    return _explanation(
        net,
        X,
        outputs[:n],
        targets,
        per_sample.mean(axis=1),
        "expected_gradients",
        settings,
        feature_names,
        base_value=outputs[n:].mean(axis=0)[targets],
        standard_error=error,
    )
