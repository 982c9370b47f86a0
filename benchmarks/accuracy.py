"""Accuracy benchmark: neurocloud's estimators against scikit-learn's MLP, 5-fold CV.

Both sides get the same hidden sizes, optimizer, learning rate, batch size, L2 penalty,
epoch budget and stopping rule, and the same preprocessing: neurocloud standardises the
features (and, for regression, the targets) inside the model, so scikit-learn's MLP runs
after a ``StandardScaler`` (and inside a ``TransformedTargetRegressor`` with one for
regression). Scores are accuracy (classification) and R^2 (diabetes), mean +- standard
deviation over the folds; wall time is fit + predict over all five folds. BLAS runs on one
thread for both by default (``--threads``): the matrices are small, and on a shared machine
multi-threaded BLAS turns other processes' load into noise.

Run: python benchmarks/accuracy.py [--epochs 200] [--hidden 100] [--folds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from neurocloud import datasets
from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor

DATASETS = ["digits", "iris", "wine", "breast_cancer", "diabetes"]


def contenders(task: str, hidden: tuple[int, ...], epochs: int, seed: int) -> dict:
    shared = {
        "hidden_layer_sizes": hidden,
        "alpha": 1e-4,
        "batch_size": "auto",
        "tol": 1e-4,
        "n_iter_no_change": 10,
        "random_state": seed,
    }
    ours = {**shared, "optimizer": "adam", "learning_rate": 1e-3, "max_epochs": epochs}
    theirs = {**shared, "solver": "adam", "learning_rate_init": 1e-3, "max_iter": epochs}
    if task == "classification":
        return {
            "neurocloud": NeuralNetClassifier(**ours),
            "sklearn MLP": make_pipeline(StandardScaler(), MLPClassifier(**theirs)),
        }
    return {
        "neurocloud": NeuralNetRegressor(**ours),
        "sklearn MLP": TransformedTargetRegressor(
            make_pipeline(StandardScaler(), MLPRegressor(**theirs)), transformer=StandardScaler()
        ),
    }


def run(names: list[str], hidden: tuple[int, ...], epochs: int, folds: int, seed: int):
    rows = []
    for name in names:
        data = datasets.load(name)
        if data.task == "classification":
            cv, metric = StratifiedKFold(folds, shuffle=True, random_state=seed), "accuracy"
        else:
            cv, metric = KFold(folds, shuffle=True, random_state=seed), "r2"
        for label, estimator in contenders(data.task, hidden, epochs, seed).items():
            start = time.perf_counter()
            scores = cross_val_score(estimator, data.X, data.y, cv=cv, scoring=metric)
            rows.append((name, metric, label, scores, time.perf_counter() - start))
    return rows


def table(rows) -> str:
    lines = [
        "| data set | metric | estimator | mean +- std | wall time (s) |",
        "|---|---|---|---|---|",
    ]
    for name, metric, label, scores, seconds in rows:
        lines.append(
            f"| {name} | {metric} | {label} | {scores.mean():.4f} +- {scores.std():.4f} "
            f"| {seconds:.2f} |"
        )
    return "\n".join(lines)


def verdict(rows) -> str:
    by_set: dict[str, dict[str, tuple[np.ndarray, float]]] = {}
    for name, _, label, scores, seconds in rows:
        by_set.setdefault(name, {})[label] = (scores, seconds)
    lines, ours_mean, theirs_mean, ours_time, theirs_time = [], [], [], 0.0, 0.0
    for name, pair in by_set.items():
        (ours, t_ours), (theirs, t_theirs) = pair["neurocloud"], pair["sklearn MLP"]
        ok = ours.mean() >= theirs.mean() - theirs.std()
        lines.append(
            f"{name}: neurocloud - sklearn = {ours.mean() - theirs.mean():+.4f} "
            f"(sklearn std {theirs.std():.4f}) {'ok' if ok else 'BELOW sklearn - 1 std'}; "
            f"time ratio neurocloud/sklearn = {t_ours / t_theirs:.2f}"
        )
        ours_mean.append(ours.mean())
        theirs_mean.append(theirs.mean())
        ours_time += t_ours
        theirs_time += t_theirs
    lines.append(
        f"average score: neurocloud {np.mean(ours_mean):.4f}, sklearn {np.mean(theirs_mean):.4f}; "
        f"total time: neurocloud {ours_time:.1f} s, sklearn {theirs_time:.1f} s "
        f"(ratio {ours_time / theirs_time:.2f})"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--hidden", default="100", help="hidden sizes, e.g. 100 or 128,64")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (0: library default)")
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    warnings.simplefilter("ignore", ConvergenceWarning)
    with threadpool_limits(args.threads or None):
        rows = run(args.datasets.split(","), hidden, args.epochs, args.folds, args.seed)
    print(
        f"{args.folds}-fold CV, hidden={hidden}, adam lr=1e-3, batch min(200, n), "
        f"alpha=1e-4, up to {args.epochs} epochs, tol=1e-4 / 10 epochs, seed {args.seed}, "
        f"BLAS threads {args.threads or 'default'}\n"
    )
    print(table(rows))
    print()
    print(verdict(rows))


if __name__ == "__main__":
    main()
