"""SageMaker hyperparameters (every value a string) parsed and checked by the training settings.

SageMaker writes ``/opt/ml/input/config/hyperparameters.json`` with string values; the SDK's
framework estimators also JSON-encode them (``"\\"relu\\""``). Both forms are read. The names
are the fields of :class:`neurocloud.train_settings.TrainSettings` and
:class:`~neurocloud.train_settings.DataSettings` (the estimators' parameter names, or the
short spellings of ``neurocloud train``'s options: ``hidden``, ``lr``, ``epochs``, ``seed``).
Keys starting with ``sagemaker_`` belong to SageMaker and are ignored; any other unknown key,
or a value of the wrong kind, is an error that names the key, what was expected and what was
received (all problems at once, so one failed job shows them all).

>>> parse({"epochs": "50", "hidden_layer_sizes": "16,8", "activation": '"tanh"'})
{'max_epochs': 50, 'hidden_layer_sizes': (16, 8), 'activation': 'tanh'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from neurocloud.train_settings import DataSettings, TrainSettings, settings_fields

__all__ = ["HYPERPARAMETERS", "HyperparameterError", "parse"]


class HyperparameterError(ValueError):
    """One or more hyperparameters are unknown or malformed."""


#: every accepted hyperparameter name -> (the setting's field name, its Setting)
HYPERPARAMETERS = {
    key: (f.name, setting)
    for cls in (DataSettings, TrainSettings)
    for f, setting in settings_fields(cls)
    for key in (f.name, *setting.aliases)
}


def _text(value: Any) -> Any:
    """The string SageMaker sends, unwrapped if the SDK JSON-encoded it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if not isinstance(value, str):
        return value  # refused by the setting's check, which names what it expected
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def parse(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed, checked hyperparameters from SageMaker's string mapping, keyed by the settings'
    field names (what is not given is left to the training job's defaults)."""
    if not isinstance(raw, Mapping):
        raise HyperparameterError(
            f"Expected hyperparameters to be a JSON object; received {type(raw).__name__}."
        )
    values: dict[str, Any] = {}
    problems: list[str] = []
    seen: dict[str, str] = {}
    for key, value in raw.items():
        if key.startswith("sagemaker_"):
            continue
        if key not in HYPERPARAMETERS:
            problems.append(
                f"unknown hyperparameter {key!r}; expected one of "
                f"{', '.join(sorted(HYPERPARAMETERS))}"
            )
            continue
        name, setting = HYPERPARAMETERS[key]
        if name in seen:
            problems.append(f"hyperparameter {key!r} repeats {seen[name]!r}")
            continue
        seen[name] = key
        try:
            values[name] = setting.check(_text(value), key)
        except (TypeError, ValueError) as exc:
            problems.append(f"hyperparameter {key!r}: {exc}")
    if problems:
        raise HyperparameterError("Invalid hyperparameters: " + "; ".join(problems) + ".")
    return values
