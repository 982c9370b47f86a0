"""Training callbacks: ``History``, ``EarlyStopping`` and a progress bar.

A callback sees the model at the start and end of training and after every epoch, with
the epoch's logs (``loss`` and, with validation data, ``val_loss``). Setting
``model.stop_training = True`` ends training after the current epoch.

>>> import neurocloud as nc
>>> nc.callbacks.EarlyStopping(patience=3).patience
3
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from neurocloud.nn.validation import check_number

__all__ = ["Callback", "EarlyStopping", "History", "ProgressBar"]


class Callback:
    """Base class; override the hooks you need.

    While training, ``self.trainer`` is the :class:`~neurocloud.nn.training.Trainer`
    running it (its optimizer, settings). A callback that stops training sets
    ``model.stop_training = True`` (as in Keras: the model is what every hook receives) and
    may say why in ``self.stop_reason``, which becomes ``History.stop_reason``.
    """

    trainer: Any = None
    stop_reason: str | None = None

    def on_train_begin(self, model: Any) -> None: ...

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None: ...

    def on_train_end(self, model: Any) -> None: ...


class History(Callback):
    """Per-epoch logs: ``history.history["loss"]``, ``["val_loss"]``; ``epoch`` indices."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        #: why training ended, set by ``fit``: "reached max epochs (N)", "converged: ...",
        #: "early stopping: ...", "loss became nan at epoch E", "interrupted at epoch E"
        self.stop_reason: str = ""

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def summary(self) -> dict[str, Any]:
        """Epochs run and the first, last and best value of each log (for model cards)."""
        out: dict[str, Any] = {"epochs": len(self.epoch)}
        for key, values in self.history.items():
            out[key] = {"first": values[0], "last": values[-1], "best": min(values)}
        return out

    def __repr__(self) -> str:
        return (
            f"History(epochs={len(self.epoch)}, keys={sorted(self.history)}, "
            f"stop_reason={self.stop_reason!r})"
        )


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` (the default) the model ends with the weights of its
    best epoch. ``monitor`` defaults to ``val_loss``, falling back to ``loss`` when no
    validation data is given.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        self.monitor = monitor
        self.patience = check_number(patience, "patience", low=0, integer=True)
        self.min_delta = check_number(min_delta, "min_delta", low=0)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, model: Any) -> None:
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.stop_reason = None
        self._best_weights: np.ndarray | None = None

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs and self.monitor != "val_loss":
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which training does not log; "
                f"expected one of {sorted(logs)}."
            )
        key = self.monitor if self.monitor in logs else "loss"
        value = logs[key]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = model.flat_parameters().copy()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.stopped_epoch = epoch
                self.stop_reason = (
                    f"early stopping: {key} did not improve by more than "
                    f"min_delta={self.min_delta} for {self.patience} epochs"
                )
                model.stop_training = True

    def on_train_end(self, model: Any) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            model.flat_parameters()[...] = self._best_weights
            if self.stop_reason:
                self.stop_reason += f"; restored best weights from epoch {self.best_epoch + 1}"


class ProgressBar(Callback):
    """A tqdm bar over epochs on stderr; silent when stderr is not a terminal."""

    def __init__(self, epochs: int, force: bool = False, initial: int = 0) -> None:
        self.epochs = epochs
        self.force = force
        self.initial = initial

    def on_train_begin(self, model: Any) -> None:
        from tqdm.auto import tqdm

        disable = False if self.force else (None if sys.stderr.isatty() else True)
        self.bar = tqdm(
            total=self.epochs, initial=self.initial, unit="epoch", disable=disable, file=sys.stderr
        )

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, model: Any) -> None:
        self.bar.close()
