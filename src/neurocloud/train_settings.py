"""The settings of a training run, declared once: ``neurocloud train``'s options, the SageMaker
training job's hyperparameters and :func:`neurocloud.train_and_save.train_job`'s keywords all
come from the fields below.

Each field is named like the estimators' parameter it sets (``hidden_layer_sizes``,
``learning_rate``, ``max_epochs``, ``random_state``); its metadata holds the older short
spellings that still work (``--hidden``, ``--lr``, ``--epochs``, ``--seed``), a help line and
the check that turns a string (a command-line word, a SageMaker hyperparameter) or a Python
value into the setting, with an error that says what was expected and what was received.

>>> s = TrainSettings.from_mapping({"hidden": "16,8", "lr": "0.01", "epochs": 50})
>>> s.hidden_layer_sizes, s.learning_rate, s.max_epochs
((16, 8), 0.01, 50)
>>> TrainSettings(max_epochs=0)
Traceback (most recent call last):
...
ValueError: Expected max_epochs to be an integer >= 1. Received: max_epochs=0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neurocloud.nn import activations, optim
from neurocloud.nn.validation import check_choice, check_number

__all__ = ["TASKS", "DataSettings", "Setting", "TrainSettings", "aliases", "settings_fields"]

TASKS = ("classification", "regression")


def _scalar(value: Any) -> Any:
    """A string as the number it spells (left as it is when it spells none), so that the
    number checks apply to command-line words and SageMaker's strings alike."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    return value


def _integer(low: int) -> Callable[[Any, str], int]:
    return lambda value, name: check_number(_scalar(value), name, low=low, integer=True)


def _real(
    low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[Any, str], float]:
    def check(value: Any, name: str) -> float:
        return check_number(
            _scalar(value), name, low=low, high=high, low_open=low_open, high_open=high_open
        )

    return check


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"Expected {name} to be true or false. Received: {name}={value!r}")


def _choice(choices: Callable[[], list[str]]) -> Callable[[Any, str], str]:
    return lambda value, name: check_choice(value, name, choices())


def _sizes(value: Any, name: str) -> tuple[int, ...]:
    parts: Any = value
    if isinstance(value, str):
        parts = [p for p in value.strip().strip("()[]").split(",") if p.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value]
    try:
        sizes = tuple(check_number(_scalar(p), name, low=1, integer=True) for p in parts)
    except (TypeError, ValueError):
        sizes = ()
    if not sizes:
        raise ValueError(
            f"Expected {name} to be positive integers separated by commas, e.g. 128,64. "
            f"Received: {name}={value!r}"
        )
    return sizes


def _batch_size(value: Any, name: str) -> int | str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return check_number(_scalar(value), name, low=1, integer=True)
    except ValueError:
        raise ValueError(
            f"Expected {name} to be a positive integer or 'auto'. Received: {name}={value!r}"
        ) from None


def _column(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Expected {name} to be a column name. Received: {name}={value!r}")
    return value.strip()


def _task(value: Any, name: str) -> str | None:
    return None if value is None else check_choice(value, name, list(TASKS))


@dataclass(frozen=True)
class Setting:
    """A field's metadata: its other spellings, a help line, its check, and for the
    command line the choices to list (``None``: free text)."""

    check: Callable[[Any, str], Any]
    help: str
    aliases: tuple[str, ...] = ()
    choices: Callable[[], list[str]] | None = None


def _field(default: Any, check, help: str, *aliases: str, choices=None) -> Any:
    return field(
        default=default,
        metadata={"setting": Setting(check, help, tuple(aliases), choices)},
    )


class _Checked:
    """Shared by the settings dataclasses: each value is checked (and converted from a
    string) on construction, so an instance always holds valid settings."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, f.metadata["setting"].check(value, f.name))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]):
        """An instance from ``values`` keyed by field names or their aliases; an unknown or
        repeated key, or a bad value, is a ValueError naming it."""
        names = aliases(cls)
        given: dict[str, Any] = {}
        for key, value in values.items():
            if key not in names:
                raise ValueError(
                    f"Unknown setting {key!r}; expected one of {', '.join(sorted(names))}."
                )
            name = names[key]
            if name in given:
                raise ValueError(f"Setting {key!r} repeats {name!r}: give it once.")
            given[name] = value
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (tuples as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class TrainSettings(_Checked):
    """How to train: the estimator's parameters (same names) and the held-out share."""

    hidden_layer_sizes: tuple[int, ...] = _field(
        (128, 64), _sizes, "Hidden layer sizes, comma-separated.", "hidden"
    )
    activation: str = _field(
        "relu", _choice(activations.available), "Hidden layers' activation.",
        choices=activations.available,
    )  # fmt: skip
    optimizer: str = _field("adam", _choice(optim.available), "Optimizer.", choices=optim.available)
    learning_rate: float = _field(1e-3, _real(0.0, low_open=True), "Learning rate.", "lr")
    batch_size: int | str = _field("auto", _batch_size, "Rows per step; auto = min(200, rows).")
    max_epochs: int = _field(200, _integer(1), "Passes over the data.", "epochs")
    alpha: float = _field(1e-4, _real(0.0), "L2 penalty.")
    dropout: float = _field(
        0.0, _real(0.0, 1.0, high_open=True), "Dropout rate after each hidden layer."
    )
    early_stopping: bool = _field(
        False, _boolean, "Stop when a held-out 10% of the training rows stops improving."
    )
    n_iter_no_change: int = _field(
        10, _integer(1), "Epochs without an improvement of tol before stopping."
    )
    tol: float = _field(1e-4, _real(0.0), "Improvement that counts for n_iter_no_change.")
    standardize: bool = _field(True, _boolean, "Standardise the features (and targets).")
    random_state: int = _field(0, _integer(0), "Random seed.", "seed")
    dtype: str = _field(
        "float32", _choice(lambda: ["float32", "float64"]), "Precision.",
        choices=lambda: ["float32", "float64"],
    )  # fmt: skip
    validation_fraction: float = _field(
        0.2,
        _real(0.0, 1.0, high_open=True),
        "Share of rows held out for the reported metrics (0: measure on training).",
    )

    def estimator_params(self) -> dict[str, Any]:
        """The estimator's parameters these settings set (all but ``validation_fraction``,
        which is the held-out share of the run, not the estimator's early-stopping share)."""
        params = dataclasses.asdict(self)
        del params["validation_fraction"]
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        return params


@dataclass(frozen=True)
class DataSettings(_Checked):
    """Which column of a CSV file is the target, and which task it is."""

    target: str | None = _field(None, _column, "CSV only: the label column (default: the last).")
    task: str | None = _field(
        None,
        _task,
        "CSV only: override the task guessed from the target column.",
        choices=lambda: list(TASKS),
    )


def settings_fields(cls: type) -> list[tuple[dataclasses.Field, Setting]]:
    """Each field of a settings dataclass with its :class:`Setting`."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(cls)]


def aliases(cls: type) -> dict[str, str]:
    """Every accepted spelling (field names and their aliases) -> the field name."""
    names = {}
    for f, setting in settings_fields(cls):
        names[f.name] = f.name
        names.update(dict.fromkeys(setting.aliases, f.name))
    return names
