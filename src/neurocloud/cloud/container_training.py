"""SageMaker's training contract, for ``docker run IMAGE train`` with our image.

SageMaker lays out ``/opt/ml`` before it starts the container:

- ``input/config/hyperparameters.json``: the settings, every value a string (see
  :mod:`neurocloud.cloud.hyperparameters`; the names are ``neurocloud train``'s options);
- ``input/config/inputdataconfig.json``: the channels; ``train`` is required, ``validation``
  is optional (without it, ``validation_fraction`` of the rows is held out);
- ``input/data/<channel>/``: the channel's CSV files, each with a header row.

The job trains with :func:`neurocloud.train_and_save.train_job`, writes the model directory's
files into ``model/`` (uploaded by SageMaker as ``model.tar.gz``, which our container then
serves), the loss curve and metrics into ``output/data/``, and prints one ``name=value`` line
per metric for SageMaker's metric definitions. On failure the reason goes to
``output/failure`` (SageMaker shows it as the job's FailureReason) and the exit status is 1.

The root ``/opt/ml`` can be moved with the environment variable ``NEUROCLOUD_SAGEMAKER_ROOT``,
which is how the tests run this entry point against a temporary directory.

>>> SageMakerPaths.from_env({"NEUROCLOUD_SAGEMAKER_ROOT": "/tmp/ml"}).failure.as_posix()
'/tmp/ml/output/failure'
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.cloud.hyperparameters import HyperparameterError, parse

__all__ = [
    "ROOT_VARIABLE",
    "SageMakerPaths",
    "TrainingError",
    "job_is_laid_out",
    "main",
    "run",
]

ROOT_VARIABLE = "NEUROCLOUD_SAGEMAKER_ROOT"
DEFAULT_ROOT = "/opt/ml"
#: channels this job reads; SageMaker may declare others (they are reported and ignored)
TRAIN, VALIDATION = "train", "validation"
_CSV_TYPES = ("text/csv", "csv", "application/csv", "")


class TrainingError(ValueError):
    """The job cannot run as configured: the message says what to change."""


@dataclass(frozen=True)
class SageMakerPaths:
    """Where SageMaker puts the inputs and collects the outputs, under one root."""

    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SageMakerPaths:
        env = os.environ if environ is None else environ
        return cls(Path(env.get(ROOT_VARIABLE, "").strip() or DEFAULT_ROOT))

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def input_data_config(self) -> Path:
        return self.root / "input" / "config" / "inputdataconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


def _read_json(path: Path, what: str, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise TrainingError(f"{path}: missing; SageMaker writes the {what} there.")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{path}: not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise TrainingError(f"{path}: expected a JSON object; found {type(data).__name__}.")
    return data


def channels(paths: SageMakerPaths) -> dict[str, Path]:
    """The declared channels' data folders, checked: ``train`` present, CSV in File mode."""
    config = _read_json(paths.input_data_config, "channel configuration", required=True)
    if TRAIN not in config:
        raise TrainingError(
            f"{paths.input_data_config}: no {TRAIN!r} channel; declared channels: "
            f"{sorted(config) or 'none'}. Give the training CSV files as the 'train' channel."
        )
    found = {}
    for name in (TRAIN, VALIDATION):
        if name not in config:
            continue
        settings = config[name] if isinstance(config[name], dict) else {}
        content_type = str(settings.get("ContentType") or "").split(";")[0].strip().lower()
        if content_type not in _CSV_TYPES:
            raise TrainingError(
                f"channel {name!r}: ContentType {settings['ContentType']!r} is not supported; "
                "expected text/csv."
            )
        mode = settings.get("TrainingInputMode", "File")
        if mode not in ("File", "FastFile"):
            raise TrainingError(
                f"channel {name!r}: TrainingInputMode {mode!r} is not supported; use File."
            )
        found[name] = paths.channel(name)
    return found


def load_channel(folder: Path, name: str, target: str | None, task: str | None) -> Any:
    """Every file in a channel's folder (sorted) as one data set; headers must agree."""
    from dataclasses import replace

    from neurocloud.datasets import load_csv

    files = (
        sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        if folder.is_dir()
        else []
    )
    if not files:
        raise TrainingError(f"channel {name!r}: no data files in {folder}.")
    parts = []
    for path in files:
        part = load_csv(path, target=target, task=task or (parts[0].task if parts else None))
        if parts and part.feature_names != parts[0].feature_names:
            raise TrainingError(
                f"{path}: columns {part.feature_names} differ from {files[0].name}'s "
                f"{parts[0].feature_names}."
            )
        parts.append(part)
    first = parts[0]
    X = np.concatenate([p.X for p in parts])
    y = np.concatenate([p.y for p in parts])
    return replace(first, name=name, X=X, y=y)


def _install_model(saved: Path, model_dir: Path) -> None:
    """Move the saved files into ``model_dir`` itself: in SageMaker it is a mounted folder,
    which cannot be replaced by a rename."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for path in saved.iterdir():
        os.replace(path, model_dir / path.name)
    saved.rmdir()


def run(paths: SageMakerPaths, log: Callable[[str], None] = print) -> Path:
    """Run the training job laid out under ``paths``; return the model folder."""
    from neurocloud.train_and_save import save_outputs, train_job

    raw = _read_json(paths.hyperparameters, "hyperparameters", required=False)
    settings = parse(raw)
    target, task = settings.pop("target", None), settings.pop("task", None)
    folders = channels(paths)
    train = load_channel(folders[TRAIN], TRAIN, target, task)
    validation = None
    if VALIDATION in folders:
        validation = load_channel(folders[VALIDATION], VALIDATION, target, train.task)
        if validation.feature_names != train.feature_names:
            raise TrainingError(
                f"channel 'validation' has columns {validation.feature_names}; the 'train' "
                f"channel has {train.feature_names}."
            )
        settings["validation_fraction"] = 0.0
    log(
        f"train: {train.X.shape[0]} rows, {train.X.shape[1]} features, {train.task}"
        + (f"; validation: {validation.X.shape[0]} rows" if validation is not None else "")
    )
    result = train_job(
        train.X, train.y, train.task, progress="lines", stream=sys.stdout, **settings
    )
    log(f"trained {result.metrics['epochs']} epochs; stopped: {result.model.stop_reason_}")
    metrics = dict(result.metrics)
    if validation is not None:
        name = "accuracy" if train.task == "classification" else "r2"
        metrics[f"validation_{name}"] = float(result.model.score(validation.X, validation.y))
    for key, value in metrics.items():
        log(f"{key}={value:.6g}")
    staging = paths.model / f".neurocloud-{uuid.uuid4().hex[:8]}"
    paths.output_data.mkdir(parents=True, exist_ok=True)
    saved, _ = save_outputs(
        result._replace(metrics=metrics),
        staging,
        dataset=f"SageMaker channel {TRAIN!r}",
        feature_names=train.feature_names,
        plot_path=paths.output_data / "loss.png",
        card={"hyperparameters": raw},
    )
    _install_model(saved, paths.model)
    (paths.output_data / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log(f"model written to {paths.model}")
    return paths.model


def job_is_laid_out(environ: Mapping[str, str] | None = None) -> bool:
    """Whether SageMaker (or a test) has laid out a training job under the root: how
    ``neurocloud train`` without ``--data`` knows it runs as the container's ``train``."""
    paths = SageMakerPaths.from_env(environ)
    return paths.input_data_config.is_file() or paths.hyperparameters.is_file()


def _fail(paths: SageMakerPaths, message: str) -> int:
    print(message, file=sys.stderr)
    try:
        paths.failure.parent.mkdir(parents=True, exist_ok=True)
        paths.failure.write_text(message + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"(could not write {paths.failure}: {exc})", file=sys.stderr)
    return 1


def main(environ: Mapping[str, str] | None = None) -> int:
    """The ``train`` entry point: 0 on success; on failure, 1 with the reason written to
    ``output/failure``."""
    paths = SageMakerPaths.from_env(environ)
    try:
        run(paths)
    except (TrainingError, HyperparameterError, ValueError, OSError) as exc:
        return _fail(paths, f"Training failed: {exc}")
    except ImportError as exc:
        from neurocloud.extras import missing_extra_message

        message = missing_extra_message(exc)
        if message is None:
            raise
        return _fail(paths, f"Training failed: {message}")
    except Exception as exc:  # a bug: keep the traceback in the log, the reason in failure
        traceback.print_exc()
        return _fail(paths, f"Training failed with an unexpected {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
