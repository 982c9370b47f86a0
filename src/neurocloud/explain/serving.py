"""Explanations for the server: one call from decoded request arrays to named outputs.

The server's explain routes (``POST /v2/models/{m}[/versions/{v}]/explain`` and
``POST /explain``) decode the input tensor like ``infer`` does and hand it here with the
request's ``parameters``; the returned arrays become the response's named outputs.
Costly settings are bounded per request (the module's ``MAX_*`` constants): past a
bound :class:`LimitExceeded` names the limit and the received value. Any other bad
parameter is a ``ValueError`` that lists the valid choices. ``LimitExceeded`` is a
``ValueError`` too, so a route that maps ``ValueError`` to 400 needs no special case.

Safe under concurrency: each explanation's forward pass records into a tape of its own
and its backward pass fills no parameter gradients, so explanations, ``predict`` and
training can share one model from any threads. An explanation uses the model's weights
as they are when it runs.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(2, activation="softmax")], input_dim=3, seed=0)
>>> out = explain_batch(m, np.ones((2, 3)), {"method": "ig", "steps": 16})
>>> sorted(out)
['attributions', 'base_value', 'completeness_error', 'prediction', 'target']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neurocloud.explain.core import as_network, check_inputs
from neurocloud.explain.gradients import expected_gradients, saliency, smoothgrad
from neurocloud.explain.integrated import DEFAULT_STEPS, integrated_gradients
from neurocloud.explain.result import Explanation

__all__ = [
    "MAX_BACKGROUND_ROWS",
    "MAX_EVALUATED_VALUES",
    "MAX_POINTS",
    "MAX_ROWS",
    "MAX_SAMPLES",
    "MAX_STEPS",
    "MAX_WORK",
    "METHODS",
    "LimitExceeded",
    "explain_batch",
]

MAX_ROWS = 1024
MAX_STEPS = 1024
MAX_SAMPLES = 1024
MAX_BACKGROUND_ROWS = 1024
#: evaluated path points x features per request (64 MiB per float64 array at the limit)
MAX_EVALUATED_VALUES = 2**23
#: gradient evaluations (rows x steps x samples) per request
MAX_POINTS = 2**20
#: gradient evaluations x (network parameters + features): about 6 s of one core (64 rows
#: x 1024 steps through a 68k-parameter network, 4.5e9, took 6.4 s)
MAX_WORK = 2**32
#: points at which integrated gradients probes each path for kinks (counted as steps)
PATH_PROBES = 66

#: request-level keys of the inference protocols, not explanation settings
PROTOCOL_PARAMETERS = frozenset({"binary_data_output", "binary_data", "binary_data_size"})
_COMMON = ("method", "target", "logits")

#: method -> settings it accepts (besides "method", "target" and "logits")
METHODS: dict[str, tuple[str, ...]] = {
    "saliency": ("absolute",),
    "integrated_gradients": ("steps", "baseline"),
    "smoothgrad": ("over", "samples", "noise", "seed", "scale", "steps", "baseline", "absolute"),
    "expected_gradients": ("background", "samples", "seed"),
}
ALIASES = {
    "ig": "integrated_gradients",
    "expected": "expected_gradients",
    "gradient_shap": "expected_gradients",
}
_DEFAULT_SAMPLES = {"smoothgrad": 50, "expected_gradients": 200}


class LimitExceeded(ValueError):
    """A request asks for more work than one explain call may do (a 4xx, not a 500)."""


def _method_name(parameters: dict[str, Any]) -> str:
    method = parameters.get("method", "integrated_gradients")
    valid = ", ".join([*METHODS, *ALIASES])
    if not isinstance(method, str) or ALIASES.get(method, method) not in METHODS:
        raise ValueError(f"Unknown explanation method {method!r}. Expected one of: {valid}.")
    return ALIASES.get(method, method)


_INTEGERS = ("steps", "samples", "seed", "target")
_NUMBERS = ("noise", "baseline", "scale")
_FLAGS = ("absolute", "logits")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _from_text(name: str, value: Any) -> Any:
    """A setting sent as text (a query string) as the number or flag it spells."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    try:
        if name in _INTEGERS:
            return int(text)
        if name in _NUMBERS:
            return float(text)
    except ValueError:
        return value
    if name in _FLAGS and text in _TRUE + _FALSE:
        return text in _TRUE
    return value


def _check_names(method: str, parameters: dict[str, Any]) -> dict[str, Any]:
    settings = {k: _from_text(k, v) for k, v in parameters.items() if k not in PROTOCOL_PARAMETERS}
    valid = (*_COMMON, *METHODS[method])
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for method {method!r}. "
            f"Valid parameters: {', '.join(valid)}."
        )
    settings.pop("method", None)
    return settings


def _count(settings: dict[str, Any], name: str, default: int, limit: int) -> int:
    value = settings.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    if value > limit:
        raise LimitExceeded(
            f"{name}={value} exceeds the limit of {limit} per explain request "
            f"(MAX_{name.upper()}={limit})."
        )
    return value


def _check_kinds(settings: dict[str, Any]) -> None:
    for name in ("absolute", "logits"):
        if name in settings and not isinstance(settings[name], bool):
            raise ValueError(
                f"Expected {name} to be true or false. Received: {name}={settings[name]!r}"
            )
    seed = settings.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"Expected seed to be an integer >= 0. Received: seed={seed!r}")


def _check_limits(
    method: str, settings: dict[str, Any], X: np.ndarray, net: Any = None
) -> dict[str, Any]:
    rows, features = X.shape
    if rows > MAX_ROWS:
        raise LimitExceeded(
            f"rows={rows} exceeds the limit of {MAX_ROWS} rows per explain request "
            f"(MAX_ROWS={MAX_ROWS})."
        )
    points = rows
    uses_steps = method == "integrated_gradients" or (
        method == "smoothgrad" and settings.get("over") in ("integrated_gradients", "ig")
    )
    if method in _DEFAULT_SAMPLES:
        settings["samples"] = _count(settings, "samples", _DEFAULT_SAMPLES[method], MAX_SAMPLES)
        points *= settings["samples"]
    if uses_steps:
        settings["steps"] = _count(settings, "steps", DEFAULT_STEPS, MAX_STEPS)
        # each path is also probed for kinks at PATH_PROBES points
        points *= max(settings["steps"], PATH_PROBES)
    if "background" in settings:
        background = np.asarray(settings["background"])
        if background.ndim >= 1 and len(background) > MAX_BACKGROUND_ROWS:
            raise LimitExceeded(
                f"background has {len(background)} rows, over the limit of "
                f"{MAX_BACKGROUND_ROWS} (MAX_BACKGROUND_ROWS={MAX_BACKGROUND_ROWS})."
            )
    if points * features > MAX_EVALUATED_VALUES:
        raise LimitExceeded(
            f"rows x steps x samples x features = {points * features} exceeds the limit of "
            f"{MAX_EVALUATED_VALUES} evaluated values per explain request "
            f"(MAX_EVALUATED_VALUES={MAX_EVALUATED_VALUES}); send fewer rows or steps/samples."
        )
    if points > MAX_POINTS:
        raise LimitExceeded(
            f"rows x steps x samples = {points} gradient evaluations exceeds the limit of "
            f"{MAX_POINTS} per explain request (MAX_POINTS={MAX_POINTS}; steps count as at "
            f"least {PATH_PROBES}); send fewer rows or steps/samples."
        )
    size = _network_size(net)
    if points * (size + features) > MAX_WORK:
        raise LimitExceeded(
            f"rows x steps x samples x (parameters + features) = "
            f"{points * (size + features)} exceeds the limit of {MAX_WORK} per explain "
            f"request (MAX_WORK={MAX_WORK}; this network has {size} parameters); send fewer "
            "rows or steps/samples."
        )
    return settings


def _network_size(net: Any) -> int:
    count = getattr(net, "count_params", None)
    try:
        return int(count()) if callable(count) else 0
    except Exception:  # an unbuilt or foreign network: only the other bounds apply
        return 0


_RUNNERS: dict[str, Callable[..., Explanation]] = {
    "saliency": saliency,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "expected_gradients": expected_gradients,
}


def explain_batch(model: Any, X: np.ndarray, parameters: dict[str, Any]) -> dict[str, np.ndarray]:
    """Explain the rows of ``X`` with ``parameters["method"]`` and its settings.

    Methods: ``saliency`` (``absolute``), ``integrated_gradients`` or ``ig`` (``steps``,
    ``baseline``; the default method), ``smoothgrad`` (``over``, ``samples``, ``noise``,
    ``seed``, ``scale``, and ``over``'s settings), ``expected_gradients`` or ``expected``
    (``background`` rows, required; ``samples``, ``seed``). All take ``target`` (an output
    index, or one per row; default the predicted class) and ``logits``.

    Returns ``attributions`` ``(n, features)``, ``prediction`` and ``target`` ``(n,)``, and
    where defined ``base_value`` and ``completeness_error`` ``(n,)`` and
    ``standard_error`` ``(n, features)``. Raises :class:`LimitExceeded` past the ``MAX_*``
    bounds and ``ValueError`` for anything else that is wrong in the request.
    """
    if not isinstance(parameters, dict):
        raise ValueError(
            f"Expected parameters to be an object of settings; received "
            f"{type(parameters).__name__}."
        )
    net = as_network(model)
    method = _method_name(parameters)
    settings = _check_names(method, parameters)
    if method == "expected_gradients" and settings.get("background") is None:
        raise ValueError(
            "Method 'expected_gradients' needs parameters.background: rows representative "
            "of the training data, the baselines the attributions are measured from."
        )
    _check_kinds(settings)
    try:
        X = check_inputs(net, X)
        settings = _check_limits(method, settings, X, net)
        explanation = _RUNNERS[method](net, X, **settings)
    except TypeError as exc:  # e.g. text where numbers were expected
        raise ValueError(f"Invalid input or parameters for method {method!r}: {exc}") from None
    outputs = {
        "attributions": explanation.attributions,
        "prediction": explanation.prediction,
        "target": explanation.target,
    }
    if explanation.base_value is not None:
        outputs["base_value"] = explanation.base_value
        outputs["completeness_error"] = explanation.completeness_error
    if explanation.standard_error is not None:
        outputs["standard_error"] = explanation.standard_error
    return outputs
