"""Training progress for ``neurocloud train`` and the SageMaker training job.

:class:`TrainingProgress` is an ``nc.callbacks.Callback`` given to an estimator's
``callbacks=``. After every epoch it scores the held-out rows (the curve plotted beside the
training loss) and reports: a tqdm bar (epoch, loss, validation score, ETA) when the stream
is a terminal, one line every ``every`` epochs otherwise (logs, CI, SageMaker), or nothing.

>>> import io, numpy as np
>>> from neurocloud.sklearn import NeuralNetRegressor
>>> X = np.linspace(0, 1, 40).reshape(-1, 1)
>>> reg = NeuralNetRegressor((4,), max_epochs=4, random_state=0)
>>> out = io.StringIO()
>>> reg.callbacks = [TrainingProgress(reg, X, X[:, 0], mode="lines", every=2, stream=out)]
>>> _ = reg.fit(X, X[:, 0])
>>> first = out.getvalue().splitlines()[0]
>>> first.split(":")[0], "validation r2" in first, "s left at most" in first
('epoch 2/4', True, True)
>>> len(reg.callbacks[0].scores)
4
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import numpy as np

from neurocloud.nn.callbacks import Callback

__all__ = ["MODES", "TrainingProgress"]

MODES = ("auto", "bar", "lines", "quiet")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class TrainingProgress(Callback):
    """Scores held-out rows after every epoch and shows how training goes.

    ``mode``: "bar" (tqdm), "lines" (one line every ``every`` epochs and at the last),
    "quiet" (score only), or "auto": "bar" when ``stream`` is a terminal, else "lines".
    ``every`` defaults to a tenth of ``max_epochs``. ``scores`` holds the validation score
    per epoch (empty without held-out rows); ``metric`` names it ("accuracy" or "r2").
    """

    def __init__(
        self,
        estimator: Any,
        X_val: Any = None,
        y_val: Any = None,
        *,
        mode: str = "auto",
        every: int | None = None,
        stream: TextIO | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"Expected mode to be one of {MODES}. Received: mode={mode!r}")
        self.estimator = estimator
        self.X_val, self.y_val = X_val, y_val
        self.stream = sys.stdout if stream is None else stream
        self.mode = ("bar" if _is_terminal(self.stream) else "lines") if mode == "auto" else mode
        self.every = every
        from sklearn.base import is_classifier

        self.metric = "accuracy" if is_classifier(estimator) else "r2"
        self.scores: list[float] = []

    def on_train_begin(self, model: Any) -> None:
        self.epochs = int(self.estimator.max_epochs)
        self.every_n = self.every or max(1, self.epochs // 10)
        self.scores, self.seen, self.start = [], 0, time.perf_counter()
        self.validation = None
        if self.X_val is not None and len(self.X_val):
            try:  # the estimator's own target encoding: classes found, targets scaled
                Y = self.estimator._prepare_targets(
                    np.asarray(self.y_val),
                    None,
                    first_pass=False,
                    incremental=False,
                    classes=None,
                )[0]
            except ValueError:  # e.g. a held-out label that the training rows lack
                Y = None
            if Y is not None:
                X = np.asarray(self.X_val, dtype=model.dtype)
                self.validation = (X, np.asarray(Y, dtype=model.dtype), None)
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, unit="epoch", file=self.stream, leave=True)

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        self.seen += 1
        shown = {"loss": f"{logs['loss']:.4g}"}
        if self.validation is not None:
            score = float(self.estimator._validation_score(model, *self.validation))
            self.scores.append(score)
            shown[f"validation {self.metric}"] = f"{score:.4f}"
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)
        elif self.mode == "lines" and (
            self.seen % self.every_n == 0 or self.seen == self.epochs or model.stop_training
        ):
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.seen * (self.epochs - self.seen)
            values = ", ".join(f"{k} {v}" for k, v in shown.items())
            going = self.seen < self.epochs and not model.stop_training
            eta = f", ~{left:.1f} s left at most" if going else ""
            print(
                f"epoch {self.seen}/{self.epochs}: {values}, {elapsed:.1f} s{eta}",
                file=self.stream,
                flush=True,
            )

    def on_train_end(self, model: Any) -> None:
        if self.bar is not None:
            self.bar.close()
