"""Checkpoints of an estimator's ``fit``, and the resumed ``fit`` that continues one exactly.

:class:`EstimatorCheckpoint` is a ``ModelCheckpoint`` that also records what the estimator
adds to the network's training: the curves and counters (``loss_curve_``, ``n_iter_``,
``t_``, ``validation_scores_``, the best scores) and its stopping rule's progress (patience
counter, best weights); the run's history is rebuilt from the loss curve (the one log an
estimator's fit keeps). The network is saved in the space it trains
in (a regressor's standardised targets), so that nothing is rescaled on the way back: a run
resumed with ``estimator._fit(X, y, incremental=False, resume=resume_state(checkpoint))``
on the same data and settings computes bit for bit what the run it continues would have.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from neurocloud.checkpoint import Checkpoint, ModelCheckpoint
from neurocloud.nn.callbacks import History

if TYPE_CHECKING:
    from neurocloud.sklearn._base import BaseNeuralNet

__all__ = ["EstimatorCheckpoint", "adopt", "finish", "resume_state"]

_COUNTERS = ("n_iter_", "t_")
_SCORES = ("best_loss_", "best_validation_score_")


def _number(value: float | None) -> float | str | None:
    """A float for JSON, the infinities (a best score not yet set) as text."""
    if value is None:
        return None
    return float(value) if math.isfinite(value) else repr(float(value))


class EstimatorCheckpoint(ModelCheckpoint):
    """Write ``directory/last`` every ``every`` epochs, at the last epoch and whenever
    training stops (converged, early stopping, an interrupt): model, optimizer, generator,
    and the estimator's training state. ``extra()`` adds JSON-able entries of the caller's
    (a command's settings) to each checkpoint."""

    def __init__(
        self,
        estimator: BaseNeuralNet,
        directory: str | os.PathLike[str],
        every: int = 1,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(directory, every=every)
        self.estimator = estimator
        self.extra = extra

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        last = epoch + 1 >= int(self.estimator.max_epochs) or model.stop_training
        if (epoch + 1) % self.every == 0 or last:
            self.saved = self._write(model, self.directory / "last", epoch, logs)

    def state(self, model: Any, epoch: int, logs: dict[str, float]) -> dict[str, Any]:
        est = self.estimator
        fitted = {
            "loss_curve_": [float(v) for v in est.loss_curve_],
            "validation_scores_": None
            if est.validation_scores_ is None
            else [float(v) for v in est.validation_scores_],
            **{k: int(getattr(est, k)) for k in _COUNTERS},
            **{k: _number(getattr(est, k)) for k in _SCORES},
        }
        return {
            **super().state(model, epoch, logs),
            "estimator": {
                "fitted": fitted,
                "monitor": est._monitor.state(),
                "stop_reason": model.stop_reason,
            },
            **(self.extra() if self.extra is not None else {}),
        }


def resume_state(checkpoint: Checkpoint) -> dict[str, Any]:
    """What ``_fit(..., resume=)`` takes, from an :class:`EstimatorCheckpoint`'s checkpoint."""
    state = checkpoint.state or {}
    if "estimator" not in state:
        raise ValueError(
            f"{checkpoint.path / 'model.json'}: a network's checkpoint, not an estimator "
            "run's (written by neurocloud train --checkpoint); it cannot resume one."
        )
    return {
        "model": checkpoint.model,
        "optimizer": checkpoint.optimizer,
        "epoch": checkpoint.initial_epoch,
        **state["estimator"],
    }


def adopt(estimator: BaseNeuralNet, resume: dict[str, Any]) -> None:
    """Take the checkpoint's network, optimizer, curves and counters as the current run's."""
    model = resume["model"]
    if model.get_config() != estimator.model_.get_config():
        raise ValueError(
            "The checkpoint's network differs from the one these settings and data build "
            "(layers, sizes or standardisation): resume with the run's own settings and data."
        )
    estimator.model_, estimator._optimizer = model, resume["optimizer"]
    for key, value in resume["fitted"].items():
        setattr(estimator, key, float(value) if isinstance(value, str) else value)


def finish(model: Any, resume: dict[str, Any], history: History | None, monitor: Any) -> None:
    """Give ``model`` the whole run's history: the checkpoint's epochs (rebuilt from its
    loss curve, the only log an estimator's fit keeps) then ``history``'s, if it trained;
    if it did not (the run had stopped), end the stopping rule (best weights back)."""
    if history is None:
        monitor.on_train_end(model)
    done = resume["fitted"]["loss_curve_"][: resume["epoch"]]
    whole = History()
    whole.epoch = list(range(len(done)))
    whole.history = {"loss": list(done)} if done else {}
    whole.stop_reason = resume["stop_reason"]
    if history is not None:
        whole.epoch += history.epoch
        for key, values in history.history.items():
            whole.history.setdefault(key, []).extend(values)
        whole.stop_reason = history.stop_reason
    model.history = whole
