"""Crash-safe training: ``ModelCheckpoint`` saves the run as it goes, ``load_checkpoint``
resumes it exactly.

Each checkpoint is an ordinary artifact (``nc.save``, written atomically): the model, the
optimizer with its state, and in ``model.json``'s ``extra.checkpoint`` the epochs done and
the state of the model's random generator (shuffling, dropout). A run resumed from it with
``fit(..., initial_epoch=checkpoint.initial_epoch)`` computes bit for bit what the run it
continues would have.

>>> import numpy as np, neurocloud as nc, tempfile
>>> X, y = np.linspace(0, 1, 8)[:, None], np.linspace(0, 2, 8)
>>> run = tempfile.mkdtemp()
>>> model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
>>> _ = model.fit(X, y, epochs=3, callbacks=[nc.callbacks.ModelCheckpoint(run)])
>>> ck = nc.callbacks.load_checkpoint(run)
>>> ck.initial_epoch, type(ck.optimizer).__name__
(3, 'Adam')
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

from neurocloud.artifact import load_artifact, save
from neurocloud.nn.callbacks import Callback
from neurocloud.nn.validation import check_number

__all__ = ["Checkpoint", "ModelCheckpoint", "load_checkpoint"]

LAST, BEST = "last", "best"


class ModelCheckpoint(Callback):
    """Save the model, its optimizer and its generator state under ``directory``.

    ``every=N`` writes ``directory/last`` after every N-th epoch (``None``: never);
    ``save_best=True`` writes ``directory/best`` whenever ``monitor`` (``val_loss`` by
    default, ``loss`` without validation data) reaches a new minimum. Each write replaces
    the previous one atomically, so a killed or interrupted run keeps its last complete
    checkpoint; nothing is written for an epoch that did not finish.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        every: int | None = 1,
        save_best: bool = False,
        monitor: str = "val_loss",
    ) -> None:
        self.directory = Path(directory)
        self.every = None if every is None else check_number(every, "every", low=1, integer=True)
        if self.every is None and not save_best:
            raise ValueError(
                "Expected every=N or save_best=True: this checkpoint would never save. "
                "Received: every=None, save_best=False"
            )
        self.save_best = bool(save_best)
        self.monitor = monitor
        self.best = math.inf
        self.saved: Path | None = None

    def on_train_begin(self, model: Any) -> None:
        self.best = math.inf
        best = self.directory / BEST
        if self.save_best and (best / "model.json").is_file():  # a resumed run
            self.best = float(load_artifact(best).metadata["extra"]["checkpoint"]["best"])

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.every is not None and (epoch + 1) % self.every == 0:
            self.saved = self._write(model, self.directory / LAST, epoch, logs)
        if self.save_best:
            if self.monitor not in logs and self.monitor != "val_loss":
                raise ValueError(
                    f"ModelCheckpoint monitors {self.monitor!r}, which training does not "
                    f"log; expected one of {sorted(logs)}."
                )
            value = logs.get(self.monitor, logs["loss"])
            if value < self.best:
                self.best = float(value)
                self._write(model, self.directory / BEST, epoch, logs)

    def state(self, model: Any, epoch: int, logs: dict[str, float]) -> dict[str, Any]:
        """What ``extra.checkpoint`` records after ``epoch``; a subclass adds its own
        (JSON-able) entries, which :func:`load_checkpoint` returns as ``Checkpoint.state``."""
        return {
            "epoch": epoch + 1,  # epochs done: the next run's initial_epoch
            "rng": model.rng.bit_generator.state,
            "logs": {k: float(v) for k, v in logs.items()},
            "monitor": self.monitor,
            "best": self.best if math.isfinite(self.best) else None,
        }

    def _write(self, model: Any, path: Path, epoch: int, logs: dict[str, float]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        optimizer = self.trainer.optimizer if self.trainer is not None else None
        state = self.state(model, epoch, logs)
        return save(model, path, optimizer=optimizer, extra={"checkpoint": state})


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns; pass them on to ``fit`` to continue."""

    model: Any
    optimizer: Any
    initial_epoch: int
    logs: dict[str, float]
    path: Path
    #: everything ``extra.checkpoint`` holds (a subclass's entries included)
    state: dict[str, Any] | None = None


def load_checkpoint(directory: str | os.PathLike[str], which: str = LAST) -> Checkpoint:
    """The model (generator state restored), optimizer and epochs done of a checkpoint.

    ``directory`` is a :class:`ModelCheckpoint` directory (``which`` picks ``"last"`` or
    ``"best"``) or one checkpoint artifact itself.
    """
    root = Path(directory)
    if which not in (LAST, BEST):
        raise ValueError(f"Expected which to be 'last' or 'best'. Received: which={which!r}")
    path = root / which if (root / which / "model.json").is_file() else root
    if not (path / "model.json").is_file():
        raise FileNotFoundError(
            f"No checkpoint in {root}: expected {root / which}/model.json, written by "
            "nc.callbacks.ModelCheckpoint."
        )
    artifact = load_artifact(path)
    state = artifact.metadata.get("extra", {}).get("checkpoint")
    if not isinstance(state, dict) or "epoch" not in state or "rng" not in state:
        raise ValueError(
            f"{path / 'model.json'}: not a training checkpoint (no extra.checkpoint with "
            "epoch and rng); it is a saved model, which cannot resume a run exactly."
        )
    model = artifact.model
    try:
        model.rng.bit_generator.state = state["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path / 'model.json'}: unreadable generator state: {exc}") from None
    return Checkpoint(
        model=model,
        optimizer=artifact.load_optimizer(),
        initial_epoch=int(state["epoch"]),
        logs=dict(state.get("logs", {})),
        path=path,
        state=state,
    )
