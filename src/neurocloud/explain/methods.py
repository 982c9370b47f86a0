"""The explanation methods by name: one entry, :func:`explain`, for the library, the
command line and the server.

Each method is registered with its function and the settings that function takes (read
from its signature), so an unknown method or setting is refused with the valid ones listed.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(3, activation="softmax")], input_dim=4, seed=0)
>>> explain(m, np.ones((2, 4)), "ig", steps=16).method
'integrated_gradients'
>>> explain(m, np.ones((2, 4)), "ig", stepz=16)
Traceback (most recent call last):
...
ValueError: Unknown setting 'stepz' for method 'integrated_gradients'. Valid settings: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neurocloud.explain.agnostic import lime_explanation, shap_values
from neurocloud.explain.gradients import expected_gradients, saliency, smoothgrad
from neurocloud.explain.integrated import integrated_gradients
from neurocloud.explain.result import Explanation
from neurocloud.nn.registry import Registry

__all__ = ["METHODS", "Method", "available", "explain", "get", "register"]

DEFAULT_METHOD = "integrated_gradients"
_HINTS = {
    "background": "rows representative of the training data, the reference the "
    "attributions are measured from"
}


@dataclass(frozen=True)
class Method:
    """An explanation method: its name, its function ``function(model, X, **settings)``,
    the settings it takes (``required`` ones have no default), other names it answers
    to, and whether it runs on the network's own gradients (``gradient``; the others
    need an optional package and see the model as a black box)."""

    name: str
    function: Callable[..., Explanation]
    settings: tuple[str, ...]
    required: tuple[str, ...]
    aliases: tuple[str, ...]
    gradient: bool

    def check(self, settings: dict[str, Any]) -> None:
        """Raise a ``ValueError`` naming any unknown or missing setting."""
        unknown = [name for name in settings if name not in self.settings]
        if unknown:
            raise ValueError(
                f"Unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} for method {self.name!r}. "
                f"Valid settings: {', '.join(self.settings)}."
            )
        missing = [name for name in self.required if settings.get(name) is None]
        if missing:
            hints = [f"{name} ({_HINTS[name]})" if name in _HINTS else name for name in missing]
            raise ValueError(f"Method {self.name!r} needs {', '.join(hints)}.")

    def __call__(self, model: Any, X: Any, **settings: Any) -> Explanation:
        self.check(settings)
        return self.function(model, X, **settings)


METHODS: Registry[Method] = Registry("explanation method")


def register(
    name: str,
    function: Callable[..., Explanation],
    *,
    aliases: tuple[str, ...] = (),
    gradient: bool = True,
) -> Method:
    """Register ``function(model, X, ...)`` as the method ``name``; its settings are the
    parameters after ``model`` and ``X``."""
    parameters = list(inspect.signature(function).parameters.values())[2:]
    method = Method(
        name=name,
        function=function,
        settings=tuple(p.name for p in parameters),
        required=tuple(p.name for p in parameters if p.default is inspect.Parameter.empty),
        aliases=tuple(aliases),
        gradient=gradient,
    )
    METHODS.register(name, method)
    for alias in aliases:
        METHODS.alias(alias, name)
    return method


def get(name: str) -> Method:
    """The method called ``name`` (or one of its aliases); a ``ValueError`` listing the
    methods otherwise."""
    if not isinstance(name, str):
        raise ValueError(
            f"Expected method to be a name (str). Received: method={name!r}. "
            f"Valid names: {', '.join(available())}."
        )
    return METHODS.get(name, "method")


def available() -> list[str]:
    """The names of the registered methods."""
    return METHODS.names()


def explain(model: Any, X: Any, method: str = DEFAULT_METHOD, **settings: Any) -> Explanation:
    """Explain the rows of ``X`` with ``method`` (a name from :func:`available`, or an
    alias such as ``"ig"``) and its settings; also callable as ``nc.explain(...)``.

    Methods and their settings: ``saliency`` (``target``, ``absolute``, ``logits``),
    ``integrated_gradients`` or ``ig`` (``baseline``, ``steps``), ``smoothgrad``
    (``over``, ``samples``, ``noise``, ``seed``, ``scale``, and ``over``'s settings),
    ``expected_gradients`` or ``expected`` (``background``, required; ``samples``,
    ``seed``), ``shap`` (``background``; ``shap_method``, ``max_evals``, ``seed``) and
    ``lime`` (``background``: the training data; ``num_samples``, ``seed``,
    ``discretize``). All take ``target``, ``logits`` and ``feature_names``.

    >>> import numpy as np, neurocloud as nc
    >>> m = nc.Sequential([nc.layers.Dense(1, use_bias=False)], input_dim=2, seed=0)
    >>> e = nc.explain(m, [[3.0, 4.0]], "saliency")
    >>> np.allclose(e.attributions[0], m.layers[0].params["kernel"][:, 0])
    True
    """
    return get(method)(model, X, **settings)


def _shap(
    model: Any,
    X: Any,
    background: Any,
    target: Any = None,
    *,
    shap_method: str = "auto",
    max_evals: int | None = None,
    seed: int = 0,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """:func:`~neurocloud.explain.shap_values`, whose ``method`` is ``shap_method`` here."""
    return shap_values(
        model,
        X,
        background,
        target,
        method=shap_method,
        max_evals=max_evals,
        seed=seed,
        logits=logits,
        feature_names=feature_names,
    )


def _lime(
    model: Any,
    X: Any,
    background: Any,
    target: Any = None,
    *,
    num_samples: int = 5000,
    seed: int = 0,
    discretize: bool = True,
    logits: bool = False,
    feature_names: Any = None,
) -> Explanation:
    """:func:`~neurocloud.explain.lime_explanation`, whose ``training_data`` is
    ``background`` here, as in the other methods that need reference rows."""
    return lime_explanation(
        model,
        X,
        background,
        target,
        num_samples=num_samples,
        seed=seed,
        discretize=discretize,
        logits=logits,
        feature_names=feature_names,
    )


register("saliency", saliency)
register("integrated_gradients", integrated_gradients, aliases=("ig",))
register("smoothgrad", smoothgrad)
register("expected_gradients", expected_gradients, aliases=("expected", "gradient_shap"))
register("shap", _shap, aliases=("shap_values",), gradient=False)
register("lime", _lime, aliases=("lime_explanation",), gradient=False)
