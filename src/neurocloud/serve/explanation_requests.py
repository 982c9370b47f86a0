"""An explain request's ``parameters``: the method and its settings, read and bounded.

The explain routes (``POST /v2/models/{m}[/versions/{v}]/explain`` and ``POST /explain``)
decode the input tensor like ``infer`` does and hand it here with the request's
``parameters``; :func:`explain_batch` dispatches through the explanation method registry
(:mod:`neurocloud.explain.methods`) and returns the response's named outputs. The server
serves the methods that run on the network's own gradients, whose cost it can bound.

Costly settings are bounded per request (the module's ``MAX_*`` constants): a request
whose size alone passes a bound is refused before any work, and the work actually done
(which the kinks of a ReLU network make data-dependent) is counted as it goes and stopped
at ``MAX_WORK``. Past a bound :class:`LimitExceeded` names the limit and the received
value; any other bad parameter is a ``ValueError`` that lists the valid choices.
``LimitExceeded`` is a ``ValueError`` too, so a caller that maps ``ValueError`` to 400
needs no special case.

Safe under concurrency: each explanation's forward pass records into a tape of its own
and its backward pass fills no parameter gradients, so explanations, ``predict`` and
training can share one model from any threads.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(2, activation="softmax")], input_dim=3, seed=0)
>>> out = explain_batch(m, np.ones((2, 3)), {"method": "ig", "steps": 16})
>>> sorted(out)
['attributions', 'base_value', 'completeness_error', 'prediction', 'target']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurocloud.explain import methods
from neurocloud.explain.core import (
    WorkLimitExceeded,
    as_network,
    check_inputs,
    deadline,
    network_size,
)
from neurocloud.explain.gradients import SMOOTHGRAD_METHODS
from neurocloud.explain.integrated import DEFAULT_STEPS
from neurocloud.explain.kinks import PROBES
from neurocloud.explain.result import Explanation
from neurocloud.nn.validation import check_bool, check_number

__all__ = [
    "MAX_BACKGROUND_ROWS",
    "MAX_EVALUATED_VALUES",
    "MAX_POINTS",
    "MAX_ROWS",
    "MAX_SAMPLES",
    "MAX_STEPS",
    "MAX_WORK",
    "LimitExceeded",
    "explain_batch",
    "served_methods",
]

MAX_ROWS = 1024
MAX_STEPS = 1024
MAX_SAMPLES = 1024
MAX_BACKGROUND_ROWS = 1024
#: evaluated path points x features per request (64 MiB per float64 array at the limit)
MAX_EVALUATED_VALUES = 2**23
#: gradient evaluations (rows x steps x samples) per request
MAX_POINTS = 2**20
#: work units (points through the network x (parameters + features), see
#: :class:`neurocloud.explain.core.Bounds`) per request: about 6 s of one core (64 rows
#: x 1024 steps through a 68k-parameter network, 4.5e9, took 6.4 s)
MAX_WORK = 2**32
#: points at which integrated gradients probes each path for kinks (counted as steps)
PATH_PROBES = PROBES + 2

#: request-level keys of the inference protocols, not explanation settings
PROTOCOL_PARAMETERS = frozenset({"binary_data_output", "binary_data", "binary_data_size"})
#: settings of the library that a request does not send (names come with the model)
_LIBRARY_ONLY = frozenset({"feature_names"})
_DEFAULT_SAMPLES = {"smoothgrad": 50, "expected_gradients": 200}
_INTEGERS = ("steps", "samples", "seed", "target")
_NUMBERS = ("noise", "baseline", "scale")
_FLAGS = ("absolute", "logits")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class LimitExceeded(ValueError):
    """A request asks for more work than one explain call may do (a 4xx, not a 500)."""


def served_methods() -> list[methods.Method]:
    """The registered methods the server runs: those on the network's own gradients."""
    return [methods.get(name) for name in methods.available() if methods.get(name).gradient]


def _method(parameters: dict[str, Any]) -> methods.Method:
    served = served_methods()
    listing = ", ".join(
        m.name + (f" ({', '.join(m.aliases)})" if m.aliases else "") for m in served
    )
    name = parameters.get("method", methods.DEFAULT_METHOD)
    try:
        method = methods.get(name)
    except ValueError:
        method = None
    if method is None:
        raise ValueError(f"Unknown explanation method {name!r}. Expected one of: {listing}.")
    if not method.gradient:
        raise ValueError(
            f"Explanation method {name!r} is not served: its cost has no bound the server "
            f"can check. Expected one of: {listing}."
        )
    return method


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


def _settings(method: methods.Method, parameters: dict[str, Any]) -> dict[str, Any]:
    """The request's settings for ``method``: names checked, text read, flags checked."""
    settings = {
        k: _from_text(k, v)
        for k, v in parameters.items()
        if k not in PROTOCOL_PARAMETERS and k != "method"
    }
    valid = [name for name in method.settings if name not in _LIBRARY_ONLY]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for method "
            f"{method.name!r}. Valid parameters: method, {', '.join(valid)}."
        )
    for name in method.required:
        if settings.get(name) is None:
            raise ValueError(
                f"Method {method.name!r} needs parameters.{name}: rows representative "
                "of the training data, the baselines the attributions are measured from."
            )
    for name in _FLAGS:
        if name in settings:
            settings[name] = check_bool(settings[name], name)
    return settings


def _count(settings: dict[str, Any], name: str, default: int, limit: int) -> int:
    value = settings.get(name, default)
    if isinstance(value, float) and value.is_integer():  # JSON may send 16.0
        value = int(value)
    value = check_number(value, name, low=1, integer=True)
    if value > limit:
        raise LimitExceeded(
            f"{name}={value} exceeds the limit of {limit} per explain request "
            f"(MAX_{name.upper()}={limit})."
        )
    return value


def _check_limits(method: str, settings: dict[str, Any], X: np.ndarray, net: Any) -> None:
    """Refuse, before any work, a request whose size alone passes a bound; fills in the
    ``samples`` and ``steps`` it counted."""
    rows, features = X.shape
    if rows > MAX_ROWS:
        raise LimitExceeded(
            f"rows={rows} exceeds the limit of {MAX_ROWS} rows per explain request "
            f"(MAX_ROWS={MAX_ROWS})."
        )
    points = rows
    outputs = 2 * rows if method == "integrated_gradients" else rows
    over = settings.get("over")
    uses_steps = method == "integrated_gradients" or (
        method == "smoothgrad"
        and isinstance(over, str)
        and SMOOTHGRAD_METHODS.get(over) == "integrated_gradients"
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
        outputs += len(background) if background.ndim >= 1 else 1
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
    size = network_size(net)
    work = (points + outputs) * (size + features)
    if work > MAX_WORK:
        raise LimitExceeded(
            f"(rows x steps x samples + rows) x (parameters + features) = {work} exceeds "
            f"the limit of {MAX_WORK} per explain request (MAX_WORK={MAX_WORK}; this "
            f"network has {size} parameters); send fewer rows or steps/samples."
        )


def _outputs(explanation: Explanation) -> dict[str, np.ndarray]:
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
    method = _method(parameters)
    settings = _settings(method, parameters)
    try:
        X = check_inputs(net, X)
        _check_limits(method.name, settings, X, net)
        with deadline(max_work=MAX_WORK):
            explanation = method(net, X, **settings)
    except WorkLimitExceeded as exc:
        raise LimitExceeded(
            f"{exc}, over the limit of {MAX_WORK} per explain request (MAX_WORK={MAX_WORK}; "
            "the kinks of a ReLU network add work); send fewer rows or steps/samples."
        ) from None
    except TypeError as exc:  # e.g. text where numbers were expected
        raise ValueError(f"Invalid input or parameters for method {method.name!r}: {exc}") from None
    return _outputs(explanation)
