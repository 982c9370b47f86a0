"""``neurocloud train``: train a network on a built-in data set or a CSV file and save it.

The work itself is :mod:`neurocloud.train_and_save`; this module only reads the options
(derived from :mod:`neurocloud.train_settings`), loads the data and prints what happened.
``--checkpoint DIR`` keeps the run resumable; ``--resume DIR`` continues it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from neurocloud.datasets import available as built_in_data_sets
from neurocloud.train_settings import DataSettings, Setting, TrainSettings, settings_fields


class _SettingType(click.ParamType):
    """A settings field's check as a click type: the same conversion and error message
    as the SageMaker hyperparameters and the Python keywords."""

    def __init__(self, name: str, setting: Setting) -> None:
        self.name, self.setting = name, setting

    def convert(self, value: Any, param, ctx) -> Any:
        try:
            return self.setting.check(value, self.name)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _metavar(default: Any) -> str:
    if isinstance(default, tuple):
        return "N[,N...]"
    if default == "auto":
        return "N|auto"
    return {int: "INTEGER", float: "NUMBER"}.get(type(default), "TEXT")


def _settings_options(command: Callable) -> Callable:
    """One option per settings field: its aliases (``--hidden``...) and ``--field-name``."""
    for cls in (TrainSettings, DataSettings):
        for f, setting in reversed(settings_fields(cls)):
            flags = [f"--{n.replace('_', '-')}" for n in (*setting.aliases, f.name)]
            shown = {} if f.default is None else {"default": _shown(f.default)}
            if f.type in ("bool", bool):
                option = click.option(
                    f"--{f.name.replace('_', '-')}/--no-{f.name.replace('_', '-')}", f.name,
                    default=f.default, show_default=True, help=setting.help,
                )  # fmt: skip
            elif setting.choices:
                option = click.option(
                    *flags, f.name, type=click.Choice(setting.choices(), case_sensitive=False),
                    show_default=True, help=setting.help, **shown,
                )  # fmt: skip
            else:
                option = click.option(
                    *flags, f.name, type=_SettingType(f.name, setting), show_default=True,
                    metavar=_metavar(f.default), help=setting.help, **shown,
                )  # fmt: skip
            command = option(command)
    return command


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


def _given(ctx: click.Context) -> list[str]:
    """The parameters typed on the command line (or set through the environment)."""
    typed = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return [name for name in ctx.params if ctx.get_parameter_source(name) in typed]


def _flag(ctx: click.Context, name: str) -> str:
    return next(p.opts[0] for p in ctx.command.params if p.name == name)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _where(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _resumed(ctx: click.Context, directory: str) -> dict[str, Any]:
    """The options of the run checkpointed in ``directory``; an option typed now must
    repeat the run's value (a different one would not continue that run)."""
    from neurocloud.train_resume import read_run

    try:
        run = read_run(directory)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    stored = {**run["command"], **run["settings"], "checkpoint": _where(directory)}
    conflicts = []
    for name in _given(ctx):
        if name in ("resume", "quiet"):
            continue
        value = ctx.params[name]
        path = name in ("output", "plot_path", "checkpoint")
        if path or (name == "data" and value.lower() not in built_in_data_sets()):
            value = _where(value)
        elif name == "data":
            value = value.lower()  # built-in names are stored lower-case
        if _json(value) != _json(stored.get(name)):
            conflicts.append(f"{_flag(ctx, name)} {value} (the run's: {stored.get(name)})")
    if conflicts:
        raise click.UsageError(
            f"--resume {directory} continues that run with its own settings; these options "
            f"differ from them: {'; '.join(conflicts)}. Drop them, or start a new run."
        )
    return {**stored, "epochs_done": run["epoch"]}


@click.command()
@click.option(
    "--data",
    help=f"{' | '.join(built_in_data_sets())} | path to a CSV file. Without it, in a SageMaker "
    "training container (`docker run IMAGE train`), runs the SageMaker job laid out under /opt/ml.",
)
@_settings_options
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
    "--checkpoint",
    type=click.Path(file_okay=False),
    help="Keep the run's state (model, optimizer, generator, stopping rule, settings) in "
    "CHECKPOINT/last every --checkpoint-every epochs and when training ends, so that a killed "
    "or interrupted run continues with --resume CHECKPOINT.",
)
@click.option(
    "--checkpoint-every",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Epochs between checkpoints.",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, exists=True),
    help="Continue the run checkpointed in this directory exactly, with its own options.",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress while training (a bar on a terminal, else a line every tenth of --epochs).",
)
@click.pass_context
def train(
    ctx: click.Context,
    data: str | None,
    output: str | None,
    plot_path: str | None,
    checkpoint: str | None,
    checkpoint_every: int,
    resume: str | None,
    quiet: bool,
    **values: Any,
) -> None:
    """Train a network on --data and save it to --output, with standardisation built in.

    Ctrl-C stops at the end of the current epoch (with --checkpoint, resumable).

    Example: neurocloud train --data iris --hidden 32 --epochs 300 -o models/iris
    """
    done = 0
    if resume is not None:
        stored = _resumed(ctx, resume)
        data, output, plot_path = stored["data"], stored["output"], stored["plot_path"]
        checkpoint, checkpoint_every = stored["checkpoint"], stored["checkpoint_every"]
        values = {name: stored[name] for name in values}
        done = stored["epochs_done"]
    if data is None:
        from neurocloud.cloud import container_training as container

        if container.job_is_laid_out():  # SageMaker's `train`: see that module
            raise SystemExit(container.main())
        raise click.UsageError("Missing option '--data'.")
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    from neurocloud.train_and_save import TrainingInterrupted, save_outputs, train_job

    try:
        wanted = DataSettings(values.pop("target"), values.pop("task"))
        settings = TrainSettings(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    dataset = _named_labels(_load(data, wanted.target, wanted.task))
    kind = dataset.task
    if kind == "classification":
        kind += f" with {len(dataset.target_names)} classes"
    click.echo(
        f"data: {dataset.name} ({dataset.X.shape[0]} rows, {dataset.X.shape[1]} features, {kind})"
    )
    if resume is not None:
        click.echo(f"resuming {resume} after epoch {done}")
    built_in = data.lower() in built_in_data_sets()
    command = {
        "data": data.lower() if built_in else _where(data),
        **wanted.to_dict(),
        "output": _where(output),
        "plot_path": _where(plot_path),
        "checkpoint_every": checkpoint_every,
    }
    try:
        result = train_job(
            dataset.X,
            dataset.y,
            dataset.task,
            settings,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume is not None,
            record={"command": command},
            interruptible=True,
            progress="quiet" if quiet else "auto",
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        at = f" at epoch {exc.epochs}" if isinstance(exc, TrainingInterrupted) else ""
        keep = (
            f"; the checkpoint is kept: neurocloud train --resume {checkpoint}"
            if checkpoint
            else " (nothing saved: with --checkpoint DIR a run can be resumed)"
        )
        click.echo(f"interrupted{at}{keep}", err=True)
        ctx.exit(130)
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
