"""A training job: fit a network on a data set, measure it on held-out rows, save it.

The reusable core of ``neurocloud train`` (and of any other front end, such as a training
container): :func:`train_job` takes arrays and settings and returns the fitted estimator,
its validation metrics and its training history; :func:`save_outputs` writes the artifact
(with the metrics and data set in ``card.json``) and a loss-curve PNG beside it. With a
``checkpoint`` directory the run can be killed or interrupted and resumed exactly (see
:mod:`neurocloud.train_resume`).

>>> from neurocloud import datasets
>>> from neurocloud.train_and_save import train_job
>>> iris = datasets.load("iris")
>>> result = train_job(iris.X, iris.y, iris.task, hidden=(16,), epochs=50, lr=0.01)
>>> sorted(result.metrics)[:2], result.model.classes_.tolist()
(['accuracy', 'balanced_accuracy'], [0, 1, 2])
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from neurocloud.nn.callbacks import Callback
from neurocloud.nn.validation import check_choice
from neurocloud.train_resume import (
    StopOnRequest,
    TrainingInterrupted,
    check_resumable,
    data_fingerprint,
    first_ctrl_c_stops,
    read_run,
)
from neurocloud.train_settings import TASKS, TrainSettings, aliases

__all__ = [
    "TrainResult",
    "TrainingInterrupted",
    "plot_loss_curve",
    "read_run",
    "save_outputs",
    "train_job",
]
_CURVE_LABELS = {
    "validation_accuracy": "validation accuracy",
    "validation_r2": "validation R²",
    "validation_score": "early-stopping score",
}


class TrainResult(NamedTuple):
    """What :func:`train_job` returns: ``model, metrics, history = train_job(...)``."""

    model: Any  # a fitted NeuralNetClassifier or NeuralNetRegressor
    metrics: dict[str, float]
    history: dict[str, list[float]]


def _split(y: np.ndarray, task: str, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    stratify = None
    if task == "classification":
        counts = np.unique(y, return_counts=True)[1]
        n_val = math.ceil(fraction * len(y))
        if counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts):
            stratify = y
    return train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)


def _metrics(model, X, y, task: str) -> dict[str, float]:
    from sklearn import metrics

    if task == "classification":
        proba = model.predict_proba(X)
        pred = model.classes_[proba.argmax(axis=1)]
        return {
            "accuracy": float(metrics.accuracy_score(y, pred)),
            "balanced_accuracy": float(metrics.balanced_accuracy_score(y, pred)),
            "log_loss": float(metrics.log_loss(y, proba, labels=model.classes_)),
        }
    pred = model.predict(X)
    return {
        "r2": float(metrics.r2_score(y, pred)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
        "mae": float(metrics.mean_absolute_error(y, pred)),
    }


def _settings(settings: TrainSettings | None, changes: dict[str, Any]) -> TrainSettings:
    names = aliases(TrainSettings)
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise ValueError(
            f"Unknown training settings {unknown}; expected some of {', '.join(sorted(names))}."
        )
    return dataclasses.replace(
        settings or TrainSettings(), **{names[k]: v for k, v in changes.items()}
    )


def train_job(
    X: Any,
    y: Any,
    task: str,
    settings: TrainSettings | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    record: dict[str, Any] | None = None,
    interruptible: bool = False,
    verbose: int = 0,
    progress: str = "quiet",
    stream: Any = None,
    **changes: Any,
) -> TrainResult:
    """Fit on a ``1 - validation_fraction`` share of the rows, measure on the rest.

    ``settings`` (default ``TrainSettings()``) with ``changes`` applied (by field name or
    alias: ``hidden=(16,)``, ``epochs=50``) say how to train. ``task`` is "classification"
    (metrics: accuracy, balanced_accuracy, log_loss) or "regression" (r2, rmse, mae).
    With ``validation_fraction=0`` every row trains and the metrics are measured on the
    training rows (their keys start with ``train_``). ``metrics`` also holds the row counts,
    epochs run and training time; ``history`` holds ``loss`` per epoch, the held-out rows'
    score per epoch (``validation_accuracy`` or ``validation_r2``, when
    ``validation_fraction > 0``) and, with ``early_stopping``, ``validation_score`` (the
    estimator's own held-out share). ``progress`` is a :data:`neurocloud.progress.MODES`
    name: how training reports itself on ``stream`` (default stdout); the model's
    ``stop_reason_`` says why training ended.

    ``checkpoint`` (a directory) receives ``last`` every ``checkpoint_every`` epochs and when
    training ends; ``record`` (JSON-able: a command's own options) is kept in it.
    ``resume=True`` continues the run checkpointed there, bit for bit, on the same data and
    settings. ``interruptible`` (in the main thread): the first Ctrl-C ends training after
    the current epoch, writes the checkpoint, and raises :class:`TrainingInterrupted`.
    """
    from neurocloud.checkpoint import load_checkpoint
    from neurocloud.progress import TrainingProgress
    from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor
    from neurocloud.sklearn._checkpoint import EstimatorCheckpoint, resume_state

    settings = _settings(settings, changes)
    task = check_choice(task, "task", TASKS)
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must match.")
    if checkpoint is not None and settings.optimizer == "lbfgs":
        raise ValueError(
            "Checkpoints need a stochastic optimizer (adam, sgd, ...): lbfgs cannot resume "
            "exactly. Received: optimizer='lbfgs'"
        )
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint directory to resume from.")
    run = {
        "task": task,
        "settings": settings.to_dict(),
        "data_sha256": data_fingerprint(X, y),
        **(record or {}),
    }
    cls = NeuralNetClassifier if task == "classification" else NeuralNetRegressor
    estimator = cls(**settings.estimator_params(), verbose=verbose)
    fraction = settings.validation_fraction
    if fraction > 0:
        train, held_out = _split(y, task, fraction, settings.random_state)
    else:
        train = held_out = np.arange(len(y))
    watched = (X[held_out], y[held_out]) if fraction > 0 else (None, None)
    continued, done = None, []
    if resume:
        saved = load_checkpoint(checkpoint)
        check_resumable(saved.state.get("run") if saved.state else None, run, saved.path)
        continued, done = resume_state(saved), saved.state.get("progress", [])
    reporter = TrainingProgress(
        estimator,
        *watched,
        mode=progress,
        stream=stream,
        done=done,
        epochs_done=None if continued is None else continued["epoch"],
    )
    hooks: list[Callback] = [reporter]
    stop = StopOnRequest() if interruptible else None
    if stop is not None:
        hooks.append(stop)
    if checkpoint is not None:

        def kept() -> dict[str, Any]:  # the run's own entries in each checkpoint
            return {"run": run, "progress": list(reporter.scores)}

        hooks.append(EstimatorCheckpoint(estimator, checkpoint, checkpoint_every, kept))
    estimator.set_params(callbacks=hooks)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), first_ctrl_c_stops(stop):
            from sklearn.exceptions import ConvergenceWarning

            # A fixed epoch budget is the user's choice here, not a fault to warn about.
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator._fit(X[train], y[train], incremental=False, resume=continued)
    finally:
        estimator.set_params(callbacks=None)  # the model keeps no reference to the stream
    if stop is not None and stop.at is not None:
        raise TrainingInterrupted(stop.at, None if checkpoint is None else Path(checkpoint))
    seconds = time.perf_counter() - start
    scores = _metrics(estimator, X[held_out], y[held_out], task)
    if fraction == 0:
        scores = {f"train_{k}": v for k, v in scores.items()}
    metrics = {
        **scores,
        "n_train": len(train),
        "n_validation": len(held_out) if fraction > 0 else 0,
        "epochs": int(estimator.n_iter_),
        "train_seconds": round(seconds, 3),
    }
    history = {"loss": list(estimator.loss_curve_)}
    if reporter.scores:
        history[f"validation_{reporter.metric}"] = reporter.scores
    if estimator.validation_scores_ is not None:
        history["validation_score"] = list(estimator.validation_scores_)
    return TrainResult(estimator, metrics, history)


def plot_loss_curve(
    history: dict[str, list[float]], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Write the training loss per epoch (log scale) and, on a second axis, each validation
    curve in ``history`` (keys starting with ``validation_``) to a PNG; return the path."""
    from neurocloud.extras import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        loss = history["loss"]
        lines = ax.plot(range(1, len(loss) + 1), loss, label="training loss")
        if min(loss) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        curves = {k: v for k, v in history.items() if k.startswith("validation_") and v}
        if curves:
            other = ax.twinx()
            for (key, scores), color in zip(curves.items(), ("tab:orange", "tab:green")):
                label = _CURVE_LABELS.get(key, key.replace("_", " "))
                lines += other.plot(range(1, len(scores) + 1), scores, color=color, label=label)
            other.set_ylabel("validation score")
        # one legend for both axes, under the plot, so that it never hides a curve
        fig.legend(
            lines,
            [line.get_label() for line in lines],
            loc="lower center",
            ncol=len(lines),
            frameon=False,
        )
        ax.set_title(title or "Training loss")
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        fig.savefig(path)
    finally:
        plt.close(fig)
    return Path(path)


def save_outputs(
    result: TrainResult,
    path: str | os.PathLike[str],
    *,
    dataset: str,
    feature_names: list[str] | None = None,
    plot_path: str | os.PathLike[str] | None = None,
    card: dict[str, Any] | None = None,
) -> tuple[Path, Path | None]:
    """Save the model to the directory ``path`` and its training curves beside it.

    The artifact directory holds only the three artifact files; the PNG goes to
    ``plot_path`` (default: ``<path>-loss.png``). The card records the data set, the
    task, the metrics, the training settings and the per-epoch curves. Without matplotlib
    no plot is written (the second value is then None).
    """
    import neurocloud as nc

    model = result.model
    task = "classification" if hasattr(model, "classes_") else "regression"
    settings = {
        k: v
        for k, v in model.get_params().items()
        if k
        in (
            "hidden_layer_sizes",
            "activation",
            "optimizer",
            "learning_rate",
            "batch_size",
            "max_epochs",
            "alpha",
            "standardize",
            "random_state",
        )
    }
    entries = {
        "dataset": dataset,
        "task": task,
        "metrics": result.metrics,
        "training": {
            **settings,
            "hidden_layer_sizes": list(model.hidden_layer_sizes),
            "stop_reason": getattr(model, "stop_reason_", ""),
        },
        # per-epoch curves: the model page draws them
        "curves": {key: list(values) for key, values in result.history.items()},
        **(card or {}),
    }
    saved = nc.save(model, path, feature_names=feature_names, card=entries)
    target = Path(plot_path) if plot_path else saved.parent / f"{saved.name}-loss.png"
    try:
        plot = plot_loss_curve(result.history, target, title=f"{dataset}: training and validation")
    except ImportError:
        plot = None
    return saved, plot
