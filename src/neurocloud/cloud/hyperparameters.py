"""SageMaker hyperparameters (every value a string) parsed and checked against one registry.

SageMaker writes ``/opt/ml/input/config/hyperparameters.json`` with string values; the SDK's
framework estimators also JSON-encode them (``"\\"relu\\""``). Both forms are read. Keys starting
with ``sagemaker_`` belong to SageMaker and are ignored; any other unknown key, or a value of
the wrong kind, is an error that names the key, what was expected and what was received (all
problems at once, so one failed job shows them all).

>>> parse({"epochs": "50", "hidden_layer_sizes": "16,8", "activation": '"tanh"'})
{'epochs': 50, 'hidden': (16, 8), 'activation': 'tanh'}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from neurocloud.nn import activations, optim

__all__ = ["ALIASES", "HYPERPARAMETERS", "HyperparameterError", "parse"]


class HyperparameterError(ValueError):
    """One or more hyperparameters are unknown or malformed."""


@dataclass(frozen=True)
class Hyperparameter:
    parse: Callable[[str], Any]
    expected: str
    help: str


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise ValueError
        return value

    return parse


def _real(low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value >= high) or not math.isfinite(value):
            raise ValueError
        return value

    return parse


def _choice(*names: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in names:
            raise ValueError
        return text.strip().lower()

    return parse


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError
    return value in ("true", "1", "yes")


def _sizes(text: str) -> tuple[int, ...]:
    text = text.strip().strip("()[]")
    sizes = tuple(int(part) for part in text.split(",") if part.strip())
    if not sizes or any(size < 1 for size in sizes):
        raise ValueError
    return sizes


def _batch_size(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else _integer(1)(text)


def _name(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text.strip()


#: the options of ``neurocloud train`` (same names), read from SageMaker's strings
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "target": Hyperparameter(_name, "a column name", "the label column (default: the last)"),
    "task": Hyperparameter(
        _choice("regression", "classification"),
        "regression or classification",
        "default: classification for text or few integer labels, else regression",
    ),
    "hidden": Hyperparameter(
        _sizes, "comma-separated positive integers, e.g. 64,32", "hidden layer sizes"
    ),
    "activation": Hyperparameter(
        _choice(*activations.available()),
        f"one of {', '.join(activations.available())}",
        "hidden layers' activation",
    ),
    "optimizer": Hyperparameter(
        _choice(*optim.available()), f"one of {', '.join(optim.available())}", "optimizer"
    ),
    "lr": Hyperparameter(_real(0.0, low_open=True), "a number > 0", "learning rate"),
    "batch_size": Hyperparameter(_batch_size, "a positive integer or auto", "rows per step"),
    "epochs": Hyperparameter(_integer(1), "a positive integer", "passes over the data"),
    "alpha": Hyperparameter(_real(0.0), "a number >= 0", "L2 penalty"),
    "early_stopping": Hyperparameter(_boolean, "true or false", "stop on a held-out score"),
    "validation_fraction": Hyperparameter(
        _real(0.0, 1.0), "a number in [0, 1)", "rows held out when there is no validation channel"
    ),
    "standardize": Hyperparameter(_boolean, "true or false", "standardise the features"),
    "seed": Hyperparameter(_integer(0), "an integer >= 0", "random seed"),
    "dtype": Hyperparameter(_choice("float32", "float64"), "float32 or float64", "precision"),
}
#: scikit-learn's names for the same settings
ALIASES = {
    "hidden_layer_sizes": "hidden",
    "max_epochs": "epochs",
    "learning_rate": "lr",
    "random_state": "seed",
}


def _text(value: Any) -> str:
    """The string SageMaker sends, unwrapped if the SDK JSON-encoded it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if not isinstance(value, str):
        raise TypeError(type(value).__name__)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def parse(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed, checked hyperparameters from SageMaker's string mapping (aliases resolved;
    what is not given is left to the training job's defaults)."""
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
        name = ALIASES.get(key, key)
        if name not in HYPERPARAMETERS:
            problems.append(
                f"unknown hyperparameter {key!r}; expected one of "
                f"{', '.join(sorted([*HYPERPARAMETERS, *ALIASES]))}"
            )
            continue
        if name in seen:
            problems.append(f"hyperparameter {key!r} repeats {seen[name]!r}")
            continue
        seen[name] = key
        spec = HYPERPARAMETERS[name]
        try:
            values[name] = spec.parse(_text(value))
        except (TypeError, ValueError):
            problems.append(f"hyperparameter {key!r}: expected {spec.expected}; received {value!r}")
    if problems:
        raise HyperparameterError("Invalid hyperparameters: " + "; ".join(problems) + ".")
    return values
