"""What makes a training job resumable and interruptible: the data's fingerprint and the
run's settings kept in its checkpoint (and checked on resume), and Ctrl-C handling that ends
training at an epoch boundary, where the weights, the optimizer and the checkpoint agree.

>>> import numpy as np
>>> len(data_fingerprint(np.zeros((2, 3)), np.array(["a", "b"])))
64
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.nn.callbacks import Callback

__all__ = ["TrainingInterrupted", "check_resumable", "data_fingerprint", "read_run"]


class TrainingInterrupted(Exception):
    """Ctrl-C stopped :func:`train_job` at the end of an epoch: ``epochs`` were done, and
    ``checkpoint`` (when one was written) holds them."""

    def __init__(self, epochs: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at epoch {epochs}")
        self.epochs, self.checkpoint = epochs, checkpoint


class StopOnRequest(Callback):
    """Ends training at the end of the epoch in which the first Ctrl-C came."""

    def __init__(self) -> None:
        self.requested, self.at = False, None

    def on_epoch_end(self, model: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.requested and not model.stop_training:  # else the run ended by itself
            model.stop_training = True
            model.stop_reason = f"interrupted at epoch {epoch + 1}"
            self.at = epoch + 1


@contextlib.contextmanager
def first_ctrl_c_stops(stop: StopOnRequest | None) -> Iterator[None]:
    """While training, the first SIGINT asks ``stop`` to end after the epoch (weights,
    optimizer and checkpoint consistent); a second one interrupts at once."""
    main = threading.current_thread() is threading.main_thread()
    if stop is None or not main or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield  # (an ignored SIGINT, as in a background job, stays ignored)
        return

    def on_sigint(signum, frame) -> None:
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def data_fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the rows and targets: a resumed run must see the data it started on."""
    digest = hashlib.sha256(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y.astype(str)).tobytes())
    return digest.hexdigest()


def check_resumable(saved: dict[str, Any] | None, run: dict[str, Any], where: Path) -> None:
    """Refuse to resume a checkpoint on other data or settings than its own."""
    if not isinstance(saved, dict):
        raise ValueError(f"{where}: not a checkpoint of a training job; it cannot be resumed.")
    if saved.get("data_sha256") != run["data_sha256"] or saved.get("task") != run["task"]:
        raise ValueError(
            f"{where}: the data differ from the data this run started on (their SHA-256 "
            "does not match); resume on the same data."
        )
    changed = {
        k: (v, run["settings"].get(k))
        for k, v in saved.get("settings", {}).items()
        if run["settings"].get(k) != v
    }
    if changed:
        described = ", ".join(
            f"{k}={new!r} (the run's: {old!r})" for k, (old, new) in changed.items()
        )
        raise ValueError(f"{where}: settings differ from the run's: {described}.")


def read_run(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``record`` and settings that :func:`train_job` kept in a checkpoint directory,
    read without loading the network (``neurocloud train --resume`` starts from them)."""
    from neurocloud.artifact import load_artifact
    from neurocloud.checkpoint import LAST

    root = Path(directory)
    path = root / LAST
    if not (path / "model.json").is_file():
        raise FileNotFoundError(
            f"No checkpoint in {root}: expected {path}/model.json, written by "
            "neurocloud train --checkpoint."
        )
    state = load_artifact(path).metadata.get("extra", {}).get("checkpoint", {})
    run = state.get("run") if isinstance(state, dict) else None
    if not isinstance(run, dict) or "settings" not in run:
        raise ValueError(f"{path}/model.json: not a checkpoint of neurocloud train.")
    return {**run, "epoch": int(state.get("epoch", 0))}
