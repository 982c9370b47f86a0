"""What the playground's controls set, checked field by field: a bad value is a
``SettingError`` naming the field, so the page shows the message beside that control.

>>> ARTICLE.layers, ARTICLE.optimizer, ARTICLE.lr, ARTICLE.epochs
((2, 2), 'sgd', 0.01, 1000)
>>> Settings.from_json({"lr": "fast"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
neurocloud...SettingError: lr: Expected lr to be a number > 0 and <= 10. Received: lr='fast'
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from neurocloud.nn import activations, initializers, losses
from neurocloud.nn.validation import check_number
from neurocloud.playground.data import BUILT_IN, TOYS

__all__ = ["ARTICLE", "FITS", "MAX_LAYERS", "MAX_UNITS", "SettingError", "Settings"]

MAX_LAYERS = 6
MAX_UNITS = 64
MAX_EPOCHS = 20000
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")  # L-BFGS has no single step to show


class SettingError(ValueError):
    """A control holds a bad value; ``field`` is the control's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Settings:
    data: str = "seed"
    target: str = ""
    points: int = 200
    noise: float = 0.1
    validation: float = 0.0
    standardize: bool = False
    layers: tuple[int, ...] = (2, 2)
    activations: tuple[str, ...] = ("sigmoid", "sigmoid")
    initializer: str = "standard_normal"
    loss: str = "auto"
    optimizer: str = "sgd"
    lr: float = 0.01
    batch_size: int = 0  # 0: the whole training set in one batch
    epochs: int = 1000
    l2: float = 0.0
    dropout: float = 0.0
    seed: int = 0
    csv: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Settings:
        """Settings from the page's JSON; unknown keys and bad values name the field."""
        if not isinstance(body, dict):
            raise SettingError(
                "settings", f"expected a JSON object; received {type(body).__name__}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(body) - names)
        if unknown:
            raise SettingError(
                unknown[0], f"expected one of {sorted(names)}; received {unknown[0]!r}"
            )
        merged = {**dataclasses.asdict(cls()), **body}
        layers = _int_list(merged["layers"], "layers")
        acts = merged["activations"]
        if isinstance(acts, str):
            acts = [a.strip() for a in acts.split(",") if a.strip()]
        if not isinstance(acts, (list, tuple)) or not all(isinstance(a, str) for a in acts):
            raise SettingError("activations", f"expected a list of names; received {acts!r}")
        if len(acts) == 1 and len(layers) > 1:
            acts = list(acts) * len(layers)
        if len(acts) != len(layers):
            raise SettingError(
                "activations",
                f"expected one per hidden layer ({len(layers)}); received {len(acts)}",
            )
        for a in acts:
            _choice(a, activations.available(), "activations")
        settings = cls(
            data=_choice(merged["data"], (*BUILT_IN, *TOYS, "upload"), "data"),
            target=str(merged["target"] or ""),
            points=_integer(merged["points"], "points", 10, 2000),
            noise=_number(merged["noise"], "noise", 0.0, 2.0),
            validation=_number(merged["validation"], "validation", 0.0, 0.5),
            standardize=_flag(merged["standardize"], "standardize"),
            layers=tuple(layers),
            activations=tuple(acts),
            initializer=_choice(merged["initializer"], initializers.available(), "initializer"),
            loss=_choice(merged["loss"], ("auto", *losses.available()), "loss"),
            optimizer=_choice(merged["optimizer"], OPTIMIZERS, "optimizer"),
            lr=_number(merged["lr"], "lr", 0.0, 10.0, open_low=True),
            batch_size=_integer(merged["batch_size"], "batch_size", 0, 100000),
            epochs=_integer(merged["epochs"], "epochs", 1, MAX_EPOCHS),
            l2=_number(merged["l2"], "l2", 0.0, 10.0),
            dropout=_number(merged["dropout"], "dropout", 0.0, 0.9),
            seed=_integer(merged["seed"], "seed", 0, 2**31 - 1),
            csv=str(merged["csv"] or ""),
        )
        if settings.data == "upload" and not settings.csv:
            raise SettingError("csv", "expected a CSV file for data 'upload'; received none")
        return settings

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("csv")
        return out


def _choice(value: Any, valid: Any, name: str) -> str:
    if value not in tuple(valid):
        raise SettingError(name, f"expected one of {', '.join(valid)}; received {value!r}")
    return value


def _number(
    value: Any, name: str, low: float, high: float, open_low: bool = False, integer: bool = False
) -> Any:
    """``value`` (a number, or text that reads as one) through :func:`check_number`; a
    :class:`SettingError` naming the field otherwise."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return check_number(value, name, low=low, high=high, low_open=open_low, integer=integer)
    except ValueError as exc:
        raise SettingError(name, str(exc)) from None


def _integer(value: Any, name: str, low: int, high: int) -> int:
    return _number(value, name, low, high, integer=True)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise SettingError(name, f"expected true or false; received {value!r}")
    return value


def _int_list(value: Any, name: str) -> list[int]:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v] if value.strip() else []
    if not isinstance(value, (list, tuple)):
        raise SettingError(name, f"expected units per hidden layer, e.g. 2,2; received {value!r}")
    if len(value) > MAX_LAYERS:
        raise SettingError(
            name, f"expected at most {MAX_LAYERS} hidden layers; received {len(value)}"
        )
    units = [_integer(v, name, 1, MAX_UNITS) for v in value]
    return units


#: the article's setting (section 4.1): 1-2-2-1 sigmoid network, MSE, GD lr 0.01, 1000 epochs
ARTICLE = Settings()
#: one click away: the same network and data with Adam at lr 0.05 for 2000 epochs, which fits
FITS = dataclasses.replace(ARTICLE, optimizer="adam", lr=0.05, epochs=2000)
