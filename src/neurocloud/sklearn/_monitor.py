"""The training callback of the estimators: curves, and scikit-learn's MLP stopping rule.

After each epoch it appends the training loss to ``loss_curve_`` (and, with early stopping,
the held-out score to ``validation_scores_``), and stops training once the monitored value
has not improved by ``tol`` for more than ``n_iter_no_change`` epochs. With early stopping
it keeps the weights of the best-scoring epoch and restores them at the end.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import numpy as np

from neurocloud.nn.callbacks import Callback

if TYPE_CHECKING:
    from neurocloud.sklearn._base import BaseNeuralNet

__all__ = ["Monitor"]


class Monitor(Callback):
    """Records curves on the estimator and stops training as scikit-learn's MLP does."""

    def __init__(self, estimator: BaseNeuralNet, n_samples: int, validation, state=None) -> None:
        self.estimator = estimator
        self.n_samples = n_samples
        self.validation = validation
        self.epochs = 0
        self.wait = 0
        self.stopped = False
        self.best_weights: np.ndarray | None = None
        if state is not None:  # a resumed run's, from :meth:`state`
            self.restore(state)

    def on_epoch_end(self, model, epoch, logs):
        est = self.estimator
        loss = float(logs["loss"])
        self.epochs += 1
        est.n_iter_ += 1
        est.t_ += self.n_samples
        est.loss_curve_.append(loss)
        line = f"Epoch {est.n_iter_}, loss = {loss:.8f}"
        if self.validation is None:
            improved = loss <= est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, loss)
        else:
            score = est._validation_score(model, *self.validation)
            est.validation_scores_.append(score)
            logs["validation_score"] = score  # for the callbacks that follow (TuneReport)
            line += f", validation score = {score:.6f}"
            improved = score >= est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_weights = model.flat_parameters().copy()
        self.wait = 0 if improved else self.wait + 1
        if est.verbose:
            print(line)
        if self.wait > est.n_iter_no_change:
            self.stopped = True
            model.stop_training = True
            if self.validation is None:
                model.stop_reason = (
                    f"converged: training loss improved by less than tol={est.tol} for "
                    f"{est.n_iter_no_change} epochs"
                )
            else:
                model.stop_reason = (
                    f"early stopping: validation score improved by less than tol={est.tol} "
                    f"for {est.n_iter_no_change} epochs (best {est.best_validation_score_:.4g})"
                )

    def state(self) -> dict[str, Any]:
        """The stopping rule's progress, to resume a run exactly (the best weights as
        base64 of their bytes: exact, and a third the size of decimal text)."""
        best = self.best_weights
        return {
            "epochs": self.epochs,
            "wait": self.wait,
            "stopped": self.stopped,
            "best_weights": None
            if best is None
            else {"dtype": best.dtype.str, "base64": base64.b64encode(best.tobytes()).decode()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`'s output."""
        self.epochs, self.wait = int(state["epochs"]), int(state["wait"])
        self.stopped = bool(state["stopped"])
        best = state["best_weights"]
        if best is not None:
            raw = base64.b64decode(best["base64"])
            self.best_weights = np.frombuffer(raw, dtype=np.dtype(best["dtype"])).copy()

    def on_train_end(self, model):
        if self.best_weights is not None:
            model.flat_parameters()[...] = self.best_weights
