"""``neurocloud train``: train a network on a built-in data set or a CSV file and save it.

The work itself is :mod:`neurocloud.train_and_save`; this module only reads the options,
loads the data and prints what happened.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from neurocloud.datasets import available as built_in_data_sets


def _hidden(ctx, param, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(
            f"expected positive integers separated by commas, e.g. 128,64; received {value!r}"
        )
    return sizes


def _batch_size(ctx, param, value: str) -> int | str:
    if value == "auto":
        return value
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise click.BadParameter(f"expected a positive integer or 'auto'; received {value!r}")


def _load(data: str, target: str | None, task: str | None):
    from neurocloud import datasets

    built_in = built_in_data_sets()
    if data.lower() in built_in:
        if target is not None or task is not None:
            raise click.UsageError(f"--target and --task apply to CSV files, not to {data!r}.")
        return datasets.load(data)
    if not Path(data).is_file():
        raise click.BadParameter(
            f"{data!r} is neither a built-in data set ({', '.join(built_in)}) nor a file.",
            param_hint="--data",
        )
    try:
        return datasets.load_csv(data, target=target, task=task)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from None


def _named_labels(dataset):
    """A built-in data set's class codes 0..k-1 replaced by its class names (iris' "setosa",
    ...), so that the model predicts, serves and explains the names."""
    import numpy as np

    names = dataset.target_names
    if dataset.task != "classification" or dataset.y.dtype.kind not in "iu":
        return dataset
    if names == [str(i) for i in range(len(names))] or set(np.unique(dataset.y)) - set(
        range(len(names))
    ):
        return dataset
    return replace(dataset, y=np.asarray(names)[dataset.y])


@click.command()
@click.option(
    "--data",
    help=f"{' | '.join(built_in_data_sets())} | path to a CSV file. Without it, in a SageMaker "
    "training container (`docker run IMAGE train`), runs the SageMaker job laid out under /opt/ml.",
)
@click.option("--target", help="CSV only: the label column (default: the last column).")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="CSV only: override the task guessed from the target column.",
)
@click.option(
    "--hidden",
    default="128,64",
    show_default=True,
    callback=_hidden,
    help="Hidden layer sizes, comma-separated.",
)
@click.option("--activation", default="relu", show_default=True)
@click.option("--epochs", default=200, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--batch-size",
    default="auto",
    show_default=True,
    callback=_batch_size,
    help="Rows per step; auto = min(200, rows).",
)
@click.option(
    "--lr",
    default=1e-3,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Learning rate.",
)
@click.option(
    "--optimizer",
    default="adam",
    show_default=True,
    type=click.Choice(["adam", "adamw", "sgd", "rmsprop", "lbfgs"]),
)
@click.option(
    "--alpha", default=1e-4, show_default=True, type=click.FloatRange(min=0), help="L2 penalty."
)
@click.option("--early-stopping", is_flag=True, help="Stop when a held-out 10% stops improving.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--validation-fraction",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0, 1, max_open=True),
    help="Share of rows held out for the printed metrics (0: measure on training).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Model directory to write (replaced atomically).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Loss-curve PNG (default: OUTPUT-loss.png, beside the model directory).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress while training (a bar on a terminal, else a line every tenth of --epochs).",
)
def train(
    data: str | None,
    target: str | None,
    task: str | None,
    hidden: tuple[int, ...],
    activation: str,
    epochs: int,
    batch_size: int | str,
    lr: float,
    optimizer: str,
    alpha: float,
    early_stopping: bool,
    seed: int,
    validation_fraction: float,
    output: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Train a network on --data and save it to --output, with standardisation built in.

    Example: neurocloud train --data iris --hidden 32 --epochs 300 -o models/iris
    """
    if data is None:
        from neurocloud.cloud import container_training as container

        if container.job_is_laid_out():  # SageMaker's `train`: see that module
            raise SystemExit(container.main())
        raise click.UsageError("Missing option '--data'.")
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    from neurocloud.train_and_save import save_outputs, train_job

    dataset = _named_labels(_load(data, target, task))
    kind = dataset.task
    if kind == "classification":
        kind += f" with {len(dataset.target_names)} classes"
    click.echo(
        f"data: {dataset.name} ({dataset.X.shape[0]} rows, {dataset.X.shape[1]} features, {kind})"
    )
    try:
        result = train_job(
            dataset.X,
            dataset.y,
            dataset.task,
            hidden=hidden,
            activation=activation,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            alpha=alpha,
            seed=seed,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            progress="quiet" if quiet else "auto",
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    metrics = result.metrics
    click.echo(
        f"trained {metrics['epochs']} epochs in {metrics['train_seconds']:.2f} s; stopped: "
        f"{result.model.stop_reason_}"
    )
    where = (
        f"validation ({metrics['n_validation']} rows)"
        if metrics["n_validation"]
        else (f"training ({metrics['n_train']} rows)")
    )
    scores = {
        k: v
        for k, v in metrics.items()
        if k not in ("n_train", "n_validation", "epochs", "train_seconds")
    }
    click.echo(f"{where}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    saved, plot = save_outputs(
        result,
        output,
        dataset=dataset.name,
        feature_names=dataset.feature_names,
        plot_path=plot_path,
        card={"dataset_description": dataset.description},
    )
    click.echo(
        f"saved {saved}"
        + (
            f"; training and validation curves {plot}"
            if plot
            else " (for the curves' plot: pip install 'neurocloud[plot]')"
        )
    )
