"""Ray Tune over a neurocloud estimator, with ASHA stopping bad trials after any epoch.

>>> from ray import tune as ray_tune  # doctest: +SKIP
>>> search = tune(NeuralNetClassifier(), {"learning_rate": ray_tune.loguniform(1e-4, 1e-1)},
...               X, y, num_samples=8)  # doctest: +SKIP
>>> search.best_params_, search.best_score_  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocloud.nn.callbacks import Callback
from neurocloud.nn.validation import check_number

__all__ = ["SearchResult", "TuneReport", "tune"]


class TuneReport(Callback):
    """Reports the epoch's logs (``loss``; ``validation_score`` from an estimator with
    ``early_stopping=True``; ``val_loss`` with validation data) to Ray Tune after every
    epoch, so that a scheduler such as ASHA can stop the trial there.

    Use it inside a Tune trial: ``NeuralNetClassifier(callbacks=[TuneReport()])``.
    """

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        from ray import tune as ray_tune

        ray_tune.report({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})


@dataclass
class SearchResult:
    """What :func:`tune` found: the best configuration, its score, and every trial."""

    best_params_: dict[str, Any]
    best_score_: float
    best_estimator_: Any
    results_: Any  # a pandas DataFrame, one row per trial
    epochs_run_: int
    epochs_budget_: int


@dataclass(frozen=True)
class _Given:
    """A parameter value that Tune must pass on as it is: Tune reads a tuple or a list in a
    configuration as more parameters (``hidden_layer_sizes=(32,)`` as a key ``0``)."""

    value: Any

    def __repr__(self) -> str:
        return repr(self.value)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v.value if isinstance(v, _Given) else v for k, v in config.items()}


def _trial(config: dict[str, Any], estimator: Any, X: Any, y: Any, settings: dict) -> None:
    from sklearn.base import clone

    params = _plain(config)
    trial = clone(estimator).set_params(**params, **settings, callbacks=[TuneReport()])
    trial.fit(X, y)


@contextlib.contextmanager
def _tune_output(verbose: int) -> Iterator[None]:
    """Ray Tune's new output engine prints a table of the experiment's configuration at the
    start whatever the verbosity; its legacy engine (``RAY_AIR_NEW_OUTPUT=0``, read when
    the run starts) honours ``verbose=0`` and prints nothing. Set only while tuning."""
    if verbose:
        yield
        return
    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = before


def tune(
    estimator: Any,
    param_space: dict[str, Any],
    X: Any,
    y: Any,
    *,
    num_samples: int = 8,
    metric: str = "validation_score",
    mode: str = "max",
    scheduler: str | Any = "asha",
    validation_fraction: float = 0.2,
    max_concurrent: int | None = None,
    grace_period: int = 2,
    include_default: bool = True,
    num_cpus: float = 1,
    random_state: int | None = 0,
    verbose: int = 0,
) -> SearchResult:
    """Search ``param_space`` (Ray Tune search spaces or plain values for the estimator's
    parameters) with ``num_samples`` trials; refit the best on all of ``X``, ``y``.

    Each trial trains a clone of ``estimator`` for at most its ``max_epochs`` and reports
    the score on a held-out ``validation_fraction`` of the rows after every epoch;
    ``scheduler="asha"`` stops the trials that fall behind (after ``grace_period`` epochs at
    the earliest), ``None`` runs every trial to the end, and any Tune scheduler object is
    used as given. With ``include_default`` the estimator's own values of the searched
    parameters are the first trial, so the search is measured against them.
    ``verbose=0`` prints nothing; 1 and 2 print Ray Tune's progress tables.
    """
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator
    from sklearn.base import clone

    check_number(
        validation_fraction, "validation_fraction", low=0, high=1, low_open=True, high_open=True
    )
    known = estimator.get_params(deep=False)
    unknown = sorted(set(param_space) - set(known))
    if unknown:
        raise ValueError(
            f"param_space: expected parameters of {type(estimator).__name__} "
            f"({sorted(known)}); received {unknown}."
        )
    max_epochs = int(known["max_epochs"])
    if scheduler == "asha":
        scheduler = ASHAScheduler(max_t=max_epochs, grace_period=grace_period, reduction_factor=3)
    settings = {
        "early_stopping": True,  # the held-out score per epoch; only the scheduler stops
        "validation_fraction": validation_fraction,
        "n_iter_no_change": max_epochs,
        "random_state": known["random_state"] if known["random_state"] is not None else 0,
    }
    points = None
    if include_default:
        wrap = (tuple, list, dict)
        points = [
            {k: _Given(known[k]) if isinstance(known[k], wrap) else known[k] for k in param_space}
        ]
    X, y = np.asarray(X), np.asarray(y)
    storage = tempfile.mkdtemp(prefix="neurocloud-tune-")
    try:
        trainable = ray_tune.with_resources(
            ray_tune.with_parameters(_trial, estimator=estimator, X=X, y=y, settings=settings),
            {"cpu": num_cpus},
        )
        with _tune_output(verbose):
            grid = ray_tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=ray_tune.TuneConfig(
                    metric=metric,
                    mode=mode,
                    num_samples=num_samples,
                    scheduler=scheduler,
                    max_concurrent_trials=max_concurrent,
                    search_alg=BasicVariantGenerator(
                        points_to_evaluate=points, random_state=random_state
                    ),
                ),
                run_config=ray_tune.RunConfig(storage_path=storage, verbose=verbose),
            ).fit()
        errors = [r.error for r in grid if r.error is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} trial(s) failed; the first: {errors[0]!r}")
        best = grid.get_best_result(metric=metric, mode=mode, scope="all")
        table = grid.get_dataframe(filter_metric=metric, filter_mode=mode)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    best_params = _plain({k: best.config[k] for k in param_space})
    scores = best.metrics_dataframe[metric]
    best_score = float(scores.max() if mode == "max" else scores.min())
    refit = clone(estimator).set_params(**best_params).fit(X, y)
    epochs_run = int(table["training_iteration"].sum())
    return SearchResult(best_params, best_score, refit, table, epochs_run, max_epochs * len(table))
